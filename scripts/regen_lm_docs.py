"""Regenerate every number docs/lm.md quotes by running the commands it names.

    python scripts/regen_lm_docs.py                      # everything (~45 min on 2 cores, --jobs 2,
                                                         # plus hours for the lm_long* jobs)
    python scripts/regen_lm_docs.py --only lm_compare_fast --only lm_smoke --jobs 2
    python scripts/regen_lm_docs.py --list               # the jobs, their commands and markers

Each job runs one command of docs/lm.md (``vespo sweep configs/lm_*.json`` or ``vespo
train-lm ...``) into a fresh folder ``<work>/<job>/`` (deleted first) with a FRESH cache
(``VESPO_CACHE_DIR=<work>/<job>/cache``: the warm start is trained again, no run is reused;
except ``validate_fast``, whose 18-minute long-task warm start is copied from the user cache,
keyed by everything that fixes its weights, and says so in its block), reads the CSVs it
wrote and rewrites the blocks of docs/lm.md between

    <!-- regen:MARKER -->
    ...
    <!-- /regen -->

Tables and the sentences that quote numbers are generated; nothing between markers is typed by
hand. A job's folder holds ``regen.json`` (the code that made it); the pooled table of
``lm_compare_seeds`` reads ``lm_compare``'s results, which are rerun unless ``<work>/lm_compare``
was made by the same clean commit and recipes. Prints each command and its wall time.
Exit status 2 with one line on bad input (an unknown job, a docs file without its markers).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vespo_theory.jsonio import dump_json

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "lm.md"
STAMP = "regen.json"
END = "<!-- /regen -->"


def begin(marker: str) -> str:
    return f"<!-- regen:{marker} -->"


# ----------------------------------------------------------------------------- the jobs


@dataclass(frozen=True)
class Job:
    name: str
    argv: tuple[str, ...]  # after "vespo"; {out} is the job's output folder, {jobs} --jobs
    markers: tuple[str, ...]
    needs: tuple[str, ...] = ()
    est: str = ""  # the wall time docs/lm.md last stated (2-core machine, --n-jobs 2)
    sweep: bool = field(default=False)
    script: bool = field(default=False)  # argv is a Python script of the repo, not a vespo command
    # copy the user cache's warm starts into the job's fresh cache first (their key fixes their
    # weights), for jobs whose warm start takes far longer than the job itself
    warm_from_cache: bool = field(default=False)

    def command(self, out: Path, jobs: int) -> list[str]:
        return [a.format(out=out, jobs=jobs) for a in self.argv]


def _sweep(name: str, markers: tuple[str, ...], est: str, needs=()) -> Job:
    argv = ("sweep", f"configs/{name}.json", "--out", "{out}", "--n-jobs", "{jobs}")
    argv += ("--no-progress", "--quiet")
    return Job(name, argv, markers, tuple(needs), est, sweep=True)


JOBS: dict[str, Job] = {
    j.name: j
    for j in (
        _sweep("lm_compare_fast", ("lm_compare_fast", "warm_start"), "2 min 35 s"),
        Job(
            "lm_smoke",
            ("train-lm", "--fast", "--device", "cpu", "--out", "{out}/run", "--no-progress"),
            ("lm_smoke",),
            est="15 s",
        ),
        _sweep("lm_compare", ("lm_compare", "lm_compare_facts", "offpolicy"), "24 min 8 s"),
        _sweep("lm_compare_async", ("lm_compare_async",), "4 min 41 s"),
        _sweep("lm_compare_stress", ("lm_compare_stress",), "8 min 56 s"),
        _sweep("lm_compare_agg", ("lm_compare_agg",), "3 min 16 s"),
        _sweep("lm_compare_seeds", ("lm_compare_seeds",), "2 min 43 s", needs=("lm_compare",)),
        Job(
            "bench_lm",
            ("benchmarks/bench_lm.py",),
            ("bench_lm",),
            est="8 s",
            script=True,
        ),
        # the long-response study (docs/lm.md "Long responses"; render: scripts/regen_lm_long.py)
        _sweep("lm_long_fast", ("lm_long_fast", "lm_long_warm"), "not yet measured"),
        _sweep("lm_long", ("lm_long",), "not yet measured"),
        _sweep("lm_long_fast_lowlr", ("lm_long_fast_lowlr",), "not yet measured"),
        Job(
            "lm_long_bench",
            ("scripts/regen_lm_long.py", "--bench", "--print-only"),
            ("lm_long_bench", "lm_long_gpu_plan"),
            est="3 min",
            script=True,
        ),
        # the gradient-level bound (docs/lm.md "The bound at the gradient level")
        Job(
            "validate_fast",
            ("validate-bound", "--fast", "--out", "{out}/v", "--no-progress"),
            ("validate_fast",),
            est="3 min (warm start from the user cache)",
            warm_from_cache=True,
        ),
        # how much routing flips inflate Var(log W) (docs/lm.md, the S5 protocol)
        Job(
            "moe_routing",
            ("-m", "simulations.lm.moe"),
            ("moe_routing",),
            est="50 s",
            script=True,
        ),
        Job(
            "bench_grads",
            ("benchmarks/bench_per_sample_grads.py",),
            ("bench_grads",),
            est="40 s",
            script=True,
        ),
        Job(
            "lm_measure",
            (
                "train-lm",
                "--measure",
                "--steps",
                "64",
                "--staleness",
                "16",
                "--rule",
                "vespo",
                "--device",
                "cpu",
                "--out",
                "{out}/m",
                "--measure-prompts",
                "128",
                "--samples-per-prompt",
                "4",
                "--no-progress",
            ),
            ("lm_measure",),
            est="25 s",
        ),
    )
}


# --------------------------------------------------------------------- docs block editing


def replace_block(text: str, marker: str, body: str) -> str:
    """``text`` with the block of ``marker`` replaced by ``body``; ValueError if the marker is
    missing, repeated or unterminated. The body and the end marker take the indentation of the
    begin marker's line (blocks inside list items stay inside them)."""
    b = begin(marker)
    n = text.count(b)
    if n != 1:
        raise ValueError(f"docs: marker {b!r} found {n} times (need exactly 1)")
    at = text.index(b)
    line_start = text.rfind("\n", 0, at) + 1
    indent = text[line_start:at]
    if indent.strip():
        raise ValueError(f"docs: marker {b!r} must start its line")
    i = at + len(b)
    j = text.find(END, i)
    if j < 0:
        raise ValueError(f"docs: marker {b!r} has no {END!r} after it")
    lines = body.strip("\n").split("\n")
    inner = "\n".join((indent + ln) if ln else "" for ln in lines)
    return text[:i] + "\n" + inner + "\n" + indent + text[j:]


