"""One JSON encoding for every output: command ``--json``, sidecars, caches, reports.

Strict JSON (RFC 8259) has no infinity or NaN. :func:`to_jsonable` writes a non-finite float as
``null``, so every file parses with any JSON reader; where the value matters the writer adds the
finite information beside it (``vespo bound --json`` gives ``log_M`` next to ``"M": null`` when M
overflows float64). It also turns dataclasses, NumPy/torch scalars and arrays, paths, tuples and
sets into plain JSON types, without importing NumPy or torch.

>>> dump_json({"a": float("inf"), "b": (1, 2.5)}, indent=None)
'{"a": null, "b": [1, 2.5]}'
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["to_jsonable", "dump_json"]


def to_jsonable(obj: Any, *, keep_nonfinite: bool = False) -> Any:
    """Plain JSON types; non-finite floats become ``None`` (JSON ``null``).

    ``keep_nonfinite=True`` writes them as the strings ``"inf"``, ``"-inf"``, ``"nan"`` instead:
    for keys (``provenance.config_hash``), where inf and nan must not collide with each other.
    """

    def conv(x):
        return to_jsonable(x, keep_nonfinite=keep_nonfinite)

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return conv(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): conv(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [conv(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(conv(v) for v in obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return str(obj) if keep_nonfinite else None
    if isinstance(obj, Path):
        return str(obj)
    # numpy / torch scalars and arrays, without importing either
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return conv(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return conv(obj.item())
    raise TypeError(
        f"value of type {type(obj).__name__} is not JSON-serialisable "
        "(use numbers, strings, lists, dicts or dataclasses)"
    )


def dump_json(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of :func:`to_jsonable` (``allow_nan=False``: a bare NaN cannot slip out)."""
    return json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)
