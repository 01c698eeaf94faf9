"""Benchmark of the simulators: lattice vs enumeration, the lattice at V = 32000 / T = 4096, and
Monte Carlo throughput against the raw random-number fill rate measured in the same run.

Run: ``python benchmarks/bench_simulators.py`` (single-threaded; prints a table; no assertions).
The Monte Carlo rates are timed round-robin on this thread's CPU clock (``--clock wall`` for wall
time), best of ``--rounds``, so that the fill rate and the samplers see the same machine load.
Goals from issue 4: lattice at V = 32000, T = 4096 under 2 s; sampling at >= 25% of the fill rate.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import time

import numpy as np

from simulations.config import ARConfig
from simulations.montecarlo import alias_table, sample_sequences, sample_tokens
from simulations.runners import simulate_ar
from simulations.tabular import make_ar_model

SEQ_RULES = ["is", "reinforce", "vespo", "seq_tis", "seq_mis", "gspo"]
CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def best_of(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-enumeration", action="store_true", help="skip the slow 16.8M run")
    ap.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="Monte Carlo rates on this thread's CPU time (default) or wall time",
    )
    ap.add_argument("--rounds", type=int, default=5, help="round-robin rounds (best of)")
    args = ap.parse_args(argv)
    rows = []
    # 1. lattice vs enumeration at V = 8, T = 8 (8^8 = 16.8M sequences > the 1e6 default cap,
    #    so enumeration runs with max_sequences raised; same answer expected to 1e-9)
    cfg = ARConfig(V=8, T=8, staleness=1, drift="lattice", drift_size=0.1, adv_mode="constant")
    t_la, la = best_of(lambda: simulate_ar(cfg, SEQ_RULES, method="lattice"))
    note = "(enumeration skipped)"
    if not args.skip_enumeration:
        t_en, en = best_of(
            lambda: simulate_ar(cfg, SEQ_RULES, method="enumeration", max_sequences=20_000_000),
            repeat=1,
        )
        diff = max(
            abs(a[k] - b[k])
            for a, b in zip(en["rules"], la["rules"])
            for k in ("E_phi", "E_phi2", "var_trace", "bias_norm")
        )
        rows.append(("enumeration V=8 T=8 (16.8M seqs, 6 rules)", f"{t_en:.2f} s", ""))
        note = f"speed-up {t_en / t_la:.0f}x, max |diff| {diff:.1e}"
    rows.append(("lattice     V=8 T=8 (6 rules)", f"{t_la * 1e3:.1f} ms", note))

    # 2. lattice at V = 32000, T = 4096
    big = ARConfig(
        V=32000, T=4096, staleness=1, drift="lattice", drift_size=0.02, adv_mode="constant"
    )
    t_build, model = best_of(lambda: make_ar_model(big), repeat=1)
    t_big, res = best_of(lambda: simulate_ar(big, ["vespo"], method="lattice"))
    t_big6, _ = best_of(lambda: simulate_ar(big, SEQ_RULES, method="lattice"), repeat=1)
    v = res["rules"][0]
    rows.append(
        (
            "lattice V=32000 T=4096, vespo",
            f"{t_big:.2f} s",
            f"goal < 2 s; E_phi={v['E_phi']:.4g}, var_trace={v['var_trace']:.4g}, "
            f"log E[W^2]={res['summary']['log_E_W2']:.4g}",
        )
    )
    rows.append(("lattice V=32000 T=4096, 6 seq rules", f"{t_big6:.2f} s", ""))

    # 3. Monte Carlo throughput vs the raw fill rate: the same generator filling the same
    #    cache-sized block the sampler uses, as many numbers as the sampler draws. The
    #    contenders are timed round-robin (best of --rounds) on this thread's CPU clock, so that
    #    load from other processes on a shared machine neither inflates one of them nor
    #    falls on the fill rate and the samplers at different times.
    now = CLOCKS[args.clock]
    rng = np.random.default_rng(0)
    n, T, block = 1 << 16, 64, 1 << 14
    buf = np.empty(block)

    def fill():
        for _ in range(n * T // block):
            rng.random(out=buf)

    table = alias_table(np.exp(make_ar_model(ARConfig(V=32000, T=1)).log_mu))
    tok = np.empty(block, dtype=np.int64)
    bits = rng.bit_generator

    def tokens_only():
        for _ in range(n * T // block):
            sample_tokens(table, None, bits.random_raw(block), out=tok, bits=bits)

    contenders = {"fill": fill, "tokens": tokens_only}
    batches = (
        (32000, "context-free", "tokens + log-ratios + batch"),
        (64, "markov", "tokens + states + log-ratios + batch"),
    )
    for V, policy, _ in batches:
        m = make_ar_model(ARConfig(V=V, T=T, policy=policy, staleness=1))
        contenders[policy] = lambda m=m: sample_sequences(m, n, rng)
    best = {k: float("inf") for k in contenders}
    for _ in range(args.rounds):
        for k, fn in contenders.items():
            t0 = now()
            fn()
            best[k] = min(best[k], now() - t0)
    fill_rate = n * T / best["fill"]
    rate = n * T / best["tokens"]
    rows.append(
        (
            "MC tokens only (alias), V=32000",
            f"{rate / 1e6:.1f} M tok/s",
            f"{100 * rate / fill_rate:.0f}% of fill rate (goal >= 25%)",
        )
    )
    for V, policy, note in batches:
        rate = n * T / best[policy]
        rows.append(
            (
                f"MC sample_sequences V={V} T={T} {policy}",
                f"{rate / 1e6:.1f} M tok/s",
                f"{100 * rate / fill_rate:.0f}% of fill rate ({note})",
            )
        )
    rows.append(
        (
            "raw fill rate rng.random (float64)",
            f"{fill_rate / 1e6:.1f} M num/s",
            f"{args.clock} clock",
        )
    )

    w = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'benchmark':<{w[0]}}  {'time / rate':<{w[1]}}  note")
    print(f"{'-' * w[0]}  {'-' * w[1]}  {'-' * w[2]}")
    for r in rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]}")


if __name__ == "__main__":
    main()
