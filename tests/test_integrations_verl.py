"""veRL plug-in: registration into a fake registry, gradients against vespo_theory.losses, config
reading, rollout_is_weights; and equivalence with veRL's own losses where verl is installed."""

from __future__ import annotations

import inspect
import math
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vespo_theory.integrations.verl import params_from_config, register_rules
from vespo_theory.losses import AGG_MODES, get_loss
from vespo_theory.rules import available

SIGNATURE = [
    ("old_log_prob", inspect.Parameter.empty),
    ("log_prob", inspect.Parameter.empty),
    ("advantages", inspect.Parameter.empty),
    ("response_mask", inspect.Parameter.empty),
    ("loss_agg_mode", "token-mean"),
    ("config", None),
    ("rollout_is_weights", None),
]


class FakeRegistry:
    """veRL's register_policy_loss(name)(fn) shape, recording into a dict."""

    def __init__(self):
        self.table = {}

    def __call__(self, name):
        def deco(fn):
            self.table[name] = fn
            return fn

        return deco


def _batch(B=6, T=5, seed=0, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    old = torch.randn(B, T, generator=g, dtype=torch.float64) - 1.0
    new = (old + scale * torch.randn(B, T, generator=g, dtype=torch.float64)).requires_grad_()
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[1, 3:] = 0
    mask[4, 1:] = 0
    adv = torch.randn(B, 1, generator=g, dtype=torch.float64).expand(B, T).clone()
    return old, new, adv, mask


def _grad(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


def test_every_rule_is_registered_with_verls_signature():
    reg = FakeRegistry()
    out = register_rules(reg)
    assert sorted(reg.table) == sorted("vt_" + r for r in available()) == sorted(out)
    for fn in reg.table.values():
        params = list(inspect.signature(fn).parameters.values())
        assert [(p.name, p.default) for p in params] == SIGNATURE


@pytest.mark.parametrize("mode", AGG_MODES)
def test_registered_losses_have_the_gradient_of_vespo_theory_losses(mode, monkeypatch):
    # without verl the plug-in aggregates with its local copy of veRL's agg_loss (b178a3c), the
    # definition vespo_theory.losses implements; with verl it calls the installed agg_loss
    # (test_aggregation_is_the_installed_verls below)
    monkeypatch.setitem(sys.modules, "verl", None)
    monkeypatch.setitem(sys.modules, "verl.trainer.ppo.core_algos", None)
    reg = FakeRegistry()
    register_rules(reg, prefix="x_")
    old, new, adv, mask = _batch()
    for name in available():
        loss, metrics = reg.table["x_" + name](old, new, adv, mask, loss_agg_mode=mode)
        ref, _ = get_loss(name)(old, new, adv, mask, loss_agg_mode=mode)
        assert loss.dim() == 0
        assert all(isinstance(v, float) for v in metrics.values())
        assert 0 < metrics["vespo_theory/ess_frac"] <= 1 + 1e-12
        # both are -sum a c A (new - old) in float64: rounding only (1e-12 ~ 5000 ulp)
        torch.testing.assert_close(_grad(loss, new), _grad(ref, new), rtol=1e-12, atol=1e-14)


def test_rollout_is_weights_decoupled_and_folded(monkeypatch):
    monkeypatch.setitem(sys.modules, "verl", None)
    monkeypatch.setitem(sys.modules, "verl.trainer.ppo.core_algos", None)
    reg = FakeRegistry()
    register_rules(reg, rules=["vespo", "token_tis"])
    folded = register_rules(FakeRegistry(), rules=["vespo"], prefix="f_", fold_rollout_is=True)
    old, new, adv, mask = _batch(seed=1)
    g = torch.Generator().manual_seed(2)
    log_rho = 0.3 * torch.randn(old.shape, generator=g, dtype=torch.float64)
    w = log_rho.exp()
    for name in ("vespo", "token_tis"):
        plain, _ = reg.table["vt_" + name](old, new, adv, mask)
        weighted, _ = reg.table["vt_" + name](old, new, adv, mask, rollout_is_weights=w)
        # decoupled (veRL's own losses): the per-token loss times w, so the gradient too
        torch.testing.assert_close(
            _grad(weighted, new), _grad(plain, new) * w * mask, rtol=1e-12, atol=1e-14
        )
    # folded (reference VESPO code): the rule sees log r + log w, i.e. the ratio to the
    # rollout policy with log pi_rollout = old - log w; vespo_theory.losses' entangled mode
    f, _ = folded["f_vespo"](old, new, adv, mask, rollout_is_weights=w)
    ref, _ = get_loss("vespo")(old, new, adv, mask, rollout_log_prob=old - log_rho)
    torch.testing.assert_close(_grad(f, new), _grad(ref, new), rtol=1e-12, atol=1e-14)


def test_parameters_come_from_verls_actor_config_and_overrides():
    cfg = {
        "clip_ratio": 0.2,
        "clip_ratio_low": 0.1,
        "clip_ratio_high": None,
        "clip_ratio_c": 4.0,
        "tau_pos": 1.5,
        "policy_loss": {"loss_mode": "vt_vespo", "vespo_theory": {"vespo": {"k_pos": 2.5}}},
    }
    p = params_from_config("dual_clip", cfg)
    assert (p.eps_low, p.eps_high, p.c) == (0.1, 0.2, 4.0)  # clip_ratio_high None -> clip_ratio
    assert params_from_config("sapo", cfg).tau_pos == 1.5
    v = params_from_config("vespo", cfg)
    assert (v.k_pos, v.lam_pos) == (2.5, 3.0)
    assert params_from_config("vespo", cfg, {"lam_neg": 1.0}).lam_neg == 1.0
    assert params_from_config("seq_tis", cfg).cap == 2.0  # no veRL field: the default
    with pytest.raises(ValueError, match="unknown field 'kk'"):
        register_rules(FakeRegistry(), params={"vespo": {"kk": 1.0}})
    with pytest.raises(ValueError, match="k_pos"):
        params_from_config("vespo", None, {"k_pos": -1.0})


def test_register_without_verl_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "verl", None)
    monkeypatch.setitem(sys.modules, "verl.trainer.ppo.core_algos", None)
    with pytest.raises(ImportError, match=r"vespo-theory\[verl\]"):
        register_rules()


# --------------------------------------------------------------------------- against veRL


def _verl():
    return pytest.importorskip(
        "verl.trainer.ppo.core_algos", reason="verl not installed: pip install 'vespo-theory[verl]'"
    )


def _actor_config(**kw):
    from verl.workers.config import ActorConfig

    return ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, **kw)


