"""Generation with a KV cache, an optional mismatched sampler engine, and trainer log-probs.

A rollout keeps what the RL loss needs: left-padded prompts, responses (EOS included, padding
after it), the response mask, and the sampler's log-probabilities of the sampled tokens
(``rollout_log_prob``, log mu) together with the sampler's full next-token log-distribution
(for the exact KL(sampler || trainer) per position).

Engine mismatch (``SamplerEngine``): ``bf16`` runs the sampler's copy of the weights and its
activations in bfloat16 (as an inference engine in lower precision would), ``noise:SIGMA`` adds
seeded Gaussian noise of standard deviation SIGMA to the sampler's logits. Either makes
pi_sampler != pi_old even when the weights are the same version. ``route:SIGMA`` (mixture-of-
experts models only, ``GPTConfig.n_expert > 0``) adds seeded Gaussian noise of std SIGMA to the
sampler's *router* logits when it chooses experts (``simulations.lm.moe.route_noise``; the gates
and every other weight are the trainer's), so expert choices flip on near-ties, as between an
inference engine and a trainer that route the same weights differently (VESPO, arXiv
2602.10693 §5).

Routing (MoE models): ``generate`` records every position's chosen experts in
``Rollout.routing`` [B, P + T, n_layer, top_k]; ``sequence_log_probs(..., replay_routing=True)``
makes the trainer reuse them (routing replay, "R2"; the gates stay the trainer's own,
differentiable).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from simulations.lm.model import positions_from_mask
from simulations.lm.moe import moe_layers, route_noise, routing_record, routing_replay
from vespo_theory.array_ops import to_compute

__all__ = [
    "Rollout",
    "SamplerEngine",
    "generate",
    "left_pad",
    "parse_mismatch",
    "sequence_log_probs",
]


@dataclass(frozen=True)
class SamplerEngine:
    """How the sampler differs from the trainer: kind in none | bf16 | noise | route (+ sigma).

    ``route`` acts inside :func:`generate` (noise on the router's expert choice, drawn from the
    sampling generator); ``prepare`` returns the trainer's module itself for it.
    """

    kind: str = "none"
    sigma: float = 0.0

    def prepare(self, model):
        """The sampler's model: the trainer's module itself, or a bfloat16 copy of it."""
        if self.kind == "bf16":
            return copy.deepcopy(model).to(torch.bfloat16)
        return model

    def log_probs(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        logits = to_compute(logits)  # the one half-precision rule: bf16/fp16 in float32
        if self.kind == "noise" and self.sigma > 0:
            noise = torch.randn(
                logits.shape, generator=generator, device=logits.device, dtype=logits.dtype
            )
            logits = logits + self.sigma * noise
        return F.log_softmax(logits, dim=-1)

    def check_model(self, model) -> None:
        """ValueError if this engine cannot run ``model`` (``route`` on a dense model)."""
        if self.kind == "route" and not moe_layers(model):
            raise ValueError(
                f"--mismatch route:{self.sigma:g} perturbs the router of a mixture-of-experts "
                "model, and this model has no routed layers (GPTConfig.n_expert = 0 or a "
                "Hugging Face model); use none, bf16 or noise:SIGMA, or n_expert > 0"
            )


def parse_mismatch(spec: str | None, *, n_expert: int | None = None) -> SamplerEngine:
    """``None``/"none" -> no mismatch; "bf16"; "noise:SIGMA" or "route:SIGMA" with SIGMA > 0.

    ``n_expert`` (the model's ``GPTConfig.n_expert``, when known): "route:SIGMA" with
    ``n_expert == 0`` is refused here already (otherwise by :func:`generate`).
    """
    if spec is not None and spec.startswith("route:"):
        try:
            sigma = float(spec.split(":", 1)[1])
        except ValueError:
            sigma = float("nan")
        if not sigma > 0 or sigma == float("inf"):
            raise ValueError(f"--mismatch: route:SIGMA needs a finite SIGMA > 0, got {spec!r}")
        if n_expert is not None and n_expert <= 0:
            raise ValueError(
                f"--mismatch {spec}: route noise needs a mixture-of-experts model "
                f"(n_expert > 0), got n_expert = {n_expert}"
            )
        return SamplerEngine("route", sigma)
    if spec is None or spec == "none":
        return SamplerEngine()
    if spec == "bf16":
        return SamplerEngine("bf16")
    if spec.startswith("noise:"):
        try:
            sigma = float(spec.split(":", 1)[1])
        except ValueError:
            sigma = float("nan")
        if not sigma > 0 or sigma == float("inf"):
            raise ValueError(f"--mismatch: noise:SIGMA needs a finite SIGMA > 0, got {spec!r}")
        return SamplerEngine("noise", sigma)
    raise ValueError(f"--mismatch: expected none, bf16, noise:SIGMA or route:SIGMA, got {spec!r}")


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ids [B, P] and mask [B, P] (1 = real)."""
    if not seqs or any(len(s) == 0 for s in seqs):
        raise ValueError("prompts: need at least one prompt and no empty prompt")
    P = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), P), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), P), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, P - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[i, P - len(s) :] = 1
    return ids.to(device), mask.to(device)


