"""The search engine of ``vespo falsify``: claims as ``lhs <= rhs``, hypothesis finds violations.

A :class:`Claim` has a strategy of instances (JSON-able dicts) and an exact evaluator returning
one or more :class:`Check` (``lhs <= rhs``; an equality is written as ``|x| <= tolerance``). The
search (:func:`search`) runs :func:`hypothesis.find` with ``database=None`` and a seeded
``random.Random``, so the same seed gives the same examples, the same counterexample and the
same numbers. While it searches, ``hypothesis.target`` steers towards the largest normalised gap
``(lhs - rhs) / (|lhs| + |rhs|)``, and every evaluated instance is scored so that the worst one
is reported when the claim holds. A violation is shrunk to a minimal instance, printed with a
one-line command that replays it (:func:`replay`).

A claim with several parts returns one check per part; an instance is violated when any part
fails. A ``require_all`` claim (R2, R6) is searched for instances that break every part at once,
so that its reported counterexample shows all of them (its ``checks`` are listed with it).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "OutsideAssumptions",
    "Check",
    "Claim",
    "Result",
    "replay",
    "replay_command",
    "score",
    "search",
]


class OutsideAssumptions(ValueError):
    """The instance does not meet the claim's assumptions (the search discards it)."""


@dataclass(frozen=True)
class Check:
    """One inequality ``lhs <= rhs`` evaluated on an instance; ``what`` names the two sides."""

    lhs: float
    rhs: float
    what: str

    @property
    def violated(self) -> bool:
        # NaN on either side counts as a violation: nothing may return NaN silently.
        return not (self.lhs <= self.rhs)

    @property
    def gap(self) -> float:
        return self.lhs - self.rhs

    @property
    def score(self) -> float:
        return score(self.lhs, self.rhs)

    def as_dict(self) -> dict:
        return {"what": self.what, "lhs": self.lhs, "rhs": self.rhs, "gap": self.gap}


def score(lhs: float, rhs: float) -> float:
    """The scale-free gap (lhs - rhs) / (|lhs| + |rhs|) in [-1, 1]; > 0 exactly on violation.

    +1 for NaN or an infinite lhs (a violation that cannot be measured).
    """
    if math.isnan(lhs) or math.isnan(rhs):
        return 1.0
    if lhs == rhs:
        # 0 <= 0 (e.g. a zero score vector; -inf <= -inf in log space) is trivially true and
        # tells nothing: least interesting
        return -1.0 if lhs == 0 or lhs == -math.inf else 0.0
    if math.isinf(lhs) or math.isinf(rhs):
        return 1.0 if lhs > rhs else -1.0
    den = abs(lhs) + abs(rhs)
    return (lhs - rhs) / den


@dataclass(frozen=True)
class Claim:
    """A catalogued claim as a searchable property: the falsifier's evidence for it.

    The claim's text and kind come from the one catalogue, :mod:`vespo_theory.claims`
    (``title`` is its statement; ``kind`` is "stated", must hold, or "relaxed", a false belief
    the search must break); constructing a Claim for an uncatalogued ID raises ``KeyError``.
    ``inequality`` writes the claim as ``lhs <= rhs`` with its tolerance and why it has that size;
    ``assumptions`` is the search space (the claim's own assumptions are
    :func:`vespo_theory.claims.assumptions`); ``lesson`` says what a counterexample teaches.
    """

    id: str
    inequality: str
    assumptions: str
    lesson: str
    strategy: Callable  # () -> SearchStrategy of instance dicts
    evaluate: Callable  # (instance) -> list[Check]
    details: Callable | None = None  # (instance) -> dict of extra numbers for the printout
    # True: a counterexample the search reports must violate every check at once (R2: a scale
    # bias and a directional one; R6: both advantage forms). Replay still calls an instance
    # violated when any check fails (each check is a part of the claim).
    require_all: bool = False

    def __post_init__(self) -> None:
        from vespo_theory import claims

        claims.get(self.id)  # KeyError naming the valid IDs: evidence needs a catalogued claim

    @property
    def title(self) -> str:
        """The claim's statement, from the catalogue (the only copy of the text)."""
        from vespo_theory import claims

        return claims.statement(self.id)

    @property
    def kind(self) -> str:
        """The claim's kind, "stated" or "relaxed", from the catalogue."""
        from vespo_theory import claims

        return claims.kind(self.id)

    def checks(self, instance: dict) -> list[Check]:
        out = self.evaluate(instance)
        if not out:
            raise RuntimeError(f"claim {self.id}: the evaluator returned no checks")
        return out

    def worst(self, instance: dict) -> Check:
        """The check to report: the most violated one, or, for a ``require_all`` claim whose
        every check is violated, the least violated one (the instance's binding check)."""
        return self.judge(self.checks(instance))[1]

    def judge(self, checks: list[Check]) -> tuple[bool, Check]:
        """(whether the search counts these checks as a counterexample, the check to report)."""
        if self.require_all and all(c.violated for c in checks):
            return True, min(checks, key=lambda c: c.score)
        w = max(checks, key=lambda c: c.score)
        return w.violated and not self.require_all, w


