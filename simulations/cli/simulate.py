"""``vespo simulate``: exact and Monte Carlo statistics of every reshaping rule on a toy model.

``vespo simulate bandit --mu P --pi P --reward R`` (comma-separated lists) and
``vespo simulate ar --V V --T T --policy context-free|markov|prefix --staleness N`` (or
``--mu P --pi P --T T`` for context-free token distributions). The flags, their defaults and
help come from the fields of ``simulations.config`` (``BanditConfig`` / ``ARConfig`` and
``RunOptions``), the same names a sweep config uses. See docs/simulations.md.
"""

from __future__ import annotations

import argparse
import math

from vespo_theory.cli.common import dump_json, format_table, positive_int

HELP = "exact and Monte Carlo bias, variance, E[phi], ESS, k-hat and bound checks per rule"


def _columns() -> list[str]:
    """The table columns: the result keys the estimators define (one list, in simulations)."""
    from simulations.estimators import RESULT_KEYS

    return list(RESULT_KEYS)


def add_arguments(p) -> None:
    from simulations.config import (
        BANDIT_RUN_FIELDS,
        ARConfig,
        BanditConfig,
        RunOptions,
        add_config_arguments,
    )

    sub = p.add_subparsers(dest="model", metavar="MODEL")
    sub.required = True
    b = sub.add_parser("bandit", help="K-armed bandit: exact (enumeration) and Monte Carlo")
    add_config_arguments(b, BanditConfig)
    add_config_arguments(b, RunOptions, BANDIT_RUN_FIELDS)
    b.add_argument(
        "--mc",
        dest="n_mc",
        type=positive_int,
        default=argparse.SUPPRESS,
        metavar="SAMPLES",
        help="old spelling of --n-mc",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object per rule")

    a = sub.add_parser("ar", help="tabular autoregressive model with staleness and mismatch")
    add_config_arguments(a, ARConfig)
    add_config_arguments(a, RunOptions)
    a.add_argument(
        "--adv-constant",
        type=float,
        metavar="A",
        help="shortcut for --adv-mode constant --adv-value A (the lattice method needs it)",
    )
    g = a.add_mutually_exclusive_group()
    g.add_argument("--exact", action="store_true", help="shortcut for --method exact")
    g.add_argument(
        "--mc",
        dest="mc_samples",
        type=positive_int,
        metavar="SAMPLES",
        help="shortcut for --method mc --n-mc SAMPLES",
    )
    a.add_argument("--json", action="store_true", help="print one JSON object per rule")


def _fmt(v, se=None) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        s = f"{v:.5g}" if math.isfinite(v) else str(v)
        return s + (f" ±{se:.2g}" if se is not None else "")
    return str(v)


def _print(records: list[dict], summary: dict, head: str) -> None:
    print(head)
    print(format_table([_row(r) for r in records], _columns()))
    print(
        f"\nraw weights: E[W] = {summary['E_W']:.12g} (M1: 1)   "
        f"log E[W^2] = {summary['log_E_W2']:.6g}   ESS/n = {summary['ess_W']:.4g}   "
        f"k-hat(W) = {_fmt(summary.get('khat_W'))}"
    )


def _ar_options(args):
    """RunOptions from the flags, with the shortcuts --exact and --mc SAMPLES folded in."""
    from simulations.config import RunOptions, config_from_args

    opts = config_from_args(RunOptions, args)
    if args.exact or args.mc_samples is not None:
        short = "--exact" if args.exact else "--mc"
        if opts.method != "auto":
            raise ValueError(f"{short} is a shortcut for --method: give one of the two")
        if args.exact:
            return RunOptions(**{**opts.to_dict(), "method": "exact"})
        return RunOptions(**{**opts.to_dict(), "method": "mc", "n_mc": args.mc_samples})
    return opts


def run(args) -> int:
    from simulations.cli.progress import progress, progress_enabled
    from simulations.config import BANDIT_RUN_FIELDS, RunOptions, config_from_args

    show = progress_enabled(args)
    if args.model == "bandit":
        from simulations.bandits import simulate_bandit
        from simulations.config import BanditConfig

        cfg = config_from_args(BanditConfig, args)
        opts = config_from_args(RunOptions, args, BANDIT_RUN_FIELDS)
        rules = opts.rule_objects()  # names resolved once, here
        with progress(show, "simulate bandit", total=len(rules) + 1) as step:
            res = simulate_bandit(cfg, rules, n_mc=opts.n_mc, progress=step)
        records = res["exact"] + res["mc"]
        if args.json:
            print(dump_json([_strip(r) for r in records]))
            return 0
        _print(res["exact"], res["summary"], "exact (enumeration over the K arms):")
        print(f"\nMonte Carlo ({opts.n_mc} draws, ± one standard error):")
        print(format_table([_row(r) for r in res["mc"]], _columns()))
        g = res["true_grad"]
        print(f"\ntrue policy gradient (wrt pi's logits): {', '.join(f'{x:.5g}' for x in g)}")
        return 0

    from simulations.config import ARConfig
    from simulations.runners import simulate_ar

    if (args.mu_probs is None) != (args.pi_probs is None):
        raise ValueError("--mu and --pi must be given together (context-free token laws)")
    if args.adv_constant is not None:
        args.adv_mode, args.adv_value = "constant", args.adv_constant
    cfg = config_from_args(ARConfig, args)
    opts = _ar_options(args)
    rules = opts.rule_objects()  # names resolved once, here
    with progress(show, "simulate ar", total=None) as step:
        res = simulate_ar(
            cfg,
            rules,
            method=opts.method,
            n_mc=opts.n_mc,
            max_sequences=opts.max_sequences,
            grid_points=opts.grid_points,
            progress=step,
        )
    if args.json:
        print(dump_json([_strip(r) for r in res["rules"]]))
        return 0
    head = f"method: {res['method']}"
    if res["method"] == "mc":
        head += f" ({res['n_mc']} sequences, ± one standard error)"
    if res.get("skipped_rules"):
        head += f"; token-level rules skipped by the lattice: {', '.join(res['skipped_rules'])}"
    _print(res["rules"], res["summary"], head)
    print(f"||true gradient|| = {res['true_grad_norm']:.6g} ({res.get('true_grad_method', '')})")
    return 0


def _row(r: dict) -> dict:
    se = r.get("se", {})
    return {c: _fmt(r.get(c), se.get(c)) for c in _columns()}


def _strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("mean", "cov")}
