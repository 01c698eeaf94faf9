"""The loss contract, run over every registered rule x every aggregation mode x the three policies.

On a small tabular softmax policy (a [S, V] table of logits as the leaf tensor), the autograd
gradient of ``get_loss(name)(...)`` must equal

    sum_{b,t} -a[b,t] * c[b,t] * A_b * d log pi(y_bt | s_bt) / d logits,

with c the registry's documented coefficient (rules.get_rule(name).coefficient, computed here in
float64 NumPy, times the truncated discrepancy weight for ``decoupled``) and a the aggregation
weights of veRL's agg_loss, both computed in this file independently of the loss.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vespo_theory import rules
from vespo_theory.losses import AGG_MODES, CORRECTIONS, available, get_loss

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("none", "entangled", "decoupled")

# The documented on-policy coefficient (all token ratios 1) per rule, written here by hand from
# docs/rules.md (SAPO, GSPO, GMPO and TOPR put a per-sequence token mean, 1/T, on every token).
ON_POLICY = {
    "is": "1",
    "reinforce": "1",
    "per_decision_is": "1",
    "ppo_clip": "1",
    "dual_clip": "1",
    "cispo": "1",
    "sapo": "1/T",
    "gspo": "1/T",
    "gmpo": "1/T",
    "token_tis": "1",
    "seq_tis": "1",
    "token_mis": "1",
    "seq_mis": "1",
    "vespo": "1",
    "vespo_sym23": "1",
    "vespo_sym32": "1",
    "vespo_sqrt": "1",
    "vespo_lin": "1",
    "topr": "1/T",
    "bapo": "1",
    "vcpo": "1",
}


# the `device` fixture (torch-cpu, torch-cuda) is the suite's one, in tests/conftest.py


# --------------------------------------------------------------------------- the problem


def make_problem(seed=0, B=6, T=7, S=4, V=5, scale=0.4, device="cpu", dtype=torch.float64):
    """A tabular policy: logits [S, V] (leaf), states/actions [B, T], ragged mask with an empty
    row and a hole, advantages constant per row on valid tokens and garbage (NaN, 1e30)
    elsewhere, old/rollout log-probs = the current ones plus noise of size ``scale``."""
    g = np.random.default_rng(seed)
    logits = g.normal(size=(S, V))
    s = g.integers(0, S, size=(B, T))
    y = g.integers(0, V, size=(B, T))
    lengths = g.integers(1, T + 1, size=B)
    mask = np.arange(T)[None, :] < lengths[:, None]
    mask[0, :] = False  # an empty row
    if T > 2:
        mask[1, :] = True
        mask[1, 1] = False  # a hole inside a row
    adv_seq = g.normal(size=B)
    adv = np.where(mask, adv_seq[:, None], np.nan)
    adv[:, -1] = np.where(mask[:, -1], adv[:, -1], 1e30)
    lp0 = _log_softmax(logits)[s, y]
    old = lp0 + scale * g.normal(size=(B, T))
    roll = old + scale * g.normal(size=(B, T))
    return dict(
        logits=logits,
        s=s,
        y=y,
        mask=mask,
        adv=adv,
        adv_seq=np.where(mask.any(-1), adv_seq, 0.0),
        old=old,
        roll=roll,
        device=device,
        dtype=dtype,
    )


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def agg_weights(mask: np.ndarray, mode: str) -> np.ndarray:
    """veRL's agg_loss as per-token weights (volcengine/verl, verl/trainer/ppo/core_algos.py,
    agg_loss, verl 0.9.1): the seq-mean modes divide by the number of non-empty rows, sum-norm
    also by T_max."""
    B, T = mask.shape
    m = mask.astype(np.float64)
    n_rows = max(float(m.any(-1).sum()), 1.0)  # rows with at least one valid token
    if mode == "token-mean":
        return m / max(m.sum(), 1.0)
    if mode == "seq-mean-token-sum":
        return m / n_rows
    if mode == "seq-mean-token-mean":
        return m / (n_rows * np.maximum(m.sum(-1, keepdims=True), 1.0))
    if mode == "seq-mean-token-sum-norm":
        return m / (n_rows * T)
    raise AssertionError(mode)


def expected_coefficient(rule, prob, policy, cap=2.0):
    """The documented coefficient [B, T] in float64, from the registry, for one policy."""
    lp0 = _log_softmax(prob["logits"])[prob["s"], prob["y"]]
    mask = prob["mask"]
    ref = prob["roll"] if policy == "entangled" else prob["old"]
    c = rule.coefficient(lp0 - ref, mask, prob["adv_seq"])
    if policy == "decoupled":
        d = np.where(mask, prob["old"] - prob["roll"], 0.0)
        if rule.level == "sequence":
            c = c * np.minimum(np.exp(d.sum(-1, keepdims=True)), cap)
        else:
            c = c * np.minimum(np.exp(d), cap)
    return c


def run_loss(name, prob, mode, policy, logits=None, mask_dtype=torch.bool):
    """(loss, metrics, logits.grad, log_prob.grad) from the loss under test."""
    dev, dt = prob["device"], prob["dtype"]
    if logits is None:
        logits = torch.tensor(prob["logits"], dtype=dt, device=dev, requires_grad=True)
    s = torch.as_tensor(prob["s"], device=dev)
    y = torch.as_tensor(prob["y"], device=dev)
    log_prob = torch.log_softmax(logits, -1)[s, y]
    log_prob.retain_grad()
    kw = {}
    if policy != "none":
        kw = dict(rollout_log_prob=torch.tensor(prob["roll"], dtype=dt, device=dev))
        kw["correction"] = policy
    loss, metrics = get_loss(name)(
        old_log_prob=torch.tensor(prob["old"], dtype=dt, device=dev),
        log_prob=log_prob,
        advantages=torch.tensor(prob["adv"], dtype=dt, device=dev),
        response_mask=torch.as_tensor(prob["mask"], device=dev).to(mask_dtype),
        loss_agg_mode=mode,
        **kw,
    )
    loss.backward()
    return loss, metrics, logits.grad, log_prob.grad


def contract_mismatch(name, mode, policy, prob, expected_rule=None, mask_dtype=torch.bool):
    """Max |autograd grad - documented grad| / max |documented grad| over the logits table.

    ``expected_rule`` (default: the registry's current rule) supplies the documented coefficient.
    """
    rule = rules.get_rule(name) if expected_rule is None else expected_rule
    c = expected_coefficient(rule, prob, policy)
    a = agg_weights(prob["mask"], mode)
    gtok = -a * c * prob["adv_seq"][:, None]  # d loss / d log pi(y_bt)
    p = np.exp(_log_softmax(prob["logits"]))
    want = np.zeros_like(prob["logits"])
    S, V = want.shape
    for b, t in zip(*np.nonzero(gtok)):
        s, y = prob["s"][b, t], prob["y"][b, t]
        want[s] += gtok[b, t] * (np.eye(V)[y] - p[s])
    _, _, got, _ = run_loss(name, prob, mode, policy, mask_dtype=mask_dtype)
    got = got.detach().double().cpu().numpy()
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


# --------------------------------------------------------------------------- the contract


def test_every_rule_has_a_documented_on_policy_behaviour():
    assert set(ON_POLICY) == set(available()) == set(rules.available())
    for name in available():
        assert rules.get_rule(name).on_policy == ON_POLICY[name], name


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("name", rules.available())
def test_contract_gradient_equals_documented_coefficient(name, mode):
    prob = make_problem(seed=zlib.crc32(f"{name}/{mode}".encode()))
    for policy in POLICIES:
        # a bool, a 0/1 float and a 0/1 integer mask take different code paths
        for mask_dtype in (torch.bool, torch.float64, torch.int64):
            # float64 throughout. Each coefficient is exp of a log-space sum: <= 8 u (k |L| +
            # lam (1 + W)) ~ 160 u relative for |log W| <~ 3; each side then sums B T = 42
            # products of <= 4 factors (<= ~50 u of the sum of |terms|), and cancellation in
            # sum_t c_t (e_y - p_s) can make that up to ~10x of max |want|: ~2e-13 in all;
            # 1e-12 is 5x that (2.0e-15 seen over every rule, mode, policy and mask dtype;
            # was 1e-10). Any real coefficient error is >= 1e-3.
            err = contract_mismatch(name, mode, policy, prob, mask_dtype=mask_dtype)
            assert err < 1e-12, (name, mode, policy, mask_dtype)


@pytest.mark.parametrize("name", rules.available())
def test_contract_check_reports_a_wrong_coefficient(name, monkeypatch):
    """Break one rule's coefficient inside the loss; the contract check must see it."""
    prob = make_problem(seed=3)
    documented = rules.get_rule(name)
    inner = documented.body

    def wrong(o, *args):
        c, clipped = inner(o, *args)
        return 1.25 * c + 0.01, clipped  # a deliberately wrong coefficient

    monkeypatch.setitem(rules._RULES, name, dataclasses.replace(documented, body=wrong))
    err = contract_mismatch(name, "seq-mean-token-sum", "none", prob, expected_rule=documented)
    assert err > 1e-3


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("name", rules.available())
def test_on_policy_behaviour(name, mode):
    """All ratios 1: the loss value is 0, nothing is clipped, the coefficient is 1 or 1/T."""
    prob = make_problem(seed=5)
    prob["old"] = _log_softmax(prob["logits"])[prob["s"], prob["y"]]
    prob["roll"] = prob["old"]
    mask = prob["mask"]
    T = np.maximum(mask.sum(-1, keepdims=True), 1)
    c_doc = np.where(mask, 1.0 if ON_POLICY[name] == "1" else 1.0 / T, 0.0)
    want = -agg_weights(mask, mode) * c_doc * prob["adv_seq"][:, None]
    for policy in POLICIES:
        loss, metrics, _, g_lp = run_loss(name, prob, mode, policy)
        # float64: the coefficient at log r = 0 is exp(0) = 1 (or 1/T) exactly up to a few
        # roundings; g = -agg * c * A is a product of three such factors: ~10 u = 1.1e-15 per
        # side, so 1e-14 is ~4.5x (was 1e-13); atol 1e-15 for entries with A ~ 0
        np.testing.assert_allclose(g_lp.numpy(), want, rtol=1e-14, atol=1e-15)
        assert float(loss.detach()) == 0.0
        if "clip_frac" in metrics:
            assert float(metrics["clip_frac"]) == 0.0
        assert float(metrics["log_w_mean"]) == 0.0
        # log W = 0 exactly (asserted above): ESS = exp(2 lse(0) - lse(0)) = exp(log B) rounds by
        # (log B + 1) u ~ 4 u for B <= 8; / B exact-ish: 2e-15 is ~18 u (was 1e-12)
        np.testing.assert_allclose(float(metrics["ess_frac"]), 1.0, rtol=2e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", rules.available())
def test_finite_at_extreme_log_ratios(name, dtype, device):
    """Token log-ratios of +-50 and sequence log-ratios of +-1e4: loss and gradient finite."""
    B, T = 8, 4
    g = np.random.default_rng(1)
    lp = -np.abs(g.normal(size=(B, T)))
    tok = np.where(g.random((B, T)) < 0.5, 50.0, -50.0)
    tok[4:6] = 2500.0  # two rows with log W = +1e4
    tok[6:8] = -2500.0  # two rows with log W = -1e4
    adv = np.repeat(np.array([1.0, -1.0] * 4)[:, None], T, axis=1)
    mask = np.ones((B, T), dtype=bool)
    for policy in POLICIES:
        log_prob = torch.tensor(lp, dtype=dtype, device=device, requires_grad=True)
        kw = {}
        if policy != "none":
            kw = dict(
                rollout_log_prob=torch.tensor(lp - tok[::-1], dtype=dtype, device=device),
                correction=policy,
            )
        for mode in AGG_MODES:
            log_prob.grad = None
            loss, metrics = get_loss(name)(
                torch.tensor(lp - tok, dtype=dtype, device=device),
                log_prob,
                torch.tensor(adv, dtype=dtype, device=device),
                torch.tensor(mask, device=device),
                mode,
                **kw,
            )
            loss.backward()
            assert torch.isfinite(loss), (name, policy, mode)
            assert torch.isfinite(log_prob.grad).all(), (name, policy, mode)
            for k, v in metrics.items():
                assert not torch.isnan(v), (name, policy, mode, k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", rules.available())
def test_dtype_and_device_preserved(name, dtype, device):
    prob = make_problem(seed=7, device=device, dtype=dtype)
    # Round the inputs to the dtype first, so that the expected gradient sees the same numbers.
    for key in ("old", "roll"):
        prob[key] = torch.tensor(prob[key], dtype=dtype).double().numpy()
    loss, metrics, g_logits, g_lp = run_loss(name, prob, "token-mean", "entangled")
    assert loss.dtype == dtype and loss.device.type == device and loss.dim() == 0
    assert g_logits.dtype == dtype and g_lp.dtype == dtype and g_lp.device.type == device
    for k, v in metrics.items():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and v.device.type == device, k
    if dtype == torch.float64:
        return
    # The gradient w.r.t. log_prob against float64 from the same (rounded) log-probs: the loss
    # computes in float32 and rounds once to the dtype, so the error is one rounding of the
    # dtype (2^-8 for bfloat16, 2^-24 for float32) plus float32 arithmetic (~1e-6); allow 2x.
    logits = torch.tensor(prob["logits"], dtype=dtype, device=device)
    s, y = torch.as_tensor(prob["s"], device=device), torch.as_tensor(prob["y"], device=device)
    lp_rounded = torch.log_softmax(logits, -1)[s, y]
    lp64 = lp_rounded.double().cpu().numpy()
    rule = rules.get_rule(name)
    mask = prob["mask"]
    c = rule.coefficient(lp64 - prob["roll"], mask, prob["adv_seq"])
    want = -agg_weights(mask, "token-mean") * c * prob["adv_seq"][:, None]
    # one rounding of the dtype (u = 2^-8 bf16, 2^-24 fp32) plus ~1e-6 of float32 arithmetic, x2;
    # the atol scales the same relative size to max |want|: entries that are sums with
    # cancellation inherit the rounding of their largest terms, not of their own small value
    rtol = 2 * (2.0**-8 if dtype == torch.bfloat16 else 2.0**-24) + 2e-6
    np.testing.assert_allclose(
        g_lp.double().cpu().numpy(), want, rtol=rtol, atol=rtol * np.abs(want).max()
    )


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("name", rules.available())
def test_masked_garbage_changes_nothing(name):
    """NaN / +-inf at masked positions of every input leave loss, gradient and metrics alone.

    (The reference VESPO code multiplies log(max(rollout weight, 1e-8)) by the mask, so a finite
    masked weight changes nothing there either, but a masked inf or NaN weight gives 0 * inf =
    NaN; here a masked -inf rollout log-prob changes nothing.)
    """
    prob = make_problem(seed=11)
    mask = prob["mask"]
    for policy in POLICIES:
        clean = {k: prob[k].copy() for k in ("old", "roll")}
        dirty = dict(prob)
        for k, junk in (("old", np.nan), ("roll", -np.inf)):
            dirty[k] = np.where(mask, prob[k], junk)
        l1, m1, g1, _ = run_loss(name, dict(prob, **clean), "token-mean", policy)
        l2, m2, g2, _ = run_loss(name, dirty, "token-mean", policy)
        assert float(l1.detach()) == float(l2.detach())
        assert torch.equal(g1, g2)
        for k in m1:
            assert torch.equal(m1[k], m2[k]), k


def test_masked_log_prob_garbage_changes_nothing():
    """A NaN/inf in log_prob itself at a masked position: loss, metrics, gradient unchanged."""
    prob = make_problem(seed=12)
    mask = torch.as_tensor(prob["mask"])
    base = torch.tensor(_log_softmax(prob["logits"])[prob["s"], prob["y"]])
    for name, mask_t in [(n, m) for n in rules.available() for m in (mask, mask.double())]:
        outs = []
        for junk in (None, float("nan"), float("inf")):
            lp = base.clone() if junk is None else torch.where(mask, base, junk)
            lp.requires_grad_()
            loss, metrics = get_loss(name)(
                torch.tensor(prob["old"]),
                lp,
                torch.tensor(prob["adv"]),
                mask_t,
                "seq-mean-token-mean",
                rollout_log_prob=torch.tensor(prob["roll"]),
            )
            loss.backward()
            outs.append((float(loss.detach()), lp.grad.clone(), metrics))
        for other in outs[1:]:
            assert other[0] == outs[0][0], name
            assert torch.equal(other[1], outs[0][1]), name
            assert not torch.isnan(other[1]).any(), name


# --------------------------------------------------------------------------- hand references


def test_vespo_hand_reference_values():
    """One sequence, two tokens, ratios (2, 1) -> W = 2, A = -1 (k, lam) = (3, 2):
    phi = 8 e^-2 = 1.0826822658929016; token-mean weight 1/2 -> d loss/d log_prob = phi/2;
    loss = -(1/2) phi (-1) (log 2 + 0) = phi log(2) / 2."""
    phi = 8 * math.exp(-2)
    lp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-1.0 - math.log(2), -2.0]], dtype=torch.float64)
    loss, metrics = get_loss("vespo")(old, lp, -torch.ones(1, 2), torch.ones(1, 2))
    loss.backward()
    # float64, a handful of operations: log W = log 2 carries ~2 u absolute, amplified by
    # |d log phi / d log W| = |k - lam W| = 1, plus ~10 roundings of u = 1.1e-16 on each side:
    # <= ~25 u = 2.8e-15; 1e-14 is ~4x that (2.2e-16 seen)
    np.testing.assert_allclose(lp.grad.numpy(), [[phi / 2, phi / 2]], rtol=1e-14)
    np.testing.assert_allclose(float(loss.detach()), phi * math.log(2) / 2, rtol=1e-14)
    np.testing.assert_allclose(float(metrics["phi_mean_neg"]), phi, rtol=1e-14)
    np.testing.assert_allclose(float(metrics["w_mean"]), 2.0, rtol=1e-14)
    assert float(metrics["n_neg"]) == 1.0 and float(metrics["n_pos"]) == 0.0


