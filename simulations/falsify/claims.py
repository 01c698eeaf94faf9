r"""The catalogued claims (vespo_theory.claims) as searchable inequalities ``lhs <= rhs``,
evaluated exactly.

Stated claims (must hold): B1, B2, B3, K3, K4, K5, G1, L1b, L2, M1, M2, and U1, U2, U3
(unbiasedness of sequence IS, of per-decision IS with per-reward weights, of unclipped PPO on
context-free fixed-length models). Relaxed claims (false beliefs; the search must break them):
R1-R9 (R6, per-decision IS with rho_{1:t} on a sequence-level advantage or a reward-to-go, was
found here). Every evaluator is exact:

* finite supports (B1, B2, B3, K3, K4, K5, L2, R2, R3, R8): sums over the support in NumPy
  float64 (and for B3's batch mean, over every n-tuple of the support);
* one GRPO group (G1, R7): every G-tuple of a bandit enumerated
  (:mod:`simulations.falsify.groups`);
* autoregressive models (L1b, M1, M2, U1, U2, U3, R1, R4, R6):
  :func:`simulations.tabular.enumerate_sequences` (every sequence with its exact probability),
  :func:`simulations.estimators.score_moments` and, for per-reward weights and rewards-to-go,
  :mod:`simulations.falsify.pdis`;
* long context-free sequences (R5): :func:`simulations.lattice.lattice_results` on an exact
  lattice, with its stated error bound subtracted so that a violation is a fact; (R9) binomial
  enumeration of i.i.d. binary tokens (:mod:`simulations.falsify.staleness`).

Each claim's statement and kind are the catalogue's (:mod:`vespo_theory.claims`, the one copy
of the text, shared with ``vespo derive``); a :class:`~simulations.falsify.core.Claim` here adds
the falsifier's evidence: the inequality, the search space (``assumptions``), the strategy and the
exact evaluator.

The kernel and the bounds are looked up through their modules at call time
(``vespo_theory.kernels.log_phi``, ``vespo_theory.bounds.variance_factor``, ...), so that a bug
planted in the library is what the search sees.

Tolerances: float64 rounding only. A sum of n terms is off by at most about n eps times the sum of
the terms' magnitudes (eps = 2.2e-16), a log-space value ``a + b + ...`` by eps times the sum of the
magnitudes; each tolerance below is that bound times a safety factor of 8 to 64, stated where it is
used. Nothing statistical: no instance is sampled.
"""

from __future__ import annotations

import itertools
import math

import hypothesis.strategies as st
import numpy as np
from scipy.special import logsumexp

from simulations.falsify import groups, staleness
from simulations.falsify import strategies as S
from simulations.falsify.core import Check, Claim, OutsideAssumptions

__all__ = ["CLAIMS", "OutsideAssumptions", "claim_ids", "get_claim"]

EPS = float(np.finfo(np.float64).eps)


# ----------------------------------------------------------------------------- input helpers


def _kl(inst: dict) -> tuple[float, float]:
    from vespo_theory.params import KernelParams

    try:
        p = KernelParams(inst["k"], inst["lam"])
    except KeyError as exc:
        raise ValueError(f"instance: missing key {exc.args[0]!r}") from None
    return p.k, p.lam


def _vespo(inst: dict):
    from vespo_theory.params import VespoParams

    return VespoParams(**inst["params"])


def _pair(inst: dict, pi_zeros: bool = True):
    """mu, pi (normalised by their exact float sums) and log W = log pi - log mu.

    An instance may give ``log_w`` instead of ``pi`` (any law of W, no E[W] = 1): pi is then None.
    """
    mu = np.asarray(inst["mu"], dtype=np.float64)
    if "log_w" in inst and "pi" not in inst:
        log_w = np.asarray(inst["log_w"], dtype=np.float64)
        if mu.ndim != 1 or mu.size < 1 or log_w.shape != mu.shape or np.isnan(log_w).any():
            raise ValueError("mu and log_w must be lists of the same length (no NaN)")
        if not np.isfinite(mu).all() or (mu <= 0).any() or abs(math.fsum(mu) - 1.0) > 1e-9:
            raise ValueError("mu must be > 0 and sum to 1")
        return mu / math.fsum(mu), None, log_w
    pi = np.asarray(inst["pi"], dtype=np.float64)
    if mu.ndim != 1 or mu.size < 1 or mu.shape != pi.shape:
        raise ValueError(f"mu and pi must be lists of the same length, got {mu.shape}, {pi.shape}")
    for name, p in (("mu", mu), ("pi", pi)):
        if not np.isfinite(p).all() or (p < 0).any():
            raise ValueError(f"{name} must be finite and >= 0")
        # 1e-9: room for probabilities typed by hand with ~10 digits; printed ones sum to 1 +- n eps
        if abs(math.fsum(p) - 1.0) > 1e-9:
            raise ValueError(f"{name} must sum to 1, sums to {math.fsum(p)!r}")
    if (mu <= 0).any():
        raise ValueError("mu must be > 0 on the whole support (outcomes with mu = 0 are not drawn)")
    if not pi_zeros and (pi <= 0).any():
        raise ValueError("pi must be > 0 on the whole support here (softmax policy)")
    mu = mu / math.fsum(mu)
    pi = pi / math.fsum(pi)
    with np.errstate(divide="ignore"):
        log_w = np.log(pi) - np.log(mu)
    return mu, pi, log_w


def _adv(inst: dict, n: int) -> np.ndarray:
    adv = np.asarray(inst["adv"], dtype=np.float64)
    if adv.shape != (n,) or not np.isfinite(adv).all():
        raise ValueError(f"adv must be a list of {n} finite advantages, got {inst['adv']!r}")
    return adv


# ----------------------------------------------------------------------------- B1, B2, B3


def _b1_strategy():
    return st.builds(
        lambda kl, x: {**kl, "tok_log_ratio": x},
        S.kernel_params(1e-3, 1e3),
        st.one_of(S.tok_log_ratios(), st.floats(-1e4, 1e4).map(lambda v: [v])),
    )


def _b1(inst: dict) -> list[Check]:
    from vespo_theory import bounds, kernels

    k, lam = _kl(inst)
    lw = math.fsum(float(v) for v in inst["tok_log_ratio"])
    # phi = exp(log phi) >= 0 by construction; a NaN log phi counts as a violation (Check)
    lp = float(kernels.log_phi(np.array(lw), k, lam))
    lM = bounds.log_phi_max(k, lam)
    # rounding of k log W + lam (1 - W) and of log M: 8 eps times the magnitudes involved
    tol = 8 * EPS * (abs(k * lw) + lam * (1 + math.exp(min(lw, 700.0))) + abs(lM) + k + lam)
    return [Check(lp, lM + tol, "log phi(W) <= log M")]


@st.composite
def _b2_strategy(draw):
    kl = draw(S.kernel_params())
    n = draw(st.integers(1, 6))
    law = draw(st.one_of(S.finite_pair(), S.support_weights(kl["k"], kl["lam"], n)))
    return {**kl, **law}


