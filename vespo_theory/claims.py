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
    # ---------------------------------------------------------------- the paper's statements
    ClaimSpec(
        "P1",
        "measure change: E_mu[phi(W) G] = Z E_Q[G] with Q = mu phi(W)/Z, Z = E_mu[phi(W)], for "
        "every function G of the sequence",
        "finite support, mu > 0, phi >= 0 with Z > 0",
        source="arXiv 2602.10693 Eqs. 9-10 and 42",
    ),
    ClaimSpec(
        "P2",
        "min_Q KL(Q||mu) - a E_Q[log W] s.t. E_Q[W] <= C, sum Q = 1 has the solution "
        "Q* ∝ mu W^a e^(-bW); on finite supports it has the same minimiser as the two-KL form "
        "(1-a) KL(Q||mu) + a KL(Q||pi) (with pi = mu W the two objectives are equal); on "
        "infinite supports the single-KL form stays well defined, in (-inf, +inf], for a >= 0 "
        "on the feasible set (E_Q[log W] <= log E_Q[W] <= log C by Jensen), where the two-KL "
        "form can be inf - inf (a > 1)",
        "finite support for the equivalence, mu > 0, pi > 0, W = pi/mu, a real, b >= 0; "
        "a >= 0 for the infinite-support part",
        source="arXiv 2602.10693 Prop. B.1, Eqs. 11-16 and 38",
    ),
    ClaimSpec(
        "P3",
        "the unshifted kernel W^a e^(-bW) has surrogate f(W) = b^(-a) lowergamma(a, bW): "
        "W f'(W) = W^a e^(-bW), f(0) = 0, f increasing and saturating at b^(-a) Gamma(a)",
        "a > 0, b > 0, W > 0",
        source="arXiv 2602.10693 Eqs. 39-41",
    ),
    ClaimSpec(
        "P4",
        "variance bound: K := sup_w phi(w)/w, attained at w = (k-1)/lam when k > 1, is "
        "((k-1)/lam)^(k-1) e^(lam-k+1) (e^lam at k = 1) and finite iff k >= 1; "
        "K(2,3) = e^2/3, K(3,2) = 1; E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W] <= Z K C",
        "k > 0, lam > 0, phi = W^k e^(lam(1-W)); Q = mu phi/Z the kernel's implicit proposal "
        "with E_Q[W] <= C (nothing in the method enforces C)",
        source="arXiv 2602.10693 Prop. 3.1 (Theorem 3.1 in the text), Eqs. 18-19 and 43-44",
    ),
    ClaimSpec(
        "P5",
        "uniform bound: sup phi = (k/lam)^k e^(lam-k) at W = k/lam (1.2081 for (2,3), 1.2416 "
        "for (3,2)): no single sample contributes an unbounded weight (the same statement as K3)",
        "k > 0, lam > 0",
        source="arXiv 2602.10693 Prop. C.1, Eq. 45",
    ),
    ClaimSpec(
        "P6",
        "GSPO's implicit proposal: phi = W^(1/T) gives Q ∝ mu^(1-1/T) pi^(1/T), which tends to "
        "mu as T grows",
        "finite support of sequences, mu > 0, pi > 0; T >= 1 the (fixed) length",
        source="arXiv 2602.10693 Eqs. 29 and 46",
    ),
    ClaimSpec(
        "P7",
        "the sequence hard clip phi = min(W, c) gives the implicit proposal Q ∝ min(pi, c mu)",
        "finite support, mu > 0, c > 0",
        source="arXiv 2602.10693 Eq. 30",
    ),
    ClaimSpec(
        "P8",
        "length normalisation conflates: sequences with equal log W / T but different T get the "
        "same normalised weight, while their true weights e^(T log W/T) differ",
        "log W / T = rho != 0, two lengths T1 != T2",
        source="arXiv 2602.10693 Prop. E.1",
    ),
    ClaimSpec(
        "P9",
        "token-level IS keeps only the diagonal s = t of the expansion W = prod_t (1 + d_t): "
        "E_mu[W G] - E_mu[sum_t r_t g_t] = sum_{s != t} E_mu[d_s g_t] + O(d^2), d_t = r_t - 1; "
        "small only near on-policy or for short sequences",
        "autoregressive mu, pi with supp pi ⊆ supp mu, G = sum_t g_t the sequence score, "
        "d_t = r_t - 1 small",
        source="arXiv 2602.10693 Eqs. 24-28, Remark A.1",
    ),
    ClaimSpec(
        "P10",
        "with a constant baseline b (or one independent of the sample, e.g. a leave-one-out "
        "group mean), E_mu[phi(W) (R - b) grad log pi] equals E_mu[phi(W) R grad log pi] for "
        "every b only for phi ∝ W (then E_mu[W grad log pi] = 0); for other phi the baseline "
        "adds the bias -b E_mu[phi(W) grad log pi]; a group mean over G i.i.d. samples that "
        "includes the sample gives (G-1)/G (E_mu[phi R grad log pi] - E_mu[R] E_mu[phi grad "
        "log pi])",
        "finite support, mu > 0; phi any reshaping",
        source="arXiv 2602.10693 §3.5",
    ),
    # ---------------------------------------------------------------- the variational problem
    ClaimSpec(
        "Q1",
        "Stationarity of the Lagrangian gives Q* ∝ mu^(1-a) pi^a e^(-bW)",
        "finite support, Q > 0 at every point, W = pi/mu, a real, b >= 0",
    ),
    ClaimSpec(
        "Q2",
        "The objective is strictly convex in Q for every real a; Q* is the unique minimiser",
        "finite support; objective (1-a) KL(Q||mu) + a KL(Q||pi) s.t. sum Q = 1, E_Q[W] <= C "
        "(on infinite supports the two-KL form can be inf - inf: use P2's single-KL form)",
    ),
    ClaimSpec(
        "Q3",
        "dE_{Q*}[W]/db = -Var_{Q*}(W) <= 0; a budget C is feasible iff C > min W (ess inf); "
        "then b(C) is unique, and b = 0 exactly when C >= E_{Q*(b=0)}[W] = "
        "E_mu[W^(a+1)]/E_mu[W^a]",
        "Q* from Q1's stationarity; W not constant on the support; finite support",
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
    ClaimSpec(
        "K5",
        "for (k, lam) = (3, 2), K = sup phi(W)/W = 1: phi <= W pointwise, so "
        "E_mu[phi^2 ||g||^2] <= E_mu[W^2 ||g||^2] for every score g",
        "phi = W^3 e^(2(1-W)), W > 0; any law of W and any g",
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
        "k > 0, lam > 0; phi = W^k e^(lam(1-W)) and M = (k/lam)^k e^(lam-k) its sup (K3); "
        "0 <= phi <= M from B1; any law of W > 0",
        source="arXiv 2602.10693 Prop. C.1 (Eq. 45), squared and integrated here",
    ),
    ClaimSpec(
        "B3",
        "Var[phi g] <= E[phi^2 ||g||^2] <= max(M+,M-)^2 E||g||^2, /n for a batch mean",
        "(k, lam) chosen by the sign of A (M+ for A >= 0, M- for A < 0), both > 0; any law of "
        "W > 0; g = A grad log pi any score vector; the /n needs n i.i.d. draws with a fixed "
        "advantage function (group-normalised advantages break it: G1, R7)",
    ),
    ClaimSpec(
        "G1",
        "with group-normalised advantages the samples of a group are dependent: Var of the "
        "batch mean of phi(W_i) g_i, g_i = A_i grad log pi(y_i), is <= M^2 max_i E||g_i||^2, "
        "and <= M^2 max_i E||grad log pi(y_i)||^2 since sum_i A_i^2 <= G (no 1/n in general); "
        "the exact group covariance (by enumeration) can exceed the i.i.d. bound "
        "M^2 E||g||^2/n",
        "one group of G samples from mu, A_i = (R_i - mean_j R_j)/(std_j R_j + eps) with the "
        "population std, so |A_i| <= sqrt(G-1) and sum_i A_i^2 <= G; deployed (k, lam)",
    ),
    ClaimSpec(
        "BIAS1",
        "||E_mu[(phi(W) - W) g]|| <= sqrt(E_mu[(phi(W) - W)^2]) sqrt(E_mu||g||^2); near "
        "on-policy E_mu[(phi - W) g] = (k - lam - 1) E_mu[(W - 1) g] + O(E|W-1|^2 ||g||)",
        "any law of (W, g) with finite second moments; the expansion from K4/L2",
    ),
    ClaimSpec(
        "BT",
        "sup-coefficient table: for every registered rule, M_rule = sup of its coefficient over "
        "W (token ratios, lengths, advantage signs) where finite; the rules without one are "
        "named (unbounded)",
        "the registry's coefficients (vespo_theory.rules) at their default parameters; "
        "sequence rules as functions of W, token rules of the token ratio r",
    ),
    ClaimSpec(
        "L1a",
        "E_mu||G_T||^2 of the sequence score G_T = sum_t grad log pi(y_t) grows with T; for a "
        "stationary context-free pair it is exactly T c1 + T(T-1) ||E_mu grad log pi_t||^2, "
        "c1 = E_mu||grad log pi_t||^2",
        "context-free (prefix-independent), position-independent token policies of fixed "
        "length T, mu > 0; the growth alone holds for any autoregressive pair",
    ),
    ClaimSpec(
        "L1b",
        "B3 holds at every length and token dependence, and its bound M^2 E||g||^2 grows with T "
        "(L1a); the actual VESPO variance at a fixed per-token drift is non-monotone in T and "
        "tends to 0 with E_mu[phi] (measured, not assumed)",
        "autoregressive mu, pi of any length T (fixed or random) and any token dependence; "
        "supp pi ⊆ supp mu; deployed (k, lam) by the sign of A; the non-monotonicity is measured "
        "on i.i.d. tokens (V = 2, one logit parameter) with a fixed per-token drift",
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
        "context-free (prefix-independent) token policies, fixed length T (not with a random "
        "length or an end token), mu > 0",
    ),
    ClaimSpec(
        "M3",
        "If log W ~ N(-s2/2, s2), E[W^a] = exp(s2 a(a-1)/2); median W = e^(-s2/2) -> 0",
        "log W Gaussian with variance s2 > 0; a real",
    ),
    ClaimSpec(
        "M4",
        "E_mu[phi(W_T)] -> 0 whenever W_T -> 0 in mu-probability (e.g. i.i.d. tokens with "
        "KL(mu||pi) > 0, where log W_T / T -> -KL(mu||pi) almost surely)",
        "k > 0, lam > 0 (phi bounded by M and phi(0+) = 0, so dominated convergence applies); "
        "the convergence condition W_T -> 0 in probability is needed: with KL(mu||pi) = 0 "
        "(pi = mu) E[phi] = 1 for every T",
    ),
    ClaimSpec(
        "D1",
        "for i.i.d. tokens, -(1/T) log E_mu[phi(W_T)] -> the Chernoff information "
        "-min_{s in [0,1]} log E_mu[r^s] between mu and pi when k exceeds the minimiser s*; "
        "at every T, E_mu[phi(W_T)] <= inf_{0 <= s < k} C_s (E_mu[r^s])^T with "
        "C_s = ((k-s)/lam)^(k-s) e^(lam-k+s): an implicit learning-rate decay with staleness "
        "and length",
        "i.i.d. (context-free, position-independent) tokens with token ratio r = pi/mu, "
        "mu > 0; k > 0, lam > 0; s* the minimiser of log E_mu[r^s] on [0, 1]",
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
        "per-decision IS is unbiased when each token reward r_s is weighted by its own prefix "
        "product rho_{1:s}: E_mu[sum_s r_s rho_{1:s} sum_{t<=s} grad log pi_t] = "
        "grad E_pi[sum_s r_s]; with a mean-token reward as A and coefficient rho_{1:t} it is "
        "unbiased for context-free policies of fixed length",
        "any autoregressive model, fixed or random length, additive token rewards r_s = "
        "r(y_s); the rho_{1:t}-weighted sequence advantage only for context-free, fixed-length "
        "models (R6 breaks it otherwise)",
        source="importance sampling (Precup, Sutton and Singh 2000, ICML), derived here",
    ),
    ClaimSpec(
        "U3",
        "unclipped token-level PPO (coefficient r_t on grad log pi_t, prefix product dropped) "
        "is exactly unbiased for context-free, fixed-length models with an additive reward",
        "context-free (prefix-independent) policies, fixed length T, A = mean token reward; "
        "every token ratio inside the clip range (nothing clipped); R4 breaks it otherwise",
    ),
    ClaimSpec(
        "SN1",
        "self-normalised VESPO (phi_i / mean_j phi_j): bias O(1/n) and variance, by the delta "
        "method, (1/n) Var_mu[(phi/Z)(X - E_Q[X])] + O(n^-2) for the estimate of E_Q[X], "
        "Z = E_mu[phi]",
        "n i.i.d. draws from mu, finite support (or bounded X), Z > 0; phi the deployed kernel",
    ),
    ClaimSpec(
        "ASC1",
        "E_mu[phi(W) A grad log pi] is an ascent direction of J(pi) = E_pi[A] iff "
        "<E_mu[phi A grad log pi], grad J> > 0; it holds near on-policy (W near 1) and fails at "
        "large drift (5-arm softmax bandits with cosine below -0.95 at KL(mu||pi) <= 0.5, and "
        "near -1 at larger drift, exist)",
        "softmax policy on a finite action set, fixed advantage function A (here "
        "A = R - E_mu[R]); deployed (k, lam)",
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
        "the VESPO gradient estimate is unbiased (and at least points the way of the true "
        "gradient)",
        "any pi != mu; deployed (k, lam); a counterexample shows both a scale bias and a "
        "directional one",
        kind="relaxed",
    ),
    ClaimSpec(
        "R3",
        "the VESPO estimator never has more variance than sequence IS",
        "any pi, mu; deployed (k, lam) by the sign of A; the mechanism is the (2,3) kernel, "
        "which exceeds W exactly on 0.0595 < W < 1 (e.g. phi(0.54) = 1.16); for (3,2) phi <= W "
        "pointwise (K5), so its second moment never exceeds IS's",
        kind="relaxed",
    ),
    ClaimSpec(
        "R4",
        "token-level clipping is unbiased whenever nothing is clipped",
        "every token ratio inside [1 - eps, 1 + eps]; Markov or prefix-dependent models or a "
        "random length (for context-free, fixed-length, additive-reward models it is exactly "
        "unbiased: U3)",
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
        "per-decision IS (weight rho_{1:t} on grad log pi_t) is unbiased for any "
        "autoregressive policy with a sequence-level advantage or a reward-to-go",
        "any autoregressive model (Markov or prefix-dependent, random length); A sequence-level, "
        "or the reward-to-go sum_{s>=t} r_s weighted by rho_{1:t} (biased already at V = 2, "
        "T = 2, and for a fixed-length Markov model at T = 2 and 3); unbiased only with "
        "per-reward weights (U2)",
        kind="relaxed",
        source="found by vespo falsify (per-decision IS is often called unbiased without "
        "this condition)",
    ),
    ClaimSpec(
        "R7",
        "B3's /n holds for a batch with GRPO group advantages: Var of the group mean of "
        "phi(W_i) A_i g_i <= M^2 E||A g||^2 / n",
        "one group of G = n samples, A_i = (R_i - group mean)/(group std + 1e-6); softmax "
        "bandit scores g = e_y - pi; deployed (k, lam)",
        kind="relaxed",
    ),
    ClaimSpec(
        "R8",
        "the VESPO update E_mu[phi(W) A grad log pi] is always an ascent direction of "
        "J = E_pi[r], with A = r - E_pi[r] held fixed during the step",
        "softmax bandit, any drift between mu and pi; deployed (k, lam); with a baseline, 3 or "
        "more arms are needed (two arms cannot break it)",
        kind="relaxed",
    ),
    ClaimSpec(
        "R9",
        "a bounded per-sample weight (P5) means stale samples cannot hurt: the expected VESPO "
        "update keeps its size and direction under staleness",
        "a fixed per-token drift between mu and pi growing with staleness, any length T; "
        "deployed (k, lam); checked as <E_mu[phi A G], grad J> >= ||grad J||^2/2 on V = 2 "
        "i.i.d. tokens: E_mu[phi] -> 0 (M4, D1) shrinks the update; its turning is R8's (ASC1)",
        kind="relaxed",
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
    "vespo_sym23",
    "vespo_sym32",
    "vespo_sqrt",
    "vespo_lin",
    "topr",
)
_ENTRIES += [
    ClaimSpec(
        f"F-{name}",
        f"surrogate of rule {name}: W f'(W) = phi(W)",
        "W > 0; f continuous; phi is the registry's coefficient (vespo_theory.rules); T = 1 "
        "(one token) except GSPO, vespo_sqrt and vespo_lin (symbolic T)",
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
