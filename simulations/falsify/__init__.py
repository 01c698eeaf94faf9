"""Property-based search for violations of the catalogued claims (``vespo falsify``).

The claims and their statements: :mod:`vespo_theory.claims` (docs/theory.md).

* :mod:`~simulations.falsify.strategies` - hypothesis strategies of valid instances (also used
  by ``tests/properties``);
* :mod:`~simulations.falsify.claims` - every claim as ``lhs <= rhs`` with an exact evaluator
  (``CLAIMS``, ``get_claim``, ``claim_ids``);
* :mod:`~simulations.falsify.core` - the search (:func:`search`, hypothesis ``find`` with a seeded
  random and no database), :func:`replay` of a printed instance;
* :mod:`~simulations.falsify.report` - the Markdown report of ``vespo falsify --all --report``.

Needs hypothesis (the ``dev`` extra); it lives in ``simulations`` because the autoregressive
claims are evaluated with the simulators' exact enumeration and lattice method.
"""

from __future__ import annotations

from simulations.falsify.claims import CLAIMS, claim_ids, get_claim
from simulations.falsify.core import (
    Check,
    Claim,
    OutsideAssumptions,
    Result,
    replay,
    replay_command,
    search,
)

__all__ = [
    "CLAIMS",
    "Check",
    "Claim",
    "OutsideAssumptions",
    "Result",
    "claim_ids",
    "get_claim",
    "replay",
    "replay_command",
    "search",
]
