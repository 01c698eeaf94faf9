r"""Vectorised Monte Carlo sampling of sequences from a finite-state autoregressive model.

Tokens are drawn with Walker's alias method (Vose's construction) on raw 64-bit random words:
the high 32 bits pick a column ``i = (hi * V) >> 32`` (multiply-shift), the low 32 bits are
compared with the column's threshold ``round(prob_i 2^32)``, packed with the alias into one
uint64 so that one gather serves both. That is one raw random word, one gather and a few
integer operations per token, so the sampler runs at a sizeable fraction of the raw
random-number fill rate (measured in benchmarks/bench_simulators.py).

Exactness: the column choice is exactly uniform (Lemire's multiply-shift with rejection of the
< V 2^-32 fraction of words that would bias it); the 32-bit thresholds round each column's
acceptance probability by <= 2^-33, so every token probability is realised to within 2^-33
absolute (a bias far below the standard error of any run here: it would take ~1e19 draws to
show). The alias tables themselves are exact to float rounding (tested).

Samples are i.i.d., so every Monte Carlo mean in :mod:`simulations.estimators` carries the
standard error sd / sqrt(n). Seeded: same seed, same sequences.
"""

from __future__ import annotations

import numpy as np

from simulations.tabular import ARModel, SequenceBatch, states_and_mask

__all__ = ["AliasTable", "alias_table", "sample_tokens", "sample_sequences"]


class AliasTable:
    """Alias tables of the rows of a [S, V] probability matrix, flattened to [S*V].

    ``prob`` (float, the acceptance probability of the column itself), ``alias`` (int64) and
    ``packed`` = ``round(prob 2^32) << 32 | alias`` (uint64), the form the sampler gathers.
    """

    def __init__(self, prob: np.ndarray, alias: np.ndarray, V: int):
        self.prob, self.alias, self.V = prob, alias, V
        thr = np.minimum(np.rint(prob * 2.0**32), 2.0**32 - 1).astype(np.uint64)
        # prob = 1 (column never aliased): threshold 2^32 - 1 and alias = itself, so the rare
        # low word 2^32 - 1 still returns the column.
        self.packed = (thr << np.uint64(32)) | alias.astype(np.uint64)


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


_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def _columns(raw: np.ndarray, V: int, bits) -> np.ndarray:
    """Exactly uniform columns in [0, V) from the high 32 bits of ``raw`` (Lemire's
    multiply-shift with rejection: the rare words whose low product part falls below
    2^32 mod V, probability < V 2^-32, are redrawn)."""
    Vu = np.uint64(V)
    reject_below = np.uint64((1 << 32) % V)
    m = raw >> _S32
    m *= Vu
    if reject_below:
        bad_mask = (m & _M32) < reject_below
        if bad_mask.any():
            bad = np.flatnonzero(bad_mask)
            while bad.size:
                fresh = (bits.random_raw(bad.size) >> _S32) * Vu
                m[bad] = fresh
                bad = bad[(fresh & _M32) < reject_below]
    m >>= _S32
    return m


def sample_tokens(
    table: AliasTable,
    states: np.ndarray | None,
    raw: np.ndarray,
    out: np.ndarray | None = None,
    bits=None,
) -> np.ndarray:
    """One token per raw 64-bit random word in ``raw`` (uint64, overwritten) from the rows
    ``states`` of the alias tables (``None``: row 0). ``bits`` (a numpy BitGenerator) supplies
    the rare redraws of the column choice; default a fresh PCG64 seeded from ``raw[0]``.
    Returns int64 tokens (in ``out`` when given).

    Branch-free selection (``np.where`` / masked copies cost several times more here):
    ``token = alias ^ ((alias ^ i) & -keep)``.
    """
    if bits is None:
        bits = np.random.PCG64(int(raw[0]) if raw.size else 0)
    i = _columns(raw, table.V, bits)
    flat = i if states is None else states.astype(np.uint64) * np.uint64(table.V) + i
    pk = table.packed.take(flat)
    raw &= _M32  # the low 32 bits: a uniform for the column's acceptance test
    sel = (raw < (pk >> _S32)).astype(np.uint64)
    np.negative(sel, out=sel)  # all ones where the column itself is kept
    pk &= _M32  # the alias column
    i ^= pk
    i &= sel
    if out is None:
        pk ^= i
        return pk.view(np.int64)
    np.bitwise_xor(pk, i, out=out.view(np.uint64))
    return out


def sample_sequences(
    model: ARModel,
    n: int,
    rng: np.random.Generator,
    *,
    policy: str = "behaviour",
    block: int = 1 << 14,
) -> SequenceBatch:
    """``n`` i.i.d. sequences from the behaviour policy (or from ``policy="pi"``).

    Work is done in blocks of ``block`` entries so that every pass stays in cache. Returns a
    :class:`~simulations.tabular.SequenceBatch` with ``weight=None`` (uniform weights).
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
    lr = (model.log_pi - model.log_behaviour).ravel()
    T = model.T
    tokens = np.empty((n, T), dtype=np.int64)
    if model.S == 1 and model.end_token is None:
        # i.i.d. tokens: sample the flat [n * T] array block by block
        flat_tok = tokens.reshape(-1)
        bits = rng.bit_generator
        for lo in range(0, flat_tok.size, block):
            hi = min(flat_tok.size, lo + block)
            sample_tokens(table, None, bits.random_raw(hi - lo), out=flat_tok[lo:hi], bits=bits)
        tok_log_ratio = lr.take(tokens)
        # one state, no end token: read-only broadcast views instead of two more [n, T] arrays
        states = np.broadcast_to(np.zeros(1, dtype=np.int64), (n, T))
        mask = np.broadcast_to(np.ones(1, dtype=bool), (n, T))
        return SequenceBatch(tokens, states, mask, tok_log_ratio, None)
    bits = rng.bit_generator
    states = np.empty((n, T), dtype=np.int64)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        s = np.zeros(hi - lo, dtype=np.int64)
        for t in range(T):
            states[lo:hi, t] = s
            y = sample_tokens(table, s, bits.random_raw(hi - lo), out=tokens[lo:hi, t], bits=bits)
            s = model.trans.take(s * model.V + y)
    if model.end_token is None:
        mask = np.ones((n, T), dtype=bool)
        tok_log_ratio = lr.take(states * model.V + tokens)
    else:
        _, mask = states_and_mask(model, tokens)
        tok_log_ratio = np.where(mask, lr.take(states * model.V + tokens), 0.0)
    return SequenceBatch(tokens, states, mask, tok_log_ratio, None)
