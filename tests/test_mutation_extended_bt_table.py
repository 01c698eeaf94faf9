"""Tests that kill the mutants of ``_derived_table``, ``_record``, ``_refine_max``,
``_registry_max`` and ``sup_coefficient_table`` in ``vespo_theory/derivations/extended.py``
(the derived sup-coefficient table of claim BT) that the other tests let live (see
docs/mutation.md).

The table is derived here for one rule at a time (the registry listing ``available`` is
monkeypatched; the full table takes seconds), so that each assertion is about one row: the
log-grid (seq MIS's grid max is the largest grid point e^(0.002 k) below its cap, by hand),
the numeric refinement (BAPO's sup is its registry clip bound), the growth threshold (exactly
1e5 counts), and the symbolic sup confirmed on the registry (a stubbed ``_piece_sup`` with a
wrong argmax or a too-low sup must fail). ``_record`` is called directly.

Every tolerance is stated with its reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from vespo_theory import claims
from vespo_theory.derivations import extended as E
from vespo_theory.derivations import with_premises
from vespo_theory.rules import get_rule


def _clear():
    # the real module caches the table (lru_cache); the mutated copy has no cache
    clear = getattr(E._derived_table, "cache_clear", None)
    if clear is not None:
        clear()


@pytest.fixture
def table(monkeypatch):
    """``table(*names)``: the derived table of the named rules only (cache cleared around)."""

    def make(*names):
        monkeypatch.setattr(E, "available", lambda: list(names))
        _clear()
        return E._derived_table()

    yield make
    _clear()


# -------------------------------------------------------------------------------- _record ----
def test_record_fields():
    r = E._record("BT", "my premise", "symbolic", True, "d")
    assert r.id == "BT" and r.status == "verified" and r.detail == "d"
    assert r.statement == claims.statement("BT") and r.statement
    assert r.assumptions == with_premises("BT", "my premise") and "my premise" in r.assumptions
    # the time is a placeholder: run_checks fills it in
    assert r.seconds == 0.0
    assert E._record("BT", "", "symbolic", False, "d").status == "failed"


@pytest.mark.parametrize("ok", [True, False])
def test_record_inconclusive_wins(ok):
    assert E._record("BT", "", "symbolic", ok, "d", inconclusive=True).status == "inconclusive"


# ------------------------------------------------------------------------- _derived_table ----
def test_grid_max_pins_the_log_grid(table):
    # seq MIS: c(W) = W for W <= cap, 0 above. The grid of log W is -30 + 0.002 k, so the grid
    # max is e^0.692 (the largest grid point below ln 2 = 0.693147...), independent of the sign.
    cap = get_rule("seq_mis").params.cap
    assert cap == 2.0
    t = table("seq_mis")
    for side, _pos in E._SIGNS:
        M, arg, how, num_max, ok, note = t[("seq_mis", side)]
        assert ok and M == cap and arg == 2 and how == "symbolic"
        # linspace rounding of the grid point only (a few ulp)
        assert math.isclose(num_max, math.exp(0.692), rel_tol=1e-12)
        assert note.startswith("2 at W = 2, T = 1 (symbolic; registry grid max 1.99771")


def test_token_rule_note_names_r(table):
    t = table("token_tis")
    for side, _pos in E._SIGNS:
        M, _arg, how, _num, ok, note = t[("token_tis", side)]
        assert ok and M == 2.0 and how == "symbolic"
        assert note.startswith("2 at r = 2, T = 1 (symbolic;")


def test_transcendental_stationary_point_is_labelled_nsolve(table):
    # SAPO's stationary equation (sigmoid gate) has no closed form: nsolve is needed
    t = table("sapo")
    assert {t[("sapo", side)][2] for side, _ in E._SIGNS} == {"symbolic+nsolve"}
    assert all(t[("sapo", side)][4] for side, _ in E._SIGNS)


def test_numeric_rule_refined_to_its_clip_bounds(table):
    # BAPO has no surrogate statement: its sup is found on the registry and refined. Its
    # coefficient is r up to the upper clip (high_start) for A >= 0 and up to the dual clip c
    # for A < 0. The refinement resolves log r to ~1e-13 (4 rounds, each 500x finer than a
    # 2e-3 grid step); 1e-11 relative leaves 100x room.
    p = get_rule("bapo").params
    t = table("bapo")
    for side, bound, txt in (("A>=0", p.high_start, "1.2"), ("A<0", p.c, "3")):
        M, arg, how, _num, ok, note = t[("bapo", side)]
        assert ok and how == "numeric"
        assert math.isclose(M, bound, rel_tol=1e-11)
        assert math.isclose(float(arg), bound, rel_tol=1e-11)
        assert note.startswith(f"{txt} at r = {txt}, T = 1 (numeric;")


def test_unbounded_rows_point_to_infinity(table):
    t = table("is")
    for side, _pos in E._SIGNS:
        M, arg, how, _num, ok, note = t[("is", side)]
        assert M is None and arg == sp.oo and how == "symbolic" and ok
        assert note.startswith("unbounded (W -> oo; c(W = 1e6) = 1e+06 >= 1e5)")


def test_growth_threshold_is_inclusive(table, monkeypatch):
    # a coefficient of exactly 1e5 at W = 1e6 counts as growth (the symbolic sup is oo)
    monkeypatch.setattr(E, "_registry_at", lambda name, pos, w, T=1: 1e5)
    t = table("is")
    assert all(t[("is", side)][4] for side, _ in E._SIGNS)


def test_wrong_symbolic_argmax_fails(table, monkeypatch):
    # TIS: c(r) = min(r, 2). A symbolic sup 2 placed at r = 1 (where c = 1) is not reached
    # next to its argmax: the row must fail (c at 2 r or 3 r would reach it)
    monkeypatch.setattr(
        E, "_piece_sup", lambda phi, lo, hi: (sp.Integer(2), sp.Integer(1), "symbolic")
    )
    t = table("token_tis")
    assert not any(t[("token_tis", side)][4] for side, _ in E._SIGNS)


def test_symbolic_sup_below_the_registry_max_fails(table, monkeypatch):
    # TIS: c(r) = min(r, 2). A symbolic sup 3/2 at r = 3/2 is reached there, but the registry
    # reaches 2 > 3/2 on the grid: the row must fail
    half3 = sp.Rational(3, 2)
    monkeypatch.setattr(E, "_piece_sup", lambda phi, lo, hi: (half3, half3, "symbolic"))
    t = table("token_tis")
    assert not any(t[("token_tis", side)][4] for side, _ in E._SIGNS)


def test_true_stub_verifies(table, monkeypatch):
    # control for the two tests above: the true sup 2 at r = 2 is confirmed
    monkeypatch.setattr(
        E, "_piece_sup", lambda phi, lo, hi: (sp.Integer(2), sp.Integer(2), "symbolic")
    )
    t = table("token_tis")
    assert all(t[("token_tis", side)][4] for side, _ in E._SIGNS)


@pytest.mark.parametrize("name", ["ppo_clip", "dual_clip", "gspo", "token_mis", "cispo"])
def test_clip_edge_rows_are_confirmed(table, name):
    # sups at the edge of a clip or mask (reached from one side only)
    t = table(name)
    assert all(t[(name, side)][4] for side, _ in E._SIGNS), [t[(name, s)] for s, _ in E._SIGNS]


# ------------------------------------------------------------------------ _registry_max ----
def test_registry_max_is_reproducible():
    # a coarse grid, so that the seeded independent-token rows decide the max
    lw = np.linspace(-1.0, 1.0, 11)
    a = E._registry_max("ppo_clip", True, lw)
    assert a == E._registry_max("ppo_clip", True, lw)
    assert a == E._registry_max("ppo_clip", True, lw, seed=20260307)


# ------------------------------------------------------------------ sup_coefficient_table ----
def test_where_lists_both_signs(table):
    t = table("token_tis")
    (row,) = E.sup_coefficient_table()
    assert row.where == f"A>=0: {t[('token_tis', 'A>=0')][5]}; A<0: {t[('token_tis', 'A<0')][5]}"


def test_finite_sup_approached_at_infinity_is_bounded(table, monkeypatch):
    # TIS: c(r) = min(r, 2) reaches 2 for every r >= 2; a piece whose sup 2 is reported at
    # r -> oo is bounded (only a sup of oo marks an unbounded sign)
    monkeypatch.setattr(E, "_piece_sup", lambda phi, lo, hi: (sp.Integer(2), sp.oo, "symbolic"))
    t = table("token_tis")
    for side, _pos in E._SIGNS:
        M, _arg, _how, _num, ok, _note = t[("token_tis", side)]
        assert M == 2.0 and ok


def test_sup_reached_just_left_of_the_argmax_verifies(table, monkeypatch):
    # PPO clip, A >= 0: c(r) = r for r <= 1.2 and 0 above. An argmax 5e-11 relative above the
    # clip edge: c there is 0, but the probe 1e-10 relative to its left lies inside the clip and
    # reaches 1.2 (1 - 5e-11), within the check's 1e-9
    a = sp.Float(1.2 * (1 + 5e-11), 30)
    monkeypatch.setattr(E, "_piece_sup", lambda phi, lo, hi: (sp.Float(1.2, 30), a, "symbolic"))
    t = table("ppo_clip")
    assert E._registry_at("ppo_clip", True, float(a)) == 0.0
    assert t[("ppo_clip", "A>=0")][4]


def test_sup_reached_just_right_of_the_argmax_verifies(table, monkeypatch):
    # a stubbed registry whose coefficient jumps from 0 to 1 just above W = 1 (and never grows):
    # a symbolic sup 1 at W = 1 is reached by the probe 1e-10 relative to its right
    monkeypatch.setattr(
        E, "_piece_sup", lambda phi, lo, hi: (sp.Integer(1), sp.Integer(1), "symbolic")
    )
    monkeypatch.setattr(E, "_registry_max", lambda name, pos, lw: (1.0, 0.0, 1))
    monkeypatch.setattr(E, "_registry_at", lambda name, pos, w, T=1: 1.0 if w > 1.0 else 0.0)
    t = table("token_tis")
    assert all(t[("token_tis", side)][4] for side, _ in E._SIGNS)
