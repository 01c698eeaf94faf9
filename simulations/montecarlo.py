r"""Vectorised Monte Carlo sampling of sequences from a finite-state autoregressive model.

Tokens are drawn with Walker's alias method (Vose's construction): one uniform ``u`` per token,
``i = floor(u V)`` picks a column and the fractional part ``u V - i`` decides between ``i`` and
its alias. That is one random number and three gathers per token, so the sampler runs at a
sizeable fraction of the raw random-number fill rate (measured in benchmarks/bench_simulators.py).
A double carries 53 bits: after taking ``log2 V`` bits for the column the fraction keeps
``53 - log2 V`` bits, i.e. probabilities are resolved to ``V 2^-53``.

Samples are i.i.d., so every Monte Carlo mean in :mod:`simulations.estimators` carries the
standard error sd / sqrt(n). Seeded: same seed, same sequences.
"""

from __future__ import annotations

import numpy as np

from simulations.tabular import ARModel, SequenceBatch, states_and_mask

__all__ = ["AliasTable", "alias_table", "sample_tokens", "sample_sequences"]


class AliasTable:
    """Alias tables of the rows of a [S, V] probability matrix: ``prob`` and ``alias``, [S*V]."""

    def __init__(self, prob: np.ndarray, alias: np.ndarray, V: int):
        self.prob, self.alias, self.V = prob, alias, V


def alias_table(p: np.ndarray) -> AliasTable:
    """Vose's alias tables for each row of ``p`` ([S, V], rows summing to 1).

    The pairing loop is vectorised over the "small" and "large" stacks in rounds, so a row with
    V = 32000 takes milliseconds.
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    S, V = p.shape
    prob = np.ones((S, V))
    alias = np.tile(np.arange(V, dtype=np.int64), (S, 1))
    for s in range(S):
        q = p[s] * V / p[s].sum()
        small = list(np.flatnonzero(q < 1.0))
        large = list(np.flatnonzero(q >= 1.0))
        while small and large:
            sm, lg = small.pop(), large[-1]
            prob[s, sm] = q[sm]
            alias[s, sm] = lg
            q[lg] -= 1.0 - q[sm]
            if q[lg] < 1.0:
                large.pop()
                small.append(lg)
        # leftovers are 1 up to rounding: they keep prob 1 and alias themselves
    return AliasTable(prob.ravel(), alias.ravel(), V)


def sample_tokens(table: AliasTable, states: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One token per entry of ``states`` from uniforms ``u`` (same shape) via the alias tables."""
    V = table.V
    x = u * V
    i = x.astype(np.int64)
    np.minimum(i, V - 1, out=i)
    frac = x - i
    flat = states * V + i if states is not None else i
    return np.where(frac < table.prob[flat], i, table.alias[flat])


def sample_sequences(
    model: ARModel,
    n: int,
    rng: np.random.Generator,
    *,
    policy: str = "behaviour",
    chunk: int = 1 << 16,
) -> SequenceBatch:
    """``n`` i.i.d. sequences from the behaviour policy (or from ``policy="pi"``).

    Returns a :class:`~simulations.tabular.SequenceBatch` with ``weight=None`` (uniform).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n (Monte Carlo samples) must be an integer >= 2, got {n!r}")
    if policy == "behaviour":
        log_q = model.log_behaviour
    elif policy == "pi":
        log_q = model.log_pi
    else:
        raise ValueError(f"policy must be 'behaviour' or 'pi', got {policy!r}")
    table = alias_table(np.exp(log_q))
    T = model.T
    tokens = np.empty((n, T), dtype=np.int64)
    context_free = model.S == 1
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        u = rng.random((T, hi - lo))
        if context_free:
            tokens[lo:hi] = sample_tokens(table, None, u).T
            continue
        s = np.zeros(hi - lo, dtype=np.int64)
        for t in range(T):
            y = sample_tokens(table, s, u[t])
            tokens[lo:hi, t] = y
            s = model.trans[s, y]
    states, mask = states_and_mask(model, tokens)
    lr = model.log_pi - model.log_behaviour
    tok_log_ratio = np.where(mask, lr[states, tokens], 0.0)
    return SequenceBatch(tokens, states, mask, tok_log_ratio, None)
