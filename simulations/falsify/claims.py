r"""The catalogued claims (vespo_theory.claims) as searchable inequalities ``lhs <= rhs``,
evaluated exactly.

Stated claims (must hold): B1, B2, B3, K3, K4, L1b, L2, M1, M2, and U1, U2 (unbiasedness of
sequence IS and per-decision IS). Relaxed claims (false beliefs; the search must
break them): R1-R5, and R6 (per-decision IS with a sequence-level advantage, found
here). Every evaluator is exact:

* finite supports (B1, B2, B3, K3, K4, L2, R2, R3): sums over the support in NumPy float64 (and
  for B3's batch mean, over every n-tuple of the support);
* autoregressive models (L1b, M1, M2, U1, U2, R1, R4, R6):
  :func:`simulations.tabular.enumerate_sequences` (every sequence with its exact probability)
  and :func:`simulations.estimators.score_moments`;
* long context-free sequences (R5): :func:`simulations.lattice.lattice_results` on an exact
  lattice, with its stated error bound subtracted so that a violation is a fact.

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
    # log-sum-exp of n terms: error <= eps (n + max |term|); log M: eps (k |log(k/lam)| + k + lam)
    tol = 16 * EPS * (mu.size + float(np.max(np.abs(lp[fin]), initial=0.0)) + abs(lM) + k + lam)
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
def _bandit_strategy(draw):
    pair = draw(
        st.one_of(S.finite_pair(min_n=2, max_n=5, pi_zeros=False), S.finite_pair_near(max_n=5))
    )
    return {**pair, "adv": draw(S.advantages(len(pair["mu"]), bound=5.0))}


def _bandit(inst: dict):
    """Softmax bandit: g_i = A_i (e_i - pi) (the score of pi's logits), phi of the defaults."""
    from vespo_theory import kernels
    from vespo_theory.params import VespoParams

    mu, pi, log_w = _pair(inst, pi_zeros=False)
    adv = _adv(inst, mu.size)
    g = adv[:, None] * (np.eye(mu.size) - pi[None, :])
    phi = np.asarray(kernels.phi_signed(log_w, adv, VespoParams()), dtype=np.float64)
    return mu, np.exp(log_w), phi, g


def _r2(inst: dict) -> list[Check]:
    mu, w, phi, g = _bandit(inst)
    est = mu @ (phi[:, None] * g)
    true = mu @ (w[:, None] * g)  # = grad E_pi[A]
    gn = np.linalg.norm(g, axis=1)
    # n-term sums: error <= n eps sum|terms|; 64x
    tol = 64 * mu.size * EPS * float(mu @ ((phi + w) * gn))
    return [Check(float(np.linalg.norm(est - true)), tol, "||E_mu[phi(W) g] - E_mu[W g]||")]


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
    # |log pi - log mu| <= 2 max|logit drift| = 0.18 < log(1.2) = 0.182 and < -log(0.8) = 0.223
    return _with_reward(S.ar_model(max_T=4, max_drift=0.09))


def _r4(inst: dict) -> list[Check]:
    from simulations.falsify.ar import mean_token_reward
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst)
    adv = mean_token_reward(model, batch)
    _, clipped = get_rule("ppo_clip").coefficient_and_clipped(batch.tok_log_ratio, batch.mask, adv)
    if np.asarray(clipped)[batch.weight > 0].any():
        raise OutsideAssumptions("R4 assumes that no token is clipped on the support of mu")
    return _rule_bias(inst, "ppo_clip", (model, batch))


