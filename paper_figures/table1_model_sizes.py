"""Three model sizes at staleness N = 8 (arXiv 2602.10693 Table 1; claim S8), from the small-LM
lab's block s8 (``s8.summary.csv``, ``s8.paired.csv``): heldout_last_k of VESPO and hard clip
(the paper's GRPO) at d_model 32, 64 and 128, mean and 95 % Student-t interval over seeds, and
VESPO minus GRPO paired by seed per size. Written as Markdown and CSV, drawn as a forest plot.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._io import markdown_table, merge_config
from paper_figures._style import styled

BLOCK = "s8"
#: Parameters of each width (2 layers; docs/lm.md, the S8 row of the study's table).
PARAMETERS = {32: 28_439, 64: 106_007, 128: 408_599}
CONFIG: dict = {
    "tables": _lab.DEFAULT_TABLES,
    "rules": ["vespo", "ppo_clip"],
    "d_model": [32, 64, 128],
    "staleness": 8,
}
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "table1_model_sizes", "Table 1", "three model sizes at N = 8: VESPO and GRPO",
    "heldout_last_k of VESPO and hard clip (the paper's GRPO) at staleness N = 8 for three "
    "widths d_model = 32, 64, 128 (28,439 / 106,007 / 408,599 parameters, each with its own "
    "warm start), and VESPO minus GRPO paired by seed per width, where the paper's Table 1 "
    "compares models of about 1B to 30B parameters.",
    BLOCK, CONFIG, ("S8",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    n = int(cfg["staleness"])
    summ = [s for s in _lab.read_summary(cfg["tables"], BLOCK) if s["staleness"] == n]
    paired = _lab.read_paired(cfg["tables"], BLOCK)
    rows, forest = [], []
    for d in cfg["d_model"]:
        at = {s["rule"]: s for s in summ if s["d_model"] == d}
        for rule in cfg["rules"]:
            if rule not in at:
                continue
            s = at[rule]
            r = _lab.metric_row(s, d_model=d, parameters=PARAMETERS.get(d, ""))
            label = (f"{at['vespo']['arm']} - {s['arm']}"
                     if rule != "vespo" and "vespo" in at else "")  # fmt: skip
            rows.append(_lab.add_paired(r, paired, label, "vespo_minus"))
            forest.append(_lab.forest_point(r, f"{_lab.rule_label(rule)}, d_model = {d}"))
    if not rows:
        raise ValueError(f"{BLOCK}: no arm of rules {cfg['rules']} at N = {n}")
    return {"rows": rows, "forest": forest, "config": cfg}


def table(data: dict) -> list[dict]:
    return data["rows"]


def table_markdown(data: dict) -> str:
    rows = data["rows"]
    md = [{"d_model": r["d_model"], "parameters": f"{r['parameters']:,}"
           if r["parameters"] != "" else "?", "rule": _lab.rule_label(r["rule"]),
           "seeds": r["seeds"],
           "heldout_last_k [95 % CI]": _lab.ci_text(r["metric_mean"], r["metric_lo"],
                                                   r["metric_hi"]),
           "collapsed seeds": r["collapsed"],
           "VESPO - GRPO [95 % CI]": _lab.ci_text(r["vespo_minus_diff"], r["vespo_minus_lo"],
                                                  r["vespo_minus_hi"])
           if r["vespo_minus_outcome"] else "–",
           "outcome": r["vespo_minus_outcome"] or "–"} for r in rows]  # fmt: skip
    return _lab.md_caption(FIGURE.name, FIGURE.title, rows) + markdown_table(md)


def meta(data: dict) -> dict:
    return _lab.source_meta(data["config"], [BLOCK])


@styled
def plot(data: dict):
    return _lab.plot_forest(data, _lab.METRIC_LABEL)


def arrays(data: dict) -> dict:
    return _lab.table_arrays(data)


def summary(data: dict) -> list[dict]:
    return [dict(r) for r in data["rows"]]


__all__ = ["CONFIG", "FAST", "FIGURE", "PARAMETERS", "arrays", "compute", "plot", "summary",
           "table", "table_markdown"]  # fmt: skip
