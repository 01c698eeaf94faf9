r"""One GRPO group, enumerated exactly: the evaluators of claims G1 (stated) and R7 (relaxed).

A group holds G samples y_1..y_G drawn i.i.d. from mu on a finite action set (a softmax bandit);
each gets the group-normalised advantage of GRPO (Shao et al. 2024, arXiv 2402.03300, Eq. 3)

.. math:: A_i = (R_{y_i} - \bar R) / (\mathrm{std}(R_{y_1..y_G}) + 10^{-6}),

with the population std (``np.std``, ddof = 0), and the estimate
x_i = phi(W_i) A_i (e_{y_i} - pi) of VESPO (arXiv 2602.10693 Eq. 17; (k, lam) by the sign of
A_i, B3). The advantages couple the samples: x_1..x_G are exchangeable but dependent, so B3's
"/n" for a batch mean (which needs i.i.d. samples with a fixed advantage function) need not hold
(R7), while Var(mean_i x_i) <= max_i Var(x_i) <= M^2 max_i E||A_i g_i||^2 always does (G1).

Everything is exact: every one of the m^G tuples is enumerated with its probability
prod_i mu(y_i), in float64.
"""

from __future__ import annotations

import itertools
import math

import hypothesis.strategies as st
import numpy as np

from simulations.falsify import strategies as S
from simulations.falsify.core import Check

__all__ = [
    "GROUP_STD_EPS",
    "g1",
    "group_advantages",
    "group_moments",
    "r7",
    "r7_details",
    "strategy",
]

# GRPO's epsilon in the advantage's denominator (the value of the reference implementations).
GROUP_STD_EPS = 1e-6
MAX_TUPLES = 10_000


@st.composite
def _near_pair(draw) -> dict:
    """2..3 arms: mu = softmax of logits in [-2, 2], pi = softmax of those plus a drift in
    [-1, 1] per arm. R7's violations sit there (the rewarded arm rare under mu, pi moved
    towards it); the B-style pairs with probabilities down to e^-40 reach them in only about
    half the seeds at budget 100, these in 44 of seeds 0-47."""
    m = draw(st.integers(2, 3))
    logits = draw(st.lists(st.floats(-2.0, 2.0), min_size=m, max_size=m))
    drift = draw(st.lists(st.floats(-1.0, 1.0), min_size=m, max_size=m))
    return {"mu": S._normalise(logits), "pi": S._normalise([a + d for a, d in zip(logits, drift)])}


@st.composite
def strategy(draw, free_params: bool = False, wide: bool = False):
    """A bandit of 2..3 arms, rewards in [-3, 3], one group of G = 2..4.

    ``wide`` adds arbitrary pairs (probabilities down to e^-40) and stale ones
    (:func:`~simulations.falsify.strategies.finite_pair_near`); ``free_params`` draws (k, lam)
    for both signs.
    """
    pairs = [_near_pair()]
    if wide:
        pairs += [
            S.finite_pair(min_n=2, max_n=3, pi_zeros=False),
            S.finite_pair_near(min_n=2, max_n=3),
        ]
    pair = draw(st.one_of(*pairs))
    m = len(pair["mu"])
    inst = {
        **pair,
        "reward": draw(st.lists(st.floats(-3.0, 3.0), min_size=m, max_size=m)),
        "G": draw(st.integers(2, 4)),
    }
    if free_params:
        inst["params"] = draw(S.vespo_params())
    return inst


def _inputs(inst: dict):
    from simulations.falsify.claims import _pair
    from vespo_theory.params import VespoParams

    mu, pi, log_w = _pair(inst, pi_zeros=False)
    m = mu.size
    reward = np.asarray(inst.get("reward"), dtype=np.float64)
    if reward.shape != (m,) or not np.isfinite(reward).all():
        raise ValueError(f"reward must be a list of {m} finite numbers, got {inst.get('reward')!r}")
    G = inst.get("G")
    if isinstance(G, bool) or not isinstance(G, int) or G < 2 or m**G > MAX_TUPLES:
        raise ValueError(f"G must be an integer >= 2 with arms^G <= {MAX_TUPLES}, got {G!r}")
    params = VespoParams(**inst["params"]) if "params" in inst else VespoParams()
    return mu, pi, log_w, reward, G, params


