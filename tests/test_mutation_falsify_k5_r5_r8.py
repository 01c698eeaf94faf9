"""Tests that kill the mutants of ``simulations/falsify/claims.py``'s K5, R5 and R8 evaluators
(and the helpers they share: ``_direction_tol``, ``_bandit``, ``_r8_parts``, the registry) that
the property searches of tests/test_falsify*.py let live (see docs/mutation.md).

The searches only look at verdicts at budget 100, so a tolerance a few times too loose or too
tight, a bound picked at the wrong outcome, or an argument not passed on to the lattice, goes
unseen. Here each evaluator is fed hand-built instances whose sides are known in closed form:
K5's tolerances at the edge of a planted rounding error (``kernels.log_phi`` stubbed to
``log W + c tol``, c just below or above 1), R8's vectors and their rounding slack on a bandit
whose sums are exact in thirds, R5 with the exact lattice stubbed so that what the evaluator hands
it (log mu, log pi, T, A, delta) and what it does with the answer are pinned; and the input
checks that must reject malformed premises.

Expected values are computed here from the formulas in the claims' statements, not copied from
the code. Every numeric tolerance states why it has its size.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import simulations.lattice as lattice
from simulations.falsify import claims as C
from simulations.falsify import get_claim
from vespo_theory import bounds, kernels

EPS = float(np.finfo(np.float64).eps)


def _k5_tol_pt(log_w: float) -> float:
    """K5's pointwise rounding slack, from the claim's statement: 64 eps times the magnitudes of
    log phi = 3 L + 2 (1 - e^L) and of the subtraction of L: 4|L| + 2 (1 + e^L) + 1."""
    return 64 * EPS * (4 * abs(log_w) + 2 * (1 + math.exp(log_w)) + 1)


def _stub_log_phi(monkeypatch, excess):
    """log phi(W) := log W + excess(log W): a planted rounding error of a chosen size."""
    calls = []

    def fake(log_w, k, lam):
        calls.append((k, lam))
        lw = np.asarray(log_w, dtype=np.float64)
        return lw + np.array([excess(float(v)) for v in lw])

    monkeypatch.setattr(kernels, "log_phi", fake)
    return calls


# ----------------------------------------------------------------------------- K5


@pytest.mark.parametrize("log_w", [1.0, -3.0])
def test_k5_pointwise_tolerance_edge(monkeypatch, log_w):
    # a planted excess of 0.99 tol_pt passes, 1.01 tol_pt fails: the tolerance is pinned to 1 %
    # (every mutated coefficient of tol_pt moves it by >= 1.5 %). At |L| <= 3 the sum L + c tol
    # rounds by <= 2 eps ~ 0.3 % of tol_pt (~800 eps), well inside the 1 % margin.
    inst = {"mu": [1.0], "log_w": [log_w], "score": [[1.0]]}
    for c, violated in ((0.99, False), (1.01, True)):
        calls = _stub_log_phi(monkeypatch, lambda v, c=c: c * _k5_tol_pt(v))
        checks = C._k5(inst)
        assert calls == [(3.0, 2.0)]
        assert checks[1].violated is violated, (c, checks[1])
        assert checks[1].lhs == log_w + c * _k5_tol_pt(log_w)


def test_k5_bound_taken_at_the_tightest_outcome(monkeypatch):
    # outcome 0: log W = 5, log phi = log W exactly (slack tol_pt(5) ~ 4.5e-12 left);
    # outcome 1: log W = 0, log phi = 2 tol_pt(0) (violated by tol_pt(0)). The check must report
    # outcome 1 (largest lp - L - tol_pt), not the largest lp +- anything else.
    _stub_log_phi(monkeypatch, lambda v: 0.0 if v == 5.0 else 2 * _k5_tol_pt(0.0))
    inst = {"mu": [0.5, 0.5], "log_w": [5.0, 0.0], "score": [[1.0], [1.0]]}
    check = C._k5(inst)[1]
    assert check.violated
    assert check.lhs == 2 * _k5_tol_pt(0.0)
    assert check.rhs == _k5_tol_pt(0.0)
    assert "log W = 0 " in check.what


def test_k5_log_k_tolerance_is_16_eps(monkeypatch):
    # |log K(3,2)| <= 16 eps: 15.5 eps passes and 16.5 eps fails (exact binary fractions of eps)
    for lk, violated in ((15.5 * EPS, False), (16.5 * EPS, True)):
        monkeypatch.setattr(bounds, "log_phi_K", lambda k, lam, lk=lk: lk)
        check = C._k5({"mu": [1.0], "log_w": [0.0], "score": [[1.0]]})[0]
        assert check.violated is violated
        assert check.rhs == 16 * EPS


@pytest.mark.parametrize(
    ("inst", "l_w2", "n", "big"),
    [
        # W = 1, ||g||^2 = 1: every term is 0, l_w2 = 0, big = 0
        ({"mu": [1.0], "log_w": [0.0], "score": [[1.0]]}, 0.0, 1, 0.0),
        # ||g||^2 = 4: l_w2 = log 4 = big
        ({"mu": [1.0], "log_w": [0.0], "score": [[2.0]]}, math.log(4.0), 1, math.log(4.0)),
        # a zero score (term -inf, left out of big): l_w2 = log 1/2 = -big
        (
            {"mu": [0.5, 0.5], "log_w": [0.0, 0.0], "score": [[1.0], [0.0]]},
            -math.log(2.0),
            2,
            math.log(2.0),
        ),
    ],
)
def test_k5_second_moment_tolerance_exact(inst, l_w2, n, big):
    # log phi(W = 1) = 3*0 + 2*(1 - 1) = 0 exactly, so both sides equal l_w2 up to the log-sum-exp
    # rounding; rhs = l_w2 + 16 eps (n + big + |l_w2|) + 2 * 64 eps * 5 (tol_pt at L = 0).
    # abs 4 eps: rounding of the sum l_w2 + tol (|l_w2| < 2, one ulp <= eps) and of logsumexp;
    # every mutated coefficient moves rhs by >= 16 eps.
    with warnings.catch_warnings():
        # log ||g||^2 = log 0 and 2 log phi underflow are handled on purpose, silently
        warnings.simplefilter("error", RuntimeWarning)
        check = C._k5(inst)[2]
    tol = 16 * EPS * (n + big + abs(l_w2)) + 2 * 64 * EPS * 5
    assert check.lhs == pytest.approx(l_w2, abs=4 * EPS)
    assert check.rhs == pytest.approx(l_w2 + tol, abs=4 * EPS)
    assert not check.violated


def test_k5_second_moment_tolerance_exact_in_eps():
    # W = 1, mu = 1, ||g|| = 1: every part is an integer multiple of eps (exact in binary):
    # rhs = 0 + 16 eps * (1 + 0 + 0) + 2 * 64 eps * 5 = 656 eps, compared exactly
    check = C._k5({"mu": [1.0], "log_w": [0.0], "score": [[1.0]]})[2]
    assert (check.lhs, check.rhs) == (0.0, 656 * EPS)


def test_k5_far_above_one_silent_and_holds():
    # W = e^709: log phi = 3*709 + 2 (1 - e^709) ~ -1.6e308, twice that overflows to -inf
    # (phi^2 = 0), which must stay silent and leave a finite, holding check
    inst = {"mu": [0.5, 0.5], "log_w": [709.0, 0.0], "score": [[1.0], [1.0]]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        checks = C._k5(inst)
    assert not any(c.violated for c in checks)
    # only outcome 2 (W = 1) has phi^2 > 0: l_phi2 = log(1/2)
    assert checks[2].lhs == pytest.approx(-math.log(2.0), abs=4 * EPS)  # one logsumexp rounding


# ----------------------------------------------------------------------------- R8 and helpers

_THIRDS = {"mu": [1 / 3] * 3, "pi": [1 / 3] * 3, "reward": [1.0, 0.0, -1.0]}


def test_r8_parts_on_a_hand_bandit():
    # mu = pi uniform: W = 1, phi = 1; E_pi[r] = 0 so A = r; g_y = e_y - pi.
    # grad = (1/3) sum_y A_y (e_y - pi) = (1/3, 0, -1/3) = u.
    # Magnitudes |r| + max|r| = (2, 1, 2); |e_y - pi| has 2/3 on the diagonal, 1/3 off it:
    # ua = ga = (1/3) (2*2/3 + 1/3 + 2/3, 2/3 + 2/3 + 2/3, 7/3) = (7/9, 2/3, 7/9).
    u, grad, ua, ga = C._r8_parts(_THIRDS)
    # abs 4 eps: a few roundings of sums of thirds, all entries < 1
    np.testing.assert_allclose(u, [1 / 3, 0.0, -1 / 3], rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(grad, [1 / 3, 0.0, -1 / 3], rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(ua, [7 / 9, 2 / 3, 7 / 9], rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(ga, [7 / 9, 2 / 3, 7 / 9], rtol=0, atol=4 * EPS)


def test_r8_slack_exact_on_a_hand_bandit():
    # 1 - cos = 0 (u = grad). Each angle bound: (pi/2) 64 (2m) eps ||ua|| / ||u||, m = 3,
    # ||ua|| = sqrt(134)/9, ||u|| = sqrt(2)/3: (pi/2) 384 eps sqrt(67)/3 = 64 pi sqrt(67) eps.
    (check,) = C._r8(_THIRDS)
    t = 64 * math.pi * math.sqrt(67) * EPS
    assert check.lhs == pytest.approx(0.0, abs=4 * EPS)  # cosine of equal vectors, rounded
    # abs 4 eps: three additions to 1.0 (ulp eps) here and in the code; the slack is ~3300 eps
    assert check.rhs == pytest.approx(1.0 + 2 * t + 8 * EPS, abs=4 * EPS)
    assert not check.violated


def test_r8_direction_below_rounding_is_neutral():
    # a constant reward: A = r - E_pi[r] is 0 up to rounding, the update has no direction;
    # the check is the neutral 1 <= 1 (holds, score 0)
    (check,) = C._r8({"mu": [0.2, 0.3, 0.5], "pi": [0.5, 0.3, 0.2], "reward": [1.0, 1.0, 1.0]})
    assert (check.lhs, check.rhs) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("inst", "match"),
    [
        (
            {"mu": [0.5, 0.25, 0.25], "pi": [0.5, 0.5, 0.0], "reward": [1.0, 0.0, 2.0]},
            "pi must be > 0",
        ),
        (
            {"mu": [0.5, 0.25, 0.25], "pi": [0.5, 0.25, 0.25], "reward": [1.0, math.inf, 2.0]},
            "reward must be",
        ),
        (
            {"mu": [0.5, 0.25, 0.25], "pi": [0.5, 0.25, 0.25], "reward": [1.0, math.nan, 2.0]},
            "reward must be",
        ),
    ],
)
def test_r8_rejects_bad_premises(inst, match):
    # R8 is about softmax bandits (pi > 0) with finite rewards
    with pytest.raises(ValueError, match=match):
        C._r8_parts(inst)


def test_bandit_rejects_pi_zero():
    # R2/R3's softmax bandit: pi > 0 on every arm
    inst = {"mu": [0.5, 0.5], "pi": [1.0, 0.0], "adv": [1.0, -1.0]}
    with pytest.raises(ValueError, match="pi must be > 0"):
        C._bandit(inst)


def test_direction_tol_value_and_edge():
    # one term, |v| = v_abs = 1: delta = 64 eps, angle (pi/2) 64 eps (relative 1e-15: one product)
    assert C._direction_tol(np.array([1.0]), np.array([1.0]), 1) == pytest.approx(
        math.pi / 2 * 64 * EPS,
        rel=1e-15,
        abs=0,  # abs=0: the value is ~2e-14, below approx's
    )  # default absolute slack 1e-12
    # delta = 64 * 1 * eps * 2^46 / 1 = 2^6 2^-52 2^46 = 1 exactly: rounding could be all of v
    assert C._direction_tol(np.array([1.0]), np.array([2.0**46]), 1) is None
    assert C._direction_tol(np.array([0.0]), np.array([1.0]), 1) is None


def test_registry_holds_the_claims():
    for cid, ev in (("K5", C._k5), ("R5", C._r5), ("R8", C._r8)):
        claim = get_claim(cid)
        assert claim is not None and claim.id == cid
        assert ev in vars(claim).values()


# ----------------------------------------------------------------------------- R5 (lattice stubbed)

_R5 = {"logits_mu": [0.0, 1.0, -0.5], "m": [1, 0, -1], "delta": 0.05, "T": 7, "adv": -1.0}


def _log_softmax(x):
    s = math.log(math.fsum(math.exp(v) for v in x))
    return [v - s for v in x]


def _stub_lattice(monkeypatch, e_phi=0.3, err=0.1, e_w=0.9):
    calls = []

    def fake(log_mu, log_pi, T, rules, **kw):
        calls.append((np.asarray(log_mu), np.asarray(log_pi), T, rules, kw))
        return [{"E_phi": e_phi, "abs_err": {"E_phi": err}}], {"E_W": e_w}

    monkeypatch.setattr(lattice, "lattice_results", fake)
    return calls


def _assert_lattice_call(call, inst):
    log_mu, log_pi, T, rules, kw = call
    lg = inst["logits_mu"]
    drifted = [x + inst["delta"] * d for x, d in zip(lg, inst["m"])]
    # abs 1e-14: log-softmax of numbers < 2 in magnitude, a few roundings each
    np.testing.assert_allclose(log_mu, _log_softmax(lg), rtol=0, atol=1e-14)
    np.testing.assert_allclose(log_pi, _log_softmax(drifted), rtol=0, atol=1e-14)
    assert (T, rules) == (inst["T"], ["vespo"])
    assert kw == {"adv": inst["adv"], "delta": inst["delta"]}


def test_r5_passes_the_instance_to_the_lattice_and_subtracts_its_error(monkeypatch):
    calls = _stub_lattice(monkeypatch)
    (check,) = C._r5(_R5)
    _assert_lattice_call(calls[0], _R5)
    # |0.3 - 1| - 0.1 = 0.6 (abs 1e-15: two roundings of numbers < 1)
    assert check.lhs == pytest.approx(0.6, abs=1e-15)
    assert check.rhs == 0.5


def test_r5_details_exact(monkeypatch):
    calls = _stub_lattice(monkeypatch)
    d = C._r5_details(_R5)
    _assert_lattice_call(calls[0], _R5)
    lm = _log_softmax(_R5["logits_mu"])
    lp = _log_softmax([x + 0.05 * m for x, m in zip(_R5["logits_mu"], _R5["m"])])
    kl = math.fsum(math.exp(a) * (a - b) for a, b in zip(lm, lp))
    assert kl > 1e-4  # a real drift, so that KL(mu||pi) is distinguishable from other sums
    # KL abs 1e-15: a 3-term dot product of numbers < 2 (the KL itself is ~ delta^2 ~ 1e-3)
    assert d == {"E_phi": 0.3, "token_KL(mu||pi)": pytest.approx(kl, abs=1e-15), "E_W": 0.9}


@pytest.mark.parametrize(
    "change",
    [
        {"delta": 0.0},
        {"delta": -0.05},
        {"delta": 1.5},
        {"T": 0},
        {"m": [1]},
        {"logits_mu": [[0.0, 1.0, -0.5]], "m": [[1, 0, -1]]},
    ],
)
def test_r5_rejects_bad_instances(monkeypatch, change):
    _stub_lattice(monkeypatch)  # the evaluator itself must refuse: nothing reaches the lattice
    with pytest.raises(ValueError, match=r"^R5 instance: logits_mu and m of equal length"):
        C._r5({**_R5, **change})


def test_r5_accepts_delta_one(monkeypatch):
    calls = _stub_lattice(monkeypatch)
    inst = {**_R5, "delta": 1.0}
    C._r5(inst)
    _assert_lattice_call(calls[0], inst)


def test_k5_an_outcome_with_w_zero_is_not_a_violation():
    """A defect the mutation triage found: an outcome with W = 0 (log W = -inf, which an
    instance may give: K5 holds for any law of W) had an infinite rounding tolerance, so check 2
    compared -inf with -inf + inf = NaN and reported phi(0) = 0 <= 0 as a violation; with a
    finite outcome beside it, check 3's tolerance was inf (it could not fail). phi(0) = 0 exactly:
    the tolerance there is 0 and the finite outcome decides."""
    import math

    only_zero = C._k5({"mu": [1.0], "log_w": [-math.inf], "score": [[1.0]]})
    assert all(ch.lhs <= ch.rhs for ch in only_zero), only_zero
    mixed = C._k5({"mu": [0.5, 0.5], "log_w": [-math.inf, 0.3], "score": [[1.0], [2.0]]})
    assert all(math.isfinite(ch.rhs) for ch in mixed), mixed
    assert mixed[1].rhs == pytest.approx(0.3, abs=1e-12)  # log W of the finite outcome + ~1e-13
