"""Array helpers shared by every numeric layer: NumPy in, NumPy out; torch in, torch out.

* type and argument checks: :func:`is_torch`, :func:`as_float_array`, :func:`check_nan`,
  :func:`check_positive_scalar`, :func:`check_same_shape`;
* the one half-precision rule: :func:`compute_dtype` / :func:`to_compute` (float16 and bfloat16
  are computed in float32, every other dtype in itself) and :func:`cast`;
* :class:`NumpyOps` / :class:`TorchOps` (:func:`ops_for` picks one): the handful of elementwise
  and row operations the rule bodies of :mod:`vespo_theory.coefficients` are written in, so each
  body is written once for both array types.

torch is never imported here at module import time; a tensor is recognised by its type's module,
so ``vespo_theory`` imports without torch installed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "is_torch",
    "as_float_array",
    "check_nan",
    "check_positive_scalar",
    "check_same_shape",
    "check_binary_mask",
    "compute_dtype",
    "to_compute",
    "cast",
    "NumpyOps",
    "TorchOps",
    "ops_for",
]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch"


def as_float_array(x: Any, name: str):
    """Return ``x`` as a floating NumPy array or leave a torch tensor as it is.

    Python scalars and integer arrays become float64 NumPy arrays. Anything that is not numeric
    raises ``TypeError`` naming ``name``.
    """
    if is_torch(x):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy raises many types here
        raise TypeError(f"{name} must be numeric array-like, got {type(x).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_nan(x: Any, name: str) -> None:
    """Raise ``ValueError`` if ``x`` (a NumPy array or a torch tensor) holds NaN.

    For a torch tensor this forces a host synchronisation on a GPU, so the kernels call it for
    torch only on request (their ``check_nan=True``).
    """
    if is_torch(x):
        import torch

        if bool(torch.isnan(x).any()):
            raise ValueError(f"{name} contains NaN")
        return
    if np.isnan(x).any():
        raise ValueError(
            f"{name} contains NaN (at flat index {int(np.flatnonzero(np.isnan(x))[0])})"
        )


def check_positive_scalar(value: Any, name: str, why: str = "") -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(
            f"{name} must be a finite number > 0, got {value!r}" + (f": {why}" if why else "")
        )
    return v


def check_same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` when two arrays do not have the same shape."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa != sb:
        raise ValueError(f"{name_a} has shape {sa} but {name_b} has shape {sb}; they must match")


def check_binary_mask(mask: Any, name: str = "response_mask", *, sync: bool | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` and the first offending value unless ``mask`` is bool
    or holds only the values 0 and 1.

    A mask with other values (2, 0.5, -1) would be used as a weight by some code paths (sums,
    products) and as a selection by others (``!= 0``), silently giving wrong gradients.

    Cost: one pass over the mask; nothing for a bool mask. NumPy arrays and CPU tensors are always
    checked (reading host memory is no device synchronisation). A tensor on another device is
    checked only with ``sync=True``, because reading the answer waits for the device; ``sync=False``
    skips the check everywhere.
    """
    if sync is False:
        return
    if is_torch(mask):
        import torch

        if mask.dtype == torch.bool or (sync is None and mask.device.type != "cpu"):
            return
        # Two reductions, no bool temporaries (bool ops are several times slower on the CPU):
        # a float m is 0 or 1 iff m - m^2 == 0 (exactly also in rounding: fl(m^2) != m for any
        # other m, and NaN/inf give NaN/-inf); an integer m iff 0 <= m <= 1.
        if mask.is_floating_point():
            lo, hi = torch.aminmax(torch.addcmul(mask, mask, mask, value=-1))
            ok = bool((lo == 0) & (hi == 0))
        else:
            lo, hi = torch.aminmax(mask)
            ok = bool((lo >= 0) & (hi <= 1))
        if not ok:
            bad = (mask != 0) & (mask != 1)
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(
                f"{name} must be bool or hold only 0 and 1, got {mask[idx].item()!r} at {idx}"
            )
        return
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return
    bad = (m != 0) & (m != 1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        got = m[idx].item()
        raise ValueError(f"{name} must be bool or hold only 0 and 1, got {got!r} at {idx}")


# --------------------------------------------------------------------------- compute dtype


def compute_dtype(x: Any):
    """The dtype ``x`` is computed in: float32 for float16/bfloat16 (NumPy float16), else its own.

    Half precision has 8 (bfloat16) or 11 (float16) mantissa bits, too few for the log-space sums
    and exponentials of the kernels and rules; float32 and float64 are used as given.

    >>> compute_dtype(np.zeros(2, dtype=np.float16))
    dtype('float32')
    """
    if is_torch(x):
        import torch

        return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return np.dtype(np.float32) if x.dtype == np.float16 else x.dtype


def to_compute(x: Any):
    """``x`` in :func:`compute_dtype` (no copy when it already is)."""
    cdt = compute_dtype(x)
    if is_torch(x):
        return x if x.dtype == cdt else x.to(cdt)
    return x.astype(cdt, copy=False)


def cast(x: Any, dtype):
    """``x`` as ``dtype`` (torch: ``.to``; NumPy: ``astype`` without a needless copy)."""
    return x.to(dtype) if is_torch(x) else np.asarray(x).astype(dtype, copy=False)


# --------------------------------------------------------------------------- array ops


class NumpyOps:
    """The operations of the rule bodies on NumPy arrays (row = last axis)."""

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    exp = staticmethod(np.exp)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def cumsum(x):
        return np.cumsum(x, axis=-1)

    @staticmethod
    def rowsum(x):
        return np.sum(x, axis=-1)

    @staticmethod
    def logsigmoid(x):
        return -np.logaddexp(0.0, -x)

    @staticmethod
    def ones_like(x):
        return np.ones_like(x)

    @staticmethod
    def full_like(x, v):
        return np.full_like(x, v)

    @staticmethod
    def finfo_max(x):
        return float(np.finfo(x.dtype).max)


class TorchOps:
    """The same operations on torch tensors (a float bound uses ``clamp``: no tensor is made)."""

    @staticmethod
    def where(c, a, b):
        import torch

        return torch.where(c, a, b)

    @staticmethod
    def exp(x):
        return x.exp()

    @staticmethod
    def minimum(x, v):
        import torch

        return torch.clamp(x, max=v) if isinstance(v, float) else torch.minimum(x, v)

    @staticmethod
    def maximum(x, v):
        import torch

        return torch.clamp(x, min=v) if isinstance(v, float) else torch.maximum(x, v)

    @staticmethod
    def clip(x, lo, hi):
        import torch

        return torch.clamp(x, lo, hi)

    @staticmethod
    def cumsum(x):
        return x.cumsum(-1)

    @staticmethod
    def rowsum(x):
        return x.sum(-1)

    @staticmethod
    def logsigmoid(x):
        import torch

        return torch.nn.functional.logsigmoid(x)

    @staticmethod
    def ones_like(x):
        import torch

        return torch.ones_like(x)

    @staticmethod
    def full_like(x, v):
        import torch

        return torch.full_like(x, v)

    @staticmethod
    def finfo_max(x):
        import torch

        return float(torch.finfo(x.dtype).max)


def ops_for(x: Any):
    """:class:`TorchOps` for a tensor, :class:`NumpyOps` otherwise."""
    return TorchOps if is_torch(x) else NumpyOps
