"""Property tests of the registry's rules (vespo_theory.rules) against the claims of docs/rules.md:
bounded coefficients for VESPO and SAPO, unbiasedness of sequence IS and per-decision IS."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
from hypothesis import given

from simulations.falsify import get_claim
from vespo_theory.bounds import phi_max
from vespo_theory.rules import get_rule


@st.composite
def token_batches(draw, max_b: int = 4, max_t: int = 16):
    """tok_log_ratio [B, T] (light, heavy-tailed and +-50 extremes), a mask, advantages."""
    from simulations.falsify.strategies import tok_log_ratios

    B = draw(st.integers(1, max_b))
    T = draw(st.integers(1, max_t))
    rows = [draw(tok_log_ratios(max_len=T, min_len=T)) for _ in range(B)]
    mask = [[draw(st.booleans()) or t == 0 for t in range(T)] for _ in range(B)]
    adv = [draw(st.floats(-3.0, 3.0)) for _ in range(B)]
    return np.array(rows), np.array(mask), np.array(adv)


@given(token_batches())
def test_vespo_coefficient_is_bounded_by_M(batch):
    x, mask, adv = batch
    rule = get_rule("vespo")
    c = np.asarray(rule.coefficient(x, mask, adv))
    p = rule.params
    M = max(phi_max(p.k_pos, p.lam_pos), phi_max(p.k_neg, p.lam_neg))
    assert np.isfinite(c).all() and (c >= 0).all()
    # 1e-12: relative rounding of exp(k log W + lam (1 - W)) with |log W| <= 16 * 50 (~1e-13)
    assert (c <= M * (1 + 1e-12)).all()
    assert (c[~mask] == 0).all()


def _sapo_bound(tau: float) -> float:
    """sup_r r sech^2(tau (r - 1)/2) <= 4 sup_r r e^(-tau |r - 1|) (sech^2 z <= 4 e^(-2|z|)):
    4 for tau >= 1 (sup at r = 1), 4 e^(tau - 1)/tau for tau < 1 (sup at r = 1/tau)."""
    return 4.0 if tau >= 1 else 4.0 * math.exp(tau - 1) / tau


@given(token_batches(), st.floats(0.05, 5.0), st.floats(0.05, 5.0))
def test_sapo_coefficient_is_bounded(batch, tau_pos, tau_neg):
    from vespo_theory.rules import SapoParams

    x, mask, adv = batch
    params = SapoParams(tau_pos=tau_pos, tau_neg=tau_neg)
    c = np.asarray(get_rule("sapo").coefficient(x, mask, adv, params))
    T = mask.sum(axis=1, keepdims=True)
    tau = np.where(adv >= 0, tau_pos, tau_neg)[:, None]
    bound = np.vectorize(_sapo_bound)(tau)
    assert np.isfinite(c).all() and (c >= 0).all()
    # SAPO's per-sequence token mean puts 1/T on each token; 1e-12 relative rounding slack
    assert (c * T <= bound * (1 + 1e-12)).all()


def test_unbounded_rules_exceed_the_sapo_bound():
    """Negative control: the bound test above can fail - IS and PPO's A < 0 side are unbounded."""
    x = np.array([[50.0]])
    mask = np.ones_like(x, dtype=bool)
    for name, adv in (("is", 1.0), ("ppo_clip", -1.0)):
        c = float(np.asarray(get_rule(name).coefficient(x, mask, np.array([adv])))[0, 0])
        assert c > _sapo_bound(0.05) * 1e10, name


@given(get_claim("U1").strategy())
def test_sequence_is_is_unbiased(instance):
    for c in get_claim("U1").checks(instance):
        assert c.lhs <= c.rhs, (c, instance)


@given(get_claim("U2").strategy())
def test_per_decision_is_is_unbiased_context_free_fixed_length(instance):
    for c in get_claim("U2").checks(instance):
        assert c.lhs <= c.rhs, (c, instance)
