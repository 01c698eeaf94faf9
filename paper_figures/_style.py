"""The one style of every figure: the Agg backend, rcParams, figure widths, and one colour and
one label per rule (:data:`LABELS`, :func:`colour`) and per plotted quantity (:data:`QUANTITIES`).

Every module of :mod:`paper_figures` takes its colours and legend labels from here, so VESPO is
the same red, IS the same grey, and E[phi] the same line in every figure. Widths are those of a
two-column paper (:data:`WIDTH_COLUMN`, :data:`WIDTH_PAGE`): a figure is drawn at the width it
is printed at, so the 8-9 pt fonts of :data:`RC` stay readable there. ``plot`` functions are
wrapped in :func:`styled` so that every text object is made under :data:`RC`.
"""

from __future__ import annotations

import functools

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

#: Printed widths (inches) of a two-column paper: one column and the full text width.
WIDTH_COLUMN = 3.4
WIDTH_PAGE = 7.0

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


# Colour, legend label (mathtext) and line style of each plotted quantity. A quantity of one
# rule takes that rule's colour (E[W^2] is IS's second moment, E[phi] VESPO's mean weight).
QUANTITIES: dict[str, dict] = {
    "E_W2": {"color": _COLOURS["is"], "label": r"$E_\mu[W^2]$ (IS)", "linestyle": "-"},
    "E_phi": {"color": _COLOURS["vespo"], "label": r"$E_\mu[\varphi]$", "linestyle": "-"},
    "E_phi2": {"color": _COLOURS["vespo"], "label": r"$E_\mu[\varphi^2]$", "linestyle": "--"},
    "M2": {"color": "#000000", "label": r"$M^2$ (B2)", "linestyle": ":"},
    "K_E_phiW": {
        "color": "#9467bd",
        "label": r"$K\,E_\mu[\varphi W]$ (P4)",
        "linestyle": "-.",
    },
    "var_vespo": {
        "color": _COLOURS["vespo"],
        "label": r"VESPO tr Cov$[\varphi A g]$",
        "linestyle": "-",
    },
    "B3_bound": {"color": "#000000", "label": r"$M^2 E_\mu\|g\|^2$ (B3)", "linestyle": ":"},
    "chernoff": {"color": "#1f77b4", "label": "Chernoff rate (D1)", "linestyle": "--"},
    "D1_bound": {"color": "#ff7f0e", "label": "finite-T bound (D1)", "linestyle": "-."},
    "threshold": {"color": "#000000", "label": "k-hat threshold", "linestyle": ":"},
    "mu": {"color": "#1f77b4", "label": r"$\mu$ (behaviour)", "linestyle": "-"},
    "pi": {"color": "#2ca02c", "label": r"$\pi$ (target)", "linestyle": "-"},
    "path": {"color": "#555555", "label": r"$Q_a \propto \mu^{1-a}\pi^a$", "linestyle": "--"},
    "q_star": {"color": _COLOURS["vespo"], "label": r"$Q^*(a, C)$", "linestyle": "-"},
    "B2": {"color": "#d62728", "label": r"B2: $E[\varphi^2] / M E[\varphi]$", "linestyle": ""},
    "B2b": {"color": "#ff9896", "label": r"B2: $E[\varphi^2] / M^2$", "linestyle": ""},
    "B3": {"color": "#1f77b4", "label": r"B3: Var / $M^2 E\|g\|^2$", "linestyle": ""},
    "P4": {"color": "#9467bd", "label": r"P4: $E[\varphi^2] / K E[\varphi W]$", "linestyle": ""},
}


# A ramp of one rule's hue for one rule drawn at several settings (staleness, drift, sample
# size): light = mild, dark = strong. VESPO's is red, IS's grey.
_RAMPS = {
    "vespo": ("#fc9272", "#ef3b2c", "#a50f15", "#67000d"),
    "is": ("#bdbdbd", "#969696", "#636363", "#252525"),
}


def ramp(name: str, i: int) -> str:
    """The i-th shade (0 = lightest) of a rule's ramp; other rules use their own colour."""
    shades = _RAMPS.get(name)
    return shades[i % len(shades)] if shades else colour(name, i)


def quantity(key: str, **overrides) -> dict:
    """Line keywords (color, label, linestyle) of a plotted quantity, e.g. ``quantity("E_phi")``."""
    out = dict(QUANTITIES[key])
    out.update(overrides)
    return out


def styled(plot_fn):
    """Run a ``plot(data)`` function under :data:`RC` (every title, label and legend made there)."""

    @functools.wraps(plot_fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(RC):
            return plot_fn(*args, **kwargs)

    return wrapper


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


__all__ = [
    "DPI",
    "LABELS",
    "QUANTITIES",
    "RC",
    "WIDTH_COLUMN",
    "WIDTH_PAGE",
    "colour",
    "label",
    "new_figure",
    "plt",
    "quantity",
    "ramp",
    "styled",
]
