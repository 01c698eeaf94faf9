"""SAPO's failure signal (arXiv 2602.10693 Fig. 10; claim S2) in the small-LM lab's block s1:
the ratio of the mean coefficient on A < 0 tokens to that on A >= 0 tokens, SAPO against
VESPO, at staleness N = 64 and N = 1.

The paper's Fig. 10 shows SAPO under-suppressing stale negative-advantage tokens on a 30B
model. The curves are ``coef_neg_over_pos`` of ``s1.curves.csv`` (per run and step
``coef_neg_mean / coef_pos_mean``, then the mean over seeds; :mod:`paper_figures._lab_failure`),
the per-step form of the study's S2 metric. The ratio cancels each rule's own scale (SAPO's
coefficients carry a 1/T that VESPO's do not), so the two rules' levels are comparable; the raw
``coef_neg_mean`` is not.
"""

from __future__ import annotations

from paper_figures import _lab, _lab_failure
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._lab_failure import BLOCK, plot

CONFIG: dict = _lab_failure.config(
    ["sapo", "vespo"], ["coef_neg_over_pos"], staleness=[64, 1], panel_by="staleness"
)
FAST: dict = {}

FIGURE = _lab_failure.spec(
    "fig10_sapo_failure", "Fig. 10",
    "SAPO's failure signal (A < 0 under-suppressed) at two staleness levels",
    "The mean coefficient the rule puts on the gradient of A < 0 tokens divided by its mean "
    "coefficient on A >= 0 tokens (per run and step, then averaged over seeds) against "
    "optimizer step, SAPO against VESPO; left: staleness N = 64, right: N = 1 (on-policy). "
    "The ratio cancels each rule's own scale; a higher ratio at N = 64 means stale "
    "negatives are less suppressed relative to positives. The study's S2 test is the same "
    "ratio over a whole run (s1.paired.csv).",
    CONFIG,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab_failure.signal_panels(dict(CONFIG if cfg is None else cfg))


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
