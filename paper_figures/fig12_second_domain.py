"""The second task domain (arXiv 2602.10693 Fig. 12; claim S7) from the small-LM lab's block s7:
held-out success against step on the execution-rewarded task ``stack``, one panel per
staleness N, VESPO, hard clip (GRPO), GSPO and SAPO overlaid (``s7.curves.csv``).

The paper's Fig. 12 is code generation with unit tests (pass@k) on a 30B model; ``stack`` asks
for a postfix program and rewards it by executing it, with VESPO's (k, lam) unchanged.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._style import styled

BLOCK = "s7"
CONFIG: dict = _lab.config(
    rules=["vespo", "ppo_clip", "gspo", "sapo"],
    staleness=[1, 16, 64],
    columns=["heldout_success"],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig12_second_domain", "Fig. 12",
    "the second task domain: an execution-rewarded task (code in the paper)",
    "Greedy held-out success (the program computes its target when run) against optimizer step "
    "on the task 'stack', one panel per staleness N = 1, 16, 64 (those in the table), VESPO "
    "(same (k, lam) as on 'add'), hard clip (the paper's GRPO), GSPO and SAPO. The paper "
    "reports pass@k of generated code; here one greedy answer per prompt is scored.",
    BLOCK, CONFIG, ("S7",), task="stack",
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_grid_data(dict(CONFIG if cfg is None else cfg), BLOCK, task="stack")


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE

    n = len(data["panels"])
    return _lab.plot_panels(data, ncols=min(n, 3), width=max(0.6, min(n, 3) / 3) * WIDTH_PAGE,
                            height_per_row=2.4, legend_cols=2 if n == 1 else 4)  # fmt: skip


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
