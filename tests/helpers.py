"""Shared test helpers (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_file(relpath: str, name: str | None = None):
    """Import a file of the repository that is not in a package (a script, a benchmark, a
    reference implementation under tests/data) as a module, registered in ``sys.modules``
    under ``name`` (dataclasses look their module up there)."""
    path = ROOT / relpath
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
