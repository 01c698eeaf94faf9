r"""Bias and variance of every main rule against staleness N, exactly (enumeration).

A tabular autoregressive model (Markov tokens, V = 4, T = 6, seeded logits; docs/simulations.md)
with the behaviour policy mu drifted from pi by N optimizer steps (the ``staleness`` key of
:class:`simulations.config.ARConfig`; ``drift`` "fixed": mu's logits = pi's - N eps d). For each
N the exact simulator (:func:`simulations.runners.simulate_ar`, enumeration of all V^T
sequences) gives, per rule, the gradient estimate's bias ||E e - grad J||, its cosine with the
true gradient grad J = E_pi[A g], and the trace of its covariance (one sequence). Plotted: bias
relative to ||grad J||, the direction error 1 - cos, and the variance, against N.

The rules are a fixed list of the main ones (:data:`MAIN_RULES`), kept where the registry
(:func:`vespo_theory.rules.available`) has them, so new rules never break the figure.
arXiv 2602.10693 §4.1 defines staleness N; the figure is the toolkit's exact analogue of its
stability story (claims U1, R9, ASC1 of docs/theory.md).
"""

from __future__ import annotations

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

#: The main rules drawn (those of them in the registry), in legend order.
MAIN_RULES = ("vespo", "is", "ppo_clip", "gspo", "sapo", "cispo", "reinforce")

FIGURE = FigureSpec(
    name="theory_staleness",
    claims=("U1", "R9", "ASC1"),
    title="bias and variance of every main rule against staleness N, exact",
    caption=(
        "Exact bias and variance of one sequence's gradient estimate for the main rules against "
        "staleness N (arXiv 2602.10693 §4.1: mu is N optimizer steps behind pi), on a Markov "
        "token model (V = 4, T = 6, seeded logits, token rewards, A = mean reward; mu's logits "
        "= pi's - N eps d, eps = 0.1), every one of the 4^6 sequences enumerated. Left: "
        "||E e - grad J|| / ||grad J||; middle: 1 - cos(E e, grad J) (the direction error; 1 is "
        "orthogonal); right: tr Cov(e). IS is unbiased at every N (claim U1) and its variance "
        "explodes (3e30 at N = 64); the bounded rules trade that variance for a bias that grows "
        "with N. VESPO's reaches about the size of grad J, and at N = 32 its expected update "
        "is no longer an ascent direction (1 - cos > 1): relaxed claim R9 is false, and this "
        "is ASC1's large-drift case. GSPO and SAPO carry a 1/T in their coefficient, hence a "
        "relative bias near 1 - 1/T = 0.83 already at N = 0 (a step size, not a direction: "
        "their 1 - cos is 0 there). N = 0 is on-policy; the x axis is linear below 1 and "
        "logarithmic above."
    ),
)

CONFIG: dict = {
    "V": 4,
    "T": 6,
    "policy": "markov",
    "drift": "fixed",
    "drift_size": 0.1,
    "staleness": [0, 1, 2, 4, 8, 16, 32, 64],
    "rules": list(MAIN_RULES),
    "seed": 0,
}
FAST: dict = {}  # 8 exact enumerations of 4096 sequences: about 0.3 s in all


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def rules_of(cfg: dict) -> list[str]:
    """The configured rules that the registry has, in order; ValueError if none is left."""
    from vespo_theory.rules import available

    reg = set(available())
    names = [r for r in cfg["rules"] if r in reg]
    if not names:
        raise ValueError(
            f"rules: none of {cfg['rules']!r} is a registered rule; valid: {sorted(reg)}"
        )
    return names


def model_config(cfg: dict, n: int):
    """The simulator's configuration at staleness ``n`` (validated there)."""
    from paper_figures._exact import ar_config

    return ar_config(
        V=cfg["V"],
        T=cfg["T"],
        policy=cfg["policy"],
        drift=cfg["drift"],
        drift_size=cfg["drift_size"],
        staleness=n,
        seed=cfg["seed"],
    )


def compute(cfg: dict | None = None) -> dict:
    from simulations.runners import simulate_ar

    cfg = dict(CONFIG if cfg is None else cfg)
    ns = cfg["staleness"]
    if not ns or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in ns):
        raise ValueError(f"staleness: a non-empty list of integers >= 0, got {ns!r}")
    if list(ns) != sorted(set(ns)):
        raise ValueError(f"staleness: increasing and without repeats, got {ns!r}")
    names = rules_of(cfg)
    shape = (len(names), len(ns))
    bias, cos, var, e_phi = (np.full(shape, np.nan) for _ in range(4))
    grad_norm = np.empty(len(ns))
    methods = []
    for j, n in enumerate(ns):
        res = simulate_ar(model_config(cfg, n), names, method="exact")
        methods.append(res["method"])
        grad_norm[j] = res["true_grad_norm"]
        rec = {r["rule"]: r for r in res["rules"]}
        for i, name in enumerate(names):
            r = rec[name]
            bias[i, j] = r["bias_norm"]
            cos[i, j] = np.nan if r["cosine"] is None else r["cosine"]
            var[i, j] = r["var_trace"]
            e_phi[i, j] = r["E_phi"]
    return {
        "N": np.asarray(ns, dtype=np.int64),
        "rules": names,
        "bias": bias,
        "rel_bias": bias / grad_norm,
        "cosine": cos,
        "one_minus_cos": 1.0 - cos,
        "var_trace": var,
        "E_phi": e_phi,
        "true_grad_norm": grad_norm,
        "methods": methods,
        "config": cfg,
    }