def read_block(text: str, marker: str) -> str:
    """The current body of ``marker``'s block (stripped)."""
    b = begin(marker)
    if text.count(b) != 1:
        raise ValueError(f"docs: marker {b!r} must occur exactly once")
    i = text.index(b) + len(b)
    j = text.find(END, i)
    if j < 0:
        raise ValueError(f"docs: marker {b!r} has no {END!r} after it")
    return text[i:j].strip()


# ----------------------------------------------------------------------------- renderers


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _f3(x) -> str:
    return f"{float(x):.3f}"


def _md(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _is_true(v) -> bool:
    return str(v) in ("True", "true", "1")


def _mins(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def _sha(code: dict) -> str:
    s = str(code.get("git_sha"))
    return s[:12] + ("-dirty" if s.endswith("-dirty") else "")


def _provenance(job: Job, info: dict, n_runs: int | None) -> str:
    runs = f"{n_runs} runs, " if n_runs is not None else ""
    jobs = f" with `--n-jobs {info['jobs']}`" if job.sweep else ""
    return (
        f"_Generated by `python scripts/regen_lm_docs.py --only {job.name}`: {runs}wall time "
        f"{_mins(info['wall_s'])}"
        + (f" (CPU time {_mins(info['cpu_s'])})" if info.get("cpu_s") is not None else "")
        + f"{jobs}"
        + (
            " with the warm start copied from the user cache (not trained in this time)"
            if job.warm_from_cache
            else ("" if job.script else " from an empty cache (warm start trained first)")
        )
        + ", "
        f"commit {_sha(info['code'])}, torch {info['code']['torch']}, "
        f"recipes sft {info['code']['sft_recipe']} / rl {info['code']['rl_recipe']}._"
    )


def render_fast(job, out, info, work) -> dict[str, str]:
    from simulations.lm.report import comparison_rows

    rows = _rows(out / "results.csv")
    table = comparison_rows(rows)
    body = _md(
        ["rule", "N", "initial", "final", "best", "collapsed", "ESS/B (run mean)"],
        [
            [t["rule"], t["staleness"], t["initial"], t["final"], t["best"], t["collapsed"]]
            + [t["ess_frac"]]
            for t in table
        ],
    )
    sft = [json.loads(p.read_text()) for p in sorted((out / "cache" / "lm_sft").glob("*.json"))]
    if len(sft) != 1:
        raise ValueError(f"{job.name}: expected one warm start in the cache, found {len(sft)}")
    initial = sorted({_f3(r["initial_heldout"]) for r in rows})
    warm = (
        f"Greedy held-out success {sft[0]['heldout_success']:.3f} (256 prompts) / "
        f"{', '.join(initial)} (the 128 RL held-out prompts); trained in "
        f"{sft[0]['wall_time_s']:.0f} s here (SFT recipe {sft[0]['code']['sft_recipe']}, "
        f"torch {sft[0]['code']['torch']}, commit {_sha(sft[0]['code'])})."
    )
    return {
        "lm_compare_fast": _provenance(job, info, len(rows)) + "\n\n" + body,
        "warm_start": warm,
    }


def render_smoke(job, out, info, work) -> dict[str, str]:
    line = next(ln for ln in info["stdout"].splitlines() if "held-out success" in ln)
    cmd = "vespo " + " ".join(job.command(Path("outputs/lm/smoke"), 0)).replace("/run", "")
    body = f"```\n$ {cmd}\n{line}\n```\n\n" + _provenance(job, info, None)
    return {"lm_smoke": body}


def _by(rows, *keys):
    """Rows grouped by ``keys`` (a scalar key for one key, a tuple for more)."""
    g = defaultdict(list)
    for r in rows:
        g[r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys)].append(r)
    return g


def render_compare(job, out, info, work) -> dict[str, str]:
    from simulations.lm.report import comparison_rows

    rows = _rows(out / "results.csv")
    table = comparison_rows(rows)
    body = _md(
        ["rule", "N", "final held-out", "best held-out", "collapsed", "collapse steps"]
        + ["ESS/B (run mean)"],
        [
            [t["rule"], t["staleness"], t["final"], t["best"], t["collapsed"]]
            + [t["collapse_steps"], t["ess_frac"]]
            for t in table
        ],
    )
    initial = sorted({_f3(r["initial_heldout"]) for r in rows})
    head = (
        _provenance(job, info, len(rows))
        + f"\n\nHeld-out success at step 0: {', '.join(initial)} (shared warm start). "
        "Mean ± standard deviation over the seeds."
    )
    # generated comparison sentences: per rule, the mean final at each N and the collapses
    facts = []
    g = _by(rows, "rule")
    for rule in sorted(g):
        rs = g[rule]
        per_n = _by(rs, "staleness")
        ns = sorted(per_n, key=int)
        finals = ", ".join(
            f"{_mean([float(r['final_heldout']) for r in per_n[n]]):.3f} (N = {n})" for n in ns
        )
        coll = [r for r in rs if _is_true(r["collapsed"])]
        where = (
            " (" + ", ".join(f"N = {r['staleness']} step {r['collapse_step']}" for r in coll) + ")"
            if coll
            else ""
        )
        facts.append(
            f"* `{rule}`: mean final held-out {finals}; {len(coll)} of {len(rs)} runs "
            f"collapsed{where}."
        )
    drops = []
    for rule in sorted(g):
        per_n = _by(g[rule], "staleness")
        lo, hi = min(per_n, key=int), max(per_n, key=int)
        m_lo = _mean([float(r["final_heldout"]) for r in per_n[lo]])
        m_hi = _mean([float(r["final_heldout"]) for r in per_n[hi]])
        drops.append((m_lo - m_hi, rule, lo, hi, m_lo, m_hi))
    drops.sort(reverse=True)
    facts.append(
        "* Change of the mean final held-out from the smallest to the largest N, largest drop "
        "first: "
        + "; ".join(f"`{r}` {a:.3f} -> {b:.3f} ({-d:+.3f})" for d, r, _, _, a, b in drops)
        + f". One run's value has a binomial standard error of about "
        f"{math.sqrt(0.4 * 0.6 / 128):.2f} (128 prompts, success ~0.4)."
    )
    return {
        "lm_compare": head + "\n\n" + body,
        "lm_compare_facts": "\n".join(facts),
        "offpolicy": _offpolicy(out, rows),
    }


def _offpolicy(out: Path, rows: list[dict]) -> str:
    """Off-policy diagnostics over the stale mini-batches of the runs of the grid."""
    by_n: dict[int, list[dict]] = defaultdict(list)
    for d in sorted((out / "cache" / "lm_runs").iterdir()):
        cfg = json.loads((d / "config.json").read_text())
        by_n[int(cfg["staleness"])] += _rows(d / "metrics.csv")
    parts = []
    for n in sorted(by_n):
        mb = by_n[n]
        if n == 1:
            lw = max(max(abs(float(r["log_w_min"])), abs(float(r["log_w_max"]))) for r in mb)
            parts.append(f"at N = 1, max |log W| = {lw:.1e} (float32 rounding)")
            continue
        stale = [r for r in mb if int(r["staleness"]) > 0]
        std = [float(r["log_w_std"]) for r in stale]
        kh = [float(r["khat"]) for r in stale if r["khat"] not in ("", "nan")]
        kh = [k for k in kh if math.isfinite(k)]
        ess = [float(r["mean_ess_frac"]) for r in rows if int(r["staleness"]) == n]
        ess_min = min(float(r["ess_frac"]) for r in stale)
        parts.append(
            f"at N = {n} ({len(stale)} stale mini-batches): std of the sequence log W "
            f"{min(std):.2f}-{max(std):.2f} nats, run-mean ESS/B {min(ess):.2f}-{max(ess):.2f} "
            f"(single mini-batches down to {ess_min:.2f}), PSIS k-hat > 0.7 on "
            f"{100 * sum(k > 0.7 for k in kh) / max(1, len(kh)):.0f} % of them "
            f"(max {max(kh):.2f})"
        )
    return (
        "Over every run of `configs/lm_compare.json` (all rules, all seeds): "
        + "; ".join(parts)
        + "."
    )


def _mean(v):
    v = [x for x in v if math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


def _sd(v):
    m = _mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan


def render_async(job, out, info, work) -> dict[str, str]:
    from simulations.lm.report import comparison_rows

    rows = _rows(out / "results.csv")
    table = comparison_rows(rows)
    body = _md(
        ["rule", "correction", "final held-out", "best held-out", "collapsed"]
        + ["ESS/B (run mean)", "KL(sampler‖trainer) (run mean)"],
        [
            [t["rule"], t["correction"], t["final"], t["best"], t["collapsed"]]
            + [t["ess_frac"], t["kl_sampler"]]
            for t in table
        ],
    )
    return {"lm_compare_async": _provenance(job, info, len(rows)) + "\n\n" + body}


def _seed_list(rs, col) -> str:
    return ", ".join(_f3(r[col]) for r in sorted(rs, key=lambda r: int(r["seed"])))


def render_stress(job, out, info, work) -> dict[str, str]:
    from simulations.lm.report import comparison_rows

    rows = _rows(out / "results.csv")
    g = _by(rows, "rule", "staleness")
    seeds = sorted({int(r["seed"]) for r in rows})
    body = _md(
        ["rule", "N", f"final held-out (seeds {', '.join(map(str, seeds))})", "best held-out"]
        + ["collapsed", "collapse steps", "ESS/B (run mean)"],
        [
            [t["rule"], t["staleness"], _seed_list(g[(t["rule"], t["staleness"])], "final_heldout")]
            + [t["best"], t["collapsed"], t["collapse_steps"], t["ess_frac"]]
            for t in comparison_rows(rows)
        ],
    )
    return {"lm_compare_stress": _provenance(job, info, len(rows)) + "\n\n" + body}


def render_agg(job, out, info, work) -> dict[str, str]:
    rows = _rows(out / "results.csv")
    g = _by(rows, "rule")
    seeds = sorted({int(r["seed"]) for r in rows})

    def coll(rs):
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        return ", ".join(
            f"step {r['collapse_step']}" if _is_true(r["collapsed"]) else "no" for r in rs
        )

    s = ", ".join(map(str, seeds))
    body = _md(
        ["rule", f"final held-out (seeds {s})", f"best held-out (seeds {s})", "collapsed"],
        [
            [rule, _seed_list(g[rule], "final_heldout"), _seed_list(g[rule], "best_heldout")]
            + [coll(g[rule])]
            for rule in sorted(g)
        ],
    )
    return {"lm_compare_agg": _provenance(job, info, len(rows)) + "\n\n" + body}


def render_seeds(job, out, info, work) -> dict[str, str]:
    from scipy import stats

    new = _rows(out / "results.csv")
    base = _rows(work / "lm_compare" / "results.csv")
    n_max = {r["staleness"] for r in new}
    pooled = new + [
        r for r in base if r["staleness"] in n_max and r["rule"] in {x["rule"] for x in new}
    ]
    g = _by(pooled, "rule", "staleness")
    seeds = sorted({int(r["seed"]) for r in pooled})
    table, finals = [], {}
    for (rule, n), rs in sorted(g.items()):
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        f = [float(r["final_heldout"]) for r in rs]
        b = [float(r["best_heldout"]) for r in rs]
        finals[rule] = f
        c = sum(_is_true(r["collapsed"]) for r in rs)
        table.append(
            [rule, n, _seed_list(rs, "final_heldout"), f"{_mean(f):.3f} ± {_sd(f):.3f}"]
            + [f"{_mean(b):.3f} ± {_sd(b):.3f}", f"{c}/{len(rs)}"]
        )
    body = _md(
        ["rule", "N", f"finals (seeds {seeds[0]}-{seeds[-1]})", "final", "best", "collapsed"],
        table,
    )
    text = ""
    if "vespo" in finals and "ppo_clip" in finals:
        a, b = finals["vespo"], finals["ppo_clip"]
        t = stats.ttest_ind(a, b, equal_var=False)
        se = math.sqrt(_sd(a) ** 2 / len(a) + _sd(b) ** 2 / len(b))
        text = (
            f"\n\nMean final held-out, VESPO minus GRPO (`ppo_clip`): {_mean(a) - _mean(b):+.3f} "
            f"with a standard error of {se:.3f} (Welch t = {t.statistic:.2f}, two-sided "
            f"p = {t.pvalue:.2g}, {len(a)} and {len(b)} seeds)."
        )
    return {"lm_compare_seeds": _provenance(job, info, len(new)) + "\n\n" + body + text}


def render_measure(job, out, info, work) -> dict[str, str]:
    rows = _rows(out / "m" / "measure.csv")
    keep = [r for r in rows if r["bin"] == "all" or int(r["n"]) >= 20]
    dropped = [f"{r['bin']} (n = {r['n']})" for r in rows if r not in keep]

    def g(r, c, nd=3):
        v = float(r[c])
        return "n/a" if not math.isfinite(v) else f"{v:.{nd}f}"

    body = _md(
        ["length bin", "n", "mean log W", "std log W", "E[phi^2] (A>=0)", "M^2 (A>=0)"]
        + ["E[phi^2] (A<0)", "M^2 (A<0)", "ESS/n", "k-hat"],
        [
            [r["bin"], r["n"], g(r, "log_w_mean", 2), g(r, "log_w_std", 2)]
            + [g(r, "phi2_pos_mean"), g(r, "m2_pos"), g(r, "phi2_neg_mean"), g(r, "m2_neg")]
            + [g(r, "ess_frac"), g(r, "khat", 2)]
            for r in keep
        ],
    )
    bins = [r for r in keep if r["bin"] != "all"]
    std = "; ".join(f"{r['bin']}: {float(r['log_w_std']):.2f}" for r in bins)
    ess = "; ".join(f"{r['bin']}: {float(r['ess_frac']):.3f}" for r in bins)
    ok = all(
        float(r["phi2_pos_mean"]) <= float(r["m2_pos"])
        and float(r["phi2_neg_mean"]) <= float(r["m2_neg"])
        for r in rows
    )
    text = (
        f"Std of log W by length bin (nats): {std}. ESS/n by bin: {ess}. "
        f"E[phi^2] <= M^2 in every bin: {'yes' if ok else 'NO'}."
        + (f" Bins with fewer than 20 responses omitted: {', '.join(dropped)}." if dropped else "")
    )
    return {"lm_measure": _provenance(job, info, None) + "\n\n" + body + "\n\n" + text}


def render_bench(job, out, info, work) -> dict[str, str]:
    """The throughput table from bench_lm.py's lines ``sampling  kv_cache=True  N tokens/s``."""
    labels = {
        "kv_cache=True": "sampling with KV cache",
        "kv_cache=False": "sampling without KV cache",
        "fwd+bwd+adam": "training step (fwd + bwd + Adam)",
    }
    rows = []
    for line in info["stdout"].splitlines():
        parts = line.split()
        for key, label in labels.items():
            if key in parts and "tokens/s" in parts:
                rows.append([label, f"{int(parts[parts.index('tokens/s') - 1]):,}"])
    if len(rows) != len(labels):
        raise RuntimeError(
            f"bench_lm: expected {len(labels)} throughput lines, got:\n{info['stdout']}"
        )
    header = next(ln for ln in info["stdout"].splitlines() if ln.startswith("device"))
    flops = {
        "peak_matmul_1024": "one-thread float32 matmul peak (1024 x 1024 x 1024)",
        "model_shape_64x64x256": "a matmul of the model's shape (64 x 64 x 256)",
        "sampling_kv_cache": "sampling with KV cache",
        "training": "training step (fwd + bwd + Adam)",
    }
    frows = []
    for line in info["stdout"].splitlines():
        parts = line.split()
        if parts[:1] == ["flops"] and parts[1] in flops:
            share = f"{parts[4]} %" if len(parts) > 5 and parts[5] == "%" else "100 %"
            note = " ".join(parts[8:]).strip("()") if len(parts) > 8 else ""
            frows.append([flops[parts[1]], parts[2], share, note or "–"])
    if len(frows) != len(flops):
        raise RuntimeError(f"bench_lm: expected {len(flops)} flops lines, got:\n{info['stdout']}")
    body = (
        f"`{header}`\n\n"
        + _md(["", "tokens/s"], rows)
        + "\n\n"
        + _md(["against the machine's limit", "GFLOP/s", "of the peak", "model FLOPs"], frows)
        + "\n\n"
        + _provenance(job, info, None)
    )
    return {"bench_lm": body}


#: where validate_fast's full table is committed (every rule and length bin)
VALIDATE_TABLE = REPO / "docs" / "lm_validate" / "validate_fast.csv"

#: the rules of the validate-bound excerpt (every rule is in the CSV)
VALIDATE_RULES = ("vespo", "is", "reinforce", "seq_tis")


def _g4(v) -> str:
    if v in ("", None):
        return "–"
    x = float(v)
    return f"{x:.4g}" if x == x else "–"


def render_validate(job, out, info, work) -> dict[str, str]:
    """The excerpt of `vespo validate-bound --fast`: per rule of VALIDATE_RULES, every length bin
    with at least 2 sequences and the `all` row (the columns of the command's own table), plus the
    L1 line it prints."""
    from simulations.cli.validate_bound import TABLE_COLUMNS as VALIDATE_COLS

    # the whole table, committed for the figures (paper_figures/theory_grad_bound.py)
    VALIDATE_TABLE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "v" / "validate.csv", VALIDATE_TABLE)
    rows = []
    for r in _rows(out / "v" / "validate.csv"):
        if r["rule"] in VALIDATE_RULES and (r["length_bin"] == "all" or int(r["n"]) >= 2):
            rows.append(
                [r["rule"], r["length_bin"], r["n"], *[_g4(r[c]) for c in VALIDATE_COLS[3:]]]
            )
    rows.sort(key=lambda x: VALIDATE_RULES.index(x[0]))
    l1 = next(ln for ln in info["stdout"].splitlines() if ln.startswith("L1: "))
    body = _md(list(VALIDATE_COLS), rows) + f"\n\n`{l1}`\n\n" + _provenance(job, info, None)
    return {"validate_fast": body}


def render_bench_grads(job, out, info, work) -> dict[str, str]:
    """The per-sample-gradient benchmark's table, from the JSON line it prints last."""
    lines = info["stdout"].splitlines()
    res = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    header = lines[0]
    t, mem = res["times_s"], res["peak_bytes"]
    names = {
        "plain": "plain (one backward of the batch)",
        "vmap": "per-sample, torch.func vmap",
        "loop": "per-sample, loop of backward",
        "vmap+sketch": "vmap + Gaussian sketch, d = 256",
    }
    rows = [
        [label, f"{t[k]:.3g}", f"{t[k] / t['plain']:.2f}", f"{mem[k] / 2**20:.1f} MiB"]
        for k, label in names.items()
    ]
    table = _md(["method", "time (s)", "x one plain backward", "peak memory"], rows)
    body = f"`{header}`\n\n" + table + "\n\n" + _provenance(job, info, None)
    return {"bench_grads": body}


def _long():
    sys.path.insert(0, str(REPO / "scripts"))
    import regen_lm_long

    return regen_lm_long


def render_long(job, out, info, work) -> dict[str, str]:
    return _long().render_sweep(job.name, out, info, cache=out / "cache")


def render_long_bench(job, out, info, work) -> dict[str, str]:
    line = next(ln for ln in info["stdout"].splitlines() if ln.startswith("BENCH_JSON "))
    res = json.loads(line.split(" ", 1)[1])
    return {
        "lm_long_bench": _long().render_bench(res),
        "lm_long_gpu_plan": _long().render_gpu_plan(),
    }


def render_moe(job, out, info, work) -> dict[str, str]:
    """The table of `python -m simulations.lm.moe`: its JSON lines (the model's line first,
    then one per route-noise sigma)."""
    lines = [json.loads(ln) for ln in info["stdout"].splitlines() if ln.startswith("{")]
    model, stats = lines[0], lines[1:]
    rows = [
        [
            _g4(r["sigma"]),
            r["n"],
            _g4(r["var_log_w_no_replay"]),
            _g4(r["mean_abs_log_w_no_replay"]),
            _g4(r["max_abs_log_w_no_replay"]),
            _g4(r["var_log_w_replay"]),
            _g4(r["max_abs_log_w_replay"]),
            f"{100 * r['flip_rate']:.1f} %",
            f"{100 * r['seq_with_flip']:.1f} %",
        ]
        for r in stats
    ]
    head = (
        f"MoE warm start: task `{model['task']}`, d_model {model['d_model']}, "
        f"{model['n_expert']} experts top-{model['top_k']}, {model['params']:,} parameters, "
        f"{model['steps']} teacher-forced steps, greedy success {model['greedy_success']:.3f}; "
        f"{model['n']} responses sampled on-policy per sigma.\n\n"
    )
    cols = [
        "sigma",
        "n",
        "Var(log W)",
        "mean abs log W",
        "max abs log W",
        "Var(log W), replay",
        "max abs log W, replay",
        "route flips",
        "sequences with a flip",
    ]
    return {"moe_routing": head + _md(cols, rows) + "\n\n" + _provenance(job, info, None)}


RENDER = {
    "moe_routing": render_moe,
    "bench_lm": render_bench,
    "validate_fast": render_validate,
    "bench_grads": render_bench_grads,
    "lm_compare_fast": render_fast,
    "lm_smoke": render_smoke,
    "lm_compare": render_compare,
    "lm_compare_async": render_async,
    "lm_compare_stress": render_stress,
    "lm_compare_agg": render_agg,
    "lm_compare_seeds": render_seeds,
    "lm_measure": render_measure,
    "lm_long_fast": render_long,
    "lm_long": render_long,
    "lm_long_fast_lowlr": render_long,
    "lm_long_bench": render_long_bench,
}


# ------------------------------------------------------------------------------- running


def code_identity() -> dict:
    from simulations.lm.rl import RL_RECIPE
    from simulations.lm.sft import code_identity as ci

    return ci(rl_recipe=RL_RECIPE)


def _fresh(folder: Path) -> None:
    """Empty ``folder`` for a job; refuse to delete a folder this script did not make."""
    if folder.exists():
        if not (folder / STAMP).exists() and any(folder.iterdir()):
            raise ValueError(f"--work: {str(folder)!r} exists and was not made by this script")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def run_job(job: Job, work: Path, jobs: int, *, stream=sys.stdout) -> dict:
    """Run ``job``'s command into a fresh ``<work>/<job>`` with a fresh cache; returns info."""
    out = work / job.name
    _fresh(out)
    warm = ""
    if job.warm_from_cache:
        from vespo_theory.cache import cache_dir

        src = cache_dir() / "lm_sft"
        if not src.is_dir():
            raise ValueError(f"{job.name}: no cached warm starts in {src} to copy")
        shutil.copytree(src, out / "cache" / "lm_sft")
        warm = f" (warm starts copied from {src})"
    cmd = job.command(out, jobs)
    env = {**os.environ, "VESPO_CACHE_DIR": str(out / "cache"), "PYTHONHASHSEED": "0"}
    prog = ["python"] if job.script else ["vespo"]
    print(f"running: {' '.join(prog + cmd)}  (VESPO_CACHE_DIR={out / 'cache'}){warm}", file=stream)
    stream.flush()
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, *cmd] if job.script else [sys.executable, "-m", "vespo_theory.cli", *cmd],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{job.name}: `{' '.join(prog + cmd)}` exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    info = {
        "job": job.name,
        "command": [*prog, *cmd],
        "jobs": jobs,
        "wall_s": wall,
        "cpu_s": cpu,  # user + system time of the command and its children
        "code": code_identity(),
        "stdout": proc.stdout,
    }
    (out / STAMP).write_text(dump_json(info) + "\n")
    print(f"  done in {_mins(wall)}", file=stream)
    return info


