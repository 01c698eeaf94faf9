r"""PSIS k-hat and ESS/n of the weights against T, with the sample-size dependent threshold.

Monte Carlo (seeded) on a context-free model with a large vocabulary (V = 1000, fixed drift
0.1, staleness 1, A = +1; many distinct token ratios, so the weights look continuous and the
generalized Pareto fit behind k-hat is meaningful from T = 1 on). For S sequences drawn from
mu: the PSIS k-hat (Vehtari et al., arXiv 1507.02646;
:func:`vespo_theory.diagnostics.psis_khat`) of the sequence IS weights W and of VESPO's
phi(W), and the Kish ESS per sample, (sum w)^2 / (S sum w^2), against T. A k-hat above the
threshold min(1 - 1/log10 S, 0.7) (:func:`vespo_theory.diagnostics.khat_threshold`; their
Eq. 13) says the S draws are too few for that tail. IS crosses it as T grows (E[W^2] grows
exponentially, claim M2); VESPO's bounded weights (claim B1) keep k-hat < 0 until E[phi]
itself collapses, when the few sequences with W near 1 carry all the weight. The exact ESS/n
of IS is 1 / E_mu[W^2] = Z(2)^-T (claims M1, M2; Z(2) = E_mu[r^2] from
:func:`vespo_theory.variational.log_path_normaliser`). Source:
:func:`simulations.runners.simulate_ar` (method "mc").
"""

from __future__ import annotations

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="theory_ess",
    claims=("M2",),
    title="k-hat and ESS/n of the IS and VESPO weights against T (Monte Carlo, seeded)",
    caption=(
        "PSIS k-hat (left) and Kish ESS/n (right) of the sequence IS weights W and of VESPO's "
        "phi(W) against the length T, from S Monte Carlo sequences (seeded; context-free, "
        "V = 1000, fixed drift 0.1, staleness 1). Dotted: the sample-size dependent k-hat "
        "threshold min(1 - 1/log10 S, 0.7) (Vehtari et al., arXiv 1507.02646, Eq. 13) for "
        "each S. IS crosses it as T grows (E[W^2] grows exponentially, claim M2); VESPO's "
        "bounded weights (claim B1, arXiv 2602.10693 Prop. C.1) keep k-hat < 0 until E[phi] "
        "collapses at the longest T. Dashed: the exact ESS/n of IS, 1/E_mu[W^2] (M2)."
    ),
)

CONFIG: dict = {
    "V": 1000,
    "drift_size": 0.1,
    "staleness": 1,
    "T": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    "S": [100, 2000],
    "seed": 0,
}
FAST: dict = {"T": [1, 4, 16, 64, 256, 1024], "S": [100, 1000]}


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def model_config(cfg: dict, T: int):
    from paper_figures._exact import ar_config

    return ar_config(
        V=cfg["V"], T=int(T), policy="context-free", drift="fixed",
        drift_size=cfg["drift_size"], staleness=cfg["staleness"], adv_mode="constant",
        adv_value=1.0, seed=cfg["seed"],
    )  # fmt: skip


def _nan_if_none(x) -> float:
    return float("nan") if x is None else float(x)


def compute(cfg: dict | None = None) -> dict:
    from simulations.runners import simulate_ar
    from simulations.tabular import make_ar_model
    from vespo_theory.diagnostics import khat_threshold
    from vespo_theory.variational import log_path_normaliser

    cfg = dict(CONFIG if cfg is None else cfg)
    Ts, Ss = cfg["T"], cfg["S"]
    for key, vals, lo in (("T", Ts, 1), ("S", Ss, 20)):
        if not vals or any(isinstance(v, bool) or not isinstance(v, int) or v < lo for v in vals):
            raise ValueError(f"{key}: must be a non-empty list of integers >= {lo}, got {vals!r}")
    shape = (len(Ss), len(Ts))
    khat_w, khat_phi = np.full(shape, np.nan), np.full(shape, np.nan)
    ess_w, ess_phi = np.full(shape, np.nan), np.full(shape, np.nan)
    thresh = np.array([khat_threshold(int(S)) for S in Ss])
    for i, S in enumerate(Ss):
        for j, T in enumerate(Ts):
            res = simulate_ar(model_config(cfg, T), ["vespo"], method="mc", n_mc=int(S))
            (rec,) = res["rules"]
            khat_w[i, j] = _nan_if_none(res["summary"]["khat_W"])
            ess_w[i, j] = res["summary"]["ess_W"]
            khat_phi[i, j] = _nan_if_none(rec["khat"])
            ess_phi[i, j] = rec["ess"]
            # the simulator's own threshold for the S draws it fitted: the same formula
            if rec.get("khat_thresh") is not None and rec["khat_thresh"] != thresh[i]:
                raise RuntimeError(f"threshold mismatch at S = {S}: {rec['khat_thresh']}")
    # exact: E_mu[W] = 1 (M1) and E_mu[W^2] = Z(2)^T (M2), so ESS/n = Z(2)^-T
    model = make_ar_model(model_config(cfg, 1))
    log_z2 = float(
        log_path_normaliser(np.exp(model.log_behaviour[0]), np.exp(model.log_pi[0]), 2.0)[0]
    )
    exact_ess_w = np.exp(-log_z2 * np.asarray(Ts, dtype=np.float64))
    return {
        "T": np.asarray(Ts, dtype=np.float64),
        "S": np.asarray(Ss, dtype=np.int64),
        "khat_W": khat_w,
        "khat_phi": khat_phi,
        "ess_W": ess_w,
        "ess_phi": ess_phi,
        "threshold": thresh,
        "exact_ess_W": exact_ess_w,
        "seed": np.int64(cfg["seed"]),
        "config": cfg,
    }


