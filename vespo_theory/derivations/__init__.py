"""SymPy derivations of VESPO's closed form and properties, one check per claim of the catalogue
(:mod:`vespo_theory.claims`, docs/theory.md).

Every check *derives* its result from premises (it does not type the answer in and re-check it)
and returns a :class:`CheckRecord`. Checks register themselves with :func:`register`;
:func:`run_checks` runs all of them or a subset by claim ID.

The claims themselves (statement, assumptions, kind) live in one catalogue,
:mod:`vespo_theory.claims`; a check attaches evidence to a catalogued claim. :func:`register`
refuses an ID that is not catalogued, and a record's ``statement`` is the catalogue's
(:func:`vespo_theory.claims.statement`), its ``assumptions`` the catalogue's plus the check's own
premises (:func:`with_premises`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from vespo_theory import claims as _claims

__all__ = ["CheckRecord", "CHECKS", "register", "run_checks", "claim_ids", "with_premises"]

METHODS = ("symbolic", "exact", "numeric")
STATUSES = ("verified", "failed", "inconclusive")


@dataclass
class CheckRecord:
    """The outcome of one claim check; the keys of ``vespo derive --json``."""

    id: str
    statement: str
    assumptions: str
    method: str
    status: str
    detail: str
    seconds: float

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for m in self.method.split("+"):
            if m not in METHODS:
                raise ValueError(f"method parts must be in {METHODS}, got {self.method!r}")

    def as_dict(self) -> dict:
        return asdict(self)


# claim ID -> check function returning a CheckRecord (``seconds`` is filled in by run_checks).
CHECKS: dict[str, Callable[[], CheckRecord]] = {}


def register(claim_id: str):
    """Decorator: register ``fn`` as the check for ``claim_id`` (a catalogued claim)."""
    _claims.get(claim_id)  # KeyError naming the valid IDs: a check needs a catalogued claim

    def deco(fn):
        if claim_id in CHECKS:
            raise ValueError(f"claim {claim_id} already has a check")
        CHECKS[claim_id] = fn
        return fn

    return deco


def with_premises(claim_id: str, premises: str = "") -> str:
    """The catalogue's assumptions of ``claim_id``, then ``premises`` (what this check assumes
    on top: seeds, signs, sizes), joined by ``"; "``."""
    base = _claims.assumptions(claim_id)
    return f"{base}; {premises}" if premises else base


# Modules whose import registers checks (a later issue appends its module here).
CHECK_MODULES: list[str] = [
    "vespo_theory.derivations.checks",
    "vespo_theory.derivations.paper",
    "vespo_theory.derivations.extended",
    "vespo_theory.derivations.surrogates",
]


def _load_all() -> None:
    # Importing the check modules fills CHECKS; done lazily so importing this package is cheap.
    import importlib

    for mod in CHECK_MODULES:
        importlib.import_module(mod)


def claim_ids() -> list[str]:
    """All registered claim IDs, in registration order."""
    _load_all()
    return list(CHECKS)


def run_checks(only: list[str] | None = None) -> list[CheckRecord]:
    """Run every registered check (or those in ``only``) and time each one."""
    _load_all()
    ids = list(CHECKS) if only is None else list(only)
    unknown = [i for i in ids if i not in CHECKS]
    if unknown:
        raise ValueError(f"unknown claim ID(s) {unknown}; valid IDs: {', '.join(CHECKS)}")
    out = []
    for cid in ids:
        t0 = time.perf_counter()
        rec = CHECKS[cid]()
        rec.seconds = round(time.perf_counter() - t0, 3)
        out.append(rec)
    return out
