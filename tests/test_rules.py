"""The rule registry: names, defaults, hand-computed coefficients, masking, array types, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vespo_theory import rules
from vespo_theory.params import VespoParams

NAMES = [
    "is",
    "reinforce",
    "per_decision_is",
    "ppo_clip",
    "dual_clip",
    "cispo",
    "sapo",
    "gspo",
    "gmpo",
    "token_tis",
    "seq_tis",
    "token_mis",
    "seq_mis",
    "vespo",
]
SEQ_ONLY = {"is", "reinforce", "vespo", "seq_tis", "seq_mis", "gspo"}


def test_names_and_levels():
    assert rules.available() == NAMES
    for name in NAMES:
        r = rules.get_rule(name)
        assert r.name == name
        assert r.seq_only == (name in SEQ_ONLY)
        assert r.level in ("token", "sequence")
        assert r.level == (
            "token"
            if name
            in {
                "per_decision_is",
                "ppo_clip",
                "dual_clip",
                "cispo",
                "sapo",
                "token_tis",
                "token_mis",
            }
            else "sequence"
        )


def test_unknown_rule_lists_valid_names():
    with pytest.raises(ValueError, match="unknown rule 'ppo'; valid rules: is, reinforce"):
        rules.get_rule("ppo")


# Every rule's default parameters, each with its source (the value a run gets when it passes no
# params); a changed default must change this table deliberately.
DEFAULTS = {
    "is": ({}, "no parameters"),
    "reinforce": ({}, "no parameters"),
    "per_decision_is": ({}, "no parameters"),
    "ppo_clip": (dict(eps_low=0.2, eps_high=0.2), "PPO arXiv 1707.06347; veRL clip_ratio"),
    "dual_clip": (
        dict(eps_low=0.2, eps_high=0.2, c=3.0),
        "dual clip arXiv 1912.09729; veRL clip_ratio_c = 3",
    ),
    "cispo": (dict(eps_low=0.2, eps_high=0.2), "project choice (PPO's range), arXiv 2506.13585"),
    "sapo": (dict(tau_pos=1.0, tau_neg=1.05), "SAPO arXiv 2511.20347; veRL actor.yaml"),
    "gspo": (dict(eps_low=3e-4, eps_high=4e-4), "GSPO arXiv 2507.18071 §5.1; veRL examples"),
    "gmpo": (dict(eps_low=0.4, eps_high=0.4), "GMPO arXiv 2507.20673"),
    "token_tis": (dict(cap=2.0), "veRL rollout_is_threshold = 2"),
    "seq_tis": (dict(cap=2.0), "veRL rollout_is_threshold = 2"),
    "token_mis": (dict(low=0.5, high=2.0), "veRL rollout-IS band 1/2 .. 2"),
    "seq_mis": (dict(cap=2.0), "veRL rollout_is_threshold = 2"),
    "vespo": (
        dict(k_pos=2.0, lam_pos=3.0, k_neg=3.0, lam_neg=2.0),
        "VESPO arXiv 2602.10693, reference code FloyedShen/VESPO",
    ),
}


def test_default_parameters_and_their_sources():
    assert set(DEFAULTS) == set(NAMES)
    for name in NAMES:
        want, source = DEFAULTS[name]
        assert rules.params_dict(rules.get_rule(name).params) == want, (name, source)
    assert rules.get_rule("vespo").params == VespoParams()
    for name in NAMES:  # frozen
        with pytest.raises(AttributeError):
            rules.get_rule(name).params.x = 1


def test_public_names_still_importable():
    """The public API of the registry survived the split into rule_params / coefficients."""
    from vespo_theory import params as params_mod
    from vespo_theory.rule_params import ClipParams as FromParamsModule
    from vespo_theory.rules import ClipParams, Rule, VespoParams, available, get_rule

    assert FromParamsModule is ClipParams and VespoParams is params_mod.VespoParams
    assert isinstance(get_rule("vespo"), Rule) and "vespo" in available()
    assert get_rule("ppo_clip").body.__name__ == "ppo_clip_coefficient"
    for name in NAMES:  # every body has a real name and a docstring with its formula/source
        body = get_rule(name).body
        assert body.__name__.endswith("_coefficient") and body.__doc__, name


# --------------------------------------------------------------------------- unequal clip ranges

# eps_low = 0.2, eps_high = 0.28 (clip-higher): a swap of the two would change every value below.
# Ratios exactly representable in neither band edge; log r computed here once.
_ASYM = dict(eps_low=0.2, eps_high=0.28)


def test_ppo_clip_higher_uses_eps_high_for_positive_and_eps_low_for_negative():
    p = rules.ClipParams(**_ASYM)
    rule = rules.get_rule("ppo_clip")
    # A > 0: r = 1.25 <= 1.28 kept (a swapped band 1.2 would drop it); r = 1.3 > 1.28 dropped.
    # A < 0: r = 0.75 < 0.8 dropped (a swapped band 0.72 would keep it); r = 0.85 kept.
    x = np.log(np.array([[1.25, 1.3], [0.75, 0.85]]))
    c = rule.coefficient(x, np.ones((2, 2), bool), np.array([1.0, -1.0]), p)
    # float64: exp(log r) returns r within 1 ulp: rtol 4 u; 0 is exact
    np.testing.assert_allclose(c, [[1.25, 0.0], [0.0, 0.85]], rtol=4 * 2.0**-52, atol=0)
    swapped = rule.coefficient(
        x, np.ones((2, 2), bool), np.array([1.0, -1.0]), rules.ClipParams(0.28, 0.2)
    )
    assert swapped[0, 0] == 0.0 and swapped[1, 0] > 0.7  # the swap is visible


def test_cispo_unequal_range():
    p = rules.CispoParams(**_ASYM)
    rule = rules.get_rule("cispo")
    # clip(r, 0.8, 1.28): 1.5 -> 1.28, 0.5 -> 0.8, 1.1 -> 1.1 (either sign of A: no indicator);
    # the swap (eps_low 0.28, eps_high 0.2) would give 1.2 and 0.72
    x = np.log(np.array([[1.5, 0.5, 1.1], [1.5, 0.5, 1.1]]))
    c = rule.coefficient(x, np.ones((2, 3), bool), np.array([1.0, -1.0]), p)
    # the edges are exp(log1p(+-eps)): 1 ulp from 1.28 / 0.8; 1.1 round-trips within 1 ulp: 4 u
    want = [[1.28, 0.8, 1.1], [1.28, 0.8, 1.1]]
    np.testing.assert_allclose(c, want, rtol=4 * 2.0**-52, atol=0)


# --------------------------------------------------------------------------- mask values


@pytest.mark.parametrize("bad", [2, 0.5, -1])
def test_non_binary_mask_is_rejected(bad, backend):
    mask = np.ones((2, 3))
    mask[1, 2] = bad
    with pytest.raises(ValueError, match=r"response_mask must be bool or hold only 0 and 1"):
        rules.get_rule("vespo").coefficient(
            backend(np.zeros((2, 3))), backend(mask), backend(np.ones(2))
        )


def test_mask_check_on_other_devices_only_on_request():
    """A tensor off the CPU is checked only with sync=True (its answer waits for the device);
    a meta tensor has no values, so any attempt to read one raises: the default never reads."""
    torch = pytest.importorskip("torch")
    from vespo_theory.array_ops import check_binary_mask

    meta = torch.empty(2, 3, device="meta")
    check_binary_mask(meta)  # default on a non-CPU device: skipped, nothing read
    with pytest.raises((RuntimeError, NotImplementedError)):
        check_binary_mask(meta, sync=True)  # opted in: it reads the device
    cpu_bad = torch.tensor([[0.0, 2.0]])
    check_binary_mask(cpu_bad, sync=False)  # opted out everywhere
    with pytest.raises(ValueError, match=r"response_mask .* got 2\.0 at \(0, 1\)"):
        check_binary_mask(cpu_bad)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rules.ClipParams(eps_low=1.0), "eps_low must be < 1 for rule ppo_clip"),
        (lambda: rules.ClipParams(eps_high=-0.1), "eps_high must be a finite number > 0"),
        (lambda: rules.DualClipParams(c=0.9), "c must be > 1 for rule dual_clip"),
        (lambda: rules.SapoParams(tau_neg=0), "tau_neg must be a finite number > 0"),
        (lambda: rules.TokenMisParams(low=1.5), "rule token_mis needs low < 1 < high"),
        (lambda: rules.SeqMisParams(cap=0.5), "cap must be >= 1 for rule seq_mis"),
        (lambda: rules.SeqTisParams(cap=float("nan")), "cap must be a finite number > 0"),
        (lambda: rules.GspoParams(eps_low=2.0), "eps_low must be < 1 for rule gspo"),
    ],
)
def test_bad_params_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- hand references

# Two sequences, T = 3 (no ratio sits on a clip edge). Row 0: ratios (2.5, 0.4, masked NaN),
# W = 1, T = 2, A = +1. Row 1: ratios (1.5, 1, 4), W = 6, T = 3, A = -1.
# Prefix products: (2.5, 1) and (1.5, 1.5, 6).
LOG_R = np.log(np.array([[2.5, 0.4, 1.0], [1.5, 1.0, 4.0]]))
LOG_R[0, 2] = np.nan
MASK = np.array([[True, True, False], [True, True, True]])
ADV = np.array([1.0, -1.0])


def _sapo(r, tau, T):
    return r / math.cosh(tau * (r - 1) / 2) ** 2 / T


_G0 = math.exp((0.4 + math.log(0.4)) / 2)  # GMPO row 0: m = (min(log 2.5, 0.4), log 0.4)
HAND = {
    "is": [[1, 1, 0], [6, 6, 6]],
    "reinforce": [[1, 1, 0], [1, 1, 1]],
    "per_decision_is": [[2.5, 1, 0], [1.5, 1.5, 6]],
    # A > 0 keeps r <= 1.2; A < 0 keeps r >= 0.8
    "ppo_clip": [[0, 0.4, 0], [1.5, 1, 4]],
    # and A < 0 also r <= 3
    "dual_clip": [[0, 0.4, 0], [1.5, 1, 0]],
    "cispo": [[1.2, 0.8, 0], [1.2, 1, 1.2]],
    "sapo": [
        [_sapo(2.5, 1.0, 2), _sapo(0.4, 1.0, 2), 0],
        [_sapo(1.5, 1.05, 3), _sapo(1.0, 1.05, 3), _sapo(4, 1.05, 3)],
    ],
    # row 0: s = 1 <= 1.0004 -> 1/T; row 1: s = 6^(1/3) >= 0.9997 -> s/3
    "gspo": [[0.5, 0.5, 0], [6 ** (1 / 3) / 3] * 3],
    # row 0: token 0 clipped (log 2.5 > 0.4); row 1: nothing below -0.4, g = 6^(1/3)
    "gmpo": [[0, _G0 / 2, 0], [6 ** (1 / 3) / 3] * 3],
    "token_tis": [[2, 0.4, 0], [1.5, 1, 2]],
    "seq_tis": [[1, 1, 0], [2, 2, 2]],
    "token_mis": [[0, 0, 0], [1.5, 1, 0]],
    "seq_mis": [[1, 1, 0], [0, 0, 0]],
    # row 1: A < 0, (k, lam) = (3, 2): 6^3 e^(2 (1 - 6)) = 216 e^-10
    "vespo": [[1, 1, 0], [216 * math.exp(-10)] * 3],
}


def test_hand_table_covers_every_rule():
    assert set(HAND) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_hand_computed_coefficients(name, backend):
    got = rules.get_rule(name).coefficient(backend(LOG_R), backend(MASK), backend(ADV))
    got = np.asarray(got.cpu() if hasattr(got, "cpu") else got)
    # float64; a few elementary operations on each side. The worst entry is VESPO row 1: log W =
    # log 1.5 + log 4 rounds by ~3 u absolute, amplified by |d log phi / d log W| = |k - lam W|
    # = 9, and log phi = k L + lam (1 - W) rounds by 8 u (k |L| + lam (1 + W)) = 8 u * 19.4:
    # ~190 u = 2.1e-14 relative; 1e-13 is ~5x. atol 1e-300: masked entries are exactly 0.
    np.testing.assert_allclose(got, np.array(HAND[name], dtype=float), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_clipped_indicator(name):
    c, clipped = rules.get_rule(name).coefficient_and_clipped(LOG_R, MASK, ADV)
    if clipped is None:
        assert name in {"reinforce", "vespo", "sapo"}
        return
    assert not clipped[~MASK].any()  # never on masked tokens
    expected = {
        "ppo_clip": [[1, 0, 0], [0, 0, 0]],
        "dual_clip": [[1, 0, 0], [0, 0, 1]],
        "cispo": [[1, 1, 0], [1, 0, 1]],
        "gmpo": [[1, 0, 0], [0, 0, 0]],
        "token_tis": [[1, 0, 0], [0, 0, 1]],
        "token_mis": [[1, 1, 0], [0, 0, 1]],
        "seq_tis": [[0, 0, 0], [1, 1, 1]],
        "seq_mis": [[0, 0, 0], [1, 1, 1]],
        "gspo": [[0, 0, 0], [0, 0, 0]],
        "is": [[0, 0, 0], [0, 0, 0]],
        "per_decision_is": [[0, 0, 0], [0, 0, 0]],
    }[name]
    np.testing.assert_array_equal(clipped, np.array(expected, dtype=bool))


# --------------------------------------------------------------------------- masking, types


@pytest.mark.parametrize("name", NAMES)
def test_masked_garbage_changes_nothing(name, backend):
    g = np.random.default_rng(0)
    x = g.normal(size=(4, 6)) * 0.3
    mask = g.random((4, 6)) < 0.6
    mask[:, 0] = True
    adv = np.array([1.0, -1.0, 0.5, -2.0])
    rule = rules.get_rule(name)
    base = rule.coefficient(backend(np.where(mask, x, 0.0)), backend(mask), backend(adv))
    for junk in (np.nan, np.inf, -np.inf, 1e30):
        c = rule.coefficient(backend(np.where(mask, x, junk)), backend(mask), backend(adv))
        np.testing.assert_array_equal(np.asarray(_np(c)), np.asarray(_np(base)))
    # a 0/1 integer mask is the same as a bool one
    c_int = rule.coefficient(backend(x), backend(mask.astype(np.int64)), backend(adv))
    np.testing.assert_array_equal(
        _np(c_int), _np(rule.coefficient(backend(x), backend(mask), backend(adv)))
    )


def _np(a):
    return a.detach().cpu().double().numpy() if hasattr(a, "detach") else np.asarray(a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_array_type_dtype_device_preserved(name, dtype, backend):
    x = backend(np.full((2, 3), 0.1, dtype=dtype))
    out = rules.get_rule(name).coefficient(x, backend(np.ones((2, 3), bool)), backend(ADV))
    assert type(out) is type(x)
    assert out.dtype == x.dtype and tuple(out.shape) == (2, 3)
    if hasattr(out, "device"):
        assert out.device == x.device


def test_bfloat16_is_computed_in_float32():
    torch = pytest.importorskip("torch")
    x = torch.tensor(LOG_R, dtype=torch.bfloat16)
    for name in NAMES:
        out = rules.get_rule(name).coefficient(x, torch.tensor(MASK), torch.tensor(ADV))
        assert out.dtype == torch.bfloat16
        want = rules.get_rule(name).coefficient(x.double(), torch.tensor(MASK), torch.tensor(ADV))
        # inputs identical (bf16 values); float32 compute then one bf16 rounding (2^-8)
        np.testing.assert_allclose(out.double().numpy(), want.numpy(), rtol=2**-8, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_finite_at_extreme_log_ratios(name, backend):
    """Token log-ratios +-50 and sequence log-ratios +-1e4 give finite coefficients."""
    x = np.array([[50.0, -50.0, 50.0, -50.0], [2500.0] * 4, [-2500.0] * 4, [50.0] * 4])
    for sign in (1.0, -1.0):
        for dtype in ("float32", "float64"):
            out = rules.get_rule(name).coefficient(
                backend(x.astype(dtype)), backend(np.ones(x.shape, bool)), backend(np.full(4, sign))
            )
            assert np.isfinite(_np(out)).all(), (name, sign, dtype)


@given(
    log_w=st.lists(st.floats(-30, 30), min_size=1, max_size=5),
    T=st.integers(1, 6),
    sign=st.sampled_from([1.0, -1.0]),
)
def test_seq_coefficient_agrees_with_coefficient(log_w, T, sign):
    """For seq_only rules, coefficient on T equal token log-ratios == seq_coefficient(log W)."""
    lw = np.array(log_w)
    x = np.repeat(lw[:, None] / T, T, axis=1)
    adv = np.full(len(lw), sign)
    for name in SEQ_ONLY:
        r = rules.get_rule(name)
        c = r.coefficient(x, np.ones_like(x, dtype=bool), adv)
        s = r.seq_coefficient(lw, adv, T)
        # summing T equal float64 terms rounds log W by <= T ulp; coefficients are at most
        # W^3-sensitive there: 1e-12 relative
        np.testing.assert_allclose(c, np.repeat(s[:, None], T, axis=1), rtol=1e-12, atol=1e-300)


def test_seq_coefficient_raises_for_token_rules():
    for name in sorted(set(NAMES) - SEQ_ONLY):
        with pytest.raises(ValueError, match=f"rule {name} is not seq_only"):
            rules.get_rule(name).seq_coefficient(np.zeros(2), np.ones(2), 3)
    with pytest.raises(ValueError, match="T must be >= 1"):
        rules.get_rule("gspo").seq_coefficient(np.zeros(2), np.ones(2), 0)


def test_seq_coefficient_torch():
    torch = pytest.importorskip("torch")
    lw = torch.tensor([0.0, math.log(2.0)], dtype=torch.float32)
    out = rules.get_rule("vespo").seq_coefficient(lw, torch.tensor([1.0, -1.0]), 3)
    assert out.dtype == torch.float32
    # float32, u32 = 2^-24 = 6e-8: log 2 rounds to u32 * 0.69, times k = 3; W = exp(L) = 2 rounds
    # by 2 u32, times lam = 2; exp adds ~1 u32: the exponent is off by ~(2.1 + 4 + 1) u32 and phi
    # by ~7 u32 = 4.2e-7 relative (1.3e-8 seen); 1e-6 is ~2.4x that
    np.testing.assert_allclose(out.numpy(), [1.0, 8 * math.exp(-2)], rtol=1e-6)


def test_bad_input_is_named():
    r = rules.get_rule("ppo_clip")
    with pytest.raises(ValueError, match="tok_log_ratio must be \\[B, T\\]"):
        r.coefficient(np.zeros(3), np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match="response_mask has shape"):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="adv must be \\[B\\]"):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN at valid position \\[1, 2\\]"):
        x = np.zeros((2, 3))
        x[1, 2] = np.nan
        r.coefficient(x, np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="adv contains NaN"):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="params for rule ppo_clip must be a ClipParams"):
        r.coefficient(np.zeros((2, 3)), np.ones((2, 3)), np.ones(2), params=VespoParams())
    with pytest.raises(TypeError, match="tok_log_ratio must be numeric"):
        r.coefficient(np.array([["a"]]), np.ones((1, 1)), np.ones(1))


def test_phi_and_surrogate_helpers():
    """phi is the T = 1 coefficient; surrogate satisfies W f'(W) = phi(W) numerically."""
    w = np.array([0.3, 0.7, 1.1, 1.7, 2.6])
    for name in NAMES:
        r = rules.get_rule(name)
        for sign in (1.0, -1.0):
            phi = r.phi(np.log(w), sign)
            c = r.coefficient(np.log(w)[:, None], np.ones((5, 1), bool), np.full(5, sign))
            np.testing.assert_array_equal(phi, c[:, 0])
            f = r.surrogate(np.log(w), sign)
            if f is None:
                assert name in {"per_decision_is", "gmpo"}
                continue
            # central difference in W: truncation h^2 f'''/6 ~ 1e-10 at h = 1e-5 W, roundoff
            # eps |f| / h ~ 1e-11 / 1e-5: 1e-6 relative is ample and 10^3 below any real error
            h = 1e-5 * w
            fp = (r.surrogate(np.log(w + h), sign) - r.surrogate(np.log(w - h), sign)) / (2 * h)
            np.testing.assert_allclose(w * fp, phi, rtol=1e-6, atol=1e-9)
