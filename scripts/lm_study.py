"""Run the small-scale study of the paper's claims S1-S8 and write its tables (docs/lm_study/).

    python scripts/lm_study.py s1 --run --jobs 2          # run (or resume) block s1, then tables
    python scripts/lm_study.py all --fast --run           # every block's fast variant
    python scripts/lm_study.py all                        # tables of the sweeps already run
    python scripts/lm_study.py all --run --recompute      # every run again, from an empty cache

A block is the sweep config ``configs/study/<block>.json`` (``--fast``: ``<block>_fast.json``),
run by ``vespo sweep ... --out <work>/<block> --n-jobs <jobs>`` (resumable; the runs are cached
by key in the cache folder, so blocks that share a cell run it once). ``--recompute`` gives the
sweeps an empty cache folder (``<work>/cache_recompute``) so every warm start and run is
computed again by the code as it is. The tables (``simulations.lm.study``) go to
``docs/lm_study/`` (``--fast``: ``<work>/tables_fast/``, not committed) with
``MANIFEST.json``: for each table the command, the commit, torch, the recipes and the sweep's
wall time; ``verdicts.csv`` is rewritten from every block's paired table present.
Exit status 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulations.lm import study  # noqa: E402 (the checkout first on sys.path, as a script)

TABLES = REPO / "docs" / "lm_study"


def _code() -> dict:
    from simulations.lm.rl import RL_RECIPE
    from simulations.lm.sft import code_identity

    return code_identity(rl_recipe=RL_RECIPE)


def run_sweep(config: Path, out: Path, jobs: int, cache: Path | None) -> float:
    cmd = [sys.executable, "-m", "vespo_theory.cli", "sweep", str(config), "--out", str(out)]
    cmd += ["--n-jobs", str(jobs), "--quiet"]
    env = dict(os.environ)
    if cache is not None:
        env["VESPO_CACHE_DIR"] = str(cache)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{config.name}: the sweep exited {proc.returncode}")
    return time.time() - t0


def interim_results(out: Path) -> Path | None:
    """``out/interim_results.csv``: the rows of the cells of ``out`` finished so far (the
    sweep's own cached cell files), for a look at an unfinished block; None if none."""
    rows = []
    for f in sorted((out / "cells").glob("*.json")):
        try:
            rows += json.loads(f.read_text())["rows"]
        except (OSError, ValueError, KeyError):
            continue  # a cell being written
    if not rows:
        return None
    path = out / "interim_results.csv"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    study.write_csv(path, [{k: r.get(k, "") for k in keys} for r in rows])
    return path


def write_verdicts(dest: Path) -> list[dict]:
    paired, summaries = [], []
    for b in study.BLOCKS:
        p = dest / f"{b}.paired.csv"
        if p.exists():
            paired += study.read_csv(p)
        p = dest / f"{b}.summary.csv"
        if p.exists():
            summaries += study.read_csv(p)
    broken = study.broken_rules(summaries)
    rows = [study.verdict(c, paired, broken) for c in study.CLAIMS]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    study.write_csv(dest / "verdicts.csv", [{k: r.get(k, "") for k in keys} for r in rows])
    return rows


BLOCK_TITLES = {
    "s1": "S1 and S2: staleness, and the baselines' failure signals",
    "s3": "S3: length normalisation",
    "s4": "S4: asymmetry",
    "s5": "S5: routing mismatch on a mixture-of-experts model",
    "s6": "S6: TOPR, CISPO, BAPO, VCPO",
    "s7": "S7: an execution-rewarded task (`stack`)",
    "s8": "S8: three model sizes",
    "async": "Fully asynchronous training (the README figure)",
    "lr_check": "The learning-rate check (N = 1)",
}


def _num(v, fmt="{:.3f}") -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if x != x else fmt.format(x)


def _ci(m, lo, hi, sign=False) -> str:
    f = "{:+.3f}" if sign else "{:.3f}"
    if _num(lo) == "–":
        return _num(m, f)
    return f"{_num(m, f)} [{_num(lo, f)}, {_num(hi, f)}]"


def _md(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render_block(b: str, dest: Path, manifest: dict) -> str:
    """The docs/lm.md block of ``b`` from its committed tables (or how to make them)."""
    summ, pair = dest / f"{b}.summary.csv", dest / f"{b}.paired.csv"
    if not summ.exists():
        return f"_Not run yet: `python scripts/lm_study.py {b} --run --jobs 2`._"
    m = manifest.get(b, {})
    code = m.get("code", {})
    sweep = m.get("sweep_code") or code
    wall = m.get("sweep_wall_s")
    head = (
        f"_Generated by `python scripts/lm_study.py --docs` from `docs/lm_study/{b}.*.csv`, "
        f"made by `{m.get('command', '?')}`: {m.get('runs', '?')} runs"
        + (
            " (an unfinished block: the runs finished so far; arms with fewer seeds than the "
            "config's are incomplete)"
            if "--interim" in str(m.get("command"))
            else ""
        )
        + (f", sweep wall time {wall / 60:.0f} min with `--n-jobs {m.get('jobs')}`" if wall else "")
        + f"; commit {str(code.get('git_sha') or '?')[:12]}"
        + (
            f" (the runs: commit {str(sweep.get('git_sha') or '?')[:12]})"
            if sweep.get("git_sha") != code.get("git_sha")
            else ""
        )
        + f", torch {code.get('torch', '?')}, "
        f"recipes sft {code.get('sft_recipe', '?')} / rl {code.get('rl_recipe', '?')}._"
    )
    rows = []
    for r in study.read_csv(summ):
        rows.append(
            [
                r["arm"],
                r["seeds"],
                _ci(r["metric_mean"], r["metric_lo"], r["metric_hi"]),
                _num(r["gain_mean"], "{:+.3f}"),
                f"{r['collapsed']}/{r['seeds']}",
                _num(r["final_entropy"]),
                _num(r["max_response_length"], "{:.1f}"),
                _num(r["mean_ess_frac"], "{:.2f}"),
                {"True": "yes", "False": "no"}.get(r["lr_breaks"], "–"),
            ]
        )
    parts = [
        head,
        "",
        _md(
            [
                "arm",
                "seeds",
                "held-out, last 4 evals [95 % CI]",
                "vs start",
                "collapsed",
                "final entropy",
                "max mean length",
                "ESS/B",
                "breaks on-policy",
            ],
            rows,
        ),
    ]
    if pair.exists() and study.read_csv(pair):
        prow = []
        for p in study.read_csv(pair):
            if p["outcome"] == "missing":
                continue
            tag = " (exploratory)" if p["exploratory"] == "True" else ""
            prow.append(
                [
                    p["claim"],
                    p["comparison"],
                    p["metric"],
                    p["expected"],
                    "yes" if p["primary"] == "True" else "",
                    p["seeds"] + tag,
                    _ci(p["diff"], p["lo"], p["hi"], sign=True),
                    p["outcome"],
                ]
            )
        parts += [
            "",
            _md(
                [
                    "claim",
                    "comparison (A - B)",
                    "metric",
                    "expected",
                    "primary",
                    "seeds",
                    "mean difference [95 % CI]",
                    "outcome",
                ],
                prow,
            ),
        ]
    return "\n".join(parts)


def render_budget(manifest: dict) -> str:
    """The study's measured cost: the sum of the blocks' sweep wall times in the manifest (runs
    shared between blocks come from the run cache, so each is paid once, by the block that ran
    it first), and the blocks not run yet."""
    done = [b for b in study.BLOCKS if (manifest.get(b) or {}).get("sweep_wall_s") is not None]
    if not done:
        return ""
    wall = sum(float(manifest[b]["sweep_wall_s"]) for b in done)
    runs = sum(int(manifest[b].get("runs") or 0) for b in done)
    jobs = sorted({str(manifest[b].get("jobs")) for b in done})
    each = ", ".join(f"{b} {float(manifest[b]['sweep_wall_s']) / 60:.0f} min" for b in done)
    left = [b for b in study.BLOCKS if b not in done]
    return (
        f"\n\nBudget, measured: the sweeps of {len(done)} blocks ({runs} runs, shared runs counted "
        f"in each block) took {wall / 3600:.2f} h of wall time in all with `--n-jobs "
        f"{'/'.join(jobs)}` ({each}; `sweep_wall_s` in `docs/lm_study/MANIFEST.json`)"
        + (f"; not run yet: {', '.join(left)}." if left else ".")
    )


def render_verdicts(dest: Path, manifest: dict | None = None) -> str:
    path = dest / "verdicts.csv"
    if not path.exists():
        return "_No verdicts yet: run the blocks (`python scripts/lm_study.py all --run`)._"
    rows = []
    for v in study.read_csv(path):
        eff = ""
        if v.get("largest_effect"):
            eff = f"{v['largest_effect']}: " + _ci(
                v["effect"], v["effect_lo"], v["effect_hi"], True
            )
        fav = f"{v['favourable']}/{v['primary']}" if v.get("primary") else "–"
        seeds = v.get("seeds") or "–"
        if v.get("exploratory") == "True":
            seeds += " (exploratory)"
        rows.append(
            [
                v["claim"],
                v["statement"],
                f"**{v['verdict']}**",
                fav,
                seeds,
                eff or "–",
                v.get("not_judged") or "–",
                v["need"],
            ]
        )
    return (
        "_Generated by `python scripts/lm_study.py --docs` from `docs/lm_study/verdicts.csv` "
        "(the rules of the protocol above, applied by `simulations.lm.study.verdict`)._\n\n"
        + _md(
            [
                "claim",
                "at this scale",
                "verdict",
                "favourable primary",
                "paired seeds",
                "largest primary effect [95 % CI]",
                "not judged",
                "what LM scale would need",
            ],
            rows,
        )
        + render_budget(manifest or {})
    )


def rewrite_docs(dest: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from regen_lm_docs import replace_block

    manifest_path = dest / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    docs = REPO / "docs" / "lm.md"
    text = docs.read_text()
    for b in study.BLOCKS:
        text = replace_block(text, f"study_{b}", render_block(b, dest, manifest))
    text = replace_block(text, "study_verdicts", render_verdicts(dest, manifest))
    docs.write_text(text)
    print(f"rewrote the study blocks of {docs}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "blocks", nargs="*", help=f"blocks ({', '.join(study.BLOCKS)}) or all (none: --docs)"
    )
    ap.add_argument(
        "--docs", action="store_true", help="rewrite docs/lm.md's study blocks from the tables"
    )
    ap.add_argument("--fast", action="store_true", help="the fast variants (<block>_fast.json)")
    ap.add_argument("--run", action="store_true", help="run (or resume) the sweeps first")
    ap.add_argument("--recompute", action="store_true", help="with --run: an empty cache")
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (--n-jobs; default 2)")
    ap.add_argument("--work", default="outputs/lm_study", help="the sweeps' output folder")
    ap.add_argument("--tables", default=None, help="where the tables go (default above)")
    ap.add_argument(
        "--interim",
        action="store_true",
        help="tables of the runs finished so far of an unfinished sweep, to "
        "<work>/tables_interim (never docs/; not the protocol's result)",
    )
    try:
        args = ap.parse_args(argv)
        if not args.blocks and not args.docs:
            raise ValueError("blocks: name at least one block, all, or give --docs")
        blocks = list(study.BLOCKS) if args.blocks == ["all"] else args.blocks
        bad = [b for b in blocks if b not in study.BLOCKS]
        if bad:
            raise ValueError(f"blocks: unknown {bad}; valid: {', '.join(study.BLOCKS)} or all")
        if args.jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {args.jobs}")
        if args.interim and (args.run or args.docs):
            raise ValueError("--interim reads finished runs only (not with --run or --docs)")
        if args.docs and (args.fast or args.tables):
            raise ValueError("--docs renders the committed tables only (not --fast or --tables)")
        if args.recompute and not args.run:
            raise ValueError("--recompute needs --run (it recomputes the runs)")
    except ValueError as exc:
        print(f"lm_study: error: {exc}", file=sys.stderr)
        return 2
    work = (REPO / args.work).resolve()
    suffix = "_fast" if args.fast else ""
    if args.tables:
        dest = Path(args.tables)
    elif args.interim:
        dest = work / "tables_interim"
    else:
        dest = work / "tables_fast" if args.fast else TABLES
    cache = work / "cache_recompute" if args.recompute else None
    from vespo_theory.cache import cache_dir

    runs_dir = (cache if cache is not None else cache_dir()) / "lm_runs"
    manifest_path = dest / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for b in blocks:
        config = REPO / "configs" / "study" / f"{b}{suffix}.json"
        out = work / f"{b}{suffix}"
        info = {}
        if args.run:
            wall = run_sweep(config, out, args.jobs, cache)
            info = {"sweep_wall_s": round(wall, 1), "jobs": args.jobs}
        results = out / "results.csv"
        if args.interim:
            results = interim_results(out)
            if results is None:
                print(f"lm_study: {b}: no finished run in {out}/cells", file=sys.stderr)
                continue
        if not results.exists():
            print(f"lm_study: {b}: no {results} (run it with --run)", file=sys.stderr)
            continue
        t = study.write_block_tables(b, results, dest, runs_dir, tag=b)
        how = " --interim" if args.interim else " --run"
        cmd = f"python scripts/lm_study.py {b}{' --fast' if args.fast else ''}{how}"
        old = manifest.get(b, {})
        manifest[b] = {
            "command": cmd,
            "sweep": f"vespo sweep configs/study/{b}{suffix}.json --out {args.work}/{b}{suffix}",
            "runs": len(t["results"]),
            "code": _code(),
            # the code that ran the sweep: this one, or kept from the entry a re-render replaces
            "sweep_code": _code() if info else old.get("sweep_code", old.get("code")),
            **(
                {"sweep_wall_s": old.get("sweep_wall_s"), "jobs": old.get("jobs")}
                if not info
                else info
            ),
        }
        n_fav = sum(p["outcome"] == "favourable" for p in t["paired"])
        print(
            f"{b}: {len(t['results'])} runs, {len(t['summary'])} arms, "
            f"{len(t['paired'])} comparisons ({n_fav} favourable) -> {dest}"
        )
    if blocks:
        dest.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if blocks:
        for v in write_verdicts(dest):
            print(f"{v['claim']}: {v['verdict']}")
    if args.docs:
        rewrite_docs(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
