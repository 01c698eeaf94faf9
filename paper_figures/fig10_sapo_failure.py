"""SAPO's failure signal (arXiv 2602.10693 Fig. 10; claim S2) in the small-LM lab's block s1:
the mean coefficient on A < 0 tokens of SAPO against VESPO's, at staleness N = 64 and N = 1.

The paper's Fig. 10 shows SAPO under-suppressing stale negative-advantage tokens on a 30B
model. The curves are ``coef_neg_mean`` of ``s1.curves.csv`` (:mod:`paper_figures._lab_failure`);
the study's S2 comparison divides it by the A >= 0 coefficient, which cancels each rule's own
scale, so the raw levels of two rules are not directly comparable.
"""

from __future__ import annotations

from paper_figures import _lab, _lab_failure
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._lab_failure import BLOCK, plot

CONFIG: dict = _lab_failure.config(
    ["sapo", "vespo"], ["coef_neg_mean"], staleness=[64, 1], panel_by="staleness"
)
FAST: dict = {}

FIGURE = _lab_failure.spec(
    "fig10_sapo_failure", "Fig. 10",
    "SAPO's failure signal (A < 0 under-suppressed) at two staleness levels",
    "The mean coefficient the rule puts on the gradient of A < 0 tokens against optimizer "
    "step, SAPO against VESPO; left: staleness N = 64, right: N = 1 (on-policy: each rule's "
    "own level). A larger coefficient on stale negatives means they are less "
    "suppressed. The raw coefficient carries each rule's own scale; the study's S2 test uses "
    "its ratio to the A >= 0 coefficient (s1.paired.csv).",
    CONFIG,
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    return _lab_failure.signal_panels(dict(CONFIG if cfg is None else cfg))


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
