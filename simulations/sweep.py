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

Cache key: the cell config and :data:`RECIPE_VERSION` (bumped whenever a change of the
simulators changes their numbers), so a stale cache cannot reproduce old numbers; every cell
file also records the code that computed it (git SHA, package version). An ``out_dir`` made by a
different sweep config is refused unless ``overwrite=True``.

Processes: joblib workers watch their parent and exit when it dies (a SIGKILLed sweep leaves no
workers computing on), joblib's memmapping is off (cells are small; no /dev/shm folders), and a
SIGTERM during a sweep unwinds like Ctrl-C (finished cells saved, workers stopped).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from simulations.config import (
    BANDIT_RUN_FIELDS,
    ARConfig,
    BanditConfig,
    RunOptions,
    normalize_keys,
)
from vespo_theory.cli.common import usable_out_dir
from vespo_theory.jsonio import dump_json
from vespo_theory.provenance import (
    config_hash,
    git_sha,
    package_versions,
    run_metadata,
    write_sidecar,
)

__all__ = [
    "run_grid",
    "expand_grid",
    "CELL_KINDS",
    "CELL_KEYS",
    "ar_cell",
    "bandit_cell",
    "BACKENDS",
    "RECIPE_VERSION",
    "cell_key",
]

BACKENDS = ("joblib", "ray", "serial")

#: Part of every cell's cache key. Bump it in the same commit as any change that changes the
#: numbers a cell produces (estimators, samplers, models, lattice), so that old cached cells
#: are recomputed instead of silently reused. 2: log-space ESS, renamed keys (staleness,
#: mismatch), finite-reward checks. 3: E[W], E[W^2] finite up to the float64 limit (were inf
#: from log 709 on), the Monte Carlo se of E[W] through log W. 4: context-free cells use the
#: exact multinomial method (was the lattice off its lattice), k-hat thresholds, method labels.
RECIPE_VERSION = 4

#: Valid keys of a cell per kind (config fields + run options); "lm" cells check their own.
CELL_KEYS: dict[str, list[str]] = {
    "ar": ["kind", *ARConfig.field_names(), *RunOptions.field_names()],
    "bandit": ["kind", *BanditConfig.field_names(), *BANDIT_RUN_FIELDS],
}


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


def _options(d: dict, names) -> RunOptions:
    return RunOptions(**{k: d[k] for k in names if k in d})


def ar_cell(cell: dict) -> list[dict]:
    """A cell of kind "ar": ARConfig fields + the run options (``rules``, ``method``, ``n_mc``,
    ``max_sequences``, ``grid_points``); names resolved to Rule objects here, once."""
    from simulations.runners import simulate_ar

    d = normalize_keys(cell, CELL_KEYS["ar"], "an 'ar' cell")
    cfg = ARConfig(**{k: d[k] for k in ARConfig.field_names() if k in d})
    opts = _options(d, RunOptions.field_names())
    res = simulate_ar(
        cfg,
        opts.rule_objects(),
        method=opts.method,
        n_mc=opts.n_mc,
        max_sequences=opts.max_sequences,
        grid_points=opts.grid_points,
        max_count_vectors=opts.max_count_vectors,
    )
    base = {k: v for k, v in d.items() if k != "rules" and not isinstance(v, list)}
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
    """A cell of kind "bandit": BanditConfig fields + ``rules``, ``n_mc``."""
    from simulations.bandits import simulate_bandit

    d = normalize_keys(cell, CELL_KEYS["bandit"], "a 'bandit' cell")
    cfg = BanditConfig(**{k: d[k] for k in BanditConfig.field_names() if k in d})
    opts = _options(d, BANDIT_RUN_FIELDS)
    res = simulate_bandit(cfg, opts.rule_objects(), n_mc=opts.n_mc)
    base = {k: v for k, v in d.items() if not isinstance(v, list)}
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


