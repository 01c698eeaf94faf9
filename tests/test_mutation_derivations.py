"""Tests that kill the mutants of ``vespo_theory/derivations/checks.py`` that
tests/test_derivations.py lets live (see docs/mutation.md): checks fed several models, one of
them wrong; premises that a check must reject although the headline number comes out right
(E_mu[W] = 1 with a support hole at a prefix pi never reaches); each part of a check (Q2's
symbolic and numeric parts, B1/B2's sign and spot checks, K3's cross-links, Q3's five numeric
sub-checks) failing on its own while the others pass, some with a helper stubbed by
monkeypatch; the numeric fallbacks where SymPy cannot decide a sign; reproducibility of the
seeded checks; and the helpers' behaviour at their edges.

Every input is exact (SymPy Rationals) unless a tolerance is stated with its reason.
"""

from __future__ import annotations

import random

import pytest
import sympy as sp

from vespo_theory.derivations import _exact_ar as ar
from vespo_theory.derivations import checks as C

R = sp.Rational


def _table_model(tables: dict):
    """An autoregressive model given by its token table at every prefix (a dict)."""
    return lambda prefix: tables[tuple(prefix)]


def _context_free_pair(seed: int, vocab: int = 3, T: int = 3):
    rng = random.Random(seed)
    return ar.context_free(rng, vocab, T), ar.context_free(rng, vocab, T)


def _hole_pair():
    """mu has probability 0 on token 2 at every position, pi does not (supp pi ⊄ supp mu)."""
    rng = random.Random(3)
    mu_t = [ar.random_dist(rng, 3, zero_at=2) for _ in range(3)]
    pi_t = [ar.random_dist(rng, 3) for _ in range(3)]
    return lambda p: mu_t[len(p)], lambda p: pi_t[len(p)]


# ------------------------------------------------------------------------------------ M1 ----


def test_m1_fails_when_any_one_of_several_models_fails():
    """The verdict is the AND over the models: a wrong pair first and a right pair last."""
    models = {"hole": _hole_pair(), "context-free": _context_free_pair(5)}
    assert C.check_m1(models=models).status == "failed"
    # and the right pair alone verifies (so the failure above is the first pair's)
    assert C.check_m1(models={"context-free": _context_free_pair(5)}).status == "verified"


def test_m1_fails_on_a_support_hole_that_pi_never_reaches():
    """E_mu[W] = 1 exactly here, yet W_t is not a martingale: at prefix (1,), which mu reaches
    and pi never does (pi puts 0 on token 1 first), mu has a hole where pi has mass 1/2. The
    check must report the defect, not only compare E_mu[W] with 1."""
    half = (R(1, 2), R(1, 2))
    mu = _table_model({(): half, (0,): half, (1,): (R(1), R(0))})
    pi = _table_model({(): (R(1), R(0)), (0,): half, (1,): half})
    assert ar.moment_w(mu, pi, 2, 2, 1) == 1
    assert ar.martingale_defects(mu, pi, 2, 2) == [((1,), R(1, 2))]
    assert C.check_m1(models={"unreached hole": (mu, pi)}, vocab=2, T=2).status == "failed"


# ------------------------------------------------------------------------------------ M2 ----


def test_m2_reads_both_policies_chi2_at_the_same_prefix():
    """A prefix-dependent pair whose tables after token 1 are the tables after token 0 with the
    tokens relabelled (0 <-> 1) the same way in mu and in pi: chi2_t is the same at every prefix,
    so E_mu[W^2] = prod_t (1 + chi2_t) holds exactly and the check verifies. Reading mu's table
    at one prefix and pi's at another would mix a relabelled table with an unrelabelled one."""
    vocab, T = 2, 3
    base_mu = [(R(1, 3), R(2, 3)), (R(1, 4), R(3, 4)), (R(2, 5), R(3, 5))]
    base_pi = [(R(1, 2), R(1, 2)), (R(2, 3), R(1, 3)), (R(1, 5), R(4, 5))]

    def model(base):
        def f(prefix):
            tab = base[len(prefix)]
            # relabel after an odd number of 1s: still prefix-dependent, chi2 unchanged
            return tab[::-1] if sum(prefix) % 2 else tab

        return f

    mu, pi = model(base_mu), model(base_pi)
    assert mu((1,)) != mu((0,))  # prefix-dependent indeed
    rec = C.check_m2(models={"relabelled": (mu, pi)}, vocab=vocab, T=T)
    assert rec.status == "verified", rec.detail


