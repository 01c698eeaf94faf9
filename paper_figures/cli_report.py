"""``vespo report``: one self-contained HTML page and a Markdown twin to check VESPO's theory.

Every claim with its evidence (derive, falsify, the figures, the small-LM lab), every figure
embedded with its caption, the S1-S8 table, and provenance (:mod:`paper_figures.report`). The
heavy imports (matplotlib, hypothesis, SymPy) happen inside ``run`` so that ``vespo --help``
works without them.
"""

from __future__ import annotations

import shlex
import sys

HELP = "write report.html (self-contained) and report.md: every claim, its evidence, the figures"


def add_arguments(p) -> None:
    p.add_argument("--fast", action="store_true", help="the figures' --fast sizes (CI runs)")
    p.add_argument(
        "--out", metavar="DIR", default=None, help="output folder (default outputs/report)"
    )
    p.add_argument(
        "--redraw",
        action="store_true",
        help="draw every figure again (default: reuse one in DIR with the same config and commit)",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="falsify examples per claim (default: vespo falsify's, 100)",
    )


def run(args) -> int:
    for mod, extra in (("matplotlib", "plots"), ("hypothesis", "dev")):
        try:
            __import__(mod)
        except ImportError:
            print(f"vespo report needs {mod}: pip install -e '.[{extra}]'", file=sys.stderr)
            return 2
    from paper_figures import report

    if args.budget is not None and args.budget <= 0:
        raise ValueError(f"--budget: an integer > 0, got {args.budget}")
    argv = ["vespo", "report"] + (["--fast"] if args.fast else [])
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.redraw:
        argv.append("--redraw")
    if args.budget is not None:
        argv += ["--budget", str(args.budget)]
    paths = report.build(
        args.out,
        fast=args.fast,
        redraw=args.redraw,
        budget=args.budget,
        command=shlex.join(argv),
        progress=lambda line: print(line, flush=True),
    )
    print(f"wrote {paths['html']} and {paths['md']}")
    if args.out is None:
        print(f"(default folder {report.DEFAULT_OUT}, relative to the current directory)")
    return 0
