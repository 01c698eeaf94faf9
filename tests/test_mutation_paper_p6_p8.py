"""Tests that kill the mutants of ``check_p6``, ``check_p7`` and ``check_p8`` in
``vespo_theory/derivations/paper.py`` that tests/test_derive_paper.py lets live (see
docs/mutation.md): each part of a check failing on its own, on a support chosen by the test
(``P._exact_support`` stubbed by monkeypatch) so that every expected number is derived here
independently (mpmath at 40 digits, or by hand); every trial counted, not only the last; the
tolerance of P6's asymptotic part pinned from both sides; P7's symbolic branches each covering
its whole side of the kink; true premises that need the symbols' assumptions (a length is
positive, so |T| = T); the numbers the details report; and reproducibility of the seeded draws.

Every input is exact (SymPy Rationals) unless a tolerance is stated with its reason.
"""

from __future__ import annotations

import math
import re

import mpmath as mp
import pytest
import sympy as sp

from vespo_theory.derivations import paper as P

R = sp.Rational
LAST = 1024  # the largest default length of P6 (its docstring: lengths up to 1024)


def _supports(monkeypatch, *pairs):
    """Stub P._exact_support: the k-th call returns the k-th (mu, pi) pair of ``pairs``."""
    it = iter(pairs)
    monkeypatch.setattr(P, "_exact_support", lambda rng, n: next(it))


def _recording_supports(monkeypatch):
    """Wrap P._exact_support so that every support it draws is recorded (in a list)."""
    drawn, real = [], P._exact_support

    def draw(rng, n):
        drawn.append(real(rng, n))
        return drawn[-1]

    monkeypatch.setattr(P, "_exact_support", draw)
    return drawn


# ------------------------------------------------------------------------------------ P6 ----
# Support A: skewed log W (kappa3 = 0.21, far from 0, so the cubic term of the KL series is the
# leading error at s = 1/1024); support B: pi = mu (1 -+ 1e-4), Var_mu(log W) ~ 1e-8, on which
# every small perturbation of the exponent moves KL by less than P6's tolerances.
A = ([R(1, 2), R(3, 10), R(1, 5)], [R(1, 5), R(3, 10), R(1, 2)])
B = ([R(1, 2), R(1, 2)], [R(1, 2) - R(1, 20000), R(1, 2) + R(1, 20000)])


def _logw(mu, pi):
    return [mp.log(mp.mpf(p.p) / p.q / (mp.mpf(m.p) / m.q)) for m, p in zip(mu, pi)]


def _kl(mu, pi, e):
    """KL(Q_e || mu) for Q_e ∝ mu W^e, with 40 significant digits: sum q (e log W) - log Z."""
    with mp.workdps(40):
        lw = _logw(mu, pi)
        m = [mp.mpf(v.p) / v.q for v in mu]
        z = mp.fsum(mi * mp.exp(e * li) for mi, li in zip(m, lw))
        return mp.fsum(mi * mp.exp(e * li) / z * e * li for mi, li in zip(m, lw)) - mp.log(z)


def _central_moments(mu, pi):
    """(Var, third, fourth central moment) of log W under mu, 40 digits."""
    with mp.workdps(40):
        lw = _logw(mu, pi)
        m = [mp.mpf(v.p) / v.q for v in mu]
        m1 = mp.fsum(a * b for a, b in zip(m, lw))
        return tuple(mp.fsum(a * (b - m1) ** j for a, b in zip(m, lw)) for j in (2, 3, 4))


def _p6_parts(detail):
    """The six verdicts P6 prints, in order: identity, limit, monotone, d KL/ds sign, first
    length, asymptotic."""
    return re.findall(r": (True|False)\b", detail)


def _exponent(at: dict):
    """1/T on symbols; on the integer lengths 1/t except where ``at`` gives another value."""
    return lambda t: 1 / t if isinstance(t, sp.Symbol) else at.get(t, 1 / t)


