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
    "grid": {"staleness": [0, 1, 2], "seed": [0, 1]},
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
        "staleness": 0,
        "seed": 1,
    }
    with pytest.raises(ValueError, match="'kind' must be one of"):
        expand_grid({"kind": "nope"})
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"kind": "ar", "grid": {"T": 3}})


def test_expand_a_list_of_grids_is_the_union_in_order():
    """Two products one after the other; the cell both make (staleness 1, seed 0) once."""
    cfg = {
        **CONFIG,
        "grid": [{"staleness": [0, 1], "seed": [0]}, {"staleness": [1, 2], "seed": [0]}],
    }
    cells = expand_grid(cfg)
    assert [(c["staleness"], c["seed"]) for c in cells] == [(0, 0), (1, 0), (2, 0)]
    assert all(c["T"] == 3 and c["rules"] == ["is", "vespo"] for c in cells)
    with pytest.raises(ValueError, match="must not be empty"):
        expand_grid({**CONFIG, "grid": []})
    with pytest.raises(TypeError, match=r"'grid'\[1\] must be a JSON object"):
        expand_grid({**CONFIG, "grid": [{"seed": [0]}, 3]})
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({**CONFIG, "grid": [{"seed": [0]}, {"seed": []}]})


_calls: list = []


def _flaky(cell):
    """Counts calls; raises on the cell with N == 2 and seed == 0 while _calls says so."""
    _calls.append((cell["staleness"], cell["seed"]))
    if cell["staleness"] == 2 and cell["seed"] == 0 and _flaky.fail:
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
    assert {"rule", "staleness", "seed", "E_phi", "var_trace", "E_W", "bound_holds"} <= set(
        table[0]
    )
    meta = json.loads(res2["sidecar"].read_text())  # the sidecar of the last run
    assert meta["computed"] == 0 and meta["cached"] == 6 and "git_sha" in meta
    assert meta["config"]["cells"] == cells


# cells big enough (4^8 = 65536 sequences each) for OpenBLAS to split its products over threads
# in the main process: identical rows across backends need the same BLAS thread count per cell
BIG = {
    **CONFIG,
    "base": {**CONFIG["base"], "V": 4, "T": 8},
    "grid": {"staleness": [0, 1], "seed": [0]},
}


def test_joblib_matches_serial(tmp_path):
    cells = expand_grid(CONFIG)[:4] + expand_grid(BIG)
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
    with pytest.raises(ValueError, match="unknown key\\(s\\) 'colour'.*valid keys: .*staleness"):
        ar_cell({"kind": "ar", "V": 3, "T": 2, "colour": "red"})
    # the library entry checks --out with the CLI's helper (usable_out_dir), not a copy of it
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for bad, msg in ((a_file, "is not a folder"), (a_file / "sub", "cannot create folder")):
        with pytest.raises(ValueError, match=f"^--out: .*{msg}"):
            run_grid(ar_cell, expand_grid(CONFIG)[:1], bad, progress=False)


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


# --------------------------------------------------------------------------- the ray backend