def group_advantages(r: np.ndarray) -> np.ndarray:
    """GRPO's advantages of every group, row-wise: (r - mean) / (population std + 1e-6)."""
    return (r - r.mean(axis=1, keepdims=True)) / (r.std(axis=1, keepdims=True) + GROUP_STD_EPS)


def group_moments(inst: dict) -> dict:
    """Exact moments of one group (every G-tuple enumerated).

    ``var``: trace Var of the group mean of x_i = phi(W_i) A_i (e_{y_i} - pi); ``e_x2[i]`` =
    E||x_i||^2; ``e_ag2[i]`` = E||A_i (e_{y_i} - pi)||^2 (the marginal of sample i); ``M2`` =
    max(M+, M-)^2; ``scale`` = the sum of the magnitudes summed (for rounding bounds).
    """
    from vespo_theory import bounds, kernels

    mu, pi, log_w, reward, G, params = _inputs(inst)
    m = mu.size
    tup = np.array(list(itertools.product(range(m), repeat=G)), dtype=np.int64)  # [m^G, G]
    prob = np.prod(mu[tup], axis=1)
    adv = group_advantages(reward[tup])
    s = np.eye(m)[tup] - pi  # [m^G, G, m]: e_{y_i} - pi, the score of pi's logits
    ag = adv[..., None] * s
    phi = np.asarray(kernels.phi_signed(log_w[tup], adv, params), dtype=np.float64)
    x = phi[..., None] * ag
    mean = x.mean(axis=1)  # [m^G, m]
    centre = prob @ mean
    d = mean - centre
    var = float(prob @ np.einsum("ij,ij->i", d, d))
    e_x2 = prob @ np.einsum("nij,nij->ni", x, x)
    e_ag2 = prob @ np.einsum("nij,nij->ni", ag, ag)
    return {
        "var": var,
        "e_x2": e_x2,
        "e_ag2": e_ag2,
        "M2": bounds.variance_factor(params, 1),
        "G": G,
        "n_terms": tup.shape[0] * G * m,
    }


def _tols(mom: dict) -> tuple[float, float]:
    # Sums of at most 10^4 tuples x 4 samples x 3 arms = 1.2e5 products of a few factors:
    # relative rounding <= ~1.2e5 eps ~ 3e-11 (Higham); 1e-10 is 3x that (as B3's).
    rtol = 1e-10
    # underflow into subnormals: one subnormal spacing per summed term, x8 for the operations
    atol = 8 * mom["n_terms"] * math.ulp(0.0)
    return rtol, atol


def r7(inst: dict) -> list[Check]:
    """R7: Var[group mean of phi A g] <= M^2 E||A g||^2 / n with n = G (B3's i.i.d. /n)."""
    mom = group_moments(inst)
    rtol, atol = _tols(mom)
    rhs = mom["M2"] * float(mom["e_ag2"][0]) / mom["G"]  # exchangeable: every marginal is one
    return [
        Check(
            mom["var"],
            rhs * (1 + rtol) + atol,
            "Var[group mean of phi(W_i) A_i g_i] <= M^2 E||A g||^2 / n  (n = G)",
        )
    ]


def r7_details(inst: dict) -> dict:
    mom = group_moments(inst)
    iid = float(mom["e_x2"][0]) / mom["G"]
    return {
        "Var/(M^2 E||A g||^2/n)": mom["var"] / (mom["M2"] * float(mom["e_ag2"][0]) / mom["G"]),
        "Var/(E[phi^2 ||A g||^2]/n)": mom["var"] / iid if iid > 0 else math.inf,
        "Var/(M^2 max_i E||A_i g_i||^2)  (G1, <= 1)": mom["var"]
        / (mom["M2"] * float(np.max(mom["e_ag2"]))),
    }


def g1(inst: dict) -> list[Check]:
    """G1: Var[group mean] <= max_i E||x_i||^2 <= M^2 max_i E||A_i g_i||^2 (no 1/n)."""
    mom = group_moments(inst)
    rtol, atol = _tols(mom)
    mx = float(np.max(mom["e_x2"]))
    return [
        Check(
            mom["var"],
            mx * (1 + rtol) + atol,
            "Var[group mean of x_i] <= max_i E||x_i||^2  (x_i = phi(W_i) A_i g_i)",
        ),
        Check(
            mx,
            mom["M2"] * float(np.max(mom["e_ag2"])) * (1 + rtol) + atol,
            "max_i E||x_i||^2 <= M^2 max_i E||A_i g_i||^2",
        ),
    ]
