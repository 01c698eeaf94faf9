"""Progress on stderr for the simulation commands: one rule for every command.

Shown only when stderr is a terminal and the command is not printing JSON (``--json``), so
pipes, logs and JSON consumers get clean output. tqdm comes with the ``sim`` extra; without it
there is no bar.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

__all__ = ["progress_enabled", "progress"]


def progress_enabled(args=None, *, json_output: bool | None = None) -> bool:
    """True when a progress display belongs on stderr: a terminal, and no ``--json``."""
    if json_output is None:
        json_output = bool(getattr(args, "json", False))
    isatty = getattr(sys.stderr, "isatty", None)
    return not json_output and bool(isatty and isatty())


@contextmanager
def progress(enabled: bool, desc: str, total: int | None = None, unit: str = "step"):
    """Yields ``step(text)``: advance by one and show ``text`` (a stage, a rule name)."""
    if not enabled:
        yield lambda _text=None: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the sim extra
        yield lambda _text=None: None
        return
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def step(text=None):
        if text:
            bar.set_postfix_str(str(text), refresh=False)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()
