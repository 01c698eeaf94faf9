r"""The variational problem behind VESPO on a finite support, solved exactly (claims Q1-Q3, P2).

arXiv 2602.10693 (Prop. B.1, Eqs. 11-16 and 38): for a behaviour law mu and a target pi on the
same finite support, W = pi/mu, a real a and a budget C,

.. math:: \min_Q\ (1-a)\,\mathrm{KL}(Q\|\mu) + a\,\mathrm{KL}(Q\|\pi)
          = \mathrm{KL}(Q\|\mu) - a\,E_Q[\log W] \quad\text{s.t.}\quad E_Q[W] \le C,\ \sum Q = 1

has the unique solution :math:`Q^* \propto \mu W^a e^{-bW}` (Q1, Q2) with the multiplier b >= 0
fixed by the budget (Q3): b = 0 when the budget is slack, C >= E(0) = E_mu[W^(a+1)] / E_mu[W^a];
otherwise the unique b > 0 with E_{Q*_b}[W] = C, which exists iff C > min W (E_{Q*_b}[W]
decreases strictly in b, dE/db = -Var_{Q*_b}(W), towards min W). Without the budget
(b = 0) the optimum is the geometric path :math:`Q_a \propto \mu^{1-a}\pi^a` (:func:`path`).
The deployed kernel phi = W^k e^(lam(1-W)) is the density ratio Q*/mu up to a constant at
a = k, b = lam.

Everything is float64 and in log space: log Q = log mu + a log W - b W, normalised with
``logsumexp``, so large a, b or tiny masses neither overflow nor divide 0 by 0. Inputs are
validated and a bad one raises ``ValueError`` naming the argument. This module is the public
solver for figures and users; the derivation checks (``vespo_theory.derivations``) keep their
own private copy, so the two are independent.

>>> mu, pi = [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]
>>> q, b = q_star(mu, pi, a=2.0, C=1.5)
>>> round(float(q @ (np.array(pi) / np.array(mu))), 12), b > 0
(1.5, True)
>>> q_star(mu, pi, a=2.0, C=10.0)[1]  # slack budget: b = 0, Q* = Q_a
0.0
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

__all__ = [
    "chernoff_information",
    "log_d1_bound",
    "log_path_normaliser",
    "log_q_star",
    "path",
    "q_star",
    "slack_threshold",
    "solve_b",
    "budget_of_b",
    "validate_pair",
]

# Probability vectors must sum to 1 within this: float64 inputs written with ~16 digits, or
# computed by normalising, sum to 1 within a few ulp per entry; 1e-9 accepts any such vector and
# refuses a vector that is a real mistake (a missing mass of 1e-9 is no rounding).
_SUM_TOL = 1e-9
# b is searched in [0, _B_MAX]: beyond it exp(-b (W_j - min W)) underflows for any gap above
# 745 / 1e12, so E_b[W] equals min W in float64 and a larger b cannot be told apart.
_B_MAX = 1e12


def _prob(x, name: str) -> np.ndarray:
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a list of numbers, got {x!r}") from None
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"{name}: must be a 1-D probability vector of >= 2 entries, got {x!r}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    if np.any(v <= 0):
        raise ValueError(
            f"{name}: every entry must be > 0 (W = pi/mu must be finite and positive), got {x!r}"
        )
    if abs(float(v.sum()) - 1.0) > _SUM_TOL:
        raise ValueError(f"{name}: must sum to 1 (within {_SUM_TOL:g}), sums to {v.sum()!r}")
    return v


def _real(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise ValueError(f"{name}: must be a finite real number, got {x!r}")
    return float(x)


def validate_pair(mu, pi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log mu, log pi, log W) of two strictly positive probability vectors of one size."""
    m, p = _prob(mu, "mu"), _prob(pi, "pi")
    if m.shape != p.shape:
        raise ValueError(f"pi: must have the size of mu ({m.size}), has {p.size}")
    log_mu, log_pi = np.log(m), np.log(p)
    return log_mu, log_pi, log_pi - log_mu


