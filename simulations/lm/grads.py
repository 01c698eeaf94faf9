r"""Per-sequence score gradients g_i = grad_theta log pi(y_i), exactly, for a batch of sequences.

For n sequences (a :class:`~simulations.lm.sampling.Rollout`: left-padded prompts, responses,
response mask) and optional token weights ``w`` [n, T] (default: the response mask), the
per-sequence gradient is

.. math:: h_i = \nabla_\theta \sum_t w_{i,t} \log \pi_\theta(y_{i,t} \mid \text{prefix}),

summed over the response tokens only (the prompt is never differentiated; masked positions have
weight 0). With ``w`` = mask this is the sequence score g_i; with ``w`` = a token-level rule's
coefficient (detached) it is that rule's per-sequence gradient direction.

Three paths, the same numbers up to float rounding (tests/test_lm_grads.py):

* ``vmap`` (the built-in model): ``torch.func.vmap(torch.func.grad(f))`` over the sequences of
  a chunk, with ``torch.func.functional_call`` on the module's own parameters (the torch.func
  "per-sample gradients" recipe, https://pytorch.org/docs/stable/func.html and
  https://pytorch.org/tutorials/intermediate/per_sample_grads.html). The sequences are re-packed
  right-aligned (prompt at column 0, then the response, padding after), so that the position ids
  are one shared ``arange`` (the model checks positions with a data-dependent ``int(...)``, which
  vmap cannot batch) while every real token sees exactly the keys it sees left-padded.
* ``loop`` (Hugging Face models, long sequences, anything vmap cannot trace): one backward per
  sequence, each at its own length, written into the chunk's rows; memory is one sequence's
  activations plus the chunk's gradients.
* :func:`reference_grads`: the plain loop of backward calls through
  :func:`~simulations.lm.sampling.sequence_log_probs` on the original left-padded rows (what
  the RL loop differentiates); the check of the two above.

Sequences are processed in chunks (:func:`iter_per_sample_grads`); memory is estimated before
allocating (:func:`estimate_grad_bytes`, refused past ``vespo_theory.resources.memory_limit()``
with :class:`~vespo_theory.resources.MemoryLimitError`). Gradients are in the model's parameter
dtype (float32 for the built-in model on CPU); every statistic built from them is float64.

Random projection (:class:`GradSketch`): a seeded Johnson-Lindenstrauss sketch S (d x P,
Gaussian N(0, 1/d) or Rademacher +-1/sqrt(d) entries) applied chunk by chunk, so n gradients of a
P-parameter model need n x d memory. S is linear, so it maps the centred vectors x_i - mean(x) to
their sketches: norms, and with them tr Cov, are preserved within a factor 1 +- eps. The
guarantee (:func:`jl_min_dim`, :func:`jl_eps`): for a fixed vector x, the two Chernoff tails of
||Sx||^2 / ||x||^2 are each at most exp(-(d/4)(eps^2 - 2 eps^3/3)) (Dasgupta & Gupta 2003,
"An elementary proof of a theorem of Johnson and Lindenstrauss", Random Struct. Alg. 22(1),
Lemma 2.2, for the Gaussian case; Achlioptas 2003, "Database-friendly random projections",
J. Comput. Syst. Sci. 66(4), Theorem 1.1 and its proof, for +-1 entries), so all n norms lie in
[(1 - eps), (1 + eps)] ||x||^2 with probability >= 1 - delta when

.. math:: d \ge \frac{4 \ln(2n/\delta)}{\varepsilon^2 - 2\varepsilon^3/3}.

For the Gaussian sketch ||Sx||^2 / ||x||^2 is exactly chi^2_d / d, and
:func:`jl_failure_gaussian` gives the exact per-vector tail (union bound over n vectors).

:func:`trace_cov` is tr Cov of the rows of X, mean ||x_i||^2 - ||mean x||^2 (the ddof = 0
covariance of the empirical law), in float64, without forming an n x n matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from vespo_theory.array_ops import to_compute
from vespo_theory.resources import check_memory, format_bytes

__all__ = [
    "GradSketch",
    "PackedBatch",
    "estimate_grad_bytes",
    "iter_per_sample_grads",
    "jl_eps",
    "jl_failure_gaussian",
    "jl_min_dim",
    "pack_right",
    "param_count",
    "per_sample_grads",
    "reference_grads",
    "sequence_score_norms",
    "trace_cov",
    "vcpo_advantages",
]

METHODS = ("auto", "vmap", "loop")


# ------------------------------------------------------------------------------- sizes


def param_count(model) -> int:
    """Number of trainable parameters P (the length of one flattened gradient)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def estimate_grad_bytes(n: int, width: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of an n x width gradient matrix of ``dtype``.

    >>> estimate_grad_bytes(256, 106_007)
    108551168
    """
    return int(n) * int(width) * torch.empty((), dtype=dtype).element_size()


def _check(n: int, width: int, dtype, what: str, change: str, limit) -> None:
    check_memory(
        estimate_grad_bytes(n, width, dtype),
        f"{what} ({n} x {width} {str(dtype).removeprefix('torch.')})",
        change,
        limit=limit,
    )


# ----------------------------------------------------------------------------- packing


@dataclass(frozen=True)
class PackedBatch:
    """Sequences right-aligned: prompt from column 0, then the response, padding after it.

    ``ids``/``attn`` [n, L]; ``weights`` [n, L] the weight on log pi of the token *at* each
    column (0 on prompt and padding); ``lengths`` [n] real tokens per row (prompt + response).
    """

    ids: torch.Tensor
    attn: torch.Tensor
    weights: torch.Tensor
    lengths: torch.Tensor


def pack_right(rollout, token_weights: torch.Tensor | None = None) -> PackedBatch:
    """Re-pack a rollout's rows right-aligned (see :class:`PackedBatch`).

    Causal attention never looks right, so a real token sees the same keys at the same
    positions as in the left-padded layout of ``sequence_log_probs`` (positions count from the
    first real token in both); only float summation order can differ.
    """
    pm = rollout.prompt_mask.bool()
    rm = rollout.response_mask
    w = rm if token_weights is None else token_weights * rm
    if w.shape != rm.shape:
        raise ValueError(f"token_weights: expected shape {tuple(rm.shape)}, got {tuple(w.shape)}")
    n, P = pm.shape
    T = rm.shape[1]
    plen = pm.sum(1)
    rlen = (rm > 0).sum(1)
    L = P + T
    ids = torch.zeros((n, L), dtype=torch.long, device=pm.device)
    attn = torch.zeros((n, L), dtype=torch.long, device=pm.device)
    wts = torch.zeros((n, L), dtype=w.dtype, device=pm.device)
    for i in range(n):
        p = int(plen[i])
        ids[i, :p] = rollout.prompt_ids[i, P - p :]
        ids[i, p : p + T] = rollout.response_ids[i]
        attn[i, :p] = 1
        attn[i, p : p + T] = (rm[i] > 0).long()
        wts[i, p : p + T] = w[i]
    return PackedBatch(ids, attn, wts, plen + rlen)


def _weighted_logp(model, ids, attn, pos, weights):
    """sum over columns j >= 1 of weights[:, j] * log pi(ids[:, j] | ids[:, :j]) -> [B]."""
    logits, _ = model(ids, attn, pos)
    logp = F.log_softmax(to_compute(logits[:, :-1]), dim=-1)
    lp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * weights[:, 1:].to(lp.dtype)).sum(-1)


# ------------------------------------------------------------------------------ sketch


def jl_min_dim(n: int, eps: float, delta: float) -> int:
    """Smallest d with 2n exp(-(d/4)(eps^2 - 2 eps^3/3)) <= delta (module docstring).

    >>> jl_min_dim(64, 0.5, 0.01)
    227
    """
    _check_jl(n, eps, delta)
    return int(math.ceil(4 * math.log(2 * n / delta) / (eps**2 - 2 * eps**3 / 3)))


def jl_eps(n: int, d: int, delta: float) -> float:
    """The eps that d guarantees for n norms with probability >= 1 - delta (inverse of
    :func:`jl_min_dim`); ``inf`` when even eps -> 1 does not reach delta.

    >>> round(jl_eps(64, 227, 0.01), 3)
    0.5
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d (sketch dimension) must be an integer >= 1, got {d!r}")
    _check_jl(n, 0.5, delta)
    need = 4 * math.log(2 * n / delta) / d  # eps^2 - 2 eps^3 / 3, increasing on (0, 1)
    if need >= 1 - 2 / 3:
        return math.inf
    lo, hi = 0.0, 1.0
    for _ in range(100):  # bisection to float resolution
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid**2 - 2 * mid**3 / 3 < need else (lo, mid)
    return hi


def jl_failure_gaussian(n: int, d: int, eps: float) -> float:
    """Union bound n P[|chi^2_d / d - 1| > eps]: the exact per-vector tail of the Gaussian
    sketch (||Sx||^2 / ||x||^2 ~ chi^2_d / d), times n vectors."""
    from scipy.stats import chi2

    p1 = chi2.cdf(d * (1 - eps), d) + chi2.sf(d * (1 + eps), d)
    return float(min(1.0, n * p1))


def _check_jl(n, eps, delta):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (vectors) must be an integer >= 1, got {n!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


class GradSketch:
    """A seeded d x P random projection applied in column blocks (float64).

    Block b of S (columns [b B, (b + 1) B), B = ``block``) is drawn from its own generator seeded
    ``seed * 1_000_003 + b``, so S depends only on (seed, kind, d, P, block), never on how the
    sequences are chunked. Blocks are kept once drawn while they fit in ``cache_bytes``, else
    redrawn for every chunk (memory d x B).
    """

    KINDS = ("gaussian", "rademacher")

    def __init__(
        self,
        dim: int,
        n_params: int,
        *,
        seed: int = 0,
        kind: str = "gaussian",
        block: int = 8192,
        cache_bytes: int = 256 * 1024**2,
    ):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"--sketch-dim must be an integer >= 1, got {dim!r}")
        if kind not in self.KINDS:
            raise ValueError(f"--sketch-kind must be gaussian or rademacher, got {kind!r}")
        self.dim, self.n_params, self.seed, self.kind, self.block = dim, n_params, seed, kind, block
        self._keep = dim * n_params * 8 <= cache_bytes
        self._blocks: dict[int, torch.Tensor] = {}

    def _block(self, b: int, device) -> torch.Tensor:
        if b in self._blocks:
            return self._blocks[b]
        width = min(self.block, self.n_params - b * self.block)
        g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + b)
        if self.kind == "gaussian":
            s = torch.randn((width, self.dim), generator=g, dtype=torch.float64)
        else:
            s = torch.randint(0, 2, (width, self.dim), generator=g).to(torch.float64) * 2 - 1
        s = (s / math.sqrt(self.dim)).to(device)
        if self._keep:
            self._blocks[b] = s
        return s

    def apply(self, G: torch.Tensor) -> torch.Tensor:
        """[c, P] -> [c, d] float64: G S^T."""
        if G.shape[-1] != self.n_params:
            raise ValueError(f"sketch: expected {self.n_params} columns, got {G.shape[-1]}")
        out = torch.zeros((G.shape[0], self.dim), dtype=torch.float64, device=G.device)
        for b in range(math.ceil(self.n_params / self.block)):
            cols = G[:, b * self.block : (b + 1) * self.block].to(torch.float64)
            out += cols @ self._block(b, G.device)
        return out


