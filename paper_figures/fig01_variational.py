r"""Fig. 1 of arXiv 2602.10693: the variational problem, drawn exactly on a 3-outcome support.

The paper's Fig. 1 sketches the idea behind VESPO: among the distributions Q between the
behaviour mu and the target pi (the geometric path Q_a ∝ mu^(1-a) pi^a), pick the one closest
to both subject to a budget on the sequence weight, E_Q[W] <= C (Prop. B.1, Eqs. 11-16). Its
solution Q* ∝ mu W^a e^(-bW) is the proposal whose density ratio Q*/mu is the kernel.

Here the problem is solved exactly (:mod:`vespo_theory.variational`, float64, log space) on
three outcomes, so every distribution is a point of the 2-simplex (barycentric coordinates):
mu, pi, the path Q_a, the budget region E_Q[W] <= C (a half-plane cut of the simplex, shaded),
the optimum Q*(a, C) marked, and the track of Q* as C shrinks from the slack threshold
E(0) = E_mu[W^(a+1)]/E_mu[W^a] (where Q* = Q_a) to min W (where Q* collapses on the outcome of
smallest W). The right panel gives the multiplier b(C) (claim Q3) and the budget at which the
deployed b = lam = 3 sits. The data file holds ``mu``, ``pi``, ``a``, ``C`` and ``q_star`` (the
marked optimum) so anyone can check q_star with their own solver.
"""

from __future__ import annotations

import math

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="fig01_variational",
    claims=("P2", "Q1", "Q2", "Q3", "K1"),
    title="the variational problem on the 2-simplex: mu, pi, Q_a, the budget E_Q[W] <= C, Q*",
    paper="Fig. 1",
    caption=(
        "The variational problem of arXiv 2602.10693 (Fig. 1; Prop. B.1, Eqs. 11-16) solved "
        "exactly on a 3-outcome support: left, the 2-simplex with behaviour mu, target pi, the "
        "geometric path Q_a ∝ mu^(1-a) pi^a, the budget region E_Q[W] <= C shaded, the optimum "
        "Q*(a, C) ∝ mu W^a e^(-bW) marked and its track as C shrinks from E(0) to min W; right, "
        "the multiplier b(C). Differs from the paper: the paper's Fig. 1 is a schematic over "
        "sequence space; here the same problem is computed on three outcomes, a = k = 2."
    ),
)

