"""Tabular autoregressive models: enumeration, M1, staleness, mismatch, Monte Carlo agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulations.config import ARConfig
from simulations.runners import simulate_ar
from simulations.tabular import enumerate_sequences, make_ar_model, round_logits

SETTINGS = [
    dict(policy="context-free"),
    dict(policy="markov"),
    dict(policy="prefix", n_hash=5),
    dict(policy="markov", end_token=True),
    dict(policy="prefix", drift="random", staleness=3),
    dict(policy="context-free", drift="steps", staleness=4),
    dict(policy="markov", drift="lattice", staleness=2),
    dict(policy="prefix", mismatch="bf16", flip_prob=0.2, flip_scale=2.0),
    dict(policy="context-free", mismatch="fp16", flip_prob=0.3, end_token=True),
]


@pytest.mark.parametrize("extra", SETTINGS)
def test_enumeration_is_a_distribution_and_m1_holds(extra):
    """Probabilities sum to 1 and E_b[W] = 1 (claim M1) in every setting, including end token,
    prefix hashing and the three-policy (sampler) setting. The sums are taken here with
    math.fsum (correctly rounded: <= u), so only each term's own rounding remains: a weight is
    exp of a sum of 5 token log-probabilities, W = exp(seq_log_w) with |seq_log_w| <= 46 (the
    bf16 + flip setting): <= ~5 * 46 u = 230 u relative per term, hence <= 230 u = 2.6e-14 of
    the total 1; 1e-13 is ~4x (1e-15 seen). (A plain float sum of 1024 terms could add
    1023 u = 1.1e-13 on top; was 1e-12.)"""
    cfg = ARConfig(V=4, T=5, drift_size=0.3, **{"staleness": 2, **extra})
    model = make_ar_model(cfg)
    batch = enumerate_sequences(model)
    assert abs(math.fsum(batch.weight) - 1.0) < 1e-13
    assert abs(math.fsum(batch.weight * np.exp(batch.seq_log_w)) - 1.0) < 1e-13


def test_m2_closed_form_for_context_free():
    """E_mu[W^2] = (sum_v mu_v^-1 pi_v^2)^T (claim M2) by enumeration of 5^6 = 15625 sequences.
    Sizes: the enumeration sum is math.fsum (<= u), each term exp(2 seq_log_w) (|seq_log_w| <= 5,
    a sum of 6 logs) times a weight carries <= ~(2 * 6 * 5 + 6 * 5) u = 90 u; the closed form, a
    5-term sum raised to the 6th power, ~6 * 7 u = 42 u: together <= ~130 u = 1.5e-14; 5e-14 is
    ~3x (4.4e-16 seen). A plain float dot of 15625 terms could be off by 15624 u = 1.7e-12,
    above the former 1e-12."""
    cfg = ARConfig(V=5, T=6, staleness=3, drift_size=0.2)
    model = make_ar_model(cfg)
    batch = enumerate_sequences(model)
    e_w2 = math.fsum(batch.weight * np.exp(2 * batch.seq_log_w))
    mu, pi = np.exp(model.log_mu[0]), model.pi[0]
    assert e_w2 == pytest.approx(math.fsum(pi**2 / mu) ** 6, rel=5e-14)
    assert e_w2 > 1.0


def test_end_token_masks_the_rest():
    cfg = ARConfig(V=3, T=4, end_token=True)
    batch = enumerate_sequences(make_ar_model(cfg))
    for toks, mask in zip(batch.tokens, batch.mask):
        ends = np.flatnonzero(toks == 2)
        n_valid = ends[0] + 1 if ends.size else 4
        assert mask.sum() == n_valid and mask[:n_valid].all()


@pytest.mark.parametrize("drift", ["steps", "fixed", "random", "lattice"])
def test_no_staleness_means_w_is_one_and_vespo_is_unbiased(drift):
    """N = 0: mu = pi, W = 1 everywhere, phi(1) = 1, so VESPO's estimate is exactly on target."""
    cfg = ARConfig(V=3, T=4, policy="markov", staleness=0, drift=drift)
    res = simulate_ar(cfg, ["vespo", "is"], method="enumeration")
    # E_W2 and E_phi are float sums of 3^4 = 81 weights (each a product of 4 rounded softmax
    # probabilities) that sum to 1 in exact arithmetic: worst case (80 + 4 * 3) u = 1.0e-14
    # (Higham's summation bound, u = eps/2); 2.2e-16 is seen
    assert res["summary"]["log_E_W2"] == pytest.approx(0.0, abs=1e-14)
    for rec in res["rules"]:
        assert rec["E_phi"] == pytest.approx(1.0, abs=1e-14)
        # mu = pi bit for bit, so log W = 0 and phi(1) = W = 1 exactly: the rule's mean score and
        # the true gradient are the same float sum (coefficient 1 on the same batch): exactly 0
        assert rec["bias_norm"] == 0.0


