"""The paper's eight empirical claims (S1-S8, arXiv 2602.10693 §4) at small scale: the study's
blocks, its pre-registered comparisons and verdict rules, and its result tables.

Each block is a sweep config ``configs/study/<block>.json`` (and a fast variant
``<block>_fast.json``) of "lm" cells, run by ``vespo sweep`` (resumable; every run cached by its
key). This module turns a block's ``results.csv`` into the small tables the docs quote and the
figures draw (``docs/lm_study/``):

* ``<block>.results.csv``: one row per run (its arm, seed, the protocol metric
  ``heldout_last_k`` and the logged failure signals);
* ``<block>.summary.csv``: one row per arm: the metric's mean over seeds with a two-sided 95 %
  Student-t interval, collapses, signal means;
* ``<block>.paired.csv``: the block's pre-registered comparisons, each a difference of two arms
  paired by seed, with its 95 % t interval and whether that interval excludes 0 in the
  expected direction ("favourable"), the other ("unfavourable") or neither;
* ``<block>.curves.csv``: per arm and step, the mean over seeds of the per-step log (reward,
  held-out success, response length, KL, entropy, loss, gradient norm, clip/zero fractions),
  every ``CURVE_EVERY`` steps and at every evaluation;
* ``verdicts.csv``: one row per claim, from the paired tables by the rules in :data:`CLAIMS`.

The protocol (metric, seeds, intervals, collapse, learning-rate check, verdict rules) is stated
in docs/lm.md, "The paper's experiments at small scale", before any result.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path

__all__ = [
    "ARM_FIELDS",
    "BLOCKS",
    "CLAIMS",
    "arm_label",
    "broken_rules",
    "comparisons",
    "paired_rows",
    "read_csv",
    "summary_rows",
    "t_interval",
    "verdict",
    "write_block_tables",
    "write_csv",
]

BLOCKS = ("s1", "s3", "s4", "s5", "s6", "s7", "s8", "async", "lr_check")
HEADLINE_SEEDS = 10  # a comparison with fewer paired seeds is labelled exploratory
# a rule "breaks on-policy" at the protocol's step size if a seed collapses at N = 1 or its
# N = 1 metric ends, on average over seeds, more than LR_DROP below the warm start's
LR_DROP = 0.10
CURVE_EVERY = 16
ARM_FIELDS = (
    "task",
    "d_model",
    "rule",
    "staleness",
    "mismatch",
    "correction",
    "routing_replay",
    "n_expert",
    "async_lag",
)
RUN_COLUMNS = [
    "initial_heldout",
    "heldout_last_k",
    "final_heldout",
    "best_heldout",
    "collapsed",
    "collapse_step",
    "mean_ess_frac",
    "max_log_w",
    "mean_entropy",
    "final_entropy",
    "mean_ppo_kl",
    "max_ppo_kl",
    "mean_grad_norm",
    "max_grad_norm",
    "mean_response_length",
    "max_response_length",
    "mean_coef_pos",
    "mean_coef_neg",
    "mean_clip_frac",
    "mean_zero_frac",
]
CURVE_COLUMNS = [
    "reward",
    "heldout_success",
    "response_length",
    "ppo_kl",
    "kl_sampler",
    "entropy",
    "loss",
    "grad_norm",
    "clip_frac",
    "zero_frac",
    "ess_frac",
    "log_w_std",
    "coef_neg_mean",
    "coef_neg_over_pos",
]


# ------------------------------------------------------------------------------ statistics


def t_interval(xs) -> tuple[float, float, float]:
    """(mean, lower, upper): the two-sided 95 % Student-t interval of the mean (float64);
    the bounds are NaN with fewer than 2 values, and every value NaN for none.

    >>> [round(v, 3) for v in t_interval([0.0, 1.0, 2.0])]
    [1.0, -1.484, 3.484]
    """
    from scipy import stats

    xs = [float(x) for x in xs]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = math.fsum(xs) / n
    if n < 2:
        return m, math.nan, math.nan
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (n - 1))
    h = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return m, m - h, m + h


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _true(v) -> bool:
    return str(v).lower() in ("true", "1")


# ------------------------------------------------------------------------------------ arms


def _arm(row: dict) -> tuple:
    def norm(k):
        v = row.get(k, "")
        if k in ("d_model", "staleness", "n_expert", "async_lag"):
            dflt = {"d_model": 64, "n_expert": 0, "async_lag": 0}
            return int(float(v)) if v not in ("", None) else dflt[k]
        if k == "routing_replay":
            return _true(v)
        defaults = {"task": "add", "mismatch": "none", "correction": "entangled"}
        return v if v not in ("", None) else defaults.get(k, "")

    return tuple(norm(k) for k in ARM_FIELDS)


def arm_label(arm: tuple) -> str:
    """A short label: ``vespo N=64``, ``ppo_clip+TIS route:1.0 N=8``, ``vespo N=8 d=32``,
    ``vespo N=4 L=8`` (the sampler L versions behind: fully asynchronous).

    >>> arm_label(("add", 64, "ppo_clip", 8, "route:1.0", "decoupled", True, 4, 0))
    'ppo_clip+TIS+R2 route:1.0 N=8 moe'
    >>> arm_label(("add", 64, "vespo", 4, "none", "entangled", False, 0, 8))
    'vespo N=4 L=8'
    """
    a = dict(zip(ARM_FIELDS, arm))
    s = a["rule"] + ("+TIS" if a["correction"] == "decoupled" else "")
    s += "+R2" if a["routing_replay"] else ""
    s += f" {a['mismatch']}" if a["mismatch"] != "none" else ""
    s += f" N={a['staleness']}"
    s += f" L={a['async_lag']}" if a["async_lag"] else ""
    s += f" d={a['d_model']}" if a["d_model"] != 64 else ""
    s += " moe" if a["n_expert"] else ""
    s += f" [{a['task']}]" if a["task"] != "add" else ""
    return s


def _with(arm: tuple, **kw) -> tuple:
    a = dict(zip(ARM_FIELDS, arm))
    a.update(kw)
    return tuple(a[k] for k in ARM_FIELDS)


def _a(rule, N, **kw) -> tuple:
    base = dict(
        task="add",
        d_model=64,
        rule=rule,
        staleness=N,
        mismatch="none",
        correction="entangled",
        routing_replay=False,
        n_expert=0,
        async_lag=0,
    )
    base.update(kw)
    return tuple(base[k] for k in ARM_FIELDS)


# ------------------------------------------------------------------ pre-registered comparisons
#
# Each comparison: (claim, label, arm A, arm B, metric, expected sign of A - B, primary?).
# "favourable" = the 95 % paired interval excludes 0 on the expected side.


def comparisons(block: str) -> list[dict]:
    """The pre-registered comparisons of ``block`` (see docs/lm.md for the protocol)."""
    out = []

    def add(claim, a, b, metric="heldout_last_k", sign=+1, primary=False, label=None):
        out.append(
            {
                "claim": claim,
                "label": label or f"{arm_label(a)} - {arm_label(b)}",
                "a": a,
                "b": b,
                "metric": metric,
                "sign": sign,
                "primary": primary,
            }
        )

    if block == "s1":
        for N in (1, 4, 8, 16, 32, 64):
            for x in ("ppo_clip", "gspo", "sapo"):
                add("S1", _a("vespo", N), _a(x, N), primary=N == 64)
        # S2: the baselines' failure signals, from the same runs
        add("S2", _a("ppo_clip", 64), _a("ppo_clip", 1), "final_entropy", -1, True)
        add("S2", _a("gspo", 64), _a("gspo", 1), "max_response_length", +1, True)
        add("S2", _a("sapo", 64), _a("vespo", 64), "coef_neg_over_pos", +1, True)
    elif block == "s3":
        for N in (16, 64):
            for x in ("vespo_sqrt", "vespo_lin"):
                add("S3", _a("vespo", N), _a(x, N), primary=N == 64)
        add("S3", _a("vespo_lin", 64), _a("vespo", 64), "max_grad_norm", +1)
        add("S3", _a("vespo_lin", 64), _a("vespo", 64), "max_ppo_kl", +1)
    elif block == "s4":
        for N in (16, 64):
            for x in ("vespo_sym23", "vespo_sym32"):
                add("S4", _a("vespo", N), _a(x, N), primary=N == 64)
    elif block == "s5":
        moe = dict(n_expert=4, mismatch="route:1.0")
        g, v = _a("ppo_clip", 8, **moe), _a("vespo", 8, **moe)
        add("S5", v, g, primary=True)
        add("S5", _with(g, correction="decoupled"), g, primary=True)
        add("S5", _with(g, routing_replay=True), g, primary=True)
        add("S5", _with(v, routing_replay=True), v)
        add("S5", v, _with(g, routing_replay=True))
        add("S5", _with(g, mismatch="none"), g, label="mismatch cost (GRPO): none - route:1.0")
    elif block == "s6":
        for N in (8, 64):
            for x in ("topr", "cispo", "bapo", "vcpo"):
                add("S6", _a("vespo", N), _a(x, N), primary=N == 8)
    elif block == "s7":
        for N in (1, 16, 64):
            for x in ("ppo_clip", "gspo", "sapo"):
                add("S7", _a("vespo", N, task="stack"), _a(x, N, task="stack"), primary=N == 64)
    elif block == "s8":
        for d in (32, 64, 128):
            add("S8", _a("vespo", 8, d_model=d), _a("ppo_clip", 8, d_model=d), primary=True)
    elif block == "async":
        # the README's fully asynchronous run: reported, not primary (no claim's verdict uses it)
        for L in (8, 32):
            for x in ("ppo_clip", "gspo", "sapo"):
                add("S1", _a("vespo", 4, async_lag=L), _a(x, 4, async_lag=L))
    elif block == "lr_check":
        pass  # one-sample checks (summary_rows' lr columns), not paired comparisons
    else:
        raise ValueError(f"block: unknown study block {block!r}; valid: {', '.join(BLOCKS)}")
    return out


# ----------------------------------------------------------------------------------- tables


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path, rows: list[dict]) -> None:
    """Write ``rows`` (floats with 6 significant digits) atomically; nothing for no rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)


