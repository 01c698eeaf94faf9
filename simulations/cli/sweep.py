"""``vespo sweep CONFIG --out DIR``: a resumable grid of simulations to one tidy CSV + sidecar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vespo_theory.cli.common import format_table, usable_out_dir

HELP = "run a grid of simulations (JSON config) with per-cell caching; resumes when rerun"

_DEFAULT_PRINT = [
    "T",
    "staleness",
    "rule",
    "method",
    "E_W2",
    "E_phi",
    "E_phi2",
    "var_trace",
    "bias_norm",
]


def add_arguments(p) -> None:
    p.add_argument("config", help="JSON sweep config (see configs/sweep_example.json)")
    p.add_argument("--out", required=True, help="output folder (cells/, results.csv, .json)")
    p.add_argument("--backend", choices=["joblib", "ray", "serial"], default="joblib")
    p.add_argument("--n-jobs", type=int, default=2, help="parallel cells (default 2, -1 = all)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of a different sweep already in --out (cached cells are kept)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (it is shown only when stderr is a terminal)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the result table")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    return "-" if v is None else str(v)


def _note(text: str) -> None:
    print(f"vespo sweep: note: {text}", file=sys.stderr)


def run(args) -> int:
    from simulations.cli.progress import progress_enabled
    from simulations.config import KEY_ALIASES
    from simulations.sweep import CELL_KINDS, expand_grid, run_grid

    path = Path(args.config)
    try:
        config = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read sweep config {args.config!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"sweep config {args.config!r} is not valid JSON: {exc}") from None
    notes: list[str] = []
    cells = expand_grid(config, notes=notes.append)
    out = usable_out_dir(args.out, "--out")
    for text in notes:  # only once the input is accepted: an error stays one line
        _note(text)
    res = run_grid(
        CELL_KINDS[config["kind"]],
        cells,
        out,
        backend=args.backend,
        n_jobs=args.n_jobs,
        progress=not args.no_progress and progress_enabled(json_output=False),
        config=config,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        cols = config.get("print", _DEFAULT_PRINT)
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise ValueError(f"sweep config 'print' must be a list of column names, got {cols!r}")
        cols = [KEY_ALIASES.get(c, c) for c in cols]
        rows = [{c: _fmt(r.get(c)) for c in cols} for r in res["rows"]]
        print(format_table(rows, cols))
    print(
        f"\n{len(cells)} cells ({res['computed']} computed, {res['cached']} from cache) -> "
        f"{res['csv']} (+ sidecar {res['sidecar'].name})"
    )
    return 0
