"""Bandits: exact policy gradient, exact mean/covariance per rule, Monte Carlo agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulations.bandits import exact_gradient, simulate_bandit
from simulations.config import BanditConfig

CFG = BanditConfig(mu=(0.5, 0.3, 0.2), pi=(0.2, 0.3, 0.5), reward=(1.0, -1.0, 0.5))


def _objective(theta, reward):
    p = np.exp(theta - theta.max())
    p /= p.sum()
    return p @ reward


def test_exact_gradient_matches_finite_differences():
    """Central differences with h = 1e-5: truncation O(h^2) ~ 1e-10, rounding ~ eps/h ~ 2e-11."""
    g = exact_gradient(CFG)
    theta = np.log(np.asarray(CFG.pi))
    r = np.asarray(CFG.reward)
    h = 1e-5
    fd = [
        (_objective(theta + h * e, r) - _objective(theta - h * e, r)) / (2 * h) for e in np.eye(3)
    ]
    np.testing.assert_allclose(g, fd, atol=1e-9)


def test_is_is_unbiased_and_covariance_is_exact():
    """IS: exact mean = the policy gradient; covariance = E[W^2 A^2 s s^T] - g g^T by hand."""
    res = simulate_bandit(CFG, ["is", "reinforce"], n_mc=1000)
    g = res["true_grad"]
    is_rec = res["exact"][0]
    # a sum of 3 products of O(1) numbers (|g| <= 0.35): a few roundings of u = 1.1e-16
    # (2.8e-17 seen); 1e-15 is ~9 u
    np.testing.assert_allclose(is_rec["mean"], g, atol=1e-15)
    mu, pi, r = (np.asarray(x) for x in (CFG.mu, CFG.pi, CFG.reward))
    cov = -np.outer(g, g)
    for a in range(3):
        s = np.eye(3)[a] - pi
        cov += mu[a] * (pi[a] / mu[a] * r[a]) ** 2 * np.outer(s, s)
    # entries are sums of 3 terms of size <= mu (pi / mu r)^2 |s|^2 <= 1.6 plus g g^T, each a
    # handful of roundings: ~10 u * 1.6 ~ 2e-15 worst case (2.8e-17 seen); 1e-14 is 5x that
    np.testing.assert_allclose(is_rec["cov"], cov, atol=1e-14)
    assert is_rec["var_trace"] == pytest.approx(np.trace(cov), abs=1e-14)
    # REINFORCE on mu's samples estimates grad at mu, not pi: biased
    assert res["exact"][1]["bias_norm"] > 0.1


def test_monte_carlo_within_4_se():
    """n = 40000 draws, fixed seed: every MC statistic within 4 standard errors of exact."""
    res = simulate_bandit(CFG, ["is", "vespo", "ppo_clip", "seq_tis", "sapo"], n_mc=40_000)
    for a, b in zip(res["exact"], res["mc"]):
        assert b["method"] == "mc"
        for key in ("E_phi", "E_phi2", "var_trace", "bias_norm"):
            # 4 se: CLT, fixed seed; + 1e-12 only matters where se = 0 (all samples equal), where
            # float rounding of the 3-term exact sum and the n-term MC mean remains (<< 1e-12)
            assert abs(a[key] - b[key]) <= 4 * b["se"][key] + 1e-12, (a["rule"], key)


@given(
    st.lists(st.floats(0.05, 1.0), min_size=2, max_size=6),
    st.lists(st.floats(0.05, 1.0), min_size=2, max_size=6),
    st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=6),
)
def test_vespo_bounds_b1_b3_hold_on_random_bandits(m, p, r):
    K = min(len(m), len(p), len(r))
    mu = np.asarray(m[:K]) / sum(m[:K])
    pi = np.asarray(p[:K]) / sum(p[:K])
    cfg = BanditConfig(mu=tuple(mu), pi=tuple(pi), reward=tuple(r[:K]))
    rec = simulate_bandit(cfg, ["vespo"], n_mc=200)["exact"][0]
    assert rec["bound_holds"] is True, rec["bounds"]


def test_bad_input():
    with pytest.raises(ValueError, match="pi must sum to 1"):
        simulate_bandit(BanditConfig(mu=(0.5, 0.5), pi=(0.6, 0.6), reward=(1, 0)))
    with pytest.raises(ValueError, match="mu = 0 where pi > 0"):
        simulate_bandit(BanditConfig(mu=(1.0, 0.0), pi=(0.5, 0.5), reward=(1, 0)))
    with pytest.raises(ValueError, match="reward has 3 entries but mu has 2"):
        BanditConfig(mu=(0.5, 0.5), pi=(0.5, 0.5), reward=(1, 0, 2))
    with pytest.raises(ValueError, match="n \\(Monte Carlo samples\\)"):
        simulate_bandit(CFG, ["is"], n_mc=1)