def run_rows(rows: list[dict]) -> list[dict]:
    """One table row per run: its arm fields, seed and :data:`RUN_COLUMNS`."""
    out = []
    for r in rows:
        arm = _arm(r)
        d = {"arm": arm_label(arm), **dict(zip(ARM_FIELDS, arm)), "seed": int(r["seed"])}
        d.update({c: r.get(c, "") for c in RUN_COLUMNS})
        out.append(d)
    return out


def _by_arm(rows: list[dict]) -> dict[tuple, dict[int, dict]]:
    by: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        by[_arm(r)][int(r["seed"])] = r
    return by


def summary_rows(rows: list[dict]) -> list[dict]:
    """One row per arm: seeds, the metric's mean and 95 % t interval, collapses, and the
    means of the logged signals; ``lr_breaks`` for N = 1 arms (see :data:`LR_DROP`)."""
    out = []
    for arm, seeds in sorted(_by_arm(rows).items(), key=lambda kv: arm_label(kv[0])):
        rs = [seeds[s] for s in sorted(seeds)]
        m, lo, hi = t_interval([_f(r["heldout_last_k"]) for r in rs])
        gain = [_f(r["heldout_last_k"]) - _f(r["initial_heldout"]) for r in rs]
        d = {
            "arm": arm_label(arm),
            **dict(zip(ARM_FIELDS, arm)),
            "seeds": len(rs),
            "initial_heldout": _f(rs[0]["initial_heldout"]),
            "metric_mean": m,
            "metric_lo": lo,
            "metric_hi": hi,
            "gain_mean": math.fsum(gain) / len(gain),
            "collapsed": sum(_true(r["collapsed"]) for r in rs),
        }
        for c in (
            "final_entropy",
            "max_response_length",
            "max_grad_norm",
            "max_ppo_kl",
            "mean_coef_neg",
            "mean_ess_frac",
        ):
            vals = [_f(r.get(c)) for r in rs]
            vals = [v for v in vals if math.isfinite(v)]
            d[c] = math.fsum(vals) / len(vals) if vals else math.nan
        if arm[ARM_FIELDS.index("staleness")] == 1:
            d["lr_breaks"] = d["collapsed"] > 0 or d["gain_mean"] < -LR_DROP
        else:
            d["lr_breaks"] = ""
        out.append(d)
    return out


