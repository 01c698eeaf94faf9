"""Tests that kill the mutants of ``check_bt``, ``_planted_sup`` and ``_piece_sup`` in
``vespo_theory/derivations/extended.py`` (claim BT, the sup-coefficient table) that
tests/test_derive_extended.py lets live (see docs/mutation.md).

``_piece_sup`` is called on hand-made pieces whose sup and argmax are known in closed form
(a constant piece, a Gaussian bump inside / below / above the piece, a sech bump far from the
left end); ``_planted_sup`` on planted coefficients with a known sup or with linear growth right at
the growth threshold. ``check_bt`` runs with the derived table replaced by a small stub (the
full table takes seconds to derive), so that exactly one part of the check is wrong at a time:
a derived row not confirmed, VESPO's M off by 1e-10 relative, a wrong claimed or planted M.

Every tolerance is stated with its reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from vespo_theory.derivations import extended as E

W = E.W


# ------------------------------------------------------------------------------ _piece_sup ----
@pytest.mark.parametrize(
    ("lo", "hi", "arg"),
    [
        (0, sp.oo, 1),  # 1 lies inside (0, oo)
        (sp.Rational(1, 2), 2, 1),  # 1 inside a finite piece
        (0, sp.Rational(3, 2), 1),  # 1 inside a finite piece with hi < 2
        (2, sp.oo, 3),  # 1 below the piece: 3/2 lo
        (1, sp.oo, sp.Rational(3, 2)),  # 1 is the left end, not inside: 3/2 lo
        (sp.Rational(3, 2), sp.oo, sp.Rational(9, 4)),  # 3/2 lo
        (0, 1, sp.Rational(1, 2)),  # 1 is the right end: the midpoint
        (0, sp.Rational(1, 2), sp.Rational(1, 4)),  # 1 above the piece: the midpoint
        (2, 3, sp.Rational(5, 2)),  # 1 below a finite piece: the midpoint
    ],
)
def test_constant_piece_value_and_interior_point(lo, hi, arg):
    v, a, how = E._piece_sup(sp.Integer(7), lo, hi)
    assert v == 7 and how == "symbolic"
    assert sp.simplify(sp.sympify(a) - arg) == 0
    # the point must lie strictly inside the piece (the table evaluates the registry there)
    assert bool(sp.sympify(a) > lo) and (hi == sp.oo or bool(sp.sympify(a) < hi))


def test_bump_inside_a_finite_piece():
    # exp(-(W-1)^2) on (0, 2): stationary point W = 1, value 1 (the ends give e^-1)
    v, a, how = E._piece_sup(sp.exp(-((W - 1) ** 2)), 0, 2)
    assert v == 1 and a == 1 and how == "symbolic"


def test_stationary_point_below_the_piece_is_ignored():
    # exp(-(W-1)^2) on (2, oo): decreasing there, sup = value at the left end, e^-1
    v, a, _ = E._piece_sup(sp.exp(-((W - 1) ** 2)), 2, sp.oo)
    assert sp.simplify(v - sp.exp(-1)) == 0 and a == 2


def test_stationary_point_above_the_piece_is_ignored():
    # exp(-(W-3)^2) on (0, 2): increasing there, sup = value at the right end, e^-1
    v, a, _ = E._piece_sup(sp.exp(-((W - 3) ** 2)), 0, 2)
    assert sp.simplify(v - sp.exp(-1)) == 0 and a == 2


def test_sech_bump_far_from_the_left_end():
    # sech(W - 10) on (0, oo): max 1 at W = 10, found by nsolve from the grid argmax (a start
    # near W = 0 does not converge to it: the Newton step tanh/sech^2 there is ~e^20)
    v, a, how = E._piece_sup(sp.sech(W - 10), 0, sp.oo)
    assert how == "symbolic+nsolve"
    # nsolve runs at 30 digits; 1e-20 leaves room for the last digits only
    assert abs(float(a) - 10.0) < 1e-20 * 10 + 1e-15 and abs(float(v) - 1.0) < 1e-15


def test_unbounded_piece():
    v, a, how = E._piece_sup(W**2 / (1 + W), 0, sp.oo)
    assert v == sp.oo and a == sp.oo and how == "symbolic"


# ---------------------------------------------------------------------------- _planted_sup ----
LW = np.linspace(-30.0, 30.0, 20001)


def test_planted_sup_below_one():
    # exp(-(W - 1/2)^2): sup 1 at W = 1/2 (below 1: the whole of (0, oo) must be searched)
    M, arg, num, grows = E._planted_sup(sp.exp(-((W - sp.Rational(1, 2)) ** 2)), LW)
    assert M == 1.0 and arg == sp.Rational(1, 2) and grows is False
    # the grid max, recomputed independently on the same log-grid
    assert num == float(np.max(np.exp(-((np.exp(LW) - 0.5) ** 2))))


def test_planted_sup_unbounded_is_none():
    M, arg, num, grows = E._planted_sup(W**2 / (1 + W), LW)
    assert M is None and arg == sp.oo and grows is True
    # the grid max is phi at W = e^30 (increasing), computed by hand; rounding only (1e-12)
    w = math.exp(30.0)
    assert math.isclose(num, w * w / (1 + w), rel_tol=1e-12)


def test_planted_growth_threshold_is_inclusive(monkeypatch):
    _stub(monkeypatch)
    # phi = W / 10 is exactly 1e5 at W = 1e6 (both exact in float64): that counts as growth
    M, _arg, _num, grows = E._planted_sup(W / 10, LW)
    assert M is None and grows is True
    assert E.check_bt(planted={"lin": (W / 10, None)}).status == "verified"


def test_planted_overflow_is_silent(monkeypatch):
    _stub(monkeypatch)
    # on the grid (W up to e^30) W e^W overflows float64 and e^W / (1 + e^W) is inf/inf (an
    # invalid operation); the check must answer even where the caller makes both raise
    planted = {"exp": (W * sp.exp(W), None), "logistic": (sp.exp(W) / (1 + sp.exp(W)), 1.0)}
    with np.errstate(all="raise"):
        r = E.check_bt(planted=planted)
    assert r.status == "verified", r.detail


# ---------------------------------------------------------------- check_bt on a stub table ----
def _stub(monkeypatch, *, vespo_M=None, derived_ok=True):
    """Replace the (slow) derived table by three rows: vespo (sequence, M = max(M+, M-) of the
    deployed kernels unless ``vespo_M``), token_tis (M = 2) and ppo_clip (unbounded)."""
    m_v = E._M_all() if vespo_M is None else vespo_M
    derived = {
        ("vespo", "A>=0"): (m_v, 1.0, "symbolic", m_v, True, "vespo note +"),
        ("vespo", "A<0"): (m_v, 1.0, "symbolic", m_v, True, "vespo note -"),
        ("token_tis", "A>=0"): (2.0, 2.0, "numeric", 2.0, True, "tis note +"),
        ("token_tis", "A<0"): (2.0, 2.0, "numeric", 2.0, derived_ok, "tis note -"),
        ("ppo_clip", "A>=0"): (None, sp.oo, "symbolic", 1e9, True, "clip note +"),
        ("ppo_clip", "A<0"): (None, sp.oo, "symbolic", 1e9, True, "clip note -"),
    }
    rows = [
        E.SupRow("vespo", "sequence", m_v, "v"),
        E.SupRow("token_tis", "token", 2.0, "t"),
        E.SupRow("ppo_clip", "token", None, "c"),
    ]
    monkeypatch.setattr(E, "_derived_table", lambda: derived)
    monkeypatch.setattr(E, "sup_coefficient_table", lambda: rows)


def test_stub_table_verifies(monkeypatch):
    _stub(monkeypatch)
    r = E.check_bt()
    assert r.status == "verified", r.detail
    assert "problems" not in r.detail
    assert "methods per sign ['numeric', 'symbolic']" in r.detail


def test_unconfirmed_derived_row_fails(monkeypatch):
    _stub(monkeypatch, derived_ok=False)
    r = E.check_bt()
    assert r.status == "failed"
    assert r.detail.endswith("| problems: token_tis A<0: tis note -")


def test_unconfirmed_derived_row_fails_with_true_premises(monkeypatch):
    _stub(monkeypatch, derived_ok=False)
    r = E.check_bt(claimed={"token_tis": 2.0}, planted={"bump": (sp.exp(-((W - 1) ** 2)), 1.0)})
    assert r.status == "failed"


def test_vespo_M_off_by_1e10_relative_fails(monkeypatch):
    # VESPO's row is compared with bounds.phi_max at 1e-12 relative (both are the same closed
    # form in float64); 1e-10 is 100x that and must not pass
    _stub(monkeypatch, vespo_M=E._M_all() * (1 + 1e-10))
    assert E.check_bt().status == "failed"


def test_vespo_M_wrong_fails(monkeypatch):
    _stub(monkeypatch, vespo_M=1.0)
    assert E.check_bt().status == "failed"


@pytest.mark.parametrize(
    "claimed",
    [{"token_tis": 2.0}, {"ppo_clip": None}, {"token_tis": 2.0, "ppo_clip": None}],
)
def test_true_claims_verify(monkeypatch, claimed):
    _stub(monkeypatch)
    r = E.check_bt(claimed=claimed)
    assert r.status == "verified", r.detail
    assert "problems" not in r.detail


@pytest.mark.parametrize(
    ("claimed", "derived"),
    [
        ({"token_tis": None}, "2.0"),  # unbounded claimed for a bounded rule
        ({"token_tis": 1.2}, "2.0"),  # a wrong finite sup (40% off)
        ({"token_tis": 2.0 * (1 + 1e-8)}, "2.0"),  # 10x the 1e-9 tolerance
        ({"ppo_clip": 1.2}, "None"),  # finite claimed for an unbounded rule
    ],
)
def test_wrong_claims_fail(monkeypatch, claimed, derived):
    _stub(monkeypatch)
    r = E.check_bt(claimed=claimed)
    assert r.status == "failed"
    ((name, m),) = claimed.items()
    assert f"claimed M({name}) = {m}, derived {derived}" in r.detail


def test_wrong_claim_with_a_true_planted_coefficient_fails(monkeypatch):
    _stub(monkeypatch)
    r = E.check_bt(claimed={"token_tis": 1.2}, planted={"bump": (sp.exp(-((W - 1) ** 2)), 1.0)})
    assert r.status == "failed"


@pytest.mark.parametrize(
    "planted",
    [
        {"bump": (sp.exp(-((W - 1) ** 2)), 1.0)},  # sup 1 at W = 1
        {"w_exp": (W * sp.exp(1 - W), 1.0)},  # sup 1 at W = 1
        {"quad": (W**2 / (1 + W), None)},  # unbounded
    ],
)
def test_true_planted_verify(monkeypatch, planted):
    _stub(monkeypatch)
    r = E.check_bt(planted=planted)
    assert r.status == "verified", r.detail
    assert "agrees" in r.detail and "problems" not in r.detail


@pytest.mark.parametrize(
    "planted",
    [
        {"w_exp": (W * sp.exp(1 - W), 1.5)},  # true sup 1
        {"w_exp": (W * sp.exp(1 - W), 1.0 + 1e-8)},  # 10x the 1e-9 tolerance
        {"w_exp": (W * sp.exp(1 - W), None)},  # bounded, claimed unbounded
        {"quad": (W**2 / (1 + W), 1.0)},  # unbounded, claimed finite
    ],
)
def test_wrong_planted_fail(monkeypatch, planted):
    _stub(monkeypatch)
    r = E.check_bt(planted=planted)
    assert r.status == "failed"
    assert "| problems: planted" in r.detail and "DIFFERS" in r.detail


def test_piece_sup_an_end_going_to_minus_infinity_is_not_unbounded():
    """A defect the mutation triage found: an end where phi -> -oo was read as "unbounded" (SymPy's
    ``is_infinite`` is true for -oo too), so the true sup 0 of -1/W on (0, oo) (the limit at oo)
    was reported as oo and check_bt failed a true planted premise. The sup is 0; the planted
    premise with M = 0 verifies and the one claiming it unbounded fails."""
    v, arg, _ = E._piece_sup(-1 / E.W, 0, sp.oo)
    assert v == 0 and arg == sp.oo
    assert E.check_bt(planted={"neg": (-1 / E.W, 0.0)}).status == "verified"
    assert E.check_bt(planted={"neg": (-1 / E.W, None)}).status == "failed"
