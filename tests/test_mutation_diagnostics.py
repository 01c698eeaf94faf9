"""Tests that kill the mutants of ``vespo_theory/diagnostics.py`` the other tests let live.

References: Kish's ratio (sum w)^2 / sum w^2 evaluated with ``math.fsum`` on hand-picked weights
(independent of the log-space path), and the pure-Python PSIS transcription in
``tests/data/psis_reference.py`` (nothing shared with the package). See docs/mutation.md.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers import load_file

from vespo_theory.diagnostics import (
    kish_ess,
    kish_ess_from_log_weights,
    log_kish_ess,
    psis_khat,
)

EPS64 = float(np.finfo(np.float64).eps)
# Same tolerance and reasoning as tests/test_diagnostics.py::KHAT_TOL: the package and the
# pure-Python reference differ only by float rounding (expm1 vs exp - exp, pairwise sums vs
# fsum, grid points of weight < 10 eps dropped), 1e-14 seen; the mutants move k-hat by >= 1e-7.
KHAT_TOL = 1e-12


REF = load_file("tests/data/psis_reference.py")


def _kish(w) -> float:
    """Kish's ESS by hand: (sum w)^2 / sum w^2 (0 for an all-zero row)."""
    s1, s2 = math.fsum(w), math.fsum(v * v for v in w)
    return 0.0 if s1 == 0 else s1 * s1 / s2


# ----------------------------------------------------------------------------- Kish ESS

# three rows of 4 small-integer weights each (0 = a zero weight, log w = -inf), and a mask
WEIGHTS = [[1.0, 1.0, 2.0, 5.0], [3.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 7.0]]
MASK = [[True, True, True, False], [True, True, True, True], [False, False, False, False]]
# log-space path: two logsumexp of <= 4 terms, a difference and one exp: <= ~10 roundings of
# eps/2 relative on O(1) numbers; 8 eps covers it and is 1e13 times below any mutant's change.
REL_ESS = 8 * EPS64


def _expected(weights, mask=None):
    out = []
    for i, row in enumerate(weights):
        out.append(_kish([w for j, w in enumerate(row) if mask is None or mask[i][j]]))
    return out


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_kish_ess_masked_rows_by_hand(kind):
    """Masked entries are excluded (kish_ess and log_kish_ess); an all-masked row has ESS 0.

    Kills: the mask ignored or mis-passed (np.where / torch.where argument mutants, +inf for
    masked entries, ``kish_ess`` dropping ``mask``), the empty-row branch (-inf -> +inf / None),
    2 LSE(2 x) -> LSE(3 x) in torch, and ``is_torch`` mutants (array type in = out).
    """
    with np.errstate(divide="ignore"):
        logw = np.log(np.array(WEIGHTS))  # log 0 = -inf: a zero weight
    mask = np.array(MASK)
    if kind == "torch":
        torch = pytest.importorskip("torch")
        logw, mask = torch.tensor(logw), torch.tensor(mask)
    with warnings.catch_warnings():
        # the all-masked row gives -inf - -inf inside; the module silences it (no warning)
        warnings.simplefilter("error")
        ess = kish_ess(logw, mask)
        log_ess = log_kish_ess(logw, mask)
        ess_nomask = kish_ess(logw)
    assert type(ess) is type(logw) and type(log_ess) is type(logw)
    ess, log_ess, ess_nomask = (np.asarray(a, dtype=np.float64) for a in (ess, log_ess, ess_nomask))
    exp_mask, exp_nomask = _expected(WEIGHTS, MASK), _expected(WEIGHTS)
    assert exp_mask == pytest.approx([16 / 6, 25 / 11, 0.0])  # by hand: 4^2/6, 5^2/11, empty
    assert ess[:2] == pytest.approx(exp_mask[:2], rel=REL_ESS)
    assert ess[2] == 0.0 and log_ess[2] == -np.inf
    assert log_ess[:2] == pytest.approx(np.log(exp_mask[:2]), abs=REL_ESS)
    assert ess_nomask == pytest.approx(exp_nomask, rel=REL_ESS)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_kish_ess_reduces_over_the_last_axis_of_a_3d_batch(kind):
    """Shape (2, 3, 4) -> (2, 3). Kills ``dim=-1`` -> ``dim=+1`` (the same axis only in 2-D)."""
    w = np.array([WEIGHTS, [[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], [8.0, 1.0, 1.0, 0.0]]])
    with np.errstate(divide="ignore"):
        logw = np.log(w)  # log 0 = -inf: a zero weight
    if kind == "torch":
        torch = pytest.importorskip("torch")
        logw = torch.tensor(logw)
    out = np.asarray(kish_ess(logw), dtype=np.float64)
    assert out.shape == (2, 3)
    expected = [_expected(WEIGHTS), _expected(w[1].tolist())]
    assert out == pytest.approx(np.array(expected), rel=REL_ESS)


