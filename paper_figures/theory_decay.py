r"""E_mu[phi(W_T)] decays exponentially in T at the Chernoff rate (claim D1), exactly.

For i.i.d. tokens (here two token values, mu = (0.5, 0.5) and pi = (0.5 - d, 0.5 + d) for three
drifts d) the kernel's mean weight E_mu[phi(W_T)] is an exact binomial sum in log space
(:func:`simulations.multinomial.log_expectation` with :func:`vespo_theory.kernels.log_phi`),
for T up to 16384. Claim D1: -(1/T) log E_mu[phi(W_T)] tends to the Chernoff information
C(mu, pi) = -min_{s in [0,1]} log E_mu[r^s] (when k exceeds the minimiser s*), and at every T
E_mu[phi] <= inf_s C_s (E_mu[r^s])^T. So VESPO silently scales the gradient of long or stale
sequences down by about e^(-C T): an implicit learning-rate decay (claim M4 gives the limit 0).
C, s* and the bound come from :mod:`vespo_theory.variational` (the normaliser of the geometric
path Q_s is E_mu[r^s]).
"""

from __future__ import annotations

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="theory_decay",
    claims=("D1", "M4"),
    title="E[phi] against T and the Chernoff rate (claim D1), exact binomial sums",
    caption=(
        "The mean VESPO weight E_mu[phi(W_T)] for i.i.d. tokens (mu = (0.5, 0.5), pi = "
        "(0.5 - d, 0.5 + d), three drifts d; (k, lam) = (2, 3), A > 0), exact binomial sums in "
        "log space. Left: E_mu[phi] on a log axis against T, with the finite-T bound of claim D1 "
        "inf_s C_s (E_mu r^s)^T (dash-dot) and the Chernoff-rate line e^(-C T) through the last "
        "point (dashed). Right: -(1/T) log E_mu[phi] converges to the Chernoff information "
        "C(mu, pi) = -min_s log E_mu[r^s] (dashed). The decay is an implicit learning-rate "
        "decay with length and staleness (claims M4, D1; arXiv 2602.10693 §3)."
    ),
)

