"""``vespo bound``: argmax, M = sup phi, M^2 and the B3 variance factor of the VESPO kernel."""

from __future__ import annotations

import math

from vespo_theory.bounds import kernel_bound, variance_factor
from vespo_theory.cli.common import dump_json, format_table, positive_float, positive_int
from vespo_theory.params import VespoParams

HELP = "print argmax k/lam, M = sup phi, M^2 and the B3 variance factor of the kernel"


def add_arguments(p) -> None:
    p.add_argument("--k", type=positive_float, help="kernel exponent k > 0 (needs --lam)")
    p.add_argument("--lam", type=positive_float, help="kernel rate lam > 0 (needs --k)")
    p.add_argument(
        "--n",
        type=positive_int,
        default=1,
        help="batch size n for the batch-mean factor M^2/n (default 1: per sample)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def run(args) -> int:
    if (args.k is None) != (args.lam is None):
        raise ValueError("--k and --lam must be given together (or neither, for the defaults)")
    if args.k is not None:
        b = kernel_bound(args.k, args.lam)
        if args.json:
            print(dump_json(b.as_dict()))
            return 0
        rows = [
            {
                "k": _fmt(b.k),
                "lam": _fmt(b.lam),
                "argmax": _fmt(b.argmax),
                "M": _fmt(b.M),
                "M2": _fmt(b.M2),
            }
        ]
        print(format_table(rows, ["k", "lam", "argmax", "M", "M2"]))
        if b.overflow_note():
            print(b.overflow_note())
        factor = _fmt(b.M2 / args.n)
        if not math.isfinite(b.M2):
            factor = f"exp({2 * b.log_M - math.log(args.n):.10g})"
        print(
            f"\nB3: Var[phi(W) g] <= {factor} * E||g||^2"
            + (" per sample" if args.n == 1 else f" for the mean of n = {args.n} sequences")
        )
        return 0
    params = VespoParams()
    pos, neg = (
        kernel_bound(params.k_pos, params.lam_pos),
        kernel_bound(params.k_neg, params.lam_neg),
    )
    combined = variance_factor(params, n=args.n)
    if args.json:
        print(
            dump_json(
                {
                    "pos": pos.as_dict(),
                    "neg": neg.as_dict(),
                    "combined_M2": max(pos.M2, neg.M2),
                    "n": args.n,
                    "variance_factor": combined,
                }
            )
        )
        return 0
    rows = []
    for sign, b in (("A >= 0", pos), ("A < 0", neg)):
        rows.append(
            {
                "class": sign,
                "k": _fmt(b.k),
                "lam": _fmt(b.lam),
                "argmax": _fmt(b.argmax),
                "M": _fmt(b.M),
                "M2": _fmt(b.M2),
            }
        )
    print(format_table(rows, ["class", "k", "lam", "argmax", "M", "M2"]))
    for b in (pos, neg):
        if b.overflow_note():
            print(b.overflow_note())
    print(f"\ncombined (B3, both sign classes): max(M_pos, M_neg)^2 = {_fmt(max(pos.M2, neg.M2))}")
    print(
        f"B3: Var[phi(W) g] <= {_fmt(combined)} * E||g||^2"
        + (" per sample" if args.n == 1 else f" for the mean of n = {args.n} sequences")
    )
    return 0
