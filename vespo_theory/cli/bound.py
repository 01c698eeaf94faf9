"""``vespo bound``: argmax, M = sup phi, M^2, K = sup phi/W and the B2, P4, B3 bounds of the
VESPO kernel; ``--log-normal S2`` evaluates B2's and P4's bounds on log W ~ N(-S2/2, S2).

B2 (claim B2): E_mu[phi^2] <= M E_mu[phi] <= M^2 for any law of W. P4 (arXiv 2602.10693
Prop. 3.1, Eqs. 18-19): E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W] <= Z K C, with Z = E_mu[phi]
and the kernel's implicit proposal Q = mu phi / Z meeting E_Q[W] <= C (nothing in the method
enforces C); K is infinite for k < 1, where P4 gives no bound.
"""

from __future__ import annotations

import argparse
import math

from vespo_theory.bounds import (
    LOGNORMAL_S2_MAX,
    KernelBound,
    kernel_bound,
    lognormal_bounds,
    variance_factor,
)
from vespo_theory.cli.common import dump_json, format_table, positive_float, positive_int
from vespo_theory.params import VespoParams

HELP = (
    "print argmax k/lam, M = sup phi, M^2, K = sup phi/W and the B2, P4 and B3 bounds of the kernel"
)


def _log_normal_s2(text: str) -> float:
    """argparse type of --log-normal: the variance S2 of log W, finite, in (0, 1e6]."""
    v = positive_float(text)
    if v > LOGNORMAL_S2_MAX:
        raise argparse.ArgumentTypeError(
            f"must be at most {LOGNORMAL_S2_MAX:g} (variance of log W), got {text!r}"
        )
    return v