def expand_grid(config: dict, *, notes=None) -> list[dict]:
    """Cells of a sweep config: the product of ``grid`` axes merged over ``base``.

    Format: ``{"kind": "ar", "base": {...}, "grid": {"T": [..], "staleness": [..], "seed":
    [..]}, ...}``; ``grid`` may also be a list of such objects, whose products are taken one
    after the other (their union, in order; a cell that two of them make is run once), for
    designs that are not one product (e.g. a rule with one correction only). Every other
    top-level key (``rules``, ``method``, ``n_mc``, ...) is copied into each cell; ``print``
    (the columns ``vespo sweep`` shows) is not. Grid axes vary fastest from the last one. For
    the kinds of :data:`CELL_KEYS` every key is checked here (an unknown one is refused with
    the list of valid keys), old spellings (``N``, ``precision``) are renamed (``notes``, a
    callable, is told once), and ``rules`` must name
    at least one rule: a list, or one string of names separated by commas.
    """
    if not isinstance(config, dict):
        raise TypeError(f"a sweep config must be a JSON object, got {type(config).__name__}")
    kind = config.get("kind")
    if kind not in CELL_KINDS:
        raise ValueError(
            f"sweep config 'kind' must be one of {', '.join(CELL_KINDS)}; got {kind!r}"
        )
    grid = config.get("grid", {})
    if isinstance(grid, list):
        if not grid:
            raise ValueError("sweep config 'grid': a list of grids must not be empty")
        cells, seen = [], set()
        for i, g in enumerate(grid):
            if not isinstance(g, dict):
                raise TypeError(f"sweep config 'grid'[{i}] must be a JSON object, got {g!r}")
            for cell in expand_grid({**config, "grid": g}, notes=notes):
                k = json.dumps(cell, sort_keys=True)
                if k not in seen:
                    seen.add(k)
                    cells.append(cell)
        return cells
    base = config.get("base", {})
    if not isinstance(grid, dict) or not isinstance(base, dict):
        raise TypeError("sweep config 'grid' and 'base' must be JSON objects")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"grid axis {k!r} must be a non-empty list, got {v!r}")
    common = {k: v for k, v in config.items() if k not in ("kind", "grid", "base", "print")}
    if kind in CELL_KEYS:
        valid = [k for k in CELL_KEYS[kind] if k != "kind"]
        renamed: list = []
        common = normalize_keys(common, valid, "the sweep config", renamed=renamed)
        base = normalize_keys(base, valid, "the sweep config's 'base'", renamed=renamed)
        grid = normalize_keys(grid, valid, "the sweep config's 'grid'", renamed=renamed)
        if renamed and notes is not None:
            pairs = ", ".join(sorted({f"{a!r} -> {b!r}" for a, b in renamed}))
            notes(f"sweep config: old key names renamed ({pairs}); please update the config")
        for where in (common, base):
            if "rules" in where:  # [] and "vespo" read letter by letter were silent traps
                where["rules"] = list(RunOptions(rules=where["rules"]).rules)
        if "rules" in grid:
            grid["rules"] = [list(RunOptions(rules=r).rules) for r in grid["rules"]]
    axes = list(grid)
    cells = []
    for combo in itertools.product(*(grid[a] for a in axes)):
        cell = {"kind": kind, **common, **base, **dict(zip(axes, combo))}
        cells.append(cell)
    return cells


# --------------------------------------------------------------------------- the runner


def _recipe(cell: dict):
    """What a cell's numbers depend on besides its config: :data:`RECIPE_VERSION`, and for an
    "lm" cell also the LM code's recipe versions and torch's major.minor
    (:func:`simulations.lm.rl.recipe`), so a rerun into the same ``--out`` after a change of the
    LM code recomputes instead of handing back old rows."""
    if cell.get("kind") == "lm":
        from simulations.lm.rl import recipe

        return {"sweep": RECIPE_VERSION, "lm": recipe()}
    return RECIPE_VERSION


def cell_key(cell: dict) -> str:
    """The cache key of a cell: its config and its recipe (:func:`_recipe`)."""
    return config_hash({"recipe": _recipe(cell), "cell": cell})


def _cell_path(cells_dir: Path, cell: dict) -> Path:
    return cells_dir / f"{cell_key(cell)}.json"


def _load(path: Path):
    try:
        payload = json.loads(path.read_text())
        if payload.get("recipe") != RECIPE_VERSION:
            return None  # computed by other code: recompute (the key makes this rare)
        return payload["rows"]
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # missing or half-written (cannot happen with rename, but be safe)


def _code_version() -> dict:
    """What computed a cell: the git SHA of the checkout and the package version."""
    return {"git_sha": git_sha(), "vespo_theory": package_versions().get("vespo-theory")}


