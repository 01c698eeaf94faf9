"""Hypothesis strategies for the instances the catalogued claims talk about.

Every strategy returns plain JSON-able dicts or lists (floats, ints, lists), so that an instance
hypothesis finds can be printed, stored and replayed exactly (JSON round-trips float64).
Instances are then evaluated exactly (sums over a finite support, enumeration of every sequence
of a tabular model, or the lattice method), never by Monte Carlo.

Used by ``tests/properties`` and by ``vespo falsify`` (:mod:`simulations.falsify`).

Families:

* :func:`kernel_params` - (k, lam) over wide ranges, with the deployed values mixed in;
  :func:`vespo_params` - the four sign-dependent values.
* :func:`distribution` / :func:`finite_pair` - finite supports with mu and pi, including
  near-degenerate ones (probabilities down to e^-40, one dominant outcome, zeros of pi).
* :func:`tok_log_ratios` - token log-ratios, light- or heavy-tailed, any length.
* :func:`scores`, :func:`advantages` - score vectors and advantages of both signs.
* :func:`ar_model` - tabular autoregressive pairs (context-free, Markov, prefix-hashed) as
  explicit logits tables, lengths 1..T_max, optional end token (random lengths).
"""

from __future__ import annotations

import math

import hypothesis.strategies as st

__all__ = [
    "advantages",
    "ar_model",
    "distribution",
    "finite_pair",
    "finite_pair_near",
    "kernel_params",
    "log_w",
    "log_w_near",
    "scores",
    "support_weights",
    "tok_log_ratios",
    "vespo_params",
]

# The deployed kernels, tried first so that the defaults are always among the examples.
DEPLOYED = ((2.0, 3.0), (3.0, 2.0))


