"""Memory estimates before large allocations, refused clearly past a limit.

A table, an enumeration or a Monte Carlo batch whose size grows like ``V**T`` or ``n * T`` can
exhaust the machine long before it fails by itself (the kernel's OOM killer ends the process with
no message, or NumPy raises an ``_ArrayMemoryError`` deep inside a run). Code that allocates such
an array first calls :func:`check_memory` with its estimate; past the limit it raises
:class:`MemoryLimitError` (a ``ValueError``, so the command line turns it into one line and exit
status 2) that says the estimate, the limit and what to change.

The limit defaults to half of the memory this process may use (the smaller of the physical
memory and a cgroup v2/v1 limit) and is raised or lowered with the environment variable
``VESPO_MEMORY_LIMIT`` (bytes, or a number with a K/M/G/T suffix, powers of 1024), which
``vespo --memory-limit`` sets for the run and its worker processes.

>>> parse_bytes("1.5G") == int(1.5 * 1024**3)
True
>>> format_bytes(3 * 1024**3)
'3.00 GiB'
>>> format_count(10**400)
'1.00e+400'
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "DEFAULT_FRACTION",
    "MemoryLimitError",
    "available_memory",
    "memory_limit",
    "check_memory",
    "parse_bytes",
    "format_bytes",
    "format_count",
]

ENV_VAR = "VESPO_MEMORY_LIMIT"
#: Fraction of the usable memory one estimate may take: the rest is left for the interpreter,
#: temporaries of the same size that NumPy makes while computing, and other processes.
DEFAULT_FRACTION = 0.5

_SUFFIX = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class MemoryLimitError(ValueError):
    """An allocation whose estimate exceeds the memory limit (refused before allocating)."""


def parse_bytes(text: str | int | float) -> int:
    """Bytes from ``"8G"``, ``"512M"``, ``"1.5T"``, ``"1000000"`` (K/M/G/T = powers of 1024)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        s = str(text).strip().upper().removesuffix("IB").removesuffix("B")
        unit = s[-1] if s and s[-1] in _SUFFIX else ""
        try:
            value = float(s[: len(s) - len(unit)])
        except ValueError:
            raise ValueError(
                f"memory limit: expected bytes or a number with K/M/G/T, got {text!r}"
            ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"memory limit: must be a finite size > 0, got {text!r}")
    return int(value * _SUFFIX[unit])


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units with 3 significant figures (any size, huge ints included)."""
    if n < 1024:
        return f"{int(n)} B"
    if n >= 1024**5:  # past a PiB (possibly past the float range): count TiB through log10
        return f"{format_count(n // 1024**4 if isinstance(n, int) else n / 1024**4)} TiB"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exp:.2f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][exp]}"


def format_count(n: int | float) -> str:
    """A count in 3 significant figures that never overflows (``V**T`` may exceed any float)."""
    if isinstance(n, int) and n.bit_length() > 1000:  # beyond float range: go through log10
        e = math.log10(n)
        mant = 10 ** (e - math.floor(e))
        return f"{mant:.2f}e+{math.floor(e)}"
    return f"{float(n):.3g}"


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return None


def available_memory() -> int:
    """Memory this process may use: physical memory, capped by a cgroup limit if one is set."""
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        phys = 8 * 1024**3
    cg = _cgroup_limit()
    return min(phys, cg) if cg else phys


def memory_limit() -> int:
    """The limit in bytes: ``VESPO_MEMORY_LIMIT`` if set, else DEFAULT_FRACTION of usable memory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_bytes(env)
    return int(DEFAULT_FRACTION * available_memory())


def check_memory(nbytes: float, what: str, change: str, *, limit: int | None = None) -> None:
    """Raise :class:`MemoryLimitError` if ``nbytes`` (an estimate) exceeds the limit.

    ``what`` names the allocation (``"the enumeration of V^T = 1.05e6 sequences"``), ``change``
    says what to change (``"lower --T or use --mc SAMPLES"``). ``nbytes`` may be a Python int of
    any size or ``inf``.

    >>> check_memory(10, "a small table", "nothing", limit=100)
    >>> try:
    ...     check_memory(1000, "a big table", "lower --T", limit=100)
    ... except MemoryLimitError as exc:
    ...     print(str(exc)[:66])
    a big table needs about 1000 B, over the memory limit of 100 B: lo
    """
    lim = memory_limit() if limit is None else int(limit)
    if nbytes > lim:
        size = "an unbounded amount" if nbytes == math.inf else f"about {format_bytes(nbytes)}"
        raise MemoryLimitError(
            f"{what} needs {size}, over the memory limit of {format_bytes(lim)}: {change} "
            f"(or raise the limit: {ENV_VAR}=SIZE or vespo --memory-limit SIZE)"
        )
