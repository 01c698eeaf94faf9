"""``vespo diagnose FILE [--json] [--out DIR]``: importance-weight diagnostics of a training log.

FILE is CSV, JSONL or Parquet with one row per sequence (``log_w``, ``length``, ``advantage``,
optional ``step``) or one row per token (``seq_id``, ``log_ratio`` or ``token_logp_new`` and
``token_logp_old``, ``advantage``, optional ``step``, ``mask``). The logic is in
:mod:`simulations.diagnose`; the formats and every reported quantity are in
docs/integrations.md. ``--out DIR`` writes ``diagnose.json``, ``diagnose.png`` (matplotlib,
imported only then) and the sidecar ``diagnose.sidecar.json``.
"""

from __future__ import annotations

import sys
import time

HELP = (
    "ESS/n, PSIS k-hat, chi^2, per-rule clip/bias/variance and a recommended correction from a "
    "training log (CSV, JSONL, Parquet)"
)


def _fraction(text: str) -> float:
    import argparse

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return v


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE", help="the log: .csv, .jsonl (.ndjson), .parquet (.pq)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument(
        "--out", metavar="DIR", default=None, help="write diagnose.json, diagnose.png and a sidecar"
    )
    p.add_argument(
        "--rule",
        action="append",
        dest="rules",
        metavar="NAME",
        default=None,
        help="a registered rule to report (repeat; default: every rule)",
    )
    p.add_argument(
        "--ess-target",
        type=_fraction,
        default=0.5,
        metavar="F",
        help="ESS/n the recommended correction must keep (default 0.5)",
    )
    p.add_argument(
        "--bias-target",
        type=_fraction,
        default=0.05,
        metavar="F",
        help="largest moved weight mass sum|c - W| / sum W allowed (default 0.05)",
    )


def plot_report(report: dict, log, path) -> None:
    """Four panels: log W histogram with the fitted normal; ESS/n and k-hat per step (or per
    length bin without steps); ESS/n and k-hat per length bin; each rule's clip fraction."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--out: the plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    o = report["overall"]
    a = ax[0, 0]
    a.hist(log.log_w, bins=60, density=True, color="0.7", label="measured log W")
    if "fit" in o:
        mu, s = o["fit"]["mu"], o["fit"]["sigma"]
        if s > 0:
            x = np.linspace(log.log_w.min(), log.log_w.max(), 400)
            a.plot(x, np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi)), "C3",
                   label=f"fitted N({mu:.3g}, {s:.3g}^2)")  # fmt: skip
    a.set_xlabel("log W")
    a.set_title(f"ESS/n = {o['ess_frac']:.3g}, k-hat = {o['khat']:.3g}")
    a.legend(fontsize=8)

    def series(a, groups, xs, xlabel):
        ess = [g.get("ess_frac", np.nan) for g in groups]
        kh = [g.get("khat", np.nan) for g in groups]
        thr = [g.get("khat_threshold", np.nan) for g in groups]
        a.plot(xs, ess, "o-", color="C0", label="ESS/n (raw W)")
        a.set_ylim(0, 1.05)
        a.set_xlabel(xlabel)
        a.set_ylabel("ESS/n", color="C0")
        b = a.twinx()
        b.plot(xs, kh, "s-", color="C1", label="k-hat")
        b.plot(xs, thr, "--", color="C1", alpha=0.6, label="min(1 - 1/log10 S, 0.7)")
        b.axhline(0.7, color="k", lw=0.8, ls=":")
        finite = [k for k in kh if k is not None and np.isfinite(k)]
        b.set_ylim(min([-0.2, *finite]) - 0.05, max([1.0, *finite]) + 0.05)
        b.set_ylabel("PSIS k-hat", color="C1")
        b.legend(fontsize=8, loc="upper right")

    bins = report["length_bins"]
    blabels = [f"[{g['len_lo']},{g['len_hi']})" for g in bins]
    if report["steps"]:
        series(ax[0, 1], report["steps"], [g["step"] for g in report["steps"]], "step")
    else:
        ax[0, 1].text(0.5, 0.5, "no step column", ha="center", va="center")
        ax[0, 1].set_axis_off()
    series(ax[1, 0], bins, range(len(bins)), "response length bin")
    ax[1, 0].set_xticks(range(len(bins)), blabels, rotation=30, fontsize=8)
    a = ax[1, 1]
    names = report["rules"]
    clip = [o["rules"][r]["clip_frac"] for r in names]
    rej = [o["rules"][r]["reject_frac"] for r in names]
    y = np.arange(len(names))
    a.barh(y - 0.2, clip, 0.4, label="clipped")
    a.barh(y + 0.2, rej, 0.4, label="rejected")
    a.set_yticks(y, names, fontsize=8)
    a.set_xlim(0, 1)
    a.set_xlabel("fraction of sequences")
    a.legend(fontsize=8)
    fig.suptitle(f"vespo diagnose {report['file']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    from simulations.cli.progress import progress, progress_enabled
    from simulations.diagnose import diagnose, format_report, load_log
    from vespo_theory.cli.common import dump_json, usable_out_dir

    t0 = time.time()
    out = usable_out_dir(args.out) if args.out is not None else None
    log = load_log(args.file)
    n_stages = len(args.rules or []) or None
    with progress(progress_enabled(args), "diagnose", total=n_stages, unit="stage") as step:
        report = diagnose(
            log,
            rules=args.rules,
            ess_target=args.ess_target,
            bias_target=args.bias_target,
            progress=step,
        )
    if args.json:
        print(dump_json(report))
    else:
        print(format_report(report))
    if out is not None:
        from vespo_theory.provenance import run_metadata, write_sidecar

        (out / "diagnose.json").write_text(dump_json(report) + "\n")
        plot_report(report, log, out / "diagnose.png")
        cfg = {
            "file": str(args.file),
            "rules": report["rules"],
            "ess_target": args.ess_target,
            "bias_target": args.bias_target,
        }
        write_sidecar(out / "diagnose.sidecar.json", run_metadata(cfg), time.time() - t0)
        if not args.json:
            print(f"\nwrote {out / 'diagnose.json'}, {out / 'diagnose.png'}", file=sys.stderr)
    return 0
