r"""How tight are the bounds B2, B3 and P4? Observed / bound across exact scenarios.

For each scenario (a tabular autoregressive model: context-free, Markov or prefix-hash tokens,
fixed or random length, staleness N, engine mismatch, A = +1 or -1, length T up to 4096) the
exact simulator (:func:`simulations.runners.simulate_ar`, enumeration or lattice) gives VESPO's
E_mu[phi], E_mu[phi^2] and the trace of the covariance of one sequence's estimate, with the bound
records of claims B2 (E phi^2 <= M E phi <= M^2) and B3 (Var <= M^2 E||g||^2). P4
(arXiv 2602.10693 Prop. 3.1, Eqs. 18-19, read as E_mu[phi^2] <= K E_mu[phi W]) takes E_mu[phi W]
from the same exact law (:func:`paper_figures._exact.e_phi_w`). Plotted: observed / bound (1 =
tight; every bound is a theorem, so nothing may exceed 1), and which of the two bounds on
E_mu[phi^2], M^2 or K E_mu[phi W], is smaller in each scenario.
"""

from __future__ import annotations

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="theory_bounds",
    claims=("B2", "B3", "P4"),
    title="tightness of the bounds B2, B3 and P4 across exact scenarios",
    caption=(
        "Observed value / bound for VESPO across exact scenarios (enumeration or lattice): B2 "
        "E[phi^2] <= M E[phi] and <= M^2, B3 tr Cov[phi A g] <= M^2 E||g||^2, and P4 E[phi^2] <= "
        "K E[phi W] (arXiv 2602.10693 Prop. 3.1, Eqs. 18-19; Prop. C.1). 1 is tight; nothing "
        "exceeds 1 (each bound is a theorem). Right: log10 of (K E[phi W]) / M^2: below 0 P4's "
        "bound is the smaller one (long or stale sequences, where E[phi W] is small), above 0 "
        "B2's M^2 is. (k, lam) = (2, 3) for A > 0, (3, 2) for A < 0 (K = 1: phi <= W)."
    ),
)

# Each scenario: a short label and the ARConfig fields (A constant: a fixed kernel branch).
SCENARIOS: list[dict] = [
    {"label": "CF V4 T6 N1", "V": 4, "T": 6, "staleness": 1},
    {"label": "CF V4 T6 N8", "V": 4, "T": 6, "staleness": 8},
    {"label": "CF V4 T6 N8 A<0", "V": 4, "T": 6, "staleness": 8, "adv_value": -1.0},
    {"label": "Markov V4 T6 N4", "V": 4, "T": 6, "staleness": 4, "policy": "markov"},
    {"label": "prefix V3 T8 N4", "V": 3, "T": 8, "staleness": 4, "policy": "prefix"},
    {"label": "CF V4 T8 N4 end token", "V": 4, "T": 8, "staleness": 4, "end_token": True},
    {
        "label": "Markov V4 T6 bf16+flips",
        "V": 4,
        "T": 6,
        "staleness": 1,
        "policy": "markov",
        "mismatch": "bf16",
        "flip_prob": 0.05,
    },  # fmt: skip
    {"label": "lattice V8 T64 N1", "V": 8, "T": 64, "staleness": 1, "drift": "lattice"},
    {"label": "lattice V8 T1024 N1", "V": 8, "T": 1024, "staleness": 1, "drift": "lattice"},
    {
        "label": "lattice V8 T1024 N1 A<0",
        "V": 8,
        "T": 1024,
        "staleness": 1,
        "drift": "lattice",
        "adv_value": -1.0,
    },  # fmt: skip
    {"label": "lattice V8 T4096 N2", "V": 8, "T": 4096, "staleness": 2, "drift": "lattice"},
]

CONFIG: dict = {"scenarios": SCENARIOS, "drift_size": 0.1, "seed": 0}
FAST: dict = {}  # every scenario is exact and quick (about 4 s in all)


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def scenario_config(cfg: dict, sc: dict):
    """The simulator's configuration of one scenario (A constant: one kernel branch)."""
    from paper_figures._exact import ar_config

    fields = {k: v for k, v in sc.items() if k != "label"}
    fields.setdefault("adv_value", 1.0)
    fields.setdefault("drift", "fixed")
    return ar_config(adv_mode="constant", drift_size=cfg["drift_size"], seed=cfg["seed"], **fields)