def test_staleness_grows_chi2_and_steps_improve_reward():
    """More staleness, larger E[W^2]; pi after N exact ascent steps has more reward than mu."""
    vals = []
    for N in (1, 2, 4):
        cfg = ARConfig(V=4, T=4, staleness=N, drift="fixed", drift_size=0.2)
        vals.append(simulate_ar(cfg, ["is"], method="enumeration")["summary"]["log_E_W2"])
    assert vals[0] < vals[1] < vals[2]
    model = make_ar_model(ARConfig(V=4, T=3, policy="markov", staleness=5, drift="steps"))
    r = model.reward
    assert (model.pi @ r > np.exp(model.log_mu) @ r).all()


def test_round_logits_precision():
    """bf16 keeps 8 significant bits: relative error <= 2^-8 (round to nearest); fp16 2^-11.
    The absolute 2^-25 is half the fp16 subnormal spacing 2^-24 (|x| < 6.1e-5 loses relative
    precision there; bf16 has float32's exponent range, no subnormals at these sizes)."""
    x = np.random.default_rng(0).normal(size=1000) * 5
    for prec, rel in (("bf16", 2.0**-8), ("fp16", 2.0**-11)):
        y = round_logits(x, prec)
        assert (np.abs(y - x) <= rel * np.abs(x) + 2.0**-25).all()
        assert (y != x).any()
    assert np.array_equal(round_logits(x, "none"), x)


@pytest.mark.parametrize(
    "extra",
    [
        dict(policy="markov", staleness=2, drift="fixed"),
        dict(policy="prefix", n_hash=4, end_token=True, staleness=2),
        dict(policy="context-free", mismatch="bf16", flip_prob=0.2, staleness=1),
    ],
)
def test_monte_carlo_within_4_se_of_enumeration(extra):
    """MC (n = 20000, fixed seed) within 4 standard errors of the exact values, per rule."""
    cfg = ARConfig(V=3, T=5, drift_size=0.3, **extra)
    rules = ["is", "vespo", "ppo_clip", "gmpo"]
    ex = simulate_ar(cfg, rules, method="enumeration")
    mc = simulate_ar(cfg, rules, method="mc", n_mc=20_000)
    assert abs(mc["summary"]["E_W"] - 1.0) <= 4 * mc["summary"]["se"]["E_W"]
    for a, b in zip(ex["rules"], mc["rules"]):
        for key in ("E_phi", "E_phi2", "var_trace", "bias_norm"):
            se = b["se"][key]
            # 4 se: CLT, fixed seed. + 1e-12: a statistic whose samples are all equal has se = 0
            # and then only float rounding separates MC from the exact sum of 3^5 = 243 O(1)
            # terms (<= 243 u ~ 3e-14); 1e-12 is 30x that and far below any se here (>= 1e-4)
            assert abs(a[key] - b[key]) <= 4 * se + 1e-12, (a["rule"], key, a[key], b[key], se)


def test_vespo_bounds_hold_in_every_setting():
    for extra in SETTINGS:
        cfg = ARConfig(V=3, T=5, drift_size=0.5, **{"staleness": 3, **extra})
        rec = simulate_ar(cfg, ["vespo"], method="enumeration")["rules"][0]
        assert rec["bound_holds"] is True
        assert rec["bounds"]["B1"]["observed"] <= rec["bounds"]["B1"]["bound"]


def test_bad_input_errors():
    with pytest.raises(ValueError, match="staleness must be an integer >= 0"):
        ARConfig(staleness=-1)
    with pytest.raises(ValueError, match="must sum to 1"):
        make_ar_model(ARConfig(mu_probs=(0.5, 0.4), pi_probs=(0.5, 0.5)))
    with pytest.raises(ValueError, match="mu = 0 where pi > 0"):
        make_ar_model(ARConfig(mu_probs=(0.0, 1.0), pi_probs=(0.5, 0.5)))
    with pytest.raises(ValueError, match="pi = 0"):
        make_ar_model(ARConfig(mu_probs=(0.5, 0.5), pi_probs=(0.0, 1.0)))
    with pytest.raises(ValueError, match="V\\^T = 10\\^7 = 1e\\+07 sequences.*lower --V or --T"):
        enumerate_sequences(make_ar_model(ARConfig(V=10, T=7)))
    with pytest.raises(ValueError, match="policy must be one of"):
        ARConfig(policy="lstm")
    with pytest.raises(ValueError, match="unknown rule"):
        simulate_ar(ARConfig(V=2, T=2), ["nope"])
    with pytest.raises(ValueError, match="lattice method does not apply"):
        simulate_ar(ARConfig(V=2, T=2), ["is"], method="lattice")
    with pytest.raises(TypeError, match="T must be an integer"):
        ARConfig(T=2.5)


def test_same_seed_same_numbers():
    cfg = ARConfig(V=3, T=6, policy="prefix", staleness=2)
    a = simulate_ar(cfg, ["vespo"], method="mc", n_mc=2000)
    b = simulate_ar(cfg, ["vespo"], method="mc", n_mc=2000)
    assert a["rules"][0]["var_trace"] == b["rules"][0]["var_trace"]
    c = simulate_ar(
        ARConfig(V=3, T=6, policy="prefix", staleness=2, seed=1), ["vespo"], method="mc", n_mc=2000
    )
    assert c["rules"][0]["var_trace"] != a["rules"][0]["var_trace"]
