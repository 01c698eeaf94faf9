"""Per-sequence score gradients (simulations.lm.grads): vmap and loop against a plain loop of
backward calls, masks, the memory refusal, the JL sketch's stated error, tr Cov."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulations.lm.grads import (
    GradSketch,
    estimate_grad_bytes,
    iter_per_sample_grads,
    jl_eps,
    jl_failure_gaussian,
    jl_min_dim,
    param_count,
    per_sample_grads,
    reference_grads,
    sequence_score_norms,
    trace_cov,
    vcpo_advantages,
)
from simulations.lm.model import GPT, GPTConfig
from simulations.lm.sampling import generate, left_pad
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer
from vespo_theory.resources import MemoryLimitError


@pytest.fixture(autouse=True)
def _one_thread():
    # one thread, as the LM lab runs: the shared CI cores are not oversubscribed
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batch(n=10, dtype=torch.float32, seed=0, max_new=24, d_model=32):
    tok = CharTokenizer()
    torch.manual_seed(seed)
    model = GPT(GPTConfig(tok.vocab_size, d_model, 2, 2, 64)).to(dtype)
    prompts = get_task("reverse").sample(np.random.default_rng(seed), n)
    ids, mask = left_pad([[tok.bos_id, *tok.encode(p)] for p in prompts], tok.pad_id, "cpu")
    r = generate(
        model,
        ids,
        mask,
        max_new,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        generator=torch.Generator().manual_seed(seed),
    )
    return model, r


def test_batch_has_varied_lengths_and_padding():
    _, r = _batch(d_model=16)
    T = r.response_mask.sum(1)
    assert T.min() < T.max() == r.response_ids.shape[1]  # padding after EOS in some rows
    assert int((r.prompt_mask == 0).sum()) > 0  # and left padding of the prompts


@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_float32_per_sample_grads_equal_the_backward_loop(method):
    model, r = _batch()
    ref = reference_grads(model, r).double()
    got = per_sample_grads(model, r, method=method, chunk=4).double()
    assert got.shape == (10, param_count(model))
    # float32 (unit roundoff u = 6e-8): the two layouts (left vs right padding, batched vs one
    # row) differ only in summation order; an entry is a sum over <= 25 tokens of products along
    # ~20 float32 operations, so its rounding is at most a few hundred u of the largest entry
    # (~1e-5); measured ~1e-7. The squared norms sum 2e4 such entries, each within that
    # relative error: 1e-5 relative again.
    scale = float(ref.abs().max())
    assert float((got - ref).abs().max()) <= 1e-5 * scale
    n_ref, n_got = (ref**2).sum(1), (got**2).sum(1)
    assert torch.allclose(n_got, n_ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_float64_per_sample_grads_equal_to_rounding(method):
    model, r = _batch(n=6, dtype=torch.float64)
    ref = reference_grads(model, r)
    got = per_sample_grads(model, r, method=method, chunk=4)
    assert got.dtype == torch.float64
    # the same derivation at u = 1.1e-16: a few hundred u is ~1e-13 of the largest entry
    assert float((got - ref).abs().max()) <= 1e-12 * float(ref.abs().max())


def test_token_weights_and_masks():
    model, r = _batch(n=6)
    w = torch.rand(r.response_mask.shape, generator=torch.Generator().manual_seed(3))
    ref = reference_grads(model, r, w * r.response_mask).double()
    got = per_sample_grads(model, r, w, method="vmap").double()
    assert float((got - ref).abs().max()) <= 1e-5 * float(ref.abs().max())  # as above
    # weights on masked positions (after EOS) are ignored: set them to anything
    junk = w + 100.0 * (1 - r.response_mask)
    assert torch.equal(per_sample_grads(model, r, junk, method="vmap"), got.float())
    # zero weights give zero gradients (the prompt never contributes)
    z = per_sample_grads(model, r, torch.zeros_like(w), method="loop")
    assert float(z.abs().max()) == 0.0


def test_chunking_does_not_change_the_result():
    model, r = _batch(n=7)
    a = per_sample_grads(model, r, method="vmap", chunk=7)
    b = torch.cat([g for _, g in iter_per_sample_grads(model, r, method="vmap", chunk=3)])
    # different batch shapes in vmap: float32 summation order only (see above)
    assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())


def test_memory_is_estimated_and_refused_before_allocating():
    model, r = _batch(n=4)
    P = param_count(model)
    assert estimate_grad_bytes(4, P) == 4 * P * 4
    with pytest.raises(MemoryLimitError, match=r"4 x \d+ float32.*--sketch-dim"):
        per_sample_grads(model, r, memory_limit=4 * P * 4 - 1)
    with pytest.raises(MemoryLimitError, match="chunk of 2 sequences"):
        next(iter_per_sample_grads(model, r, chunk=2, memory_limit=2 * P * 4 - 1))
    assert per_sample_grads(model, r, memory_limit=4 * P * 4 + 10**7).shape == (4, P)


def test_bad_method_and_chunk():
    model, r = _batch(n=2)
    with pytest.raises(ValueError, match="--grad-method"):
        per_sample_grads(model, r, method="fast")
    with pytest.raises(ValueError, match="--chunk"):
        per_sample_grads(model, r, chunk=0)


def test_trace_cov_matches_numpy():
    X = np.random.default_rng(0).normal(size=(40, 7)) + 3.0
    w = np.random.default_rng(1).normal(size=40)
    want = np.trace(np.cov((X * w[:, None]).T, ddof=0))
    # float64 one-pass formula: cancellation loses log10(mean||x||^2 / trCov) ~ 1 digit
    assert math.isclose(trace_cov(X, w), want, rel_tol=1e-12)
    assert math.isclose(
        trace_cov(torch.from_numpy(X)), np.trace(np.cov(X.T, ddof=0)), rel_tol=1e-12
    )


# ------------------------------------------------------------------------------ JL sketch


def test_jl_constants():
    # d >= 4 ln(2n/delta) / (eps^2 - 2 eps^3 / 3) (Dasgupta & Gupta 2003; Achlioptas 2003)
    assert jl_min_dim(64, 0.5, 0.01) == math.ceil(4 * math.log(12800) / (0.25 - 0.25 / 3))
    d = jl_min_dim(100, 0.3, 0.05)
    assert jl_eps(100, d, 0.05) <= 0.3 < jl_eps(100, d - 1, 0.05)
    # the Chernoff bound is conservative against the exact Gaussian (chi^2_d / d) tail
    assert jl_failure_gaussian(100, d, 0.3) <= 0.05
    assert jl_eps(10**6, 5, 0.01) == math.inf
    with pytest.raises(ValueError, match="eps"):
        jl_min_dim(10, 1.5, 0.1)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_sketch_preserves_norms_within_the_stated_eps(kind):
    model, r = _batch(n=24, d_model=16)
    G = per_sample_grads(model, r).double()
    X = torch.cat([G, G - G.mean(0)])  # raw and centred gradients: 48 vectors
    n, eps, delta = X.shape[0], 0.5, 0.01
    d = jl_min_dim(n, eps, delta)
    sk = GradSketch(d, param_count(model), seed=7, kind=kind, block=5000)
    S = sk.apply(X)
    ratio = (S**2).sum(1) / (X**2).sum(1)
    # the guarantee: all 48 ratios in [1 - eps, 1 + eps] with probability >= 1 - delta; this
    # seeded draw is one such (it is deterministic: the same seed gives the same S)
    assert float(ratio.min()) >= 1 - eps and float(ratio.max()) <= 1 + eps
    # tr Cov through the sketch (linear: it maps the centred vectors) within the same eps
    t_full, t_sk = trace_cov(G), trace_cov(sk.apply(G))
    assert abs(t_sk / t_full - 1) <= eps
    # the same seed, another chunking of the rows: the same S (blocks are seeded by index)
    S2 = torch.cat(
        [
            GradSketch(d, param_count(model), seed=7, kind=kind, block=5000).apply(x)
            for x in X.split(5)
        ]
    )
    # float64 products of the same numbers, rows computed apart: identical up to BLAS order
    assert torch.allclose(S, S2, rtol=1e-12, atol=1e-12 * float(S.abs().max()))


def test_sketch_through_the_iterator_and_its_memory_use():
    model, r = _batch(n=6)
    P = param_count(model)
    sk = GradSketch(16, P, seed=1)
    got = per_sample_grads(model, r, sketch=sk, chunk=4)
    assert got.shape == (6, 16) and got.dtype == torch.float64
    want = GradSketch(16, P, seed=1).apply(per_sample_grads(model, r))
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
    # n x d memory only: a limit below n x P but above n x d and the chunk's 3 x chunk x P
    assert per_sample_grads(model, r, sketch=sk, chunk=1, memory_limit=4 * P * 4).shape == (6, 16)
    with pytest.raises(ValueError, match="--sketch-kind"):
        GradSketch(4, P, kind="sparse")


# ------------------------------------------------------------------------------ VCPO hook


def test_score_norms_and_vcpo_advantages():
    model, r = _batch(n=8, d_model=16)
    g2 = sequence_score_norms(model, r, chunk=3)
    ref = (reference_grads(model, r).double() ** 2).sum(1).numpy()
    np.testing.assert_allclose(g2, ref, rtol=1e-5)  # float32 gradients, as above
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    lw = np.linspace(-1.0, 1.0, 8)
    adv = vcpo_advantages(lw, g2, rewards, 4).double()
    for g in range(2):
        s = slice(4 * g, 4 * g + 4)
        w = np.exp(2 * lw[s]) * g2[s]  # b* = sum w^2 g R / sum w^2 g
        b = float(w @ rewards[s].double().numpy() / w.sum())
        want = (rewards[s].double() - b) / (rewards[s].double().std() + 1e-6)
        # float64 baseline, float32 output: 1e-6 relative is ~10 float32 ulps
        assert torch.allclose(adv[s], want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="whole groups"):
        vcpo_advantages(lw[:7], g2[:7], rewards[:7], 4)
