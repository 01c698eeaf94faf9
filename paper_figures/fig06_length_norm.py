"""Length-normalisation ablation (arXiv 2602.10693 Fig. 6; claim S3) from the small-LM lab's
block s3: training reward, gradient norm, ppo_kl and entropy against step for VESPO, VESPO on
W^(1/sqrt T) and VESPO on W^(1/T) at staleness N = 64.

The paper's Fig. 6 shows, for a 30B model with responses of thousands of tokens, that the
length-normalised kernels are unstable (KL and gradient-norm spikes); the curves here are the
columns of ``s3.curves.csv``.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._io import merge_config
from paper_figures._style import styled

BLOCK = "s3"
CONFIG: dict = {
    "tables": _lab.DEFAULT_TABLES,
    "rules": ["vespo", "vespo_sqrt", "vespo_lin"],
    "staleness": 64,
    "columns": ["reward", "grad_norm", "ppo_kl", "entropy"],
}
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "fig06_length_norm", "Fig. 6",
    "length-normalisation ablation: reward, gradient norm, KL, entropy",
    "Training reward, gradient norm before clipping, ppo_kl and policy entropy against "
    "optimizer step for VESPO and the length-normalised kernels VESPO on W^(1/sqrt T) and on "
    "W^(1/T), staleness N = 64. The lab's responses are 8-35 tokens, where the paper's are "
    "thousands, so 1/T flattens the kernel far less here.",
    BLOCK, CONFIG, ("S3",),
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
