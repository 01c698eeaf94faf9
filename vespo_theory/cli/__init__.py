"""The ``vespo`` command line: one module per subcommand, listed in ``SUBCOMMANDS``.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status). Modules import heavy dependencies (torch, matplotlib,
simulations) inside ``run`` so that ``vespo --help`` stays fast and works without them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module; a later issue adds its subcommand with one line here.
SUBCOMMANDS: dict[str, str] = {
    "derive": "vespo_theory.cli.derive",
    "bound": "vespo_theory.cli.bound",
    "simulate": "vespo_theory.cli.simulate",
    "sweep": "vespo_theory.cli.sweep",
    "figures": "vespo_theory.cli.figures",
    "falsify": "vespo_theory.cli.falsify",
    "train-lm": "vespo_theory.cli.train_lm",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vespo",
        description="Verify the theory of VESPO and test it against simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, modname in SUBCOMMANDS.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError) as exc:
        # Bad input: one clear line naming the argument, exit status 2 like argparse.
        print(f"vespo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into a reader that stopped early (``vespo derive | head``): exit quietly.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"vespo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
