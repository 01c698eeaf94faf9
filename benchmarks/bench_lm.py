"""Throughput of the small-LM path: sampling with and without the KV cache, and training.

    python benchmarks/bench_lm.py [--device cpu] [--batch 64] [--new-tokens 48] [--threads 1]

Prints tokens per second (median of --repeats timed runs after one warm-up) for:
* sampling (generated response tokens / s), KV cache on and off;
* one training step (forward + backward + Adam on prompt + response tokens / s).
The model is the comparison protocol's (d_model 64, 2 layers, 4 heads), randomly initialised:
throughput does not depend on the weights. Never part of the test suite.

Against the machine's limit: ``flops`` lines give the model's FLOPs per token (matrix
multiplies only, the standard count: 2 x the non-embedding weights of the blocks and the head
per token forward, plus the attention's 4 x context x d_model per layer; a training step counts
3 x the forward, backward being twice the forward), the achieved GFLOP/s of sampling and
training, and the same one-thread float32 matrix-multiply peak measured in this run (a
1024 x 1024 product, and one of the model's own shapes, 64 x 64 by 64 x 256), so each
utilisation is a ratio of two numbers measured together (Kaplan et al. 2020, arXiv 2001.08361,
Table 1, for the per-token count).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from simulations.lm.model import GPT, GPTConfig
from simulations.lm.rl import resolve_device
from simulations.lm.sampling import generate, sequence_log_probs
from simulations.lm.sft import encode_prompts
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    tok, task = CharTokenizer(), get_task("add")
    torch.manual_seed(0)
    model = GPT(GPTConfig(tok.vocab_size, args.d_model, args.layers, 4, 128)).to(dev)
    prompts = task.sample(np.random.default_rng(0), args.batch)
    ids, mask = encode_prompts(task, tok, prompts, dev)
    # eos_id=-1: never stop early, so every run generates exactly --new-tokens per row
    kw = dict(eos_id=-1, pad_id=tok.pad_id)

    def sample(use_cache):
        g = torch.Generator(device=dev).manual_seed(0)
        return generate(model, ids, mask, args.new_tokens, generator=g, use_cache=use_cache, **kw)

    n_gen = args.batch * args.new_tokens
    print(
        f"device {dev}, threads {args.threads}, batch {args.batch}, {args.new_tokens} new tokens,"
        f" d_model {args.d_model}, {args.layers} layers"
    )
    for use_cache in (True, False):
        t = _time(lambda uc=use_cache: sample(uc), args.repeats)
        print(f"sampling  kv_cache={str(use_cache):5s}  {n_gen / t:12.0f} tokens/s  ({t:.3f} s)")
    r = sample(True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train_step():
        lp = sequence_log_probs(model, r)
        loss = -(lp * r.response_mask).sum() / r.response_mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    n_tok = int(r.prompt_mask.sum() + r.response_mask.sum())
    t_train = _time(train_step, args.repeats)
    print(f"training  fwd+bwd+adam       {n_tok / t_train:12.0f} tokens/s  ({t_train:.3f} s)")

    # ---- the same numbers as a fraction of the one-thread matrix-multiply peak
    def mm_gflops(m, k, n, reps):
        a, b = torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)
        t = _time(lambda: [a @ b for _ in range(reps)], args.repeats)
        return 2.0 * m * k * n * reps / t / 1e9

    peak = mm_gflops(1024, 1024, 1024, 4)
    small = mm_gflops(64, 64, 256, 2000)
    blocks = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks."))
    head = model.head.weight.numel()
    d, L = args.d_model, args.layers
    P = int(ids.shape[1])
    ctx = P + args.new_tokens / 2  # the mean context of a sampled token
    fwd_sample = 2 * (blocks + head) + 4 * ctx * d * L
    t_sample = _time(lambda: sample(True), args.repeats)
    g_sample = n_gen * fwd_sample / t_sample / 1e9
    S = P + args.new_tokens
    fwd_train = 2 * (blocks + head) + 4 * (S / 2) * d * L
    g_train = n_tok * 3 * fwd_train / t_train / 1e9
    print(f"flops  peak_matmul_1024   {peak:8.2f} GFLOP/s")
    print(
        f"flops  model_shape_64x64x256  {small:8.2f} GFLOP/s  {100 * small / peak:5.1f} % of peak"
    )
    print(
        f"flops  sampling_kv_cache  {g_sample:8.3f} GFLOP/s  {100 * g_sample / peak:5.2f} % of "
        f"peak  ({fwd_sample / 1e3:.0f} kFLOP/token)"
    )
    print(
        f"flops  training  {g_train:8.3f} GFLOP/s  {100 * g_train / peak:5.2f} % of peak  "
        f"({3 * fwd_train / 1e3:.0f} kFLOP/token)"
    )


if __name__ == "__main__":
    main()
