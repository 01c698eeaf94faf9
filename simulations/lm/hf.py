"""The LM-scale path: a local Hugging Face causal LM behind the same call as ``model.GPT``.

transformers is an optional extra (``pip install vespo-theory[lm]``), imported only inside
:func:`load_hf`. Nothing is downloaded: the checkpoint directory must hold ``config.json`` and the
weights (``local_files_only=True``). On CUDA the weights load in bfloat16, on CPU in float32.
A tokenizer saved in the directory is used when present; otherwise the character tokenizer of
the synthetic tasks, provided the model's vocabulary is at least as large.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from simulations.lm.tokenizer import CharTokenizer

__all__ = ["HFCausalLM", "HFTokenizer", "load_hf"]


class HFCausalLM(nn.Module):
    """``logits, present = m(idx, attn_mask, pos_ids, past)`` around a transformers model."""

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model

    @property
    def vocab_size(self) -> int:
        return int(self.hf.config.vocab_size)

    def forward(self, idx, attn_mask, pos_ids, past=None):
        out = self.hf(
            input_ids=idx,
            attention_mask=attn_mask,
            position_ids=pos_ids,
            past_key_values=past,
            use_cache=True,
        )
        return out.logits, out.past_key_values


class HFTokenizer:
    """The task-facing tokenizer interface (encode, decode, pad/bos/eos ids) over a HF one."""

    def __init__(self, tok):
        self.tok = tok
        if tok.eos_token_id is None:
            raise ValueError("--model: the tokenizer has no EOS token; the tasks need one")
        self.eos_id = int(tok.eos_token_id)
        self.pad_id = int(tok.pad_token_id) if tok.pad_token_id is not None else self.eos_id
        self.bos_id = int(tok.bos_token_id) if tok.bos_token_id is not None else self.eos_id

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode(ids, skip_special_tokens=True)


def _is_causal_lm(transformers, config) -> bool:
    """The config has a causal-LM class and the saved architecture (if named) is that class."""
    if type(config) not in transformers.MODEL_FOR_CAUSAL_LM_MAPPING:
        return False
    archs = getattr(config, "architectures", None)
    if not archs:
        return True
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update([v] if isinstance(v, str) else v)
    return any(a in names for a in archs)


def load_hf(path: str | Path, device: torch.device, dtype: torch.dtype | None = None):
    """(HFCausalLM, tokenizer) from a local checkpoint directory; clear ValueErrors otherwise."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--model: path {str(p)!r} does not exist")
    if not (p / "config.json").is_file():
        raise ValueError(f"--model: {str(p)!r} has no config.json; not a Hugging Face checkpoint")
    try:
        import transformers
    except ImportError:
        raise ValueError(
            "--model needs the optional 'lm' extra: pip install 'vespo-theory[lm]' (transformers)"
        ) from None
    try:
        config = transformers.AutoConfig.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--model: cannot read the config in {str(p)!r}: {exc}") from None
    if not _is_causal_lm(transformers, config):
        raise ValueError(
            f"--model: {str(p)!r} is a {type(config).__name__} ({config.model_type}), "
            "not a causal language model"
        )
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            p, local_files_only=True, dtype=dtype
        )
    except (OSError, ValueError) as exc:
        raise ValueError(f"--model: cannot load the weights in {str(p)!r}: {exc}") from None
    model = HFCausalLM(hf).to(device)
    try:
        tok = HFTokenizer(transformers.AutoTokenizer.from_pretrained(p, local_files_only=True))
    except (OSError, ValueError, TypeError):
        tok = CharTokenizer()
        if model.vocab_size < tok.vocab_size:
            raise ValueError(
                f"--model: {str(p)!r} has no tokenizer and its vocabulary ({model.vocab_size}) "
                f"is smaller than the character tokenizer's ({tok.vocab_size})"
            ) from None
    return model, tok
