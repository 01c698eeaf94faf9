"""Shared code of the small-LM lab's figures and tables (arXiv 2602.10693 Figs. 3-12, Tables 1-4).

The lab's study (``simulations/lm/study.py``, run by ``python scripts/lm_study.py BLOCK --run
--jobs 2``) writes per block ``<block>.results.csv``, ``.summary.csv``, ``.paired.csv`` and
``.curves.csv`` into ``docs/lm_study/``. Every lab figure has a config key ``tables``: that
folder, relative to the repository root (``REPO``, as :mod:`paper_figures.report` locates
``docs/lm.md``) unless absolute, so a test can point a figure at a copy. A figure is available
only when the CSV files it reads exist; it never draws anything else.

A curve figure's ``compute`` returns ``{"panels": [...], ...}``: each panel a title, a y label
and its lines, each line the arm (the study's label), the CSV column, the steps, the means and
the 95 % half-widths **as read from** ``<block>.curves.csv``. :func:`plot_panels`,
:func:`curve_arrays` and :func:`curve_summary` draw, save and print exactly those arrays.

A table's ``compute`` (:func:`forest_table`) returns ``{"rows": [...], "forest": [...], ...}``:
per picked summary row the metric with its CI and VESPO minus that arm paired by seed, drawn as
a forest plot (:func:`forest_plot`, :func:`table_arrays`). What every lab module shares of the
figure protocol comes from here too (:func:`config`, :func:`resolver`, :func:`block_meta`,
:func:`panels_plot`), so a module holds only its spec, its config and its selection.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TABLES = "docs/lm_study"
ALL_COMMAND = "python scripts/lm_study.py all --run --jobs 2"

#: What every lab caption says about the scale (the paper trains a 30B model).
SCALE = (
    "Small-LM lab analogue, not the paper's run: a 2-layer transformer (d_model 64 unless "
    "stated) warm-started by SFT and trained here from a seed with GRPO-style group advantages "
    "(G = 8, 8 prompts per mini-batch, Adam lr 3e-4) for 256 optimizer steps on a synthetic "
    "task ({task}); mini-batch i of a rollout batch is i policy versions stale (staleness N). "
    "The paper trains a 30B model on maths (code for Fig. 12 / Table 4) for hundreds to "
    "thousands of steps."
)
TASKS = {
    "add": "'add', column-wise addition, reward 1 for the right sum",
    "stack": "'stack', a postfix program rewarded by executing it",
}

#: Axis labels with units of the curve columns of ``<block>.curves.csv``.
YLABELS = {
    "reward": "training reward (fraction correct)",
    "heldout_success": "held-out success (fraction)",
    "response_length": "response length (tokens)",
    "ppo_kl": "ppo_kl (nats / token)",
    "kl_sampler": "KL(sampler || trainer) (nats / token)",
    "entropy": "entropy (nats / token)",
    "loss": "PG loss (per token)",
    "grad_norm": "gradient norm before clipping (L2)",
    "clip_frac": "clipped fraction",
    "zero_frac": "zeroed fraction",
    "ess_frac": "ESS / B",
    "log_w_std": "std of sequence log W (nats)",
    "coef_neg_mean": "mean coefficient on A < 0 tokens",
    "coef_neg_over_pos": "coefficient ratio, A < 0 over A >= 0",
}
TITLES = {
    "reward": "training reward",
    "heldout_success": "held-out success",
    "response_length": "response length",
    "ppo_kl": "ppo_kl",
    "kl_sampler": "KL(sampler || trainer)",
    "entropy": "entropy",
    "loss": "PG loss",
    "grad_norm": "gradient norm",
    "coef_neg_mean": "coefficient on A < 0",
    "coef_neg_over_pos": "A < 0 / A >= 0 coefficient",
}
STEP_LABEL = "optimizer step"

#: Display names of the lab-only rules (the paper's names; _style.LABELS has the others).
_LAB_NAMES = {
    "vespo_sqrt": r"VESPO on $W^{1/\sqrt{T}}$",
    "vespo_lin": r"VESPO on $W^{1/T}$",
    "vespo_sym23": "VESPO, (2,3) both signs",
    "vespo_sym32": "VESPO, (3,2) both signs",
    "topr": "TOPR",
    "bapo": "BAPO",
    "vcpo": "VCPO",
}
# fixed reserve-colour index of each rule without an own colour in _style (stable across figures)
_RESERVE = {"vespo_sqrt": 0, "vespo_lin": 1, "vespo_sym23": 4, "vespo_sym32": 2, "topr": 0,
            "bapo": 1, "vcpo": 2}  # fmt: skip


def rule_label(rule: str) -> str:
    from paper_figures._style import LABELS, label

    return label(rule) if rule in LABELS else _LAB_NAMES.get(rule, rule)


def rule_colour(rule: str) -> str:
    from paper_figures._style import colour

    return colour(rule, _RESERVE.get(rule, 0))


def shade(color: str, i: int, n: int) -> tuple:
    """The i-th of n shades of ``color``: light (mixed with white) to dark (mixed with black),
    as _style's ramps (light = mild, dark = strong staleness)."""
    from matplotlib.colors import to_rgb

    rgb = np.array(to_rgb(color))
    t = 0.0 if n <= 1 else i / (n - 1)  # 0 = lightest
    if t < 0.5:
        mix = rgb + (1 - rgb) * (0.55 * (1 - 2 * t))
    else:
        mix = rgb * (1 - 0.5 * (2 * t - 1))
    return tuple(float(v) for v in np.clip(mix, 0, 1))


