r"""Finite-state autoregressive token policies with exact gradients, staleness and engine mismatch.

Every model here is a finite-state machine: a state ``s_t`` (``S`` of them) summarises the prefix,
the next token is drawn from ``softmax(logits[s_t])`` and the state moves to
``trans[s_t, y_t]``. Three kinds (``ARConfig.policy``):

* context-free: one state, every position uses the same distribution (log W is a sum of T
  i.i.d. token log-ratios: the lattice method applies);
* markov: state = previous token (state 0 at the start, ``1 + v`` after token v);
* prefix: state = rolling hash ``(s * 1000003 + v + 1) mod n_hash`` of the whole prefix.

Target pi_theta, behaviour mu (= pi_old, the stale trainer) and optionally an engine sampler are
all given by logits tables [S, V], so the score is exact:
``grad_{theta[s]} log pi(y | s) = e_y - pi(. | s)`` and zero for the other rows. The parameter
vector is pi's logits table flattened as ``s * V + v`` (``dim = S * V``).

Random length: with ``end_token`` the token ``V - 1`` ends the sequence (it is the last response
token); later positions are masked. Enumeration then still lists all V^T token strings, giving
the masked positions a uniform 1/V factor so that every truncated sequence keeps its probability.

Importance weight: ``tok_log_ratio = log pi - log b`` where b is the sampler when there is engine
mismatch (three-policy setting: W = (pi/pi_old)(pi_old/sampler)) and mu otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from simulations.config import DEFAULT_MAX_SEQUENCES, ARConfig
from vespo_theory.resources import check_memory, format_bytes, format_count

__all__ = [
    "ARModel",
    "SequenceBatch",
    "make_ar_model",
    "model_from_probs",
    "enumerate_sequences",
    "advantages",
    "round_logits",
    "MAX_ENUMERATION",
    "n_sequences_text",
    "fits_enumeration",
    "table_bytes",
    "enumeration_bytes",
    "BATCH_BYTES_PER_ENTRY",
]

MAX_ENUMERATION = DEFAULT_MAX_SEQUENCES

# Memory estimates (bytes), counted from the arrays the code below allocates and checked against
# tracemalloc's peak in tests/test_memory.py (estimate >= measured peak, within 3x of it).
#
# Tables [S, V] of 8-byte entries: the model keeps trans (int64), pi's and mu's logits (+ the
# sampler's); while they are built the drift direction d and one temporary of its product are
# alive, and later the log-softmax properties (log_pi, log_behaviour, pi: each a new table plus
# scipy's temporaries of the same size), the log-ratio table and the alias tables (prob, alias,
# thresholds, packed) are made while the model is alive. tracemalloc saw 13-14 tables at the peak
# (markov V = 300, every drift, with and without bf16 mismatch): 16, plus N more for the
# "random" drift (a [N, S, V] draw).
TABLES_PEAK = 16
# A sequence batch [n, T] keeps tokens, states (int64), tok_log_ratio (float64) and the mask
# (bool): 25 bytes per entry. While it is built (enumeration) the token digits (a temporary of
# the tokens' size), the log-probabilities lb and lp, lp - lb and a log_q temporary are alive too:
# 25 + 5 * 8 = 65 bytes per entry at the peak.
BATCH_BYTES_PER_ENTRY = 25
ENUMERATION_BYTES_PER_ENTRY = 65


def table_bytes(cfg: ARConfig) -> int:
    """Peak bytes of the [S, V] tables of ``cfg``'s model (see TABLES_PEAK)."""
    S = _n_states(cfg.policy, cfg.V, cfg.n_hash) if cfg.mu_probs is None else 1
    extra = cfg.staleness if cfg.drift == "random" and cfg.mu_probs is None else 0
    return 8 * S * cfg.V * (TABLES_PEAK + extra)


def _n_states(policy: str, V: int, n_hash: int) -> int:
    return {"context-free": 1, "markov": V + 1}.get(policy, n_hash)


def fits_enumeration(V: int, T: int, max_sequences: int) -> bool:
    """V^T <= max_sequences, without computing V^T when it is astronomically large."""
    if T * math.log2(V) > math.log2(max_sequences) + 1:
        return False
    return V**T <= max_sequences


