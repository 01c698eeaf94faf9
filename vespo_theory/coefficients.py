r"""The reshaping rules' coefficient functions: the effective weight on grad log pi.

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

Batch-level rules (``bapo``, ``vcpo``: the registry's ``batch_level``) have the token signature
and use the whole [B, T] batch they are given: their coefficient of one row depends on the other
rows (BAPO's bounds, VCPO's ESS). Rows without a valid token never enter a batch statistic.

Saturation: an unbounded coefficient is capped at sqrt(finfo.max) of the compute dtype
(:func:`sat_exp`), so that c * A * grad stays finite.
"""

from __future__ import annotations

import functools
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
    "vespo_sqrt_coefficient",
    "vespo_lin_coefficient",
    "topr_coefficient",
    "bapo_coefficient",
    "bapo_bound_path",
    "vcpo_coefficient",
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


def vespo_sqrt_coefficient(o, lw, pos, T, p):
    r"""VESPO_sqrt: :math:`c = \phi(W')`, :math:`W' = \exp(\log W / \sqrt{T})`.

    The length-normalisation ablation of arXiv 2602.10693 (its "normalize by sqrt(T)"); applying
    the kernel to exp(log W / sqrt(T)) is our reading of that sentence. phi is a detached weight
    on sum_t grad log pi, as in the reference code (FloyedShen/VESPO
    recipe/vespo/code/core_algos.py: ``Loss = -phi(w).detach() * A * log_prob``), so only the
    weight's argument changes: no chain-rule factor d log W' / d log pi_t = 1/sqrt(T) is added
    (GSPO's s/T is different: it is the derivative of GSPO's objective s). On-policy c = 1.
    """
    return vespo_coefficient(o, lw / T**0.5, pos, T, p)


def vespo_lin_coefficient(o, lw, pos, T, p):
    r"""VESPO_lin: :math:`c = \phi(W')`, :math:`W' = \exp(\log W / T) = s`.

    The "normalize by T" ablation of arXiv 2602.10693 (our reading: the kernel at the geometric
    mean ratio s = W^(1/T)); a detached weight, no 1/T chain factor (see
    :func:`vespo_sqrt_coefficient`). On-policy c = 1.
    """
    return vespo_coefficient(o, lw / T, pos, T, p)


def topr_coefficient(o, lw, pos, T, p):
    r"""TOPR: :math:`c = 1` (A >= 0), :math:`\min(W, 1)` (A < 0); divided by T if length_norm.

    Tapered Off-Policy REINFORCE (Le Roux et al., arXiv 2503.14286): REINFORCE without a weight
    on the positive trajectories and truncated IS, clip(pi/mu, 0, 1), on the negative ones (its
    gradient grad J_topr; W >= 0 always, so clip(W, 0, 1) = min(W, 1)). The weight is a
    stop-gradient factor on grad log pi(tau) = sum_t grad log pi_t. ``length_norm`` (default,
    :class:`~vespo_theory.rule_params.ToprParams`) puts the per-sequence token mean 1/T in c, as
    for GSPO: our reading of "length-normalised" in arXiv 2602.10693's TOPR baseline.
    ``clipped``: A < 0 rows with W > 1 (truncated).
    """
    neg_w = o.exp(o.minimum(lw, 0.0))
    c = o.where(pos, o.ones_like(lw), neg_w)
    if p.length_norm:
        c = c / T
    return c, (~pos) & (lw > 0.0)


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


# --------------------------------------------------------------------------- batch-level rules


def _log(o, v):
    """log of a NumPy array or tensor (the array ops have no log)."""
    import numpy as np

    from vespo_theory.array_ops import is_torch

    return v.log() if is_torch(v) else np.log(v)


def _total(o, v):
    """Sum over the whole [B, T] batch (a 0-d array or tensor)."""
    return o.rowsum(o.rowsum(v))


@functools.lru_cache(maxsize=64)
def bapo_bound_path(p) -> tuple[tuple[float, float], ...]:
    """The (lower, upper) ratio bounds BAPO visits, in order, for params ``p``.

    As the released search (WooooDyy/BAPO recipe/bapo/policy_loss.py,
    ``compute_policy_loss_bapo``): start at (low_start, high_start); raise the lower bound by
    low_step (capped at low_max) until it reaches low_max; then the upper bound by high_step
    (capped at high_max). The float additions are the released code's, in the same order.

    >>> path = bapo_bound_path(__import__("vespo_theory.rule_params").rule_params.BapoParams())
    >>> len(path), path[0], path[-1]
    (44, (0.6, 1.2), (0.9, 3.0))
    """
    lo, hi = p.low_start, p.high_start
    path = [(lo, hi)]
    while lo < p.low_max:
        lo = min(lo + p.low_step, p.low_max)
        path.append((lo, hi))
    while hi < p.high_max:
        hi = min(hi + p.high_step, p.high_max)
        path.append((lo, hi))
    return tuple(path)


