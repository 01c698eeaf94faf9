"""docs/claims.md is what scripts/gen_claims_doc.py makes from the catalogue today."""

from __future__ import annotations

import pytest
from helpers import load_file

pytest.importorskip("hypothesis")  # simulations.falsify (the falsify column) needs it


def _gen():
    return load_file("scripts/gen_claims_doc.py")


def test_claims_doc_is_up_to_date():
    assert _gen().main(["--check"]) == 0, "run: python scripts/gen_claims_doc.py"


def test_check_fails_on_a_stale_doc(tmp_path, monkeypatch):
    gen = _gen()
    stale = tmp_path / "claims.md"
    stale.write_text(gen.render().replace("| B2 | stated |", "| B2 | relaxed |"))
    monkeypatch.setattr(gen, "DOC", stale)
    assert gen.main(["--check"]) == 1
