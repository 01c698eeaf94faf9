"""Held-out success against step, one panel per rule, one curve per staleness N (arXiv
2602.10693 Fig. 3; claim S1), from the small-LM lab's block s1 (``s1.curves.csv``).

The paper's Fig. 3 shows, for a 30B model, the score of VESPO, GRPO, GSPO and SAPO against
step at N = 4 ... 64. Here each panel is one rule (hard clip = the paper's GRPO loss), each
curve one N (light = fresh, dark = stale), with the 95 % band over seeds, all read from the
study's table (:mod:`paper_figures._lab`).
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s1"
CONFIG: dict = _lab.config(
    rules=["vespo", "ppo_clip", "gspo", "sapo"],
    staleness=[1, 4, 8, 16, 32, 64],
    column="heldout_success",
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig03_reward_by_staleness", "Fig. 3",
    "held-out success against step, one panel per rule, one curve per staleness N",
    "Greedy held-out success (1,024 fixed prompts, evaluated every 32 steps) against optimizer "
    "step; one panel per rule (hard clip with group advantages is the paper's GRPO), one curve "
    "per staleness N (light = fresh, dark = stale; the legend gives each N's seeds).",
    BLOCK, CONFIG, ("S1",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(2, height_per_row=2.3, legend_cols=6)


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    present = [n for n in cfg["staleness"] if _lab.find_arms(curves, staleness=n)]
    if not present:
        raise ValueError(f"{BLOCK}: no arm at N in {cfg['staleness']}; arms: {', '.join(curves)}")
    panels, seeds = [], {}
    for rule in cfg["rules"]:
        lines = []
        for i, n in enumerate(present):
            for arm in _lab.find_arms(curves, rule=rule, staleness=n):
                c = _lab.shade(_lab.rule_colour(rule), i, len(present))
                lines.append(_lab.line(curves[arm], cfg["column"], None, c))
                seeds[n] = max(seeds.get(n, 0), curves[arm]["seeds"])
        missing = [n for n in cfg["staleness"] if not _lab.find_arms(curves, rule=rule,
                                                                       staleness=n)]  # fmt: skip
        panels.append({"title": _lab.rule_label(rule), "ylabel": _lab.YLABELS[cfg["column"]],
                       "lines": lines,
                       "note": f"not in the table: N = {', '.join(map(str, missing))}"
                       if missing and lines else ""})  # fmt: skip
    legend = [(_lab.shade("#555555", i, len(present)), "-",
               f"N = {n} ({_lab.nseeds(seeds.get(n, 0))})")
              for i, n in enumerate(present)]  # fmt: skip
    return {"panels": panels, "legend": legend, "config": cfg}


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
