r"""Per-decision importance sampling with per-reward weights: the evaluators' coefficients for
U2 (stated) and R6 (relaxed).

On a tabular autoregressive model (:mod:`simulations.tabular`) with additive token rewards
r_s = r(y_s) over the response (s <= the length; an end token makes the length random), write
rho_{1:s} = prod_{u<=s} pi(y_u | s_u)/mu(y_u | s_u). Per-decision IS (Precup, Sutton and Singh
2000, ICML; in policy-gradient form Jie and Abbeel 2010, NeurIPS) weights **each reward by its
own prefix product**:

.. math:: e(y) = \sum_s r_s \rho_{1:s} \sum_{t \le s} \nabla \log \pi_t
               = \sum_t c_t \nabla \log \pi_t, \qquad c_t = \sum_{s \ge t} r_s \rho_{1:s},

which is unbiased for grad E_pi[sum_s r_s] for ANY autoregressive model, since r_s and the scores
of tokens <= s are functions of y_{1:s} (U2). Weighting the reward-to-go by token t's prefix
product, c_t = rho_{1:t} sum_{s >= t} r_s, is not: the rewards after t are drawn from mu, not
pi, and the error depends on y_t once later tokens' laws (or the length) depend on it (R6).

Both coefficients are [n, T] arrays for :func:`simulations.estimators.score_moments` with
advantage 1; rho is formed in log space (a cumulative sum of token log-ratios) and exponentiated
once per entry.
"""

from __future__ import annotations

import numpy as np

__all__ = ["per_reward_coefficient", "reward_to_go_coefficient", "token_rewards"]


def token_rewards(model, batch, absolute: bool = False) -> np.ndarray:
    """[n, T] token rewards r(y_t) on the response (|r(y_t)| with ``absolute``), 0 after the end."""
    r = np.abs(model.reward) if absolute else model.reward
    return np.where(batch.mask, r[batch.tokens], 0.0)


def _rho(batch) -> np.ndarray:
    # masked positions have log-ratio 0, so rho stays constant after the end (and is unused there)
    return np.exp(np.cumsum(batch.tok_log_ratio, axis=1))


def _suffix_sum(x: np.ndarray) -> np.ndarray:
    """sum_{s >= t} x[:, s] for every t."""
    return np.cumsum(x[:, ::-1], axis=1)[:, ::-1]


def per_reward_coefficient(model, batch, absolute: bool = False) -> np.ndarray:
    """c_t = sum_{s >= t} r_s rho_{1:s} on the response (0 after the end): U2's estimator.

    ``absolute``: the same sum with |r_s| (the magnitude its rounding is relative to).
    """
    r = token_rewards(model, batch, absolute)
    return np.where(batch.mask, _suffix_sum(r * _rho(batch)), 0.0)


def reward_to_go_coefficient(model, batch, absolute: bool = False) -> np.ndarray:
    """c_t = rho_{1:t} sum_{s >= t} r_s on the response (0 after the end): R6's second form."""
    r = token_rewards(model, batch, absolute)
    return np.where(batch.mask, _rho(batch) * _suffix_sum(r), 0.0)