def _reusable(work: Path, name: str) -> dict | None:
    """The stamp of ``<work>/<name>`` if it was made by this exact clean code, else None."""
    p = work / name / STAMP
    if not p.exists():
        return None
    info = json.loads(p.read_text())
    now = code_identity()
    sha = str(now["git_sha"])
    if sha.endswith("-dirty") or sha == "None" or info.get("code") != now:
        return None
    return info


def regenerate(names: list[str], work: Path, jobs: int, docs: Path, stream=sys.stdout) -> dict:
    """Run ``names`` (plus the dependencies not reusable) and rewrite their blocks in ``docs``."""
    text = docs.read_text()
    for n in names:  # check every marker before spending minutes on runs
        for m in JOBS[n].markers:
            read_block(text, m)
    order: list[str] = []
    for n in names:
        for dep in JOBS[n].needs:
            if dep not in order and dep not in names:
                if _reusable(work, dep) is None:
                    order.append(dep)
                else:
                    print(f"reusing {work / dep} (same clean commit and recipes)", file=stream)
        if n not in order:
            order.append(n)
    done = {}
    t_all = time.time()
    for n in order:  # the docs are rewritten after each job: a later failure loses nothing
        done[n] = run_job(JOBS[n], work, jobs, stream=stream)
        text = docs.read_text()
        for marker, body in RENDER[n](JOBS[n], work / n, done[n], work).items():
            text = replace_block(text, marker, body)
        docs.write_text(text)
    print(
        f"rewrote {sum(len(JOBS[n].markers) for n in order)} blocks of {docs} "
        f"({', '.join(order)}) in {_mins(time.time() - t_all)}",
        file=stream,
    )
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help=f"one job (repeatable); one of: {', '.join(JOBS)}",
    )
    ap.add_argument("--jobs", type=int, default=2, help="parallel sweep cells (--n-jobs; 2)")
    ap.add_argument("--work", default="outputs/regen_lm", help="output folder of the runs")
    ap.add_argument("--docs", default=str(DOCS), help="the Markdown file to rewrite")
    ap.add_argument("--list", action="store_true", help="print the jobs and exit")
    args = ap.parse_args(argv)
    if args.list:
        for j in JOBS.values():
            dep = f"  (needs {', '.join(j.needs)})" if j.needs else ""
            print(f"{j.name:18s} vespo {' '.join(j.command(Path('<work>/' + j.name), args.jobs))}")
            print(f"{'':18s} markers: {', '.join(j.markers)}; last stated time {j.est}{dep}")
        return 0
    try:
        names = args.only or list(JOBS)
        unknown = [n for n in names if n not in JOBS]
        if unknown:
            raise ValueError(f"--only: unknown job(s) {unknown}; valid: {', '.join(JOBS)}")
        if args.jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {args.jobs}")
        docs = Path(args.docs)
        if not docs.is_file():
            raise ValueError(f"--docs: {str(docs)!r} is not a file")
        regenerate(names, Path(args.work).resolve(), args.jobs, docs)
    except ValueError as exc:
        print(f"regen_lm_docs: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a command failed: its own stderr tail is in the message
        print(f"regen_lm_docs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
