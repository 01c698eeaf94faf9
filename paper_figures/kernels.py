"""Compatibility name of :mod:`paper_figures.fig02_kernels` (the figure was ``kernels`` before the
files were named for what they reproduce). ``vespo figures kernels`` still works (an alias)."""

from __future__ import annotations

from paper_figures.fig02_kernels import (  # noqa: F401  (re-exported; FIGURE stays there)
    CONFIG,
    FAST,
    SIGNS,
    arrays,
    compute,
    plot,
    resolve_config,
    rule_names,
    summary,
)

__all__ = ["CONFIG", "FAST", "arrays", "compute", "plot", "resolve_config", "summary"]
