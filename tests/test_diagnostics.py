"""PSIS k-hat against distributions with a known tail index; Kish ESS is covered by doctests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vespo_theory.diagnostics import kish_ess, psis_khat

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
