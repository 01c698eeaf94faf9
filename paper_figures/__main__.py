"""``python -m paper_figures NAME [--fast] [--rules RULE ...] [--out DIR] [--json]``.

The same arguments and behaviour as ``vespo figures``.
"""

from __future__ import annotations

import argparse
import sys

from vespo_theory.cli import figures as _cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paper_figures", description=_cli.HELP)
    _cli.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _cli.run(args)
    except (ValueError, TypeError) as exc:
        print(f"paper_figures: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
