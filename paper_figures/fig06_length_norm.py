"""Length-normalisation ablation (arXiv 2602.10693 Fig. 6; claim S3) from the small-LM lab's
block s3: training reward, gradient norm, ppo_kl and entropy against step for VESPO, VESPO on
W^(1/sqrt T) and VESPO on W^(1/T) at staleness N = 64.

The paper's Fig. 6 shows, for a 30B model with responses of thousands of tokens, that the
length-normalised kernels are unstable (KL and gradient-norm spikes); the curves here are the
columns of ``s3.curves.csv``.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary

BLOCK = "s3"
CONFIG: dict = _lab.config(
    rules=["vespo", "vespo_sqrt", "vespo_lin"],
    staleness=64,
    columns=["reward", "grad_norm", "ppo_kl", "entropy"],
)
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


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)
plot = _lab.panels_plot(4, height_per_row=2.3, legend_cols=3)


def compute(cfg: dict | None = None) -> dict:
    return _lab.rules_at_staleness(dict(CONFIG if cfg is None else cfg), BLOCK)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
