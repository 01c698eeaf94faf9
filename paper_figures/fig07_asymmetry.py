"""Asymmetry ablation (arXiv 2602.10693 Fig. 7; claim S4) from the small-LM lab's block s4:
VESPO's asymmetric (k, lam) = (2, 3) for A > 0 and (3, 2) for A < 0 against the symmetric
settings (2, 3) for both signs and (3, 2) for both signs, at staleness N = 64.

The paper's Fig. 7 shows (2, 3) for both signs unstable and (3, 2) for both slow to learn, for
a 30B model; every curve here is a column of ``s4.curves.csv``.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._io import merge_config
from paper_figures._style import styled

BLOCK = "s4"
CONFIG: dict = {
    "tables": _lab.DEFAULT_TABLES,
    "rules": ["vespo", "vespo_sym23", "vespo_sym32"],
    "staleness": 64,
    "columns": ["heldout_success", "reward", "ppo_kl", "entropy"],
}
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig07_asymmetry", "Fig. 7",
    "asymmetry ablation: (2,3)/(3,2) against one pair for both signs",
    "Held-out success, training reward, ppo_kl and policy entropy against optimizer step for "
    "VESPO ((k, lam) = (2, 3) for A > 0, (3, 2) for A < 0) and the symmetric settings (2, 3) "
    "for both signs and (3, 2) for both signs, staleness N = 64.",
    BLOCK, CONFIG, ("S4",),
)  # fmt: skip


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    n = int(cfg["staleness"])
    _lab.need(curves, _lab.find_arms(curves, staleness=n), f"N = {n}")
    panels = []
    for col in cfg["columns"]:
        lines = []
        for rule in cfg["rules"]:
            for a in _lab.find_arms(curves, rule=rule, staleness=n):
                lines.append(_lab.line(curves[a], col, f"{_lab.rule_label(rule)}, "
                                       f"{_lab.nseeds(curves[a]['seeds'])}",
                                       _lab.rule_colour(rule)))  # fmt: skip
        panels.append({"title": f"{_lab.TITLES[col]}, N = {n}", "ylabel": _lab.YLABELS[col],
                       "lines": lines})  # fmt: skip
    return {"panels": panels, "config": cfg}


def meta(data: dict) -> dict:
    return _lab.source_meta(data["config"], [BLOCK])


@styled
def plot(data: dict):
    return _lab.plot_panels(data, ncols=4, height_per_row=2.3, legend_cols=3)


def arrays(data: dict) -> dict:
    return _lab.curve_arrays(data)


def summary(data: dict) -> list[dict]:
    return _lab.curve_summary(data)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
