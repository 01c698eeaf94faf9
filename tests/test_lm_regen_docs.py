"""scripts/regen_lm_docs.py and docs/lm.md: the docs' numbers are what the code produces now."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")

from helpers import load_file

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "lm.md"


regen = load_file("scripts/regen_lm_docs.py")


def test_every_job_has_its_blocks_in_the_docs_and_every_block_a_job():
    text = DOCS.read_text()
    markers = [m for j in regen.JOBS.values() for m in j.markers]
    for m in markers:
        regen.read_block(text, m)  # raises unless exactly one, terminated
    # the S1-S8 study's blocks are rendered by scripts/lm_study.py --docs from its tables
    from simulations.lm.study import BLOCKS

    study = [f"study_{b}" for b in (*BLOCKS, "verdicts")]
    in_docs = re.findall(r"<!-- regen:([\w.-]+) -->", text)
    assert sorted(in_docs) == sorted(markers + study)
    assert text.count(regen.END) == len(markers) + len(study)


def test_replace_block_is_exact_and_refuses_bad_markers():
    text = "a\n  <!-- regen:x -->\n  old\n  <!-- /regen -->\nb\n"
    new = regen.replace_block(text, "x", "one\n\ntwo")
    assert new == "a\n  <!-- regen:x -->\n  one\n\n  two\n  <!-- /regen -->\nb\n"
    assert regen.replace_block(new, "x", "one\n\ntwo") == new
    assert regen.read_block(new, "x") == "one\n\n  two"
    with pytest.raises(ValueError, match="found 0 times"):
        regen.replace_block(text, "y", "z")
    with pytest.raises(ValueError, match="found 2 times"):
        regen.replace_block(text + text, "x", "z")
    with pytest.raises(ValueError, match="no '<!-- /regen -->'"):
        regen.replace_block("<!-- regen:x -->\nold\n", "x", "z")


def test_bad_arguments_are_one_line_and_exit_2(capsys, tmp_path):
    assert regen.main(["--only", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("regen_lm_docs: error: --only: unknown job") and "\n" not in err
    assert regen.main(["--only", "lm_smoke", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
    assert regen.main(["--only", "lm_smoke", "--docs", str(tmp_path / "none.md")]) == 2
    assert "--docs" in capsys.readouterr().err
    # a docs file without the job's markers is refused before anything runs
    bare = tmp_path / "bare.md"
    bare.write_text("# nothing\n")
    assert regen.main(["--only", "lm_smoke", "--docs", str(bare), "--work", str(tmp_path)]) == 2
    assert "regen:lm_smoke" in capsys.readouterr().err
    assert not (tmp_path / "lm_smoke").exists()


def test_docs_smoke_line_and_warm_start_are_what_the_code_produces_now(
    tmp_path, monkeypatch, capsys
):
    """Runs the docs' `vespo train-lm --fast` line with a fresh cache (the warm start is trained
    again, ~10-25 s of the ~30 s) and compares, digit for digit as printed, the line and the
    warm start's held-out successes that docs/lm.md quotes. Exact string equality: the run is
    deterministic on CPU (one thread, deterministic algorithms), so any difference is a code
    change the docs have not caught up with (rerun scripts/regen_lm_docs.py)."""
    from simulations.lm.rl import heldout_prompts
    from simulations.lm.sft import SFTConfig, evaluate, load_or_train_sft
    from simulations.lm.tasks import get_task
    from simulations.lm.tokenizer import CharTokenizer
    from vespo_theory.cli import main

    text = DOCS.read_text()
    smoke = regen.read_block(text, "lm_smoke")
    quoted = [ln for ln in smoke.splitlines() if "held-out success" in ln]
    assert len(quoted) == 1, "docs/lm.md has no generated smoke line: run the regen script"
    cache = tmp_path / "cache"
    monkeypatch.setenv("VESPO_CACHE_DIR", str(cache))
    argv = ["train-lm", "--fast", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main([*argv, "--no-progress"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "held-out success" in ln)
    assert line == quoted[0]
    # the warm start: 256-prompt success from its sidecar, 128-prompt success of the RL runs
    (side,) = (cache / "lm_sft").glob("*.json")
    meta = json.loads(side.read_text())
    m = re.search(r"held-out success (\d\.\d{3}) \(256 prompts\) / (\d\.\d{3}) ", text)
    assert m, "docs/lm.md has no generated warm-start sentence"
    assert m.group(1) == f"{meta['heldout_success']:.3f}"
    task = get_task("add")
    model = load_or_train_sft(SFTConfig(), cache_dir=cache)  # from the cache just written
    initial = evaluate(model, task, CharTokenizer(), heldout_prompts(task, 128), "cpu")
    assert m.group(2) == f"{initial:.3f}"
