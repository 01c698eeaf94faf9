"""VESPO against TOPR, CISPO, BAPO and VCPO at staleness N = 8 (arXiv 2602.10693 Table 3; claim
S6), from the small-LM lab's block s6 (``s6.summary.csv``, ``s6.paired.csv``): heldout_last_k
per rule, mean and 95 % Student-t interval over seeds, and VESPO minus each rule paired by
seed. Written as Markdown and CSV, and drawn as a forest plot."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._io import markdown_table, merge_config
from paper_figures._style import styled

BLOCK = "s6"
CONFIG: dict = {
    "tables": _lab.DEFAULT_TABLES,
    "rules": ["vespo", "topr", "cispo", "bapo", "vcpo"],
    "staleness": 8,
}
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "table3_baselines", "Table 3", "VESPO against TOPR, CISPO, BAPO and VCPO at N = 8",
    "heldout_last_k per rule at staleness N = 8 (every rule at its registry defaults; VCPO "
    "with its off-policy optimal baseline) and VESPO minus each rule paired by seed, where the "
    "paper's Table 3 reports benchmark scores of a 30B model.",
    BLOCK, CONFIG, ("S6",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    n = int(cfg["staleness"])
    summ = [s for s in _lab.read_summary(cfg["tables"], BLOCK) if s["staleness"] == n]
    paired = _lab.read_paired(cfg["tables"], BLOCK)
    vespo = next((s["arm"] for s in summ if s["rule"] == "vespo"), None)
    rows, forest = [], []
    for rule in cfg["rules"]:
        for s in summ:
            if s["rule"] == rule:
                r = _lab.metric_row(s)
                label = f"{vespo} - {s['arm']}" if rule != "vespo" else ""
                rows.append(_lab.add_paired(r, paired, label, "vespo_minus"))
                forest.append(_lab.forest_point(r, f"{_lab.rule_label(rule)}, N = {n}"))
    if not rows:
        raise ValueError(f"{BLOCK}: no arm of rules {cfg['rules']} at N = {n}")
    return {"rows": rows, "forest": forest, "config": cfg}


def table(data: dict) -> list[dict]:
    return data["rows"]


def table_markdown(data: dict) -> str:
    rows = data["rows"]
    md = [{"rule": _lab.rule_label(r["rule"]), "N": r["N"], "seeds": r["seeds"],
           "heldout_last_k [95 % CI]": _lab.ci_text(r["metric_mean"], r["metric_lo"],
                                                   r["metric_hi"]),
           "collapsed seeds": r["collapsed"],
           "VESPO - rule [95 % CI]": _lab.ci_text(r["vespo_minus_diff"], r["vespo_minus_lo"],
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


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary", "table",
           "table_markdown"]  # fmt: skip
