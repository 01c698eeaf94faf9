"""Tests that kill the surviving mutants of ``simulations.falsify.claims._pair`` (docs/mutation.md):
the validation of an instance's mu / pi / log_w, which ``vespo falsify --replay`` and every
evaluator go through. Each case is a hand-made instance with one defect."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.falsify import claims as C


def test_pi_is_used_when_an_instance_gives_both_pi_and_log_w():
    # log_w is only the alternative to pi: with both, W = pi / mu (here log W = log 1/2, log 3/2)
    mu, pi, log_w = C._pair({"mu": [0.5, 0.5], "pi": [0.25, 0.75], "log_w": [0.0, 0.0]})
    assert pi is not None and pi.tolist() == [0.25, 0.75]
    assert log_w.tolist() == [np.log(0.25) - np.log(0.5), np.log(0.75) - np.log(0.5)]


@pytest.mark.parametrize(
    "inst, match",
    [
        ({"mu": [0.5, 0.5], "log_w": [0.0, 0.0, 0.0]}, "same length"),  # shape, no NaN
        ({"mu": [], "log_w": []}, "same length"),  # an empty support
        ({"mu": [1.0, 0.0], "log_w": [0.0, 0.0]}, "mu must be > 0"),  # finite, sums to 1
        ({"mu": [1.5, -0.5], "pi": [0.5, 0.5]}, "^mu must be finite and >= 0$"),
        ({"mu": [0.5, 0.5], "pi": [1.5, -0.5]}, "^pi must be finite and >= 0$"),
        ({"mu": [0.5, 0.5], "pi": [0.75, 0.75]}, "pi must sum to 1"),  # off by 0.5, not 1e-9
    ],
)
def test_bad_instances_are_refused_with_their_reason(inst, match):
    with pytest.raises(ValueError, match=match):
        C._pair(inst)


@pytest.mark.parametrize(
    "inst, kwargs, match",
    [
        ({"mu": [0.5, 0.5], "pi": [0.75, 0.75]}, {}, r"^pi must sum to 1, sums to 1\.5$"),
        ({"mu": [1.0, 0.0], "pi": [0.5, 0.5]}, {}, "^mu must be > 0 on the whole support"),
        (
            {"mu": [0.5, 0.5], "pi": [1.0, 0.0]},
            {"pi_zeros": False},
            "^pi must be > 0 on the whole support here",
        ),
    ],
)
def test_refusals_of_the_pi_branch_name_their_reason(inst, kwargs, match):
    with pytest.raises(ValueError, match=match):
        C._pair(inst, **kwargs)


def test_probabilities_are_normalised_by_their_sum():
    # sums of 1 + 5e-10 are accepted (hand-typed digits) and divided out: the returned mu and pi
    # sum to 1 within float64 rounding of two terms (4e-16 here: 1e-15 is ~4 ulps of 1)
    mu, pi, _ = C._pair({"mu": [0.5, 0.5 + 5e-10], "pi": [0.25, 0.75 + 5e-10]})
    assert abs(mu.sum() - 1.0) <= 1e-15 and abs(pi.sum() - 1.0) <= 1e-15


def test_a_zero_pi_gives_log_w_minus_inf_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, log_w = C._pair({"mu": [0.5, 0.5], "pi": [1.0, 0.0]})
    assert log_w[1] == -np.inf and log_w[0] == np.log(2.0)