def _metric(row: dict, name: str) -> float:
    """A run's value of a comparison metric: a results column, or ``coef_neg_over_pos`` (the
    run's mean coefficient on A < 0 rows over that on A >= 0 rows: a rule's own 1/T or other
    scale cancels, so rules can be compared; > 1 means negatives weigh more than positives)."""
    if name == "coef_neg_over_pos":
        return _neg_over_pos(row.get("mean_coef_neg"), row.get("mean_coef_pos"))
    return _f(row.get(name))


def _neg_over_pos(neg, pos) -> float:
    """``neg / pos`` of two cells (a mean coefficient on A < 0 and on A >= 0 rows); NaN where
    either is missing or ``pos`` is 0 (never inf)."""
    neg, pos = _f(neg), _f(pos)
    return neg / pos if math.isfinite(neg) and math.isfinite(pos) and pos != 0 else math.nan


def paired_rows(block: str, rows: list[dict]) -> list[dict]:
    """The block's comparisons on ``rows``: paired by seed, 95 % t interval, outcome."""
    by = _by_arm(rows)
    out = []
    for c in comparisons(block):
        a, b = by.get(c["a"], {}), by.get(c["b"], {})
        seeds = sorted(set(a) & set(b))
        diffs = [_metric(a[s], c["metric"]) - _metric(b[s], c["metric"]) for s in seeds]
        diffs = [x for x in diffs if math.isfinite(x)]
        m, lo, hi = t_interval(diffs)
        if not diffs or not math.isfinite(lo):
            outcome = "missing" if not diffs else "inconclusive"
        elif lo > 0 or hi < 0:
            outcome = "favourable" if (lo > 0) == (c["sign"] > 0) else "unfavourable"
        else:
            outcome = "inconclusive"
        out.append(
            {
                "claim": c["claim"],
                "comparison": c["label"],
                "rule_a": c["a"][ARM_FIELDS.index("rule")],
                "rule_b": c["b"][ARM_FIELDS.index("rule")],
                "metric": c["metric"],
                "expected": "A > B" if c["sign"] > 0 else "A < B",
                "primary": c["primary"],
                "seeds": len(diffs),
                "exploratory": len(diffs) < HEADLINE_SEEDS,
                "diff": m,
                "lo": lo,
                "hi": hi,
                "outcome": outcome,
            }
        )
    return out