def n_sequences_text(V: int, T: int) -> str:
    """V^T in 3 significant figures, for messages (any size: format_count, or log10 beyond)."""
    if T * math.log2(V) < 1_000_000:
        return format_count(V**T)
    return f"10^{T * math.log10(V):.6g}"


def enumeration_bytes(V: int, T: int) -> int | float:
    """Peak bytes of :func:`enumerate_sequences` (see ENUMERATION_BYTES_PER_ENTRY), plus one
    [V^T] index and probability vector; ``inf`` when V^T is astronomically large."""
    if T * math.log2(V) > 200:
        return math.inf
    count = V**T
    return count * (ENUMERATION_BYTES_PER_ENTRY * T + 24)


_HASH_MULT = 1_000_003


@dataclass(frozen=True, eq=False)
class ARModel:
    """A finite-state autoregressive model pair (pi, mu) and, optionally, an engine sampler."""

    V: int
    T: int
    kind: str
    trans: np.ndarray  # [S, V] int64, next state
    logits_pi: np.ndarray  # [S, V] target pi_theta
    logits_mu: np.ndarray  # [S, V] pi_old
    logits_sampler: np.ndarray | None  # [S, V] engine sampler, None = mu samples
    reward: np.ndarray  # [V] token reward
    end_token: int | None = None
    lattice_step: float | None = None  # exact lattice step of the token log-ratios, if known

    @property
    def S(self) -> int:
        return self.trans.shape[0]

    @property
    def dim(self) -> int:
        """Length of the parameter vector (pi's logits table, flattened)."""
        return self.S * self.V

    @property
    def log_pi(self) -> np.ndarray:
        return log_softmax(self.logits_pi, axis=-1)

    @property
    def log_mu(self) -> np.ndarray:
        return log_softmax(self.logits_mu, axis=-1)

    @property
    def log_behaviour(self) -> np.ndarray:
        """log-probabilities of the policy that samples the sequences (sampler or mu)."""
        src = self.logits_mu if self.logits_sampler is None else self.logits_sampler
        return log_softmax(src, axis=-1)

    @property
    def pi(self) -> np.ndarray:
        return np.exp(self.log_pi)


def round_logits(logits: np.ndarray, precision: str) -> np.ndarray:
    """``logits`` rounded to bf16 (round to nearest even, 8 mantissa bits) or fp16, as float64."""
    if precision == "none":
        return np.array(logits, dtype=np.float64)
    if precision == "fp16":
        return np.asarray(logits, dtype=np.float16).astype(np.float64)
    if precision == "bf16":
        u = np.asarray(logits, dtype=np.float32).view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return u.astype(np.uint32).view(np.float32).astype(np.float64)
    raise ValueError(f"precision must be one of none, bf16, fp16; got {precision!r}")


def _transitions(policy: str, V: int, n_hash: int) -> np.ndarray:
    if policy == "context-free":
        return np.zeros((1, V), dtype=np.int64)
    if policy == "markov":
        return np.broadcast_to(np.arange(1, V + 1, dtype=np.int64), (V + 1, V)).copy()
    s = np.arange(n_hash, dtype=np.int64)[:, None]
    v = np.arange(V, dtype=np.int64)[None, :]
    return (s * _HASH_MULT + v + 1) % n_hash


def _check_probs(p, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"{name} must be a list of at least 2 probabilities, got {p.tolist()}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {p.tolist()}")
    # 1e-9: room for the rounding of probabilities typed with ~10 significant digits.
    if abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(
            f"{name} must sum to 1, but sums to {p.sum():.12g}; rescale it (divide by its sum)"
        )
    return p / p.sum()


