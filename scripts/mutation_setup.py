"""Prepare a git worktree for a mutmut run of one verdict-carrying module (docs/mutation.md).

mutmut 3.8.1 skips decorated functions and attributes a module-scoped fixture's calls to the
first test that uses it, so a plain run of the derive checks or the falsify claims mutates none of
the functions that decide a verdict, or runs the wrong test for them. This script makes, in the
worktree only (never commit them), the edits that docs/mutation.md describes for each module:

* ``@register("ID")`` decorators moved below the module as ``register("ID")(check_x)`` lines, in
  the same order (``register`` returns the function unchanged, so ``CHECKS`` is the same dict);
* ``@functools.lru_cache`` removed from ``extended._derived_table`` (a cache filled in mutmut's
  parent process would hide every mutant of the function from the forked children);
* the verdict tests call ``run_checks([cid])`` per test instead of the module-scoped fixture;
  for the falsify claims, the ``--all`` fixture tests are replaced by a per-claim test with the
  same budget, seed and assertions;
* timing tests removed (a mutant run is slower by design);
* the ``[tool.mutmut]`` section of pyproject.toml narrowed to the module and its tests.

Usage (from the repository root of the worktree to prepare)::

    git worktree add --detach /tmp/mut main
    python scripts/mutation_setup.py extended /tmp/mut
    cd /tmp/mut && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/mut mutmut run

It refuses a worktree with local changes (run it once, on a clean checkout).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

MESSAGE_PATTERNS = [  # lines that only build a record's message text (detail / premises / notes)
    r"^\s*(\+\s*\(?\s*)?f\"",
    r"^\s*(\+\s*\(?\s*)?\"(?![A-Za-z0-9+]*\",?\s*$)[^\"]*\"\s*[,)]*\s*$",
    r"^\s*(parts|problems|bad|notes|lines)\.append\(f?\"",
]

MODULES = {  # test files: paths or glob patterns, relative to the repository root
    "checks": {
        "source": "vespo_theory/derivations/checks.py",
        "tests": ["tests/test_derivations.py", "tests/test_mutation_derivations.py"],
    },
    "paper": {
        "source": "vespo_theory/derivations/paper.py",
        "tests": ["tests/test_derive_paper.py", "tests/test_mutation_paper_*.py"],
    },
    "extended": {
        "source": "vespo_theory/derivations/extended.py",
        "tests": ["tests/test_derive_extended.py", "tests/test_mutation_extended_*.py"],
    },
    "falsify_claims": {
        "source": "simulations/falsify/claims.py",
        "tests": [
            "tests/test_falsify_per_claim_mut.py",
            "tests/test_falsify.py",
            "tests/test_falsify_audit.py",
            "tests/test_bound_edges.py",
            "tests/test_mutation_falsify_*.py",
        ],
    },
}

PER_CLAIM_TEST = '''"""Worktree-only (mutation run, scripts/mutation_setup.py): the
``--all`` fixture tests of test_falsify.py split per claim, so that mutmut maps each evaluator's
mutants to its own claim's search instead of the whole run. Same budget, seed and assertions."""

from __future__ import annotations

import json
import shlex

import pytest

from simulations.falsify import claim_ids, get_claim, search
from vespo_theory.cli import main as vespo_main

CI_BUDGET = 100