# ------------------------------------------------------------------------------------ files
def tables_dir(tables) -> Path:
    p = Path(tables)
    return p if p.is_absolute() else REPO / p


def data_command(block: str) -> str:
    return f"python scripts/lm_study.py {block} --run --jobs 2"


def table_path(tables, block: str, kind: str) -> Path:
    return tables_dir(tables) / f"{block}.{kind}.csv"


def has_tables(tables, block: str, kinds) -> bool:
    return all(table_path(tables, block, k).is_file() for k in kinds)


def availability(config: dict, block: str, kinds):
    """``FigureSpec.available`` of a lab figure: the block's tables exist under the config's
    ``tables`` (read at call time, so a changed ``CONFIG["tables"]`` is seen)."""
    return lambda: has_tables(config["tables"], block, kinds)


def read_table(tables, block: str, kind: str) -> list[dict]:
    path = table_path(tables, block, kind)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run: {data_command(block)}")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def manifest(tables, block: str) -> dict:
    """The block's entry of ``MANIFEST.json`` (command, commit, runs), or {} if absent."""
    path = tables_dir(tables) / "MANIFEST.json"
    try:
        return dict(json.loads(path.read_text()).get(block, {}))
    except (OSError, ValueError, AttributeError):
        return {}


def source_meta(cfg: dict, blocks) -> dict:
    """The sidecar's record of the tables a figure read."""
    return {
        "lab_tables": str(tables_dir(cfg["tables"])),
        "lab_blocks": {b: manifest(cfg["tables"], b) for b in blocks},
    }


# ----------------------------------------------------------------------------------- curves
def arm_fields(row: dict) -> dict:
    return {
        "arm": row["arm"],
        "task": row.get("task", "add") or "add",
        "d_model": int(num(row.get("d_model", 64))),
        "rule": row["rule"],
        "staleness": int(num(row["staleness"])),
        "mismatch": row.get("mismatch", "none") or "none",
        "correction": row.get("correction", "entangled") or "entangled",
        "routing_replay": str(row.get("routing_replay", "")).lower() in ("true", "1"),
        "n_expert": int(num(row.get("n_expert", 0)) or 0),
        "async_lag": int(num(row.get("async_lag", 0)) or 0),
    }


