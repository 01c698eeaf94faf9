"""The small transformer, its KV cache, sampling, the sampler engines, tokenizer and tasks."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulations.lm.model import GPT, GPTConfig, positions_from_mask
from simulations.lm.sampling import (
    SamplerEngine,
    generate,
    left_pad,
    parse_mismatch,
    sequence_log_probs,
)
from simulations.lm.tasks import available_tasks, get_task
from simulations.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()
# float64 model: cached and uncached paths differ only by summation order. A dot product of
# <= 128 terms (d_model 32, MLP 4 * 32) rounds by <= 128 u |terms| ~ 128 u * 3 = 4e-14;
# 2 layers plus attention and log-softmax: ~1e-13 per logit, and a response log-prob sums <= 12
# tokens: ~1.2e-12 worst case (< 2e-15 seen). 1e-11 is ~8x that (was 1e-10, ~80x).
TOL64 = 1e-11


def _model(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(TOK.vocab_size, d_model=32, n_layer=2, n_head=4, max_len=64)).to(dtype)


def _prompts():
    texts = ["A7+85>", "R0123456>", "S91>"]  # different lengths: exercises left padding
    return left_pad([[TOK.bos_id, *TOK.encode(t)] for t in texts], TOK.pad_id, "cpu")


def test_kv_cache_logits_equal_full_forward():
    model = _model()
    ids, mask = _prompts()
    rng = torch.Generator().manual_seed(1)
    new = torch.randint(3, TOK.vocab_size, (ids.shape[0], 6), generator=rng)
    full_ids = torch.cat([ids, new], 1)
    full_mask = torch.cat([mask, torch.ones_like(new)], 1)
    full_logits, _ = model(full_ids, full_mask, positions_from_mask(full_mask))
    # prefix in one call, then one token at a time through the cache
    logits, past = model(ids, mask, positions_from_mask(mask))
    steps = [logits[:, -1]]
    for t in range(new.shape[1]):
        m = full_mask[:, : ids.shape[1] + t + 1]
        pos = positions_from_mask(m)[:, -1:]
        out, past = model(new[:, t : t + 1], m, pos, past)
        steps.append(out[:, -1])
    cached = torch.stack(steps[:-1], 1)
    ref = full_logits[:, ids.shape[1] - 1 : -1]
    assert torch.allclose(cached, ref, atol=TOL64, rtol=0)
    # real prompt tokens: a left-padded row equals the same prompt run alone
    alone, _ = model(ids[2:3, -5:], mask[2:3, -5:], positions_from_mask(mask[2:3, -5:]))
    assert torch.allclose(alone[0], full_logits[2, ids.shape[1] - 5 : ids.shape[1]], atol=TOL64)


def test_generate_with_and_without_cache_agree_and_log_probs_match_trainer():
    model = _model()
    ids, mask = _prompts()
    r1 = generate(
        model, ids, mask, 12, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(3)
    )
    r2 = generate(
        model,
        ids,
        mask,
        12,
        eos_id=2,
        pad_id=0,
        generator=torch.Generator().manual_seed(3),
        use_cache=False,
    )
    assert torch.equal(r1.response_ids, r2.response_ids)
    assert torch.allclose(r1.rollout_log_prob, r2.rollout_log_prob, atol=TOL64, rtol=0)
    lp = sequence_log_probs(model, r1)
    assert torch.allclose(lp, r1.rollout_log_prob, atol=TOL64, rtol=0)
    # masking: zero after EOS, EOS itself counted
    for row_ids, row_mask in zip(r1.response_ids.tolist(), r1.response_mask.tolist()):
        if 2 in row_ids:
            e = row_ids.index(2)
            assert row_mask[: e + 1] == [1.0] * (e + 1) and not any(row_mask[e + 1 :])


def test_engine_mismatch_moves_sampler_away_from_trainer():
    model = _model(torch.float32)
    ids, mask = _prompts()
    for spec in ("bf16", "noise:0.5"):
        engine = parse_mismatch(spec)
        sampler = engine.prepare(model)
        r = generate(
            sampler,
            ids,
            mask,
            10,
            eos_id=2,
            pad_id=0,
            generator=torch.Generator().manual_seed(0),
            engine=engine,
        )
        lp = sequence_log_probs(model, r)
        gap = ((lp - r.rollout_log_prob).abs() * r.response_mask).max()
        # bf16 rounds logits at ~2^-8 relative; anything above float32 rounding (1e-6) is a gap
        assert gap > 1e-4, spec
    assert parse_mismatch("none") == SamplerEngine()
    for bad in ("fp8", "noise:-1", "noise:x", "noise:inf"):
        with pytest.raises(ValueError, match="--mismatch"):
            parse_mismatch(bad)


def test_greedy_is_deterministic_and_sampling_is_seeded():
    model = _model(torch.float32)
    ids, mask = _prompts()
    a = generate(
        model, ids, mask, 8, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(5)
    )
    b = generate(
        model, ids, mask, 8, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(a.response_ids, b.response_ids)
    assert torch.equal(a.rollout_log_prob, b.rollout_log_prob)


def test_model_config_and_input_validation():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(10, d_model=30, n_head=4)
    with pytest.raises(ValueError, match="d_model"):
        GPTConfig(10, d_model=0)
    model = _model()
    ids, mask = _prompts()
    with pytest.raises(ValueError, match="attn_mask"):
        model(ids, mask[:, 1:], positions_from_mask(mask))
    with pytest.raises(ValueError, match="prompts"):
        left_pad([], 0, "cpu")


def test_tokenizer_round_trip_and_bad_character():
    text = "A12+345>2+5=7,1+4=5,0+3=3:357"
    assert TOK.decode(TOK.encode(text)) == text
    assert TOK.decode([*TOK.encode("12"), TOK.eos_id, *TOK.encode("3")]) == "12"
    with pytest.raises(ValueError, match="alphabet"):
        TOK.encode("x")


@pytest.mark.parametrize("name", available_tasks())
def test_tasks_reference_answer_scores_one_and_lengths_vary(name):
    task = get_task(name)
    prompts = task.sample(np.random.default_rng(0), 200)
    lengths = set()
    for p in prompts:
        ans = task.answer(p)
        assert task.reward(p, ans) == 1.0
        assert task.reward(p, ans + "9") == 0.0
        assert len(TOK.encode(ans)) + 1 <= task.max_response_len()
        lengths.add(len(ans))
    assert len(lengths) >= 3  # variable-length answers
    with pytest.raises(ValueError, match="task"):
        get_task("nope")
