"""scripts/lm_study.py: bad input, the interim tables of an unfinished sweep, and the docs blocks
rendered from tables (every block of docs/lm.md has its marker)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import lm_study  # noqa: E402 (the script, imported from scripts/)

from simulations.lm import study  # noqa: E402 (after the sys.path line the script import needs)


@pytest.mark.parametrize(
    "argv, match",
    [
        ([], "name at least one block"),
        (["s9"], "unknown"),
        (["s1", "--jobs", "0"], "--jobs"),
        (["s1", "--recompute"], "--recompute needs --run"),
        (["s1", "--interim", "--run"], "--interim reads finished runs"),
        (["--docs", "--fast"], "--docs renders the committed tables"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, match, capsys):
    assert lm_study.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def _rows():
    out = []
    for seed in range(3):
        for rule, m in (("vespo", 0.5), ("ppo_clip", 0.3)):
            out.append(
                {
                    "task": "add", "d_model": 64, "rule": rule, "staleness": 64,
                    "mismatch": "none", "correction": "entangled", "routing_replay": False,
                    "n_expert": 0, "seed": seed, "initial_heldout": 0.4,
                    "heldout_last_k": m + 0.01 * seed, "collapsed": False,
                }
            )  # fmt: skip
    return out


def test_interim_results_collect_finished_cells(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    for i, r in enumerate(_rows()):
        (cells / f"{i}.json").write_text(json.dumps({"cell": {}, "rows": [r]}))
    (cells / "x.json").write_text("{half")  # a cell being written: skipped
    path = lm_study.interim_results(tmp_path)
    rows = study.read_csv(path)
    assert len(rows) == 6 and {r["rule"] for r in rows} == {"vespo", "ppo_clip"}
    assert lm_study.interim_results(tmp_path / "empty") is None


def test_rendered_block_and_verdicts_quote_the_tables(tmp_path):
    rows = [{k: str(v) for k, v in r.items()} for r in _rows()]
    study.write_csv(tmp_path / "s1.summary.csv", study.summary_rows(rows))
    study.write_csv(tmp_path / "s1.paired.csv", study.paired_rows("s1", rows))
    manifest = {"s1": {"command": "python scripts/lm_study.py s1 --run", "runs": 6}}
    body = lm_study.render_block("s1", tmp_path, manifest)
    assert "| vespo N=64 | 3 | 0.510 [" in body  # mean of 0.50, 0.51, 0.52
    assert "| S1 | vespo N=64 - ppo_clip N=64 |" in body and "favourable" in body
    assert "(exploratory)" in body  # 3 seeds < 10
    assert "Not run yet" in lm_study.render_block("s3", tmp_path, manifest)
    assert "(the runs:" not in body  # no separate sweep code recorded
    manifest["s1"] |= {"code": {"git_sha": "b" * 40}, "sweep_code": {"git_sha": "a" * 40}}
    assert f"commit {'b' * 12} (the runs: commit {'a' * 12})" in lm_study.render_block(
        "s1", tmp_path, manifest
    )
    lm_study.write_verdicts(tmp_path)
    text = lm_study.render_verdicts(tmp_path)
    assert "| S1 |" in text and "**partly**" in text  # 1 of 3 primary run, favourable
    assert "Budget" not in text  # no manifest, no budget line


def test_budget_line_sums_the_manifest_wall_times():
    manifest = {
        "s1": {"sweep_wall_s": 3000.0, "runs": 100, "jobs": 2},
        "s3": {"sweep_wall_s": 600.0, "runs": 30, "jobs": 2},
        "s4": {"runs": 30},  # no wall time: not counted, listed as not run
    }
    line = lm_study.render_budget(manifest)
    assert "2 blocks (130 runs" in line and "took 1.00 h" in line  # (3000 + 600) s / 3600
    assert "s1 50 min, s3 10 min" in line and "`--n-jobs 2`" in line
    assert "not run yet: s4, s5, s6, s7, s8, async, lr_check." in line
    assert lm_study.render_budget({}) == ""


def test_docs_have_every_study_marker():
    text = (REPO / "docs" / "lm.md").read_text()
    for b in (*study.BLOCKS, "verdicts"):
        assert text.count(f"<!-- regen:study_{b} -->") == 1, b


def test_docs_study_blocks_are_the_committed_tables_rendered():
    """docs/lm.md's study blocks and verdict table are exactly what `lm_study.py --docs` renders
    from the committed tables (docs/lm_study/), and verdicts.csv is what the committed paired
    tables give: a table changed without re-rendering (or a number edited by hand) fails here."""
    sys.path.insert(0, str(REPO / "scripts"))
    from regen_lm_docs import replace_block

    dest = REPO / "docs" / "lm_study"
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    text = (REPO / "docs" / "lm.md").read_text()
    for b in study.BLOCKS:
        assert (
            replace_block(text, f"study_{b}", lm_study.render_block(b, dest, manifest)) == text
        ), b
    rendered = replace_block(text, "study_verdicts", lm_study.render_verdicts(dest, manifest))
    assert rendered == text
    committed = study.read_csv(dest / "verdicts.csv")
    paired, summaries = [], []
    for b in study.BLOCKS:
        if (dest / f"{b}.paired.csv").exists():
            paired += study.read_csv(dest / f"{b}.paired.csv")
        if (dest / f"{b}.summary.csv").exists():
            summaries += study.read_csv(dest / f"{b}.summary.csv")
    broken = study.broken_rules(summaries)
    for row in committed:
        assert study.verdict(row["claim"], paired, broken)["verdict"] == row["verdict"], row[
            "claim"
        ]
