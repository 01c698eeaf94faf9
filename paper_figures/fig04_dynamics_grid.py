"""Training dynamics grid (arXiv 2602.10693 Fig. 4; claims S1, S2) from the small-LM lab's block
s1: rows staleness N in {1, 16, 64}; columns training reward, held-out success, response
length, ppo_kl, entropy and PG loss; VESPO, hard clip (GRPO), GSPO and SAPO overlaid.

The paper's Fig. 4 is the same grid for a 30B model; every curve here is a column of
``s1.curves.csv`` (mean over seeds, 95 % band), read by :mod:`paper_figures._lab`.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s1"
CONFIG: dict = _lab.config(
    rules=["vespo", "ppo_clip", "gspo", "sapo"],
    staleness=[1, 16, 64],
    columns=["reward", "heldout_success", "response_length", "ppo_kl", "entropy", "loss"],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig04_dynamics_grid", "Fig. 4",
    "dynamics grid: rows N; reward, held-out success, length, KL, entropy, PG loss; the four "
    "main rules",
    "Rows: staleness N = 1, 16, 64 (a row whose N is not in the table is left out); columns: "
    "training reward, greedy held-out success, response length, ppo_kl (k1 estimate of "
    "KL(pi_old || pi_theta)), policy entropy and PG loss against optimizer step; VESPO, hard "
    "clip (the paper's GRPO), GSPO and SAPO overlaid.",
    BLOCK, CONFIG, ("S1", "S2"),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(width=1.45, height_per_row=2.0)  # one column per config column


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    return {**_lab.rules_grid_data(cfg, BLOCK), "ncols": len(cfg["columns"]), "title_size": 8}


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