def model_from_probs(mu_probs, pi_probs, T: int, reward=None, end_token=False) -> ARModel:
    """A context-free model with the token distributions given directly.

    Checks: both sum to 1; mu > 0 wherever pi > 0 (else W is undefined: pi is not absolutely
    continuous w.r.t. mu); pi > 0 everywhere (pi is parametrised by finite logits).
    """
    mu = _check_probs(mu_probs, "mu")
    pi = _check_probs(pi_probs, "pi")
    if mu.size != pi.size:
        raise ValueError(f"mu has {mu.size} entries but pi has {pi.size}; they must match")
    bad = np.flatnonzero((mu == 0) & (pi > 0))
    if bad.size:
        raise ValueError(
            f"mu = 0 where pi > 0 (token {int(bad[0])}): the importance weight pi/mu is "
            "undefined there; give mu positive probability on every token pi can emit"
        )
    if (pi == 0).any():
        raise ValueError(
            f"pi = 0 at token {int(np.flatnonzero(pi == 0)[0])}: pi is parametrised by finite "
            "logits, so every probability must be > 0 (use a tiny value instead)"
        )
    V = mu.size
    r = np.zeros(V) if reward is None else np.asarray(reward, dtype=np.float64)
    if r.shape != (V,):
        raise ValueError(f"reward must have one entry per token (V = {V}), got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError(f"reward (--reward) must be finite numbers, got {r.tolist()}")
    with np.errstate(divide="ignore"):
        logits_mu = np.log(mu)[None, :]
    return ARModel(
        V=V,
        T=T,
        kind="context-free",
        trans=np.zeros((1, V), dtype=np.int64),
        logits_pi=np.log(pi)[None, :],
        logits_mu=logits_mu,
        logits_sampler=None,
        reward=r,
        end_token=V - 1 if end_token else None,
    )


def _policy_gradient_step(logits: np.ndarray, reward: np.ndarray, step: float) -> np.ndarray:
    """One exact ascent step on each state's expected token reward E_{pi(.|s)}[r]."""
    p = np.exp(log_softmax(logits, axis=-1))
    return logits + step * p * (reward[None, :] - (p @ reward)[:, None])


def make_ar_model(cfg: ARConfig) -> ARModel:
    """Build the (pi, mu, sampler) triple of ``cfg`` (see :class:`~simulations.config.ARConfig`).

    Seeded: one child generator each for the logits, the reward, the drift and the flips (children
    0-2 and 4 of ``SeedSequence(seed)``), so that changing N, drift or mismatch never changes
    pi's logits or the reward.
    """
    nb = table_bytes(cfg)
    S = _n_states(cfg.policy, cfg.V, cfg.n_hash) if cfg.mu_probs is None else 1
    check_memory(
        nb,
        f"building the {cfg.policy} model ({nb // (8 * S * cfg.V)} [S, V] tables of "
        f"{S} x {cfg.V} entries, {format_bytes(8 * S * cfg.V)} each, at the peak)",
        "lower --V"
        + (
            " (the markov state is the previous token: V + 1 states)"
            if cfg.policy == "markov"
            else ""
        )
        + (" or --n-hash" if cfg.policy == "prefix" else "")
        + (" or --staleness (the random drift draws N tables)" if cfg.drift == "random" else ""),
    )
    if cfg.mu_probs is not None:
        model = model_from_probs(cfg.mu_probs, cfg.pi_probs, cfg.T, cfg.reward, cfg.end_token)
        lattice_step = None
        base = model.logits_mu
        trans, logits_pi, reward = model.trans, model.logits_pi, model.reward
        logits_mu = base
    else:
        g_logits, g_reward, g_drift = (
            np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3)
        )
        trans = _transitions(cfg.policy, cfg.V, cfg.n_hash)
        S, V, N, eps = trans.shape[0], cfg.V, cfg.staleness, cfg.drift_size
        logits_pi = cfg.logit_scale * g_logits.standard_normal((S, V))
        reward = (
            np.asarray(cfg.reward, dtype=np.float64)
            if cfg.reward is not None
            else g_reward.standard_normal(V)
        )
        lattice_step = None
        if cfg.drift == "steps":
            logits_mu = logits_pi.copy()
            for _ in range(N):
                logits_pi = _policy_gradient_step(logits_pi, reward, cfg.step_size)
        elif cfg.drift == "fixed":
            d = g_drift.standard_normal((S, V))
            d /= np.sqrt(np.mean(d * d))
            logits_mu = logits_pi - N * eps * d
        elif cfg.drift == "random":
            d = g_drift.standard_normal((max(N, 1), S, V))[:N].sum(axis=0)
            logits_mu = logits_pi - eps * d
        else:  # lattice
            d = g_drift.integers(-1, 2, size=(S, V)).astype(np.float64)
            logits_mu = logits_pi - (N * eps) * d
            lattice_step = N * eps if N * eps > 0 else None
    sampler = None
    if cfg.mismatch != "none" or cfg.flip_prob > 0:
        g_flip = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(5)[4])
        sampler = round_logits(logits_mu, cfg.mismatch)
        flips = g_flip.random(sampler.shape) < cfg.flip_prob
        jumps = cfg.flip_scale * g_flip.standard_t(cfg.flip_df, size=sampler.shape)
        sampler = np.where(flips, sampler + jumps, sampler)
        lattice_step = None
    return ARModel(
        V=cfg.V,
        T=cfg.T,
        kind=cfg.policy,
        trans=trans,
        logits_pi=logits_pi,
        logits_mu=logits_mu,
        logits_sampler=sampler,
        reward=reward,
        end_token=cfg.V - 1 if cfg.end_token else None,
        lattice_step=lattice_step,
    )


