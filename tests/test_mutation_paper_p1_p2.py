"""Tests that kill the mutants of P1 and P2 in ``vespo_theory/derivations/paper.py`` (and of its
helpers ``_vespo_exact``, ``_nonzero``, ``_short``) that tests/test_derive_paper.py lets live
(see docs/mutation.md).

P1 (E_mu[phi(W) G] = Z E_Q[G] for Q = mu phi(W) / Z) is an identity for *every* phi and G, so
a mutant that changes a reshaping, a function G or the draw of a support still verifies with the
true premises; these tests therefore look at what the check evaluates (the phi values it feeds
to the proposal, through a premise object that records them), at the detail's counts and names,
and at premises that are wrong in exactly one direction: wrong only on the exact supports, wrong
only on the VESPO kernels, or wrong on a hand-made support in a direction that only one of the
four functions G can see. P2 is split into its parts by stubbing ``_stationary_q`` (so that the
stationary form is the only wrong part) and ``sympy.solve`` (its guard for a stationarity
condition without a unique solution).

Every input is exact (SymPy Rationals and e^Rational); no numeric tolerance is used.
"""

from __future__ import annotations

import sympy as sp

from vespo_theory.derivations import paper as P

R = sp.Rational


def _phi_vespo(w, kk, ll):
    """The VESPO kernel phi(w) = w^k e^(lam (1 - w)) (arXiv 2602.10693 §3.3), written out
    independently of paper._vespo_exact."""
    return w**kk * sp.exp(ll * (1 - w))


class _Power:
    """A proposal exponent q for P1 (``p ** q_power``) given by a function of the base phi: the
    proposal is mu f(phi) / (sum or 1). Records every base it is applied to."""

    def __init__(self, f, name="f"):
        self.f, self.name, self.bases = f, name, []

    def __rpow__(self, base):
        self.bases.append(base)
        return self.f(sp.sympify(base))

    def __str__(self):
        return self.name


def _recording_support(monkeypatch):
    """Wrap paper._exact_support so that the (mu, pi) pairs P1 draws are recorded."""
    drawn = []
    real = P._exact_support

    def wrapper(rng, n):
        mu, pi = real(rng, n)
        drawn.append((tuple(mu), tuple(pi)))
        return mu, pi

    monkeypatch.setattr(P, "_exact_support", wrapper)
    return drawn


def _fixed_support(monkeypatch, mu, pi, constant_scores=False):
    """Make every P1 trial use the support (mu, pi); with ``constant_scores`` the check's
    generator returns the top of each range, so G = random score is the constant 9/9 = 1."""

    def fixed(rng, n):
        assert n == len(mu)
        if constant_scores:
            rng.randint = lambda lo, hi: hi
        return list(mu), list(pi)

    monkeypatch.setattr(P, "_exact_support", fixed)


# ------------------------------------------------------------------------- helpers ----


def test_vespo_exact_is_the_kernel_formula():
    # phi(3) for (k, lam) = (2, 3): 3^2 e^(3 (1 - 3)) = 9 e^-6; for (3, 2) at w = 1/2:
    # (1/2)^3 e^(2 (1/2)) = e / 8; and phi(1) = 1 for every pair (the kernel's fixed point).
    assert P._vespo_exact(3, 2, 3) == 9 * sp.exp(-6)
    assert P._vespo_exact(R(1, 2), 3, 2) == sp.E / 8
    assert P._vespo_exact(R(5, 2), 3, 2) == R(125, 8) * sp.exp(-3)
    assert P._vespo_exact(1, 2, 3) == 1 and P._vespo_exact(1, 3, 2) == 1


def test_nonzero_certifies_values_and_rejects_hidden_zeros():
    assert P._nonzero(R(1, 10**19))  # ten times the threshold 1e-20
    assert P._nonzero(sp.exp(R(1, 3)) - R(7, 5))  # e^(1/3) = 1.3956...
    assert not P._nonzero(sp.Integer(0))
    # log 6 - log 2 - log 3 is an exact zero that SymPy does not reduce structurally
    hidden = sp.log(6) - sp.log(2) - sp.log(3)
    assert hidden != 0 and not P._nonzero(hidden)


# ------------------------------------------------------------------------------ P1 ----


