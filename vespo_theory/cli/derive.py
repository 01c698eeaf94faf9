"""``vespo derive``: run the SymPy derivation checks and print one record per claim."""

from __future__ import annotations

import textwrap

from vespo_theory.cli.common import dump_json, format_table

HELP = "derive VESPO's closed form and properties symbolically and report each claim"


def add_arguments(p) -> None:
    p.add_argument("--only", metavar="ID[,ID]", help="run only these claim IDs (comma-separated)")
    p.add_argument("--json", action="store_true", help="print a JSON list of records")


def run(args) -> int:
    from vespo_theory.derivations import run_checks

    only = None
    if args.only is not None:
        only = [s.strip() for s in args.only.split(",") if s.strip()]
        if not only:
            raise ValueError("--only needs at least one claim ID")
    records = run_checks(only)
    if args.json:
        print(dump_json([r.as_dict() for r in records]))
    else:
        rows = [
            {
                "id": r.id,
                "status": r.status,
                "method": r.method,
                "seconds": f"{r.seconds:.2f}",
                "statement": textwrap.shorten(r.statement, 70),
            }
            for r in records
        ]
        print(format_table(rows, ["id", "status", "method", "seconds", "statement"]))
        for r in records:
            print(f"\n[{r.id}] {r.status}: {r.statement}")
            print(textwrap.indent(textwrap.fill(f"assumptions: {r.assumptions}", 96), "  "))
            print(textwrap.indent(textwrap.fill(f"detail: {r.detail}", 96), "  "))
        n_fail = sum(r.status == "failed" for r in records)
        print(
            f"\n{len(records)} checks: {sum(r.status == 'verified' for r in records)} verified, "
            f"{n_fail} failed, {sum(r.status == 'inconclusive' for r in records)} inconclusive"
        )
    return 1 if any(r.status == "failed" for r in records) else 0
