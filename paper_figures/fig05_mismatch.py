"""Train-inference mismatch (arXiv 2602.10693 Fig. 5; claim S5) from the small-LM lab's block s5.

The paper's Fig. 5 compares, on a 30B mixture-of-experts model whose inference engine routes
tokens differently from training, GRPO, GRPO + TIS, GRPO + routing replay (R2), VESPO and
VESPO + R2. The lab's analogue is a mixture-of-experts LM (4 experts, top-2) whose sampler's
router logits get seeded Gaussian noise (mismatch ``route:1.0``) at staleness N = 8; R2 makes
the trainer score with the sampler's experts. Every curve is a column of ``s5.curves.csv``.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s5"
CONFIG: dict = _lab.config(columns=["heldout_success", "reward", "kl_sampler"])
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig05_mismatch", "Fig. 5",
    "train-inference mismatch: GRPO, +TIS, +routing replay, VESPO, VESPO+R2",
    "Held-out success, training reward and the exact KL(sampler || trainer) against optimizer "
    "step on a mixture-of-experts LM (4 FFN experts, top-2; 172,959 parameters) whose sampler "
    "routes with noisy router logits (mismatch route:1.0, noise std 1), staleness N = 8: hard "
    "clip (the paper's GRPO) alone, + TIS (token-level min(pi_old / mu, 2)), + R2 (routing "
    "replay), VESPO and VESPO + R2 (solid: no correction, dashed: TIS, dotted: R2; light: the "
    "same rule without mismatch, where the table has it). The paper's mismatch is a real "
    "inference engine's routing; here it is simulated noise.",
    BLOCK, CONFIG, ("S5",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(3, height_per_row=2.4, legend_cols=3)


def arm_style(arm: dict) -> tuple[str, object, str]:
    """(legend label, colour, line style) of an s5 arm from its fields."""
    label = _lab.rule_label(arm["rule"])
    style = "-"
    if arm["correction"] == "decoupled":
        label, style = label + " + TIS", "--"
    if arm["routing_replay"]:
        label, style = label + " + R2", ":" if style == "-" else "-."
    c = _lab.rule_colour(arm["rule"])
    if arm["mismatch"] == "none":
        label += " (no mismatch)"
        c = _lab.shade(c, 0, 3)
    return label, c, style


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    order = sorted(curves, key=lambda a: (curves[a]["mismatch"] == "none", curves[a]["rule"] !=
                                          "ppo_clip", curves[a]["correction"] == "decoupled",
                                          curves[a]["routing_replay"]))  # fmt: skip
    panels = []
    for col in cfg["columns"]:
        lines = []
        for a in order:
            label, c, style = arm_style(curves[a])
            lines.append(_lab.line(curves[a], col, f"{label}, {_lab.nseeds(curves[a]['seeds'])}", c,
                                   style))  # fmt: skip
        panels.append({"title": _lab.TITLES.get(col, "KL(sampler || trainer)"),
                       "ylabel": _lab.YLABELS[col], "lines": lines})  # fmt: skip
    return {"panels": panels, "config": cfg}


__all__ = ["CONFIG", "FAST", "FIGURE", "arm_style", "arrays", "compute", "plot", "summary"]
