r"""The variance bound at the gradient level in the small-LM lab, per response-length bin
(claims B3, P4, L1a, G1 of arXiv 2602.10693's theory; ``vespo validate-bound``).

Data: the committed table ``docs/lm_validate/validate_fast.csv`` (config key ``table``,
relative to the repository root unless absolute), the whole output of ``vespo validate-bound
--fast`` as ``python scripts/regen_lm_docs.py --only validate_fast`` writes it: task count-long,
32 prompts x G = 4 = 128 responses of 100-1,024 tokens sampled from mu (the warm start) and
differentiated under pi (mu after 8 stale RL steps); columns documented in
:mod:`simulations.lm.validate`. This module draws the table and computes nothing: every plotted
number is a CSV cell parsed with ``float``.

Per rule and length bin (powers of two; bins with fewer than 2 sequences and the ``all`` row are
not drawn): ``var_trace`` = tr Cov of the per-sequence estimate x_i = c_i A_i g_i, the B3 bound
``bound_B3`` = M^2 E||A g||^2 and their ratio ``tightness``. B3 (Var[phi g] <= E[phi^2 ||g||^2]
<= M^2 E||g||^2) holds sample by sample because c <= M pointwise, so under the empirical law of
the bin every tightness is <= 1 by construction; the figure shows how much room it leaves.
Panel (c) is L1a: the squared score norm E||g||^2 (and E||A g||^2, the factor of B3's bound)
grows with T, with the least-squares line ||g_i||^2 = a + b T_i that the ``all`` row records
(over all sequences, HC1 95 % intervals). The summary table adds P4 (VESPO: E[phi^2] <=
K E[phi W] per bin) and G1 (``all`` rows: ``g1_ratio``, the group-mean variance over B3's
i.i.d. bound M^2 E||A g||^2 / G).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled

DEFAULT_TABLE = "docs/lm_validate/validate_fast.csv"
DATA_COMMAND = "python scripts/regen_lm_docs.py --only validate_fast"
#: per-bin columns carried into the arrays (``<rule>__<column>``)
COLUMNS = ("len_lo", "len_hi", "n", "mean_T", "var_trace", "bound_B3", "tightness", "E_g2",
           "E_score2", "E_phi2", "K_E_phiW")  # fmt: skip
#: the ``all`` row's columns (``<rule>__all__<column>``)
ALL_COLUMNS = ("n", "mean_T", "var_trace", "bound_B3", "tightness", "E_g2", "E_score2", "g1_ratio")
L1_KEYS = ("l1_slope", "l1_slope_lo", "l1_slope_hi", "l1_intercept", "l1_intercept_lo",
           "l1_intercept_hi")  # fmt: skip
MARKERS = {"vespo": "o", "seq_tis": "s", "reinforce": "^", "is": "D"}

CONFIG: dict = {
    "table": DEFAULT_TABLE,
    "rules": ["vespo", "seq_tis", "reinforce", "is"],
    "fit_rule": "vespo",  # the rule whose ``all`` row gives the L1 fit (every rule shares g)
    "min_n": 2,
}
FAST: dict = {}  # the figure only reads a table


def table_path(table) -> Path:
    from paper_figures._lab import tables_dir

    return tables_dir(table)


FIGURE = FigureSpec(
    name="theory_grad_bound",
    claims=("B3", "P4", "L1a", "G1"),
    title="B3 at the gradient level in the small-LM lab, per response-length bin",
    caption=(
        "The variance bound B3 measured on exact per-sequence gradients of a small language "
        "model, per response-length bin. Data: docs/lm_validate/validate_fast.csv, written by "
        f"'{DATA_COMMAND}' (it runs 'vespo validate-bound --fast'): a ~200k-parameter 2-layer "
        "transformer on the synthetic counting task count-long (the paper trained a 30B model "
        "on maths), 32 prompts x G = 4 = 128 responses of 100-1,024 tokens sampled from mu "
        "(the warm start) and differentiated under pi (mu after 8 stale RL steps), GRPO group "
        "advantages A, score g = grad log pi(y). (a) Per-sample variance tr Cov(c A g) "
        "(markers, solid) and B3's bound M^2 E||A g||^2 (dashed, same colour) against the "
        "bin's mean length, for VESPO (M = 1.2416), sequence TIS (M = 2) and REINFORCE "
        "(c = 1); IS has no bound (W unbounded) and is drawn as its variance only. (b) "
        "Tightness = variance / bound, with the bound at 1: B3 holds sample by sample "
        "(c <= M), so every point is below 1 by construction and the figure shows by how much "
        "(n = sequences per bin). (c) Claim L1a: E||g||^2 and E||A g||^2 per bin against the "
        "mean length, with the least-squares line ||g||^2 = a + b T over all 128 sequences "
        "(95 % HC1 interval of b). Bins with fewer than 2 sequences are not drawn; every "
        "number is a cell of the table (arXiv 2602.10693, claims B3, L1a; the summary adds "
        "P4 and G1)."
    ),
    data_command=DATA_COMMAND,
    available=lambda: table_path(CONFIG["table"]).is_file(),
)


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_table(table) -> list[dict]:
    """The CSV rows; FileNotFoundError naming the command that writes the table."""
    path = table_path(table)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run: {DATA_COMMAND}")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def compute(cfg: dict | None = None) -> dict:
    cfg = dict(CONFIG if cfg is None else cfg)
    rows = read_table(cfg["table"])
    if not rows:
        raise ValueError(f"table: {table_path(cfg['table'])} has no rows")
    min_n = int(cfg["min_n"])
    rules, per_rule = [], {}
    for rule in cfg["rules"]:
        mine = [r for r in rows if r["rule"] == rule]
        if not mine:
            continue  # a rule the table does not have is left out (as theory_staleness does)
        bins = [r for r in mine if r["length_bin"] != "all" and _num(r["n"]) >= min_n]
        bins.sort(key=lambda r: _num(r["len_lo"]))
        entry = {c: np.asarray([_num(r.get(c)) for r in bins], dtype=float) for c in COLUMNS}
        entry["bins"] = np.asarray([r["length_bin"] for r in bins], dtype=str)
        everything = [r for r in mine if r["length_bin"] == "all"]
        for c in ALL_COLUMNS:
            entry[f"all__{c}"] = np.float64(_num(everything[0].get(c)) if everything else math.nan)
        per_rule[rule] = entry
        rules.append(rule)
    if not rules:
        have = sorted({r["rule"] for r in rows})
        raise ValueError(f"rules: none of {cfg['rules']} is in the table; it has {have}")
    fit_rows = [r for r in rows if r["rule"] == cfg["fit_rule"] and r["length_bin"] == "all"]
    if not fit_rows:
        raise ValueError(f"fit_rule: the table has no 'all' row for {cfg['fit_rule']!r}")
    fit = {k: np.float64(_num(fit_rows[0][k])) for k in L1_KEYS}
    fit_T = np.asarray([_num(fit_rows[0]["len_lo"]), _num(fit_rows[0]["len_hi"])], dtype=float)
    return {
        "rules": rules,
        "per_rule": per_rule,
        "fit_rule": cfg["fit_rule"],
        "fit_n": int(_num(fit_rows[0]["n"])),
        **fit,
        "fit_T": fit_T,
        "fit_y": fit["l1_intercept"] + fit["l1_slope"] * fit_T,
        "table": str(table_path(cfg["table"])),
        "config": cfg,
    }


def bounded(entry: dict) -> bool:
    """True when the rule has B3's bound (a finite bound_B3 in some drawn bin)."""
    return bool(np.isfinite(entry["bound_B3"]).any())