def read_curves(tables, block: str) -> dict[str, dict]:
    """arm label -> its fields, ``rows`` (the CSV rows in step order) and ``seeds`` (from the
    ``seeds`` column, else the number of runs of the arm in ``<block>.results.csv``)."""
    rows = read_table(tables, block, "curves")
    out: dict[str, dict] = {}
    for r in rows:
        a = out.setdefault(r["arm"], {**arm_fields(r), "rows": []})
        a["rows"].append(r)
    for a in out.values():
        a["rows"].sort(key=lambda r: int(num(r["step"])))
    counts: dict[str, set] = {}
    if table_path(tables, block, "results").is_file():
        for r in read_table(tables, block, "results"):
            counts.setdefault(r["arm"], set()).add(r.get("seed"))
    for label, a in out.items():
        col = [num(r.get("seeds")) for r in a["rows"]]
        col = [c for c in col if math.isfinite(c)]
        a["seeds"] = int(max(col)) if col else len(counts.get(label, ()))
    return out


def find_arms(curves: dict, **want) -> list[str]:
    """The arm labels whose fields equal ``want`` (defaults: task add, d_model 64, no mismatch,
    entangled, no replay, dense, no async lag), in the order of the table."""
    base = {"task": "add", "d_model": 64, "mismatch": "none", "correction": "entangled",
            "routing_replay": False, "n_expert": 0, "async_lag": 0}  # fmt: skip
    base.update(want)
    return [k for k, a in curves.items() if all(a[f] == v for f, v in base.items())]


def series(arm: dict, col: str) -> dict:
    """Steps, means and 95 % half-widths of one column of one arm: the rows where the mean is
    finite (held-out success exists only at evaluations); half-width NaN where the table has
    none (one seed, or a table written before the ``_hw`` columns)."""
    steps, ys, hws = [], [], []
    for r in arm["rows"]:
        y = num(r.get(col))
        if math.isfinite(y):
            steps.append(num(r["step"]))
            ys.append(y)
            hws.append(num(r.get(f"{col}_hw")))
    return {"x": np.asarray(steps), "y": np.asarray(ys), "hw": np.asarray(hws)}


def line(arm: dict, col: str, label: str, color, linestyle: str = "-") -> dict:
    return {"arm": arm["arm"], "col": col, "label": label, "color": color,
            "linestyle": linestyle, "seeds": arm["seeds"], **series(arm, col)}  # fmt: skip


def seeds_text(curves: dict, arms) -> str:
    n = sorted({curves[a]["seeds"] for a in arms})
    if not n:
        return "no seeds"
    s = "/".join(str(k) for k in n)
    return f"{s} seed{'s' if n != [1] else ''}"