def test_decoupled_hand_reference_values():
    """Decoupled VESPO: staleness W = 1 (lp == old), discrepancy rho = e^1 per sequence truncated
    at cap 2: coefficient = phi(1) * 2 = 2; seq-mean-token-sum with B = 1: grad = -2 A."""
    lp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    roll = torch.tensor([[-1.5, -2.5]], dtype=torch.float64)
    loss, metrics = get_loss("vespo")(
        lp.detach(),
        lp,
        torch.full((1, 2), 0.5, dtype=torch.float64),
        torch.ones(1, 2),
        "seq-mean-token-sum",
        rollout_log_prob=roll,
        correction="decoupled",
    )
    loss.backward()
    # every input is dyadic: log rho = (-1 + 1.5) + (-2 + 2.5) = 1, phi(1) = exp(0) = 1, the cap 2
    # and A = 0.5 are exact in binary, so the float64 result is exact: no tolerance
    np.testing.assert_array_equal(lp.grad.numpy(), [[-1.0, -1.0]])
    assert float(metrics["disc_trunc_frac"]) == 1.0
    assert float(metrics["disc_log_w_mean"]) == 1.0
    # entangled sees W = e^1 instead: phi_{2,3}(e) = e^2 exp(3 (1 - e))
    lp.grad = None
    loss, _ = get_loss("vespo")(
        lp.detach(),
        lp,
        torch.full((1, 2), 0.5, dtype=torch.float64),
        torch.ones(1, 2),
        "seq-mean-token-sum",
        rollout_log_prob=roll,
    )
    loss.backward()
    phi_e = math.e**2 * math.exp(3 * (1 - math.e))
    # log W = 1 exactly; W = e rounds by u, so log phi = 2 + 3 (1 - W) is off by ~(3 e + 5) * u
    # = 13 u on each side, plus a few roundings: ~30 u = 3.3e-15; 1e-14 is 3x (2.2e-16 seen)
    np.testing.assert_allclose(lp.grad.numpy(), [[-0.5 * phi_e] * 2], rtol=1e-14)


