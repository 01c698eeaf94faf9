"""Tests that kill the mutants of ``check_p3``, ``check_p4`` (with its helpers ``_p4_laws`` and
``_gauss_lognormal``) and ``check_p5`` in ``vespo_theory/derivations/paper.py`` that
tests/test_derive_paper.py lets live (see docs/mutation.md).

Each part of a check's conjunction is made to fail on its own while the others pass: a P3
surrogate that is bounded, increasing and zero at 0 but has the wrong derivative; a claimed K that
is too large (only the symbolic comparison sees it); ``bounds.phi_K`` / ``bounds.phi_max`` off by
a stated relative amount (monkeypatched); a kernel right at (2,3) but not at (3,2); a kernel with
two stationary points (the early exits); SymPy unable to decide a sign; and the numeric bound of
P4 on laws whose answer is known by hand (Diracs at argmax phi/W and at argmax phi). The seeded
laws of P4 are checked against their docstring (log-normal laws with E[W] = 1, atoms at and near
(k-1)/lam and k/lam).

Expected values are derived here by hand from the closed forms phi(W) = W^k e^(lam(1-W)),
K = ((k-1)/lam)^(k-1) e^(lam-k+1), M = (k/lam)^k e^(lam-k); every tolerance says why it has its
size.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp

from vespo_theory import bounds, claims
from vespo_theory.derivations import paper as P

W, k, lam = P.W, P.k, P.lam
R = sp.Rational

K_FORMULA = ((k - 1) / lam) ** (k - 1) * sp.exp(lam - k + 1)  # P4, by hand: phi(W*)/W*


class _SympyWith:
    """The ``sympy`` module with some names replaced; installed as ``paper.sp`` by monkeypatch,
    so only paper.py sees the replacements."""

    def __init__(self, **replacements):
        self.__dict__.update(replacements)

    def __getattr__(self, name):
        return getattr(sp, name)


def _scaled_lambdify(factor):
    """sympy.lambdify whose functions return ``factor`` times the true value (P4's numeric K)."""

    def lambdify(args, expr, *rest, **kw):
        f = sp.lambdify(args, expr, *rest, **kw)
        return lambda *xs: factor * f(*xs)

    return lambdify


def _dirac_laws(kk, ll, rng, n_laws):
    """Laws of W whose outcome is known by hand, in this order: a Dirac at argmax phi/W
    ((k-1)/lam: E[phi^2] = K E[phi W] exactly, and K E[phi W] = phi(W*)^2 < M^2), a Dirac at
    argmax phi (k/lam: E[phi^2] = M^2 exactly, and M^2 < K E[phi W] since phi/W < K off W*),
    and a Dirac far in the tail (10 k/lam: both bounds slack, phi tiny so K E[phi W] < 1 <= M^2).
    """
    one = np.array([1.0])
    return {
        "Dirac at argmax phi/W": (np.array([(kk - 1) / ll]), one),
        "Dirac at argmax phi": (np.array([kk / ll]), one),
        "Dirac in the tail": (np.array([10 * kk / ll]), one),
    }


def _n_pairs(detail: str) -> int:
    return int(re.search(r"\((\d+) \(k, lam\) pairs", detail).group(1))


def _excess(detail: str) -> float:
    return float(re.search(r"max relative excess (\S+);", detail).group(1))


# ------------------------------------------------------------------------------------ P3 ----


def test_p3_detail_reports_the_derived_derivative():
    # by hand: d/dW [b^-a lowergamma(a, bW)] = b^-a (bW)^(a-1) e^(-bW) b = W^(a-1) e^(-bW), and
    # lowergamma(a, oo) = Gamma(a); the detail must show them in the check's symbols a, b
    r = P.check_p3()
    assert r.status == "verified"
    assert "f = lowergamma(a, W*b)/b**a:" in r.detail
    assert "f' = W**(a - 1)*exp(-W*b) > 0: True" in r.detail
    assert "lim_(W->oo) f = gamma(a)/b**a" in r.detail


def test_p3_fails_when_only_the_derivative_is_wrong():
    # f = b^-a Gamma(a) (1 - e^-W): f(0) = 0, f' = b^-a Gamma(a) e^-W > 0, f -> b^-a Gamma(a),
    # so three of the four parts hold; only W f' = W^a e^(-bW) fails (any `and` -> `or` verifies)
    r = P.check_p3(surrogate=lambda a, b: b**-a * sp.gamma(a) * (1 - sp.exp(-W)))
    assert r.status == "failed"
    assert "f(0) = 0;" in r.detail and "> 0: True" in r.detail
    assert "b^(-a) Gamma(a): True)" in r.detail
    assert "simplifies to 0;" not in r.detail


# ------------------------------------------------------------------------------------ P4 ----


def test_p4_detail_pins_the_derivation_and_is_reproducible():
    # by hand: log(phi/W) = (k-1) log W + lam (1 - W), so d/dW = 0 at W = (k-1)/lam and
    # d2/dW2 = -(k-1)/W^2 = -s/W^2 at k = 1 + s; the seeded laws make the whole detail repeat
    r = P.check_p4()
    assert r.status == "verified"
    assert r.detail.startswith(
        "solved d/dW log(phi/W) = 0: W = [(k - 1)/lam]; k = 1 + s: "
        "d2 log(phi/W)/dW2 = -s/W**2 < 0 (True), phi/W -> 0 at 0+ and 0 at oo"
    )
    assert "; finite iff k >= 1 at k in " in r.detail  # parts joined by "; "
    assert P.check_p4().detail == r.detail


def test_p4_fails_when_only_the_claimed_K_is_wrong():
    # 2K is too large: the numeric bound E[phi^2] <= 2K E[phi W] still holds, the paper's values
    # and bounds.phi_K are compared with the *derived* K, the threshold is right; only the
    # symbolic comparison with the claim fails
    r = P.check_p4(claimed_K=2 * K_FORMULA)
    assert r.status == "failed"
    assert "(False); k = 1: phi/W decreasing (True)" in r.detail
    assert "lim_(W->0+) phi/W = oo; finite iff k >= 1" in r.detail and ": agrees;" in r.detail
    assert "(paper: e^2/3, 1: True)" in r.detail and "(incl. k = 1 and k < 1): True" in r.detail
    assert _excess(r.detail) <= 1e-12  # the numeric bounds hold (tolerance as in the check)


def test_p4_fails_on_a_threshold_just_below_1():
    # K = inf at k = 3/4 (phi/W = W^(-1/4) e^(lam (1-W)) -> oo at 0+), claimed finite there
    r = P.check_p4(finite_from=R(3, 4))
    assert r.status == "failed"
    assert "wrong at k = 3/4" in r.detail


def test_p4_fails_on_a_threshold_just_above_1():
    # at k = 1, phi/W = e^(lam (1-W)) -> e^lam: K is finite there, claimed infinite below 101/100
    r = P.check_p4(finite_from=R(101, 100))
    assert r.status == "failed"
    assert "wrong at k = 1" in r.detail


def test_p4_fails_when_bounds_phi_K_is_off(monkeypatch):
    # phi_K off by a relative 1e-9 (1000 times the link's tolerance 1e-12), right for k < 1 (inf)
    true = bounds.phi_K
    monkeypatch.setattr(bounds, "phi_K", lambda kk, ll: (1 + 1e-9) * true(kk, ll))
    r = P.check_p4()
    assert r.status == "failed"
    assert "(paper: e^2/3, 1: True); bounds.phi_K / log_phi_K agree" in r.detail
    assert "(incl. k = 1 and k < 1): False" in r.detail


@pytest.mark.parametrize("pair", [(2, 3), (3, 2)])
def test_p4_fails_when_bounds_phi_K_is_off_at_a_deployed_pair_only(monkeypatch, pair):
    # the deployed kernel's pairs (arXiv 2602.10693 §3.3) must be among the linked points
    true = bounds.phi_K
    monkeypatch.setattr(
        bounds, "phi_K", lambda kk, ll: true(kk, ll) * (1 + 1e-9 * ((kk, ll) == pair))
    )
    r = P.check_p4()
    assert r.status == "failed" and "(incl. k = 1 and k < 1): False" in r.detail


def test_p4_fails_when_bounds_phi_K_is_finite_below_k_1(monkeypatch):
    # right for k >= 1, but finite (1.0) for k < 1 where K = inf
    true = bounds.phi_K
    monkeypatch.setattr(bounds, "phi_K", lambda kk, ll: true(kk, ll) if kk >= 1 else 1.0)
    r = P.check_p4()
    assert r.status == "failed" and "(incl. k = 1 and k < 1): False" in r.detail


def test_p4_link_tolerance_is_relative(monkeypatch):
    # phi_K off by a relative 5e-13, inside the stated relative tolerance 1e-12 (rounding of the
    # float64 formula is ~1e-16): the link holds at every point, whatever the size of K there
    true = bounds.phi_K
    monkeypatch.setattr(bounds, "phi_K", lambda kk, ll: (1 + 5e-13) * true(kk, ll))
    r = P.check_p4()
    assert r.status == "verified", r.detail


def test_p4_fails_when_only_the_paper_values_are_wrong(monkeypatch):
    # a kernel c(k) W^k e^(lam(1-W)) with c = e^((k-1)^2 (k-2)^2) >= 1: same argmax and shape,
    # K_c = c K, equal to the paper's K at k = 1 and k = 2 but e^4 (not 1) at (3, 2). With the
    # claim c K and bounds.phi_K scaled by c, every part holds except the paper's K(3,2) = 1
    # (the numeric laws use the true kernel and c K >= K, so that bound holds too).
    c = sp.exp((k - 1) ** 2 * (k - 2) ** 2)
    monkeypatch.setattr(P, "_default_kernel", lambda: c * W**k * sp.exp(lam * (1 - W)))
    true = bounds.phi_K
    monkeypatch.setattr(
        bounds, "phi_K", lambda kk, ll: math.exp((kk - 1) ** 2 * (kk - 2) ** 2) * true(kk, ll)
    )
    r = P.check_p4(claimed_K=c * K_FORMULA)
    assert r.status == "failed"
    assert "K(3,2) = exp(4)" in r.detail and "(paper: e^2/3, 1: False)" in r.detail
    assert "(incl. k = 1 and k < 1): True" in r.detail
    assert "(True); k = 1: phi/W decreasing (True)" in r.detail and ": agrees;" in r.detail


def test_p4_fails_cleanly_on_two_stationary_points(monkeypatch):
    # phi/W = e^(-(W-1)(W-2)(W-3)): d/dW log(phi/W) = 0 at W = 2 -+ 1/sqrt(3), two points
    monkeypatch.setattr(P, "_default_kernel", lambda: W * sp.exp(-(W - 1) * (W - 2) * (W - 3)))
    r = P.check_p4()
    assert r.status == "failed"
    assert r.detail.startswith("solved d/dW log(phi/W) = 0: W = [2 - sqrt(3)/3, sqrt(3)/3 + 2];")


def test_p4_fails_when_sympy_cannot_prove_log_concavity(monkeypatch):
    # SymPy answers "unknown" (None) to every sign question "is ... negative?": concavity is not
    # proved, so the check must fail although every other part holds
    def ask(prop, *assumptions):
        return None if prop.function == sp.Q.negative else sp.ask(prop, *assumptions)

    monkeypatch.setattr(P, "sp", _SympyWith(ask=ask))
    r = P.check_p4()
    assert r.status == "failed" and "< 0 (False), phi/W -> 0 at 0+" in r.detail
    r5 = P.check_p5()
    assert r5.status == "failed" and "< 0 (False);" in r5.detail


# ---------------------------------------------------- P4's numeric bound, laws known by hand ----


def test_p4_numeric_bound_on_diracs_known_by_hand(monkeypatch):
    monkeypatch.setattr(P, "_p4_laws", _dirac_laws)
    r = P.check_p4()
    assert r.status == "verified", r.detail
    n = _n_pairs(r.detail)
    assert f"on {3 * n} seeded laws of W" in r.detail  # three laws per pair
    # on each pair M^2 is the smaller bound on exactly the Dirac at argmax phi (see _dirac_laws)
    won = "K E[phi W] smaller on 2 of 3 laws, M^2 on [Dirac at argmax phi]"
    assert r.detail.count(won) == n
    # the two tight laws are equalities up to float64 rounding of a few products (~1e-16)
    assert abs(_excess(r.detail)) < 1e-14


def test_p4_fails_when_phi_max_is_too_small(monkeypatch):
    # M 1e-9 too small (relative): on the Dirac at argmax phi, E[phi^2] / M'^2 - 1
    # = 1/(1-1e-9)^2 - 1 = 2.0e-9 for every pair (a relative excess does not depend on M);
    # that law is the second of three, the last one is slack
    monkeypatch.setattr(P, "_p4_laws", _dirac_laws)
    true = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: (1 - 1e-9) * true(kk, ll))
    r = P.check_p4()
    assert r.status == "failed"
    assert "max relative excess 2.00e-09;" in r.detail


