"""Run metadata and JSON sidecars: what produced an output file, so that it can be reproduced.

Every output under ``outputs/`` gets a sidecar JSON written with :func:`write_sidecar` from the
dict of :func:`run_metadata`: the config, the seed, the git commit, the package versions, the
device and a UTC timestamp. :func:`config_hash` is the stable key for caching per-config results.

This module imports only the standard library (torch and matplotlib are looked up by version
without importing them) and never fails because git is missing or the code is not in a checkout.

>>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
True
>>> len(config_hash({}))
64
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import operator
import os
import platform
import subprocess
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

from vespo_theory.jsonio import dump_json, to_jsonable

__all__ = ["config_hash", "git_sha", "package_versions", "run_metadata", "write_sidecar"]

# Distributions reported in every sidecar; a missing one is reported as null.
_PACKAGES = ("numpy", "scipy", "sympy", "torch", "matplotlib", "hypothesis", "vespo-theory")
_GIT_TIMEOUT_S = 2.0  # git rev-parse is instant in a checkout; never block a run on it
_REPO_DIR = Path(__file__).resolve().parent.parent


def config_hash(config: Any) -> str:
    """sha256 hex digest of the config as sorted, compact JSON (dataclasses via asdict).

    Key order does not matter; tuples and lists hash alike; 1 and 1.0 hash differently
    (JSON writes them differently), so keep a config's types stable.
    """
    try:
        plain = to_jsonable(config, keep_nonfinite=True)
    except TypeError as exc:
        raise TypeError(f"config: {exc}") from None
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def git_sha(cwd: str | os.PathLike | None = None) -> str | None:
    """The commit SHA of the checkout holding this package (with ``-dirty`` if modified).

    None when git is missing, times out, or the package is not inside a git checkout.
    """
    cwd = str(cwd) if cwd is not None else str(_REPO_DIR)

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty" if status else sha


def package_versions() -> dict[str, str | None]:
    """Versions of python and the packages in ``_PACKAGES`` (None if not installed).

    Read from installed metadata, so torch and matplotlib are never imported.
    """
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            out[name] = None
    return out


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_metadata(config: Any, seed: int | None = None, device: Any = None) -> dict:
    """Everything needed to reproduce an output: config, seed, git SHA, versions, device, time.

    ``config`` is a dict or a dataclass instance; ``device`` anything with a ``str()`` (a torch
    device, "cpu", "cuda:0"); None stays null.
    """
    if seed is not None:
        if isinstance(seed, bool):
            raise TypeError("seed: expected an int or None, got bool")
        try:
            seed = operator.index(seed)  # int, numpy integer; rejects floats and strings
        except TypeError:
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}") from None
    cfg = to_jsonable(config, keep_nonfinite=True)  # a config's inf is a setting: keep it
    return {
        "config": cfg,
        "config_hash": config_hash(cfg),
        "seed": seed,
        "git_sha": git_sha(),
        "versions": package_versions(),
        "platform": platform.platform(),
        "device": None if device is None else str(device),
        "timestamp_utc": _utc_now(),
    }


def write_sidecar(path: str | os.PathLike, meta: dict, wall_time: float | None = None) -> Path:
    """Write ``meta`` (plus ``wall_time_s`` if given) as indented JSON to ``path``.

    ``path`` is the sidecar's own file name (e.g. ``fig.json``); parent folders are created.
    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    Returns the path written.
    """
    if not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict from run_metadata, got {type(meta).__name__}")
    if wall_time is not None:
        wall_time = float(wall_time)
        if not math.isfinite(wall_time) or wall_time < 0:
            raise ValueError(f"wall_time: must be a finite number of seconds >= 0, got {wall_time}")
    out = dict(meta)
    if wall_time is not None:
        out["wall_time_s"] = wall_time
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_json(out) + "\n")
    os.replace(tmp, path)
    return path
