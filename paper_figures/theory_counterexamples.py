r"""A gallery of the relaxed claims' minimal counterexamples, as ``vespo falsify`` finds them.

The relaxed claims R1-R9 of the catalogue (:mod:`vespo_theory.claims`, docs/theory.md) are
plausible beliefs next to VESPO's theory (arXiv 2602.10693) that are false. Each is written as
lhs <= rhs (:mod:`simulations.falsify.claims`) and the falsifier (hypothesis, seed 0, the
default budget of ``vespo falsify --all``) shrinks a violating instance to a minimal one. One
panel per claim: the two sides of the inequality on that instance (lhs above rhs: the claim
fails there). The instances and their replay commands are in the ``.npz`` and the sidecar, so
every bar can be re-evaluated with ``vespo falsify --replay '...'``. Nothing is cached on disk:
the searches run each time (about 5 s in all).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np

from paper_figures import FigureSpec
from paper_figures._io import merge_config
from paper_figures._style import styled


def _relaxed() -> tuple[str, ...]:
    from vespo_theory import claims

    return tuple(claims.ids("relaxed"))


FIGURE = FigureSpec(
    name="theory_counterexamples",
    claims=_relaxed(),
    title="the relaxed claims' minimal counterexamples (vespo falsify)",
    caption=(
        "Each relaxed claim R1-R9 (plausible beliefs next to the theory of arXiv 2602.10693; "
        "docs/theory.md) written as lhs <= rhs and evaluated exactly on the minimal "
        "counterexample that vespo falsify finds (hypothesis, seed 0, budget 100: the "
        "defaults of vespo falsify --all). The red bar (lhs) above the grey one (rhs) is the "
        "violation; the value of each side is printed on its bar, the quantity compared is "
        "written below the panel. Where rhs is a rounding tolerance the claim says lhs = 0. "
        "The instances and their replay commands are in the figure's .npz and sidecar."
    ),
)

CONFIG: dict = {"claims": list(FIGURE.claims), "budget": 100, "seed": 0}
FAST: dict = {}  # the searches take about 5 s in all; --fast changes nothing


def resolve_config(fast: bool = False, **overrides) -> dict:
    return merge_config(CONFIG, FAST, fast, overrides)


def compute(cfg: dict | None = None) -> dict:
    from paper_figures import _falsify
    from vespo_theory import claims

    cfg = dict(CONFIG if cfg is None else cfg)
    budget = cfg["budget"]
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ValueError(f"budget: an integer > 0, got {budget!r}")
    searchable = set(_falsify.claim_ids())
    ids = list(cfg["claims"])
    bad = [c for c in ids if c not in searchable]
    if not ids or bad:
        raise ValueError(
            f"claims: falsifiable claim IDs, got {bad or ids!r}; valid: {sorted(searchable)}"
        )
    rows = []
    for cid in ids:
        res = _falsify.search(cid, budget, cfg["seed"])
        ce = res.counterexample
        if ce is None:  # a relaxed claim the search did not break: shown, never invented
            rows.append({"claim": cid, "status": res.status, "lhs": np.nan, "rhs": np.nan,
                         "what": res.worst.what if res.worst else "", "instance": {},
                         "replay": ""})  # fmt: skip
            continue
        rows.append(
            {
                "claim": cid,
                "status": res.status,
                "lhs": float(ce["lhs"]),
                "rhs": float(ce["rhs"]),
                "what": ce["what"],
                "instance": ce["instance"],
                "replay": ce["replay"],
            }
        )
    return {
        "claims": [r["claim"] for r in rows],
        "statements": [claims.statement(r["claim"]) for r in rows],
        "status": [r["status"] for r in rows],
        "lhs": np.asarray([r["lhs"] for r in rows], dtype=np.float64),
        "rhs": np.asarray([r["rhs"] for r in rows], dtype=np.float64),
        "what": [r["what"] for r in rows],
        "instances": [r["instance"] for r in rows],
        "replay": [r["replay"] for r in rows],
        "config": cfg,
    }


def arrays(data: dict) -> dict:
    return {
        "claims": np.asarray(data["claims"]),
        "status": np.asarray(data["status"]),
        "lhs": data["lhs"],
        "rhs": data["rhs"],
        "gap": data["lhs"] - data["rhs"],
        "what": np.asarray(data["what"]),
        # the replay instance of each claim as JSON text (vespo falsify --replay takes it)
        "instance_json": np.asarray(
            [json.dumps({"claim": c, **i}) for c, i in zip(data["claims"], data["instances"])]
        ),
        "replay": np.asarray(data["replay"]),
    }


def summary(data: dict) -> list[dict]:
    return [
        {
            "claim": c,
            "status": s,
            "lhs": float(lhs),
            "rhs": float(rhs),
            "what": w[:60],
        }
        for c, s, lhs, rhs, w in zip(
            data["claims"], data["status"], data["lhs"], data["rhs"], data["what"]
        )
    ]


def meta(data: dict) -> dict:
    return {
        "counterexamples": [
            {"claim": c, "statement": st, "status": s, "what": w, "lhs": float(lhs),
             "rhs": float(rhs), "instance": inst, "replay": rp}
            for c, st, s, w, lhs, rhs, inst, rp in zip(
                data["claims"], data["statements"], data["status"], data["what"], data["lhs"],
                data["rhs"], data["instances"], data["replay"],
            )
        ]
    }  # fmt: skip


def evidence(arr: dict) -> dict[str, str]:
    """One line per relaxed claim, from the saved arrays (the ``.npz``)."""
    out = {}
    for c, s, lhs, rhs in zip(arr["claims"], arr["status"], arr["lhs"], arr["rhs"]):
        nd = _digits(float(lhs), float(rhs))  # enough digits to tell the two sides apart
        out[str(c)] = (
            f"minimal counterexample drawn in theory_counterexamples: lhs {lhs:.{nd}g} > rhs "
            f"{rhs:.{nd}g}"
            if str(s) == "violated"
            else f"the search found no counterexample ({s})"
        )
    return out


def _short(v) -> str | None:
    if isinstance(v, bool) or isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    return None  # nested tables (logits): in the .npz and the sidecar, not on the panel


def _instance_text(inst: dict, width: int) -> str:
    parts = [f"{k}={t}" for k, v in inst.items() if (t := _short(v)) is not None]
    return textwrap.fill("instance: " + ", ".join(parts), width, max_lines=2, placeholder=" ...")


def _digits(lhs: float, rhs: float) -> int:
    """Significant digits that tell lhs from rhs apart on the bar labels (3 at least)."""
    scale = max(abs(lhs), abs(rhs))
    gap = abs(lhs - rhs)
    if not (np.isfinite(scale) and gap > 0 and scale > 0):
        return 3
    return int(min(12, max(3, np.ceil(np.log10(scale / gap)) + 2)))


@styled
def plot(data: dict):
    from paper_figures._style import WIDTH_PAGE, colour, new_figure

    n = len(data["claims"])
    ncols = 3
    nrows = -(-n // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(WIDTH_PAGE, 2.75 * nrows),
                           constrained_layout=True, squeeze=False)  # fmt: skip
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes.flat[:n]):
        lhs, rhs = data["lhs"][i], data["rhs"][i]
        bars = ax.bar([0, 1], [lhs, rhs], color=[colour("vespo"), colour("is")], width=0.6)
        top = np.nanmax([lhs, rhs, 0.0])
        nd = _digits(lhs, rhs)
        for b, v in zip(bars, (lhs, rhs)):
            ax.text(b.get_x() + b.get_width() / 2, (v if np.isfinite(v) else 0) + 0.02 * top,
                    f"{v:.{nd}g}", ha="center", va="bottom", fontsize=7)  # fmt: skip
        ax.text(0.98, 0.97, f"gap {lhs - rhs:.2g}", transform=ax.transAxes, ha="right",
                va="top", fontsize=6.5)  # fmt: skip
        ax.grid(axis="x", visible=False)
        ax.set_xticks([0, 1], ["lhs", "rhs"])
        ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
        ax.tick_params(labelsize=7)
        title = textwrap.fill(f"{data['claims'][i]}: {data['statements'][i]}", 44)
        title = "\n".join(title.splitlines()[:4]) + (" ..." if title.count("\n") > 3 else "")
        ax.set_title(title, fontsize=6.5, loc="left")
        what = textwrap.fill(data["what"][i], 50)
        ax.set_xlabel(f"{what}\n{_instance_text(data['instances'][i], 56)}", fontsize=5.5)
        if data["status"][i] != "violated":
            ax.text(0.5, 0.5, "no counterexample found", transform=ax.transAxes, ha="center")
    return fig


__all__ = ["CONFIG", "FAST", "FIGURE", "arrays", "compute", "evidence", "meta", "plot", "summary"]