def nseeds(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"


def slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


def curve_arrays(data: dict) -> dict:
    """Every plotted array: ``p<i>__<arm>__<col>__{x,y,hw}`` per line of panel i."""
    out = {}
    for i, p in enumerate(data["panels"]):
        for ln in p["lines"]:
            key = f"p{i}__{slug(ln['arm'])}__{ln['col']}"
            for part in ("x", "y", "hw"):
                out[f"{key}__{part}"] = ln[part]
    return out


def curve_summary(data: dict) -> list[dict]:
    rows = []
    for p in data["panels"]:
        for ln in p["lines"]:
            if ln["y"].size == 0:
                continue
            rows.append({"panel": p["title"], "arm": ln["arm"], "column": ln["col"],
                         "seeds": ln["seeds"], "last step": int(ln["x"][-1]),
                         "last value": float(ln["y"][-1]),
                         "95% half-width": float(ln["hw"][-1]),
                         "max": float(np.max(ln["y"]))})  # fmt: skip
    return rows


#: The range each bounded column can take: a t band of few seeds can leave it (a success rate
#: below 0 when one seed collapses), so the band is drawn clipped to it; the data keep hw.
COLUMN_RANGES = {
    **{c: (0.0, 1.0) for c in ("reward", "heldout_success", "ess_frac", "clip_frac", "zero_frac")},
    **{c: (0.0, math.inf) for c in ("response_length", "kl_sampler", "entropy", "grad_norm",
                                    "log_w_std", "coef_neg_over_pos")},
}  # fmt: skip


def plot_panels(data: dict, ncols: int, *, width=None, height_per_row=2.1, legend_cols=4):
    """A grid of curve panels with one shared legend below the grid (never over the data):
    mean lines, 95 % bands where the table has half-widths, a note on panels with no data."""
    from matplotlib.ticker import FormatStrFormatter

    from paper_figures._style import WIDTH_PAGE, new_figure

    panels = data["panels"]
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(width or WIDTH_PAGE, 0.9 + height_per_row
                           * nrows), constrained_layout=True, squeeze=False)  # fmt: skip
    handles: dict[str, object] = {}
    for ax, p in zip(axes.flat, panels):
        for ln in p["lines"]:
            if ln["y"].size == 0:
                continue
            (h,) = ax.plot(ln["x"], ln["y"], color=ln["color"], linestyle=ln["linestyle"],
                           marker="o" if ln["x"].size <= 12 else None, markersize=2.5)  # fmt: skip
            band = np.isfinite(ln["hw"])
            if band.any():
                lo, hi = ln["y"] - ln["hw"], ln["y"] + ln["hw"]
                if ln["col"] in COLUMN_RANGES:  # drawn inside the column's range
                    lo, hi = (
                        np.clip(lo, *COLUMN_RANGES[ln["col"]]),
                        np.clip(hi, *COLUMN_RANGES[ln["col"]]),
                    )
                ax.fill_between(ln["x"][band], lo[band], hi[band], color=ln["color"],
                                alpha=0.18, linewidth=0)  # fmt: skip
            if ln["label"] is not None:
                handles.setdefault(ln["label"], h)
        if not any(ln["y"].size for ln in p["lines"]):
            ax.text(0.5, 0.5, "no data in the table", transform=ax.transAxes, ha="center",
                    va="center", color="0.4")  # fmt: skip
        title = p["title"] + (f"\n({p['note']})" if p.get("note") else "")
        ax.set_title(title, fontsize=data.get("title_size", 8.5 if "\n" in title else 9))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))  # no offset text over titles
        ax.set_ylabel(p["ylabel"], fontsize=8)
        ax.set_xlabel(STEP_LABEL, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    extra = [(Line2D([], [], color=c, linestyle=s), lb) for c, s, lb in data.get("legend", [])]
    if handles or extra:
        hs = list(handles.values()) + [h for h, _ in extra]
        ls = list(handles) + [lb for _, lb in extra]
        fig.legend(hs, ls, loc="outside lower center", ncol=min(legend_cols, len(ls)),
                   frameon=False, fontsize=7.5)  # fmt: skip
    return fig


def need(curves: dict, arms: list[str], what: str) -> list[str]:
    if not arms:
        raise ValueError(f"the table has no arm for {what}; arms: {', '.join(curves)}")
    return arms


# ----------------------------------------------------------------------------------- tables
def ci_text(m, lo, hi, digits: int = 3) -> str:
    m, lo, hi = num(m), num(lo), num(hi)
    if not math.isfinite(m):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{m:.{digits}f} (one seed, no CI)"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table_arrays(data: dict) -> dict:
    """The forest plot's arrays (labels, means, CI bounds) and every numeric CSV column."""
    f = data["forest"]
    out = {"labels": np.asarray([p["label"] for p in f], dtype=str),
           "mean": np.asarray([p["mean"] for p in f], dtype=float),
           "lo": np.asarray([p["lo"] for p in f], dtype=float),
           "hi": np.asarray([p["hi"] for p in f], dtype=float)}  # fmt: skip
    for col in data["rows"][0] if data["rows"] else ():
        vals = [r[col] for r in data["rows"]]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[f"table__{slug(col)}"] = np.asarray(vals, dtype=float)
    return out


def plot_forest(data: dict, xlabel: str, *, width=None):
    """A table drawn as a forest plot: one row per entry, the mean and its 95 % interval."""
    from paper_figures._style import WIDTH_COLUMN, new_figure

    f = data["forest"]
    fig, ax = new_figure(1, 1, figsize=(width or WIDTH_COLUMN + 1.2, 0.9 + 0.22 * len(f)),
                         constrained_layout=True)  # fmt: skip
    y = np.arange(len(f))[::-1]
    for yi, p in zip(y, f):
        lo, hi = p["lo"], p["hi"]
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color=p["color"], linewidth=1.4)
        ax.plot([p["mean"]], [yi], "o", color=p["color"], markersize=4)
    ax.set_yticks(y)
    ax.set_yticklabels([p["label"] for p in f], fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="y", alpha=0)
    ax.set_ylim(-0.7, len(f) - 0.3)
    return fig


