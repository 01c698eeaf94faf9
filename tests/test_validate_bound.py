"""``vespo validate-bound`` (simulations.lm.validate) on a tiny built-in model: B3 in every bin,
P4, G1, the JSON records, resume, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulations.lm.tasks import Task
from simulations.lm.validate import RECORD_KEYS, ValidateConfig, l1_fit, run_validate
from vespo_theory.cli import main

# A tiny warm start (16 wide, 5 steps) on the easy task, cached in a temporary folder.
TINY = ["--task", "reverse-short", "--prompts", "4", "--group-size", "4", "--rl-steps", "1"]
TINY += ["--sft-steps", "5", "--d-model", "16", "--device", "cpu", "--no-progress"]
TINY += ["--rules", "vespo,is,ppo_clip"]
RULES = ("vespo", "is", "reinforce", "seq_tis", "ppo_clip")


@pytest.fixture(autouse=True)
def _one_thread():
    # one thread, as the LM lab runs (run_validate sets it itself; the checks here too)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _odd_length_reward(self, prompt, response):
    # a random model never reverses digits; reward odd-length responses instead, so that the
    # group advantages are non-zero and the RL steps move pi away from mu
    return float(len(response) % 2 == 1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vb")
    cfg = ValidateConfig(
        task="reverse-short",
        rules=RULES,
        prompts=12,
        group_size=4,
        rl_steps=3,
        chunk=8,
        extra={"sft_steps": 5, "d_model": 16, "lr": 0.05},
    )
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Task, "reward", _odd_length_reward)
        res = run_validate(cfg, root / "out", device="cpu", cache_dir=root / "cache")
    assert torch.get_num_threads() == before  # restored
    return cfg, root, res


def test_records_cover_every_rule_and_bin(tiny_run):
    cfg, _, res = tiny_run
    recs = res["records"]
    assert [r["rule"] for r in recs if r["length_bin"] == "all"] == list(RULES)
    for rule in RULES:
        rows = [r for r in recs if r["rule"] == rule]
        assert sum(r["n"] for r in rows if r["length_bin"] != "all") == cfg.n
        assert {r["length_bin"] for r in rows} >= {"all"} and len(rows) >= 3
    vespo_all = next(r for r in recs if r["rule"] == "vespo" and r["length_bin"] == "all")
    assert vespo_all["log_w_std"] > 0.01  # pi moved: W is not 1
    assert vespo_all["E_g2"] > 0  # non-zero advantages


def test_b3_holds_in_every_bin(tiny_run):
    _, _, res = tiny_run
    for r in res["records"]:
        if r["bound_B3"] is None:  # IS (unbounded) and token-level rules: no B3
            assert r["rule"] in ("is", "ppo_clip") and r["tightness"] is None
            continue
        # var_trace = E||x||^2 - ||mean x||^2 <= E||x||^2 exactly but for float64 rounding of
        # the subtraction (1e-16 relative), and E||x||^2 = mean c^2 A^2 ||g||^2 <= M^2 E||Ag||^2
        # with c <= M up to the rounding of c near its argmax (~1e-15 relative): 1e-12 is
        # 1000x both
        assert r["var_trace"] <= r["E_phi2_g2"] * (1 + 1e-12) + 1e-300
        assert r["E_phi2_g2"] <= r["bound_B3"] * (1 + 1e-12) + 1e-300
        assert r["var_trace"] >= -1e-9 * max(r["E_phi2_g2"], 1e-300)  # a variance
        if r["bound_B3"] > 0:
            assert 0 <= r["tightness"] <= 1 + 1e-12


def test_p4_and_g1_quantities(tiny_run):
    _, _, res = tiny_run
    for r in res["records"]:
        if r["rule"] != "vespo":
            assert r["K_E_phiW"] is None  # null (NaN) off VESPO
            continue
        # phi^2 <= K phi W pointwise (P4), float64 rounding of exp/log: 1e-12 relative
        assert r["E_phi2"] <= r["K_E_phiW"] * (1 + 1e-12)
        assert r["E_phi2_g2"] <= r["K_E_phiW_g2"] * (1 + 1e-12) + 1e-300
        assert r["E_phi2"] <= r["M2"] * (1 + 1e-12)
        if r["length_bin"] == "all":
            # the group-mean variance is at most the per-sample E||x||^2 (Jensen), so at most
            # B3's bound without the /G (G1's bound); the same rounding margin as B3
            assert r["var_group_mean"] <= r["bound_B3"] * (1 + 1e-12)
            assert r["n_groups"] == 12
            assert math.isclose(r["bound_iid_G"], r["bound_B3"] / 4, rel_tol=1e-15)
            assert r["l1_slope_lo"] <= r["l1_slope"] <= r["l1_slope_hi"]
        else:
            assert r["g1_ratio"] is None


def test_exact_variance_from_the_gradients(tiny_run):
    # recompute one rule's var_trace from the cached batch with plain per-sample gradients
    from simulations.lm.grads import per_sample_grads, trace_cov
    from simulations.lm.rl import build_model
    from simulations.lm.validate import _rollout
    from vespo_theory.rules import get_rule

    cfg, root, res = tiny_run
    out = root / "out"
    s = torch.load(out / "samples.pt", weights_only=False)
    pi, _ = build_model(cfg.rl_config(), torch.device("cpu"), cache_dir=root / "cache")
    pi.load_state_dict(torch.load(out / "train" / "checkpoint.pt", weights_only=False)["model"])
    G = per_sample_grads(pi, _rollout(s, "cpu"), method="loop").double()
    mask = s["response_mask"].double()
    tok_lr = ((s["log_pi"].double() - s["log_mu"].double()) * mask).numpy()
    adv = s["adv"].double().numpy()
    c = get_rule("vespo").coefficient(tok_lr, mask.numpy() > 0, adv)[:, 0]
    want = trace_cov(G, c * adv)
    got = next(r for r in res["records"] if r["rule"] == "vespo" and r["length_bin"] == "all")
    # float32 gradients by another path (loop vs vmap): ~1e-7 relative per entry (see
    # test_lm_grads); tr Cov is a difference of two sums of squares of them, so its relative
    # rounding grows by E||x||^2 / tr Cov (printed if it fails)
    ratio = got["E_phi2_g2"] / max(got["var_trace"], 1e-300)
    assert math.isclose(got["var_trace"], want, rel_tol=1e-5 * max(ratio, 1.0)), ratio


def test_same_seed_same_numbers(tiny_run, tmp_path):
    cfg, root, res = tiny_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Task, "reward", _odd_length_reward)
        again = run_validate(cfg, tmp_path / "o", device="cpu", cache_dir=root / "cache")
    assert again["records"] == res["records"]  # one thread, deterministic: bit for bit


def test_l1_fit_interval():
    rng = np.random.default_rng(0)
    T = rng.integers(1, 100, size=400)
    y = 3.0 + 2.0 * T + rng.normal(0, 1, size=T.size) * T  # heteroscedastic noise
    f = l1_fit(T, y)
    assert f["slope_lo"] < 2.0 < f["slope_hi"] and f["intercept_lo"] < 3.0 < f["intercept_hi"]
    assert math.isnan(l1_fit([3, 3, 3], [1.0, 2.0, 3.0])["slope"])


# ------------------------------------------------------------------------------ the CLI


def test_cli_json_csv_sidecar_and_resume(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["validate-bound", *TINY, "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert isinstance(recs, list) and {r["rule"] for r in recs} == {"vespo", "is", "ppo_clip"}
    for k in ("rule", "length_bin", "n", "mean_T", "var_trace", "E_phi2_g2", "E_g2"):
        assert all(k in r for r in recs)
    for k in ("bound_B3", "tightness", "K_E_phiW"):
        assert all(k in r for r in recs)
    assert set(recs[0]) == set(RECORD_KEYS)
    assert (out / "validate.csv").read_text().splitlines()[0].split(",") == RECORD_KEYS
    side = json.loads((out / "validate.json").read_text())
    assert side["config"]["validate"]["task"] == "reverse-short" and side["git_sha"] is not None
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()}
    # the rerun skips every finished rule, and computes only the one added
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == recs
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == stamps
    argv2 = [a if a != "vespo,is,ppo_clip" else "vespo,is,ppo_clip,seq_tis" for a in argv]
    assert main(argv2) == 0
    text = capsys.readouterr().out
    assert "from the cache in" in text and "vespo, is, ppo_clip" in text and "L1:" in text
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == stamps | {
        "seq_tis.json": (out / "records" / "seq_tis.json").stat().st_mtime_ns
    }
    # other settings in the same --out are refused
    argv3 = [a if a != "--seed" else a for a in argv] + ["--seed", "5"]
    assert main(argv3) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--rules", "vespo,nope"], "--rules: unknown rule 'nope'"),
        (["--prompts", "0"], "--prompts must be an integer >= 1"),
        (["--group-size", "1"], "--group-size must be an integer >= 2"),
        (["--grad-method", "magic"], "--grad-method"),
        (["--sketch-dim", "0"], "--sketch-dim"),
        (["--sketch-kind", "sparse"], "--sketch-kind"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--model", "/no/such"], "--model and --later-model go together"),
        (["--model", "/no/a", "--later-model", "/no/b"], "--model: path '/no/a' does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, match, tmp_path, capsys):
    argv = ["validate-bound", *TINY, *extra, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vespo validate-bound: error:") and "\n" not in err
    assert match in err


def test_missing_out_and_memory_limit(tmp_path, capsys):
    assert main(["validate-bound", *TINY]) == 2
    assert "--out is required" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["validate-bound", *TINY, "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err
    argv = ["--memory-limit", "1K", "validate-bound", *TINY, "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "per-sample gradients" in err and "memory limit" in err and "\n" not in err.strip()


def test_fast_is_the_long_task_with_its_warm_start_and_options_win():
    """--fast: count-long (responses of 100-1,024 tokens) with the long study's warm-start
    settings (so both share one cached warm start); options given explicitly win; without
    --fast the default task is add and nothing is added to the warm start."""
    import argparse

    from simulations.cli.validate_bound import add_arguments, config_from_args
    from simulations.lm.validate import TASK_EXTRA

    p = argparse.ArgumentParser()
    add_arguments(p)
    fast = config_from_args(p.parse_args(["--fast", "--out", "x"]))
    assert (fast.task, fast.prompts, fast.group_size, fast.rl_steps) == ("count-long", 32, 4, 8)
    assert fast.extra == TASK_EXTRA["count-long"]
    assert fast.rl_config().attn == "sdpa" and fast.rl_config().sft_steps == 400
    own = config_from_args(
        p.parse_args(["--fast", "--out", "x", "--task", "add", "--group-size", "8"])
    )
    assert (own.task, own.group_size, own.prompts) == ("add", 8, 32) and own.extra == {}
    plain = config_from_args(p.parse_args(["--out", "x", "--sft-steps", "5"]))
    assert (plain.task, plain.prompts, plain.group_size) == ("add", 256, 8)
    assert plain.extra == {"sft_steps": 5}