def test_m2_default_instance_is_seeded():
    """Two runs with the default premises draw the same Rational tables: the same exact E_mu[W^2]
    in the record (an unseeded generator would draw other tables)."""
    assert C.check_m2().detail == C.check_m2().detail


def test_m2_fails_when_any_one_of_several_models_fails():
    """The verdict is the AND over the models: a Markov pair (not context-free: the product
    formula does not hold) first, a context-free pair last."""
    rng = random.Random(4)
    markov = (ar.markov(rng, 3, 4), ar.markov(rng, 3, 4))
    cf = _context_free_pair(6, 3, 4)
    assert C.check_m2(models={"Markov": markov}).status == "failed"
    assert C.check_m2(models={"context-free": cf}).status == "verified"
    assert C.check_m2(models={"Markov": markov, "context-free": cf}).status == "failed"


def test_m2_skips_tokens_of_probability_zero_under_mu():
    """A context-free pair with a deterministic token table at position 1 (mu = pi = (1, 0)):
    the zero-probability token adds nothing to chi2 (0^2 / 0 is skipped, not summed), the
    token with probability 1 adds 1^2 / 1, so chi2_1 = 0 and the formula holds exactly."""
    first_mu, first_pi = (R(1, 3), R(2, 3)), (R(1, 2), R(1, 2))
    last_mu, last_pi = (R(1, 4), R(3, 4)), (R(2, 3), R(1, 3))
    mu_t = [first_mu, (R(1), R(0)), last_mu]
    pi_t = [first_pi, (R(1), R(0)), last_pi]
    models = {"deterministic step": (lambda p: mu_t[len(p)], lambda p: pi_t[len(p)])}
    rec = C.check_m2(models=models, vocab=2, T=3)
    assert rec.status == "verified", rec.detail


def test_m2_fails_on_policy():
    """mu = pi: chi2_t = 0, E_mu[W^2] = 1 for every T, which does not grow; the claim's
    exponential growth fails (the product formula itself holds: 1 = 1)."""
    mu, _ = _context_free_pair(9, 3, 4)
    rec = C.check_m2(models={"on-policy": (mu, mu)})
    assert rec.status == "failed", rec.detail


# ------------------------------------------------------------------------------------ B1 ----

K, LAM, W = C.k, C.lam, C.W
M_K3 = (K / LAM) ** K * sp.exp(LAM - K)
# log(1 + x) - x / (1 + x) >= 0 for x >= 0 (zero only at x = 0), a sign SymPy does not decide
_X = (K - LAM) ** 2
_UNDECIDED_NONNEG = sp.log(1 + _X) - _X / (1 + _X)


def test_b1_minimum_of_log_m_minus_log_phi_is_zero():
    """With K3's M the bound is attained: g(W*) = log M - log phi(W*) simplifies to 0, i.e. the
    default premise is the sup itself, not a larger constant."""
    rec = C.check_b1()
    assert rec.status == "verified"
    assert "is g(W*) = 0 (>= 0 decided symbolically: True)" in rec.detail


def test_b1_falls_back_to_seeded_points_where_sympy_cannot_decide_the_sign():
    """claimed M = M_K3 e^(log(1+x) - x/(1+x)), x = (k - lam)^2: a valid bound (>= M_K3) whose
    g(W*) SymPy leaves undecided, so the sign is decided at the 60 seeded (k, lam): there the
    minimum is exactly 0 (at the seeded point k = lam = 8/5), which must count as >= 0."""
    assert _UNDECIDED_NONNEG.is_nonnegative is None
    assert any(kk == ll for kk, ll, _ in C._spot_points(20260212, 60))
    rec = C.check_b1(claimed_M=M_K3 * sp.exp(_UNDECIDED_NONNEG))
    assert rec.status == "verified", rec.detail
    assert "decided numerically: True" in rec.detail