# --------------------------------------------------------------------- per-sample grads


def _flat(grads: dict, names: list[str], c: int) -> torch.Tensor:
    return torch.cat([grads[k].reshape(c, -1) for k in names], dim=1)


def _vmap_chunk(model, pb: PackedBatch, sel: slice) -> torch.Tensor:
    from torch.func import grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())
    names = list(params)
    ids, attn, w = pb.ids[sel], pb.attn[sel], pb.weights[sel]
    L = int(pb.lengths[sel].max())  # trailing columns are padding for every row of the chunk
    ids, attn, w = ids[:, :L], attn[:, :L], w[:, :L]
    pos = torch.arange(L, device=ids.device)[None]

    def f(p, ids1, attn1, w1):
        m = _Functional(model, p, buffers)
        return _weighted_logp(m, ids1[None], attn1[None], pos, w1[None])[0]

    g = vmap(grad(f), in_dims=(None, 0, 0, 0))(params, ids, attn, w)
    return _flat(g, names, ids.shape[0])


class _Functional:
    """``model`` called through ``functional_call`` with the parameters ``p``."""

    def __init__(self, model, p, buffers):
        self.model, self.state = model, {**p, **buffers}

    def __call__(self, *args):
        from torch.func import functional_call

        return functional_call(self.model, self.state, args)