def test_p4_fails_when_the_numeric_K_is_too_small(monkeypatch):
    # the numeric K (lambdify of the claim) 1e-9 too small (relative): on the Dirac at argmax
    # phi/W, E[phi^2] / (K' E[phi W]) - 1 = 1/(1-1e-9) - 1 = 1.0e-9 for every pair; (6, 1) added,
    # where K E[phi W] = phi(5)^2 ~ 8e4 and E[phi W] ~ 1.4e3 are far from 1
    monkeypatch.setattr(P, "_p4_laws", _dirac_laws)
    monkeypatch.setattr(P, "_PAIRS", ((2, 3), (3, 2), (6, 1)))
    monkeypatch.setattr(P, "sp", _SympyWith(lambdify=_scaled_lambdify(1 - 1e-9)))
    r = P.check_p4()
    assert r.status == "failed"
    assert "max relative excess 1.00e-09;" in r.detail


def test_p4_numeric_tolerance_is_relative_on_large_values(monkeypatch):
    # pairs where phi, K E[phi W] and M^2 are large ((6, 1): M ~ 314, K E[phi W] ~ 8e4; (8, 1/2):
    # M ~ 2.4e6): K and M each 1e-14 too small (relative), far inside the tolerance 1e-12, so the
    # largest relative excess is 2e-14 (plus rounding ~1e-16) whatever the size of the values
    monkeypatch.setattr(P, "_PAIRS", ((6, 1), (8, 0.5)))
    monkeypatch.setattr(P, "sp", _SympyWith(lambdify=_scaled_lambdify(1 - 1e-14)))
    true = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: (1 - 1e-14) * true(kk, ll))
    monkeypatch.setattr(P, "_p4_laws", _dirac_laws)
    r = P.check_p4()
    assert r.status == "verified", r.detail
    assert 1.5e-14 < _excess(r.detail) < 2.5e-14