def test_p1_symbolic_detail_counts_the_terms():
    # Proposal mu phi^2 / Z2, normalised: sum Q - 1 is 0 structurally; the gap times the
    # normaliser is sum_ij m_i phi_i^2 m_j phi_j g_j - sum_ij m_i phi_i m_j phi_j^2 g_j, whose
    # i = j terms cancel and whose i != j terms are distinct monomials: 2 n (n - 1) = 24 terms on
    # the 4-point support (too long to print, so the detail gives the count).
    d = P.check_p1(q_power=2).detail
    assert "sum Q - 1 -> 0, E_mu[phi G] - Z E_Q[G] -> a nonzero polynomial of 24 terms;" in d
    # Unnormalised mu phi: sum Q - 1 = sum_i m_i phi_i - 1 (short: printed); the gap is
    # (1 - sum_i m_i phi_i) sum_j m_j phi_j g_j: n + n^2 = 20 terms.
    d = P.check_p1(normalise=False).detail
    assert "sum Q - 1 -> m0*phi0 + m1*phi1 + m2*phi2 + m3*phi3 - 1, " in d
    assert "E_mu[phi G] - Z E_Q[G] -> a nonzero polynomial of 20 terms;" in d


def test_p1_names_the_failing_reshapings_and_functions():
    # Unnormalised mu phi^2 with phi = W: sum Q = E_mu[W^2] = 1 + chi^2(pi||mu) > 1 on a support
    # with pi != mu, so IS fails for every G, G = 1 included: the first four failing cases are
    # trial 0's IS with the four functions in order.
    d = P.check_p1(q_power=2, normalise=False).detail
    assert (
        "failing: trial 0 IS W G=1, trial 0 IS W G=W, trial 0 IS W G=random score, "
        "trial 0 IS W G=1[y=0] ..." in d
    )
    # Normalised mu phi^2 / Z2: G = 1 always holds (both sides are Z), the other three fail,
    # so the fourth failing case is the clip's G = W.
    d = P.check_p1(q_power=2).detail
    assert (
        "failing: trial 0 IS W G=W, trial 0 IS W G=random score, trial 0 IS W G=1[y=0], "
        "trial 0 clip min(W,2) G=W ..." in d
    )


def test_p1_fails_on_the_vespo_kernels_alone():
    # A proposal mu phi^2 / Z2 only where phi involves e^x (the VESPO kernels), mu phi / Z on
    # the Rational IS and clip values and on the symbolic support: 3 trials x 2 kernels x 3
    # functions (G = 1 always holds) fail, 48 - 18 = 30 hold, and the VESPO names are reported.
    q = _Power(lambda p: p**2 if p.has(sp.exp) else p, "2 on e^x values")
    r = P.check_p1(q_power=q)
    assert r.status == "failed"
    assert ": 30 identities hold exactly" in r.detail
    assert (
        "failing: trial 0 VESPO (2,3) G=W, trial 0 VESPO (2,3) G=random score, "
        "trial 0 VESPO (2,3) G=1[y=0], trial 0 VESPO (3,2) G=W ..." in r.detail
    )


def test_p1_fails_when_only_the_exact_part_fails_and_certifies_it():
    # The mirror of test_derive_paper's _PowerOnSymbolsOnly: mu phi^2 / Z2 on numbers, mu phi / Z
    # on symbols. The symbolic part holds; on the exact supports sum Q - 1 = 0 while the gap is
    # non-zero (a case must count as failing when either is non-zero), G = 1 holds (12 of 48),
    # and every failing case is certified non-zero (no "(undecided)").
    q = _Power(lambda p: p if p.free_symbols else p**2, "1 on symbols, 2 on numbers")
    r = P.check_p1(q_power=q)
    assert r.status == "failed"
    assert "sum Q - 1 -> 0, E_mu[phi G] - Z E_Q[G] -> 0;" in r.detail
    assert ": 12 identities hold exactly; failing: trial 0 IS W G=W, " in r.detail
    assert "(undecided)" not in r.detail


