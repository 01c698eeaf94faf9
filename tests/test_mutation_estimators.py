"""Tests that kill surviving mutants of simulations/estimators.py (docs/mutation.md): the sign
class that picks M for the bound checks, the reported bound records, the raw-weight summary
(E[W], E[W^2] near the float64 limit, the Monte Carlo standard error of E[W]), the cosine with
the true gradient, and the k-hat of an exact law. Every expected value is by hand.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulations.estimators import (
    _vespo_bounds,
    bound_checks,
    khat_or_none,
    khat_with_threshold,
    rule_results,
    weight_summary,
)
from simulations.tabular import SequenceBatch, enumerate_sequences, model_from_probs
from vespo_theory.bounds import phi_max
from vespo_theory.params import VespoParams
from vespo_theory.rules import get_rule

EPS64 = float(np.finfo(np.float64).eps)
M_POS, M_NEG = phi_max(2, 3), phi_max(3, 2)  # 1.2081 (A >= 0), 1.2416 (A < 0)


def _vespo(**params):
    rule = get_rule("vespo")
    return dataclasses.replace(rule, params=VespoParams(**params)) if params else rule


def _m2(rule, adv, w):
    adv, w = np.asarray(adv, float), np.asarray(w, float)
    cbar = np.full(w.shape, 0.5)
    m2, holds, checks = _vespo_bounds(rule, adv, w, cbar, 0.5, 0.25, 0.1, 1.0)
    return m2, holds, checks


# ------------------------------------------------------------------ the sign class picks M


@pytest.mark.parametrize(
    "adv, w, want",
    [
        ([1.0, 2.0], [0.5, 0.5], M_POS),  # only A >= 0: M+ (M- would be larger: caught)
        ([0.5, 0.25], [0.5, 0.5], M_POS),  # 0 < A < 1 is still the A >= 0 class
        ([0.0, 0.0], [0.5, 0.5], M_POS),  # A = 0 goes to the A >= 0 class, as in the loss
        ([-1.0, -2.0], [0.5, 0.5], M_NEG),
        ([1.0, -1.0], [0.5, 0.5], max(M_POS, M_NEG)),
        # a sequence of probability 0 does not bring its sign class in: only A >= 0 is present
        ([1.0, -1.0], [1.0, 0.0], M_POS),
    ],
)
def test_the_sign_classes_present_pick_m(adv, w, want):
    m2, holds, checks = _m2(_vespo(), adv, w)
    # M^2 and M are products of one float64 rounding each: 2 eps relative
    assert m2 == pytest.approx(want * want, rel=2 * EPS64)
    assert checks["B1"]["bound"] == pytest.approx(want, rel=2 * EPS64)
    assert holds  # cbar 0.5 <= M, E[phi^2] 0.25 <= M * 0.5, var 0.1 <= M^2 * 1


def test_only_negative_advantages_ignore_a_larger_m_plus():
    # with (k, lam) swapped M+ = 1.2416 > M- = 1.2081: an all-negative batch must use M- only
    rule = _vespo(k_pos=3.0, lam_pos=2.0, k_neg=2.0, lam_neg=3.0)
    m2, _, _ = _m2(rule, [-1.0, -3.0], [0.5, 0.5])
    assert m2 == pytest.approx(phi_max(2, 3) ** 2, rel=2 * EPS64)


# ------------------------------------------------------------------ the reported records


def test_bound_records_report_observed_and_bound_by_hand():
    # M = 2, b1 = 1.5, E[phi] = 0.75, E[phi^2] = 1, var = 3, E||g||^2 = 1: dyadic, so exact
    r = bound_checks(2.0, 1.5, 0.75, 1.0, 3.0, 1.0)
    assert r["B1"] == {"observed": 1.5, "bound": 2.0, "holds": True}
    assert r["B2"] == {"observed": 1.0, "bound": 1.5, "bound2": 4.0, "holds": True}
    assert r["B3"] == {"observed": 3.0, "bound": 4.0, "holds": True}


# ------------------------------------------------------------------ raw-weight summary


def _mc(log_w):
    lw = np.asarray(log_w, float)[:, None]
    n = lw.shape[0]
    tok = np.zeros((n, 1), np.int64)
    return SequenceBatch(tok, np.zeros_like(tok), np.ones((n, 1), bool), lw, None)


def test_mc_weight_summary_by_hand():
    # W = 1/2, 1, 5/2 (log given): mean 4/3, E[W^2] = (1/4 + 1 + 25/4)/3 = 5/2; sample sd by
    # Bessel: deviations -5/6, -1/3, 7/6, squares 25/36 + 4/36 + 49/36 = 78/36, / 2 = 13/12,
    # se = sqrt(13/12) / sqrt(3) = sqrt(13)/6
    s = weight_summary(_mc(np.log([0.5, 1.0, 2.5])))
    tol = 16 * EPS64  # exp(log w) and a 3-term logsumexp: a few roundings on O(1) values
    assert s["E_W"] == pytest.approx(4 / 3, rel=tol)
    assert s["E_W2"] == pytest.approx(5 / 2, rel=tol)
    assert s["log_E_W2"] == pytest.approx(math.log(5 / 2), abs=tol)
    assert s["se"]["E_W"] == pytest.approx(math.sqrt(13) / 6, rel=tol)
    assert set(s) == {"E_W", "log_E_W2", "E_W2", "ess_W", "khat_W", "khat_W_thresh", "se"}
    assert s["khat_W"] is None  # 3 values: fewer than 20, no k-hat
    assert s["khat_W_thresh"] is None  # and then no threshold beside it


def test_weight_moments_near_the_float64_limit():
    # log E[W] = 709.5 is below log(max float64) = 709.78: E[W] is finite (e^709.5 = 1.35e308);
    # log E[W^2] = 1419 is far above: E[W^2] is inf while log_E_W2 stays exact
    s = weight_summary(_mc([709.5, 709.5]))
    assert s["E_W"] == pytest.approx(math.exp(709.5), rel=16 * EPS64)
    assert s["E_W2"] == math.inf and s["log_E_W2"] == pytest.approx(1419.0, rel=16 * EPS64)
    assert s["se"]["E_W"] == 0.0  # equal weights: no spread (not NaN from inf - inf)
    # W = e^709, e^709.5: sd = (e^709.5 - e^709)/sqrt(2), se = sd/sqrt(2) = (e^709.5 - e^709)/2,
    # finite although W^2 is not; computed through log W (a few roundings of exp: 64 eps)
    s = weight_summary(_mc([709.0, 709.5]))
    want = math.exp(709.0) * (math.exp(0.5) - 1) / 2
    assert s["se"]["E_W"] == pytest.approx(want, rel=64 * EPS64)


# ------------------------------------------------------------------ cosine and k-hat


def test_is_cosine_is_one_on_an_exact_law():
    # sequence IS is unbiased (claim U1): its exact mean is the true gradient, so cosine = 1
    # (to the rounding of two dot products of 2-vectors; 1e-12 is far above that, far below
    # any biased direction)
    model = model_from_probs([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], T=2, reward=[1.0, -1.0, 0.5])
    batch = enumerate_sequences(model)
    adv = np.asarray(batch.reward if hasattr(batch, "reward") else np.ones(batch.n))
    from simulations.estimators import true_gradient_from_batch

    g = true_gradient_from_batch(model, batch, adv)["mean"]
    (rec,) = rule_results(model, batch, adv, [get_rule("is")], g, "enumeration")
    assert rec["cosine"] == pytest.approx(1.0, abs=1e-12)
    # a zero true gradient has no direction: None, not a number
    (rec0,) = rule_results(model, batch, adv, [get_rule("is")], np.zeros_like(g), "enumeration")
    assert rec0["cosine"] is None


def test_khat_of_an_exact_law_uses_its_weights_and_seed():
    rng = np.random.default_rng(0)
    lv = rng.exponential(size=5000) * 0.5  # 5000 atoms with an exponential (light) tail
    flat, tilted = np.ones_like(lv), np.exp(lv)  # tilting by W = e^lv: a different law
    k_flat, k_tilted = khat_or_none(lv, flat, seed=1), khat_or_none(lv, tilted, seed=1)
    assert k_flat is not None and k_tilted is not None
    # resampling 10,000 draws from 5000 atoms moves k-hat by ~0.15 between seeds (seen: 0.48,
    # 0.35, 0.49 for seeds 1-3); the two laws differ by ~1.9 (0.48 vs -1.42): 1.0 separates them
    assert abs(k_flat - k_tilted) > 1.0
    assert khat_or_none(lv, flat, seed=1) == k_flat  # the same seed: the same number
    assert abs(khat_or_none(lv, flat, seed=2) - k_flat) < 0.5


def test_khat_threshold_counts_the_draws_the_khat_is_fitted_to():
    """khat_with_threshold pairs k-hat with min(1 - 1/log10 S, 0.7): S = the sample's size,
    zero weights (-inf) included (they are draws of the estimate); S = N_KHAT = 10000 for an
    exact law (1 - 1/4 = 0.75: capped at 0.7). By hand: S = 64 -> 1 - 1/log10 64 = 0.446345,
    S = 100 -> 0.5 (log10 100 = 2 exactly, so exactly 0.5)."""
    x = np.log(np.random.default_rng(0).pareto(1.5, size=100) + 1)
    k, t = khat_with_threshold(x)
    assert k == khat_or_none(x) and t == 0.5
    x[:10] = -np.inf  # 90 finite values, still 100 draws
    assert khat_with_threshold(x)[1] == 0.5
    k, t = khat_with_threshold(x[36:])  # 64 draws
    assert k == khat_or_none(x[36:]) and t == pytest.approx(0.446345317518773, abs=4 * EPS64)
    lv = np.random.default_rng(1).exponential(size=500)
    k, t = khat_with_threshold(lv, np.ones_like(lv), seed=3)
    assert k == khat_or_none(lv, np.ones_like(lv), seed=3) and t == 0.7
    assert khat_with_threshold(x[:25]) == (None, None)  # 15 finite values: no k-hat, no threshold


def test_khat_needs_twenty_finite_values():
    # log of 25 Lomax draws (tail index 1/1.5): a finite k-hat (0.61 seen); with 6 of them set
    # to -inf (zero weight) only 19 finite values remain: no k-hat. (At exactly 20 values the
    # PSIS tail holds 4 points and the fit gives -inf, so 20 and 19 both give None: the
    # threshold's edge is not observable, docs/mutation.md.)
    x = np.log(np.random.default_rng(0).pareto(1.5, size=25) + 1)
    k = khat_or_none(x)
    assert k is not None and math.isfinite(k)
    x[:6] = -np.inf
    assert khat_or_none(x) is None


# ------------------------------------------------------------------ Monte Carlo details


def test_mc_standard_errors_of_the_second_moments_by_hand():
    # the n = 3 sample of tests/test_hand_references.py: mu = (1/2, 1/2), pi = (1/4, 3/4), draws
    # y = 0, 1, 1, A = (1, 2, 1); IS coefficient cbar = W = (1/2, 3/2, 3/2).
    # E[phi^2] terms cbar^2 = (1/4, 9/4, 9/4): mean 19/12, squared deviations 16/9, 4/9, 4/9
    # (sum 8/3), Bessel 4/3, se = sqrt(4/3) / sqrt(3) = 2/3.
    # var_trace terms q_i = ||e_i - mean||^2 = 25/32, 1/2, 1/32: mean 7/16, deviations 11/32,
    # 2/32, -13/32, squares (121 + 4 + 169)/1024 = 294/1024, Bessel 147/1024, se = 7/32.
    model = model_from_probs([0.5, 0.5], [0.25, 0.75], T=1)
    tokens = np.array([[0], [1], [1]], dtype=np.int64)
    lr = np.log(np.array([[0.5], [1.5], [1.5]]))
    batch = SequenceBatch(tokens, np.zeros_like(tokens), np.ones((3, 1), bool), lr, None)
    (rec,) = rule_results(
        model, batch, np.array([1.0, 2.0, 1.0]), [get_rule("is")], np.zeros(model.dim), "mc"
    )
    tol = 64 * EPS64  # as in test_hand_references: a few roundings through 3-term sums
    assert rec["se"]["E_phi2"] == pytest.approx(2 / 3, rel=tol)
    assert rec["se"]["var_trace"] == pytest.approx(7 / 32, rel=tol)


def test_score_moments_do_not_depend_on_the_chunk_size():
    # the moments are accumulated chunk by chunk: one sequence per chunk must give what one
    # chunk gives (sums of the same 9 terms in another grouping: 1e-13 relative covers it)
    from simulations.estimators import score_moments

    model = model_from_probs([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], T=2, reward=[1.0, -1.0, 0.5])
    batch = enumerate_sequences(model)
    coef = np.where(batch.mask, np.exp(batch.seq_log_w)[:, None], 0.0)
    adv = np.linspace(-1.0, 1.0, batch.n)
    center = np.full(model.dim, 0.1)
    one = score_moments(model, batch, coef, adv, center=center, full_cov=True)
    many = score_moments(model, batch, coef, adv, center=center, full_cov=True, chunk_elems=1)
    for key in ("mean", "comp2", "cov", "q"):
        np.testing.assert_allclose(many[key], one[key], rtol=1e-13, atol=1e-15)
    assert many["e2"] == pytest.approx(one["e2"], rel=1e-13)


def test_exact_vespo_record_carries_its_bound():
    model = model_from_probs([0.5, 0.5], [0.25, 0.75], T=1, reward=[1.0, -1.0])
    batch = enumerate_sequences(model)
    adv = np.array([1.0, -1.0])
    vespo = [get_rule("vespo")]
    (rec,) = rule_results(model, batch, adv, vespo, np.zeros(model.dim), "enumeration")
    # both sign classes present: M = max(M+, M-) = M- (one rounding each)
    assert rec["bound_M2"] == pytest.approx(M_NEG**2, rel=2 * EPS64) and rec["bound_holds"]
