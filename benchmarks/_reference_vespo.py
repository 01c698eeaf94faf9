"""A straightforward VESPO loss in the style of the reference code, for comparison only.

Written in the manner of FloyedShen/VESPO ``recipe/vespo/code/core_algos.py``
(``compute_policy_loss_vespo``): separate elementwise ops, each with its own [B, T] temporary,
log-ratios clamped to +-20, multiplication by the mask, and every metric pulled to the host with
``.item()``. Used by ``bench_vespo_loss.py`` as baseline (a) and by tests/test_losses.py to check
that our VESPO gradient agrees with it where its clamps are inactive. Not part of the library.
"""

from __future__ import annotations

import torch


def _agg(loss_mat, mask, mode):
    # veRL's agg_loss (verl/trainer/ppo/core_algos.py)
    if mode == "token-mean":
        return (loss_mat * mask).sum() / mask.sum()
    seq = (loss_mat * mask).sum(-1)
    if mode == "seq-mean-token-sum":
        return seq.mean()
    if mode == "seq-mean-token-mean":
        return (seq / mask.sum(-1)).mean()
    if mode == "seq-mean-token-sum-norm":
        return seq.mean() / mask.shape[-1]
    raise ValueError(mode)


def reference_vespo_loss(
    old_log_prob,
    log_prob,
    advantages,
    response_mask,
    loss_agg_mode="token-mean",
    rollout_is_weights=None,
    k_pos=2.0,
    lam_pos=3.0,
    k_neg=3.0,
    lam_neg=2.0,
):
    """Reference-style VESPO loss: returns (loss, metrics of Python floats)."""
    log_ratio = log_prob - old_log_prob
    log_ratio = torch.clamp(log_ratio, -20.0, 20.0)
    seq_log_ratio = torch.sum(log_ratio * response_mask, dim=-1)
    if rollout_is_weights is not None:
        log_tis = torch.log(rollout_is_weights.clamp(min=1e-8))
        log_tis = torch.clamp(log_tis, -20.0, 20.0)
        seq_log_ratio = seq_log_ratio + torch.sum(log_tis * response_mask, dim=-1)
    seq_log_ratio_clamped = torch.clamp(seq_log_ratio, -20.0, 20.0)
    w_seq = torch.exp(seq_log_ratio_clamped.detach())
    seq_adv = advantages[:, 0] if advantages.dim() > 1 else advantages
    pos = (seq_adv >= 0).float()
    neg = 1.0 - pos
    k = pos * k_pos + neg * k_neg
    lam = pos * lam_pos + neg * lam_neg
    lam_safe = torch.clamp(lam, min=1e-4)
    log_w = torch.log(w_seq.clamp(min=1e-8))
    log_phi = lam_safe + k * log_w - lam_safe * w_seq
    phi = torch.exp(log_phi).detach()
    phi = torch.nan_to_num(phi, nan=0.0, posinf=0.0, neginf=0.0)
    loss_mat = -phi.unsqueeze(-1) * advantages * log_prob
    loss = _agg(loss_mat, response_mask, loss_agg_mode)
    with torch.no_grad():
        lengths = response_mask.sum(-1).clamp(min=1)
        metrics = {
            "approx_kl": (-seq_log_ratio / lengths).mean().item(),
            "w_seq_mean": w_seq.mean().item(),
            "w_seq_max": w_seq.max().item(),
            "w_seq_min": w_seq.min().item(),
            "w_seq_std": w_seq.std().item(),
            "log_w_seq_mean": seq_log_ratio_clamped.mean().item(),
            "log_w_seq_max": seq_log_ratio_clamped.max().item(),
            "log_w_seq_min": seq_log_ratio_clamped.min().item(),
            "phi_mean": phi.mean().item(),
            "phi_max": phi.max().item(),
            "phi_min": phi.min().item(),
        }
        pos_m, neg_m = seq_adv > 0, seq_adv < 0
        if pos_m.any():
            metrics["phi_pos_mean"] = phi[pos_m].mean().item()
            metrics["n_pos_seq"] = pos_m.sum().item()
        if neg_m.any():
            metrics["phi_neg_mean"] = phi[neg_m].mean().item()
            metrics["n_neg_seq"] = neg_m.sum().item()
            noisy = w_seq[neg_m] > 100.0
            metrics["neg_noise_count"] = noisy.sum().item()
    return loss, metrics
