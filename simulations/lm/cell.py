"""The sweep cell of kind "lm": one RL run, summarised in one row of the comparison table.

A cell holds ``LMRunConfig`` fields plus optional ``runs_dir`` (default ``outputs/lm_runs``)
and ``device`` (default "cpu": the comparison is defined on CPU for reproducibility). Each run
lives in ``runs_dir/<config hash>/`` with its own checkpoint, so an interrupted sweep resumes
inside a half-finished run too. torch is limited to one thread per cell (the sweep runs cells
in parallel processes).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields
from pathlib import Path

__all__ = ["lm_cell", "run_row"]

_EXTRA = {"kind", "runs_dir", "device"}


def _mean(rows, col, fn=float):
    vals = [fn(r[col]) for r in rows if r[col] not in ("", "nan")]
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


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
    )
    return row


def lm_cell(cell: dict) -> list[dict]:
    """Run (or resume) the RL run of ``cell`` and return its one summary row."""
    import torch

    from simulations.lm.rl import LMRunConfig, run
    from vespo_theory.provenance import config_hash

    names = {f.name for f in fields(LMRunConfig)}
    unknown = sorted(set(cell) - names - _EXTRA)
    if unknown:
        raise ValueError(
            f"unknown field(s) {unknown} in an 'lm' cell; valid: LMRunConfig fields and "
            f"{', '.join(sorted(_EXTRA - {'kind'}))}"
        )
    cfg = LMRunConfig(**{k: v for k, v in cell.items() if k in names})
    torch.set_num_threads(1)
    run_dir = Path(cell.get("runs_dir", "outputs/lm_runs")) / config_hash(asdict(cfg))[:16]
    summary = run(cfg, run_dir, device=cell.get("device", "cpu"), progress=False)
    return [run_row(cfg, summary, run_dir / "metrics.csv")]
