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
    "vespo_sym23",
    "vespo_sym32",
    "vespo_sqrt",
    "vespo_lin",
    "topr",
    "bapo",
    "vcpo",
]
SEQ_ONLY = {
    "is",
    "reinforce",
    "vespo",
    "seq_tis",
    "seq_mis",
    "gspo",
    "vespo_sym23",
    "vespo_sym32",
    "vespo_sqrt",
    "vespo_lin",
    "topr",
}
BATCH_LEVEL = {"bapo", "vcpo"}


def test_names_and_levels():
    assert rules.available() == NAMES
    for name in NAMES:
        r = rules.get_rule(name)
        assert r.name == name
        assert r.seq_only == (name in SEQ_ONLY)
        assert r.batch_level == (name in BATCH_LEVEL)
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
                "bapo",
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
    "vespo_sym23": (
        dict(k_pos=2.0, lam_pos=3.0, k_neg=2.0, lam_neg=3.0),
        "asymmetry ablation of arXiv 2602.10693: (2, 3) for both signs",
    ),
    "vespo_sym32": (
        dict(k_pos=3.0, lam_pos=2.0, k_neg=3.0, lam_neg=2.0),
        "asymmetry ablation of arXiv 2602.10693: (3, 2) for both signs",
    ),
    "vespo_sqrt": (dict(k_pos=2.0, lam_pos=3.0, k_neg=3.0, lam_neg=2.0), "VESPO's kernel"),
    "vespo_lin": (dict(k_pos=2.0, lam_pos=3.0, k_neg=3.0, lam_neg=2.0), "VESPO's kernel"),
    "topr": (dict(length_norm=True), "TOPR as arXiv 2602.10693 compares it (length-normalised)"),
    "bapo": (
        dict(
            rho0=0.5,
            low_start=0.6,
            low_max=0.9,
            low_step=0.05,
            high_start=1.2,
            high_max=3.0,
            high_step=0.05,
            c=3.0,
        ),
        "BAPO arXiv 2510.18927 / WooooDyy/BAPO README.md, config.py steps, clip_ratio_c = 3",
    ),
    "vcpo": (dict(base_ess_ratio=1.0), "mit-han-lab/vcpo scripts ess_scaling_base_ess_ratio=1.0"),
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
        (lambda: rules.BapoParams(rho0=1.0), "rho0 must be < 1 for rule bapo"),
        (lambda: rules.BapoParams(low_max=1.0), "rule bapo needs low_start <= low_max < 1"),
        (lambda: rules.BapoParams(low_start=0.95), "rule bapo needs low_start <= low_max < 1"),
        (lambda: rules.BapoParams(high_start=1.0), "rule bapo needs 1 < high_start <= high_max"),
        (lambda: rules.BapoParams(high_max=1.1), "rule bapo needs 1 < high_start <= high_max"),
        (lambda: rules.BapoParams(c=1.0), "c must be > 1 for rule bapo"),
        (lambda: rules.BapoParams(low_step=0.0), "low_step must be a finite number > 0"),
        (lambda: rules.VcpoParams(base_ess_ratio=1.5), "base_ess_ratio must be <= 1 for rule vcpo"),
        (lambda: rules.VcpoParams(base_ess_ratio=0), "base_ess_ratio must be a finite number > 0"),
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


