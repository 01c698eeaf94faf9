"""The long-response study of docs/lm.md: run the lm_long sweeps, write their tables and blocks.

    python scripts/regen_lm_long.py --name lm_long_fast --run --jobs 2   # sweep, then render
    python scripts/regen_lm_long.py --name lm_long_fast                  # render an existing sweep
    python scripts/regen_lm_long.py --bench                              # sampling throughput

``--run`` runs ``vespo sweep configs/<name>.json --out <work>/<name> --n-jobs <jobs>`` (resumable:
rerunning it continues an interrupted sweep; the warm start and the runs are cached in the user
cache folder, or ``--cache-dir``). Rendering reads ``<work>/<name>/results.csv``, writes
``docs/lm_long/<name>.results.csv`` (one row per run) and ``docs/lm_long/<name>.summary.csv``
(one row per rule and N) and rewrites the blocks of docs/lm.md between

    <!-- regen:<name> -->  ...  <!-- /regen -->

(``lm_long_fast`` also rewrites ``lm_long_warm``: the warm start's figures, from its cache
sidecar). ``--bench`` measures sampling throughput at T = 1,024 on one thread and rewrites
``lm_long_bench`` and ``lm_long_gpu_plan`` (``--gpu-plan``: only the latter; the dry-run plan
of benchmarks/gpu_validate.py). Nothing between the markers is typed by hand. The same render
functions are the jobs ``lm_long_fast``, ``lm_long`` and ``lm_long_bench`` of
scripts/regen_lm_docs.py.

Statistics (protocol in docs/lm.md, "Long responses"): per rule and N the mean over seeds of the
final held-out success with a two-sided 95 % Student-t interval (n - 1 degrees of freedom); per
N and rule the paired difference VESPO minus that rule over the same seeds, with its 95 %
t interval. Exit status 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "lm.md"
TABLES = REPO / "docs" / "lm_long"
NAMES = ("lm_long_fast", "lm_long", "lm_long_fast_lowlr")
RULE_ORDER = ("vespo", "ppo_clip", "gspo", "sapo")


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _true(v) -> bool:
    return str(v).lower() in ("true", "1")


def t_interval(xs: list[float]) -> tuple[float, float, float]:
    """(mean, lower, upper): the two-sided 95 % Student-t interval of the mean (float64); the
    study's own (:func:`simulations.lm.study.t_interval`).

    >>> [round(v, 3) for v in t_interval([0.0, 1.0, 2.0])]
    [1.0, -1.484, 3.484]
    """
    sys.path.insert(0, str(REPO))
    from simulations.lm.study import t_interval as study_t_interval

    return study_t_interval(xs)


def _ci(xs) -> str:
    m, lo, hi = t_interval(xs)
    return f"{m:.3f}" if not math.isfinite(lo) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def summarise(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(summary rows per rule and N, paired VESPO-minus-rule rows per N and rule)."""
    by = defaultdict(list)
    for r in rows:
        by[(r["rule"], int(r["staleness"]))].append(r)
    rules = [x for x in RULE_ORDER if any(k[0] == x for k in by)]
    rules += sorted({k[0] for k in by} - set(rules))
    ns = sorted({k[1] for k in by})
    summary, paired = [], []
    for rule in rules:
        for n in ns:
            rs = sorted(by.get((rule, n), []), key=lambda r: int(r["seed"]))
            if not rs:
                continue
            fin = [float(r["final_heldout"]) for r in rs]
            m, lo, hi = t_interval(fin)
            best = [float(r["best_heldout"]) for r in rs]
            summary.append(
                {
                    "rule": rule,
                    "N": n,
                    "seeds": " ".join(r["seed"] for r in rs),
                    "initial_heldout": float(rs[0]["initial_heldout"]),
                    "final_mean": m,
                    "final_ci_lo": lo,
                    "final_ci_hi": hi,
                    "finals": " ".join(f"{x:.3f}" for x in fin),
                    "best_mean": math.fsum(best) / len(best),
                    "collapsed": sum(_true(r["collapsed"]) for r in rs),
                    "runs": len(rs),
                    "mean_ess_frac": math.fsum(float(r["mean_ess_frac"]) for r in rs) / len(rs),
                    "max_abs_log_w": max(
                        max(abs(float(r["max_log_w"])), float(r["mean_abs_log_w"])) for r in rs
                    ),
                    "mean_response_length": math.fsum(float(r["mean_response_length"]) for r in rs)
                    / len(rs),
                }
            )
    for n in ns:
        base = {int(r["seed"]): float(r["final_heldout"]) for r in by.get(("vespo", n), [])}
        for rule in rules:
            if rule == "vespo":
                continue
            other = {int(r["seed"]): float(r["final_heldout"]) for r in by.get((rule, n), [])}
            seeds = sorted(set(base) & set(other))
            if not seeds:
                continue
            d = [base[s] - other[s] for s in seeds]
            m, lo, hi = t_interval(d)
            paired.append(
                {"N": n, "rule": rule, "seeds": len(seeds), "diff": m, "lo": lo, "hi": hi}
            )
    return summary, paired


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)


