"""``vespo falsify``: search hard for violations of the catalogued claims (hypothesis).

Every claim is written as ``lhs <= rhs`` and evaluated exactly on each instance. Stated claims
must hold; the relaxed claims R1-R6 (false beliefs) must be violated, and their minimal
counterexample is printed with a command that replays it. hypothesis and ``simulations`` are
imported inside ``run``.
"""

from __future__ import annotations

import json
import sys

from vespo_theory.cli.common import dump_json, usable_out_dir

HELP = "search for counterexamples to each claim (hypothesis); --all for every claim"

DEFAULT_BUDGET = 100  # the size of the ci hypothesis profile (tests/conftest.py)


def add_arguments(p) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--claim", metavar="ID", help="one claim ID (e.g. B3, M1, R2)")
    what.add_argument("--all", action="store_true", help="every claim, stated and relaxed")
    what.add_argument(
        "--replay", metavar="JSON", help="re-evaluate one printed instance (its JSON, with 'claim')"
    )
    what.add_argument(
        "--instance", metavar="FILE", help="re-evaluate the instance stored in a JSON file"
    )
    what.add_argument("--list", action="store_true", help="list the claim IDs and exit")
    p.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"examples per claim (default {DEFAULT_BUDGET}, the ci profile)",
    )
    p.add_argument("--seed", type=int, default=0, help="search seed (default 0; deterministic)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--report", metavar="DIR", help="also write a Markdown + JSON report into DIR")


def _load_instance(args) -> tuple[str | None, dict]:
    if args.replay is not None:
        text, source = args.replay, "--replay"
    else:
        try:
            with open(args.instance) as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"--instance: cannot read {args.instance!r}: {exc}") from None
        source = "--instance"
    try:
        inst = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(inst, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(inst).__name__}")
    claim_id = inst.pop("claim", None)
    return claim_id, inst


def run(args) -> int:
    try:
        import hypothesis  # noqa: F401  (import only to check that it is installed)
    except ImportError:
        print("vespo falsify needs hypothesis: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    from simulations.falsify import claim_ids, get_claim, replay, search
    from simulations.falsify.report import format_result, write_report

    if args.list:
        for cid in claim_ids():
            c = get_claim(cid)
            print(f"{cid:3s} {c.kind:8s} {c.title}")
        return 0
    valid = ", ".join(claim_ids())
    if isinstance(args.budget, bool) or args.budget <= 0:
        raise ValueError(
            f"--budget must be an integer > 0, got {args.budget}; valid claims: {valid}"
        )

    if args.replay is not None or args.instance is not None:
        claim_id, inst = _load_instance(args)
        if claim_id is None:
            raise ValueError(f"the instance has no 'claim' key; add one of: {valid}")
        result = replay(get_claim(claim_id), inst)
        if args.json:
            print(dump_json(result.as_dict() | {"checks": result.details["checks"]}))
        else:
            for c in result.details["checks"]:
                flag = "VIOLATED" if not c["lhs"] <= c["rhs"] else "holds"
                print(
                    f"[{result.claim}] {c['what']}: lhs = {c['lhs']!r}, rhs = {c['rhs']!r}, "
                    f"gap = {c['gap']!r}  -> {flag}"
                )
        return 0

    ids = claim_ids() if args.all else [get_claim(args.claim).id]
    if args.report:
        usable_out_dir(args.report, "--report")  # before the search, not after it
    from simulations.cli.progress import progress, progress_enabled

    results = []
    with progress(progress_enabled(args), "falsify", total=len(ids), unit="claim") as step:
        for cid in ids:
            r = search(get_claim(cid), args.budget, seed=args.seed)
            results.append(r)
            step(cid)
            if not args.json:
                print(format_result(r), flush=True)
    if args.report:
        paths = write_report(
            results, args.report, {"claims": ids, "budget": args.budget, "seed": args.seed}
        )
        if not args.json:
            print(f"\nreport: {', '.join(str(p) for p in paths.values())}")
    if args.json:
        out = [r.as_dict() for r in results]
        print(dump_json(out if args.all else out[0]))
    else:
        bad = [r.claim for r in results if not r.as_expected]
        print(
            f"\n{len(results)} claims: "
            f"{sum(r.status == 'held' for r in results)} held, "
            f"{sum(r.status == 'violated' for r in results)} violated; "
            + ("all as the theory predicts" if not bad else f"UNEXPECTED: {', '.join(bad)}")
        )
    return 0 if all(r.as_expected for r in results) else 1