def _b2(inst: dict) -> list[Check]:
    from vespo_theory import bounds, kernels

    k, lam = _kl(inst)
    mu, _, log_w = _pair(inst)
    lp = np.asarray(kernels.log_phi(log_w, k, lam), dtype=np.float64)
    lE1 = float(logsumexp(np.log(mu) + lp))
    lE2 = float(logsumexp(np.log(mu) + 2 * lp))
    lM = bounds.log_phi_max(k, lam)
    fin = np.isfinite(lp)
    # log-sum-exp of n terms: error <= eps (n + sum_i p_i |term_i|), p = the terms' softmax
    # weights (an error in term i moves the sum by p_i times it); the weighted mean of |log phi|
    # under E[phi]'s and E[phi^2]'s weights, the larger of the two. Not the max over outcomes:
    # an outcome of weight ~0 with a huge |log phi| (mu = e^-40, W = e^40) would make the
    # tolerance large enough to pass any kernel. log M: eps (k |log(k/lam)| + k + lam).
    mag = 0.0
    if fin.any():
        a = np.abs(lp[fin])
        for lse, terms in ((lE1, np.log(mu[fin]) + lp[fin]), (lE2, np.log(mu[fin]) + 2 * lp[fin])):
            mag = max(mag, float(np.exp(terms - lse) @ a))
    tol = 16 * EPS * (mu.size + mag + abs(lM) + k + lam)
    return [
        Check(lE2, lM + lE1 + tol, "log E[phi^2] <= log M + log E[phi]"),
        Check(lE1, lM + tol, "log(M E[phi]) <= log M^2, i.e. log E[phi] <= log M"),
    ]


@st.composite
def _b3_strategy(draw):
    params = draw(S.vespo_params())
    m = draw(st.integers(1, 5))
    adv = draw(S.advantages(m))
    if draw(st.booleans()):
        law = draw(S.finite_pair(min_n=m, max_n=m))
    else:  # any law of W: log-weights near the peak of each outcome's kernel (by sign of A)
        law = {
            "mu": draw(S.distribution(m)),
            "log_w": [
                draw(
                    S.log_w_near(
                        params["k_pos"] if a >= 0 else params["k_neg"],
                        params["lam_pos"] if a >= 0 else params["lam_neg"],
                    )
                )
                for a in adv
            ],
        }
    return {
        "params": params,
        **law,
        "adv": adv,
        "score": draw(S.scores(m, draw(st.integers(1, 3)))),
        "n": draw(st.integers(1, 3)),
    }


def _batch_var(p: np.ndarray, x: np.ndarray, n: int) -> float:
    """trace Var of the mean of n i.i.d. draws of x ~ p, by enumerating every n-tuple."""
    m = p.size
    idx = np.array(list(itertools.product(range(m), repeat=n)), dtype=np.int64)  # [m^n, n]
    prob = np.prod(p[idx], axis=1)
    means = x[idx].mean(axis=1)  # [m^n, dim]
    centre = prob @ means
    d = means - centre
    return float(prob @ np.einsum("ij,ij->i", d, d))


def _b3(inst: dict) -> list[Check]:
    from vespo_theory import bounds, kernels

    params = _vespo(inst)
    mu, _, log_w = _pair(inst)
    adv = _adv(inst, mu.size)
    score = np.asarray(inst["score"], dtype=np.float64)
    if score.ndim != 2 or score.shape[0] != mu.size or not np.isfinite(score).all():
        raise ValueError(f"score must be a [{mu.size}][dim] list of finite numbers")
    n = int(inst["n"])
    if n < 1 or mu.size**n > 10_000:
        raise ValueError(f"n must be >= 1 with support^n <= 10000, got n={n}")
    g = adv[:, None] * score
    phi = np.asarray(kernels.phi_signed(log_w, adv, params), dtype=np.float64)
    var = _batch_var(mu, phi[:, None] * g, n)
    g2 = np.einsum("ij,ij->i", g, g)
    e_phi2_g2 = float(mu @ (phi * phi * g2))
    e_g2 = float(mu @ g2)
    # sums of at most 10^4 * 3 float64 terms: relative rounding <= 3e4 eps ~ 7e-12; 1e-10 > 10x that
    rtol = 1e-10
    # Products that underflow into subnormals carry an absolute error of up to one subnormal
    # spacing (2^-1074) each, which no relative tolerance covers when both sides are ~0: allow
    # that spacing for every one of the (support^n * dim) terms, times 8 for the operations each.
    atol = 8 * mu.size**n * g.shape[1] * math.ulp(0.0)
    vf = bounds.variance_factor(params, n)
    return [
        Check(
            var,
            e_phi2_g2 / n * (1 + rtol) + atol,
            "Var[batch mean of phi g] <= E[phi^2 ||g||^2]/n",
        ),
        Check(
            e_phi2_g2 / n,
            vf * e_g2 * (1 + rtol) + atol,
            "E[phi^2 ||g||^2]/n <= max(M+,M-)^2 E||g||^2/n",
        ),
    ]


# ----------------------------------------------------------------------------- K3, K4, L2


@st.composite
def _k3_strategy(draw):
    kl = draw(S.kernel_params(1e-2, 50.0))
    w1 = draw(st.floats(math.log(1e-3), math.log(1e3)).map(math.exp))
    r1 = draw(st.floats(1e-3, 3.0))
    r2 = draw(st.floats(1e-3, 3.0))
    return {**kl, "w": [w1, w1 * (1 + r1), w1 * (1 + r1) * (1 + r2)]}


def _k3(inst: dict) -> list[Check]:
    from vespo_theory import bounds, kernels

    k, lam = _kl(inst)
    w = sorted(float(v) for v in inst["w"])
    if len(w) != 3 or w[0] <= 0 or not (w[0] < w[1] < w[2]):
        raise ValueError("w must hold three distinct positive numbers")
    x_star = math.log(k) - math.log(lam)
    lp_star = float(kernels.log_phi(np.array(x_star), k, lam))
    lM = bounds.log_phi_max(k, lam)

    def err(v):  # rounding of log phi at W = v, incl. the rounding of log v (8x the eps bound)
        lv = abs(math.log(v))
        return 8 * EPS * (k * (lv + 1) + lam * (1 + v) * (lv + 1) + 1)

    e_star = err(k / lam) + 8 * EPS * (abs(lM) + k + lam)
    lp = [float(kernels.log_phi(np.array(math.log(v)), k, lam)) for v in w]
    checks = [Check(abs(lp_star - lM), e_star, "|log phi(k/lam) - log M|  (M at argmax k/lam)")]
    for v, lv in zip(w, lp):
        checks.append(Check(lv, lp_star + err(v) + e_star, f"log phi({v:.6g}) <= log phi(k/lam)"))
    # second divided difference = (log phi)''(xi) for some xi in [w1, w3] = -k/xi^2
    h1, h2 = w[1] - w[0], w[2] - w[1]
    d2 = 2 * ((lp[2] - lp[1]) / h2 - (lp[1] - lp[0]) / h1) / (h1 + h2)
    e = max(err(v) for v in w)
    e_d2 = 2 * (2 * e / h2 + 2 * e / h1) / (h1 + h2)
    checks.append(Check(d2, -k / w[2] ** 2 + e_d2, "D2 log phi <= -k/W3^2"))
    checks.append(Check(-k / w[0] ** 2, d2 + e_d2, "-k/W1^2 <= D2 log phi"))
    return checks


@st.composite
def _k4_strategy(draw):
    kl = draw(S.kernel_params(1e-2, 20.0))
    mag = draw(st.floats(math.log(1e-3), math.log(0.5)).map(math.exp))
    sign = draw(st.sampled_from([1.0, -1.0]))
    return {**kl, "x": sign * mag}


