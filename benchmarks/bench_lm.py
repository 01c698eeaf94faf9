"""Throughput of the small-LM path: sampling with and without the KV cache, and training.

    python benchmarks/bench_lm.py [--device cpu] [--batch 64] [--new-tokens 48] [--threads 1]

Prints tokens per second (median of --repeats timed runs after one warm-up) for:
* sampling (generated response tokens / s), KV cache on and off;
* one training step (forward + backward + Adam on prompt + response tokens / s).
The model is the comparison protocol's (d_model 64, 2 layers, 4 heads), randomly initialised:
throughput does not depend on the weights. Never part of the test suite.
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
    t = _time(train_step, args.repeats)
    print(f"training  fwd+bwd+adam       {n_tok / t:12.0f} tokens/s  ({t:.3f} s)")


if __name__ == "__main__":
    main()