def _phi32(w):
    return w**3 * math.exp(2 * (1 - w))


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
    # (2, 3) for A < 0 too: 6^2 e^(3 (1 - 6)) = 36 e^-15; (3, 2) as vespo's A < 0 side
    "vespo_sym23": [[1, 1, 0], [36 * math.exp(-15)] * 3],
    "vespo_sym32": [[1, 1, 0], [216 * math.exp(-10)] * 3],
    # W' = 6^(1/sqrt 3) and 6^(1/3), A < 0: W'^3 e^(2 (1 - W'))
    "vespo_sqrt": [[1, 1, 0], [_phi32(6 ** (1 / math.sqrt(3)))] * 3],
    "vespo_lin": [[1, 1, 0], [_phi32(6 ** (1 / 3))] * 3],
    # A >= 0: 1/T = 1/2; A < 0: min(6, 1)/T = 1/3
    "topr": [[0.5, 0.5, 0], [1 / 3] * 3],
    # start (0.6, 1.2): P = 1.2 + 0.4 = 1.6, N = 1.5 + 1 + 4 = 6.5, share 0.2 < 0.5; the lower
    # bound to 0.9 leaves N; P <= 2.5 + 0.4 < 6.5 on the whole path: the end, (0.9, 3.0).
    # A >= 0 keeps r <= 3 (2.5, 0.4); A < 0 keeps 0.9 <= r <= c = 3 (1.5, 1; not 4)
    "bapo": [[2.5, 0.4, 0], [1.5, 1, 0]],
    # W = (1, 6): ESS = 7^2 / 37, ESS/B = 49/74
    "vcpo": [[math.sqrt(49 / 74)] * 2 + [0], [6 * math.sqrt(49 / 74)] * 3],
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
        assert name in {
            "reinforce",
            "vespo",
            "sapo",
            "vespo_sym23",
            "vespo_sym32",
            "vespo_sqrt",
            "vespo_lin",
        }
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
        "topr": [[0, 0, 0], [1, 1, 1]],  # A < 0 with W = 6 > 1: truncated
        "bapo": [[0, 0, 0], [0, 0, 1]],
        "vcpo": [[0, 0, 0], [0, 0, 0]],  # saturation only
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
            if r.batch_level:  # each point a batch of its own
                one = np.ones((1, 1), bool)
                c = np.array([r.coefficient(np.log([[v]]), one, np.array([sign])) for v in w])
                c = c.reshape(5, 1)
            else:
                c = r.coefficient(np.log(w)[:, None], np.ones((5, 1), bool), np.full(5, sign))
            np.testing.assert_array_equal(phi, c[:, 0])
            f = r.surrogate(np.log(w), sign)
            if f is None:
                assert name in {"per_decision_is", "gmpo", "bapo", "vcpo"}
                continue
            # central difference in W: truncation h^2 f'''/6 ~ 1e-10 at h = 1e-5 W, roundoff
            # eps |f| / h ~ 1e-11 / 1e-5: 1e-6 relative is ample and 10^3 below any real error
            h = 1e-5 * w
            fp = (r.surrogate(np.log(w + h), sign) - r.surrogate(np.log(w - h), sign)) / (2 * h)
            np.testing.assert_allclose(w * fp, phi, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- the new baselines


def _bapo_released_bounds(r, pos, valid, p):
    """The released bound search (WooooDyy/BAPO recipe/bapo/policy_loss.py), restated with
    Python floats and the registry's |A| = 1: sequential while loops, ratio P / (N + 1e-8)
    against target rho0 / (1 - rho0), inf when N <= 0."""

    def ratio(lo, hi):
        P = sum(min(v, hi) for v, s, ok in zip(r, pos, valid) if ok and s)
        N = sum(max(v, lo) for v, s, ok in zip(r, pos, valid) if ok and not s)
        return math.inf if N <= 0 else P / (N + 1e-8)

    target = p.rho0 / (1 - p.rho0)
    lo, hi = p.low_start, p.high_start
    cur = ratio(lo, hi)
    while cur < target and lo < p.low_max:
        lo = min(lo + p.low_step, p.low_max)
        cur = ratio(lo, hi)
    while cur < target and hi < p.high_max:
        hi = min(hi + p.high_step, p.high_max)
        cur = ratio(lo, hi)
    return lo, hi


@pytest.mark.parametrize("seed", range(12))
def test_bapo_bounds_match_the_released_search(seed, backend):
    """BAPO's coefficient equals dual-clip PPO at the bounds the released search picks, on
    random batches whose positive share lands anywhere on the path (both array types)."""
    g = np.random.default_rng(seed)
    B, T = 6, 5
    x = g.normal(scale=0.6, size=(B, T))
    mask = g.random((B, T)) < 0.8
    mask[0] = False  # an empty row counts in neither sum
    adv = np.where(g.random(B) < 0.3 + 0.05 * seed, 1.0, -1.0)
    p = rules.BapoParams()
    r = np.exp(x).ravel()
    pos = np.repeat(adv >= 0, T)
    lo, hi = _bapo_released_bounds(r, pos, mask.ravel(), p)
    keep = np.where(
        adv[:, None] >= 0, x <= math.log(hi), (x >= math.log(lo)) & (x <= math.log(p.c))
    )
    want = np.where(mask & keep, np.exp(x), 0.0)
    got = _np(rules.get_rule("bapo").coefficient(backend(x), backend(mask), backend(adv)))
    # a ratio r = exp(x) within a few ulp of a bound is kept or dropped alike on both sides
    # (same log-space comparison); exp(x) rounds by 1 ulp: 4 u relative
    np.testing.assert_allclose(got, want, rtol=4 * 2.0**-52, atol=0)


def test_bapo_stops_midway_on_the_path():
    """One A >= 0 token r = 2 and one A < 0 token r = 0.5: N = max(0.5, lo) = lo while
    P = min(2, hi) = hi. Start (0.6, 1.2): share 1.2 / 1.8 >= 0.5 at once, so r = 2 > 1.2 and
    r = 0.5 < 0.6 are both dropped. With rho0 = 0.7:
    needs hi >= (0.7 / 0.3) lo; the lower bound first goes to 0.9 (hi = 1.2 < 2.1), then the
    upper bound rises by 0.05 to the first hi >= 2.1 (1.2 + 18 steps = 2.1 up to rounding,
    else 2.15). A >= 0 then keeps r = 2 (<= hi), A < 0 drops r = 0.5 (< 0.9)."""
    x = np.log([[2.0], [0.5]])
    m = np.ones((2, 1), bool)
    adv = np.array([1.0, -1.0])
    rule = rules.get_rule("bapo")
    np.testing.assert_array_equal(rule.coefficient(x, m, adv)[:, 0], [0.0, 0.0])  # (0.6, 1.2)
    c = rule.coefficient(x, m, adv, rules.BapoParams(rho0=0.7))[:, 0]
    assert c[0] == pytest.approx(2.0, rel=4 * 2.0**-52) and c[1] == 0.0
    # the path: the start, 6 lower steps, then 37 upper steps (the released float additions
    # reach 2.999999999999997 after 36 steps, so a 37th, capped, lands on 3.0)
    from vespo_theory.coefficients import bapo_bound_path

    path = bapo_bound_path(rules.BapoParams())
    assert len(path) == 1 + 6 + 37 and path[0] == (0.6, 1.2) and path[-1] == (0.9, 3.0)
    assert path[6] == (0.9, 1.2) and path[-2][1] < 3.0
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(path, path[1:]))