@pytest.fixture(scope="module")
def ray_session():
    """One private local Ray instance (2 CPUs, no dashboard, loopback only) for the ray tests
    of this module, shut down after them. run_grid uses a session that is already running and
    leaves it running."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_matches_serial(tmp_path, ray_session):
    cells = expand_grid(CONFIG) + expand_grid(BIG)
    a = run_grid(ar_cell, cells, tmp_path / "s", backend="serial", progress=False)
    b = run_grid(ar_cell, cells, tmp_path / "r", backend="ray", progress=False)
    assert a["rows"] == b["rows"] and (b["computed"], b["cached"]) == (8, 0)
    assert a["csv"].read_text() == b["csv"].read_text()
    assert ray_session.is_initialized()  # the caller's session is left running
    assert json.loads(b["sidecar"].read_text())["backend"] == "ray"


def test_ray_resume_after_a_crash(tmp_path, ray_session):
    """Ray tasks run in other processes: calls are logged to a file. The failing cell waits
    until the other five cells are on disk (each cached as it finishes, while it still runs),
    then raises; the rerun computes only that cell and the table equals a serial run."""
    import time

    cells = expand_grid(CONFIG)
    out, log, fail = tmp_path / "r", tmp_path / "calls.log", tmp_path / "fail"
    fail.touch()

    def flaky(cell):
        with open(log, "a") as fh:
            fh.write(f"{cell['N']},{cell['seed']}\n")
        if (cell["staleness"], cell["seed"]) == (2, 1) and fail.exists():
            deadline = time.monotonic() + 60  # generous: the other cells take milliseconds
            while len(list((out / "cells").glob("*.json"))) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            n = len(list((out / "cells").glob("*.json")))
            raise RuntimeError(f"simulated crash with {n} cells cached")
        return ar_cell(cell)

    with pytest.raises(RuntimeError, match="simulated crash with 5 cells cached"):
        run_grid(flaky, cells, out, backend="ray", progress=False)
    assert len(list((out / "cells").glob("*.json"))) == 5
    fail.unlink()
    log.write_text("")
    res = run_grid(flaky, cells, out, backend="ray", progress=False)
    assert log.read_text().split() == ["2,1"]
    assert (res["computed"], res["cached"]) == (1, 5)
    fresh = run_grid(ar_cell, cells, tmp_path / "s", backend="serial", progress=False)
    assert res["rows"] == fresh["rows"]


# --------------------------------------------------------------------------- config keys


def test_unknown_sweep_key_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown key\\(s\\) 'Tee' in the sweep config's 'grid'"):
        expand_grid({**CONFIG, "grid": {"Tee": [1]}})
    with pytest.raises(ValueError, match="valid keys: .*grid_points.*n_mc"):
        expand_grid({**CONFIG, "samples": 10})


def test_old_key_names_are_renamed_with_a_note():
    notes = []
    old = {**CONFIG, "grid": {"N": [0, 1], "precision": ["bf16"]}}
    cells = expand_grid(old, notes=notes.append)
    assert [c["staleness"] for c in cells] == [0, 1] and cells[0]["mismatch"] == "bf16"
    assert "N" not in cells[0] and len(notes) == 1 and "'N' -> 'staleness'" in notes[0]
    with pytest.raises(ValueError, match="'N' is the old name of 'staleness'; give only"):
        expand_grid({**CONFIG, "base": {"N": 1, "staleness": 2}})


def test_rules_empty_is_refused_and_a_string_is_one_name():
    with pytest.raises(ValueError, match="rules is empty: name at least one rule"):
        expand_grid({**CONFIG, "rules": []})
    cells = expand_grid({**CONFIG, "rules": "vespo"})
    assert cells[0]["rules"] == ["vespo"]  # one name, not letter by letter
    assert expand_grid({**CONFIG, "rules": "vespo,is"})[0]["rules"] == ["vespo", "is"]
    with pytest.raises(ValueError, match="unknown rule 'v'"):
        expand_grid({**CONFIG, "rules": ["v", "e"]})


def test_cache_key_has_the_recipe_and_cell_files_the_code_version(tmp_path, monkeypatch):
    """A cell computed under another RECIPE_VERSION is not reused: the key changes (and a file
    with another recipe inside is not trusted either); each cell file names the code."""
    cells = expand_grid(CONFIG)[:1]
    res = run_grid(ar_cell, cells, tmp_path, backend="serial", progress=False)
    (path,) = (tmp_path / "cells").glob("*.json")
    payload = json.loads(path.read_text())
    assert payload["recipe"] == sweep.RECIPE_VERSION
    assert set(payload["code"]) == {"git_sha", "vespo_theory"}
    assert path.stem == sweep.cell_key(cells[0])
    monkeypatch.setattr(sweep, "RECIPE_VERSION", sweep.RECIPE_VERSION + 1)
    again = run_grid(ar_cell, cells, tmp_path, backend="serial", progress=False)
    assert (again["computed"], again["cached"]) == (1, 0) and again["rows"] == res["rows"]


def test_a_different_sweep_in_the_same_out_is_refused(tmp_path):
    a = expand_grid(CONFIG)[:2]
    b = expand_grid(CONFIG)[2:4]
    run_grid(ar_cell, a, tmp_path, backend="serial", progress=False)
    with pytest.raises(ValueError, match="holds a sweep with a different config.*--overwrite"):
        run_grid(ar_cell, b, tmp_path, backend="serial", progress=False)
    res = run_grid(ar_cell, b, tmp_path, backend="serial", progress=False, overwrite=True)
    assert res["computed"] == 2
    assert run_grid(ar_cell, b, tmp_path, backend="serial", progress=False)["cached"] == 2


def test_ar_cell_passes_max_count_vectors_to_the_method_choice():
    """A sweep key ``max_count_vectors`` reaches simulate_ar: with C(6+2, 2) = 28 count vectors
    above a limit of 5 the cell falls back from the multinomial method to enumeration."""
    from simulations.sweep import ar_cell

    cell = {
        "kind": "ar",
        "mu_probs": [0.5, 0.3, 0.2],
        "pi_probs": [0.42, 0.33, 0.25],
        "T": 6,
        "V": 3,
        "policy": "context-free",
        "rules": ["vespo"],
    }
    assert ar_cell(cell)[0]["method"] == "multinomial"
    assert ar_cell({**cell, "max_count_vectors": 5})[0]["method"] == "enumeration"
