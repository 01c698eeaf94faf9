"""GRPO's entropy collapse (arXiv 2602.10693 Fig. 8; claim S2) in the small-LM lab's block s1: the
signal against step at staleness N = 1 and N = 64, read from ``s1.curves.csv``
(:mod:`paper_figures._lab_failure`)."""

from __future__ import annotations

from paper_figures import _lab, _lab_failure
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._lab_failure import BLOCK, plot

CONFIG: dict = _lab_failure.config(["ppo_clip"], ["entropy", "heldout_success"])
FAST: dict = {}

FIGURE = _lab_failure.spec(
    "fig08_grpo_failure", "Fig. 8",
    "GRPO's failure signal: hard clip's entropy at two staleness levels",
    "Policy entropy (the signal) and greedy held-out success against optimizer step for hard clip "
    "with group advantages (the paper's GRPO) at staleness N = 1 and N = 64 (light: N = 1, dark: N"
    " = 64). The paper's Fig. 8 shows GRPO's entropy collapsing at high staleness on a 30B model "
    "after hundreds of steps; 256 steps of a small LM may not get there.",
    CONFIG,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab_failure.signal_panels(dict(CONFIG if cfg is None else cfg))


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