def test_vcpo_is_w_times_sqrt_ess_over_b(backend):
    """VCPO = W sqrt(ESS/B') with Kish's ESS of the valid rows' W (vespo_theory.diagnostics), an
    empty row excluded from both; base_ess_ratio caps the scale at 1."""
    from vespo_theory.diagnostics import kish_ess_from_log_weights

    g = np.random.default_rng(3)
    x = g.normal(scale=0.5, size=(5, 4))
    mask = g.random((5, 4)) < 0.7
    mask[:, 0] = True
    mask[2] = False
    lw = np.where(mask, x, 0.0).sum(1)
    valid = mask.any(1)
    ess = kish_ess_from_log_weights(lw[valid])
    want = np.where(mask, (np.exp(lw) * math.sqrt(ess / valid.sum()))[:, None], 0.0)
    adv = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    rule = rules.get_rule("vcpo")
    got = _np(rule.coefficient(backend(x), backend(mask), backend(adv)))
    # float64: two logsumexps (~n u each) and one exp of an O(1) log: 1e-14 relative
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    half = rules.VcpoParams(base_ess_ratio=0.5)  # ESS/B' / 0.5, capped at 1
    scale = math.sqrt(min(1.0, ess / valid.sum() / 0.5))
    want_half = np.where(mask, (np.exp(lw) * scale)[:, None], 0.0)
    got_half = _np(rule.coefficient(backend(x), backend(mask), backend(adv), half))
    np.testing.assert_allclose(got_half, want_half, rtol=1e-14, atol=0)


