"""Figures for the VESPO theory report: one module per figure, each with ``CONFIG``,
``compute(cfg) -> data`` (arrays, from the packages below) and ``plot(data) -> Figure``.

This package holds no math: every curve comes from :mod:`vespo_theory` (the rule registry,
kernels, bounds) or :mod:`simulations`. Run a figure with ``python -m paper_figures NAME`` or
``vespo figures NAME``; outputs (PNG, PDF, a data ``.npz`` and a JSON sidecar) go to
``outputs/figures/`` by default.
"""

from __future__ import annotations

# name -> module path; each module defines CONFIG, compute, plot, add_arguments, config_from_args
FIGURES: dict[str, str] = {
    "kernels": "paper_figures.kernels",
}

__all__ = ["FIGURES"]
