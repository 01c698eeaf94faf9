"""The long-response task (count-long), the opt-in SDPA attention and the lm_long configs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulations.lm.model import GPT, GPTConfig, positions_from_mask
from simulations.lm.sampling import generate, left_pad, sequence_log_probs
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()
REPO = Path(__file__).resolve().parent.parent
# float64 models: the explicit softmax and SDPA differ only in summation order (the same bound
# as tests/test_lm_model.py's TOL64: ~1e-13 per logit, a response sums <= 60 tokens here).
TOL64 = 1e-11


def test_count_task_answers_rewards_and_length_range():
    task = get_task("count-long")
    assert task.answer("|003>") == "002,001,000"
    assert task.reward("|003>", "002,001,000") == 1.0
    assert task.reward("|003>", "002,001,001") == 0.0
    prompts = task.sample(np.random.default_rng(0), 2000)
    lengths = [len(TOK.encode(task.answer(p))) + 1 for p in prompts]  # + EOS
    # start a in 25-256 -> 4a tokens: exactly 100 to 1,024
    assert min(lengths) >= 100 and max(lengths) <= 1024
    assert min(lengths) < 120 and max(lengths) > 1000  # the range is covered
    assert max(lengths) <= task.max_response_len()
    xl = get_task("count-xl")
    assert len(TOK.encode(xl.answer("|512>"))) + 1 == 2048 <= xl.max_response_len()
    for bad in ("|3>", "R003>", "|000>", "|0a3>"):
        with pytest.raises(ValueError, match="prompt"):
            task.answer(bad)


def _pair(attn_b="sdpa"):
    torch.manual_seed(0)
    a = GPT(GPTConfig(TOK.vocab_size, 32, 2, 4, 96)).double()
    b = GPT(GPTConfig(TOK.vocab_size, 32, 2, 4, 96, attn_b)).double()
    b.load_state_dict(a.state_dict())
    return a, b


def test_sdpa_equals_explicit_attention_with_padding_and_cache():
    a, b = _pair()
    ids, mask = left_pad([[1, *TOK.encode(t)] for t in ("|012>", "R0123456>")], 0, "cpu")
    la, _ = a(ids, mask, positions_from_mask(mask))
    lb, _ = b(ids, mask, positions_from_mask(mask))
    assert torch.allclose(la, lb, atol=TOL64, rtol=0)
    ra = generate(a, ids, mask, 40, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(3))
    rb = generate(b, ids, mask, 40, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ra.response_ids, rb.response_ids)  # same tokens through the KV cache
    assert torch.allclose(ra.rollout_log_prob, rb.rollout_log_prob, atol=TOL64, rtol=0)
    assert torch.allclose(sequence_log_probs(b, ra), ra.rollout_log_prob, atol=TOL64, rtol=0)
    with pytest.raises(ValueError, match="attn"):
        GPTConfig(TOK.vocab_size, attn="flash")


def test_new_attn_field_keeps_old_cache_and_run_keys():
    from simulations.lm.rl import LMRunConfig, recipe, run_key
    from simulations.lm.sft import SFTConfig, sft_cache_key
    from vespo_theory.provenance import config_hash

    cfg = SFTConfig()
    key, key_cfg = sft_cache_key(cfg)
    assert "attn" not in key_cfg  # default: the key of the code before the field
    assert sft_cache_key(SFTConfig(attn="sdpa"))[0] != key
    from simulations.lm.sft import LATE_DEFAULTS

    run = LMRunConfig()
    # every late field (attn, and the mixture-of-experts ones) at its default is left out
    old = {k: v for k, v in asdict(run).items() if k not in LATE_DEFAULTS}
    assert run_key(run) == config_hash({"run": old, **recipe()})
    assert run_key(LMRunConfig(attn="sdpa")) != run_key(run)
    with pytest.raises(ValueError, match="attn"):
        LMRunConfig(attn="x")


@pytest.mark.parametrize("name", ["lm_long_fast", "lm_long"])
def test_lm_long_configs_build_valid_cells(name):
    from simulations.lm.rl import LMRunConfig

    cfg = json.loads((REPO / "configs" / f"{name}.json").read_text())
    assert cfg["kind"] == "lm"
    base = cfg["base"]
    assert base["task"] == "count-long" and base["attn"] == "sdpa"
    grid = cfg["grid"]
    assert set(grid["rule"]) == {"vespo", "ppo_clip", "gspo", "sapo"}
    assert len(grid["seed"]) >= 3  # 95 % intervals over seeds
    for n in grid["staleness"]:
        LMRunConfig(**{**base, "rule": "vespo", "staleness": n, "seed": 0})
        assert n <= base["steps"]


def test_count_long_sft_and_rl_smoke(tmp_path):
    """Two RL steps on count-long with an SDPA model: the loop runs, log W is a sum over
    hundreds of tokens (responses of the untrained model run long), metrics are finite."""
    from simulations.lm.rl import LMRunConfig, run

    cfg = LMRunConfig(
        task="count-long",
        attn="sdpa",
        steps=2,
        staleness=2,
        prompts_per_step=2,
        group_size=2,
        eval_every=2,
        heldout_n=2,
        d_model=16,
        n_head=2,
        n_layer=1,
        sft_steps=1,
        sft_batch_size=2,
    )
    summary = run(cfg, tmp_path / "r", device="cpu", cache_dir=tmp_path / "cache")
    assert summary["complete"]
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3


def test_regen_long_summary_intervals_and_paired_differences():
    import importlib.util

    from scipy import stats

    spec = importlib.util.spec_from_file_location(
        "regen_lm_long", REPO / "scripts" / "regen_lm_long.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    xs = [0.5, 0.7, 0.65]
    m, lo, hi = mod.t_interval(xs)
    ref = stats.t.interval(0.95, 2, loc=np.mean(xs), scale=stats.sem(xs))
    assert m == pytest.approx(np.mean(xs), abs=1e-15)
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)  # float64; scipy's own rounding
    rows = []
    for rule, finals in (("vespo", [0.8, 0.7, 0.9]), ("sapo", [0.5, 0.4, 0.7])):
        for seed, f in enumerate(finals):
            rows.append(
                {
                    "rule": rule,
                    "staleness": "16",
                    "seed": str(seed),
                    "initial_heldout": "0.8",
                    "final_heldout": str(f),
                    "best_heldout": "0.9",
                    "collapsed": "False",
                    "mean_ess_frac": "0.5",
                    "max_log_w": "1.0",
                    "mean_abs_log_w": "0.5",
                    "mean_response_length": "500",
                }
            )
    summary, paired = mod.summarise(rows)
    assert [s["rule"] for s in summary] == ["vespo", "sapo"]
    assert len(paired) == 1 and paired[0]["rule"] == "sapo" and paired[0]["seeds"] == 3
    d = [0.3, 0.3, 0.2]  # VESPO minus SAPO per seed
    assert paired[0]["diff"] == pytest.approx(np.mean(d), abs=1e-12)
    assert paired[0]["lo"] > 0  # differences 0.2-0.3 with sd 0.058: the interval excludes 0
