"""A small causal transformer (pre-LayerNorm GPT) with a key/value cache, written in torch.

The one call signature shared with the Hugging Face adapter (``simulations.lm.hf``)::

    logits, present = model(idx, attn_mask, pos_ids, past=None)

``idx`` [B, S] token ids; ``attn_mask`` [B, P + S] (1 = real token, 0 = padding) over the cached
prefix of length P plus the new tokens; ``pos_ids`` [B, S] positions of the new tokens; ``past``
the ``present`` of the previous call (None for a fresh sequence). Prompts are left-padded, so
positions are counted from each row's first real token. Attention is an explicit softmax (in
float32 at least; deterministic on CPU); every query may attend to itself, so a padding row
gets finite (ignored) values instead of NaN.

``GPTConfig.attn = "sdpa"`` (opt-in; the default ``"explicit"`` is the code above, unchanged)
computes the same attention with ``torch.nn.functional.scaled_dot_product_attention`` and a
boolean mask: equal up to float rounding, without materialising the [B, H, S, S] score
tensors, which is what makes responses of ~1,000 tokens affordable on CPU (the long-response
task ``count-long``; docs/lm.md).

``GPTConfig.n_expert > 0`` (opt-in; the default 0 is the dense MLP above, unchanged: same
parameters, init order and numbers) replaces each block's MLP by a top-``top_k`` routed mixture
of ``n_expert`` small FFN experts (``simulations.lm.moe.MoEFFN``; Switch Transformer, Fedus et
al. arXiv 2101.03961; Mixtral, Jiang et al. arXiv 2401.04088). Its routing is recorded, replayed
or perturbed through the context managers of ``simulations.lm.moe``; the call signature stays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from simulations.lm.moe import MoEFFN

__all__ = ["ATTN_IMPLS", "GPT", "GPTConfig", "positions_from_mask"]

ATTN_IMPLS = ("explicit", "sdpa")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    d_model: int = 96
    n_layer: int = 2
    n_head: int = 4
    max_len: int = 96
    attn: str = "explicit"  # explicit | sdpa (see the module docstring)
    n_expert: int = 0  # 0: the dense MLP; > 0: a routed mixture of n_expert FFN experts
    top_k: int = 2  # experts per token when n_expert > 0 (1 <= top_k <= n_expert)

    def __post_init__(self) -> None:
        if self.attn not in ATTN_IMPLS:
            raise ValueError(f"GPTConfig.attn must be one of {ATTN_IMPLS}, got {self.attn!r}")
        for name in ("vocab_size", "d_model", "n_layer", "n_head", "max_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"GPTConfig.{name} must be an integer >= 1, got {v!r}")
        for name, low in (("n_expert", 0), ("top_k", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"GPTConfig.{name} must be an integer >= {low}, got {v!r}")
        if self.n_expert > 0 and self.top_k > self.n_expert:
            raise ValueError(
                f"GPTConfig.top_k ({self.top_k}) must be <= n_expert ({self.n_expert})"
            )
        if self.d_model % self.n_head:
            raise ValueError(
                f"GPTConfig.d_model ({self.d_model}) must be divisible by n_head ({self.n_head})"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def positions_from_mask(attn_mask: torch.Tensor) -> torch.Tensor:
    """Position of each token counted from its row's first real token (0 on left padding)."""
    return (attn_mask.long().cumsum(-1) - 1).clamp(min=0)


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.sdpa = cfg.attn == "sdpa"
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        if cfg.n_expert > 0:
            self.mlp = MoEFFN(d, cfg.n_expert, cfg.top_k)
        else:
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, bias, past):
        B, S, D = x.shape
        H = self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, S, H, D // H).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if self.sdpa:  # bias is the boolean mask [B, 1, S, P+S] here
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H)) + bias
            low = att.dtype in (torch.float16, torch.bfloat16)  # softmax in >= float32
            att = torch.softmax(att.float() if low else att, dim=-1).to(v.dtype)
            y = att @ v
        y = y.transpose(1, 2).reshape(B, S, D)
        x = x + self.proj(y)
        x = x + self.mlp(self.ln2(x))
        return x, (k, v)


class GPT(nn.Module):
    """Token + learned position embeddings, ``n_layer`` pre-LN blocks, an untied LM head."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    def forward(self, idx, attn_mask, pos_ids, past=None):
        B, S = idx.shape
        P = 0 if past is None else past[0][0].shape[2]
        if attn_mask.shape != (B, P + S):
            raise ValueError(
                f"attn_mask: expected shape {(B, P + S)} (cached {P} + new {S}), "
                f"got {tuple(attn_mask.shape)}"
            )
        if int(pos_ids.max()) >= self.cfg.max_len:
            raise ValueError(
                f"sequence too long: position {int(pos_ids.max())} >= max_len {self.cfg.max_len}"
            )
        x = self.tok(idx) + self.pos(pos_ids)
        # query i (absolute P + i) sees key j if j <= P + i and key j is real; always itself.
        q_abs = torch.arange(P, P + S, device=idx.device)[:, None]
        k_abs = torch.arange(P + S, device=idx.device)[None, :]
        allowed = (k_abs <= q_abs)[None] & attn_mask.bool()[:, None, :]
        allowed = allowed | (k_abs == q_abs)[None]
        if self.cfg.attn == "sdpa":
            bias = allowed[:, None]  # [B, 1, S, P+S] boolean
        else:
            zero = torch.zeros((), dtype=x.dtype, device=idx.device)
            bias = torch.where(allowed, zero, torch.finfo(x.dtype).min)[:, None]  # [B, 1, S, P+S]
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, bias, None if past is None else past[i])
            present.append(kv)
        return self.head(self.ln_f(x)), present
