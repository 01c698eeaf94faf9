"""Measurement-only mode: how far apart are two checkpoint versions on long responses?

Sample responses from an earlier version (the sampler, mu) and score them under a later one
(pi): the sequence log-weight ``log W = sum_t (log pi - log mu)`` over response tokens. Reported
per response-length bin (powers of two) and over all responses: the distribution of log W
(mean, std, quantiles), E[W] (log-mean-exp), E[phi] and E[phi^2] under VESPO's two kernels
(A >= 0 and A < 0 parameters of ``VespoParams``) against M^2 (claim B2), Kish ESS / n and the
PSIS k-hat (NaN below 20 responses in a bin: too few for a tail fit) with its sample-size
dependent threshold ``khat_thresh`` = min(1 - 1/log10 n, 0.7) for the bin's n responses
(Vehtari et al. 2024, arXiv 1507.02646 §3.2.4, Eq. 13; NaN with k-hat).

:func:`run_measurement` is the whole workflow of ``vespo train-lm --measure``: the early version
(the warm start, or a HF checkpoint), the later one (``steps`` RL steps of the built-in model,
or a second HF checkpoint), sampling, measurement, ``measure.csv`` and its sidecar.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp

from simulations.lm.sampling import generate, left_pad, sequence_log_probs

__all__ = [
    "MEASURE_COLUMNS",
    "length_bins",
    "measure_log_w",
    "run_measurement",
    "summarise_log_w",
    "write_sequence_log",
]

MEASURE_COLUMNS = [
    "bin",
    "len_lo",
    "len_hi",
    "n",
    "log_w_mean",
    "log_w_std",
    "log_w_q05",
    "log_w_q50",
    "log_w_q95",
    "log_mean_w",
    "phi_pos_mean",
    "phi2_pos_mean",
    "m2_pos",
    "phi_neg_mean",
    "phi2_neg_mean",
    "m2_neg",
    "ess_frac",
    "khat",
    "khat_thresh",
]


def length_bins(max_len: int) -> list[tuple[int, int]]:
    """[lo, hi) bins 1-2, 2-4, 4-8, ... covering 1..max_len.

    >>> length_bins(10)
    [(1, 2), (2, 4), (4, 8), (8, 16)]
    """
    out, lo = [], 1
    while lo <= max_len:
        out.append((lo, 2 * lo))
        lo *= 2
    return out


def summarise_log_w(seq_log_w: np.ndarray) -> dict:
    """The statistics of one group of sequence log-weights (float64)."""
    from vespo_theory.bounds import kernel_bound
    from vespo_theory.diagnostics import khat_threshold, kish_ess, psis_khat
    from vespo_theory.kernels import phi
    from vespo_theory.params import VespoParams

    x = np.asarray(seq_log_w, dtype=np.float64)
    n = x.size
    vp = VespoParams()
    out = {"n": n}
    if n == 0:
        return out
    phi_pos = phi(x, vp.k_pos, vp.lam_pos)
    phi_neg = phi(x, vp.k_neg, vp.lam_neg)
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    try:
        khat = psis_khat(x)
        khat_thresh = khat_threshold(n)  # psis_khat needs n >= 20, so S = n >= 2 holds
    except ValueError:  # fewer than 20 responses: no tail fit
        khat = khat_thresh = math.nan
    out.update(
        log_w_mean=float(x.mean()),
        log_w_std=float(x.std(ddof=1)) if n > 1 else 0.0,
        log_w_q05=float(q05),
        log_w_q50=float(q50),
        log_w_q95=float(q95),
        log_mean_w=float(logsumexp(x) - math.log(n)),
        phi_pos_mean=float(phi_pos.mean()),
        phi2_pos_mean=float((phi_pos**2).mean()),
        m2_pos=kernel_bound(vp.k_pos, vp.lam_pos).M2,
        phi_neg_mean=float(phi_neg.mean()),
        phi2_neg_mean=float((phi_neg**2).mean()),
        m2_neg=kernel_bound(vp.k_neg, vp.lam_neg).M2,
        ess_frac=float(kish_ess(x)) / n,
        khat=float(khat),
        khat_thresh=float(khat_thresh),
    )
    return out


@torch.no_grad()
def measure_log_w(
    sampler_model,
    scorer_model,
    tok,
    prompts: list[str],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    generator: torch.Generator,
    device,
    chunk: int = 64,
) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Rows per length bin (and one ``all`` row), plus the raw seq log W [n] and lengths [n].

    ``sampler_model`` (version v) draws the responses with a KV cache; ``scorer_model`` (a later
    version) rescores them by a full forward. mu is the sampler's own log-prob of each token.
    """
    if samples_per_prompt < 1 or max_new_tokens < 1:
        raise ValueError("samples_per_prompt and max_new_tokens must be >= 1")
    sampler_model.eval()
    scorer_model.eval()
    seqs = [[tok.bos_id, *tok.encode(p)] for p in prompts for _ in range(samples_per_prompt)]
    all_lw, all_len = [], []
    for i in range(0, len(seqs), chunk):
        ids, mask = left_pad(seqs[i : i + chunk], tok.pad_id, device)
        r = generate(
            sampler_model,
            ids,
            mask,
            max_new_tokens,
            eos_id=tok.eos_id,
            pad_id=tok.pad_id,
            generator=generator,
        )
        lp_later = sequence_log_probs(scorer_model, r)
        lw = ((lp_later.float() - r.rollout_log_prob.float()) * r.response_mask).sum(-1)
        all_lw.append(lw.double().cpu().numpy())
        all_len.append(r.response_mask.sum(-1).long().cpu().numpy())
    seq_log_w = np.concatenate(all_lw)
    lengths = np.concatenate(all_len)
    rows = []
    for lo, hi in length_bins(int(lengths.max())):
        sel = (lengths >= lo) & (lengths < hi)
        if sel.any():
            rows.append(
                {"bin": f"[{lo},{hi})", "len_lo": lo, "len_hi": hi}
                | summarise_log_w(seq_log_w[sel])
            )
    rows.append(
        {"bin": "all", "len_lo": int(lengths.min()), "len_hi": int(lengths.max()) + 1}
        | summarise_log_w(seq_log_w)
    )
    return rows, seq_log_w, lengths