def _taylor_parts(inst: dict):
    from vespo_theory import bounds, kernels

    k, lam = _kl(inst)
    x = float(inst["x"])
    if not (1e-6 <= abs(x) <= 0.5):
        raise ValueError(f"x must satisfy 1e-6 <= |x| <= 0.5, got {x}")
    ph = math.exp(float(kernels.log_phi(np.array(math.log1p(x)), k, lam)))
    w_lo, w_hi = 1 + min(x, 0.0), 1 + max(x, 0.0)
    # log phi = g: g' = k/W - lam (monotone), g'' = -k/W^2, g''' = 2k/W^3; phi <= M on the interval
    a = max(abs(k / w_lo - lam), abs(k / w_hi - lam))
    b = k / w_lo**2
    c = 2 * k / w_lo**3
    M = bounds.phi_max(k, lam)
    rnd = 16 * EPS * (ph * (k * abs(math.log1p(x)) + lam * abs(x) + 1) + 1 + (k + lam) ** 2)
    return k, lam, x, ph, a, b, c, M, rnd


def _k4(inst: dict) -> list[Check]:
    k, lam, x, ph, a, b, c, M, rnd = _taylor_parts(inst)
    t2 = 1 + (k - lam) * x + ((k - lam) ** 2 - k) * x * x / 2
    # Lagrange remainder: |phi'''| = phi |g'^3 + 3 g' g'' + g'''| <= M (a^3 + 3ab + c)
    rem = M * (a**3 + 3 * a * b + c) / 6 * abs(x) ** 3
    return [Check(abs(ph - t2), rem + rnd, "|phi(1+x) - Taylor_2(x)| <= sup|phi'''| |x|^3/6")]


def _l2(inst: dict) -> list[Check]:
    k, lam, x, ph, a, b, c, M, rnd = _taylor_parts(inst)
    # phi(1+x) - (1+x) = (k - lam - 1) x + R, |R| <= sup|phi''| x^2/2, |phi''| <= M (a^2 + b)
    rem = M * (a * a + b) / 2 * x * x
    return [
        Check(
            abs(ph - (1 + x) - (k - lam - 1) * x),
            rem + rnd,
            "|phi(1+x) - (1+x) - (k-lam-1) x| <= sup|phi''| x^2/2",
        )
    ]


# ----------------------------------------------------------------------------- AR: M1, M2, L1b


def _enum(inst: dict, T: int | None = None):
    from simulations.falsify.ar import enumerate_instance

    return enumerate_instance(inst, T)


def _m1(inst: dict) -> list[Check]:
    model, batch = _enum(inst)
    slw = batch.seq_log_w
    e_w = float(batch.weight @ np.exp(slw))
    with np.errstate(divide="ignore"):
        big = float(np.max(np.abs(np.log(batch.weight[batch.weight > 0])))) + float(
            np.max(np.abs(slw))
        )
    # each term exp(log b + log W) is off by eps (T + |log b| + |log W|) relatively; summing
    # V^T of them adds V^T eps: 8x that bound
    tol = 8 * EPS * (batch.n + model.T + big) * max(e_w, 1.0)
    return [Check(abs(e_w - 1.0), tol, "|E_mu[W] - 1|")]


def _m2_strategy():
    return S.ar_model(kinds=("context-free",), end_token=False, max_T=6)


def _m2(inst: dict) -> list[Check]:
    from scipy.special import log_softmax

    if inst["kind"] != "context-free" or inst.get("end_token"):
        raise OutsideAssumptions("M2 is stated for context-free policies of fixed length T")
    model, batch = _enum(inst)
    with np.errstate(divide="ignore"):
        terms = np.log(batch.weight) + 2 * batch.seq_log_w
    log_e_w2 = float(logsumexp(terms))
    log_pi = log_softmax(model.logits_pi[0])
    log_mu = log_softmax(model.logits_mu[0])
    log_one_plus_chi2 = float(logsumexp(2 * log_pi - log_mu))  # 1 + chi2 = sum pi^2 / mu
    rhs_val = model.T * log_one_plus_chi2
    fin = np.isfinite(terms)
    tol = 16 * EPS * (batch.n + model.T * (1 + abs(log_one_plus_chi2)) + np.abs(terms[fin]).max())
    return [Check(abs(log_e_w2 - rhs_val), tol, "|log E_mu[W^2] - T log(1 + chi2)|")]


@st.composite
def _with_reward(draw, models):
    """An autoregressive instance plus a token reward of length V (A = mean token reward)."""
    m = draw(models)
    return {**m, "reward": draw(st.lists(st.floats(-2.0, 2.0), min_size=m["V"], max_size=m["V"]))}


def _l1_strategy():
    return st.builds(
        lambda m, a: {**m, "adv_sign": a},
        _with_reward(S.ar_model(max_T=5)),
        st.sampled_from([1.0, -1.0]),
    )


def _l1(inst: dict) -> list[Check]:
    """B3 on autoregressive sequences of any length and dependence (VESPO, one sign class)."""
    from simulations.estimators import score_moments
    from simulations.falsify.ar import mean_token_reward
    from vespo_theory import bounds
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst)
    sign = float(inst["adv_sign"])
    adv = sign * (np.abs(mean_token_reward(model, batch)) + 1.0)  # |A| >= 1, sign fixed
    rule = get_rule("vespo")
    coef = np.asarray(rule.coefficient(batch.tok_log_ratio, batch.mask, adv), dtype=np.float64)
    mom = score_moments(model, batch, coef, adv)
    var = mom["e2"] - float(mom["mean"] @ mom["mean"])
    e_g2 = score_moments(model, batch, batch.mask.astype(np.float64), adv)["e2"]
    p = rule.params
    M = bounds.phi_max(p.k_pos, p.lam_pos) if sign > 0 else bounds.phi_max(p.k_neg, p.lam_neg)
    # sums over <= 4096 sequences x dim terms: relative rounding < 1e5 eps ~ 2e-11; 1e-9 covers it
    return [Check(var, M * M * e_g2 * (1 + 1e-9), "Var[phi(W) A g] <= M^2 E||A g||^2  (any T)")]


# ----------------------------------------------------------------------------- relaxed R1-R5


def _r1_strategy():
    return st.builds(
        lambda m, a: {**m, "adv": a},
        S.ar_model(kinds=("context-free",), end_token=False, max_T=5),
        st.sampled_from([1.0, -1.0]),
    )


def _vespo_var(inst: dict, T: int) -> tuple[float, float]:
    from simulations.estimators import score_moments
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst, T)
    adv = np.full(batch.n, float(inst["adv"]))
    coef = np.asarray(
        get_rule("vespo").coefficient(batch.tok_log_ratio, batch.mask, adv), dtype=np.float64
    )
    mom = score_moments(model, batch, coef, adv)
    return mom["e2"] - float(mom["mean"] @ mom["mean"]), mom["e2"]


def _r1(inst: dict) -> list[Check]:
    T = int(inst["T"])
    v1, e1 = _vespo_var(inst, T)
    v2, e2 = _vespo_var(inst, T + 1)
    # "does not depend on length": equal up to the rounding of sums over <= 4096 x dim terms
    tol = 1e-9 * (e1 + e2)
    return [Check(abs(v2 - v1), tol, "|Var_{T+1}[phi(W) A g] - Var_T[phi(W) A g]|")]