__all__ = [
    "ALL_COMMAND",
    "DEFAULT_TABLES",
    "REPO",
    "arm_rows_markdown",
    "availability",
    "block_meta",
    "ci_text",
    "config",
    "forest_plot",
    "forest_table",
    "panels_plot",
    "resolver",
    "rule_label_at",
    "rules_at_staleness",
    "rules_by_staleness",
    "rules_by_staleness_markdown",
    "rules_by_staleness_table",
    "rules_grid_data",
    "table_rows",
    "table_summary",
    "curve_arrays",
    "curve_summary",
    "data_command",
    "find_arms",
    "has_tables",
    "line",
    "manifest",
    "plot_forest",
    "plot_panels",
    "read_curves",
    "read_table",
    "rule_colour",
    "rule_label",
    "series",
    "shade",
    "table_arrays",
]


# ------------------------------------------------------------------------------------ specs
#: Seeds of each block's full run (docs/lm.md); the fast variants have 1 seed (and the legends
#: and tables give each arm's own count, read from the table).
SEEDS = {
    "s1": "10 seeds (0-9) at N = 1, 16, 64 and 3 at N = 4, 8, 32",
    "s3": "5 seeds per arm",
    "s4": "5 seeds per arm",
    "s5": "3 seeds per arm",
    "s6": "5 seeds per arm",
    "s7": "3 seeds per arm",
    "s8": "3 seeds per arm",
    "async": "3 seeds per arm",
}
KINDS_CURVES = ("curves", "results")
KINDS_TABLE = ("summary", "paired")


def config(**keys) -> dict:
    """A lab module's ``CONFIG``: the tables folder (key ``tables``, default
    :data:`DEFAULT_TABLES`), then ``keys`` in their order."""
    return {"tables": DEFAULT_TABLES, **keys}


def lab_spec(name, paper, title, what, block, config, claims, *, kind="figure", task="add",
             kinds=KINDS_CURVES):  # fmt: skip
    """The FigureSpec of a lab figure or table: caption with the scale, block, protocol and
    seeds; available only when the block's ``kinds`` tables exist under ``config["tables"]``."""
    from paper_figures import FigureSpec

    files = ", ".join(f"{block}.{k}.csv" for k in kinds)
    band = (
        " Lines: means over seeds; bands: 95 % Student-t intervals over seeds (none with one seed)."
        if kind == "figure"
        else " Entries: the protocol metric heldout_last_k (mean greedy held-out success over "
        "the last 4 evaluations, steps 160-256) with its 95 % Student-t interval over seeds."
    )
    caption = (
        f"{what} {SCALE.format(task=TASKS[task])} Block {block} (configs/study/{block}.json; "
        "protocol: docs/lm.md, 'The paper's experiments at small scale (claims S1-S8)'); "
        f"{SEEDS[block]}.{band} Data: {files} in the config's tables folder (default "
        f"{DEFAULT_TABLES}/)."
    )
    return FigureSpec(name=name, title=title, caption=caption, paper=paper, kind=kind,
                      claims=tuple(claims), data_command=data_command(block),
                      available=availability(config, block, kinds))  # fmt: skip


