"""The RL loop with the mixture-of-experts model: routing-flip mismatch and routing replay (R2),
and the cache keys of every config written before those fields existed."""

from __future__ import annotations

import csv
import math

import pytest

torch = pytest.importorskip("torch")

from simulations.lm.rl import LMRunConfig, run, run_key
from simulations.lm.sft import SFTConfig, sft_cache_key

# the tiny protocol of tests/test_lm_rl.py with a 4-expert top-2 FFN; N = 1, so every
# mini-batch is on-policy and the only mismatch is the sampler's routing
TINY_MOE = dict(
    task="reverse-short",
    d_model=32,
    n_head=2,
    n_expert=4,
    top_k=2,
    sft_steps=70,
    sft_batch_size=32,
    steps=3,
    prompts_per_step=2,
    group_size=4,
    heldout_n=8,
    eval_every=3,
    staleness=1,
    lr=1e-3,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sft_cache_moe")


def _rows(cfg, out, cache):
    run(cfg, out, device="cpu", cache_dir=cache)
    with open(out / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_route_flips_change_log_w_and_replay_removes_them(tmp_path, cache):
    """On-policy (N = 1) with route noise on the sampler: without replay the sequence log W of
    some response is far from 0; with replay (R2) the trainer uses the sampler's experts, so
    log W is 0 up to float32 summation-order rounding. Tolerance 1e-4 nats: ~40 tokens, each
    log-prob computed by the cached step and by the full forward (a few float32 ulps of values
    ~1-10, ~1e-6 each), summed; the flips without replay move log W by > 0.01 (asserted)."""
    base = {**TINY_MOE, "mismatch": "route:0.5"}
    flips = _rows(LMRunConfig(**base), tmp_path / "noreplay", cache)
    replay = _rows(LMRunConfig(**base, routing_replay=True), tmp_path / "replay", cache)
    spread = max(max(abs(float(r["log_w_min"])), abs(float(r["log_w_max"]))) for r in flips)
    assert spread > 1e-2
    for r in replay:
        assert abs(float(r["log_w_min"])) <= 1e-4 and abs(float(r["log_w_max"])) <= 1e-4
        assert math.isfinite(float(r["grad_norm"]))


def test_no_mismatch_moe_is_on_policy_without_replay(tmp_path, cache):
    """The control: no route noise, no replay: the trainer picks the sampler's experts itself,
    so log W is float rounding only (same tolerance and reason as above)."""
    rows = _rows(LMRunConfig(**TINY_MOE), tmp_path, cache)
    for r in rows:
        assert abs(float(r["log_w_min"])) <= 1e-4 and abs(float(r["log_w_max"])) <= 1e-4


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"routing_replay": True}, "routing_replay: needs a mixture-of-experts"),
        ({"mismatch": "route:0.1"}, "route"),
        ({"n_expert": 2, "top_k": 3}, "top_k"),
        ({"n_expert": 4, "routing_replay": "yes"}, "routing_replay must be true or false"),
    ],
)
def test_bad_moe_config_is_a_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        LMRunConfig(**kw)


def test_cache_keys_of_older_configs_are_unchanged(monkeypatch):
    """The late fields (attn, n_expert, top_k, routing_replay) at their defaults are left out
    of the keys, so every cached warm start and run stays valid. The literals are the keys
    computed by the code before the mixture-of-experts fields existed (torch minor pinned to
    2.13 here, since it is part of every key)."""
    import simulations.lm.rl as rl
    import simulations.lm.sft as sft

    monkeypatch.setattr(sft, "torch_minor", lambda: "2.13")
    monkeypatch.setattr(rl, "torch_minor", lambda: "2.13")
    assert run_key(LMRunConfig()) == (
        "895ec12fbc116280dc4378e0d916ed5bb554fed869ac91c30e2ce25928fd39ef"
    )
    long = LMRunConfig(task="count-long", attn="sdpa", sft_steps=400)
    assert run_key(long) == "9c5c3b3611d663fa9e8d06b7bc7d15e257ac3620b7b8e7b67ce4890eb01985ea"
    assert sft_cache_key(SFTConfig())[0] == (
        "b19e7b571541c4b299f95d44e6e34947219f74dddb5e6b762bbe73d1641cb6b3"
    )
    # a field away from its default changes the key
    assert run_key(LMRunConfig(n_expert=4)) != run_key(LMRunConfig())
    assert run_key(LMRunConfig(n_expert=4, routing_replay=True)) != run_key(
        LMRunConfig(n_expert=4)
    )
    assert sft_cache_key(SFTConfig(n_expert=4))[0] != sft_cache_key(SFTConfig())[0]
