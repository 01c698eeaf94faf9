"""Rewrite README.md's worked example from the commands it shows, run on the code as it is.

    python scripts/regen_readme.py           # rewrite the block between the regen markers
    python scripts/regen_readme.py --check   # exit 1 if the block differs (timings aside)

The block between ``<!-- regen:readme_example ... -->`` and ``<!-- /regen -->`` holds each
command of :data:`COMMANDS` and what it printed. The ``seconds`` column of ``vespo derive`` is
wall time and differs from run to run; ``--check`` compares with it masked.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = ["vespo derive --only K3,B2", "vespo bound"]
_START = re.compile(r"<!-- regen:readme_example[^>]*-->\n")
_END = "<!-- /regen -->"


def run_examples() -> str:
    from vespo_theory.cli import main

    out = ["```text"]
    for cmd in COMMANDS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(cmd.split()[1:])
        if rc != 0:
            raise SystemExit(f"`{cmd}` exited {rc}: the README example would be wrong")
        out.append(f"$ {cmd}")
        out.append(buf.getvalue().rstrip("\n"))
    out.append("```")
    return "\n".join(out) + "\n"


def _mask_seconds(text: str) -> str:
    # the derive table's seconds column and its records: digits.digits at a column position
    return re.sub(r"(?m)^(\w+\s+\w+\s+[\w+]+\s+)\d+\.\d+", r"\1S", text)


def splice(readme: str, block: str) -> str:
    m = _START.search(readme)
    if not m or _END not in readme[m.end():]:
        raise SystemExit(f"{README}: regen:readme_example markers not found")
    end = readme.index(_END, m.end())
    return readme[: m.end()] + block + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the block is stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = splice(text, run_examples())
    if args.check:
        if _mask_seconds(new) != _mask_seconds(text):
            print("README.md's worked example is stale: python scripts/regen_readme.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