def test_kish_messages_are_exact():
    """Anchored messages: a substring match lets the ``"XX...XX"`` message mutants live."""
    for fn in (log_kish_ess, kish_ess_from_log_weights, psis_khat):
        with pytest.raises(TypeError, match=r"^log_w must be numeric, got dtype <U1$"):
            fn(np.array(["a"] * 30))
        with pytest.raises(
            ValueError, match=r"^log_w contains \+inf; pass finite log-weights \(log space\)$"
        ):
            fn(np.array([np.inf] + [0.0] * 29))
    with pytest.raises(ValueError, match=r"^log_w contains NaN \(at flat index 0\)$"):
        psis_khat(np.array([np.nan] + [0.0] * 29))


def test_kish_ess_from_log_weights_torch_with_grad_and_sizes():
    """A torch tensor that requires grad is detached and converted (numpy() on it would raise).

    Kills: ``is_torch(log_w)`` -> ``is_torch(None)`` and the conversion -> None; ``size == 0``
    -> ``size == 1`` (one weight has ESS 1; an empty input raises).
    """
    torch = pytest.importorskip("torch")
    x = torch.log(torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)).requires_grad_(True)
    assert kish_ess_from_log_weights(x) == pytest.approx(16 / 6, rel=REL_ESS)
    assert kish_ess_from_log_weights([3.0]) == 1.0
    with pytest.raises(ValueError, match=r"non-empty 1-D array, got shape \(0,\)"):
        kish_ess_from_log_weights([])


def test_kish_ess_from_log_weights_float32_input_is_computed_in_float64():
    """float32 log-weights are widened first: the answer is Kish's ratio of the exact float32
    values to float64 accuracy. In float32 it would be off by ~1e-7 relative.

    Kills: ``np.asarray(..., dtype=np.float64)`` -> dtype None / omitted.
    """
    lw32 = np.log(np.array([1.0, 1.3, 2.1, 0.7, 5.3, 0.01], dtype=np.float32))
    w = [math.exp(float(v)) for v in lw32]  # the weights the float32 input stands for
    # float64 path: <= ~20 roundings of eps/2 on O(1) numbers (6-term LSE twice): 16 eps
    assert kish_ess_from_log_weights(lw32) == pytest.approx(_kish(w), rel=16 * EPS64)


# ----------------------------------------------------------------------------- PSIS k-hat


def _khat_ref(values) -> float:
    return REF.psis_khat_reference([float(v) for v in values])


@pytest.mark.parametrize("n", [25, 50, 100])
def test_khat_small_samples_match_the_reference(n):
    """n = 25: a tail of exactly 5 exceedances (fitted); n = 50, 100: 0.2 n < 3 sqrt(n) sets M.

    Small tails make the posterior over the Zhang-Stephens grid broad, so the grid size
    m = 30 + floor(sqrt(M)) and the grid index range j = 1..m matter at 1e-7..1e-2 (at n = 2000
    they move k-hat by < 1e-13). Kills: m = 31 + ..., arange(2, ...), arange(.., m - 1),
    ``exceed.size < 5`` -> ``<= 5`` / ``< 6``, 0.2 n -> 1.2 n.
    """
    lw = REF.reference_log_weights(n=n)
    assert abs(psis_khat(np.array(lw)) - _khat_ref(lw)) <= KHAT_TOL