def arrays(data: dict) -> dict:
    out = {k: data[k] for k in ("N", "bias", "rel_bias", "cosine", "one_minus_cos", "var_trace",
                                "E_phi", "true_grad_norm")}  # fmt: skip
    out["rules"] = np.asarray(data["rules"])
    out["methods"] = np.asarray(data["methods"])
    return out


def summary(data: dict) -> list[dict]:
    rows = []
    last = len(data["N"]) - 1
    for i, name in enumerate(data["rules"]):
        rows.append(
            {
                "rule": name,
                "rel. bias N=0": float(data["rel_bias"][i, 0]),
                f"rel. bias N={int(data['N'][last])}": float(data["rel_bias"][i, last]),
                f"cos N={int(data['N'][last])}": float(data["cosine"][i, last]),
                "var N=0": float(data["var_trace"][i, 0]),
                f"var N={int(data['N'][last])}": float(data["var_trace"][i, last]),
            }
        )
    return rows


def evidence(arr: dict) -> dict[str, str]:
    """One line per claim this figure bears on, from its saved arrays (the ``.npz``)."""
    rules = [str(r) for r in arr["rules"]]
    n = arr["N"]
    out = {}
    if "is" in rules:
        i = rules.index("is")
        out["U1"] = (
            f"exact enumeration, staleness N = {int(n[0])} ... {int(n[-1])}: IS's relative bias "
            f"is at most {np.nanmax(arr['rel_bias'][i]):.1e} (float64 rounding), while its "
            f"variance grows to {arr['var_trace'][i, -1]:.2g}"
        )
    if "vespo" in rules:
        i = rules.index("vespo")
        out["R9"] = (
            f"exact enumeration: VESPO's bias relative to ||grad J|| grows from "
            f"{arr['rel_bias'][i, 0]:.2g} at N = {int(n[0])} to {arr['rel_bias'][i, -1]:.2f} at "
            f"N = {int(n[-1])} (cos {arr['cosine'][i, -1]:.3f}): stale samples do change the "
            "expected update"
        )
        c = arr["cosine"][i]
        bad = [int(m) for m, v in zip(n, c) if v <= 0]
        verdict = (
            f"not an ascent direction at N = {', '.join(map(str, bad))} (cos <= 0)"
            if bad
            else "an ascent direction at every N"
        )
        out["ASC1"] = (
            f"exact enumeration: cos(E e, grad J) of VESPO is {c[0]:.3f} at N = {int(n[0])} and "
            f"ranges over [{np.nanmin(c):.3f}, {np.nanmax(c):.3f}] up to N = {int(n[-1])}: "
            f"{verdict}"
        )
    return out


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, colour, label, new_figure

    fig, axes = new_figure(1, 3, figsize=(WIDTH_PAGE, 2.7), constrained_layout=True)
    x = data["N"]
    panels = (
        ("rel_bias", r"$\|E e - \nabla J\| / \|\nabla J\|$", "bias (relative)", "linear"),
        ("one_minus_cos", r"$1 - \cos(E e, \nabla J)$", "direction error", "linear"),
        ("var_trace", r"tr Cov$(e)$ (one sequence)", "variance", "log"),
    )
    for ax, (key, ylabel, title, yscale) in zip(axes, panels):
        for i, name in enumerate(data["rules"]):
            ax.plot(x, data[key][i], marker="o", markersize=2.5, color=colour(name, i),
                    label=label(name), linestyle="--" if name == "is" else "-")  # fmt: skip
        ax.set_xscale("symlog", linthresh=1, linscale=0.5)
        ax.set_xlim(0, x[-1] * 1.15)
        ax.set_xticks(x, [str(int(n)) for n in x])
        ax.minorticks_off()
        ax.set_yscale(yscale)
        ax.set_xlabel("staleness N (optimizer steps)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[1].axhline(1.0, color="k", linewidth=0.8, linestyle=":")
    axes[1].text(x[1], 1.0, "orthogonal", fontsize=6, va="bottom")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncol=len(data["rules"]), frameon=False, fontsize=7)  # fmt: skip
    return fig


__all__ = [
    "CONFIG",
    "FAST",
    "FIGURE",
    "MAIN_RULES",
    "arrays",
    "compute",
    "evidence",
    "model_config",
    "plot",
    "rules_of",
    "summary",
]