@dataclass
class Result:
    """The outcome of a search (or a replay) for one claim; ``as_dict`` gives the JSON keys."""

    claim: str
    kind: str
    status: str  # "held" | "violated"
    examples: int  # examples evaluated (generation; for a violation: up to the first one)
    evaluations: int  # every evaluation, shrinking included
    budget: int
    seed: int | None
    worst_instance: dict | None
    worst: Check | None
    counterexample: dict | None = None  # {"instance", "lhs", "rhs", "gap", "what", "replay"}
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    @property
    def expected(self) -> str:
        return "held" if self.kind == "stated" else "violated"

    @property
    def as_expected(self) -> bool:
        return self.status == self.expected

    def as_dict(self) -> dict:
        return {
            "claim": self.claim,
            "kind": self.kind,
            "status": self.status,
            "expected": self.expected,
            "examples": self.examples,
            "evaluations": self.evaluations,
            "budget": self.budget,
            "seed": self.seed,
            "counterexample": self.counterexample,
            "lhs": None if self.worst is None else self.worst.lhs,
            "rhs": None if self.worst is None else self.worst.rhs,
            "what": None if self.worst is None else self.worst.what,
            "worst_instance": self.worst_instance,
            "seconds": round(self.seconds, 3),
        }


def instance_json(claim_id: str, instance: dict) -> str:
    """The replayable JSON text of an instance (compact; floats round-trip exactly)."""
    return json.dumps({"claim": claim_id, **instance}, separators=(",", ":"), allow_nan=True)


def replay_command(claim_id: str, instance: dict) -> str:
    """A one-line shell command that re-evaluates this instance."""
    text = instance_json(claim_id, instance).replace("'", "'\\''")
    return f"vespo falsify --replay '{text}'"


def _counterexample(claim: Claim, instance: dict) -> dict:
    checks = claim.checks(instance)
    w = claim.judge(checks)[1]
    out = {
        "instance": instance,
        "what": w.what,
        "lhs": w.lhs,
        "rhs": w.rhs,
        "gap": w.gap,
        "replay": replay_command(claim.id, instance),
    }
    if claim.require_all:  # every part of the claim the instance breaks, not only the reported one
        out["checks"] = [c.as_dict() for c in checks]
    if claim.details is not None:
        out["details"] = claim.details(instance)
    return out


def search(
    claim: Claim,
    budget: int,
    seed: int = 0,
    *,
    shrink: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Result:
    """Search for an instance with lhs > rhs in at most ``budget`` generated examples.

    Deterministic for a given ``seed`` (hypothesis is given a seeded ``random.Random`` and no
    example database). ``examples`` in the result counts generated examples up to and including
    the first violation (or all of them when the claim held).
    """
    from hypothesis import HealthCheck, Phase, find, reject, settings, target
    from hypothesis.errors import NoSuchExample

    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ValueError(f"budget must be an integer > 0, got {budget!r}")
    stats = {"n": 0, "first": None, "worst": None, "worst_instance": None}

    def condition(instance: dict) -> bool:
        stats["n"] += 1
        if progress is not None:
            progress(stats["n"])
        try:
            checks = claim.checks(instance)
        except OutsideAssumptions:
            reject()  # not an instance the claim is about: discarded, not counted as held
        found_one, w = claim.judge(checks)
        if stats["worst"] is None or w.score > stats["worst"].score:
            stats["worst"], stats["worst_instance"] = w, instance
        # steer towards the largest gap; for a require_all claim, of its least violated check
        steer = min(c.score for c in checks) if claim.require_all else w.score
        if not math.isnan(steer):
            target(steer, label="normalised gap")
        if found_one and stats["first"] is None:
            stats["first"] = stats["n"]
        return found_one

    phases = [Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])
    cfg = settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
        print_blob=False,
    )
    t0 = time.perf_counter()
    try:
        found = find(claim.strategy(), condition, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        found = None
    seconds = time.perf_counter() - t0
    held = found is None
    return Result(
        claim=claim.id,
        kind=claim.kind,
        status="held" if held else "violated",
        examples=stats["n"] if held else stats["first"],
        evaluations=stats["n"],
        budget=budget,
        seed=seed,
        worst_instance=stats["worst_instance"],
        worst=stats["worst"],
        counterexample=None if held else _counterexample(claim, found),
        seconds=seconds,
    )


def replay(claim: Claim, instance: dict) -> Result:
    """Evaluate one instance (e.g. a printed counterexample) exactly; no search."""
    t0 = time.perf_counter()
    w = claim.worst(instance)
    ce = _counterexample(claim, instance) if w.violated else None
    return Result(
        claim=claim.id,
        kind=claim.kind,
        status="violated" if w.violated else "held",
        examples=1,
        evaluations=1,
        budget=1,
        seed=None,
        worst_instance=instance,
        worst=w,
        counterexample=ce,
        seconds=time.perf_counter() - t0,
        details={"checks": [c.as_dict() for c in claim.checks(instance)]},
    )
