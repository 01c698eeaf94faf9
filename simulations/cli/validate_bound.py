"""``vespo validate-bound``: the variance bound B3 (and P4, G1, L1) at the gradient level.

Samples n sequences from one model version (mu) and differentiates them under a later one (pi),
then reports per rule and response-length bin the exact batch-estimator variance against B3's
bound (:mod:`simulations.lm.validate`; docs/lm.md, "validate-bound"). Writes
``OUT/validate.csv``, the sidecar ``OUT/validate.json`` and its caches (resumable: a rerun skips
the finished rules). ``--json`` prints the list of records. This module only parses, calls and
prints; torch and ``simulations.lm`` are imported inside ``run``.
"""

from __future__ import annotations

HELP = (
    "per-sequence gradients: B3's variance bound, P4, G1 and the L1 fit per rule and "
    "response-length bin (LM lab)"
)

TABLE_COLUMNS = [
    "rule",
    "length_bin",
    "n",
    "mean_T",
    "var_trace",
    "E_phi2_g2",
    "E_g2",
    "bound_B3",
    "tightness",
    "E_phi2",
    "K_E_phiW",
    "g1_ratio",
]


def add_arguments(p) -> None:
    p.add_argument("--out", default=None, help="output directory (required)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="small: task count-long (100-1,024 tokens), 32 prompts x 4, 8 RL steps",
    )
    p.add_argument(
        "--task", default=None, help="task name (vespo train-lm --list-tasks; default add)"
    )
    p.add_argument(
        "--rules",
        default=None,
        help="comma-separated rules (default vespo,is,reinforce,seq_tis,gspo,ppo_clip,token_tis)",
    )
    p.add_argument("--prompts", type=int, default=None, help="prompts (default 256; --fast 32)")
    p.add_argument(
        "--group-size", type=int, default=None, help="G responses per prompt (8; --fast 4)"
    )
    p.add_argument(
        "--rl-steps",
        type=int,
        default=None,
        help="pi = the warm start after this many stale RL steps (default 64; --fast 8)",
    )
    p.add_argument("--rl-rule", default="vespo", help="the rule of those RL steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=None, help="response length cap")
    p.add_argument("--chunk", type=int, default=64, help="sequences per gradient chunk")
    p.add_argument("--grad-method", default="auto", help="auto | vmap | loop")
    p.add_argument(
        "--sketch-dim", type=int, default=None, help="JL sketch of the gradients to this dimension"
    )
    p.add_argument("--sketch-kind", default="gaussian", help="gaussian | rademacher")
    p.add_argument("--sft-steps", type=int, default=None, help="warm-start steps (default 250)")
    p.add_argument("--d-model", type=int, default=None, help="built-in model width (default 64)")
    p.add_argument("--model", default=None, help="HF directory of mu (the sampler)")
    p.add_argument("--later-model", default=None, help="HF directory of pi (the later version)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--cache-dir", default=None, help="warm-start cache folder")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args):
    from simulations.lm.validate import FAST, TASK_EXTRA, ValidateConfig

    d = {
        "rl_rule": args.rl_rule,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
        "chunk": args.chunk,
        "grad_method": args.grad_method,
        "sketch_dim": args.sketch_dim,
        "sketch_kind": args.sketch_kind,
        "model": args.model,
        "later_model": args.later_model,
    }
    if args.rules is not None:
        d["rules"] = tuple(r.strip() for r in args.rules.split(",") if r.strip())
    if args.fast:
        d.update(FAST)
    # options given on the command line win over --fast's sizes
    for name in ("task", "group_size", "prompts", "rl_steps"):
        if getattr(args, name) is not None:
            d[name] = getattr(args, name)
    d.setdefault("task", "add")
    extra = {"sft_steps": args.sft_steps, "d_model": args.d_model}
    extra = {k: v for k, v in extra.items() if v is not None}
    # the task's own warm-start settings (built-in model only), under the user's
    d["extra"] = extra if args.model else {**TASK_EXTRA.get(d["task"], {}), **extra}
    return ValidateConfig(**d)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4g}"
    return str(v)


def run(args) -> int:
    if args.out is None:
        raise ValueError("--out is required (the output directory)")
    from simulations.cli.progress import progress_enabled
    from vespo_theory.cli.common import format_table, usable_out_dir
    from vespo_theory.jsonio import dump_json

    cfg = config_from_args(args)
    usable_out_dir(args.out, "--out")
    if args.cache_dir is not None:
        usable_out_dir(args.cache_dir, "--cache-dir")
    from simulations.lm.validate import run_validate

    res = run_validate(
        cfg,
        args.out,
        device=args.device,
        progress=not args.no_progress and progress_enabled(args),
        cache_dir=args.cache_dir,
    )
    if args.json:
        print(dump_json(res["records"]))
        return 0
    rows = [{c: _fmt(r.get(c)) for c in TABLE_COLUMNS} for r in res["records"]]
    print(format_table(rows, TABLE_COLUMNS))
    f = res["l1"]
    print(
        f"L1: E||grad log pi||^2 = a + b T over {f['n']} sequences: b = {f['slope']:.4g} "
        f"[{f['slope_lo']:.4g}, {f['slope_hi']:.4g}], a = {f['intercept']:.4g} "
        f"[{f['intercept_lo']:.4g}, {f['intercept_hi']:.4g}] (95%, HC1)"
    )
    if res["skipped"]:
        print(f"from the cache in {args.out}: {', '.join(res['skipped'])}")
    print(f"wrote {res['csv']}")
    return 0
