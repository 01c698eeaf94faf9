"""Average score per rule and staleness N (arXiv 2602.10693 Table 2; claim S1), from the small-LM
lab's block s1 (``s1.summary.csv``, ``s1.paired.csv``): the protocol metric heldout_last_k per
rule x N, mean and 95 % Student-t interval over seeds, and VESPO minus each rule paired by seed.
Written as Markdown (rules x N) and CSV (one row per arm), and drawn as a forest plot."""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._io import merge_config
from paper_figures._style import styled

BLOCK = "s1"
CONFIG: dict = {
    "tables": _lab.DEFAULT_TABLES,
    "rules": ["vespo", "ppo_clip", "gspo", "sapo"],
    "staleness": [1, 4, 8, 16, 32, 64],
}
FAST: dict = {}
TASK: dict = {}

FIGURE = _lab.lab_spec(
    "table2_staleness", "Table 2", "average score per rule and staleness N",
    "heldout_last_k per rule (rows; hard clip = the paper's GRPO) and staleness N (columns), "
    "where the paper's Table 2 averages benchmark scores of a 30B model.",
    BLOCK, CONFIG, ("S1",), kind="table", kinds=_lab.KINDS_TABLE,
)  # fmt: skip


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    summ = [s for s in _lab.read_summary(cfg["tables"], BLOCK)
            if all(s[k] == v for k, v in TASK.items())]  # fmt: skip
    paired = _lab.read_paired(cfg["tables"], BLOCK)
    vespo = {s["staleness"]: s["arm"] for s in summ if s["rule"] == "vespo"}
    rows, forest = [], []
    for n in cfg["staleness"]:
        for rule in cfg["rules"]:
            for s in summ:
                if s["rule"] == rule and s["staleness"] == n and s["mismatch"] == "none":
                    r = _lab.metric_row(s)
                    label = f"{vespo.get(n)} - {s['arm']}" if rule != "vespo" else ""
                    rows.append(_lab.add_paired(r, paired, label, "vespo_minus"))
                    forest.append(_lab.forest_point(r, f"{_lab.rule_label(rule)}, N = {n}"))
    if not rows:
        raise ValueError(f"{BLOCK}: no arm of rules {cfg['rules']} at N in {cfg['staleness']}")
    return {"rows": rows, "forest": forest, "config": cfg}


def table(data: dict) -> list[dict]:
    return data["rows"]


def table_markdown(data: dict) -> str:
    rows, cfg = data["rows"], data["config"]
    ns = [n for n in cfg["staleness"] if any(r["N"] == n for r in rows)]
    head = "| rule | " + " | ".join(f"N = {n}" for n in ns) + " |"
    out = [_lab.md_caption(FIGURE.name, FIGURE.title, rows) + head, "|---|" + "---|" * len(ns)]
    for rule in cfg["rules"]:
        cells = {r["N"]: _lab.ci_text(r["metric_mean"], r["metric_lo"], r["metric_hi"])
                 for r in rows if r["rule"] == rule}  # fmt: skip
        if cells:
            out.append(f"| {_lab.rule_label(rule)} | "
                       + " | ".join(cells.get(n, "–") for n in ns) + " |")  # fmt: skip
    out += [
        "",
        "VESPO minus each rule, paired by seed (95 % t interval; outcome against the "
        "expected sign A > B):",
        "",
        "| comparison | N | difference | outcome |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["vespo_minus_outcome"]:
            ci = _lab.ci_text(r["vespo_minus_diff"], r["vespo_minus_lo"], r["vespo_minus_hi"])
            out.append(f"| VESPO - {_lab.rule_label(r['rule'])} | {r['N']} | {ci} | "
                       f"{r['vespo_minus_outcome']} |")  # fmt: skip
    return "\n".join(out) + "\n"


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
