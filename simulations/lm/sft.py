"""Supervised warm start: teacher-forced next-token training on reference answers.

The result is cached under ``<cache dir>/lm_sft/<key>.pt`` (with a sidecar JSON; the cache dir
is :func:`vespo_theory.cache.cache_dir`: ``--cache-dir``, ``$VESPO_CACHE_DIR``,
``$XDG_CACHE_HOME/vespo-theory`` or ``~/.cache/vespo-theory``), so every RL run of a comparison
starts from the same weights and the warm start runs once. The key (:func:`sft_cache_key`)
holds everything that determines the weights: the config, the alphabet, the file format, the
training recipe version ``SFT_RECIPE`` and torch's major.minor version. The number of steps is
chosen so the model lands at a middling held-out success (RL has room both to improve and to
collapse); see docs/lm.md for the figures.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from simulations.lm.model import ATTN_IMPLS, GPT, GPTConfig, positions_from_mask
from simulations.lm.sampling import generate, left_pad
from simulations.lm.tasks import Task, get_task
from simulations.lm.tokenizer import CharTokenizer
from vespo_theory.cache import cache_dir as resolve_cache_dir
from vespo_theory.provenance import config_hash, git_sha, run_metadata, write_sidecar

__all__ = [
    "SFT_RECIPE",
    "SFTConfig",
    "code_identity",
    "evaluate",
    "load_or_train_sft",
    "make_model",
    "sft_cache_key",
    "torch_minor",
    "train_sft",
]

# The version of the warm-start training recipe. BUMP IT with every change that can change the
# trained weights for the same SFTConfig: make_model / model.py (layout, init), _batch, the
# loss, the optimizer, the RNG streams, the determinism and thread settings of train_sft (the
# change to one deterministic thread changed the weights; a cache keyed without this number
# then served the old weights under the old key). It is part of the cache key.
# 1: before the single-threaded deterministic warm start; 2: since.
SFT_RECIPE = 2

_SFT_FORMAT = 1  # the layout of the cached file (a state_dict of GPT)


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
    # attention implementation of the model (simulations.lm.model.GPTConfig.attn); a new field:
    # it enters the cache key only when not the default, so older keys are unchanged
    attn: str = "explicit"
    # mixture-of-experts FFN (GPTConfig.n_expert / top_k; 0 = the dense MLP); late fields too
    n_expert: int = 0
    top_k: int = 2

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.attn not in ATTN_IMPLS:
            raise ValueError(f"SFTConfig.attn must be one of {ATTN_IMPLS}, got {self.attn!r}")
        GPTConfig(1, n_expert=self.n_expert, top_k=self.top_k)  # its own one-line errors
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"SFTConfig.{name} must be an integer >= 0, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"SFTConfig.lr must be > 0, got {self.lr!r}")


# Fields added to the configs after their first cached runs, with their defaults: a field at its
# default is left out of the warm-start and run cache keys (and of the config comparison on
# resume), so every key written before the field existed stays valid.
LATE_DEFAULTS = {"attn": "explicit", "n_expert": 0, "top_k": 2, "routing_replay": False}


def drop_late_defaults(d: dict) -> dict:
    """``d`` without the late fields that hold their defaults (:data:`LATE_DEFAULTS`).

    >>> drop_late_defaults({"task": "add", "attn": "explicit", "n_expert": 4, "top_k": 2})
    {'task': 'add', 'n_expert': 4}
    """
    return {k: v for k, v in d.items() if not (k in LATE_DEFAULTS and v == LATE_DEFAULTS[k])}


def torch_minor() -> str:
    """torch's ``major.minor`` (``"2.13"``): float kernels, and so trained weights, may change
    between minor versions; patch releases are taken not to."""
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def code_identity(**recipes: int) -> dict:
    """Which code made an artefact: git SHA, ``sft_recipe`` (plus ``recipes``, e.g. the RL
    loop's), the vespo-theory package version and the torch version."""
    from importlib import metadata

    try:
        pkg = metadata.version("vespo-theory")
    except metadata.PackageNotFoundError:  # a checkout on sys.path, never installed
        pkg = None
    return {
        "git_sha": git_sha(),
        "sft_recipe": SFT_RECIPE,
        **recipes,
        "vespo_theory": pkg,
        "torch": torch.__version__,
    }


def sft_cache_key(cfg: SFTConfig) -> tuple[str, dict]:
    """(key, the dict hashed into it) of the warm start of ``cfg``.

    The dict holds everything that determines the weights: the config, the tokenizer's alphabet,
    the file format, the recipe version ``SFT_RECIPE`` and torch's major.minor (the weights are
    trained on CPU, so the device is not part of it).
    """
    key_cfg = {
        "kind": "lm_sft",
        "chars": CharTokenizer().chars,
        "format": _SFT_FORMAT,
        "recipe": SFT_RECIPE,
        "torch": torch_minor(),
        **drop_late_defaults(asdict(cfg)),  # keys of configs older than a late field unchanged
    }
    return config_hash(key_cfg), key_cfg


def make_model(cfg: SFTConfig, tok: CharTokenizer, task: Task) -> GPT:
    """A fresh model sized for the task's longest prompt + response."""
    max_len = task.max_len * 2 + 3 + task.max_response_len() + 1
    gcfg = GPTConfig(
        tok.vocab_size,
        cfg.d_model,
        cfg.n_layer,
        cfg.n_head,
        max_len,
        cfg.attn,
        n_expert=cfg.n_expert,
        top_k=cfg.top_k,
    )
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
    Any change here or in ``_train_sft`` / ``make_model`` that changes the weights must bump
    ``SFT_RECIPE`` (the cache key), or cached warm starts of the old code are served as new.
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
    # training code of the warm start: a change that alters the weights bumps SFT_RECIPE
    task, tok = get_task(cfg.task), CharTokenizer()
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, tok, task).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    rng = np.random.default_rng([cfg.seed, 7])
    it = range(cfg.steps)
    if progress:
        import sys

        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"sft {cfg.task}", leave=False, file=sys.stderr)
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
    """The warm-start model for ``cfg``: loaded from the cache, or trained and cached (CPU).

    The file is ``<cache>/lm_sft/<sft_cache_key>.pt``, ``<cache>`` from
    :func:`vespo_theory.cache.cache_dir` (``cache_dir`` if given). Its sidecar JSON holds the
    key's fields, the greedy held-out success on 256 prompts and ``code`` (:func:`code_identity`).
    """
    sft_dir = resolve_cache_dir(cache_dir) / "lm_sft"
    task, tok = get_task(cfg.task), CharTokenizer()
    key, key_cfg = sft_cache_key(cfg)
    path = sft_dir / f"{key}.pt"
    if path.exists():
        model = make_model(cfg, tok, task)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(device)
    t0 = time.time()
    # Trained on CPU so that the cached weights do not depend on the device of the first run.
    model = train_sft(cfg, device="cpu", progress=progress)
    sft_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parallel cells: own temp file
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    heldout = task.sample(np.random.default_rng([cfg.seed, 99]), 256)
    meta = run_metadata(key_cfg, seed=cfg.seed, device="cpu")
    meta["heldout_success"] = evaluate(model, task, tok, heldout, "cpu")
    meta["code"] = code_identity()
    write_sidecar(path.with_suffix(".json"), meta, wall_time=time.time() - t0)
    return model.to(device)