@st.composite
def _bandit_strategy(draw, adv=None):
    """A softmax bandit of 2..5 arms (arbitrary or nearby pi) with one advantage per arm
    (``adv``: the strategy of one advantage; both signs in [-5, 5] by default)."""
    pair = draw(
        st.one_of(S.finite_pair(min_n=2, max_n=5, pi_zeros=False), S.finite_pair_near(max_n=5))
    )
    m = len(pair["mu"])
    if adv is None:
        return {**pair, "adv": draw(S.advantages(m, bound=5.0))}
    return {**pair, "adv": draw(st.lists(adv, min_size=m, max_size=m))}


def _bandit(inst: dict):
    """Softmax bandit: g_i = A_i (e_i - pi) (the score of pi's logits), phi of the defaults."""
    from vespo_theory import kernels
    from vespo_theory.params import VespoParams

    mu, pi, log_w = _pair(inst, pi_zeros=False)
    adv = _adv(inst, mu.size)
    g = adv[:, None] * (np.eye(mu.size) - pi[None, :])
    phi = np.asarray(kernels.phi_signed(log_w, adv, VespoParams()), dtype=np.float64)
    return mu, np.exp(log_w), phi, g


def _direction_tol(v: np.ndarray, v_abs: np.ndarray, n_terms: int) -> float | None:
    """Rounding bound of v's direction (radians), or None when rounding could be all of v.

    Each entry of v is a sum of ``n_terms`` terms whose magnitudes sum to v_abs: error <=
    n_terms eps v_abs (x64). A vector off by a relative delta < 1 turns by at most
    arcsin(delta) <= (pi/2) delta.
    """
    nv = float(np.linalg.norm(v))
    delta = 64 * n_terms * EPS * float(np.linalg.norm(v_abs)) / nv if nv > 0 else math.inf
    return None if delta >= 1 else math.pi / 2 * delta


def _r2(inst: dict) -> list[Check]:
    from simulations.falsify.staleness import cosine

    mu, w, phi, g = _bandit(inst)
    est = mu @ (phi[:, None] * g)
    true = mu @ (w[:, None] * g)  # = grad E_pi[A]
    gn = np.linalg.norm(g, axis=1)
    s_est, s_true = float(mu @ (phi * gn)), float(mu @ (w * gn))
    # n-term sums: error <= n eps sum|terms|; 64x
    tol = 64 * mu.size * EPS * (s_est + s_true)
    # direction: each entry of either vector is an n-term sum (n eps |terms| off), which turns
    # it by a bounded angle (_direction_tol); 1 - cos is 1-Lipschitz in the angle, + 8 eps for
    # the cosine itself. Where rounding could be all of a vector (e.g. E_mu[W g] = 0 for a
    # constant A) it has no direction: 1 - cos is taken as 0 (the bias check remains).
    ga = np.abs(g)
    te = _direction_tol(est, mu @ (phi[:, None] * ga), mu.size)
    tt = _direction_tol(true, mu @ (w[:, None] * ga), mu.size)
    if te is None or tt is None:
        one_minus_cos, tol_cos = 0.0, 0.0
    else:
        one_minus_cos, tol_cos = 1.0 - cosine(est, true), te + tt + 8 * EPS
    return [
        Check(float(np.linalg.norm(est - true)), tol, "||E_mu[phi(W) g] - E_mu[W g]||"),
        Check(
            one_minus_cos,
            tol_cos,
            "1 - cos(E_mu[phi(W) g], E_mu[W g])  (direction of VESPO vs the true gradient)",
        ),
    ]


def _r2_details(inst: dict) -> dict:
    from simulations.falsify.staleness import cosine

    mu, w, phi, g = _bandit(inst)
    est, true = mu @ (phi[:, None] * g), mu @ (w[:, None] * g)
    nt = float(np.linalg.norm(true))
    return {
        "cos(E[phi g], E[W g])": cosine(est, true),
        "||E[phi g]|| / ||E[W g]||": float(np.linalg.norm(est)) / nt if nt > 0 else math.inf,
        "W": [float(v) for v in w],
        "phi(W)": [float(v) for v in phi],
    }


def _bandit_nonneg_strategy():
    """R3's search space: the A >= 0 class only (kernel (2,3)), arbitrary or nearby pi."""
    return _bandit_strategy(adv=st.floats(0.0, 5.0))


def _r3_details(inst: dict) -> dict:
    mu, w, phi, g = _bandit(inst)
    return {"W": [float(v) for v in w], "phi(W)": [float(v) for v in phi]}


def _trace_var(mu: np.ndarray, x: np.ndarray) -> float:
    c = mu @ x
    d = x - c
    return float(mu @ np.einsum("ij,ij->i", d, d))


def _r3(inst: dict) -> list[Check]:
    mu, w, phi, g = _bandit(inst)
    v_phi = _trace_var(mu, phi[:, None] * g)
    v_is = _trace_var(mu, w[:, None] * g)
    g2 = np.einsum("ij,ij->i", g, g)
    tol = 64 * mu.size * EPS * float(mu @ ((phi * phi + w * w) * g2))
    return [Check(v_phi, v_is + tol, "trVar_mu[phi(W) g] <= trVar_mu[W g]  (VESPO vs IS)")]


def _r4_strategy():
    # |log pi - log mu| <= 2 max|logit drift| = 0.18 < log(1.2) = 0.182 and < -log(0.8) = 0.223;
    # token dependence (Markov, prefix-hashed) or a random length (end token): U3's complement
    return _with_reward(
        st.one_of(
            S.ar_model(kinds=("markov", "prefix"), max_T=4, max_drift=0.09),
            S.ar_model(kinds=("context-free",), end_token=True, max_T=4, max_drift=0.09),
        )
    )


def _u3_strategy():
    return _with_reward(
        S.ar_model(kinds=("context-free",), end_token=False, max_T=4, max_drift=0.09)
    )


def _context_free_fixed_length(inst: dict, model) -> bool:
    """One state (context-free, or prefix-hashed into one bucket) and no end token."""
    return model.S == 1 and not inst.get("end_token")


def _unclipped_ppo_bias(inst: dict):
    from simulations.falsify.ar import mean_token_reward
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst)
    adv = mean_token_reward(model, batch)
    _, clipped = get_rule("ppo_clip").coefficient_and_clipped(batch.tok_log_ratio, batch.mask, adv)
    if np.asarray(clipped)[batch.weight > 0].any():
        raise OutsideAssumptions("R4/U3 assume that no token is clipped on the support of mu")
    return model, batch


def _r4(inst: dict) -> list[Check]:
    model, batch = _unclipped_ppo_bias(inst)
    if _context_free_fixed_length(inst, model):
        raise OutsideAssumptions(
            "R4 is about token dependence or random lengths; context-free fixed-length is U3"
        )
    return _rule_bias(inst, "ppo_clip", (model, batch))


def _u3(inst: dict) -> list[Check]:
    model, batch = _unclipped_ppo_bias(inst)
    if not _context_free_fixed_length(inst, model):
        raise OutsideAssumptions("U3 is stated for context-free policies of fixed length (see R4)")
    return _rule_bias(inst, "ppo_clip", (model, batch))