def _loop_chunk(model, pb: PackedBatch, sel: slice) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = range(*sel.indices(pb.ids.shape[0]))
    out = torch.empty((len(rows), sum(p.numel() for p in params)), dtype=params[0].dtype)
    out = out.to(pb.ids.device)
    for j, i in enumerate(rows):
        L = int(pb.lengths[i])
        ids, attn, w = pb.ids[i : i + 1, :L], pb.attn[i : i + 1, :L], pb.weights[i : i + 1, :L]
        pos = torch.arange(L, device=ids.device)[None]
        with torch.enable_grad():
            lp = _weighted_logp(model, ids, attn, pos, w).sum()
            gs = torch.autograd.grad(lp, params, allow_unused=True)
        out[j] = torch.cat(
            [(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)]
        )
    return out


def _resolve_method(model, method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"--grad-method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    from simulations.lm.model import GPT

    # vmap for the built-in model with its explicit attention; torch.func has no batching rule
    # for CPU scaled_dot_product_attention (it falls back to a slow per-sample loop), and a HF
    # model's forward may not be traceable: the loop, each sequence at its own length.
    explicit = getattr(getattr(model, "cfg", None), "attn", "explicit") == "explicit"
    return "vmap" if isinstance(model, GPT) and explicit else "loop"


def iter_per_sample_grads(
    model,
    rollout,
    token_weights: torch.Tensor | None = None,
    *,
    method: str = "auto",
    chunk: int = 32,
    sketch: GradSketch | None = None,
    memory_limit: int | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, G)`` per chunk of ``chunk`` sequences: G [c, P] in the parameter dtype
    (or [c, d] float64 through ``sketch``). The chunk's gradients are the memory bound (checked
    before the first chunk: ``chunk`` x P, twice with a sketch for its float64 copy)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"--chunk must be an integer >= 1, got {chunk!r}")
    method = _resolve_method(model, method)
    n = rollout.response_ids.shape[0]
    P = param_count(model)
    dtype = next(model.parameters()).dtype
    c = min(chunk, n)
    _check(
        c * (3 if sketch is not None else 1),
        P,
        dtype,
        f"per-sample gradients of a chunk of {c} sequences",
        "lower --chunk, or use a smaller model",
        memory_limit,
    )
    pb = pack_right(rollout, token_weights)
    was_training = model.training
    model.eval()  # no dropout: the gradient of the sampled sequence's log-prob as scored
    try:
        for start in range(0, n, c):
            sel = slice(start, min(start + c, n))
            G = _vmap_chunk(model, pb, sel) if method == "vmap" else _loop_chunk(model, pb, sel)
            yield start, (G if sketch is None else sketch.apply(G))
    finally:
        model.train(was_training)


