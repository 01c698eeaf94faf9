r"""The variance bound for the deployed kernel (claims K3, B1, B2, B3; docs/theory.md).

For :math:`\phi_{k,\lambda}(W) = W^k e^{\lambda(1-W)}` with k, lam > 0:

* argmax :math:`W^* = k/\lambda` and :math:`M = \sup_{W>0}\phi = (k/\lambda)^k e^{\lambda-k}` (K3);
* :math:`0 \le \phi \le M` for every W > 0, whatever the law of W (B1);
* :math:`E_\mu[\phi^2] \le M\,E_\mu[\phi] \le M^2` (B2);
* :math:`\mathrm{Var}_\mu[\phi(W) g] \le E_\mu[\phi^2\|g\|^2] \le M^2 E_\mu\|g\|^2` per sample, and
  divided by n for the mean of n i.i.d. sequences; with two sign classes the factor is
  :math:`\max(M_+, M_-)^2` (B3).
* :math:`K = \sup_{W>0}\phi(W)/W = ((k-1)/\lambda)^{k-1} e^{\lambda-k+1}` at
  :math:`W = (k-1)/\lambda` for k > 1 (:math:`e^\lambda` at k = 1, the limit W -> 0+; infinite for
  k < 1), and :math:`E_\mu[\phi^2] \le K\,E_\mu[\phi W] = Z K E_Q[W] \le Z K C` with
  :math:`Z = E_\mu[\phi]` and the kernel's implicit proposal :math:`Q = \mu\phi/Z` meeting
  :math:`E_Q[W] \le C` (P4; arXiv 2602.10693 Prop. 3.1, Eqs. 18-19): phi <= K W pointwise, so
  phi^2 <= K phi W. Nothing in the method enforces C; :func:`lognormal_bounds` compares P4's
  K E[phi W] with B2's M^2 on a log-normal law of W.

>>> b = kernel_bound(2, 3)
>>> round(b.M, 4), round(b.M2, 4), round(b.K, 4), round(b.argmax_K, 4)
(1.2081, 1.4596, 2.463, 0.3333)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

from vespo_theory.params import KernelParams, VespoParams

__all__ = [
    "KernelBound",
    "LOGNORMAL_S2_MAX",
    "LogNormalBounds",
    "exp_or_inf",
    "kernel_bound",
    "lognormal_bounds",
    "lognormal_log_moment",
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
    """argmax, sup and squared sup of one kernel, and P4's K; the JSON keys of ``vespo bound``.

    ``log_M`` is always finite; ``M`` and ``M2`` are ``inf`` where they exceed the float64 range
    (then :meth:`overflow_note` says so, and the JSON output writes them as null).

    ``K`` = sup phi(W)/W (claim P4), ``log_K`` its log and ``argmax_K`` = (k-1)/lam where it is
    attained (k > 1). ``K_finite`` is False exactly for k < 1, where K = log K = inf (JSON null)
    and P4 gives no bound; for k = 1, K = e^lam is the limit W -> 0+ and ``argmax_K`` is None
    (not attained). ``K`` alone is ``inf`` where it exceeds float64 with ``log_K`` finite
    (:meth:`K_note` says which).
    """

    k: float
    lam: float
    argmax: float
    M: float
    M2: float
    log_M: float
    argmax_K: float | None
    K: float
    log_K: float
    K_finite: bool

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

    def K_note(self) -> str | None:
        """One line when K is not a float64 number: infinite (k < 1) or beyond float64."""
        if not self.K_finite:
            return (
                f"P4: K = sup phi(W)/W is infinite for k = {self.k:.6g} < 1 "
                "(phi/W -> inf as W -> 0+): P4 gives no bound"
            )
        if not math.isfinite(self.K):
            return (
                f"note: K exceeds the float64 range (k = {self.k:.6g}, lam = {self.lam:.6g}); "
                f"log K = {self.log_K:.10g}"
            )
        return None

    def as_dict(self) -> dict:
        return asdict(self)


def kernel_bound(k: float, lam: float) -> KernelBound:
    """The bound numbers of claims K3/B1/B2 (argmax, M, M^2) and P4 (K) for one kernel."""
    p = KernelParams(k, lam)
    lm = log_phi_max(p.k, p.lam)
    m, m2 = exp_or_inf(lm), exp_or_inf(2 * lm)
    lk = log_phi_K(p.k, p.lam)
    return KernelBound(
        k=p.k,
        lam=p.lam,
        argmax=p.k / p.lam,
        M=m,
        M2=m2,
        log_M=lm,
        argmax_K=(p.k - 1) / p.lam if p.k > 1 else None,
        K=exp_or_inf(lk),
        log_K=lk,
        K_finite=p.k >= 1,
    )


# ----------------------------------------------------------------------------- log-normal law

# Largest variance of log W that lognormal_bounds accepts. The log-space terms of the integrand
# grow like s2 (the Gaussian's exponent at the kernel's peak is ~ s2/8: log E[phi] ~ -s2/8 for
# large s2), and each is rounded to eps relative: at s2 = 1e6 that is ~1e-10 of absolute error
# in a log, i.e. relative error ~1e-10 in the moment, the size of the quadrature tolerance;
# beyond it float64 rounding, not the quadrature, would decide the digits.
LOGNORMAL_S2_MAX = 1e6
# quad's requested relative tolerance, and the largest relative error estimate accepted (quad
# reaches ~1e-14 on these smooth, unimodal, log-concave integrands; 1e-10 leaves it room and is
# still far below the 6 digits printed).
_QUAD_EPSREL = 1e-12
_QUAD_MAX_REL_ERR = 1e-10
# The integrand exp(h - h*) is cut where h - h* < -_CUT: beyond that it is < e^-800, below the
# float64 range (e^-745); being log-concave (h'' <= -1/s2) the dropped tails are smaller still.
_CUT = 800.0


def _check_s2(s2) -> float:
    if isinstance(s2, bool) or not isinstance(s2, numbers.Real):
        raise ValueError(f"s2 (variance of log W) must be a number, got {s2!r}")
    v = float(s2)
    if not (math.isfinite(v) and 0 < v <= LOGNORMAL_S2_MAX):
        raise ValueError(
            f"s2 (variance of log W) must be a finite number in (0, {LOGNORMAL_S2_MAX:g}], "
            f"got {s2!r}"
        )
    return v


def lognormal_log_moment(k: float, lam: float, s2: float, power: int = 1, w_power: float = 0.0):
    r"""log E[phi(W)^power W^w_power] for log W ~ N(-s2/2, s2) (so E[W] = 1), in log space.

    With L = log W the expectation is :math:`\int e^{h(L)} dL`,

    .. math:: h(L) = -\frac{(L - m)^2}{2 s_2} - \tfrac12\log(2\pi s_2) + a L + c (1 - e^L),
       \qquad m = -s_2/2,\ a = p k + q,\ c = p \lambda

    (p = ``power`` >= 1, q = ``w_power`` with a > 0). h is strictly concave, so it has one
    maximum h* at the root L* of h' (bracketed in [min(m, log(a/c)) - 1, max(m, log(a/c)) + 1],
    where h' changes sign), and the result is h* + log of the integral of exp(h - h*), taken by
    adaptive Gauss-Kronrod (``scipy.integrate.quad``, epsrel 1e-12, split at L*) between the two
    points where h - h* = -800 (the integrand is below float64's range beyond them). There is no
    closed form (E[W^a e^(-bW)] under a log-normal law is not elementary). Raises ``ValueError``
    if quad's error estimate exceeds 1e-10 relative.

    >>> round(math.exp(lognormal_log_moment(2, 3, 1.0)), 6)  # E[phi] under N(-1/2, 1)
    0.704483
    """
    from scipy import integrate, optimize

    p = KernelParams(k, lam)
    s2 = _check_s2(s2)
    if isinstance(power, bool) or not isinstance(power, numbers.Integral) or power < 1:
        raise ValueError(f"power must be an integer >= 1, got {power!r}")
    a = power * p.k + float(w_power)
    c = power * p.lam
    if not (math.isfinite(a) and a > 0):
        raise ValueError(f"power * k + w_power must be > 0, got {a!r}")
    m = -s2 / 2
    log_norm = -0.5 * math.log(2 * math.pi * s2)

    def h(x: float) -> float:
        return -((x - m) ** 2) / (2 * s2) + log_norm + a * x + c * (1 - exp_or_inf(x))

    def dh(x: float) -> float:
        return -(x - m) / s2 + a - c * exp_or_inf(x)

    l0 = math.log(a / c)  # the peak of e^(aL + c(1 - e^L)) alone
    sd = math.sqrt(s2)
    xtol = 1e-9 * min(sd, 1.0)  # L* only sets the split point and the offset h*: any near value
    lstar = optimize.brentq(dh, min(m, l0) - 1, max(m, l0) + 1, xtol=xtol)
    hstar = h(lstar)

    def gap(x: float) -> float:
        return h(x) - hstar + _CUT

    # h(L) <= h* - (L - L*)^2 / (2 s2) (h'' <= -1/s2), so both cut points lie within
    # sqrt(2 _CUT s2) = 40 sd of L*; on the right e^L is capped below float64's overflow (at
    # L = 700, c e^L ~ 1e304 puts h far below the cut).
    reach = math.sqrt(2 * _CUT) * sd + 1
    lo = optimize.brentq(gap, lstar - reach, lstar, xtol=xtol)
    hi_end = min(lstar + reach, 700.0)
    hi = optimize.brentq(gap, lstar, hi_end, xtol=xtol) if gap(hi_end) < 0 else hi_end
    val, err = integrate.quad(
        lambda x: math.exp(h(x) - hstar),
        lo,
        hi,
        points=[lstar],
        epsabs=0.0,
        epsrel=_QUAD_EPSREL,
        limit=500,
    )
    if not (val > 0 and err <= _QUAD_MAX_REL_ERR * val):
        raise ValueError(
            f"log-normal moment (k = {p.k:g}, lam = {p.lam:g}, s2 = {s2:g}): quadrature did not "
            f"reach relative error {_QUAD_MAX_REL_ERR:g} (estimate {err / val if val else err:.3g})"
        )
    return hstar + math.log(val)


@dataclass(frozen=True)
class LogNormalBounds:
    """B2's and P4's bounds on E[phi^2] for one kernel under log W ~ N(-s2/2, s2).

    ``E_phi``, ``E_phi2``, ``E_phiW``: E[phi], E[phi^2], E[phi W] (``log_*`` beside them: the
    values underflow for large s2). ``M_E_phi`` = M E[phi] and ``M2`` = M^2 (B2), ``K_E_phiW`` =
    K E[phi W] (P4; ``inf``/null for k < 1, where P4 gives no bound). ``smaller`` names the
    smaller of P4's K E[phi W] and B2's M^2: ``"P4"``, ``"M2"`` or ``"equal"`` (compared in log
    space).
    """

    k: float
    lam: float
    s2: float
    E_phi: float
    E_phi2: float
    E_phiW: float
    log_E_phi: float
    log_E_phi2: float
    log_E_phiW: float
    M_E_phi: float
    M2: float
    K_E_phiW: float
    log_K_E_phiW: float
    smaller: str

    def as_dict(self) -> dict:
        return asdict(self)


def lognormal_bounds(k: float, lam: float, s2: float) -> LogNormalBounds:
    """E[phi], E[phi^2], E[phi W] under log W ~ N(-s2/2, s2) and the bounds of B2 (M E[phi],
    M^2) and P4 (K E[phi W]) on E[phi^2]; see :func:`lognormal_log_moment` for the quadrature.

    >>> r = lognormal_bounds(3, 2, 1.0)
    >>> round(r.E_phi, 6), r.smaller
    (0.504502, 'P4')
    """
    b = kernel_bound(k, lam)
    s2 = _check_s2(s2)
    l1 = lognormal_log_moment(b.k, b.lam, s2)
    l2 = lognormal_log_moment(b.k, b.lam, s2, power=2)
    lw = lognormal_log_moment(b.k, b.lam, s2, w_power=1.0)
    lp4 = b.log_K + lw  # inf for k < 1
    lm2 = 2 * b.log_M
    smaller = "P4" if lp4 < lm2 else "M2" if lp4 > lm2 else "equal"
    return LogNormalBounds(
        k=b.k,
        lam=b.lam,
        s2=s2,
        E_phi=exp_or_inf(l1),
        E_phi2=exp_or_inf(l2),
        E_phiW=exp_or_inf(lw),
        log_E_phi=l1,
        log_E_phi2=l2,
        log_E_phiW=lw,
        M_E_phi=exp_or_inf(b.log_M + l1),
        M2=b.M2,
        K_E_phiW=exp_or_inf(lp4),
        log_K_E_phiW=lp4,
        smaller=smaller,
    )


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