def _bias_check(
    model, batch, coef, adv, model_pi, batch_pi, adv_pi, what: str, coef_mag=None
) -> Check:
    """||E_mu[A sum_t c_t grad log pi_t] - E_pi[A_pi sum_t grad log pi_t]|| <= rounding.

    The true gradient is computed on pi's own sequences (the model with mu := pi, coefficient
    1), independently of W. ``coef_mag``: the magnitudes summed into each c_t (default |c_t|).
    """
    from simulations.estimators import score_moments

    est = score_moments(model, batch, coef, adv)
    true = score_moments(model_pi, batch_pi, batch_pi.mask.astype(np.float64), adv_pi)
    # Rounding: each estimate A c_t (e_y - pi) is formed before any cancellation, so its error is
    # relative to |A| sum_t |c_t| ||e_y - pi||_1 <= 2 |A| sum_t |c_t| (c_t = sums of up to T
    # exps of sums of up to T log-ratios: relative error eps T (1 + max |log r|)); summing n
    # sequences adds n eps.
    cm = np.abs(coef) if coef_mag is None else coef_mag
    mag = float(batch.weight @ (np.abs(adv) * cm.sum(1)))
    mag += float(batch_pi.weight @ (np.abs(adv_pi) * batch_pi.lengths))
    lr = float(np.max(np.abs(batch.tok_log_ratio)))
    tol = 64 * EPS * (batch.n + model.T * (1 + lr)) * 2 * mag
    return Check(float(np.linalg.norm(est["mean"] - true["mean"])), tol, what)


def _pi_batch(inst: dict):
    return _enum({**inst, "logits_mu": inst["logits_pi"]})


def _rule_bias(inst: dict, rule_name: str, model_batch=None) -> list[Check]:
    """||E_mu[A sum_t c_t grad log pi_t] - grad E_pi[A]|| for a registry rule, A = mean reward."""
    from simulations.falsify.ar import mean_token_reward
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst) if model_batch is None else model_batch
    adv = mean_token_reward(model, batch)
    coef = np.asarray(
        get_rule(rule_name).coefficient(batch.tok_log_ratio, batch.mask, adv), dtype=np.float64
    )
    model_pi, batch_pi = _pi_batch(inst)
    adv_pi = mean_token_reward(model_pi, batch_pi)
    what = f"||E_mu[{rule_name} estimate] - grad E_pi[A]||"
    return [_bias_check(model, batch, coef, adv, model_pi, batch_pi, adv_pi, what)]


def _pdis_bias(inst: dict, form: str) -> Check:
    """Per-decision IS with additive rewards, c_t from :mod:`simulations.falsify.pdis`, A = 1;
    the target is grad E_pi[sum_s r_s]."""
    from simulations.falsify import pdis

    model, batch = _enum(inst)
    coef_fn = {
        "per_reward": pdis.per_reward_coefficient,
        "reward_to_go": pdis.reward_to_go_coefficient,
    }[form]
    coef = coef_fn(model, batch)
    # c_t sums rewards of both signs: its rounding is relative to the sum with |r_s| (2T terms)
    coef_mag = 2 * model.T * coef_fn(model, batch, absolute=True)
    model_pi, batch_pi = _pi_batch(inst)
    total_pi = pdis.token_rewards(model_pi, batch_pi).sum(axis=1)
    what = {
        "per_reward": "||E_mu[sum_s r_s rho_{1:s} sum_{t<=s} grad log pi_t] - grad E_pi[R]||",
        "reward_to_go": "||E_mu[sum_t rho_{1:t} sum_{s>=t} r_s grad log pi_t] - grad E_pi[R]||",
    }[form]
    ones = np.ones(batch.n)
    return _bias_check(model, batch, coef, ones, model_pi, batch_pi, total_pi, what, coef_mag)


def _u1(inst: dict) -> list[Check]:
    return _rule_bias(inst, "is")


def _u2(inst: dict) -> list[Check]:
    """Per-reward weights: unbiased for any model; rho_{1:t} on the mean token reward: only for
    context-free fixed-length models (checked there)."""
    checks = [_pdis_bias(inst, "per_reward")]
    if inst["kind"] == "context-free" and not inst.get("end_token"):
        checks += _rule_bias(inst, "per_decision_is")
    return checks


def _r6(inst: dict) -> list[Check]:
    """Both forms that weight a later reward by an earlier prefix product (require_all)."""
    return _rule_bias(inst, "per_decision_is") + [_pdis_bias(inst, "reward_to_go")]


# ----------------------------------------------------------------------------- R8, K5


@st.composite
def _r8_strategy(draw):
    """3..5 arms, mu and pi softmax of integer logits in [-8, 8], integer rewards in [-2, 2].

    >= 3 arms: with a baseline under pi two arms cannot break R8 (the update is a positive
    multiple of grad J there; tests/test_falsify.py checks it). Integer lattices: a violation
    needs a large drift between mu and pi, which hypothesis' float draws (biased to simple
    values) reach in only ~7 of 10 seeds at budget 100; these reach it in 39 of seeds 0-39,
    and shrink to readable instances.
    """
    n = draw(st.integers(3, 5))
    logits = st.lists(st.integers(-8, 8).map(float), min_size=n, max_size=n)
    mu, pi = S._normalise(draw(logits)), S._normalise(draw(logits))
    reward = draw(st.lists(st.integers(-2, 2).map(float), min_size=n, max_size=n))
    return {"mu": mu, "pi": pi, "reward": reward}


def _r8_parts(inst: dict):
    """u = E_mu[phi(W) A (e_y - pi)], grad J = E_pi[A (e_y - pi)] with A = r - E_pi[r]."""
    from vespo_theory import kernels
    from vespo_theory.params import VespoParams

    mu, pi, log_w = _pair(inst, pi_zeros=False)
    r = np.asarray(inst.get("reward"), dtype=np.float64)
    if r.shape != mu.shape or not np.isfinite(r).all():
        raise ValueError(f"reward must be a list of {mu.size} finite numbers")
    adv = r - float(pi @ r)  # centred under pi: a fixed function of the arm during the step
    s = np.eye(mu.size) - pi[None, :]  # e_y - pi, the score of pi's logits
    phi = np.asarray(kernels.phi_signed(log_w, adv, VespoParams()), dtype=np.float64)
    u = (mu * phi * adv) @ s
    grad = (pi * adv) @ s  # = grad_theta E_pi[r] (the baseline does not change it)
    # magnitudes of the summed terms (A's rounding is relative to |r| + max|r|)
    mag = np.abs(r) + float(np.max(np.abs(r)))
    ua = (mu * phi * mag) @ np.abs(s)
    ga = (pi * mag) @ np.abs(s)
    return u, grad, ua, ga


def _r8(inst: dict) -> list[Check]:
    from simulations.falsify.staleness import cosine

    u, grad, ua, ga = _r8_parts(inst)
    m = u.size
    # 1 - cos is 1-Lipschitz in the angle: the angle bounds of both vectors (each entry an
    # m-term sum; A's own rounding is in the magnitudes) plus 8 eps for the cosine itself.
    # Written as 1 - cos <= 1 (not -cos <= 0) so that the normalised gap steers the search
    # towards small cosines: ascent iff cos > 0 iff 1 - cos < 1.
    tu, tg = _direction_tol(u, ua, 2 * m), _direction_tol(grad, ga, 2 * m)
    if tu is None or tg is None:
        return [Check(1.0, 1.0, "1 - cos(E_mu[phi A g], grad J): direction below rounding")]
    return [
        Check(
            1.0 - cosine(u, grad),
            1.0 + tu + tg + 8 * EPS,
            "1 - cos(E_mu[phi(W) A g], grad_theta E_pi[r])  (<= 1 iff an ascent direction)",
        )
    ]


def _r8_details(inst: dict) -> dict:
    from simulations.falsify.staleness import cosine

    u, grad, _, _ = _r8_parts(inst)
    return {
        "cos(E_mu[phi A g], grad J)": cosine(u, grad),
        "||grad J||": float(np.linalg.norm(grad)),
    }