def test_p6_reports_the_kl_values_and_the_series_on_a_known_support(monkeypatch):
    _supports(monkeypatch, A)
    r = P.check_p6(n_trials=1)
    assert r.status == "verified", r.detail
    var, _, _ = _central_moments(*A)
    kl1, kl_last = _kl(*A, 1), _kl(*A, mp.mpf(1) / LAST)
    pred = var / 2 / LAST**2  # T^2 KL -> Var_mu(log W) / 2
    # %.3e of numbers known to 40 digits: float64's ~1e-16 relative error in the check's sums
    # cannot move the third decimal of the mantissa
    assert f"KL T=1 {float(kl1):.3e}, T={LAST} {float(kl_last):.3e} (pred {float(pred):.3e})" in (
        r.detail
    )
    # The series by hand: K(s) = k1 s + k2 s^2/2 + k3 s^3/6 + k4 s^4/24 gives s K'(s) - K(s) =
    # (k1 s + k2 s^2 + k3 s^3/2 + k4 s^4/6) - K(s) = k2 s^2/2 + k3 s^3/3 + k4 s^4/8.
    s, k2, k3, k4 = sp.symbols("s kappa2 kappa3 kappa4")
    series = re.search(r"series KL\(Q_s\|\|mu\) = (.*?) \(s = 1/T\)", r.detail).group(1)
    assert sp.expand(sp.sympify(series) - (k2 * s**2 / 2 + k3 * s**3 / 3 + k4 * s**4 / 8)) == 0


@pytest.mark.parametrize("factor, status", [(1.5, "verified"), (2.5, "failed")])
def test_p6_asymptotic_tolerance_is_twice_the_next_terms(monkeypatch, factor, status):
    """The check allows |KL(Q_1024||mu) - Var/2 s^2| <= 2 (|kappa3/3| s^3 + |kappa4/8| s^4)
    (+1e-15). An exponent off at T = 1024 only, chosen so that the KL there misses Var/2 s^2 by
    exactly ``factor`` times |kappa3/3| s^3 + |kappa4/8| s^4, is inside the tolerance at 1.5 and
    outside at 2.5."""
    _supports(monkeypatch, A)
    var, k3, m4 = _central_moments(*A)
    s = mp.mpf(1) / LAST
    with mp.workdps(40):
        k4 = m4 - 3 * var**2  # the fourth cumulant from the central moments
        target = var / 2 * s**2 + factor * (abs(k3) / 3 * s**3 + abs(k4) / 8 * s**4)
        e_star = mp.findroot(lambda e: _kl(*A, e) - target, s)
    # the margins are 25 % of the tolerance (~7e-11 here); float64 rounding of the check's KL
    # sum (~1e-17 absolute) and of e_star (relative 1e-16, moving KL by ~1e-22) are far below
    r = P.check_p6(n_trials=1, exponent=_exponent({LAST: float(e_star)}))
    assert r.status == status, r.detail
    assert _p6_parts(r.detail) == ["True"] * 5 + [str(status == "verified")]


def test_p6_symmetric_log_w_needs_the_quartic_term(monkeypatch):
    """A bug the mutation triage found: on mu = (1/2, 1/2), pi = (1/6, 5/6) log W is symmetric
    under mu (kappa3 = 0), so a tolerance of the cubic term alone (plus 1e-15) misses the quartic
    term kappa4 s^4 / 8 of the series (~9.5e-14 here) and failed the true premise. It verifies,
    and an exponent whose KL at T = 1024 misses Var/2 s^2 by 2.5 |kappa4/8| s^4 still fails."""
    sym = ([R(1, 2), R(1, 2)], [R(1, 6), R(5, 6)])
    var, k3, m4 = _central_moments(*sym)
    assert abs(k3) < mp.mpf(10) ** -30  # the premise of this test: a symmetric log W
    _supports(monkeypatch, sym)
    r = P.check_p6(n_trials=1)
    assert r.status == "verified", r.detail
    s = mp.mpf(1) / LAST
    with mp.workdps(40):
        target = var / 2 * s**2 + mp.mpf("2.5") * abs(m4 - 3 * var**2) / 8 * s**4
        e_star = mp.findroot(lambda e: _kl(*sym, e) - target, s)
    _supports(monkeypatch, sym)
    # the margin, 0.5 |kappa4/8| s^4 ~ 2e-14, is ~20x the 1e-15 floor for rounding
    r = P.check_p6(n_trials=1, exponent=_exponent({LAST: float(e_star)}))
    assert r.status == "failed" and _p6_parts(r.detail)[-1] == "False", r.detail