# (veRL loss_mode, our rule, the aggregation passed to veRL, ours): veRL's gspo, sapo and
# geo_mean aggregate as they choose; our gspo/sapo/gmpo hold their 1/T (docs/losses.md)
PAIRS = [
    ("vanilla", "dual_clip", "token-mean", "token-mean"),
    ("vanilla", "dual_clip", "seq-mean-token-mean", "seq-mean-token-mean"),
    ("cispo", "cispo", "token-mean", "token-mean"),
    ("gspo", "gspo", "seq-mean-token-mean", "seq-mean-token-sum"),
    ("sapo", "sapo", "seq-mean-token-mean", "seq-mean-token-sum"),
    ("geo_mean", "gmpo", "seq-mean-token-mean", "seq-mean-token-sum"),
]


@pytest.mark.parametrize("verl_mode, rule, verl_agg, our_agg", PAIRS)
def test_equivalence_with_verls_own_losses(verl_mode, rule, verl_agg, our_agg):
    core = _verl()
    cfg = _actor_config(clip_ratio=0.2, clip_ratio_low=0.2, clip_ratio_high=0.28)
    ours = register_rules(FakeRegistry(), rules=[rule])["vt_" + rule]
    old, new, adv, mask = _batch(seed=3, scale=0.2)
    weights = [None, torch.rand(old.shape, dtype=torch.float64) + 0.5]
    if verl_mode == "geo_mean":
        # veRL's geo_mean scales each row by the geometric mean of its rollout weights; the
        # plug-in multiplies per token like veRL's other losses (docs/integrations.md)
        weights = weights[:1]
    for w in weights:
        theirs, _ = core.get_policy_loss_fn(verl_mode)(
            old, new, adv, mask, loss_agg_mode=verl_agg, config=cfg, rollout_is_weights=w
        )
        mine, _ = ours(old, new, adv, mask, loss_agg_mode=our_agg, config=cfg, rollout_is_weights=w)
        # float64 on both sides; veRL clamps log-ratios at +-20 and adds 1e-8 to divisors:
        # a relative difference ~1e-8 at most, hence 1e-7
        g = _grad(mine, new)
        torch.testing.assert_close(g, _grad(theirs, new), rtol=1e-7, atol=1e-10)
        assert math.isfinite(float(mine)) and np.isfinite(g.numpy()).all()


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregation_is_the_installed_verls(mode):
    """With verl installed the loss is veRL's agg_loss of the per-token loss -c A (new - old)."""
    core = _verl()
    from vespo_theory.rules import get_rule

    fn = register_rules(FakeRegistry(), rules=["vespo"])["vt_vespo"]
    old, new, adv, mask = _batch(seed=4)
    loss, _ = fn(old, new, adv, mask, loss_agg_mode=mode)
    c = get_rule("vespo").coefficient((new - old).detach(), mask.bool(), adv[:, 0])
    want = core.agg_loss(-(c * adv) * (new - old), mask, mode)
    torch.testing.assert_close(loss, want, rtol=1e-14, atol=1e-15)  # the same float64 ops


def test_append_sequence_log_is_read_by_diagnose(tmp_path):
    from simulations.diagnose import load_log
    from vespo_theory.integrations.verl import append_sequence_log

    old, new, adv, mask = _batch(seed=5)
    mask[2] = 0  # an empty row is skipped
    path = tmp_path / "verl_log.jsonl"
    assert append_sequence_log(path, new.detach(), old, mask, adv, step=3) == 5
    assert append_sequence_log(path, new.detach(), old, mask, adv, step=4) == 5
    log = load_log(path)
    keep = mask.sum(-1) > 0
    want = ((new.detach() - old) * mask).sum(-1)[keep].numpy()
    np.testing.assert_allclose(log.log_w[:5], want, rtol=1e-15, atol=1e-15)
    assert list(log.step) == [3] * 5 + [4] * 5


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("name", ["vespo", "cispo"])
def test_vespo_theory_losses_aggregate_like_the_installed_verl(name, mode):
    """vespo_theory.losses itself (not the plug-in) against the installed veRL's agg_loss, with a
    fully masked row (veRL's B' counts non-empty rows): same gradient w.r.t. log_prob."""
    core = _verl()
    from vespo_theory.rules import get_rule

    old, new, adv, mask = _batch(seed=5)
    mask[2, :] = 0  # an empty row: excluded from B' by veRL and by vespo_theory.losses
    loss, _ = get_loss(name)(old, new, adv, mask, loss_agg_mode=mode)
    c = get_rule(name).coefficient((new - old).detach(), mask.bool(), adv[:, 0])
    want = core.agg_loss(-(c * adv) * (new - old), mask, mode)
    # veRL's seq-mean-token-mean divides by T_b + 1e-8 (docs/losses.md): relative 1e-8 at most
    torch.testing.assert_close(_grad(loss, new), _grad(want, new), rtol=1e-7, atol=1e-12)