def test_p1_falls_back_to_the_mass_when_the_gap_is_not_certified(monkeypatch):
    # With _nonzero unable to certify any gap (the stub answers False for the first value of
    # each failing case, the gap), a failing case is still certified by a non-zero mass
    # sum Q - 1: unnormalised mu phi^2 gives sum Q - 1 = E_mu[phi^2] - 1 != 0 on IS.
    real, seen = P._nonzero, []

    def gap_never_certified(expr):
        seen.append(expr)
        return False if len(seen) % 2 else real(expr)

    monkeypatch.setattr(P, "_nonzero", gap_never_certified)
    r = P.check_p1(q_power=2, normalise=False)
    assert r.status == "failed"
    assert "failing: trial 0 IS W G=1, " in r.detail and "(undecided)" not in r.detail
    assert seen and all(e is not None for e in seen)


def test_p1_evaluates_the_four_reshapings_at_w_equal_pi_over_mu(monkeypatch):
    # On the hand-made support A below (w = 1/2, 3, 4, 6, 7/20, 7/20: both sides of the clip),
    # record every phi value the proposal is built from (q = 1: the true premise, so the check
    # verifies); each exact phi must be w = pi/mu, min(w, 2), or the VESPO kernel at (2, 3) and
    # (3, 2), in that order, once per function G, in each of the three trials.
    _fixed_support(monkeypatch, _MU_A, [m * w for m, w in zip(_MU_A, _W_A)])
    q = _Power(lambda p: p, "1 (recording)")
    r = P.check_p1(q_power=q)
    assert r.status == "verified", r.detail
    exact = [b for b in q.bases if not sp.sympify(b).free_symbols]
    clipped = [R(1, 2), 2, 2, 2, R(7, 20), R(7, 20)]  # min(w, 2) by hand
    one_trial = []
    for phis in (list(_W_A), clipped, [_phi_vespo(w, 2, 3) for w in _W_A],
                 [_phi_vespo(w, 3, 2) for w in _W_A]):  # fmt: skip
        one_trial += phis * 4
    assert exact == one_trial * 3


def test_p1_default_supports_exercise_both_sides_of_the_clip(monkeypatch):
    # If no seeded support had a point with w > 2, min(W, 2) would be W on every support and the
    # clip would be checked as a second copy of IS.
    drawn = _recording_support(monkeypatch)
    assert P.check_p1().status == "verified"
    all_w = [p / m for mu, pi in drawn for p, m in zip(pi, mu)]
    assert len(drawn) == 3 and any(w > 2 for w in all_w) and any(w < 2 for w in all_w)


def test_p1_draws_are_seeded(monkeypatch):
    drawn = _recording_support(monkeypatch)
    P.check_p1()
    P.check_p1()
    P.check_p1(seed=1)
    assert len(drawn) == 9
    assert drawn[0:3] == drawn[3:6]  # the same seed draws the same supports
    assert drawn[6:9] != drawn[0:3]  # another seed draws others


def test_p1_unnormalised_proposal_is_exact_on_policy(monkeypatch):
    # mu = pi: W = 1 at every point, phi(1) = 1 for all four reshapings (min(1, 2) = 1,
    # 1^k e^0 = 1), so Z = E_mu[phi] = 1 and the unnormalised Q = mu phi (normaliser 1) is the
    # normalised one: all 48 exact cases hold (the symbolic part, free phi_i, still fails).
    mu = (R(1, 12), R(1, 6), R(1, 4), R(1, 12), R(1, 4), R(1, 6))
    _fixed_support(monkeypatch, mu, mu)
    r = P.check_p1(normalise=False)
    assert r.status == "failed"
    assert ": 48 identities hold exactly" in r.detail and "failing" not in r.detail


# A support whose weights w = pi/mu are 1/2, 3, 4, 6, 7/20, 7/20 (support A; B puts w = 3 first)
# and a proposal mu f(phi) / Z_f with f(w) = w (1 + h(w) / 100) at w = 3, 4, 6 and f = phi
# elsewhere. With m = 1/20 at those three points, h = (8, -9, 2) solves
#   sum_i m_i w_i h_i = (3*8 - 4*9 + 6*2) / 20 = 0      (Z_f = Z: G = 1 and the mass hold)
#   sum_i m_i w_i^2 h_i = (9*8 - 16*9 + 36*2) / 20 = 0  (E_Q[W] unchanged: G = W holds),
# and the clip (phi = 2 there) and the VESPO kernels (values with e^x) never meet f != phi.
_H = {sp.Integer(3): 8, sp.Integer(4): -9, sp.Integer(6): 2}
_MU_A = (R(7, 20), R(1, 20), R(1, 20), R(1, 20), R(1, 4), R(1, 4))
_W_A = (R(1, 2), R(3), R(4), R(6), R(7, 20), R(7, 20))
_MU_B = (R(1, 20), R(7, 20), R(1, 20), R(1, 20), R(1, 4), R(1, 4))
_W_B = (R(3), R(1, 2), R(4), R(6), R(7, 20), R(7, 20))