CONFIG: dict = {
    "mu": [0.6, 0.3, 0.1],
    "pi": [0.2, 0.3, 0.5],
    "a": 2.0,  # = k of the A >= 0 branch
    "C": 1.5,  # the marked budget
    "deployed_b": 3.0,  # = lam of the A >= 0 branch: the budget it corresponds to is drawn
    "a_range": [-0.5, 2.5],  # the drawn stretch of the path Q_a
    "n_path": 201,
    "n_budgets": 80,  # budgets on the track of Q*, from E(0) down to min W
    "budget_gap_min": 1e-4,  # the smallest (C - min W) / (E(0) - min W) on the track
}
FAST: dict = {"n_path": 61, "n_budgets": 40}


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    """Every point of the figure from :mod:`vespo_theory.variational`."""
    from vespo_theory import variational as var

    cfg = dict(CONFIG if cfg is None else cfg)
    mu, pi = np.asarray(cfg["mu"], float), np.asarray(cfg["pi"], float)
    _, _, log_w = var.validate_pair(mu, pi)
    if mu.size != 3:
        raise ValueError(f"mu: the simplex figure needs 3 outcomes, got {mu.size}")
    for key in ("n_path", "n_budgets"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ValueError(f"{key}: must be an integer >= 2, got {v!r}")
    w = np.exp(log_w)
    a, C = float(cfg["a"]), float(cfg["C"])
    q_marked, b_marked = var.q_star(mu, pi, a, C)  # ValueError naming C if infeasible
    a_grid = np.linspace(*cfg["a_range"], cfg["n_path"])
    path = var.path(mu, pi, a_grid)
    e0 = var.slack_threshold(mu, pi, a)
    w_min = float(w.min())
    # budgets from E(0) down towards min W, dense at both ends: near min W (Q* moves fastest,
    # b -> inf) and near E(0) (b -> 0, drawn on a log axis)
    half = np.geomspace(float(cfg["budget_gap_min"]), 0.5, cfg["n_budgets"] // 2 + 1)
    even = np.linspace(0.0, 1.0, cfg["n_budgets"] + 1)[1:]
    frac = np.unique(np.concatenate([[1.0], half, 1.0 - half, even]))[::-1]
    c_track = w_min + (e0 - w_min) * frac
    q_track, b_track = [], []
    for c in c_track:
        q, b = var.q_star(mu, pi, a, float(c))
        q_track.append(q)
        b_track.append(b)
    b_dep = float(cfg["deployed_b"])
    q_dep = np.exp(var.log_q_star(mu, pi, a, b_dep))
    c_dep = var.budget_of_b(mu, pi, a, b_dep)
    return {
        "mu": mu,
        "pi": pi,
        "w": w,
        "a": np.float64(a),
        "C": np.float64(C),
        "q_star": q_marked,
        "b": np.float64(b_marked),
        "a_path": a_grid,
        "q_path": path,
        "E0": np.float64(e0),
        "w_min": np.float64(w_min),
        "C_track": c_track,
        "q_star_track": np.array(q_track),
        "b_track": np.array(b_track),
        "deployed_b": np.float64(b_dep),
        "deployed_C": np.float64(c_dep),
        "deployed_q": q_dep,
        "config": cfg,
    }


def arrays(data: dict) -> dict:
    keys = (
        "mu", "pi", "w", "a", "C", "q_star", "b", "a_path", "q_path", "E0", "w_min",
        "C_track", "q_star_track", "b_track", "deployed_b", "deployed_C", "deployed_q",
    )  # fmt: skip
    return {k: data[k] for k in keys}


def summary(data: dict) -> list[dict]:
    rows = [
        {"point": "mu", "a": 0.0, "b": 0.0, "E_Q[W]": 1.0, "Q": _fmt(data["mu"])},
        {
            "point": "pi",
            "a": 1.0,
            "b": 0.0,
            "E_Q[W]": float(data["pi"] @ data["w"]),
            "Q": _fmt(data["pi"]),
        },
        {
            "point": "Q_a = Q*(a, C >= E(0))",
            "a": float(data["a"]),
            "b": 0.0,
            "E_Q[W]": float(data["E0"]),
            "Q": _fmt(data["q_star_track"][0]),
        },
        {
            "point": "Q*(a, C) marked",
            "a": float(data["a"]),
            "b": float(data["b"]),
            "E_Q[W]": float(data["q_star"] @ data["w"]),
            "Q": _fmt(data["q_star"]),
        },
        {
            "point": "Q* at the deployed b",
            "a": float(data["a"]),
            "b": float(data["deployed_b"]),
            "E_Q[W]": float(data["deployed_C"]),
            "Q": _fmt(data["deployed_q"]),
        },
    ]
    return rows


def _fmt(q) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in q) + ")"


# ----------------------------------------------------------------------------- drawing
_VERTS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]])


def to_xy(q) -> np.ndarray:
    """Barycentric -> plane: the 2-simplex as an equilateral triangle (vertices = outcomes)."""
    return np.asarray(q, dtype=np.float64) @ _VERTS