def _save(path: Path, cell: dict, rows: list[dict], wall: float, code: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    payload = {
        "cell": cell,
        "rows": rows,
        "wall_time_s": wall,
        "recipe": RECIPE_VERSION,
        "code": code,
    }
    tmp.write_text(dump_json(payload, indent=None) + "\n")
    os.replace(tmp, path)


_WATCHDOG: list = []


def _exit_with_parent(parent_pid: int | None, poll_s: float = 0.2) -> None:
    """In a worker process: a daemon thread that ends the process (``os._exit``) as soon as its
    parent (the sweep, ``parent_pid``) is gone, so a SIGKILLed sweep leaves no worker computing
    on and competing with the resumed run. A dead parent is seen as a change of ``getppid()``
    (the orphan is re-parented at once, even while the parent is a zombie). No-op in the main
    process and when already running."""
    if parent_pid is None or os.getpid() == parent_pid or _WATCHDOG:
        return
    ppid = os.getppid()
    direct = ppid == parent_pid

    def watch() -> None:
        while True:
            if os.getppid() != ppid:
                os._exit(1)
            if not direct:  # not our parent (another process tree): poll the sweep itself
                try:
                    os.kill(parent_pid, 0)
                except ProcessLookupError:
                    os._exit(1)
                except PermissionError:
                    pass
            time.sleep(poll_s)

    t = threading.Thread(target=watch, name="vespo-parent-watchdog", daemon=True)
    t.start()
    _WATCHDOG.append(t)


def _timed(cell_fn, cell, parent_pid: int | None = None):
    """Run one cell with single-threaded BLAS, on every backend: a multi-threaded BLAS sums in
    another order (enumeration cells at V = 4, T = 8 differed by ~1e-15 between the serial run,
    2 OpenBLAS threads, and joblib/Ray workers, 1 thread), so this is what makes serial, joblib
    and Ray rows bitwise identical. Parallelism comes from running cells side by side.
    ``parent_pid``: the sweep's pid, for a worker to exit when it dies (joblib)."""
    from threadpoolctl import threadpool_limits

    _exit_with_parent(parent_pid)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        rows = cell_fn(cell)
    return cell, rows, time.perf_counter() - t0


def _iter_joblib(cell_fn, todo, n_jobs):
    """Local processes (loky). ``max_nbytes=None``: no memmapping of arguments (cells are small
    dicts), so no /dev/shm/joblib_memmapping_folder_* is made that a killed run could leave."""
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered", max_nbytes=None)
    gen = par(delayed(_timed)(cell_fn, c, os.getpid()) for c in todo)
    try:
        yield from gen
    finally:
        gen.close()  # on an error or interrupt: joblib stops the pending cells


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


class _Sigterm:
    """While active (main thread only): SIGTERM raises KeyboardInterrupt, so a terminated sweep
    unwinds like Ctrl-C (finished cells are saved, joblib stops its workers, temporary folders
    are removed) instead of dying on the spot."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


_MANIFEST = "sweep_config.json"


def _cells_hash(cells: list) -> str:
    """The identity of a sweep: its set of cells (order and key order do not matter)."""
    return config_hash(sorted(config_hash(c) for c in cells))


def _check_same_sweep(out: Path, cells: list, name: str, overwrite: bool) -> None:
    """Refuse an ``out`` folder that holds another sweep (different cells: the expanded config,
    so a reordered or re-spelled config of the same cells is the same sweep, and ``print`` does
    not count), unless ``overwrite``; then record the cells in ``out/sweep_config.json``."""
    want = _cells_hash(cells)
    have = None
    manifest = out / _MANIFEST
    try:
        if manifest.exists():
            have = json.loads(manifest.read_text()).get("cells_hash")
        elif (out / f"{name}.json").exists():  # a sweep written before the manifest existed
            old = json.loads((out / f"{name}.json").read_text()).get("config") or {}
            old_cells = old["cells"] if "cells" in old else expand_grid(old)
            have = _cells_hash(old_cells)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        have = "unreadable"
    if have is not None and have != want and not overwrite:
        raise ValueError(
            f"--out {str(out)!r} holds a sweep with a different config; use a new --out folder, "
            "the same config to resume, or --overwrite to replace its results"
        )
    manifest.write_text(dump_json({"cells_hash": want, "cells": cells}) + "\n")


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
    overwrite: bool = False,
) -> dict:
    """Run ``cell_fn`` over ``cells`` with per-cell caching; returns a summary dict.

    The summary has ``rows`` (all rows, cell order), ``csv`` and ``sidecar`` (paths),
    ``computed`` and ``cached`` (cell counts). A cell that raises stops the sweep after the
    cells already finished have been saved; rerunning resumes from there. ``out_dir`` made by a
    different ``config`` (or, without one, different cells) is refused unless ``overwrite``
    (the results are then replaced; cached cells are kept, their key is their own config).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}")
    cells = [dict(c) for c in cells]
    if not cells:
        raise ValueError("cells is empty: nothing to run")
    out = usable_out_dir(out_dir, "--out")
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    _check_same_sweep(out, cells, name, overwrite)
    t0 = time.perf_counter()
    code = _code_version()
    results: dict[str, list] = {}
    todo = []
    for c in cells:
        rows = _load(_cell_path(cells_dir, c))
        if rows is None:
            todo.append(c)
        else:
            results[cell_key(c)] = rows
    n_cached = len(cells) - len(todo)
    runner = {"joblib": _iter_joblib, "ray": _iter_ray, "serial": _iter_serial}[backend]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=n_cached, desc="cells", unit="cell", file=sys.stderr)
    try:
        if todo:
            with _Sigterm():
                it = runner(cell_fn, todo, n_jobs)
                try:
                    for cell, rows, wall in it:
                        _save(_cell_path(cells_dir, cell), cell, rows, wall, code)
                        results[cell_key(cell)] = _load(_cell_path(cells_dir, cell))
                        if bar is not None:
                            bar.update(1)
                finally:
                    it.close()
    finally:
        if bar is not None:
            bar.close()
    all_rows = [row for c in cells for row in results[cell_key(c)]]
    csv_path = out / f"{name}.csv"
    _write_csv(csv_path, all_rows)
    meta = run_metadata(config if config is not None else {"cells": cells})
    meta["n_cells"] = len(cells)
    meta["computed"], meta["cached"] = len(todo), n_cached
    meta["backend"] = backend
    meta["recipe_version"] = RECIPE_VERSION
    sidecar = write_sidecar(out / f"{name}.json", meta, wall_time=time.perf_counter() - t0)
    return {
        "rows": all_rows,
        "csv": csv_path,
        "sidecar": sidecar,
        "computed": len(todo),
        "cached": n_cached,
    }
