"""Independent references typed by hand (mutation gaps of the review): the Monte Carlo variance's
Bessel factor on n = 3 hand values, advantages with an end token on tiny models, and the pinned
defaults of the simulation configs. Each test also shows that the wrong premise it guards
against (plug-in variance, masked tokens counted, a changed default) gives a different answer.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulations.config import ARConfig, BanditConfig
from simulations.estimators import rule_results
from simulations.tabular import SequenceBatch, advantages, enumerate_sequences, model_from_probs
from vespo_theory.rules import get_rule

EPS64 = float(np.finfo(np.float64).eps)

# ----------------------------------------------------------------------------- (b) Bessel


def _mc_batch_n3():
    """mu = (1/2, 1/2), pi = (1/4, 3/4), T = 1; three draws y = 0, 1, 1 (an MC sample: weight
    None). W = 1/2 for y = 0 and 3/2 for y = 1."""
    model = model_from_probs([0.5, 0.5], [0.25, 0.75], T=1)
    tokens = np.array([[0], [1], [1]], dtype=np.int64)
    lr = np.log(np.array([[0.5], [1.5], [1.5]]))
    batch = SequenceBatch(tokens, np.zeros_like(tokens), np.ones((3, 1), bool), lr, None)
    return model, batch


# e_i = A_i W_i (onehot(y_i) - pi) with pi = (1/4, 3/4) and A = (1, 2, 1), by hand:
#   e_0 = 1 * 1/2 * ( 3/4, -3/4) = ( 3/8, -3/8)
#   e_1 = 2 * 3/2 * (-1/4,  1/4) = (-3/4,  3/4)
#   e_2 = 1 * 3/2 * (-1/4,  1/4) = (-3/8,  3/8)
# mean = (-1/4, 1/4); squared deviations 25/32, 1/2, 1/32; their sum 21/16.
HAND_VAR_SAMPLE = (21 / 16) / (3 - 1)  # Bessel: 1/(n-1) sum ||e_i - mean||^2 = 21/32
HAND_VAR_PLUGIN = (21 / 16) / 3  # the wrong premise: 1/n (= 7/16)
# cbar = W = (1/2, 3/2, 3/2): mean 7/6, deviations (-2/3, 1/3, 1/3), sum of squares 2/3:
HAND_SE_E_PHI = math.sqrt((2 / 3) / (3 - 1) / 3)  # sd/sqrt(n) = 1/3


def test_mc_variance_uses_bessel_on_three_hand_values():
    model, batch = _mc_batch_n3()
    adv = np.array([1.0, 2.0, 1.0])
    (rec,) = rule_results(model, batch, adv, [get_rule("is")], np.zeros(model.dim), "mc")
    # pi comes back from its logits log(pi) (one log, one softmax) and W from log(W): a few
    # roundings of u on O(1) numbers, through sums of 3 terms: 64 eps is ~10x that
    tol = 64 * EPS64
    assert rec["var_trace"] == pytest.approx(HAND_VAR_SAMPLE, rel=tol, abs=0)
    assert rec["se"]["bias_norm"] == pytest.approx(math.sqrt(HAND_VAR_SAMPLE / 3), rel=tol)
    assert rec["se"]["E_phi"] == pytest.approx(HAND_SE_E_PHI, rel=tol)
    # wrong premise (plug-in 1/n): 7/16 vs 21/32, a relative gap of 1/3, far outside tol
    assert rec["var_trace"] != pytest.approx(HAND_VAR_PLUGIN, rel=1e-3)


def test_exact_variance_is_the_population_formula():
    """Enumeration weights are probabilities (no Bessel): the same three sequences with
    weights 1/3 each as an exact law give the plug-in 7/16."""
    model, batch = _mc_batch_n3()
    exact = dataclasses.replace(batch, weight=np.full(3, 1 / 3))
    adv = np.array([1.0, 2.0, 1.0])
    (rec,) = rule_results(model, exact, adv, [get_rule("is")], np.zeros(model.dim), "enumeration")
    assert rec["var_trace"] == pytest.approx(HAND_VAR_PLUGIN, rel=64 * EPS64, abs=0)


# ----------------------------------------------------------------------------- (d) advantages

R0, R1, B = 2.0, -1.0, 0.25  # token rewards (token 1 = V - 1 is the end token) and baseline


def _enumerated(T):
    model = model_from_probs([0.6, 0.4], [0.3, 0.7], T=T, reward=[R0, R1], end_token=True)
    batch = enumerate_sequences(model)
    return model, batch, ARConfig(V=2, T=T, end_token=True, reward=(R0, R1), baseline=B)


def test_advantages_with_end_token_by_hand_T2():
    """A = mean token reward over the response (up to and including the end token) - baseline.
    Enumeration order (0,0), (0,1), (1,0), (1,1); after a leading end token the second position
    is masked and carries mu's mass uniformly (1/V = 1/2)."""
    model, batch, cfg = _enumerated(2)
    want_tokens = [[0, 0], [0, 1], [1, 0], [1, 1]]
    want_mask = [[1, 1], [1, 1], [1, 0], [1, 0]]
    want_adv = [(R0 + R0) / 2 - B, (R0 + R1) / 2 - B, R1 - B, R1 - B]  # 1.75, 0.25, -1.25, -1.25
    want_prob = [0.6 * 0.6, 0.6 * 0.4, 0.4 / 2, 0.4 / 2]
    assert batch.tokens.tolist() == want_tokens
    assert batch.mask.astype(int).tolist() == want_mask
    # rewards and baseline are dyadic: every A above is exact in float64 except the division by
    # a length of 1 or 2 (exact too): equality
    assert advantages(model, cfg, batch).tolist() == want_adv
    # probabilities: exp(sum of log mu) rounds by a few u: 16 eps
    np.testing.assert_allclose(batch.weight, want_prob, rtol=16 * EPS64, atol=0)
    # wrong premises: counting the masked token, or dividing by T, changes rows 2 and 3
    wrong_masked = [(R0 + R0) / 2 - B, (R0 + R1) / 2 - B, (R1 + R0) / 2 - B, (R1 + R1) / 2 - B]
    wrong_by_T = [(R0 + R0) / 2 - B, (R0 + R1) / 2 - B, R1 / 2 - B, R1 / 2 - B]
    assert wrong_masked != want_adv and wrong_by_T != want_adv


