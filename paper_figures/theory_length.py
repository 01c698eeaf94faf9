r"""The length story, exactly: the weight moments and the variance of VESPO against T.

At a fixed per-token drift (context-free tokens, V = 8, the lattice drift of
:mod:`simulations.tabular`: every token log-ratio is c0 + 0.1 m, m in {-1, 0, 1}, staleness
N = 1, A = +1), the exact lattice method gives for T = 1 ... 4096:

* left: E_mu[W^2] of sequence IS (grows exactly exponentially, claim M2), VESPO's E_mu[phi] and
  E_mu[phi^2] (both fall towards 0, claim M4), and the two bounds on E_mu[phi^2]: M^2 of B2
  (constant) and K E_mu[phi W] of P4 (arXiv 2602.10693 Prop. 3.1, Eqs. 18-19);
* right: the trace of the covariance of one sequence's gradient estimate phi(W) A grad log pi
  for VESPO and IS, and B3's bound M^2 E_mu||g||^2, which grows with T (L1a) while VESPO's
  variance is non-monotone and falls again once phi vanishes (L1b).

Sources: :func:`simulations.runners.simulate_ar` (method "lattice": E_phi, E_phi2, var_trace,
the closed form log E[W^2] and E||g||^2), and :func:`paper_figures._exact.e_phi_w` (the same
lattice law, for E[phi W]); K is :func:`vespo_theory.bounds.phi_K`.
"""

from __future__ import annotations

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="theory_length",
    claims=("M2", "B2", "B3", "P4", "L1a", "L1b", "M4"),
    title="weight moments, bounds and variance against the length T (exact lattice)",
    caption=(
        "The length story at a fixed per-token drift (context-free, V = 8, lattice drift 0.1, "
        "staleness 1, A = +1), exact (lattice method). Left: E_mu[W^2] of sequence IS grows "
        "exponentially in T (claim M2); VESPO's E_mu[phi] and E_mu[phi^2] fall towards 0 (M4); "
        "E_mu[phi^2] stays below M^2 (B2) and below K E_mu[phi W] (P4; arXiv 2602.10693 "
        "Prop. 3.1, Eqs. 18-19). Right: the trace of the covariance of one sequence's estimate "
        "for VESPO and IS, and B3's bound M^2 E_mu||g||^2, which grows with T (L1a) while "
        "VESPO's variance rises and falls again (L1b)."
    ),
)

CONFIG: dict = {
    "V": 8,
    "drift_size": 0.1,
    "staleness": 1,
    "adv": 1.0,
    "T": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    "seed": 0,
}
FAST: dict = {"T": [1, 4, 16, 64, 256, 1024, 4096]}


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def model_config(cfg: dict, T: int):
    """The simulator's configuration at length T (the one place the setting is spelled out)."""
    from paper_figures._exact import ar_config

    return ar_config(
        V=cfg["V"],
        T=int(T),
        policy="context-free",
        drift="lattice",
        drift_size=cfg["drift_size"],
        staleness=cfg["staleness"],
        adv_mode="constant",
        adv_value=cfg["adv"],
        seed=cfg["seed"],
    )