@st.composite
def _k5_strategy(draw):
    n = draw(st.integers(1, 6))
    near_one = st.floats(-0.3, 0.3)  # phi/W peaks at W = (k-1)/lam = 1 for (3,2): tight there
    lw = draw(st.lists(st.one_of(near_one, S.log_w()), min_size=n, max_size=n))
    return {
        "mu": draw(S.distribution(n)),
        "log_w": lw,
        "score": draw(S.scores(n, draw(st.integers(1, 3)))),
    }


def _k5(inst: dict) -> list[Check]:
    from vespo_theory import bounds, kernels

    mu, _, log_w = _pair(inst)
    score = np.asarray(inst["score"], dtype=np.float64)
    if score.ndim != 2 or score.shape[0] != mu.size or not np.isfinite(score).all():
        raise ValueError(f"score must be a [{mu.size}][dim] list of finite numbers")
    k, lam = 3.0, 2.0  # K5 is the claim about the A < 0 kernel (3,2) itself
    lp = np.asarray(kernels.log_phi(log_w, k, lam), dtype=np.float64)
    # log phi = 3 L + 2 (1 - e^L): rounding <= 8 eps (3|L| + 2 (1 + e^L)); the subtraction of
    # L adds eps |L|; 8x that bound
    # W = 0 (log W = -inf): phi(0) = 0 exactly, no rounding (tolerance 0, not inf, which made
    # -inf + inf = NaN a false violation); such outcomes are not a candidate for the tightest
    # point unless every outcome has W = 0 (then -inf <= -inf holds)
    fin_w = np.isfinite(log_w)
    ew = np.exp(np.minimum(log_w, 700.0))
    tol_pt = np.where(fin_w, 64 * EPS * (4 * np.abs(log_w) + 2 * (1 + ew) + 1), 0.0)
    with np.errstate(invalid="ignore"):
        margin = np.where(fin_w, lp - log_w - tol_pt, -np.inf)
    worst = int(np.argmax(margin))
    with np.errstate(divide="ignore"):
        lg2 = np.log(np.einsum("ij,ij->i", score, score))
    lmu = np.log(mu)
    # log phi can be ~ -1.8e308 (W far above 1): twice that is -inf, which is phi^2 = 0
    with np.errstate(over="ignore"):
        terms = lmu + 2 * lp + lg2
    l_phi2 = float(logsumexp(terms))
    l_w2 = float(logsumexp(lmu + 2 * log_w + lg2))
    fin = np.isfinite(terms)
    # log-sum-exp of n terms, each off by the pointwise rounding above: 16 eps (n + max|term|)
    # plus 2 max tol_pt (both sides); in log space
    big = float(np.max(np.abs(terms[fin]), initial=0.0))
    tol = 16 * EPS * (mu.size + big + abs(l_w2) if math.isfinite(l_w2) else 0.0) + 2 * float(
        np.max(tol_pt)
    )
    lk = bounds.log_phi_K(k, lam)
    return [
        Check(abs(lk), 16 * EPS, "|log K(3,2)|  (K = sup phi(W)/W = 1)"),
        Check(
            float(lp[worst]),
            float(log_w[worst] + tol_pt[worst]),
            f"log phi(W) <= log W at log W = {float(log_w[worst]):.6g} (the tightest outcome)",
        ),
        Check(l_phi2, l_w2 + tol, "log E_mu[phi^2 ||g||^2] <= log E_mu[W^2 ||g||^2]"),
    ]


@st.composite
def _r5_strategy(draw):
    V = draw(st.integers(2, 4))
    logits_mu = draw(st.lists(st.floats(-3.0, 3.0), min_size=V, max_size=V))
    m = draw(st.lists(st.integers(-1, 1), min_size=V, max_size=V))
    delta = draw(st.floats(1e-3, 0.1))
    T = draw(st.integers(1, 4096))
    adv = draw(st.sampled_from([1.0, -1.0]))
    return {"logits_mu": logits_mu, "m": m, "delta": delta, "T": T, "adv": adv}


def _r5(inst: dict) -> list[Check]:
    from scipy.special import log_softmax

    from simulations.lattice import lattice_results

    logits_mu = np.asarray(inst["logits_mu"], dtype=np.float64)
    m = np.asarray(inst["m"], dtype=np.float64)
    delta, T = float(inst["delta"]), int(inst["T"])
    if logits_mu.ndim != 1 or m.shape != logits_mu.shape or not 0 < delta <= 1 or T < 1:
        raise ValueError("R5 instance: logits_mu and m of equal length, 0 < delta <= 1, T >= 1")
    log_mu = log_softmax(logits_mu)
    log_pi = log_softmax(logits_mu + delta * m)  # pi = mu after a drift of delta along m
    recs, _ = lattice_results(log_mu, log_pi, T, ["vespo"], adv=float(inst["adv"]), delta=delta)
    e_phi, err = recs[0]["E_phi"], recs[0]["abs_err"]["E_phi"]
    # the lattice's stated error bound is subtracted: a violation holds for the exact value
    return [Check(abs(e_phi - 1.0) - err, 0.5, "|E_mu[phi(W_T)] - 1| (minus the error bound)")]


def _r5_details(inst: dict) -> dict:
    from scipy.special import log_softmax

    from simulations.lattice import lattice_results

    lm = log_softmax(np.asarray(inst["logits_mu"], dtype=np.float64))
    lp = log_softmax(np.asarray(inst["logits_mu"]) + float(inst["delta"]) * np.asarray(inst["m"]))
    recs, summ = lattice_results(
        lm, lp, int(inst["T"]), ["vespo"], adv=float(inst["adv"]), delta=float(inst["delta"])
    )
    kl = float(np.exp(lm) @ (lm - lp))
    return {"E_phi": recs[0]["E_phi"], "token_KL(mu||pi)": kl, "E_W": summ["E_W"]}


# ----------------------------------------------------------------------------- the registry

_PER_EPS = "float64 rounding only (8-64x the eps bound of the sums involved; see the module doc)"

CLAIMS: dict[str, Claim] = {}


def _add(claim: Claim) -> None:
    CLAIMS[claim.id] = claim


