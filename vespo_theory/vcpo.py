r"""VCPO's off-policy optimal baseline (OPOB), from per-sequence score-gradient norms.

Variance Controlled Off-Policy Optimization (Huang et al., arXiv 2602.17616; code
mit-han-lab/vcpo) is REINFORCE with the sequence IS weight w_i = W_i, the step scaled by
sqrt(ESS/B) (the registry rule ``vcpo``, :func:`vespo_theory.coefficients.vcpo_coefficient`),
and the baseline that minimises the variance of the IS-weighted REINFORCE estimate
sum_i w_i (R_i - b) g_i (g_i = grad log pi(tau_i), the whole sequence's score):

.. math:: b^\star = \frac{\sum_i w_i^2 \|g_i\|^2 R_i}{\sum_i w_i^2 \|g_i\|^2}

(README.md of mit-han-lab/vcpo; recipe/fully_async_policy/staleness_utils.py,
``compute_opob_baseline``: weights ``grad_norm_unscaled ** 2 * seq_is_ratio ** 2``, the
unclipped sequence ratio, no length normalisation, a weighted mean per group of responses to one
prompt in the released scripts, ``grad_baselining_scope="group"``).

A coefficient cannot supply it: ||g_i||^2 is a per-sequence gradient norm, which the registry
never sees. The caller (the LM lab, which computes per-sequence gradients) passes it here and
uses ``R_i - b*`` (the released scripts also divide by the group's reward std,
``grad_baselining_norm_by_std=True``) as the advantage of the ``vcpo`` rule.

Computed in float64 with w^2 ||g||^2 in log space (``2 log w + log ||g||^2``, shifted by its
maximum), so sequence weights of any size (log W ~ +-1e4) give a finite answer.
"""

from __future__ import annotations

import numpy as np

from vespo_theory.array_ops import as_float_array, is_torch

__all__ = ["vcpo_baseline", "vcpo_group_baselines"]


def _vector(x, name: str) -> np.ndarray:
    if is_torch(x):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(as_float_array(x, name), dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN (at index {int(np.flatnonzero(np.isnan(a))[0])})")
    return a


def _inputs(log_w, g_norm2, reward):
    lw = _vector(log_w, "log_w")
    g2 = _vector(g_norm2, "g_norm2")
    R = _vector(reward, "reward")
    if not (lw.shape == g2.shape == R.shape):
        raise ValueError(
            f"log_w, g_norm2 and reward must have the same length, got {lw.size}, {g2.size}, "
            f"{R.size}"
        )
    if np.isposinf(lw).any():
        raise ValueError("log_w contains +inf; pass the finite log-weight (log space)")
    if not np.isfinite(g2).all() or (g2 < 0).any():
        raise ValueError("g_norm2 must hold finite squared norms >= 0")
    if not np.isfinite(R).all():
        raise ValueError("reward must be finite")
    return lw, g2, R


def vcpo_baseline(log_w, g_norm2, reward) -> float:
    r"""b* = sum_i w_i^2 g_i R_i / sum_i w_i^2 g_i, with w_i = exp(log_w_i), g_i = g_norm2_i.

    Parameters
    ----------
    log_w : [n] sequence log-weights log W_i = sum_t (log pi - log mu) (finite or -inf: w = 0).
    g_norm2 : [n] squared norms ||grad log pi(tau_i)||^2 of the sequences' scores (>= 0).
    reward : [n] the sequences' rewards R_i (finite).

    Returns a Python float. When every weight w_i^2 g_i is 0 (every score gradient 0, or every
    w = 0) each term w_i (R_i - b) g_i of the estimate is 0 whatever b is; the plain mean reward
    is returned then (the on-policy group-mean baseline), never NaN. Bad input (NaN, +inf
    log-weight, negative or non-finite norms, non-finite rewards, lengths that differ, not 1-D)
    raises ValueError naming the argument.

    >>> # w = (1, 2, 1), ||g||^2 = (1, 1, 4): weights 1, 4, 4 on rewards 0, 1, 0 -> 4/9
    >>> round(vcpo_baseline(np.log([1.0, 2.0, 1.0]), [1.0, 1.0, 4.0], [0.0, 1.0, 0.0]), 12)
    0.444444444444
    """
    lw, g2, R = _inputs(log_w, g_norm2, reward)
    with np.errstate(divide="ignore"):
        a = 2.0 * lw + np.log(g2)  # log(w^2 ||g||^2); -inf for a zero weight
    if np.isneginf(a).all():
        return float(R.mean())
    e = np.exp(a - a.max())  # the largest weight is 1: no overflow, the sum is >= 1
    return float(e @ R / e.sum())


def vcpo_group_baselines(log_w, g_norm2, reward, group) -> np.ndarray:
    """b* of each row's group (``group``: [n] labels, e.g. the prompt index), as a float64 [n]
    array: :func:`vcpo_baseline` over the rows of each group (the released scripts' scope).

    >>> vcpo_group_baselines(np.zeros(4), np.ones(4), [0.0, 1.0, 2.0, 4.0], [0, 0, 1, 1])
    array([0.5, 0.5, 3. , 3. ])
    """
    lw, g2, R = _inputs(log_w, g_norm2, reward)
    labels = np.asarray(group.detach().cpu().numpy() if is_torch(group) else group)
    if labels.shape != lw.shape:
        raise ValueError(
            f"group must have shape {lw.shape} (one label per row), got {labels.shape}"
        )
    out = np.empty_like(R)
    for g in np.unique(labels):
        sel = labels == g
        out[sel] = vcpo_baseline(lw[sel], g2[sel], R[sel])
    return out
