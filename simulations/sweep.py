"""Resumable grid runner: one cached file per cell, joblib or Ray, one tidy CSV + sidecar JSON.

``run_grid(cell_fn, cells, out_dir)`` evaluates ``cell_fn(cell) -> list[dict]`` (rows of the
tidy table) for every cell dict. Each finished cell is written at once to
``out_dir/cells/<config_hash(cell)>.json`` (atomically: temporary file + rename), so an
interrupted sweep (Ctrl-C, a crash, a cell that raises) loses nothing: the next run loads the
finished cells from disk and computes only the rest. A tqdm bar shows cells done and time left.
At the end all rows, in cell order, go to ``out_dir/<name>.csv`` with the sidecar
``out_dir/<name>.json`` (:mod:`vespo_theory.provenance`: config, seed, git SHA, versions, time).

Backends: ``"serial"``; ``"joblib"`` (processes, local); ``"ray"`` (``ray.remote`` tasks on
the session already open, else the cluster named by ``RAY_ADDRESS``, else a private local
instance with ``n_jobs`` CPUs; ray is imported only then, and its absence is a clear error).
Every cell runs with single-threaded BLAS on every backend, so all three give identical rows.
``vespo sweep CONFIG --out DIR`` reads a JSON config whose ``"kind"`` picks the cell function
from ``CELL_KINDS`` (see :func:`expand_grid` for the format).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from vespo_theory.provenance import config_hash, run_metadata, write_sidecar

__all__ = ["run_grid", "expand_grid", "CELL_KINDS", "ar_cell", "bandit_cell", "BACKENDS"]

BACKENDS = ("joblib", "ray", "serial")


# --------------------------------------------------------------------------- cell kinds


def _flat_record(rec: dict, prefix: str = "") -> dict:
    """Nested dicts flattened with ``_`` (se -> se_E_phi, bounds -> bounds_B1_holds, ...)."""
    out = {}
    for k, v in rec.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_record(v, key + "_"))
        elif isinstance(v, (list, tuple)) or hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
            continue  # vectors (mean, cov) are not table cells
        else:
            out[key] = v.item() if hasattr(v, "item") else v
    return out


def _split_cell(cell: dict, fields: set) -> tuple[dict, dict]:
    known = {k: v for k, v in cell.items() if k in fields}
    extra = {k: v for k, v in cell.items() if k not in fields}
    return known, extra


def ar_cell(cell: dict) -> list[dict]:
    """A cell of kind "ar": ARConfig fields + optional ``rules``, ``method``, ``n_mc``, ``grid``."""
    from dataclasses import fields as dc_fields

    from simulations.config import ARConfig
    from simulations.runners import simulate_ar

    names = {f.name for f in dc_fields(ARConfig)}
    cfg_d, extra = _split_cell(cell, names)
    allowed = {"kind", "rules", "method", "n_mc", "grid_points"}
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ValueError(
            f"unknown field(s) {unknown} in an 'ar' cell; valid: ARConfig fields and "
            f"{', '.join(sorted(allowed - {'kind'}))}"
        )
    cfg = ARConfig(**cfg_d)
    res = simulate_ar(
        cfg,
        extra.get("rules"),
        method=extra.get("method", "auto"),
        n_mc=int(extra.get("n_mc", 100_000)),
        grid=int(extra.get("grid_points", 2049)),
    )
    base = {k: v for k, v in cell.items() if k not in ("rules",) and not isinstance(v, list)}
    summary = {k: v for k, v in res["summary"].items() if not isinstance(v, dict)}
    rows = []
    for rec in res["rules"]:
        row = dict(base)
        row.update(_flat_record(summary))
        row["true_grad_norm"] = res["true_grad_norm"]
        row.update(_flat_record(rec))
        rows.append(row)
    return rows


def bandit_cell(cell: dict) -> list[dict]:
    """A cell of kind "bandit": BanditConfig fields + optional ``rules``, ``n_mc``."""
    from dataclasses import fields as dc_fields

    from simulations.bandits import simulate_bandit
    from simulations.config import BanditConfig

    names = {f.name for f in dc_fields(BanditConfig)}
    cfg_d, extra = _split_cell(cell, names)
    unknown = sorted(set(extra) - {"kind", "rules", "n_mc"})
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in a 'bandit' cell")
    res = simulate_bandit(
        BanditConfig(**cfg_d), extra.get("rules"), n_mc=int(extra.get("n_mc", 100_000))
    )
    base = {k: v for k, v in cell.items() if not isinstance(v, list)}
    rows = []
    for rec in res["exact"] + res["mc"]:
        row = dict(base)
        row.update(_flat_record(rec))
        rows.append(row)
    return rows


def lm_cell(cell: dict) -> list[dict]:
    """A cell of kind "lm": one small-LM RL run (torch; see simulations.lm.cell)."""
    from simulations.lm.cell import lm_cell as _lm_cell

    return _lm_cell(cell)


CELL_KINDS: dict[str, Callable[[dict], list[dict]]] = {
    "ar": ar_cell,
    "bandit": bandit_cell,
    "lm": lm_cell,
}


def expand_grid(config: dict) -> list[dict]:
    """Cells of a sweep config: the product of ``grid`` axes merged over ``base``.

    Format: ``{"kind": "ar", "base": {...}, "grid": {"T": [..], "N": [..], "seed": [..]},
    ...}``; every other top-level key (``rules``, ``method``, ``n_mc``, ...) is copied into each
    cell. Grid axes vary fastest from the last one.
    """
    if not isinstance(config, dict):
        raise TypeError(f"a sweep config must be a JSON object, got {type(config).__name__}")
    kind = config.get("kind")
    if kind not in CELL_KINDS:
        raise ValueError(
            f"sweep config 'kind' must be one of {', '.join(CELL_KINDS)}; got {kind!r}"
        )
    grid = config.get("grid", {})
    base = config.get("base", {})
    if not isinstance(grid, dict) or not isinstance(base, dict):
        raise TypeError("sweep config 'grid' and 'base' must be JSON objects")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"grid axis {k!r} must be a non-empty list, got {v!r}")
    common = {k: v for k, v in config.items() if k not in ("kind", "grid", "base", "print")}
    axes = list(grid)
    cells = []
    for combo in itertools.product(*(grid[a] for a in axes)):
        cell = {"kind": kind, **common, **base, **dict(zip(axes, combo))}
        cells.append(cell)
    return cells


# --------------------------------------------------------------------------- the runner


def _cell_path(cells_dir: Path, cell: dict) -> Path:
    return cells_dir / f"{config_hash(cell)}.json"


def _load(path: Path):
    try:
        return json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return None  # missing or half-written (cannot happen with rename, but be safe)


def _save(path: Path, cell: dict, rows: list[dict], wall: float) -> None:
    from simulations.runners import to_jsonable

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    payload = {"cell": cell, "rows": to_jsonable(rows), "wall_time_s": wall}
    tmp.write_text(json.dumps(_json_safe(payload)) + "\n")
    os.replace(tmp, path)


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def _timed(cell_fn, cell):
    """Run one cell with single-threaded BLAS, on every backend: a multi-threaded BLAS sums in
    another order (enumeration cells at V = 4, T = 8 differed by ~1e-15 between the serial run,
    2 OpenBLAS threads, and joblib/Ray workers, 1 thread), so this is what makes serial, joblib
    and Ray rows bitwise identical. Parallelism comes from running cells side by side."""
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        rows = cell_fn(cell)
    return cell, rows, time.perf_counter() - t0


def _iter_joblib(cell_fn, todo, n_jobs):
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from par(delayed(_timed)(cell_fn, c) for c in todo)


def _iter_ray(cell_fn, todo, n_jobs):
    """Cells as ``ray.remote`` tasks, yielded as each finishes (so each is cached at once).

    Uses the Ray session already running in this process if there is one (``ray.init`` called
    by the user: a cluster, custom resources); else connects to the cluster named by the
    ``RAY_ADDRESS`` environment variable; else starts a private local instance with ``n_jobs``
    CPUs and no dashboard. A session started here is shut down when the sweep ends. When a cell
    raises (or on Ctrl-C), the cells already finished are still yielded (cached) first, the
    tasks not finished are cancelled, and the error propagates.
    """
    try:
        import ray
    except ImportError:
        raise ValueError(
            "backend 'ray' needs ray installed (pip install 'vespo-theory[ray]'); "
            "use --backend joblib to run locally"
        ) from None
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(
                address="local",
                num_cpus=(os.cpu_count() or 1) if n_jobs == -1 else n_jobs,
                include_dashboard=False,
                logging_level="WARNING",
            )
        started = True
    pending = []
    try:
        remote = ray.remote(_timed)
        fn_ref = ray.put(cell_fn)
        pending = [remote.remote(fn_ref, c) for c in todo]
        error = None
        while pending and error is None:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(done[0])
            except Exception as exc:  # a cell raised: keep the others that already finished
                error = exc
                break
            yield result
        if error is not None:
            done = []
            if pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            for ref in done:
                try:
                    result = ray.get(ref)
                except Exception:
                    continue
                yield result
            raise error
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _iter_serial(cell_fn, todo, n_jobs):
    for c in todo:
        yield _timed(cell_fn, c)


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    seen = set()
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    os.replace(tmp, path)


def run_grid(
    cell_fn: Callable[[dict], list[dict]],
    cells: Iterable[dict],
    out_dir: str | os.PathLike,
    *,
    backend: str = "joblib",
    n_jobs: int = 2,
    progress: bool = True,
    name: str = "results",
    config: dict | None = None,
) -> dict:
    """Run ``cell_fn`` over ``cells`` with per-cell caching; returns a summary dict.

    The summary has ``rows`` (all rows, cell order), ``csv`` and ``sidecar`` (paths),
    ``computed`` and ``cached`` (cell counts). A cell that raises stops the sweep after the
    cells already finished have been saved; rerunning resumes from there.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}")
    cells = [dict(c) for c in cells]
    if not cells:
        raise ValueError("cells is empty: nothing to run")
    out = Path(out_dir)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict[str, list] = {}
    todo = []
    for c in cells:
        rows = _load(_cell_path(cells_dir, c))
        if rows is None:
            todo.append(c)
        else:
            results[config_hash(c)] = rows
    n_cached = len(cells) - len(todo)
    runner = {"joblib": _iter_joblib, "ray": _iter_ray, "serial": _iter_serial}[backend]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=n_cached, desc="cells", unit="cell")
    try:
        if todo:
            for cell, rows, wall in runner(cell_fn, todo, n_jobs):
                _save(_cell_path(cells_dir, cell), cell, rows, wall)
                results[config_hash(cell)] = _load(_cell_path(cells_dir, cell))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    all_rows = [row for c in cells for row in results[config_hash(c)]]
    csv_path = out / f"{name}.csv"
    _write_csv(csv_path, all_rows)
    meta = run_metadata(config if config is not None else {"cells": cells})
    meta["n_cells"] = len(cells)
    meta["computed"], meta["cached"] = len(todo), n_cached
    meta["backend"] = backend
    sidecar = write_sidecar(out / f"{name}.json", meta, wall_time=time.perf_counter() - t0)
    return {
        "rows": all_rows,
        "csv": csv_path,
        "sidecar": sidecar,
        "computed": len(todo),
        "cached": n_cached,
    }
