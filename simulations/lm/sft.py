"""Supervised warm start: teacher-forced next-token training on reference answers.

The result is cached under ``outputs/cache/lm_sft/<config hash>.pt`` (with a sidecar JSON), so
every RL run of a comparison starts from the same weights and the warm start runs once. The
number of steps is chosen so the model lands at a middling held-out success (RL has room both
to improve and to collapse); see docs/lm.md for the figures.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from simulations.lm.model import GPT, GPTConfig, positions_from_mask
from simulations.lm.sampling import generate, left_pad
from simulations.lm.tasks import Task, get_task
from simulations.lm.tokenizer import CharTokenizer
from vespo_theory.provenance import config_hash, run_metadata, write_sidecar

__all__ = ["SFTConfig", "evaluate", "load_or_train_sft", "make_model", "train_sft"]

DEFAULT_CACHE = Path("outputs/cache/lm_sft")


@dataclass(frozen=True)
class SFTConfig:
    task: str = "add"
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    steps: int = 250
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        get_task(self.task)
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"SFTConfig.{name} must be an integer >= 0, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"SFTConfig.lr must be > 0, got {self.lr!r}")


def make_model(cfg: SFTConfig, tok: CharTokenizer, task: Task) -> GPT:
    """A fresh model sized for the task's longest prompt + response."""
    max_len = task.max_len * 2 + 3 + task.max_response_len() + 1
    gcfg = GPTConfig(tok.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, max_len)
    return GPT(gcfg)


def _batch(task: Task, tok: CharTokenizer, prompts: list[str], device):
    seqs, plen = [], []
    for p in prompts:
        pr = [tok.bos_id, *tok.encode(p)]
        seqs.append(pr + tok.encode(task.answer(p)) + [tok.eos_id])
        plen.append(len(pr))
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), tok.pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(seqs), L), dtype=torch.float32)
    attn = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, (s, n) in enumerate(zip(seqs, plen)):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        loss_mask[i, n : len(s)] = 1.0  # predict response tokens and EOS
    return ids.to(device), attn.to(device), loss_mask.to(device)


def encode_prompts(task: Task, tok: CharTokenizer, prompts: list[str], device):
    """Left-padded BOS + prompt ids and mask."""
    return left_pad([[tok.bos_id, *tok.encode(p)] for p in prompts], tok.pad_id, device)


@torch.no_grad()
def evaluate(model, task: Task, tok: CharTokenizer, prompts: list[str], device) -> float:
    """Greedy-decoding success rate on ``prompts``."""
    was_training = model.training
    model.eval()
    ids, mask = encode_prompts(task, tok, prompts, device)
    r = generate(
        model,
        ids,
        mask,
        task.max_response_len(),
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        greedy=True,
    )
    model.train(was_training)
    resp = [tok.decode(row) for row in r.response_ids.tolist()]
    return float(np.mean([task.reward(p, y) for p, y in zip(prompts, resp)]))


def train_sft(cfg: SFTConfig, device="cpu", progress: bool = False) -> GPT:
    """Train the warm-start model from scratch (seeded; deterministic on CPU).

    Runs under ``torch.use_deterministic_algorithms(True)`` and one CPU thread (both restored
    afterwards): the weights must not depend on the caller's settings or the core count.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # the thread count changes float summation order
    try:
        return _train_sft(cfg, device, progress)
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def _train_sft(cfg: SFTConfig, device, progress: bool) -> GPT:
    task, tok = get_task(cfg.task), CharTokenizer()
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, tok, task).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    rng = np.random.default_rng([cfg.seed, 7])
    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"sft {cfg.task}", leave=False)
    for _ in it:
        ids, attn, lmask = _batch(task, tok, task.sample(rng, cfg.batch_size), device)
        logits, _ = model(ids[:, :-1], attn[:, :-1], positions_from_mask(attn[:, :-1]))
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        )
        m = lmask[:, 1:].reshape(-1)
        loss = (nll * m).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def load_or_train_sft(
    cfg: SFTConfig, device="cpu", cache_dir: str | Path | None = None, progress: bool = False
) -> GPT:
    """The warm-start model for ``cfg``: loaded from the cache, or trained and cached (CPU)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    task, tok = get_task(cfg.task), CharTokenizer()
    # the key also holds the alphabet and a format version: a cached file never meets a
    # tokenizer or model layout it was not trained for
    key_cfg = {"kind": "lm_sft", "chars": tok.chars, "format": 1, **asdict(cfg)}
    key = config_hash(key_cfg)
    path = cache_dir / f"{key}.pt"
    if path.exists():
        model = make_model(cfg, tok, task)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(device)
    t0 = time.time()
    # Trained on CPU so that the cached weights do not depend on the device of the first run.
    model = train_sft(cfg, device="cpu", progress=progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parallel cells: own temp file
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    heldout = task.sample(np.random.default_rng([cfg.seed, 99]), 256)
    meta = run_metadata(key_cfg, seed=cfg.seed, device="cpu")
    meta["heldout_success"] = evaluate(model, task, tok, heldout, "cpu")
    write_sidecar(path.with_suffix(".json"), meta, wall_time=time.time() - t0)
    return model.to(device)