def test_p4_identity_tolerance_is_relative_on_large_values(monkeypatch):
    # the seeded laws (80-point quadratures, 8-atom discrete laws) on pairs with large phi: the
    # identity Z K E_Q[W] = K E[phi W] holds up to float64 rounding, relative ~1e-16
    monkeypatch.setattr(P, "_PAIRS", ((6, 1), (8, 0.5)))
    r = P.check_p4()
    assert r.status == "verified", r.detail


# ------------------------------------------------------------------- P4's seeded laws ----


def test_gauss_lognormal_is_an_80_point_rule_with_the_lognormal_moments():
    # W = e^Y, Y ~ N(m, s^2): E[W] = e^(m + s^2/2), E[W^2] = e^(2m + 2s^2). An 80-point
    # Gauss-Hermite rule integrates these to float64 rounding (measured ~5e-16): tol 1e-12.
    for m, s in ((-1 / 32, 0.25), (0.3, 1.0), (-2.0, 2.0)):
        ws, p = P._gauss_lognormal(m, s)
        assert ws.size == p.size == 80  # the detail says "80-point Gauss-Hermite"
        assert abs(p.sum() - 1) < 1e-12
        assert abs(p @ ws / math.exp(m + s * s / 2) - 1) < 1e-12
        assert abs(p @ ws**2 / math.exp(2 * m + 2 * s * s) - 1) < 1e-12


