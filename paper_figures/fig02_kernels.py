r"""Fig. 2 of arXiv 2602.10693 (the kernel comparison): surrogate f(W) and gradient weight phi(W).

A 2x2 grid, W in (0, 3]: surrogate f(W) on top, phi(W) below, A > 0 left, A < 0 right, for
VESPO, hard clip (PPO clip, eps 0.2) and SAPO, with sequence IS (phi = W, f = W) dashed as the
reference; ``--rules NAME ...`` adds any other registered rule.

Every curve comes from the rule registry :mod:`vespo_theory.rules`; this module holds no formula:

* phi(W) is ``Rule.coefficient`` on one token (T = 1, so W = r and token- and sequence-level
  rules are comparable), with ``adv = +1`` or ``-1`` picking the branch.
* f(W) is the registry's surrogate when the rule provides one; otherwise the primitive of
  phi(u)/u (since W f'(W) = phi(W)), integrated numerically with the composite midpoint rule on a
  grid ``refine`` times finer than the plotted one.
* A surrogate is defined up to an additive constant (which does not change the gradient). Every
  f is drawn with f(1) = 1, the on-policy point: this gives IS f = W, PPO clip min(W, 1+eps) for
  A > 0 and max(W, 1-eps) for A < 0 (the usual clipped objectives), and REINFORCE 1 + log W.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from paper_figures import FigureSpec
from paper_figures._style import styled

FIGURE = FigureSpec(
    name="fig02_kernels",
    claims=("K1", "K2", "K3", "K4"),
    title="reshaping rules: surrogate f(W) and gradient weight phi(W)",
    paper="Fig. 2",
    aliases=("kernels",),
    options=("rules",),
    caption=(
        "The reshaping rules of arXiv 2602.10693 (Fig. 2) as this toolkit deploys them: surrogate "
        "f(W) (top) and gradient weight phi(W) = W f'(W) (bottom) for A > 0 (left) and A < 0 "
        "(right), one token (T = 1, W = r). VESPO phi = W^k e^(lam(1-W)) with (k, lam) = (2, 3) / "
        "(3, 2), hard clip (PPO, eps 0.2), SAPO, and sequence IS dashed. Every curve is the rule "
        "registry's coefficient; f is anchored at f(1) = 1. Differs from the paper: the paper "
        "draws phi / max phi (peak 1); this panel draws the deployed phi(1) = 1 (the "
        "peak-normalised version is fig02_kernels_peak)."
    ),
)

# The figure's configuration; the sidecar records the resolved copy.
CONFIG: dict = {
    "w_max": 3.0,
    "n_points": 600,  # plotted points on (0, w_max]; n_points / w_max must be an integer
    "refine": 8,  # quadrature cells per plotted interval (midpoint rule for f)
    "rules": ["vespo", "ppo_clip", "sapo"],
    "reference": "is",
    "extra_rules": [],
}
# --fast (CI): a coarser grid, same curves.
FAST: dict = {"n_points": 150, "refine": 4}

SIGNS = (("pos", 1.0), ("neg", -1.0))


def resolve_config(fast: bool = False, extra_rules=(), **overrides) -> dict:
    """CONFIG with the --fast changes, extra rules appended (no duplicates) and overrides."""
    cfg = dict(CONFIG, rules=list(CONFIG["rules"]), extra_rules=list(CONFIG["extra_rules"]))
    if fast:
        cfg.update(FAST)
    for name in extra_rules:
        if name not in cfg["extra_rules"]:
            cfg["extra_rules"].append(name)
    cfg.update(overrides)
    return cfg


def _validate(cfg: dict) -> None:
    w_max, n, refine = cfg["w_max"], cfg["n_points"], cfg["refine"]
    if not (isinstance(w_max, (int, float)) and math.isfinite(w_max) and w_max >= 1.0):
        raise ValueError(f"w_max: must be a finite number >= 1 (W = 1 is drawn), got {w_max!r}")
    for key, v in (("n_points", n), ("refine", refine)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key}: must be an integer >= 1, got {v!r}")
    per_unit = n / w_max
    if abs(per_unit - round(per_unit)) > 1e-9:
        # f is anchored at f(1) = 1, so W = 1 must be a grid node.
        raise ValueError(
            f"n_points / w_max must be an integer so that W = 1 is a grid point, "
            f"got n_points={n}, w_max={w_max}"
        )


def rule_names(cfg: dict) -> list[str]:
    """The rules drawn, in order: the main ones, the reference, then the extra ones."""
    out: list[str] = []
    for name in [*cfg["rules"], cfg["reference"], *cfg["extra_rules"]]:
        if name not in out:
            out.append(name)
    return out


def _coefficient_single_token(rule, w: np.ndarray, adv_sign: float) -> np.ndarray:
    """phi(W) for T = 1 from the registry: ``Rule.coefficient`` on a [B, 1] batch; for a
    batch-level rule (BAPO, VCPO: the coefficient depends on the whole batch) ``Rule.phi``,
    which evaluates each point as a batch of one, so the grid itself is not taken as a batch."""
    tok_log_ratio = np.log(w)[:, None]
    adv = np.full(w.shape, adv_sign)
    if getattr(rule, "batch_level", False):
        c = np.asarray(rule.phi(tok_log_ratio[:, 0], adv), dtype=np.float64)[:, None]
    else:
        mask = np.ones_like(tok_log_ratio, dtype=bool)
        c = np.asarray(rule.coefficient(tok_log_ratio, mask, adv), dtype=np.float64)
    if c.shape != tok_log_ratio.shape:
        raise RuntimeError(
            f"rule {rule.name!r}: coefficient returned shape {c.shape}, expected "
            f"{tok_log_ratio.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise RuntimeError(f"rule {rule.name!r}: non-finite coefficient on W in (0, w_max]")
    return c[:, 0]


def _registry_surrogate(rule, w: np.ndarray, adv_sign: float) -> np.ndarray | None:
    """The registry's own surrogate f(W) at T = 1 (``Rule.surrogate``), or None without one.

    None too when the registry's surrogate statement is not installed (an ImportError from
    ``vespo_theory.derivations.surrogates``): the figure then uses the quadrature of phi(u)/u,
    and ``f_source`` records that.
    """
    fn = getattr(rule, "surrogate", None)
    if fn is None or not callable(fn):
        return None
    try:
        out = fn(np.log(w), np.full(w.shape, adv_sign))
    except ImportError:
        return None
    if out is None:
        return None
    return np.asarray(out, dtype=np.float64)


def _primitive(rule, u_edges: np.ndarray, adv_sign: float, i_one: int) -> np.ndarray:
    """F(u_j) - F(1) = int_1^{u_j} phi(u)/u du at every edge, composite midpoint rule.

    Midpoints never touch u = 0, where phi(u)/u can be 0/0 (IS) or 1/0 (REINFORCE).
    """
    mid = 0.5 * (u_edges[1:] + u_edges[:-1])
    h = np.diff(u_edges)
    cells = _coefficient_single_token(rule, mid, adv_sign) / mid * h
    cum = np.concatenate([[0.0], np.cumsum(cells)])
    return cum - cum[i_one]


def compute(cfg: dict | None = None) -> dict:
    """Evaluate phi and f of every drawn rule on the W grid; returns arrays and metadata.

    Returns a dict with ``w`` (the plotted grid), ``names``, ``phi[name][sign]`` and
    ``f[name][sign]`` (sign in "pos", "neg"), ``f_source[name]`` ("registry" or "quadrature"),
    ``f_check[name]`` (for registry surrogates: max |f_registry - f_quadrature| on the grid),
    ``params[name]`` (the rule's defaults), ``level[name]`` and the resolved ``config``.
    """
    from vespo_theory.rules import get_rule  # the one source of every curve

    cfg = dict(CONFIG if cfg is None else cfg)
    _validate(cfg)
    names = rule_names(cfg)
    rules = {name: get_rule(name) for name in names}  # ValueError listing valid names

    n_fine = cfg["n_points"] * cfg["refine"]
    u_edges = np.linspace(0.0, cfg["w_max"], n_fine + 1)
    i_one = int(round(n_fine / cfg["w_max"]))
    plot_idx = np.arange(cfg["refine"], n_fine + 1, cfg["refine"])
    w = u_edges[plot_idx]

    phi: dict = {}
    f: dict = {}
    f_source: dict = {}
    f_check: dict = {}
    for name, rule in rules.items():
        phi[name], f[name] = {}, {}
        for sign_name, sign in SIGNS:
            phi[name][sign_name] = _coefficient_single_token(rule, w, sign)
            f_quad = 1.0 + _primitive(rule, u_edges, sign, i_one)[plot_idx]
            f_reg = _registry_surrogate(rule, w, sign)
            if f_reg is not None:
                f_at_one = _registry_surrogate(rule, np.array([1.0]), sign)[0]
                f[name][sign_name] = f_reg - f_at_one + 1.0
                f_source[name] = "registry"
                # W f'(W) = phi: the registry's f must agree with the primitive of its own
                # coefficient; the largest difference is kept as a consistency check.
                dev = float(np.max(np.abs(f[name][sign_name] - f_quad)))
                f_check[name] = max(f_check.get(name, 0.0), dev)
            else:
                f[name][sign_name] = f_quad
                f_source[name] = "quadrature"
    return {
        "w": w,
        "names": names,
        "phi": phi,
        "f": f,
        "f_source": f_source,
        "f_check": f_check,
        "params": {n: _params_dict(r.params) for n, r in rules.items()},
        "level": {n: r.level for n, r in rules.items()},
        "config": cfg,
    }


def _params_dict(params) -> dict:
    if params is None:
        return {}
    if dataclasses.is_dataclass(params):
        return dataclasses.asdict(params)
    return dict(params)


def summary(data: dict, at=(0.5, 1.0, 2.0)) -> list[dict]:
    """phi at a few W (nearest grid points), the largest phi on the grid and where, and f(w_max)."""
    w = data["w"]
    rows = []
    for name in data["names"]:
        for sign_name, _ in SIGNS:
            p = data["phi"][name][sign_name]
            row = {"rule": name, "sign": "A>0" if sign_name == "pos" else "A<0"}
            for x in at:
                row[f"phi({x:g})"] = float(p[int(np.argmin(np.abs(w - x)))])
            j = int(np.argmax(p))
            row["max phi"] = float(p[j])
            row["argmax"] = float(w[j])
            row[f"f({w[-1]:g})"] = float(data["f"][name][sign_name][-1])
            rows.append(row)
    return rows


def meta(data: dict) -> dict:
    """Extra sidecar entries: each rule's parameters and where its f came from."""
    return {
        "rule_params": data["params"],
        "f_source": data["f_source"],
        "f_check": data["f_check"],
    }


def arrays(data: dict) -> dict:
    """Flat name -> array mapping of the plotted numbers (for the .npz next to the figure)."""
    out = {"w": data["w"]}
    for name in data["names"]:
        for sign_name, _ in SIGNS:
            out[f"phi__{name}__{sign_name}"] = data["phi"][name][sign_name]
            out[f"f__{name}__{sign_name}"] = data["f"][name][sign_name]
    return out


def _legend_label(name: str, data: dict, sign_name: str) -> str:
    from paper_figures._style import label

    p = data["params"].get(name, {})
    if f"k_{sign_name}" in p and f"lam_{sign_name}" in p:
        return f"{label(name)} ($k$={p[f'k_{sign_name}']:g}, $\\lambda$={p[f'lam_{sign_name}']:g})"
    return label(name)


@styled
def plot(data: dict):
    """The 2x2 figure (f on top, phi below; A > 0 left, A < 0 right) from ``compute``'s data."""
    from paper_figures._style import WIDTH_PAGE, colour, new_figure

    fig, axes = new_figure(2, 2, figsize=(WIDTH_PAGE, 5.4), sharex=True, constrained_layout=True)
    w = data["w"]
    ref = data["config"]["reference"]
    for col, (sign_name, _) in enumerate(SIGNS):
        side = "A > 0" if sign_name == "pos" else "A < 0"
        for row, (key, title, ylabel) in enumerate(
            (
                ("f", "surrogate $f(W)$", "surrogate $f(W)$"),
                ("phi", r"gradient weight $\varphi(W)$", r"gradient weight $\varphi(W) = W f'(W)$"),
            )
        ):
            ax = axes[row, col]
            for i, name in enumerate(data["names"]):
                is_ref = name == ref
                ax.plot(
                    w,
                    data[key][name][sign_name],
                    color=colour(name, i),
                    linestyle="--" if is_ref else "-",
                    linewidth=1.2 if is_ref else 1.8,
                    label=_legend_label(name, data, sign_name),
                    zorder=3 if is_ref else 2,  # dashed reference on top: hard clip = IS
                )
            ax.axvline(1.0, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_title(f"{side}: {title}")
            ax.set_ylabel(ylabel)
            ax.set_xlim(0.0, w[-1])
            if row == 1:
                ax.set_xlabel(r"$W = \pi_\theta / \mu$ (one token: $T = 1$, $W = r$)")
                ax.set_ylim(bottom=0.0)
            if row == 0:
                ax.legend(loc="lower right", frameon=False)
    fig.suptitle(r"Reshaping rules: surrogate $f(W)$ and gradient weight $\varphi(W)$, $f(1) = 1$")
    return fig


__all__ = [
    "CONFIG",
    "FAST",
    "FIGURE",
    "arrays",
    "meta",
    "compute",
    "plot",
    "resolve_config",
    "summary",
]