def test_batch_level_phi_is_pointwise():
    """phi of a batch-level rule: each point its own batch. VCPO: ESS/B = 1, phi = W. BAPO: a
    one-sign batch: A >= 0 at the start bounds (r <= 1.2); A < 0 at the end (0.9 <= r <= 3)."""
    w = np.array([0.5, 0.85, 0.95, 1.1, 1.3, 2.5, 3.5])
    lw = np.log(w)
    # exp(log w) returns w within 1 ulp: 4 u relative
    np.testing.assert_allclose(rules.get_rule("vcpo").phi(lw, 1.0), w, rtol=4 * 2.0**-52)
    bapo = rules.get_rule("bapo")
    np.testing.assert_allclose(bapo.phi(lw, 1.0), np.where(w <= 1.2, w, 0.0), rtol=4 * 2.0**-52)
    neg = np.where((w >= 0.9) & (w <= 3.0), w, 0.0)
    np.testing.assert_allclose(bapo.phi(lw, -1.0), neg, rtol=4 * 2.0**-52)
    torch = pytest.importorskip("torch")
    t = rules.get_rule("vcpo").phi(torch.tensor(lw).reshape(7, 1), torch.tensor(-1.0))
    assert tuple(t.shape) == (7, 1)
    np.testing.assert_allclose(t.numpy()[:, 0], w, rtol=4 * 2.0**-52)


def test_vespo_length_ablations_and_presets():
    """VESPO_sqrt / VESPO_lin are VESPO's kernel at exp(log W / sqrt T) / exp(log W / T) (equal
    to VESPO at T = 1); the symmetric presets are the same kernel for both signs."""
    from vespo_theory.params import VESPO_SYM_23, VESPO_SYM_32, vespo_preset

    lw, adv = np.array([-1.3, 0.4, 2.2]), np.array([1.0, -1.0, -1.0])
    vespo = rules.get_rule("vespo")
    for T in (1, 4, 9):
        sq = rules.get_rule("vespo_sqrt").seq_coefficient(lw, adv, T)
        li = rules.get_rule("vespo_lin").seq_coefficient(lw, adv, T)
        # the same kernel at a divided log W: identical operations, equal to the last bit
        np.testing.assert_array_equal(sq, vespo.seq_coefficient(lw / math.sqrt(T), adv, 1))
        np.testing.assert_array_equal(li, vespo.seq_coefficient(lw / T, adv, 1))
    assert rules.get_rule("vespo_sym23").params == VESPO_SYM_23 == vespo_preset("sym23")
    assert rules.get_rule("vespo_sym32").params == VESPO_SYM_32 == vespo_preset("sym32")
    np.testing.assert_array_equal(
        rules.get_rule("vespo_sym23").seq_coefficient(lw, adv, 1),
        vespo.seq_coefficient(lw, adv, 1, VESPO_SYM_23),
    )
    with pytest.raises(ValueError, match="unknown VESPO preset 'sym'; valid presets: deployed"):
        vespo_preset("sym")


def test_topr_without_length_normalisation():
    """length_norm=False: 1 (A >= 0) and min(W, 1) (A < 0), not divided by T."""
    rule = rules.get_rule("topr")
    lw, adv = np.log([0.25, 4.0, 0.25, 4.0]), np.array([1.0, 1.0, -1.0, -1.0])
    raw = rule.seq_coefficient(lw, adv, 4, rules.ToprParams(length_norm=False))
    np.testing.assert_allclose(raw, [1.0, 1.0, 0.25, 1.0], rtol=4 * 2.0**-52)
    np.testing.assert_allclose(rule.seq_coefficient(lw, adv, 4), raw / 4, rtol=4 * 2.0**-52)
    with pytest.raises(TypeError, match="length_norm must be a bool for rule topr"):
        rules.ToprParams(length_norm=1)