def rules_grid(curves: dict, rules, ns, columns, *, legend="{rule} ({seeds})",
               **fields) -> tuple[list[dict], list[int]]:  # fmt: skip
    """Panels for rows N in ``ns`` (those in the table) x ``columns``, the ``rules`` overlaid
    in their colours (legend: ``legend`` of the rule and its seeds); ValueError if no N is in
    the table."""
    rows = [n for n in ns if find_arms(curves, staleness=n, **fields)]
    need(curves, rows, f"N in {list(ns)}" + (f" with {fields}" if fields else ""))
    panels = []
    for n in rows:
        for col in columns:
            lines = []
            for rule in rules:
                for a in find_arms(curves, rule=rule, staleness=n, **fields):
                    label = legend.format(rule=rule_label(rule), seeds=nseeds(curves[a]["seeds"]))
                    lines.append(line(curves[a], col, label, rule_colour(rule)))
            panels.append({"title": f"{TITLES[col]}, N = {n}", "ylabel": YLABELS[col],
                           "lines": lines})  # fmt: skip
    return panels, rows


def read_summary(tables, block: str) -> list[dict]:
    """``<block>.summary.csv`` rows with the arm fields parsed (see :func:`arm_fields`)."""
    return [{**r, **arm_fields(r)} for r in read_table(tables, block, "summary")]


def read_paired(tables, block: str) -> dict[str, dict]:
    """``<block>.paired.csv`` by comparison label (``"vespo N=8 - topr N=8"``)."""
    return {r["comparison"]: r for r in read_table(tables, block, "paired")}


def metric_row(s: dict, **extra) -> dict:
    """One table row of a summary row: the arm, seeds, heldout_last_k's mean and 95 % CI."""
    row = {"arm": s["arm"], "rule": s["rule"], "N": s["staleness"], **extra,
           "seeds": int(num(s["seeds"])), "metric_mean": num(s["metric_mean"]),
           "metric_lo": num(s["metric_lo"]), "metric_hi": num(s["metric_hi"]),
           "collapsed": int(num(s.get("collapsed", 0)) or 0)}  # fmt: skip
    return row


def add_paired(row: dict, paired: dict, label: str, prefix: str) -> dict:
    """The paired comparison ``label`` (A - B by seed) as ``<prefix>_diff/_lo/_hi/_outcome``;
    empty cells when the table has no such comparison."""
    p = paired.get(label)
    for k in ("diff", "lo", "hi"):
        row[f"{prefix}_{k}"] = num(p[k]) if p else ""
    row[f"{prefix}_outcome"] = p["outcome"] if p else ""
    return row


def forest_point(row: dict, label: str) -> dict:
    return {"label": label, "mean": row["metric_mean"], "lo": row["metric_lo"],
            "hi": row["metric_hi"], "color": rule_colour(row["rule"])}  # fmt: skip


def md_caption(name: str, spec_title: str, rows: list[dict]) -> str:
    n = sorted({r["seeds"] for r in rows})
    return (f"**{name}**: {spec_title}. heldout_last_k, mean [95 % t interval] over seeds "
            f"({'/'.join(map(str, n))} per arm).\n\n")  # fmt: skip


METRIC_LABEL = "heldout_last_k: held-out success, mean of the last 4 evaluations (fraction)"


# --------------------------------------------------------------------- the figure protocol
# What every lab module shares: its config resolution, sidecar record, drawing and arrays.
def resolver(config: dict, fast_changes: dict):
    """A module's ``resolve_config(fast=False, **overrides)`` over its ``CONFIG`` and ``FAST``
    (the dicts themselves, so a changed ``CONFIG["tables"]`` is seen)."""
    from paper_figures._io import merge_config

    def resolve_config(fast: bool = False, **overrides) -> dict:
        return merge_config(config, fast_changes, fast, overrides)

    return resolve_config


def block_meta(*blocks: str):
    """A module's ``meta(data)``: the sidecar's record of the blocks' tables it read."""

    def meta(data: dict) -> dict:
        return source_meta(data["config"], list(blocks))

    return meta


