r"""The VESPO kernel, written once for NumPy arrays and torch tensors, in log space.

.. math::

    \phi_{k,\lambda}(W) = W^k e^{\lambda (1 - W)}, \qquad
    \log \phi = k \log W + \lambda (1 - W),

derived from the variational objective in :mod:`vespo_theory.derivations` (claim K1). The input
is always ``log_w`` (the sequence log-weight, ``sum_t log r_t``), never ``w``: ``w`` overflows
long before ``phi`` does.

Numerics (documented behaviour, tested in ``tests/test_kernels.py``):

* Array type, dtype and device in = out. float16/bfloat16 inputs are computed in float32 and
  cast back, since ``k * log_w`` would otherwise lose all precision in 8 mantissa bits.
* ``log_w`` is clamped from above at ``hi = log(finfo.max / (2 max(lam, 1)))`` of the compute
  dtype. Beyond that point ``W`` (for lam < 1) or ``lam * W`` would overflow. Since ``log phi``
  decreases for ``W > k/lam``, the clamped ``log_phi`` is ``k hi + lam - min(lam, 1) finfo.max/2``,
  hugely negative, so ``phi`` is exactly ``0`` there and its gradient exactly ``0`` (not NaN, as
  an unclamped ``0 * -inf`` would give).
* ``log_w = -inf`` (W = 0) gives ``log_phi = -inf`` and ``phi = 0``; very negative finite
  ``log_w`` gives a finite ``log_phi`` and ``phi`` that underflows to exactly ``0``.
* NaN in a NumPy ``log_w`` raises ``ValueError``. For torch tensors the check would force a
  host synchronisation on a GPU, so it is opt-in: pass ``check_nan=True``.

>>> import numpy as np
>>> np.round(phi(np.log([0.5, 1.0, 2.0]), k=2, lam=3), 4)
array([1.1204, 1.    , 0.1991])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vespo_theory.array_ops import as_float_array, check_same_shape, compute_dtype, is_torch
from vespo_theory.array_ops import check_nan as _check_nan_arr
from vespo_theory.params import KernelParams, VespoParams

__all__ = ["log_phi", "phi", "log_phi_signed", "phi_signed"]


def _prepare(log_w: Any, check_nan: bool | None):
    log_w = as_float_array(log_w, "log_w")
    if check_nan is None:
        check_nan = not is_torch(log_w)
    if check_nan:
        _check_nan_arr(log_w, "log_w")
    return log_w


def _core(log_w, k, lam):
    """log phi for a validated ``log_w``; ``k``/``lam`` are floats or arrays of log_w's type."""
    out_dtype = log_w.dtype
    cdt = compute_dtype(log_w)
    if is_torch(log_w):
        import torch

        x = log_w.to(cdt)
        log_max = math.log(torch.finfo(cdt).max) - math.log(2.0)
        if isinstance(lam, float):
            hi = log_max - max(math.log(lam), 0.0)
            xc = torch.clamp(x, max=hi)
        else:
            lam = lam.to(cdt)
            k = k.to(cdt)
            xc = torch.minimum(x, log_max - torch.log(lam).clamp(min=0.0))
        out = k * xc + lam * (1.0 - torch.exp(xc))
        return out.to(out_dtype)
    x = log_w.astype(cdt, copy=False)
    log_max = math.log(np.finfo(cdt).max) - math.log(2.0)
    if isinstance(lam, float):
        hi = log_max - max(math.log(lam), 0.0)
    else:
        lam = np.asarray(lam, dtype=cdt)
        k = np.asarray(k, dtype=cdt)
        hi = log_max - np.maximum(np.log(lam), 0.0)
    xc = np.minimum(x, hi)
    out = k * xc + lam * (1.0 - np.exp(xc))
    # float16 input: a log_phi below float16's range becomes -inf (phi = 0), which is the
    # correctly rounded value, so the overflow on the cast back is expected.
    with np.errstate(over="ignore"):
        return np.asarray(out).astype(out_dtype, copy=False)


