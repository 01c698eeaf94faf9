"""Helpers shared by the subcommand modules of every layer (argument types, tables, JSON, --out).

``dump_json`` is :func:`vespo_theory.jsonio.dump_json` (strict JSON: non-finite floats as null).
"""

from __future__ import annotations

import argparse
import math

from vespo_theory.jsonio import dump_json


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0, with a message that names the rule."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table: a header row, a rule, then one row per dict."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(r.rstrip() for r in out)


def usable_out_dir(path, arg: str = "--out"):
    """Create ``path`` as a folder (parents too) and check it is writable, or raise ValueError
    with one line naming ``arg``: a file in the way, no permission, a read-only place."""
    import os
    from pathlib import Path

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{arg}: {str(p)!r} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{arg}: cannot create folder {str(p)!r}: {exc.strerror or exc}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise ValueError(f"{arg}: folder {str(p)!r} is not writable")
    return p


__all__ = [
    "dump_json",
    "format_table",
    "positive_float",
    "positive_int",
    "usable_out_dir",
]
