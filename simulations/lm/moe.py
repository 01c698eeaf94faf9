"""Mixture-of-experts FFN for the small GPT, routing record / replay / noise, and a measurement.

The layer (:class:`MoEFFN`, used by ``model.GPT`` when ``GPTConfig.n_expert > 0``) is the
top-k routed FFN of the Switch Transformer and Mixtral (Fedus, Zoph & Shazeer, "Switch
Transformers", arXiv 2101.03961; Jiang et al., "Mixtral of Experts", arXiv 2401.04088): a
router ``Linear(d, n_expert)`` scores every token, the ``top_k`` highest router logits choose
the experts, and the gates are the softmax of those k logits (= the full softmax renormalised
over the chosen k). Each expert is ``Linear(d, h) -> GELU -> Linear(h, d)`` with
``h = max(1, 4 d // top_k)``, so the activated FFN width equals the dense model's ``4 d``. No
load-balancing loss (the lab studies the importance weights, not expert utilisation). With
``top_k = 1`` the gate is exactly 1 and the router gets no gradient (Switch instead scales by
the full-softmax probability); use ``top_k >= 2`` to train the router. Router logits and gates
are computed in float32 at least (as the attention softmax of ``model.py``).

Every expert is evaluated on every token and the outputs are combined with a gate matrix that
is zero off the chosen k (exact zeros, so the sum equals the sparse one; unchosen experts get
exactly zero gradient): E / k times the activated compute, irrelevant at this size, and it keeps
the layer free of data-dependent shapes (deterministic on CPU, the same code for the full
forward and the KV-cached step, traceable by ``torch.func.vmap``).

Routing state is attached to the layers by context managers, so the model's call signature
``logits, present = model(idx, attn_mask, pos_ids, past)`` is unchanged (and ``hf.py`` untouched):

* :func:`routing_record` collects each layer's chosen experts over one or more calls (a full
  forward, or a prompt call followed by cached one-token steps) as a tensor
  ``[B, S_total, n_layer, top_k]`` (long, each row sorted by descending router logit).
* :func:`routing_replay` forces given routes: the experts are taken from the tensor, the gates
  are the softmax of the model's *own* router logits at those experts (differentiable; this is
  the routing replay "R2" of the VESPO paper, arXiv 2602.10693 §5, and of rollout routing replay,
  Ma et al. arXiv 2510.11370: the sampler's expert choices are reused, the weights are the
  trainer's). Consecutive calls consume consecutive positions (a cursor), so a prompt call and
  cached steps replay like one full forward.
* :func:`route_noise` adds seeded Gaussian noise of std sigma to the router logits *for the
  choice of experts only* (gates stay the clean softmax at the chosen experts): the sampler
  engine ``route:SIGMA`` of ``sampling.py``, which flips expert choices on near-ties as a
  numerically different inference engine does. With replay the trainer then computes exactly
  the sampler's function, so log W = 0 up to float rounding, and any nonzero log W without
  replay comes from the flips alone.

:func:`routing_mismatch_stats` measures Var(log W) of the sequence log-weight with and without
replay under ``route:SIGMA`` on the same weights (on-policy); ``python -m simulations.lm.moe``
trains a tiny MoE model by teacher forcing (the warm-start recipe of ``sft.py`` at the lab's
size: d_model 64, 2 layers, 4 experts, top-2, 250 steps; ~1 minute on one CPU thread) and
prints its greedy success and one line of these statistics per sigma.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = [
    "MoEFFN",
    "RoutingRecord",
    "moe_layers",
    "route_noise",
    "routing_mismatch_stats",
    "routing_record",
    "routing_replay",
    "train_tiny_moe",
]


class _Replay:
    """One layer's forced routes [B, L, k] and the cursor of the next position to use."""

    def __init__(self, routes: torch.Tensor):
        self.routes = routes
        self.cursor = 0

    def take(self, B: int, S: int) -> torch.Tensor:
        if self.routes.shape[0] != B:
            raise ValueError(
                f"routing_replay: the routes are for a batch of {self.routes.shape[0]}, "
                f"the forward has {B} rows"
            )
        end = self.cursor + S
        if end > self.routes.shape[1]:
            raise ValueError(
                f"routing_replay: positions {self.cursor}..{end - 1} requested, the routes "
                f"cover {self.routes.shape[1]} positions (one replay context per sequence pass)"
            )
        out = self.routes[:, self.cursor : end]
        self.cursor = end
        return out