def test_p6_pi_equal_to_mu_is_not_a_failure(monkeypatch):
    """pi = mu: Q_T = mu and KL = 0 at every T. The statement holds (KL does not increase);
    the check used to fail it as "not strictly decreasing". A support that is pi = mu in a
    first trial and a proper one in the second verifies."""
    same = ([R(1, 3), R(2, 3)], [R(1, 3), R(2, 3)])
    _supports(monkeypatch, same, A)
    r = P.check_p6(n_trials=2)
    assert r.status == "verified", r.detail


def test_p6_equal_kl_at_two_lengths_is_not_strictly_decreasing(monkeypatch):
    """Exponent 1/2 at T = 2 and at T = 4: the KL at the two lengths is the same number (the same
    float64 computation), so 'strictly decreasing in T' is false; every other part holds."""
    _supports(monkeypatch, A)
    r = P.check_p6(n_trials=1, exponent=_exponent({4: 0.5}))
    assert r.status == "failed"
    assert _p6_parts(r.detail) == ["True", "True", "False", "True", "True", "True"]


def _fails_only_through_the_first_trial(monkeypatch, exponent, bad, good, part):
    """P6 on two trials, ``bad`` then ``good``, fails with only part ``part`` (0-5, the order
    of ``_p6_parts``) False; on ``good`` alone it verifies: the part is read in every trial."""
    _supports(monkeypatch, bad, good)
    r = P.check_p6(n_trials=2, exponent=exponent)
    assert r.status == "failed"
    assert _p6_parts(r.detail) == ["False" if i == part else "True" for i in range(6)]
    _supports(monkeypatch, good)
    assert P.check_p6(n_trials=1, exponent=exponent).status == "verified"


def test_p6_monotone_part_is_checked_in_every_trial(monkeypatch):
    """Exponent -1/2 at T = 2 and +1/2 at T = 4. KL(Q_e||mu) - KL(Q_-e||mu) = 2 kappa3 e^3/3 +
    O(e^5) has the sign of kappa3: on A (kappa3 > 0) the KL rises from T = 2 to T = 4; on A's
    mirror A2 (pi2 ∝ mu^2/pi, so log W2 = -log W + const and KL_A2(e) = KL_A(-e)) it falls. A
    failing first trial followed by a passing one must fail."""
    mu, pi = A
    z = sum(m * m / p for m, p in zip(mu, pi))
    mirror = (mu, [m * m / p / z for m, p in zip(mu, pi)])
    assert _kl(*A, -0.5) < _kl(*A, 0.5) < _kl(*A, 1) and _kl(*A, 0.5) < _kl(*A, -1)
    _fails_only_through_the_first_trial(monkeypatch, _exponent({2: -0.5, 4: 0.5}), A, mirror, 2)


def test_p6_first_length_is_checked_in_every_trial(monkeypatch):
    """Exponent 1 + 1e-7 at T = 1 (not 1, so Q_1 != pi): on support A the KL at T = 1 moves by
    Var_pi(log W) 1e-7 ~ 5e-8, far above the check's 1e-12; on B by ~1e-15, below it. A failing
    first trial followed by a passing one must fail."""
    _fails_only_through_the_first_trial(monkeypatch, _exponent({1: 1 + 1e-7}), A, B, 4)


def test_p6_asymptotic_part_is_checked_in_every_trial(monkeypatch):
    """Exponent 1.01/1024 at T = 1024: on A the KL there is off by ~2 % of Var/2 s^2 ~ 5e-9,
    ~80 tolerances; on B (Var ~ 1e-8) by ~1e-16, below the 1e-15 floor. A failing first trial
    followed by a passing one must fail."""
    _fails_only_through_the_first_trial(monkeypatch, _exponent({LAST: 1.01 / LAST}), A, B, 5)


