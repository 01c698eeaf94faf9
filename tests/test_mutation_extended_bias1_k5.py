"""Tests that kill the mutants of ``check_k5``, ``check_bias1``, ``_bandit_terms`` and ``_is_zero``
in ``vespo_theory/derivations/extended.py`` that tests/test_derive_extended.py lets live (see
docs/mutation.md).

Each part of K5 and BIAS1 is made wrong on its own while the others stay right (a premise, or a
helper of the module replaced by monkeypatch: the production kernel the numerics use, the kernel
the algebra uses, bounds.log_phi_K), and the check must fail; the numbers the records print
(K5's worst relative excess, BIAS1's Cauchy-Schwarz ratio, Taylor remainders and bounds, and
drift ratios) are recomputed here independently, from the documented laws or from the arrays the
check evaluates, with the kernel and its second derivative written out by hand. ``_bandit_terms``
and ``_is_zero`` are checked against hand values.

Every tolerance is stated with its reason.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp

from vespo_theory.derivations import extended as E
from vespo_theory.params import VespoParams

W, K_, LAM, X = E.W, E.k, E.lam, E.x


def _phi(w, k, lam):
    """The VESPO kernel W^k e^(lam (1 - W)), written out (arXiv 2602.10693 Eq. 4)."""
    w = np.asarray(w, dtype=np.float64)
    return w**k * np.exp(lam * (1.0 - w))


def _phi_dd(w, k, lam):
    """phi'' by hand: log phi = k log W + lam (1 - W), phi' = phi (k/W - lam),
    phi'' = phi ((k/W - lam)^2 - k/W^2) = W^(k-2) e^(lam(1-W)) ((k - lam W)^2 - k)."""
    w = np.asarray(w, dtype=np.float64)
    return w ** (k - 2) * np.exp(lam * (1.0 - w)) * ((k - lam * w) ** 2 - k)


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return float(m.group(1))


# -------------------------------------------------------------------------------- _is_zero ----


def test_is_zero_is_false_for_nonzero_expressions():
    assert E._is_zero(sp.Integer(0)) is True
    assert E._is_zero(sp.exp(sp.log(W)) - W) is True
    assert E._is_zero(sp.Integer(1)) is False
    assert E._is_zero(sp.Integer(-1)) is False
    assert E._is_zero(K_ - LAM) is False


def test_is_zero_combines_powers_of_bases_positive_on_the_domain():
    """BIAS1's series variable x is only declared real, but W = 1 + x > 0 there, so
    (1+x)^lam (2+x)^lam = ((1+x)(2+x))^lam holds on the domain. SymPy's simplify cannot combine
    the powers without knowing the bases' signs; _is_zero must (it forces the power rules)."""
    e = (1 + X) ** LAM * (2 + X) ** LAM - ((1 + X) * (2 + X)) ** LAM
    assert sp.simplify(e) != 0  # the first stage alone does not decide it
    assert E._is_zero(e) is True


# ---------------------------------------------------------------------------- _bandit_terms ----

MU3 = np.array([0.5, 0.25, 0.25])
PI3 = np.array([0.25, 0.25, 0.5])
A3 = np.array([1.0, -2.0, 0.5])
# g_y = A_y (e_y - pi), row by row, by hand
G3 = np.array([[0.75, -0.25, -0.5], [0.5, -1.5, 1.0], [-0.125, -0.125, 0.25]])