def test_b1_fails_for_a_claimed_m_a_hair_below_the_sup():
    """claimed M = M_K3 e^(-1e-6): phi exceeds it only within ~1e-3 (relative) of W* = k/lam,
    which none of the 200 seeded spot points hits (their minimum of log M - log phi is ~2e-3 >
    0). The symbolic minimum g(W*) = -1e-6 < 0 alone must fail the check."""
    rec = C.check_b1(claimed_M=M_K3 * sp.exp(sp.Float(-1e-6)))
    assert rec.status == "failed"
    assert "min(log M - log phi) = 2.4" in rec.detail  # the spot check alone would pass


def test_b1_q2_q3_are_reproducible():
    """Seeded: the spot-check minimum (B1), SLSQP's worst error (Q2) and the solver's worst error
    in b (Q3) printed in the records are the same in two runs (an unseeded generator draws other
    points / supports)."""
    assert C.check_b1().detail == C.check_b1().detail
    assert C.check_q2().detail == C.check_q2().detail
    assert C.check_q3().detail == C.check_q3().detail


def test_records_without_own_premises_carry_exactly_the_catalogue_assumptions():
    """K2, K3, K4 and B1 add no premise text: their assumptions are the catalogue's, verbatim."""
    from vespo_theory import claims

    for check, cid in (
        (C.check_k2, "K2"),
        (C.check_k3, "K3"),
        (C.check_k4, "K4"),
        (C.check_b1, "B1"),
    ):
        assert check().assumptions == claims.assumptions(cid), cid


# ------------------------------------------------------------------------------------ Q2 ----


def test_q2_symbolic_part_alone_rejects_a_convexity_that_fails_for_some_a():
    """kl_signs (1, 2): the coefficient of 1/q_i is 1 + a, not convex at a = -1, so the claim
    "strictly convex for every real a" fails. With a = 0 only, the numeric cross-check agrees
    with the closed form (at a = 0 the objective is KL(Q||mu) either way): the symbolic part
    alone must fail the check."""
    rec = C.check_q2(kl_signs=(1, 2), a_values=(0.0,))
    assert rec.status == "failed"
    assert "coefficient of q_i^-1 is a + 1 (slope in a: 1)" in rec.detail
    worst = float(rec.detail.split("max |Q_opt - Q*_closed(b(C))| = ")[1].split()[0])
    assert worst <= 1e-6  # the check's own SLSQP tolerance: the numeric part passes


def test_q2_symbolic_part_alone_rejects_a_zero_objective(monkeypatch):
    """kl_signs (0, 0): the objective is 0 (coefficient 0), not strictly convex. The numeric
    part is stubbed to agree exactly, to isolate the symbolic verdict."""
    monkeypatch.setattr(C, "_numeric_q2", lambda *args: (0.0, []))
    assert C.check_q2().status == "verified"  # the stub alone fails nothing
    assert C.check_q2(kl_signs=(0, 0)).status == "failed"


def test_q2_numeric_part_alone_fails_the_check(monkeypatch):
    """An optimiser answer 1e-5 away from the closed form (> the check's tolerance 1e-6) fails
    Q2 although the symbolic part holds."""
    import types

    import numpy as np

    def off_by_1e5(log_mu, log_pi, w, a_val, budget, kl_signs):
        log_w = log_pi - log_mu
        q = C._closed_form(log_mu, log_w, w, a_val, C._solve_b(log_mu, log_w, w, a_val, budget))
        dx = np.zeros_like(q)
        dx[:2] = (1e-5, -1e-5)
        return types.SimpleNamespace(x=q + dx)

    monkeypatch.setattr(C, "_slsqp_min", off_by_1e5)
    rec = C.check_q2()
    assert rec.status == "failed"
    assert "max |Q_opt - Q*_closed(b(C))| = 1.00e-05" in rec.detail


