"""``vespo train-lm``: RL on a small language model under staleness N, async lag and mismatch.

One run writes ``metrics.csv`` (one row per optimizer step), ``summary.json`` and the sidecar
``metrics.json`` into ``--out``, with a checkpoint after every rollout batch: the same command
resumes. ``--measure`` runs the measurement-only mode instead (log W of responses sampled by one
checkpoint version and scored by a later one, by length bin;
:func:`simulations.lm.measure.run_measurement`). This module only parses, calls and prints;
torch, transformers and ``simulations.lm`` are imported inside ``run``. The warm start is
cached in the user cache folder (``--cache-dir``, else :func:`vespo_theory.cache.cache_dir`).
The progress bar goes to stderr, and only when stderr is a terminal (never with
``--no-progress``).
"""

from __future__ import annotations

HELP = "RL on a small LM (or a local HF causal LM) with staleness N, async lag, engine mismatch"

# --fast: a smoke-sized run (CI); every other field keeps the protocol's value.
# The warm start stays the protocol's (cached, shared with full runs).
FAST = {"steps": 8, "eval_every": 4, "heldout_n": 32, "prompts_per_step": 4}


def add_arguments(p) -> None:
    p.add_argument("--list-tasks", action="store_true", help="print the tasks and exit")
    p.add_argument("--task", default="add", help="task name (see --list-tasks; default add)")
    p.add_argument("--rule", default="vespo", help="reshaping rule from vespo_theory.rules")
    p.add_argument("--staleness", type=int, default=1, help="N: mini-batches per rollout batch")
    p.add_argument("--async-lag", type=int, default=0, help="L: sampler weights lag L versions")
    p.add_argument(
        "--mismatch",
        default="none",
        help="sampler engine: none | bf16 | noise:SIGMA (logits) | route:SIGMA (router logits "
        "of a mixture-of-experts model, --n-expert)",
    )
    p.add_argument("--correction", default="entangled", choices=["entangled", "decoupled"])
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-4)")
    p.add_argument("--group-size", type=int, default=None, help="G responses per prompt")
    p.add_argument("--prompts-per-step", type=int, default=None, help="prompts per mini-batch")
    p.add_argument("--eval-every", type=int, default=None, help="held-out eval period (16)")
    p.add_argument("--sft-steps", type=int, default=None, help="warm-start steps (default 250)")
    p.add_argument("--d-model", type=int, default=None, help="model width (default 64)")
    p.add_argument("--n-layer", type=int, default=None, help="transformer blocks (default 2)")
    p.add_argument(
        "--n-expert",
        type=int,
        default=None,
        help="mixture-of-experts FFN experts (default 0: dense)",
    )
    p.add_argument("--top-k", type=int, default=None, help="experts per token (default 2)")
    p.add_argument(
        "--routing-replay",
        action="store_true",
        help="R2: the trainer scores with the sampler's expert choices (needs --n-expert)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")
    p.add_argument("--out", default=None, help="output directory (required unless --list-tasks)")
    p.add_argument("--fast", action="store_true", help="smoke-sized run (CI)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is on stderr, and off anyway when stderr is not a terminal)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache folder for the warm start (default $VESPO_CACHE_DIR, else "
        "$XDG_CACHE_HOME/vespo-theory, else ~/.cache/vespo-theory)",
    )
    p.add_argument("--model", default=None, help="local Hugging Face causal-LM directory")
    g = p.add_argument_group("measurement-only mode")
    g.add_argument("--measure", action="store_true", help="measure log W between two versions")
    g.add_argument(
        "--later-model",
        default=None,
        help="HF directory of the later version (with --model); without --model the later "
        "version is the built-in model after --steps RL steps of --rule",
    )
    g.add_argument("--measure-prompts", type=int, default=64, help="prompts to sample")
    g.add_argument("--samples-per-prompt", type=int, default=4)
    g.add_argument("--max-new-tokens", type=int, default=None, help="response length cap")


def _config(args):
    from simulations.lm.rl import LMRunConfig

    d = {
        "task": args.task,
        "rule": args.rule,
        "staleness": args.staleness,
        "async_lag": args.async_lag,
        "mismatch": args.mismatch,
        "correction": args.correction,
        "seed": args.seed,
        "model": args.model,
    }
    if args.routing_replay:
        d["routing_replay"] = True
    if args.fast:
        d.update(FAST)
    for field, val in (
        ("steps", args.steps),
        ("lr", args.lr),
        ("group_size", args.group_size),
        ("prompts_per_step", args.prompts_per_step),
        ("eval_every", args.eval_every),
        ("sft_steps", args.sft_steps),
        ("d_model", args.d_model),
        ("n_layer", args.n_layer),
        ("n_expert", args.n_expert),
        ("top_k", args.top_k),
    ):
        if val is not None:
            d[field] = val
    return LMRunConfig(**d)


def _list_tasks() -> int:
    from simulations.lm.tasks import TASKS, available_tasks

    for name in available_tasks():
        print(f"{name:8s}  {TASKS[name].description}")
    return 0


def _progress(args) -> bool:
    """A bar only on an interactive stderr (the rule of :mod:`simulations.cli.progress`)."""
    from simulations.cli.progress import progress_enabled

    return not args.no_progress and progress_enabled(args)


def _measure(args, cfg) -> int:
    from simulations.lm.measure import run_measurement
    from vespo_theory.cli.common import format_table

    res = run_measurement(
        cfg,
        args.out,
        device=args.device,
        later_model=args.later_model,
        measure_prompts=args.measure_prompts,
        samples_per_prompt=args.samples_per_prompt,
        max_new_tokens=args.max_new_tokens,
        progress=_progress(args),
        cache_dir=args.cache_dir,
    )
    cols = [
        "bin",
        "n",
        "log_w_mean",
        "log_w_std",
        "phi2_pos_mean",
        "m2_pos",
        "phi2_neg_mean",
        "m2_neg",
        "ess_frac",
        "khat",
        "khat_thresh",
    ]
    fmt = [
        {c: (f"{r[c]:.4g}" if isinstance(r.get(c), float) else r.get(c, "")) for c in cols}
        for r in res["rows"]
    ]
    print(format_table(fmt, cols))
    print(f"wrote {res['csv']}")
    return 0


def run(args) -> int:
    if args.list_tasks:
        return _list_tasks()
    if args.out is None:
        raise ValueError("--out is required (the run directory)")

    from simulations.lm.rl import run as run_lm
    from vespo_theory.cli.common import usable_out_dir

    cfg = _config(args)
    usable_out_dir(args.out, "--out")
    if args.cache_dir is not None:
        usable_out_dir(args.cache_dir, "--cache-dir")
    if args.measure:
        return _measure(args, cfg)
    summary = run_lm(
        cfg, args.out, device=args.device, progress=_progress(args), cache_dir=args.cache_dir
    )
    print(
        f"{cfg.rule} N={cfg.staleness} L={cfg.async_lag} mismatch={cfg.mismatch}: "
        f"held-out success {summary['initial_heldout']:.3f} -> {summary['final_heldout']:.3f} "
        f"(best {summary['best_heldout']:.3f}); collapsed: {summary['collapsed']}"
        + (f" at step {summary['collapse_step']}" if summary["collapsed"] else "")
    )
    print(f"wrote {args.out}/metrics.csv")
    return 0
