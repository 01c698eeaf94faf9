r"""The 14 reshaping rules' coefficient functions: the effective weight on grad log pi.

Every function here is one rule's body, written once for NumPy and torch through the array ops
``o`` (:class:`~vespo_theory.array_ops.NumpyOps` / :class:`~vespo_theory.array_ops.TorchOps`).
The registry (:mod:`vespo_theory.rules`) validates inputs, masks and casts; these functions only
compute. Notation: r_t = pi_theta / mu of token t, W = prod_t r_t over the valid tokens,
T = number of valid tokens, s = W^(1/T), A the sequence advantage (only its sign is used). The
coefficient c is the seq-mean-token-sum convention: one sequence's gradient is
A sum_t c_t grad log pi(y_t) (docs/rules.md; GSPO, GMPO and SAPO carry their 1/T in c).

Two signatures (``clipped`` is a bool array, True where the rule clipped, masked or saturated,
or None for a rule that never does):

* sequence rules: ``f(o, seq_log_w [B], pos [B] bool, T [B] (>= 1), params) -> (c [B], clipped)``;
* token rules: ``f(o, x [B, T] (0 where masked), mask [B, T] bool, pos [B, 1], T [B, 1], params)
  -> (c [B, T], clipped)``; the caller zeroes c at masked positions.

Saturation: an unbounded coefficient is capped at sqrt(finfo.max) of the compute dtype
(:func:`sat_exp`), so that c * A * grad stays finite.
"""

from __future__ import annotations

import math

__all__ = [
    "sat_exp",
    "log_saturation",
    "is_coefficient",
    "reinforce_coefficient",
    "per_decision_is_coefficient",
    "ppo_clip_coefficient",
    "dual_clip_coefficient",
    "cispo_coefficient",
    "sapo_coefficient",
    "gspo_coefficient",
    "gmpo_coefficient",
    "token_tis_coefficient",
    "seq_tis_coefficient",
    "token_mis_coefficient",
    "seq_mis_coefficient",
    "vespo_coefficient",
]


def log_saturation(o, x) -> float:
    """log of the saturation level sqrt(finfo.max) of x's dtype."""
    return 0.5 * math.log(o.finfo_max(x))


def sat_exp(o, log_x):
    """exp(log_x) saturated at sqrt(finfo.max); returns (value, saturated indicator)."""
    hi = log_saturation(o, log_x)
    return o.exp(o.minimum(log_x, hi)), log_x > hi


# --------------------------------------------------------------------------- sequence rules


def is_coefficient(o, lw, pos, T, p):
    r"""Sequence importance sampling: :math:`c = W`.

    The unbiased ordinary IS estimator of the on-policy gradient from mu's samples (the
    likelihood-ratio / REINFORCE gradient of Williams 1992, reweighted; no arXiv id). Unbounded:
    saturated at sqrt(finfo.max), reported in ``clipped``.
    """
    return sat_exp(o, lw)


def reinforce_coefficient(o, lw, pos, T, p):
    r"""REINFORCE on the behaviour policy's samples: :math:`c = 1`.

    Williams (1992), "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning" (Machine Learning 8; no arXiv id). Off-policy it ignores W: biased,
    no variance from the weight.
    """
    return o.ones_like(lw), None


def vespo_coefficient(o, lw, pos, T, p):
    r"""VESPO: :math:`c = \phi(W) = W^k e^{\lambda (1 - W)}`, (k, lam) by the sign of A.

    VESPO (arXiv 2602.10693); (k, lam) = (2, 3) for A >= 0 and (3, 2) for A < 0
    (:class:`~vespo_theory.params.VespoParams`). Bounded by (k/lam)^k e^(lam - k) (claim K3);
    computed in log space by :func:`vespo_theory.kernels.phi_signed`.
    """
    from vespo_theory.kernels import phi_signed

    adv_sign = o.where(pos, o.ones_like(lw), -o.ones_like(lw))
    return phi_signed(lw, adv_sign, p, check_nan=False), None


def seq_tis_coefficient(o, lw, pos, T, p):
    r"""Sequence truncated IS: :math:`c = \min(W, \mathrm{cap})`.

    Truncated IS of the engine mismatch after Yao et al., "Your efficient RL framework secretly
    brings you off-policy RL training" (2025, blog post, no arXiv id), at sequence level.
    """
    lc = math.log(p.cap)
    return o.exp(o.minimum(lw, lc)), lw > lc


def seq_mis_coefficient(o, lw, pos, T, p):
    r"""Sequence masked IS: :math:`c = W\,1[W \le \mathrm{cap}]` (a sequence above cap is dropped).

    Masked (rejection) IS of the rollout correction: veRL's sequence-level rejection
    (volcengine/verl, verl/trainer/ppo/rollout_corr_helper.py); the token form is IcePop's
    (blog post, no arXiv id).
    """
    lc = math.log(p.cap)
    keep = lw <= lc
    return o.where(keep, o.exp(o.minimum(lw, lc)), 0.0), ~keep


def gspo_coefficient(o, lw, pos, T, p):
    r"""GSPO: :math:`c = (s / T)\,1[s \text{ unclipped on the A side}]`, :math:`s = W^{1/T}`.

    Group Sequence Policy Optimization (arXiv 2507.18071): PPO's clip applied to the
    length-normalised sequence ratio s; A >= 0 keeps s <= 1 + eps_high, A < 0 keeps
    s >= 1 - eps_low. d s / d log pi_t = s / T.
    """
    log_s = lw / T
    keep = o.where(pos, log_s <= math.log1p(p.eps_high), log_s >= math.log1p(-p.eps_low))
    s, _ = sat_exp(o, log_s)
    return o.where(keep, s / T, 0.0), ~keep


