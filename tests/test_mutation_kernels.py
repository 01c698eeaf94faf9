"""Tests that kill the mutants of ``vespo_theory/kernels.py`` the other kernel tests let live.

Each reference is a closed form evaluated in Python floats (``math``), never the kernel itself.
See docs/mutation.md for the run and the list of mutants left alive (with the reason each one is
equivalent or harmless).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from vespo_theory.kernels import log_phi, log_phi_signed, phi, phi_signed
from vespo_theory.params import VespoParams

torch = pytest.importorskip("torch")

F64_MAX = float(np.finfo(np.float64).max)


def _closed_form(x: float, k: float, lam: float) -> float:
    """log phi = k x + lam (1 - e^x), in float64."""
    return k * x + lam * (1.0 - math.exp(x))


def _hi(lam: float) -> float:
    """The documented clamp point of log_w in float64: log(finfo.max / (2 max(lam, 1)))."""
    return math.log(F64_MAX / (2.0 * max(lam, 1.0)))


def _clamped(k: float, lam: float) -> float:
    """The documented log_phi for log_w >= hi: k hi + lam - min(lam, 1) finfo.max / 2."""
    return k * _hi(lam) + lam - min(lam, 1.0) * F64_MAX / 2.0


# float64 tolerance: hi carries one rounding of a number near 709 (~1e-13 absolute), which exp
# turns into ~1e-13 relative, plus ~1 ulp each for exp, the product and the sum; 1e-12 covers it
# and is still 1e11 times smaller than what the mutants change (a factor e^-0.25 .. e^-1).
REL64 = 1e-12


@pytest.mark.parametrize("lam", [0.5, 2.0, 4.0])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_clamp_point_of_log_w_scalar_params(kind, lam):
    """Just below hi the closed form holds; at and above hi log_phi is the clamped constant.

    Kills: the clamp constant log 2 -> log 3, max(log lam, 0) -> max(log lam, 1).
    """
    k = 2.0
    below, above = _hi(lam) - 0.25, _hi(lam) + 0.25
    xs = np.array([below, above, 1e4])
    x = torch.tensor(xs, dtype=torch.float64) if kind == "torch" else xs
    out = np.asarray(log_phi(x, k, lam), dtype=np.float64)
    assert out[0] == pytest.approx(_closed_form(below, k, lam), rel=REL64)
    assert out[1] == pytest.approx(_clamped(k, lam), rel=REL64)
    assert out[2] == pytest.approx(_clamped(k, lam), rel=REL64)
    assert np.all(np.asarray(phi(x, k, lam)) == 0.0)


@pytest.mark.parametrize("lams", [(0.5, 2.0), (2.0, 4.0), (4.0, 0.5)])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_clamp_point_of_log_w_signed_params(kind, lams):
    """The per-element (array) path clamps each element at its own lam's hi.

    Kills: ``log_max - log lam`` -> ``log_max + log lam`` and ``clamp(min=0)``/``maximum(., 0)``
    -> ``1`` in the array branch (NumPy and torch).
    """
    lam_pos, lam_neg = lams
    params = VespoParams(k_pos=2.0, lam_pos=lam_pos, k_neg=3.0, lam_neg=lam_neg)
    xs = np.array(
        [_hi(lam_pos) - 0.25, _hi(lam_neg) - 0.25, _hi(lam_pos) + 0.25, _hi(lam_neg) + 0.25]
    )
    adv = np.array([1.0, -1.0, 0.5, -0.5])
    if kind == "torch":
        out = log_phi_signed(torch.tensor(xs), torch.tensor(adv), params).numpy()
    else:
        out = log_phi_signed(xs, adv, params)
    assert out[0] == pytest.approx(_closed_form(xs[0], 2.0, lam_pos), rel=REL64)
    assert out[1] == pytest.approx(_closed_form(xs[1], 3.0, lam_neg), rel=REL64)
    assert out[2] == pytest.approx(_clamped(2.0, lam_pos), rel=REL64)
    assert out[3] == pytest.approx(_clamped(3.0, lam_neg), rel=REL64)


@pytest.mark.parametrize(
    "dtype, rel",
    [
        # one float16 ulp relative to a value in [2^-11, 2^-10) is 2^-10; computing in float32
        # and rounding once may land one ulp off the correctly rounded value: allow 2 ulps.
        (torch.float16, 2.0**-9),
        # bfloat16 has an 8-bit significand: one ulp is <= 2^-7 relative; 2 ulps as above.
        (torch.bfloat16, 2.0**-6),
    ],
)
def test_low_precision_torch_is_computed_in_float32(dtype, rel):
    """At log_w = -0.875 (exact in both formats), k=2, lam=3: log phi = -5.8606e-4.

    Computed in float16 itself this gives -9.8e-4 (67 % off); in bfloat16, +7.8e-3 (wrong sign).
    Kills: ``log_w.to(cdt)`` -> ``log_w.to(None)`` (computing in the input dtype).
    """
    ref = _closed_form(-0.875, 2.0, 3.0)
    out = log_phi(torch.tensor([-0.875], dtype=dtype), 2, 3)
    assert out.dtype == dtype
    assert float(out[0]) == pytest.approx(ref, rel=rel)


def test_float16_overflow_on_the_cast_back_is_silent_and_exact():
    """log_w = 12 in float16, k=2, lam=3: log phi = 24 + 3 (1 - e^12) = -4.9e5 < -65504.

    The cast back to float16 gives -inf (phi = 0), the correctly rounded value, without a
    RuntimeWarning. Kills: ``np.errstate(over="ignore")`` -> ``np.errstate(over=None)``.
    """
    assert _closed_form(12.0, 2.0, 3.0) < -float(np.finfo(np.float16).max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = log_phi(np.array([12.0], dtype=np.float16), 2, 3)
        p = phi(np.array([12.0], dtype=np.float16), 2, 3)
    assert out.dtype == np.float16 and out[0] == -np.inf
    assert p.dtype == np.float16 and p[0] == 0.0


def test_error_messages_name_the_argument_exactly():
    """Anchored messages (a substring match lets ``"XX...XX"`` message mutants live)."""
    with pytest.raises(TypeError, match=r"^adv must be a torch\.Tensor when log_w is one$"):
        phi_signed(torch.zeros(2), np.ones(2))
    with pytest.raises(TypeError, match=r"^adv must be a NumPy array \(or array-like\) when"):
        phi_signed(np.zeros(2), torch.ones(2))
    with pytest.raises(TypeError, match=r"^adv must be numeric, got dtype <U3$"):
        phi_signed(np.zeros(2), np.array(["abc", "def"]))
    with pytest.raises(ValueError, match=r"^adv contains NaN \(at flat index 1\)$"):
        phi_signed(np.zeros(2), np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match=r"^params must be a VespoParams, got int$"):
        log_phi_signed(np.zeros(2), np.ones(2), params=3)


def test_log_phi_signed_passes_check_nan_through():
    """``check_nan`` of log_phi_signed reaches the log_w check (both directions).

    Kills: ``_prepare(log_w, check_nan)`` -> ``_prepare(log_w, None)``.
    """
    x = torch.tensor([0.0, float("nan")], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^log_w contains NaN$"):
        log_phi_signed(x, torch.ones(2, dtype=torch.float64), check_nan=True)
    # NumPy: opting out skips the log_w check; the NaN propagates (adv is still checked).
    out = log_phi_signed(np.array([0.0, np.nan]), np.ones(2), check_nan=False)
    assert out[0] == 0.0 and np.isnan(out[1])