def test_q2_coefficient_of_the_hessian_is_one():
    """The default objective's Hessian is diag(1/q_i): coefficient exactly 1, slope 0 in a."""
    rec = C.check_q2()
    assert "Hessian = diag(1/q_i)" in rec.detail
    assert "coefficient of q_i^-1 is 1 (slope in a: 0)" in rec.detail


# ------------------------------------------------------------------------------------ B2 ----


def test_b2_fails_for_a_claimed_m_a_hair_below_the_sup():
    """claimed M = M_K3 e^(-1e-6): the numeric spot check passes (max relative excess < 0: the
    atom at the argmax exceeds M by 1e-6 relative only), the sign of log(claimed M) - log(sup)
    = -1e-6 must fail the check."""
    rec = C.check_b2(claimed_M=M_K3 * sp.exp(sp.Float(-1e-6)))
    assert rec.status == "failed"
    assert "(>= 0 decided symbolically: False)" in rec.detail
    excess = float(rec.detail.split("max relative excess = ")[1].split()[0])
    assert excess < 0  # the spot check alone would pass


def test_b2_falls_back_to_seeded_points_where_sympy_cannot_decide_the_sign():
    """claimed M = M_K3 e^(log(1+x) - x/(1+x)), x = (k - lam)^2 (>= M_K3, sign undecided by
    SymPy): decided at the 60 seeded (k, lam), whose minimum is exactly 0 at k = lam = 12/5."""
    assert any(kk == ll for kk, ll, _ in C._spot_points(20260213, 60))
    rec = C.check_b2(claimed_M=M_K3 * sp.exp(_UNDECIDED_NONNEG))
    assert rec.status == "verified", rec.detail
    assert "(>= 0 decided numerically: True)" in rec.detail


def test_b2_is_reproducible():
    """Seeded laws: the max relative excess printed in the record is the same in two runs."""
    assert C.check_b2().detail == C.check_b2().detail


def test_b2_numeric_part_alone_fails_the_check(monkeypatch):
    """With a wrong symbolic sup (the stationary point stubbed to W* = 1, so sup phi = phi(1) = 1)
    a claimed M = 1 passes the sign test (log 1 - log 1 = 0); the seeded laws, which put atoms at
    k/lam where phi = (k/lam)^k e^(lam-k) > 1, must still fail the check."""
    monkeypatch.setattr(C, "_derive_sup", lambda phi: ([sp.Integer(1)], None, None))
    rec = C.check_b2(claimed_M=sp.Integer(1))
    assert "(>= 0 decided symbolically: True)" in rec.detail
    assert rec.status == "failed"


# ------------------------------------------------------------------------------------ K1 ----


def test_derived_kernel_default_is_the_stated_kernel():
    """derived_kernel() with its default premise (budget sign +1) is W^k e^(lam (1 - W))."""
    phi, (w, kk, ll) = C.derived_kernel()
    assert (w, kk, ll) == (W, K, LAM)
    assert sp.simplify(phi - W**K * sp.exp(LAM * (1 - W))) == 0


# ------------------------------------------------------------------------------------ K3 ----


def test_k3_fails_when_the_production_bound_disagrees(monkeypatch):
    """The cross-link to vespo_theory.bounds.phi_max: a planted error of 1e-6 relative in the
    production M (far above the 1e-12 rounding allowance, far below the paper's 4 decimals,
    5e-5) must fail K3 on its own."""
    import vespo_theory.bounds as bounds

    true_phi_max = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: true_phi_max(kk, ll) * (1 + 1e-6))
    rec = C.check_k3()
    assert rec.status == "failed"
    assert "agrees with bounds.phi_max and the paper: False" in rec.detail


