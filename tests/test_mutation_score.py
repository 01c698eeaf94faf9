"""scripts/mutation_score.py and the triage files of docs/mutation/: every survivor of each
committed run has a class and a reason, and docs/mutation.md quotes the scores the script prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import load_file

ROOT = Path(__file__).resolve().parents[1]


MS = load_file("scripts/mutation_score.py", "mutation_score")
MODULES = sorted(p.name.removesuffix("_run.json") for p in MS.DIR.glob("*_run.json"))


def test_there_are_triaged_runs():
    assert "paper" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_survivor_is_classified_and_the_doc_quotes_the_score(module):
    s = MS.score(module)  # raises if a survivor lacks a line or a line is not a survivor
    assert 0 < s["score"] <= 1
    assert MS.line(s) in (ROOT / "docs/mutation.md").read_text()


def _write(tmp_path, survivors, rows):
    run = {
        "mutants": 10,
        "killed": 7,
        "timeouts": 1,
        "survived": len(survivors),
        "not_run": 0,
        "survivor_names": survivors,
    }
    (tmp_path / "m_run.json").write_text(json.dumps(run))
    text = "mutant\tclass\treason\n" + "".join("\t".join(r) + "\n" for r in rows)
    (tmp_path / "m_survivors.tsv").write_text(text)


def test_score_by_hand(tmp_path):
    # 10 mutants: 7 killed + 1 timeout by the run; survivors a (killed later), b (equivalent)
    # -> (7 + 1 + 1) / (10 - 1) = 1.0; with b surviving instead -> (7 + 1 + 1) / 10 = 0.9
    _write(tmp_path, ["a", "b"], [("a", "killed", "r"), ("b", "equivalent", "r")])
    assert MS.score("m", tmp_path)["score"] == 1.0
    _write(tmp_path, ["a", "b"], [("a", "killed", "r"), ("b", "survives", "r")])
    assert MS.score("m", tmp_path)["score"] == 0.9


@pytest.mark.parametrize(
    "survivors, rows, match",
    [
        (["a", "b"], [("a", "killed", "r")], "missing"),  # a survivor without a line
        (["a"], [("a", "killed", "r"), ("c", "harmless", "r")], "not survivors"),
        (["a"], [("a", "fine", "r")], "class"),
        (["a"], [("a", "harmless", " ")], "no reason"),
    ],
)
def test_incomplete_or_wrong_triage_is_refused(tmp_path, survivors, rows, match):
    _write(tmp_path, survivors, rows)
    with pytest.raises(ValueError, match=match):
        MS.score("m", tmp_path)
