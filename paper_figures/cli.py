"""``vespo figures NAME``: draw one of the report's figures (PNG, PDF, data, JSON sidecar).

The same command is ``python -m paper_figures NAME``. paper_figures (and matplotlib) are imported
inside ``run`` so that ``vespo --help`` works without them.
"""

from __future__ import annotations

import time

from vespo_theory.cli.common import dump_json, format_table

HELP = "draw a figure of the report (kernels: f(W) and phi(W) of the reshaping rules)"


def add_arguments(p) -> None:
    p.add_argument("figure", metavar="NAME", help="the figure to draw (kernels)")
    p.add_argument("--fast", action="store_true", help="a coarser grid (CI smoke runs)")
    p.add_argument(
        "--rules",
        nargs="+",
        metavar="RULE",
        default=[],
        help="add these registered rules to the figure (see vespo_theory.rules.available())",
    )
    p.add_argument(
        "--out", metavar="DIR", default=None, help="output folder (default outputs/figures)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    import importlib
    import sys

    try:
        import matplotlib  # noqa: F401  (import only to check that it is installed)
    except ImportError:
        print("vespo figures needs matplotlib: pip install -e '.[plots]'", file=sys.stderr)
        return 2

    import paper_figures
    from paper_figures._io import DEFAULT_OUT, save_figure

    if args.figure not in paper_figures.FIGURES:
        raise ValueError(
            f"figure: unknown name {args.figure!r}; valid names: "
            + ", ".join(sorted(paper_figures.FIGURES))
        )
    mod = importlib.import_module(paper_figures.FIGURES[args.figure])
    cfg = mod.resolve_config(fast=args.fast, extra_rules=args.rules)
    t0 = time.perf_counter()
    data = mod.compute(cfg)
    fig = mod.plot(data)
    rows = mod.summary(data)
    paths = save_figure(
        fig,
        args.figure,
        cfg,
        out_dir=args.out,
        arrays=mod.arrays(data),
        extra_meta={"rule_params": data.get("params"), "summary": rows},
        wall_time=time.perf_counter() - t0,
    )
    if args.json:
        print(
            dump_json(
                {"figure": args.figure, "files": [str(p) for p in paths.values()], "summary": rows}
            )
        )
        return 0
    cols = list(rows[0])
    fmt = [{c: (f"{v:.4f}" if isinstance(v, float) else v) for c, v in r.items()} for r in rows]
    print(format_table(fmt, cols))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    if args.out is None:
        print(f"(default folder {DEFAULT_OUT}, relative to the current directory)")
    return 0
