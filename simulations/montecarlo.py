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

import sys

import numpy as np

from simulations.tabular import BATCH_BYTES_PER_ENTRY, ARModel, SequenceBatch
from vespo_theory.resources import check_memory

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

    The pairing is sequential (each "large" column absorbs the deficits of the "small" ones
    from the top of the stack until it turns small itself), so it runs as a plain loop on
    Python floats and lists: the same IEEE double operations as on NumPy scalars, several
    times faster (~12 ms for a row with V = 32000).
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    S, V = p.shape
    prob = np.ones((S, V))
    alias = np.tile(np.arange(V, dtype=np.int64), (S, 1))
    for s in range(S):
        q_arr = p[s] * V / p[s].sum()
        q = q_arr.tolist()
        small = np.flatnonzero(q_arr < 1.0).tolist()
        large = np.flatnonzero(q_arr >= 1.0).tolist()
        prob_s = [1.0] * V  # leftovers are 1 up to rounding: prob 1 and alias themselves
        alias_s = list(range(V))
        while small and large:
            sm, lg = small.pop(), large[-1]
            q_sm = q[sm]
            prob_s[sm] = q_sm
            alias_s[sm] = lg
            q_lg = q[lg] - (1.0 - q_sm)
            q[lg] = q_lg
            if q_lg < 1.0:
                large.pop()
                small.append(lg)
        prob[s] = prob_s
        alias[s] = alias_s
    return AliasTable(prob.ravel(), alias.ravel(), V)


_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_LITTLE = sys.byteorder == "little"


