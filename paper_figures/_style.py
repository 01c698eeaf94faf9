"""Shared look of the figures: the Agg backend, rcParams, and one colour per rule name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402  (after matplotlib.use("Agg"))

#: Resolution of the PNG files (the docs quote it; save_figure passes it explicitly, because
#: rcParams set inside rc_context are gone by the time a figure is saved).
DPI = 200

RC = {
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    # TrueType (Type 42) fonts in PDF/PS: editable text, and accepted by publishers that refuse
    # matplotlib's default Type 3 fonts.
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "mathtext.fontset": "dejavusans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
}

# Stable colours per registered rule (tab20-like); rules not listed get the next free colour.
_COLOURS = {
    "vespo": "#d62728",
    "ppo_clip": "#1f77b4",
    "sapo": "#2ca02c",
    "is": "#555555",
    "reinforce": "#8c564b",
    "per_decision_is": "#7f7f7f",
    "dual_clip": "#17becf",
    "cispo": "#9467bd",
    "gspo": "#ff7f0e",
    "gmpo": "#bcbd22",
    "token_tis": "#e377c2",
    "seq_tis": "#aec7e8",
    "token_mis": "#98df8a",
    "seq_mis": "#ffbb78",
}
_EXTRA = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]

# Display names for the legend.
LABELS = {
    "vespo": "VESPO",
    "ppo_clip": "hard clip (PPO)",
    "sapo": "SAPO",
    "is": "IS",
    "reinforce": "REINFORCE",
    "per_decision_is": "per-decision IS",
    "dual_clip": "dual-clip",
    "cispo": "CISPO",
    "gspo": "GSPO",
    "gmpo": "GMPO",
    "token_tis": "token TIS",
    "seq_tis": "sequence TIS",
    "token_mis": "token MIS",
    "seq_mis": "sequence MIS",
}


def colour(name: str, index: int = 0) -> str:
    """The colour of a rule; unknown names cycle through a reserve palette."""
    return _COLOURS.get(name, _EXTRA[index % len(_EXTRA)])


def label(name: str) -> str:
    return LABELS.get(name, name)


def new_figure(nrows: int, ncols: int, **kwargs):
    """A figure and axes grid drawn with the shared rcParams."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
    return fig, axes


__all__ = ["DPI", "LABELS", "RC", "colour", "label", "new_figure", "plt"]
