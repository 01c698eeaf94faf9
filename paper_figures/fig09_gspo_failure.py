"""GSPO's response-length spike (arXiv 2602.10693 Fig. 9; claim S2) in the small-LM lab's block
s1: the signal against step at staleness N = 1 and N = 64, read from ``s1.curves.csv``
(:mod:`paper_figures._lab_failure`)."""

from __future__ import annotations

from paper_figures import _lab, _lab_failure
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._lab_failure import BLOCK, plot

CONFIG: dict = _lab_failure.config(["gspo"], ["response_length", "heldout_success"])
FAST: dict = {}

FIGURE = _lab_failure.spec(
    "fig09_gspo_failure", "Fig. 9",
    "GSPO's failure signal: response length at two staleness levels",
    "Response length (the signal) and greedy held-out success against optimizer step for GSPO at "
    "staleness N = 1 and N = 64 (light: N = 1, dark: N = 64). The paper's Fig. 9 shows GSPO's "
    "response length spiking before a collapse on a 30B model; the lab's task caps answers at a "
    "few dozen tokens.",
    CONFIG,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab_failure.signal_panels(dict(CONFIG if cfg is None else cfg))


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