def arrays(data: dict) -> dict:
    """Every plotted array: ``<rule>__<column>`` per bin, ``<rule>__all__<column>``, the fit."""
    out: dict = {"rules": np.asarray(data["rules"], dtype=str)}
    for rule in data["rules"]:
        for key, v in data["per_rule"][rule].items():
            out[f"{rule}__{key}"] = v
    for k in (*L1_KEYS, "fit_T", "fit_y"):
        out[k] = data[k]
    out["fit_n"] = np.int64(data["fit_n"])
    return out


def evidence(arr: dict) -> dict[str, str]:
    """One line each for B3, L1a, P4 and G1, from the saved arrays (read by ``vespo report``)."""
    rules = [str(r) for r in arr["rules"]]
    tight = {r: arr[f"{r}__tightness"] for r in rules}
    tight = {r: t[np.isfinite(t)] for r, t in tight.items() if np.isfinite(t).any()}
    out = {}
    if tight:
        worst_rule = max(tight, key=lambda r: float(tight[r].max()))
        worst = float(tight[worst_rule].max())
        nbins = sum(t.size for t in tight.values())
        n_all = int(arr[f"{worst_rule}__all__n"])
        vespo = (
            f"; VESPO's {float(tight['vespo'].min()):.3g}-{float(tight['vespo'].max()):.3g}"
            if "vespo" in tight
            else ""
        )
        out["B3"] = (
            f"small-LM lab, vespo validate-bound --fast (count-long, {n_all} sequences, exact "
            f"per-sequence gradients): tr Cov / M^2 E||Ag||^2 over {nbins} (rule, length bin) "
            f"pairs of {', '.join(tight)}: max {worst:.4g} ({worst_rule}) < 1: "
            f"{'yes' if worst < 1 else 'NO'}{vespo}"
        )
    b, lo, hi = (float(arr[k]) for k in ("l1_slope", "l1_slope_lo", "l1_slope_hi"))
    out["L1a"] = (
        f"small-LM lab (count-long, {int(arr['fit_n'])} sequences of "
        f"{int(arr['fit_T'][0])}-{int(arr['fit_T'][1])} tokens): least-squares "
        f"||grad log pi||^2 = a + b T, b = {b:.4g} [{lo:.4g}, {hi:.4g}] per token (95 %, HC1): "
        f"grows with T: {'yes' if lo > 0 else 'not significant'}"
    )
    if "vespo__E_phi2" in arr and np.isfinite(arr["vespo__K_E_phiW"]).any():
        ok = np.isfinite(arr["vespo__K_E_phiW"])
        ratio = arr["vespo__E_phi2"][ok] / arr["vespo__K_E_phiW"][ok]
        out["P4"] = (
            f"small-LM lab (count-long): VESPO's E[phi^2] / K E[phi W] per length bin "
            f"(empirical law, {int(ok.sum())} bins): max {float(ratio.max()):.3g} <= 1: "
            f"{'yes' if float(ratio.max()) <= 1 else 'NO'}"
        )
    g1 = {r: float(arr[f"{r}__all__g1_ratio"]) for r in rules
          if math.isfinite(float(arr[f"{r}__all__g1_ratio"]))}  # fmt: skip
    if g1:
        out["G1"] = (
            "small-LM lab (count-long, groups of G = 4): group-mean variance / B3's i.i.d. "
            "bound M^2 E||Ag||^2 / G: "
            + ", ".join(f"{r} {v:.3g}" for r, v in g1.items())
            + f" (above 1 in this run: {'yes' if max(g1.values()) > 1 else 'no'})"
        )
    return out


