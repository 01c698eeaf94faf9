"""No silent wrong answers: non-finite rewards refused, ESS in log space, unusable output
folders as one line, progress only on a terminal and never under --json."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from scipy.special import logsumexp

from simulations.config import ARConfig, BanditConfig, resolve_rules
from simulations.estimators import log_ess_fraction, rule_results, weight_summary
from simulations.tabular import SequenceBatch, model_from_probs
from vespo_theory.cli import main


def _one_line_exit_2(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize("bad", ["inf", "nan", "-inf"])
def test_non_finite_reward_is_refused(capsys, bad):
    _one_line_exit_2(
        capsys, ["simulate", "ar", "--V", "3", "--T", "2", f"--reward={bad},0,1"], "--reward"
    )
    _one_line_exit_2(
        capsys,
        ["simulate", "bandit", "--mu", "0.5,0.5", "--pi", "0.4,0.6", f"--reward=1,{bad}"],
        "--reward",
    )
    with pytest.raises(ValueError, match="reward .* must be finite"):
        ARConfig(V=2, reward=(1.0, float(bad)))
    with pytest.raises(ValueError, match="reward .* must be finite"):
        BanditConfig(mu=(0.5, 0.5), pi=(0.5, 0.5), reward=(float(bad), 0.0))
    with pytest.raises(ValueError, match="reward .* must be finite"):
        model_from_probs([0.5, 0.5], [0.4, 0.6], 1, reward=[float(bad), 0.0])


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "bandit", "--reward=1e300,-1e300,0", "--n-mc", "500"],
        ["simulate", "ar", "--V", "3", "--T", "3", "--reward=1e300,0,1", "--rules", "vespo"],
        [
            "simulate",
            "ar",
            "--V",
            "3",
            "--T",
            "3",
            "--reward=1e300,0,1",
            "--method",
            "mc",
            "--n-mc",
            "500",
            "--policy",
            "markov",
        ],
    ],
    ids=["bandit", "enumeration", "mc"],
)
def test_overflow_is_refused_not_a_nan_table(capsys, argv):
    """Finite but huge rewards overflow float64 (inf - inf): one line, no NaN, no warnings."""
    _one_line_exit_2(capsys, argv, "is NaN: the statistics overflow float64", "--reward")


def _underflowing_batch(n=4000, weight=None):
    """Sequence log-weights around -1e6 (V = 32000, T = 1e6 territory: exp() is 0 for every
    one), spread N(0, 1.5^2) so that the true ESS/n is about exp(-1.5^2) = 0.105."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.5, size=n)
    lr = (-1e6 + x)[:, None]
    zeros = np.zeros((n, 1), dtype=np.int64)
    mask = np.ones((n, 1), dtype=bool)
    return x, SequenceBatch(zeros, zeros, mask, lr, weight)


def _kish_fraction(x):
    w = np.exp(x - x.max())  # relative weights: finite, the ESS only depends on ratios
    return float(w.sum() ** 2 / (w * w).sum() / x.size)


def test_ess_of_underflowing_weights_is_right_not_zero():
    _, batch = _underflowing_batch()
    x = batch.seq_log_w + 1e6  # the stored log-weights, shifted back exactly (Sterbenz)
    want = _kish_fraction(x)
    assert 0.05 < want < 0.2  # the regime of the issue: ESS/n ~ 0.1, raw weights all 0
    assert np.all(np.exp(batch.seq_log_w) == 0.0)
    # IS: log ESS = 2 LSE(l) - LSE(2 l) with l ~ -1e6: each LSE is stored with absolute
    # rounding <= ulp(2e6) / 2 = 1.2e-10, so log ESS (and the relative ESS) errs by <= 3.5e-10
    # (5e-11 seen): rel 1e-9. The old code gave 0.
    assert weight_summary(batch)["ess_W"] == pytest.approx(want, rel=1e-9)
    model = model_from_probs([0.5, 0.5], [0.4, 0.6], 1)
    adv = np.ones(batch.n)
    recs = rule_results(model, batch, adv, resolve_rules(["is", "vespo"]), np.zeros(2), "mc")
    assert recs[0]["ess"] == pytest.approx(want, rel=1e-9)  # IS: the raw weights' ESS, as above
    # VESPO: log phi = k log W + lam (1 - W) with W = 0, k = 2 (A >= 0): the ESS of 2 x. Adding
    # lam = 3 to 2 log W ~ -2e6 rounds each log phi by <= ulp(2e6) / 2 = 1.2e-10 (log ESS moves
    # by <= 4 x that = 4.7e-10), and the LSEs of l ~ -2e6, -4e6 add <= 3 x ulp(4e6) / 2 =
    # 7e-10: rel 2e-9.
    assert recs[1]["ess"] == pytest.approx(_kish_fraction(2.0 * x), rel=2e-9)


