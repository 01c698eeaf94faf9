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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("blocks", nargs="+", help=f"blocks ({', '.join(study.BLOCKS)}) or all")
    ap.add_argument("--fast", action="store_true", help="the fast variants (<block>_fast.json)")
    ap.add_argument("--run", action="store_true", help="run (or resume) the sweeps first")
    ap.add_argument("--recompute", action="store_true", help="with --run: an empty cache")
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (--n-jobs; default 2)")
    ap.add_argument("--work", default="outputs/lm_study", help="the sweeps' output folder")
    ap.add_argument("--tables", default=None, help="where the tables go (default above)")
    try:
        args = ap.parse_args(argv)
        blocks = list(study.BLOCKS) if args.blocks == ["all"] else args.blocks
        bad = [b for b in blocks if b not in study.BLOCKS]
        if bad:
            raise ValueError(f"blocks: unknown {bad}; valid: {', '.join(study.BLOCKS)} or all")
        if args.jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {args.jobs}")
        if args.recompute and not args.run:
            raise ValueError("--recompute needs --run (it recomputes the runs)")
    except ValueError as exc:
        print(f"lm_study: error: {exc}", file=sys.stderr)
        return 2
    work = (REPO / args.work).resolve()
    suffix = "_fast" if args.fast else ""
    dest = Path(args.tables) if args.tables else (work / "tables_fast" if args.fast else TABLES)
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
        if not results.exists():
            print(f"lm_study: {b}: no {results} (run it with --run)", file=sys.stderr)
            continue
        t = study.write_block_tables(b, results, dest, runs_dir, tag=b)
        cmd = f"python scripts/lm_study.py {b}{' --fast' if args.fast else ''} --run"
        old = manifest.get(b, {})
        manifest[b] = {
            "command": cmd,
            "sweep": f"vespo sweep configs/study/{b}{suffix}.json --out {args.work}/{b}{suffix}",
            "runs": len(t["results"]),
            "code": _code(),
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
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for v in write_verdicts(dest):
        print(f"{v['claim']}: {v['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
