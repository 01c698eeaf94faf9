"""Measurement-only mode: how far apart are two checkpoint versions on long responses?

Sample responses from an earlier version (the sampler, mu) and score them under a later one
(pi): the sequence log-weight ``log W = sum_t (log pi - log mu)`` over response tokens. Reported
per response-length bin (powers of two) and over all responses: the distribution of log W
(mean, std, quantiles), E[W] (log-mean-exp), E[phi] and E[phi^2] under VESPO's two kernels
(A >= 0 and A < 0 parameters of ``VespoParams``) against M^2 (claim B2), Kish ESS / n and the
PSIS k-hat (NaN below 20 responses in a bin: too few for a tail fit). Nothing is trained here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import logsumexp

from simulations.lm.sampling import generate, left_pad, sequence_log_probs

__all__ = ["MEASURE_COLUMNS", "length_bins", "measure_log_w", "summarise_log_w"]

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
    from vespo_theory.diagnostics import kish_ess, psis_khat
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
    except ValueError:  # fewer than 20 responses: no tail fit
        khat = math.nan
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
