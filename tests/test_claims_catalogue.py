"""The one claims catalogue (vespo_theory.claims): both evidence layers, the derivation checks and
the falsifier, attach to it, and neither keeps its own copy of a claim's text.

Wrong-premise tests: a check that should fail on a wrong premise is shown failing on one (an
uncatalogued ID, a planted second copy of a statement, a record with a drifted statement).
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from vespo_theory import claims
from vespo_theory.derivations import CHECKS, claim_ids, register, run_checks

ROOT = Path(__file__).resolve().parents[1]
# Modules that attach evidence and must not spell out a claim's statement themselves.
EVIDENCE_MODULES = [
    ROOT / "vespo_theory" / "derivations" / "checks.py",
    ROOT / "simulations" / "falsify" / "claims.py",
    ROOT / "simulations" / "falsify" / "core.py",
]
STDLIB_ONLY = {"__future__", "dataclasses", "types"}


def _string_constants(source: str) -> list[str]:
    """Every plain string literal of a module (implicit concatenations joined by the parser)."""
    return [
        n.value
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _copies_of_statements(source: str) -> list[tuple[str, str]]:
    """(claim ID, literal) for every string literal that contains a catalogued statement."""
    found = []
    for lit in _string_constants(source):
        for cid, spec in claims.CATALOGUE.items():
            if spec.statement in lit:
                found.append((cid, lit))
    return found


# ----------------------------------------------------------------------------- the catalogue


def test_catalogue_imports_only_the_standard_library():
    tree = ast.parse(inspect.getsource(claims))
    mods = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            mods |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            mods.add((n.module or "").split(".")[0])
    assert mods <= STDLIB_ONLY, mods - STDLIB_ONLY


def test_catalogue_module_loads_alone_without_numpy():
    """Loaded from its file in a fresh interpreter with numpy and sympy blocked (an import of
    either raises): it needs nothing heavy."""
    path = inspect.getfile(claims)
    code = (
        "import sys, importlib.util\n"
        "sys.modules['numpy'] = None\nsys.modules['sympy'] = None\n"
        f"spec = importlib.util.spec_from_file_location('claims_alone', {path!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "sys.modules['claims_alone'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "print(mod.statement('B2'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == claims.statement("B2")


def test_catalogue_entries_are_complete_and_kinds_valid():
    assert claims.ids() == list(claims.CATALOGUE)
    assert set(claims.ids("stated")) | set(claims.ids("relaxed")) == set(claims.ids())
    for cid, spec in claims.CATALOGUE.items():
        assert spec.id == cid and spec.statement and spec.assumptions and spec.source
        assert spec.kind in claims.KINDS
    with pytest.raises(KeyError, match="not in the catalogue"):
        claims.get("Z9")
    with pytest.raises(ValueError, match="kind"):
        claims.ids("maybe")
    with pytest.raises(ValueError, match="kind"):
        claims.ClaimSpec("Z9", "s", "a", kind="maybe")


def test_every_statement_is_unique():
    """Two IDs with one text would be one claim twice (or a copy-paste slip)."""
    texts = [s.statement for s in claims.CATALOGUE.values()]
    assert len(texts) == len(set(texts))


# ----------------------------------------------------------------------------- derivations


def test_every_derive_check_is_catalogued_and_stated():
    ids = claim_ids()
    # 24 original + P1-P10 + 10 extended (K5 ... ASC1) + F-<rule> of vespo_sym23, vespo_sym32,
    # vespo_sqrt, vespo_lin, topr
    assert len(ids) == 49
    missing = [c for c in ids if c not in claims.CATALOGUE]
    assert not missing
    assert all(claims.kind(c) == "stated" for c in ids)  # derive verifies; it breaks nothing


def test_register_refuses_an_uncatalogued_id():
    with pytest.raises(KeyError, match="not in the catalogue"):
        register("Z9")
    assert "Z9" not in CHECKS


def test_surrogate_rule_list_matches_the_surrogate_checks():
    from vespo_theory.derivations import surrogates

    assert tuple(claims.SURROGATE_RULE_NAMES) == tuple(surrogates.SURROGATE_RULES)


@pytest.fixture(scope="module")
def surrogate_records():
    return {r.id: r for r in run_checks([c for c in claim_ids() if c.startswith("F-")])}


def test_surrogate_records_start_with_the_catalogue_statement(surrogate_records):
    for cid, r in surrogate_records.items():
        assert r.statement.startswith(claims.statement(cid)), (cid, r.statement)


def test_surrogate_records_use_exactly_the_catalogue_statement(surrogate_records):
    # the stated formula of f is evidence of this check: it lives in detail, not the statement
    for cid, r in surrogate_records.items():
        assert r.statement == claims.statement(cid), cid
        assert r.assumptions.startswith(claims.assumptions(cid)), cid
        assert "; f = " in r.detail, cid


# ----------------------------------------------------------------------------- falsify


def test_every_falsify_claim_is_catalogued_with_its_statement_and_kind():
    pytest.importorskip("hypothesis")
    from simulations.falsify import CLAIMS

    assert len(CLAIMS) == 23  # B1-B3, K3-K5, L1b, L2, M1, M2, U1-U3, G1, R1-R9
    for cid, c in CLAIMS.items():
        assert cid in claims.CATALOGUE
        assert c.title == claims.statement(cid)
        assert c.kind == claims.kind(cid)
    assert set(claims.ids("relaxed")) == {c for c, v in CLAIMS.items() if v.kind == "relaxed"}


def test_falsify_claim_refuses_an_uncatalogued_id():
    pytest.importorskip("hypothesis")
    from simulations.falsify.core import Claim

    with pytest.raises(KeyError, match="not in the catalogue"):
        Claim("Z9", "x <= y", "nowhere", "nothing", lambda: None, lambda inst: [])


# ----------------------------------------------------------------------------- no second copy


@pytest.mark.parametrize("path", EVIDENCE_MODULES, ids=lambda p: p.name)
def test_no_evidence_module_spells_out_a_statement(path):
    assert _copies_of_statements(path.read_text(encoding="utf-8")) == []


def test_copy_scanner_finds_a_planted_copy():
    """Wrong premise for the scanner: a module that does spell a statement out is caught,
    also when the text is split over an implicit concatenation."""
    s = claims.statement("B2")
    half = len(s) // 2
    planted = f"X = ({s[:half]!r}\n    {s[half:]!r})\n"
    assert _copies_of_statements(planted) == [("B2", s)]
    assert _copies_of_statements("X = 'E_mu[phi] only'\n") == []
