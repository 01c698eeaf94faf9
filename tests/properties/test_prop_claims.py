"""Property tests of the stated claims of the catalogue (vespo_theory.claims); hypothesis,
``ci``/``dev`` profiles.

Each test draws instances from the strategies of :mod:`simulations.falsify.strategies` (the same
ones ``vespo falsify`` searches with) and asserts every inequality ``lhs <= rhs`` of the claim's
exact evaluator (:mod:`simulations.falsify.claims`; tolerances are float64 rounding bounds stated
there). Some claims get an extra, independent assertion written out here.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
from hypothesis import assume, given

from simulations.falsify import get_claim
from simulations.falsify import strategies as S
from vespo_theory import bounds, kernels

EPS64 = float(np.finfo(np.float64).eps)


def _holds(claim_id: str, instance: dict) -> None:
    for c in get_claim(claim_id).checks(instance):
        assert c.lhs <= c.rhs, f"{claim_id}: {c.what}: lhs {c.lhs!r} > rhs {c.rhs!r} on {instance}"


@given(get_claim("B1").strategy())
def test_b1_phi_at_most_M(instance):
    _holds("B1", instance)
    # independent, in linear space where M is finite: 0 <= phi <= M (1 + 1e-12); 1e-12 is
    # far above the relative rounding of exp(k log W + lam (1 - W)) for |log phi| < 700 (~1e-13)
    k, lam = instance["k"], instance["lam"]
    lw = math.fsum(instance["tok_log_ratio"])
    if bounds.log_phi_max(k, lam) < 700:
        ph = float(kernels.phi(np.array(lw), k, lam))
        assert 0.0 <= ph <= bounds.phi_max(k, lam) * (1 + 1e-12)


@given(get_claim("B2").strategy())
def test_b2_second_moment(instance):
    _holds("B2", instance)


@given(get_claim("B3").strategy())
def test_b3_variance_bound_per_sample_and_batch(instance):
    _holds("B3", instance)


@given(get_claim("B3").strategy().filter(lambda i: min(i["adv"]) < 0 <= max(i["adv"])))
def test_b3_with_both_sign_classes(instance):
    """Both kernels in one support: the factor is max(M+, M-)^2."""
    _holds("B3", instance)


@given(get_claim("B3").strategy(), st.integers(2, 3))
def test_b3_batch_mean_is_per_sample_over_n(instance, n):
    """The exact variance of a batch mean (every n-tuple enumerated) is the per-sample one / n."""
    from simulations.falsify.claims import _batch_var, _pair

    assume(len(instance["mu"]) ** n <= 1000)
    mu, _, log_w = _pair(instance)
    from vespo_theory.params import VespoParams

    adv = np.asarray(instance["adv"])
    g = adv[:, None] * np.asarray(instance["score"])
    phi = np.asarray(kernels.phi_signed(log_w, adv, VespoParams(**instance["params"])))
    x = phi[:, None] * g
    v1, vn = _batch_var(mu, x, 1), _batch_var(mu, x, n)
    # both are centred (two-pass) sums of <= 1000 products of <= 3 factors, on the scale of
    # E|x|^2: relative rounding <= ~(1000 + 3 * 3) u ~ 1.1e-13 (Higham); 1e4 eps = 2.2e-12 is 20x
    # that (was 1e-9, 450x looser than this derivation)
    scale = v1 + float(mu @ np.einsum("ij,ij->i", x, x))
    assert abs(vn - v1 / n) <= 1e4 * EPS64 * scale + 1e-300
    _holds("B3", {**instance, "n": n})


@given(get_claim("K3").strategy())
def test_k3_argmax_and_log_concavity(instance):
    _holds("K3", instance)


@given(get_claim("K4").strategy())
def test_k4_second_order_expansion(instance):
    _holds("K4", instance)
    _holds("L2", instance)


@given(get_claim("M1").strategy())
def test_m1_mean_one_for_any_autoregressive_pair(instance):
    _holds("M1", instance)


@given(get_claim("M2").strategy())
def test_m2_second_moment_factorises(instance):
    _holds("M2", instance)


@given(get_claim("L1b").strategy())
def test_l1_bound_holds_for_every_length(instance):
    _holds("L1b", instance)


@given(S.kernel_params(), S.log_w())
def test_k3_M_is_attained_and_never_exceeded(kl, lw):
    """phi(k/lam) = M (equality, 1e-12 relative) and phi(W) <= phi(k/lam) anywhere."""
    k, lam = kl["k"], kl["lam"]
    assume(bounds.log_phi_max(k, lam) < 700)
    peak = float(kernels.phi(np.array(math.log(k / lam)), k, lam))
    # peak = exp(k log(k/lam) + lam (1 - k/lam)), M = exp(k log(k/lam) + lam - k): the exponents
    # differ by rounding of terms of size |k log(k/lam)|, lam, k, i.e. by 8 u times their sum
    # at most, which is the relative difference of the exps; + 4 u for the two exps themselves
    lm = bounds.log_phi_max(k, lam)
    rel = 4 * EPS64 * (abs(k * math.log(k / lam)) + lam + k + abs(lm)) + 2 * EPS64
    assert math.isclose(peak, bounds.phi_max(k, lam), rel_tol=rel, abs_tol=0.0)
    # phi <= M anywhere; only near the peak can rounding matter: there log phi = k L + lam (1 - W)
    # rounds by <= 8 u (|k L| + lam (1 + W)) with k, lam <= 50, |L| <= log(50/0.01) = 8.5 and
    # lam W ~ k: <= 8 u * 600 = 5.3e-13 relative; 1e-12 is 2x that
    assert float(kernels.phi(np.array(lw), k, lam)) <= peak * (1 + 1e-12)


@given(get_claim("K5").strategy())
def test_k5_the_negative_kernel_never_outweighs_is(instance):
    _holds("K5", instance)
    # independent, in linear space where W is moderate (|L| <= 5, L = log W): phi_(3,2)(W) <= W.
    # phi = exp(3 L + 2 (1 - e^L)) is off by 8 u (3|L| + 2 (1 + W)) relatively; the true gap
    # 1 - phi/W ~ L^2 dwarfs that except for |L| < 1e-6, where it is 8 u * 4 = 7e-15: the slack
    # 2e-13 is 28x that
    for lw in instance["log_w"]:
        if abs(lw) <= 5:
            ph = float(kernels.phi(np.array(lw), 3.0, 2.0))
            assert ph <= math.exp(lw) * (1 + 2e-13)


@given(get_claim("G1").strategy())
def test_g1_group_variance_without_the_one_over_n(instance):
    _holds("G1", instance)


@given(get_claim("U2").strategy())
def test_u2_per_reward_weights_unbiased_for_any_model(instance):
    _holds("U2", instance)


@given(get_claim("U3").strategy())
def test_u3_unclipped_ppo_unbiased_context_free(instance):
    from simulations.falsify import OutsideAssumptions

    try:
        _holds("U3", instance)
    except OutsideAssumptions:  # a token clipped: not an instance U3 is about
        assume(False)
