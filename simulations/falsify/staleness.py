r"""The expected VESPO update under staleness, exactly, for i.i.d. binary tokens: claim R9.

Model: V = 2 tokens drawn i.i.d. (context-free, position-independent) for T steps. The
behaviour policy mu has logits ``logits_mu``; after N stale updates of ``delta`` each, the
trainer's policy has logits logits_mu + N delta (a fixed per-token drift growing with the
staleness N). A sequence is summarised by c = the number of tokens equal to 1:

* mu(c) = C(T, c) mu_1^c mu_0^(T-c) (binomial, in log space with ``gammaln``);
* log W = c log(pi_1/mu_1) + (T - c) log(pi_0/mu_0);
* A = (1/T) sum_t (r(y_t) - E_pi[r]), the mean token reward centred under pi (both signs occur,
  so both kernels of arXiv 2602.10693 Eq. 17 are used);
* the sequence score of pi's logits G = sum_t (e_{y_t} - pi) = (T pi_1 - c) (1, -1).

The expected update u = E_mu[phi(W) A G] is a sum over c = 0..T; the true gradient of
J = E_pi[A] (A's baseline held fixed) is grad J = E_pi[r(y)(e_y - pi)] (tokens are independent,
so the cross terms of the sum over t vanish): on-policy (N = 0) u = grad J exactly, since
phi(1) = 1. Bounded weights (B1, arXiv 2602.10693 Prop. C.1) do not keep u: E_mu[phi(W_T)] -> 0
as the drift or T grows (M4, D1), and u with it.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
from scipy.special import gammaln, log_softmax

from simulations.falsify.core import Check

__all__ = ["cosine", "expected_update", "r9", "r9_details", "strategy"]

EPS = float(np.finfo(np.float64).eps)
MAX_T = 4096
MAX_N = 64


def strategy():
    """V = 2, logits in [-3, 3], drift <= 0.1 per step, N = 1..64 stale steps, T = 1..4096."""
    pair = st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=2)
    step = st.lists(st.floats(-0.1, 0.1), min_size=2, max_size=2)
    return st.fixed_dictionaries(
        {
            "logits_mu": pair,
            "delta": step,
            "N": st.integers(1, MAX_N),
            "T": st.integers(1, MAX_T),
            "reward": st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=2),
        }
    )


def _vec(inst: dict, key: str) -> np.ndarray:
    v = np.asarray(inst.get(key), dtype=np.float64)
    if v.shape != (2,) or not np.isfinite(v).all():
        raise ValueError(f"{key} must be a list of 2 finite numbers (V = 2), got {inst.get(key)!r}")
    return v


def _int(inst: dict, key: str, lo: int, hi: int) -> int:
    v = inst.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def expected_update(inst: dict) -> dict:
    """u = E_mu[phi(W) A G], grad J, E_mu[phi] and the rounding scale, exactly (c = 0..T)."""
    from vespo_theory import kernels
    from vespo_theory.params import VespoParams

    logits_mu, delta, reward = _vec(inst, "logits_mu"), _vec(inst, "delta"), _vec(inst, "reward")
    N, T = _int(inst, "N", 0, MAX_N), _int(inst, "T", 1, MAX_T)
    log_mu = log_softmax(logits_mu)
    log_pi = log_softmax(logits_mu + N * delta)
    pi = np.exp(log_pi)
    c = np.arange(T + 1, dtype=np.float64)
    log_b = gammaln(T + 1) - gammaln(c + 1) - gammaln(T - c + 1)
    log_p = log_b + c * log_mu[1] + (T - c) * log_mu[0]
    log_w = c * (log_pi[1] - log_mu[1]) + (T - c) * (log_pi[0] - log_mu[0])
    rc = reward - float(pi @ reward)  # centred under pi
    adv = (c * rc[1] + (T - c) * rc[0]) / T
    log_phi = np.asarray(kernels.log_phi_signed(log_w, adv, VespoParams()), dtype=np.float64)
    lw = log_p + log_phi  # log of mu(c) phi(W_c) (-inf where phi underflows)
    coef = np.exp(lw) * adv * (T * pi[1] - c)  # u = sum_c coef (1, -1)
    u = math.fsum(coef) * np.array([1.0, -1.0])
    grad = float(pi[0] * pi[1] * (rc[0] - rc[1])) * np.array([1.0, -1.0])  # E_pi[r (e_y - pi)]
    # each term exp(log term) A (T pi_1 - c) is off by eps (|log term| + |log C(T, c)| + 8)
    # relatively (exp of a sum of log-gamma values and T log-ratios; A and the score are a few
    # operations): the absolute error of u's entries is eps times this sum (0 where exp -> 0)
    with np.errstate(invalid="ignore"):
        err = np.where(coef != 0, (np.abs(lw) + np.abs(log_b) + 8) * np.abs(coef), 0.0)
    return {
        "u": u,
        "grad": grad,
        "E_phi": math.fsum(np.exp(lw)),
        "err_sum": float(err.sum()),
        "T": T,
        "token_kl": float(np.exp(log_mu) @ (log_mu - log_pi)),
    }


def r9(inst: dict) -> list[Check]:
    """R9: <u, grad J> >= ||grad J||^2 / 2, written as ||grad J||^2/2 - <u, grad J> <= tol."""
    e = expected_update(inst)
    g2 = float(e["grad"] @ e["grad"])
    dot = float(e["u"] @ e["grad"])
    # |error of u's entries| <= eps err_sum (see expected_update), so |error of <u, grad>| <=
    # sqrt(2) eps err_sum ||grad||; grad J itself is a few operations (eps ||grad||^2); 64x
    tol = 64 * EPS * (math.sqrt(2) * e["err_sum"] * math.sqrt(g2) + g2)
    return [
        Check(
            g2 / 2 - dot,
            tol,
            "||grad J||^2/2 - <E_mu[phi(W) A G], grad J>  (update keeps half its size along "
            "grad J)",
        )
    ]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b), scaled first so that tiny vectors (1e-250) do not underflow; NaN if one is 0."""
    sa, sb = float(np.max(np.abs(a))), float(np.max(np.abs(b)))
    if sa == 0 or sb == 0:
        return math.nan
    a, b = a / sa, b / sb
    return float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))


def r9_details(inst: dict) -> dict:
    e = expected_update(inst)
    g2 = float(e["grad"] @ e["grad"])
    return {
        "E_mu[phi]": e["E_phi"],
        "<u, grad J>/||grad J||^2": float(e["u"] @ e["grad"]) / g2 if g2 > 0 else math.nan,
        "cos(u, grad J)": cosine(e["u"], e["grad"]),
        "token_KL(mu||pi)": e["token_kl"],
    }