_add(
    Claim(
        "B1",
        "log phi(W) <= log M + tol (phi = exp(log phi) >= 0; NaN counts as a violation); "
        f"tol: {_PER_EPS}",
        "k, lam in [1e-3, 1e3]; W from sums of up to 64 light/heavy-tailed token log-ratios "
        "or log W anywhere in [-1e4, 1e4]; no assumption on the law of W, T or correlation",
        "a violation would mean the kernel or M = (k/lam)^k e^(lam-k) is wrong",
        _b1_strategy,
        _b1,
    )
)
_add(
    Claim(
        "B2",
        f"in log space: log E[phi^2] <= log M + log E[phi], log E[phi] <= log M; tol: {_PER_EPS}",
        "finite supports of 1..6 outcomes, mu > 0 (down to e^-40 relative); W = pi/mu with "
        "pi >= 0 (zeros allowed), or any law of W (log W near the peak k/lam, near 0 or in "
        "[-20, 20]: no E[W] = 1 needed); k, lam in [1e-2, 50]",
        "a violation would mean phi <= M fails somewhere on the support",
        _b2_strategy,
        _b2,
    )
)
_add(
    Claim(
        "B3",
        "both inequalities, relative tol 1e-10 (float sums of <= 3e4 terms)",
        "finite supports of 1..5 outcomes, W = pi/mu or any law of W (log W near each "
        "outcome's peak); vector scores (dim 1..3); advantages of both signs (sign picks "
        "(k, lam)); batch means of n = 1..3 i.i.d. draws, enumerated exactly",
        "a violation would mean the variance factor (vespo_theory.bounds.variance_factor) is wrong",
        _b3_strategy,
        _b3,
    )
)
_add(
    Claim(
        "K3",
        "|log phi(k/lam) - log M| <= tol; log phi(W) <= log phi(k/lam) + tol; the second divided "
        "difference of log phi on W1 < W2 < W3 lies in [-k/W1^2, -k/W3^2] +- its rounding bound",
        "k, lam in [1e-2, 50]; W in [1e-3, ~1.6e4] with relative spacing >= 1e-3",
        "a violation would mean the argmax, M or the log-concavity is wrong",
        _k3_strategy,
        _k3,
    )
)
_add(
    Claim(
        "K4",
        "|phi(1+x) - Taylor_2| <= M (a^3 + 3ab + c) |x|^3/6 (Lagrange remainder with explicit "
        "bounds a >= |g'|, b >= |g''|, c >= |g'''| of g = log phi on [1, 1+x]) + rounding",
        "k, lam in [1e-2, 20]; 1e-3 <= |x| <= 0.5",
        "a violation would mean a wrong first- or second-order coefficient",
        _k4_strategy,
        _k4,
    )
)
_add(
    Claim(
        "L1b",
        "Var_mu[phi(W) A g] <= M^2 E_mu||A g||^2 (trace), relative tol 1e-9",
        "tabular autoregressive pairs (context-free, Markov, prefix-hashed), V <= 3, T <= 5, "
        "random lengths (end token); A = sign * (|mean token reward| + 1); deployed VESPO; exact "
        "enumeration (simulations.tabular, simulations.estimators)",
        "a violation would mean the bound depends on length or dependence after all",
        _l1_strategy,
        _l1,
    )
)
_add(
    Claim(
        "L2",
        "|phi(1+x) - (1+x) - (k-lam-1) x| <= M (a^2 + b) x^2/2 + rounding",
        "k, lam in [1e-2, 20]; 1e-3 <= |x| <= 0.5",
        "a violation would mean the first-order bias of VESPO is not (k - lam - 1)(W - 1)",
        _k4_strategy,
        _l2,
    )
)
_add(
    Claim(
        "M1",
        f"|E_mu[W] - 1| <= tol; tol: {_PER_EPS}",
        "tabular autoregressive pairs, logits in [-8, 8] (probabilities down to ~1e-7), "
        "V <= 3, T <= 5, fixed or random length (end token); exact enumeration",
        "a violation would mean W_t is not a mean-one martingale",
        lambda: S.ar_model(),
        _m1,
    )
)
_add(
    Claim(
        "M2",
        f"|log E_mu[W^2] - T log(1 + chi2)| <= tol; tol: {_PER_EPS}",
        "context-free tabular pairs, V <= 3, fixed length T <= 6; exact enumeration",
        "a violation would mean the second moment does not factorise over tokens",
        _m2_strategy,
        _m2,
    )
)
_add(
    Claim(
        "U1",
        "||E_mu[W A grad log pi(y)] - grad E_pi[A]|| <= float rounding (registry rule 'is')",
        "tabular autoregressive pairs of every kind, fixed or random length; A = mean token "
        "reward; exact enumeration",
        "a violation would mean the registry's IS coefficient is not W",
        lambda: _with_reward(S.ar_model(max_T=4)),
        _u1,
    )
)
_add(
    Claim(
        "U2",
        "||E_mu[sum_s r_s rho_{1:s} sum_{t<=s} grad log pi_t] - grad E_pi[sum_s r_s]|| <= float "
        "rounding (each reward weighted by its own prefix product); on context-free fixed-length "
        "instances also ||E_mu[A sum_t rho_{1:t} grad log pi_t] - grad E_pi[A]|| <= rounding "
        "(registry rule 'per_decision_is', A = mean token reward)",
        "tabular autoregressive pairs of every kind (context-free, Markov, prefix-hashed), fixed "
        "or random length (end token), T <= 4, token rewards in [-2, 2]; exact enumeration",
        "a violation would mean per-reward weighting is not unbiased, or the registry's "
        "per-decision coefficient is not the prefix product",
        lambda: _with_reward(S.ar_model(max_T=4)),
        _u2,
    )
)
_add(
    Claim(
        "U3",
        "||E_mu[A sum_t c_t grad log pi_t] - grad E_pi[A]|| <= float rounding, c = ppo_clip "
        "(unclipped: c_t = r_t), A = mean token reward",
        "context-free tabular pairs of fixed length T <= 4 with every token ratio inside "
        "[0.8, 1.2] (logit drift <= 0.09; nothing clipped); exact enumeration",
        "a violation would mean the dropped prefix product biases PPO even without token "
        "dependence (the cross terms E_mu[r(y_s)] E_pi[grad log pi_t], s != t, vanish)",
        _u3_strategy,
        _u3,
    )
)
_add(
    Claim(
        "K5",
        "|log K(3,2)| <= 16 eps; log phi(W) <= log W + tol at every outcome; "
        "log E_mu[phi^2 ||g||^2] <= log E_mu[W^2 ||g||^2] + tol; tol: 64 eps times the "
        "magnitudes of log phi = 3 log W + 2 (1 - W) (log-sum-exp: 16 eps (n + max|term|))",
        "finite supports of 1..6 outcomes, any law of W (log W near 1, the argmax of phi/W, "
        "from token sums, or anywhere in [-1e4, 1e4]); vector scores of dim 1..3 (zeros too)",
        "a violation would mean the A < 0 kernel can put more weight than IS on some outcome, "
        "i.e. K(3,2) != 1",
        _k5_strategy,
        _k5,
    )
)
_add(
    Claim(
        "G1",
        "Var[group mean of x_i] <= max_i E||x_i||^2 <= M^2 max_i E||A_i g_i||^2, relative tol "
        "1e-10 (sums of <= 1.2e5 terms), x_i = phi(W_i) A_i g_i",
        "softmax bandits of 2..3 arms (logits in [-2, 2] and pi drifted by <= 1 per logit, or "
        "arbitrary / stale pairs with probabilities down to e^-40), rewards in [-3, 3], one group "
        "of G = 2..4 with GRPO advantages (population std + 1e-6); deployed or free (k, lam); "
        "every G-tuple enumerated",
        "a violation would mean the dependent group could beat even the no-1/n bound",
        lambda: groups.strategy(free_params=True, wide=True),
        groups.g1,
    )
)
_add(
    Claim(
        "R1",
        "|Var_{T+1} - Var_T| <= 1e-9 (E_T||e||^2 + E_{T+1}||e||^2) (equality up to rounding)",
        "context-free tabular pair, the same pair at length T and T+1, constant advantage",
        "B3's factor M^2 is length-free, but E||g||^2 = E||sum_t grad log pi(y_t)||^2 grows with "
        "T: the bound, and the variance, scale with length (L1a)",
        _r1_strategy,
        _r1,
    )
)
_add(
    Claim(
        "R2",
        "||E_mu[phi(W) g] - E_mu[W g]|| <= float rounding (unbiased) and "
        "1 - cos(E_mu[phi(W) g], E_mu[W g]) <= float rounding (points the way of the true "
        "gradient E_mu[W g] = grad E_pi[A]); a reported counterexample breaks both",
        "softmax bandit (2..5 arms, g = A (e_y - pi), one advantage per arm in [-5, 5], no "
        "baseline), arbitrary or nearby (stale) pi; deployed (k, lam)",
        "phi(W) != W away from W = 1: the bias is (k - lam - 1)(W - 1) to first order (L2); "
        "only an estimator with E_mu[(phi - W) g] = 0 is unbiased. The bias is not only a scale: "
        "phi/W differs between arms, so the arms' contributions are re-weighted and the expected "
        "update can point away from (even against) the true gradient",
        _bandit_strategy,
        _r2,
        _r2_details,
        require_all=True,
    )
)
_add(
    Claim(
        "R3",
        "trVar_mu[phi(W) g] <= trVar_mu[W g] + rounding",
        "softmax bandit (2..5 arms), arbitrary or nearby (stale) pi; advantages in [0, 5]: the "
        "A >= 0 class only, kernel (2,3) (the A < 0 kernel (3,2) has phi <= W pointwise, K5)",
        "B3 bounds VESPO's variance by M^2 E||g||^2, not by IS's variance. The (2,3) kernel "
        "exceeds W on 0.0595 < W < 1 (phi(W) > W iff W e^(3(1-W)) > 1; phi(0.54) = 1.16 vs "
        "0.54): an outcome pi has moved away from gets more weight than under IS, and the "
        "variance can exceed IS's",
        _bandit_nonneg_strategy,
        _r3,
        _r3_details,
    )
)
_add(
    Claim(
        "R4",
        "||E_mu[A sum_t c_t grad log pi_t] - grad E_pi[A]|| <= float rounding, c = ppo_clip",
        "Markov or prefix-hashed tabular pairs, or context-free ones with an end token (random "
        "length), T <= 4, every token ratio inside [0.8, 1.2] (nothing clipped); A = mean "
        "token reward; exact enumeration (context-free fixed-length pairs are U3's)",
        "unclipped PPO weights token t by r_t alone and drops the prefix product "
        "prod_{s<t} r_s: when later tokens' distributions depend on earlier ones (or on the "
        "length), that is a bias",
        _r4_strategy,
        _r4,
    )
)
_add(
    Claim(
        "R5",
        "|E_mu[phi(W_T)] - 1| - (lattice error bound) <= 0.5 ('near 1' read generously)",
        "context-free pair, pi = mu after a logit drift delta in (0, 0.1] along an integer "
        "direction (an exact lattice), T up to 4096; exact lattice method (simulations.lattice)",
        "with a fixed per-token drift, log W spreads like sqrt(T) and E_mu[phi(W_T)] -> 0 (M4): "
        "long or stale sequences are silently down-weighted",
        _r5_strategy,
        _r5,
        _r5_details,
    )
)


