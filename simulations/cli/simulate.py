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

AR_DESCRIPTION = """\
Per-rule bias, covariance trace, E[phi], E[phi^2], ESS, k-hat and VESPO's bound checks on a
tabular autoregressive model. Methods (the `method` column says which one made each row):

  multinomial  exact: context-free tokens of fixed length, summed over all C(T+V-1, V-1)
               token-count vectors (limit --max-count-vectors); every rule but
               per_decision_is (its coefficient depends on the token order)
  enumeration  exact: all V^T sequences (limit --max-sequences); any policy, every rule
  lattice      FFT law of log W (context-free, constant or no advantage, seq-only rules);
               exact when the token log-ratios lie on a lattice, else an approximation
               whose proven error bound is printed as +-bound next to each number
  monte-carlo  any model; +- one standard error

--method auto takes multinomial, else enumeration, else lattice, else Monte Carlo;
--exact the same without approximations (an error naming what to change instead).
Without --adv-constant / --reward, the advantage-free statistics are reported and
bias_norm, cosine, var_trace are left empty.

example (exact, 11476 count vectors; E[W] = 1, E[W^2] = (sum pi^2/mu)^150):
  vespo simulate ar --mu 0.5,0.3,0.2 --pi 0.42,0.33,0.25 --T 150 --exact --rule vespo --rule is
"""


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

    a = sub.add_parser(
        "ar",
        help="tabular autoregressive model with staleness and mismatch",
        description=AR_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(a, ARConfig)
    add_config_arguments(a, RunOptions)
    a.add_argument(
        "--adv-constant",
        type=float,
        metavar="A",
        help="shortcut for --adv-mode constant --adv-value A (without an advantage, E[phi], "
        "E[phi^2], ESS, k-hat and checks B1, B2 are still reported)",
    )
    g = a.add_mutually_exclusive_group()
    g.add_argument(
        "--exact",
        action="store_true",
        help="shortcut for --method exact: enumeration, the multinomial sum or an exact "
        "lattice, else an error saying what to change",
    )
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
    line = f"\nraw weights: E[W] = {summary['E_W']:.12g} (M1: 1)   "
    if "E_W2" in summary:
        line += f"E[W^2] = {summary['E_W2']:.12g}   "
    line += (
        f"log E[W^2] = {summary['log_E_W2']:.12g}   ESS/n = {summary['ess_W']:.4g}   "
        f"k-hat(W) = {_fmt(summary.get('khat_W'))} "
        f"(PSIS threshold min(1 - 1/log10 S, 0.7) = {_fmt(summary.get('khat_W_thresh'))})"
    )
    print(line)
    if "log_E_W2_closed_form" in summary:
        lc = summary["log_E_W2_closed_form"]
        print(
            f"closed form (M2): E[W^2] = (sum_v pi_v^2 / mu_v)^T = {math.exp(lc):.12g}   "
            f"log = {lc:.12g}"
        )


LEGEND = {
    "enumeration": "enumeration: exact (sum over all V^T sequences; float64 rounding only)",
    "multinomial": "multinomial: exact (sum over all token-count vectors; float64 rounding only)",
    "lattice-exact": "lattice: exact law on the lattice of the token log-ratios; +-x is the "
    "stated FFT round-off bound",
    "lattice": "lattice: APPROXIMATION (token log-ratios rounded to a grid); +-x is a proven "
    "bound on the absolute error (FFT round-off + discretisation)",
    "monte-carlo": "monte-carlo: +-x is one standard error",
}


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
            max_count_vectors=opts.max_count_vectors,
            grid_points=opts.grid_points,
            progress=step,
        )
    if args.json:
        print(dump_json([_strip(r) for r in res["rules"]]))
        return 0
    head = f"method: {res['method']}" + (" (exact)" if res.get("exact") else "")
    if res["method"] == "lattice" and not res.get("exact"):
        head += " (APPROXIMATION: ± is a proven bound on the absolute error)"
    if res["method"] == "monte-carlo":
        head += f" ({res['n_mc']} sequences, ± one standard error)"
    if res["method"] == "multinomial":
        head += f" ({res['summary']['count_vectors']} count vectors)"
    if res.get("skipped_rules"):
        why = res.get("skipped_why", {})
        head += "; skipped: " + ", ".join(
            f"{n} ({why[n]})" if n in why else n for n in res["skipped_rules"]
        )
    _print(res["rules"], res["summary"], head)
    kinds = {_legend_key(r) for r in res["rules"]}
    for k in LEGEND:
        if k in kinds:
            print(LEGEND[k])
    if res.get("note"):
        print(f"note: {res['note']}")
    g = res.get("true_grad_norm")
    if g is not None:
        print(f"||true gradient|| = {g:.6g} ({res.get('true_grad_method', '')})")
    return 0


def _legend_key(r: dict) -> str:
    if r.get("method") == "lattice" and r.get("exact"):
        return "lattice-exact"
    return str(r.get("method"))


#: Error bounds of the lattice method shown next to the numbers (abs_err key per column).
_BOUND_KEYS = {"E_phi": "E_phi", "E_phi2": "E_phi2", "var_trace": "var_trace", "bias_norm": "mean"}


def _row(r: dict) -> dict:
    se = dict(r.get("se") or {})
    err = r.get("abs_err")
    if isinstance(err, dict):
        se.update({c: err[k] for c, k in _BOUND_KEYS.items() if k in err})
    return {c: _fmt(r.get(c), se.get(c)) for c in _columns()}


def _strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("mean", "cov")}