def panels_plot(ncols: int | None = None, *, width: float | None = None, **kw):
    """A curve figure's ``plot(data)``: :func:`plot_panels` under the shared style, ``ncols``
    columns (None: one per config column), ``width`` a fraction of the page width (None: the
    page width); ``kw`` goes to :func:`plot_panels` (``height_per_row``, ``legend_cols``)."""

    from paper_figures._style import WIDTH_PAGE, styled

    @styled
    def plot(data: dict):
        n = len(data["config"]["columns"]) if ncols is None else ncols
        return plot_panels(data, ncols=n, width=None if width is None else width * WIDTH_PAGE,
                           **kw)  # fmt: skip

    return plot


def rules_grid_data(cfg: dict, block: str, **fields) -> dict:
    """A rows N x columns figure's data (Figs. 4, 11, 12): :func:`rules_grid` of the block's
    curves over ``cfg["rules"]``, ``cfg["staleness"]`` and ``cfg["columns"]``."""
    curves = read_curves(cfg["tables"], block)
    panels, rows = rules_grid(curves, cfg["rules"], cfg["staleness"], cfg["columns"], **fields)
    return {"panels": panels, "rows": rows, "config": cfg}


def rules_at_staleness(cfg: dict, block: str) -> dict:
    """One panel per column of ``cfg["columns"]`` at the one staleness ``cfg["staleness"]``,
    the rules ``cfg["rules"]`` overlaid (legend: "rule, k seeds"; Figs. 6 and 7); ValueError
    when the table has no arm at that N."""
    curves = read_curves(cfg["tables"], block)
    n = int(cfg["staleness"])
    need(curves, find_arms(curves, staleness=n), f"N = {n}")
    panels, _ = rules_grid(curves, cfg["rules"], [n], cfg["columns"], legend="{rule}, {seeds}")
    return {"panels": panels, "config": cfg}


# ---------------------------------------------------------------- tables as forest plots
def forest_table(cfg: dict, block: str, picks, label, what: str = "", extra=None, *,
                 staleness=None) -> dict:  # fmt: skip
    """A table's data: one row per summary row that ``picks(summary rows)`` yields, as
    ``(row, VESPO's arm at the same setting or None)``, in that order: the metric with its CI
    (:func:`metric_row`, plus ``extra(row)``), VESPO minus the row's arm paired by seed
    (``vespo_minus_*``, empty for VESPO itself or without a VESPO arm) and the forest point
    ``label(row)``; ValueError "no arm of rules ... {what}" when nothing is picked. With
    ``staleness`` N, ``picks`` sees only the rows at N (and ``what`` defaults to "at N = N")."""
    summ = read_summary(cfg["tables"], block)
    if staleness is not None:
        n = int(staleness)
        summ = [s for s in summ if s["staleness"] == n]
        what = what or f"at N = {n}"
    paired = read_paired(cfg["tables"], block)
    rows, forest = [], []
    for s, vespo in picks(summ):
        r = metric_row(s, **(extra(s) if extra else {}))
        pair = f"{vespo} - {s['arm']}" if vespo is not None and s["rule"] != "vespo" else ""
        rows.append(add_paired(r, paired, pair, "vespo_minus"))
        forest.append(forest_point(r, label(s)))
    if not rows:
        raise ValueError(f"{block}: no arm of rules {cfg['rules']} {what}")
    return {"rows": rows, "forest": forest, "config": cfg}


def rules_by_staleness(summ: list[dict], rules, ns, **fields):
    """The picks of a rules x N table (Tables 2-4): for each N in ``ns``, each rule in
    ``rules``, the rows without mismatch whose fields equal ``fields``, with VESPO's arm at
    that N (the last VESPO row of those fields at that N)."""
    summ = [s for s in summ if all(s[k] == v for k, v in fields.items())]
    vespo = {s["staleness"]: s["arm"] for s in summ if s["rule"] == "vespo"}
    for n in ns:
        for rule in rules:
            for s in summ:
                if s["rule"] == rule and s["staleness"] == n and s["mismatch"] == "none":
                    yield s, vespo.get(n)