def log_q_star(mu, pi, a: float, b: float) -> np.ndarray:
    """log Q*, Q* ∝ mu W^a e^(-b W), normalised (any real a, b >= 0)."""
    log_mu, _, log_w = validate_pair(mu, pi)
    a, b = _real(a, "a"), _real(b, "b")
    if b < 0:
        raise ValueError(f"b: the budget multiplier must be >= 0, got {b!r}")
    lq = log_mu + a * log_w - b * np.exp(log_w)
    return lq - logsumexp(lq)


def path(mu, pi, a) -> np.ndarray:
    """The geometric path Q_a ∝ mu^(1-a) pi^a (= Q* at b = 0) for each a: shape [len(a), n]."""
    log_mu, log_pi, _ = validate_pair(mu, pi)
    a_arr = np.atleast_1d(np.asarray(a, dtype=np.float64))
    if a_arr.ndim != 1 or not np.all(np.isfinite(a_arr)):
        raise ValueError(f"a: must be a finite number or 1-D list of numbers, got {a!r}")
    lq = (1.0 - a_arr)[:, None] * log_mu + a_arr[:, None] * log_pi
    return _renormalised(np.exp(lq - logsumexp(lq, axis=1, keepdims=True)))


def _renormalised(q: np.ndarray) -> np.ndarray:
    # exp(lq - logsumexp(lq)) sums to 1 only within eps * max|lq| (the log of a large weight
    # carries an absolute error of eps |lq|); one division by the sum brings it to a few eps.
    return q / q.sum(axis=-1, keepdims=True)


def budget_of_b(mu, pi, a: float, b: float) -> float:
    """E_{Q*_b}[W]: the budget C at which the multiplier is b (strictly decreasing in b)."""
    _, _, log_w = validate_pair(mu, pi)
    return float(np.exp(logsumexp(log_q_star(mu, pi, a, b) + log_w)))


def slack_threshold(mu, pi, a: float) -> float:
    """E(0) = E_mu[W^(a+1)] / E_mu[W^a]: budgets C >= E(0) are slack (b = 0; claim Q3)."""
    log_mu, _, log_w = validate_pair(mu, pi)
    a = _real(a, "a")
    return float(np.exp(logsumexp(log_mu + (a + 1) * log_w) - logsumexp(log_mu + a * log_w)))


