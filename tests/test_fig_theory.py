"""The theory figures: each figure's plotted arrays equal the exact simulators' numbers, and the
independent checks below (enumeration, closed forms) agree with those numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

EPS = float(np.finfo(np.float64).eps)


def _line_data(fig):
    """label -> y data of every labelled line of every axes."""
    out = {}
    for ax in fig.axes:
        for ln in ax.get_lines():
            lab = ln.get_label()
            if lab and not lab.startswith("_"):
                out[(ax.get_title(), lab)] = (
                    np.asarray(ln.get_xdata()),
                    np.asarray(ln.get_ydata()),
                )
    return out


# ------------------------------------------------------------------------------ theory_length
@pytest.fixture(scope="module")
def length_data():
    from paper_figures import theory_length as mod

    return mod.compute(mod.resolve_config(T=[1, 4, 64, 1024]))


def test_length_arrays_are_the_lattice_records(length_data):
    from paper_figures import theory_length as mod
    from simulations.runners import simulate_ar

    cfg = length_data["config"]
    for i, T in enumerate(cfg["T"]):
        res = simulate_ar(mod.model_config(cfg, T), ["is", "vespo"], method="lattice")
        rec = {r["rule"]: r for r in res["rules"]}
        assert length_data["E_phi"][i] == rec["vespo"]["E_phi"]
        assert length_data["E_phi2"][i] == rec["vespo"]["E_phi2"]
        assert length_data["var_vespo"][i] == rec["vespo"]["var_trace"]
        assert length_data["var_is"][i] == rec["is"]["var_trace"]
        assert length_data["log_E_W2"][i] == res["summary"]["log_E_W2"]
        assert length_data["B3_bound"][i] == rec["vespo"]["bound_M2"] * res["summary"]["E_g2"]
    # K = e^2 / 3 for (2, 3) (claim P4)
    assert float(length_data["K"]) == pytest.approx(math.e**2 / 3, rel=4 * EPS)


def test_length_e_phi_w_matches_enumeration_and_the_bounds_hold(length_data):
    """E[phi W] from the lattice against brute-force enumeration at T = 4 (8^4 sequences), and
    the bounds B2 and P4 hold at every T (they are theorems; a violation is a bug)."""
    from paper_figures import theory_length as mod
    from simulations.tabular import enumerate_sequences, make_ar_model
    from vespo_theory.kernels import phi

    cfg = length_data["config"]
    batch = enumerate_sequences(make_ar_model(mod.model_config(cfg, 4)))
    lw = batch.seq_log_w
    brute = float(np.sum(batch.weight * phi(lw, 2, 3) * np.exp(lw)))
    # lattice vs enumeration: both exact to float64 summation; the lattice's error statement at
    # T = 4 is ~3e-14 absolute (FFT round-off), 4096 terms of enumeration add ~4096 eps relative
    assert length_data["E_phiW"][1] == pytest.approx(brute, abs=1e-12)
    assert np.all(length_data["E_phi2"] <= length_data["M2"] * length_data["E_phi"] * (1 + 1e-12))
    assert np.all(length_data["E_phi2"] <= length_data["K_E_phiW"] * (1 + 1e-12))
    # M2 of IS: log E[W^2] is T log E_mu[r^2], exactly linear in T
    slope = length_data["log_E_W2"] / length_data["T"]
    np.testing.assert_allclose(slope, slope[0], rtol=1e-12)


def test_length_plot_draws_the_arrays(length_data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_length as mod
    from paper_figures._style import quantity

    fig = mod.plot(length_data)
    try:
        lines = _line_data(fig)
        for key in ("E_W2", "M2", "K_E_phiW", "E_phi", "E_phi2"):
            ((x, y),) = [v for (t, lab), v in lines.items() if lab == quantity(key)["label"]]
            np.testing.assert_array_equal(x, length_data["T"])
            np.testing.assert_array_equal(y, length_data[key])
        ((x, y),) = [v for (t, lab), v in lines.items() if lab == quantity("var_vespo")["label"]]
        np.testing.assert_array_equal(y, length_data["var_vespo"])
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------- theory_decay
@pytest.fixture(scope="module")
def decay_data():
    from paper_figures import theory_decay as mod

    return mod.compute(mod.resolve_config(T=[1, 16, 256, 4096]))


def test_decay_arrays_are_the_binomial_sums_and_d1_holds(decay_data):
    from scipy.stats import binom

    from paper_figures import theory_decay as mod
    from simulations.multinomial import log_expectation
    from vespo_theory import variational as var
    from vespo_theory.kernels import log_phi

    cfg = decay_data["config"]
    for i, (mu, pi) in enumerate(mod.token_laws(cfg)):
        for j, T in enumerate(cfg["T"]):
            got = log_expectation(np.log(mu), np.log(pi), T, lambda x: log_phi(x, 2, 3))
            assert decay_data["log_E_phi"][i, j] == got
            # independent: the binomial sum written out (m tokens of the second value)
            m = np.arange(T + 1)
            lw = m * math.log(pi[1] / mu[1]) + (T - m) * math.log(pi[0] / mu[0])
            terms = binom.logpmf(m, T, mu[1]) + np.asarray(log_phi(lw, 2, 3))
            ref = float(np.logaddexp.reduce(terms))
            # log-space sums of T + 1 terms: each term carries ~eps |log term| (<= ~700), the
            # log-sum-exp adds log(T + 1) eps: 1e-10 absolute in log E covers both
            assert decay_data["log_E_phi"][i, j] == pytest.approx(ref, abs=1e-10)
            # D1's finite-T bound holds at every T (a theorem: 1e-12 relative for rounding)
            assert decay_data["log_E_phi"][i, j] <= decay_data["log_D1_bound"][i, j] + 1e-12
        c, s = var.chernoff_information(mu, pi)
        assert decay_data["chernoff"][i] == c
        # the minimiser against a grid search over s (log Z is smooth: 1e-5 grid is enough to
        # pin the minimum value to ~1e-10)
        grid = np.linspace(0, 1, 100001)
        lz = var.log_path_normaliser(mu, pi, grid)
        assert -lz.min() == pytest.approx(c, rel=1e-8)
    # the rate approaches C from above; at T = 4096 within 15% for the largest drift
    assert np.all(decay_data["rate"][:, -1] >= decay_data["chernoff"] * (1 - 1e-9))
    assert decay_data["rate"][-1, -1] == pytest.approx(decay_data["chernoff"][-1], rel=0.15)


def test_decay_plot_draws_the_arrays(decay_data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_decay as mod

    fig = mod.plot(decay_data)
    try:
        lines = _line_data(fig)
        for i, d in enumerate(decay_data["drifts"]):
            ((x, y),) = [
                v for (t, lab), v in lines.items() if lab == rf"$E_\mu[\varphi]$, $d$ = {d:g}"
            ]
            np.testing.assert_array_equal(y, decay_data["E_phi"][i])
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------ theory_bounds
@pytest.fixture(scope="module")
def bounds_data():
    from paper_figures import theory_bounds as mod

    cfg = mod.resolve_config(scenarios=[s for s in mod.SCENARIOS if s["T"] <= 64][:4])
    return mod.compute(cfg)


def test_bounds_ratios_are_the_simulator_records_and_never_exceed_one(bounds_data):
    from paper_figures import theory_bounds as mod
    from simulations.runners import simulate_ar

    cfg = bounds_data["config"]
    for i, sc in enumerate(cfg["scenarios"]):
        (rec,) = simulate_ar(mod.scenario_config(cfg, sc), ["vespo"], method="exact")["rules"]
        b = rec["bounds"]
        assert bounds_data["E_phi2"][i] == b["B2"]["observed"]
        assert bounds_data["B2_ratio"][i] == b["B2"]["observed"] / b["B2"]["bound"]
        assert bounds_data["B3_ratio"][i] == b["B3"]["observed"] / b["B3"]["bound"]
    # theorems: observed <= bound (1e-9 relative: the simulator's own summation slack)
    for key in ("B2_ratio", "B2b_ratio", "B3_ratio", "P4_ratio"):
        assert np.all(bounds_data[key] <= 1 + 1e-9), key
        assert np.all(bounds_data[key] > 0), key


def test_bounds_plot_draws_the_ratios(bounds_data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_bounds as mod
    from paper_figures._style import quantity

    fig = mod.plot(bounds_data)
    try:
        lines = _line_data(fig)
        for key in ("B2", "B2b", "B3", "P4"):
            ((x, _),) = [v for (t, lab), v in lines.items() if lab == quantity(key)["label"]]
            np.testing.assert_array_equal(x, bounds_data[f"{key}_ratio"])
    finally:
        plt.close(fig)


# -------------------------------------------------------------------------------- theory_ess
@pytest.fixture(scope="module")
def ess_data():
    from paper_figures import theory_ess as mod

    return mod.compute(mod.resolve_config(T=[1, 64, 1024], S=[100, 500]))


def test_ess_arrays_are_the_seeded_monte_carlo(ess_data):
    from paper_figures import theory_ess as mod
    from simulations.runners import simulate_ar
    from simulations.tabular import make_ar_model
    from vespo_theory.diagnostics import khat_threshold

    cfg = ess_data["config"]
    # seeded: the same run gives the same numbers, bit for bit
    res = simulate_ar(mod.model_config(cfg, 64), ["vespo"], method="mc", n_mc=500)
    assert ess_data["khat_W"][1, 1] == res["summary"]["khat_W"]
    assert ess_data["khat_phi"][1, 1] == res["rules"][0]["khat"]
    assert ess_data["ess_W"][1, 1] == res["summary"]["ess_W"]
    np.testing.assert_array_equal(ess_data["threshold"], [khat_threshold(100), khat_threshold(500)])
    assert ess_data["threshold"][0] == pytest.approx(0.5, abs=1e-15)  # 1 - 1/log10(100)
    # the token law does not depend on T, so one Z(2) serves every T
    m1, m64 = (make_ar_model(mod.model_config(cfg, T)) for T in (1, 64))
    np.testing.assert_array_equal(m1.log_behaviour, m64.log_behaviour)
    # exact ESS/n of IS = 1/E[W^2] = Z(2)^-T: against the direct sum at T = 1
    mu, pi = np.exp(m1.log_behaviour[0]), np.exp(m1.log_pi[0])
    assert ess_data["exact_ess_W"][0] == pytest.approx(1 / float(np.sum(pi**2 / mu)), rel=1e-12)


def test_ess_plot_draws_the_arrays(ess_data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_ess as mod

    fig = mod.plot(ess_data)
    try:
        lines = _line_data(fig)
        ((x, y),) = [v for (t, lab), v in lines.items() if lab == "IS $W$, $S$ = 500" and "k" in t]
        np.testing.assert_array_equal(y, ess_data["khat_W"][1])
    finally:
        plt.close(fig)