def test_k3_fails_when_only_the_papers_quoted_values_disagree(monkeypatch):
    """Kernel 3/2 phi with claimed M = 3/2 M_K3 and a production bound scaled the same way: the
    derivation and the bound agree with each other, only the paper's quoted M(2,3) = 1.2081 and
    M(3,2) = 1.2416 tell that the kernel is not the paper's (off by ~0.6, which is far above the
    quoted values' rounding 5e-5 and below 1). That alone must fail K3."""
    import vespo_theory.bounds as bounds

    true_phi_max = bounds.phi_max
    monkeypatch.setattr(bounds, "phi_max", lambda kk, ll: 1.5 * true_phi_max(kk, ll))
    rec = C.check_k3(kernel=R(3, 2) * W**K * sp.exp(LAM * (1 - W)), claimed_M=R(3, 2) * M_K3)
    assert rec.status == "failed"
    assert "agrees with bounds.phi_max and the paper: False" in rec.detail
    assert "claimed M 3*(k/lam)**k*exp(-k + lam)/2 (True)" in rec.detail


# ------------------------------------------------------------------------------------ Q3 ----
# Budget solvers that are wrong in one regime only: each must fail Q3 through its own sub-check
# while the others hold (the detail names every sub-check's verdict).


def _q3_with(solver):
    rec = C.check_q3(solver=solver)
    return rec, rec.detail


def test_q3_fails_a_solver_that_never_returns_exactly_zero():
    """A slack budget (C >= E(0)) must give b = 0 exactly; a solver returning 1e-9 there fails."""

    def solver(*args):
        b = C._solve_b(*args)
        return 1e-9 if b == 0.0 else b

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert "give b = 0: False" in d and "gives b > 0 with E(b) = C: True" in d
    assert "refused as infeasible: True" in d and "feasible: True" in d


def test_q3_fails_a_solver_whose_slack_region_is_too_wide():
    """C = E(0) - 1e-6 (E(0) - min W) binds (b > 0); a solver that calls every C within
    1e-5 (E(0) - min W) of E(0) slack returns b = 0 there and fails."""

    def solver(log_mu, log_w, w, a_val, budget, sign=1):
        q0 = C._closed_form(log_mu, log_w, w, a_val, 0.0, sign)
        e0 = float(q0 @ w)
        if budget >= e0 - 1e-5 * (e0 - float(w.min())):
            return 0.0
        return C._solve_b(log_mu, log_w, w, a_val, budget, sign)

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert "gives b > 0 with E(b) = C: False" in d and "give b = 0: True" in d
    assert "refused as infeasible: True" in d and "feasible: True" in d


def test_q3_fails_a_solver_that_answers_an_infeasible_budget():
    """C <= min W has no b; a solver that returns a number there (and is right elsewhere)."""

    def solver(log_mu, log_w, w, a_val, budget, sign=1):
        if budget <= float(w.min()):
            return 1e6
        return C._solve_b(log_mu, log_w, w, a_val, budget, sign)

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert "refused as infeasible: False" in d and "feasible: True" in d
    assert "give b = 0: True" in d and "gives b > 0 with E(b) = C: True" in d


def test_q3_fails_a_solver_that_refuses_budgets_just_above_min_w():
    """C = min W + 0.01 (E(0) - min W) is feasible; a solver that refuses every C below
    min W + 0.02 (E(0) - min W) fails (and only there)."""

    def solver(log_mu, log_w, w, a_val, budget, sign=1):
        e0 = float(C._closed_form(log_mu, log_w, w, a_val, 0.0, sign) @ w)
        if budget < float(w.min()) + 0.02 * (e0 - float(w.min())):
            raise C.InfeasibleBudget("refused")
        return C._solve_b(log_mu, log_w, w, a_val, budget, sign)

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert d.split("C = min W + 0.01 (E(0) - min W) feasible: ")[1].startswith("False")
    assert "refused as infeasible: True" in d and "give b = 0: True" in d


def test_q3_fails_a_solver_off_by_1e_6_in_b():
    """b recovered to 1e-8 (brentq at xtol 1e-14 does ~1e-10): a solver whose b is 1e-6 too
    large for 0.25 < b <= 3 (where the seeded b_true ~ U(0.2, 3) fall, and none of the other
    sub-checks' b on these supports) fails through the recovery alone."""

    def solver(*args):
        b = C._solve_b(*args)
        return b + 1e-6 if 0.25 < b <= 3.0 else b

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    err = float(d.split("solver recovers b, max error ")[1].split(";")[0])
    assert 0.9e-6 < err < 1.1e-6  # the planted 1e-6, up to brentq's own ~1e-10
    assert "give b = 0: True" in d and "gives b > 0 with E(b) = C: True" in d
    assert "refused as infeasible: True" in d and "feasible: True" in d


