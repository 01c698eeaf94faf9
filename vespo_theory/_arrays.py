"""Array-type helpers shared by every numeric layer: NumPy in, NumPy out; torch in, torch out.

torch is never imported here at module import time; a tensor is recognised by its type's module,
so ``vespo_theory`` imports without torch installed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


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
    torch only on request;
    callers that want it for torch pass ``check_nan=True`` where the API offers it (the
    kernels do).
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
