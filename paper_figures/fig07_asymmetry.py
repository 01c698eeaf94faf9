"""Asymmetry ablation (arXiv 2602.10693 Fig. 7; claim S4) from the small-LM lab's block s4:
VESPO's asymmetric (k, lam) = (2, 3) for A > 0 and (3, 2) for A < 0 against the symmetric
settings (2, 3) for both signs and (3, 2) for both signs, at staleness N = 64.

The paper's Fig. 7 shows (2, 3) for both signs unstable and (3, 2) for both slow to learn, for
a 30B model; every curve here is a column of ``s4.curves.csv``.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s4"
CONFIG: dict = _lab.config(
    rules=["vespo", "vespo_sym23", "vespo_sym32"],
    staleness=64,
    columns=["heldout_success", "reward", "ppo_kl", "entropy"],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig07_asymmetry", "Fig. 7",
    "asymmetry ablation: (2,3)/(3,2) against one pair for both signs",
    "Held-out success, training reward, ppo_kl and policy entropy against optimizer step for "
    "VESPO ((k, lam) = (2, 3) for A > 0, (3, 2) for A < 0) and the symmetric settings (2, 3) "
    "for both signs and (3, 2) for both signs, staleness N = 64.",
    BLOCK, CONFIG, ("S4",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(4, height_per_row=2.3, legend_cols=3)


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_at_staleness(dict(CONFIG if cfg is None else cfg), BLOCK)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