def test_bandit_terms_hand_values_with_default_params():
    w, ph, g = E._bandit_terms(MU3, PI3, A3)
    # W = pi / mu = (1/2, 1, 2); A >= 0 -> (2, 3), A < 0 -> (3, 2)
    exp_ph = [0.25 * math.exp(1.5), 1.0, 4.0 * math.exp(-3.0)]
    # float64 evaluations of exp/log: agreement to 1e-12 relative
    np.testing.assert_allclose(w, [0.5, 1.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(ph, exp_ph, rtol=1e-12)
    np.testing.assert_allclose(g, G3, rtol=1e-12, atol=1e-15)


def test_bandit_terms_uses_the_params_it_is_given():
    params = VespoParams(k_pos=1.5, lam_pos=0.5, k_neg=4.0, lam_neg=1.0)
    w, ph, g = E._bandit_terms(MU3, PI3, A3, params)
    exp_ph = [0.5**1.5 * math.exp(0.25), 1.0, 2.0**1.5 * math.exp(-0.5)]
    np.testing.assert_allclose(ph, exp_ph, rtol=1e-12)  # float64 exp/log: 1e-12 relative
    np.testing.assert_allclose(g, G3, rtol=1e-12, atol=1e-15)
    # and not the defaults'
    assert abs(ph[0] - 0.25 * math.exp(1.5)) > 0.1


# ------------------------------------------------------------------------------------ K5 ----


@pytest.mark.parametrize("k_val", [1, sp.Rational(1, 2)])
def test_k5_no_stationary_point_gives_a_failed_symbolic_record(k_val):
    """k <= 1: d/dW log(phi/W) = (k - 1)/W - lam < 0 for W > 0, no stationary point (and for
    k < 1 phi/W -> oo at 0+, so K = 1 is false). The record says so, for claim K5."""
    r = E.check_k5(k_val=k_val, lam_val=2)
    assert r.status == "failed"
    assert r.id == "K5" and r.method == "symbolic"
    assert r.detail == "crit []"
    assert r.assumptions.endswith(f"(k, lam) = ({k_val}, 2)")


@pytest.mark.parametrize(
    "log_k_prod",
    [
        math.log1p(1e-9),  # bounds.phi_K off by 1e-9 relative: 1000x the 1e-12 float tolerance
        -30.0,  # bounds.phi_K = e^-30 ~ 1e-13
        math.log(1.5),
    ],
)
def test_k5_fails_when_only_bounds_phi_k_disagrees(monkeypatch, log_k_prod):
    """The derived K = 1 must agree with bounds.log_phi_K; everything else stays right."""
    monkeypatch.setattr(E, "log_phi_K", lambda kk, ll: log_k_prod)
    r = E.check_k5()
    assert r.status == "failed"
    assert "K = phi(W*)/W* = 1 (= 1: True;" in r.detail and "agrees: False" in r.detail
    assert "(<= 1e-12: True)" in r.detail and "(< 0: True)" in r.detail


def test_k5_agrees_with_an_exact_bounds_phi_k(monkeypatch):
    monkeypatch.setattr(E, "log_phi_K", lambda kk, ll: 0.0)
    assert E.check_k5().status == "verified"


def test_k5_fails_when_only_the_numeric_kernel_is_wrong(monkeypatch):
    """The numerics evaluate the production kernel; replaced by the (2, 3) kernel (phi(0.54) =
    1.16 > 0.54), the second-moment inequality fails while the algebra (for (3, 2)) holds."""
    real = E.log_phi
    monkeypatch.setattr(E, "log_phi", lambda lw, kk, ll: real(lw, 2.0, 3.0))
    r = E.check_k5()
    assert r.status == "failed"
    assert "agrees: True" in r.detail and ">= 0: True" in r.detail
    assert "(<= 1e-12: False)" in r.detail


@pytest.mark.parametrize(
    ("rel", "status"),
    [
        (0.0, "verified"),  # phi = W: E[phi^2 g^2] = E[W^2 g^2], excess 0 up to rounding
        (1e-13, "verified"),  # excess 2e-13: float-rounding scale, under the 1e-12 tolerance
        (1e-11, "failed"),  # excess 2e-11: 20x the tolerance
    ],
)
def test_k5_numeric_excess_is_relative_with_tolerance_1e12(monkeypatch, rel, status):
    """A production kernel phi = W (1 + rel): the relative excess (E[phi^2 |g|^2] -
    E[W^2 |g|^2]) / E[W^2 |g|^2] is (1 + rel)^2 - 1 = 2 rel on every law, whatever the atoms,
    weights and g (the laws have E[W^2 |g|^2] far from 1, so an absolute excess would differ)."""
    monkeypatch.setattr(E, "log_phi", lambda lw, kk, ll: lw + math.log1p(rel))
    r = E.check_k5()
    assert r.status == status, r.detail
    worst = _num(r"E\[W\^2 \|g\|\^2\] = (\S+) \(", r.detail)
    # 2 rel, up to float64 rounding of sums of 8 terms (~1e-15 absolute)
    assert abs(worst - 2 * rel) <= 1e-14


def test_k5_fails_when_log_phi_over_w_is_not_provably_concave(monkeypatch):
    """phi = W exp(-(log W)^4): log(phi/W) = -(log W)^4 has the single stationary point W = 1,
    K = 1, limits 0 at both ends; but d2 = 4 (log W)^2 (log W - 3)/W^2 > 0 for W > e^3, so the
    concavity the derivation rests on fails (the production kernel, used by the numerics,
    stays right)."""
    monkeypatch.setattr(E, "_kernel", lambda kk=K_, ll=LAM: W * sp.exp(-(sp.log(W) ** 4)))
    r = E.check_k5()
    assert r.status == "failed"
    assert "(< 0: False)" in r.detail and "K = phi(W*)/W* = 1 (= 1: True" in r.detail
    assert "phi/W -> 0 at 0+, 0 at oo" in r.detail


def test_k5_fails_when_phi_over_w_does_not_vanish_at_zero(monkeypatch):
    """phi = W exp(-(W - 1)^2): log(phi/W) = -(W-1)^2 is concave with max 0 at W = 1, but
    phi/W -> e^-1 at 0+, not 0 (while phi W -> 0). That part alone must fail the check."""
    monkeypatch.setattr(E, "_kernel", lambda kk=K_, ll=LAM: W * sp.exp(-((W - 1) ** 2)))
    r = E.check_k5()
    assert r.status == "failed"
    assert "phi/W -> exp(-1) at 0+, 0 at oo" in r.detail
    assert "(< 0: True)" in r.detail and ">= 0: True" in r.detail


def test_k5_reports_the_minimum_of_g_and_phi_054():
    """By hand. (3, 2): phi(0.54) = 0.54^3 e^(0.92) = 0.157464 * 2.509290 = 0.39512.
    (2, 3): phi/W = W e^(3(1-W)) peaks at W* = 1/3 with K = e^2/3, so min g = -log K =
    log 3 - 2 = -0.901 < 0: not pointwise (although log(phi/W) is concave)."""
    r = E.check_k5()
    assert "phi(0.54) = 0.3951 vs W = 0.54" in r.detail
    r = E.check_k5(k_val=2, lam_val=3)
    assert "min g(W*) = -2 + log(3) >= 0: False" in r.detail
    assert "(< 0: True)" in r.detail


def test_k5_is_reproducible_and_uses_its_seed():
    a, b = E.check_k5(seed=5, n_laws=10), E.check_k5(seed=5, n_laws=10)
    assert a.detail == b.detail
    assert E.check_k5(seed=6, n_laws=10).detail != a.detail


def test_k5_numeric_law_includes_the_atom_054(monkeypatch):
    """A production kernel wrong (= 1000) only at W = 0.54 (the point where the docstring
    compares phi with W) is caught: W = 0.54 is an atom of every seeded law."""
    real = E.log_phi

    def bad_at_054(lw, kk, ll):
        # 1e-12: float64 exp(log 0.54) recovers 0.54 to ~1e-16
        return np.where(np.abs(np.exp(lw) - 0.54) < 1e-12, math.log(1e3), real(lw, kk, ll))

    monkeypatch.setattr(E, "log_phi", bad_at_054)
    r = E.check_k5()
    assert r.status == "failed" and "(<= 1e-12: False)" in r.detail


def test_k5_numeric_law_reaches_small_w(monkeypatch):
    """A production kernel wrong (= 1000) only for W < e^-3.5 = 0.03 (the lower tail, where
    phi ~ W^3 is tiny) is caught: the log-normal(0, 1.5) atoms of 40 laws reach it (z < -2.3,
    ~1% of 200 draws each)."""
    real = E.log_phi
    monkeypatch.setattr(
        E, "log_phi", lambda lw, kk, ll: np.where(lw < -3.5, math.log(1e3), real(lw, kk, ll))
    )
    r = E.check_k5()
    assert r.status == "failed" and "(<= 1e-12: False)" in r.detail


def test_k5_worst_excess_recomputed_from_the_documented_laws():
    """The printed max relative excess is the one of the documented laws: per law, atoms W =
    0.54, 1, W* (= 1 for (3, 2)) and five exp(N(0, 1.5^2)), g ~ N(0, I_3) per atom, weights
    Dirichlet(1, ..., 1), drawn in that order from default_rng(seed); phi written out here."""
    seed, n_laws = 11, 12
    r = E.check_k5(seed=seed, n_laws=n_laws)
    rng = np.random.default_rng(seed)
    worst = -np.inf
    for _ in range(n_laws):
        ws = np.concatenate([[0.54, 1.0, 1.0], np.exp(rng.normal(0.0, 1.5, size=5))])
        gs = rng.normal(size=(8, 3))
        pr = rng.dirichlet(np.ones(8))
        g2 = np.einsum("ij,ij->i", gs, gs)
        lhs = float(np.sum(pr * _phi(ws, 3.0, 2.0) ** 2 * g2))
        rhs = float(np.sum(pr * ws**2 * g2))
        worst = max(worst, lhs / rhs - 1.0)
    got = _num(r"E\[W\^2 \|g\|\^2\] = (\S+) \(", r.detail)
    # printed with 4 significant digits (.3e): rounding <= 5e-4 relative
    assert math.isclose(got, worst, rel_tol=1e-3), (got, worst)
    assert worst < -1e-3  # phi < W away from W = 1: a strict deficit, not a rounding-level one


# --------------------------------------------------------------------------------- BIAS1 ----


def test_bias1_fails_when_only_the_symbolic_coefficient_is_wrong():
    """claimed k - lam - 1 + (k-2)(k-3): wrong as a function of (k, lam), but equal to the true
    coefficient at both deployed kernels (2, 3) and (3, 2), so every numeric part (which uses
    the claimed value there) is exactly the default run's; the series comparison alone fails."""
    claimed = K_ - LAM - 1 + (K_ - 2) * (K_ - 3)
    r = E.check_bias1(claimed_coefficient=claimed)
    ref = E.check_bias1()
    assert r.status == "failed" and ref.status == "verified"
    assert ": False); Cauchy-Schwarz" in r.detail
    # the numeric parts are those of the verified default run
    assert r.detail.split("; Cauchy")[1] == ref.detail.split("; Cauchy")[1]


def test_bias1_fails_when_phi_1_is_not_1(monkeypatch):
    """A kernel with phi(1) = 2 (the algebra's kernel plus 1): the series of phi(1+x) - (1+x)
    has constant term 1, an O(1) bias, though its coefficient of x is still k - lam - 1 (the
    production kernel of the numerics stays right)."""
    real = E._kernel
    monkeypatch.setattr(E, "_kernel", lambda kk=K_, ll=LAM: real(kk, ll) + 1)
    r = E.check_bias1()
    assert r.status == "failed"
    assert "constant 1, coefficient of x k - lam - 1" in r.detail
    assert "Taylor remainder" in r.detail and "(-> 1: True)" in r.detail


def test_bias1_fails_when_only_early_remainder_rows_break_the_taylor_bound(monkeypatch):
    """A production kernel off by a third-order term 20 (W - 1)^3: first order still
    k - lam - 1 (the drift ratio -> 1), but at the largest drift 0.1 (|W - 1| ~ 0.2) the
    remainder exceeds the bound max|phi''|/2 E[(W-1)^2 |g|] of the true phi'' (by 1.5-1.6x:
    under 2x, so a doubled tolerance would let it pass), while at the smaller drifts it stays
    under it. Every row counts, not only the last one."""
    real = E.phi_signed
    monkeypatch.setattr(E, "phi_signed", lambda lw, a, p: real(lw, a, p) + 20 * np.expm1(lw) ** 3)
    r = E.check_bias1()
    assert r.status == "failed"
    assert "|g|]: False" in r.detail and "(-> 1: True)" in r.detail
    rows = re.findall(r"(A>=0|A<0) eps ([\d.e+-]+): \|rem\| ([\d.e+-]+) <= ([\d.e+-]+)", r.detail)
    ratio = {(b, e): float(rem) / float(bound) for b, e, rem, bound in rows}
    assert {key for key, q in ratio.items() if q > 1.0} == {("A>=0", "0.1"), ("A<0", "0.1")}
    assert max(ratio.values()) < 2.0


@pytest.mark.parametrize(
    ("drifts", "status"),
    [
        ((0.4, 0.2, 1e-3), "verified"),  # large first drifts are fine; the last is small
        ((0.4, 0.2, 0.1), "failed"),  # smallest drift 0.1: ratio 1 - O(0.1), not within 1e-2
        ((1e-3, 1e-2, 1e-3), "failed"),  # the error grows from the 1st to the 2nd drift
        ((1e-2, 1e-2, 1e-3), "failed"),  # a repeated drift: the error does not shrink
        ((1e-1, 1e-3, 2e-3), "failed"),  # only the last step grows
    ],
)
def test_bias1_drift_ratio_must_approach_1_and_shrink_at_every_step(drifts, status):
    """The (2, 3) ratio <E[(phi-W)g], c E[(W-1)g]> / |c E[(W-1)g]|^2 = 1 + O(eps) (about
    1 - 0.13 eps on the seeded bandit): within 1e-2 of 1 at the last drift, strictly closer
    at each step. The Taylor bound and the algebra hold for any drifts."""
    r = E.check_bias1(drifts=drifts)
    assert r.status == status, r.detail
    assert "|g|]: True" in r.detail and "(claimed k - lam - 1: True)" in r.detail


def test_bias1_is_reproducible_and_uses_its_seed():
    a = E.check_bias1(n_laws=8)
    assert a.detail == E.check_bias1(n_laws=8).detail
    assert E.check_bias1(seed=7, n_laws=8).detail != a.detail


def test_bias1_printed_numbers_recomputed_from_the_bandits_it_evaluates(monkeypatch):
    """Every call of _bandit_terms (mu, pi, A) is recorded; from those inputs alone W = pi/mu,
    phi (written out, (k, lam) by the sign of A), g_y = A_y (e_y - pi) and then the
    Cauchy-Schwarz ratio, the Taylor remainders, their bounds (phi'' by hand, its max on a
    fine grid over [min(W, 1), max(W, 1)]) and the drift ratios are recomputed here and must be
    the printed ones."""
    calls = []
    real = E._bandit_terms

    def spy(mu, pi, A, params=None):
        calls.append((np.array(mu), np.array(pi), np.array(A, dtype=np.float64)))
        return real(mu, pi, A, params)

    monkeypatch.setattr(E, "_bandit_terms", spy)
    n_laws, drifts = 12, (1e-1, 1e-2, 1e-3)
    r = E.check_bias1(n_laws=n_laws, drifts=drifts)
    monkeypatch.undo()
    assert r.status == "verified"
    assert len(calls) == n_laws + 2 * len(drifts)

    def terms(mu, pi, A):
        w = pi / mu
        kl = np.where(A[:, None] >= 0, [2.0, 3.0], [3.0, 2.0])
        ph = _phi(w, kl[:, 0], kl[:, 1])
        g = np.stack([A[y] * (np.eye(mu.size)[y] - pi) for y in range(mu.size)])
        return w, ph, g

    worst_cs = -np.inf
    for mu, pi, A in calls[:n_laws]:
        w, ph, g = terms(mu, pi, A)
        lhs = np.linalg.norm(np.einsum("i,i,ij->j", mu, ph - w, g))
        rhs = math.sqrt(np.sum(mu * (ph - w) ** 2)) * math.sqrt(np.einsum("i,ij,ij->", mu, g, g))
        worst_cs = max(worst_cs, lhs / rhs - 1.0)
    got = _num(r"max lhs/rhs - 1 = (\S+) \(", r.detail)
    assert math.isclose(got, worst_cs, rel_tol=1e-3)  # .3e: 4 significant digits
    assert worst_cs < 0  # Cauchy-Schwarz holds with room on these laws

    rows = re.findall(r"(A>=0|A<0) eps ([\d.e+-]+): \|rem\| ([\d.e+-]+) <= ([\d.e+-]+)", r.detail)
    assert len(rows) == 2 * len(drifts)
    ratios = []
    for (mu, pi, A), (branch, eps, rem_s, bound_s) in zip(calls[n_laws:], rows, strict=True):
        kk, ll = (2.0, 3.0) if branch == "A>=0" else (3.0, 2.0)
        assert (A >= 0).all() == (branch == "A>=0") and float(eps) in drifts
        c = kk - ll - 1.0
        w, ph, g = terms(mu, pi, A)
        bias = np.einsum("i,i,ij->j", mu, ph - w, g)
        lead = c * np.einsum("i,i,ij->j", mu, w - 1.0, g)
        grid = np.linspace(min(w.min(), 1.0), max(w.max(), 1.0), 20001)
        bound = (
            0.5
            * np.abs(_phi_dd(grid, kk, ll)).max()
            * np.sum(mu * (w - 1.0) ** 2 * np.linalg.norm(g, axis=1))
        )
        # printed with 3 significant digits (.2e): rounding <= 5e-3 relative; the check's
        # 201-point grid and this 20001-point one differ by O(h^2) ~ 1e-6 relative
        assert math.isclose(float(bound_s), bound, rel_tol=6e-3), (branch, eps, bound_s, bound)
        assert math.isclose(float(rem_s), np.linalg.norm(bias - lead), rel_tol=6e-3)
        if c != 0.0:
            ratios.append(float(bias @ lead / (lead @ lead)))
    pairs = re.findall(r"(\S+): ([-\d.]+)", r.detail.split("at drifts")[1])
    assert [float(e) for e, _ in pairs] == list(drifts)
    got = [float(v) for _, v in pairs]
    # printed with 6 decimals: rounding <= 5e-7
    np.testing.assert_allclose(got, ratios, atol=1e-6)