def _rule_bias(inst: dict, rule_name: str, model_batch=None) -> list[Check]:
    """||E_mu[A sum_t c_t grad log pi_t] - grad E_pi[A]|| for a registry rule, A = mean reward.

    The true gradient is computed on pi's own sequences (the model with mu := pi, coefficient 1),
    independently of W: grad E_pi[A] = E_pi[A sum_t grad log pi(y_t | s_t)].
    """
    from simulations.estimators import score_moments
    from simulations.falsify.ar import mean_token_reward
    from vespo_theory.rules import get_rule

    model, batch = _enum(inst) if model_batch is None else model_batch
    adv = mean_token_reward(model, batch)
    coef = np.asarray(
        get_rule(rule_name).coefficient(batch.tok_log_ratio, batch.mask, adv), dtype=np.float64
    )
    est = score_moments(model, batch, coef, adv)
    model_pi, batch_pi = _enum({**inst, "logits_mu": inst["logits_pi"]})
    adv_pi = mean_token_reward(model_pi, batch_pi)
    true = score_moments(model_pi, batch_pi, batch_pi.mask.astype(np.float64), adv_pi)
    # Rounding: each estimate A c_t (e_y - pi) is formed before any cancellation, so its error is
    # relative to |A| sum_t |c_t| ||e_y - pi||_1 <= 2 |A| sum_t |c_t| (c_t = exp of a sum of up
    # to T log-ratios: relative error eps T (1 + max |log r|)); summing n sequences adds n eps.
    mag = float(batch.weight @ (np.abs(adv) * np.abs(coef).sum(1)))
    mag += float(batch_pi.weight @ (np.abs(adv_pi) * batch_pi.lengths))
    lr = float(np.max(np.abs(batch.tok_log_ratio)))
    tol = 64 * EPS * (batch.n + model.T * (1 + lr)) * 2 * mag
    bias = float(np.linalg.norm(est["mean"] - true["mean"]))
    return [Check(bias, tol, f"||E_mu[{rule_name} estimate] - grad E_pi[A]||")]


def _u1(inst: dict) -> list[Check]:
    return _rule_bias(inst, "is")


def _u2(inst: dict) -> list[Check]:
    if inst["kind"] != "context-free" or inst.get("end_token"):
        raise OutsideAssumptions(
            "U2 is stated for context-free policies of fixed length (see R6 for the rest)"
        )
    return _rule_bias(inst, "per_decision_is")


def _r6(inst: dict) -> list[Check]:
    return _rule_bias(inst, "per_decision_is")


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
        "||E_mu[A sum_t rho_{1:t} grad log pi_t] - grad E_pi[A]|| <= float rounding",
        "context-free tabular pairs, fixed length T <= 4, A = mean token reward (additive); "
        "per-decision IS is often called 'unbiased' without a condition: R6 shows it is needed",
        "a violation would mean the registry's per-decision coefficient is not the prefix product",
        lambda: _with_reward(S.ar_model(kinds=("context-free",), end_token=False, max_T=4)),
        _u2,
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
        "||E_mu[phi(W) g] - E_mu[W g]|| <= float rounding",
        "softmax bandit (2..5 arms, g = A (e_y - pi)), arbitrary or nearby (stale) pi; "
        "deployed (k, lam)",
        "phi(W) != W away from W = 1: the bias is (k - lam - 1)(W - 1) to first order (L2); "
        "only an estimator with E_mu[(phi - W) g] = 0 is unbiased",
        _bandit_strategy,
        _r2,
    )
)
_add(
    Claim(
        "R3",
        "trVar_mu[phi(W) g] <= trVar_mu[W g] + rounding",
        "softmax bandit (2..5 arms), arbitrary or nearby (stale) pi; deployed (k, lam) by the "
        "sign of A",
        "B3 bounds VESPO's variance by M^2 E||g||^2, not by IS's variance. Below W = 1 the "
        "A >= 0 kernel (2,3) exceeds W (phi(0.5) = 1.12 vs 0.5) and the A < 0 kernel (3,2) is "
        "steeper than W (phi(1-x) ~ 1 - x - x^2, slope 1 + 2x): an outcome pi has moved away "
        "from gets more weight than under IS, and the variance can exceed IS's",
        _bandit_strategy,
        _r3,
    )
)
_add(
    Claim(
        "R4",
        "||E_mu[A sum_t c_t grad log pi_t] - grad E_pi[A]|| <= float rounding, c = ppo_clip",
        "tabular autoregressive pairs with every token ratio inside [0.8, 1.2] (nothing "
        "clipped); A = mean token reward; exact enumeration",
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
        "||E_mu[A sum_t rho_{1:t} grad log pi_t] - grad E_pi[A]|| <= float rounding",
        "tabular autoregressive pairs of every kind, fixed or random length, A = mean token "
        "reward (a sequence-level advantage, as in GRPO); exact enumeration. Not in the usual "
        "list: found by this search, since §4 calls per-decision IS unbiased unconditionally",
        "token t's weight rho_{1:t} corrects y_1..y_t, but A also depends on y_{t+1}.. drawn from "
        "mu: unbiased only when E_mu[A | y_<=t] - E_pi[A | y_<=t] does not depend on y_t "
        "(context-free and fixed length, additive reward: U2). Markov states or a random length "
        "make it depend on y_t; per-decision IS is unbiased for rewards-to-go, not for a "
        "sequence-level A",
        lambda: _with_reward(S.ar_model(max_T=4)),
        _r6,
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
