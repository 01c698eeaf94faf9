"""Tests that kill the mutants of D1, L1b and M4 in ``vespo_theory/derivations/extended.py``
(``check_d1``, ``check_l1b``, ``check_m4`` and their helpers ``_binom``, ``_vespo_score_moments``,
``_chernoff``, ``_derive_c_s``) that tests/test_derive_extended.py lets live (see
docs/mutation.md).

That file runs each check with its true premises and with one wrong premise (zero drift, or the
KL rate for D1); a mutant that loosens one part of a check, or changes only a reported number,
survives it. Here:

* the helpers are compared with independent references: the binomial law by ``math.comb``,
  the moments of phi(W_T) G_T by a direct sum over the counts, the Chernoff information and its
  argmin by the closed form of the stationarity condition of log E_mu[r^s] for V = 2;
* each part of L1b and M4 fails alone, with ``_vespo_score_moments`` / ``_log_e_phi`` stubbed
  by tables whose shape (peak position, last values, monotonicity) is set by hand;
* D1's finite-T bound is tested with an E[phi] planted above the bound at the largest T (where
  only the optimal s ~ 1/2 gives a tight bound), its symbolic parts with a stubbed derivation;
* the numbers D1 and M4 print (KL, the rate, its gap, the local-limit constants, the tail
  P_mu(W_T > 1e-3)) are recomputed independently.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp

from vespo_theory.derivations import extended as E

BRANCHES = {"A>=0": (2.0, 3.0), "A<0": (3.0, 2.0)}  # arXiv 2602.10693 §3.3, written out here


# ------------------------------------------------------------------ independent references ----
def _lse(xs) -> float:
    """log sum exp of a list of floats (pure Python)."""
    xs = [x for x in xs if x != -math.inf]
    if not xs:
        return -math.inf
    top = max(xs)
    return top + math.log(math.fsum(math.exp(x - top) for x in xs))


def _ref_law(T: int, m: float, p: float):
    """[(log P(n), log W_T(n))] for n = 0..T: the binomial pmf (log-gamma) and the product of
    the token ratios pi/mu."""
    a, b = math.log(p / m), math.log((1 - p) / (1 - m))
    c = math.lgamma(T + 1)
    return [
        (
            c
            - math.lgamma(n + 1)
            - math.lgamma(T - n + 1)
            + n * math.log(m)
            + (T - n) * math.log(1 - m),
            n * a + (T - n) * b,
        )
        for n in range(T + 1)
    ]


def _ref_log_phi(lw: float, kk: float, ll: float) -> float:
    """log of phi(W) = W^k e^(lam (1 - W)); W > e^700 gives phi below e^(-lam e^700): -inf."""
    return -math.inf if lw > 700 else kk * lw + ll * (1 - math.exp(lw))


def _ref_log_e_phi(T, m, p, kk, ll) -> float:
    return _lse([lp + _ref_log_phi(lw, kk, ll) for lp, lw in _ref_law(T, m, p)])


def _ref_moments(T, m, p, kk, ll):
    """(Var[phi G], E[phi], E[G^2]) by a direct float sum over n = 0..T (small T only), and
    E[phi G] (its sign decides the mutated branch of the module's formula)."""
    e1, e2, ephi, eg2 = [], [], [], []
    for n, (lp, lw) in enumerate(_ref_law(T, m, p)):
        pr, ph, g = math.exp(lp), math.exp(_ref_log_phi(lw, kk, ll)), n - T * p
        e1.append(pr * ph * g)
        e2.append(pr * (ph * g) ** 2)
        ephi.append(pr * ph)
        eg2.append(pr * g * g)
    mean = math.fsum(e1)
    return math.fsum(e2) - mean**2, math.fsum(ephi), math.fsum(eg2), mean


def _ref_chernoff(m: float, p: float):
    """(C, s*) for V = 2: f(s) = m a^s + (1-m) b^s (a = p/m, b = (1-p)/(1-m)) has
    f'(s) = 0 at (a/b)^s = -(1-m) log b / (m log a); C = -log f(s*)."""
    a, b = math.log(p / m), math.log((1 - p) / (1 - m))
    s = math.log(-(1 - m) * b / (m * a)) / (a - b)
    return -math.log(m * math.exp(s * a) + (1 - m) * math.exp(s * b)), s


def _ref_kl(m: float, p: float) -> float:
    """KL(mu || pi) of the two-point laws, by its definition sum_x mu(x) log(mu(x) / pi(x))."""
    return sum(u * math.log(u / v) for u, v in ((m, p), (1 - m, 1 - p)))


def _ref_M() -> float:
    """max(M+, M-): sup phi = phi(k/lam) = (k/lam)^k e^(lam - k) (arXiv 2602.10693 Prop. C.1)."""
    return max((kk / ll) ** kk * math.exp(ll - kk) for kk, ll in BRANCHES.values())


def _ref_log_bound(T, m, p, kk, ll) -> float:
    """inf over s in [0, k) of log C_s + T log E_mu[r^s], C_s = ((k-s)/lam)^(k-s) e^(lam-k+s)
    (Prop. 3.1's computation with the exponent s, typed by hand), on a grid of step 1e-5: the
    objective is convex, with curvature 1/(k-s) + T Var_s(log r) < 400 near its minimiser
    (s ~ 1/2, T <= 8192), so the grid minimum is within 400 (1e-5)^2 / 8 = 5e-9 of the infimum."""
    s = np.arange(0.0, kk - 1e-3, 1e-5)
    a, b = math.log(p / m), math.log((1 - p) / (1 - m))
    log_cs = (kk - s) * np.log((kk - s) / ll) - (kk - s) + ll
    mgf = np.logaddexp(math.log(m) + s * a, math.log(1 - m) + s * b)
    return float(np.min(log_cs + T * mgf))


def _number(pattern: str, text: str) -> float:
    hit = re.search(pattern, text)
    assert hit, (pattern, text)
    return float(hit.group(1))


# ------------------------------------------------------------------------------- helpers ----
@pytest.mark.parametrize("T", [0, 1, 5, 30])
def test_binom_is_the_law_of_the_count_on_0_to_T(T):
    """n runs over 0..T exactly (no extra atom) with the binomial probabilities; relative
    1e-12: log-gamma sums of size <= 80 against exact integers times float powers."""
    n, lp = E._binom(T, 0.3)
    assert list(n) == list(range(T + 1))
    for i in range(T + 1):
        exact = math.comb(T, i) * 0.3**i * 0.7 ** (T - i)
        assert math.isclose(math.exp(lp[i]), exact, rel_tol=1e-12), i


MOMENT_CASES = [
    (T, m, p, br)
    for T in (1, 2, 7, 20)
    for m, p in ((0.5, 0.6), (0.6, 0.5), (0.3, 0.8))
    for br in BRANCHES
]


@pytest.mark.parametrize("T,m,p,branch", MOMENT_CASES)
def test_score_moments_match_a_direct_sum(T, m, p, branch):
    """Var_mu[phi(W_T) G_T], E_mu[phi], E_mu[G^2] against a direct sum over the counts. Relative
    1e-9: both are float64 sums of <= 21 terms (~1e-15 each); the direct Var = E2 - E1^2 loses
    at most log10(E2 / Var) < 2 digits here (checked below). Every case's E[phi G] is away
    from 0, and both signs occur (the module's formula branches on it)."""
    kk, ll = BRANCHES[branch]
    var, e_phi, eg2 = E._vespo_score_moments(T, m, p, kk, ll)
    r_var, r_ephi, r_eg2, r_mean = _ref_moments(T, m, p, kk, ll)
    assert r_var > 0.01 * (r_var + r_mean**2)
    assert math.isclose(var, r_var, rel_tol=1e-9)
    assert math.isclose(e_phi, r_ephi, rel_tol=1e-9)
    assert math.isclose(eg2, r_eg2, rel_tol=1e-9)


def test_score_moment_cases_cover_both_signs_of_the_mean():
    signs = {
        math.copysign(1.0, _ref_moments(T, m, p, *BRANCHES[br])[3]) for T, m, p, br in MOMENT_CASES
    }
    assert signs == {1.0, -1.0}


@pytest.mark.parametrize("m,p", [(0.5, 0.6), (0.3, 0.8), (0.9, 0.2), (0.05, 0.5)])
def test_chernoff_matches_the_closed_form(m, p):
    """C to 1e-12 (it is flat at s*: an s error of 1e-7 moves it by ~1e-14) and s* to 5e-8:
    the bounded search stops at sqrt(eps) |s| + xatol / 3 ~ 8e-9 for xatol = 1e-12 (with the
    default xatol 1e-5 it stops 1e-7 to 3e-7 away)."""
    C, s = E._chernoff(m, p)
    C_ref, s_ref = _ref_chernoff(m, p)
    assert abs(C - C_ref) <= 1e-12
    assert abs(s - s_ref) <= 5e-8


def test_derive_c_s_refuses_several_stationary_points(monkeypatch):
    """A kernel with phi / W^s = e^(-(W-1)^2 (W-2)^2): three stationary points (1, 3/2, 2); the
    derivation must stop and name them."""
    monkeypatch.setattr(
        E, "_kernel", lambda: E.W**E.s_sym * sp.exp(-((E.W - 1) ** 2) * (E.W - 2) ** 2)
    )
    with pytest.raises(RuntimeError, match=r"stationary points \[1, 3/2, 2\]"):
        E._derive_c_s()


# ----------------------------------------------------------------------------------- L1b ----
STUB_TS = (1, 2, 4, 8, 16, 32, 64, 128)
BASE_V = [1, 5, 20, 3, 1, 0.1, 1e-3, 1e-5]  # interior peak 20 at T = 4; last value 2e6 below
BASE_E = [0.9, 0.5, 0.1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]  # falling, below 1e-4 at the end
BASE_G2 = [10, 12, 15, 40, 50, 60, 70, 80]  # growing; M^2 15 = 23.1 >= 20 > 15 at the peak
G2_PEAK1 = [10, 15, 16, 40, 50, 60, 70, 80]  # the same for a peak of 20 at T = 2


def _stub_moments(monkeypatch, v=BASE_V, e=BASE_E, g2=BASE_G2):
    table = {T: (float(a), float(b), float(c)) for T, a, b, c in zip(STUB_TS, v, e, g2)}
    monkeypatch.setattr(E, "_vespo_score_moments", lambda T, m, p, kk, ll: table[T])


def _with(base, i, value):
    out = list(base)
    out[i] = value
    return out


def test_l1b_stub_base_verifies_and_reports_its_peak(monkeypatch):
    """The base table is a true instance: B3 holds only with the factor M^2 (Var = 20 > E[G^2]
    = 15 at the peak), and the record names the peak's T and value."""
    _stub_moments(monkeypatch)
    r = E.check_l1b(Ts=STUB_TS)
    assert r.status == "verified", r.detail
    assert r.detail.count("peak Var = 20 at T = 4,") == 2


L1B_CASES = {
    # name: (v, e_phi, E[G^2], status)
    "B3 bound flat between two T": (BASE_V, BASE_E, _with(BASE_G2, 4, 40), "failed"),
    "Var 1.5 times the B3 bound at T = 2": (
        _with(BASE_V, 1, 1.5 * _ref_M() ** 2 * 12),
        BASE_E,
        BASE_G2,
        "failed",
    ),
    "Var equal to the B3 bound at T = 2": (
        _with(BASE_V, 1, _ref_M() ** 2 * 12),
        BASE_E,
        BASE_G2,
        "verified",
    ),
    "Var decreasing from T = 1": (
        [20, 10, 5, 1, 0.1, 0.01, 1e-3, 1e-5],
        BASE_E,
        [15, 16, 17, 40, 50, 60, 70, 80],
        "failed",
    ),
    "interior peak, last Var not 10^3 below it": (
        [0.01, 0.02, 0.05, 0.03, 0.01, 1e-3, 1e-4, 8e-5],
        BASE_E,
        BASE_G2,
        "failed",
    ),
    "peak at the second T": ([1, 20, 10, 3, 1, 0.1, 1e-3, 1e-5], BASE_E, G2_PEAK1, "verified"),
    "peak at the second-to-last T": ([1, 2, 3, 4, 5, 6, 20, 1e-5], BASE_E, BASE_G2, "verified"),
    "only the last Var 10^3 below the peak": (
        [1, 20, 10, 3, 1, 0.1, 0.5, 1e-5],
        BASE_E,
        G2_PEAK1,
        "verified",
    ),
    "last Var 1 (not below 1e-4)": (
        [1, 2e3, 1e3, 100, 10, 5, 2, 1],
        BASE_E,
        [1e4 * (i + 1) for i in range(8)],
        "failed",
    ),
    "last E[phi] 2e-4 (not below 1e-4)": (
        BASE_V,
        [0.9, 0.5, 0.1, 1e-2, 5e-3, 2e-3, 1e-3, 2e-4],
        BASE_G2,
        "failed",
    ),
    "E[phi] below 1e-4 at the last T only": (
        BASE_V,
        [0.9, 0.5, 0.1, 1e-2, 5e-3, 1e-3, 2e-4, 5e-5],
        BASE_G2,
        "verified",
    ),
    "E[phi] rising inside the last five T": (BASE_V, _with(BASE_E, 4, 2e-2), BASE_G2, "failed"),
    "E[phi] rising just before the last five T": (
        BASE_V,
        [0.9, 0.5, 1e-3, 2e-3, 1e-3, 1e-4, 1e-5, 1e-6],
        BASE_G2,
        "verified",
    ),
    "E[phi] flat inside the last five T": (BASE_V, _with(BASE_E, 4, 1e-2), BASE_G2, "failed"),
}


@pytest.mark.parametrize("name", list(L1B_CASES))
def test_l1b_each_part_alone(monkeypatch, name):
    """One part of L1b wrong (or a true instance at an edge of a part), the others right:
    B3 holds (Var <= M^2 E[G^2]) and its bound grows; Var has an interior maximum above Var(T=1)
    with the last Var 10^3 below it; the last Var and E[phi] are below 1e-4 and E[phi] falls over
    the last five T."""
    v, e, g2, status = L1B_CASES[name]
    _stub_moments(monkeypatch, v, e, g2)
    r = E.check_l1b(Ts=STUB_TS)
    assert r.status == status, r.detail


def test_l1b_reports_the_exact_values_at_T_1():
    """At T = 1 (one token): Var(T=1) by the direct sum and the B3 bound M^2 (m(1-m) + (m-p)^2)
    (E[G^2] = Var n + (E n - p)^2), as printed (4 and 3 significant digits)."""
    m, p = 0.5, 0.6
    r = E.check_l1b(m=m, p=p)
    assert r.status == "verified", r.detail
    b3 = _ref_M() ** 2 * (m * (1 - m) + (m - p) ** 2)
    for branch, (kk, ll) in BRANCHES.items():
        var1 = _ref_moments(1, m, p, kk, ll)[0]
        assert f"{branch} {(kk, ll)}: Var(T=1) = {var1:.4g}," in r.detail
    assert r.detail.count(f"B3 bound M^2 E[G^2] from {b3:.3g} to") == 2


# ------------------------------------------------------------------------------------ M4 ----
def test_m4_fails_when_T_max_is_too_short():
    """T_max = 4096: E[phi] there is ~1e-10 (by the direct sum), above the check's 1e-12, so M4
    must fail, although E[phi] is still falling and is < 1 (and would pass at T = 8192)."""
    for kk, ll in BRANCHES.values():
        assert math.exp(_ref_log_e_phi(4096, 0.5, 0.6, kk, ll)) > 1e-11
    r = E.check_m4(T_max=4096)
    assert r.status == "failed", r.detail
    assert "(= -KL: True)" in r.detail  # the failure is E[phi]'s, not the mean's


def _stub_e_phi(monkeypatch, table):
    """E[phi] at T = 2^j given by ``table(j, kk)`` (a float)."""
    monkeypatch.setattr(
        E, "_log_e_phi", lambda T, m, p, kk, ll: math.log(table(int(math.log2(T)), kk))
    )


def _falling(j, kk):
    return 0.5 * 10.0**-j  # 5e-14 at T = 8192 (j = 13), below 1e-12


M4_CASES = {
    # E[phi] rises from T = 128 to 256 (outside the last six doublings): allowed
    "rise before the last six doublings": (
        lambda j, kk: _falling(j, kk) * (20 if j == 8 else 1),
        "verified",
    ),
    # E[phi] flat from T = 2048 to 4096 (inside the last six): no approach to 0 there
    "flat inside the last six doublings": (
        lambda j, kk: _falling(min(j, 11) if j < 13 else j, kk),
        "failed",
    ),
    # the A>=0 branch stays above 1e-12 (E[phi] ~ 10^(-j/3)), the A<0 branch is fine
    "first branch alone not going to 0": (
        lambda j, kk: 10.0 ** (-j / 3) if kk == 2.0 else _falling(j, kk),
        "failed",
    ),
}


@pytest.mark.parametrize("name", list(M4_CASES))
def test_m4_each_part_alone(monkeypatch, name):
    table, status = M4_CASES[name]
    _stub_e_phi(monkeypatch, table)
    r = E.check_m4()
    assert r.status == status, r.detail
    assert "(= -KL: True)" in r.detail


def test_m4_detects_a_wrong_log_ratio(monkeypatch):
    """log W_T computed with pi(1) = 1.01 p: E[log W_T] = -T KL(mu || pi') differs from
    -T KL(mu || pi) by T (KL' - KL) ~ 20 (by the definition), far above the 1e-9 relative
    allowance; E[phi] still goes to 0, so the mean is the only wrong part."""
    m, p = 0.5, 0.6
    assert 8192 * (_ref_kl(m, 1.01 * p) - _ref_kl(m, p)) > 10
    orig = E._iid_log_w
    monkeypatch.setattr(E, "_iid_log_w", lambda n, T, m_, p_: orig(n, T, m_, 1.01 * p_))
    r = E.check_m4(m=m, p=p)
    assert r.status == "failed", r.detail
    assert "(= -KL: False)" in r.detail and "(-> 0: True)" in r.detail


def test_m4_zero_drift_fails_for_e_phi_only():
    """p = m: KL = 0 and E[log W_T] = 0 = -T KL hold; the failure is E[phi] = 1."""
    r = E.check_m4(m=0.5, p=0.5)
    assert r.status == "failed"
    assert "KL(mu||pi) = 0;" in r.detail and "(= -KL: True)" in r.detail


def test_m4_default_record_numbers():
    """The default record: the mean, the tail and the E[phi] series at the same largest T; KL
    (6 significant digits) and P_mu(W_T > 1e-3) by the direct sum (3 significant digits: 1 %
    relative covers the rounding of the print)."""
    m, p = 0.5, 0.6
    r = E.check_m4()
    assert r.status == "verified", r.detail
    T = int(_number(r"E\[log W_T\]/T at T = (\d+):", r.detail))
    for branch in BRANCHES:
        series = r.detail.split(f"{branch}: E[phi] at T = ")[1].split("(-> 0")[0]
        assert f", {T}: " in series, (T, series)
    assert f"KL(mu||pi) = {_ref_kl(m, p):.6g};" in r.detail
    law = _ref_law(T, m, p)
    tail = math.exp(_lse([lp for lp, lw in law if lw > math.log(1e-3)]))
    assert 1e-20 < tail < 1e-10
    assert math.isclose(_number(r"P_mu\(W_T > 1e-3\) = (\S+);", r.detail), tail, rel_tol=1e-2)


# ------------------------------------------------------------------------------------ D1 ----
LARGE_TS = (4096, 8192)


def test_d1_reports_its_numbers():
    """Every number D1 prints, recomputed: KL (definition), C and s* (closed form), and per
    branch the rate at the last T, its gap to C and T (rate_T - C) - log(T)/2 at the last two T
    (rates by the direct sum). Ts = 10..50 (five values, so that indices from the front and from
    the back differ). Absolute 0.6 units of the last printed digit: the print's rounding."""
    m, p = 0.5, 0.6
    Ts = (10, 20, 30, 40, 50)
    r = E.check_d1(Ts=Ts)
    d = r.detail
    C, s_star = _ref_chernoff(m, p)
    assert abs(_number(r"Chernoff information C = (\S+) at", d) - C) <= 0.6e-8
    assert abs(_number(r"at s\* = (\S+),", d) - s_star) <= 0.6e-4
    assert abs(_number(r"KL\(mu\|\|pi\) = (\S+);", d) - _ref_kl(m, p)) <= 0.6e-6
    for branch, (kk, ll) in BRANCHES.items():
        seg = d.split(f"{branch} {(kk, ll)}: ")[1]
        rate = {T: -_ref_log_e_phi(T, m, p, kk, ll) / T for T in (40, 50)}
        assert abs(_number(r"rate at T = 50: (\S+),", seg) - rate[50]) <= 0.6e-7
        gap = _number(r"gap to the claimed rate (\S+) ", seg)
        assert math.isclose(gap, rate[50] - C, rel_tol=0.6e-3)
        c2 = _number(r"T gap - log\(T\)/2 = (\S+) at T = 50,", seg)
        c1 = _number(r"at T = 50, (\S+) at T = 40\)", seg)
        assert abs(c2 - (50 * (rate[50] - C) - 0.5 * math.log(50))) <= 0.6e-4
        assert abs(c1 - (40 * (rate[40] - C) - 0.5 * math.log(40))) <= 0.6e-4


def test_d1_verifies_on_the_two_largest_T():
    r = E.check_d1(Ts=LARGE_TS)
    assert r.status == "verified", r.detail


@pytest.mark.parametrize("branch,excess", [("A>=0", 3.0), ("A<0", 3.5)])
def test_d1_catches_e_phi_above_the_bound_at_large_T(monkeypatch, branch, excess):
    """E[phi] of one branch multiplied by e^excess at T = 4096 and 8192: above the finite-T bound
    inf_s C_s (E r^s)^T (by 0.2 to 0.5 in log, computed here on a grid), whose infimum sits at
    s ~ 1/2; a bound taken at s >= 1, or by a coarse search, or with a slack of 1 in log misses
    it. A constant factor leaves the extrapolated rate C' unchanged, so the bound is the only
    wrong part, and the other branch is right."""
    m, p = 0.5, 0.6
    kk0, ll0 = BRANCHES[branch]
    worst = max(
        _ref_log_e_phi(T, m, p, kk0, ll0) + excess - _ref_log_bound(T, m, p, kk0, ll0)
        for T in LARGE_TS
    )
    assert 0.2 < worst < 0.6
    orig = E._log_e_phi
    monkeypatch.setattr(
        E,
        "_log_e_phi",
        lambda T, m_, p_, kk, ll: orig(T, m_, p_, kk, ll) + (excess if kk == kk0 else 0.0),
    )
    r = E.check_d1(Ts=LARGE_TS)
    assert r.status == "failed", r.detail
    seg = r.detail.split(f"{branch} {(kk0, ll0)}: ")[1].split("; A<0")[0]
    assert "<= 1e-5: True)" in seg and "(<= 0: False)" in seg


def test_d1_wrong_sup_constant_fails(monkeypatch):
    """A derivation returning 2 C_s: the claimed form fails; the bound (looser) and the limit
    still hold, so this part alone must fail D1."""
    w_star, c_s, d2 = E._derive_c_s()
    monkeypatch.setattr(E, "_derive_c_s", lambda: (w_star, 2 * c_s, d2))
    r = E.check_d1(Ts=LARGE_TS)
    assert r.status == "failed", r.detail
    assert "(claimed form: False; concave log: True)" in r.detail


def test_d1_concavity_uses_both_assumptions_together(monkeypatch):
    """A second derivative -(k - s)^3 / W^2: negative given W > 0 *and* k > s (as the claim
    assumes), undecided given only one of them; D1 must accept it."""
    w_star, c_s, _ = E._derive_c_s()
    d2 = -((E.k - E.s_sym) ** 3) / E.W**2
    monkeypatch.setattr(E, "_derive_c_s", lambda: (w_star, c_s, d2))
    r = E.check_d1(Ts=LARGE_TS)
    assert r.status == "verified", r.detail