def test_khat_float32_input_is_computed_in_float64():
    """Kills: ``np.asarray(..., dtype=np.float64)`` -> dtype None / omitted (float32 fit)."""
    lw32 = np.array(REF.reference_log_weights(n=500), dtype=np.float32)
    assert abs(psis_khat(lw32) - _khat_ref(lw32)) <= KHAT_TOL


def test_khat_torch_input_with_grad():
    """Kills: ``is_torch(log_w)`` -> ``is_torch(None)`` (numpy() on a grad tensor raises)."""
    torch = pytest.importorskip("torch")
    lw = REF.reference_log_weights(n=100)
    x = torch.tensor(lw, dtype=torch.float64, requires_grad=True)
    assert abs(psis_khat(x) - _khat_ref(lw)) <= KHAT_TOL


def test_khat_exactly_20_weights_is_allowed():
    """n = 20 is the documented minimum; its tail (M = ceil(min(4, 13.4)) = 4 < 5 points) is too
    short to fit, so the answer is -inf. Kills ``n < 20`` -> ``n <= 20`` / ``n < 21``."""
    assert psis_khat(np.array(REF.reference_log_weights(n=20))) == -math.inf
    with pytest.raises(ValueError, match="at least 20 finite log-weights, got 19"):
        psis_khat(np.array(REF.reference_log_weights(n=19)))


def test_khat_large_offsets_and_spreads():
    """Shift by +400 (log-weights near the float64 exp limit) and a tail spanning e^400.

    Kills: ``x - x.max()`` -> ``x + x.max()`` (exp(cutoff) overflows) and
    ``expm1(.) * exp(cutoff)`` -> ``/ exp(cutoff)`` (e^800 overflows): k-hat is scale-free, so
    only the overflow tells these apart, at these sizes.
    """
    lw = np.array(REF.reference_log_weights(n=100)) + 400.0
    assert abs(psis_khat(lw) - _khat_ref(lw)) <= KHAT_TOL
    # 80 body weights up to 1 (log 0 is the cutoff), tail exceedances e^0 .. e^400 over it
    body = np.log(np.linspace(0.2, 1.0, 80))
    tail = np.log1p(np.exp(np.linspace(0.0, 400.0, 20)))
    wide = np.concatenate([body, tail])
    k = psis_khat(wide)
    assert math.isfinite(k) and abs(k - _khat_ref(wide)) <= KHAT_TOL


def _with_tail(exceedances) -> np.ndarray:
    """n = 100 log-weights: 80 body weights in [0.2, 1] (cutoff weight 1) and a tail of 20
    exceedances e_i over it (weights 1 + e_i), so M = 20 and the fit sees exactly e_i."""
    assert len(exceedances) == 20
    return np.concatenate([np.log(np.linspace(0.2, 1.0, 80)), np.log1p(np.array(exceedances))])


@pytest.mark.parametrize(
    "exceed",
    [
        list(np.linspace(1.0, 1.9, 20)),  # a real tail narrower than a factor 2
        [1.0, 1.0] + list(np.linspace(1.5, 4.0, 18)),  # the two smallest tied
        [1.0] * 19 + [3.5],  # all but the largest tied
        [0.5] + [2.0] * 19,  # all but the smallest tied
    ],
    ids=["narrow", "two-smallest-tied", "top-distinct", "bottom-distinct"],
)
def test_khat_tails_with_two_distinct_values_are_fitted(exceed):
    """A tail is "flat" (k-hat = -inf) only when its largest exceedance equals its smallest
    (to 1e-12 relative); any tail with two distinct values is fitted, ties or not.

    Kills the flatness test's index mutants (e[+1], e[-2], e[1]) and factor mutants
    ((2 + 1e-12), (1 + 1.000000000001)).
    """
    lw = _with_tail(exceed)
    k = psis_khat(lw)
    assert math.isfinite(k)
    assert abs(k - _khat_ref(lw)) <= KHAT_TOL


