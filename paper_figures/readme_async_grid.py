"""The fully asynchronous run (the README figure of arXiv 2602.10693's code release; claim S1),
from the small-LM lab's block ``async``: 2x4 panels, one row per async lag L (the sampler's
weights are L optimizer versions behind the trainer's, on top of staleness N = 4 within each
rollout batch), columns training reward, held-out success, KL(sampler || trainer) and entropy,
VESPO, hard clip (GRPO), GSPO and SAPO overlaid (``async.curves.csv``).

The paper's README shows a fully asynchronous run of its 30B model; here asynchrony is the
lab's ``async_lag`` (``simulations/lm/rl.py``: responses are sampled by the weights of version
``max(0, v - L)``), so a mini-batch is up to N - 1 + L versions stale.
"""

from __future__ import annotations

from paper_figures import _lab
from paper_figures._lab import curve_arrays as arrays
from paper_figures._lab import curve_summary as summary
from paper_figures._style import styled

BLOCK = "async"
CONFIG: dict = _lab.config(
    rules=["vespo", "ppo_clip", "gspo", "sapo"],
    staleness=4,
    lags=[8, 32],
    columns=["reward", "heldout_success", "kl_sampler", "entropy"],
)
FAST: dict = {}

FIGURE = _lab.lab_spec(
    "readme_async_grid", "README figure",
    "fully asynchronous run, 2x4 panels",
    "Fully asynchronous training: rows async lag L = 8 and 32 (the sampler's weights L "
    "optimizer versions behind the trainer's, with staleness N = 4 within each rollout batch, "
    "so a mini-batch is up to N - 1 + L versions stale); columns training reward, greedy "
    "held-out success, the exact KL(sampler || trainer) per token (the lag's off-policyness; "
    "ppo_kl would see only the within-batch staleness) and entropy against optimizer step; "
    "VESPO, hard clip (the paper's GRPO), GSPO and SAPO overlaid.",
    BLOCK, CONFIG, ("S1",),
)  # fmt: skip


resolve_config, meta = _lab.resolver(CONFIG, FAST), _lab.block_meta(BLOCK)


def compute(cfg: dict | None = None) -> dict:
    """One row of panels per lag in ``cfg["lags"]`` that the table has (ValueError if none),
    each :func:`paper_figures._lab.rules_grid` at staleness ``cfg["staleness"]``."""
    cfg = dict(CONFIG if cfg is None else cfg)
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    n = int(cfg["staleness"])
    lags = [int(L) for L in cfg["lags"] if _lab.find_arms(curves, staleness=n, async_lag=int(L))]
    _lab.need(curves, lags, f"async lag L in {list(cfg['lags'])} at N = {n}")
    panels = []
    for L in lags:
        row, _ = _lab.rules_grid(curves, cfg["rules"], [n], cfg["columns"], async_lag=L)
        for p, col in zip(row, cfg["columns"]):
            p["title"] = f"{_lab.TITLES[col]}, L = {L}"
        panels += row
    return {"panels": panels, "rows": lags, "config": cfg}


@styled
def plot(data: dict):
    ncols = len(data["config"]["columns"])
    return _lab.plot_panels(data, ncols=ncols, height_per_row=2.3)


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary"]