def bapo_coefficient(o, x, mask, pos, T, p):
    r"""BAPO: PPO clip with bounds adapted to the batch, :math:`c_t = r_t 1[r_t \le c_{high}]`
    (A >= 0), :math:`r_t 1[c_{low} \le r_t \le c]` (A < 0).

    BAlanced Policy Optimization with adaptive clipping (Xi et al., arXiv 2510.18927; released
    code WooooDyy/BAPO recipe/bapo/policy_loss.py). The bounds (c_low, c_high) are explicit
    ratio bounds chosen per batch: the first point on :func:`bapo_bound_path` at which the
    positive tokens' share of the clipped-ratio mass reaches rho0,

    .. math:: P \ge \rho_0 (P + N),\quad P = \sum_{A \ge 0} \min(r_t, c_{high}),\quad
              N = \sum_{A < 0} \max(r_t, c_{low})

    over the valid tokens of the batch (the last point, (low_max, high_max), if none does). The
    gradient is then dual-clip PPO's with those bounds and the hard cap c for A < 0 (a tie
    counts as unclipped). On-policy every token has c = 1.

    Our reading, where it departs from the released code: (1) the registry gives a rule only
    sign(A), so P and N count each token with weight 1; the released code weights each token by
    |A| (its "effective advantage"), which agrees for advantages of equal magnitude (+-1) and
    not otherwise, and lets A = 0 tokens count in P here (0 there); (2) the target as a share,
    P >= rho0 (P + N) (the paper's rho_0); the released code tests P / (N + 1e-8) >= target with
    target = rho0 / (1 - rho0) (1 for rho0 = 0.5); (3) the batch is the one given (a loss call:
    the micro-batch); the released code all-reduces P and N across data-parallel ranks. The
    search is evaluated for every point of the path at once (no host synchronisation).
    """
    r, _ = sat_exp(o, x)
    m = o.where(mask, o.ones_like(x), 0.0)
    m_pos = o.where(pos, m, 0.0)
    m_neg = m - m_pos
    path = bapo_bound_path(p)
    P = {hi: _total(o, m_pos * o.minimum(r, hi)) for hi in sorted({h for _, h in path})}
    N = {lo: _total(o, m_neg * o.maximum(r, lo)) for lo in sorted({lo for lo, _ in path})}
    lo_end, hi_end = path[-1]
    zero = _total(o, m) * 0.0  # a 0-d array of the compute dtype
    log_lo, log_hi = zero + math.log(lo_end), zero + math.log(hi_end)
    for lo, hi in reversed(path[:-1]):  # the first point that meets the target wins
        ok = P[hi] >= p.rho0 * (P[hi] + N[lo])
        log_lo = o.where(ok, zero + math.log(lo), log_lo)
        log_hi = o.where(ok, zero + math.log(hi), log_hi)
    keep_neg = (x >= log_lo) & (x <= math.log(p.c))
    keep = o.where(pos, x <= log_hi, keep_neg)
    return o.where(keep, r, 0.0), ~keep


def vcpo_coefficient(o, x, mask, pos, T, p):
    r"""VCPO: :math:`c = W \sqrt{\min(1, \rho_{ess} / \rho_0)}`, :math:`\rho_{ess} = ESS / B'`.

    Variance Controlled Off-Policy Optimization (Huang et al., arXiv 2602.17616; code
    mit-han-lab/vcpo): REINFORCE with the sequence IS weight w = W and the step scaled by
    sqrt(ESS/B) (README.md, "ESS-guided step scaling"; verl/workers/actor/megatron_actor.py,
    ``_optimizer_step_with_buffer``: lr * sqrt(min(1, ess_ratio / base_ess_ratio)), ESS of the
    unclipped sequence weights, recipe/fully_async_policy/staleness_utils.py,
    ``compute_ess_info``). ESS is Kish's (sum w)^2 / sum w^2 over the B' rows with a valid token,
    in log space (:func:`vespo_theory.diagnostics.log_kish_ess`); the whole coefficient is
    exp(log W + log(scale)), saturated. rho_0 = ``base_ess_ratio`` (default 1).

    Our reading: (1) VCPO scales the learning rate; as a factor of the coefficient it equals
    that for SGD, not for Adam (whose normaliser absorbs a constant gradient factor); (2) the
    released scripts also truncate the engine-mismatch sequence weight at 8 in the loss
    (``rollout_is_threshold``), not done here (``seq_tis`` is that rule); (3) the off-policy
    optimal baseline needs per-sequence score-gradient norms, which a coefficient does not see:
    it is :func:`vespo_theory.vcpo.vcpo_baseline`, applied by the caller to the rewards.
    On-policy (every W = 1) ESS = B' and c = 1.
    """
    from vespo_theory.diagnostics import log_kish_ess

    lw = o.rowsum(x)
    valid = o.rowsum(o.where(mask, o.ones_like(x), 0.0)) > 0.0
    n = o.maximum(o.rowsum(o.where(valid, o.ones_like(lw), 0.0)), 1.0)
    log_rho = log_kish_ess(lw, valid, check_nan_input=False) - _log(o, n)
    log_scale = 0.5 * o.minimum(log_rho - math.log(p.base_ess_ratio), 0.0)
    c, saturated = sat_exp(o, lw + log_scale)
    return o.where(mask, c[..., None], 0.0), saturated[..., None] & mask
