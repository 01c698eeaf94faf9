"""VESPO against TOPR, CISPO, BAPO and VCPO (arXiv 2602.10693 Fig. 11; claim S6) from the
small-LM lab's block s6: held-out success and training reward against step at staleness
N = 8 (the paper's setting) and N = 64, every curve a column of ``s6.curves.csv``."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s6"
CONFIG: dict = _lab.config(
    rules=["vespo", "topr", "cispo", "bapo", "vcpo"],
    staleness=[8, 64],
    columns=["heldout_success", "reward"],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig11_baselines", "Fig. 11",
    "TOPR, CISPO, BAPO and VCPO against VESPO",
    "Greedy held-out success and training reward against optimizer step for VESPO, TOPR, "
    "CISPO, BAPO and VCPO (VCPO's advantages use its off-policy optimal baseline), rows "
    "staleness N = 8 (the paper's setting) and N = 64 (a row whose N is not in the table is "
    "left out); every rule at its registry defaults.",
    BLOCK, CONFIG, ("S6",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(height_per_row=2.3, legend_cols=5)  # one column per config column


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_grid_data(dict(CONFIG if cfg is None else cfg), BLOCK)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
