"""The LM-scale path on CPU with a tiny randomly initialised transformers model (no download).

Skipped when the optional extra (transformers) is absent. The CUDA test skips without a GPU and
fails when VESPO_REQUIRE_CUDA=1.
"""

from __future__ import annotations

import csv
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from simulations.lm.rl import LMRunConfig, run
from vespo_theory.cli import main


def _save_llama(path, seed):
    cfg = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return _save_llama(root / "v0", 0), _save_llama(root / "v1", 1)


def test_cache_equivalence_and_trainer_log_probs(tiny):
    from simulations.lm.hf import load_hf
    from simulations.lm.sampling import generate, left_pad, sequence_log_probs

    model, tok = load_hf(tiny[0], torch.device("cpu"), dtype=torch.float64)
    ids, mask = left_pad([[1, *tok.encode("A12+3>")], [1, *tok.encode("R1>")]], 0, "cpu")
    kw = dict(eos_id=tok.eos_id, pad_id=tok.pad_id)
    r1 = generate(model, ids, mask, 12, generator=torch.Generator().manual_seed(0), **kw)
    r2 = generate(
        model, ids, mask, 12, generator=torch.Generator().manual_seed(0), use_cache=False, **kw
    )
    assert torch.equal(r1.response_ids, r2.response_ids)
    # float64: cached and full forward differ by summation order only; the same derivation as
    # TOL64 in test_lm_model (tiny Llama, <= 12 response tokens): ~1e-12 worst case, 1e-11
    assert torch.allclose(r1.rollout_log_prob, r2.rollout_log_prob, atol=1e-11, rtol=0)
    assert torch.allclose(sequence_log_probs(model, r1), r1.rollout_log_prob, atol=1e-11, rtol=0)


def test_rl_loop_runs_on_a_hf_model(tiny, tmp_path):
    cfg = LMRunConfig(
        task="reverse-short",
        model=str(tiny[0]),
        steps=2,
        staleness=2,
        prompts_per_step=2,
        group_size=4,
        heldout_n=4,
        eval_every=2,
        mismatch="noise:0.3",
    )
    summary = run(cfg, tmp_path, device="cpu")
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 2 and summary["complete"]
    assert float(rows[0]["kl_sampler"]) > 1e-3  # noise on the sampler's logits


def test_measure_mode_two_hf_versions(tiny, tmp_path, capsys):
    argv = ["train-lm", "--measure", "--model", str(tiny[0]), "--later-model", str(tiny[1])]
    argv += ["--task", "reverse", "--device", "cpu", "--out", str(tmp_path), "--no-progress"]
    argv += ["--measure-prompts", "6", "--samples-per-prompt", "4", "--max-new-tokens", "40"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(tmp_path / "measure.csv")))
    assert rows[-1]["bin"] == "all" and int(rows[-1]["n"]) == 24
    # two independent random models: log W spreads (one version against itself gives < 1e-4,
    # see test_lm_measure); near-uniform random inits differ by ~0.03 nats per token
    assert float(rows[-1]["log_w_std"]) > 0.1


def test_not_a_causal_lm_and_not_a_checkpoint(tmp_path, capsys):
    bert = tmp_path / "bert"
    transformers.BertModel(
        transformers.BertConfig(
            vocab_size=32,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
        )
    ).save_pretrained(bert)
    assert main(["train-lm", "--model", str(bert), "--out", str(tmp_path / "o")]) == 2
    assert "not a causal language model" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train-lm", "--model", str(empty), "--out", str(tmp_path / "o2")]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.cuda
def test_cuda_bf16_path(tiny, tmp_path, require_cuda):
    from simulations.lm.hf import load_hf

    model, _ = load_hf(tiny[0], torch.device("cuda"))
    assert next(model.parameters()).dtype == torch.bfloat16
    cfg = LMRunConfig(
        task="reverse-short",
        model=str(tiny[0]),
        steps=2,
        prompts_per_step=2,
        group_size=4,
        heldout_n=4,
        eval_every=2,
    )
    run(cfg, tmp_path, device="cuda")
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    # a norm is >= 0 by definition: what can fail is NaN/inf from bf16 overflow
    assert len(rows) == 2 and all(math.isfinite(float(r["grad_norm"])) for r in rows)
