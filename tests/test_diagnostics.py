"""PSIS k-hat against distributions with a known tail index; Kish ESS is covered by doctests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vespo_theory.diagnostics import KHAT_MAX, khat_threshold, kish_ess, psis_khat

EPS64 = float(np.finfo(np.float64).eps)


@pytest.mark.parametrize("xi", [0.2, 0.5, 0.8, 1.1])
def test_khat_recovers_pareto_tail_index(xi):
    """Lomax (Pareto II) samples have GPD tail index xi. Mean k-hat over R = 10 seeded runs of
    n = 20000: the shape estimate from M = 3 sqrt(n) = 425 tail points has sd ~ (1 + xi) /
    sqrt(M) (GPD asymptotics), so 4 sd / sqrt(R), plus the weak prior's pull of at most
    10 |xi - 0.5| / (M + 10) toward 0.5."""
    rng = np.random.default_rng(11)
    n, R = 20_000, 10
    ks = [psis_khat(np.log(rng.pareto(1 / xi, size=n) + 1.0)) for _ in range(R)]
    M = math.ceil(3 * math.sqrt(n))
    tol = 4 * (1 + xi) / math.sqrt(M * R) + 10 * abs(xi - 0.5) / (M + 10)
    assert abs(np.mean(ks) - xi) <= tol, (np.mean(ks), xi, tol)


def test_khat_light_tails_and_invariances():
    rng = np.random.default_rng(0)
    u = rng.random(5000)
    assert psis_khat(np.log(u)) < 0  # bounded weights: GPD shape -1
    x = rng.normal(size=5000)
    # scale-free: adding 300 re-rounds each log weight by <= ulp(300)/2 = 2.8e-14 absolute, a
    # relative perturbation of every weight of that size; k-hat (a mean of log1p terms of the
    # tail fit) moves by a small multiple of it (7e-14 seen): 1e-12 is ~35 such perturbations
    assert psis_khat(x + 300.0) == pytest.approx(psis_khat(x), abs=1e-12)
    assert psis_khat(np.zeros(100)) == -math.inf  # no tail at all
    # -inf entries (zero weights) are dropped: the same finite values go through the same float
    # operations, so the result is bit-identical (no tolerance needed)
    assert psis_khat(np.concatenate([x, [-np.inf] * 10])) == psis_khat(x)


def test_khat_bad_input():
    with pytest.raises(ValueError, match="at least 20"):
        psis_khat(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        psis_khat(np.array([np.nan] * 30))
    with pytest.raises(ValueError, match="\\+inf"):
        psis_khat(np.array([np.inf] + [0.0] * 30))
    with pytest.raises(ValueError, match="1-D"):
        psis_khat(np.zeros((5, 5)))


def test_khat_torch_input():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=500)
    assert psis_khat(torch.as_tensor(x)) == psis_khat(x)


def test_kish_ess_unchanged():
    # weights (1, 1, 2): (1 + 1 + 2)^2 / (1 + 1 + 4) = 16 / 6 by hand. In log space: two
    # logsumexp of 3 terms, a difference and one exp, each O(1): <= ~8 roundings of u = eps/2
    assert float(kish_ess(np.log([1.0, 1.0, 2.0]))) == pytest.approx(16 / 6, rel=4 * EPS64)


# ----------------------------------------------------------------------------- PSIS reference

# Printed by ``python tests/data/psis_reference.py`` (an independent pure-Python transcription of
# loo's gpdfit / do_psis_i, Vehtari et al. arXiv 1507.02646 App., Zhang & Stephens 2009) on
# 2000 seeded Pareto(1/0.7) log-weights (``reference_log_weights``).
KHAT_REF = 0.5858137378593552  # with PSIS's weak prior (10 pseudo-observations at 0.5)
KHAT_REF_NO_PRIOR = 0.5921703110341222  # the raw Zhang-Stephens shape, no prior
# psis_khat vs the reference differ only by float rounding: exceedances by expm1 (package) vs
# exp(x) - exp(cutoff) (reference), grid points of weight < 10 eps dropped (package), numpy's
# pairwise sums vs math.fsum, over 135 tail points and a 74-point grid: 7.6e-15 seen; 1e-12
# (~4500 eps) is far below the 6.4e-3 the prior moves k-hat or the 3e-3 of a prior of half the
# weight, so any change to the prior, the grid or the tail length fails.
KHAT_TOL = 1e-12


def _psis_reference_module():
    from helpers import load_file

    return load_file("tests/data/psis_reference.py")


def test_khat_pinned_reference():
    ref = _psis_reference_module()
    lw = np.array(ref.reference_log_weights())
    assert abs(psis_khat(lw) - KHAT_REF) <= KHAT_TOL
    # wrong premise: the same fit without the prior is outside the tolerance, so the test tells
    # the prior's presence (and its weight) apart
    assert abs(KHAT_REF_NO_PRIOR - KHAT_REF) > 1000 * KHAT_TOL


def test_psis_reference_script_reproduces_the_pinned_values():
    """The generating script still prints the pinned numbers (pure Python, math.fsum: the same
    to a few ulps on any IEEE platform; 1e-13 allows libm's last-bit differences in log/exp)."""
    ref = _psis_reference_module()
    lw = ref.reference_log_weights()
    assert abs(ref.psis_khat_reference(lw) - KHAT_REF) <= 1e-13
    assert abs(ref.psis_khat_reference(lw, wip=False) - KHAT_REF_NO_PRIOR) <= 1e-13


# ----------------------------------------------------------------------------- Kish ESS


def _two_level_ess_fraction(p: float, d: float) -> float:
    """ESS/n for a fraction p of weights e^d and 1 - p of weights 1 (Kish): by hand,
    (1 - p + p e^d)^2 / (1 - p + p e^(2d))."""
    return (1 - p + p * math.exp(d)) ** 2 / (1 - p + p * math.exp(2 * d))


@pytest.mark.parametrize("fn", ["kish_ess", "kish_ess_from_log_weights"])
def test_kish_ess_survives_underflowing_weights(fn):
    """log-weights around -1e6 (a V = 32000, T = 1e6 sequence weight): every exp is 0, yet the ESS
    is a ratio of relative weights. 10% of 1000 weights are e^4 times the rest: ESS/n is 0.1-ish
    (analytic value by hand above)."""
    import vespo_theory.diagnostics as D

    n, n_hi, base = 1000, 100, -1.0e6
    hi = base + 4.0
    d = hi - base  # exact (Sterbenz): the difference the computation actually sees
    lw = np.full(n, base)
    lw[:n_hi] = hi
    want = _two_level_ess_fraction(n_hi / n, d)
    assert 0.1 < want < 0.2
    got = float(getattr(D, fn)(lw)) / n
    # logsumexp of |x| ~ 1e6 returns max + log(sum): rounding u |x| = 1.1e-10 absolute in each of
    # 2 LSE1 - LSE2 (3 roundings), a relative error of ~3.3e-10 in ESS; 16 eps |base| = 3.6e-9
    assert abs(got - want) <= 16 * EPS64 * abs(base) * want
    # wrong premise: the same ESS from raw weights underflows (0/0), the failure this avoids
    with np.errstate(invalid="ignore"):
        w = np.exp(lw)
        raw = w.sum() ** 2 / (w * w).sum()
    assert not (abs(raw / n - want) <= 0.5 * want)


def test_kish_ess_from_log_weights_spread_and_edges():
    # Gaussian log-weights N(-1e6, s^2): the population ESS/n is E[W]^2/E[W^2] = e^(-s^2). The
    # delta method for (mean w)^2 / mean(w^2) with lognormal moments E[w^a] = e^(a^2 s^2/2) gives
    # a relative sd of 1.14e-3 at s = 0.5, n = 200000 (the O(1/n) bias is ~1e-6): 6e-3 is 5.3 sd
    from vespo_theory.diagnostics import kish_ess_from_log_weights as f

    rng = np.random.default_rng(5)
    s, n = 0.5, 200_000
    lw = -1.0e6 + s * rng.standard_normal(n)
    assert abs(f(lw) / n - math.exp(-(s**2))) <= 6e-3 * math.exp(-(s**2))
    assert f([-np.inf, -np.inf]) == 0.0  # every weight 0: ESS 0 (no NaN)
    assert f([-np.inf, 3.0]) == pytest.approx(1.0, rel=4 * EPS64)  # one weight carries all
    with pytest.raises(ValueError, match="non-empty 1-D"):
        f(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="\\+inf"):
        f([0.0, np.inf])


@pytest.mark.parametrize("fn", ["kish_ess", "log_kish_ess", "kish_ess_from_log_weights"])
def test_kish_ess_nan_raises_naming_the_argument(fn):
    import vespo_theory.diagnostics as D

    with pytest.raises(ValueError, match="^log_w contains NaN") as exc:
        getattr(D, fn)(np.array([0.0, np.nan, 1.0]))
    assert "\n" not in str(exc.value)


def test_kish_ess_nan_torch_raises_by_default_and_never_becomes_zero():
    torch = pytest.importorskip("torch")
    x = torch.tensor([[0.0, float("nan")], [0.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="log_w contains NaN"):
        kish_ess(x)
    # with the check off (a device hot path), the NaN row stays NaN: it is not ESS 0
    out = kish_ess(x, check_nan_input=False)
    assert math.isnan(float(out[0])) and float(out[1]) == pytest.approx(2.0, rel=4 * EPS64)
    out_np = kish_ess(x.numpy(), check_nan_input=False)
    assert math.isnan(float(out_np[0])) and float(out_np[1]) == pytest.approx(2.0, rel=4 * EPS64)
    # an all-zero row (every log-weight -inf) is still ESS 0, not NaN
    z = torch.full((1, 3), float("-inf"), dtype=torch.float64)
    assert float(kish_ess(z)[0]) == 0.0


# ----------------------------------------------------------------- sample-size threshold


@pytest.mark.parametrize(
    "S, expected",
    [
        # 1 - 1/log10(64) = 1 - 1/(6 log10 2) = 0.446345317518773 (by hand: log10 2 =
        # 0.30102999566, 6 x = 1.80617997398, 1/that = 0.55365468248)
        (64, 0.446345317518773),
        (20, 1 - 1 / 1.3010299956639812),  # log10 20 = 1 + log10 2: where psis_khat starts
        (100, 0.5),  # log10 100 = 2 exactly
        (1000, 1 - 1 / 3),
        (2154, 1 - 1 / 3.3332456989619628),  # just below 10^(10/3) = 2154.43: not yet capped
        (2155, 0.7),  # 10^(10/3) < 2155: capped at 0.7
        (10_000, 0.7),  # 1 - 1/4 = 0.75 > 0.7: capped
        (10, 0.0),  # log10 10 = 1: the paper's S_min(k <= 0) = 10, exactly enough
        (2, 1 - 1 / 0.3010299956639812),  # -2.32: below 10 draws no k-hat is reliable
    ],
)
def test_khat_threshold_values(S, expected):
    """min(1 - 1/log10 S, 0.7) (Vehtari et al. 2024, arXiv 1507.02646 §3.2.4, Eq. 13). The
    references are hand values of log10 (rounded to 17 digits); log10 and the division round
    once each and the subtraction once more: 4 eps relative to 1 covers it (abs, since the
    value can be 0)."""
    assert khat_threshold(S) == pytest.approx(expected, abs=4 * EPS64)
    assert khat_threshold(np.int64(S)) == khat_threshold(S)  # NumPy integers count too


def test_khat_threshold_is_monotone_and_capped():
    ts = [khat_threshold(s) for s in range(2, 5000)]
    assert all(a < b for a, b in zip(ts[:2153], ts[1:2154]))  # strictly increasing below 2154
    assert max(ts) == KHAT_MAX == 0.7 and ts[-1] == 0.7
    assert all(t < 0 for t in ts[:8]) and ts[8] == 0.0  # S = 2..9 negative, S = 10 zero


@pytest.mark.parametrize("S", [1, 0, -5, 64.0, 2.5, True, "64", None, float("nan")])
def test_khat_threshold_bad_input_names_S(S):
    with pytest.raises(ValueError, match=r"^S \(number of draws\) must be an integer >= 2, got"):
        khat_threshold(S)


def test_log_weight_summary_values_and_refusals():
    """Hand values on five log-weights (quantiles by NumPy's linear rule), one value (std 0),
    and the refusal of empty or non-finite input (a NaN mean must not be reported)."""
    from vespo_theory.diagnostics import log_weight_summary

    s = log_weight_summary([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert s["log_w_mean"] == 0.0 and s["log_w_min"] == -2.0 and s["log_w_max"] == 2.0
    assert s["log_w_q50"] == 0.0 and s["log_w_q25"] == -1.0 and s["log_w_q75"] == 1.0
    assert s["log_w_q05"] == pytest.approx(-1.8, abs=1e-15)  # -2 + 0.2 (4 * 0.05 = 0.2 of a step)
    assert s["log_w_std"] == pytest.approx(np.sqrt(2.5), rel=1e-15)  # ddof 1: 10 / 4
    assert log_weight_summary([3.0])["log_w_std"] == 0.0
    for bad in ([], [0.0, np.nan], [0.0, -np.inf]):
        with pytest.raises(ValueError, match="^log_w must be a non-empty array of finite"):
            log_weight_summary(bad)