@pytest.mark.parametrize("cid", claim_ids())
def test_claim_per_id(cid, capsys):
    r = search(get_claim(cid), CI_BUDGET, seed=0).as_dict()
    if cid in claim_ids("stated"):
        assert r["status"] == "held", (cid, r["counterexample"])
        assert r["examples"] == CI_BUDGET and r["counterexample"] is None
        assert r["lhs"] <= r["rhs"]
    else:
        assert r["status"] == "violated", cid
        ce = r["counterexample"]
        assert ce["lhs"] > ce["rhs"] and ce["gap"] == ce["lhs"] - ce["rhs"]
        assert r["lhs"] > r["rhs"]
        argv = shlex.split(ce["replay"])
        capsys.readouterr()
        assert vespo_main(argv[1:] + ["--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["status"] == "violated"
        assert again["counterexample"]["gap"] == ce["gap"], cid
        assert again["lhs"] == ce["lhs"] and again["rhs"] == ce["rhs"]
'''


def move_register_decorators(src: str) -> str:
    """``@register("X")`` + ``def f`` -> ``def f`` and ``register("X")(f)`` at the end."""
    lines, regs, out = src.split("\n"), [], []
    i = 0
    while i < len(lines):
        m = re.match(r'^@register\("([^"]+)"\)$', lines[i])
        if m:
            fn = re.match(r"^def (\w+)", lines[i + 1])
            if fn is None:
                raise SystemExit(f"error: @register at line {i + 1} is not followed by a def")
            regs.append((m.group(1), fn.group(1)))
            i += 1
            continue
        out.append(lines[i])
        i += 1
    if not regs:
        raise SystemExit("error: no @register decorators found (already prepared?)")
    tail = "".join(f'register("{c}")({f})\n' for c, f in regs)
    return "\n".join(out).rstrip("\n") + "\n\n\n" + tail


def remove_test(src: str, name: str) -> str:
    """Drop one top-level test function (and its decorators) from a test module's source."""
    m = re.search(rf"^((?:@.*\n)*)def {name}\(", src, flags=re.M)
    if m is None:
        raise SystemExit(f"error: test {name} not found")
    body = src.index("\n", m.end()) + 1  # the line after the def line
    nxt = re.search(r"^(?:@|def |[A-Za-z_])", src[body:], flags=re.M)
    end = body + nxt.start() if nxt else len(src)
    return src[: m.start()] + src[end:]


def replace_once(src: str, old: str, new: str, what: str) -> str:
    if src.count(old) != 1:
        raise SystemExit(f"error: expected one occurrence of {what}, found {src.count(old)}")
    return src.replace(old, new)


def fixture_to_per_check(name: str) -> tuple[str, str]:
    return (
        f"def {name}(records, cid):\n    r = records[cid]",
        f"def {name}(cid):\n    (r,) = run_checks([cid])",
    )


def prepare(module: str, root: Path) -> list[str]:
    spec = MODULES[module]
    changed = []

    def edit(rel: str, fn) -> None:
        p = root / rel
        p.write_text(fn(p.read_text()))
        changed.append(rel)

    if module in ("checks", "paper", "extended"):
        edit(spec["source"], move_register_decorators)
    if module == "extended":
        edit(
            spec["source"],
            lambda s: replace_once(
                s,
                "@functools.lru_cache(maxsize=1)\ndef _derived_table",
                "def _derived_table",
                "the lru_cache of _derived_table",
            ),
        )
    per_check = {
        "checks": ("tests/test_derivations.py", "test_claim_verified_with_true_premises"),
        "paper": ("tests/test_derive_paper.py", "test_verified_with_true_premises"),
        "extended": ("tests/test_derive_extended.py", "test_verified_with_true_premises"),
    }
    if module in per_check:
        path, name = per_check[module]
        edit(
            path,
            lambda s: replace_once(
                s, *fixture_to_per_check(name), "the fixture-based verdict test"
            ),
        )
    if module == "paper":
        edit("tests/test_derive_paper.py", lambda s: remove_test(s, "test_paper_checks_are_fast"))
    if module == "extended":

        def ext(s: str) -> str:
            s = remove_test(s, "test_extended_checks_are_fast")
            return replace_once(
                s,
                "def test_g1_reproduces_the_hand_instance(records):\n",
                "def test_g1_reproduces_the_hand_instance():\n"
                '    records = {r.id: r for r in run_checks(["G1"])}\n',
                "the G1 hand-instance test",
            )

        edit("tests/test_derive_extended.py", ext)
    if module == "falsify_claims":

        def fal(s: str) -> str:
            for name in (
                "test_every_stated_claim_holds_and_every_relaxed_claim_is_violated",
                "test_counterexamples_replay_to_the_same_gap_with_the_printed_command",
                "test_report_lists_every_claim",
            ):
                s = remove_test(s, name)
            return s

        edit("tests/test_falsify.py", fal)
        (root / "tests/test_falsify_per_claim_mut.py").write_text(PER_CLAIM_TEST)
        changed.append("tests/test_falsify_per_claim_mut.py")

    tests = [str(p.relative_to(root)) for t in spec["tests"] for p in sorted(root.glob(t))]
    top = spec["source"].split("/")[0]
    copy = [
        d
        for d in (
            "vespo_theory",
            "simulations",
            "paper_figures",
            "benchmarks",
            "docs",
            "configs",
            "scripts",
            "README.md",
        )
        if d != top
    ]
    block = "\n".join(
        [
            "[tool.mutmut]",
            f'source_paths = ["{top}"]',
            f'only_mutate = ["{spec["source"]}"]',
            "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]',
            "also_copy = [" + ", ".join(f'"{d}"' for d in copy) + "]",
            "max_children = 1",
            "timeout_multiplier = 10.0",
            "do_not_mutate_patterns = [",
            *[f"    '{p}'," for p in MESSAGE_PATTERNS],
            "]",
            "",
        ]
    )

    def toml(s: str) -> str:
        a = s.index("[tool.mutmut]")
        b = s.find("\n[", a + 1)
        return s[:a] + block + (s[b + 1 :] if b >= 0 else "")

    edit("pyproject.toml", toml)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", choices=sorted(MODULES))
    ap.add_argument("worktree", type=Path, help="a clean git worktree of this repository")
    a = ap.parse_args(argv)
    root = a.worktree.resolve()
    if not (root / "pyproject.toml").is_file():
        print(f"error: worktree: {root} has no pyproject.toml", file=sys.stderr)
        return 2
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    if dirty.returncode != 0 or dirty.stdout.strip():
        print(
            f"error: worktree: {root} is not a clean git checkout (prepare it only once)",
            file=sys.stderr,
        )
        return 2
    for rel in dict.fromkeys(prepare(a.module, root)):
        print(f"edited {rel}")
    print(f"next: cd {root} && OMP_NUM_THREADS=1 PYTHONPATH={root} mutmut run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