def log_phi(log_w: Any, k: float, lam: float, *, check_nan: bool | None = None):
    r"""Return :math:`\log\phi_{k,\lambda}(W) = k \log W + \lambda(1 - W)` from ``log_w``.

    Parameters
    ----------
    log_w : array-like or torch.Tensor
        Sequence log-weights ``log W``; any shape.
    k, lam : float
        Kernel parameters, both > 0 (the bound B1 needs them positive).
    check_nan : bool, optional
        Raise ``ValueError`` on NaN input. Default: on for NumPy, off for torch (opt-in there,
        because it synchronises with the device).

    >>> float(log_phi(0.0, k=2, lam=3))
    0.0
    """
    p = KernelParams(k, lam)
    return _core(_prepare(log_w, check_nan), p.k, p.lam)


def phi(log_w: Any, k: float, lam: float, *, check_nan: bool | None = None):
    r"""Return :math:`\phi_{k,\lambda}(W) = W^k e^{\lambda(1-W)}`, computed as ``exp(log_phi)``.

    Exactly ``0`` (never NaN) where it underflows. See :func:`log_phi` for the arguments.

    >>> float(phi(0.0, k=3, lam=2))
    1.0
    """
    out = log_phi(log_w, k, lam, check_nan=check_nan)
    return out.exp() if is_torch(out) else np.exp(out)


def _signed_params(log_w, adv, params: VespoParams, check_nan: bool):
    if is_torch(log_w):
        import torch

        if not is_torch(adv):
            raise TypeError("adv must be a torch.Tensor when log_w is one")
        check_same_shape(log_w, adv, "log_w", "adv")
        if check_nan:
            _check_nan_arr(adv, "adv")
        pos = adv >= 0
        # Build (k, lam) directly in the compute dtype on log_w's device: going through a
        # float32 default tensor would round non-representable parameters (e.g. k = 2.1).
        cdt = compute_dtype(log_w)

        def pick(p_pos, p_neg):
            t_pos = torch.tensor(p_pos, dtype=cdt, device=log_w.device)
            t_neg = torch.tensor(p_neg, dtype=cdt, device=log_w.device)
            return torch.where(pos, t_pos, t_neg)

        return pick(params.k_pos, params.k_neg), pick(params.lam_pos, params.lam_neg)
    if is_torch(adv):
        raise TypeError("adv must be a NumPy array (or array-like) when log_w is one")
    adv = as_float_array(adv, "adv")
    check_same_shape(log_w, adv, "log_w", "adv")
    _check_nan_arr(adv, "adv")
    pos = adv >= 0
    return np.where(pos, params.k_pos, params.k_neg), np.where(pos, params.lam_pos, params.lam_neg)


def log_phi_signed(
    log_w: Any, adv: Any, params: VespoParams | None = None, *, check_nan: bool | None = None
):
    """``log_phi`` with (k, lam) chosen per element by the sign of ``adv`` (same shape as log_w).

    ``params`` defaults to :class:`~vespo_theory.params.VespoParams` (the reference defaults).

    >>> import numpy as np
    >>> np.round(phi_signed(np.log([2.0, 2.0]), np.array([1.0, -1.0])), 4)
    array([0.1991, 1.0827])
    """
    params = VespoParams() if params is None else params
    if not isinstance(params, VespoParams):
        raise TypeError(f"params must be a VespoParams, got {type(params).__name__}")
    log_w = _prepare(log_w, check_nan)
    k, lam = _signed_params(log_w, adv, params, bool(check_nan))
    return _core(log_w, k, lam)


def phi_signed(
    log_w: Any, adv: Any, params: VespoParams | None = None, *, check_nan: bool | None = None
):
    """``phi`` with (k, lam) chosen per element by the sign of ``adv``; see ``log_phi_signed``."""
    out = log_phi_signed(log_w, adv, params, check_nan=check_nan)
    return out.exp() if is_torch(out) else np.exp(out)
