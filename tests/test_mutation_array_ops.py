"""Tests that kill the mutants of ``vespo_theory/array_ops.py`` the other tests let live (see
docs/mutation.md): the array ops of the rule bodies on hand values, on 3-D input (where the last
axis is not axis 1) and with tensor bounds, and the exact messages of the checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vespo_theory.array_ops import (
    NumpyOps,
    TorchOps,
    as_float_array,
    cast,
    check_positive_scalar,
    to_compute,
)

torch = pytest.importorskip("torch")

X3 = np.arange(24, dtype=np.float64).reshape(2, 3, 4)  # whole numbers: sums are exact


@pytest.mark.parametrize("ops, to", [(NumpyOps, np.asarray), (TorchOps, torch.tensor)])
def test_row_ops_reduce_the_last_axis_of_3d_input(ops, to):
    """rowsum / cumsum over the LAST axis (axis 1 is the same only in 2-D). Exact: integers."""
    rows = np.asarray(ops.rowsum(to(X3)))
    assert rows.shape == (2, 3)
    assert rows.tolist() == [[6, 22, 38], [54, 70, 86]]  # 4 a + 6 for a row starting at a
    cum = np.asarray(ops.cumsum(to(X3)))
    assert cum[1, 2].tolist() == [20, 41, 63, 86]


@pytest.mark.parametrize("ops, to", [(NumpyOps, np.asarray), (TorchOps, torch.tensor)])
def test_logsigmoid_by_hand(ops, to):
    """log sigmoid(x) = -log(1 + e^-x): at 0, -log 2; at 2, -log(1 + e^-2); at -2, -log(1 + e^2).
    One log1p/exp pair on O(1) numbers: 4 eps relative."""
    got = np.asarray(ops.logsigmoid(to(np.array([0.0, 2.0, -2.0]))))
    hand = [-math.log(2.0), -math.log1p(math.exp(-2.0)), -math.log1p(math.exp(2.0))]
    np.testing.assert_allclose(got, hand, rtol=4 * np.finfo(np.float64).eps)


def test_torch_minimum_and_maximum_take_tensor_bounds():
    """A float bound uses clamp; a tensor bound is elementwise (the documented other case)."""
    x = torch.tensor([1.0, 5.0, -3.0])
    v = torch.tensor([2.0, 2.0, -4.0])
    assert TorchOps.minimum(x, v).tolist() == [1.0, 2.0, -4.0]
    assert TorchOps.maximum(x, v).tolist() == [2.0, 5.0, -3.0]
    assert TorchOps.minimum(x, 0.0).tolist() == [0.0, 0.0, -3.0]
    assert TorchOps.maximum(x, 0.0).tolist() == [1.0, 5.0, 0.0]


def test_cast_sets_the_dtype():
    assert cast(torch.zeros(2), torch.float16).dtype == torch.float16
    assert cast(np.zeros(2), np.float32).dtype == np.float32


def test_check_messages_are_exact():
    """With and without a reason (kills the ``why`` default and the conditional suffix)."""
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0, got -1$"):
        check_positive_scalar(-1, "x")
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0, got 0: because$"):
        check_positive_scalar(0, "x", "because")
    assert check_positive_scalar(2, "x") == 2.0
    with pytest.raises(TypeError, match=r"^v must be numeric array-like, got list$"):
        as_float_array([[1.0], [1.0, 2.0]], "v")  # ragged: NumPy refuses it


def test_to_compute_widens_half_precision_only():
    """float16 / bfloat16 -> float32; float32 and float64 are returned as they are (no copy).
    Kills ``cdt = None`` and the inverted / forced dtype test of ``to_compute``."""
    for dt in (torch.float16, torch.bfloat16):
        assert to_compute(torch.zeros(2, dtype=dt)).dtype == torch.float32
    assert to_compute(np.zeros(2, dtype=np.float16)).dtype == np.float32
    for x in (torch.zeros(2), torch.zeros(2, dtype=torch.float64), np.zeros(2, np.float32)):
        assert to_compute(x) is x


def test_is_torch_for_a_tensor_subclass_from_a_submodule():
    # nn.Parameter's type lives in torch.nn.parameter: the top-level package decides, not the
    # whole module path
    from vespo_theory.array_ops import is_torch

    assert is_torch(torch.nn.Parameter(torch.zeros(1)))
    assert is_torch(torch.zeros(1)) and not is_torch(np.zeros(1))


@pytest.mark.parametrize(
    "given", [np.array([1, 0, 3], dtype=np.int64), np.array([True, False, True]), [1, 0, 3]]
)
def test_integer_and_bool_arrays_become_float64(given):
    out = as_float_array(given, "x")
    assert out.dtype == np.float64
    # integers and bools are exact in float64
    np.testing.assert_array_equal(out, np.asarray(given, dtype=np.float64))


def test_binary_mask_message_names_the_value_and_where():
    from vespo_theory.array_ops import check_binary_mask

    with pytest.raises(ValueError) as exc:
        check_binary_mask(np.array([[1.0, 0.0], [0.5, 1.0]]), "response_mask")
    assert str(exc.value) == "response_mask must be bool or hold only 0 and 1, got 0.5 at (1, 0)"
    with pytest.raises(ValueError) as exc:
        check_binary_mask(torch.tensor([[1, 2]]), "mask")
    assert str(exc.value) == "mask must be bool or hold only 0 and 1, got 2 at (0, 1)"
