"""The ``vespo`` command line: a dispatcher that finds its subcommands through entry points.

Each layer owns the commands of its own layer and declares them in ``pyproject.toml`` under
``[project.entry-points."vespo_theory.commands"]`` (name = module): ``vespo_theory`` owns
``derive`` and ``bound``, ``simulations`` owns ``simulate``, ``sweep``, ``falsify`` and
``train-lm``, ``paper_figures`` owns ``figures``. The dispatcher imports nothing above
``vespo_theory``: it reads the entry points (:mod:`importlib.metadata`) and imports the module a
name points to, so the import arrows stay one-way (paper_figures -> simulations -> vespo_theory).

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status). Modules import heavy dependencies (torch, matplotlib)
inside ``run`` so that ``vespo --help`` stays fast and works without them.

Exit status: 0 success, 1 a check failed (``derive``, ``falsify``), 2 bad input (one line on
stderr naming the argument: argparse errors, ``ValueError``/``TypeError`` raised by a command,
an unusable output path, a refused memory estimate), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import metadata

#: The entry-point group that lists the subcommands (name -> module).
ENTRY_POINT_GROUP = "vespo_theory.commands"

# This layer's own commands: always present, even where the package metadata is missing
# (e.g. a source checkout on sys.path that was never pip-installed).
_OWN: dict[str, str] = {
    "derive": "vespo_theory.cli.derive",
    "bound": "vespo_theory.cli.bound",
}


def subcommands() -> dict[str, str]:
    """Subcommand name -> module: this layer's own, then the entry points (sorted by name)."""
    found = dict(_OWN)
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - a broken metadata install must not break the CLI
        eps = ()
    for ep in sorted(eps, key=lambda e: e.name):
        found.setdefault(ep.name, ep.value.split(":")[0])
    return found


class _Unavailable:
    """A subcommand whose module failed to import (a broken optional install): say why."""

    def __init__(self, name: str, modname: str, exc: Exception) -> None:
        self.HELP = f"(unavailable: {modname} failed to import: {exc})"
        self._msg = (
            f"{modname} failed to import ({type(exc).__name__}: {exc}); "
            "reinstall with pip install -e ."
        )

    def add_arguments(self, p) -> None:
        p.add_argument("rest", nargs=argparse.REMAINDER)

    def run(self, args) -> int:
        raise ValueError(self._msg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vespo",
        description="Verify the theory of VESPO and test it against simulation.",
    )
    parser.add_argument(
        "--memory-limit",
        metavar="SIZE",
        default=None,
        help="refuse allocations estimated above SIZE (e.g. 16G; default: half the machine's "
        "memory, or $VESPO_MEMORY_LIMIT)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, modname in subcommands().items():
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            mod = _Unavailable(name, modname, exc)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.memory_limit is not None:
        from vespo_theory import resources

        try:
            resources.parse_bytes(args.memory_limit)
        except ValueError as exc:
            parser.error(f"--memory-limit: {exc}")
        # the environment carries it to worker processes (joblib, Ray) as well
        os.environ[resources.ENV_VAR] = args.memory_limit
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError) as exc:
        # Bad input: one clear line naming the argument, exit status 2 like argparse.
        print(f"vespo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into a reader that stopped early (``vespo derive | head``): exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        # An unusable path (a file where a folder is wanted, no permission, disk full): one line.
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"vespo {args.command}: error: cannot use{where}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vespo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