def budget_region(w, C) -> np.ndarray:
    """The polygon {Q in the simplex: Q . w <= C} (barycentric vertices, in order).

    The triangle clipped by one half-plane (Sutherland-Hodgman): vertices e_i with w_i <= C
    stay, and each edge crossing Q . w = C contributes its crossing point.
    """
    w = np.asarray(w, dtype=np.float64)
    out = []
    for i in range(3):
        j = (i + 1) % 3
        ei, ej = np.eye(3)[i], np.eye(3)[j]
        in_i, in_j = w[i] <= C, w[j] <= C
        if in_i:
            out.append(ei)
        if in_i != in_j:
            t = (C - w[i]) / (w[j] - w[i])
            out.append((1 - t) * ei + t * ej)
    return np.array(out)


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, new_figure, quantity

    fig, (ax, axb) = new_figure(
        1, 2, figsize=(WIDTH_PAGE, 4.1), gridspec_kw={"width_ratios": [1.2, 1.0]},
        constrained_layout=True,
    )  # fmt: skip
    w, C = data["w"], float(data["C"])
    # the simplex and its vertices
    tri = np.vstack([_VERTS, _VERTS[:1]])
    ax.plot(tri[:, 0], tri[:, 1], color="0.3", linewidth=0.9)
    offsets = [(-0.02, -0.06, "right"), (0.02, -0.06, "left"), (0.0, 0.03, "center")]
    for i, (dx, dy, ha) in enumerate(offsets):
        ax.text(
            _VERTS[i, 0] + dx, _VERTS[i, 1] + dy, f"outcome {i + 1}\n$W$ = {w[i]:.3g}",
            ha=ha, va="top" if dy < 0 else "bottom", fontsize=8,
        )  # fmt: skip
    # the budget region and its boundary E_Q[W] = C
    poly = to_xy(budget_region(w, C))
    ax.fill(
        poly[:, 0], poly[:, 1], color="#1f77b4", alpha=0.13, linewidth=0,
        label=rf"budget region $E_Q[W] \leq C$ = {C:g}",
    )  # fmt: skip
    edge = [p for p in budget_region(w, C) if abs(float(p @ w) - C) <= 1e-12 * max(1.0, C)]
    if len(edge) == 2:
        xy_edge = to_xy(np.array(edge))
        ax.plot(xy_edge[:, 0], xy_edge[:, 1], color="#1f77b4", linewidth=0.9, linestyle="-")
    # the path Q_a
    pq = to_xy(data["q_path"])
    ax.plot(pq[:, 0], pq[:, 1], **quantity("path"), linewidth=1.2)
    # the track of Q* as C shrinks
    tr = to_xy(data["q_star_track"])
    ax.plot(tr[:, 0], tr[:, 1], color=quantity("q_star")["color"], linewidth=1.6,
            label=r"track of $Q^*$ as $C$ shrinks")  # fmt: skip
    # the arrow sits half-way (in C) between Q_a and the marked Q*, pointing the way C shrinks
    mid = int(np.argmin(np.abs(data["C_track"] - 0.5 * (float(data["E0"]) + C))))
    mid = min(mid, len(tr) - 2)
    ax.annotate(
        "", xy=tr[mid + 1], xytext=tr[mid],
        arrowprops={"arrowstyle": "-|>", "color": quantity("q_star")["color"], "lw": 1.2},
    )  # fmt: skip
    # the points
    for key, marker in (("mu", "o"), ("pi", "s")):
        xy = to_xy(data[key])
        q = quantity(key)
        ax.plot(*xy, marker=marker, color=q["color"], linestyle="", markersize=7, label=q["label"])
    xy0 = tr[0]
    lab0 = rf"$Q_a$, $a$ = {float(data['a']):g} ($C \geq E(0)$ = {float(data['E0']):.3g})"
    ax.plot(*xy0, marker="^", color="#555555", linestyle="", markersize=7, label=lab0)
    xys = to_xy(data["q_star"])
    ax.plot(*xys, marker="*", color=quantity("q_star")["color"], linestyle="", markersize=13,
            markeredgecolor="k", markeredgewidth=0.5,
            label=rf"$Q^*(a, C)$, $b$ = {float(data['b']):.3g}")  # fmt: skip
    xyd = to_xy(data["deployed_q"])
    ax.plot(*xyd, marker="D", color="#ff7f0e", linestyle="", markersize=6,
            label=rf"$Q^*$ at $b = \lambda$ = {float(data['deployed_b']):g} "
            rf"($C$ = {float(data['deployed_C']):.3g})")  # fmt: skip
    ax.set_aspect("equal")
    ax.set_xlim(-0.14, 1.14)
    ax.set_ylim(-0.17, 0.98)
    ax.axis("off")
    ax.set_title(r"2-simplex of $Q$ (barycentric coordinates)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3,
               frameon=False, fontsize=7.5, handlelength=1.8)  # fmt: skip
    # right: b(C)
    ct, bt = data["C_track"], data["b_track"]
    axb.plot(ct, bt, color=quantity("q_star")["color"], label=r"$b(C)$")
    ax_x = axb.get_xaxis_transform()  # x in data, y in axes fraction
    axb.axvline(float(data["E0"]), color="0.5", linestyle="--", linewidth=0.9)
    axb.text(float(data["E0"]), 0.97, r"$E(0)$: slack ($b$ = 0) beyond ", fontsize=7,
             rotation=90, ha="right", va="top", transform=ax_x)  # fmt: skip
    axb.axvline(float(data["w_min"]), color="0.5", linestyle=":", linewidth=0.9)
    axb.text(float(data["w_min"]), 0.03, r" min $W$: infeasible below", fontsize=7,
             rotation=90, ha="left", va="bottom", transform=ax_x)  # fmt: skip
    axb.plot(float(data["C"]), float(data["b"]), marker="*", color=quantity("q_star")["color"],
             markersize=12, markeredgecolor="k", markeredgewidth=0.5, linestyle="")  # fmt: skip
    axb.plot(float(data["deployed_C"]), float(data["deployed_b"]), marker="D", color="#ff7f0e",
             markersize=6, linestyle="")  # fmt: skip
    axb.set_yscale("log")
    axb.set_ylim(1e-2, None)
    axb.set_xlabel(r"budget $C$ on $E_Q[W]$ (dimensionless)")
    axb.set_ylabel(r"multiplier $b$ of the budget")
    axb.set_title(r"$Q^* \propto \mu W^a e^{-bW}$: $b$ against $C$")
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "budget_region", "compute", "plot", "to_xy"]