def summary(data: dict) -> list[dict]:
    rows = []
    for rule in data["rules"]:
        e = data["per_rule"][rule]
        for i, b in enumerate(e["bins"]):
            rows.append({"rule": rule, "bin": str(b), "n": int(e["n"][i]),
                         "mean T": float(e["mean_T"][i]), "var_trace": float(e["var_trace"][i]),
                         "bound_B3": float(e["bound_B3"][i]),
                         "tightness": float(e["tightness"][i]), "E||Ag||^2": float(e["E_g2"][i]),
                         "E||g||^2": float(e["E_score2"][i]), "E_phi2": float(e["E_phi2"][i]),
                         "K_E_phiW": float(e["K_E_phiW"][i]),
                         "g1_ratio": math.nan})  # fmt: skip
        rows.append({"rule": rule, "bin": "all", "n": int(e["all__n"]),
                     "mean T": float(e["all__mean_T"]), "var_trace": float(e["all__var_trace"]),
                     "bound_B3": float(e["all__bound_B3"]),
                     "tightness": float(e["all__tightness"]),
                     "E||Ag||^2": float(e["all__E_g2"]), "E||g||^2": float(e["all__E_score2"]),
                     "E_phi2": math.nan, "K_E_phiW": math.nan,
                     "g1_ratio": float(e["all__g1_ratio"])})  # fmt: skip
    return rows


def meta(data: dict) -> dict:
    """The sidecar's record of the table read."""
    return {"validate_table": data["table"], "l1_fit_rule": data["fit_rule"]}


