"""TRL plug-in: weight statistics, lazy import, and a few GRPO steps of a tiny local model on CPU.

The end-to-end test needs the ``[trl]`` extra (trl, transformers, datasets); it skips with the
reason when they are not importable. Nothing is downloaded: the model is a randomly initialised
Llama-architecture causal LM and the tokenizer a word-level one, both built here and saved to a
temporary folder.
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import pytest

from vespo_theory.diagnostics import kish_ess_from_log_weights, psis_khat
from vespo_theory.integrations.trl import weight_stats


def test_weight_stats_against_direct_formulas():
    rng = np.random.default_rng(0)
    lw = rng.normal(-0.5, 1.0, 200)
    adv = rng.choice([-1.0, 1.0], 200)
    s = weight_stats(lw, adv)
    assert s["n"] == 200
    assert s["ess_frac"] == kish_ess_from_log_weights(lw) / 200
    assert s["khat"] == psis_khat(lw)
    assert s["khat_threshold"] == pytest.approx(1 - 1 / math.log10(200), rel=1e-15)
    pos = adv >= 0
    w = np.exp(lw)
    phi_pos = w[pos] ** 2 * np.exp(3 * (1 - w[pos]))  # (k, lam) = (2, 3) for A >= 0
    # the same float64 formula evaluated in log space vs directly: a few ulp (1e-13 is ~500 ulp)
    assert s["phi_mean_pos"] == pytest.approx(phi_pos.mean(), rel=1e-13)
    # claims B2 and P4 hold on any sample: the ratios are <= 1 (up to rounding)
    for sign in ("pos", "neg"):
        assert 0 < s[f"b2_ratio_{sign}"] <= 1 + 1e-12
        assert 0 < s[f"p4_ratio_{sign}"] <= 1 + 1e-12
    assert s["log_w_q05"] < s["log_w_q50"] < s["log_w_q95"]
    # fewer than 20 sequences: no tail fit; one sign only: NaN for the other
    few = weight_stats(lw[:5], np.ones(5))
    assert math.isnan(few["khat"]) and math.isnan(few["phi_mean_neg"])


def test_module_imports_without_trl_and_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)
    import vespo_theory.integrations.trl as mod

    mod = importlib.reload(mod)
    with pytest.raises(ImportError, match=r"vespo-theory\[trl\]"):
        mod.RuleGRPOTrainer  # noqa: B018 - the attribute access is the test
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018 - the attribute access is the test


def _tiny_model_and_tokenizer(path):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["<pad>", "<s>", "</s>", "<unk>"] + [chr(c) for c in range(ord("a"), ord("a") + 12)]
    vocab = {w: i for i, w in enumerate(words)}
    tk = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", padding_side="left",
    )  # fmt: skip
    tok.save_pretrained(path)
    cfg = transformers.LlamaConfig(
        vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return tok


def test_grpo_steps_with_a_rule_loss_and_the_callback(tmp_path):
    pytest.importorskip("trl", reason="trl not installed: pip install 'vespo-theory[trl]'")
    datasets = pytest.importorskip("datasets", reason="datasets comes with trl")
    import torch
    import trl

    from simulations.diagnose import diagnose, load_log
    from vespo_theory.integrations.trl import RuleGRPOTrainer, WeightDiagnosticsCallback

    torch.set_num_threads(1)
    model_dir = tmp_path / "tiny"
    tok = _tiny_model_and_tokenizer(model_dir)
    letters = "abcdefghijkl"
    prompts = [" ".join(letters[(i + j) % 12] for j in range(3)) for i in range(8)]
    ds = datasets.Dataset.from_dict({"prompt": prompts})

    def reward_letters(completions, **kwargs):
        return [float(c.count("a") - c.count("b")) + 0.1 * len(c) for c in completions]

    cfg = trl.GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=4,
        max_completion_length=6, num_iterations=2, max_steps=4, logging_steps=1,
        learning_rate=0.05, report_to="none", use_cpu=True, save_strategy="no", seed=0,
        beta=0.0, bf16=False, disable_tqdm=True, dataloader_num_workers=0,
    )  # fmt: skip
    cb = WeightDiagnosticsCallback()
    trainer = RuleGRPOTrainer(
        model=str(model_dir), reward_funcs=reward_letters, args=cfg, train_dataset=ds,
        processing_class=tok, callbacks=[cb], rule="vespo",
    )  # fmt: skip
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before)), "no parameter moved"

    logged = [h for h in trainer.state.log_history if "weights/ess_frac" in h]
    assert len(logged) == 4 and len(cb.history) == 4
    for h in logged:
        assert 0 < h["weights/ess_frac"] <= 1 + 1e-12
        assert "rule/vespo/ess_frac" in h and "weights/phi_mean_pos" in h
    # num_iterations = 2: the second pass over a generation sees a moved policy, so some
    # sequence weight differs from 1 (log W = 0 exactly only while pi_theta == pi_old)
    lw = np.array([s[1] for s in cb.sequences])
    assert np.abs(lw).max() > 1e-6
    # the logged ESS/n of a step is the statistic of the sequences recorded at that step
    first = [s for s in cb.sequences if s[0] == cb.sequences[0][0]]
    assert logged[0]["weights/ess_frac"] == pytest.approx(
        kish_ess_from_log_weights(np.array([s[1] for s in first])) / len(first), rel=1e-12
    )
    # and the recorded sequences are a log vespo diagnose reads
    cb.write_log(tmp_path / "trl_log.csv")
    rep = diagnose(load_log(tmp_path / "trl_log.csv"), rules=["vespo", "seq_tis"])
    assert rep["n"] == len(cb.sequences) == 16  # 4 steps x 4 sequences


def test_rule_trainer_refuses_unsupported_settings(tmp_path):
    pytest.importorskip("trl", reason="trl not installed: pip install 'vespo-theory[trl]'")
    datasets = pytest.importorskip("datasets")
    import trl

    from vespo_theory.integrations.trl import RuleGRPOTrainer

    model_dir = tmp_path / "tiny"
    tok = _tiny_model_and_tokenizer(model_dir)
    ds = datasets.Dataset.from_dict({"prompt": ["a b c"] * 4})
    kw = dict(output_dir=str(tmp_path / "o"), per_device_train_batch_size=4, num_generations=4,
              max_completion_length=4, report_to="none", use_cpu=True, bf16=False)  # fmt: skip
    with pytest.raises(ValueError, match="unknown rule"):
        RuleGRPOTrainer(model=str(model_dir), reward_funcs=lambda completions, **k: [0.0] * 4,
                        args=trl.GRPOConfig(**kw), train_dataset=ds, processing_class=tok,
                        rule="nope")  # fmt: skip
    with pytest.raises(ValueError, match="beta"):
        RuleGRPOTrainer(model=str(model_dir), reward_funcs=lambda completions, **k: [0.0] * 4,
                        args=trl.GRPOConfig(beta=0.1, **kw), train_dataset=ds,
                        processing_class=tok)  # fmt: skip


def test_ppo_clip_rule_gives_trl_grpo_gradient(tmp_path):
    """The hook against TRL's own loss: ``ppo_clip`` with ``seq-mean-token-mean`` is TRL's
    ``loss_type="grpo"`` (-min(r A, clip(r, 1 - eps, 1 + eps) A), per-sequence token mean, batch
    mean), so the two gradients agree on the same inputs."""
    pytest.importorskip("trl", reason="trl not installed: pip install 'vespo-theory[trl]'")
    datasets = pytest.importorskip("datasets")
    import torch
    import trl

    from vespo_theory.integrations.trl import RuleGRPOTrainer

    torch.set_num_threads(1)
    model_dir = tmp_path / "tiny"
    tok = _tiny_model_and_tokenizer(model_dir)
    ds = datasets.Dataset.from_dict({"prompt": ["a b c"] * 4})
    kw = dict(output_dir=str(tmp_path / "o"), per_device_train_batch_size=4, num_generations=4,
              max_completion_length=5, report_to="none", use_cpu=True, bf16=False,
              loss_type="grpo", epsilon=0.2)  # fmt: skip

    def reward(completions, **k):
        return [0.0] * len(completions)

    ours = RuleGRPOTrainer(model=str(model_dir), reward_funcs=reward, args=trl.GRPOConfig(**kw),
                           train_dataset=ds, processing_class=tok, rule="ppo_clip",
                           loss_agg_mode="seq-mean-token-mean")  # fmt: skip
    theirs = trl.GRPOTrainer(model=str(model_dir), reward_funcs=reward,
                             args=trl.GRPOConfig(**kw), train_dataset=ds,
                             processing_class=tok)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    B, P, T = 4, 3, 5
    completion_mask = torch.ones(B, T, dtype=torch.long)
    completion_mask[1, 3:] = 0
    inputs = {
        "prompt_ids": torch.randint(4, 16, (B, P), generator=g),
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": torch.randint(4, 16, (B, T), generator=g),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -0.5, 0.7, -1.2]),
        "num_items_in_batch": completion_mask.sum(),
    }
    grads = []
    for tr in (ours, theirs):
        tr.model.train()
        tr.current_gradient_accumulation_steps = 1
        with torch.no_grad():
            lp, _, _ = tr._get_per_token_logps_and_entropies(
                tr.model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
                torch.cat([inputs["prompt_mask"], completion_mask], 1), T,
            )  # fmt: skip
        # old log-probs 0.3 nats away on random tokens: some ratios leave [0.8, 1.2] (clipped)
        noise = 0.3 * torch.randn(B, T, generator=torch.Generator().manual_seed(1))
        inp = dict(inputs, old_per_token_logps=lp + noise)
        tr.model.zero_grad()
        tr._compute_loss(tr.model, inp).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in tr.model.parameters()]))
    r = (noise.neg().exp() * completion_mask).detach()
    assert ((r > 1.2) | ((r < 0.8) & (r > 0))).any()  # the clip is exercised
    # float32 forward/backward of the same graph in two orders of summation: ~1e-7 relative;
    # 1e-5 leaves margin and is far below a wrong clip side (O(1) in the clipped entries)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-8)