def _tilted():
    return _Power(lambda p: p * (1 + R(_H.get(p, 0), 100)), "tilted at w = 3, 4, 6")


def test_support_and_tilt_are_as_designed():
    for mu, ws in ((_MU_A, _W_A), (_MU_B, _W_B)):
        assert sum(mu) == 1 and sum(m * w for m, w in zip(mu, ws)) == 1  # pi sums to 1
        h = [_H.get(w, 0) for w in ws]
        assert sum(m * w * x for m, w, x in zip(mu, ws, h)) == 0
        assert sum(m * w**2 * x for m, w, x in zip(mu, ws, h)) == 0


def test_p1_random_score_sees_what_1_w_and_the_indicator_cannot(monkeypatch):
    # Support A: h = 0 at y = 0, so the tilted proposal agrees with mu W / Z on G = 1, W and
    # 1[y=0]; only the random score can see it (E_Q[G] moves by a multiple of
    # 24 g_1 - 36 g_2 + 12 g_3, non-zero for the seeded scores), on IS only: 45 of 48 hold.
    _fixed_support(monkeypatch, _MU_A, [m * w for m, w in zip(_MU_A, _W_A)])
    r = P.check_p1(q_power=_tilted())
    assert r.status == "failed"
    assert (
        ": 45 identities hold exactly; failing: trial 0 IS W G=random score, "
        "trial 1 IS W G=random score, trial 2 IS W G=random score" in r.detail
    )


def test_p1_indicator_sees_what_1_w_and_a_constant_score_cannot(monkeypatch):
    # Support B: h = 8 at y = 0, so Q(0) is off by the factor 1.08 while G = 1 and W (and the
    # score, made constant here) cannot see it: only G = 1[y=0] fails, on IS only.
    _fixed_support(monkeypatch, _MU_B, [m * w for m, w in zip(_MU_B, _W_B)], constant_scores=True)
    r = P.check_p1(q_power=_tilted())
    assert r.status == "failed"
    assert (
        ": 45 identities hold exactly; failing: trial 0 IS W G=1[y=0], "
        "trial 1 IS W G=1[y=0], trial 2 IS W G=1[y=0]" in r.detail
    )


# ------------------------------------------------------------------------------ P2 ----


def test_p2_fails_when_only_the_stationary_form_is_wrong(monkeypatch):
    # With the flipped budget sign the single-KL stationary point is Q* ∝ mu W^a e^(+bW):
    # log(Q*/(mu W^a e^-bW)) = 2 b W + const, so d/dW = 2 b and d/dmu = 0. Stub the two-KL
    # stationary point to the same flipped sign, so "equals Q1" holds, the objective difference
    # and the infinite-support note hold, Q* is a minimiser (d2L/dQ2 = 1/Q): only the form fails.
    real = P._stationary_q
    monkeypatch.setattr(P, "_stationary_q", lambda sign=1: real(-1))
    r = P.check_p2(lagrangian_sign=-1)
    assert r.status == "failed"
    d = r.detail
    assert "d/dW log(Q*/(mu W^a e^-bW)) = 2*b, d/dmu = 0 (Q* ∝ mu W^a e^-bW: False)" in d
    assert "d2L/dQ2 = 1/Q > 0 (True)" in d and "stationary point Q1: True" in d
    assert "(independent of Q: True, so the same minimiser)" in d


def test_p2_fails_when_stationarity_has_no_unique_solution(monkeypatch):
    # sympy.solve stubbed to give two roots: the check must not go on with either of them.
    monkeypatch.setattr(P.sp, "solve", lambda *args, **kwargs: [P.MU, 2 * P.MU])
    r = P.check_p2()
    assert r.id == "P2" and r.method == "symbolic" and r.status == "failed"
    assert r.detail == "stationarity of the single-KL Lagrangian gave [mu, 2*mu], not one solution"
    assert "budget sign +1" in r.assumptions
