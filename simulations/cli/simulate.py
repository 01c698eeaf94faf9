"""``vespo simulate``: exact and Monte Carlo statistics of every reshaping rule on a toy model.

``vespo simulate bandit --mu P --pi P --reward R`` (comma-separated lists) and
``vespo simulate ar --V V --T T --policy context-free|markov|prefix --staleness N`` (or
``--mu P --pi P --T T`` for context-free token distributions). See docs/simulations.md.
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


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _nonneg_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _common(p) -> None:
    p.add_argument(
        "--rule",
        action="append",
        metavar="NAME",
        help="a registered rule (repeat or comma-separate; default: every rule)",
    )
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object per rule")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="model", metavar="MODEL")
    sub.required = True
    b = sub.add_parser("bandit", help="K-armed bandit: exact (enumeration) and Monte Carlo")
    b.add_argument("--mu", type=_floats, required=True, help="behaviour probabilities P")
    b.add_argument("--pi", type=_floats, required=True, help="target probabilities P")
    b.add_argument("--reward", type=_floats, required=True, help="reward per arm R")
    b.add_argument("--baseline", type=float, default=0.0, help="A = reward - baseline")
    b.add_argument("--mc", type=positive_int, default=100_000, metavar="SAMPLES")
    _common(b)
    a = sub.add_parser("ar", help="tabular autoregressive model with staleness and mismatch")
    a.add_argument("--V", type=positive_int, default=4, help="vocabulary size (default 4)")
    a.add_argument("--T", type=positive_int, default=6, help="(maximum) length (default 6)")
    a.add_argument("--policy", choices=["context-free", "markov", "prefix"], default="context-free")
    a.add_argument("--n-hash", type=positive_int, default=8, help="prefix-hash states")
    a.add_argument("--staleness", type=_nonneg_int, default=1, metavar="N", help="N >= 0")
    a.add_argument("--drift", choices=["steps", "fixed", "random", "lattice"], default="fixed")
    a.add_argument("--drift-size", type=float, default=0.1, help="logit drift per step eps")
    a.add_argument("--step-size", type=float, default=0.5, help="learning rate (drift steps)")
    a.add_argument("--logit-scale", type=float, default=1.0, help="sd of pi's logits")
    a.add_argument(
        "--mismatch",
        choices=["none", "bf16", "fp16"],
        default="none",
        help="sampler = pi_old with logits rounded to this precision (three-policy setting)",
    )
    a.add_argument("--flip-prob", type=float, default=0.0, help="per-logit heavy-tailed flip")
    a.add_argument("--flip-scale", type=float, default=1.0, help="flip size (Student-t scale)")
    a.add_argument("--flip-df", type=float, default=1.5, help="flip Student-t degrees of freedom")
    a.add_argument("--mu", type=_floats, help="context-free behaviour token probabilities P")
    a.add_argument("--pi", type=_floats, help="context-free target token probabilities P")
    a.add_argument("--reward", type=_floats, help="token rewards (default: seeded N(0,1))")
    a.add_argument("--baseline", type=float, default=0.0, help="A = mean token reward - this")
    a.add_argument(
        "--adv-constant",
        type=float,
        metavar="A",
        help="constant advantage A for every sequence (needed by the lattice method)",
    )
    a.add_argument("--end-token", action="store_true", help="token V-1 ends the sequence")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--exact", action="store_true", help="enumeration, else lattice, else error")
    g.add_argument("--mc", type=positive_int, metavar="SAMPLES", help="Monte Carlo samples")
    a.add_argument("--grid", type=positive_int, default=2049, help="lattice points per token")
    a.add_argument(
        "--max-sequences",
        type=positive_int,
        default=1_000_000,
        help="enumeration limit on V^T (default 1e6)",
    )
    _common(a)


def _rules(args) -> list[str] | None:
    if not args.rule:
        return None
    return [r.strip() for item in args.rule for r in item.split(",") if r.strip()]


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
    rows = []
    for r in records:
        se = r.get("se", {})
        rows.append({c: _fmt(r.get(c), se.get(c)) for c in _columns()})
    print(head)
    print(format_table(rows, _columns()))
    print(
        f"\nraw weights: E[W] = {summary['E_W']:.12g} (M1: 1)   "
        f"log E[W^2] = {summary['log_E_W2']:.6g}   ESS/n = {summary['ess_W']:.4g}   "
        f"k-hat(W) = {_fmt(summary.get('khat_W'))}"
    )


def run(args) -> int:
    from simulations.runners import to_jsonable

    if args.model == "bandit":
        from simulations.bandits import simulate_bandit
        from simulations.config import BanditConfig

        cfg = BanditConfig(
            mu=args.mu, pi=args.pi, reward=args.reward, baseline=args.baseline, seed=args.seed
        )
        res = simulate_bandit(cfg, _rules(args), n_mc=args.mc)
        records = res["exact"] + res["mc"]
        if args.json:
            print(dump_json(to_jsonable([_strip(r) for r in records])))
            return 0
        _print(res["exact"], res["summary"], "exact (enumeration over the K arms):")
        print(f"\nMonte Carlo ({args.mc} draws, ± one standard error):")
        print(format_table([_row(r) for r in res["mc"]], _columns()))
        g = res["true_grad"]
        print(f"\ntrue policy gradient (wrt pi's logits): {', '.join(f'{x:.5g}' for x in g)}")
        return 0

    from simulations.config import ARConfig
    from simulations.runners import choose_method, simulate_ar
    from simulations.tabular import make_ar_model

    if (args.mu is None) != (args.pi is None):
        raise ValueError("--mu and --pi must be given together (context-free token laws)")
    cfg = ARConfig(
        V=len(args.mu) if args.mu is not None else args.V,
        T=args.T,
        policy=args.policy,
        n_hash=args.n_hash,
        logit_scale=args.logit_scale,
        N=args.staleness,
        drift=args.drift,
        drift_size=args.drift_size,
        step_size=args.step_size,
        end_token=args.end_token,
        precision=args.mismatch,
        flip_prob=args.flip_prob,
        flip_scale=args.flip_scale,
        flip_df=args.flip_df,
        mu_probs=args.mu,
        pi_probs=args.pi,
        reward=args.reward,
        adv_mode="constant" if args.adv_constant is not None else "reward",
        adv_value=args.adv_constant if args.adv_constant is not None else 1.0,
        baseline=args.baseline,
        seed=args.seed,
    )
    if args.mc:
        method, n_mc = "mc", args.mc
    else:
        n_mc = 100_000
        method = "auto"
        if args.exact:
            method = choose_method(make_ar_model(cfg), cfg, args.max_sequences)
            if method == "mc":
                raise ValueError(
                    f"no exact method applies: V^T = {cfg.V}^{cfg.T} exceeds --max-sequences "
                    "and the lattice needs a context-free policy, fixed length and "
                    "--adv-constant; use --mc SAMPLES"
                )
    res = simulate_ar(
        cfg,
        _rules(args),
        method=method,
        n_mc=n_mc,
        max_sequences=args.max_sequences,
        grid=args.grid,
    )
    if args.json:
        print(dump_json(to_jsonable([_strip(r) for r in res["rules"]])))
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
