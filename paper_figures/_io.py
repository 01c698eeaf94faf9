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
    table: list[dict] | None = None,
    table_md: str | None = None,
) -> dict[str, Path]:
    """Save ``fig`` as ``NAME.png`` and ``NAME.pdf`` in ``out_dir`` with a sidecar ``NAME.json``.

    ``arrays`` (name -> NumPy array) are saved to ``NAME.npz`` so the plotted numbers can be
    checked without re-running. ``extra_meta`` is merged into the sidecar (e.g. rule parameters).
    ``table`` (rows of a table, kind "table") is also written as ``NAME.csv`` and
    ``NAME.md`` (``table_md`` if given, else the rows as a Markdown table).
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
    if table is not None:
        paths.update(write_table(table, name, out, markdown=table_md))
    meta = run_metadata(config, seed=seed, device="cpu")
    meta["figure"] = name
    meta["files"] = sorted(p.name for p in paths.values())
    if extra_meta:
        meta.update(extra_meta)
    paths["json"] = write_sidecar(out / f"{name}.json", meta, wall_time=wall_time)
    return paths


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def markdown_table(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as a Markdown table; pipes in cells escaped."""
    if not rows:
        return "_(no rows)_\n"
    cols = list(rows[0])
    esc = [[_cell(r.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in cols]
           for r in rows]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], name: str, out: Path, *, markdown: str | None = None):
    """Write a table as ``NAME.csv`` (floats with 6 significant digits) and ``NAME.md``."""
    import csv

    paths = {"csv": out / f"{name}.csv", "md": out / f"{name}.md"}
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(paths["csv"], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    paths["md"].write_text(markdown if markdown is not None else markdown_table(rows))
    return paths


__all__ = ["DEFAULT_OUT", "markdown_table", "save_figure", "write_table"]
