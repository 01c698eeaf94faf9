"""The one catalogue of claims: claim ID -> statement, assumptions, kind.

VESPO's theory (arXiv 2602.10693, and what this project derives from it) is a list of claims. Two
layers attach *evidence* to them and neither owns the text of a claim:

* :mod:`vespo_theory.derivations` derives a claim from premises with SymPy (``vespo derive``);
  its record's ``statement`` is :func:`statement` of the claim, its ``assumptions`` start with
  :func:`assumptions` of the claim and add the premises of that one check;
* :mod:`simulations.falsify` searches for instances that violate a claim (``vespo falsify``);
  its ``Claim.title`` and ``Claim.kind`` are read from here, its own ``assumptions`` field is the
  search space, its ``inequality`` the claim written as ``lhs <= rhs``.

``kind`` is ``"stated"`` (the theory asserts it: evidence must confirm it) or ``"relaxed"`` (a
plausible but false belief next to the theory: the falsifier must break it). ``source`` says
where the claim is stated.

A plain module: it imports nothing but the standard library, so every layer can use it.

>>> statement("B2")
'E_mu[phi^2] <= M E_mu[phi] <= M^2'
>>> kind("R1"), kind("B3")
('relaxed', 'stated')
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CATALOGUE",
    "ClaimSpec",
    "KINDS",
    "SURROGATE_RULE_NAMES",
    "assumptions",
    "get",
    "ids",
    "kind",
    "statement",
]

KINDS = ("stated", "relaxed")


@dataclass(frozen=True)
class ClaimSpec:
    """One claim: what it says, under which assumptions, and whether the theory asserts it."""

    id: str
    statement: str
    assumptions: str
    kind: str = "stated"
    source: str = "derived here from arXiv 2602.10693"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.statement or not self.assumptions:
            raise ValueError(f"claim {self.id}: statement and assumptions must not be empty")


_K_LAM = "k > 0, lam > 0, W > 0"

_ENTRIES: list[ClaimSpec] = [
    # ---------------------------------------------------------------- the variational problem
    ClaimSpec(
        "Q1",
        "Stationarity of the Lagrangian gives Q* ∝ mu^(1-a) pi^a e^(-bW)",
        "finite support, Q > 0 at every point, W = pi/mu, a real, b >= 0",
    ),
    ClaimSpec(
        "Q2",
        "The objective is strictly convex in Q for every real a; Q* is the unique minimiser",
        "finite support; objective (1-a) KL(Q||mu) + a KL(Q||pi) s.t. sum Q = 1, E_Q[W] <= C",
    ),
    ClaimSpec(
        "Q3",
        "dE_{Q*}[W]/db = -Var_{Q*}(W); unique b(C); b = 0 iff the budget is slack",
        "Q* from Q1's stationarity; W not constant on the support",
    ),
    # ---------------------------------------------------------------- the kernel
    ClaimSpec(
        "K1",
        "Q*/mu ∝ W^a e^(-bW); normalising phi(1) = 1 gives phi = W^k e^(lam(1-W))",
        "Q* from Q1; a -> k, b -> lam; phi(1) = 1",
    ),
    ClaimSpec(
        "K2",
        "f(W) = e^lam lam^(-k) lowergamma(k, lam W) satisfies W f'(W) = phi(W); "
        "f(inf) = e^lam Gamma(k) lam^(-k) (soft clip)",
        _K_LAM,
    ),
    ClaimSpec(
        "K3",
        "argmax phi = k/lam; M := sup phi = (k/lam)^k e^(lam-k); d²log phi/dW² = -k/W² < 0",
        _K_LAM,
    ),
    ClaimSpec(
        "K4",
        "phi(1+x) = 1 + (k-lam) x + ((k-lam)^2 - k) x^2/2 + O(x^3): (3,2) matches IS to first "
        "order, (2,3) has slope -1",
        "k > 0, lam > 0; expansion at W = 1",
    ),
    # ---------------------------------------------------------------- the bounds
    ClaimSpec(
        "B1",
        "0 <= phi(W) <= M for every W > 0: no moment condition on W, no dependence on length or "
        "token correlation",
        "k > 0, lam > 0; M from K3",
    ),
    ClaimSpec(
        "B2",
        "E_mu[phi^2] <= M E_mu[phi] <= M^2",
        "k > 0, lam > 0; 0 <= phi <= M from B1/K3; any law of W > 0",
    ),
    ClaimSpec(
        "B3",
        "Var[phi g] <= E[phi^2 ||g||^2] <= max(M+,M-)^2 E||g||^2, /n for a batch mean",
        "(k, lam) chosen by the sign of A (M+ for A >= 0, M- for A < 0), both > 0; any law of "
        "W > 0; g = A grad log pi any score vector; n i.i.d. draws",
    ),
    ClaimSpec(
        "L1",
        "B3 holds for every length and token dependence",
        "autoregressive mu, pi of any length T (fixed or random) and any token dependence; "
        "supp pi ⊆ supp mu; deployed (k, lam) by the sign of A",
    ),
    ClaimSpec(
        "L2",
        "phi(W) - W = (k - lam - 1)(W - 1) + O((W-1)^2)",
        "k > 0, lam > 0; expansion at W = 1",
    ),
    # ---------------------------------------------------------------- the weight W
    ClaimSpec(
        "M1",
        "E_mu[W] = 1 for any autoregressive mu, pi with supp pi ⊆ supp mu, whatever the token "
        "dependence (W_t is a mean-one martingale)",
        "supp pi ⊆ supp mu; any token dependence",
    ),
    ClaimSpec(
        "M2",
        "For context-free token policies E_mu[W^2] = prod_t (1 + chi2_t): grows exponentially in T",
        "context-free (prefix-independent) token policies, fixed length T, mu > 0",
    ),
    ClaimSpec(
        "M3",
        "If log W ~ N(-s2/2, s2), E[W^a] = exp(s2 a(a-1)/2); median W = e^(-s2/2) -> 0",
        "log W Gaussian with variance s2 > 0; a real",
    ),
    # ---------------------------------------------------------------- unbiasedness
    ClaimSpec(
        "U1",
        "sequence IS (coefficient W) is unbiased",
        "supp pi ⊆ supp mu; any autoregressive model, fixed or random length",
        source="importance sampling (Precup, Sutton and Singh 2000, ICML), derived here",
    ),
    ClaimSpec(
        "U2",
        "per-decision IS (coefficient prod_{s<=t} r_s) is unbiased, for context-free policies "
        "of fixed length",
        "context-free policies, fixed length, additive (mean token) reward as the advantage",
        source="importance sampling (Precup, Sutton and Singh 2000, ICML), derived here",
    ),
    # ---------------------------------------------------------------- relaxed (false) beliefs
    ClaimSpec(
        "R1",
        "the VESPO gradient variance does not depend on sequence length",
        "context-free model, the same pair at length T and T+1",
        kind="relaxed",
    ),
    ClaimSpec(
        "R2",
        "the VESPO gradient estimate is unbiased",
        "any pi != mu; deployed (k, lam)",
        kind="relaxed",
    ),
    ClaimSpec(
        "R3",
        "the VESPO estimator never has more variance than sequence IS",
        "any pi, mu; deployed (k, lam) by the sign of A",
        kind="relaxed",
    ),
    ClaimSpec(
        "R4",
        "token-level clipping is unbiased whenever nothing is clipped",
        "every token ratio inside [1 - eps, 1 + eps]",
        kind="relaxed",
    ),
    ClaimSpec(
        "R5",
        "E_mu[phi(W)] stays near 1 under staleness",
        "a fixed per-token drift between mu and pi; any length T",
        kind="relaxed",
    ),
    ClaimSpec(
        "R6",
        "per-decision IS is unbiased for any autoregressive policy with a sequence advantage",
        "any autoregressive model (Markov or prefix-dependent, random length); A sequence-level",
        kind="relaxed",
        source="found by vespo falsify (per-decision IS is often called unbiased without "
        "this condition)",
    ),
]

# Rules with a surrogate f (claims F-<rule>, checked by vespo_theory.derivations.surrogates;
# the test suite holds this list equal to surrogates.SURROGATE_RULES).
SURROGATE_RULE_NAMES = (
    "is",
    "reinforce",
    "ppo_clip",
    "dual_clip",
    "cispo",
    "sapo",
    "gspo",
    "token_tis",
    "seq_tis",
    "token_mis",
    "seq_mis",
    "vespo",
)
_ENTRIES += [
    ClaimSpec(
        f"F-{name}",
        f"surrogate of rule {name}: W f'(W) = phi(W)",
        "W > 0; f continuous; phi is the registry's coefficient (vespo_theory.rules); T = 1 "
        "(one token) except GSPO (symbolic T)",
        source="arXiv 2602.10693 Eq. 4 (phi = W f'(W)); each rule's paper in docs/rules.md",
    )
    for name in SURROGATE_RULE_NAMES
]


def _build() -> MappingProxyType:
    out: dict[str, ClaimSpec] = {}
    for spec in _ENTRIES:
        if spec.id in out:
            raise ValueError(f"claim {spec.id} is catalogued twice")
        out[spec.id] = spec
    return MappingProxyType(out)


#: claim ID -> :class:`ClaimSpec` (read-only).
CATALOGUE = _build()


def get(claim_id: str) -> ClaimSpec:
    """The catalogue entry of ``claim_id``; ``KeyError`` naming the valid IDs otherwise."""
    try:
        return CATALOGUE[claim_id]
    except KeyError:
        raise KeyError(
            f"claim {claim_id!r} is not in the catalogue (vespo_theory.claims); "
            f"valid IDs: {', '.join(CATALOGUE)}"
        ) from None


def statement(claim_id: str) -> str:
    """The statement of a claim (the only copy of its text)."""
    return get(claim_id).statement


def assumptions(claim_id: str) -> str:
    """The claim's own assumptions (a check or a search adds its premises / search space)."""
    return get(claim_id).assumptions


def kind(claim_id: str) -> str:
    """``"stated"`` or ``"relaxed"``."""
    return get(claim_id).kind


def ids(kind: str | None = None) -> list[str]:
    """Catalogued claim IDs in catalogue order; ``kind`` filters."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [c for c, s in CATALOGUE.items() if kind is None or s.kind == kind]