CONFIG: dict = {
    "mu": [0.5, 0.5],
    "drifts": [0.05, 0.1, 0.2],
    "adv": 1.0,
    "T": [2**i for i in range(15)],  # 1 ... 16384
}
FAST: dict = {"T": [2**i for i in range(0, 15, 2)]}


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def token_laws(cfg: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mu, pi) per drift d: pi = mu + (-d, +d)."""
    mu = np.asarray(cfg["mu"], dtype=np.float64)
    if mu.shape != (2,):
        raise ValueError(f"mu: two token probabilities, got {cfg['mu']!r}")
    out = []
    for d in cfg["drifts"]:
        pi = mu + np.array([-d, d])
        if not (np.all(pi > 0) and np.all(pi < 1)):
            raise ValueError(f"drifts: {d!r} puts pi = {pi.tolist()} outside (0, 1)")
        out.append((mu, pi))
    return out


def compute(cfg: dict | None = None) -> dict:
    from paper_figures._exact import kernel_for_sign
    from simulations.multinomial import log_expectation
    from vespo_theory import variational as var
    from vespo_theory.kernels import log_phi

    cfg = dict(CONFIG if cfg is None else cfg)
    Ts = cfg["T"]
    if not Ts or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in Ts):
        raise ValueError(f"T: must be a non-empty list of integers >= 1, got {Ts!r}")
    k, lam = kernel_for_sign(cfg["adv"])
    T = np.asarray(Ts, dtype=np.float64)
    log_e, log_b, rate, s_star = [], [], [], []
    for mu, pi in token_laws(cfg):
        c, s = var.chernoff_information(mu, pi)
        rate.append(c)
        s_star.append(s)
        log_e.append(
            [
                log_expectation(np.log(mu), np.log(pi), int(t), lambda x: log_phi(x, k, lam))
                for t in Ts
            ]
        )
        log_b.append([var.log_d1_bound(mu, pi, k, lam, int(t))[0] for t in Ts])
    log_e = np.asarray(log_e)
    return {
        "T": T,
        "drifts": np.asarray(cfg["drifts"], dtype=np.float64),
        "log_E_phi": log_e,
        "E_phi": np.exp(log_e),
        "log_D1_bound": np.asarray(log_b),
        "rate": -log_e / T[None, :],
        "chernoff": np.asarray(rate),
        "s_star": np.asarray(s_star),
        "k": np.float64(k),
        "lam": np.float64(lam),
        "config": cfg,
    }


def arrays(data: dict) -> dict:
    keys = ("T", "drifts", "log_E_phi", "E_phi", "log_D1_bound", "rate", "chernoff", "s_star",
            "k", "lam")  # fmt: skip
    return {key: data[key] for key in keys}


def evidence(arr: dict) -> dict[str, str]:
    """One line for claim D1, from the saved arrays (the ``.npz``; read by ``vespo report``)."""
    # 1e-12 in log space: the rounding of log-space sums (as tests/test_fig_theory.py allows)
    held = bool(np.all(arr["log_E_phi"] <= arr["log_D1_bound"] + 1e-12))
    rel = np.abs(arr["rate"][:, -1] / arr["chernoff"] - 1)
    return {
        "D1": (
            f"exact binomial sums, T up to {int(arr['T'][-1])}, drifts "
            f"{', '.join(f'{d:g}' for d in arr['drifts'])}: E[phi] <= the finite-T bound at "
            f"every T: {'yes' if held else 'NO'}; -(1/T) log E[phi] within "
            f"{100 * rel.max():.0f}% of the Chernoff information at the largest T"
        )
    }


def summary(data: dict) -> list[dict]:
    rows = []
    for i, d in enumerate(data["drifts"]):
        rows.append(
            {
                "drift d": float(d),
                "Chernoff C": float(data["chernoff"][i]),
                "s*": float(data["s_star"][i]),
                f"E[phi] at T={int(data['T'][-1])}": float(data["E_phi"][i, -1]),
                f"-(1/T) log E[phi] at T={int(data['T'][-1])}": float(data["rate"][i, -1]),
                "D1 bound / E[phi] (last T)": float(
                    np.exp(data["log_D1_bound"][i, -1] - data["log_E_phi"][i, -1])
                ),
            }
        )
    return rows


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, new_figure, quantity, ramp

    fig, (ax, axr) = new_figure(1, 2, figsize=(WIDTH_PAGE, 3.4), constrained_layout=True)
    T = data["T"]
    for i, d in enumerate(data["drifts"]):
        c = ramp("vespo", i)  # VESPO's hue, darker = larger drift
        ax.plot(T, data["E_phi"][i], color=c, marker="o", markersize=2.5,
                label=rf"$E_\mu[\varphi]$, $d$ = {d:g}")  # fmt: skip
        ax.plot(T, np.exp(data["log_D1_bound"][i]), color=c, linestyle="-.", linewidth=1.0)
        # the rate line e^(-C T), anchored at the last T
        anchor = data["log_E_phi"][i, -1] + data["chernoff"][i] * T[-1]
        ax.plot(T, np.exp(anchor - data["chernoff"][i] * T), color=c, linestyle="--",
                linewidth=0.9)  # fmt: skip
        axr.plot(T, data["rate"][i], color=c, marker="o", markersize=2.5,
                 label=rf"$d$ = {d:g}: $C$ = {data['chernoff'][i]:.3g}")  # fmt: skip
        axr.axhline(data["chernoff"][i], color=c, linestyle="--", linewidth=0.9)
    # legend entries for the line styles (colour-neutral)
    ax.plot([], [], color="0.3", linestyle="-.", linewidth=1.0,
            label=r"D1 bound $\inf_s C_s (E_\mu r^s)^T$")  # fmt: skip
    ax.plot([], [], color="0.3", linestyle="--", linewidth=0.9,
            label=r"rate line $\propto e^{-C\,T}$")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylim(max(float(np.min(data["E_phi"])) / 10, 1e-300), 3.0)
    ax.set_xlabel("sequence length $T$ (tokens)")
    ax.set_ylabel(r"$E_\mu[\varphi(W_T)]$ (dimensionless)")
    ax.set_title(r"mean weight against $T$")
    ax.legend(loc="lower left", frameon=False, fontsize=7)
    axr.set_xscale("log", base=2)
    axr.set_yscale("log")
    axr.set_xlabel("sequence length $T$ (tokens)")
    axr.set_ylabel(r"$-\frac{1}{T}\log E_\mu[\varphi]$ (nats per token)")
    axr.set_title(r"decay rate $\to$ Chernoff information $C$")
    axr.plot([], [], **quantity("chernoff", color="0.3"))
    axr.legend(loc="lower left", frameon=False, fontsize=7)
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "plot", "summary", "token_laws"]
