"""Writing a figure: PNG (``DPI``) + PDF (TrueType fonts) + the data (.npz) + a JSON sidecar."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from paper_figures._style import DPI, RC, plt
from vespo_theory.cli.common import usable_out_dir
from vespo_theory.provenance import run_metadata, write_sidecar

# fontTools (subsetting the TrueType fonts of the PDF) warns about the DejaVu fonts' old 'head'
# timestamps on every save; the warning is about the font files, not about the figure.
logging.getLogger("fontTools").setLevel(logging.ERROR)

# Relative to the current working directory; outputs/ is git-ignored.
DEFAULT_OUT = Path("outputs") / "figures"


def merge_config(config: dict, fast_overrides: dict, fast: bool, overrides: dict) -> dict:
    """A figure's resolved config: its ``CONFIG``, then its ``FAST`` changes with ``--fast``,
    then ``overrides``; an override naming no key of ``CONFIG`` is one ValueError listing the
    valid keys."""
    cfg = dict(config, **(fast_overrides if fast else {}))
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; valid: {sorted(config)}")
    cfg.update(overrides)
    return cfg


def save_figure(
    fig,
    name: str,
    config: dict,
    *,
    out_dir: str | os.PathLike | None = None,
    arrays: dict | None = None,
    extra_meta: dict | None = None,
    wall_time: float | None = None,
    seed: int | None = None,
) -> dict[str, Path]:
    """Save ``fig`` as ``NAME.png`` and ``NAME.pdf`` in ``out_dir`` with a sidecar ``NAME.json``.

    ``arrays`` (name -> NumPy array) are saved to ``NAME.npz`` so the plotted numbers can be
    checked without re-running. ``extra_meta`` is merged into the sidecar (e.g. rule parameters).
    Returns the paths written, keyed by suffix.
    """
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"name: must be a plain file stem without slashes, got {name!r}")
    out = usable_out_dir(out_dir if out_dir is not None else DEFAULT_OUT, "--out")
    paths = {"png": out / f"{name}.png", "pdf": out / f"{name}.pdf"}
    with plt.rc_context(RC):  # TrueType fonts in the PDF are a save-time setting
        fig.savefig(paths["png"], bbox_inches="tight", dpi=DPI)
        fig.savefig(paths["pdf"], bbox_inches="tight")
    if arrays:
        paths["npz"] = out / f"{name}.npz"
        np.savez_compressed(paths["npz"], **{k: np.asarray(v) for k, v in arrays.items()})
    meta = run_metadata(config, seed=seed, device="cpu")
    meta["figure"] = name
    meta["files"] = sorted(p.name for p in paths.values())
    if extra_meta:
        meta.update(extra_meta)
    paths["json"] = write_sidecar(out / f"{name}.json", meta, wall_time=wall_time)
    return paths


__all__ = ["DEFAULT_OUT", "save_figure"]
