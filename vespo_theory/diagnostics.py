r"""Weight diagnostics: Kish effective sample size in log space, the PSIS k-hat and its
sample-size dependent reliability threshold.

Array type in = out (NumPy or torch); reductions over the last axis.

.. math:: \mathrm{ESS} = \frac{(\sum_i w_i)^2}{\sum_i w_i^2}
          = \exp\big(2\,\mathrm{LSE}(\log w) - \mathrm{LSE}(2 \log w)\big)

computed from ``log_w`` so that weights of any size give a finite answer (Kish 1965, *Survey
Sampling*, §11.7; in log space as in Vehtari et al., arXiv 1507.02646, §3 / eq. (6)'s n_eff).
Raw weights would underflow: a sequence weight of V = 32000 tokens over T = 1e6 positions has
log W ~ -1e6, so every ``exp(log W)`` is 0 and the raw ratio is 0/0, while the ESS is a ratio of
*relative* weights and stays finite. Report it on the raw weights, not clamped ones.

NaN is never turned into a number: it raises ``ValueError`` naming the argument (or, where the
check is switched off for a device hot path, propagates as NaN; never ESS = 0).

>>> import numpy as np
>>> round(float(kish_ess(np.zeros(8))), 12)
8.0
>>> round(float(kish_ess(np.array([0.0, 0.0, 1e4]))), 12)  # w = e^10000 dominates: ESS = 1
1.0
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from scipy.special import logsumexp

from vespo_theory.array_ops import as_float_array, check_nan, is_torch

__all__ = [
    "KHAT_MAX",
    "khat_threshold",
    "log_weight_summary",
    "kish_ess",
    "kish_ess_from_log_weights",
    "log_kish_ess",
    "psis_khat",
]

# The S-independent reading of PSIS: above 0.7 the Pareto-smoothed (let alone the plain) IS
# estimate is unreliable whatever the sample size (Vehtari et al. 2024, §3.2.4 / §6).
KHAT_MAX = 0.7


def log_kish_ess(log_w: Any, mask: Any | None = None, *, check_nan_input: bool | None = None):
    """log of the Kish ESS over the last axis; ``mask`` (bool, same shape) excludes entries.

    Entries with ``log_w = -inf`` (zero weight) count as weights of zero. A row whose weights
    are all zero (or all masked) has ESS 0 (log ESS = -inf). ``log_w = +inf`` is not a weight
    (pass the finite log-weight instead) and raises for NumPy input.

    NaN in ``log_w`` raises ``ValueError`` ("log_w contains NaN ...") by default, for NumPy and
    torch alike. ``check_nan_input=False`` skips the check (a torch hot path that must not
    synchronise with the device); a row with NaN then gives NaN, never ESS 0.
    """
    log_w = as_float_array(log_w, "log_w")
    if check_nan_input is None:
        check_nan_input = True
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
        # an all-zero row (lse1 = -inf) has ESS 0; NaN stays NaN (it is not a zero weight)
        empty = torch.isneginf(lse1)
        return torch.where(empty, torch.full_like(out, float("-inf")), out)
    x = log_w if mask is None else np.where(np.asarray(mask, dtype=bool), log_w, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse1 = logsumexp(x, axis=-1)
        lse2 = logsumexp(2.0 * x, axis=-1)
        out = 2.0 * lse1 - lse2
    # an all-zero row (lse1 = -inf) has ESS 0; NaN stays NaN (it is not a zero weight)
    return np.where(np.isneginf(lse1), -np.inf, out)


def kish_ess(log_w: Any, mask: Any | None = None, *, check_nan_input: bool | None = None):
    """Kish effective sample size (sum w)^2 / sum w^2 over the last axis, from ``log_w``."""
    out = log_kish_ess(log_w, mask, check_nan_input=check_nan_input)
    return out.exp() if is_torch(out) else np.exp(out)


def kish_ess_from_log_weights(log_w: Any) -> float:
    r"""Kish ESS of the weights ``exp(log_w)`` (1-D), computed only from the log-weights:

    .. math:: \mathrm{ESS} = \exp\big(2\,\mathrm{LSE}(\ell) - \mathrm{LSE}(2\ell)\big),
       \qquad \ell_i = \log w_i

    (Kish's (sum w)^2 / sum w^2 with both sums taken by ``scipy.special.logsumexp``). The
    answer depends only on the differences of the log-weights, so log-weights far below the
    float64 range (sequence weights of long responses, log W ~ -1e6, whose ``exp`` is 0) give
    the right ESS instead of 0 or NaN. Returns a Python float in [1, n] (0 if every weight is 0,
    i.e. every entry is ``-inf``); divide by ``len(log_w)`` for ESS/n.

    Raises ``ValueError`` naming ``log_w`` for NaN or +inf entries, an empty or non-1-D input.
    Accepts NumPy arrays, lists and torch tensors (converted to float64 NumPy).

    >>> round(kish_ess_from_log_weights([-1e6, -1e6, -1e6 + np.log(2.0)]), 6)  # 1, 1, 2: 16/6
    2.666667
    """
    if is_torch(log_w):
        log_w = log_w.detach().cpu().double().numpy()
    x = np.asarray(as_float_array(log_w, "log_w"), dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"log_w must be a non-empty 1-D array, got shape {x.shape}")
    check_nan(x, "log_w")
    if np.isposinf(x).any():
        raise ValueError("log_w contains +inf; pass finite log-weights (log space)")
    if np.isneginf(x).all():
        return 0.0
    return float(np.exp(2.0 * logsumexp(x) - logsumexp(2.0 * x)))


def _gpd_fit_zhang_stephens(x: np.ndarray) -> tuple[float, float]:
    """Shape k and scale sigma of a generalized Pareto fit to exceedances ``x`` (sorted, > 0).

    Zhang & Stephens (2009), "A new and efficient estimation method for the generalized Pareto
    distribution", Technometrics 51(3): the posterior mean of the profile parameter
    b = -k/sigma over a grid of ``30 + sqrt(n)`` quantile-based points, weighted by the profile
    likelihood, then k = mean(log1p(-b x)). As in PSIS (Vehtari, Simpson, Gelman, Yao, Gabry
    2024, JMLR 25(72), and the ``loo`` / ArviZ implementations), k is shrunk towards 0.5 by a
    weak prior worth 10 observations. Sign convention: k > 0 is a heavy (power-law) tail with
    finite moments of order < 1/k.
    """
    n = x.size
    m = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1, dtype=np.float64) - 0.5))
    b = b / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k_grid = np.log1p(-b[:, None] * x[None, :]).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lik = n * (np.log(-b / k_grid) - k_grid - 1.0)
    valid = np.isfinite(log_lik)  # b = 0 (k = 0/0) or tied data: that grid point drops out
    if not valid.any():
        return math.nan, math.nan
    b, log_lik = b[valid], log_lik[valid]
    with np.errstate(over="ignore"):  # exp -> inf gives weight 0: that grid point is negligible
        weights = 1.0 / np.exp(log_lik[None, :] - log_lik[:, None]).sum(axis=1)
    keep = weights >= 10 * np.finfo(np.float64).eps
    weights, b = weights[keep], b[keep]
    weights = weights / weights.sum()
    b_post = float(np.sum(b * weights))
    k_hat = float(np.log1p(-b_post * x).mean())
    sigma = -k_hat / b_post
    k_hat = (n * k_hat + 10 * 0.5) / (n + 10)
    return k_hat, sigma


def psis_khat(log_w: Any) -> float:
    r"""Pareto-smoothed importance sampling tail index :math:`\hat k` of 1-D log-weights.

    Fits a generalized Pareto distribution to the largest ``M = ceil(min(0.2 n, 3 sqrt(n)))``
    weights (exceedances over the (M+1)-th largest) with the Zhang & Stephens (2009) estimator,
    as PSIS does (Vehtari et al. 2024, JMLR 25(72)). Reading: k-hat < 0.5 finite
    variance; 0.5-0.7 finite mean, slow convergence; > 0.7 the IS estimate is unreliable. With S
    draws the reliability threshold is :func:`khat_threshold` (S) = min(1 - 1/log10 S, 0.7),
    lower than 0.7 below S ~ 2154 (0.446 at S = 64): report it beside k-hat.
    The weights enter only through ``log_w`` (shifted by its maximum), so any size is fine.

    Raises ``ValueError`` for fewer than 20 finite weights (too few for a tail fit) or NaN /
    +inf input. ``-inf`` entries (zero weights) are dropped. Equal tail weights (e.g. constant
    weights) have no tail to fit and give ``-inf``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.pareto(1 / 0.8, size=20000)  # Lomax with tail index xi = 0.8
    >>> 0.7 < psis_khat(np.log1p(x)) < 0.9
    True
    """
    if is_torch(log_w):
        log_w = log_w.detach().cpu().double().numpy()
    x = np.asarray(as_float_array(log_w, "log_w"), dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"log_w must be 1-D for psis_khat, got shape {x.shape}")
    check_nan(x, "log_w")
    if np.isposinf(x).any():
        raise ValueError("log_w contains +inf; pass finite log-weights (log space)")
    x = x[np.isfinite(x)]
    n = x.size
    if n < 20:
        raise ValueError(f"psis_khat needs at least 20 finite log-weights, got {n}")
    x = np.sort(x - x.max())
    tail_len = int(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n))))
    cutoff = x[n - tail_len - 1]
    exceed = np.expm1(x[n - tail_len :] - cutoff) * math.exp(cutoff)
    exceed = exceed[exceed > 0]
    if exceed.size < 5 or exceed[-1] <= exceed[0] * (1 + 1e-12):
        return -math.inf
    k_hat = _gpd_fit_zhang_stephens(exceed)[0]
    if math.isnan(k_hat):
        raise ValueError("psis_khat: the generalized Pareto fit failed on these log-weights")
    return k_hat


def khat_threshold(S: Any) -> float:
    r"""The PSIS k-hat reliability threshold for ``S`` draws: :math:`\min(1 - 1/\log_{10} S, 0.7)`.

    Vehtari, Simpson, Gelman, Yao, Gabry, "Pareto smoothed importance sampling", JMLR 25(72)
    (2024), arXiv 1507.02646, §3.2.4: an estimate with tail index k needs at least
    :math:`S_{\min}(k) = 10^{1/(1 - \max(0, k))}` draws (their Eq. 11) for a small probability
    of a large error; solved for k this is the sample-size dependent threshold
    :math:`1 - 1/\log_{10} S` (their Eq. 13; the R package loo's ``ps_khat_threshold``). Above
    0.7 (:data:`KHAT_MAX`) no sample size is enough in practice, so the value is capped there,
    as the Pareto-k diagnostics of loo (since 2.7: "k < min(1 - 1/log10(S), 0.7)") and ArviZ's
    ``loo`` (``good_k``) do. It is 0.7 from S = 10^(10/3) ~ 2154 draws on; for a batch of
    S = 64 it is 1 - 1/log10(64) = 0.4463.

    Read k-hat as reliable for S draws when ``max(0, k_hat) <= khat_threshold(S)`` (Eq. 11 uses
    max(0, k): a light or bounded tail, k-hat < 0, needs no more than 10 draws, not fewer).

    Small S (the choice made here): the formula is returned as it is, with no special case, so
    that the numbers agree with ``loo``/``posterior``/ArviZ wherever they are defined: 0 at
    S = 10 and **negative for 2 <= S < 10** (-2.32 at S = 2). A threshold below 0 means that no
    k-hat is good enough: S_min(k) >= 10 for every k, so fewer than 10 draws are never enough
    (compare max(0, k_hat), which is >= 0, with it). S = 1 (log10 1 = 0) has no threshold. In
    this package k-hat itself needs S >= 20 finite weights (:func:`psis_khat`), where the
    threshold is 1 - 1/log10(20) = 0.2313.

    Raises ``ValueError`` naming ``S`` unless it is an integer >= 2 (Python or NumPy integer; not
    a bool, not a float such as 64.0: a number of draws is counted, not measured).

    >>> khat_threshold(64), khat_threshold(10), khat_threshold(10_000)
    (0.44634531751877293, 0.0, 0.7)
    """
    if isinstance(S, bool) or not isinstance(S, numbers.Integral) or S < 2:
        raise ValueError(f"S (number of draws) must be an integer >= 2, got {S!r}")
    return min(1.0 - 1.0 / math.log10(int(S)), KHAT_MAX)


def log_weight_summary(log_w: Any) -> dict[str, float]:
    """Location and spread of a non-empty 1-D array of finite log-weights (float64): mean, std
    (ddof 1; 0 for one value), min, the 5/25/50/75/95 % quantiles and max, under the keys
    ``log_w_mean``, ``log_w_std``, ``log_w_min``, ``log_w_q05`` ... ``log_w_q95``,
    ``log_w_max`` that ``vespo diagnose`` and the TRL callback report.

    >>> log_weight_summary([0.0, 1.0, 2.0])["log_w_q50"]
    1.0
    """
    lw = np.asarray(log_w, dtype=np.float64).reshape(-1)
    if lw.size == 0 or not np.all(np.isfinite(lw)):
        raise ValueError("log_w must be a non-empty array of finite log-weights")
    q = np.quantile(lw, [0.05, 0.25, 0.5, 0.75, 0.95])
    out = {
        "log_w_mean": float(lw.mean()),
        "log_w_std": float(lw.std(ddof=1)) if lw.size > 1 else 0.0,
        "log_w_min": float(lw.min()),
    }
    out.update({f"log_w_q{p:02d}": float(v) for p, v in zip((5, 25, 50, 75, 95), q)})
    out["log_w_max"] = float(lw.max())
    return out
