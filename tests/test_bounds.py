"""The variance bound (claims K3, B1, B2, B3): argmax, M = sup phi, M^2 and the B3 factor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vespo_theory.bounds import kernel_bound, log_phi_max, phi_max, variance_factor
from vespo_theory.kernels import log_phi, phi
from vespo_theory.params import VespoParams

EPS64 = float(np.finfo(np.float64).eps)


@given(st.floats(0.05, 20.0), st.floats(0.05, 20.0))
def test_M_is_the_sup_of_the_kernel(k, lam):
    """M >= phi on a fine log_w grid, and the grid's max is within the grid-spacing bound of M.

    In L = log W, d^2 log phi / dL^2 = -lam W; within h/2 of the argmax L* = log(k/lam) this is at
    most k e^(h/2) in size, so log M - max_grid log phi <= k e^(h/2) h^2 / 8 (Taylor). Rounding of
    log_phi adds 8 eps (1 + k |L| + lam (1 + W)) (see tests/test_kernels.py).
    """
    lstar = math.log(k / lam)
    h = 1e-3
    grid = lstar + np.arange(-4000, 4001) * h + h * 0.37  # off-centre: the grid misses L*
    lp = log_phi(grid, k, lam)
    lm = log_phi_max(k, lam)
    rounding = 8 * EPS64 * (1 + k * (abs(lstar) + 4) + lam * (1 + math.exp(lstar + 4)))
    assert lp.max() <= lm + rounding
    assert lm - lp.max() <= k * math.exp(h / 2) * h * h / 8 + rounding
    b = kernel_bound(k, lam)
    assert b.argmax == pytest.approx(k / lam, rel=EPS64)  # one correctly rounded division: <= u
    # the best grid point is within h/2 of L* in log space: |W_grid / W* - 1| <= e^(h/2) - 1 < h
    assert b.argmax == pytest.approx(math.exp(float(grid[np.argmax(lp)])), rel=h)
    # M2 = exp(2 log M) vs M*M = exp(log M)^2: exp rounds <= 1 ulp, squaring doubles it, plus one
    # product rounding: <= 3 ulp relative; 4 eps leaves one ulp of slack
    assert b.M2 == pytest.approx(b.M**2, rel=4 * EPS64)


def test_reference_bounds():
    # the paper quotes 4 decimals (arXiv 2602.10693 Prop. C.1): half a unit of the last digit.
    assert phi_max(2, 3) == pytest.approx(1.2081, abs=5e-5)
    assert phi_max(3, 2) == pytest.approx(1.2416, abs=5e-5)
    b = kernel_bound(2, 3)
    # argmax = k / lam is one correctly rounded division, the same one as 2 / 3 here: equal
    assert (b.k, b.lam) == (2.0, 3.0) and b.argmax == 2 / 3
    # B3 with both sign classes: max(M+, M-)^2 / n; m * m and / 8 (a power of 2, exact) round at
    # most once each against the reference's ** 2: 4 eps covers both
    assert variance_factor() == pytest.approx(phi_max(3, 2) ** 2, rel=4 * EPS64)
    assert variance_factor(n=8) == pytest.approx(phi_max(3, 2) ** 2 / 8, rel=4 * EPS64)
    p = VespoParams(k_pos=5.0, lam_pos=1.0)
    assert variance_factor(p) == pytest.approx(phi_max(5, 1) ** 2, rel=4 * EPS64)


def test_huge_M_is_inf_but_log_M_finite():
    assert math.isinf(phi_max(500.0, 0.01))
    assert math.isfinite(log_phi_max(500.0, 0.01))
    b = kernel_bound(500.0, 0.01)
    assert math.isinf(b.M) and math.isinf(b.M2)


def test_b2_b3_on_a_lognormal_law():
    """E[phi^2] <= M E[phi] <= M^2 (B2) and Var[phi g] <= M^2 E g^2 (B3, scalar g = 1 + log W),
    with expectations by 80-node Gauss-Hermite quadrature under log W ~ N(-1/2, 1) (the
    integrands are entire: the quadrature error is far below the gaps asserted here)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    log_w, p = -0.5 + nodes, weights / weights.sum()
    g = 1 + log_w
    for k, lam in [(2, 3), (3, 2)]:
        ph, m = phi(log_w, k, lam), phi_max(k, lam)
        e1, e2 = float(p @ ph), float(p @ ph**2)
        assert e2 <= m * e1 <= m * m
        var = float(p @ (ph * g) ** 2) - float(p @ (ph * g)) ** 2
        assert var <= float(p @ (ph**2 * g**2)) <= m * m * float(p @ g**2)


@pytest.mark.parametrize("k, lam", [(0, 1), (1, 0), (-2, 3), (2, -3), (float("nan"), 1)])
def test_bad_params_raise(k, lam):
    with pytest.raises(ValueError, match="must be a finite number > 0.*bounded"):
        kernel_bound(k, lam)


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "4"])
def test_bad_batch_size_raises(n):
    with pytest.raises(ValueError, match="n \\(batch size\\) must be an integer >= 1"):
        variance_factor(n=n)


def test_params_for_sign_and_validation():
    p = VespoParams()
    assert (p.for_sign(0.0).k, p.for_sign(0.0).lam) == (2.0, 3.0)  # A = 0 -> the A >= 0 class
    assert (p.for_sign(-1e-9).k, p.for_sign(-1e-9).lam) == (3.0, 2.0)
    with pytest.raises(ValueError, match="adv is NaN"):
        p.for_sign(float("nan"))
    with pytest.raises(TypeError, match="adv must be a real number"):
        p.for_sign("1")
    with pytest.raises(ValueError, match="lam_neg must be a finite number > 0"):
        VespoParams(lam_neg=0.0)
