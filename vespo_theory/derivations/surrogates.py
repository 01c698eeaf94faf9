r"""Surrogates f of the reshaping rules, stated once in SymPy, with W f'(W) = phi(W) checked.

For a rule whose gradient is ``phi(W) A grad log pi`` (one token, T = 1, W = r), a surrogate is a
function f with W f'(W) = phi(W): maximising ``f(W) A`` gives that gradient (THEORY.md §1). Each
surrogate here is piecewise: a list of ``(f, phi, lo, hi)`` on ``lo < W < hi``; f is stated, phi
is THEORY.md §4's coefficient. A check (claim ``F-<rule>``, listed by ``vespo derive``) proves

1. ``simplify(W f'(W) - phi) == 0`` on every piece (symbolic);
2. f is continuous at every breakpoint (symbolic), so f is one function, not a set of pieces;
3. phi equals the registry's coefficient (:mod:`vespo_theory.rules`) at a point inside every
   piece (numeric, float64), so the statement and the production code describe the same rule.

f is defined up to an additive constant; the constants are chosen so that f is continuous with
``f(W) = W`` on the unclipped IS piece (``f(W) = log W`` for REINFORCE, f(0) = 0 for VESPO).
Rules without a surrogate of W alone (per-decision IS: a prefix product; GMPO: a geometric mean
of token-clipped ratios) have no claim here.

VESPO's surrogate is claim K2's ``f = e^lam lam^-k lowergamma(k, lam W)``, checked here with
symbolic k, lam > 0. GSPO's is checked with a symbolic length T (s = W^(1/T)).

``wrong_premise=True`` states a wrong surrogate (f + W^2/10 on every piece) so that a test can see
each check fail.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy as sp

from vespo_theory.derivations import CheckRecord, register

W = sp.Symbol("W", positive=True)
T_SYM = sp.Symbol("T", positive=True, integer=True)
K_SYM, LAM_SYM = sp.symbols("k lam", positive=True)

# Rules with a surrogate; each registered as claim "F-<name>".
SURROGATE_RULES = (
    "is",
    "reinforce",
    "ppo_clip",
    "dual_clip",
    "cispo",
    "sapo",
    "gspo",
    "token_tis",
    "seq_tis",
    "token_mis",
    "seq_mis",
    "vespo",
)


def _q(v: float) -> sp.Rational:
    """A float parameter as an exact rational (0.2 -> 1/5), so simplification is exact."""
    return sp.nsimplify(v, rational=True)


def pieces(name: str, params, pos: bool, T=1, symbolic_vespo: bool = False):
    """The surrogate of rule ``name`` as ``[(f, phi, lo, hi), ...]`` in the symbol ``W``.

    ``pos`` selects the A >= 0 branch. ``T`` is the length (only GSPO and SAPO depend on it; SAPO's
    1/T is the token mean and is left out of f, so use T = 1 there). ``symbolic_vespo`` states
    VESPO's pieces with symbols k, lam instead of the parameter values.
    """
    oo = sp.oo
    if name == "is":
        return [(W, W, 0, oo)]
    if name == "reinforce":
        return [(sp.log(W), sp.Integer(1), 0, oo)]
    if name in ("ppo_clip", "dual_clip"):
        lo, hi = 1 - _q(params.eps_low), 1 + _q(params.eps_high)
        if pos:
            return [(W, W, 0, hi), (hi, sp.Integer(0), hi, oo)]
        if name == "ppo_clip":
            return [(lo, sp.Integer(0), 0, lo), (W, W, lo, oo)]
        c = _q(params.c)
        return [(lo, sp.Integer(0), 0, lo), (W, W, lo, c), (c, sp.Integer(0), c, oo)]
    if name == "cispo":
        lo, hi = 1 - _q(params.eps_low), 1 + _q(params.eps_high)
        return [
            (lo * sp.log(W) + lo - lo * sp.log(lo), lo, 0, lo),
            (W, W, lo, hi),
            (hi * sp.log(W) + hi - hi * sp.log(hi), hi, hi, oo),
        ]
    if name == "sapo":
        tau = _q(params.tau_pos if pos else params.tau_neg)
        f = 4 / tau / (1 + sp.exp(-tau * (W - 1)))  # (4/tau) sigmoid(tau (W - 1))
        return [(f, W * sp.sech(tau * (W - 1) / 2) ** 2 / T, 0, oo)]
    if name == "gspo":
        s = W ** (sp.Integer(1) / T)
        if pos:
            hi = 1 + _q(params.eps_high)
            return [(s, s / T, 0, hi**T), (hi, sp.Integer(0), hi**T, oo)]
        lo = 1 - _q(params.eps_low)
        return [(lo, sp.Integer(0), 0, lo**T), (s, s / T, lo**T, oo)]
    if name in ("token_tis", "seq_tis"):
        c = _q(params.cap)
        return [(W, W, 0, c), (c * sp.log(W) + c - c * sp.log(c), c, c, oo)]
    if name == "token_mis":
        lo, hi = _q(params.low), _q(params.high)
        return [(lo, sp.Integer(0), 0, lo), (W, W, lo, hi), (hi, sp.Integer(0), hi, oo)]
    if name == "seq_mis":
        c = _q(params.cap)
        return [(W, W, 0, c), (c, sp.Integer(0), c, oo)]
    if name == "vespo":
        if symbolic_vespo:
            k, lam = K_SYM, LAM_SYM
        else:
            k = _q(params.k_pos if pos else params.k_neg)
            lam = _q(params.lam_pos if pos else params.lam_neg)
        f = sp.exp(lam) * lam ** (-k) * sp.lowergamma(k, lam * W)
        return [(f, W**k * sp.exp(lam * (1 - W)), 0, oo)]
    raise ValueError(
        f"rule {name!r} has no surrogate; rules with one: {', '.join(SURROGATE_RULES)}"
    )


def _interior_point(lo, hi) -> sp.Rational:
    if hi == sp.oo:
        return sp.Rational(3, 2) * lo if lo != 0 else sp.Integer(2)
    return (sp.nsimplify(lo) + sp.nsimplify(hi)) / 2


@functools.lru_cache(maxsize=256)
def _lambdified(name: str, params, pos: bool):
    out = []
    for f, _phi, lo, hi in pieces(name, params, pos):
        fn = sp.lambdify(W, f, modules=["scipy", "numpy"])
        out.append((fn, float(lo), float(hi)))
    return out


def surrogate_numeric(name: str, w: np.ndarray, pos: np.ndarray, params) -> np.ndarray | None:
    """f(W) at T = 1 in float64 NumPy from the SymPy pieces; None for a rule without one."""
    if name not in SURROGATE_RULES:
        return None
    w = np.asarray(w, dtype=np.float64)
    pos = np.broadcast_to(np.asarray(pos, dtype=bool), w.shape)
    out = np.full(w.shape, np.nan)
    for sign in (True, False):
        sel_sign = pos == sign
        if not sel_sign.any():
            continue
        for fn, lo, hi in _lambdified(name, params, sign):
            sel = sel_sign & (w >= lo) & (w <= hi)
            if sel.any():
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    val = np.broadcast_to(np.asarray(fn(w[sel]), dtype=np.float64), w[sel].shape)
                out[sel] = val
    return out


def _registry_phi(name: str, params, pos: bool, w: float, T: int) -> float:
    from vespo_theory.rules import get_rule

    rule = get_rule(name)
    adv = np.array([1.0 if pos else -1.0])
    if rule.seq_only:
        return float(rule.seq_coefficient(np.array([math.log(w)]), adv, np.array([T]), params)[0])
    c = rule.coefficient(np.full((1, T), math.log(w) / T), np.ones((1, T), dtype=bool), adv, params)
    return float(c[0, 0])


def check_surrogate(name: str, params=None, wrong_premise: bool = False) -> CheckRecord:
    """Check W f'(W) = phi(W) on every piece, continuity of f, and phi == registry coefficient."""
    from vespo_theory.rules import get_rule

    params = get_rule(name).params if params is None else params
    problems: list[str] = []
    n_pieces = 0
    # Relative tolerance of the numeric cross-check: both sides evaluate the same elementary
    # functions in float64 in a different order (a few ulp each); 1e-10 leaves 10^5 ulp of room.
    rtol = 1e-10
    for pos in (True, False):
        side = "A>=0" if pos else "A<0"
        T_list = [T_SYM] if name == "gspo" else [1]
        sym_cases = [(T_list[0], False)] + ([(1, True)] if name == "vespo" else [])
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
        T_num = 3 if name == "gspo" else 1
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
    )
    return CheckRecord(
        id=f"F-{name}",
        statement=f"surrogate of rule {name}: W f'(W) = phi(W) with f = {f_text}",
        assumptions=(
            f"W > 0; T = 1 (one token) except GSPO (symbolic T); parameters {params}"
            + ("; VESPO also with symbolic k, lam > 0" if name == "vespo" else "")
            + ("; WRONG PREMISE: f + W^2/10" if wrong_premise else "")
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