def arrays(data: dict) -> dict:
    keys = ("T", "S", "khat_W", "khat_phi", "ess_W", "ess_phi", "threshold", "exact_ess_W", "seed")
    return {key: data[key] for key in keys}


def summary(data: dict) -> list[dict]:
    rows = []
    for i, S in enumerate(data["S"]):
        above = data["khat_W"][i] > data["threshold"][i]
        first = int(data["T"][np.argmax(above)]) if above.any() else None
        rows.append(
            {
                "S": int(S),
                "threshold": float(data["threshold"][i]),
                "first T with k-hat(W) above": first,
                "k-hat(W) at max T": float(data["khat_W"][i, -1]),
                "max k-hat(phi)": float(np.nanmax(data["khat_phi"][i])),
                "ESS/n of W at max T": float(data["ess_W"][i, -1]),
                "ESS/n of phi at max T": float(data["ess_phi"][i, -1]),
            }
        )
    return rows


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, label, new_figure, quantity, ramp

    fig, (ax, axe) = new_figure(1, 2, figsize=(WIDTH_PAGE, 3.7), constrained_layout=True)
    T = data["T"]
    n_s = len(data["S"])
    for i, S in enumerate(data["S"]):
        shade = i + (4 - n_s)  # darkest = largest S
        c_is, c_v = ramp("is", shade), ramp("vespo", shade)
        ax.plot(T, data["khat_W"][i], color=c_is, marker="o", markersize=3,
                label=f"{label('is')} $W$, $S$ = {S}")  # fmt: skip
        ax.plot(T, data["khat_phi"][i], color=c_v, marker="s", markersize=3,
                label=rf"{label('vespo')} $\varphi(W)$, $S$ = {S}")  # fmt: skip
        ax.axhline(data["threshold"][i], color=c_is, linestyle=":", linewidth=1.1)
        below = i == 0 and n_s > 1  # the smaller S's line is the lower one: label it below
        ax.text(T[0], data["threshold"][i], f" threshold, $S$ = {S}: {data['threshold'][i]:.3f}",
                fontsize=7, va="top" if below else "bottom", color="0.25")  # fmt: skip
        axe.plot(T, data["ess_W"][i], color=c_is, marker="o", markersize=3,
                 label=f"{label('is')} $W$, $S$ = {S}")  # fmt: skip
        axe.plot(T, data["ess_phi"][i], color=c_v, marker="s", markersize=3,
                 label=rf"{label('vespo')} $\varphi(W)$, $S$ = {S}")  # fmt: skip
    axe.plot(T, data["exact_ess_W"], color="k", linestyle="--", linewidth=1.0,
             label=r"IS exact $1/E_\mu[W^2]$")  # fmt: skip
    for a in (ax, axe):
        a.set_xscale("log", base=2)
        a.set_xlabel("sequence length $T$ (tokens)")
    ax.set_ylabel(r"PSIS $\hat k$ (tail index)")
    ax.set_title(r"$\hat k$ against $T$; dotted: $\min(1 - 1/\log_{10} S,\ 0.7)$")
    axe.set_yscale("log")
    axe.set_ylabel("Kish ESS / $S$")
    axe.set_title("effective sample size per draw")
    fig.legend(*axe.get_legend_handles_labels(), loc="outside lower center", ncol=3,
               frameon=False, fontsize=7)  # fmt: skip
    _ = quantity  # the threshold style is the dotted line above
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "model_config", "plot", "summary"]
