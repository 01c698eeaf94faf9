r"""Surrogate claims F-<rule>: each stated surrogate f satisfies W f'(W) = phi(W), checked.

The statements (SymPy pieces ``(f, phi, lo, hi)`` per rule) live in
:mod:`vespo_theory.surrogate_forms`; the registry (:mod:`vespo_theory.rules`) names each rule's
statement and is the one list of rules with a surrogate. A check (claim ``F-<rule>``, listed by
``vespo derive``) proves

1. ``simplify(W f'(W) - phi) == 0`` on every piece (symbolic);
2. f is continuous at every breakpoint (symbolic), so f is one function, not a set of pieces;
3. phi equals the registry's coefficient at a point inside every piece (numeric, float64), so the
   statement and the production code describe the same rule.

Rules without a surrogate of W alone (per-decision IS: a prefix product; GMPO: a geometric mean
of token-clipped ratios; BAPO and VCPO: batch-level, their coefficient depends on the other
rows of the batch) have no claim here. VESPO's surrogate is claim K2's
``f = e^lam lam^-k lowergamma(k, lam W)``, checked here also with symbolic k, lam > 0 (so are
VESPO_sqrt's and VESPO_lin's). GSPO's, VESPO_sqrt's and VESPO_lin's are checked with a symbolic
length T (s = W^(1/T); W' = W^(1/sqrt(T)), W^(1/T)), and numerically at T = 3.

``wrong_premise=True`` states a wrong surrogate (f + W^2/10 on every piece) so that a test can see
each check fail.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from vespo_theory.claims import statement as claim_statement
from vespo_theory.derivations import CheckRecord, register, with_premises
from vespo_theory.rules import available, get_rule
from vespo_theory.surrogate_forms import symbols

W, T_SYM, K_SYM, LAM_SYM = symbols()

# Rules with a surrogate, in registry order; each registered as claim "F-<name>".
SURROGATE_RULES = tuple(n for n in available() if get_rule(n).has_surrogate)

# Rules whose surrogate depends on the length T beyond a 1/T factor: checked with a symbolic T.
_SYMBOLIC_T = frozenset({"gspo", "vespo_sqrt", "vespo_lin"})
# Rules whose kernel is also checked with symbolic k, lam > 0.
_SYMBOLIC_KERNEL = frozenset({"vespo", "vespo_sqrt", "vespo_lin"})


def pieces(name: str, params, pos: bool, T=1, symbolic_vespo: bool = False):
    """The surrogate of rule ``name`` as ``[(f, phi, lo, hi), ...]`` in the symbol ``W`` (the
    registry's statement, see :mod:`vespo_theory.surrogate_forms`)."""
    form = get_rule(name).surrogate_form
    if form is None:
        raise ValueError(
            f"rule {name!r} has no surrogate; rules with one: {', '.join(SURROGATE_RULES)}"
        )
    return form(params, pos, T=T, symbolic_vespo=symbolic_vespo)


def _interior_point(lo, hi) -> sp.Rational:
    if hi == sp.oo:
        return sp.Rational(3, 2) * lo if lo != 0 else sp.Integer(2)
    return (sp.nsimplify(lo) + sp.nsimplify(hi)) / 2


def _registry_phi(name: str, params, pos: bool, w: float, T: int) -> float:
    rule = get_rule(name)
    adv = np.array([1.0 if pos else -1.0])
    if rule.seq_only:
        return float(rule.seq_coefficient(np.array([math.log(w)]), adv, np.array([T]), params)[0])
    c = rule.coefficient(np.full((1, T), math.log(w) / T), np.ones((1, T), dtype=bool), adv, params)
    return float(c[0, 0])


def check_surrogate(name: str, params=None, wrong_premise: bool = False) -> CheckRecord:
    """Check W f'(W) = phi(W) on every piece, continuity of f, and phi == registry coefficient."""
    params = get_rule(name).params if params is None else params
    problems: list[str] = []
    n_pieces = 0
    # Relative tolerance of the numeric cross-check: both sides evaluate the same elementary
    # functions in float64 in a different order (a few ulp each); 1e-10 leaves 10^5 ulp of room.
    rtol = 1e-10
    for pos in (True, False):
        side = "A>=0" if pos else "A<0"
        T_list = [T_SYM] if name in _SYMBOLIC_T else [1]
        sym_cases = [(T_list[0], False)] + ([(1, True)] if name in _SYMBOLIC_KERNEL else [])
        for T, sym_vespo in sym_cases:
            ps = pieces(name, params, pos, T=T, symbolic_vespo=sym_vespo)
            if wrong_premise:
                ps = [(f + W**2 / 10, phi, lo, hi) for f, phi, lo, hi in ps]
            for i, (f, phi, lo, hi) in enumerate(ps):
                n_pieces += 1
                resid = sp.simplify((W * sp.diff(f, W) - phi).rewrite(sp.exp))
                if resid != 0:
                    problems.append(f"{side} piece {i} ({lo}, {hi}): W f' - phi = {resid}")
            for i in range(len(ps) - 1):
                b = ps[i][3]
                jump = sp.simplify(ps[i][0].subs(W, b) - ps[i + 1][0].subs(W, b))
                if jump != 0:
                    problems.append(f"{side}: f jumps by {jump} at W = {b}")
        # numeric: the stated phi is the registry's coefficient inside every piece
        T_num = 3 if name in _SYMBOLIC_T else 1
        for i, (_f, phi, lo, hi) in enumerate(pieces(name, params, pos, T=T_num)):
            w0 = _interior_point(lo, hi)
            stated = float(phi.subs(W, w0))
            got = _registry_phi(name, params, pos, float(w0), T_num)
            if not math.isclose(stated, got, rel_tol=rtol, abs_tol=1e-300):
                problems.append(
                    f"{side} piece {i}: stated phi({float(w0):.6g}) = {stated!r}, "
                    f"registry coefficient = {got!r}"
                )
    f_text = "; ".join(
        f"{'A>=0' if pos else 'A<0'}: "
        + ", ".join(f"{sp.sstr(f)} on ({lo}, {hi})" for f, _p, lo, hi in pieces(name, params, pos))
        for pos in (True, False)
    )
    status = "failed" if problems else "verified"
    detail = (
        f"{n_pieces} pieces: W f' - phi simplifies to 0 on each, f continuous, phi == registry "
        f"coefficient inside each piece (rtol {rtol})"
        if not problems
        else "; ".join(problems)
    ) + f"; f = {f_text}"
    return CheckRecord(
        id=f"F-{name}",
        statement=claim_statement(f"F-{name}"),
        assumptions=with_premises(
            f"F-{name}",
            f"parameters {params}"
            + ("; the kernel also with symbolic k, lam > 0" if name in _SYMBOLIC_KERNEL else "")
            + ("; WRONG PREMISE: f + W^2/10" if wrong_premise else ""),
        ),
        method="symbolic+numeric",
        status=status,
        detail=detail,
        seconds=0.0,
    )


def _make(name: str):
    def _check() -> CheckRecord:
        return check_surrogate(name)

    _check.__name__ = f"check_F_{name}"
    _check.__doc__ = f"Claim F-{name}: the surrogate of rule {name} (see the module docstring)."
    return _check


for _name in SURROGATE_RULES:
    register(f"F-{_name}")(_make(_name))
