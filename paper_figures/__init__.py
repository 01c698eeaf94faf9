"""Figures and tables of the VESPO theory report (arXiv 2602.10693), one module per figure.

**The protocol.** A figure is a module of this package that defines ``FIGURE``, a
:class:`FigureSpec` (its file name, title, caption and what it reproduces), plus

* ``CONFIG`` (a dict, recorded in the sidecar) and ``FAST`` (the ``--fast`` changes),
* ``resolve_config(fast=False, **overrides) -> dict``,
* ``compute(cfg) -> data`` (NumPy arrays, computed only through :mod:`vespo_theory` and
  :mod:`simulations`: this package holds no math),
* ``plot(data) -> matplotlib.figure.Figure`` (styled by :mod:`paper_figures._style`),
* ``arrays(data) -> dict`` (every plotted array, for the ``.npz``) and
  ``summary(data) -> list[dict]`` (the printed table, also in the sidecar).

Figures **register themselves**: :func:`registry` imports every module of the package whose
name does not start with ``_`` (``pkgutil``) and collects its ``FIGURE`` (or a tuple ``SPECS``
of specs, for figures whose data does not exist yet). Adding a figure is adding one module.

Names say what a file reproduces: ``fig01_...`` to ``fig12_...`` for the paper's figures,
``readme_...`` for the README's, ``table1_...`` to ``table4_...`` for its tables and
``theory_...`` for the toolkit's own theory figures. ``vespo figures NAME|all`` (or
``python -m paper_figures``) writes PNG, PDF, the data (``.npz``) and a JSON sidecar per figure
to ``outputs/figures/`` (git-ignored) by default.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace

__all__ = ["FigureSpec", "drawable", "missing", "registry", "resolve_name"]

#: Modules of the package that are not figures (the command line, ``python -m``).
_NOT_FIGURES = frozenset({"cli", "cli_report", "report", "__main__"})
KINDS = ("figure", "table")


def _always() -> bool:
    return True


@dataclass(frozen=True)
class FigureSpec:
    """What a figure is: its file stem, title, caption and source in the paper.

    ``paper`` names what it reproduces in arXiv 2602.10693 ("Fig. 2", "Table 1"; "" for the
    toolkit's own theory figures). ``options`` lists the extra command-line options the figure
    takes (today only ``"rules"``). ``data_available()`` is False for a figure whose input data
    does not exist yet; ``data_command`` then says which command would produce it (``planned``
    True when that command does not exist yet either). ``claims`` names the claims the figure
    is evidence for (catalogue IDs of :mod:`vespo_theory.claims`, or the lab's S1-S8; the report
    ``vespo report`` lists the figure under each). ``module`` is filled in by discovery.
    """

    name: str
    title: str
    caption: str
    paper: str = ""
    kind: str = "figure"
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    data_command: str | None = None
    planned: bool = False
    available: Callable[[], bool] = field(default=_always, repr=False, compare=False)
    module: str = ""

    def __post_init__(self) -> None:
        if (
            not self.name
            or not self.name.replace("_", "").isalnum()
            or self.name != self.name.lower()
        ):
            raise ValueError(
                f"name: a lower-case file stem of letters, digits and _, got {self.name!r}"
            )
        if self.kind not in KINDS:
            raise ValueError(f"kind: one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.caption.strip() or not self.title.strip():
            raise ValueError(f"figure {self.name}: title and caption must not be empty")

    def data_available(self) -> bool:
        """True when the figure's input data exists (always, for the computed figures)."""
        return bool(self.available())

    def missing_line(self) -> str:
        """One line for a figure that cannot be drawn: its name and the command for its data."""
        what = f"{self.name} ({self.paper}: {self.title})" if self.paper else self.name
        cmd = self.data_command or "(no command yet)"
        how = "planned command (its config is not written yet): " if self.planned else "run: "
        return f"{what}: data missing; {how}{cmd}"


def _discover() -> dict[str, FigureSpec]:
    found: dict[str, FigureSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _NOT_FIGURES:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        specs = list(getattr(mod, "SPECS", ()))
        if getattr(mod, "FIGURE", None) is not None:
            specs.insert(0, mod.FIGURE)
        for spec in specs:
            if not isinstance(spec, FigureSpec):
                raise TypeError(f"{mod.__name__}: FIGURE / SPECS must hold FigureSpec objects")
            if spec.name in found:
                raise RuntimeError(
                    f"figure name {spec.name!r} registered twice ({found[spec.name].module} and "
                    f"{mod.__name__})"
                )
            found[spec.name] = replace(spec, module=mod.__name__)
    names = set(found)
    for spec in found.values():
        for alias in spec.aliases:
            if alias in names:
                raise RuntimeError(f"alias {alias!r} of {spec.name} is taken")
            names.add(alias)
    return found


_REGISTRY: dict[str, FigureSpec] | None = None


def registry() -> dict[str, FigureSpec]:
    """Every registered figure and table, name -> spec, sorted by name (discovered once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _discover()
    return dict(_REGISTRY)


def drawable() -> list[FigureSpec]:
    """The figures whose data exists, in name order (what ``vespo figures all`` draws)."""
    return [s for s in registry().values() if s.data_available()]


def missing() -> list[FigureSpec]:
    """The figures and tables whose data does not exist yet, in name order."""
    return [s for s in registry().values() if not s.data_available()]


def resolve_name(name: str) -> FigureSpec:
    """The spec of a figure by name or alias; ValueError listing the valid names otherwise."""
    reg = registry()
    if name in reg:
        return reg[name]
    for spec in reg.values():
        if name in spec.aliases:
            return spec
    valid = sorted([*reg, *(a for s in reg.values() for a in s.aliases)])
    raise ValueError(f"figure: unknown name {name!r}; valid names: all, {', '.join(valid)}")


def __getattr__(attr: str):
    # FIGURES (name -> module path) was the hand-written table before self-registration.
    if attr == "FIGURES":
        return {name: spec.module for name, spec in registry().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
