"""The sweep cell of kind "lm" and the comparison table built from its rows."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from simulations.lm.report import comparison_rows, format_markdown
from simulations.sweep import CELL_KINDS, expand_grid, run_grid


def test_lm_cells_through_the_sweep_runner_and_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VESPO_CACHE_DIR", str(tmp_path / "cache"))
    config = {
        "kind": "lm",
        "base": {
            "task": "reverse-short",
            "d_model": 32,
            "n_head": 2,
            "sft_steps": 70,
            "sft_batch_size": 32,
            "steps": 2,
            "prompts_per_step": 2,
            "group_size": 4,
            "heldout_n": 8,
            "eval_every": 2,
            "runs_dir": str(tmp_path / "runs"),
        },
        "grid": {"rule": ["vespo", "ppo_clip"], "staleness": [1, 2], "seed": [0]},
    }
    cells = expand_grid(config)
    res = run_grid(CELL_KINDS["lm"], cells, tmp_path / "sweep", backend="serial", progress=False)
    assert res["computed"] == 4 and len(res["rows"]) == 4
    row = res["rows"][0]
    for col in (
        "rule",
        "staleness",
        "seed",
        "initial_heldout",
        "final_heldout",
        "best_heldout",
        "collapsed",
        "collapse_step",
        "mean_ess_frac",
        "max_log_w",
    ):
        assert col in row
    # rerun: every cell comes from the cache
    again = run_grid(CELL_KINDS["lm"], cells, tmp_path / "sweep", backend="serial", progress=False)
    assert again["computed"] == 0 and again["rows"] == res["rows"]
    table = comparison_rows(res["rows"])
    assert [(t["rule"], t["staleness"]) for t in table] == [
        ("ppo_clip", "1"),
        ("ppo_clip", "2"),
        ("vespo", "1"),
        ("vespo", "2"),
    ]
    assert all(t["seeds"] == 1 and t["collapsed"] == "0/1" for t in table)
    assert format_markdown(table).count("\n") == 5
    # runs_dir given: the runs are there; the warm start is in the cache folder, none in ./
    assert len(list((tmp_path / "runs").iterdir())) == 4
    assert any((tmp_path / "cache" / "lm_sft").glob("*.pt"))
    assert not (tmp_path / "outputs").exists()


def test_lm_cell_cache_dir_field_holds_warm_start_and_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VESPO_CACHE_DIR", str(tmp_path / "env"))
    cell = {
        "kind": "lm",
        "task": "reverse-short",
        "d_model": 32,
        "n_head": 2,
        "sft_steps": 70,
        "sft_batch_size": 32,
        "steps": 1,
        "prompts_per_step": 2,
        "group_size": 4,
        "heldout_n": 8,
        "eval_every": 1,
        "cache_dir": str(tmp_path / "c"),
    }
    (row,) = CELL_KINDS["lm"](cell)
    assert row["rule"] == "vespo"
    assert any((tmp_path / "c" / "lm_sft").glob("*.pt"))
    assert len(list((tmp_path / "c" / "lm_runs").iterdir())) == 1
    assert not (tmp_path / "env").exists() and not (tmp_path / "outputs").exists()


def test_unknown_field_in_an_lm_cell():
    # the package's one key check (simulations.config.normalize_keys) names it and the valid keys
    with pytest.raises(ValueError, match="unknown key.*'rulez'.*valid keys: .*rule,"):
        CELL_KINDS["lm"]({"kind": "lm", "rulez": "vespo"})


def test_lm_cell_key_follows_the_lm_code_recipe(monkeypatch):
    # a sweep's cached "lm" row must not survive a change of the LM code: the cell key holds
    # simulations.lm.rl.recipe() (recipe versions, torch major.minor); other kinds do not
    from simulations import sweep
    from simulations.lm import rl

    lm = {"kind": "lm", "rule": "vespo", "staleness": 1}
    ar = {"kind": "ar", "V": 2, "T": 2}
    before = sweep.cell_key(lm), sweep.cell_key(ar)
    monkeypatch.setattr(rl, "RL_RECIPE", rl.RL_RECIPE + 1)
    assert sweep.cell_key(lm) != before[0]
    assert sweep.cell_key(ar) == before[1]

