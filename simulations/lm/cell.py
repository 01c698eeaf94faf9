"""The sweep cell of kind "lm": one RL run, summarised in one row of the comparison table.

A cell holds ``LMRunConfig`` fields plus these optional ones:

* ``cache_dir``: the cache folder (default :func:`vespo_theory.cache.cache_dir`:
  ``$VESPO_CACHE_DIR``, ``$XDG_CACHE_HOME/vespo-theory`` or ``~/.cache/vespo-theory``); it
  holds the warm start and, by default, the runs;
* ``runs_dir``: where the runs live (default ``<cache_dir>/lm_runs``);
* ``device``: default "cpu" (the comparison is defined on CPU for reproducibility).

Each run lives in ``runs_dir/<run key>/`` (:func:`simulations.lm.rl.run_key`: the config, the
recipe versions and torch's major.minor) with its own checkpoint, so an interrupted sweep
resumes inside a half-finished run too, and code that changes the numbers never reuses an old
run. torch is limited to one thread per cell (the sweep runs cells in parallel processes).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields
from pathlib import Path

__all__ = ["lm_cell", "run_row"]

_EXTRA = {"kind", "runs_dir", "cache_dir", "device"}


# the protocol's metric (docs/lm.md, "The paper's experiments"): held-out success averaged over
# the last LAST_K evaluations of a run
LAST_K = 4


def _mean(rows, col, fn=float):
    """Mean of a metrics column over its finite values; NaN when none (or when the run was
    written before the column existed)."""
    vals = [fn(r[col]) for r in rows if r.get(col) not in ("", "nan", None)]
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _max(rows, col):
    """Largest finite value of a metrics column; NaN when none (or the column is absent)."""
    vals = [float(r[col]) for r in rows if r.get(col) not in ("", "nan", None)]
    vals = [v for v in vals if math.isfinite(v)]
    return max(vals) if vals else math.nan


def run_row(cfg, summary: dict, metrics_csv: Path) -> dict:
    """The table row of one finished run: its config, collapse summary and run averages."""
    with open(metrics_csv) as fh:
        rows = list(csv.DictReader(fh))
    row = {k: v for k, v in asdict(cfg).items() if k != "model"}
    row.update(
        initial_heldout=summary["initial_heldout"],
        final_heldout=summary["final_heldout"],
        best_heldout=summary["best_heldout"],
        collapsed=summary["collapsed"],
        collapse_step=summary["collapse_step"],
        final_reward=float(rows[-1]["reward"]),
        mean_ess_frac=_mean(rows, "ess_frac"),
        mean_kl_sampler=_mean(rows, "kl_sampler"),
        mean_abs_log_w=_mean(rows, "log_w_mean", lambda s: abs(float(s))),
        max_log_w=max(float(r["log_w_max"]) for r in rows),
        mean_grad_norm=_mean(rows, "grad_norm"),
        mean_clip_frac=_mean(rows, "clip_frac"),
        mean_response_length=_mean(rows, "response_length"),
        heldout_last_k=_mean(
            [r for r in rows if r["heldout_success"] != ""][-LAST_K:], "heldout_success"
        ),
        mean_entropy=_mean(rows, "entropy"),
        final_entropy=_mean(rows[-1:], "entropy"),
        mean_ppo_kl=_mean(rows, "ppo_kl"),
        mean_zero_frac=_mean(rows, "zero_frac"),
        mean_coef_pos=_mean(rows, "coef_pos_mean"),
        mean_coef_neg=_mean(rows, "coef_neg_mean"),
        max_grad_norm=_max(rows, "grad_norm"),
        max_ppo_kl=_max(rows, "ppo_kl"),
        max_response_length=_max(rows, "response_length"),
    )
    return row


def lm_cell(cell: dict) -> list[dict]:
    """Run (or resume) the RL run of ``cell`` and return its one summary row."""
    import torch

    from simulations.config import normalize_keys
    from simulations.lm.rl import LMRunConfig, run, run_key
    from vespo_theory.cache import cache_dir

    names = {f.name for f in fields(LMRunConfig)}
    # the one key check of the package (unknown keys listed with the valid ones); no aliases
    normalize_keys(cell, sorted(names | _EXTRA), "an 'lm' cell", aliases={})
    cfg = LMRunConfig(**{k: v for k, v in cell.items() if k in names})
    torch.set_num_threads(1)
    cache = cache_dir(cell.get("cache_dir"))
    runs_dir = Path(cell["runs_dir"]) if cell.get("runs_dir") else cache / "lm_runs"
    run_dir = runs_dir / run_key(cfg)[:16]
    summary = run(cfg, run_dir, device=cell.get("device", "cpu"), progress=False, cache_dir=cache)
    return [run_row(cfg, summary, run_dir / "metrics.csv")]