def _length_axis(ax) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([100, 200, 500, 1000]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(90, 1100)
    ax.set_xlabel("mean length $T$ of the bin (tokens)")


@styled
def plot(data: dict):
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from paper_figures._style import WIDTH_PAGE, colour, label, new_figure

    fig, (ax, axt, axl) = new_figure(1, 3, figsize=(WIDTH_PAGE, 3.4), constrained_layout=True)
    handles = []
    for rule in data["rules"]:
        e = data["per_rule"][rule]
        c, m = colour(rule), MARKERS.get(rule, "o")
        has = bounded(e)
        name = label(rule) + ("" if has else " (no bound)")
        ax.plot(e["mean_T"], e["var_trace"], color=c, marker=m, markersize=4, linestyle="-",
                label=f"{name}: tr Cov")  # fmt: skip
        if has:
            ax.plot(e["mean_T"], e["bound_B3"], color=c, linestyle="--", linewidth=1.2,
                    label=f"{label(rule)}: B3 bound")  # fmt: skip
            axt.plot(e["mean_T"], e["tightness"], color=c, marker=m, markersize=4,
                     label=label(rule))  # fmt: skip
        handles.append(Line2D([], [], color=c, marker=m, markersize=4, label=name))
    ax.set_yscale("log")
    _length_axis(ax)
    ax.set_ylabel(r"squared gradient norm (per sample)")
    ax.set_title("(a) tr Cov$(c\\,A\\,g)$ (solid) and\n$M^2 E\\|A g\\|^2$ (dashed)", fontsize=9)

    axt.axhline(1.0, color="0.2", linestyle=":", linewidth=1.2)
    axt.text(95, 1.12, "bound (B3)", fontsize=7, color="0.2", va="bottom")
    axt.set_yscale("log")
    _length_axis(axt)
    lo = min(float(np.nanmin(data["per_rule"][r]["tightness"])) for r in data["rules"]
             if bounded(data["per_rule"][r]))  # fmt: skip
    axt.set_ylim(lo / 3, 3.0)
    axt.set_ylabel(r"tightness: tr Cov / $M^2 E\|A g\|^2$")
    axt.set_title("(b) room left by B3\n(below 1 by construction)", fontsize=9)
    first = data["per_rule"][data["rules"][0]]
    for t, n in zip(first["mean_T"], first["n"]):  # sequences per bin (shared by the rules)
        axt.annotate(f"n={int(n)}", (t, lo / 3), xytext=(0, 2), textcoords="offset points",
                     ha="center", va="bottom", fontsize=6.5, color="0.35")  # fmt: skip

    e = data["per_rule"][data["fit_rule"]]
    axl.plot(e["mean_T"], e["E_score2"], color="0.15", marker="o", markersize=4, linestyle="",
             label=r"$E\|g\|^2$ per bin")  # fmt: skip
    axl.plot(e["mean_T"], e["E_g2"], color="0.5", marker="o", markersize=4, linestyle="",
             markerfacecolor="none", label=r"$E\|A g\|^2$ per bin")  # fmt: skip
    b, blo, bhi = data["l1_slope"], data["l1_slope_lo"], data["l1_slope_hi"]
    fit_label = (
        f"fit $a + bT$ (all {data['fit_n']}):\n$b$ = {b:.0f} / token,\n95 %: [{blo:.0f}, {bhi:.0f}]"
    )
    axl.plot(data["fit_T"], data["fit_y"], color="0.15", linestyle="--", linewidth=1.2,
             label=fit_label)  # fmt: skip
    axl.axhline(0.0, color="0.6", linewidth=0.6)
    axl.set_xlabel("mean length $T$ of the bin (tokens)")
    axl.set_ylabel(r"mean squared gradient norm ($10^5$)")
    axl.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e5:g}"))
    axl.set_title("(c) L1a: $E\\|g\\|^2$ grows with $T$\n(shared by the rules)", fontsize=9)
    top = max(float(np.nanmax(data["fit_y"])), float(np.nanmax(e["E_score2"])))
    axl.set_ylim(top=1.4 * top)  # room for the legend above the data
    axl.legend(loc="upper left", frameon=False, fontsize=6.5)

    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="tr Cov (measured)"),
        Line2D([], [], color="0.3", linestyle="--", label=r"B3 bound $M^2 E\|A g\|^2$"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False,
               fontsize=7)  # fmt: skip
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "evidence", "meta", "plot",
           "summary"]  # fmt: skip