@pytest.mark.parametrize(
    "mode, a1, a2",
    [
        # weights a on row 1 (2 valid tokens) and row 2 (1 valid token); row 0 is fully masked.
        # N = 3 valid tokens, B' = 2 non-empty rows (B = 3), T_max = 2.
        ("token-mean", 1 / 3, 1 / 3),  # 1/N
        ("seq-mean-token-sum", 1 / 2, 1 / 2),  # 1/B' (1/B would be 1/3)
        ("seq-mean-token-mean", 1 / 4, 1 / 2),  # 1/(B' T_b) (1/(B T_b): 1/6, 1/3)
        ("seq-mean-token-sum-norm", 1 / 4, 1 / 4),  # 1/(B' T_max) (verl 0.9.1; before: 1/T_max)
    ],
)
@pytest.mark.parametrize("name", ["reinforce", "cispo"])  # the seq_only and the token path
def test_aggregation_hand_values_with_an_empty_row(name, mode, a1, a2):
    """veRL's agg_loss (volcengine/verl, verl/trainer/ppo/core_algos.py): the seq-mean modes
    divide by the number of non-empty rows. Row 0 is fully masked (A = 5 there is ignored),
    row 1 has A = 1 on 2 tokens, row 2 A = -2 on 1 token. REINFORCE's coefficient is 1 whatever
    the ratio; CISPO's is 1 on-policy (log-ratios 0). d loss/d log_prob = -a c A by hand."""
    mask = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    adv = torch.tensor([5.0, 1.0, -2.0], dtype=torch.float64)
    old = torch.tensor([[-1.0, -1.0], [-1.0, -2.0], [-3.0, -1.0]], dtype=torch.float64)
    # log-ratios 0.5, 0.25 (row 1), 1.0 (row 2) for REINFORCE: dyadic, so everything is exact
    shift = torch.tensor([[7.0, 7.0], [0.5, 0.25], [1.0, 9.0]], dtype=torch.float64)
    lp = (old + (shift if name == "reinforce" else 0.0)).requires_grad_()
    loss, _ = get_loss(name)(old, lp, adv, mask, mode)
    loss.backward()
    want = [[0.0, 0.0], [-a1 * 1.0, -a1 * 1.0], [-a2 * -2.0, 0.0]]
    # a1, a2 are 1/3, 1/2, 1/4: the loss divides once by the same count: <= 1 u from the
    # rounded 1/3 on each side; 2 u relative
    np.testing.assert_allclose(lp.grad.numpy(), want, rtol=2 * 2.0**-52, atol=0)
    # loss = -sum a c A (lp - old): REINFORCE -(a1 (0.5 + 0.25) - 2 a2 1.0); CISPO on-policy 0
    want_loss = -(a1 * 0.75 - 2.0 * a2) if name == "reinforce" else 0.0
    np.testing.assert_allclose(float(loss.detach()), want_loss, rtol=4 * 2.0**-52, atol=0)


