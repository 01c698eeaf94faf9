"""Derive checks of the paper's own statements P1-P10 (arXiv 2602.10693 v3; docs/theory.md).

One check per statement of the paper, registered with ``@register("P<n>")``; the statements and
their assumptions are the catalogue's (:mod:`vespo_theory.claims`). As in
:mod:`vespo_theory.derivations.checks`, every check *derives* its object from premises (SymPy
solves a stationarity condition, expands a product, takes a limit, or enumerates a finite support
in exact Rational arithmetic) and compares the derivation with the statement; every check takes
keyword-only *premise* parameters whose defaults are the correct premises, so that a test can
pass a wrong one (a flipped sign, a wrong proposal, a wrong claimed constant) and see the check
fail.

Random draws are seeded (``random.Random`` for Rationals, ``numpy.random.default_rng`` for
float64); every numeric tolerance says why it has its size.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import sympy as sp

from vespo_theory.derivations import CheckRecord, register
from vespo_theory.derivations import _exact_ar as ar
from vespo_theory.derivations.checks import (
    MU,
    Q,
    W,
    _default_kernel,
    _derive_sup,
    _is_zero,
    _record,
    _stationary_q,
    a,
    b,
    k,
    lam,
    nu,
)

# The deployed kernel's two parameter pairs (arXiv 2602.10693 §3.3): (2, 3) for A >= 0, (3, 2) for
# A < 0.
_PAIRS = ((2, 3), (3, 2))


def _vespo_exact(w, kk, ll):
    """phi(w) = w^k e^(lam (1 - w)) as an exact SymPy number (w, k, lam Rationals)."""
    w = sp.sympify(w)
    return w**kk * sp.exp(ll * (1 - w))


def _exact_support(rng: random.Random, n: int) -> tuple[list, list]:
    """mu, pi on n points: Rationals with small denominators, both > 0 everywhere."""
    return list(ar.random_dist(rng, n)), list(ar.random_dist(rng, n))


def _nonzero(expr, digits: int = 30) -> bool:
    """True when the exact number ``expr`` is certified non-zero: SymPy's ``N`` evaluates it with
    ``digits`` correct significant digits (adaptive precision), so a magnitude above 1e-20 cannot
    be a rounding artefact of an exact zero."""
    return abs(complex(sp.N(expr, digits))) > 1e-20


def _short(expr) -> str:
    """``expr`` as text, or the number of its terms when it is long (for ``detail``)."""
    text = str(expr)
    return (
        text if len(text) <= 80 else f"a nonzero polynomial of {len(sp.Add.make_args(expr))} terms"
    )


# ------------------------------------------------------------------------------------ P1 ----
@register("P1")
def check_p1(
    *,
    q_power: int = 1,
    normalise: bool = True,
    seed: int = 20260301,
    n_support: int = 6,
    n_trials: int = 3,
) -> CheckRecord:
    """Measure change E_mu[phi(W) G] = Z E_Q[G], Q = mu phi(W)/Z (arXiv 2602.10693 Eqs. 9-10, 42).

    Premises: the proposal is Q = mu phi^q_power / (its sum if ``normalise`` else 1); the correct
    one is q_power = 1, normalised. Symbolic on a 4-point support with free mu_i, phi_i, G_i; then
    exact on seeded Rational supports for four reshapings (IS, clip min(W, 2), VESPO (2,3) and
    (3,2), the last two exact SymPy numbers with e^x) and four functions G.
    """

    def proposal(ms, phis):
        """(unnormalised masses, their normaliser): Q_i = un_i / s."""
        un = [m * p**q_power for m, p in zip(ms, phis)]
        return un, (sum(un) if normalise else sp.Integer(1))

    def gaps(ms, phis, G):
        # E_mu[phi G] - Z E_Q[G] and sum Q - 1, each times the normaliser s > 0 (one fraction):
        # zero iff the numerator expands to 0, which SymPy decides exactly for sums of products
        # of Rationals and e^(Rational).
        un, s = proposal(ms, phis)
        z = sum(m * p for m, p in zip(ms, phis))
        lhs = sum(m * p * g for m, p, g in zip(ms, phis, G))
        return sp.expand(s * lhs - z * sum(u * g for u, g in zip(un, G))), sp.expand(sum(un) - s)

    n = 4
    ms = sp.symbols(f"m0:{n}", positive=True)
    ps = sp.symbols(f"phi0:{n}", positive=True)
    gs = sp.symbols(f"g0:{n}", real=True)
    sym_gap, sym_mass = gaps(ms, ps, gs)
    sym_ok = sym_mass == 0 and sym_gap == 0

    rng = random.Random(seed)
    kernels = {
        "IS W": lambda w: w,
        "clip min(W,2)": lambda w: sp.Min(w, 2),
        "VESPO (2,3)": lambda w: _vespo_exact(w, 2, 3),
        "VESPO (3,2)": lambda w: _vespo_exact(w, 3, 2),
    }
    n_pairs, bad = 0, []
    for trial in range(n_trials):
        mu, pi = _exact_support(rng, n_support)
        ws = [p / m for p, m in zip(pi, mu)]
        scores = [sp.Rational(rng.randint(-9, 9), rng.randint(1, 9)) for _ in ws]
        functions = {
            "G=1": [sp.Integer(1)] * n_support,
            "G=W": ws,
            "G=random score": scores,
            "G=1[y=0]": [sp.Integer(1)] + [sp.Integer(0)] * (n_support - 1),
        }
        for kname, phi in kernels.items():
            phis = [phi(w) for w in ws]
            for gname, G in functions.items():
                gap, mass = gaps(mu, phis, G)
                n_pairs += 1
                if gap != 0 or mass != 0:
                    # not reduced to 0 structurally: certify the value non-zero (else undecided)
                    sure = _nonzero(gap) or _nonzero(mass)
                    bad.append(f"trial {trial} {kname} {gname}" + ("" if sure else " (undecided)"))
    exact_ok = not bad
    return _record(
        "P1",
        f"proposal Q = mu phi^{q_power}"
        + (" / sum" if normalise else " (unnormalised)")
        + f"; {n_trials} seeded Rational supports of {n_support} points (seed {seed})",
        "symbolic+exact",
        sym_ok and exact_ok,
        f"symbolic (4 points, free mu_i, phi_i, G_i), times the normaliser: sum Q - 1 -> "
        f"{_short(sym_mass)}, E_mu[phi G] - Z E_Q[G] -> {_short(sym_gap)}; exact: {n_pairs} "
        "(support, reshaping, G) cases "
        f"over IS, clip, VESPO (2,3), (3,2) and G in {{1, W, random score, indicator}}: "
        f"{n_pairs - len(bad)} identities hold exactly"
        + (f"; failing: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}" if bad else ""),
    )


# ------------------------------------------------------------------------------------ P2 ----
def _geometric_note():
    """An infinite support where the two-KL form is inf - inf and the single-KL form is defined.

    On N take mu(n) = (1/2)^(n+1), pi(n) = (4/5)(1/5)^n and Q(n) = 6/(pi^2 (n+1)^2). n times the
    terms of KL(Q||mu), KL(Q||pi) and E_Q[log W] tend to nonzero constants, so by limit
    comparison with the harmonic series KL(Q||mu) = KL(Q||pi) = +inf and E_Q[log W] = -inf;
    W(n) <= W(0) = 8/5, so E_Q[W] <= 8/5 and Q is feasible for every budget C >= 8/5. At a = 2 the
    two-KL form (1-a) KL(Q||mu) + a KL(Q||pi) is -inf + inf. The single-KL form KL(Q||mu) -
    a E_Q[log W] is defined in (-inf, +inf] for a >= 0 on the whole feasible set (Jensen:
    E_Q[log W] <= log E_Q[W] <= log C), here +inf; for a < 0 this Q makes it +inf - inf too.
    Returns (ok, text).
    """
    n = sp.Symbol("n", positive=True, integer=True)
    p, q = sp.Rational(1, 2), sp.Rational(1, 5)
    qn = 6 / (sp.pi**2 * (n + 1) ** 2)
    mun, pin = (1 - p) * p**n, (1 - q) * q**n
    log_w = sp.expand_log(sp.log(pin / mun), force=True)
    lim_mu = sp.limit(n * qn * sp.log(qn / mun), n, sp.oo)
    lim_pi = sp.limit(n * qn * sp.log(qn / pin), n, sp.oo)
    lim_lw = sp.limit(n * qn * log_w, n, sp.oo)
    decreasing = bool(sp.diff(log_w, n).is_negative)  # log W(n) decreases: sup at n = 0
    sup_w = sp.simplify(sp.exp(log_w.subs(n, 0)))
    ok = (
        bool(lim_mu.is_positive)
        and bool(lim_pi.is_positive)
        and bool(lim_lw.is_negative)
        and decreasing
    )
    text = (
        f"infinite support (mu = (1/2)^(n+1), pi = (4/5)(1/5)^n, Q = 6/(pi^2 (n+1)^2)): n times "
        f"the terms of KL(Q||mu), KL(Q||pi), E_Q[log W] -> {lim_mu}, {lim_pi}, {lim_lw} (limit "
        f"comparison with sum 1/n: +inf, +inf, -inf); W(n) decreasing ({decreasing}) from "
        f"W(0) = {sup_w}, so E_Q[W] <= {sup_w}: Q feasible; the two-KL form at a = 2 is "
        "-inf + inf, the single-KL form is +inf (defined: for a >= 0, E_Q[log W] <= log C by "
        "Jensen on the feasible set); for a < 0 it is +inf - inf at this Q as well"
    )
    return ok, text


@register("P2")
def check_p2(*, lagrangian_sign: int = 1, n_points: int = 3) -> CheckRecord:
    """The single-KL problem min_Q KL(Q||mu) - a E_Q[log W] s.t. E_Q[W] <= C, sum Q = 1 has
    Q* ∝ mu W^a e^(-bW), the minimiser of the two-KL form (arXiv 2602.10693 Prop. B.1, Eqs. 11-16,
    38).

    Premise: ``lagrangian_sign`` of the budget term b (E_Q[W] - C) in the single-KL Lagrangian
    (+1 is correct for a constraint E_Q[W] <= C with b >= 0).
    """
    C = sp.Symbol("C", positive=True)
    L = Q * sp.log(Q / MU) - a * Q * sp.log(W) + lagrangian_sign * b * (Q * W - C) + nu * (Q - 1)
    sols = sp.solve(sp.Eq(sp.diff(L, Q), 0), Q)
    if len(sols) != 1:
        return _record(
            "P2",
            f"budget sign {lagrangian_sign:+d}",
            "symbolic",
            False,
            f"stationarity of the single-KL Lagrangian gave {sols}, not one solution",
        )
    q1 = sols[0]
    # d2L/dQ2 at each point: > 0 makes the separable objective strictly convex, so the stationary
    # point is the minimiser.
    curv = sp.simplify(sp.diff(L, Q, 2))
    convex = bool(curv.is_positive)
    log_gap = sp.expand_log(sp.log(q1 / MU), force=True) - (a * sp.log(W) - b * W)
    dW, dmu = sp.simplify(sp.diff(log_gap, W)), sp.simplify(sp.diff(log_gap, MU))
    form_ok = dW == 0 and dmu == 0
    # Same stationary point as the two-KL form (the pointwise Lagrangian of claim Q1).
    q2, _ = _stationary_q(1)
    same = _is_zero(sp.expand_log(sp.log(q1) - sp.log(q2), force=True))
    # The objectives on an n-point support, pi = mu W: their difference is a constant.
    qs = sp.symbols(f"q0:{n_points}", positive=True)
    ms = sp.symbols(f"m0:{n_points}", positive=True)
    ws = sp.symbols(f"w0:{n_points}", positive=True)
    single = sum(qi * sp.log(qi / mi) - a * qi * sp.log(wi) for qi, mi, wi in zip(qs, ms, ws))
    two = sum(
        (1 - a) * qi * sp.log(qi / mi) + a * qi * sp.log(qi / (mi * wi))
        for qi, mi, wi in zip(qs, ms, ws)
    )
    diff = sp.simplify(sp.expand(sp.expand_log(two - single, force=True)))
    const_ok = all(sp.simplify(sp.diff(diff, qi)) == 0 for qi in qs)
    inf_ok, inf_text = _geometric_note()
    ok = form_ok and convex and same and const_ok and inf_ok
    return _record(
        "P2",
        f"budget-term sign {lagrangian_sign:+d} in the single-KL Lagrangian; {n_points} symbolic "
        "points for the objectives",
        "symbolic",
        ok,
        f"solved d/dQ [Q log(Q/mu) - a Q log W + b (Q W - C) + nu (Q - 1)] = 0: Q* = "
        f"{sp.simplify(q1)}; d/dW log(Q*/(mu W^a e^-bW)) = {dW}, d/dmu = {dmu} (Q* ∝ mu W^a "
        f"e^-bW: {form_ok}); d2L/dQ2 = {curv} > 0 ({convex}): the minimiser; equals the two-KL "
        f"stationary point Q1: {same}; "
        f"two-KL minus single-KL objective on {n_points} points = {diff} (independent of Q: "
        f"{const_ok}, so the same minimiser); {inf_text}",
    )


# ------------------------------------------------------------------------------------ P3 ----
@register("P3")
def check_p3(*, surrogate=None) -> CheckRecord:
    """The unshifted kernel W^a e^(-bW) has surrogate f = b^(-a) lowergamma(a, bW), f(0) = 0,
    increasing, saturating at b^(-a) Gamma(a) (arXiv 2602.10693 Eqs. 39-41).

    Premise: ``surrogate`` (an expression in W and the positive symbols a, b of this check);
    ``None`` is the paper's.
    """
    ap, bp = sp.Symbol("a", positive=True), sp.Symbol("b", positive=True)
    kernel = W**ap * sp.exp(-bp * W)
    f = bp**-ap * sp.lowergamma(ap, bp * W) if surrogate is None else surrogate(ap, bp)
    fprime = sp.diff(f, W)
    gap = sp.simplify(W * fprime - kernel)
    ok_deriv = _is_zero(gap)
    f0 = sp.simplify(f.subs(W, 0))
    increasing = bool(sp.simplify(fprime).is_positive)
    # SymPy's limit does not close on lowergamma: rewrite lowergamma = Gamma - uppergamma (as K2).
    f_inf = sp.simplify(sp.limit(f.rewrite(sp.uppergamma), W, sp.oo))
    ok_inf = _is_zero(f_inf - bp**-ap * sp.gamma(ap))
    ok = ok_deriv and f0 == 0 and increasing and ok_inf
    return _record(
        "P3",
        "symbolic a, b > 0",
        "symbolic",
        ok,
        f"f = {f}: W f'(W) - W^a e^(-bW) simplifies to {0 if ok_deriv else gap}; f(0) = {f0}; "
        f"f' = {sp.simplify(fprime)} > 0: {increasing}; lim_(W->oo) f = {f_inf} (after "
        f"lowergamma = Gamma - uppergamma; b^(-a) Gamma(a): {ok_inf}): bounded and increasing, "
        "so the surrogate saturates",
    )


# ------------------------------------------------------------------------------------ P4 ----
def _gauss_lognormal(mean: float, sd: float, n: int = 80):
    """Atoms and weights of an n-point Gauss-Hermite rule for W = e^Y, Y ~ N(mean, sd^2)."""
    x, wts = np.polynomial.hermite_e.hermegauss(n)
    return np.exp(mean + sd * x), wts / wts.sum()


def _p4_laws(kk: float, ll: float, rng: np.random.Generator, n_laws: int) -> dict:
    """Seeded laws of W for the pair (k, lam): a Dirac at argmax phi/W, discrete laws with atoms
    near (k-1)/lam and k/lam, and log-normal laws by quadrature."""
    w_k = max((kk - 1) / ll, 1e-6)  # argmax of phi/W (the limit W -> 0+ when k = 1)
    laws = {"Dirac at argmax phi/W": (np.array([w_k]), np.array([1.0]))}
    for i in range(n_laws):
        atoms = np.concatenate(
            [[w_k, w_k * 1.01, kk / ll, kk / ll * 0.99], np.exp(rng.normal(0.0, 1.5, size=4))]
        )
        laws[f"discrete #{i}"] = (atoms, rng.dirichlet(np.ones(atoms.size)))
    for sd in (0.25, 1.0, 2.0):
        laws[f"log-normal(-s^2/2, s^2), s = {sd}"] = _gauss_lognormal(-(sd**2) / 2, sd)
    return laws


@register("P4")
def check_p4(
    *,
    claimed_K=None,
    finite_from=1,
    seed: int = 20260304,
    n_laws: int = 6,
) -> CheckRecord:
    """K = sup_w phi(w)/w = ((k-1)/lam)^(k-1) e^(lam-k+1) at w = (k-1)/lam, finite iff k >= 1,
    and E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W] (arXiv 2602.10693 Prop. 3.1, Eqs. 18-19, 43-44).

    Premises: ``claimed_K`` (an expression in k, lam; ``None`` is the paper's) and the claimed
    finiteness threshold ``finite_from`` (K < inf iff k >= finite_from; the paper's is 1).
    """
    from vespo_theory.bounds import log_phi_K, phi_K, phi_max

    phi = _default_kernel()
    c_K = ((k - 1) / lam) ** (k - 1) * sp.exp(lam - k + 1) if claimed_K is None else claimed_K
    s = sp.Symbol("s", positive=True)
    ratio = phi / W
    g = sp.expand_log(sp.log(ratio), force=True)
    crit = sp.solve(sp.Eq(sp.diff(g, W), 0), W)
    parts, ok = [f"solved d/dW log(phi/W) = 0: W = {crit}"], len(crit) == 1
    K_sym = None
    if ok:
        w_star = crit[0]
        # k > 1 (k = 1 + s): interior critical point, log-concave, phi/W -> 0 at both ends.
        d2 = sp.simplify(sp.diff(g, W, 2).subs(k, 1 + s))
        concave = bool(sp.ask(sp.Q.negative(d2), sp.Q.positive(W)))
        ends = (
            sp.limit(ratio.subs(k, 1 + s), W, 0, "+"),
            sp.limit(ratio.subs(k, 1 + s), W, sp.oo),
        )
        K_sym = sp.simplify(ratio.subs(W, w_star))
        ok_K = _is_zero(sp.expand_log(sp.log(K_sym) - sp.log(c_K), force=True))
        # k = 1: phi/W = e^(lam (1 - W)) decreases, sup = its limit at 0+; compare with the
        # limit k -> 1+ of the k > 1 formula.
        r1 = ratio.subs(k, 1)
        dec1 = bool(sp.simplify(sp.diff(r1, W)).is_negative)
        K1 = sp.limit(r1, W, 0, "+")
        K1_cont = sp.limit(K_sym.subs(k, 1 + s), s, 0, "+")
        # k < 1 (k = 1 - s): phi/W -> oo at 0+.
        lim_below = sp.limit(ratio.subs(k, 1 - s), W, 0, "+")
        ok = (
            concave
            and ends == (0, 0)
            and ok_K
            and dec1
            and _is_zero(K1 - K1_cont)
            and _is_zero(K1 - sp.exp(lam))
            and lim_below == sp.oo
        )
        parts.append(
            f"k = 1 + s: d2 log(phi/W)/dW2 = {d2} < 0 ({concave}), phi/W -> {ends[0]} at 0+ and "
            f"{ends[1]} at oo, so K = phi(W*)/W* = {K_sym}; claimed {c_K} ({ok_K}); k = 1: phi/W "
            f"decreasing ({dec1}), K = lim_(W->0+) = {K1} = lim_(k->1+) K = {K1_cont}; k = 1 - s: "
            f"lim_(W->0+) phi/W = {lim_below}"
        )
    # The claimed finiteness threshold against the derived one, at rational k on both sides.
    ks = [sp.Rational(n, 4) for n in (1, 2, 3, 4, 6, 8, 12)]
    mismatch = []
    for kv in ks:
        finite = sp.limit(ratio.subs({k: kv, lam: sp.Rational(3, 2)}), W, 0, "+").is_finite
        if bool(finite) != bool(kv >= finite_from):
            mismatch.append(str(kv))
    ok &= not mismatch
    parts.append(
        f"finite iff k >= {finite_from} at k in {[str(v) for v in ks]}: "
        + ("agrees" if not mismatch else f"wrong at k = {', '.join(mismatch)}")
    )
    # The paper's values and the production bound (vespo_theory.bounds).
    num_ok = K_sym is not None
    if num_ok:
        K23, K32 = sp.simplify(K_sym.subs({k: 2, lam: 3})), sp.simplify(K_sym.subs({k: 3, lam: 2}))
        paper_ok = _is_zero(K23 - sp.exp(2) / 3) and K32 == 1 and f"{float(K23):.6f}" == "2.463019"
        # bounds.phi_K and the derived K are float64 evaluations of one formula: relative 1e-12.
        link = all(
            abs(float(K_sym.subs({k: kk, lam: ll})) - phi_K(kk, ll)) <= 1e-12 * phi_K(kk, ll)
            for kk, ll in ((2, 3), (3, 2), (1.5, 0.7), (4.0, 2.5))
        )
        link &= log_phi_K(1, 2.5) == 2.5 and phi_K(0.5, 1.0) == math.inf
        num_ok = paper_ok and link
        parts.append(
            f"K(2,3) = {K23} = {float(K23):.6f}, K(3,2) = {K32} (paper: e^2/3, 1: {paper_ok}); "
            f"bounds.phi_K / log_phi_K agree (incl. k = 1 and k < 1): {link}"
        )
    # E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W], on seeded laws of W; which bound is smaller.
    rng = np.random.default_rng(seed)
    f_K = sp.lambdify((k, lam), c_K, "numpy")
    pairs = list(_PAIRS) + [
        (float(rng.uniform(1.0, 5.0)), float(rng.uniform(0.5, 5.0))) for _ in range(2)
    ]
    worst, n_law, wins = -np.inf, 0, []
    for kk, ll in pairs:
        Kc, M = float(f_K(kk, ll)), phi_max(kk, ll)
        m2_wins = []  # laws of this pair on which M^2 is the smaller bound
        laws = _p4_laws(kk, ll, rng, n_laws)
        for name, (ws, p) in laws.items():
            ph = ws**kk * np.exp(ll * (1 - ws))
            e2, ephw, z = float(p @ ph**2), float(p @ (ph * ws)), float(p @ ph)
            eqw = ephw / z  # E_Q[W] under the implicit proposal Q = mu phi / Z
            # relative excess; sums of <= 80 positive float64 terms: rounding ~1e-14, tol 1e-12.
            worst = max(worst, (e2 - Kc * ephw) / (Kc * ephw), (e2 - M * M) / (M * M))
            worst = max(worst, abs(z * Kc * eqw - Kc * ephw) / (Kc * ephw))
            if M * M <= Kc * ephw:
                m2_wins.append(name)
            n_law += 1
        wins.append(
            f"({kk:.3g}, {ll:.3g}): K E[phi W] smaller on {len(laws) - len(m2_wins)} of "
            f"{len(laws)} laws, M^2 on [{', '.join(m2_wins)}]"
        )
    bound_ok = worst <= 1e-12
    parts.append(
        f"E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W] and <= M^2 on {n_law} seeded laws of W "
        f"({len(pairs)} (k, lam) pairs incl. (2,3), (3,2); Dirac at argmax phi/W, discrete "
        f"laws with atoms near (k-1)/lam and k/lam, log-normal by 80-point Gauss-Hermite): "
        f"max relative excess {worst:.2e}; which bound is smaller: " + "; ".join(wins)
    )
    return _record(
        "P4",
        f"symbolic k, lam > 0; finiteness threshold claimed at k = {finite_from}; numeric laws "
        f"seed {seed}, {n_laws} discrete laws per pair",
        "symbolic+numeric",
        ok and num_ok and bound_ok,
        "; ".join(parts),
    )


# ------------------------------------------------------------------------------------ P5 ----
@register("P5")
def check_p5(
    *,
    claimed_M=None,
    paper_values: tuple = ((2, 3, "1.2081"), (3, 2, "1.2416")),
) -> CheckRecord:
    """sup phi = (k/lam)^k e^(lam-k) at W = k/lam, 1.2081 for (2,3) and 1.2416 for (3,2)
    (arXiv 2602.10693 Prop. C.1, Eq. 45); the same statement as claim K3.

    Premises: ``claimed_M`` (expression in k, lam; ``None`` is the paper's) and the paper's
    quoted values ``(k, lam, M to 4 decimals)``.
    """
    from vespo_theory.bounds import phi_max

    phi = _default_kernel()
    crit, d2, _ = _derive_sup(phi)
    c_M = (k / lam) ** k * sp.exp(lam - k) if claimed_M is None else claimed_M
    if len(crit) != 1:
        return _record("P5", "", "symbolic", False, f"d log phi/dW = 0 gave {crit}, not one point")
    w_star = crit[0]
    M = sp.simplify(phi.subs(W, w_star))
    concave = bool(sp.ask(sp.Q.negative(sp.simplify(d2)), sp.Q.positive(W)))
    ends = (sp.limit(phi, W, 0, "+"), sp.limit(phi, W, sp.oo))
    ok_M = _is_zero(sp.expand_log(sp.log(M) - sp.log(c_M), force=True))
    quoted = []
    for kk, ll, text in paper_values:
        m_val = float(M.subs({k: kk, lam: ll}))
        # the paper quotes 4 decimals: the derived value must round to the quoted string, and
        # bounds.phi_max (float64, same formula) must agree to relative 1e-12.
        good = f"{m_val:.4f}" == text and abs(m_val - phi_max(kk, ll)) <= 1e-12 * m_val
        quoted.append((kk, ll, m_val, text, good))
    ok = concave and ends == (0, 0) and ok_M and all(q[-1] for q in quoted)
    return _record(
        "P5",
        "symbolic k, lam > 0; quoted values "
        + ", ".join(f"({q[0]},{q[1]}): {q[3]}" for q in quoted),
        "symbolic+numeric",
        ok,
        f"solved d log phi/dW = 0: W* = {w_star}; d2 log phi/dW2 = {sp.simplify(d2)} < 0 "
        f"({concave}); phi -> {ends[0]} at 0+ and {ends[1]} at oo, so sup phi = phi(W*) = {M} "
        f"for every W > 0 and every law of W (no sample's weight exceeds it); claimed {c_M} "
        f"({ok_M}); "
        + "; ".join(
            f"M({q[0]},{q[1]}) = {q[2]:.6f}, paper {q[3]}, bounds.phi_max agrees: {q[4]}"
            for q in quoted
        ),
    )


# ------------------------------------------------------------------------------------ P6 ----
@register("P6")
def check_p6(
    *,
    exponent: Callable | None = None,
    seed: int = 20260306,
    n_support: int = 6,
    n_trials: int = 3,
    lengths: tuple = (1, 2, 4, 8, 16, 64, 256, 1024),
) -> CheckRecord:
    """GSPO's implicit proposal: phi = W^(1/T) gives Q ∝ mu^(1-1/T) pi^(1/T) -> mu as T grows
    (arXiv 2602.10693 Eqs. 29, 46).

    Premise: ``exponent`` maps the length T to the power of W in phi (``None``: 1/T, GSPO's
    geometric mean of the token ratios).
    """
    power = (lambda t: 1 / t) if exponent is None else exponent
    T = sp.Symbol("T", positive=True)
    PI = sp.Symbol("pi", positive=True)
    un = MU * (PI / MU) ** power(T)  # mu phi(W), W = pi / mu
    claimed = MU ** (1 - 1 / T) * PI ** (1 / T)
    sym_ok = _is_zero(sp.expand_log(sp.log(un) - sp.log(claimed), force=True))
    try:
        lim = sp.limit(un, T, sp.oo)
    except NotImplementedError:  # e.g. W^T: the limit depends on the sign of log W
        lim = "undetermined (depends on the sign of log W)"
    lim_ok = isinstance(lim, sp.Expr) and _is_zero(lim - MU)
    # KL(Q_s||mu) = s K'(s) - K(s) with K(s) = log E_mu[W^s] the cumulant generating function of
    # log W (K(0) = 0, K'(0) = kappa1, K''(0) = kappa2, ...): its Taylor polynomial gives
    # KL = kappa2 s^2 / 2 + kappa3 s^3 / 3 + kappa4 s^4 / 8 + O(s^5), so T^2 KL -> Var_mu(log W)/2.
    sv, k1, k2, k3, k4 = sp.symbols("s kappa1 kappa2 kappa3 kappa4", real=True)
    cgf = k1 * sv + k2 * sv**2 / 2 + k3 * sv**3 / 6 + k4 * sv**4 / 24
    kl_poly = sp.expand(sv * sp.diff(cgf, sv) - cgf)
    c2, c3, c4 = (kl_poly.coeff(sv, i) for i in (2, 3, 4))
    # Monotone for every support: d/ds [s K'(s) - K(s)] = s K''(s), and K''(s) = Var_{Q_s}(log W)
    # >= 0 (a cumulant generating function is convex), so KL decreases as T = 1/s grows.
    Kf = sp.Function("K")
    dkl = sp.expand(sp.diff(sv * sp.diff(Kf(sv), sv) - Kf(sv), sv))
    mono_sym = sp.expand(dkl - sv * sp.diff(Kf(sv), sv, 2)) == 0

    rng = random.Random(seed)
    mono_ok, first_ok, asym_ok, rows = True, True, True, []
    for _ in range(n_trials):
        mu_r, pi_r = _exact_support(rng, n_support)
        mu = np.array([float(v) for v in mu_r])
        lw = np.log(np.array([float(v) for v in pi_r])) - np.log(mu)
        kls = []
        for t in lengths:
            e = float(power(t))
            lq = np.log(mu) + e * lw
            lq -= np.log(np.sum(np.exp(lq - lq.max()))) + lq.max()
            kls.append(float(np.sum(np.exp(lq) * (lq - np.log(mu)))))
        kls = np.array(kls)
        if np.any(lw != 0):
            mono_ok &= bool(np.all(np.diff(kls) < 0))
        else:  # pi = mu: Q_T = mu for every T, KL = 0 up to rounding (the statement holds)
            mono_ok &= bool(np.all(np.abs(kls) <= 1e-15))
        # T = 1: Q = pi, so KL(Q_1||mu) = KL(pi||mu); float64 sums of 6 terms: tol 1e-12.
        kl_pi = float(np.sum(np.exp(lw) * mu * lw))
        first_ok &= abs(kls[0] - kl_pi) <= 1e-12
        m1 = float(mu @ lw)
        kap2 = float(mu @ (lw - m1) ** 2)
        kap3 = float(mu @ (lw - m1) ** 3)
        kap4 = float(mu @ (lw - m1) ** 4) - 3 * kap2**2
        s_last = 1.0 / lengths[-1]
        pred = float(c2.subs(k2, kap2)) * s_last**2
        # The next two terms of the expansion, kappa3 s^3 / 3 + kappa4 s^4 / 8: allow twice
        # their absolute sizes (the O(s^5) rest is smaller by another factor s ~ 1e-3; the s^4
        # term decides where kappa3 = 0, a symmetric log W) plus 1e-15 of float64 rounding.
        tol = (
            2 * abs(float(c3.subs(k3, kap3))) * s_last**3
            + 2 * abs(float(c4.subs(k4, kap4))) * s_last**4
            + 1e-15
        )
        asym_ok &= abs(kls[-1] - pred) <= tol
        rows.append((kls[0], kls[-1], pred))
    ok = sym_ok and lim_ok and mono_sym and mono_ok and first_ok and asym_ok
    return _record(
        "P6",
        f"phi = W^({power(T)}); {n_trials} seeded Rational supports of {n_support} points "
        f"(seed {seed}), float64 KL at T in {list(lengths)}",
        "symbolic+numeric",
        ok,
        f"mu phi(W) = {sp.powsimp(un, force=True)}; equals mu^(1-1/T) pi^(1/T): {sym_ok}; "
        f"lim_(T->oo) mu phi = {lim} (Q_T -> mu: {lim_ok}); KL(Q_T||mu) strictly decreasing in "
        f"T: {mono_ok} (d KL/ds = {dkl} = s Var_Q_s(log W) >= 0: {mono_sym}); "
        f"KL(Q_1||mu) = KL(pi||mu): {first_ok}; series KL(Q_s||mu) = {kl_poly} "
        f"(s = 1/T), T^2 KL -> Var_mu(log W)/2 at T = {lengths[-1]}: {asym_ok}; "
        + "; ".join(
            f"KL T=1 {r[0]:.3e}, T={lengths[-1]} {r[1]:.3e} (pred {r[2]:.3e})" for r in rows
        ),
    )


# ------------------------------------------------------------------------------------ P7 ----
@register("P7")
def check_p7(
    *,
    clip: Callable = sp.Min,
    claimed: Callable | None = None,
    seed: int = 20260307,
    n_support: int = 6,
    n_trials: int = 4,
) -> CheckRecord:
    """The sequence hard clip phi = min(W, c) gives Q ∝ min(pi, c mu) (arXiv 2602.10693 Eq. 30).

    Premises: ``clip`` (the reshaping phi = clip(W, c); ``sp.Min`` is the hard clip) and
    ``claimed`` (pi, mu, c) -> the claimed unnormalised proposal (``None``: min(pi, c mu)).
    """
    claim = (lambda p, m, c: sp.Min(p, c * m)) if claimed is None else claimed
    c = sp.Symbol("c", positive=True)
    d = sp.Symbol("d", positive=True)
    PI = MU * W
    # Both branches of the clip and the kink: W = c/(1+d) < c, W = c (1+d) > c, W = c.
    branches = {"W < c": c / (1 + d), "W > c": c * (1 + d), "W = c": c}
    sym = {
        name: sp.simplify((MU * clip(W, c) - claim(PI, MU, c)).subs(W, w))
        for name, w in branches.items()
    }
    sym_ok = all(v == 0 for v in sym.values())
    rng = random.Random(seed)
    cs = (sp.Rational(1, 2), sp.Integer(1), sp.Rational(3, 2), sp.Integer(3))
    n_cases, n_bad, n_bind = 0, 0, 0
    for _ in range(n_trials):
        mu, pi = _exact_support(rng, n_support)
        for cv in cs:
            lhs = [m * clip(p / m, cv) for m, p in zip(mu, pi)]
            rhs = [claim(p, m, cv) for m, p in zip(mu, pi)]
            ql, qr = [v / sum(lhs) for v in lhs], [v / sum(rhs) for v in rhs]
            n_cases += 1
            n_bad += any(x != y for x, y in zip(ql, qr))
            n_bind += any(p / m > cv for m, p in zip(mu, pi)) and any(
                p / m < cv for m, p in zip(mu, pi)
            )
    exact_ok = n_bad == 0
    return _record(
        "P7",
        f"phi = {clip.__name__}(W, c); {n_trials} seeded Rational supports of {n_support} points "
        f"(seed {seed}), c in {[str(v) for v in cs]}",
        "symbolic+exact",
        sym_ok and exact_ok,
        "symbolic, pi = mu W, by branch: "
        + ", ".join(f"{n}: mu phi(W) - claimed = {v}" for n, v in sym.items())
        + f"; exact: normalised Q = mu phi(W)/Z equals normalised claimed proposal in "
        f"{n_cases - n_bad} of {n_cases} (support, c) cases ({n_bind} with the clip binding at "
        "some points and not others)",
    )


# ------------------------------------------------------------------------------------ P8 ----
@register("P8")
def check_p8(
    *,
    normaliser: Callable | None = None,
    rho="-1/20",
    lengths: tuple = (8, 64),
) -> CheckRecord:
    """Length normalisation conflates: equal log W/T = rho, different T, equal normalised weight,
    true weights e^(T rho) differ by e^((T1-T2) rho) (arXiv 2602.10693 Prop. E.1).

    Premises: ``normaliser`` (T -> the divisor of log W; ``None``: T) and the common value
    ``rho`` of log W / T (a number or a string SymPy reads exactly; the statement needs
    rho != 0).
    """
    norm = (lambda t: t) if normaliser is None else normaliser
    r = sp.Symbol("rho", real=True)
    T1, T2 = sp.symbols("T1 T2", positive=True)
    logw = {T1: T1 * r, T2: T2 * r}  # premise: log W_i / T_i = rho
    normed = {t: sp.simplify(lw / norm(t)) for t, lw in logw.items()}
    sym_equal = sp.simplify(normed[T1] - normed[T2]) == 0
    ratio = sp.simplify(sp.exp(logw[T1]) / sp.exp(logw[T2]))
    # The true weights agree only where log(ratio) = 0: solve for rho.
    roots = sp.solve(sp.Eq(sp.expand_log(sp.log(ratio), force=True), 0), r)
    sym_differ = roots == [0]
    # An instance: (2,3) kernel at the normalised weight vs at the true weight, exact numbers.
    t1, t2 = lengths
    rho_v = sp.nsimplify(rho)
    inst = {t: _vespo_exact(sp.exp(sp.nsimplify(t * rho_v / norm(t))), 2, 3) for t in lengths}
    normed_equal = sp.simplify(inst[t1] - inst[t2]) == 0
    true_w = {t: sp.exp(t * rho_v) for t in lengths}
    true_phi = {t: _vespo_exact(true_w[t], 2, 3) for t in lengths}
    true_differ = _nonzero(true_w[t1] - true_w[t2]) and _nonzero(true_phi[t1] - true_phi[t2])
    ok = sym_equal and sym_differ and normed_equal and true_differ
    return _record(
        "P8",
        f"log W divided by {norm(sp.Symbol('T', positive=True))}; instance rho = {rho_v}, "
        f"T = {t1}, {t2}",
        "symbolic+exact",
        ok,
        f"normalised log weights {normed[T1]} and {normed[T2]} (equal: {sym_equal}); true weight "
        f"ratio W1/W2 = {ratio}, = 1 only at rho in {roots}; instance: (2,3) kernel at the "
        f"normalised weights {float(inst[t1]):.6f} and {float(inst[t2]):.6f} (equal: "
        f"{normed_equal}), true W = {float(true_w[t1]):.6f} and {float(true_w[t2]):.6f} "
        f"(ratio {float(true_w[t1] / true_w[t2]):.4f}), kernel at the true W "
        f"{float(true_phi[t1]):.6f} and {float(true_phi[t2]):.6f} (differ: {true_differ})",
    )


# ------------------------------------------------------------------------------------ P9 ----
def _p9_symbolic(T: int, include_diagonal: bool):
    """For d_1..d_T, g_1..g_T: G W - sum_t r_t g_t minus the claimed first-order term; returns
    (lowest total degree in d of the rest, the expansion of W)."""
    ds = sp.symbols(f"d1:{T + 1}", real=True)
    gs = sp.symbols(f"g1:{T + 1}", real=True)
    Wexp = sp.expand(sp.prod([1 + d for d in ds]))
    err = sp.expand(sum(gs) * Wexp - sum((1 + d) * g for d, g in zip(ds, gs)))
    first = sum(ds[s] * gs[t] for s in range(T) for t in range(T) if s != t or include_diagonal)
    pairs = sum(ds[s] * ds[t] for s in range(T) for t in range(s + 1, T))

    def lowest_degree(e):  # lowest total degree in d of a polynomial; inf for the zero polynomial
        e = sp.expand(e)
        return math.inf if e == 0 else min(sum(m) for m in sp.Poly(e, *ds).monoms())

    return lowest_degree(err - first), lowest_degree(Wexp - 1 - sum(ds) - pairs)


def _p9_enumerate(mu, pi_eps, g, vocab, T, include_diagonal, eps):
    """Exact E_mu[W G - sum_t r_t g_t] and the claimed first-order term E_mu[sum_{s!=t} d_s g_t]
    (all (s, t) if ``include_diagonal``), as polynomials in the drift ``eps``, and the part of
    the latter with s > t; ``g(y, t)`` is the token term g_t of G = sum_t g_t."""
    err = off = off_lower = sp.Integer(0)
    for y in ar.sequences(vocab, T):
        m = ar.seq_prob(mu, y)
        r = [pi_eps(y[:t])[y[t]] / mu(y[:t])[y[t]] for t in range(T)]
        gs = [g(y, t) for t in range(T)]
        err += m * (sp.prod(r) * sum(gs) - sum(rt * gt for rt, gt in zip(r, gs)))
        for s_, t_ in itertools.product(range(T), repeat=2):
            if s_ != t_ or include_diagonal:
                off += m * (r[s_] - 1) * gs[t_]
            if s_ > t_:
                off_lower += m * (r[s_] - 1) * gs[t_]
    return sp.Poly(sp.expand(err), eps), sp.Poly(sp.expand(off), eps), sp.expand(off_lower)


@register("P9")
def check_p9(
    *,
    diagonal_exact: bool = False,
    include_diagonal: bool = False,
    seed: int = 20260309,
    vocab: int = 2,
    T: int = 3,
) -> CheckRecord:
    """Token-level IS keeps only the diagonal of W = prod_t (1 + d_t): E_mu[W G] -
    E_mu[sum_t r_t g_t] = sum_{s != t} E_mu[d_s g_t] + O(d^2) (arXiv 2602.10693 Eqs. 24-28,
    Remark A.1).

    Premises: ``include_diagonal`` (the first-order term claimed as the sum over all (s, t)) and
    ``diagonal_exact`` (the token-level estimator claimed exact at a nonzero drift). The exact
    part needs ``T >= 2``: at ``T = 1`` there is no off-diagonal pair, the error is exactly 0,
    and the check, which must exhibit a first-order term, fails although the statement holds.
    """
    sym = {t: _p9_symbolic(t, include_diagonal) for t in (1, 2, 3)}
    # T = 1: no off-diagonal pair, the error G W - r_1 g_1 is 0 (lowest degree "inf": no term).
    sym_ok = all(low >= 2 and w_low >= 3 for low, w_low in sym.values()) and sym[1][0] == math.inf

    # Exact: pi_eps = (1 - eps) mu + eps pi1 at every prefix (drift eps towards pi1), and the
    # policy-gradient G = R(y) grad log pi(y): g_t = R(y) (h(prefix, y_t) - E_pi[h | prefix]), the
    # score of a logit shift theta h at theta = 0, times a random Rational sequence reward R(y).
    rng = random.Random(seed)
    mu = ar.prefix_dependent(rng, vocab, T)
    pi1 = ar.prefix_dependent(rng, vocab, T)
    reward = {y: sp.Rational(rng.randint(-9, 9), 4) for y in ar.sequences(vocab, T)}
    h = {
        (y[:t], v): sp.Rational(rng.randint(-9, 9), rng.randint(1, 5))
        for y in ar.sequences(vocab, T)
        for t in range(T)
        for v in range(vocab)
    }
    eps = sp.Symbol("eps", nonnegative=True)

    def pi_eps(prefix):
        return tuple((1 - eps) * m + eps * p for m, p in zip(mu(prefix), pi1(prefix)))

    def g(y, t):
        pre = y[:t]
        return reward[y] * (
            h[(pre, y[t])] - sum(pv * h[(pre, v)] for v, pv in enumerate(pi_eps(pre)))
        )

    err, off, off_lower = _p9_enumerate(mu, pi_eps, g, vocab, T, include_diagonal, eps)
    c0, c1 = err.coeff_monomial(1), err.coeff_monomial(eps)
    # first order: same constant (0) and eps-coefficient; the rest is O(eps^2) = O(d^2)
    first_ok = c0 == 0 and off.coeff_monomial(1) == 0 and c1 == off.coeff_monomial(eps)
    first_order = c1 != 0  # the error is genuinely first order in the drift
    at = {e: err.eval(e) for e in (sp.Rational(1, 4), sp.Rational(1, 10), sp.Rational(1, 100))}
    exact_claim_ok = (at[sp.Rational(1, 4)] == 0) == diagonal_exact
    ok = sym_ok and first_ok and first_order and exact_claim_ok
    return _record(
        "P9",
        f"prefix-dependent Rational mu, pi1 (vocabulary {vocab}, T = {T}, seed {seed}), "
        f"pi = (1 - eps) mu + eps pi1, G = R(y) grad log pi(y) with Rational R and a logit-shift "
        "score; first-order term over "
        + ("all (s, t)" if include_diagonal else "s != t")
        + ("; diagonal claimed exact" if diagonal_exact else ""),
        "symbolic+exact",
        ok,
        "symbolic: G W - sum_t r_t g_t - (claimed first-order term) has lowest degree in d "
        + ", ".join(f"{lo} at T = {t}" for t, (lo, _) in sym.items())
        + " (>= 2 needed), W - 1 - sum d_t - sum_{s<t} d_s d_t has lowest degree "
        + ", ".join(f"{wl} at T = {t}" for t, (_, wl) in sym.items())
        + f"; exact enumeration of {vocab}^{T} sequences: error(eps) = {err.as_expr()}, "
        f"constant term {c0} (zero on-policy), eps-coefficient {c1} = that of the claimed "
        f"first-order term {off.as_expr()}: {first_ok}; first order (c1 != 0): {first_order}; "
        f"of which the terms with s > t (d_s after the token t of g_t) give "
        f"{sp.Poly(off_lower, eps).as_expr()}; error at eps = "
        + ", ".join(f"{e}: {float(v):.3e}" for e, v in at.items())
        + f" (diagonal exact at eps = 1/4 claimed {diagonal_exact}, derived "
        f"{at[sp.Rational(1, 4)] == 0})",
    )


# ------------------------------------------------------------------------------------ P10 ---
def _bias_vector(mu, pi, phi, weight=None):
    """E_mu[phi(W) weight(y) grad log pi] for a softmax bandit at logits log pi, whose score is
    grad log pi(y) = e_y - pi; ``weight`` defaults to 1."""
    n = len(mu)
    wt = (lambda y: 1) if weight is None else weight
    return [
        sum(mu[y] * phi(pi[y] / mu[y]) * wt(y) * ((1 if y == j else 0) - pi[j]) for y in range(n))
        for j in range(n)
    ]


@register("P10")
def check_p10(
    *,
    is_unbiased: bool = True,
    vespo_unbiased: bool = False,
    seed: int = 20260310,
    n_arms: int = 4,
) -> CheckRecord:
    """A constant baseline b shifts E_mu[phi (R - b) grad log pi] by -b E_mu[phi grad log pi],
    which vanishes for every pi only for phi = W (arXiv 2602.10693 §3.5).

    Premises: the claimed baseline invariance of IS (``is_unbiased``, True in the paper) and of
    the VESPO kernel (``vespo_unbiased``, False).
    """
    n = 3
    ms = sp.symbols(f"m0:{n}", positive=True)
    phs = sp.symbols(f"phi0:{n}", positive=True)
    Rs = sp.symbols(f"R0:{n}", real=True)
    gs = sp.symbols(f"g0:{n}", real=True)
    bb = sp.Symbol("b", real=True)
    shift = sp.expand(
        sum(m * p * (R - bb) * g for m, p, R, g in zip(ms, phs, Rs, gs))
        - sum(m * p * R * g for m, p, R, g in zip(ms, phs, Rs, gs))
    )
    bias_term = -bb * sum(m * p * g for m, p, g in zip(ms, phs, gs))
    shift_ok = sp.expand(shift - bias_term) == 0
    # Softmax bandit with symbolic pi (sum 1) and mu: E_mu[W (e_y - pi)] = 0 identically.
    p1, p2 = sp.symbols("p1 p2", positive=True)
    pis = (p1, p2, 1 - p1 - p2)
    is_vec = [sp.simplify(v) for v in _bias_vector(ms, pis, lambda w: w)]
    is_sym_zero = all(v == 0 for v in is_vec)

    rng = random.Random(seed)
    mu, pi = _exact_support(rng, n_arms)
    R = [sp.Rational(rng.randint(-9, 9), 4) for _ in range(n_arms)]
    b_val = sum(m * r for m, r in zip(mu, R))  # a constant baseline: mu's mean reward
    reshapings = {
        "IS W": lambda w: w,
        "clip min(W,1)": lambda w: sp.Min(w, 1),
        "VESPO (2,3)": lambda w: _vespo_exact(w, 2, 3),
        "VESPO (3,2)": lambda w: _vespo_exact(w, 3, 2),
    }
    invariant, on_policy, notes, group_ok = {}, {}, [], True
    for name, phi in reshapings.items():
        vec = _bias_vector(mu, pi, phi)
        invariant[name] = not any(_nonzero(v) for v in vec)
        on_policy[name] = all(sp.simplify(v) == 0 for v in _bias_vector(mu, mu, phi))
        # The baseline's shift E_mu[phi (R - b) g] - E_mu[phi R g], computed, against -b E[phi g].
        with_b = _bias_vector(mu, pi, phi, lambda y: R[y] - b_val)
        without = _bias_vector(mu, pi, phi, lambda y: R[y])
        shift_v = [sp.expand(u - v) for u, v in zip(with_b, without)]
        shift_ok &= all(sp.expand(sv + b_val * v) == 0 for sv, v in zip(shift_v, vec))
        # A group-mean baseline over a group of 2 i.i.d. samples includes the sample itself:
        # enumerate the pairs exactly; the estimate is (1/2) (E[phi R g] - E_mu[R] E[phi g]),
        # i.e. (G-1)/G times the constant-baseline case at b = E_mu[R].
        group = [
            sum(
                mu[y1]
                * mu[y2]
                * phi(pi[y1] / mu[y1])
                * (R[y1] - (R[y1] + R[y2]) / 2)
                * ((1 if y1 == j else 0) - pi[j])
                for y1 in range(n_arms)
                for y2 in range(n_arms)
            )
            for j in range(n_arms)
        ]
        group_ok &= all(
            sp.expand(gv - (wo - b_val * v) / 2) == 0 for gv, wo, v in zip(group, without, vec)
        )
        notes.append(
            f"{name}: E_mu[phi grad log pi] = [{', '.join(f'{float(v):+.4f}' for v in vec)}], "
            f"baseline shift at b = E_mu[R] = {b_val}: "
            f"|.|_max = {max(abs(float(v)) for v in shift_v):.4f}"
        )
    claimed = {
        "IS W": is_unbiased,
        "clip min(W,1)": False,
        "VESPO (2,3)": vespo_unbiased,
        "VESPO (3,2)": vespo_unbiased,
    }
    wrong = [nm for nm in reshapings if invariant[nm] != claimed[nm]]
    ok = shift_ok and is_sym_zero and group_ok and not wrong and all(on_policy.values())
    return _record(
        "P10",
        f"softmax bandit, {n_arms} arms, seeded Rational mu, pi, rewards (seed {seed}); claimed "
        f"baseline-invariant: IS {is_unbiased}, VESPO {vespo_unbiased}",
        "symbolic+exact",
        ok,
        f"symbolic: shift - (-b E_mu[phi g]) = {0 if shift_ok else 'nonzero'}; E_mu[W (e_y - pi)]"
        f" with symbolic mu, pi = {is_vec}; exact at a drifted pi: "
        + "; ".join(notes)
        + f"; baseline-invariant (E_mu[phi g] = 0, exact or certified at 30 digits): {invariant}"
        f"; zero on-policy (pi = mu, phi(1) = 1): {on_policy}"
        + "; group-mean baseline over 2 i.i.d. samples (it includes the sample itself), by "
        f"exact enumeration of the pairs: estimate = (1/2)(E[phi R g] - E_mu[R] E[phi g]) for "
        f"every reshaping: {group_ok} (for IS: half the true gradient, no bias in direction)"
        + (f"; claim wrong for {wrong}" if wrong else ""),
    )
