r"""Fig. 2 of arXiv 2602.10693 as the authors drew it: the kernel normalised to peak 1.

The paper's kernel figure draws phi(W) / max phi (peak 1, at W = k/lam); the deployed kernel is
phi(W) = W^k e^(lam(1-W)), normalised instead by phi(1) = 1 (the on-policy point), so its peak is
M = (k/lam)^k e^(lam-k) = 1.2081 for (k, lam) = (2, 3) and 1.2416 for (3, 2) (claim K3). Both
are drawn side by side for the two branches (A >= 0: (2, 3); A < 0: (3, 2)): left the
peak-normalised curves, right the deployed ones with sequence IS (phi = W) as the reference.
The two differ only by the constant 1/M, which rescales the gradient (the learning rate), not
its direction.

Every curve is the rule registry's coefficient on one token (T = 1, W = r), as in
:mod:`paper_figures.fig02_kernels`; M is :func:`vespo_theory.bounds.phi_max`.
"""

from __future__ import annotations

import math

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="fig02_kernels_peak",
    claims=("K3", "P5", "P4"),
    title="the VESPO kernel normalised to peak 1 (as the paper draws it) and as deployed",
    paper="Fig. 2",
    caption=(
        "The VESPO kernel of arXiv 2602.10693 (Fig. 2, Eq. 17; Prop. C.1) for A >= 0 "
        "((k, lam) = (2, 3)) and A < 0 ((3, 2)), one token (T = 1, W = r). Left: phi(W) / M, "
        "peak 1 at W = k/lam, the normalisation of the paper's figure. Right: the deployed "
        "phi(W) = W^k e^(lam(1-W)) with phi(1) = 1 and peak M = 1.2081 / 1.2416, sequence IS "
        "(phi = W) dashed. The two differ by the constant factor 1/M only. Curves from the rule "
        "registry; M from the closed form of claim K3."
    ),
)

CONFIG: dict = {"w_max": 3.0, "n_points": 600, "rule": "vespo", "reference": "is"}
FAST: dict = {"n_points": 150}
SIGNS = (("pos", 1.0), ("neg", -1.0))


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    """phi (registry) on the W grid and at its peak, M (closed form), phi / M, and IS."""
    from paper_figures.fig02_kernels import _coefficient_single_token
    from vespo_theory.bounds import phi_max
    from vespo_theory.rules import get_rule

    cfg = dict(CONFIG if cfg is None else cfg)
    w_max, n = cfg["w_max"], cfg["n_points"]
    if not (isinstance(w_max, (int, float)) and math.isfinite(w_max) and w_max > 1.5):
        raise ValueError(f"w_max: must be a finite number > 1.5 (both peaks drawn), got {w_max!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 10:
        raise ValueError(f"n_points: must be an integer >= 10, got {n!r}")
    rule, ref = get_rule(cfg["rule"]), get_rule(cfg["reference"])
    p = rule.params
    if not all(hasattr(p, f) for f in ("k_pos", "lam_pos", "k_neg", "lam_neg")):
        raise ValueError(f"rule: needs a kernel with (k, lam) per sign, got {cfg['rule']!r}")
    w = np.linspace(w_max / n, w_max, n)
    out: dict = {"w": w, "config": cfg}
    for sign_name, sign in SIGNS:
        k, lam = getattr(p, f"k_{sign_name}"), getattr(p, f"lam_{sign_name}")
        m = phi_max(k, lam)
        phi = _coefficient_single_token(rule, w, sign)
        w_peak = np.array([k / lam])
        out[f"k_{sign_name}"], out[f"lam_{sign_name}"] = float(k), float(lam)
        out[f"M_{sign_name}"] = m
        out[f"phi_{sign_name}"] = phi
        out[f"phi_peak_{sign_name}"] = phi / m
        out[f"w_peak_{sign_name}"] = float(w_peak[0])
        out[f"peak_value_{sign_name}"] = float(_coefficient_single_token(rule, w_peak, sign)[0])
        out[f"ref_{sign_name}"] = _coefficient_single_token(ref, w, sign)
    return out


def arrays(data: dict) -> dict:
    out = {"w": data["w"]}
    for s, _ in SIGNS:
        for key in ("phi", "phi_peak", "ref"):
            out[f"{key}_{s}"] = data[f"{key}_{s}"]
        for key in ("M", "w_peak", "peak_value", "k", "lam"):
            out[f"{key}_{s}"] = np.float64(data[f"{key}_{s}"])
    return out


def summary(data: dict) -> list[dict]:
    rows = []
    for s, _ in SIGNS:
        w = data["w"]
        i1 = int(np.argmin(np.abs(w - 1.0)))
        rows.append(
            {
                "branch": "A>=0" if s == "pos" else "A<0",
                "(k, lam)": f"({data[f'k_{s}']:g}, {data[f'lam_{s}']:g})",
                "peak W = k/lam": data[f"w_peak_{s}"],
                "M = max phi": data[f"M_{s}"],
                "phi(1)": float(data[f"phi_{s}"][i1]),
                "phi(1)/M": float(data[f"phi_peak_{s}"][i1]),
                "phi(peak)/M": data[f"peak_value_{s}"] / data[f"M_{s}"],
            }
        )
    return rows


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, colour, label, new_figure

    fig, axes = new_figure(1, 2, figsize=(WIDTH_PAGE, 3.2), sharex=True, constrained_layout=True)
    w = data["w"]
    rule, ref = data["config"]["rule"], data["config"]["reference"]
    styles = {"pos": "-", "neg": (0, (5, 2))}
    for ax, key, title, ylabel in (
        (axes[0], "phi_peak", "as the paper draws it: peak 1", r"$\varphi(W) / M$"),
        (axes[1], "phi", r"as deployed: $\varphi(1) = 1$", r"$\varphi(W)$"),
    ):
        for s, _ in SIGNS:
            side = r"$A \geq 0$" if s == "pos" else r"$A < 0$"
            kl = rf"$k$={data[f'k_{s}']:g}, $\lambda$={data[f'lam_{s}']:g}"
            ax.plot(w, data[f"{key}_{s}"], color=colour(rule), linestyle=styles[s],
                    label=f"{label(rule)} {side} ({kl})")  # fmt: skip
            y_peak = 1.0 if key == "phi_peak" else data[f"M_{s}"]
            ax.plot([data[f"w_peak_{s}"]], [y_peak], marker="o", color=colour(rule),
                    markersize=4, linestyle="")  # fmt: skip
            if key == "phi":
                ax.annotate(f"M = {data[f'M_{s}']:.4f}", (data[f"w_peak_{s}"], y_peak),
                            xytext=(0, 5) if s == "pos" else (6, 5), textcoords="offset points",
                            ha="center" if s == "pos" else "left", fontsize=7)  # fmt: skip
        if key == "phi":
            ax.plot(w, data["ref_pos"], color=colour(ref), linestyle="--", linewidth=1.1,
                    label=rf"{label(ref)} ($\varphi = W$)")  # fmt: skip
            ax.set_ylim(0.0, 1.45)
        else:
            ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_ylim(0.0, 1.15)
        ax.axvline(1.0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_xlim(0.0, w[-1])
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(r"$W = \pi_\theta / \mu$ (one token, $T = 1$)")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=3,
               frameon=False)  # fmt: skip
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "resolve_config", "summary"]