# --------------------------------------------------------------------------- token rules


def per_decision_is_coefficient(o, x, mask, pos, T, p):
    r"""Per-decision IS: :math:`c_t = \prod_{s \le t} r_s`.

    Precup, Sutton and Singh (2000), "Eligibility traces for off-policy policy evaluation"
    (ICML; no arXiv id): token t's term is weighted by the ratios up to t only. Unbiased for
    context-free policies of fixed length (claim U2). Saturated as :func:`is_coefficient`.
    """
    return sat_exp(o, o.cumsum(x))


def ppo_clip_coefficient(o, x, mask, pos, T, p):
    r"""PPO/GRPO clip: :math:`c_t = r_t 1[r_t \le 1+\epsilon_{high}]` (A >= 0),
    :math:`r_t 1[r_t \ge 1-\epsilon_{low}]` (A < 0).

    The gradient of PPO's min(r A, clip(r, 1-eps, 1+eps) A) (Schulman et al., arXiv 1707.06347);
    asymmetric eps as in clip-higher (DAPO, arXiv 2503.14476). A tie counts as unclipped.
    """
    keep = o.where(pos, x <= math.log1p(p.eps_high), x >= math.log1p(-p.eps_low))
    r, _ = sat_exp(o, x)
    return o.where(keep, r, 0.0), ~keep


def dual_clip_coefficient(o, x, mask, pos, T, p):
    r"""Dual-clip PPO: as :func:`ppo_clip_coefficient`, and for A < 0 also :math:`r_t \le c`.

    Ye et al., "Mastering complex control in MOBA games with deep reinforcement learning"
    (arXiv 1912.09729): for A < 0 the loss is bounded by c |A|, so tokens with r > c get 0.
    """
    neg_keep = (x >= math.log1p(-p.eps_low)) & (x <= math.log(p.c))
    keep = o.where(pos, x <= math.log1p(p.eps_high), neg_keep)
    r, _ = sat_exp(o, x)
    return o.where(keep, r, 0.0), ~keep


def cispo_coefficient(o, x, mask, pos, T, p):
    r"""CISPO: :math:`c_t = \mathrm{clip}(r_t, 1-\epsilon_{low}, 1+\epsilon_{high})`.

    MiniMax-M1 (arXiv 2506.13585): the clipped ratio is a stop-gradient weight on
    grad log pi, so no token's gradient is dropped (no indicator, either sign of A).
    """
    lo, hi = math.log1p(-p.eps_low), math.log1p(p.eps_high)
    return o.exp(o.clip(x, lo, hi)), (x < lo) | (x > hi)


def sapo_coefficient(o, x, mask, pos, T, p):
    r"""SAPO: :math:`c_t = r_t\,\mathrm{sech}^2(\tau (r_t - 1) / 2) / T`, tau by the sign of A.

    Soft Adaptive Policy Optimization (arXiv 2511.20347): the gradient of the soft gate
    (4/tau) sigmoid(tau (r - 1)), averaged over the sequence's tokens (the 1/T).
    Computed as 4 r sigmoid(z) sigmoid(-z), z = tau (r - 1), in log space.
    """
    r, _ = sat_exp(o, x)
    tau = o.where(pos, o.full_like(x, p.tau_pos), o.full_like(x, p.tau_neg))
    z = tau * (r - 1.0)
    log_c = x + math.log(4.0) + o.logsigmoid(z) + o.logsigmoid(-z)
    return o.exp(o.minimum(log_c, log_saturation(o, x))) / T, None


def gmpo_coefficient(o, x, mask, pos, T, p):
    r"""GMPO: :math:`c_t = \exp(\mathrm{mean}_t\, m_t) / T\; 1[t \text{ unclipped on the A side}]`.

    Geometric-Mean Policy Optimization (arXiv 2507.20673):
    m_t = sgn(A) min(sgn(A) log r_t, sgn(A) clip(log r_t, -eps_low, eps_high)); the objective's
    ratio is exp(mean_t m_t), whose derivative in log pi_t is ratio / T on the tokens whose min
    picked the unclipped branch (as its reference implementation).
    """
    lo, hi = -p.eps_low, p.eps_high
    m = o.where(pos, o.minimum(x, hi), o.maximum(x, lo))
    keep = o.where(pos, x <= hi, x >= lo)
    g, _ = sat_exp(o, o.rowsum(o.where(mask, m, 0.0)) / T[..., 0])
    return o.where(keep, g[..., None] / T, 0.0), ~keep


def token_tis_coefficient(o, x, mask, pos, T, p):
    r"""Token truncated IS: :math:`c_t = \min(r_t, \mathrm{cap})`.

    Yao et al., "Your efficient RL framework secretly brings you off-policy RL training" (2025,
    blog post, no arXiv id): truncated token IS of the inference/training mismatch.
    """
    lc = math.log(p.cap)
    return o.exp(o.minimum(x, lc)), x > lc


def token_mis_coefficient(o, x, mask, pos, T, p):
    r"""Token masked IS: :math:`c_t = r_t 1[\mathrm{low} \le r_t \le \mathrm{high}]`.

    IcePop-style masking of mismatched tokens (blog post, no arXiv id) with veRL's rollout-IS
    band (volcengine/verl, verl/trainer/ppo/rollout_corr_helper.py).
    """
    lo, hi = math.log(p.low), math.log(p.high)
    keep = (x >= lo) & (x <= hi)
    return o.where(keep, o.exp(o.minimum(x, hi)), 0.0), ~keep
