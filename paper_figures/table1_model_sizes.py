"""Three model sizes at staleness N = 8 (arXiv 2602.10693 Table 1; claim S8), from the small-LM
lab's block s8 (``s8.summary.csv``, ``s8.paired.csv``): heldout_last_k of VESPO and hard clip
(the paper's GRPO) at d_model 32, 64 and 128, mean and 95 % Student-t interval over seeds, and
VESPO minus GRPO paired by seed per size. Written as Markdown and CSV, drawn as a forest plot.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import forest_plot as plot
from paper_figures._lab import table_arrays as arrays
from paper_figures._lab import table_rows as table
from paper_figures._lab import table_summary as summary

BLOCK = "s8"
#: Parameters of each width (2 layers; docs/lm.md, the S8 row of the study's table).
PARAMETERS = {32: 28_439, 64: 106_007, 128: 408_599}
CONFIG: dict = _lab.config(rules=["vespo", "ppo_clip"], d_model=[32, 64, 128], staleness=8)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "table1_model_sizes", "Table 1", "three model sizes at N = 8: VESPO and GRPO",
    "heldout_last_k of VESPO and hard clip (the paper's GRPO) at staleness N = 8 for three "
    "widths d_model = 32, 64, 128 (28,439 / 106,007 / 408,599 parameters, each with its own "
    "warm start), and VESPO minus GRPO paired by seed per width, where the paper's Table 1 "
    "compares models of about 1B to 30B parameters.",
    BLOCK, CONFIG, ("S8",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)

    def picks(summ):  # per width: VESPO and GRPO at N, each against VESPO of that width
        for d in cfg["d_model"]:
            at = {s["rule"]: s for s in summ if s["d_model"] == d}
            vespo = at["vespo"]["arm"] if "vespo" in at else None
            yield from ((at[rule], vespo) for rule in cfg["rules"] if rule in at)

    return _lab.forest_table(
        cfg, BLOCK, picks, _lab.rule_label_at("d_model", "d_model"), staleness=cfg["staleness"],
        extra=lambda s: {"d_model": s["d_model"], "parameters": PARAMETERS.get(s["d_model"], "")},
    )  # fmt: skip


def table_markdown(data: dict) -> str:
    return _lab.arm_rows_markdown(data, FIGURE, lambda r: {
        "d_model": r["d_model"],
        "parameters": f"{r['parameters']:,}" if r["parameters"] != "" else "?",
        "rule": _lab.rule_label(r["rule"])}, "VESPO - GRPO")  # fmt: skip


__all__ = ["CONFIG", "FAST", "FIGURE", "PARAMETERS", "arrays", "compute", "plot", "summary",
           "table", "table_markdown"]  # fmt: skip
