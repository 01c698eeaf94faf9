"""Fig. 2, peak-normalised (``fig02_kernels_peak``): the plotted arrays are the registry's
coefficient, divided by the closed-form M of claim K3 on the left panel."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from paper_figures import fig02_kernels_peak as peak
from vespo_theory.bounds import phi_max
from vespo_theory.rules import get_rule

EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def data():
    return peak.compute(peak.resolve_config(fast=True))


def _registry_phi(w, sign):
    return get_rule("vespo").coefficient(
        np.log(w)[:, None], np.ones((w.size, 1), dtype=bool), np.full(w.size, sign)
    )[:, 0]


def test_arrays_are_the_registry_and_the_closed_form_peak(data):
    w = data["w"]
    for s, sign, k, lam in (("pos", 1.0, 2, 3), ("neg", -1.0, 3, 2)):
        phi = _registry_phi(w, sign)
        np.testing.assert_array_equal(data[f"phi_{s}"], phi)
        np.testing.assert_array_equal(data[f"phi_peak_{s}"], phi / phi_max(k, lam))
        assert data[f"M_{s}"] == phi_max(k, lam)
        # M by hand: (k/lam)^k e^(lam-k) = 4/9 e = 1.2081 and 27/8 e^-1 = 1.2416
        assert data[f"M_{s}"] == pytest.approx((k / lam) ** k * math.exp(lam - k), rel=4 * EPS)
        # the peak is 1 at W = k/lam: phi there is M up to the rounding of log W and exp
        # (a few ulp of log phi ~ 0.2: <= 16 eps relative)
        assert data[f"peak_value_{s}"] / data[f"M_{s}"] == pytest.approx(1.0, abs=16 * EPS)
        assert np.all(data[f"phi_peak_{s}"] <= 1.0 + 16 * EPS)
    np.testing.assert_array_equal(data["ref_pos"], _registry_phi_is(w))
    # and IS is phi = W: exp(log W) rounds twice (log, exp): within 2 ulp, 4 eps relative
    np.testing.assert_allclose(data["ref_pos"], w, rtol=4 * EPS, atol=0)


def _registry_phi_is(w):
    return get_rule("is").coefficient(
        np.log(w)[:, None], np.ones((w.size, 1), dtype=bool), np.ones(w.size)
    )[:, 0]


def test_plotted_lines_are_the_arrays(data):
    import matplotlib.pyplot as plt

    fig = peak.plot(data)
    try:
        left, right = fig.axes
        got_left = [ln.get_ydata() for ln in left.get_lines() if len(ln.get_ydata()) > 1]
        np.testing.assert_array_equal(got_left[0], data["phi_peak_pos"])
        np.testing.assert_array_equal(got_left[1], data["phi_peak_neg"])
        by_label = {ln.get_label(): ln for ln in right.get_lines()}
        vespo_pos = next(ln for lab, ln in by_label.items() if r"A \geq 0" in lab)
        np.testing.assert_array_equal(vespo_pos.get_ydata(), data["phi_pos"])
        assert len(fig.legends) == 1  # one shared legend, outside the panels
    finally:
        plt.close(fig)


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="^n_points"):
        peak.compute(peak.resolve_config(n_points=3))
    with pytest.raises(ValueError, match="^config"):
        peak.resolve_config(nope=1)