def test_khat_flat_tail_within_1e12_is_minus_inf():
    """Exceedances 1 + i 2e-14 (i < 20): relative spread 3.8e-13 < 1e-12, so no tail to fit.

    Kills ``e[0] * (1 + 1e-12)`` -> ``e[0] / (1 + 1e-12)`` or ``* (1 - 1e-12)``.
    """
    lw = _with_tail([1.0 + i * 2e-14 for i in range(20)])
    assert psis_khat(lw) == -math.inf


def test_khat_ties_at_the_cutoff_are_dropped():
    """Tail values equal to the cutoff give exceedances of exactly 0; the GPD fit is over the
    positive exceedances only (the reference fit is run on those by hand).

    Kills ``exceed[exceed > 0]`` -> ``exceed[exceed >= 0]``.
    """
    lw = np.sort(np.array(REF.reference_log_weights(n=100)))
    cutoff_idx = 100 - 20 - 1  # M = 20: the cutoff is the 21st largest
    lw[cutoff_idx + 1 : cutoff_idx + 3] = lw[cutoff_idx]  # two tail values tie with the cutoff
    mx = float(lw.max())
    cut = math.exp(float(lw[cutoff_idx]) - mx)
    positive = sorted(e for e in (math.exp(float(v) - mx) - cut for v in lw[-20:]) if e > 0)
    assert len(positive) == 18
    assert abs(psis_khat(lw) - REF.gpdfit(positive)[0]) <= KHAT_TOL


def test_khat_large_tail_is_silent():
    """n = 200000 bounded weights (uniform): M = 1342 tail points, and the profile
    log-likelihood spans ~1200 over the grid (> 709), so exp overflows for far grid points
    (weight 0). That is intended and silent. Kills ``np.errstate(over="ignore")`` ->
    ``over=None``.
    """
    rng = np.random.default_rng(3)
    lw = np.log(rng.random(200_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k = psis_khat(lw)
    assert k < 0  # bounded weights: GPD shape -1, pulled towards 0.5 by 10 / 1352
    assert abs(k - _khat_ref(lw)) <= KHAT_TOL


def _gpdfit_dropping_zero_k(x: list[float]) -> float:
    """tests/data/psis_reference.py's gpdfit (loo), except that a grid point with k(theta) = 0
    (theta = 0: the profile likelihood is 0/0) is left out, as the package documents."""
    n = len(x)
    m = 30 + int(math.floor(math.sqrt(n)))
    xstar = x[int(math.floor(n / 4 + 0.5)) - 1]
    theta = [1.0 / x[-1] + (1.0 - math.sqrt(m / (j - 0.5))) / 3.0 / xstar for j in range(1, m + 1)]

    def k_of(t: float) -> float:
        return math.fsum(math.log1p(-t * xi) for xi in x) / n

    pts = [(t, n * (math.log(-t / k_of(t)) - k_of(t) - 1.0)) for t in theta if k_of(t) != 0.0]
    top = max(lt for _, lt in pts)
    z = math.fsum(math.exp(lt - top) for _, lt in pts)
    theta_hat = math.fsum(t * math.exp(lt - top) / z for t, lt in pts)
    return (n * k_of(theta_hat) + 10 * 0.5) / (n + 10)


def test_khat_grid_point_at_theta_zero_drops_out_silently():
    """Exceedances (1 x 19, 3): with M = 20, m = 34 the grid point j = 9 is theta = 1/3 +
    (1 - sqrt(34 / 8.5)) / 3 = 0 exactly, where k(theta) = 0 and the likelihood is 0/0. It
    drops out without a warning. Kills the ``np.errstate(divide=..., invalid=...)`` mutants of
    the likelihood (the 0/0 then warns, an error here).
    """
    exceed = [1.0] * 19 + [3.0]
    assert 1.0 / 3.0 + (1.0 - math.sqrt(34 / 8.5)) / 3.0 / 1.0 == 0.0
    lw = _with_tail(exceed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k = psis_khat(lw)
    # the package fits the exceedances in units of the max weight, (0.25 x 19, 0.75) here (exact
    # powers of 2), where theta_9 is exactly 0 too; k-hat is scale-free, so the reference is run
    # on (1 x 19, 3). Tolerance as for the pinned reference.
    assert abs(k - _gpdfit_dropping_zero_k(exceed)) <= KHAT_TOL
