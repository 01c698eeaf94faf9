"""The study's tables and verdict rules (simulations/lm/study.py) on synthetic sweep rows, and
the study configs: every block and its fast variant expand, and their arms are the ones the
pre-registered comparisons name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulations.lm import study
from simulations.sweep import expand_grid

REPO = Path(__file__).resolve().parent.parent


def _row(rule, N, seed, metric, **kw):
    r = {
        "task": "add",
        "d_model": "64",
        "rule": rule,
        "staleness": str(N),
        "mismatch": "none",
        "correction": "entangled",
        "routing_replay": "False",
        "n_expert": "0",
        "seed": str(seed),
        "initial_heldout": "0.4",
        "heldout_last_k": repr(metric),
        "collapsed": "False",
        "final_entropy": "0.3",
        "max_response_length": "25",
        "mean_coef_neg": "0.5",
        "mean_coef_pos": "1.0",
    }
    r.update({k: str(v) for k, v in kw.items()})
    return r


def _s1_rows(vespo_shift: float, n_seeds: int = 10):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(n_seeds):
        noise = float(rng.normal(0, 0.01))
        for rule in ("vespo", "ppo_clip", "gspo", "sapo"):
            for N in (1, 64):
                m = 0.4 + noise + (vespo_shift if (rule == "vespo" and N == 64) else 0.0)
                m += float(rng.normal(0, 0.002))
                rows.append(_row(rule, N, seed, m))
    return rows


def test_t_interval_matches_scipy():
    from scipy import stats

    xs = [0.1, 0.4, 0.35, 0.2]
    m, lo, hi = study.t_interval(xs)
    ref = stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))
    assert m == pytest.approx(np.mean(xs), rel=1e-12)
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)  # the same formula; float rounding only
    assert all(math.isnan(v) for v in study.t_interval([]))
    assert math.isnan(study.t_interval([0.3])[1])


def test_paired_comparisons_and_the_s1_verdict_follow_the_data():
    """VESPO 0.05 above every baseline at N = 64 (seed noise 0.002): every primary comparison
    favourable, so S1 is supported; 0.05 below: every one unfavourable, not reproduced; no
    difference: inconclusive, not reproduced. A rule that ignored the data would fail one."""
    up = study.paired_rows("s1", _s1_rows(+0.05))
    prim = [p for p in up if p["claim"] == "S1" and p["primary"]]
    assert len(prim) == 3 and {p["outcome"] for p in prim} == {"favourable"}
    assert all(p["seeds"] == 10 and not p["exploratory"] for p in prim)
    # per-seed noise 0.002 on each arm: the mean of 10 paired differences has sd
    # 0.002 * sqrt(2 / 10) ~ 0.0009, so 0.01 is over 10 sd
    assert all(p["diff"] == pytest.approx(0.05, abs=0.01) for p in prim)
    assert study.verdict("S1", up)["verdict"] == "supported"
    down = study.paired_rows("s1", _s1_rows(-0.05))
    assert {p["outcome"] for p in down if p["claim"] == "S1" and p["primary"]} == {"unfavourable"}
    assert study.verdict("S1", down)["verdict"] == "not reproduced"
    flat = study.paired_rows("s1", _s1_rows(0.0))
    assert study.verdict("S1", flat)["verdict"] == "not reproduced"
    # arms never run: "missing", and a claim with no primary comparison run is "not run"
    n4 = [p for p in up if p["comparison"] == "vespo N=4 - ppo_clip N=4"]
    assert n4[0]["outcome"] == "missing"
    assert study.verdict("S3", up)["verdict"] == "not run"


def test_s2_signals_and_the_all_rule():
    rows = _s1_rows(0.0, n_seeds=5)
    rng = np.random.default_rng(1)
    for r in rows:
        jitter = float(rng.normal(0, 0.001))
        if r["rule"] == "ppo_clip" and r["staleness"] == "64":
            r["final_entropy"] = repr(0.1 + jitter)  # entropy falls at N = 64
        if r["rule"] == "gspo" and r["staleness"] == "64":
            r["max_response_length"] = repr(40 + jitter)  # responses lengthen
        if r["rule"] == "sapo" and r["staleness"] == "64":
            r["mean_coef_neg"] = repr(0.9 + jitter)  # negatives barely suppressed
    paired = study.paired_rows("s1", rows)
    s2 = [p for p in paired if p["claim"] == "S2"]
    assert [p["outcome"] for p in s2] == ["favourable"] * 3
    assert all(p["exploratory"] for p in s2)  # 5 seeds < 10
    assert study.verdict("S2", paired)["verdict"] == "supported"
    for r in rows:  # undo one signal: partly
        if r["rule"] == "gspo":
            r["max_response_length"] = "25"
    assert study.verdict("S2", study.paired_rows("s1", rows))["verdict"] == "partly"


def test_summary_lr_check_flags_a_rule_that_breaks_on_policy():
    rows = [_row("topr", 1, s, 0.4 - 0.15) for s in range(3)]
    rows += [_row("cispo", 1, s, 0.41) for s in range(3)]
    rows += [_row("bapo", 1, 0, 0.4, collapsed="True")] + [_row("bapo", 1, s, 0.4) for s in (1, 2)]
    summ = {r["rule"]: r for r in study.summary_rows(rows)}
    assert summ["topr"]["lr_breaks"] is True  # 0.15 below the start > LR_DROP
    assert summ["cispo"]["lr_breaks"] is False
    assert summ["bapo"]["lr_breaks"] is True  # a collapse on-policy
    assert summ["cispo"]["metric_mean"] == pytest.approx(0.41)


def test_arm_labels_distinguish_every_arm_field():
    base = ("add", 64, "vespo", 8, "none", "entangled", False, 0, 0)
    assert len(base) == len(study.ARM_FIELDS)  # a new arm field needs its variant below
    labels = {study.arm_label(base)}
    variants = [
        ("task", "stack"),
        ("d_model", 32),
        ("rule", "gspo"),
        ("staleness", 16),
        ("mismatch", "route:1.0"),
        ("correction", "decoupled"),
        ("routing_replay", True),
        ("n_expert", 4),
        ("async_lag", 8),
    ]
    for field, v in variants:
        labels.add(study.arm_label(study._with(base, **{field: v})))
    assert len(labels) == 1 + len(variants)


@pytest.mark.parametrize("block", study.BLOCKS)
def test_study_configs_expand_and_hold_every_compared_arm(block):
    """Each block's config makes every arm its primary comparisons name (so a verdict cannot
    be 'not run' by a typo in a config), with >= 10 seeds for S1's headline arms; the fast
    variant expands too and is small."""
    full = expand_grid(json.loads((REPO / "configs/study" / f"{block}.json").read_text()))
    fast = expand_grid(json.loads((REPO / "configs/study" / f"{block}_fast.json").read_text()))
    assert 0 < len(fast) <= 8 < len(full)
    arms = {}
    for c in full:
        row = {k: str(c.get(k, "")) for k in study.ARM_FIELDS}
        arms.setdefault(study._arm(row), set()).add(c["seed"])
    for comp in study.comparisons(block):
        if comp["primary"]:
            assert comp["a"] in arms and comp["b"] in arms, comp["label"]
            if block == "s1":
                assert len(arms[comp["a"]] & arms[comp["b"]]) >= study.HEADLINE_SEEDS


def test_unknown_block_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown study block 's9'"):
        study.comparisons("s9")


def test_a_rule_that_breaks_on_policy_is_not_judged():
    """S1 supported on the data, but if GSPO breaks on-policy its comparison is left out
    (named in not_judged), and if every compared rule breaks the claim is 'not judged'."""
    paired = study.paired_rows("s1", _s1_rows(+0.05))
    rows = [_row("gspo", 1, s, 0.2) for s in range(3)]  # 0.2 below the start: breaks
    rows += [_row("ppo_clip", 1, s, 0.4) for s in range(3)]
    assert study.broken_rules(study.summary_rows(rows)) == ["gspo"]
    # an N = 1 arm whose sampler lags (async) is off-policy: it cannot show a rule breaking
    # on-policy, however badly it ends
    lagged = [_row("topr", 1, s, 0.1, async_lag=8) for s in range(3)]
    assert study.broken_rules(study.summary_rows(rows + lagged)) == ["gspo"]
    v = study.verdict("S1", paired, ["gspo"])
    assert v["primary"] == 2 and "gspo N=64" in v["not_judged"] and v["verdict"] == "supported"
    v = study.verdict("S1", paired, ["vespo"])
    assert v["verdict"] == "not judged"


def test_curves_average_the_runs_metrics_with_t_bands(tmp_path):
    """curve_rows finds each run's metrics.csv by its run key and averages over seeds, with
    the half-width of the 95 % t interval; a missing run is an error naming it."""
    from dataclasses import asdict

    from simulations.lm.rl import COLUMNS, LMRunConfig, run_key

    rows = []
    for seed, val in ((0, 0.2), (1, 0.4)):
        cfg = LMRunConfig(rule="gspo", staleness=4, seed=seed, steps=32, eval_every=16)
        d = tmp_path / run_key(cfg)[:16]
        d.mkdir()
        lines = [",".join(COLUMNS)]
        for step in range(1, 33):
            r = {c: "" for c in COLUMNS}
            r.update(step=step, reward=val, entropy=val / 2)
            r.update(coef_neg_mean=val, coef_pos_mean=round(0.6 - val, 12) if step > 1 else 0.0)
            if step % 16 == 0:
                r["heldout_success"] = val + 0.1
            lines.append(",".join(str(r[c]) for c in COLUMNS))
        (d / "metrics.csv").write_text("\n".join(lines) + "\n")
        rows.append({k: str(v) for k, v in asdict(cfg).items() if v is not None})
    curves = study.curve_rows(rows, tmp_path)
    assert [c["step"] for c in curves] == [1, 16, 32]  # step 1, every 16, evaluations
    c16 = curves[1]
    assert c16["arm"] == "gspo N=4" and c16["seeds"] == 2
    assert c16["reward"] == pytest.approx(0.3) and c16["heldout_success"] == pytest.approx(0.4)
    from scipy import stats

    hw = stats.t.ppf(0.975, 1) * np.std([0.2, 0.4], ddof=1) / np.sqrt(2)
    assert c16["reward_hw"] == pytest.approx(hw, rel=1e-12)
    assert math.isnan(curves[0]["heldout_success"])  # no evaluation at step 1
    # The per-step S2 ratio is averaged per seed (0.2/0.4 and 0.4/0.2): 1.25, not the ratio of
    # the means (1.0); a step whose A >= 0 mean is 0 has no ratio (NaN, not inf).
    # exact: 0.4 is 2 x 0.2 in binary too, so the ratios are exactly 0.5 and 2.0
    assert c16["coef_neg_over_pos"] == 1.25
    assert math.isnan(curves[0]["coef_neg_over_pos"])
    rows[1]["seed"] = "7"
    with pytest.raises(FileNotFoundError, match="gspo N=4 seed 7"):
        study.curve_rows(rows, tmp_path)