def compute(cfg: dict | None = None) -> dict:
    from paper_figures._exact import e_phi_w, kernel_for_sign
    from simulations.runners import simulate_ar
    from vespo_theory.bounds import phi_K

    cfg = dict(CONFIG if cfg is None else cfg)
    if not cfg["scenarios"]:
        raise ValueError("scenarios: at least one scenario is needed")
    cols: dict[str, list] = {
        key: [] for key in ("E_phi", "E_phi2", "M", "M2", "K", "E_phiW", "var", "B3_bound", "adv")
    }
    labels, methods = [], []
    for sc in cfg["scenarios"]:
        mc = scenario_config(cfg, sc)
        res = simulate_ar(mc, ["vespo"], method="exact")
        (rec,) = res["rules"]
        b = rec["bounds"]
        k, lam = kernel_for_sign(mc.adv_value)
        e_pw, _, _ = e_phi_w(mc, k, lam)
        labels.append(sc["label"])
        methods.append(res["method"])
        cols["E_phi"].append(rec["E_phi"])
        cols["E_phi2"].append(rec["E_phi2"])
        cols["M2"].append(rec["bound_M2"])
        cols["M"].append(b["B1"]["bound"])
        cols["K"].append(phi_K(k, lam))
        cols["E_phiW"].append(e_pw)
        cols["var"].append(b["B3"]["observed"])
        cols["B3_bound"].append(b["B3"]["bound"])
        cols["adv"].append(mc.adv_value)
    out = {key: np.asarray(v, dtype=np.float64) for key, v in cols.items()}
    out["B2_ratio"] = out["E_phi2"] / (out["M"] * out["E_phi"])
    out["B2b_ratio"] = out["E_phi2"] / out["M2"]
    out["B3_ratio"] = out["var"] / out["B3_bound"]
    out["P4_ratio"] = out["E_phi2"] / (out["K"] * out["E_phiW"])
    out["P4_over_M2"] = out["K"] * out["E_phiW"] / out["M2"]
    out["labels"] = labels
    out["methods"] = methods
    out["config"] = cfg
    return out


_KEYS = ("E_phi", "E_phi2", "M", "M2", "K", "E_phiW", "var", "B3_bound", "adv", "B2_ratio",
         "B2b_ratio", "B3_ratio", "P4_ratio", "P4_over_M2")  # fmt: skip


def arrays(data: dict) -> dict:
    out = {key: data[key] for key in _KEYS}
    out["labels"] = np.asarray(data["labels"])
    out["methods"] = np.asarray(data["methods"])
    return out


def evidence(arr: dict) -> dict[str, str]:
    """One line per claim (B2, B3, P4), from the saved arrays (read by ``vespo report``)."""
    n = len(arr["labels"])

    def line(keys: tuple[str, ...]) -> str:
        worst = max(float(np.max(arr[k])) for k in keys)
        # 1e-12 relative: float64 rounding of exact sums (as tests/test_fig_theory.py allows)
        verdict = "holds" if worst <= 1 + 1e-12 else "VIOLATED"
        return f"exact, {n} scenarios: largest observed / bound {worst:.3g} ({verdict})"

    return {"B2": line(("B2_ratio", "B2b_ratio")), "B3": line(("B3_ratio",)),
            "P4": line(("P4_ratio",))}  # fmt: skip


def summary(data: dict) -> list[dict]:
    return [
        {
            "scenario": lab,
            "method": data["methods"][i],
            "B2: E phi^2/(M E phi)": float(data["B2_ratio"][i]),
            "B2: E phi^2/M^2": float(data["B2b_ratio"][i]),
            "B3: var/bound": float(data["B3_ratio"][i]),
            "P4: E phi^2/(K E phi W)": float(data["P4_ratio"][i]),
            "K E phi W / M^2": float(data["P4_over_M2"][i]),
        }
        for i, lab in enumerate(data["labels"])
    ]


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, new_figure, quantity

    fig, (ax, axw) = new_figure(
        1, 2, figsize=(WIDTH_PAGE, 4.2), gridspec_kw={"width_ratios": [2.2, 1.0]},
        sharey=True, constrained_layout=True,
    )  # fmt: skip
    n = len(data["labels"])
    y = np.arange(n)[::-1]  # first scenario on top
    offsets = {"B2": 0.27, "B2b": 0.09, "B3": -0.09, "P4": -0.27}
    markers = {"B2": "o", "B2b": "o", "B3": "s", "P4": "D"}
    for key, off in offsets.items():
        q = quantity(key)
        ax.plot(data[f"{key}_ratio"], y + off, marker=markers[key], linestyle="", markersize=4,
                color=q["color"], label=q["label"])  # fmt: skip
    ax.axvline(1.0, color="k", linewidth=0.9)
    ax.text(1.0, n - 0.45, " bound", fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("observed / bound (1 = tight)")
    tag = {"multinomial": "counts", "enumeration": "enum", "lattice": "lattice"}
    ax.set_yticks(
        y, [f"{lab} [{tag.get(m, m)}]" for lab, m in zip(data["labels"], data["methods"])]
    )
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_title("tightness of each bound")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4,
               frameon=False, fontsize=7)  # fmt: skip
    lg = np.log10(data["P4_over_M2"])
    axw.barh(y, lg, color=[quantity("P4")["color"] if v < 0 else quantity("M2")["color"]
                           for v in lg], height=0.55)  # fmt: skip
    axw.axvline(0.0, color="k", linewidth=0.8)
    axw.set_xlabel(r"$\log_{10}(K E[\varphi W] / M^2)$")
    axw.set_title("smaller bound on $E[\\varphi^2]$:\nP4 (left) or $M^2$ (right)")
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "SCENARIOS", "arrays", "compute", "plot", "summary"]