def add_arguments(p) -> None:
    p.add_argument("--k", type=positive_float, help="kernel exponent k > 0 (needs --lam)")
    p.add_argument("--lam", type=positive_float, help="kernel rate lam > 0 (needs --k)")
    p.add_argument(
        "--n",
        type=positive_int,
        default=1,
        help="batch size n for the batch-mean factor M^2/n (default 1: per sample)",
    )
    p.add_argument(
        "--log-normal",
        dest="log_normal",
        type=_log_normal_s2,
        metavar="S2",
        help=(
            "also evaluate B2's M^2 and P4's K E[phi W] on log W ~ N(-S2/2, S2) (E[W] = 1; "
            f"0 < S2 <= {LOGNORMAL_S2_MAX:g}) with the actual E[phi^2], by quadrature over log W"
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _fmt_log(x: float, log_x: float) -> str:
    """x to 6 digits, or exp(log x) where x over- or underflows float64 (log x finite)."""
    if math.isfinite(log_x) and (x == 0 or not math.isfinite(x)):
        return f"exp({log_x:.10g})"
    return _fmt(x)


def _kernel_row(b: KernelBound) -> dict:
    if b.argmax_K is not None:
        argmax_k = _fmt(b.argmax_K)
    else:
        argmax_k = "0+" if b.K_finite else "-"  # k = 1: the sup is the limit W -> 0+
    return {
        "k": _fmt(b.k),
        "lam": _fmt(b.lam),
        "argmax": _fmt(b.argmax),
        "M": _fmt(b.M),
        "M2": _fmt(b.M2),
        "argmax_K": argmax_k,
        "K": _fmt_log(b.K, b.log_K) if b.K_finite else "inf",
    }


_KERNEL_COLUMNS = ["k", "lam", "argmax", "M", "M2", "argmax_K", "K"]


def _bound_lines(classes: list[tuple[str, KernelBound]]) -> list[str]:
    """The B2 and P4 lines for one or two kernels (labelled by sign class when two)."""

    def each(sym: str, pairs: list[tuple[str, str]]) -> str:
        if len(classes) == 1:
            return f"{sym} = {pairs[0][1]}"
        return "; ".join(f"{name}: {sym} = {v}" for name, v in pairs)

    m2 = [(name, _fmt_log(b.M2, 2 * b.log_M)) for name, b in classes]
    out = [f"B2: E_mu[phi^2] <= M E_mu[phi] <= M^2   ({each('M^2', m2)})"]
    ks = [(name, _fmt_log(b.K, b.log_K)) for name, b in classes if b.K_finite]
    if ks:
        out.append(f"P4: E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W]   ({each('K', ks)})")
        out.append(
            "    <= Z K C if Q = mu phi / Z (Z = E_mu[phi]) has E_Q[W] <= C "
            "(arXiv 2602.10693 Prop. 3.1)"
        )
    out += [b.K_note() for _name, b in classes if not b.K_finite]
    return out


def _lognormal(classes: list[tuple[str, KernelBound]], s2: float) -> tuple[list[dict], list[str]]:
    """Records (JSON) and printed lines of B2 vs P4 under log W ~ N(-s2/2, s2)."""
    recs, rows = [], []
    for name, b in classes:
        r = lognormal_bounds(b.k, b.lam, s2)
        recs.append(r.as_dict())
        rows.append(
            {
                "class": name,
                "E[phi]": _fmt_log(r.E_phi, r.log_E_phi),
                "E[phi^2]": _fmt_log(r.E_phi2, r.log_E_phi2),
                "M E[phi]": _fmt_log(r.M_E_phi, b.log_M + r.log_E_phi),
                "M^2": _fmt_log(r.M2, 2 * b.log_M),
                "E[phi W]": _fmt_log(r.E_phiW, r.log_E_phiW),
                "K E[phi W]": _fmt_log(r.K_E_phiW, r.log_K_E_phiW) if b.K_finite else "inf",
                "smaller": {"P4": "P4: K E[phi W]", "M2": "B2: M^2", "equal": "equal"}[r.smaller],
            }
        )
    cols = list(rows[0])
    if len(classes) == 1:
        cols.remove("class")
    lines = [
        f"\nlog W ~ N(-S2/2, S2), S2 = {s2:g} (E[W] = 1); by quadrature over log W, relative "
        "error < 1e-10:",
        format_table(rows, cols),
    ]
    return recs, lines


def _b3_line(factor: str, n: int) -> str:
    return f"B3: Var[phi(W) g] <= {factor} * E||g||^2" + (
        " per sample" if n == 1 else f" for the mean of n = {n} sequences"
    )


def run(args) -> int:
    if (args.k is None) != (args.lam is None):
        raise ValueError("--k and --lam must be given together (or neither, for the defaults)")
    if args.k is not None:
        b = kernel_bound(args.k, args.lam)
        classes = [("k, lam", b)]
        ln = _lognormal(classes, args.log_normal) if args.log_normal is not None else None
        if args.json:
            d = b.as_dict()
            if ln is not None:
                d["lognormal"] = ln[0][0]
            print(dump_json(d))
            return 0
        print(format_table([_kernel_row(b)], _KERNEL_COLUMNS))
        for note in (b.overflow_note(), b.K_note() if b.K_finite else None):
            if note:
                print(note)
        factor = _fmt(b.M2 / args.n)
        if not math.isfinite(b.M2):
            factor = f"exp({2 * b.log_M - math.log(args.n):.10g})"
        print()
        print("\n".join(_bound_lines(classes)))
        print(_b3_line(factor, args.n))
        if ln is not None:
            print("\n".join(ln[1]))
        return 0
    params = VespoParams()
    pos, neg = (
        kernel_bound(params.k_pos, params.lam_pos),
        kernel_bound(params.k_neg, params.lam_neg),
    )
    classes = [("A >= 0", pos), ("A < 0", neg)]
    combined = variance_factor(params, n=args.n)
    ln = _lognormal(classes, args.log_normal) if args.log_normal is not None else None
    if args.json:
        d = {
            "pos": pos.as_dict(),
            "neg": neg.as_dict(),
            "combined_M2": max(pos.M2, neg.M2),
            "n": args.n,
            "variance_factor": combined,
        }
        if ln is not None:
            d["lognormal"] = {"pos": ln[0][0], "neg": ln[0][1]}
        print(dump_json(d))
        return 0
    rows = [{"class": name, **_kernel_row(b)} for name, b in classes]
    print(format_table(rows, ["class", *_KERNEL_COLUMNS]))
    for b in (pos, neg):
        for note in (b.overflow_note(), b.K_note() if b.K_finite else None):
            if note:
                print(note)
    print(f"\ncombined (B3, both sign classes): max(M_pos, M_neg)^2 = {_fmt(max(pos.M2, neg.M2))}")
    print("\n".join(_bound_lines(classes)))
    print(_b3_line(_fmt(combined), args.n))
    if ln is not None:
        print("\n".join(ln[1]))
    return 0
