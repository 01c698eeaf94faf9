"""Tests that kill the mutants of ``vespo_theory/coefficients.py`` and ``vespo_theory/rules.py``
that the other rule tests let live (see docs/mutation.md).

References are the formulas of docs/rules.md evaluated by hand in Python floats; a clip edge is
hit exactly by feeding the edge's own float (``log1p(eps)``, ``log(cap)``), where the rules
document "a tie counts as unclipped" (every band is closed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vespo_theory import rules
from vespo_theory.rule_params import VespoParams

torch = pytest.importorskip("torch")

EPS64 = float(np.finfo(np.float64).eps)
# exp of a float64 log and one product or quotient: a few roundings of eps/2: 4 eps relative.
REL = 4 * EPS64


def _one_token(name, log_r, adv, params=None):
    """(c, clipped) of a batch of one-token sequences (T = 1, so W = r and log W = log r)."""
    x = np.asarray(log_r, dtype=np.float64)[:, None]
    mask = np.ones_like(x, dtype=bool)
    c, clipped = rules.get_rule(name).coefficient_and_clipped(
        x, mask, np.asarray(adv, float), params
    )
    return c[:, 0], (None if clipped is None else clipped[:, 0])


# (rule, log r at the edge, sign of A, expected c at the edge): every band is closed.
EDGES = [
    ("ppo_clip", math.log1p(0.2), 1.0, 1.2),  # A >= 0 keeps r <= 1 + eps_high
    ("ppo_clip", math.log1p(-0.2), -1.0, 0.8),  # A < 0 keeps r >= 1 - eps_low
    ("dual_clip", math.log1p(0.2), 1.0, 1.2),
    ("dual_clip", math.log1p(-0.2), -1.0, 0.8),
    ("dual_clip", math.log(3.0), -1.0, 3.0),  # A < 0 also keeps r <= c
    ("cispo", math.log1p(0.2), 1.0, 1.2),  # clip(r, 0.8, 1.2) at the edges: nothing clipped
    ("cispo", math.log1p(-0.2), -1.0, 0.8),
    ("gspo", math.log1p(4e-4), 1.0, 1.0004),  # T = 1: s = W, c = s / 1
    ("gspo", math.log1p(-3e-4), -1.0, 0.9997),
    ("gmpo", 0.4, 1.0, math.exp(0.4)),  # log r = eps_high: the min picks log r (unclipped)
    ("gmpo", -0.4, -1.0, math.exp(-0.4)),
    ("token_tis", math.log(2.0), 1.0, 2.0),  # min(r, cap) at r = cap: not truncated
    ("seq_tis", math.log(2.0), 1.0, 2.0),
    ("token_mis", math.log(0.5), 1.0, 0.5),  # r 1[low <= r <= high]
    ("token_mis", math.log(2.0), -1.0, 2.0),
    ("seq_mis", math.log(2.0), 1.0, 2.0),  # W 1[W <= cap]
    ("topr", 0.0, -1.0, 1.0),  # min(W, 1) at W = 1: not truncated (T = 1)
    ("bapo", math.log(1.2), 1.0, 1.2),  # a one-token A >= 0 batch: start bounds, r <= 1.2
    ("bapo", math.log(0.9), -1.0, 0.9),  # a one-token A < 0 batch: end bounds, 0.9 <= r
    ("bapo", math.log(3.0), -1.0, 3.0),  # and r <= c = 3
]


@pytest.mark.parametrize("name, log_r, sign, expected", EDGES)
def test_a_ratio_on_the_clip_edge_is_kept_and_not_flagged(name, log_r, sign, expected):
    """Kills every ``<=`` -> ``<`` / ``>=`` -> ``>`` mutant of the clip bands and indicators."""
    c, clipped = _one_token(name, [log_r], [sign])
    assert c[0] == pytest.approx(expected, rel=REL)
    assert not clipped[0]


def _sapo_hand(r, tau, T):
    """r sech^2(tau (r - 1) / 2) / T (docs/rules.md)."""
    return r / math.cosh(tau * (r - 1.0) / 2.0) ** 2 / T


def test_sapo_by_hand_on_both_signs_and_lengths():
    """SAPO on a [2, 3] batch (T = 3 and T = 2), tau = 1 (A >= 0) and 1.05 (A < 0).

    Kills the SAPO mutants (r + 1, r - 2, the signs of the log-sigmoids, log 5, * T) with a
    deterministic test (the property tests catch them too, but only after a long shrink).
    """
    r = np.array([[0.5, 1.7, 3.0], [2.2, 0.9, 1.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    c = rules.get_rule("sapo").coefficient(np.log(r), mask, np.array([1.0, -1.0]))
    hand = [
        [_sapo_hand(0.5, 1.0, 3), _sapo_hand(1.7, 1.0, 3), _sapo_hand(3.0, 1.0, 3)],
        [_sapo_hand(2.2, 1.05, 2), _sapo_hand(0.9, 1.05, 2), 0.0],
    ]
    # log space (two log-sigmoids, a log 4, one exp) vs cosh: ~10 roundings on O(1) numbers
    np.testing.assert_allclose(c, hand, rtol=1e-13, atol=1e-300)


# ----------------------------------------------------------------------------- seq_coefficient

P_ALT = VespoParams(k_pos=1.0, lam_pos=1.0, k_neg=3.0, lam_neg=2.0)


def _phi_hand(w, k, lam):
    return w**k * math.exp(lam * (1.0 - w))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_seq_coefficient_params_zero_advantage_and_scalars(kind):
    """Non-default params are used; A = 0 takes the A >= 0 branch; a scalar A and T broadcast;
    T = 1 is allowed.

    Kills: params dropped / replaced by the defaults, ``adv >= 0`` -> ``> 0`` / ``>= 1``,
    the torch broadcast of ``adv`` (None arguments), ``T < 1`` -> ``T <= 1`` / ``T < 2``.
    """
    w = np.array([2.0, 0.5])
    lw = np.log(w)
    rule = rules.get_rule("vespo")
    if kind == "torch":
        lw = torch.tensor(lw)
        adv_zero, adv_mixed = torch.tensor(0.0), torch.tensor([0.5, -1.0])
    else:
        adv_zero, adv_mixed = 0.0, np.array([0.5, -1.0])
    out0 = np.asarray(rule.seq_coefficient(lw, adv_zero, 1, P_ALT))
    outm = np.asarray(rule.seq_coefficient(lw, adv_mixed, 1, P_ALT))
    assert out0 == pytest.approx([_phi_hand(2.0, 1, 1), _phi_hand(0.5, 1, 1)], rel=REL)
    assert outm == pytest.approx([_phi_hand(2.0, 1, 1), _phi_hand(0.5, 3, 2)], rel=REL)


def test_seq_coefficient_torch_checks_T_and_keeps_dtype():
    """Kills the torch ``T < 1`` check mutants (bool(None), message None) and ``cast(c, None)``
    for a bfloat16 input (computed in float32, returned as bfloat16)."""
    rule = rules.get_rule("gspo")
    with pytest.raises(ValueError, match=r"^T must be >= 1 \(rule gspo\)$"):
        rule.seq_coefficient(torch.zeros(2), torch.ones(2), 0)
    out = rule.seq_coefficient(torch.zeros(2, dtype=torch.bfloat16), torch.ones(2), 4)
    assert out.dtype == torch.bfloat16
    assert out.float().tolist() == [0.25, 0.25]  # s = 1 unclipped: c = 1 / T, exact


def test_seq_coefficient_numpy_checks():
    """NaN in either argument raises (kills ``or`` -> ``and``); exact messages; float32 in,
    float32 out (kills ``cast(c, None)``)."""
    rule = rules.get_rule("vespo")
    msg = r"^seq_log_w or adv contains NaN \(rule vespo\)$"
    with pytest.raises(ValueError, match=msg):
        rule.seq_coefficient(np.array([np.nan, 0.0]), np.ones(2), 1)
    with pytest.raises(ValueError, match=msg):
        rule.seq_coefficient(np.zeros(2), np.array([1.0, np.nan]), 1)
    with pytest.raises(TypeError, match=r"^adv must be numeric, got dtype <U1$"):
        rule.seq_coefficient(np.zeros(2), np.array(["a", "b"]), 1)
    with pytest.raises(TypeError, match=r"^seq_log_w must be numeric, got dtype <U1$"):
        rule.seq_coefficient(np.array(["a", "b"]), np.ones(2), 1)
    with pytest.raises(ValueError, match=r"^rule ppo_clip is not seq_only: its coefficient"):
        rules.get_rule("ppo_clip").seq_coefficient(np.zeros(2), np.ones(2), 1)
    with pytest.raises(ValueError, match=r"individual token ratios; use coefficient\(tok_log"):
        rules.get_rule("ppo_clip").seq_coefficient(np.zeros(2), np.ones(2), 1)
    out = rule.seq_coefficient(np.zeros(2, dtype=np.float32), np.ones(2), 3)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 1.0]  # phi(1) = 1 exactly


# ----------------------------------------------------------------------------- phi, surrogate


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_phi_helper_shape_params_and_backend(kind):
    """``Rule.phi`` of a [2, 2] log_w with a scalar advantage and non-default params, on both
    array types. Kills the reshape / broadcast / mask / params mutants of ``phi`` (the torch
    branch had no test)."""
    w = np.array([[0.5, 1.0], [2.0, 3.0]])
    lw = torch.tensor(np.log(w)) if kind == "torch" else np.log(w)
    rule = rules.get_rule("vespo")
    pos = rule.phi(lw, 1.0, P_ALT)
    neg = rule.phi(lw, -2.0, P_ALT)
    assert type(pos) is type(lw) and tuple(pos.shape) == (2, 2)
    hand_pos = [[_phi_hand(v, 1, 1) for v in row] for row in w]
    hand_neg = [[_phi_hand(v, 3, 2) for v in row] for row in w]
    np.testing.assert_allclose(np.asarray(pos), hand_pos, rtol=REL)
    np.testing.assert_allclose(np.asarray(neg), hand_neg, rtol=REL)
    with pytest.raises(TypeError, match=r"^log_w must be numeric, got dtype <U1$"):
        rule.phi(np.array(["a"]), 1.0)
    with pytest.raises(TypeError, match=r"^adv must be numeric, got dtype <U1$"):
        rule.phi(np.zeros(1), np.array(["a"]))


def test_surrogate_params_zero_advantage_and_float64():
    """VESPO's surrogate f = e^lam lam^-k lowergamma(k, lam W) at W = 1 by hand:
    (k, lam) = (2, 3): (e^3 - 4) / 9; (3, 2): (e^2 - 5) / 4; (1, 1): e - 1.

    Kills: params dropped, ``adv >= 0`` -> ``> 0`` / ``>= 1`` (A = 0 is the A >= 0 branch), and
    the float64 conversion of log_w (a float32 exp is off by ~1e-8; IS's f = W shows it).
    """
    vespo = rules.get_rule("vespo")
    # lowergamma via the lambdified SymPy expression: a few roundings on O(10) numbers
    assert vespo.surrogate(0.0, 0.0) == pytest.approx((math.e**3 - 4) / 9, rel=1e-13)
    assert vespo.surrogate(0.0, 0.5) == pytest.approx((math.e**3 - 4) / 9, rel=1e-13)
    assert vespo.surrogate(0.0, -1.0) == pytest.approx((math.e**2 - 5) / 4, rel=1e-13)
    assert vespo.surrogate(0.0, 1.0, P_ALT) == pytest.approx(math.e - 1, rel=1e-13)
    lw32 = np.array([0.3, -1.7, 2.9], dtype=np.float32)
    f = rules.get_rule("is").surrogate(lw32, 1.0)
    assert f == pytest.approx([math.exp(float(v)) for v in lw32], rel=REL)
    with pytest.raises(TypeError, match=r"^log_w must be numeric, got dtype <U1$"):
        vespo.surrogate(np.array(["a"]), 1.0)
    with pytest.raises(TypeError, match=r"^adv must be numeric, got dtype <U1$"):
        vespo.surrogate(np.zeros(1), np.array(["a"]))


# ----------------------------------------------------------------------------- registration


def test_add_registers_every_field_and_refuses_a_duplicate(monkeypatch):
    """``_add`` on an empty registry (monkeypatched: the real one is left alone) stores each
    field under its own name and refuses a second rule of the same name.

    Kills the ``_add`` mutants, which the rest of the suite cannot see: the registry is built
    at import time, before a mutant is switched on.
    """
    monkeypatch.setattr(rules, "_RULES", {})
    body, surrogate = object(), object()
    fields = dict(level="token", params=P_ALT, seq_only=False, body=body, formula="f")
    rules._add("demo", **fields, on_policy="1/T", surrogate=surrogate)
    r = rules.get_rule("demo")
    assert (r.name, r.level, r.params, r.seq_only, r.formula, r.on_policy) == (
        "demo",
        "token",
        P_ALT,
        False,
        "f",
        "1/T",
    )
    assert r.body is body and r.surrogate_form is surrogate
    assert rules.available() == ["demo"]
    with pytest.raises(ValueError, match=r"^rule 'demo' is already registered$"):
        rules._add("demo", **fields, on_policy="1/T", surrogate=None)


# ----------------------------------------------------------------------------- validation


def test_validation_messages_are_exact():
    """Anchored messages, and the array-type check fires when only the mask (or only adv) is of
    the other type (kills ``or`` -> ``and``)."""
    r = rules.get_rule("ppo_clip")
    mixed = r"^rule ppo_clip: tok_log_ratio, response_mask and adv must all be NumPy arrays or "
    with pytest.raises(TypeError, match=mixed + r"all torch tensors$"):
        r.coefficient(np.zeros((2, 3)), torch.ones(2, 3), np.ones(2))
    with pytest.raises(TypeError, match=mixed):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), torch.ones(2))
    with pytest.raises(ValueError, match=r"^adv must be \[B\] = \(2,\) \(one advantage per "):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.ones(3))
    with pytest.raises(TypeError, match=r"^adv must be numeric, got dtype <U1$"):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.array(["a", "b"]))
    with pytest.raises(
        TypeError, match=r"^params for rule ppo_clip must be a ClipParams, got VespoParams$"
    ):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.ones(2), params=VespoParams())
    with pytest.raises(
        ValueError, match=r"^rule ppo_clip is not seq_only; use coefficient_from_tokens$"
    ):
        r.coefficient_from_seq(np.zeros(2), np.ones(2, bool), np.ones(2))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_zero_advantage_takes_the_non_negative_branch(kind):
    """A = 0 and A = 0.5 use (k, lam) = (2, 3); A = -1 uses (3, 2): one-token rows, W = 2.

    Kills ``adv >= 0`` -> ``adv > 0`` / ``adv >= 1`` in ``_validate`` (NumPy and torch).
    """
    x, mask, adv = np.log([[2.0], [2.0], [2.0]]), np.ones((3, 1), bool), np.array([0.0, 0.5, -1])
    if kind == "torch":
        x, mask, adv = torch.tensor(x), torch.tensor(mask), torch.tensor(adv)
    c = np.asarray(rules.get_rule("vespo").coefficient(x, mask, adv))[:, 0]
    pos, neg = _phi_hand(2.0, 2, 3), _phi_hand(2.0, 3, 2)
    assert c == pytest.approx([pos, pos, neg], rel=REL)


def test_gspo_clipped_rows_get_zero_and_T_is_used():
    """GSPO, T = 1: A >= 0 with s = 2 > 1 + 4e-4 and A < 0 with s = 0.5 < 1 - 3e-4 are clipped
    (c = 0); seq_coefficient with T = 4 at W = 1 gives s / T = 1/4.

    Kills ``o.where(keep, s / T, 0.0)`` -> ``1.0`` and ``T.astype(...)`` -> ``None``.
    """
    c, clipped = _one_token("gspo", [math.log(2.0), math.log(0.5)], [1.0, -1.0])
    assert c.tolist() == [0.0, 0.0] and clipped.tolist() == [True, True]
    out = rules.get_rule("gspo").seq_coefficient(np.zeros(2), np.array([1.0, -1.0]), 4)
    assert out.tolist() == [0.25, 0.25]


def test_saturation_edge_is_not_flagged():
    """IS at log W = log(finfo.max) / 2 exactly: c = sqrt(finfo.max) (the saturation level
    itself, reached without saturating), clipped False. Kills ``log_x > hi`` -> ``>=``."""
    hi = 0.5 * math.log(float(np.finfo(np.float64).max))
    c, clipped = _one_token("is", [hi, hi + 1.0], [1.0, 1.0])
    assert c[0] == pytest.approx(math.exp(hi), rel=REL) and not clipped[0]
    assert c[1] == c[0] and clipped[1]


def test_coefficient_from_seq_is_unchecked():
    """The hot path does no NaN check (documented: no validation, no host sync): a NaN log W
    gives a NaN coefficient instead of raising. Kills ``check_nan=False`` -> None / omitted in
    the VESPO body (the NumPy default would check)."""
    rule = rules.get_rule("vespo")
    c, clipped = rule.coefficient_from_seq(
        np.array([np.nan, 0.0]), np.array([True, False]), np.ones(2)
    )
    assert np.isnan(c[0]) and c[1] == 1.0 and clipped is None
