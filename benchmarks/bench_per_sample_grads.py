"""Per-sample-gradient throughput against one plain backward of the batch, and peak memory.

    python benchmarks/bench_per_sample_grads.py [--device cpu] [--batch 64] [--new-tokens 32]
        [--d-model 64] [--layers 2] [--threads 1] [--repeats 5] [--sketch-dim 256]

The model is the LM protocol's (d_model 64, 2 layers, 4 heads; randomly initialised: speed does
not depend on the weights), on ``--batch`` ``add`` prompts with exactly ``--new-tokens``
sampled response tokens each (EOS disabled, so tokens/s is well defined). Timed (median of
``--repeats`` runs after one warm-up, all in this one process, so the ratios are measured in
the same run):

* ``plain``: one forward + backward of the batch's summed log-probability (the gradient of the
  batch mean; what one RL step does);
* ``vmap``: all per-sequence gradients g_i with ``torch.func`` (simulations.lm.grads,
  chunks of ``--chunk``);
* ``loop``: the chunked loop of one backward per sequence (the Hugging Face / long path);
* ``vmap+sketch``: vmap, then the seeded Gaussian JL sketch to ``--sketch-dim``.

Each is printed as sequences/s, response tokens/s and its time over ``plain``'s.

Peak memory. CPU: the peak resident set of a fresh child process during one run of the method:
the child builds the batch, resets the kernel's high-water mark (``echo 5 >
/proc/self/clear_refs``, Linux >= 4.0), runs the method once and reports ``VmHWM`` minus the
``VmRSS`` just before (from ``/proc/self/status``). tracemalloc would not see it (torch allocates
tensors in C++, outside Python's allocator) and torch keeps no peak statistics for its CPU
allocator. The figure includes allocator caching and fragmentation, so it bounds the tensors
alive from above. CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
(tensors only). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from simulations.lm.grads import GradSketch, estimate_grad_bytes, param_count, per_sample_grads
from simulations.lm.model import GPT, GPTConfig
from simulations.lm.rl import resolve_device
from simulations.lm.sampling import generate, sequence_log_probs
from simulations.lm.sft import encode_prompts
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer
from vespo_theory.resources import format_bytes

METHODS = ("plain", "vmap", "loop", "vmap+sketch")


def _setup(args, dev):
    tok, task = CharTokenizer(), get_task("add")
    torch.manual_seed(0)
    model = GPT(GPTConfig(tok.vocab_size, args.d_model, args.layers, 4, 128)).to(dev)
    prompts = task.sample(np.random.default_rng(0), args.batch)
    ids, mask = encode_prompts(task, tok, prompts, dev)
    g = torch.Generator(device=dev).manual_seed(0)
    r = generate(model, ids, mask, args.new_tokens, eos_id=-1, pad_id=tok.pad_id, generator=g)
    return model, r


def _runner(name, model, r, args):
    if name == "plain":

        def fn():
            model.zero_grad(set_to_none=True)
            sequence_log_probs(model, r).sum().backward()

        return fn
    if name == "vmap":
        return lambda: per_sample_grads(model, r, method="vmap", chunk=args.chunk)
    if name == "loop":
        return lambda: per_sample_grads(model, r, method="loop", chunk=args.chunk)
    sk = GradSketch(args.sketch_dim, param_count(model), seed=0)
    sk.apply(torch.zeros((1, param_count(model))))  # draw (and keep) S outside the timing
    return lambda: per_sample_grads(model, r, method="vmap", chunk=args.chunk, sketch=sk)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child_peak(argv: list[str]) -> int:
    """Peak RSS growth in bytes of a child running one method (it prints the number)."""
    out = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--sketch-dim", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # memory child: a method
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    model, r = _setup(args, dev)
    if args.child is not None:  # run once, print the peak RSS growth in bytes
        fn = _runner(args.child, model, r, args)
        gc.collect()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        fn()
        print((_status_kib("VmHWM") - before) * 1024)
        return
    P = param_count(model)
    n, tokens = args.batch, args.batch * args.new_tokens
    print(
        f"model d_model={args.d_model} layers={args.layers}: {P:,} parameters; batch {n} x "
        f"{args.new_tokens} response tokens (+ prompts); {args.threads} thread(s), {dev}; "
        f"torch {torch.__version__}"
    )
    print(f"n x P float32 gradient matrix: {format_bytes(estimate_grad_bytes(n, P))}")
    times = {m: _time(_runner(m, model, r, args), args.repeats) for m in METHODS}
    print(f"{'method':12s} {'time (s)':>9s} {'seq/s':>9s} {'tok/s':>10s} {'x plain':>8s}")
    for m in METHODS:
        t = times[m]
        print(f"{m:12s} {t:9.4f} {n / t:9.1f} {tokens / t:10.0f} {t / times['plain']:8.2f}")
    print(
        f"(sketch: Gaussian, d = {args.sketch_dim}; 'x plain' = time / time of one plain "
        "backward of the whole batch)"
    )
    peaks = {}
    if dev.type == "cuda":
        for m in METHODS:
            fn = _runner(m, model, r, args)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            peaks[m] = torch.cuda.max_memory_allocated() - base
        how = "torch.cuda.max_memory_allocated over the allocation before"
    else:
        common = [
            f"--{k.replace('_', '-')}={v}"
            for k, v in vars(args).items()
            if k not in ("child", "repeats") and v is not None
        ]
        for m in METHODS:
            peaks[m] = _child_peak([*common, f"--child={m}"])
        how = "growth of the peak RSS of a fresh child process over one run (VmHWM - VmRSS)"
    print(f"peak memory ({how}):")
    for m in METHODS:
        print(f"  {m:12s} {format_bytes(max(peaks[m], 0))}")
    print(json.dumps({"times_s": times, "peak_bytes": peaks, "n_params": P}))


if __name__ == "__main__":
    main()