def test_q3_fails_a_solver_slightly_off_on_binding_budgets_near_e0():
    """C = E(0) - 1e-6 (E(0) - min W) has b ~ 1e-6 .. 1e-5; a b 1e-3 relative too large there
    misses C by ~1e-9 (E(0) - min W), far above the check's 1e-12 (brentq's accuracy) and far
    below E(0) - min W itself."""

    def solver(*args):
        b = C._solve_b(*args)
        return b * (1 + 1e-3) if 0 < b < 1e-3 else b

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert "gives b > 0 with E(b) = C: False" in d and "give b = 0: True" in d
    assert "refused as infeasible: True" in d and "feasible: True" in d


def test_q3_fails_a_solver_off_by_10_percent_for_large_b():
    """C = min W + 0.01 (E(0) - min W) needs b ~ 10 .. 50 on these supports (the others need
    b <= 3): a b 10 % too large there misses C by far more than the check's 1e-9 (E(0) - min W)
    and less than E(0) - min W."""

    def solver(*args):
        b = C._solve_b(*args)
        return b * 1.1 if b > 3.5 else b

    rec, d = _q3_with(solver)
    assert rec.status == "failed"
    assert d.split("C = min W + 0.01 (E(0) - min W) feasible: ")[1].startswith("False")
    assert "give b = 0: True" in d and "gives b > 0 with E(b) = C: True" in d
    err = float(d.split("solver recovers b, max error ")[1].split(";")[0])
    assert err <= 1e-8  # b_true recovered: the recovery sub-check passes


# ----------------------------------------------------------------------------------- helpers


def test_is_zero_falls_back_to_forced_log_expansion():
    """log(x y) - log x - log y for symbols without assumptions: simplify alone cannot call it 0
    (false for complex x, y), expand_log(force=True) does, and the checks rely on that step."""
    x, y = sp.symbols("x y")
    e = sp.log(x * y) - sp.log(x) - sp.log(y)
    assert sp.simplify(e) != 0
    assert C._is_zero(e) is True
    assert C._is_zero(e + 1) is False


def test_b1_b2_numeric_sign_fallback_rejects_a_claimed_m_a_hair_too_small():
    """claimed M = M_K3 e^(-1e-9 (1 + u)), u = log(1+x) - x/(1+x) >= 0 undecided by SymPy: the
    sign of log(claimed M) - log(sup) is decided at the seeded points, where it is about -1e-9,
    below the float64 allowance -1e-12 (rounding of an O(10) expression ~1e-14) and far above
    -1. The spot points and laws miss the 1e-9 excess (their margins are ~2e-3), so the
    numeric sign alone must fail B1 and B2."""
    claimed = M_K3 * sp.exp(-sp.Float(1e-9) * (1 + _UNDECIDED_NONNEG))
    for check in (C.check_b1, C.check_b2):
        rec = check(claimed_M=claimed)
        assert rec.status == "failed"
        assert "decided numerically: False" in rec.detail


def test_b2_default_claimed_m_is_k3s_sup():
    """With the default premises B2 uses K3's M itself, not a larger constant: log(claimed M) -
    log(sup phi) is exactly 0."""
    rec = C.check_b2()
    assert rec.status == "verified"
    assert "claimed M = (k/lam)**k*exp(-k + lam); log(claimed M) - log(sup phi) = 0 " in rec.detail


@pytest.mark.parametrize("check", ["check_m1", "check_m2"])
def test_empty_models_refused_not_vacuously_verified(check):
    # Over no model the loop never runs and `ok` stays True: the check must refuse instead.
    with pytest.raises(ValueError, match="models is empty"):
        getattr(C, check)(models={})
