r"""Exact statistics for i.i.d. tokens by summing over token-count vectors (multinomial law).

For a context-free model of fixed length T (one token law b = the behaviour policy, target pi,
token log-ratio ``l_v = log pi_v - log b_v``), a sequence y enters every statistic of
:mod:`simulations.estimators` only through its **count vector** ``c`` (``c_v`` = number of tokens
equal to v, ``sum_v c_v = T``):

* ``log W = c . l`` (a sum over tokens), so every sequence rule's coefficient (``seq_only``:
  IS, REINFORCE, VESPO, GSPO, seq-TIS, seq-MIS) is a function of c;
* a token rule's coefficient at position t depends on the token's own ratio ``r_{y_t}`` (fixed by
  its identity v), on sign(A), T and, for GMPO, on a sum over the sequence's tokens: on
  ``(v, c)``. It is the same for every position holding v, ``kappa_v(c)``. (Per-decision IS,
  ``prod_{s <= t} r_s``, depends on the order: it is *not* a function of c and is refused; this
  is checked on every evaluated row, see :func:`token_coefficients`.)
* the score of pi's logits is ``g = sum_t (e_{y_t} - pi) = c - T pi``; one sequence's estimate
  is ``e = A(c) (c * kappa - pi (c . kappa))``, and the advantage is a function of c too
  (constant, or the mean token reward ``c . r / T`` minus the baseline).

The law of c is multinomial: ``log P(c) = log T! - sum_v log c_v! + c . log b`` (log-gamma,
``scipy.special.gammaln``). Summing over all ``C(T + V - 1, V - 1)`` count vectors (11,476 at
V = 3, T = 150, against 3^150 sequences) gives every expectation exactly, up to float64 rounding:

* ``gammaln`` is accurate to a few ulp of its value, so ``log P(c)`` has an absolute error of
  about ``eps (V + 2) log T!`` (~2e-13 at T = 150, ~1e-10 at T = 10^6): each term's relative
  error, hence the relative error of every sum of non-negative terms. Sums are accumulated
  chunk by chunk in float64 (relative error below ``n eps``).
* Every weight and moment is formed in log space: a term is ``exp(log P(c) + log |coefficient|
  + ...)`` with the sequence's largest log-term factored out, so W ~ e^300 or phi ~ e^-800 is
  still summed correctly; E[W] and E[W^2] are log-sum-exps.

References: the multinomial theorem and its use for sums of i.i.d. discrete variables (Feller,
"An Introduction to Probability Theory and Its Applications", Vol. 1, 3rd ed., Ch. VI.9, no
arXiv id); the closed forms it is tested against, ``E[W^a] = (sum_v b_v (pi_v/b_v)^a)^T``, are
claims M1 / M2 of VESPO (arXiv 2602.10693). PSIS k-hat: Vehtari et al., arXiv 1507.02646.

Memory: the count vectors are generated in chunks of ``chunk_rows`` rows; nothing of size
``C(T + V - 1, V - 1)`` is ever allocated (:func:`multinomial_bytes`, checked before the run).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from scipy.special import gammaln, logsumexp

from simulations.config import DEFAULT_MAX_COUNT_VECTORS, resolve_rules
from simulations.estimators import N_KHAT, _log_cbar, bound_checks, khat_or_none, no_nan
from vespo_theory.bounds import exp_or_inf, phi_max
from vespo_theory.diagnostics import khat_threshold
from vespo_theory.resources import check_memory, format_count

__all__ = [
    "n_count_vectors",
    "count_vectors_text",
    "fits_multinomial",
    "count_vector_chunks",
    "token_coefficients",
    "count_function_rules",
    "multinomial_bytes",
    "multinomial_results",
    "log_expectation",
    "log_multinomial",
    "MAX_ROW_ENTRIES",
]

#: Token rules (not ``seq_only``) are evaluated on one representative sequence per count
#: vector (its tokens sorted), ``T`` entries each: at most this many entries in all (time
#: grows linearly with them), beyond which they are not covered (skipped, or an error when
#: named).
MAX_ROW_ENTRIES = 200_000_000
#: Entries (rows x (V + T)) per chunk: 2^18 entries x ~150 bytes ~ 40 MB of working arrays.
CHUNK_ENTRIES = 1 << 18
#: Two coefficients of equal tokens of one sequence count as equal within this relative
#: difference: an elementwise rule evaluates equal inputs identically except that NumPy's SIMD
#: loop bodies and scalar tails may round the last bit differently (a few ulp ~ 1e-15); an
#: order-dependent rule such as per-decision IS differs by factors e^{l_v} (far more).
KAPPA_RTOL = 1e-12
#: |sum_c P(c) - 1| above this means the count-vector law is wrong (a wrong coefficient, a
#: missing vector): the sum of <= 1e7 terms, each with a relative error of ~eps (V + 2) log T!,
#: is within 1e-9 of 1 up to T ~ 10^5 (eps (V + 2) log T! ~ 1e-10 there, n eps ~ 2e-9 at
#: n = 1e7 is the pessimistic worst case of naive summation; pairwise sums are far better).
TOTAL_PROB_TOL = 1e-8


def n_count_vectors(V: int, T: int) -> int:
    """C(T + V - 1, V - 1): the number of count vectors (compositions of T into V parts)."""
    return math.comb(T + V - 1, V - 1)


def _log10_count(V: int, T: int) -> float:
    return float((gammaln(T + V) - gammaln(T + 1) - gammaln(V)) / math.log(10))


def count_vectors_text(V: int, T: int) -> str:
    """C(T + V - 1, V - 1) in 3 significant figures (any size), for messages."""
    lg = _log10_count(V, T)
    if lg < 300:
        return format_count(n_count_vectors(V, T))
    return f"10^{lg:.6g}"


def fits_multinomial(V: int, T: int, max_count_vectors: int = DEFAULT_MAX_COUNT_VECTORS) -> bool:
    """C(T + V - 1, V - 1) <= max_count_vectors, without forming a huge binomial."""
    if _log10_count(V, T) > math.log10(max_count_vectors) + 1:
        return False
    return n_count_vectors(V, T) <= max_count_vectors


# --------------------------------------------------------------------------- count vectors


class _Acc:
    """Running log-sum-exp."""

    def __init__(self):
        self.v = -math.inf

    def add(self, x: np.ndarray) -> None:
        if x.size:
            self.v = float(np.logaddexp(self.v, logsumexp(x)))


def _extend(rows: np.ndarray, T: int) -> np.ndarray:
    """Every one-part extension of partial count vectors ``rows`` [n, k] (sums <= T): each row
    of sum s is followed by 0..T-s, in order, [sum_rows (T - s + 1), k + 1]."""
    reps = T - rows.sum(axis=1) + 1
    starts = np.cumsum(reps) - reps
    col = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(starts, reps)
    return np.hstack([np.repeat(rows, reps, axis=0), col[:, None]])


def _complete(rows: np.ndarray, T: int, V: int) -> np.ndarray:
    """All count vectors that start with the partial rows [n, k], k < V, lexicographic.

    Level by level only the new part and a pointer to its parent row are made (O(n) per
    level, not a copy of the whole [n, k] prefix), then the columns are read back along the
    pointers: O(n V) in all."""
    k0 = rows.shape[1]
    s = rows.sum(axis=1)
    levels = []
    for _ in range(k0, V - 1):
        if bool((s == T).all()):
            break  # every row is complete: the remaining parts are all 0
        reps = T - s + 1
        parent = np.repeat(np.arange(s.size, dtype=np.int64), reps)
        col = np.arange(parent.size, dtype=np.int64) - (np.cumsum(reps) - reps)[parent]
        s = s[parent] + col
        levels.append((col, parent))
    out = np.zeros((s.size, V), dtype=np.int64)
    out[:, V - 1] = T - s
    idx = np.arange(s.size, dtype=np.int64)
    for k in range(k0 + len(levels) - 1, k0 - 1, -1):
        col, parent = levels[k - k0]
        out[:, k] = col[idx]
        idx = parent[idx]
    out[:, :k0] = rows[idx]
    return out


def _completions(rows: np.ndarray, T: int, V: int) -> np.ndarray:
    """How many count vectors start with each partial row: C(T - s + V - k - 1, V - k - 1)
    (float64: used only to cut the rows into groups)."""
    left = V - rows.shape[1]
    r = (T - rows.sum(axis=1)).astype(np.float64)
    return np.exp(gammaln(r + left) - gammaln(r + 1) - gammaln(left))


def _blocks(rows: np.ndarray, T: int, V: int, size: int) -> Iterator[np.ndarray]:
    """The completions of the partial rows in order, in blocks of < 2 ``size`` vectors: rows
    are grouped so that each group completes to about ``size`` vectors; a row that alone
    completes to more is extended by one part and its extensions grouped in turn."""
    if rows.shape[1] == V - 1:
        yield _complete(rows, T, V)
        return
    n_comp = _completions(rows, T, V)
    before = np.cumsum(n_comp) - n_comp
    group = np.floor(before / size).astype(np.int64)
    big = n_comp > size
    # group boundaries: where the group id changes, and around every oversized row
    cut = np.flatnonzero((np.diff(group) != 0) | big[1:] | big[:-1]) + 1
    for part in np.split(np.arange(rows.shape[0]), cut):
        sub = rows[part]
        if big[part[0]]:
            yield from _blocks(_extend(sub, T), T, V, size)
        else:
            yield _complete(sub, T, V)


def count_vector_chunks(T: int, V: int, rows: int) -> Iterator[np.ndarray]:
    """All count vectors c (c_v >= 0, sum c = T) in lexicographic order, as [n, V] int64 chunks
    of fewer than ``2 rows + T`` vectors each; nothing of the size of the whole set is made."""
    if V == 1:
        yield np.array([[T]], dtype=np.int64)
        return
    first = np.arange(T + 1, dtype=np.int64)[:, None]
    if V == 2:
        for lo in range(0, T + 1, max(rows, 1)):
            c0 = first[lo : lo + rows, 0]
            yield np.stack([c0, T - c0], axis=1)
        return
    yield from _blocks(first, T, V, max(rows, 1))


def log_multinomial(counts: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """log P(c) = log T! - sum_v log c_v! + sum_v c_v log b_v (terms with c_v = 0 are 0, also
    where b_v = 0)."""
    cf = counts.astype(np.float64)
    T = cf[0].sum() if cf.shape[0] else 0.0
    with np.errstate(invalid="ignore"):
        tok = np.where(counts > 0, cf * log_b[None, :], 0.0).sum(axis=1)
    return gammaln(T + 1.0) - gammaln(cf + 1.0).sum(axis=1) + tok


def log_expectation(
    log_b: np.ndarray,
    log_pi: np.ndarray,
    T: int,
    log_f,
    max_count_vectors: int = DEFAULT_MAX_COUNT_VECTORS,
) -> float:
    """log E_b[f(log W)] for a non-negative f given in log space (``log_f(log_w)`` -> log f,
    -inf for 0), by the count-vector sum: a log-sum-exp of ``log P(c) + log_f(c . l)``.

    ``log_f = lambda x: a * x`` gives log E[W^a] (closed form T log sum_v b_v (pi_v/b_v)^a);
    ``kernels.log_phi`` gives log E[phi(W)]. Same error statement as the module's sums.
    """
    log_b = np.asarray(log_b, dtype=np.float64).ravel()
    l = np.asarray(log_pi, dtype=np.float64).ravel() - log_b
    V = log_b.size
    if not fits_multinomial(V, T, max_count_vectors):
        raise ValueError(
            f"C(T + V - 1, V - 1) = {count_vectors_text(V, T)} count vectors (V = {V}, T = {T}) "
            f"> max_count_vectors = {format_count(max_count_vectors)}; lower T"
        )
    acc_p, acc_f = _Acc(), _Acc()
    for counts in count_vector_chunks(T, V, _chunk_rows(V, T, False)):
        lp = log_multinomial(counts, log_b)
        acc_p.add(lp)
        acc_f.add(lp + np.asarray(log_f(counts.astype(np.float64) @ l), dtype=np.float64))
    return acc_f.v - acc_p.v


# --------------------------------------------------------------------------- token rules


def token_coefficients(rule, counts: np.ndarray, l: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """kappa [n, V]: the coefficient of a token v in a sequence with counts c (0 where c_v = 0).

    Evaluates the registry's own coefficient (:meth:`~vespo_theory.rules.Rule.coefficient_from_
    tokens`) on one representative sequence per count vector (tokens sorted: c_0 zeros, then
    c_1 ones, ...), then checks that every token of one identity got the same coefficient
    (within :data:`KAPPA_RTOL`): a rule that depends on the position or the order of the tokens
    (per-decision IS) is refused with a ValueError, since its sum over tokens is not a function
    of c.
    """
    n, V = counts.shape
    T = int(counts[0].sum())
    tokens = np.repeat(np.tile(np.arange(V), n), counts.ravel()).reshape(n, T)
    x = l[tokens]
    del tokens
    mask = np.ones((n, T), dtype=bool)
    c, _ = rule.coefficient_from_tokens(x, mask, pos, np.full(n, float(T)))
    del x, mask
    flat = np.asarray(c, dtype=np.float64).ravel()
    nz = counts.ravel() > 0
    starts = (np.cumsum(counts.ravel()) - counts.ravel())[nz]  # flat start of each token block
    hi = np.maximum.reduceat(flat, starts)
    lo = np.minimum.reduceat(flat, starts)
    bad = np.abs(hi - lo) > KAPPA_RTOL * np.maximum(np.abs(hi), np.abs(lo))
    if bad.any():
        raise ValueError(
            f"rule {rule.name} gives equal tokens of one sequence different coefficients (it "
            "depends on their order or position), so it is not a function of the token counts: "
            "the multinomial method cannot compute it; use --method enumeration or --method mc"
        )
    kappa = np.zeros(n * V)
    kappa[nz] = hi
    return kappa.reshape(n, V)


def _probe_counts(T: int, V: int) -> np.ndarray:
    """A few count vectors that put repeated tokens of several identities in one sequence."""
    bal = np.full(V, T // V, dtype=np.int64)
    bal[: T % V] += 1
    two = np.zeros(V, dtype=np.int64)
    two[0], two[1] = T - T // 2, T // 2
    return np.stack([bal, two])


def count_function_rules(rules, l: np.ndarray, T: int, n_vectors: int) -> dict[str, str]:
    """The rules of ``rules`` the multinomial method cannot compute, with the reason: token
    rules when ``n_vectors * T`` passes :data:`MAX_ROW_ENTRIES`, and rules whose coefficient is
    not a function of the counts on probe sequences (both signs of A). The run itself checks
    every row again (:func:`token_coefficients`)."""
    out = {}
    for rule in rules:
        if rule.seq_only:
            continue
        if n_vectors * T > MAX_ROW_ENTRIES:
            out[rule.name] = (
                f"token rule on {format_count(n_vectors)} count vectors x T = {T} tokens "
                f"> {format_count(MAX_ROW_ENTRIES)} evaluations"
            )
            continue
        probe = _probe_counts(T, l.size)
        try:
            for sign in (True, False):
                token_coefficients(rule, probe, l, np.full(probe.shape[0], sign))
        except ValueError:
            out[rule.name] = "its coefficient depends on the order of the tokens"
    return out


# --------------------------------------------------------------------------- the sums


def _chunk_rows(V: int, T: int, token_rules: bool) -> int:
    return max(1, CHUNK_ENTRIES // (V + (T if token_rules else 0)))


def multinomial_bytes(V: int, T: int, token_rules: bool) -> int:
    """Peak bytes of :func:`multinomial_results`. A chunk holds fewer than ``2 rows + T + 1``
    count vectors (:func:`count_vector_chunks`; never more than all of them). Per vector: ~4
    [V] arrays of 8 bytes (the counts, their floats, log-gamma and the score; the generator's
    column and parent pointers) and ~32 scalars (log P, log W, A, the rule's coefficient and
    its log, the weighted terms); with token rules also the representative sequence, T entries
    of ~48 bytes (tokens int64, ratios float64, mask, the coefficient, the rule's temporaries
    freed one by one, the flattened block check). Plus the k-hat draws (N_KHAT doubles per rule
    and for log W, at most 40 rules) and 4 MiB of fixed overhead. tracemalloc saw 250 bytes per
    vector at V = 3 (seq rules), 16 bytes per token entry (GMPO, T = 600); checked in
    tests/test_exact_multinomial.py."""
    rows = _chunk_rows(V, T, token_rules)
    per_chunk = min(n_count_vectors(V, T), 2 * rows + T + 1)
    per_row = 8 * (4 * V + 32) + (48 * T if token_rules else 0)
    return per_chunk * per_row + 8 * 41 * N_KHAT + (1 << 22)


def multinomial_results(
    log_b: np.ndarray,
    log_pi: np.ndarray,
    T: int,
    rules,
    *,
    adv_constant: float | None = None,
    reward: np.ndarray | None = None,
    baseline: float = 0.0,
    max_count_vectors: int = DEFAULT_MAX_COUNT_VECTORS,
    seed: int = 0,
    progress=None,
) -> tuple[list[dict], dict, np.ndarray | None]:
    """Exact per-rule statistics of a context-free model of length T by the count-vector sum.

    ``log_b``: the sampling (behaviour) policy's token log-probabilities, ``log_pi`` the
    target's ([V] each, finite). The advantage: ``adv_constant`` (A constant), else ``reward``
    (A = c . r / T - ``baseline``), else none: then the advantage-dependent statistics
    (``bias_norm``, ``cosine``, ``var_trace``, check B3) are None and the sign branch A >= 0 is
    used (``summary["advantage"] = "none"``).

    Returns ``(records, summary, true_grad)``: records with the keys of
    :data:`simulations.estimators.RESULT_KEYS` (``method`` = "multinomial"), the raw-weight
    summary (E_W, log_E_W2, E_W2, ess_W, khat_W, count_vectors, total_prob, E_g2) and the true
    gradient grad E_pi[A] (closed form: 0 for constant A, pi * r - pi (pi . r) for the reward
    advantage; None without an advantage).
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    T = int(T)
    log_b = np.asarray(log_b, dtype=np.float64).ravel()
    log_pi = np.asarray(log_pi, dtype=np.float64).ravel()
    if log_b.shape != log_pi.shape or log_b.size < 2:
        raise ValueError(f"log_b {log_b.shape} and log_pi {log_pi.shape}: two equal [V], V >= 2")
    if not (np.isfinite(log_b).all() and np.isfinite(log_pi).all()):
        raise ValueError(
            "the multinomial method needs b > 0 and pi > 0 on every token (finite log-ratios)"
        )
    V = log_b.size
    if not fits_multinomial(V, T, max_count_vectors):
        raise ValueError(
            f"the multinomial method needs C(T + V - 1, V - 1) = {count_vectors_text(V, T)} "
            f"count vectors (V = {V}, T = {T}), more than --max-count-vectors = "
            f"{format_count(max_count_vectors)}; lower --T or --V, or raise --max-count-vectors"
        )
    rules = resolve_rules(rules)
    n_vec = n_count_vectors(V, T)
    l = log_pi - log_b
    pi = np.exp(log_pi)
    bad = count_function_rules(rules, l, T, n_vec)
    if bad:
        name, why = next(iter(bad.items()))
        raise ValueError(
            f"rule {name} is not covered by the multinomial method ({why}); use --method "
            "enumeration (V^T small) or --method mc"
        )
    token_rules = any(not r.seq_only for r in rules)
    check_memory(
        multinomial_bytes(V, T, token_rules),
        f"the multinomial sum over {format_count(n_vec)} count vectors (V = {V}, T = {T})",
        "lower --T or --V",
    )
    if adv_constant is not None:
        mode, a_const = "constant", float(adv_constant)
        if not math.isfinite(a_const) or a_const == 0:
            raise ValueError(f"adv_constant must be finite and nonzero, got {adv_constant!r}")
    elif reward is not None:
        mode = "reward"
        r = np.asarray(reward, dtype=np.float64).ravel()
        if r.shape != (V,) or not np.isfinite(r).all():
            raise ValueError(f"reward must be {V} finite numbers, got {r.tolist()}")
    else:
        mode = "none"
    has_adv = mode != "none"

    rng = np.random.default_rng(seed)
    u_draws = np.sort(rng.random(N_KHAT))  # inverse-CDF draws of the exact law, for k-hat
    cum = 0.0
    nxt = 0  # the next draw not yet placed
    draw_lw: list[np.ndarray] = []
    draw_lc: dict[str, list[np.ndarray]] = {r.name: [] for r in rules}

    acc_p, acc_w, acc_w2 = _Acc(), _Acc(), _Acc()
    st = {
        r.name: {
            "E_phi": 0.0,
            "E_phi2": 0.0,
            "a1": _Acc(),
            "a2": _Acc(),
            "max_lc": -math.inf,
            "mean": np.zeros(V),
            "e2": 0.0,
        }
        for r in rules
    }
    e_g2 = 0.0
    signs_seen = set()
    max_abs_a = 0.0  # for no_nan's message
    rows = _chunk_rows(V, T, token_rules)
    tail = {}  # the last count vector's log W and log cbar (for draws past the summed mass)
    for counts in count_vector_chunks(T, V, rows):
        cf = counts.astype(np.float64)
        lp = log_multinomial(counts, log_b)
        lw = cf @ l
        acc_p.add(lp)
        acc_w.add(lp + lw)
        acc_w2.add(lp + 2 * lw)
        if mode == "constant":
            A = np.full(counts.shape[0], a_const)
        elif mode == "reward":
            A = cf @ r / T - baseline
        else:
            A = np.zeros(counts.shape[0])
        pos = A >= 0
        signs_seen.update(np.unique(pos).tolist())
        max_abs_a = max(max_abs_a, float(np.max(np.abs(A))))
        with np.errstate(divide="ignore"):
            la = np.log(np.abs(A))
        sa = np.sign(A)
        if has_adv:
            g = cf - T * pi[None, :]  # the score of pi's logits, sum_t (e_{y_t} - pi)
            g2 = np.einsum("ij,ij->i", g, g)
            with np.errstate(over="ignore", invalid="ignore"):
                e_g2 += float(np.exp(lp + 2 * la) @ g2)
        if token_rules:
            with np.errstate(divide="ignore"):
                log_cf = np.log(cf)
        # k-hat draws that fall into this chunk (inverse CDF of the running mass)
        cs = cum + np.cumsum(np.exp(lp))
        take = nxt + int(np.searchsorted(u_draws[nxt:], cs[-1], side="left"))
        idx = np.searchsorted(cs, u_draws[nxt:take], side="right")
        nxt, cum = take, float(cs[-1])
        draw_lw.append(lw[idx])
        sgn_adv = np.where(pos, 1.0, -1.0)
        for rule in rules:
            s = st[rule.name]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                if rule.seq_only:
                    # one coefficient per sequence: e = A kappa g, cbar = kappa (O(n) work)
                    cbar = np.asarray(rule.seq_coefficient(lw, sgn_adv, T), dtype=np.float64)
                    log_cbar = np.asarray(_log_cbar(rule, cbar, lw, sgn_adv), dtype=np.float64)
                    sc = np.sign(cbar)
                    if has_adv:
                        s["mean"] += (sa * sc * np.exp(lp + la + log_cbar)) @ g
                        s["e2"] += float(np.exp(lp + 2 * (la + log_cbar)) @ g2)
                else:
                    kappa = token_coefficients(rule, counts, l, pos)
                    # log |c_v kappa_v|, the row's largest factored out: ut = sign c kappa e^-m
                    lu = np.where(counts > 0, log_cf + np.log(np.abs(kappa)), -np.inf)
                    m = lu.max(axis=1)
                    m = np.where(np.isfinite(m), m, 0.0)
                    ut = np.sign(kappa) * np.exp(lu - m[:, None])
                    stot = ut.sum(axis=1)
                    log_cbar = m + np.log(np.abs(stot)) - math.log(T)
                    sc = np.sign(stot)
                    if has_adv:
                        d = ut - pi[None, :] * stot[:, None]
                        s["mean"] += (sa * np.exp(lp + la + m)) @ d
                        s["e2"] += float(np.exp(lp + 2 * (la + m)) @ np.einsum("ij,ij->i", d, d))
                s["E_phi"] += float(np.sum(sc * np.exp(lp + log_cbar)))
                s["E_phi2"] += float(np.sum(np.exp(lp + 2 * log_cbar)))
                s["a1"].add(lp + log_cbar)
                s["a2"].add(lp + 2 * log_cbar)
                s["max_lc"] = max(s["max_lc"], float(np.max(np.where(sc > 0, log_cbar, -np.inf))))
            draw_lc[rule.name].append(log_cbar[idx])
            tail[rule.name] = float(log_cbar[-1])
        tail["log W"] = float(lw[-1])
    # draws past the computed total mass (it is 1 up to rounding) go to the last vector
    left = N_KHAT - nxt
    total = math.exp(acc_p.v)
    if abs(total - 1.0) > TOTAL_PROB_TOL:
        raise ValueError(
            f"internal error: the count-vector probabilities sum to {total!r}, not 1 (V = {V}, "
            f"T = {T}); the multinomial law is wrong"
        )
    # Normalise by the computed total: the rounding of log T! (the largest log-gamma, ~eps
    # log T! ~ 1e-13 at T = 150) is common to every term and cancels; what remains is the
    # per-term rounding of sum_v log c_v! (same size, but of varying sign: it averages out).
    lz = acc_p.v
    norm = math.exp(-lz)
    e_g2 *= norm
    for s in st.values():
        for key in ("E_phi", "E_phi2", "e2"):
            s[key] *= norm
        s["mean"] = s["mean"] * norm
        s["a1"].v -= lz
        s["a2"].v -= lz
        # (max_lc is a maximum over the support, not an expectation: not normalised)
    if progress is not None:
        progress("multinomial sum")

    if mode == "constant":
        true_grad = np.zeros(V)
    elif mode == "reward":
        true_grad = pi * r - pi * float(pi @ r)
    else:
        true_grad = None
    with np.errstate(over="ignore", invalid="ignore"):  # rewards of 1e300: no_nan refuses
        g_norm = float(np.linalg.norm(true_grad)) if true_grad is not None else 0.0

    def _draws(parts: list[np.ndarray], key: str) -> np.ndarray:
        x = np.concatenate(parts)
        return np.concatenate([x, np.full(left, tail[key])]) if left else x

    lw_draws = _draws(draw_lw, "log W")
    log_e_w, log_e_w2 = acc_w.v - lz, acc_w2.v - lz
    khat_w = khat_or_none(lw_draws)
    summary = {
        "E_W": exp_or_inf(log_e_w),
        "log_E_W2": log_e_w2,
        "E_W2": exp_or_inf(log_e_w2),
        "ess_W": math.exp(2 * log_e_w - log_e_w2),
        "khat_W": khat_w,
        "khat_W_thresh": None if khat_w is None else khat_threshold(N_KHAT),
        "count_vectors": n_vec,
        "total_prob": total,
        "advantage": mode,
        "E_g2": e_g2 if has_adv else None,
    }
    records = []
    for rule in rules:
        s = st[rule.name]
        E_phi, E_phi2 = s["E_phi"], s["E_phi2"]
        lc_draws = _draws(draw_lc[rule.name], rule.name)
        khat = khat_or_none(lc_draws)
        ess = 0.0 if s["a1"].v == -math.inf else math.exp(2 * s["a1"].v - s["a2"].v)
        rec = {
            "rule": rule.name,
            "method": "multinomial",
            "bias_norm": None,
            "cosine": None,
            "var_trace": None,
            "E_phi": E_phi,
            "E_phi2": E_phi2,
            "ess": ess,
            "khat": khat,
            "khat_thresh": None if khat is None else khat_threshold(N_KHAT),
            "bound_M2": None,
            "bound_holds": None,
        }
        var_trace = None
        if has_adv:
            mean = s["mean"]
            # overflow (huge advantages or weights) is not warned about: no_nan refuses its NaN
            with np.errstate(over="ignore", invalid="ignore"):
                var_trace = max(s["e2"] - float(mean @ mean), 0.0)
                m_norm = float(np.linalg.norm(mean))
                rec["bias_norm"] = float(np.linalg.norm(mean - true_grad))
                rec["cosine"] = (
                    float(mean @ true_grad / (m_norm * g_norm))
                    if m_norm > 0 and g_norm > 0
                    else None
                )
            rec["var_trace"] = var_trace
        if rule.name == "vespo":
            p = rule.params
            Ms = []
            if True in signs_seen:
                Ms.append(phi_max(p.k_pos, p.lam_pos))
            if False in signs_seen:
                Ms.append(phi_max(p.k_neg, p.lam_neg))
            M = max(Ms)
            b1 = exp_or_inf(s["max_lc"])
            checks = bound_checks(
                M, b1, E_phi, E_phi2, var_trace if has_adv else 0.0, e_g2 if has_adv else 0.0
            )
            if not has_adv:
                del checks["B3"]  # needs the advantage: E[A^2 ||g||^2]
            rec["bound_M2"] = M * M
            rec["bound_holds"] = all(c["holds"] for c in checks.values())
            rec["bounds"] = checks
        no_nan(rec, np.array([max_abs_a]))
        records.append(rec)
        if progress is not None:
            progress(rule.name)
    return records, summary, true_grad
