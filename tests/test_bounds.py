"""The variance bound (claims K3, B1, B2, B3): argmax, M = sup phi, M^2 and the B3 factor; P4's
K = sup phi/W; B2 against P4 on a log-normal law of W."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vespo_theory.bounds import (
    LOGNORMAL_S2_MAX,
    kernel_bound,
    log_phi_max,
    lognormal_bounds,
    lognormal_log_moment,
    phi_max,
    variance_factor,
)
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


# ----------------------------------------------------------------- P4: K = sup phi(W)/W


def test_K_fields_by_hand():
    """arXiv 2602.10693 Prop. 3.1, Eqs. 18-19: K = ((k-1)/lam)^(k-1) e^(lam-k+1) at
    W = (k-1)/lam. (2,3): K = (1/3) e^2, log K = 2 - log 3; (3,2): K = 1^2 e^0 = 1 exactly."""
    b = kernel_bound(2, 3)
    # log K = 1 * log(1/3) + 3 - 2 + 1: log rounds once (|log 3| ~ 1.1), three sums of O(1)
    # numbers once each: <= 4 u on a value ~0.9; 4 eps covers it. K = exp of it adds 1 u
    # relative, the reference e^2 / 3 (exp, division) 2 u: 8 eps relative.
    assert b.log_K == pytest.approx(2 - math.log(3), abs=4 * EPS64)
    assert b.K == pytest.approx(math.exp(2) / 3, rel=8 * EPS64)
    assert b.argmax_K == 1 / 3 and b.K_finite is True  # (k - 1) / lam: one rounded division
    b = kernel_bound(3, 2)
    assert (b.log_K, b.K, b.argmax_K) == (0.0, 1.0, 1.0)  # log(1) = 0 and 2 - 3 + 1 = 0: exact
    b = kernel_bound(1, 2.5)  # k = 1: K = e^lam, the limit W -> 0+ (not attained)
    assert b.log_K == 2.5 and b.K == math.exp(2.5) and b.argmax_K is None and b.K_finite
    assert b.K_note() is None


def test_K_infinite_for_k_below_one():
    b = kernel_bound(0.5, 1)
    assert math.isinf(b.K) and math.isinf(b.log_K) and b.argmax_K is None
    assert b.K_finite is False
    note = b.K_note()
    assert "\n" not in note and note.startswith("P4: K = sup phi(W)/W is infinite for k = 0.5")
    assert note.endswith("P4 gives no bound")


def test_K_overflow_keeps_a_finite_log():
    # k = 1000, lam = 1: log K = 999 log 999 + 1 - 1000 + 1 = 5901.85 > 709.78: K = inf
    b = kernel_bound(1000, 1)
    assert math.isinf(b.K) and b.K_finite
    # 999 * log(999) rounds by <= 2 u relative of ~6900: 4 eps relative of the result covers it
    assert b.log_K == pytest.approx(999 * math.log(999) - 998, rel=4 * EPS64)
    assert b.K_note().startswith("note: K exceeds the float64 range") and "log K = 5901.8" in (
        b.K_note()
    )


@given(st.floats(1.0, 20.0), st.floats(0.05, 20.0))
def test_K_is_the_sup_of_phi_over_W(k, lam):
    """log(phi/W) = (k-1) L + lam (1 - e^L) on a log-W grid stays below log K (plus the rounding
    of log_phi, 8 eps (1 + k |L| + lam (1 + W)) as in test_M_is_the_sup_of_the_kernel, and one
    more for subtracting L), and for k > 1 the grid comes within the Taylor bound
    (k-1) e^(h/2) h^2 / 8 of it near L* = log((k-1)/lam) (d^2/dL^2 = -lam W = -(k-1) there)."""
    b = kernel_bound(k, lam)
    lstar = math.log((k - 1) / lam) if k > 1 else -30.0
    h = 1e-3
    grid = lstar + np.arange(-4000, 4001) * h + h * 0.37
    lq = log_phi(grid, k, lam) - grid
    span = abs(lstar) + 4
    rounding = 8 * EPS64 * (1 + (k + 1) * span + lam * (1 + math.exp(lstar + 4)))
    assert lq.max() <= b.log_K + rounding
    if k > 1:
        assert b.log_K - lq.max() <= (k - 1) * math.exp(h / 2) * h * h / 8 + rounding
        assert b.argmax_K == pytest.approx(math.exp(float(grid[np.argmax(lq)])), rel=h)


# ------------------------------------------------------------ log-normal law: B2 against P4


def test_lognormal_reference_E_phi():
    """E[phi] under log W ~ N(-1/2, 1): 0.704483 for (2,3), 0.504502 for (3,2) (docs/kernels.md;
    Gauss-Hermite and mpmath agree). Quoted to 6 decimals: half a unit of the last, 5e-7."""
    assert lognormal_bounds(2, 3, 1.0).E_phi == pytest.approx(0.704483, abs=5e-7)
    assert lognormal_bounds(3, 2, 1.0).E_phi == pytest.approx(0.504502, abs=5e-7)


@pytest.mark.parametrize("s2", [0.01, 0.25, 1.0])
@pytest.mark.parametrize("k, lam", [(2, 3), (3, 2), (0.5, 1), (1, 2)])
def test_lognormal_moments_match_gauss_hermite(k, lam, s2):
    """200-node Gauss-Hermite over L = -s2/2 + sqrt(s2) z. For s2 <= 1 the integrands (entire,
    with e^(L) inside an exponential) are resolved by the nodes: GH and the adaptive quadrature
    agree to <= 1.7e-14 relative (seen, E[phi^2] at s2 = 1; at s2 = 4 GH is only ~1e-5 accurate,
    so it is not used there). The tolerance is the quadrature's stated bound, 1e-10 relative."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    p = weights / weights.sum()
    lw = -s2 / 2 + math.sqrt(s2) * nodes
    ph = phi(lw, k, lam)
    for power, w_power, gh in [
        (1, 0.0, p @ ph),
        (2, 0.0, p @ ph**2),
        (1, 1.0, p @ (ph * np.exp(lw))),
    ]:
        got = math.exp(lognormal_log_moment(k, lam, s2, power, w_power))
        assert got == pytest.approx(float(gh), rel=1e-10)