def _md(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _mins(s: float) -> str:
    return f"{int(s // 60)} min {int(s % 60)} s" if s >= 60 else f"{s:.0f} s"


def _code() -> dict:
    from simulations.lm.rl import RL_RECIPE
    from simulations.lm.sft import code_identity

    return code_identity(rl_recipe=RL_RECIPE)


def render_sweep(name: str, out: Path, info: dict | None, cache: Path | None = None) -> dict:
    """The blocks of ``name`` from the sweep in ``out`` (and writes the two CSV tables).

    ``cache``: the cache folder the sweep used (default: :func:`vespo_theory.cache.cache_dir`).
    """
    rows = _rows(out / "results.csv")
    summary, paired = summarise(rows)
    keep = [
        "rule",
        "staleness",
        "seed",
        "initial_heldout",
        "final_heldout",
        "best_heldout",
        "collapsed",
        "collapse_step",
        "mean_ess_frac",
        "mean_abs_log_w",
        "max_log_w",
        "mean_response_length",
        "final_reward",
        "mean_clip_frac",
    ]
    _write_csv(TABLES / f"{name}.results.csv", [{k: r[k] for k in keep} for r in rows])
    _write_csv(TABLES / f"{name}.summary.csv", summary)
    code = _code()
    how = (
        f"_Generated by `python scripts/regen_lm_long.py --name {name}` from "
        f"`vespo sweep configs/{name}.json`: {len(rows)} runs"
    )
    if info:
        how += f", sweep wall time {_mins(info['wall_s'])} with `--n-jobs {info['jobs']}`"
    how += (
        f"; commit {str(code['git_sha'])[:12]}, torch {code['torch']}, recipes sft "
        f"{code['sft_recipe']} / rl {code['rl_recipe']}. Tables: "
        f"`docs/lm_long/{name}.summary.csv`, `docs/lm_long/{name}.results.csv`._"
    )
    seeds = sorted({int(r["seed"]) for r in rows})
    table = _md(
        [
            "rule",
            "N",
            "final held-out, mean [95 % CI]",
            "finals (seeds " + ", ".join(map(str, seeds)) + ")",
        ]
        + ["best (mean)", "collapsed", "ESS/B (run mean)", "mean response length"],
        [
            [s["rule"], s["N"], _ci([float(x) for x in s["finals"].split()]), s["finals"]]
            + [f"{s['best_mean']:.3f}", f"{s['collapsed']}/{s['runs']}"]
            + [f"{s['mean_ess_frac']:.3f}", f"{s['mean_response_length']:.0f}"]
            for s in summary
        ],
    )
    ptable = _md(
        ["N", "VESPO minus", "seeds", "mean difference [95 % CI]", "excludes 0"],
        [
            [p["N"], p["rule"], p["seeds"]]
            + [
                f"{p['diff']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}]"
                if math.isfinite(p["lo"])
                else f"{p['diff']:+.3f}"
            ]
            + [
                (
                    "yes (VESPO higher)"
                    if p["lo"] > 0
                    else "yes (VESPO lower)"
                    if p["hi"] < 0
                    else "no"
                )
                if math.isfinite(p["lo"])
                else "n/a"
            ]
            for p in paired
        ],
    )
    init = sorted({float(r["initial_heldout"]) for r in rows})
    lengths = [float(r["mean_response_length"]) for r in rows]
    by_n = defaultdict(list)
    for r in rows:
        by_n[int(r["staleness"])].append(r)
    offp = "; ".join(
        f"N = {n}: run-mean ESS/B {min(float(r['mean_ess_frac']) for r in rs):.2f}-"
        f"{max(float(r['mean_ess_frac']) for r in rs):.2f}, run mean of |mini-batch mean "
        f"log W| up to {max(float(r['mean_abs_log_w']) for r in rs):.3g} nats, largest "
        f"sequence log W {max(float(r['max_log_w']) for r in rs):.3g} nats"
        for n, rs in sorted(by_n.items())
    )
    n_coll = sum(_true(r["collapsed"]) for r in rows)
    sig = [p for p in paired if math.isfinite(p["lo"]) and (p["lo"] > 0 or p["hi"] < 0)]
    facts = (
        f"Held-out success at step 0: {', '.join(f'{x:.3f}' for x in init)} (shared warm start). "
        f"Run-mean response length {min(lengths):.0f}-{max(lengths):.0f} tokens. {offp}. "
        f"Collapsed runs: {n_coll} of {len(rows)}. Paired differences whose 95 % interval "
        f"excludes 0: "
        + (
            ", ".join(f"N = {p['N']} vs `{p['rule']}` ({p['diff']:+.3f})" for p in sig)
            if sig
            else "none"
        )
        + "."
    )
    body = how + "\n\n" + table + "\n\n" + ptable + "\n\n" + facts
    blocks = {name: body}
    if name == "lm_long_fast":
        blocks["lm_long_warm"] = render_warm(rows, cache)
    return blocks


def render_warm(rows: list[dict], cache: Path | None = None) -> str:
    """The warm start's figures from its cache sidecar (held-out success, training time)."""
    from dataclasses import fields

    from simulations.lm.rl import LMRunConfig
    from simulations.lm.sft import sft_cache_key
    from vespo_theory.cache import cache_dir

    names = {f.name for f in fields(LMRunConfig)}
    cfg = LMRunConfig(**{k: _parse(v) for k, v in rows[0].items() if k in names and v != ""})
    key, _ = sft_cache_key(cfg.sft_config())
    side = cache_dir(cache) / "lm_sft" / f"{key}.json"
    if not side.exists():
        return f"_The warm start's sidecar {side.name} is not in this cache folder._"
    meta = json.loads(side.read_text())
    sft = cfg.sft_config()
    return (
        f"Warm start of `count-long` ({sft.steps} AdamW steps, batch {sft.batch_size}, lr "
        f"{sft.lr:g}, seed {sft.seed}, attention `{sft.attn}`): greedy held-out success "
        f"{meta['heldout_success']:.3f} on 256 prompts; trained in "
        f"{_mins(float(meta.get('wall_time_s', math.nan)))} on one thread of the shared 2-core "
        f"machine (other jobs running; the time includes the greedy evaluation of the 256 "
        f"held-out prompts), commit {str(meta['code']['git_sha'])[:12]}. "
        f"_Generated by `python scripts/regen_lm_long.py --name lm_long_fast` from the cache "
        f"sidecar `lm_sft/{key}.json`._"
    )


def _cfg(row: dict):
    from dataclasses import fields

    from simulations.lm.rl import LMRunConfig

    names = {f.name for f in fields(LMRunConfig)}
    return LMRunConfig(**{k: _parse(v) for k, v in row.items() if k in names and v != ""})


def estimate_default(fast_out: Path, cache: Path | None = None) -> str:
    """The "not run" block of ``lm_long``: its cost extrapolated from the fast sweep's runs.

    Each fast run's sidecar holds its wall time; per optimizer step that time is scaled to the
    default config's steps and sequences per step. Two bounds: decoding is sequential in the
    response length, so a step of twice the sequences costs between 1x (batch-bound by the
    per-token overhead) and 2x (bound by arithmetic) the time of a fast step.
    """
    from simulations.lm.rl import run_key
    from vespo_theory.cache import cache_dir

    rows = _rows(fast_out / "results.csv")
    per_step = []
    for r in rows:
        cfg = _cfg(r)
        side = cache_dir(cache) / "lm_runs" / run_key(cfg)[:16] / "metrics.json"
        if side.exists():
            meta = json.loads(side.read_text())
            seqs = cfg.prompts_per_step * cfg.group_size
            per_step.append((float(meta["wall_time_s"]) / cfg.steps, seqs))
    if not per_step:
        return "_Not run; no fast runs to extrapolate from._"
    import itertools

    from simulations.lm.rl import LMRunConfig

    default = json.loads((REPO / "configs" / "lm_long.json").read_text())
    base, grid = default["base"], default["grid"]
    cells = len(grid["rule"]) * len(grid["staleness"]) * len(grid["seed"])
    measured = []  # default-grid runs already finished in the cache (e.g. one timing cell)
    for rule, n, seed in itertools.product(grid["rule"], grid["staleness"], grid["seed"]):
        cfg = LMRunConfig(**base, rule=rule, staleness=n, seed=seed)
        side = cache_dir(cache) / "lm_runs" / run_key(cfg)[:16] / "metrics.json"
        if side.exists():
            meta = json.loads(side.read_text())
            if meta.get("summary", {}).get("complete"):
                summ = meta["summary"]
                measured.append(
                    (rule, n, seed, float(meta["wall_time_s"]), summ["final_heldout"], summ)
                )
    timed = ""
    if measured:
        mean = math.fsum(m[3] for m in measured) / len(measured)
        timed = (
            f" Measured: {len(measured)} run(s) of the default grid finished in the cache ("
            + ", ".join(f"`{r}` N = {n} seed {sd}: {_mins(w)}" for r, n, sd, w, *_ in measured)
            + f"), so the {cells} runs would take about {mean * cells / 2 / 3600:.1f} h with "
            f"`--n-jobs 2` on this machine (the mean run's time x {cells} / 2)."
        )
        timed += " " + _partial(measured)
    t_step = math.fsum(t for t, _ in per_step) / len(per_step)
    ratio = base["prompts_per_step"] * base["group_size"] / per_step[0][1]
    lo = t_step * base["steps"] * cells / 2
    hi = lo * ratio
    return (
        f"_Not run in this session (time). Estimated cost, extrapolated from the {len(per_step)} "
        f"fast runs (mean {t_step:.1f} s of wall time per optimizer step, evaluations "
        f"included, on the shared 2-core machine with other jobs running): {cells} runs x "
        f"{base['steps']} steps at {ratio:g}x the sequences per step, with `--n-jobs 2`: "
        f"{lo / 3600:.1f}-{hi / 3600:.1f} h.{timed} Generated by `python "
        f"scripts/regen_lm_long.py --name lm_long` while `outputs/lm_long/lm_long/results.csv` "
        f"does not exist._"
    )


def _partial(measured) -> str:
    """Final held-out of the finished default-grid runs, and VESPO-minus-rule paired
    differences (95 % t interval) where both rules have the same N and at least 2 seeds."""
    parts = [
        f"`{r}` N = {n} seed {sd}: {f:.3f}"
        + (f" (collapsed at step {sm['collapse_step']})" if sm.get("collapsed") else "")
        for r, n, sd, _, f, sm in sorted(measured, key=lambda m: (m[1], m[0], m[2]))
    ]
    init = sorted({round(float(m[5]["initial_heldout"]), 6) for m in measured})
    text = (
        f"Held-out success at step 0 on the default grid's held-out prompts: "
        f"{', '.join(f'{x:.3f}' for x in init)}. "
    )
    text += "Final held-out of these runs (a partial grid, not the protocol's full comparison): "
    text += "; ".join(parts) + "."
    fin = {(r, n, sd): f for r, n, sd, _, f, _ in measured}
    for n in sorted({m[1] for m in measured}):
        for rule in RULE_ORDER[1:]:
            seeds = sorted(
                sd for (r, nn, sd) in fin if r == "vespo" and nn == n and (rule, n, sd) in fin
            )
            if len(seeds) >= 2:
                d = [fin[("vespo", n, sd)] - fin[(rule, n, sd)] for sd in seeds]
                m, lo, hi = t_interval(d)
                text += (
                    f" Paired VESPO minus `{rule}` at N = {n} over seeds "
                    f"{', '.join(map(str, seeds))}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}] (95 % t)."
                )
    return text


def _parse(v: str):
    for f in (int, float):
        try:
            return f(v)
        except ValueError:
            pass
    return None if v == "None" else v


def bench(threads: int = 1) -> list[dict]:
    """Sampling throughput at T = 1,024 new tokens (no early stop), one thread, both attentions."""
    import torch

    from simulations.lm.model import GPT, GPTConfig
    from simulations.lm.sampling import generate, left_pad
    from simulations.lm.tokenizer import CharTokenizer

    tok = CharTokenizer()
    torch.set_num_threads(threads)
    out = []
    for attn in ("explicit", "sdpa"):
        for B in (16, 64):
            torch.manual_seed(0)
            m = GPT(GPTConfig(tok.vocab_size, 64, 2, 4, 1544, attn)).eval()
            ids, mask = left_pad([[tok.bos_id, *tok.encode("|200>")]] * B, tok.pad_id, "cpu")
            g = torch.Generator().manual_seed(0)
            t0 = time.time()
            # eos_id -1 is no token: every row runs the full 1,024 steps
            r = generate(m, ids, mask, 1024, eos_id=-1, pad_id=tok.pad_id, generator=g)
            dt = time.time() - t0
            n = int(r.response_mask.sum())
            out.append({"attn": attn, "batch": B, "tokens": n, "seconds": dt, "tok_s": n / dt})
            print(f"sampling attn={attn} batch={B} T=1024: {n / dt:,.0f} tokens/s", flush=True)
    return out


def render_bench(res: list[dict]) -> str:
    code = _code()
    body = _md(
        ["attention", "batch", "tokens/s", "seconds for the batch"],
        [[r["attn"], r["batch"], f"{r['tok_s']:,.0f}", f"{r['seconds']:.1f}"] for r in res],
    )
    return (
        "`device cpu, threads 1, 1,024 new tokens per row (no early stop), d_model 64, "
        "2 layers, 4 heads, randomly initialised`\n\n"
        + body
        + f"\n\n_Generated by `python scripts/regen_lm_long.py --bench`: commit "
        f"{str(code['git_sha'])[:12]}, torch {code['torch']}; the shared 2-core machine, other "
        f"jobs running (machine-dependent)._"
    )


def render_gpu_plan() -> str:
    """What benchmarks/gpu_validate.py --dry-run prints for the GPU preset and for --tiny."""
    plans = []
    for extra in ([], ["--tiny"]):
        proc = subprocess.run(
            [sys.executable, "benchmarks/gpu_validate.py", "--dry-run", "--out", "-", *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        plans.append(proc.stdout.split("; settings")[0].strip())
    return (
        "The plan printed by `python benchmarks/gpu_validate.py --dry-run` (GPU preset) and "
        "with `--tiny`:\n\n"
        + "\n".join(f"* `{x}`" for x in plans)
        + "\n\n_Generated by `python scripts/regen_lm_long.py --gpu-plan` (no GPU needed)._"
    )


def run_sweep(name: str, out: Path, jobs: int) -> dict:
    cmd = [sys.executable, "-m", "vespo_theory.cli", "sweep", f"configs/{name}.json"]
    cmd += ["--out", str(out), "--n-jobs", str(jobs), "--no-progress", "--quiet"]
    print(f"running: vespo {' '.join(cmd[3:])}", flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: the sweep exited {proc.returncode}")
    info = {"wall_s": time.time() - t0, "jobs": jobs, "code": _code()}
    (out / "regen_long.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"  done in {_mins(info['wall_s'])}", flush=True)
    return info


def rewrite(docs: Path, blocks: dict[str, str]) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from regen_lm_docs import replace_block

    text = docs.read_text()
    for marker, body in blocks.items():
        text = replace_block(text, marker, body)
    docs.write_text(text)
    print(f"rewrote {', '.join(blocks)} in {docs}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", choices=NAMES, default=None, help="the sweep to render")
    ap.add_argument("--run", action="store_true", help="run (or resume) the sweep first")
    ap.add_argument("--jobs", type=int, default=2, help="parallel sweep cells (--n-jobs; 2)")
    ap.add_argument("--work", default="outputs/lm_long", help="the sweeps' output folder")
    ap.add_argument("--bench", action="store_true", help="measure sampling throughput")
    ap.add_argument("--docs", default=str(DOCS), help="the Markdown file to rewrite")
    ap.add_argument("--print-only", action="store_true", help="print, rewrite nothing")
    ap.add_argument("--gpu-plan", action="store_true", help="the GPU script's plan block")
    args = ap.parse_args(argv)
    try:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {args.jobs}")
        docs = Path(args.docs)
        if not docs.is_file():
            raise ValueError(f"--docs: {str(docs)!r} is not a file")
        if args.name is None and not args.bench and not args.gpu_plan:
            raise ValueError("--name, --bench or --gpu-plan: nothing to do")
        blocks = {}
        if args.bench:
            res = bench()
            if args.print_only:
                print("BENCH_JSON " + json.dumps(res))
                return 0
            blocks["lm_long_bench"] = render_bench(res)
            blocks["lm_long_gpu_plan"] = render_gpu_plan()
        if args.gpu_plan:
            blocks["lm_long_gpu_plan"] = render_gpu_plan()
        if args.name:
            out = Path(args.work) / args.name
            info = run_sweep(args.name, out, args.jobs) if args.run else None
            if info is None and (out / "regen_long.json").exists():
                info = json.loads((out / "regen_long.json").read_text())
            fast = Path(args.work) / "lm_long_fast"
            if (
                args.name == "lm_long"
                and not (out / "results.csv").exists()
                and (fast / "results.csv").exists()
            ):
                blocks["lm_long"] = estimate_default(fast)
            elif not (out / "results.csv").exists():
                raise ValueError(f"--work: no {out / 'results.csv'} (run with --run first)")
            else:
                blocks |= render_sweep(args.name, out, info)
        rewrite(docs, blocks)
    except ValueError as exc:
        print(f"regen_lm_long: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"regen_lm_long: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
