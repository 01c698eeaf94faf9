"""The comparison table of an "lm" sweep: rules x N (x lag, mismatch) over seeds.

``python -m simulations.lm.report RESULTS.csv`` prints a Markdown table: final and best held-out
success (mean +- standard deviation over seeds, ddof=1; a single seed shows no spread), the
number of seeds that collapsed and their collapse steps, and run-average diagnostics.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict

__all__ = ["comparison_rows", "format_markdown"]

_KEYS = ("rule", "staleness", "async_lag", "mismatch", "correction")


def _ms(vals: list[float]) -> str:
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return "n/a"
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return f"{m:.3f}"
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    return f"{m:.3f} ± {sd:.3f}"


def comparison_rows(rows: list[dict]) -> list[dict]:
    """One dict per (rule, N, lag, mismatch, correction), aggregated over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(str(r[k]) for k in _KEYS)].append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1]), kv[0][2:])):
        coll = [r for r in rs if str(r["collapsed"]) in ("True", "true", "1")]
        out.append(
            {
                **dict(zip(_KEYS, key)),
                "seeds": len(rs),
                "initial": _ms([float(r["initial_heldout"]) for r in rs]),
                "final": _ms([float(r["final_heldout"]) for r in rs]),
                "best": _ms([float(r["best_heldout"]) for r in rs]),
                "collapsed": f"{len(coll)}/{len(rs)}",
                "collapse_steps": ",".join(str(r["collapse_step"]) for r in coll) or "-",
                "ess_frac": _ms([float(r["mean_ess_frac"]) for r in rs]),
                # exact KL >= 0; float32 rounding can leave -1e-9 on-policy: show it as 0
                "kl_sampler": _ms([max(0.0, float(r["mean_kl_sampler"])) for r in rs]),
            }
        )
    return out


def format_markdown(table: list[dict]) -> str:
    if not table:
        return "(no rows)"
    cols = list(table[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m simulations.lm.report RESULTS.csv", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        rows = list(csv.DictReader(fh))
    print(format_markdown(comparison_rows(rows)))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as python -m simulations.lm.report
    sys.exit(main())