def _positive(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] spread over the decades (log-uniform-like), plus plain values."""
    return st.one_of(
        st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False),
        st.floats(min_value=math.log(lo), max_value=math.log(hi)).map(
            lambda u: min(max(math.exp(u), lo), hi)
        ),
    )


def kernel_params(lo: float = 1e-2, hi: float = 50.0) -> st.SearchStrategy[dict]:
    """``{"k": k, "lam": lam}`` with k, lam in [lo, hi] (both > 0, the claims' assumption)."""
    pair = st.one_of(
        st.sampled_from(DEPLOYED),
        st.tuples(_positive(lo, hi), _positive(lo, hi)),
    )
    return pair.map(lambda p: {"k": float(p[0]), "lam": float(p[1])})


def vespo_params(lo: float = 5e-2, hi: float = 20.0) -> st.SearchStrategy[dict]:
    """``{"k_pos", "lam_pos", "k_neg", "lam_neg"}`` (the fields of VespoParams)."""
    deployed = st.just({"k_pos": 2.0, "lam_pos": 3.0, "k_neg": 3.0, "lam_neg": 2.0})
    free = st.tuples(*[_positive(lo, hi)] * 4).map(
        lambda t: {"k_pos": t[0], "lam_pos": t[1], "k_neg": t[2], "lam_neg": t[3]}
    )
    return st.one_of(deployed, free)


def tok_log_ratios(
    max_len: int = 64, bound: float = 50.0, min_len: int = 1
) -> st.SearchStrategy[list[float]]:
    """Token log-ratios log pi - log mu: small drifts, heavy tails (Cauchy-like) and extremes."""
    small = st.floats(min_value=-0.5, max_value=0.5)
    # Heavy-tailed: tan of a uniform angle is Cauchy; clipped to +-bound (the strategy's range).
    heavy = st.floats(min_value=-1.5, max_value=1.5).map(
        lambda a: max(-bound, min(bound, math.tan(a)))
    )
    wide = st.floats(min_value=-bound, max_value=bound)
    return st.lists(st.one_of(small, heavy, wide), min_size=min_len, max_size=max_len)


def log_w(bound: float = 1e4) -> st.SearchStrategy[float]:
    """Sequence log-weights: from token sums, or directly anywhere in [-bound, bound]."""
    return st.one_of(
        tok_log_ratios().map(math.fsum),
        st.floats(min_value=-bound, max_value=bound),
        st.floats(min_value=-3.0, max_value=3.0),
    )


def _normalise(log_weights: list[float]) -> list[float]:
    m = max(log_weights)
    e = [math.exp(v - m) for v in log_weights]
    s = math.fsum(e)
    return [v / s for v in e]


def distribution(
    n: int, min_log: float = -40.0, zeros: bool = False
) -> st.SearchStrategy[list[float]]:
    """A probability vector of length n from log-weights in [min_log, 0].

    Tiny entries (down to ~e^min_log relative), one dominant outcome and (with ``zeros``) exact
    zeros are all reachable; it shrinks to the uniform distribution.
    """
    entry = st.floats(min_value=min_log, max_value=0.0)
    if zeros:
        entry = st.one_of(entry, st.just(-math.inf))

    def build(lw):
        if all(v == -math.inf for v in lw):
            lw = [0.0] + lw[1:]
        return _normalise(lw)

    return st.lists(entry, min_size=n, max_size=n).map(build)


@st.composite
def finite_pair(draw, min_n: int = 1, max_n: int = 6, pi_zeros: bool = True) -> dict:
    """``{"mu": [...], "pi": [...]}`` on a common support of 1..max_n outcomes, mu > 0.

    pi may have zeros (supp pi within supp mu, the assumption of every claim about E_mu).
    """
    n = draw(st.integers(min_value=min_n, max_value=max_n))
    mu = draw(distribution(n))
    pi = draw(distribution(n, zeros=pi_zeros))
    return {"mu": mu, "pi": pi}


def log_w_near(k: float, lam: float) -> st.SearchStrategy[float]:
    """A sequence log-weight near the kernel's peak log(k/lam), near 0 (W = 1), or anywhere."""
    peak = math.log(k) - math.log(lam)
    return st.one_of(
        st.floats(min_value=-0.3, max_value=0.3).map(lambda d: peak + d),
        st.floats(min_value=-0.3, max_value=0.3),
        st.floats(min_value=-20.0, max_value=20.0),
    )


@st.composite
def support_weights(draw, k: float, lam: float, n: int) -> dict:
    """``{"mu": [...], "log_w": [...]}``: n outcomes and their log-weights, with no moment
    condition on W (B1-B3 hold for any law of W); log-weights cluster at the peak k/lam."""
    mu = draw(distribution(n))
    return {"mu": mu, "log_w": draw(st.lists(log_w_near(k, lam), min_size=n, max_size=n))}


@st.composite
def finite_pair_near(draw, min_n: int = 2, max_n: int = 6, max_drift: float = 1.0) -> dict:
    """``{"mu", "pi"}`` with pi = mu after a logit drift of at most ``max_drift`` per outcome
    (a stale policy pair: W stays within e^(+-2 max_drift) of 1)."""
    n = draw(st.integers(min_value=min_n, max_value=max_n))
    mu = draw(distribution(n))
    delta = draw(st.lists(st.floats(-max_drift, max_drift), min_size=n, max_size=n))
    return {"mu": mu, "pi": _normalise([math.log(m) + d for m, d in zip(mu, delta)])}


def advantages(n: int, bound: float = 10.0) -> st.SearchStrategy[list[float]]:
    """n advantages of both signs (0 included: it takes the A >= 0 branch)."""
    return st.lists(st.floats(min_value=-bound, max_value=bound), min_size=n, max_size=n)


def scores(n: int, dim: int, bound: float = 100.0) -> st.SearchStrategy[list[list[float]]]:
    """n score vectors (grad log pi of each outcome) of dimension dim."""
    vec = st.lists(st.floats(min_value=-bound, max_value=bound), min_size=dim, max_size=dim)
    return st.lists(vec, min_size=n, max_size=n)


def _logit_table(S: int, V: int, scale: float) -> st.SearchStrategy[list[list[float]]]:
    row = st.lists(st.floats(min_value=-scale, max_value=scale), min_size=V, max_size=V)
    return st.lists(row, min_size=S, max_size=S)


KINDS = ("context-free", "markov", "prefix")


@st.composite
def ar_model(
    draw,
    max_V: int = 3,
    max_T: int = 5,
    kinds=KINDS,
    logit_scale: float = 8.0,
    end_token: bool | None = None,
    max_sequences: int = 4096,
    same: bool = False,
    max_drift: float | None = None,
) -> dict:
    """An explicit tabular pair (pi, mu) as a dict (see :func:`simulations.falsify.ar.build`).

    ``kind`` context-free (one state), markov (state = previous token) or prefix (rolling hash of
    the prefix into ``n_hash`` states); V tokens, length T (the maximum when ``end_token``, then
    token V - 1 ends the sequence: random lengths). Logits in [-scale, scale], so probabilities
    down to ~e^(-2 scale) / V. ``same``: mu = pi. ``max_drift``: mu's logits are pi's plus a
    perturbation of at most that size (small staleness). V^T is kept <= ``max_sequences``.
    """
    kind = draw(st.sampled_from(kinds))
    V = draw(st.integers(min_value=2, max_value=max_V))
    t_cap = max(1, min(max_T, int(math.log(max_sequences) / math.log(V))))
    T = draw(st.integers(min_value=1, max_value=t_cap))
    n_hash = draw(st.integers(min_value=1, max_value=4)) if kind == "prefix" else 1
    S = {"context-free": 1, "markov": V + 1, "prefix": n_hash}[kind]
    logits_pi = draw(_logit_table(S, V, logit_scale))
    if same:
        logits_mu = [list(r) for r in logits_pi]
    elif max_drift is not None:
        delta = draw(_logit_table(S, V, max_drift))
        logits_mu = [[a + d for a, d in zip(ra, rd)] for ra, rd in zip(logits_pi, delta)]
    else:
        logits_mu = draw(_logit_table(S, V, logit_scale))
    et = draw(st.booleans()) if end_token is None else end_token
    return {
        "kind": kind,
        "V": V,
        "T": T,
        "n_hash": n_hash,
        "logits_pi": logits_pi,
        "logits_mu": logits_mu,
        "end_token": bool(et),
    }