def per_sample_grads(
    model,
    rollout,
    token_weights: torch.Tensor | None = None,
    *,
    method: str = "auto",
    chunk: int = 32,
    sketch: GradSketch | None = None,
    memory_limit: int | None = None,
) -> torch.Tensor:
    """All n per-sequence gradients as one matrix [n, P] (or [n, d] sketched, float64).

    The n x P (n x d) matrix is estimated first and refused past the memory limit
    (:class:`~vespo_theory.resources.MemoryLimitError`, naming the sizes and what to change).
    """
    n = rollout.response_ids.shape[0]
    width = param_count(model) if sketch is None else sketch.dim
    dtype = next(model.parameters()).dtype if sketch is None else torch.float64
    _check(
        n,
        width,
        dtype,
        f"per-sample gradients of {n} sequences",
        "stream them (iter_per_sample_grads), sketch them (--sketch-dim D), or lower n",
        memory_limit,
    )
    parts = [
        G
        for _, G in iter_per_sample_grads(
            model,
            rollout,
            token_weights,
            method=method,
            chunk=chunk,
            sketch=sketch,
            memory_limit=memory_limit,
        )
    ]
    return torch.cat(parts, 0)


def reference_grads(model, rollout, token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The plain loop: one ``sequence_log_probs`` + backward per left-padded row (the check)."""
    from simulations.lm.sampling import sequence_log_probs

    n = rollout.response_ids.shape[0]
    P = param_count(model)
    _check(n, P, next(model.parameters()).dtype, "reference gradients", "lower n", None)
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(n):
            r = rollout.index(slice(i, i + 1))
            w = r.response_mask if token_weights is None else token_weights[i : i + 1]
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                (sequence_log_probs(model, r) * w).sum().backward()
            out.append(
                torch.cat(
                    [
                        (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1)
                        for p in params
                    ]
                )
            )
        model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return torch.stack(out)


# ------------------------------------------------------------------------- statistics


def trace_cov(X, weights=None) -> float:
    """tr Cov of the rows x_i = weights_i X_i: mean ||x||^2 - ||mean x||^2 (float64, ddof 0).

    Never forms an n x n matrix: one pass over the rows' squared norms and their mean vector.

    >>> X = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> trace_cov(X)  # both coordinates have variance 1
    2.0
    """
    x = torch.as_tensor(X).to(torch.float64) if not isinstance(X, np.ndarray) else None
    if x is None:
        x = torch.from_numpy(np.asarray(X, dtype=np.float64))
    if weights is not None:
        x = x * torch.as_tensor(np.asarray(weights, dtype=np.float64), device=x.device)[:, None]
    if x.shape[0] == 0:
        return math.nan
    return float((x * x).sum(1).mean() - (x.mean(0) ** 2).sum())


def memory_note(n: int, P: int, dtype=torch.float32) -> str:
    """One line: what n gradients of P parameters take (for docs and error messages)."""
    return f"{n} x {P} gradients: {format_bytes(estimate_grad_bytes(n, P, dtype))}"


# ------------------------------------------------------------------------------ VCPO hook


def sequence_score_norms(
    model, rollout, *, method: str = "auto", chunk: int = 32, memory_limit: int | None = None
) -> np.ndarray:
    """||g_i||^2 = ||grad log pi(y_i)||^2 per sequence, float64 [n], streamed chunk by chunk
    (the n x P matrix is never held): what VCPO's baseline needs
    (:func:`vespo_theory.vcpo.vcpo_baseline`)."""
    n = rollout.response_ids.shape[0]
    out = np.empty(n, dtype=np.float64)
    for start, G in iter_per_sample_grads(
        model, rollout, method=method, chunk=chunk, memory_limit=memory_limit
    ):
        Gd = G.to(torch.float64)
        out[start : start + Gd.shape[0]] = (Gd * Gd).sum(1).cpu().numpy()
    return out


def vcpo_advantages(
    log_w,
    g_norm2,
    rewards,
    group_size: int,
    *,
    norm_by_std: bool = True,
    return_baseline: bool = False,
):
    """VCPO's advantages R_i - b*_g (Huang et al., arXiv 2602.17616): b*_g the off-policy
    optimal baseline of the prompt group g (:func:`vespo_theory.vcpo.vcpo_group_baselines`,
    groups of ``group_size`` consecutive rows), divided by the group's reward std + 1e-6 as the
    RL loop's GRPO advantages are (``grad_baselining_norm_by_std``). float32 [n] on the
    rewards' device; ``log_w`` and ``g_norm2`` may be NumPy or torch. With
    ``return_baseline`` also each row's b* (float64 NumPy [n]).

    >>> a = vcpo_advantages(np.zeros(4), np.array([1.0, 3.0, 1.0, 1.0]),
    ...                     torch.tensor([0.0, 1.0, 1.0, 1.0]), 2, norm_by_std=False)
    >>> a.tolist()  # group 1: b* = (0 * 1 + 1 * 3) / 4 = 0.75; group 2: b* = 1
    [-0.75, 0.25, 0.0, 0.0]
    """
    from vespo_theory.vcpo import vcpo_group_baselines

    R = rewards.detach().to(torch.float64).cpu()
    n = R.numel()
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an integer >= 1, got {group_size!r}")
    if n % group_size:
        raise ValueError(f"rewards: {n} rows are not whole groups of {group_size}")
    b = vcpo_group_baselines(log_w, g_norm2, R.numpy(), np.arange(n) // group_size)
    adv = R - torch.from_numpy(b)
    if norm_by_std:
        adv = adv / (R.view(-1, group_size).std(1, unbiased=True) + 1e-6).repeat_interleave(
            group_size
        )
    adv = adv.to(torch.float32).to(rewards.device)
    return (adv, b) if return_baseline else adv
