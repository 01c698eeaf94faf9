"""Tests that kill the mutants of ``vespo_theory/losses.py`` that tests/test_losses.py lets live
(see docs/mutation.md): the exact messages, the metrics on hand-valued batches (several rows, an
empty row, a one-token row, an A = 0 row, the cap and W = 100 edges), non-default parameters,
one-token batches, mixed-precision inputs, half-precision masks, the first-valid-token search,
and the loss on the ``meta`` device (which stands in for a CUDA device on a CPU-only machine:
every tensor the loss makes must follow the input's device, and nothing may read values).

Hand values use dyadic inputs where possible, so that most expected numbers are exact.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import vespo_theory.losses as _losses
from vespo_theory.losses import AGG_MODES, get_loss, policy_loss
from vespo_theory.rule_params import ClipParams, VespoParams

F64 = torch.float64
EPS64 = 2.0**-52
# a handful of exp/log/sum roundings on O(1) numbers in float64: 8 u relative
REL = 8 * EPS64


def _exact(msg):
    return "^" + re.escape(msg) + "$"


def _t(x, dtype=F64):
    return torch.tensor(x, dtype=dtype)


# --------------------------------------------------------------------------- messages


def test_get_loss_is_a_named_wrapper_of_policy_loss():
    fn = get_loss("vespo")
    assert fn.__name__ == "compute_policy_loss_vespo"
    assert fn.__wrapped__ is policy_loss
    assert fn.__doc__ == policy_loss.__doc__


def _base(B=2, T=3):
    z = torch.zeros(B, T, dtype=F64)
    return dict(old_log_prob=z, log_prob=z.clone(), advantages=z.clone(), response_mask=z + 1)


E = torch.zeros(0, 3, dtype=F64)
E2 = torch.zeros(3, 0, dtype=F64)
BAD_INPUT = [
    (
        dict(log_prob=np.zeros((2, 3))),
        TypeError,
        "log_prob must be a torch.Tensor (loss is), got ndarray",
    ),
    (
        dict(advantages=np.zeros((2, 3))),
        TypeError,
        "advantages must be a torch.Tensor (loss is), got ndarray",
    ),
    (
        dict(response_mask=[[1, 1, 1]] * 2),
        TypeError,
        "response_mask must be a torch.Tensor (loss is), got list",
    ),
    (
        dict(old_log_prob=np.zeros((2, 3))),
        TypeError,
        "old_log_prob must be a torch.Tensor (loss is), got ndarray",
    ),
    (
        dict(rollout_log_prob=np.zeros((2, 3))),
        TypeError,
        "rollout_log_prob must be a torch.Tensor or None (loss is)",
    ),
    (
        dict(log_prob=torch.zeros(2, 3, dtype=torch.int64)),
        TypeError,
        "log_prob must be floating point, got torch.int64 (loss is)",
    ),
    (
        dict(old_log_prob=E, log_prob=E, advantages=E, response_mask=E),
        ValueError,
        "log_prob must hold at least one sequence and one token, got shape (0, 3) (loss is)",
    ),
    (
        dict(old_log_prob=E2, log_prob=E2, advantages=E2, response_mask=E2),
        ValueError,
        "log_prob must hold at least one sequence and one token, got shape (3, 0) (loss is)",
    ),
    (
        dict(old_log_prob=torch.zeros(2, 2, dtype=F64)),
        ValueError,
        "old_log_prob has shape (2, 2) but log_prob has shape (2, 3); they must match (loss is)",
    ),
    (
        dict(response_mask=torch.ones(2, 2)),
        ValueError,
        "response_mask has shape (2, 2) but log_prob has shape (2, 3); they must match (loss is)",
    ),
    (
        dict(rollout_log_prob=torch.zeros(1, 3, dtype=F64)),
        ValueError,
        "rollout_log_prob has shape (1, 3) but log_prob has shape (2, 3); they must match "
        "(loss is)",
    ),
    (
        dict(advantages=torch.zeros(3, dtype=F64)),
        ValueError,
        "advantages must be [B, T] = (2, 3) or [B] = (2,), got shape (3,) (loss is)",
    ),
    (
        dict(loss_agg_mode="mean"),
        ValueError,
        "unknown loss_agg_mode 'mean' (loss is); valid: token-mean, seq-mean-token-mean, "
        "seq-mean-token-sum, seq-mean-token-sum-norm",
    ),
    (
        dict(discrepancy_cap=0.0),
        ValueError,
        "discrepancy_cap must be a finite number > 0, got 0.0: loss is",
    ),
]


@pytest.mark.parametrize("change, exc, msg", BAD_INPUT)
def test_bad_input_messages_are_exact(change, exc, msg):
    """Kills the mutants of the argument names, the ``type(val)`` and ``shape[:1]`` in the
    messages, ``None`` messages, the ``or`` of the empty-shape test and the loss name."""
    kw = dict(_base(), **change)
    with pytest.raises(exc, match=_exact(msg)):
        get_loss("is")(**kw)


@pytest.mark.parametrize("arg", ["log_prob", "advantages", "rollout_log_prob"])
def test_check_finite_names_each_input_and_the_loss(arg):
    """A NaN at the valid position (1, 2) of each input checked by ``check_finite`` (the
    advantage there is not row 1's first valid token, so the loss itself stays finite for it)."""
    kw = _base()
    kw["rollout_log_prob"] = torch.zeros(2, 3, dtype=F64)
    kw[arg] = kw[arg].clone()
    kw[arg][1, 2] = float("nan")
    msg = f"{arg} is not finite at valid position (1, 2) (loss vespo)"
    with pytest.raises(ValueError, match=_exact(msg)):
        get_loss("vespo")(**kw, check_finite=True)


def test_a_non_finite_loss_from_finite_inputs_is_named():
    """log_prob - old = 1e308 - (-1e308) overflows to inf: REINFORCE (c = 1, A = 1) gives
    loss = -inf, reported with its value."""
    kw = _base(1, 1)
    kw["log_prob"] = _t([[1e308]])
    kw["old_log_prob"] = _t([[-1e308]])
    kw["advantages"] = _t([[1.0]])
    with pytest.raises(ValueError, match=_exact("the loss is not finite (loss reinforce): -inf")):
        get_loss("reinforce")(**kw, check_finite=True)


def test_the_mask_check_synchronises_only_with_check_finite(monkeypatch):
    """``check_binary_mask`` gets ``sync=None`` by default (checked on the CPU only) and
    ``sync=True`` with ``check_finite`` (every device); a non-binary integer mask on the CPU is
    rejected either way."""
    seen = []
    real = _losses.check_binary_mask

    def spy(mask, *args, **kw):
        seen.append(kw.get("sync", "missing"))
        return real(mask, *args, **kw)

    monkeypatch.setattr(_losses, "check_binary_mask", spy)
    kw = _base()
    get_loss("is")(**kw)
    get_loss("is")(**kw, check_finite=True)
    assert seen == [None, True]
    kw["response_mask"] = torch.tensor([[1, 1, 2], [1, 1, 1]])
    msg = "response_mask must be bool or hold only 0 and 1, got 2 at (0, 2)"
    for check in (False, True):
        with pytest.raises(ValueError, match=_exact(msg)):
            get_loss("is")(**kw, check_finite=check)


# --------------------------------------------------------------------------- hand values


@pytest.mark.parametrize("name", ["reinforce", "is", "ppo_clip"])
@pytest.mark.parametrize("mode", AGG_MODES)
def test_one_token_batch_in_every_mode(name, mode):
    """B = T = 1: N = B' = T_b = T_max = 1, so every mode's weight is 1 and d loss / d log_prob
    = -c A with A = 3. REINFORCE sees log r = 0.5 (c = 1); IS and PPO are on-policy (c = 1).
    Dyadic inputs: exact. Kills ``clamp(min=2)`` of the three weights, the T = 1 rejection and
    the T_max = 1 cases of the first-valid search."""
    lp = _t([[-1.0]]).requires_grad_()
    old = _t([[-1.5]]) if name == "reinforce" else _t([[-1.0]])
    loss, _ = get_loss(name)(old, lp, _t([[3.0]]), torch.ones(1, 1, dtype=torch.bool), mode)
    loss.backward()
    assert lp.grad.tolist() == [[-3.0]]
    assert float(loss.detach()) == (-1.5 if name == "reinforce" else 0.0)


def test_non_default_parameters_reach_the_coefficient():
    """One token, A = +1, token-mean (a = 1): d loss / d log_prob = -c.

    VESPO with (k_pos, lam_pos) = (1, 1) at W = 2: c = 2 e^-1 (defaults (2, 3): 4 e^-3);
    PPO clip with eps_high = 0.5 at r = 1.4: kept, c = 1.4 (default eps_high 0.2: clipped, 0).
    float64, exp of a log-space sum: 8 u."""
    one = torch.ones(1, 1, dtype=torch.bool)
    lp = _t([[0.0]]).requires_grad_()
    p = VespoParams(k_pos=1.0, lam_pos=1.0, k_neg=3.0, lam_neg=2.0)
    loss, _ = get_loss("vespo")(_t([[-math.log(2.0)]]), lp, _t([[1.0]]), one, params=p)
    loss.backward()
    assert float(lp.grad) == pytest.approx(-2.0 * math.exp(-1.0), rel=REL)
    lp.grad = None
    p = ClipParams(eps_low=0.2, eps_high=0.5)
    loss, m = get_loss("ppo_clip")(_t([[-math.log(1.4)]]), lp, _t([[1.0]]), one, params=p)
    loss.backward()
    assert float(lp.grad) == pytest.approx(-1.4, rel=REL)
    assert float(m["clip_frac"]) == 0.0


def test_token_rule_metrics_by_hand():
    """PPO clip on four rows (T_max = 2):

    row 0, A = +1, log r = (0.125, -0.5): both kept (A >= 0 bounds r <= 1.2 only), log W =
    -0.375, per-row mean c = (e^0.125 + e^-0.5) / 2;
    row 1, A = -1, one token, log r = 0.5: kept (r >= 0.8), log W = 0.5, c = e^0.5;
    row 2 empty (excluded everywhere);
    row 3, A = +1, log r = (0.5, 0): 0.5 > log 1.2 is clipped (c = 0), log W = 0.5, mean c = 0.5.
    n_pos = 2, n_neg = 1, clip_frac = 1 / 5 valid tokens. float64, a few exp/log: 8 u (the
    log-W statistics add and divide dyadic numbers: 8 u covers the division by 3)."""
    lp = torch.zeros(4, 2, dtype=F64)
    old = -_t([[0.125, -0.5], [0.5, 7.0], [3.0, 3.0], [0.5, 0.0]])
    mask = _t([[1, 1], [1, 0], [0, 0], [1, 1]]).bool()
    adv = _t([1.0, -1.0, 5.0, 1.0])
    _, m = get_loss("ppo_clip")(old, lp, adv, mask)
    lw = np.array([-0.375, 0.5, 0.5])
    w = np.exp(lw)
    phi0 = (math.exp(0.125) + math.exp(-0.5)) / 2
    want = {
        "log_w_mean": lw.mean(),
        "log_w_std": lw.std(ddof=1),
        "log_w_min": -0.375,
        "log_w_max": 0.5,
        "w_mean": w.mean(),
        "n_pos": 2.0,
        "n_neg": 1.0,
        "phi_mean_pos": (phi0 + 0.5) / 2,
        "phi_mean_neg": math.exp(0.5),
        "ess": w.sum() ** 2 / (w**2).sum(),
        "ess_frac": w.sum() ** 2 / (w**2).sum() / 3,
        "clip_frac": 0.2,
        "n_neg_w_gt_100": 0.0,
    }
    assert set(m) == set(want)
    for k, v in want.items():
        assert float(m[k]) == pytest.approx(v, rel=REL, abs=0), k
        assert m[k].dtype == F64, k


def test_sequence_rule_metrics_with_a_zero_advantage_and_an_empty_row():
    """IS (c = W) on three rows: row 0 A = -1, log W = log 2 (two tokens); row 1 A = 0, one
    token, log W = 1; row 2 empty. A = 0 counts as A >= 0 (the documented sign class): n_pos =
    1 with phi_mean_pos = e, n_neg = 1 with phi_mean_neg = 2. Two valid rows: log_w_std =
    |1 - log 2| / sqrt(2) (ddof 1). float64: 8 u."""
    lp = torch.zeros(3, 2, dtype=F64)
    old = -_t([[math.log(2.0), 0.0], [1.0, 9.0], [2.0, 2.0]])
    mask = _t([[1, 1], [1, 0], [0, 0]]).bool()
    _, m = get_loss("is")(old, lp, _t([-1.0, 0.0, 3.0]), mask)
    assert float(m["n_pos"]) == 1.0 and float(m["n_neg"]) == 1.0
    assert float(m["phi_mean_pos"]) == pytest.approx(math.e, rel=REL)
    assert float(m["phi_mean_neg"]) == pytest.approx(2.0, rel=REL)
    assert float(m["log_w_mean"]) == pytest.approx((math.log(2.0) + 1.0) / 2, rel=REL)
    assert float(m["log_w_std"]) == pytest.approx((1.0 - math.log(2.0)) / math.sqrt(2), rel=REL)
    assert float(m["w_mean"]) == pytest.approx((2.0 + math.e) / 2, rel=REL)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_n_neg_w_gt_100_counts_a_minus_rows_strictly_above_100(dtype):
    """One-token rows: A < 0 with W = 100 exactly (log W = fl(log 100), not counted: strictly
    above), A < 0 with W = 100.5 (counted), A >= 0 with W = 1000 (not counted: A < 0 rows only).
    The count is a float of the compute dtype, like every metric."""
    lp = torch.zeros(3, 1, dtype=dtype)
    old = -torch.tensor([[math.log(100.0)], [math.log(100.5)], [math.log(1000.0)]], dtype=dtype)
    _, m = get_loss("is")(old, lp, torch.tensor([-1.0, -1.0, 1.0], dtype=dtype), lp == lp)
    assert m["n_neg_w_gt_100"].dtype == dtype
    assert float(m["n_neg_w_gt_100"]) == 1.0
    for k, v in m.items():
        assert v.dtype == dtype, k


@pytest.mark.parametrize("name", ["is", "ppo_clip"])
def test_a_batch_without_valid_tokens_gives_zeros(name):
    """Every token masked: the loss, the gradient and w_mean are 0 (no row to average)."""
    lp = torch.zeros(2, 2, dtype=F64, requires_grad=True)
    loss, m = get_loss(name)(
        torch.ones(2, 2, dtype=F64),
        lp,
        torch.ones(2, 2, dtype=F64),
        torch.zeros(2, 2, dtype=torch.bool),
    )
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(lp.grad.abs().sum()) == 0.0
    assert float(m["w_mean"]) == 0.0
    assert float(m["n_pos"]) == 0.0 and float(m["n_neg"]) == 0.0


def test_clip_frac_of_one_token_and_of_sequence_rules():
    """PPO clip, one valid token clipped (log r = 1 > log 1.2, A = +1): clip_frac = 1 / 1.
    SEQ-MIS / SEQ-TIS (cap 2): row 0 log W = 1 > log 2 on 2 tokens (dropped / truncated), row 1
    log W = 0 on 1 token: clip_frac = 2 / 3 (a sequence counts its valid tokens)."""
    one = torch.ones(1, 1, dtype=torch.bool)
    _, m = get_loss("ppo_clip")(_t([[-1.0]]), _t([[0.0]]), _t([[1.0]]), one)
    assert float(m["clip_frac"]) == 1.0
    old = -_t([[0.5, 0.5], [0.0, 4.0]])
    mask = _t([[1, 1], [1, 0]]).bool()
    for name in ("seq_mis", "seq_tis"):
        _, m = get_loss(name)(old, torch.zeros(2, 2, dtype=F64), _t([1.0, -1.0]), mask)
        assert float(m["clip_frac"]) == pytest.approx(2.0 / 3.0, rel=EPS64), name


def test_decoupled_sequence_metrics_by_hand():
    """VESPO decoupled, cap 2 (log cap = fl(log 2)): per-row log rho = sum (old - rollout) =
    fl(log 2) exactly (a tie: not truncated), 1.0 (truncated), an empty row, -0.5.
    disc_trunc_frac = 1/3 and disc_log_w_mean = (log 2 + 1 - 0.5) / 3 over the 3 non-empty
    rows. Sums of one non-zero float each: exact; / 3: 1 u."""
    old = _t([[math.log(2.0), 0.0], [0.5, 0.5], [4.0, 4.0], [-0.5, 0.0]])
    roll = torch.zeros(4, 2, dtype=F64)
    mask = _t([[1, 1], [1, 1], [0, 0], [1, 1]]).bool()
    _, m = get_loss("vespo")(
        old,
        old.clone(),
        _t([1.0, 1.0, 1.0, -1.0]),
        mask,
        rollout_log_prob=roll,
        correction="decoupled",
    )
    assert float(m["disc_trunc_frac"]) == pytest.approx(1.0 / 3.0, rel=EPS64)
    want = (math.log(2.0) + 0.5) / 3.0
    assert float(m["disc_log_w_mean"]) == pytest.approx(want, rel=2 * EPS64)


def test_decoupled_token_metrics_by_hand():
    """Token TIS decoupled, cap 2: token log rho = (fl(log 2): a tie, not truncated; 1.0:
    truncated) in row 0 and (-0.5, masked -3) in row 1: disc_trunc_frac = 1 / 3 valid tokens;
    disc_log_w_mean = mean of the row sums (log 2 + 1, -0.5). One valid truncated token alone:
    1 / 1."""
    old = _t([[math.log(2.0), 1.0], [-0.5, -3.0]])
    roll = torch.zeros(2, 2, dtype=F64)
    mask = _t([[1, 1], [1, 0]]).bool()
    kw = dict(rollout_log_prob=roll, correction="decoupled")
    _, m = get_loss("token_tis")(old, old.clone(), _t([1.0, -1.0]), mask, **kw)
    assert float(m["disc_trunc_frac"]) == pytest.approx(1.0 / 3.0, rel=EPS64)
    want = (math.log(2.0) + 1.0 - 0.5) / 2.0
    assert float(m["disc_log_w_mean"]) == pytest.approx(want, rel=2 * EPS64)
    one = torch.ones(1, 1, dtype=torch.bool)
    kw["rollout_log_prob"] = _t([[0.0]])
    _, m = get_loss("token_tis")(_t([[1.0]]), _t([[1.0]]), _t([[1.0]]), one, **kw)
    assert float(m["disc_trunc_frac"]) == 1.0


# --------------------------------------------------------------------------- dtypes


def _run(name, lp, old, adv, mask, policy, mode="seq-mean-token-mean"):
    lp = lp.clone().requires_grad_()
    kw = {} if policy == "none" else dict(rollout_log_prob=old[1], correction=policy)
    loss, m = get_loss(name)(old[0], lp, adv, mask, mode, **kw)
    loss.backward()
    return loss.detach(), lp.grad, m


def _assert_same(a, b, what):
    assert a[0].dtype == b[0].dtype and torch.equal(a[0], b[0]), what
    assert a[1].dtype == b[1].dtype and torch.equal(a[1], b[1]), what
    assert a[2].keys() == b[2].keys(), what
    for k in a[2]:
        assert a[2][k].dtype == b[2][k].dtype, (what, k)
        assert torch.equal(a[2][k], b[2][k]), (what, k)


@pytest.mark.parametrize("lp_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["vespo", "is", "ppo_clip", "token_tis"])
def test_inputs_are_read_in_the_compute_dtype(name, lp_dtype):
    """The loss computes in log_prob's compute dtype (float32 here): float64 old / rollout /
    advantages, all of them or some, give the same loss, gradient and metrics, bit for bit and
    dtype for dtype, as the same inputs rounded to float32 first, for every policy, [B, T] and
    [B] advantages and a bool, float32 or float64 mask. (Rounding them later, after a float64
    subtraction or product, changes last bits; the values below are not float32 numbers, so it
    shows.) old / rollout hold +-inf at masked positions, so that with a float32 mask the rows
    are recomputed with the integer masking, which must read the inputs the same way."""
    g = np.random.default_rng(3)
    B, T = 5, 6
    mask = torch.tensor(g.random((B, T)) < 0.7)
    mask[:, 0] = True
    mask[0] = True  # one row without garbage
    lp = torch.tensor(-np.abs(g.normal(size=(B, T))), dtype=lp_dtype)
    old = lp.double() + 0.3 * torch.tensor(g.normal(size=(B, T)))
    roll = old + 0.3 * torch.tensor(g.normal(size=(B, T)))
    old = torch.where(mask, old, float("inf"))
    roll = torch.where(mask, roll, float("-inf"))
    adv_row = torch.tensor(g.normal(size=B))
    for adv in (adv_row[:, None].expand(B, T).contiguous(), adv_row):
        for policy in ("none", "entangled", "decoupled"):
            want = _run(name, lp, (old.float(), roll.float()), adv.float(), mask, policy)
            for mdt in (torch.bool, torch.float32, F64):
                m = mask.to(mdt)
                for o, r, a in (
                    (old, roll, adv),
                    (old, roll.float(), adv.float()),
                    (old.float(), roll, adv),
                    (old.float(), roll.float(), adv.float()),
                ):
                    got = _run(name, lp, (o, r), a, m, policy)
                    what = (policy, mdt, adv.dim(), o.dtype, r.dtype, a.dtype)
                    _assert_same(got, want, what)
                    assert not torch.isnan(got[1]).any(), what


@pytest.mark.parametrize("mdt", [torch.bfloat16, torch.float16])
def test_half_precision_mask_counts_are_exact(mdt):
    """A half-precision 0/1 mask is allowed; its row sums are not exact in its own dtype beyond
    256 (bfloat16) / 2048 (float16) tokens. PPO clip on-policy (c = 1), token-mean, rows of
    2049 and 3 valid tokens, A = (1, -2): d loss / d log_prob = -A / 2052 on valid tokens, the
    same bits as with a bool mask (float32: 1/2052 and its product by A = -2 are one rounding
    each on both sides)."""
    T = 2100
    mask = torch.zeros(2, T, dtype=torch.bool)
    mask[0, :2049] = True
    mask[1, :3] = True
    lp = torch.zeros(2, T)
    adv = torch.tensor([1.0, -2.0])
    want = _run("ppo_clip", lp, (lp, None), adv, mask, "none", "token-mean")
    got = _run("ppo_clip", lp, (lp, None), adv, mask.to(mdt), "none", "token-mean")
    _assert_same(got, want, mdt)
    assert float(got[1][0, 0]) == pytest.approx(-1.0 / 2052, rel=2.0**-23)


def test_masked_garbage_with_a_float_mask_of_another_dtype():
    """float32 log-probs with a float64 / float16 mask: the mask is not of the compute dtype, so
    the masking must be the exact (integer) one: NaN / inf at masked positions change nothing."""
    g = np.random.default_rng(5)
    B, T = 6, 5
    mask = torch.tensor(g.random((B, T)) < 0.6)
    mask[:, 0] = True
    lp = torch.tensor(-np.abs(g.normal(size=(B, T))), dtype=torch.float32)
    old = lp + 0.2 * torch.tensor(g.normal(size=(B, T)), dtype=torch.float32)
    adv = torch.tensor(g.normal(size=B), dtype=torch.float32)
    want = _run("vespo", lp, (old, None), adv, mask, "none")
    dirty_lp = torch.where(mask, lp, float("nan"))
    dirty_old = torch.where(mask, old, float("inf"))
    for mdt in (F64, torch.float16):
        got = _run("vespo", dirty_lp, (dirty_old, None), adv, mask.to(mdt), "none")
        _assert_same(got, want, mdt)


# --------------------------------------------------------------------------- the fast path


@pytest.mark.parametrize(
    "name, mdt",
    [
        ("is", torch.bool),
        ("is", torch.int64),
        ("is", torch.float32),
        ("ppo_clip", torch.float32),
        ("ppo_clip", F64),
    ],
)
def test_first_valid_token_of_left_padded_rows(name, mdt):
    """24 rows of 4 tokens; row 0 = (0, 1, 1, 1), row 1 empty, row 2 = (0, 0, 0, 1), the rest
    full: 3 rows need a search (<= 24 / 8: searched after the blocked pass on the fast path).
    [B, T] advantages that vary along the row, NaN where masked: the loss must equal the one
    with the [B] advantages read at each row's first valid token (0 for the empty row), bit for
    bit. Kills the search of column 1 instead of 0 and the clamps T_max + 1 / T_max - 2."""
    B, T = 24, 4
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 0] = False
    mask[1] = False
    mask[2, :3] = False
    g = np.random.default_rng(7)
    adv = torch.tensor(g.normal(size=(B, T)), dtype=torch.float32)
    first = torch.tensor([1, 0, 3] + [0] * (B - 3))
    adv_seq = torch.where(mask.any(-1), adv[torch.arange(B), first], 0.0)
    adv = torch.where(mask, adv, float("nan"))
    lp = torch.tensor(-np.abs(g.normal(size=(B, T))), dtype=torch.float32)
    old = lp + 0.2 * torch.tensor(g.normal(size=(B, T)), dtype=torch.float32)
    want = _run(name, lp, (old, None), adv_seq, mask.to(mdt), "none")
    got = _run(name, lp, (old, None), adv, mask.to(mdt), "none")
    _assert_same(got, want, (name, mdt))
    assert not torch.isnan(got[1]).any()


def test_the_blocked_pass_warns_about_nothing(monkeypatch):
    """Row blocks with a short last block, and a float mask with garbage rows (recomputed with
    the integer masking): every buffer has the right shape, so torch never resizes an ``out=``
    tensor (it would warn); the numbers equal the one-block bool-mask run."""
    g = np.random.default_rng(9)
    B, T = 7, 5
    mask = torch.tensor(g.random((B, T)) < 0.6)
    mask[:, 0] = True
    lp = torch.tensor(-np.abs(g.normal(size=(B, T))), dtype=torch.float32)
    old = lp + 0.2 * torch.tensor(g.normal(size=(B, T)), dtype=torch.float32)
    adv = torch.tensor(g.normal(size=(B, T)), dtype=torch.float32)
    want = _run("vespo", lp, (old, None), adv, mask, "none")
    dirty = torch.where(mask, old, float("inf"))
    monkeypatch.setattr(_losses, "_CHUNK_ELEMS", 3 * T)  # blocks of 3, 3, 1 rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # torch warns a resize as UserWarning
        for mdt in (torch.bool, torch.float32, torch.int64):
            got = _run("vespo", lp, (dirty, None), adv, mask.to(mdt), "none")
            _assert_same(got, want, mdt)


def test_max_exact_whole():
    """Every whole number up to 2 / eps is exact: 2^24 in float32, 2^53 in float64."""
    assert _losses._max_exact_whole(torch.float32) == 2.0**24
    assert _losses._max_exact_whole(F64) == 2.0**53


# --------------------------------------------------------------------------- other devices


@pytest.mark.parametrize("name", ["vespo", "seq_mis", "ppo_clip", "token_tis"])
def test_the_loss_runs_on_the_meta_device(name):
    """On a device other than the CPU every tensor the loss makes must live on the input's
    device, and the default path must read no value (no host synchronisation). A ``meta``
    tensor has a device and no values, so it checks both on a CPU-only machine: the loss, its
    gradient and every metric come back on ``meta`` for each mask dtype, policy and advantage
    shape. (Kills the ``device=`` mutants, the CPU test of ``_row_sums`` and the non-CPU block
    size, which a CUDA run would catch.)"""
    B, T = 4, 5
    z = torch.zeros(B, T, device="meta")
    for mdt in (torch.bool, torch.float32, torch.int64):
        for policy in ("none", "entangled", "decoupled"):
            for adv in (z, torch.zeros(B, device="meta")):
                lp = z.clone().requires_grad_()
                kw = {} if policy == "none" else dict(rollout_log_prob=z, correction=policy)
                loss, m = get_loss(name)(
                    z, lp, adv, torch.ones(B, T, dtype=mdt, device="meta"), **kw
                )
                loss.backward()
                assert loss.device.type == "meta" and lp.grad.device.type == "meta"
                assert lp.grad.shape == (B, T) and lp.grad.dtype == torch.float32
                for k, v in m.items():
                    assert v.device.type == "meta", (k, mdt, policy)
