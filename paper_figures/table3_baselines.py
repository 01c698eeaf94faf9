"""VESPO against TOPR, CISPO, BAPO and VCPO at staleness N = 8 (arXiv 2602.10693 Table 3; claim
S6), from the small-LM lab's block s6 (``s6.summary.csv``, ``s6.paired.csv``): heldout_last_k
per rule, mean and 95 % Student-t interval over seeds, and VESPO minus each rule paired by
seed. Written as Markdown and CSV, and drawn as a forest plot."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import forest_plot as plot
from paper_figures._lab import table_arrays as arrays
from paper_figures._lab import table_rows as table
from paper_figures._lab import table_summary as summary

BLOCK = "s6"
CONFIG: dict = _lab.config(rules=["vespo", "topr", "cispo", "bapo", "vcpo"], staleness=8)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "table3_baselines", "Table 3", "VESPO against TOPR, CISPO, BAPO and VCPO at N = 8",
    "heldout_last_k per rule at staleness N = 8 (every rule at its registry defaults; VCPO "
    "with its off-policy optimal baseline) and VESPO minus each rule paired by seed, where the "
    "paper's Table 3 reports benchmark scores of a 30B model.",
    BLOCK, CONFIG, ("S6",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)

    def picks(summ):  # every rule at N, against VESPO at N
        vespo = next((s["arm"] for s in summ if s["rule"] == "vespo"), None)
        return [(s, vespo) for rule in cfg["rules"] for s in summ if s["rule"] == rule]

    return _lab.forest_table(cfg, BLOCK, picks, _lab.rule_label_at("staleness", "N"),
                             staleness=cfg["staleness"])  # fmt: skip


def table_markdown(data: dict) -> str:
    return _lab.arm_rows_markdown(
        data, FIGURE, lambda r: {"rule": _lab.rule_label(r["rule"]), "N": r["N"]}, "VESPO - rule"
    )


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary", "table",
           "table_markdown"]  # fmt: skip
