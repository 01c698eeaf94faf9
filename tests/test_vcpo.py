"""VCPO's off-policy optimal baseline (vespo_theory.vcpo) against its closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vespo_theory.vcpo import vcpo_baseline, vcpo_group_baselines


def test_hand_example_equals_the_closed_form():
    """w = (1, 2, 1/2), ||g||^2 = (3, 1, 8), R = (1, 0, 2): w^2 ||g||^2 = (3, 4, 2), so
    b* = (3 * 1 + 4 * 0 + 2 * 2) / (3 + 4 + 2) = 7/9."""
    b = vcpo_baseline(np.log([1.0, 2.0, 0.5]), [3.0, 1.0, 8.0], [1.0, 0.0, 2.0])
    # float64 log/exp round trips of O(1) numbers and a 3-term weighted mean: a few ulp
    assert b == pytest.approx(7 / 9, rel=1e-15)


def test_log_space_survives_huge_and_tiny_weights():
    """log W = 1e4 or -1e4 (exp overflows / underflows): only the differences matter. Shifting
    every log w by 1e4 leaves b* unchanged; a weight e^-1e4 below the others counts 0."""
    lw = np.array([0.0, math.log(2.0), math.log(0.5)])
    g2, R = [3.0, 1.0, 8.0], [1.0, 0.0, 2.0]
    base = vcpo_baseline(lw, g2, R)
    # the shift is exact in binary only up to rounding of 1e4 + log w: ~1e-12 absolute in the
    # logs, so ~2e-12 relative in each weight ratio
    assert vcpo_baseline(lw + 1e4, g2, R) == pytest.approx(base, rel=1e-11)
    assert vcpo_baseline(lw - 1e4, g2, R) == pytest.approx(base, rel=1e-11)
    assert vcpo_baseline([0.0, -1e4], [1.0, 1.0], [5.0, -3.0]) == 5.0
    assert vcpo_baseline([0.0, -np.inf], [1.0, 1.0], [5.0, -3.0]) == 5.0  # w = 0


def test_torch_input_and_zero_weights():
    torch = pytest.importorskip("torch")
    b = vcpo_baseline(torch.zeros(2, dtype=torch.float32), torch.ones(2), torch.tensor([1.0, 3.0]))
    assert b == 2.0
    # every w^2 ||g||^2 = 0: the baseline does not matter; the plain mean, never NaN
    assert vcpo_baseline([0.0, 0.0], [0.0, 0.0], [1.0, 3.0]) == 2.0


def test_group_baselines():
    out = vcpo_group_baselines(
        np.log([1.0, 2.0, 1.0, 1.0]), [1, 1, 1, 1], [0, 1, 4, 2], [7, 7, 3, 3]
    )
    # group 7: weights 1, 4 on rewards 0, 1 -> 0.8; group 3: equal weights -> 3
    np.testing.assert_allclose(out, [0.8, 0.8, 3.0, 3.0], rtol=1e-15)


@pytest.mark.parametrize(
    "args, match",
    [
        (([np.nan], [1.0], [1.0]), "log_w contains NaN"),
        (([np.inf], [1.0], [1.0]), "log_w contains \\+inf"),
        (([0.0], [-1.0], [1.0]), "g_norm2 must hold finite squared norms >= 0"),
        (([0.0], [np.inf], [1.0]), "g_norm2 must hold finite squared norms >= 0"),
        (([0.0], [1.0], [np.inf]), "reward must be finite"),
        (([0.0, 0.0], [1.0], [1.0]), "must have the same length, got 2, 1, 1"),
        (([], [], []), "log_w must be a non-empty 1-D array"),
        ((np.zeros((2, 2)), [1.0], [1.0]), "log_w must be a non-empty 1-D array"),
    ],
)
def test_bad_input_is_named(args, match):
    with pytest.raises(ValueError, match=match):
        vcpo_baseline(*args)
    with pytest.raises(ValueError, match="group must have shape"):
        vcpo_group_baselines([0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0])
