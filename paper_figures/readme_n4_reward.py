"""Reward at staleness N = 4, every rule (the README figure of arXiv 2602.10693's code release;
claim S1), from the small-LM lab's block s1: training reward and held-out success against
step for every rule the table has at N = 4 (``s1.curves.csv``)."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s1"
CONFIG: dict = _lab.config(staleness=4, columns=["reward", "heldout_success"])
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "readme_n4_reward", "README figure",
    "reward at N = 4, every rule",
    "Training reward and greedy held-out success against optimizer step at staleness N = 4 "
    "for every rule of the block (VESPO, hard clip = the paper's GRPO, GSPO, SAPO).",
    BLOCK, CONFIG, ("S1",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(2, width=0.8, height_per_row=2.4)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    n = int(cfg["staleness"])
    rules = list(dict.fromkeys(curves[a]["rule"] for a in _lab.find_arms(curves, staleness=n)))
    first = ["vespo", "ppo_clip", "gspo", "sapo"]  # the paper's order, then any other rule
    rules.sort(key=lambda r: (first.index(r) if r in first else len(first), r))
    panels, rows = _lab.rules_grid(curves, rules, [n], cfg["columns"])
    return {"panels": panels, "rules": rules, "config": cfg}


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
