"""The mutation score of a triaged mutmut run, from the files committed in docs/mutation/.

Each run has ``<module>_run.json`` (what mutmut reported: mutants, killed, timeouts, survived,
not run; written from ``mutants/<path>.meta`` with ``--from-meta``) and ``<module>_survivors.tsv``
(one line per survivor: mutmut's name, class, reason; class is ``killed`` (by a test added
after the run, seen failing against that mutant in a fresh process), ``equivalent``,
``harmless`` or ``survives``). The score is killed / (mutants run - equivalent - harmless),
the definition of docs/mutation.md; a mutmut timeout counts as killed, as mutmut counts it.

    python scripts/mutation_score.py                 # every module in docs/mutation/
    python scripts/mutation_score.py paper --from-meta /tmp/mut/mutants/.../paper.py.meta
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import sys
from pathlib import Path

DIR = Path(__file__).resolve().parents[1] / "docs" / "mutation"
CLASSES = ("killed", "equivalent", "harmless", "survives")


def run_counts_from_meta(meta: Path) -> dict:
    """mutmut 3's exit codes per mutant: 1 killed, 0 survived, None not run, others timeouts
    (-24: SIGXCPU, the CPU-time limit) or errors, which mutmut counts as killed."""
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    c = collections.Counter(
        "killed" if v == 1 else "survived" if v == 0 else "not_run" if v is None else "timeout"
        for v in codes.values()
    )
    survivors = sorted(k.rsplit(".", 1)[-1].removeprefix("x_") for k, v in codes.items() if v == 0)
    return {
        "mutants": len(codes),
        "killed": c["killed"],
        "timeouts": c["timeout"],
        "survived": c["survived"],
        "not_run": c["not_run"],
        "survivor_names": survivors,
    }


def read_survivors(path: Path) -> dict[str, tuple[str, str]]:
    rows = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["class"] not in CLASSES:
                raise ValueError(
                    f"{path}: {row['mutant']}: class {row['class']!r} not in {CLASSES}"
                )
            if not row["reason"].strip():
                raise ValueError(f"{path}: {row['mutant']}: no reason given")
            rows[row["mutant"]] = (row["class"], row["reason"])
    return rows


def score(module: str, directory: Path = DIR) -> dict:
    run = json.loads((directory / f"{module}_run.json").read_text())
    surv = read_survivors(directory / f"{module}_survivors.tsv")
    missing = sorted(set(run["survivor_names"]) - set(surv))
    extra = sorted(set(surv) - set(run["survivor_names"]))
    if missing or extra:
        raise ValueError(
            f"{module}: the survivor table does not match the run: missing {missing[:5]} "
            f"({len(missing)}), not survivors {extra[:5]} ({len(extra)})"
        )
    c = collections.Counter(cls for cls, _ in surv.values())
    ran = run["mutants"] - run["not_run"]
    killed = run["killed"] + run["timeouts"] + c["killed"]
    denom = ran - c["equivalent"] - c["harmless"]
    return {
        "module": module,
        "mutants": run["mutants"],
        "ran": ran,
        "killed_by_run": run["killed"],
        "timeouts": run["timeouts"],
        "killed_by_new_tests": c["killed"],
        "equivalent": c["equivalent"],
        "harmless": c["harmless"],
        "survives": c["survives"],
        "score": killed / denom,
    }


def line(s: dict) -> str:
    return (
        f"{s['module']}: {s['ran']} of {s['mutants']} mutants run; killed {s['killed_by_run']} "
        f"by the run + {s['timeouts']} timeouts + {s['killed_by_new_tests']} by new tests; "
        f"equivalent {s['equivalent']}, harmless {s['harmless']}, survive {s['survives']}; "
        f"score {100 * s['score']:.1f} %"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="default: every <module>_run.json in docs/mutation")
    ap.add_argument("--from-meta", type=Path, help="write <module>_run.json from mutmut's .meta")
    ap.add_argument("--commit", help="with --from-meta: the commit the run mutated")
    a = ap.parse_args(argv)
    if a.from_meta:
        if len(a.modules) != 1:
            print("error: modules: --from-meta needs exactly one module name", file=sys.stderr)
            return 2
        counts = run_counts_from_meta(a.from_meta)
        counts["commit"] = a.commit
        out = DIR / f"{a.modules[0]}_run.json"
        out.write_text(json.dumps(counts, indent=1) + "\n")
        print(f"wrote {out}")
        return 0
    modules = a.modules or sorted(p.name.removesuffix("_run.json") for p in DIR.glob("*_run.json"))
    for m in modules:
        if not (DIR / f"{m}_run.json").exists():
            print(f"error: modules: no docs/mutation/{m}_run.json", file=sys.stderr)
            return 2
        print(line(score(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
