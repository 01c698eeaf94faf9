"""``vespo figures NAME|all``: draw the report's figures (PNG, PDF, data, JSON sidecar).

The same command is ``python -m paper_figures NAME``. paper_figures (and matplotlib) are imported
inside ``run`` so that ``vespo --help`` works without them. ``all`` draws every registered figure
whose data exists (a progress line each) and then lists the ones whose data does not exist yet,
with the command that would produce it.
"""

from __future__ import annotations

import sys
import time

from vespo_theory.cli.common import dump_json, format_table

HELP = "draw the report's figures: NAME (see --list) or all; PNG, PDF, data (.npz), sidecar JSON"


def add_arguments(p) -> None:
    p.add_argument(
        "figure",
        metavar="NAME",
        nargs="?",
        default=None,
        help="the figure to draw, or 'all' (names: vespo figures --list)",
    )
    p.add_argument("--fast", action="store_true", help="smaller grids and samples (CI runs)")
    p.add_argument(
        "--rules",
        nargs="+",
        metavar="RULE",
        default=[],
        help="fig02_kernels only: add these registered rules (vespo_theory.rules.available())",
    )
    p.add_argument(
        "--out", metavar="DIR", default=None, help="output folder (default outputs/figures)"
    )
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    p.add_argument(
        "--list", action="store_true", help="list the figures (drawable and missing) and stop"
    )


def draw(spec, *, fast: bool = False, rules=(), out_dir=None) -> dict:
    """Compute, plot and save one figure; returns its files, summary and wall time."""
    import importlib

    from paper_figures._io import save_figure
    from paper_figures._style import plt

    mod = importlib.import_module(spec.module)
    kwargs = {"extra_rules": list(rules)} if "rules" in spec.options else {}
    cfg = mod.resolve_config(fast=fast, **kwargs)
    t0 = time.perf_counter()
    data = mod.compute(cfg)
    fig = mod.plot(data)
    rows = mod.summary(data)
    extra = {
        "title": spec.title,
        "caption": spec.caption,
        "paper": spec.paper or None,
        "source": "arXiv 2602.10693",
        "summary": rows,
    }
    if hasattr(mod, "meta"):
        extra.update(mod.meta(data))
    # a table (kind "table") is also written as NAME.csv and NAME.md
    table = mod.table(data) if hasattr(mod, "table") else None
    table_md = None
    if table is not None and hasattr(mod, "table_markdown"):
        table_md = mod.table_markdown(data)
    try:
        paths = save_figure(
            fig,
            spec.name,
            cfg,
            out_dir=out_dir,
            arrays=mod.arrays(data),
            extra_meta=extra,
            wall_time=time.perf_counter() - t0,
            seed=cfg.get("seed"),
            table=table,
            table_md=table_md,
        )
    finally:
        plt.close(fig)
    return {"paths": paths, "summary": rows, "wall_s": time.perf_counter() - t0}


def _print_summary(rows) -> None:
    if not rows:
        return
    cols = list(rows[0])
    fmt = [{c: (f"{v:.4g}" if isinstance(v, float) else v) for c, v in r.items()} for r in rows]
    print(format_table(fmt, cols))


def _list(paper_figures) -> int:
    for spec in paper_figures.registry().values():
        status = "ok     " if spec.data_available() else "missing"
        alias = f" (alias {', '.join(spec.aliases)})" if spec.aliases else ""
        paper = f"[{spec.paper}] " if spec.paper else ""
        print(f"{status} {spec.name}{alias}: {paper}{spec.title}")
    return 0


def run(args) -> int:
    try:
        import matplotlib  # noqa: F401  (import only to check that it is installed)
    except ImportError:
        print("vespo figures needs matplotlib: pip install -e '.[plots]'", file=sys.stderr)
        return 2

    import paper_figures
    from paper_figures._io import DEFAULT_OUT
    from vespo_theory.cli.common import usable_out_dir

    if args.list:
        return _list(paper_figures)
    if args.figure is None:
        raise ValueError("NAME: give a figure name or 'all' (vespo figures --list names them)")
    if args.figure == "all":
        specs = paper_figures.drawable()
        absent = paper_figures.missing()
    else:
        spec = paper_figures.resolve_name(args.figure)  # ValueError listing the valid names
        if not spec.data_available():
            raise ValueError(spec.missing_line())
        specs, absent = [spec], []
    if args.rules:
        takers = [s.name for s in specs if "rules" in s.options]
        if not takers:
            raise ValueError(f"--rules: only fig02_kernels takes it, not {args.figure}")
    # refuse an unusable --out before any work (one line, exit 2)
    out = usable_out_dir(args.out if args.out is not None else DEFAULT_OUT, "--out")
    results = {}
    t_all = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        if args.figure == "all" and not args.json:
            print(f"[{i}/{len(specs)}] {spec.name} ...", end="", flush=True)
        res = draw(spec, fast=args.fast, rules=args.rules, out_dir=out)
        results[spec.name] = res
        if args.figure == "all" and not args.json:
            print(f" {res['wall_s']:.1f} s -> {res['paths']['png']}", flush=True)
    if args.json:
        print(
            dump_json(
                {
                    "figures": {
                        n: {"files": [str(p) for p in r["paths"].values()], "summary": r["summary"]}
                        for n, r in results.items()
                    },
                    "missing": [
                        {
                            "name": s.name,
                            "paper": s.paper,
                            "command": s.data_command,
                            "planned": s.planned,
                        }
                        for s in absent
                    ],
                }
            )
        )
        return 0
    if args.figure != "all":
        ((name, res),) = results.items()
        _print_summary(res["summary"])
        print(f"\nwrote {', '.join(str(p) for p in res['paths'].values())}")
    else:
        print(f"drew {len(results)} figures in {time.perf_counter() - t_all:.1f} s into {out}")
        if absent:
            print(f"missing ({len(absent)}, their data does not exist yet):")
            for spec in absent:
                print(f"  {spec.missing_line()}")
    if args.out is None:
        print(f"(default folder {DEFAULT_OUT}, relative to the current directory)")
    return 0