# ---------------------------------------------------------------------------------- verdicts

# claim -> (statement at this scale, rule name, what LM scale would need)
CLAIMS = {
    "S1": (
        "VESPO stays stable across staleness N where GRPO, GSPO and SAPO degrade",
        "majority",
        "a >= 1B model, long responses, N = 4..64 over >= 1,000 steps (the paper's 30B run)",
    ),
    "S2": (
        "the baselines fail as the paper says: GRPO entropy falls, GSPO responses lengthen, "
        "SAPO under-suppresses A < 0",
        "all",
        "runs long enough to collapse (the paper's collapses come after 300-1,200 steps)",
    ),
    "S3": (
        "length normalisation hurts: VESPO beats VESPO_lin and VESPO_sqrt",
        "all",
        "responses of thousands of tokens, where 1/T and 1/sqrt(T) flatten the kernel",
    ),
    "S4": (
        "asymmetry matters: VESPO's (2,3)/(3,2) beats both symmetric settings",
        "all",
        "the paper's length and staleness; differences of a few points need many seeds",
    ),
    "S5": (
        "under train-inference (routing) mismatch VESPO beats GRPO and TIS or R2 help GRPO",
        "any_of_first_plus",
        "a real MoE with an inference engine (vLLM/SGLang) whose routing differs from training",
    ),
    "S6": (
        "VESPO beats TOPR, CISPO, BAPO (and VCPO) at N = 8",
        "majority",
        "the paper's model and length; VCPO's step needs per-sequence gradients at that scale",
    ),
    "S7": (
        "the same (k, lambda) transfer to an execution-rewarded task",
        "majority",
        "real code generation with unit tests (pass@k), a code-pretrained model",
    ),
    "S8": (
        "VESPO beats or ties GRPO at every model size (N = 8)",
        "sizes",
        "three sizes from ~1B to ~30B parameters",
    ),
}