def solve_b(mu, pi, a: float, C: float) -> float:
    """The multiplier b >= 0 of the budget E_Q[W] <= C (claim Q3).

    0 when C >= E(0) (:func:`slack_threshold`); else the root of E_{Q*_b}[W] = C by Brent's
    method (``xtol`` 1e-300, ``rtol`` 4 eps: b to float64 precision). ``ValueError`` naming C
    when C <= min W (no Q << mu has E_Q[W] <= C with the form of Q*: infeasible).
    """
    log_mu, log_pi, log_w = validate_pair(mu, pi)
    a, C = _real(a, "a"), _real(C, "C")
    w = np.exp(log_w)
    w_min = float(w.min())
    if not C > w_min:
        raise ValueError(f"C: the budget must exceed min W = {w_min!r} to be feasible, got {C!r}")
    if C >= slack_threshold(mu, pi, a):
        return 0.0

    def excess(b: float) -> float:
        lq = log_mu + a * log_w - b * w
        return float(np.exp(logsumexp(lq + log_w) - logsumexp(lq))) - C

    hi = 1.0
    while excess(hi) > 0:
        if hi >= _B_MAX:
            raise ValueError(
                f"C: the budget {C!r} is so close to min W = {w_min!r} that b exceeds "
                f"{_B_MAX:g} (E_Q[W] = C cannot be resolved in float64)"
            )
        hi *= 2.0
    return float(brentq(excess, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


def q_star(mu, pi, a: float, C: float) -> tuple[np.ndarray, float]:
    """The optimum Q*(a, C) of the variational problem and its multiplier b (claims Q1-Q3).

    Returns ``(q, b)``: q a probability vector (float64, sums to 1), b >= 0.
    """
    b = solve_b(mu, pi, a, C)
    return _renormalised(np.exp(log_q_star(mu, pi, a, b))), b


# ------------------------------------------------------------------- the path's normaliser
def log_path_normaliser(mu, pi, s) -> np.ndarray:
    """log Z(s) = log sum_v mu_v^(1-s) pi_v^s = log E_mu[r^s] (r = pi/mu), for each s.

    The normaliser of the geometric path Q_s (:func:`path`), and the log moment generating
    function of log r under mu: convex in s, 0 at s = 0 and s = 1 (both laws sum to 1), <= 0 in
    between. For i.i.d. tokens E_mu[W_T^s] = Z(s)^T (claims M1, M2 at s = 1, 2).
    """
    log_mu, _, log_w = validate_pair(mu, pi)
    s_arr = np.atleast_1d(np.asarray(s, dtype=np.float64))
    if s_arr.ndim != 1 or not np.all(np.isfinite(s_arr)):
        raise ValueError(f"s: must be a finite number or 1-D list of numbers, got {s!r}")
    return logsumexp(log_mu[None, :] + s_arr[:, None] * log_w[None, :], axis=1)


def chernoff_information(mu, pi) -> tuple[float, float]:
    """(C, s*): the Chernoff information C = -min_{s in [0, 1]} log E_mu[r^s] and its minimiser.

    Claim D1 (arXiv 2602.10693 context: the kernel's E_mu[phi(W_T)] for i.i.d. tokens decays
    like e^(-C T) when k > s*). log Z(s) is convex, so the bounded Brent search on [0, 1]
    (``xatol`` 1e-12) finds the minimum; C >= 0, and C = 0 iff mu = pi.
    """
    from scipy.optimize import minimize_scalar

    validate_pair(mu, pi)
    res = minimize_scalar(
        lambda s: float(log_path_normaliser(mu, pi, s)[0]),
        bounds=(0.0, 1.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    s_star = float(res.x)
    return max(0.0, -float(log_path_normaliser(mu, pi, s_star)[0])), s_star


def log_d1_bound(mu, pi, k: float, lam: float, T: int) -> tuple[float, float]:
    """(log B, s): the finite-T bound of claim D1, E_mu[phi(W_T)] <= B for i.i.d. tokens.

    phi(W) = W^k e^(lam(1-W)) <= C_s W^s for 0 <= s <= k, C_s = sup_W phi/W^s =
    ((k-s)/lam)^(k-s) e^(lam-k+s) (C_0 = M of claim K3, C_1 = K of P4); with E_mu[W_T^s] = Z(s)^T,
    B = inf_s C_s Z(s)^T. The objective (k-s) log((k-s)/lam) + lam - k + s + T log Z(s) is
    convex in s, minimised by bounded Brent on [0, k] (``xatol`` 1e-12; at s = k the first term
    is its limit 0).
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import xlogy

    validate_pair(mu, pi)
    k, lam = _real(k, "k"), _real(lam, "lam")
    if k <= 0 or lam <= 0:
        raise ValueError(f"k, lam: must be > 0, got k = {k!r}, lam = {lam!r}")
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T: must be an integer >= 1, got {T!r}")

    def objective(s: float) -> float:
        d = max(k - s, 0.0)
        log_cs = float(xlogy(d, d / lam)) + lam - d
        return log_cs + int(T) * float(log_path_normaliser(mu, pi, s)[0])

    res = minimize_scalar(objective, bounds=(0.0, k), method="bounded", options={"xatol": 1e-12})
    # the bounded search never evaluates the end points; s = 0 (B = M) can be the best
    best_s = min((float(res.x), 0.0, k), key=objective)
    return objective(best_s), best_s