def test_advantages_with_end_token_by_hand_T3():
    model, batch, cfg = _enumerated(3)
    adv = advantages(model, cfg, batch)
    row = {tuple(t): i for i, t in enumerate(batch.tokens.tolist())}
    by_hand = {
        (0, 0, 0): (3 * R0) / 3 - B,  # no end token: full length 3
        (0, 0, 1): (R0 + R0 + R1) / 3 - B,  # ends at the last position
        (0, 1, 0): (R0 + R1) / 2 - B,  # ends at position 2; position 3 masked
        (1, 0, 1): R1 - B,  # ends at once
        (1, 1, 1): R1 - B,
    }
    for toks, want in by_hand.items():
        # (R0 + R0 + R1)/3 = 1 exactly, the others dyadic: at most one rounding of a division
        assert adv[row[toks]] == pytest.approx(want, rel=2 * EPS64, abs=0), toks


def test_constant_advantage_ignores_the_end_token():
    model, batch, _ = _enumerated(2)
    cfg = ARConfig(V=2, T=2, end_token=True, adv_mode="constant", adv_value=-2.0)
    assert advantages(model, cfg, batch).tolist() == [-2.0] * 4


# ----------------------------------------------------------------------------- (e) defaults

# field: (default, why it is what it is). Field names as in the working tree of config.py
# (staleness, mismatch: the renamed N, precision). RunOptions (method sizes) is being written by
# another engineer and is not pinned here yet.
AR_DEFAULTS = {
    "V": (4, "V^T = 4^6 = 4096 sequences: exact enumeration in milliseconds, far below 1e6"),
    "T": (6, "long enough for prefix products to matter, short enough to enumerate (see V)"),
    "policy": ("context-free", "the one kind the lattice method and M2's formula apply to"),
    "n_hash": (8, "8 prefix-hash states: prefix-dependent tokens, still tiny tables"),
    "logit_scale": (1.0, "pi's logits ~ N(0, 1): non-degenerate token laws, none near 0/1"),
    "staleness": (1, "one step of staleness: the mildly off-policy default, W near 1"),
    "drift": ("fixed", "a fixed unit-RMS direction: staleness N scales the drift linearly"),
    "drift_size": (0.1, "eps = 0.1 per step: per-token log-ratios ~0.1, W stays O(1) at T = 6"),
    "step_size": (0.5, "policy-gradient step of the 'steps' drift: visible change per step"),
    "end_token": (False, "fixed length unless asked: the lattice and U2 need fixed length"),
    "mismatch": ("none", "no engine mismatch unless asked (bf16 / fp16 opt in)"),
    "flip_prob": (0.0, "no routing flips unless asked"),
    "flip_scale": (1.0, "a flip moves a logit by O(1) when flips are on"),
    "flip_df": (1.5, "Student-t with 1.5 dof: finite mean, infinite variance (heavy tail)"),
    "mu_probs": (None, "policies come from the seeded tables unless given directly"),
    "pi_probs": (None, "given together with mu_probs or not at all"),
    "reward": (None, "token rewards ~ N(0, 1), seeded, unless given"),
    "adv_mode": ("reward", "A = mean token reward, the GRPO-like sequence-level advantage"),
    "adv_value": (1.0, "the constant A of adv_mode='constant' (must be nonzero)"),
    "baseline": (0.0, "no baseline: A is the raw mean reward"),
    "seed": (0, "deterministic by default"),
}
BANDIT_DEFAULTS = {
    "mu": ((0.5, 0.3, 0.2), "3 arms, a non-uniform behaviour policy"),
    "pi": ((0.3, 0.3, 0.4), "a target that moved mass to arm 2: W = (0.6, 1, 2) spans both sides"),
    "reward": ((1.0, -1.0, 0.5), "rewards of both signs: both (k, lam) classes are exercised"),
    "baseline": (0.0, "no baseline: A = reward"),
    "seed": (0, "deterministic by default"),
}