@pytest.mark.parametrize("name", ["ppo_clip", "token_mis"])
def test_token_rule_metrics_ignore_masked_positions(name):
    """phi_mean_neg and clip_frac count valid tokens only. One A < 0 row of 4 tokens, 2 valid:
    log r = -3 (clipped, c = 0) and 0 (c = 1); the masked tokens hold log r = 0 and 3 in the
    inputs (the loss zeroes them, so a body would give them c = 1 if c were not masked).
    phi_mean_neg = (0 + 1) / 2 = 0.5 (unmasked: 1.5 or 3/4), clip_frac = 1/2 (over all 4
    tokens: 1/4)."""
    lp = torch.tensor([[-3.0, 0.0, 0.0, 3.0]], dtype=torch.float64) - 1.0
    old = torch.full((1, 4), -1.0, dtype=torch.float64)
    mask = torch.tensor([[True, True, False, False]])
    _, m = get_loss(name)(old, lp, -torch.ones(1, 4, dtype=torch.float64), mask)
    assert float(m["phi_mean_neg"]) == 0.5  # exp(0) = 1 and 0 exactly, / 2: exact
    assert float(m["clip_frac"]) == 0.5
    assert float(m["n_neg"]) == 1.0


@pytest.mark.parametrize("bad", [2.0, 0.5, -1.0])
@pytest.mark.parametrize("name", ["vespo", "ppo_clip"])
def test_non_binary_mask_is_rejected(name, bad):
    """A mask value other than 0/1 is an error on the CPU (checked without a device sync), for
    float and integer masks, on the fast (vespo) and the token (ppo_clip) path."""
    prob = make_problem(seed=31)
    t = {k: torch.tensor(prob[k]) for k in ("old", "adv")}
    mask = torch.as_tensor(prob["mask"]).double()
    mask[2, 0] = bad
    with pytest.raises(ValueError, match=r"response_mask must be bool or hold only 0 and 1"):
        get_loss(name)(t["old"], t["old"].clone(), t["adv"], mask)
    if bad == 2.0:
        with pytest.raises(ValueError, match=r"response_mask .* got 2 at \(2, 0\)"):
            get_loss(name)(t["old"], t["old"].clone(), t["adv"], mask.long())


