"""Where caches live: one user cache directory, the same for every command and working folder.

Resolution (:func:`cache_dir`), first match wins:

1. an explicit path (a ``--cache-dir`` flag, a sweep cell's ``cache_dir`` field);
2. the environment variable ``VESPO_CACHE_DIR``;
3. ``$XDG_CACHE_HOME/vespo-theory`` (the XDG base-directory convention);
4. ``~/.cache/vespo-theory``.

Caches are keyed on what determines their content (see each user), so one shared folder can
never hand back a stale result; deleting it is always safe (everything is recomputed).
Standard library only.

>>> str(cache_dir("/tmp/x"))
'/tmp/x'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "cache_dir"]

ENV_VAR = "VESPO_CACHE_DIR"
_APP = "vespo-theory"


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache folder (not created here): ``explicit``, else ``$VESPO_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/vespo-theory``, else ``~/.cache/vespo-theory``. Empty values are unset."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / _APP
    return Path.home() / ".cache" / _APP