class MoEFFN(nn.Module):
    """Top-k routed mixture of ``n_expert`` GELU FFN experts (see the module docstring)."""

    def __init__(self, d_model: int, n_expert: int, top_k: int):
        super().__init__()
        if not 1 <= top_k <= n_expert:
            raise ValueError(f"MoEFFN: need 1 <= top_k <= n_expert, got {top_k}, {n_expert}")
        self.n_expert, self.top_k = n_expert, top_k
        h = max(1, 4 * d_model // top_k)
        self.router = nn.Linear(d_model, n_expert)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d_model, h), nn.GELU(), nn.Linear(h, d_model))
            for _ in range(n_expert)
        )
        # routing state, set only by the context managers below (never saved in state_dict)
        self._record: list[torch.Tensor] | None = None
        self._replay: _Replay | None = None
        self._noise: tuple[float, torch.Generator | None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        logits = self.router(x)  # [B, S, E]
        logits_c = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        if self._replay is not None:
            idx = self._replay.take(B, S).to(x.device)
        else:
            sel = logits_c
            if self._noise is not None:
                sigma, gen = self._noise
                noise = torch.randn(sel.shape, generator=gen, device=sel.device, dtype=sel.dtype)
                sel = sel + sigma * noise
            idx = sel.topk(self.top_k, dim=-1).indices  # [B, S, k], descending
        if self._record is not None:
            self._record.append(idx.detach())
        gates = torch.softmax(logits_c.gather(-1, idx), dim=-1)
        w = torch.zeros_like(logits_c).scatter(-1, idx, gates).to(x.dtype)  # [B, S, E]
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            out = out + w[..., e : e + 1] * expert(x)
        return out


def moe_layers(model: nn.Module) -> list[MoEFFN]:
    """The model's routed layers in block order (empty for a dense or Hugging Face model)."""
    return [m for m in model.modules() if isinstance(m, MoEFFN)]


def _require_layers(model: nn.Module, what: str) -> list[MoEFFN]:
    layers = moe_layers(model)
    if not layers:
        raise ValueError(
            f"{what}: the model has no routed (mixture-of-experts) layers "
            "(GPTConfig.n_expert = 0, or a Hugging Face model)"
        )
    return layers


class RoutingRecord:
    """What :func:`routing_record` collected; :meth:`routes` stacks it."""

    def __init__(self, n_layer: int):
        self.chunks: list[list[torch.Tensor]] = [[] for _ in range(n_layer)]

    def routes(self) -> torch.Tensor:
        """[B, S_total, n_layer, top_k] long: the calls' positions concatenated in call order."""
        if not self.chunks or not self.chunks[0]:
            raise ValueError("routing_record: nothing recorded (no forward inside the context)")
        try:
            per_layer = [torch.cat(c, dim=1) for c in self.chunks]
        except RuntimeError as exc:
            raise ValueError(
                f"routing_record: the recorded calls have different batch sizes ({exc})"
            ) from None
        return torch.stack(per_layer, dim=2)


@contextlib.contextmanager
def routing_record(model: nn.Module) -> Iterator[RoutingRecord]:
    """Record each routed layer's chosen experts during the forwards inside the context."""
    layers = _require_layers(model, "routing_record")
    rec = RoutingRecord(len(layers))
    saved = [layer._record for layer in layers]
    for layer, chunks in zip(layers, rec.chunks):
        layer._record = chunks
    try:
        yield rec
    finally:
        for layer, s in zip(layers, saved):
            layer._record = s


@contextlib.contextmanager
def routing_replay(model: nn.Module, routes: torch.Tensor) -> Iterator[None]:
    """Force ``routes`` [B, L, n_layer, top_k] (experts in [0, n_expert), distinct per token).

    Gates are the softmax of the model's own router logits at the forced experts. Calls inside
    the context consume consecutive positions of ``routes``.
    """
    layers = _require_layers(model, "routing_replay")
    k, E = layers[0].top_k, layers[0].n_expert
    if routes.dim() != 4 or routes.shape[2] != len(layers) or routes.shape[3] != k:
        raise ValueError(
            f"routing_replay: routes must have shape [B, L, n_layer={len(layers)}, top_k={k}], "
            f"got {tuple(routes.shape)}"
        )
    if routes.dtype != torch.long:
        raise ValueError(f"routing_replay: routes must be int64 expert ids, got {routes.dtype}")
    if routes.numel() and (int(routes.min()) < 0 or int(routes.max()) >= E):
        raise ValueError(f"routing_replay: expert ids must lie in [0, {E})")
    if k > 1 and routes.numel():
        s = routes.sort(dim=-1).values
        if bool((s[..., 1:] == s[..., :-1]).any()):
            raise ValueError("routing_replay: a token's top_k experts must be distinct")
    saved = [layer._replay for layer in layers]
    for i, layer in enumerate(layers):
        layer._replay = _Replay(routes[:, :, i])
    try:
        yield
    finally:
        for layer, s in zip(layers, saved):
            layer._replay = s


@contextlib.contextmanager
def route_noise(
    model: nn.Module, sigma: float, generator: torch.Generator | None = None
) -> Iterator[None]:
    """Add N(0, sigma^2) noise (drawn from ``generator``) to router logits for expert choice."""
    layers = _require_layers(model, "route_noise")
    if not sigma > 0 or sigma == float("inf"):
        raise ValueError(f"route_noise: sigma must be finite and > 0, got {sigma!r}")
    saved = [layer._noise for layer in layers]
    for layer in layers:
        layer._noise = (float(sigma), generator)
    try:
        yield
    finally:
        for layer, s in zip(layers, saved):
            layer._noise = s


def _route_sets_differ(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, L, n_layer] bool: the two routes choose different expert sets."""
    return (a.sort(dim=-1).values != b.sort(dim=-1).values).any(dim=-1)


@torch.no_grad()
def routing_mismatch_stats(
    model: nn.Module,
    prompts: list[list[int]],
    *,
    sigma: float,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Var(log W) of the sequence log-weight under ``route:SIGMA`` with and without replay.

    On-policy (sampler and trainer share the weights): ``n`` sequences (default
    ``len(prompts)``; the prompts are cycled) are sampled at temperature 1 through the engine
    ``route:SIGMA`` with routing recorded; log W_i = sum_t (log pi_trainer - log mu) over the
    response is computed by the trainer without replay (its own routing) and with the
    rollout's routes replayed. Returns ``n``, ``sigma``, ``var_log_w`` / ``mean_abs_log_w`` /
    ``max_abs_log_w`` for ``no_replay`` and ``replay`` (population variance, float64), and the
    routing-flip rates: ``flip_rate`` (fraction of (real token, layer) pairs where the trainer's
    own expert set differs from the sampler's) and ``seq_with_flip`` (fraction of sequences
    with at least one flip in the prompt or response).
    """
    from simulations.lm.sampling import generate, left_pad, parse_mismatch, sequence_log_probs

    _require_layers(model, "routing_mismatch_stats")
    n = len(prompts) if n is None else int(n)
    if n < 2 or not prompts:
        raise ValueError("routing_mismatch_stats: need prompts and n >= 2")
    engine = parse_mismatch(f"route:{sigma!r}")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    was_training = model.training
    model.eval()
    lw = {"no_replay": [], "replay": []}
    flips, real, seq_flip = 0, 0, []
    try:
        for start in range(0, n, batch_size):
            rows = [prompts[i % len(prompts)] for i in range(start, min(n, start + batch_size))]
            ids, mask = left_pad(rows, pad_id, device)
            r = generate(
                model,
                ids,
                mask,
                max_new_tokens,
                eos_id=eos_id,
                pad_id=pad_id,
                generator=gen,
                engine=engine,
            )
            with routing_record(model) as rec:
                lp = sequence_log_probs(model, r)
            lp_rep = sequence_log_probs(model, r, replay_routing=True)
            for key, t in (("no_replay", lp), ("replay", lp_rep)):
                lw[key].append(((t - r.rollout_log_prob) * r.response_mask).sum(-1).double())
            full_mask = torch.cat([r.prompt_mask.float(), r.response_mask], dim=1)
            diff = _route_sets_differ(rec.routes(), r.routing) & (full_mask[..., None] > 0)
            flips += int(diff.sum())
            real += int(full_mask.sum()) * diff.shape[-1]
            seq_flip.append(diff.flatten(1).any(-1))
    finally:
        model.train(was_training)
    out: dict = {"n": n, "sigma": float(sigma)}
    for key, chunks in lw.items():
        v = torch.cat(chunks)
        out[f"var_log_w_{key}"] = float(v.var(unbiased=False))
        out[f"mean_abs_log_w_{key}"] = float(v.abs().mean())
        out[f"max_abs_log_w_{key}"] = float(v.abs().max())
    out["flip_rate"] = flips / max(real, 1)
    out["seq_with_flip"] = float(torch.cat(seq_flip).float().mean())
    return out


def train_tiny_moe(
    task_name: str = "add",
    *,
    steps: int = 250,
    d_model: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_expert: int = 4,
    top_k: int = 2,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
):
    """A tiny MoE GPT trained by teacher forcing on a task's reference answers (CPU, seeded):
    the lab's warm start itself (:func:`simulations.lm.sft.train_sft` with ``n_expert``), so at
    the defaults it is the weights the S5 study starts from. Nothing is cached. Returns
    (model, tokenizer, task)."""
    from simulations.lm.sft import SFTConfig, train_sft
    from simulations.lm.tasks import get_task
    from simulations.lm.tokenizer import CharTokenizer

    cfg = SFTConfig(
        task=task_name,
        d_model=d_model,
        n_layer=n_layer,
        n_head=n_head,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        n_expert=n_expert,
        top_k=top_k,
    )
    return train_sft(cfg), CharTokenizer(), get_task(task_name)


def _main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    import numpy as np

    ap = argparse.ArgumentParser(
        prog="python -m simulations.lm.moe",
        description="Train a tiny MoE GPT by teacher forcing, then print Var(log W) under "
        "route:SIGMA with and without routing replay (on-policy).",
    )
    ap.add_argument("--task", default="add")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-expert", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from simulations.lm.sft import evaluate

    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # the numbers must not depend on the core count
    try:
        model, tok, task = train_tiny_moe(
            args.task,
            steps=args.steps,
            d_model=args.d_model,
            n_expert=args.n_expert,
            top_k=args.top_k,
            seed=args.seed,
        )
        texts = task.sample(np.random.default_rng([args.seed, 99]), args.n)
        info = {k: v for k, v in vars(args).items() if k != "sigma"}
        info["params"] = sum(p.numel() for p in model.parameters())
        info["greedy_success"] = evaluate(model, task, tok, texts, "cpu")
        print(json.dumps(info))
        prompts = [[tok.bos_id, *tok.encode(p)] for p in texts]
        for sigma in args.sigma:
            stats = routing_mismatch_stats(
                model,
                prompts,
                sigma=sigma,
                max_new_tokens=task.max_response_len(),
                eos_id=tok.eos_id,
                pad_id=tok.pad_id,
                seed=args.seed,
            )
            print(json.dumps(stats))
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


if __name__ == "__main__":
    # run the imported module's _main: model.py's layers are simulations.lm.moe.MoEFFN, not
    # this __main__ copy's class
    from simulations.lm.moe import _main as _module_main

    _module_main()
