"""The falsifier's searches shared by the counterexample gallery and the report (one run each).

``vespo falsify`` (:mod:`simulations.falsify`) is deterministic for a seed, so a search is run
once per process and reused: the figure ``theory_counterexamples`` and ``vespo report`` ask for
the same claims with the same seed and budget (the defaults of ``vespo falsify --all``).
Nothing is cached on disk.
"""

from __future__ import annotations

import functools

#: The defaults of ``vespo falsify --all`` (docs/falsify.md); docs/theory.md uses the same.
SEED = 0


def default_budget() -> int:
    from simulations.cli.falsify import DEFAULT_BUDGET

    return DEFAULT_BUDGET


@functools.cache
def search(claim_id: str, budget: int, seed: int):
    """The :class:`simulations.falsify.Result` of one claim's search (cached in this process)."""
    from simulations.falsify import get_claim
    from simulations.falsify import search as _search

    return _search(get_claim(claim_id), budget, seed=seed)


def claim_ids() -> list[str]:
    """Every claim the falsifier can search, in its order."""
    from simulations.falsify import claim_ids as ids

    return list(ids())


__all__ = ["SEED", "claim_ids", "default_budget", "search"]