def test_p6_exponent_one_over_abs_t_is_the_true_premise():
    # a length is positive, so 1/|T| = 1/T: the identity needs T's positivity to see it
    r = P.check_p6(exponent=lambda t: 1 / sp.Abs(t))
    assert r.status == "verified", r.detail


def test_p6_reports_why_the_limit_of_w_to_the_t_is_not_found():
    r = P.check_p6(exponent=lambda t: t)
    assert r.status == "failed"
    assert (
        "lim_(T->oo) mu phi = undetermined (depends on the sign of log W) (Q_T -> mu: False)"
        in (r.detail)
    )


def test_p6_draws_are_reproducible(monkeypatch):
    drawn = _recording_supports(monkeypatch)
    first = P.check_p6()
    n = len(drawn)
    second = P.check_p6()
    assert n > 0 and len(drawn) == 2 * n and drawn[:n] == drawn[n:]  # the same supports again
    assert first.detail == second.detail


# ------------------------------------------------------------------------------------ P7 ----
def _clip_split(on_rationals, on_symbols):
    """A clip that is ``on_rationals`` on Rational W (the exact part) and ``on_symbols`` on
    symbolic W (the symbolic part)."""

    def clip(w, c):
        return on_rationals(w, c) if sp.sympify(w).is_Rational else on_symbols(w, c)

    return clip


def _wrong_on(lo, hi):
    """min(W, c) plus a tent that is 0 outside lo(c) < W < hi(c) and > 0 inside: a clip wrong
    on that interval only."""
    return lambda w, c: sp.Min(w, c) + sp.Min(sp.Max(0, w - lo(c)), sp.Max(0, hi(c) - w))


_ZEROS = ["W < c: mu phi(W) - claimed = 0", "W > c: mu phi(W) - claimed = 0",
          "W = c: mu phi(W) - claimed = 0"]  # fmt: skip


def test_p7_reports_each_branch_by_name():
    r = P.check_p7()
    assert r.status == "verified"
    assert ", ".join(_ZEROS) in r.detail


@pytest.mark.parametrize(
    "name, wrong, branch",
    [
        ("below c", _wrong_on(lambda c: 0, lambda c: c), 0),
        ("between c/2 and c", _wrong_on(lambda c: c / 2, lambda c: c), 0),
        ("above c", lambda w, c: sp.Min(w, c) + sp.Max(0, w - c), 1),
        ("between c and 2c", _wrong_on(lambda c: c, lambda c: 2 * c), 1),
    ],
    ids=["below c", "c/2..c", "above c", "c..2c"],
)
def test_p7_symbolic_branch_covers_its_whole_side(name, wrong, branch):
    """A clip wrong on symbolic W in one interval only (exact part: the hard clip): the branch on
    that side of the kink must see it, whether the interval touches c or not."""
    r = P.check_p7(clip=_clip_split(sp.Min, wrong))
    assert r.status == "failed", name
    for i, zero in enumerate(_ZEROS):
        assert (zero in r.detail) == (i != branch), (name, zero)
    assert re.search(r"in (\d+) of \1 \(support, c\) cases", r.detail)  # exact part passes


@pytest.mark.parametrize(
    "side, where",
    [("c < 1", lambda c: c < 1), ("c = 1", lambda c: c == 1), ("c > 1", lambda c: c > 1)],
    ids=["c<1", "c=1", "c>1"],
)
def test_p7_exact_part_tries_c_below_at_and_above_one(side, where):
    """The clip level c: below 1, at 1 (the on-policy ratio), above 1. A clip that is max(W, c)
    only on one side (on Rationals; the hard clip on symbols) must be caught."""
    r = P.check_p7(clip=_clip_split(lambda w, c: sp.Max(w, c) if where(c) else sp.Min(w, c),
                                    sp.Min))  # fmt: skip
    assert r.status == "failed", side
    assert ", ".join(_ZEROS) in r.detail  # the symbolic part passes