def compute(cfg: dict | None = None) -> dict:
    from paper_figures._exact import e_phi_w, kernel_for_sign
    from simulations.runners import simulate_ar
    from vespo_theory.bounds import phi_K

    cfg = dict(CONFIG if cfg is None else cfg)
    Ts = cfg["T"]
    if not Ts or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in Ts):
        raise ValueError(f"T: must be a non-empty list of integers >= 1, got {Ts!r}")
    k, lam = kernel_for_sign(cfg["adv"])
    K = phi_K(k, lam)
    cols = {
        key: []
        for key in ("log_E_W2", "E_phi", "E_phi2", "M2", "E_phiW", "E_phiW_err", "var_vespo",
                    "var_is", "E_g2", "err_E_phi", "err_E_phi2")
    }  # fmt: skip
    for T in Ts:
        mc = model_config(cfg, T)
        res = simulate_ar(mc, ["is", "vespo"], method="lattice")
        rec = {r["rule"]: r for r in res["rules"]}
        v = rec["vespo"]
        cols["log_E_W2"].append(res["summary"]["log_E_W2"])
        cols["E_phi"].append(v["E_phi"])
        cols["E_phi2"].append(v["E_phi2"])
        cols["err_E_phi"].append(v["abs_err"]["E_phi"])
        cols["err_E_phi2"].append(v["abs_err"]["E_phi2"])
        cols["M2"].append(v["bound_M2"])
        cols["var_vespo"].append(v["var_trace"])
        cols["var_is"].append(rec["is"]["var_trace"])
        cols["E_g2"].append(res["summary"]["E_g2"])
        e, err, _ = e_phi_w(mc, k, lam)
        cols["E_phiW"].append(e)
        cols["E_phiW_err"].append(err)
    out = {key: np.asarray(val, dtype=np.float64) for key, val in cols.items()}
    out["T"] = np.asarray(Ts, dtype=np.float64)
    out["E_W2"] = np.exp(out["log_E_W2"])
    out["K"] = np.float64(K)
    out["K_E_phiW"] = K * out["E_phiW"]
    out["B3_bound"] = out["M2"] * out["E_g2"]
    out["k"], out["lam"] = np.float64(k), np.float64(lam)
    out["config"] = cfg
    return out


_ARRAYS = ("T", "E_W2", "log_E_W2", "E_phi", "E_phi2", "M2", "K", "E_phiW", "K_E_phiW",
           "var_vespo", "var_is", "E_g2", "B3_bound", "err_E_phi", "err_E_phi2", "E_phiW_err",
           "k", "lam")  # fmt: skip


def arrays(data: dict) -> dict:
    return {key: data[key] for key in _ARRAYS}


def summary(data: dict) -> list[dict]:
    rows = []
    for i, T in enumerate(data["T"]):
        rows.append(
            {
                "T": int(T),
                "E[W^2]": float(data["E_W2"][i]),
                "E[phi]": float(data["E_phi"][i]),
                "E[phi^2]": float(data["E_phi2"][i]),
                "M^2": float(data["M2"][i]),
                "K E[phi W]": float(data["K_E_phiW"][i]),
                "var VESPO": float(data["var_vespo"][i]),
                "M^2 E|g|^2": float(data["B3_bound"][i]),
            }
        )
    return rows


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, colour, label, new_figure, quantity

    fig, (ax, axv) = new_figure(1, 2, figsize=(WIDTH_PAGE, 3.3), constrained_layout=True)
    T = data["T"]
    for key in ("E_W2", "M2", "K_E_phiW", "E_phi", "E_phi2"):
        ax.plot(T, data[key], marker="o", markersize=2.5, **quantity(key))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    lo = float(np.min(data["E_phi2"])) / 2
    top = 1e4
    ax.set_ylim(lo, top)
    if float(np.max(data["E_W2"])) > top:  # E[W^2] leaves the panel: say where it ends
        ax.text(
            0.64, 0.56, f"$E_\\mu[W^2]$ = {float(data['E_W2'][-1]):.2g}\nat $T$ = {int(T[-1])}"
            " (off scale)", transform=ax.transAxes, ha="right", va="center", fontsize=7,
            color=quantity("E_W2")["color"],
        )  # fmt: skip
    ax.set_xlabel("sequence length $T$ (tokens)")
    ax.set_ylabel("expectation under $\\mu$ (dimensionless)")
    ax.set_title("moments and the bounds on $E_\\mu[\\varphi^2]$")
    ax.legend(loc="upper left", frameon=False, fontsize=7)
    axv.plot(T, data["var_vespo"], marker="o", markersize=2.5, **quantity("var_vespo"))
    axv.plot(T, data["var_is"], marker="o", markersize=2.5, color=colour("is"),
             linestyle="--", label=f"{label('is')} tr Cov$[W A g]$")  # fmt: skip
    axv.plot(T, data["B3_bound"], marker="o", markersize=2.5, **quantity("B3_bound"))
    axv.set_xscale("log", base=2)
    axv.set_yscale("log")
    axv.set_xlabel("sequence length $T$ (tokens)")
    axv.set_ylabel("trace of the covariance (one sequence)")
    axv.set_title("variance of the gradient estimate (B3)")
    axv.legend(loc="upper left", frameon=False, fontsize=7)
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "model_config", "plot", "summary"]