def test_exact_ess_of_underflowing_weights():
    p = np.random.default_rng(1).dirichlet(np.ones(500))
    _, batch = _underflowing_batch(n=500, weight=p)
    x = batch.seq_log_w + 1e6  # exact shift back (Sterbenz): ratios of W are unchanged
    lw = np.log(p)
    want = math.exp(2 * logsumexp(lw + x) - logsumexp(lw + 2 * x))
    assert 0.05 < want < 0.5
    # the same formula evaluated at -1e6 + x: each lw + x term rounds by <= ulp(1e6) / 2 =
    # 5.8e-11 (log ratio moved by <= 4 x that = 2.3e-10) and the LSEs of values ~ -1e6, -2e6
    # are stored to <= 3 x ulp(2e6) / 2 = 3.5e-10: rel 1e-9
    assert weight_summary(batch)["ess_W"] == pytest.approx(want, rel=1e-9)
    assert log_ess_fraction(np.full(3, -np.inf), np.ones(3) / 3) == 0.0


def test_unusable_out_is_one_line(capsys, tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"kind": "bandit", "grid": {"seed": [0]}, "n_mc": 100}))
    _one_line_exit_2(capsys, ["sweep", str(cfg), "--out", str(a_file)], "--out", "is not a folder")
    _one_line_exit_2(
        capsys, ["sweep", str(cfg), "--out", str(a_file / "sub")], "--out", "cannot create"
    )
    pytest.importorskip("hypothesis")
    argv = ["falsify", "--claim", "M1", "--budget", "1", "--report", str(a_file)]
    _one_line_exit_2(capsys, argv, "--report", "is not a folder")


def test_sweep_into_another_sweeps_out_is_refused(capsys, tmp_path):
    out = str(tmp_path / "o")
    paths = []
    for i, seed in enumerate(([0], [1])):
        p = tmp_path / f"s{i}.json"
        p.write_text(json.dumps({"kind": "bandit", "grid": {"seed": seed}, "n_mc": 100}))
        paths.append(str(p))
    base = ["--out", out, "--backend", "serial", "--quiet"]
    assert main(["sweep", paths[0], *base]) == 0
    capsys.readouterr()
    _one_line_exit_2(capsys, ["sweep", paths[1], *base], "different config", "--overwrite")
    assert main(["sweep", paths[1], *base, "--overwrite"]) == 0
    assert "1 computed" in capsys.readouterr().out


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_not_with_json(capsys, monkeypatch):
    argv = ["simulate", "ar", "--V", "3", "--T", "3", "--rules", "vespo,is"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no bar
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(argv) == 0
    assert "simulate ar" in tty.getvalue()  # the bar, on the terminal
    tty.seek(0)
    tty.truncate()
    assert main([*argv, "--json"]) == 0
    assert tty.getvalue() == ""


def test_sweep_bar_obeys_the_same_rule(capsys, monkeypatch, tmp_path):
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"kind": "bandit", "grid": {"seed": [0]}, "n_mc": 100}))
    argv = ["sweep", str(cfg), "--backend", "serial", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == ""
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "cells" in tty.getvalue()
