"""Generation with a KV cache, an optional mismatched sampler engine, and trainer log-probs.

A rollout keeps what the RL loss needs: left-padded prompts, responses (EOS included, padding
after it), the response mask, and the sampler's log-probabilities of the sampled tokens
(``rollout_log_prob``, log mu) together with the sampler's full next-token log-distribution
(for the exact KL(sampler || trainer) per position).

Engine mismatch (``SamplerEngine``): ``bf16`` runs the sampler's copy of the weights and its
activations in bfloat16 (as an inference engine in lower precision would), ``noise:SIGMA`` adds
seeded Gaussian noise of standard deviation SIGMA to the sampler's logits. Either makes
pi_sampler != pi_old even when the weights are the same version.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from simulations.lm.model import positions_from_mask
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
    """How the sampler differs from the trainer: kind in none | bf16 | noise (with ``sigma``)."""

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


def parse_mismatch(spec: str | None) -> SamplerEngine:
    """``None``/"none" -> no mismatch; "bf16"; "noise:SIGMA" with SIGMA > 0."""
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
    raise ValueError(f"--mismatch: expected none, bf16 or noise:SIGMA, got {spec!r}")


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

    def index(self, sel) -> Rollout:
        full = None if self.sampler_logp_full is None else self.sampler_logp_full[sel]
        return Rollout(
            self.prompt_ids[sel],
            self.prompt_mask[sel],
            self.response_ids[sel],
            self.response_mask[sel],
            self.rollout_log_prob[sel],
            full,
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
) -> Rollout:
    """Sample (or greedily decode) up to ``max_new_tokens`` response tokens per prompt.

    ``model`` is already the sampler's module (see ``SamplerEngine.prepare``). Without the cache
    every step re-runs the whole prefix (same numbers up to float rounding; for benchmarks).
    """
    engine = engine or SamplerEngine()
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
    return Rollout(
        prompt_ids,
        prompt_mask,
        torch.stack(out_ids, 1),
        torch.stack(out_mask, 1),
        torch.stack(out_lp, 1),
        torch.stack(out_full, 1) if keep_full else None,
    )


def sequence_log_probs(model, rollout: Rollout, *, return_full: bool = False):
    """Trainer log pi(y_t | prefix) [B, T] of the rollout's responses (0 where masked).

    With ``return_full`` also the full log-distribution [B, T, V] at each response position.
    """
    ids = torch.cat([rollout.prompt_ids, rollout.response_ids], dim=1)
    mask = torch.cat([rollout.prompt_mask, rollout.response_mask.long()], dim=1)
    logits, _ = model(ids, mask, positions_from_mask(mask))
    P = rollout.prompt_ids.shape[1]
    T = rollout.response_ids.shape[1]
    logp_full = F.log_softmax(to_compute(logits[:, P - 1 : P - 1 + T]), dim=-1)
    lp = logp_full.gather(-1, rollout.response_ids[..., None]).squeeze(-1)
    lp = lp * rollout.response_mask
    return (lp, logp_full) if return_full else lp
