"""The closed-form surrogates f of the reshaping rules, stated once (SymPy), with their evaluation.

For a rule whose gradient is ``phi(W) A grad log pi`` (one token, T = 1, W = r), a surrogate is a
function f with W f'(W) = phi(W): maximising ``f(W) A`` gives that gradient (arXiv 2602.10693
Eq. 4). Each statement here is piecewise: ``[(f, phi, lo, hi), ...]`` on ``lo < W < hi`` in the
SymPy symbol :data:`W`. f is defined up to an additive constant; the constants make f continuous
with ``f(W) = W`` on the unclipped IS piece (``log W`` for REINFORCE, f(0) = 0 for VESPO).

This module sits below both users and imports neither: the registry (:mod:`vespo_theory.rules`)
names each rule's surrogate statement in its entry (the one list of rules with a surrogate) and
evaluates it with :func:`evaluate`; :mod:`vespo_theory.derivations.surrogates` checks each
statement symbolically (claims ``F-<rule>``). SymPy is imported only when a statement is used.

Every statement has the signature ``f(params, pos, T=1, symbolic_vespo=False)``: ``pos`` selects
the A >= 0 branch, ``T`` the length (GSPO, VESPO_sqrt and VESPO_lin, whose W' depends on it, are
checked with a symbolic T; SAPO's and TOPR's 1/T is their token mean: their f holds it, checked
at T = 1), ``symbolic_vespo`` states the VESPO kernels with symbols k, lam > 0.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "symbols",
    "is_surrogate",
    "reinforce_surrogate",
    "clip_surrogate",
    "cispo_surrogate",
    "sapo_surrogate",
    "gspo_surrogate",
    "tis_surrogate",
    "token_mis_surrogate",
    "seq_mis_surrogate",
    "vespo_surrogate",
    "vespo_sqrt_surrogate",
    "vespo_lin_surrogate",
    "topr_surrogate",
    "evaluate",
]


@functools.lru_cache(maxsize=1)
def symbols():
    """``(W, T, k, lam)``: the SymPy symbols of the statements (W > 0, T a positive integer)."""
    import sympy as sp

    W = sp.Symbol("W", positive=True)
    T = sp.Symbol("T", positive=True, integer=True)
    k, lam = sp.symbols("k lam", positive=True)
    return W, T, k, lam


def _q(v: float):
    """A float parameter as an exact rational (0.2 -> 1/5), so simplification is exact."""
    import sympy as sp

    return sp.nsimplify(v, rational=True)


def is_surrogate(params, pos, T=1, symbolic_vespo=False):
    """IS: f = W (phi = W)."""
    W = symbols()[0]
    import sympy as sp

    return [(W, W, 0, sp.oo)]


def reinforce_surrogate(params, pos, T=1, symbolic_vespo=False):
    """REINFORCE: f = log W (phi = 1)."""
    import sympy as sp

    W = symbols()[0]
    return [(sp.log(W), sp.Integer(1), 0, sp.oo)]


def clip_surrogate(params, pos, T=1, symbolic_vespo=False):
    """PPO clip and dual clip: A >= 0 min(W, 1+eps_high); A < 0 max(W, 1-eps_low) (and, with a
    ``c`` field (dual clip), capped at c)."""
    import sympy as sp

    W, oo, zero = symbols()[0], sp.oo, sp.Integer(0)
    lo, hi = 1 - _q(params.eps_low), 1 + _q(params.eps_high)
    if pos:
        return [(W, W, 0, hi), (hi, zero, hi, oo)]
    if not hasattr(params, "c"):
        return [(lo, zero, 0, lo), (W, W, lo, oo)]
    c = _q(params.c)
    return [(lo, zero, 0, lo), (W, W, lo, c), (c, zero, c, oo)]


def cispo_surrogate(params, pos, T=1, symbolic_vespo=False):
    """CISPO: W in the band, (1 +- eps) log W + const outside."""
    import sympy as sp

    W = symbols()[0]
    lo, hi = 1 - _q(params.eps_low), 1 + _q(params.eps_high)
    return [
        (lo * sp.log(W) + lo - lo * sp.log(lo), lo, 0, lo),
        (W, W, lo, hi),
        (hi * sp.log(W) + hi - hi * sp.log(hi), hi, hi, sp.oo),
    ]


def sapo_surrogate(params, pos, T=1, symbolic_vespo=False):
    """SAPO: (4/tau) sigmoid(tau (W - 1))."""
    import sympy as sp

    W = symbols()[0]
    tau = _q(params.tau_pos if pos else params.tau_neg)
    f = 4 / tau / (1 + sp.exp(-tau * (W - 1)))
    return [(f, W * sp.sech(tau * (W - 1) / 2) ** 2 / T, 0, sp.oo)]


def gspo_surrogate(params, pos, T=1, symbolic_vespo=False):
    """GSPO: min(s, 1+eps_high) (A >= 0) / max(s, 1-eps_low) (A < 0), s = W^(1/T)."""
    import sympy as sp

    W = symbols()[0]
    s = W ** (sp.Integer(1) / T)
    if pos:
        hi = 1 + _q(params.eps_high)
        return [(s, s / T, 0, hi**T), (hi, sp.Integer(0), hi**T, sp.oo)]
    lo = 1 - _q(params.eps_low)
    return [(lo, sp.Integer(0), 0, lo**T), (s, s / T, lo**T, sp.oo)]


def tis_surrogate(params, pos, T=1, symbolic_vespo=False):
    """Truncated IS (token or sequence): W below cap, cap log W + const above."""
    import sympy as sp

    W = symbols()[0]
    c = _q(params.cap)
    return [(W, W, 0, c), (c * sp.log(W) + c - c * sp.log(c), c, c, sp.oo)]


def token_mis_surrogate(params, pos, T=1, symbolic_vespo=False):
    """Token masked IS: clamp(W, low, high)."""
    import sympy as sp

    W, zero = symbols()[0], sp.Integer(0)
    lo, hi = _q(params.low), _q(params.high)
    return [(lo, zero, 0, lo), (W, W, lo, hi), (hi, zero, hi, sp.oo)]


def seq_mis_surrogate(params, pos, T=1, symbolic_vespo=False):
    """Sequence masked IS: min(W, cap)."""
    import sympy as sp

    W = symbols()[0]
    c = _q(params.cap)
    return [(W, W, 0, c), (c, sp.Integer(0), c, sp.oo)]


def vespo_surrogate(params, pos, T=1, symbolic_vespo=False):
    """VESPO: e^lam lam^-k lowergamma(k, lam W) (claim K2)."""
    import sympy as sp

    W, _T, k_sym, lam_sym = symbols()
    if symbolic_vespo:
        k, lam = k_sym, lam_sym
    else:
        k = _q(params.k_pos if pos else params.k_neg)
        lam = _q(params.lam_pos if pos else params.lam_neg)
    f = sp.exp(lam) * lam ** (-k) * sp.lowergamma(k, lam * W)
    return [(f, W**k * sp.exp(lam * (1 - W)), 0, sp.oo)]


def _vespo_scaled(params, pos, a, scale, symbolic_vespo):
    """The surrogate of the kernel at W' = W^a: f = scale e^lam lam^-k lowergamma(k, lam W^a),
    whose d f / d log W = scale a phi(W^a); with scale = 1/a that is phi(W^a)."""
    import sympy as sp

    W, _T, k_sym, lam_sym = symbols()
    if symbolic_vespo:
        k, lam = k_sym, lam_sym
    else:
        k = _q(params.k_pos if pos else params.k_neg)
        lam = _q(params.lam_pos if pos else params.lam_neg)
    u = W**a
    f = scale * sp.exp(lam) * lam ** (-k) * sp.lowergamma(k, lam * u)
    return [(f, u**k * sp.exp(lam * (1 - u)), 0, sp.oo)]


def vespo_sqrt_surrogate(params, pos, T=1, symbolic_vespo=False):
    """VESPO_sqrt: sqrt(T) e^lam lam^-k lowergamma(k, lam W'), W' = W^(1/sqrt(T)): its
    derivative in log W is phi(W') (the registry's detached weight)."""
    import sympy as sp

    return _vespo_scaled(params, pos, 1 / sp.sqrt(T), sp.sqrt(T), symbolic_vespo)


def vespo_lin_surrogate(params, pos, T=1, symbolic_vespo=False):
    """VESPO_lin: T e^lam lam^-k lowergamma(k, lam W'), W' = W^(1/T) = s."""
    import sympy as sp

    return _vespo_scaled(params, pos, sp.Integer(1) / T, sp.Integer(1) * T, symbolic_vespo)


def topr_surrogate(params, pos, T=1, symbolic_vespo=False):
    """TOPR: A >= 0 log W; A < 0 truncated IS at 1 (W below 1, 1 + log W above); each / T with
    ``length_norm``."""
    import sympy as sp

    W, one = symbols()[0], sp.Integer(1)
    n = T if params.length_norm else 1
    if pos:
        return [(sp.log(W) / n, one / n, 0, sp.oo)]
    return [(W / n, W / n, 0, 1), ((1 + sp.log(W)) / n, one / n, 1, sp.oo)]


@functools.lru_cache(maxsize=256)
def _lambdified(statement, params, pos: bool):
    import sympy as sp

    W = symbols()[0]
    return [
        (sp.lambdify(W, f, modules=["scipy", "numpy"]), float(lo), float(hi))
        for f, _phi, lo, hi in statement(params, pos)
    ]


def evaluate(statement, w, pos, params) -> np.ndarray:
    """f(W) at T = 1 in float64 NumPy from the statement's pieces (lambdified once, cached)."""
    w = np.asarray(w, dtype=np.float64)
    pos = np.broadcast_to(np.asarray(pos, dtype=bool), w.shape)
    out = np.full(w.shape, np.nan)
    for sign in (True, False):
        sel_sign = pos == sign
        if not sel_sign.any():
            continue
        for fn, lo, hi in _lambdified(statement, params, sign):
            sel = sel_sign & (w >= lo) & (w <= hi)
            if sel.any():
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    val = np.broadcast_to(np.asarray(fn(w[sel]), dtype=np.float64), w[sel].shape)
                out[sel] = val
    return out