def write_sequence_log(
    path: str | os.PathLike,
    seq_log_w: np.ndarray,
    lengths: np.ndarray,
    advantage: np.ndarray | None = None,
    step: np.ndarray | None = None,
) -> Path:
    """Write per-sequence log W in the format ``vespo diagnose`` reads (docs/integrations.md).

    One CSV row per sequence: ``log_w`` (float64, written with ``repr`` so that it reads back
    bit for bit), ``length`` (response tokens), ``advantage`` (0.0 where None is given: a
    measurement has no reward) and ``step`` when given. ``seq_log_w`` and ``lengths`` are what
    :func:`measure_log_w` returns. The file is written to a temporary name and renamed.
    """
    lw = np.asarray(seq_log_w, dtype=np.float64).reshape(-1)
    ln = np.asarray(lengths).reshape(-1)
    adv = np.zeros_like(lw) if advantage is None else np.asarray(advantage, np.float64).reshape(-1)
    cols = {"log_w": lw, "length": ln, "advantage": adv}
    if step is not None:
        cols["step"] = np.asarray(step).reshape(-1)
    for name, v in cols.items():
        if v.shape != lw.shape:
            raise ValueError(f"{name}: expected {lw.size} entries (one per sequence), got {v.size}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(cols))
        for i in range(lw.size):
            w.writerow(
                [repr(float(lw[i])), int(ln[i]), repr(float(adv[i]))]
                + ([int(cols["step"][i])] if "step" in cols else [])
            )
    os.replace(tmp, path)
    return path


def run_measurement(
    cfg,
    out_dir: str | os.PathLike,
    *,
    device: str = "auto",
    later_model: str | None = None,
    measure_prompts: int = 64,
    samples_per_prompt: int = 4,
    max_new_tokens: int | None = None,
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Measure log W between two versions of ``cfg`` (an ``LMRunConfig``) into ``out_dir``.

    Built-in model (``cfg.model`` None): the early version is the warm start, the later one the
    model after ``cfg.steps`` RL steps of ``cfg.rule`` (trained, or resumed, in
    ``out_dir/train``). HF path: ``cfg.model`` is early, ``later_model`` later (required).
    ``measure_prompts`` prompts (seeded by ``cfg.seed``) x ``samples_per_prompt`` responses of
    at most ``max_new_tokens`` tokens (default: the task's longest answer, 256 on the HF path).

    Returns ``{"rows": [...], "csv": Path, "sidecar": Path, "max_new_tokens": int}``; raises
    ValueError (one line naming the option) on bad input.
    """
    from simulations.lm.rl import build_model, resolve_device, run
    from simulations.lm.tasks import get_task
    from vespo_theory.provenance import run_metadata, write_sidecar

    for name, v in (
        ("--measure-prompts", measure_prompts),
        ("--samples-per-prompt", samples_per_prompt),
        ("--max-new-tokens", max_new_tokens),
    ):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if cfg.model is not None and later_model is None:
        raise ValueError("--measure with --model needs --later-model (the later version)")
    if cfg.model is None and later_model is not None:
        raise ValueError("--later-model is for HF checkpoints; give --model too")
    t0 = time.time()
    dev = resolve_device(device)
    out = Path(out_dir)
    task = get_task(cfg.task)
    previous_threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)  # as in the RL runs: numbers independent of the core count
    try:
        if cfg.model is not None:
            from simulations.lm.hf import load_hf

            early, tok = load_hf(cfg.model, dev)
            later, _ = load_hf(later_model, dev)
            max_new = max_new_tokens or 256
        else:
            early, tok = build_model(cfg, dev, progress=progress, cache_dir=cache_dir)
            run(cfg, out / "train", device=str(dev), progress=progress, cache_dir=cache_dir)
            later, _ = build_model(cfg, dev, progress=False, cache_dir=cache_dir)
            ck = torch.load(out / "train" / "checkpoint.pt", map_location=dev, weights_only=False)
            later.load_state_dict(ck["model"])
            max_new = max_new_tokens or task.max_response_len()
        prompts = task.sample(np.random.default_rng([cfg.seed, 5]), measure_prompts)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        rows, _, _ = measure_log_w(
            early,
            later,
            tok,
            prompts,
            samples_per_prompt=samples_per_prompt,
            max_new_tokens=max_new,
            generator=gen,
            device=dev,
        )
    finally:
        torch.set_num_threads(previous_threads)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "measure.csv"
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MEASURE_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, csv_path)
    from dataclasses import asdict

    from simulations.lm.rl import RL_RECIPE
    from simulations.lm.sft import code_identity

    meta = run_metadata(
        {
            "mode": "measure",
            "run": asdict(cfg),
            "later_model": later_model,
            "max_new_tokens": max_new,
            "measure_prompts": measure_prompts,
            "samples_per_prompt": samples_per_prompt,
        },
        seed=cfg.seed,
        device=dev,
    )
    meta["code"] = code_identity(rl_recipe=RL_RECIPE)
    sidecar = write_sidecar(out / "measure.json", meta, wall_time=time.time() - t0)
    return {"rows": rows, "csv": csv_path, "sidecar": sidecar, "max_new_tokens": max_new}