@dataclass
class Rollout:
    prompt_ids: torch.Tensor  # [B, P] left-padded
    prompt_mask: torch.Tensor  # [B, P]
    response_ids: torch.Tensor  # [B, T] pad after EOS
    response_mask: torch.Tensor  # [B, T] float, 1 up to and including EOS
    rollout_log_prob: torch.Tensor  # [B, T] log mu(y_t) under the sampler engine
    sampler_logp_full: torch.Tensor | None  # [B, T, V] sampler log-distribution
    # [B, P + T, n_layer, top_k] long: the sampler's experts at every position (prompt and
    # response, padding included); None for dense models
    routing: torch.Tensor | None = None

    def index(self, sel) -> Rollout:
        full = None if self.sampler_logp_full is None else self.sampler_logp_full[sel]
        return Rollout(
            self.prompt_ids[sel],
            self.prompt_mask[sel],
            self.response_ids[sel],
            self.response_mask[sel],
            self.rollout_log_prob[sel],
            full,
            None if self.routing is None else self.routing[sel],
        )


@torch.no_grad()
def generate(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    *,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    greedy: bool = False,
    use_cache: bool = True,
    engine: SamplerEngine | None = None,
    keep_full: bool = False,
    record_routing: bool | None = None,
) -> Rollout:
    """Sample (or greedily decode) up to ``max_new_tokens`` response tokens per prompt.

    ``model`` is already the sampler's module (see ``SamplerEngine.prepare``). Without the cache
    every step re-runs the whole prefix (same numbers up to float rounding; for benchmarks).

    ``record_routing`` (default: when the model has routed layers) fills ``Rollout.routing``
    with the experts chosen at every position; the last response token, never fed back while
    sampling, gets one extra cached step (without the cache: one full forward at the end, and
    ``route:SIGMA`` is refused, since every step would redraw the prefix's routes).
    """
    engine = engine or SamplerEngine()
    engine.check_model(model)
    routed = bool(moe_layers(model))
    record = routed if record_routing is None else bool(record_routing)
    if record and not routed:
        raise ValueError("generate: record_routing=True needs a mixture-of-experts model")
    if engine.kind == "route" and not use_cache:
        raise ValueError("generate: route:SIGMA needs use_cache=True")
    with contextlib.ExitStack() as stack:
        rec = stack.enter_context(routing_record(model)) if record and use_cache else None
        if engine.kind == "route":
            stack.enter_context(route_noise(model, engine.sigma, generator))
        r = _generate(
            model,
            prompt_ids,
            prompt_mask,
            max_new_tokens,
            eos_id=eos_id,
            pad_id=pad_id,
            generator=generator,
            greedy=greedy,
            use_cache=use_cache,
            engine=engine,
            keep_full=keep_full,
            routing_rec=rec,
        )
    if record and not use_cache:
        ids = torch.cat([r.prompt_ids, r.response_ids], dim=1)
        mask = torch.cat([r.prompt_mask, r.response_mask.long()], dim=1)
        with routing_record(model) as rec:
            model(ids, mask, positions_from_mask(mask))
        r.routing = rec.routes()
    return r