def test_p4_laws_match_their_docstring():
    for kk, ll in ((2.0, 3.0), (3.0, 2.0), (4.5, 1.5)):
        laws = P._p4_laws(kk, ll, np.random.default_rng(0), 3)
        # argmax phi/W by hand: d/dW [(k-1) log W - lam W] = 0 at (k-1)/lam
        w_k, w_m = (kk - 1) / ll, kk / ll
        ws, p = laws["Dirac at argmax phi/W"]
        assert ws.tolist() == [w_k] and p.tolist() == [1.0]
        lognormal = [name for name in laws if name.startswith("log-normal")]
        assert len(laws) == 1 + 3 + len(lognormal) and lognormal
        for i in range(3):
            ws, p = laws[f"discrete #{i}"]
            assert ws.size == p.size and abs(p.sum() - 1) < 1e-12  # float64 sum of <= 8 terms
            assert (p > 0).all()
            for target in (w_k, w_m):
                # "atoms near (k-1)/lam and k/lam": the point itself (exact float arithmetic of
                # the same quotient, relative 1e-12) and another atom within 2 %
                rel = np.abs(ws / target - 1)
                assert (rel < 1e-12).sum() >= 1
                assert ((rel >= 1e-12) & (rel < 0.02)).sum() >= 1
        for name in lognormal:
            ws, p = laws[name]
            # log-normal(-s^2/2, s^2): the law of an importance weight, E[W] = 1 and
            # E[W^2] = e^(s^2); quadrature to rounding (see above): tol 1e-12
            s = float(name.split("s = ")[1])
            assert abs(p @ ws - 1) < 1e-12
            assert abs(p @ ws**2 / math.exp(s * s) - 1) < 1e-12
    # k = 1: sup phi/W is the limit W -> 0+; the Dirac sits at a tiny positive W
    (w1,), _ = P._p4_laws(1.0, 2.0, np.random.default_rng(0), 0)["Dirac at argmax phi/W"]
    assert 0 < w1 <= 1e-6


