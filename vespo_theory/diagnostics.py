r"""Weight diagnostics: Kish effective sample size in log space (THEORY.md §6).

Array type in = out (NumPy or torch); reductions over the last axis.

.. math:: \mathrm{ESS} = \frac{(\sum_i w_i)^2}{\sum_i w_i^2}
          = \exp\big(2\,\mathrm{LSE}(\log w) - \mathrm{LSE}(2 \log w)\big)

computed from ``log_w`` so that weights of any size give a finite answer. Report it on the raw
weights, not clamped ones.

>>> import numpy as np
>>> round(float(kish_ess(np.zeros(8))), 12)
8.0
>>> round(float(kish_ess(np.array([0.0, 0.0, 1e4]))), 12)  # w = e^10000 dominates: ESS = 1
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from vespo_theory._arrays import as_float_array, check_nan, is_torch

__all__ = ["kish_ess", "log_kish_ess"]


def log_kish_ess(log_w: Any, mask: Any | None = None, *, check_nan_input: bool | None = None):
    """log of the Kish ESS over the last axis; ``mask`` (bool, same shape) excludes entries.

    Entries with ``log_w = -inf`` (zero weight) count as weights of zero. A row whose weights
    are all zero (or all masked) has ESS 0 (log ESS = -inf), not NaN. ``log_w = +inf`` is not a
    weight (pass the finite log-weight instead) and raises for NumPy input.
    """
    log_w = as_float_array(log_w, "log_w")
    if check_nan_input is None:
        check_nan_input = not is_torch(log_w)
    if check_nan_input:
        check_nan(log_w, "log_w")
        if not is_torch(log_w) and np.isposinf(log_w).any():
            raise ValueError("log_w contains +inf; pass finite log-weights (log space)")
    if is_torch(log_w):
        import torch

        x = log_w if mask is None else torch.where(mask.bool(), log_w, float("-inf"))
        lse1 = torch.logsumexp(x, dim=-1)
        lse2 = torch.logsumexp(2.0 * x, dim=-1)
        out = 2.0 * lse1 - lse2
        return torch.where(torch.isfinite(lse1), out, torch.full_like(out, float("-inf")))
    x = log_w if mask is None else np.where(np.asarray(mask, dtype=bool), log_w, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse1 = logsumexp(x, axis=-1)
        lse2 = logsumexp(2.0 * x, axis=-1)
        out = 2.0 * lse1 - lse2
    return np.where(np.isfinite(lse1), out, -np.inf)


def kish_ess(log_w: Any, mask: Any | None = None, *, check_nan_input: bool | None = None):
    """Kish effective sample size (sum w)^2 / sum w^2 over the last axis, from ``log_w``."""
    out = log_kish_ess(log_w, mask, check_nan_input=check_nan_input)
    return out.exp() if is_torch(out) else np.exp(out)