def broken_rules(summaries: list[dict]) -> list[str]:
    """Rules that break on-policy at the protocol's step size: an N = 1 arm of the plain
    protocol (task add, d_model 64, no mismatch, dense, no async lag) with ``lr_breaks`` true."""
    out = set()
    for r in summaries:
        plain = (
            r.get("task", "add") == "add"
            and str(r.get("d_model", "64")) == "64"
            and r.get("mismatch", "none") == "none"
            and str(r.get("n_expert", "0")) == "0"
            and str(r.get("async_lag", "0") or "0") == "0"
            and str(r.get("staleness")) == "1"
        )
        if plain and _true(r.get("lr_breaks")):
            out.add(r["rule"])
    return sorted(out)


def verdict(claim: str, paired: list[dict], broken: list[str] | tuple = ()) -> dict:
    """The verdict of ``claim`` from its primary comparisons (see docs/lm.md for the rules):

    * majority (S1, S6, S7): supported if >= 2 (S6: >= 3) are favourable and none unfavourable;
      partly if >= 1 is favourable; otherwise not reproduced;
    * all (S2, S3, S4): supported if every one is favourable; partly if >= 1; else not;
    * any_of_first_plus (S5): supported if the first (VESPO - GRPO) and >= 1 other are
      favourable; partly if >= 1 is; else not;
    * sizes (S8): supported if >= 2 sizes are favourable and none unfavourable; partly if
      >= 1 is favourable or every mean difference is >= 0; else not.

    A claim whose primary comparisons are all missing is "not run". A comparison with a rule
    in ``broken`` (:func:`broken_rules`: it breaks on-policy at the protocol's step size) is
    not judged: it is left out, and named in ``not_judged``.
    """
    rows = [p for p in paired if p["claim"] == claim and _true(p["primary"])]
    rows = [p for p in rows if p["outcome"] != "missing"]
    skip = [p for p in rows if p.get("rule_a") in broken or p.get("rule_b") in broken]
    rows = [p for p in rows if p not in skip]
    statement, rule, need = CLAIMS[claim]
    not_judged = "; ".join(p["comparison"] for p in skip)
    if not rows:
        v = "not judged" if skip else "not run"
        return {
            "claim": claim,
            "verdict": v,
            "statement": statement,
            "need": need,
            "not_judged": not_judged,
        }
    fav = sum(p["outcome"] == "favourable" for p in rows)
    unf = sum(p["outcome"] == "unfavourable" for p in rows)
    if rule == "majority":
        need_fav = 3 if claim == "S6" else 2
        v = "supported" if fav >= need_fav and unf == 0 else ("partly" if fav else "not reproduced")
    elif rule == "all":
        v = "supported" if fav == len(rows) else ("partly" if fav else "not reproduced")
    elif rule == "any_of_first_plus":
        first = rows[0]["outcome"] == "favourable"
        v = "supported" if first and fav >= 2 else ("partly" if fav else "not reproduced")
    else:  # sizes
        nonneg = all(_f(p["diff"]) >= 0 for p in rows)
        if fav >= 2 and unf == 0:
            v = "supported"
        else:
            v = "partly" if (fav or nonneg) else "not reproduced"
    best = max(rows, key=lambda p: abs(_f(p["diff"])))
    return {
        "claim": claim,
        "verdict": v,
        "favourable": fav,
        "unfavourable": unf,
        "primary": len(rows),
        "seeds": min(int(p["seeds"]) for p in rows),
        "exploratory": any(_true(p["exploratory"]) for p in rows),
        "largest_effect": best["comparison"],
        "effect": _f(best["diff"]),
        "effect_lo": _f(best["lo"]),
        "effect_hi": _f(best["hi"]),
        "statement": statement,
        "need": need,
        "not_judged": not_judged,
    }


