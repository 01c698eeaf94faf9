"""Text, JSON and Markdown renderings of falsification results."""

from __future__ import annotations

import json
import math
import os

from simulations.falsify.claims import get_claim
from simulations.falsify.core import Result
from vespo_theory.cli.common import dump_json, usable_out_dir

__all__ = ["format_result", "write_report", "summary_line"]


def _g(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}" if math.isfinite(x) else str(x)
    if isinstance(x, list | tuple):
        return "[" + ", ".join(_g(v) for v in x) + "]"
    return str(x)


def _check_lines(ce: dict) -> list[str]:
    """One line per part of a require_all claim's counterexample (every one is violated)."""
    return [
        f"{c['what']}: lhs = {_g(c['lhs'])} > rhs = {_g(c['rhs'])}" for c in ce.get("checks", [])
    ]


def summary_line(r: Result) -> str:
    """One line: the claim, what happened, and whether that is what the theory predicts."""
    mark = "ok " if r.as_expected else "!! "
    if r.status == "held":
        worst = (
            "" if r.worst is None else f"; tightest: lhs {_g(r.worst.lhs)} vs rhs {_g(r.worst.rhs)}"
        )
        what = f"no violation in {r.examples} examples{worst}"
    else:
        ce = r.counterexample
        what = (
            f"violated (first after {r.examples} examples, shrunk in {r.evaluations} "
            f"evaluations): lhs {_g(ce['lhs'])} > rhs {_g(ce['rhs'])}, gap {_g(ce['gap'])}"
        )
    return f"{mark}[{r.claim}] ({r.kind}) {what}  ({r.seconds:.1f} s)"


def format_result(r: Result, verbose: bool = True) -> str:
    """A human-readable block for one result."""
    claim = get_claim(r.claim)
    lines = [summary_line(r), f"    claim: {claim.title}", f"    as lhs <= rhs: {claim.inequality}"]
    if r.counterexample is not None and verbose:
        ce = r.counterexample
        lines.append(f"    minimal counterexample: {ce['what']}")
        lines.append(f"      instance: {json.dumps(ce['instance'])}")
        lines.append(f"      lhs = {ce['lhs']!r}, rhs = {ce['rhs']!r}, gap = {ce['gap']!r}")
        lines += [f"      part broken: {line}" for line in _check_lines(ce)]
        for key, val in (ce.get("details") or {}).items():
            lines.append(f"      {key} = {_g(val)}")
        lines.append(f"      replay: {ce['replay']}")
    if not r.as_expected:
        lines.append(f"    UNEXPECTED: the theory predicts '{r.expected}' for this {r.kind} claim")
    return "\n".join(lines)


def write_report(results: list[Result], out_dir: str | os.PathLike, config: dict) -> dict:
    """Write ``falsify_report.md``, ``falsify_report.json`` and the sidecar into ``out_dir``."""
    from vespo_theory.provenance import run_metadata, write_sidecar

    out = usable_out_dir(out_dir, "--report")  # one line (ValueError), not a traceback
    md = [
        "# Falsification report",
        "",
        "Every catalogued claim (docs/theory.md) that can be evaluated exactly, written as `lhs"
        " <= rhs`, searched with hypothesis (seeded, no example database). Stated claims must "
        "hold; relaxed claims (beliefs a reader might hold) must be violated. Instances are "
        "evaluated exactly (finite sums, enumeration of every sequence, or the lattice method),"
        " never by Monte Carlo, so a violation is a fact.",
        "",
        f"Budget per claim: {config.get('budget')} examples; seed {config.get('seed')}.",
        "",
        "| claim | kind | outcome | as predicted | examples | lhs | rhs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lhs = r.counterexample["lhs"] if r.counterexample else (r.worst and r.worst.lhs)
        rhs = r.counterexample["rhs"] if r.counterexample else (r.worst and r.worst.rhs)
        md.append(
            f"| {r.claim} | {r.kind} | {r.status} | {'yes' if r.as_expected else '**NO**'} | "
            f"{r.examples} | {_g(lhs)} | {_g(rhs)} |"
        )
    for r in results:
        c = get_claim(r.claim)
        md += [
            "",
            f"## {r.claim}: {c.title}",
            "",
            f"- kind: {c.kind} (predicted: {r.expected}); outcome: **{r.status}**",
            f"- as lhs <= rhs: {c.inequality}",
            f"- assumptions / search space: {c.assumptions}",
            f"- budget: {r.budget} examples, seed {r.seed}; evaluated {r.evaluations} "
            f"instances in {r.seconds:.2f} s",
        ]
        if r.counterexample is None:
            if r.worst is not None:
                md.append(
                    f"- no violation in {r.examples} examples; tightest instance: "
                    f"{r.worst.what}: lhs = {r.worst.lhs!r}, rhs = {r.worst.rhs!r}"
                )
            md.append(f"- what a violation would mean: {c.lesson}")
        else:
            ce = r.counterexample
            md += [
                f"- first violation after {r.examples} examples; minimal (shrunk) instance:",
                "",
                "```json",
                json.dumps(ce["instance"], indent=1),
                "```",
                "",
                f"- {ce['what']}: lhs = {ce['lhs']!r}, rhs = {ce['rhs']!r}, gap = {ce['gap']!r}",
            ]
            md += [f"- part broken: {line}" for line in _check_lines(ce)]
            for key, val in (ce.get("details") or {}).items():
                md.append(f"- {key} = {_g(val)}")
            md += [
                f"- replay: `{ce['replay']}`",
                f"- what it teaches: {c.lesson}",
            ]
    paths = {"md": out / "falsify_report.md", "json": out / "falsify_report.json"}
    paths["md"].write_text("\n".join(md) + "\n")
    paths["json"].write_text(dump_json([r.as_dict() for r in results]) + "\n")
    meta = run_metadata(config, seed=config.get("seed"), device="cpu")
    meta["files"] = [p.name for p in paths.values()]
    paths["sidecar"] = write_sidecar(
        out / "falsify_report.meta.json", meta, wall_time=sum(r.seconds for r in results)
    )
    return paths