_add(
    Claim(
        "R6",
        "||E_mu[A sum_t rho_{1:t} grad log pi_t] - grad E_pi[A]|| <= float rounding (A = mean "
        "token reward) and ||E_mu[sum_t rho_{1:t} (sum_{s>=t} r_s) grad log pi_t] - grad "
        "E_pi[sum_s r_s]|| <= float rounding (reward-to-go); a reported counterexample breaks both",
        "tabular autoregressive pairs of every kind, fixed or random length, T <= 4, token "
        "rewards in [-2, 2]; exact enumeration. Not in the usual list: found by this search, "
        "since per-decision IS is often called unbiased unconditionally",
        "token t's weight rho_{1:t} corrects y_1..y_t, but A (or the reward-to-go) also depends "
        "on y_{t+1}.. drawn from mu: unbiased only when E_mu[A | y_<=t] - E_pi[A | y_<=t] does "
        "not depend on y_t (context-free and fixed length). Markov states or a random length "
        "make it depend on y_t. Per-decision IS is unbiased when each reward r_s carries its own "
        "prefix product rho_{1:s} (U2)",
        lambda: _with_reward(S.ar_model(max_T=4)),
        _r6,
        require_all=True,
    )
)


_add(
    Claim(
        "R7",
        "Var[group mean of phi(W_i) A_i g_i] <= max(M+,M-)^2 E||A g||^2 / n with n = G, "
        "relative tol 1e-10 (sums of <= 1.2e5 terms); E over the marginal of one sample",
        "softmax bandits of 2..3 arms (mu's logits in [-2, 2], pi's drifted by <= 1 each), "
        "rewards in [-3, 3], one group of G = n = 2..4 with A_i = (R_i - group mean)/"
        "(population std + 1e-6) (GRPO), g_i = e_{y_i} - pi; deployed (k, lam); every G-tuple "
        "enumerated",
        "B3's /n needs i.i.d. samples with a fixed advantage function. Group normalisation "
        "couples the samples (A_i depends on the others' rewards): the covariances do not "
        "vanish and the group mean's variance can exceed the i.i.d. bound; only G1's bound "
        "without 1/n holds in general",
        groups.strategy,
        groups.r7,
        groups.r7_details,
    )
)
_add(
    Claim(
        "R8",
        "-<E_mu[phi(W) A g], grad_theta E_pi[r]> <= float rounding (3 m eps of the summed "
        "magnitudes, x64), A = r - E_pi[r] (the reward centred under pi, a fixed function of "
        "the arm during the step), g = e_y - pi",
        "softmax bandits of 2..5 arms, arbitrary or nearby (stale) pi, rewards in [-5, 5]; "
        "deployed (k, lam) by the sign of A",
        "VESPO re-weights arm y by phi(W_y)/W_y relative to the true gradient; with a baseline "
        "two arms cannot turn the update (it stays a positive multiple of grad J), but with "
        "three or more arms at large drift the re-weighting can make the expected update an "
        "ascent direction no longer (ASC1)",
        _r8_strategy,
        _r8,
        _r8_details,
    )
)
_add(
    Claim(
        "R9",
        "||grad J||^2 / 2 - <E_mu[phi(W) A G], grad J> <= float rounding: the expected update "
        "keeps at least half its on-policy component along grad J (on-policy it is exactly "
        "||grad J||^2); 'keeps its size and direction' read generously",
        "V = 2 i.i.d. tokens, mu's logits in [-3, 3], pi = mu after N = 1..64 stale updates of "
        "a logit drift <= 0.1 each, T = 1..4096, token rewards in [-2, 2], A = mean token reward "
        "centred under pi; exact binomial enumeration over the count of token 1",
        "phi <= M bounds each sample's weight, not the update: with a fixed per-token drift "
        "E_mu[phi(W_T)] -> 0 as T or the staleness grows (M4, D1), and the expected update "
        "shrinks with it (an implicit learning-rate decay); bounded weights do not make stale "
        "samples harmless",
        staleness.strategy,
        staleness.r9,
        staleness.r9_details,
    )
)


def claim_ids(kind: str | None = None) -> list[str]:
    """Claim IDs (stated first, then relaxed); ``kind`` filters."""
    return [c for c, v in CLAIMS.items() if kind is None or v.kind == kind]


def get_claim(claim_id: str) -> Claim:
    """The claim with this ID; ValueError listing the valid IDs otherwise."""
    by_upper = {c.upper(): c for c in CLAIMS}  # IDs are matched case-insensitively (L1b, l1b)
    key = by_upper.get(str(claim_id).strip().upper())
    if key is None:
        raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(CLAIMS)}")
    return CLAIMS[key]