def test_p7_counts_the_cases_where_the_clip_binds_at_some_points_only(monkeypatch):
    """mu = (1/2, 1/2), pi = (1/4, 3/4): ratios pi/mu = 1/2 and 3/2. By hand, for c = 1/2, 1,
    3/2, 3: the clip binds (ratio > c) at some point and not (ratio < c) at another only at
    c = 1 (at 1/2 and 3/2 one ratio equals c, neither above nor below it): one case in four."""
    _supports(monkeypatch, ([R(1, 2), R(1, 2)], [R(1, 4), R(3, 4)]))
    r = P.check_p7(n_trials=1)
    assert r.status == "verified"
    assert "in 4 of 4 (support, c) cases (1 with the clip binding at some points and not" in (
        r.detail
    )


def test_p7_draws_are_reproducible(monkeypatch):
    drawn = _recording_supports(monkeypatch)
    P.check_p7()
    n = len(drawn)
    P.check_p7()
    assert n > 0 and len(drawn) == 2 * n and drawn[:n] == drawn[n:]  # the same supports again


# ------------------------------------------------------------------------------------ P8 ----
def test_p8_normalising_by_abs_t_is_the_true_premise():
    # a length is positive, so |T| = T: the check must use T's positivity to see it
    r = P.check_p8(normaliser=sp.Abs)
    assert r.status == "verified", r.detail


def test_p8_reports_the_ratio_and_the_kernel_values():
    r = P.check_p8()
    assert r.status == "verified"
    T1, T2, rho = sp.symbols("T1 T2 rho")
    ratio = sp.sympify(re.search(r"ratio W1/W2 = (.*?), = 1 only", r.detail).group(1),
                       locals={"T1": T1, "T2": T2, "rho": rho})  # fmt: skip
    # W_i = e^(T_i rho), so W1/W2 = e^((T1 - T2) rho)
    assert ratio.func == sp.exp and sp.expand(ratio.args[0] - (T1 - T2) * rho) == 0

    def phi(w):  # the (2, 3) kernel w^2 e^(3 (1 - w)), in float64
        return w**2 * math.exp(3 * (1 - w))

    rho_v, (t1, t2) = -1 / 20, (8, 64)  # the defaults the check's docstring and detail state
    w_norm = math.exp(rho_v)  # log W / T = rho at both lengths
    w1, w2 = math.exp(t1 * rho_v), math.exp(t2 * rho_v)
    # %.6f of values in (0, 1.3]: float64's 1e-16 relative error cannot move the sixth decimal
    assert (
        f"normalised weights {phi(w_norm):.6f} and {phi(w_norm):.6f} (equal: True), true W = "
        f"{w1:.6f} and {w2:.6f} (ratio {w1 / w2:.4f}), kernel at the true W {phi(w1):.6f} and "
        f"{phi(w2):.6f} (differ: True)"
    ) in r.detail


def test_p8_needs_the_kernel_values_at_the_true_weights_to_differ():
    """The (2,3) kernel peaks at W = 2/3, so it takes equal values at two weights on either side:
    at the rho < 0 solving 2 (8 rho) + 3 (1 - e^(8 rho)) = 2 (64 rho) + 3 (1 - e^(64 rho)),
    log phi(e^(8 rho)) = log phi(e^(64 rho)). The true weights differ but the kernel does not
    tell them apart: no instance of the conflation, the check must fail."""
    with mp.workdps(50):
        root = mp.findroot(lambda x: -112 * x + 3 * (mp.exp(64 * x) - mp.exp(8 * x)), -0.05)
        rho = R(mp.nstr(root, 45))  # |phi1 - phi2| ~ 1e-45, far below P8's 1e-20 threshold
        assert root < 0 and mp.exp(8 * root) > mp.mpf(2) / 3 > mp.exp(64 * root)
    r = P.check_p8(rho=rho)
    assert r.status == "failed"
    assert "(differ: False)" in r.detail and "(equal: True)" in r.detail