def test_metrics_hand_values():
    """Three sequences, log W = (0, log 200, -1e4) with A = (+1, -1, -1)."""
    lp = torch.zeros(3, 2, dtype=torch.float64)
    old = torch.tensor([[0.0, 0.0], [-math.log(200.0), 0.0], [5000.0, 5000.0]], dtype=lp.dtype)
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]], dtype=lp.dtype)
    _, m = get_loss("is")(old, lp, adv, torch.ones(3, 2))
    lw = np.array([0.0, math.log(200.0), -1e4])
    assert float(m["n_neg_w_gt_100"]) == 1.0
    # mean / std of 3 numbers dominated by -1e4 (condition ~1): a few u each side (0 seen);
    # 1e-14 is ~45 u. w_mean: exp(log 200) re-rounds log 200 (5.3 u absolute -> 5.3 u relative
    # on 200; 1.2e-15 seen), 1e-14 is ~8x. ess: log ESS = 2 lse(lw) - lse(2 lw) with terms up to
    # 2 log 200 = 10.6: ~3 * 4 u * 10.6 = 1.4e-14 worst (1.8e-15 seen): 2e-14.
    # phi_mean_neg = (200 + 0) / 2 for IS: same 5.3 u as w_mean (4.4e-16 seen): 1e-14.
    np.testing.assert_allclose(float(m["log_w_mean"]), lw.mean(), rtol=1e-14)
    np.testing.assert_allclose(float(m["log_w_std"]), lw.std(ddof=1), rtol=1e-14)
    assert float(m["log_w_min"]) == -1e4 and float(m["log_w_max"]) == math.log(200.0)
    np.testing.assert_allclose(float(m["w_mean"]), 201.0 / 3.0, rtol=1e-14)
    # Kish ESS of weights (1, 200, 0): 201^2 / (1 + 200^2)
    np.testing.assert_allclose(float(m["ess"]), 201.0**2 / 40001.0, rtol=2e-14)
    np.testing.assert_allclose(float(m["phi_mean_neg"]), 100.0, rtol=1e-14)


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize("name", rules.available())
def test_rollout_equal_to_old_reduces_to_two_policy_loss(name):
    prob = make_problem(seed=13)
    prob["roll"] = prob["old"].copy()
    _, _, g0, _ = run_loss(name, prob, "token-mean", "none")
    for policy in ("entangled", "decoupled"):
        _, _, g, _ = run_loss(name, prob, "token-mean", policy)
        # identical inputs; the decoupled weight is exp(0) = 1 exactly
        assert torch.equal(g, g0), (name, policy)


