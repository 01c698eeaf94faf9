"""pass@k on the second task domain (arXiv 2602.10693 Table 4; claim S7), here held-out success on
the execution-rewarded task ``stack`` from the small-LM lab's block s7 (``s7.summary.csv``,
``s7.paired.csv``): the protocol metric heldout_last_k per rule x N, mean and 95 % Student-t
interval over seeds, and VESPO minus each rule paired by seed. Written as Markdown (rules x N)
and CSV (one row per arm), and drawn as a forest plot."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import forest_plot as plot
from paper_figures._lab import table_arrays as arrays
from paper_figures._lab import table_rows as table
from paper_figures._lab import table_summary as summary

BLOCK = "s7"
CONFIG: dict = _lab.config(rules=["vespo", "ppo_clip", "gspo", "sapo"], staleness=[1, 16, 64])
FAST: dict = {}
TASK: dict = {"task": "stack"}

FIGURE = _lab.lab_spec(
    "table4_second_domain", "Table 4", "the second task domain (code in the paper): score per rule"
    " and N",
    "heldout_last_k per rule (rows; hard clip = the paper's GRPO) and staleness N (columns), "
    "on the task 'stack' (a postfix program, rewarded by executing it), where the paper's Table 4 "
    "reports pass@k of code from a 30B model.",
    BLOCK, CONFIG, ("S7",), kind="table", kinds=_lab.KINDS_TABLE, task="stack",
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_by_staleness_table(dict(CONFIG if cfg is None else cfg), BLOCK, **TASK)


def table_markdown(data: dict) -> str:
    return _lab.rules_by_staleness_markdown(data, FIGURE)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary", "table",
           "table_markdown"]  # fmt: skip