# ----------------------------------------------------------------------------------- curves


def curve_rows(rows: list[dict], runs_dir: Path) -> list[dict]:
    """Per arm and step: the mean over seeds of :data:`CURVE_COLUMNS` and, as ``<col>_hw``,
    the half-width of its 95 % Student-t interval (NaN for one seed), with ``seeds`` (every
    :data:`CURVE_EVERY` steps, at step 1 and at every evaluation), from each run's
    ``metrics.csv`` under ``runs_dir`` (the sweep's run folders, by run key)."""
    from dataclasses import fields

    from simulations.lm.rl import LMRunConfig, run_key

    names = {f.name for f in fields(LMRunConfig)}
    acc: dict[tuple, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in rows:
        cfg = LMRunConfig(**_cfg_kwargs(r, names))
        path = runs_dir / run_key(cfg)[:16] / "metrics.csv"
        if not path.exists():
            raise FileNotFoundError(f"run of {arm_label(_arm(r))} seed {r['seed']}: no {path}")
        for m in read_csv(path):
            step = int(m["step"])
            if not (step == 1 or step % CURVE_EVERY == 0 or m["heldout_success"] != ""):
                continue
            # the per-step form of the S2 metric (a rule's own 1/T or other scale cancels)
            ratio = _neg_over_pos(m.get("coef_neg_mean"), m.get("coef_pos_mean"))
            m = dict(m, coef_neg_over_pos=ratio)
            for c in CURVE_COLUMNS:
                v = _f(m.get(c))
                if math.isfinite(v):
                    acc[_arm(r)][step][c].append(v)
    out = []
    for arm in sorted(acc, key=arm_label):
        for step in sorted(acc[arm]):
            d = {"arm": arm_label(arm), **dict(zip(ARM_FIELDS, arm)), "step": step}
            for c in CURVE_COLUMNS:
                m, lo, hi = t_interval(acc[arm][step][c])
                d[c] = m
                d[f"{c}_hw"] = (hi - m) if math.isfinite(hi) else math.nan
            d["seeds"] = max(len(v) for v in acc[arm][step].values())
            out.append(d)
    return out


def _cfg_kwargs(row: dict, names: set) -> dict:
    """LMRunConfig fields of a sweep results row (strings parsed to the field's type)."""
    from dataclasses import fields

    from simulations.lm.rl import LMRunConfig

    types = {f.name: f.default for f in fields(LMRunConfig)}
    kw = {}
    for k in names:
        if k not in row or row[k] == "":
            continue
        v, d = row[k], types[k]
        if isinstance(d, bool):
            kw[k] = _true(v)
        elif isinstance(d, int):
            kw[k] = int(float(v))
        elif isinstance(d, float):
            kw[k] = float(v)
        else:
            kw[k] = v
    return kw


def write_block_tables(block: str, results_csv, dest, runs_dir, *, tag: str | None = None) -> dict:
    """Write the block's tables into ``dest`` (``<tag>.results/summary/paired/curves.csv``,
    ``tag`` default the block) from the sweep's ``results.csv``. Returns ``{"results",
    "summary", "paired"}`` row lists."""
    dest = Path(dest)
    tag = tag or block
    rows = read_csv(results_csv)
    res = run_rows(rows)
    summ = summary_rows(rows)
    pair = paired_rows(block, rows)
    write_csv(dest / f"{tag}.results.csv", res)
    write_csv(dest / f"{tag}.summary.csv", summ)
    write_csv(dest / f"{tag}.paired.csv", pair)
    write_csv(dest / f"{tag}.curves.csv", curve_rows(rows, Path(runs_dir)))
    return {"results": res, "summary": summ, "paired": pair}