# ------------------------------------------------------------------------------------ P5 ----


def test_p5_fails_cleanly_on_two_stationary_points(monkeypatch):
    # phi = e^(-(W-1)(W-2)(W-3)): d log phi/dW = 0 at W = 2 -+ 1/sqrt(3), two points; the check
    # returns a full, failed record for P5 (catalogue text, method "symbolic", the points found)
    monkeypatch.setattr(P, "_default_kernel", lambda: sp.exp(-(W - 1) * (W - 2) * (W - 3)))
    r = P.check_p5()
    assert r.id == "P5" and r.status == "failed" and r.method == "symbolic"
    assert r.statement == claims.statement("P5")
    assert r.assumptions == claims.assumptions("P5")  # no premises on top
    assert r.detail == "d log phi/dW = 0 gave [2 - sqrt(3)/3, sqrt(3)/3 + 2], not one point"


def test_p5_fails_when_bounds_phi_max_is_off(monkeypatch):
    # phi_max off by a relative 1e-9, 1000 times the stated tolerance 1e-12
    true = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: (1 + 1e-9) * true(kk, ll))
    r = P.check_p5()
    assert r.status == "failed"
    assert "paper 1.2081, bounds.phi_max agrees: False" in r.detail


def test_p5_phi_max_tolerance_is_relative(monkeypatch):
    # phi_max off by a relative 5e-13, inside the stated relative 1e-12, on a pair with a large
    # M: (6, 1) has M = 6^6 e^-5 (by hand, float64 here), about 314
    true = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: (1 + 5e-13) * true(kk, ll))
    m61 = f"{6**6 * math.exp(-5):.4f}"
    r = P.check_p5(paper_values=((2, 3, "1.2081"), (3, 2, "1.2416"), (6, 1, m61)))
    assert r.status == "verified", r.detail
    assert f"paper {m61}, bounds.phi_max agrees: True" in r.detail
