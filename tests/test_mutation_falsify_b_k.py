"""Tests that kill the mutants of ``simulations/falsify/claims.py`` (claims B1, B2, B3, K3, K4)
that the claim searches of tests/test_falsify.py let live (see docs/mutation.md).

What they pin, each derived by hand or from the formula the module documents, not read back from
the code:

* B1's search space: the strategy reaches the corners of the stated domain (k, lam in
  [1e-3, 1e3]; log W from multi-token sums and single values out to +-1e4) and nothing outside;
* the rounding tolerances of B1, B2, B3 and K3 at their edges: a kernel (and M) planted by
  monkeypatch puts lhs just inside / just outside the documented tolerance, so that a tolerance
  looser or tighter than documented (a changed factor, a dropped or sign-flipped term) is caught;
* B2's tolerance when an outcome has phi = 0 (pi = 0: log phi = -inf) or every outcome has;
* the input checks of B3 (score shape and finiteness, the n-tuple size limit at 10^4) and K3
  (three distinct positive points), and K4's range 1e-6 <= |x| <= 0.5;
* K4's Lagrange-remainder parts a, b, c, M and rnd, and its right-hand side, against hand values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from simulations.falsify import claims as C
from vespo_theory import bounds, kernels

EPS = 2.0**-52  # float64 machine epsilon, the unit of every documented tolerance here
TINY = 2.0**-1074  # the smallest subnormal, B3's absolute-tolerance unit

DEPLOYED = {"k_pos": 2.0, "lam_pos": 3.0, "k_neg": 3.0, "lam_neg": 2.0}


def _plant(monkeypatch, log_phi, log_m):
    """Replace the kernel's log phi and log M (looked up by the evaluators at call time)."""
    monkeypatch.setattr(kernels, "log_phi", log_phi)
    monkeypatch.setattr(bounds, "log_phi_max", lambda k, lam: log_m)


def _holds(check) -> bool:
    return bool(check.lhs <= check.rhs)


# ------------------------------------------------------------------------------ B1 strategy ----


