"""docs/theory.md is what scripts/gen_theory_doc.py makes from the code today, lists every
claim, and is the only theory document the code cites."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import load_file

pytest.importorskip("hypothesis")  # simulations.falsify (the falsify verdicts) needs it

ROOT = Path(__file__).resolve().parent.parent
# What the code must not cite: the developers' context files outside the repository (the folder
# name is split so that this file does not cite it itself), or the retired docs/claims.md.
CITATION = r"THEORY\.md|docs/claims\.md|\.\./" + "shared"


@pytest.fixture(scope="module")
def gen():
    return load_file("scripts/gen_theory_doc.py")


@pytest.fixture(scope="module")
def rendered(gen):
    # One render (it runs every derive check and every falsify search) for the whole module.
    return gen.render()


def test_theory_doc_is_up_to_date(gen, rendered):
    assert gen.DOC.read_text() == rendered, "run: python scripts/gen_theory_doc.py"


def test_check_fails_on_a_stale_doc(gen, tmp_path, monkeypatch, rendered):
    stale = tmp_path / "theory.md"
    stale.write_text(rendered.replace("| B2 | stated |", "| B2 | relaxed |"))
    monkeypatch.setattr(gen, "DOC", stale)
    monkeypatch.setattr(gen, "render", lambda: rendered)
    assert gen.main(["--check"]) == 1
    stale.write_text(rendered)
    assert gen.main(["--check"]) == 0


def test_every_registered_claim_has_a_row(rendered):
    from simulations.falsify import CLAIMS
    from vespo_theory import claims
    from vespo_theory.derivations import claim_ids

    rows = set(re.findall(r"^\| ([A-Za-z0-9-_]+) \| (?:stated|relaxed) \|", rendered, re.M))
    assert set(claims.ids()) == rows
    assert set(claim_ids()) <= rows and set(CLAIMS) <= rows


def test_every_claim_has_a_check():
    """No claim is listed without evidence: each has a derive check or a falsify search."""
    from simulations.falsify import CLAIMS
    from vespo_theory import claims
    from vespo_theory.derivations import claim_ids

    checked = set(claim_ids()) | set(CLAIMS)
    assert [c for c in claims.ids() if c not in checked] == []


def test_every_verdict_is_as_the_theory_predicts(rendered):
    assert "not as the theory predicts" not in rendered
    assert "derive: failed" not in rendered and "derive: inconclusive" not in rendered


def test_the_code_cites_only_docs_theory_md():
    """The theory reference the code and docs cite is docs/theory.md, nothing outside the repo."""
    pattern = re.compile(CITATION)
    offenders = []
    for sub in ("vespo_theory", "simulations", "paper_figures", "scripts", "benchmarks", "docs"):
        for path in sorted((ROOT / sub).rglob("*")):
            if path.suffix in {".py", ".md", ".sh"} and pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    if pattern.search((ROOT / "README.md").read_text()):
        offenders.append("README.md")
    assert offenders == []


def test_citation_scanner_finds_a_planted_reference():
    pattern = re.compile(CITATION)
    assert pattern.search("see " + ".." + "/" + "shared/THEORY" + ".md section 2")
    assert pattern.search("(docs/claims.md)") and not pattern.search("docs/theory.md")
