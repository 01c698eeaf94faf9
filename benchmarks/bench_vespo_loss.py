"""Benchmark: VESPO loss forward + backward, float32, CPU (a script, not a test).

Compares, at each [B, T]:

* ours: ``vespo_theory.losses.get_loss("vespo")`` (metrics as 0-d tensors, no host sync);
* (a) reference: ``benchmarks/_reference_vespo.py``, a straightforward implementation in the style
  of the reference code (separate elementwise ops and their temporaries, every metric pulled to
  the host with ``.item()``);
* (b) floor: the memory floor measured in the same run, one pass that reads every input tensor
  once (``old_log_prob.sum() + log_prob.sum() + advantages.sum() + response_mask.sum()``).

Each timing is the median of ``--repeats`` runs after ``--warmup`` runs, the three contenders
timed round-robin (a shared machine's load falls on all of them alike). The inputs mirror veRL:
float32 log-probs, [B, T] advantages constant per row, a float 0/1 response mask with ragged
lengths. Usage::

    python benchmarks/bench_vespo_loss.py            # [256, 8192] and [2048, 1024]
    python benchmarks/bench_vespo_loss.py --quick    # small sizes (smoke test)
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_reference():
    spec = importlib.util.spec_from_file_location("_reference_vespo", HERE / "_reference_vespo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.reference_vespo_loss


def make_inputs(B: int, T: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lp = -torch.rand(B, T, generator=g) * 3.0
    old = lp + 0.02 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, 1, generator=g).expand(B, T).contiguous()
    lengths = torch.randint(T // 4, T + 1, (B, 1), generator=g)
    mask = (torch.arange(T)[None, :] < lengths).float()
    return old, lp, adv, mask


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def _median_ms(fns: dict, warmup: int, repeats: int, clock: str = "cpu") -> dict:
    """Median time (ms) of each function on ``clock``, timed round-robin so that load from other
    processes on a shared machine falls on every contender alike.

    ``cpu`` is this thread's CPU time (torch runs on the calling thread with one intra-op
    thread), which time slices lost to other processes do not inflate; ``wall`` is wall time.
    """
    now = CLOCKS[clock]
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = now()
            fn()
            times[k].append(now() - t0)
    out = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    out.update({f"{k}_min": 1e3 * min(v) for k, v in times.items()})
    return out


def bench(B: int, T: int, warmup: int, repeats: int, mode: str, clock: str = "cpu") -> dict:
    import torch

    from vespo_theory.losses import get_loss

    ours_fn = get_loss("vespo")
    ref_fn = _load_reference()
    old, lp0, adv, mask = make_inputs(B, T)
    lp = lp0.clone().requires_grad_()

    def ours():
        lp.grad = None
        loss, metrics = ours_fn(old, lp, adv, mask, mode)
        loss.backward()
        return loss, metrics

    def reference():
        lp.grad = None
        loss, metrics = ref_fn(old, lp, adv, mask, mode)
        loss.backward()
        return loss, metrics

    def floor():
        return old.sum() + lp0.sum() + adv.sum() + mask.sum()

    # The two implementations compute the same gradient (the reference's +-20 clamps are
    # inactive at these log-ratios); check once so the table compares like with like.
    ours()
    g_ours = lp.grad.clone()
    reference()
    if not torch.allclose(g_ours, lp.grad, rtol=1e-4, atol=1e-12):
        raise SystemExit("ours and the reference disagree on the gradient; not benchmarking")
    t = _median_ms({"floor": floor, "ours": ours, "ref": reference}, warmup, repeats, clock)
    return dict(B=B, T=T, **t)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default 15)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--mode", default="token-mean", help="loss_agg_mode")
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: thread CPU time (robust on a shared machine; --threads 1); wall: wall time",
    )
    args = p.parse_args(argv)

    import torch

    if args.clock == "cpu" and args.threads != 1:
        raise SystemExit("--clock cpu measures one thread; use --threads 1 or --clock wall")
    torch.set_num_threads(args.threads)
    sizes = [(64, 256), (256, 64)] if args.quick else [(256, 8192), (2048, 1024)]
    repeats = args.repeats or (3 if args.quick else 15)
    warmup = 1 if args.quick else args.warmup
    print(
        f"VESPO loss forward+backward, float32, CPU, torch {torch.__version__}, "
        f"{args.threads} thread(s), loss_agg_mode={args.mode}, median of {repeats} runs, "
        f"{args.clock} clock"
    )
    rows = [bench(B, T, warmup, repeats, args.mode, args.clock) for B, T in sizes]
    head = f"{'B x T':>12} {'ours ms':>9} {'reference ms':>13} {'floor ms':>9} "
    head += f"{'ref/ours':>9} {'ours/floor':>11}   (minima: ref/ours, ours/floor)"
    print(head)
    for r in rows:
        print(
            f"{r['B']:>5} x {r['T']:<5} {r['ours']:9.2f} {r['ref']:13.2f} {r['floor']:9.2f} "
            f"{r['ref'] / r['ours']:9.2f} {r['ours'] / r['floor']:11.2f}   "
            f"({r['ref_min'] / r['ours_min']:.2f}, {r['ours_min'] / r['floor_min']:.2f})"
        )
    print("medians of the timed runs; goal: ref/ours >= 1.5 and ours/floor <= 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