def test_b1_strategy_reaches_the_corners_of_its_stated_domain_and_no_further():
    """Stated: k, lam in [1e-3, 1e3]; W from sums of up to 64 token log-ratios or log W anywhere
    in [-1e4, 1e4]. Draw 150 instances (derandomized: the same ones every run) and check that
    large and small k/lam, multi-token sums and |log W| > 5000 of both signs (beyond any sum of
    64 tokens of at most 50 each, 3200) all occur, and that nothing lies outside the domain."""
    seen = []

    @settings(
        database=None,
        derandomize=True,
        max_examples=150,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(C._b1_strategy())
    def collect(inst):
        seen.append(inst)

    collect()
    kl = [inst[key] for inst in seen for key in ("k", "lam")]
    assert all(1e-3 <= v <= 1e3 for v in kl)
    assert any(v > 500 for v in kl) and any(v < 0.5 for v in kl)
    singles = [inst["tok_log_ratio"][0] for inst in seen if len(inst["tok_log_ratio"]) == 1]
    assert all(math.isfinite(v) and -1e4 <= v <= 1e4 for v in singles)
    assert any(len(inst["tok_log_ratio"]) > 1 for inst in seen)
    lws = [math.fsum(inst["tok_log_ratio"]) for inst in seen]
    assert any(v > 5000 for v in lws) and any(v < -5000 for v in lws)


# ------------------------------------------------------------------------------ B1 ----


def _b1_tol(k, lam, lw, log_m):
    """B1's documented tolerance: 8 eps times the magnitudes in k log W + lam (1 - W) and log M
    (exp(log W) capped at e^700, where it would overflow)."""
    return 8 * EPS * (abs(k * lw) + lam * (1 + math.exp(min(lw, 700.0))) + abs(log_m) + k + lam)


@pytest.mark.parametrize(
    ("k", "lam", "lw", "log_m", "margin"),
    [
        # log M = 0: lM + f tol is exact to ~1e-16 relative, so a 1e-3 margin resolves any change
        # of tol's formula (the smallest here, lam (1 + W) -> lam (2 + W), moves it by 9 %)
        (300.0, 100.0, 1.0, 0.0, 1e-3),
        # log W > 700: the cap of exp at 700 (e^701 would triple tol)
        (1.0, 1.0, 800.0, 0.0, 1e-3),
        # |log M| dominates tol (~16 ulps of log M = -1000): margin 1/2, i.e. ~8 ulps either side
        (1e-3, 1e-3, 0.0, -1000.0, 0.5),
    ],
)
def test_b1_tolerance_edge(monkeypatch, k, lam, lw, log_m, margin):
    tol = _b1_tol(k, lam, lw, log_m)
    inst = {"k": k, "lam": lam, "tok_log_ratio": [lw]}
    for f, expect in ((1 - margin, True), (1 + margin, False)):
        _plant(monkeypatch, lambda x, k_, lam_, f=f: np.float64(log_m + f * tol), log_m)
        (check,) = C._b1(inst)
        assert _holds(check) is expect, (f, check)


def test_b1_true_kernel_at_its_peak_needs_the_tolerance():
    """k = 999, lam = 0.3 at W = k/lam: float64 puts log phi a few ulps above log M (a rounding
    artefact, the true values are equal); the check must still hold."""
    k, lam = 999.0, 0.3
    (check,) = C._b1({"k": k, "lam": lam, "tok_log_ratio": [math.log(k / lam)]})
    assert check.lhs > bounds.log_phi_max(k, lam)
    assert _holds(check)


# ------------------------------------------------------------------------------ B2 ----


def _b2_tol(n, lp_finite, log_m, k, lam):
    """B2's documented tolerance: 16 eps (n + max |finite log phi| + |log M| + k + lam)."""
    return 16 * EPS * (n + max([abs(v) for v in lp_finite], default=0.0) + abs(log_m) + k + lam)


@pytest.mark.parametrize(
    ("k", "lam", "log_m", "margin"),
    [
        # log M = 0: exact to ~1e-16 relative; 1e-3 resolves 16 -> 17 eps (6 %), a dropped max
        # initial (0 -> 1: tol +15 %) and -k (tol < 0)
        (5.0, 1e-3, 0.0, 1e-3),
        # |log M| = 1 is a third of tol = 48 eps: margin 0.4 (~19 eps, ~19 ulps of 1) either
        # side; - |log M| would cut tol to a third
        (1e-3, 1e-3, 1.0, 0.4),
    ],
)
def test_b2_tolerance_edge(monkeypatch, k, lam, log_m, margin):
    """One outcome (mu = 1), log phi planted at log M + f tol: E[phi] = phi, so both checks sit at
    the edge log phi <= log M + tol (the first as 2 log phi <= log M + log phi + tol)."""
    inst = {"k": k, "lam": lam, "mu": [1.0], "log_w": [0.0]}
    for f, expect in ((1 - margin, True), (1 + margin, False)):
        c = log_m + f * _b2_tol(1, [log_m], log_m, k, lam)
        # recompute with the planted |log phi| = |c| in the max term (c differs from log M by
        # ~1e-14, which moves tol by ~1e-29)
        c = log_m + f * _b2_tol(1, [c], log_m, k, lam)
        _plant(monkeypatch, lambda x, k_, lam_, c=c: np.full(np.shape(x), c), log_m)
        checks = C._b2(inst)
        assert [_holds(ch) for ch in checks] == [expect, expect], (f, checks)


def test_b2_zero_phi_on_one_outcome_keeps_the_tolerance_finite(monkeypatch):
    """pi = 0 on one outcome (log phi = -inf there): the tolerance is taken over the finite log
    phi only. A phi planted 1e-6 above M (in log) on the other outcome must still fail the first
    check: log E[phi^2] = 2e-6 + log 1/2 > log M + log E[phi] = 1e-6 + log 1/2 (tol ~ 1e-14)."""
    _plant(monkeypatch, lambda x, k_, lam_: np.array([1e-6, -np.inf]), 0.0)
    inst = {"k": 2.0, "lam": 3.0, "mu": [0.5, 0.5], "pi": [1.0, 0.0]}
    checks = C._b2(inst)
    assert not _holds(checks[0])
    assert checks[0].rhs - checks[0].lhs == pytest.approx(-1e-6, abs=1e-12)  # 1e-12: >> tol


def test_b2_phi_zero_everywhere_holds():
    """Every log W = -inf: phi = 0 on the whole support, E[phi] = E[phi^2] = 0, both claims
    hold (-inf <= -inf, -inf <= log M). No finite log phi: the max term is 0, not an error."""
    checks = C._b2({"k": 2.0, "lam": 3.0, "mu": [0.5, 0.5], "log_w": [-math.inf, -math.inf]})
    assert all(_holds(ch) for ch in checks)
    assert checks[0].lhs == -math.inf and checks[1].lhs == -math.inf
    assert checks[1].rhs == pytest.approx(math.log(4 / 9) + 1, abs=1e-12)  # log M, (2/3)^2 e


# ------------------------------------------------------------------------------ B3 ----


def _b3_inst(m=2, n=1, score=None, **extra):
    mu = [1.0 / m] * m
    inst = {
        "params": dict(DEPLOYED),
        "mu": mu,
        "pi": mu,
        "adv": [1.0] * m,
        "score": score if score is not None else [[1.0]] * m,
        "n": n,
    }
    inst.update(extra)
    return inst


@pytest.mark.parametrize(
    "score",
    [
        [[1.0], [math.inf]],  # right shape, not finite
        [[1.0]],  # one row for two outcomes (would broadcast)
        [1.0, 2.0],  # 1-D, right length (adv[:, None] * score would be a 2x2 matrix)
    ],
)
def test_b3_rejects_a_bad_score(score):
    with pytest.raises(ValueError, match=r"score must be a \[2\]\[dim\] list"):
        C._b3(_b3_inst(2, 1, score))


@pytest.mark.parametrize(("m", "n"), [(2, 0), (5, 6), (10001, 1)])
def test_b3_rejects_n_zero_and_more_than_ten_thousand_tuples(m, n):
    """n = 0, 5^6 = 15625 and 10001^1 tuples are out (the enumeration is capped at 10^4)."""
    with pytest.raises(ValueError, match="n must be >= 1 with support"):
        C._b3(_b3_inst(m, n))


def test_b3_accepts_exactly_ten_thousand_tuples():
    """10^4 = 10 outcomes, n = 4: at the cap, allowed. mu = pi (W = 1), A = 1, g = A s: phi(1)
    = 1 for the deployed kernels (1^k e^0), so the batch mean of n i.i.d. s has trace variance
    Var[s]/n, here scores 0..9 uniform: Var = (10^2 - 1)/12 = 8.25, / 4."""
    checks = C._b3(_b3_inst(10, 4, [[float(i)] for i in range(10)]))
    assert checks[0].lhs == pytest.approx(8.25 / 4, rel=1e-12)  # 1e-12: sums of 10^4 terms
    assert all(_holds(ch) for ch in checks)


def test_b3_reads_an_integer_score_beyond_int64_as_a_float():
    """A replayed JSON instance may carry integers; 2^70 does not fit int64, the evaluator must
    read it as the float 2^70, the same as the float input."""
    as_int = C._b3(_b3_inst(2, 2, [[2**70], [3]]))
    as_float = C._b3(_b3_inst(2, 2, [[2.0**70], [3.0]]))
    assert [(c.lhs, c.rhs) for c in as_int] == [(c.lhs, c.rhs) for c in as_float]


def test_b3_absolute_tolerance_edge(monkeypatch):
    """phi planted to 0 (both right sides are then atol alone) and the batch variance planted at
    exactly the documented atol = 8 support^n dim subnormals, then one subnormal more: support
    2, n = 3, dim = 3 -> 8 * 8 * 3 = 192 subnormals (exact in float64)."""
    monkeypatch.setattr(kernels, "phi_signed", lambda lw, adv, params: np.zeros(np.shape(lw)))
    inst = _b3_inst(2, 3, [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    for units, expect in ((192, True), (193, False)):
        monkeypatch.setattr(C, "_batch_var", lambda p, x, n, u=units: u * TINY)
        check = C._b3(inst)[0]
        assert check.rhs == 192 * TINY
        assert _holds(check) is expect, units


# ------------------------------------------------------------------------------ K3 ----


@pytest.mark.parametrize(
    "w",
    [[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0], [-1.0, 1.0, 2.0], [1.0, 1.0, 2.0], [1.0, 2.0, 2.0]],
)
def test_k3_rejects_anything_but_three_distinct_positive_points(w):
    with pytest.raises(ValueError, match="w must hold three distinct positive numbers"):
        C._k3({"k": 2.0, "lam": 3.0, "w": w})


def _k3_err(v, k, lam):
    """K3's documented rounding bound of log phi at W = v (8 eps times the magnitudes)."""
    lv = abs(math.log(v))
    return 8 * EPS * (k * (lv + 1) + lam * (1 + v) * (lv + 1) + 1)


def _k3_e_star(k, lam, log_m):
    return _k3_err(k / lam, k, lam) + 8 * EPS * (abs(log_m) + k + lam)


def _k3_planted(monkeypatch, k, lam, w, lp_at_w, lp_star, log_m):
    """log phi planted: lp_at_w[i] at log w[i], lp_star anywhere else (at log(k/lam))."""
    table = {math.log(v): val for v, val in zip(w, lp_at_w)}
    _plant(monkeypatch, lambda x, k_, lam_: table.get(float(x), lp_star), log_m)
    return C._k3({"k": k, "lam": lam, "w": w})


# k/lam = 4 (neither 1 nor lam/k... so err(k/lam) differs from err(k*lam)); log M planted 0
K3_K, K3_LAM, K3_W = 2.0, 0.5, [0.1, 2.0, 30.0]


@pytest.mark.parametrize("f", [1 - 1e-9, 1 + 1e-9])
def test_k3_peak_tolerance_edge(monkeypatch, f):
    """|log phi(k/lam) - log M| <= e_star = err(k/lam) + 8 eps (|log M| + k + lam); with log M
    planted 0 the sides are exact to ~1e-16 relative: 1e-9 either side resolves the formula."""
    e_star = _k3_e_star(K3_K, K3_LAM, 0.0)
    checks = _k3_planted(monkeypatch, K3_K, K3_LAM, K3_W, [-50.0] * 3, f * e_star, 0.0)
    assert _holds(checks[0]) is (f < 1)


@pytest.mark.parametrize("i", [0, 1, 2])
@pytest.mark.parametrize("f", [1 - 1e-9, 1 + 1e-9])
def test_k3_point_tolerance_edge(monkeypatch, i, f):
    """log phi(v) <= log phi(k/lam) + err(v) + e_star at each point, log phi(k/lam) = log M = 0
    planted: log phi(v) at f times the documented allowance (exact to ~1e-16 relative)."""
    v = K3_W[i]
    allowance = _k3_err(v, K3_K, K3_LAM) + _k3_e_star(K3_K, K3_LAM, 0.0)
    lp = [-50.0] * 3
    lp[i] = f * allowance
    checks = _k3_planted(monkeypatch, K3_K, K3_LAM, K3_W, lp, 0.0, 0.0)
    assert _holds(checks[1 + i]) is (f < 1)


# close points: e_d2 ~ 4 err / h^2 ~ 3e-8, against rounding of d2 ~ 1e-15 (|d2| ~ 2)
K3_CLOSE = [1.0, 1.001, 1.002]


def _k3_e_d2(w, k, lam):
    h1, h2 = w[1] - w[0], w[2] - w[1]
    e = max(_k3_err(v, k, lam) for v in w)
    # divided difference of values each off by <= e: |error| <= 2 (2e/h2 + 2e/h1) / (h1 + h2)
    return 2 * (2 * e / h2 + 2 * e / h1) / (h1 + h2), h1, h2


@pytest.mark.parametrize("side", ["upper", "lower"])
@pytest.mark.parametrize("f", [1 - 1e-3, 1 + 1e-3])
def test_k3_second_difference_tolerance_edge(monkeypatch, side, f):
    """The second divided difference d2 of planted log phi values (0, 0, y: d2 = 2 y / (h2 (h1 +
    h2))) put f * e_d2 past the edge -k/W3^2 (upper check) or -k/W1^2 (lower check). 1e-3 of
    e_d2 is ~3e-11, far above the rounding of d2 (~1e-15) and below any change of e_d2's
    formula (the smallest, a factor 2 -> 3 on one term, moves it by 25 %)."""
    k, lam, w = 2.0, 0.5, K3_CLOSE
    e_d2, h1, h2 = _k3_e_d2(w, k, lam)
    if side == "upper":
        target, idx = -k / w[2] ** 2 + f * e_d2, 4
    else:
        target, idx = -k / w[0] ** 2 - f * e_d2, 5
    y = target * h2 * (h1 + h2) / 2
    checks = _k3_planted(monkeypatch, k, lam, w, [0.0, 0.0, y], 0.0, 0.0)
    d2 = checks[4].lhs
    assert d2 == pytest.approx(target, rel=1e-14)  # 1e-14: a few roundings of an O(1) number
    assert _holds(checks[idx]) is (f < 1)


# ------------------------------------------------------------------------------ K4 ----


@pytest.mark.parametrize("x", [1e-6, -1e-6, 0.5, -0.5])
def test_k4_accepts_the_ends_of_its_range(x):
    (check,) = C._k4({"k": 2.0, "lam": 3.0, "x": x})
    assert _holds(check)


@pytest.mark.parametrize("x", [0.6, -0.6, 1e-7])
def test_k4_rejects_x_outside_its_range(x):
    with pytest.raises(ValueError, match=r"x must satisfy 1e-6 <= \|x\| <= 0.5"):
        C._k4({"k": 2.0, "lam": 3.0, "x": x})


# g = log phi = k log W + lam (1 - W), k = 2, lam = 3: g' = 2/W - 3, g'' = -2/W^2, g''' = 4/W^3.
# x = 0.5, W in [1, 1.5]: a = max(|2 - 3|, |4/3 - 3|) = 5/3, b = 2, c = 4.
# x = -0.5, W in [0.5, 1]: a = max(|4 - 3|, |2 - 3|) = 1, b = 2/0.25 = 8, c = 4/0.125 = 32.
K4_HAND = {0.5: (5 / 3, 2.0, 4.0), -0.5: (1.0, 8.0, 32.0)}
M_23 = 4 / 9 * math.e  # M = (k/lam)^k e^(lam - k) = (2/3)^2 e


def _phi_23(x):
    return (1 + x) ** 2 * math.exp(-3 * x)  # W^k e^(lam (1 - W)) at W = 1 + x


def _rnd(k, lam, x):
    """K4's documented rounding allowance: 16 eps (phi (k |log W| + lam |x| + 1) + 1 +
    (k + lam)^2) (phi's own rounding, and that of the Taylor polynomial's terms)."""
    ph = (1 + x) ** k * math.exp(-lam * x)
    return 16 * EPS * (ph * (k * abs(math.log1p(x)) + lam * abs(x) + 1) + 1 + (k + lam) ** 2)


@pytest.mark.parametrize("x", [0.5, -0.5])
def test_taylor_parts_match_hand_values(x):
    k, lam, x_, ph, a, b, c, M, rnd = C._taylor_parts({"k": 2.0, "lam": 3.0, "x": x})
    assert (k, lam, x_) == (2.0, 3.0, x)
    ha, hb, hc = K4_HAND[x]
    # 1e-12 relative: a handful of float operations on O(1) numbers
    assert a == pytest.approx(ha, rel=1e-12)
    assert b == pytest.approx(hb, rel=1e-12)
    assert c == pytest.approx(hc, rel=1e-12)
    assert M == pytest.approx(M_23, rel=1e-12)
    assert ph == pytest.approx(_phi_23(x), rel=1e-12)
    # rnd's terms differ by >= 1 % under any change of its formula; recomputing it is exact to
    # ~1e-15 (ph enters one term of ~25: its 1e-15 error is far below)
    assert rnd == pytest.approx(_rnd(2.0, 3.0, x), rel=1e-9, abs=0)  # rnd ~ 1e-13: no abs floor


@pytest.mark.parametrize("x", [0.5, -0.5])
def test_k4_right_side_is_the_lagrange_remainder(x):
    """rhs = M (a^3 + 3ab + c) |x|^3 / 6 + rnd with the hand values; lhs = |phi(1+x) - T2(x)|,
    T2 = 1 + (k - lam) x + ((k - lam)^2 - k) x^2 / 2 = 1 - x - x^2/2."""
    (check,) = C._k4({"k": 2.0, "lam": 3.0, "x": x})
    a, b, c = K4_HAND[x]
    rem = M_23 * (a**3 + 3 * a * b + c) * abs(x) ** 3 / 6
    assert check.rhs == pytest.approx(rem + _rnd(2.0, 3.0, x), rel=1e-12)  # as above
    assert check.lhs == pytest.approx(abs(_phi_23(x) - (1 - x - x * x / 2)), rel=1e-12)
    assert _holds(check)


def test_b2_tolerance_ignores_outcomes_of_no_weight(monkeypatch):
    """A defect the mutation triage found: the tolerance took the max |log phi| over every
    outcome, so an outcome of weight ~0 (mu = e^-40, W = e^40 / 2: log phi ~ -1e18) made it
    ~2e4 in log space and a kernel e^100 times too large passed both checks. The tolerance now
    weights each |log phi| by its share of the sums; the planted kernel fails both checks (by
    ~80 and ~80 in log space, far beyond any rounding)."""
    from vespo_theory import kernels

    inst = {"k": 2.0, "lam": 50.0, "mu": [1 - math.exp(-40), math.exp(-40)], "pi": [0.5, 0.5]}
    assert all(_holds(ch) for ch in C._b2(inst))  # the true kernel holds
    real = kernels.log_phi
    monkeypatch.setattr(kernels, "log_phi", lambda x, k, lam: np.asarray(real(x, k, lam)) + 100)
    checks = C._b2(inst)
    assert not any(_holds(ch) for ch in checks), checks
    assert all(ch.rhs - ch.lhs < -50 for ch in checks)
