r"""The variance bound for the deployed kernel (claims K3, B1, B2, B3; docs/claims.md).

For :math:`\phi_{k,\lambda}(W) = W^k e^{\lambda(1-W)}` with k, lam > 0:

* argmax :math:`W^* = k/\lambda` and :math:`M = \sup_{W>0}\phi = (k/\lambda)^k e^{\lambda-k}` (K3);
* :math:`0 \le \phi \le M` for every W > 0, whatever the law of W (B1);
* :math:`E_\mu[\phi^2] \le M\,E_\mu[\phi] \le M^2` (B2);
* :math:`\mathrm{Var}_\mu[\phi(W) g] \le E_\mu[\phi^2\|g\|^2] \le M^2 E_\mu\|g\|^2` per sample, and
  divided by n for the mean of n i.i.d. sequences; with two sign classes the factor is
  :math:`\max(M_+, M_-)^2` (B3).

>>> b = kernel_bound(2, 3)
>>> round(b.M, 4), round(b.M2, 4)
(1.2081, 1.4596)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

from vespo_theory.params import KernelParams, VespoParams

__all__ = [
    "KernelBound",
    "exp_or_inf",
    "kernel_bound",
    "log_phi_K",
    "log_phi_max",
    "phi_K",
    "phi_max",
    "variance_factor",
]


def log_phi_max(k: float, lam: float) -> float:
    """log M = k log(k/lam) + lam - k, computed in log space (M itself can overflow)."""
    p = KernelParams(k, lam)
    return p.k * math.log(p.k / p.lam) + p.lam - p.k


def exp_or_inf(x: float) -> float:
    """exp(x), or ``inf`` where it exceeds the float64 range (instead of OverflowError).

    >>> exp_or_inf(709.5) < float("inf"), exp_or_inf(710.0)
    (True, inf)
    """
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def phi_max(k: float, lam: float) -> float:
    """M = sup_W phi(W) = (k/lam)^k e^(lam - k); ``inf`` if it exceeds the float64 range."""
    return exp_or_inf(log_phi_max(k, lam))


def log_phi_K(k: float, lam: float) -> float:
    """log K, K = sup_{W>0} phi(W)/W (arXiv 2602.10693 Prop. 3.1, Eqs. 18-19; claim P4).

    phi(W)/W = W^(k-1) e^(lam(1-W)): for k > 1 the sup is at W = (k-1)/lam and
    log K = (k-1) log((k-1)/lam) + lam - k + 1; at k = 1 the sup is the limit W -> 0+, K = e^lam;
    for k < 1 phi(W)/W -> inf as W -> 0+, so K = inf (returned as ``math.inf``).

    >>> round(math.exp(log_phi_K(2, 3)), 6), log_phi_K(3, 2), log_phi_K(0.5, 1)
    (2.463019, 0.0, inf)
    """
    p = KernelParams(k, lam)
    if p.k < 1:
        return math.inf
    if p.k == 1:
        return p.lam
    return (p.k - 1) * math.log((p.k - 1) / p.lam) + p.lam - p.k + 1


def phi_K(k: float, lam: float) -> float:
    """K = sup_W phi(W)/W (see :func:`log_phi_K`); ``inf`` for k < 1 or beyond float64."""
    return exp_or_inf(log_phi_K(k, lam))


@dataclass(frozen=True)
class KernelBound:
    """argmax, sup and squared sup of one kernel; the JSON keys of ``vespo bound``.

    ``log_M`` is always finite; ``M`` and ``M2`` are ``inf`` where they exceed the float64 range
    (then :meth:`overflow_note` says so, and the JSON output writes them as null).
    """

    k: float
    lam: float
    argmax: float
    M: float
    M2: float
    log_M: float

    def overflow_note(self) -> str | None:
        """One line saying which numbers exceed float64 (None when all are finite)."""
        big = [n for n in ("argmax", "M", "M2") if not math.isfinite(getattr(self, n))]
        if not big:
            return None
        return (
            f"note: {', '.join(big)} exceed{'s' if len(big) == 1 else ''} the float64 range "
            f"(k = {self.k:.6g}, lam = {self.lam:.6g}); the bound is finite: log M = "
            f"{self.log_M:.10g}, log M^2 = {2 * self.log_M:.10g}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def kernel_bound(k: float, lam: float) -> KernelBound:
    """The bound numbers of claim K3/B1/B2 for one kernel."""
    p = KernelParams(k, lam)
    lm = log_phi_max(p.k, p.lam)
    m, m2 = exp_or_inf(lm), exp_or_inf(2 * lm)
    return KernelBound(k=p.k, lam=p.lam, argmax=p.k / p.lam, M=m, M2=m2, log_M=lm)


def variance_factor(params: VespoParams | None = None, n: int = 1) -> float:
    """The factor c in Var[batch-mean of phi g] <= c E||g||^2 (claim B3): max(M+, M-)^2 / n.

    >>> round(variance_factor(), 4)
    1.5416
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n (batch size) must be an integer >= 1, got {n!r}")
    params = VespoParams() if params is None else params
    m = max(phi_max(params.k_pos, params.lam_pos), phi_max(params.k_neg, params.lam_neg))
    return m * m / int(n)