def rules_by_staleness_table(cfg: dict, block: str, **fields) -> dict:
    """The data of a rules x N table (Tables 2 and 4): :func:`forest_table` of
    :func:`rules_by_staleness` over ``cfg["rules"]`` and ``cfg["staleness"]``."""
    return forest_table(
        cfg, block, lambda summ: rules_by_staleness(summ, cfg["rules"], cfg["staleness"], **fields),
        rule_label_at("staleness", "N"), f"at N in {cfg['staleness']}",
    )  # fmt: skip


def rule_label_at(key: str, name: str):
    """A forest label "<rule>, <name> = <row[key]>" (``key`` a summary field)."""
    return lambda s: f"{rule_label(s['rule'])}, {name} = {s[key]}"


def _minus_cell(r: dict) -> str:
    ci = ci_text(r["vespo_minus_diff"], r["vespo_minus_lo"], r["vespo_minus_hi"])
    return ci if r["vespo_minus_outcome"] else "–"


def arm_rows_markdown(data: dict, spec, lead, minus: str) -> str:
    """A table's Markdown, one line per row: the columns ``lead(row)``, seeds, the metric with
    its CI, collapsed seeds and ``minus`` (VESPO minus the row, paired) with its outcome."""
    rows = data["rows"]
    md = [{**lead(r), "seeds": r["seeds"],
           "heldout_last_k [95 % CI]": ci_text(r["metric_mean"], r["metric_lo"], r["metric_hi"]),
           "collapsed seeds": r["collapsed"], f"{minus} [95 % CI]": _minus_cell(r),
           "outcome": r["vespo_minus_outcome"] or "–"} for r in rows]  # fmt: skip
    from paper_figures._io import markdown_table

    return md_caption(spec.name, spec.title, rows) + markdown_table(md)


def rules_by_staleness_markdown(data: dict, spec) -> str:
    """A rules x N table's Markdown: the metric per rule (rows) and N (columns), then VESPO
    minus each rule, paired by seed, per N."""
    rows, cfg = data["rows"], data["config"]
    ns = [n for n in cfg["staleness"] if any(r["N"] == n for r in rows)]
    head = "| rule | " + " | ".join(f"N = {n}" for n in ns) + " |"
    out = [md_caption(spec.name, spec.title, rows) + head, "|---|" + "---|" * len(ns)]
    for rule in cfg["rules"]:
        cells = {r["N"]: ci_text(r["metric_mean"], r["metric_lo"], r["metric_hi"])
                 for r in rows if r["rule"] == rule}  # fmt: skip
        if cells:
            out.append(f"| {rule_label(rule)} | "
                       + " | ".join(cells.get(n, "–") for n in ns) + " |")  # fmt: skip
    out += [
        "",
        "VESPO minus each rule, paired by seed (95 % t interval; outcome against the "
        "expected sign A > B):",
        "",
        "| comparison | N | difference | outcome |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["vespo_minus_outcome"]:
            ci = ci_text(r["vespo_minus_diff"], r["vespo_minus_lo"], r["vespo_minus_hi"])
            out.append(f"| VESPO - {rule_label(r['rule'])} | {r['N']} | {ci} | "
                       f"{r['vespo_minus_outcome']} |")  # fmt: skip
    return "\n".join(out) + "\n"


def table_rows(data: dict) -> list[dict]:
    """A table's ``table(data)``: its rows (written as CSV)."""
    return data["rows"]


def table_summary(data: dict) -> list[dict]:
    """A table's ``summary(data)``: a copy of each row."""
    return [dict(r) for r in data["rows"]]


def forest_plot(data: dict):
    """A table's ``plot(data)``: its forest plot of heldout_last_k, under the shared style."""
    from paper_figures._style import RC, plt

    with plt.rc_context(RC):
        return plot_forest(data, METRIC_LABEL)