def _mismatches(cls, table) -> list[str]:
    """Fields whose default differs from the table, or that are missing from either side."""
    got = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
    bad = sorted(set(got) ^ set(table))  # a new field must be pinned with its reason
    for name in set(got) & set(table):
        want = table[name][0]
        if not (got[name] == want and type(got[name]) is type(want)):
            bad.append(name)
    return bad


@pytest.mark.parametrize(
    "cls, table", [(ARConfig, AR_DEFAULTS), (BanditConfig, BANDIT_DEFAULTS)], ids=["AR", "Bandit"]
)
def test_config_defaults_are_pinned(cls, table):
    assert _mismatches(cls, table) == []


def test_default_pinning_catches_a_changed_default():
    """Wrong premise: configs with a changed default (V = 5; flip_df = 1) and one with an extra
    field are each reported."""

    @dataclasses.dataclass(frozen=True)
    class ChangedV(ARConfig):
        V: int = 5

    @dataclasses.dataclass(frozen=True)
    class HeavierTail(ARConfig):
        flip_df: float = 1.0

    @dataclasses.dataclass(frozen=True)
    class Extra(BanditConfig):
        temperature: float = 1.0

    assert _mismatches(ChangedV, AR_DEFAULTS) == ["V"]
    assert _mismatches(HeavierTail, AR_DEFAULTS) == ["flip_df"]
    assert _mismatches(Extra, BANDIT_DEFAULTS) == ["temperature"]