def _generate(
    model,
    prompt_ids,
    prompt_mask,
    max_new_tokens,
    *,
    eos_id,
    pad_id,
    generator,
    greedy,
    use_cache,
    engine,
    keep_full,
    routing_rec,
) -> Rollout:
    B = prompt_ids.shape[0]
    device = prompt_ids.device
    ids, mask = prompt_ids, prompt_mask
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out_ids, out_mask, out_lp, out_full = [], [], [], []
    past, step_ids, step_pos = None, ids, positions_from_mask(mask)
    for _ in range(max_new_tokens):
        if use_cache:
            logits, past = model(step_ids, mask, step_pos, past)
        else:
            logits, _ = model(ids, mask, positions_from_mask(mask))
        logp = engine.log_probs(logits[:, -1], generator)
        if greedy:
            tok = logp.argmax(-1)
        else:
            tok = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        live = (~done).float()
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out_ids.append(tok)
        out_mask.append(live)
        out_lp.append(logp.gather(-1, tok[:, None]).squeeze(-1) * live)
        if keep_full:
            out_full.append(logp)
        done = done | (tok == eos_id)
        ids = torch.cat([ids, tok[:, None]], dim=1)
        mask = torch.cat([mask, (live > 0).long()[:, None]], dim=1)
        step_ids = tok[:, None]
        step_pos = positions_from_mask(mask)[:, -1:]
        if bool(done.all()):
            break
    routing = None
    if routing_rec is not None:
        model(step_ids, mask, step_pos, past)  # the routes of the last sampled token
        routing = routing_rec.routes()
    return Rollout(
        prompt_ids,
        prompt_mask,
        torch.stack(out_ids, 1),
        torch.stack(out_mask, 1),
        torch.stack(out_lp, 1),
        torch.stack(out_full, 1) if keep_full else None,
        routing,
    )


def sequence_log_probs(
    model, rollout: Rollout, *, return_full: bool = False, replay_routing: bool = False
):
    """Trainer log pi(y_t | prefix) [B, T] of the rollout's responses (0 where masked).

    With ``return_full`` also the full log-distribution [B, T, V] at each response position.
    ``replay_routing`` (MoE models): the trainer uses the rollout's experts
    (``Rollout.routing``) instead of its own choice; the gates are the trainer's router softmax
    at those experts, so gradients still reach the router (``simulations.lm.moe``).
    """
    ids = torch.cat([rollout.prompt_ids, rollout.response_ids], dim=1)
    mask = torch.cat([rollout.prompt_mask, rollout.response_mask.long()], dim=1)
    if replay_routing:
        if rollout.routing is None:
            raise ValueError(
                "sequence_log_probs: replay_routing=True needs Rollout.routing (sample a "
                "mixture-of-experts model with generate(..., record_routing=True))"
            )
        with routing_replay(model, rollout.routing):
            logits, _ = model(ids, mask, positions_from_mask(mask))
    else:
        logits, _ = model(ids, mask, positions_from_mask(mask))
    P = rollout.prompt_ids.shape[1]
    T = rollout.response_ids.shape[1]
    logp_full = F.log_softmax(to_compute(logits[:, P - 1 : P - 1 + T]), dim=-1)
    lp = logp_full.gather(-1, rollout.response_ids[..., None]).squeeze(-1)
    lp = lp * rollout.response_mask
    return (lp, logp_full) if return_full else lp
