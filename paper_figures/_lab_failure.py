"""One failure signal of one baseline at two staleness levels (arXiv 2602.10693 Figs. 8-10),
from the small-LM lab's block s1: what fig08/fig09/fig10 share (their config's defaults, spec,
``compute`` and ``plot``)."""

from __future__ import annotations

from paper_figures import _lab

BLOCK = "s1"

#: The three figures' ``plot``: two panels side by side.
plot = _lab.panels_plot(2, width=0.8, height_per_row=2.4)


def config(rules, columns, staleness=(1, 64), **more) -> dict:
    """A failure figure's ``CONFIG``: the default tables folder, the ``rules``, the two
    ``staleness`` levels (light = the first), the curve ``columns`` and any ``more`` keys."""
    return _lab.config(rules=list(rules), staleness=list(staleness), columns=list(columns), **more)


def spec(name: str, paper: str, title: str, what: str, config: dict):
    """A failure figure's ``FIGURE``: :func:`paper_figures._lab.lab_spec` of block s1, claim S2."""
    return _lab.lab_spec(name, paper, title, what, BLOCK, config, ("S2",))


def signal_panels(cfg: dict) -> dict:
    """Panels: one per column in ``cfg["columns"]``, one curve per rule in ``cfg["rules"]`` and
    staleness in ``cfg["staleness"]`` (the rule's colour, light = the first N, dark = the last);
    with ``cfg["panel_by"] == "staleness"`` one panel per N instead, rules overlaid."""
    curves = _lab.read_curves(cfg["tables"], BLOCK)
    ns = [int(n) for n in cfg["staleness"]]
    present = [n for n in ns if _lab.find_arms(curves, staleness=n)]
    _lab.need(curves, present, f"N in {ns}")
    panels = []
    if cfg.get("panel_by") == "staleness":
        for n in present:
            col = cfg["columns"][0]
            lines = []
            for rule in cfg["rules"]:
                for a in _lab.find_arms(curves, rule=rule, staleness=n):
                    label = f"{_lab.rule_label(rule)} ({_lab.nseeds(curves[a]['seeds'])})"
                    lines.append(_lab.line(curves[a], col, label, _lab.rule_colour(rule)))
            panels.append({"title": f"{_lab.TITLES[col]}, N = {n}",
                           "ylabel": _lab.YLABELS[col], "lines": lines})  # fmt: skip
    else:
        for col in cfg["columns"]:
            lines = []
            for rule in cfg["rules"]:
                for i, n in enumerate(sorted(present)):
                    for a in _lab.find_arms(curves, rule=rule, staleness=n):
                        c = _lab.shade(_lab.rule_colour(rule), 1 + 2 * i, 2 * len(present))
                        lines.append(_lab.line(curves[a], col, f"{_lab.rule_label(rule)}, "
                                               f"N = {n} ({_lab.nseeds(curves[a]['seeds'])})",
                                               c))  # fmt: skip
            panels.append({"title": _lab.TITLES[col], "ylabel": _lab.YLABELS[col],
                           "lines": lines})  # fmt: skip
    absent = [n for n in ns if n not in present]
    if absent and panels:
        panels[0]["note"] = f"not in the table: N = {', '.join(map(str, absent))}"
    return {"panels": panels, "config": cfg}