@dataclass(frozen=True, eq=False)
class SequenceBatch:
    """Sequences with their states, response mask, token log-ratios and probability weights.

    ``weight`` holds the exact probabilities (enumeration; they sum to 1) or ``None`` for an
    i.i.d. Monte Carlo sample (each row weighs 1/n).
    """

    tokens: np.ndarray  # [n, T] int64
    states: np.ndarray  # [n, T] int64
    mask: np.ndarray  # [n, T] bool
    tok_log_ratio: np.ndarray  # [n, T] float64, 0 where masked
    weight: np.ndarray | None  # [n] or None

    @property
    def n(self) -> int:
        return self.tokens.shape[0]

    @property
    def seq_log_w(self) -> np.ndarray:
        return self.tok_log_ratio.sum(axis=1)

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(axis=1)


def states_and_mask(model: ARModel, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state before each token and the response mask of a [n, T] token array."""
    n, T = tokens.shape
    states = np.zeros((n, T), dtype=np.int64)
    s = np.zeros(n, dtype=np.int64)
    for t in range(T):
        states[:, t] = s
        s = model.trans[s, tokens[:, t]]
    if model.end_token is None:
        mask = np.ones((n, T), dtype=bool)
    else:
        ended = np.cumsum(tokens == model.end_token, axis=1)
        mask = np.concatenate([np.ones((n, 1), dtype=bool), ended[:, :-1] == 0], axis=1)
    return states, mask


def enumerate_sequences(model: ARModel, max_sequences: int = MAX_ENUMERATION) -> SequenceBatch:
    """All V^T token strings with their exact probabilities under the behaviour policy.

    Raises ``ValueError`` when V^T exceeds ``max_sequences`` (default 1e6), and
    :class:`~vespo_theory.resources.MemoryLimitError` when its arrays
    (:func:`enumeration_bytes`) would pass the memory limit.
    """
    V, T = model.V, model.T
    if not fits_enumeration(V, T, max_sequences):
        raise ValueError(
            f"enumeration needs V^T = {V}^{T} = {n_sequences_text(V, T)} sequences, more than "
            f"max_sequences = {format_count(max_sequences)}; lower --V or --T, use the lattice "
            "method (context-free policy, no end token) or Monte Carlo (--method mc)"
        )
    check_memory(
        enumeration_bytes(V, T),
        f"the enumeration of V^T = {n_sequences_text(V, T)} sequences of length T = {T}",
        "lower --V, --T or --max-sequences, or use --method mc",
    )
    count = V**T
    idx = np.arange(count, dtype=np.int64)
    powers = V ** np.arange(T - 1, -1, -1, dtype=np.int64)
    tokens = (idx[:, None] // powers[None, :]) % V
    states, mask = states_and_mask(model, tokens)
    log_b, log_p = model.log_behaviour, model.log_pi
    lb = log_b[states, tokens]
    lp = log_p[states, tokens]
    tok_log_ratio = np.where(mask, lp - lb, 0.0)
    # Masked positions (after the end token) get the uniform factor 1/V: each truncated
    # sequence is listed V^(T - len) times and keeps its total probability.
    log_q = np.where(mask, lb, -np.log(V)).sum(axis=1)
    weight = np.exp(log_q)
    return SequenceBatch(tokens, states, mask, tok_log_ratio, weight)


def advantages(model: ARModel, cfg: ARConfig, batch: SequenceBatch) -> np.ndarray:
    """A per sequence: mean token reward over the response minus the baseline, or constant."""
    if cfg.adv_mode == "constant":
        return np.full(batch.n, cfg.adv_value)
    r = np.where(batch.mask, model.reward[batch.tokens], 0.0).sum(axis=1)
    return r / batch.lengths - cfg.baseline