def test_vespo_matches_reference_style_implementation():
    """Our VESPO gradient equals the reference-style implementation (benchmarks/) where its
    +-20 clamps are inactive (entangled: reference W = pi/old * old/sampler)."""
    from helpers import load_file

    ref = load_file("benchmarks/_reference_vespo.py")
    g = torch.Generator().manual_seed(0)
    B, T = 16, 12
    lp0 = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2
    old = lp0 + 0.05 * torch.randn(B, T, generator=g, dtype=torch.float64)
    roll = old + 0.05 * torch.randn(B, T, generator=g, dtype=torch.float64)
    adv = torch.randn(B, 1, generator=g, dtype=torch.float64).expand(B, T).contiguous()
    mask = torch.arange(T)[None, :] < torch.randint(1, T + 1, (B, 1), generator=g)
    for mode in AGG_MODES:
        lp_a = lp0.clone().requires_grad_()
        lp_b = lp0.clone().requires_grad_()
        loss_a, _ = ref.reference_vespo_loss(
            old, lp_a, adv, mask.double(), mode, rollout_is_weights=(old - roll).exp()
        )
        loss_a.backward()
        loss_b, _ = get_loss("vespo")(old, lp_b, adv, mask, mode, rollout_log_prob=roll)
        loss_b.backward()
        # float64; the reference clamps nothing here (|log W| << 20): 1e-12 relative
        np.testing.assert_allclose(lp_b.grad.numpy(), lp_a.grad.numpy(), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- no host sync


def test_no_host_sync_inside_the_loss(monkeypatch):
    """With check_finite=False the loss never calls .item(), bool(), float() or .tolist()."""
    prob = make_problem(seed=17)
    args = dict(
        old_log_prob=torch.tensor(prob["old"]),
        advantages=torch.tensor(prob["adv"]),
        response_mask=torch.as_tensor(prob["mask"]),
        rollout_log_prob=torch.tensor(prob["roll"]),
    )
    lps = {n: torch.tensor(prob["old"], requires_grad=True) for n in rules.available()}
    get_loss("vespo")  # warm caches that are allowed to sync once (none, but be explicit)

    def boom(*a, **k):
        raise AssertionError("host synchronisation inside the loss")

    for attr in ("item", "__bool__", "__float__", "__int__", "tolist", "numpy", "cpu"):
        monkeypatch.setattr(torch.Tensor, attr, boom)
    losses = []
    for name in rules.available():
        for policy in ("entangled", "decoupled"):
            for mode in AGG_MODES:
                loss, _ = get_loss(name)(
                    log_prob=lps[name], loss_agg_mode=mode, correction=policy, **args
                )
                losses.append(loss)
    monkeypatch.undo()
    assert len(losses) == len(rules.available()) * 2 * len(AGG_MODES)


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    prob = make_problem(seed=19)
    t = {k: torch.tensor(prob[k]) for k in ("old", "adv", "roll")}
    mask = torch.as_tensor(prob["mask"])
    lp = torch.tensor(prob["old"])
    with pytest.raises(ValueError, match="unknown rule 'nope'.*vespo"):
        get_loss("nope")
    with pytest.raises(ValueError, match="loss_agg_mode.*token-mean"):
        get_loss("vespo")(t["old"], lp, t["adv"], mask, "mean")
    with pytest.raises(ValueError, match="correction.*entangled, decoupled"):
        get_loss("vespo")(t["old"], lp, t["adv"], mask, rollout_log_prob=t["roll"], correction="x")
    with pytest.raises(ValueError, match="advantages"):
        get_loss("vespo")(t["old"], lp, t["adv"][:, :-1], mask)
    with pytest.raises(ValueError, match="response_mask"):
        get_loss("ppo_clip")(t["old"], lp, t["adv"], mask[:, :-1])
    with pytest.raises(ValueError, match="rollout_log_prob"):
        get_loss("sapo")(t["old"], lp, t["adv"], mask, rollout_log_prob=t["roll"][:-1])
    with pytest.raises(ValueError, match="log_prob must be \\[B, T\\]"):
        get_loss("is")(t["old"][0], lp[0], t["adv"][0], mask[0])
    with pytest.raises(TypeError, match="old_log_prob must be a torch.Tensor"):
        get_loss("is")(prob["old"], lp, t["adv"], mask)
    with pytest.raises(TypeError, match="params for rule vespo must be a VespoParams"):
        get_loss("vespo")(t["old"], lp, t["adv"], mask, params=rules.ClipParams())
    with pytest.raises(ValueError, match="discrepancy_cap"):
        get_loss("vespo")(t["old"], lp, t["adv"], mask, discrepancy_cap=0.0)
    assert set(CORRECTIONS) == {"entangled", "decoupled"}


def test_check_finite_is_opt_in():
    prob = make_problem(seed=23)
    mask = torch.as_tensor(prob["mask"])
    old = torch.tensor(prob["old"])
    b, t = np.argwhere(prob["mask"])[0]
    old[b, t] = float("nan")
    lp = torch.tensor(prob["roll"], requires_grad=True)
    adv = torch.tensor(prob["adv"])
    loss, _ = get_loss("vespo")(old, lp, adv, mask)  # default: no check, no sync
    assert torch.isnan(loss)
    with pytest.raises(
        ValueError, match=f"old_log_prob is not finite at valid position \\({b}, {t}\\)"
    ):
        get_loss("vespo")(old, lp, adv, mask, check_finite=True)
    # masked garbage is not an error
    old2 = torch.where(mask, torch.tensor(prob["old"]), float("nan"))
    loss2, _ = get_loss("vespo")(old2, lp, adv, mask, check_finite=True)
    assert torch.isfinite(loss2)


def test_one_dimensional_advantages_are_accepted():
    prob = make_problem(seed=29)
    args = (torch.tensor(prob["old"]),)
    mask = torch.as_tensor(prob["mask"])
    lp = torch.tensor(prob["roll"])
    l2, _ = get_loss("gspo")(*args, lp, torch.tensor(prob["adv"]), mask)
    l1, _ = get_loss("gspo")(*args, lp, torch.tensor(prob["adv_seq"]), mask)
    assert float(l1) == float(l2)


# --------------------------------------------------------------------------- benchmark smoke


def test_benchmark_quick_runs_and_prints_the_table():
    """Smoke test only: the script runs and prints its table (no timing is asserted)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_vespo_loss.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    for col in ("B x T", "ours", "reference", "floor", "ref/ours", "ours/floor"):
        assert col in out, out


# --------------------------------------------------------------------------- the fast path
#
# The sequence-level rules take a blocked one-pass path (vespo_theory.losses._row_sums): row
# blocks of _CHUNK_ELEMS elements, a float multiply by a float mask on the CPU with an exact
# recompute of non-finite rows, and a first-valid-token search that runs only for rows whose
# first token is masked (after the pass when they are few, inside it otherwise; argmax when
# T_max is too large for exact whole numbers). These tests drive every branch.

import vespo_theory.losses as _losses

SEQ_RULES = [n for n in rules.available() if rules.get_rule(n).seq_only]
MASK_DTYPES = (torch.bool, torch.float32, torch.float64, torch.int64)


def _ragged_mask(kind, B, T, g):
    """[B, T] bool masks: 'right' (valid prefix: no search), 'left' (valid suffix: every row
    searched), 'few_left' (two rows left-padded), 'holes' (random, with an empty row)."""
    lengths = g.integers(1, T + 1, size=B)
    t = np.arange(T)[None, :]
    if kind == "right":
        return t < lengths[:, None]
    if kind == "left":
        return t >= T - lengths[:, None]
    if kind == "few_left":  # 2 rows of 19 (<= _SEARCH_AFTER_FRAC): searched after the pass
        m = t < lengths[:, None]
        m[12] = t[0] >= max(T - lengths[12], 1)
        m[0, :2] = False
        m[0, 2:] = True
        return m
    m = g.random((B, T)) < 0.6
    m[0] = False  # an empty row
    m[1, :3] = False
    m[1, -1] = True
    return m


def _seq_problem(kind, seed, B=19, T=23, dtype=torch.float32):
    g = np.random.default_rng(seed)
    mask = _ragged_mask(kind, B, T, g)
    lp = -np.abs(g.normal(size=(B, T)))
    old = lp + 0.3 * g.normal(size=(B, T))
    roll = old + 0.3 * g.normal(size=(B, T))
    # advantages that vary along a row: only the first valid token's value is right
    adv = g.normal(size=(B, T))
    first = np.where(mask.any(-1), mask.argmax(-1), 0)
    adv_seq = np.where(mask.any(-1), adv[np.arange(B), first], 0.0)
    adv = np.where(mask, adv, np.nan)  # masked advantages are garbage
    t = {k: torch.tensor(v, dtype=dtype) for k, v in dict(lp=lp, old=old, roll=roll).items()}
    return dict(mask=mask, adv=torch.tensor(adv, dtype=dtype), adv_seq=adv_seq, **t)


def _run(name, p, mask_dtype, adv, policy="none", mode="seq-mean-token-mean"):
    lp = p["lp"].clone().requires_grad_()
    kw = {} if policy == "none" else dict(rollout_log_prob=p["roll"], correction=policy)
    loss, metrics = get_loss(name)(
        p["old"], lp, adv, torch.as_tensor(p["mask"]).to(mask_dtype), mode, **kw
    )
    loss.backward()
    return loss.detach(), lp.grad, metrics


def _assert_same(out_a, out_b, what):
    (la, ga, ma), (lb, gb, mb) = out_a, out_b
    assert torch.equal(la, lb), what
    assert torch.equal(ga, gb), what
    assert ma.keys() == mb.keys(), what
    for k in ma:
        assert torch.equal(ma[k], mb[k]), (what, k)


@pytest.mark.parametrize("kind", ["right", "left", "few_left", "holes"])
def test_fast_path_takes_the_first_valid_tokens_advantage(kind, monkeypatch):
    """[B, T] advantages that vary along the row: the loss equals the one given the [B]
    advantage read at each row's first valid token (computed here with NumPy), bit for bit,
    for every mask dtype, with one-row and three-row blocks, and on the argmax branch."""
    p = _seq_problem(kind, seed=zlib.crc32(kind.encode()))
    B, T = p["mask"].shape
    adv_seq = torch.tensor(p["adv_seq"], dtype=p["lp"].dtype)
    for name in ("vespo", "is"):
        for mask_dtype in MASK_DTYPES:
            want = _run(name, p, mask_dtype, adv_seq)
            for chunk, exact_limit in ((1 << 16, None), (T, None), (3 * T + 1, None), (T, 0.0)):
                monkeypatch.setattr(_losses, "_CHUNK_ELEMS", chunk)
                if exact_limit is not None:
                    monkeypatch.setattr(_losses, "_max_exact_whole", lambda cdt, v=exact_limit: v)
                got = _run(name, p, mask_dtype, p["adv"])
                monkeypatch.undo()
                _assert_same(got, want, (name, kind, mask_dtype, chunk, exact_limit))


@pytest.mark.parametrize("policy", POLICIES)
def test_fast_path_blocks_and_mask_dtypes_agree(policy, monkeypatch):
    """Row blocks of any size and every mask dtype (float multiply on the CPU for a float mask
    of the compute dtype, integer bit masking otherwise) give the same numbers, bit for bit,
    as the whole tensor in one block with a bool mask; and that reference satisfies the
    contract (checked in float64 by test_contract_gradient_equals_documented_coefficient)."""
    p = _seq_problem("holes", seed=41)
    T = p["mask"].shape[1]
    for name in SEQ_RULES:
        for mode in AGG_MODES:
            monkeypatch.setattr(_losses, "_CHUNK_ELEMS", 1 << 30)
            want = _run(name, p, torch.bool, p["adv"], policy, mode)
            for chunk in (1, 2 * T, 5 * T - 1):
                monkeypatch.setattr(_losses, "_CHUNK_ELEMS", chunk)
                for mask_dtype in MASK_DTYPES:
                    got = _run(name, p, mask_dtype, p["adv"], policy, mode)
                    _assert_same(got, want, (name, mode, policy, chunk, mask_dtype))
            monkeypatch.undo()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_float_mask_garbage_is_recomputed_exactly(dtype, monkeypatch):
    """A float mask of the compute dtype takes the float-multiply path, where NaN/inf at a
    masked position would poison the row: those rows are recomputed with integer masking, so
    the result is bit for bit that of clean inputs; a NaN at a valid position still propagates."""
    p = _seq_problem("holes", seed=43, dtype=dtype)
    mask = torch.as_tensor(p["mask"])
    monkeypatch.setattr(_losses, "_CHUNK_ELEMS", 4 * mask.shape[1])
    dirty = dict(p)
    rows = torch.zeros_like(mask)
    rows[::3] = True  # garbage in every third row only: some rows take the recompute
    junk = rows & ~mask
    dirty["lp"] = torch.where(junk, float("nan"), p["lp"])
    dirty["old"] = torch.where(junk, float("inf"), p["old"])
    dirty["roll"] = torch.where(junk, float("-inf"), p["roll"])
    for policy in POLICIES:
        for name in ("vespo", "seq_tis"):
            clean = _run(name, p, dtype, p["adv"], policy)
            got = _run(name, dirty, dtype, p["adv"], policy)
            _assert_same(got, clean, (name, policy))
            assert not torch.isnan(got[1]).any()
    b, t = np.argwhere(p["mask"])[5]
    bad = dict(p, old=p["old"].clone())
    bad["old"][b, t] = float("nan")
    loss, _, _ = _run("vespo", bad, dtype, p["adv"])
    assert torch.isnan(loss)
