"""Deprecated alias of :mod:`vespo_theory.array_ops` (kept while ``vespo_theory.diagnostics``
still imports it; import from ``vespo_theory.array_ops`` instead)."""

from vespo_theory.array_ops import (  # noqa: F401
    as_float_array,
    check_nan,
    check_positive_scalar,
    check_same_shape,
    is_torch,
)