def _columns(raw: np.ndarray, V: int, bits) -> np.ndarray:
    """Exactly uniform columns in [0, V) from the high 32 bits of ``raw`` (Lemire's
    multiply-shift with rejection: the rare words whose low product part falls below
    2^32 mod V, probability < V 2^-32, are redrawn)."""
    V = int(V)
    if V & (V - 1) == 0:  # V = 2^k: (hi * V) >> 32 = raw >> (64 - k), never rejected
        return raw >> np.uint64(64 - (V.bit_length() - 1))
    Vu = np.uint64(V)
    reject_below = np.uint64((1 << 32) % V)
    m = raw >> _S32
    m *= Vu
    if reject_below:
        if _LITTLE:  # the low 32-bit halves as a strided view: no masked copy
            bad_mask = m.view(np.uint32)[0::2] < np.uint32(reject_below)
        else:
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
    """
    if bits is None:
        bits = np.random.PCG64(int(raw[0]) if raw.size else 0)
    row_base = None if states is None else np.asarray(states, dtype=np.int64) * table.V
    return _sample_rows(table, row_base, raw, out, bits)


def _sample_rows(table: AliasTable, row_base, raw: np.ndarray, out, bits) -> np.ndarray:
    """:func:`sample_tokens` with the rows given as int64 offsets ``row_base = state * V``
    (``None``: row 0), the form the sequence sampler keeps between steps.

    Branch-free selection (``np.where`` / masked copies cost several times more here): with the
    low word u and the threshold h (both < 2^32), ``(u - h) >> 63`` (arithmetic shift) is all
    ones exactly when u < h (the column is kept), and
    ``token = alias ^ ((alias ^ i) & keep)``. Gathers use int64 views of the uint64 indices
    (``take`` would otherwise convert them to intp, a copy).
    """
    i = _columns(raw, table.V, bits)
    if row_base is None:
        pk = table.packed.take(i.view(np.int64))
    else:
        i += row_base.view(np.uint64)
        pk = table.packed.take(i.view(np.int64))
        i -= row_base.view(np.uint64)
    raw &= _M32  # the low 32 bits: a uniform for the column's acceptance test
    raw -= pk >> _S32  # wraps (top bit set) exactly when u < h
    keep = raw.view(np.int64)
    keep >>= 63  # all ones where the column itself is kept
    pk &= _M32  # the alias column
    i ^= pk
    i &= raw
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
    # the [n, T] outputs (tokens, log-ratios, states, mask: BATCH_BYTES_PER_ENTRY per entry)
    check_memory(
        n * model.T * BATCH_BYTES_PER_ENTRY,
        f"a Monte Carlo batch of {n} sequences of length T = {model.T}",
        "lower --n-mc or --T",
    )
    table = alias_table(np.exp(log_q))
    lr = (model.log_pi - model.log_behaviour).ravel()  # float64 [S*V], indexed by s*V + y
    T = model.T
    bits = rng.bit_generator
    tokens = np.empty((n, T), dtype=np.int64)
    tok_log_ratio = np.empty((n, T), dtype=np.float64)
    if model.S == 1 and model.end_token is None:
        # i.i.d. tokens: sample the flat [n * T] array block by block, looking each block's
        # log-ratios up while its tokens are still in cache
        flat_tok, flat_lr = tokens.reshape(-1), tok_log_ratio.reshape(-1)
        for lo in range(0, flat_tok.size, block):
            hi = min(flat_tok.size, lo + block)
            _sample_rows(table, None, bits.random_raw(hi - lo), flat_tok[lo:hi], bits)
            lr.take(flat_tok[lo:hi], out=flat_lr[lo:hi], mode="clip")
        # one state, no end token: read-only broadcast views instead of two more [n, T] arrays
        states = np.broadcast_to(np.zeros(1, dtype=np.int64), (n, T))
        mask = np.broadcast_to(np.ones(1, dtype=bool), (n, T))
        return SequenceBatch(tokens, states, mask, tok_log_ratio, None)
    # state machine: rows lo:hi advance one step at a time (the random words are drawn in the
    # same order as a plain per-step loop). Each step writes one contiguous row of time-major
    # block buffers [T, b] (a column write into [n, T] touches a cache line per entry); the
    # flat index s V + y serves both the log-ratio and the next-state lookup; the block is
    # transposed into the outputs once. take(out=..., mode="clip"): indices are in range by
    # construction (y < V, s < S), and mode="raise" would buffer the output (slower).
    states = np.empty((n, T), dtype=np.int64)
    end = model.end_token
    if end is None:  # every position is in the response: a read-only broadcast view
        mask = np.broadcast_to(np.ones(1, dtype=bool), (n, T))
    else:
        mask = np.empty((n, T), dtype=bool)
    trans = model.trans.ravel()
    V = np.int64(model.V)
    b_max = min(n, block)
    tok_b = np.empty((T, b_max), dtype=np.int64)
    st_b = np.empty((T, b_max), dtype=np.int64)
    lr_b = np.empty((T, b_max), dtype=np.float64)
    mask_b = None if end is None else np.empty((T, b_max), dtype=bool)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        b = hi - lo
        st_b[0, :b] = 0
        base = np.zeros(b, dtype=np.int64)  # s * V
        idx = np.empty(b, dtype=np.int64)
        if mask_b is not None:
            mask_b[0, :b] = True
        for t in range(T):
            y = _sample_rows(table, base, bits.random_raw(b), tok_b[t, :b], bits)
            np.add(base, y, out=idx)
            lr.take(idx, out=lr_b[t, :b], mode="clip")
            if t + 1 < T:
                s_next = trans.take(idx, out=st_b[t + 1, :b], mode="clip")
                np.multiply(s_next, V, out=base)
                if mask_b is not None:  # in the response until an end token was emitted
                    np.not_equal(y, end, out=mask_b[t + 1, :b])
                    mask_b[t + 1, :b] &= mask_b[t, :b]
        _transpose_into(tokens[lo:hi], tok_b[:, :b])
        _transpose_into(states[lo:hi], st_b[:, :b])
        if mask_b is not None:
            np.copyto(lr_b[:, :b], 0.0, where=~mask_b[:, :b])
            _transpose_into(mask[lo:hi], mask_b[:, :b])
        _transpose_into(tok_log_ratio[lo:hi], lr_b[:, :b])
    return SequenceBatch(tokens, states, mask, tok_log_ratio, None)


def _transpose_into(dst: np.ndarray, src: np.ndarray, rows: int = 512) -> None:
    """``dst[...] = src.T`` in chunks of ``rows`` rows of ``dst``, so both sides stay in cache."""
    for r in range(0, dst.shape[0], rows):
        dst[r : r + rows] = src[:, r : r + rows].T
