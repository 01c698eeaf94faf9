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
