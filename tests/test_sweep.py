"""The grid runner: caching, resume after an interruption, backends, tidy CSV and sidecar."""

from __future__ import annotations

import csv
import json

import pytest

from simulations import sweep
from simulations.sweep import CELL_KINDS, ar_cell, expand_grid, run_grid

CONFIG = {
    "kind": "ar",
    "base": {"V": 3, "T": 3, "policy": "markov", "drift_size": 0.2},
    "grid": {"N": [0, 1, 2], "seed": [0, 1]},
    "rules": ["is", "vespo"],
    "method": "enumeration",
}


def test_expand_grid():
    cells = expand_grid(CONFIG)
    assert len(cells) == 6
    assert cells[1] == {
        "kind": "ar",
        "rules": ["is", "vespo"],
        "method": "enumeration",
        "V": 3,
        "T": 3,
        "policy": "markov",
        "drift_size": 0.2,
        "N": 0,
        "seed": 1,
    }
    with pytest.raises(ValueError, match="'kind' must be one of"):
        expand_grid({"kind": "nope"})
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"kind": "ar", "grid": {"T": 3}})


_calls: list = []


def _flaky(cell):
    """Counts calls; raises on the cell with N == 2 and seed == 0 while _calls says so."""
    _calls.append((cell["N"], cell["seed"]))
    if cell["N"] == 2 and cell["seed"] == 0 and _flaky.fail:
        raise RuntimeError("simulated crash mid-grid")
    return ar_cell(cell)


def test_resume_after_a_crash_recomputes_nothing(tmp_path):
    """Serial backend, a cell raising mid-grid: the finished cells are on disk; the rerun
    computes only the cells that had not finished and the table is complete and identical to
    an uninterrupted run."""
    cells = expand_grid(CONFIG)
    _calls.clear()
    _flaky.fail = True
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_grid(_flaky, cells, tmp_path / "a", backend="serial", progress=False)
    assert len(list((tmp_path / "a" / "cells").glob("*.json"))) == 4  # cells before the crash
    _calls.clear()
    _flaky.fail = False
    res = run_grid(_flaky, cells, tmp_path / "a", backend="serial", progress=False)
    assert _calls == [(2, 0), (2, 1)]
    assert (res["computed"], res["cached"]) == (2, 4)
    _calls.clear()
    res2 = run_grid(_flaky, cells, tmp_path / "a", backend="serial", progress=False)
    assert _calls == [] and res2["cached"] == 6
    fresh = run_grid(ar_cell, cells, tmp_path / "b", backend="serial", progress=False)
    assert res["rows"] == fresh["rows"]
    with open(res["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 12  # 6 cells x 2 rules
    assert {"rule", "N", "seed", "E_phi", "var_trace", "E_W", "bound_holds"} <= set(table[0])
    meta = json.loads(res2["sidecar"].read_text())  # the sidecar of the last run
    assert meta["computed"] == 0 and meta["cached"] == 6 and "git_sha" in meta
    assert meta["config"]["cells"] == cells


def test_joblib_matches_serial(tmp_path):
    cells = expand_grid(CONFIG)[:4]
    a = run_grid(CELL_KINDS["ar"], cells, tmp_path / "s", backend="serial", progress=False)
    b = run_grid(CELL_KINDS["ar"], cells, tmp_path / "j", backend="joblib", n_jobs=2, progress=True)
    assert a["rows"] == b["rows"]


def test_ray_backend_without_ray_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ValueError, match="backend 'ray' needs ray installed"):
        run_grid(ar_cell, expand_grid(CONFIG)[:1], tmp_path, backend="ray", progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        run_grid(ar_cell, expand_grid(CONFIG), tmp_path, backend="dask")
    with pytest.raises(ValueError, match="cells is empty"):
        run_grid(ar_cell, [], tmp_path)
    with pytest.raises(ValueError, match="unknown field"):
        ar_cell({"kind": "ar", "V": 3, "T": 2, "colour": "red"})


def test_bandit_cells(tmp_path):
    cfg = {
        "kind": "bandit",
        "base": {"mu": [0.5, 0.5], "reward": [1.0, -1.0]},
        "grid": {"pi": [[0.5, 0.5], [0.3, 0.7]]},
        "rules": ["vespo"],
        "n_mc": 500,
    }
    res = run_grid(
        sweep.CELL_KINDS["bandit"], expand_grid(cfg), tmp_path, backend="serial", progress=False
    )
    assert [r["method"] for r in res["rows"]] == ["enumeration", "mc"] * 2