# log E[phi^p W^q] at s2 = 100 by mpmath (25 digits, Gauss-Legendre/tanh-sinh over 200 pieces of
# [m - 40 sd, 8]; the integrand is below e^-700 outside): (k, lam, p, q) -> log moment.
MPMATH_S2_100 = {
    (2, 3, 1, 0): -14.500405703536533,
    (2, 3, 2, 0): -14.795715745139233,
    (2, 3, 1, 1): -15.186588037345397,
    (3, 2, 1, 0): -15.172152370928961,
    (3, 2, 2, 0): -15.38957678276968,
    (3, 2, 1, 1): -14.949053326380149,
    (0.5, 1, 2, 0): -13.550793392855452,
}


@pytest.mark.parametrize("key", list(MPMATH_S2_100))
def test_lognormal_moments_match_mpmath_at_large_variance(key):
    """Where Gauss-Hermite fails (the kernel's peak is narrow against sd = 10): the log moment
    against mpmath. 1e-10 absolute in the log is 1e-10 relative in the moment, the stated
    quadrature bound (seen: <= 1.3e-15)."""
    k, lam, p, q = key
    assert lognormal_log_moment(k, lam, 100.0, p, float(q)) == pytest.approx(
        MPMATH_S2_100[key], abs=1e-10
    )


@pytest.mark.parametrize("s2", [1e-12, 1e-3, 1.0, 10.0, 1e3, LOGNORMAL_S2_MAX])
@pytest.mark.parametrize("k, lam", [(2, 3), (3, 2), (0.5, 1), (1, 2), (20, 0.5)])
def test_lognormal_bounds_hold_and_compare(k, lam, s2):
    """B2 (E phi^2 <= M E phi <= M^2) and P4 (E phi^2 <= K E[phi W]) hold, in log space (the
    values underflow for large s2), up to the quadrature's 1e-10 relative error."""
    r = lognormal_bounds(k, lam, s2)
    b = kernel_bound(k, lam)
    assert r.log_E_phi2 <= b.log_M + r.log_E_phi + 2e-10
    assert b.log_M + r.log_E_phi <= 2 * b.log_M + 1e-10  # E[phi] <= M
    assert r.log_E_phi2 <= r.log_K_E_phiW + 2e-10
    assert all(math.isfinite(x) for x in (r.log_E_phi, r.log_E_phi2, r.log_E_phiW))
    if k < 1:
        assert math.isinf(r.K_E_phiW) and r.smaller == "M2"
    else:
        want = "P4" if r.log_K_E_phiW < 2 * b.log_M else "M2"
        assert r.smaller == want


def test_lognormal_limits_by_hand():
    """s2 -> 0: W -> 1, phi(1) = 1, so every moment -> 1; to first order log E[phi] =
    E[log phi] + Var(log phi)/2 = -k s2/2 + (k - lam)^2 s2/2 (log phi ~ (k - lam) L near L = 0,
    E[lam (1 - W)] = 0). At s2 = 1e-6 the next order is O(s2^2) = 1e-12. Large s2: the mass
    sits near L ~ 0, where the Gaussian density is ~e^(-s2/8): log E[phi] = -s2/8 + O(log s2)."""
    for k, lam in [(2, 3), (3, 2)]:
        r = lognormal_bounds(k, lam, 1e-6)
        assert r.log_E_phi == pytest.approx((-k + (k - lam) ** 2) * 1e-6 / 2, abs=1e-11)
        r = lognormal_bounds(k, lam, 1e6)
        assert r.E_phi == 0.0 and abs(r.log_E_phi + 1e6 / 8) < 100
    # the deployed kernels under N(-1/2, 1): P4's K E[phi W] is below M^2 for both classes; at
    # k = 1 (K = e^lam = 7.39) it is M^2 that is smaller
    assert lognormal_bounds(2, 3, 1.0).smaller == lognormal_bounds(3, 2, 1.0).smaller == "P4"
    assert lognormal_bounds(1, 2, 1.0).smaller == "M2"


@pytest.mark.parametrize("s2", [0, -1.0, float("nan"), float("inf"), 2e6, True, "1"])
def test_lognormal_bad_variance_names_s2(s2):
    with pytest.raises(ValueError, match=r"^s2 \(variance of log W\) must be"):
        lognormal_bounds(2, 3, s2)


def test_lognormal_bad_power_and_params():
    with pytest.raises(ValueError, match="power must be an integer >= 1"):
        lognormal_log_moment(2, 3, 1.0, power=0)
    with pytest.raises(ValueError, match="power \\* k \\+ w_power must be > 0"):
        lognormal_log_moment(2, 3, 1.0, w_power=-5.0)
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        lognormal_bounds(-1, 3, 1.0)
