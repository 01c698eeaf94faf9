"""Average score per rule and staleness N (arXiv 2602.10693 Table 2; claim S1), from the small-LM
lab's block s1 (``s1.summary.csv``, ``s1.paired.csv``): the protocol metric heldout_last_k per
rule x N, mean and 95 % Student-t interval over seeds, and VESPO minus each rule paired by seed.
Written as Markdown (rules x N) and CSV (one row per arm), and drawn as a forest plot."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import forest_plot as plot
from paper_figures._lab import table_arrays as arrays
from paper_figures._lab import table_rows as table
from paper_figures._lab import table_summary as summary

BLOCK = "s1"
CONFIG: dict = _lab.config(
    rules=["vespo", "ppo_clip", "gspo", "sapo"],
    staleness=[1, 4, 8, 16, 32, 64],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "table2_staleness", "Table 2", "average score per rule and staleness N",
    "heldout_last_k per rule (rows; hard clip = the paper's GRPO) and staleness N (columns), "
    "where the paper's Table 2 averages benchmark scores of a 30B model.",
    BLOCK, CONFIG, ("S1",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_by_staleness_table(dict(CONFIG if cfg is None else cfg), BLOCK)


def table_markdown(data: dict) -> str:
    return _lab.rules_by_staleness_markdown(data, FIGURE)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary", "table",
           "table_markdown"]  # fmt: skip
