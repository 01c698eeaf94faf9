"""Tests that kill the mutants of ``vespo_theory/claims.py`` the catalogue tests let live (see
docs/mutation.md): the accessors against hand-copied catalogue text, exact messages, and
``_build`` on a planted list (it otherwise runs only at import, before a mutant is switched on).
"""

from __future__ import annotations

import pytest

from vespo_theory import claims
from vespo_theory.claims import ClaimSpec

RELAXED = ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9"]


def test_accessors_return_the_catalogue_text():
    """Hand-copied from the catalogue: statement, assumptions and kind of B2 and R1."""
    assert claims.statement("B2") == "E_mu[phi^2] <= M E_mu[phi] <= M^2"
    assert claims.assumptions("B2") == (
        "k > 0, lam > 0; phi = W^k e^(lam(1-W)) and M = (k/lam)^k e^(lam-k) its sup (K3); "
        "0 <= phi <= M from B1; any law of W > 0"
    )
    assert claims.kind("B2") == "stated" and claims.kind("R1") == "relaxed"
    assert claims.get("K3").id == "K3"


def test_ids_filter_by_kind_in_catalogue_order():
    """46 hand-written claims (P1-10, Q1-3, K1-5, B1-3, G1, BIAS1, BT, L1a, L1b, L2, M1-4, D1,
    U1-3, SN1, ASC1, R1-9) and 17 F-<rule>."""
    everything = claims.ids()
    assert len(everything) == 63 and everything[:3] == ["P1", "P2", "P3"]
    assert claims.ids(None) == everything
    assert claims.ids("relaxed") == RELAXED
    stated = claims.ids("stated")
    assert len(stated) == 54 and not set(stated) & set(RELAXED)
    assert stated[-1] == "F-topr"
    with pytest.raises(ValueError, match=r"^kind must be one of \('stated', 'relaxed'\) or None, "):
        claims.ids("maybe")
    with pytest.raises(ValueError, match=r", got 'maybe'$"):
        claims.ids("maybe")


def test_get_names_the_valid_ids():
    with pytest.raises(KeyError) as err:
        claims.get("Z9")
    msg = err.value.args[0]
    assert msg.startswith("claim 'Z9' is not in the catalogue (vespo_theory.claims); valid IDs: ")
    assert msg.endswith(
        "P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, Q1, Q2, Q3, K1, K2, K3, K4, K5, B1, B2, B3, G1, "
        "BIAS1, BT, L1a, L1b, L2, M1, M2, M3, M4, D1, U1, U2, U3, SN1, ASC1, R1, R2, R3, R4, R5, "
        "R6, R7, R8, R9, F-is, F-reinforce, F-ppo_clip, F-dual_clip, F-cispo, F-sapo, F-gspo, "
        "F-token_tis, F-seq_tis, F-token_mis, F-seq_mis, F-vespo, F-vespo_sym23, F-vespo_sym32, "
        "F-vespo_sqrt, F-vespo_lin, F-topr"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_claimspec_validation_messages():
    """Both of statement and assumptions are required (kills ``or`` -> ``and``)."""
    with pytest.raises(ValueError, match=r"^claim Z9: kind must be one of \('stated', 'relaxed'\)"):
        ClaimSpec("Z9", "s", "a", kind="maybe")
    with pytest.raises(ValueError, match=r", got 'maybe'$"):
        ClaimSpec("Z9", "s", "a", kind="maybe")
    empty = r"^claim Z9: statement and assumptions must not be empty$"
    with pytest.raises(ValueError, match=empty):
        ClaimSpec("Z9", "", "a")
    with pytest.raises(ValueError, match=empty):
        ClaimSpec("Z9", "s", "")
    ok = ClaimSpec("Z9", "s", "a")
    assert (ok.kind, ok.source) == ("stated", "derived here from arXiv 2602.10693")
    assert ClaimSpec("Z9", "s", "a", kind="relaxed").kind == "relaxed"


def test_build_keys_by_id_keeps_order_and_refuses_duplicates(monkeypatch):
    a, b = ClaimSpec("A", "s", "x"), ClaimSpec("B", "t", "y")
    monkeypatch.setattr(claims, "_ENTRIES", [b, a])
    built = claims._build()
    assert list(built) == ["B", "A"] and built["A"] is a and built["B"] is b
    with pytest.raises(TypeError):
        built["C"] = a  # read-only
    monkeypatch.setattr(claims, "_ENTRIES", [a, ClaimSpec("A", "u", "z")])
    with pytest.raises(ValueError, match=r"^claim A is catalogued twice$"):
        claims._build()
