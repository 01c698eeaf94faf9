"""``python -m paper_figures NAME [--fast] [--rules RULE ...] [--out DIR] [--json]``.

The same arguments and behaviour as ``vespo figures`` (both run :mod:`paper_figures.cli`).
"""

from __future__ import annotations

import sys

from vespo_theory.cli import main as _vespo_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return _vespo_main(["figures", *argv])


if __name__ == "__main__":
    sys.exit(main())
