"""``vespo report``: one self-contained HTML page (and a Markdown twin) to check VESPO's theory.

The page (arXiv 2602.10693; the claims of docs/theory.md) holds, in this order:

1. **Claims**: every claim of the catalogue (:mod:`vespo_theory.claims`) with its statement,
   the methods that check it, a verdict, and the evidence: the ``vespo derive`` record
   (:func:`vespo_theory.derivations.run_checks`), the ``vespo falsify`` result
   (:mod:`simulations.falsify`, seed 0 and the default budget, with the minimal counterexample
   and its replay command), the figures that bear on it (``FigureSpec.claims``, with the
   figure's own one-line ``evidence`` where it has one) and the small-LM lab's evidence where
   it exists; "none yet" otherwise.
2. **Figures**: every drawable figure of the registry (:func:`paper_figures.drawable`), run now
   or reused from ``DIR`` when its sidecar has the same config hash and git SHA, embedded as a
   base64 PNG with its caption; the figures whose data does not exist yet, by name with the
   command that will produce it.
3. **The S1-S8 table** (the paper's empirical claims, :data:`paper_figures.lab_planned.S_CLAIMS`):
   each claim's verdict from the lab study's ``docs/lm_study/verdicts.csv`` (favourable /
   primary comparisons, paired seeds, exploratory flag), or "not run yet" with the command
   that runs the study while that file is absent; nothing is invented.
4. **Provenance**: git SHA, package versions, UTC time, machine
   (:func:`vespo_theory.provenance.run_metadata`).

No network: no external CSS, script or font; images are ``data:`` URIs. Every string that comes
from a config, a claim or a run goes through :func:`html.escape` (``_e``), in the Markdown too.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_OUT = Path("outputs") / "report"
REPO = Path(__file__).resolve().parent.parent


def _e(value) -> str:
    """HTML-escape any value (quotes too): the one way a run's string enters the page."""
    return html.escape(str(value), quote=True)


def _md(value) -> str:
    """A Markdown table cell / text: HTML-escaped, pipes escaped, one line."""
    return _e(value).replace("|", "\\|").replace("\n", " ")


def _md_code(value) -> str:
    """Text inside a Markdown code span: ``<``, ``>`` and ``&`` escaped (quotes kept so a
    replay command can be copied), backticks replaced."""
    return html.escape(str(value), quote=False).replace("`", "'")


# ---------------------------------------------------------------------------------- evidence
def derive_records(ids: list[str] | None, say: Callable[[str], None]) -> dict[str, dict]:
    """claim ID -> ``vespo derive`` record (as a dict); ``ids`` None runs every check."""
    from vespo_theory.derivations import claim_ids, run_checks

    t0 = time.perf_counter()
    known = claim_ids()
    only = known if ids is None else [c for c in known if c in ids]
    recs = {r.id: r.as_dict() for r in run_checks(only)}
    say(f"derive: {len(recs)} checks ({time.perf_counter() - t0:.1f} s)")
    return recs


def falsify_results(
    ids: list[str] | None, budget: int, seed: int, say: Callable[[str], None]
) -> dict[str, dict]:
    """claim ID -> ``vespo falsify`` result (as a dict) for every searchable claim in ``ids``."""
    from paper_figures import _falsify

    t0 = time.perf_counter()
    out = {}
    for cid in _falsify.claim_ids():
        if ids is None or cid in ids:
            res = _falsify.search(cid, budget, seed)
            out[cid] = {**res.as_dict(), "as_expected": res.as_expected}
    say(f"falsify: {len(out)} searches, seed {seed}, budget {budget} "
        f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    return out


def lab_evidence() -> dict[str, str]:
    """Evidence from the small-LM lab's generated docs (docs/lm.md), where it exists.

    Only what ``scripts/regen_lm_docs.py`` generated is read: the measurement mode's check of
    B2 per length bin (E[phi^2] <= M^2). A missing file or block gives nothing.
    """
    path = REPO / "docs" / "lm.md"
    try:
        text = path.read_text()
    except OSError:
        return {}
    m = re.search(r"<!-- regen:lm_measure -->(.*?)<!-- /regen -->", text, re.S)
    if not m:
        return {}
    block = m.group(1)
    verdict = re.search(r"E\[phi\^2\] <= M\^2 in every bin: (\w+)", block)
    commit = re.search(r"commit ([0-9a-f]{7,40}(?:-dirty)?)", block)
    if not verdict:
        return {}
    return {
        "B2": (
            "small-LM lab, measurement mode (docs/lm.md, vespo train-lm --measure, generated "
            f"at commit {commit.group(1) if commit else 'unknown'}): E[phi^2] <= M^2 in every "
            f"length bin of the sampled responses: {verdict.group(1)}"
        )
    }


def _verdict(kind: str, derive: dict | None, falsify: dict | None) -> tuple[str, str, str]:
    """(short verdict, verdict sentence, css class) of one claim from its evidence."""
    if derive is None and falsify is None:
        return "no check yet", "no derivation and no counterexample search yet", "none"
    if kind == "relaxed":
        if falsify is None:
            return "no search yet", "no counterexample search yet", "none"
        if falsify["status"] == "violated":
            return "false, as expected", "false, as expected: a counterexample was found", "ok"
        return (
            "NOT refuted",
            "NOT refuted: no counterexample found (the theory predicts one)",
            "bad",
        )
    bad = []
    if derive is not None and derive["status"] == "failed":
        bad.append("the derivation failed")
    if falsify is not None and falsify["status"] == "violated":
        bad.append("a counterexample was found")
    if bad:
        return "CONTRADICTED", "CONTRADICTED: " + " and ".join(bad), "bad"
    parts = []
    if derive is not None:
        parts.append(f"derivation {derive['status']}")
    if falsify is not None:
        parts.append(f"no counterexample in {falsify['examples']} examples")
    if derive is not None and derive["status"] != "verified":
        return "inconclusive", "inconclusive: " + "; ".join(parts), "warn"
    return "supported", "supported: " + "; ".join(parts), "ok"


def _methods(derive: dict | None, falsify: dict | None, figs: list, lab: str | None) -> list[str]:
    out = []
    if derive is not None:
        out.append(f"derivation ({derive['method']}; vespo derive --only {derive['id']})")
    if falsify is not None:
        out.append(
            f"counterexample search (hypothesis, seed {falsify['seed']}, budget "
            f"{falsify['budget']}; vespo falsify --claim {falsify['claim']})"
        )
    if figs:
        out.append("exact simulation / computation (figures " + ", ".join(n for n, _ in figs) + ")")
    if lab:
        out.append("small-LM lab measurement")
    return out


def collect_claims(derive: dict, falsify: dict, figs: list[dict], lab: dict) -> list[dict]:
    """One dict per catalogued claim, catalogue order: text, methods, verdict, evidence."""
    from vespo_theory import claims

    by_claim: dict[str, list[tuple[str, str | None]]] = {}
    for f in figs:
        for c in f["spec"].claims:
            by_claim.setdefault(c, []).append((f["spec"].name, f["evidence"].get(c)))
    out = []
    for cid in claims.ids():
        spec = claims.get(cid)
        d, fz = derive.get(cid), falsify.get(cid)
        short, verdict, cls = _verdict(spec.kind, d, fz)
        fig_ev = by_claim.get(cid, [])
        out.append(
            {
                "id": cid,
                "kind": spec.kind,
                "statement": spec.statement,
                "assumptions": spec.assumptions,
                "source": spec.source,
                "derive": d,
                "falsify": fz,
                "figures": fig_ev,
                "lab": lab.get(cid),
                "verdict": verdict,
                "verdict_short": short,
                "verdict_class": cls,
                "methods": _methods(d, fz, fig_ev, lab.get(cid)),
            }
        )
    return out


# ----------------------------------------------------------------------------------- figures
def _figure_config(spec, fast: bool) -> dict:
    mod = importlib.import_module(spec.module)
    kwargs = {"extra_rules": []} if "rules" in spec.options else {}
    return mod.resolve_config(fast=fast, **kwargs)


def _reusable(spec, out: Path, fast: bool, sha: str | None) -> dict | None:
    """The sidecar of an already drawn figure in ``out`` if it matches this run, else None."""
    from vespo_theory.provenance import config_hash

    side, png = out / f"{spec.name}.json", out / f"{spec.name}.png"
    if not (side.is_file() and png.is_file()):
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    same_cfg = meta.get("config_hash") == config_hash(_figure_config(spec, fast))
    return meta if same_cfg and sha is not None and meta.get("git_sha") == sha else None


def _evidence(spec, npz: Path) -> dict[str, str]:
    import numpy as np

    mod = importlib.import_module(spec.module)
    if not hasattr(mod, "evidence") or not npz.is_file():
        return {}
    with np.load(npz, allow_pickle=False) as z:
        return mod.evidence({k: z[k] for k in z.files})


def draw_figures(
    out: Path, fast: bool, names: list[str] | None, redraw: bool, say: Callable[[str], None]
) -> list[dict]:
    """Draw (or reuse) every drawable figure (or those in ``names``) into ``out``."""
    import paper_figures
    from paper_figures.cli import draw
    from vespo_theory.provenance import git_sha

    specs = [s for s in paper_figures.drawable() if names is None or s.name in names]
    sha = git_sha()
    done = []
    for i, spec in enumerate(specs, 1):
        t0 = time.perf_counter()
        meta = None if redraw else _reusable(spec, out, fast, sha)
        how = "reused"
        if meta is None:
            draw(spec, fast=fast, out_dir=out)
            meta = json.loads((out / f"{spec.name}.json").read_text())
            how = "drawn"
        ev = _evidence(spec, out / f"{spec.name}.npz")
        done.append({"spec": spec, "meta": meta, "how": how, "evidence": ev,
                     "png": out / f"{spec.name}.png"})  # fmt: skip
        say(f"figures [{i}/{len(specs)}] {spec.name}: {how} ({time.perf_counter() - t0:.1f} s)")
    return done


# ------------------------------------------------------------------------------------ render
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0 auto;max-width:1100px;padding:1.2em 1.5em;color:#1a1a1a;line-height:1.45;
 font-size:15px;background:#fff}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;
 margin-top:2em}h3{margin:.2em 0}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #d6d6d6;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
code,pre{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.85em}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap;
 word-break:break-all;margin:.3em 0}
.badge{display:inline-block;white-space:nowrap;padding:.05em .5em;border-radius:.8em;
 font-size:.85em;
 font-weight:600}
.ok{background:#dff3df;color:#14591a}.bad{background:#fbdada;color:#8a1010}
.warn{background:#fff1cc;color:#6b4e00}.none{background:#eee;color:#555}
.claim{border:1px solid #ddd;border-radius:6px;padding:.6em .9em;margin:.8em 0}
.claim .stmt{font-size:1.02em;margin:.3em 0}.small{font-size:.85em;color:#444}
.ev{display:grid;grid-template-columns:12.5em 1fr;gap:.2em .8em;margin:.4em 0 .2em 0}
.ev dt{font-weight:600;margin:0}.ev dd{margin:0;min-width:0}
figure{margin:1em 0 2em 0;border-top:1px solid #eee;padding-top:.6em}
figure img{max-width:100%;height:auto;display:block;margin:.5em auto;border:1px solid #eee}
figcaption{font-size:.9em}
.toc a{margin-right:1em}.summary td:first-child,.summary td:last-child{white-space:nowrap}
details summary{cursor:pointer}
"""


#: A derive record's detail longer than this is folded (<details>; still in the DOM).
DETAIL_OPEN = 400


def _badge(text: str, cls: str) -> str:
    return f'<span class="badge {_e(cls)}">{_e(text)}</span>'


def _falsify_html(fz: dict) -> str:
    head = (
        f"{_e(fz['status'])} (expected {_e(fz['expected'])}) after {_e(fz['examples'])} of "
        f"{_e(fz['budget'])} examples, seed {_e(fz['seed'])}"
    )
    ce = fz.get("counterexample")
    if not ce:
        worst = ""
        if fz.get("lhs") is not None:
            worst = (
                f"<br>closest instance: {_e(fz['what'])}: lhs {_e(_num(fz['lhs']))} &lt;= rhs "
                f"{_e(_num(fz['rhs']))}"
            )
        return head + worst
    return (
        f"{head}<br>minimal counterexample: <code>{_e(ce['what'])}</code>: lhs "
        f"{_e(_num(ce['lhs']))} &gt; rhs {_e(_num(ce['rhs']))} (gap {_e(_num(ce['gap']))})"
        f"<br>instance:<pre>{_e(json.dumps(ce['instance']))}</pre>"
        f"replay:<pre>{_e(ce['replay'])}</pre>"
    )


def _num(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _claim_html(c: dict) -> str:
    ev = ['<dl class="ev">']
    d = c["derive"]
    ev.append("<dt>derive</dt><dd>")
    if d is None:
        ev.append("none yet")
    else:
        head = f"{_e(d['status'])} ({_e(d['method'])}, {_e(d['seconds'])} s)"
        body = f"{_e(d['detail'])}<br><span class='small'>premises: {_e(d['assumptions'])}</span>"
        if len(d["detail"]) > DETAIL_OPEN:
            ev.append(f"<details><summary>{head}: the derivation's record "
                      f"({len(d['detail'])} characters)</summary>{body}</details>")  # fmt: skip
        else:
            ev.append(f"{head}: {body}")
    ev.append("</dd><dt>falsify</dt><dd>")
    ev.append("none yet" if c["falsify"] is None else _falsify_html(c["falsify"]))
    ev.append("</dd><dt>simulation and figures</dt><dd>")
    if not c["figures"]:
        ev.append("none yet")
    else:
        items = []
        for name, line in c["figures"]:
            link = f'<a href="#fig-{_e(name)}">{_e(name)}</a>'
            items.append(f"{link}: {_e(line)}" if line else f"{link} (see its caption)")
        ev.append("<br>".join(items))
    ev.append("</dd><dt>LM lab</dt><dd>")
    ev.append(_e(c["lab"]) if c["lab"] else "none yet")
    ev.append("</dd></dl>")
    methods = "; ".join(_e(m) for m in c["methods"]) or "none yet"
    return (
        f'<div class="claim" id="claim-{_e(c["id"])}"><h3>{_e(c["id"])} '
        f'<span class="small">({_e(c["kind"])})</span> {_badge(c["verdict"], c["verdict_class"])}'
        f'</h3><div class="stmt">{_e(c["statement"])}</div>'
        f'<div class="small">assumptions: {_e(c["assumptions"])}<br>source: {_e(c["source"])}'
        f"<br>method: {methods}</div>{''.join(ev)}</div>"
    )


def _figure_html(f: dict) -> str:
    spec, meta = f["spec"], f["meta"]
    data = base64.b64encode(f["png"].read_bytes()).decode("ascii")
    claims = ", ".join(f'<a href="#claim-{_e(c)}">{_e(c)}</a>' for c in spec.claims) or "none"
    paper = f" ({_e(spec.paper)})" if spec.paper else ""
    return (
        f'<figure id="fig-{_e(spec.name)}"><h3>{_e(spec.name)}{paper}: {_e(spec.title)}</h3>'
        f'<img alt="{_e(spec.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(spec.caption)}<br><span class='small'>evidence for: {claims}; "
        f"{_e(f['how'])}; config hash {_e(str(meta.get('config_hash'))[:12])}, git "
        f"{_e(meta.get('git_sha'))}; files {_e(', '.join(meta.get('files', [])))}</span>"
        "</figcaption></figure>"
    )


_S_CLASS = {"supported": "ok", "partly": "warn", "not reproduced": "bad"}


def _s_rows(tables=None) -> list[dict]:
    """One row per claim S1-S8: its verdict from the study's ``verdicts.csv`` (favourable /
    primary comparisons, paired seeds, exploratory flag), or "not run yet" when that file does
    not exist; the command that produces it, the block's config and the figures."""
    import paper_figures
    from paper_figures import _lab
    from paper_figures.lab_planned import S_CLAIMS, planned_command, verdicts

    found = verdicts(_lab.DEFAULT_TABLES if tables is None else tables)
    figs: dict[str, list[str]] = {}
    for spec in paper_figures.registry().values():
        for c in spec.claims:
            if c in S_CLAIMS:
                figs.setdefault(c, []).append(spec.name)
    rows = []
    for sid, s in S_CLAIMS.items():
        v = (found or {}).get(sid)
        if v is None:
            status, detail = "not run yet", "–"
        else:
            status = v.get("verdict") or "not run"
            detail = "–"
            if v.get("primary"):
                detail = f"{v.get('favourable', '?')}/{v['primary']} favourable"
                if v.get("seeds"):
                    detail += f", {v['seeds']} paired seeds"
                if str(v.get("exploratory")) == "True":
                    detail += " (exploratory)"
            if v.get("not_judged"):
                nj = f"not judged: {v['not_judged']}"
                detail = nj if detail == "–" else f"{detail}; {nj}"
        rows.append({"id": sid, "statement": s["statement"], "paper": s["paper"],
                     "status": status, "class": _S_CLASS.get(status, "none"),
                     "detail": detail, "command": planned_command(sid), "config": s["config"],
                     "figures": figs.get(sid, [])})  # fmt: skip
    return rows


def _s_note(rows: list[dict]) -> str:
    if all(r["status"] == "not run yet" for r in rows):
        return S_NOTE
    return (
        "The paper's empirical claims (arXiv 2602.10693 §4) tested at small scale by the lab's "
        "study (a small LM trained here on synthetic tasks; protocol and verdict rules in "
        "docs/lm.md, written before the runs). Verdicts from docs/lm_study/verdicts.csv; "
        "'exploratory' = fewer than 10 paired seeds."
    )


S_NOTE = (
    "The paper's empirical claims (arXiv 2602.10693 §4) are tested at small scale by the "
    "small-LM lab's study (configs/study/<block>.json; protocol in docs/lm.md). Its tables "
    "(docs/lm_study/verdicts.csv) do not exist yet, so no result is shown; the command runs "
    "every block and writes them."
)


def render_html(ctx: dict) -> str:
    claims, figs, missing, s_rows, prov = (
        ctx["claims"], ctx["figures"], ctx["missing"], ctx["s_rows"], ctx["provenance"]
    )  # fmt: skip
    counts: dict[str, int] = {}
    for c in claims:
        counts[c["verdict_class"]] = counts.get(c["verdict_class"], 0) + 1
    names = {"ok": "as the theory predicts", "bad": "against the theory", "warn": "inconclusive",
             "none": "no check yet"}  # fmt: skip
    count_text = ", ".join(f"{counts[k]} {names[k]}" for k in names if counts.get(k))
    p = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         "<title>VESPO theory verification report</title>",
         f"<style>{CSS}</style></head><body>",
         "<h1>VESPO theory verification report</h1>",
         "<p>The claims of VESPO's theory (Shen et al., <i>VESPO: Variational Sequence-level "
         "Soft Policy Optimization for Off-Policy LLM Training</i>, arXiv 2602.10693, v3; the "
         "catalogue of docs/theory.md), each with the evidence this toolkit produced in this "
         f"run, its figures, and the paper's empirical claims S1-S8. {len(claims)} claims: "
         f"{_e(count_text)}. Generated by <code>{_e(ctx['command'])}</code> at "
         f"{_e(prov['timestamp_utc'])}, git {_e(prov['git_sha'])}.</p>",
         '<p class="toc"><a href="#claims">Claims</a><a href="#figures">Figures</a>'
         '<a href="#s-table">S1-S8</a><a href="#provenance">Provenance</a></p>',
         '<h2 id="claims">1. Claims</h2>',
         '<table class="summary"><tr><th>ID</th><th>kind</th><th>statement</th><th>method</th>'
         "<th>verdict</th></tr>"]  # fmt: skip
    for c in claims:
        meth = ", ".join(m.split(" (")[0] for m in c["methods"]) or "none yet"
        p.append(
            f'<tr><td><a href="#claim-{_e(c["id"])}">{_e(c["id"])}</a></td><td>{_e(c["kind"])}'
            f"</td><td>{_e(c['statement'])}</td><td>{_e(meth)}</td>"
            f"<td>{_badge(c['verdict_short'], c['verdict_class'])}</td></tr>"
        )
    p.append("</table>")
    p.extend(_claim_html(c) for c in claims)
    p.append(f'<h2 id="figures">2. Figures ({len(figs)} drawn)</h2>')
    p.extend(_figure_html(f) for f in figs)
    if missing:
        p.append(f"<h3>Figures and tables whose data does not exist yet ({len(missing)})</h3>")
        p.append("<table><tr><th>name</th><th>reproduces</th><th>what</th><th>claims</th>"
                 "<th>command that will produce its data</th></tr>")  # fmt: skip
        for s in missing:
            p.append(
                f"<tr><td>{_e(s.name)}</td><td>{_e(s.paper)}</td><td>{_e(s.title)}</td>"
                f"<td>{_e(', '.join(s.claims))}</td><td><code>{_e(s.data_command)}</code>"
                f"{' (planned)' if s.planned else ''}</td></tr>"
            )
        p.append("</table>")
    p.append('<h2 id="s-table">3. The paper\'s empirical claims S1-S8</h2>')
    p.append(f"<p>{_e(_s_note(s_rows))}</p>")
    p.append("<table><tr><th>claim</th><th>what the paper reports</th><th>paper</th>"
             "<th>verdict</th><th>command</th><th>config</th><th>comparisons</th>"
             "<th>figures</th></tr>")  # fmt: skip
    for r in s_rows:
        p.append(
            f'<tr id="claim-{_e(r["id"])}"><td>{_e(r["id"])}</td><td>{_e(r["statement"])}</td>'
            f"<td>{_e(r['paper'])}</td><td>{_badge(r['status'], r['class'])}</td>"
            f"<td><code>{_e(r['command'])}</code></td><td><code>{_e(r['config'])}</code></td>"
            f"<td>{_e(r['detail'])}</td><td>{_e(', '.join(r['figures']))}</td></tr>"
        )
    p.append("</table>")
    p.append('<h2 id="provenance">4. Provenance</h2><table>')
    for k, v in _prov_rows(prov):
        p.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    p.append("</table></body></html>\n")
    return "\n".join(p)


def _prov_rows(prov: dict) -> list[tuple[str, str]]:
    vers = ", ".join(f"{k} {v}" for k, v in prov["versions"].items() if v is not None)
    return [
        ("git SHA", str(prov["git_sha"])),
        ("time (UTC)", prov["timestamp_utc"]),
        ("wall time", f"{prov['wall_time_s']:.1f} s"),
        ("machine", prov["machine"]),
        ("platform", prov["platform"]),
        ("versions", vers),
        ("config", json.dumps(prov["config"], sort_keys=True)),
        ("config hash", prov["config_hash"]),
        ("command", prov["command"]),
    ]


def render_md(ctx: dict) -> str:
    claims, figs, missing, s_rows, prov = (
        ctx["claims"], ctx["figures"], ctx["missing"], ctx["s_rows"], ctx["provenance"]
    )  # fmt: skip
    p = ["# VESPO theory verification report", "",
         "The claims of VESPO's theory (arXiv 2602.10693, v3; the catalogue of docs/theory.md) "
         "with the evidence of this run, the figures, and the paper's empirical claims S1-S8. "
         f"Generated by `{_md_code(ctx['command'])}` at {_md(prov['timestamp_utc'])}, git "
         f"{_md(prov['git_sha'])}. The HTML twin (report.html) embeds the same figures.", "",
         "## 1. Claims", "", "| ID | kind | statement | method | verdict |",
         "|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        meth = ", ".join(m.split(" (")[0] for m in c["methods"]) or "none yet"
        p.append(f"| {_md(c['id'])} | {_md(c['kind'])} | {_md(c['statement'])} | {_md(meth)} | "
                 f"{_md(c['verdict'])} |")  # fmt: skip
    p.append("")
    for c in claims:
        p += [f"### {_md(c['id'])} ({_md(c['kind'])}): {_md(c['verdict'])}", "",
              _md(c["statement"]), "", f"- assumptions: {_md(c['assumptions'])}",
              f"- source: {_md(c['source'])}",
              f"- method: {_md('; '.join(c['methods']) or 'none yet')}"]  # fmt: skip
        d = c["derive"]
        p.append(
            "- derive: none yet"
            if d is None
            else f"- derive: {_md(d['status'])} ({_md(d['method'])}): {_md(d['detail'])}"
        )
        fz = c["falsify"]
        if fz is None:
            p.append("- falsify: none yet")
        else:
            p.append(f"- falsify: {_md(fz['status'])} (expected {_md(fz['expected'])}) after "
                     f"{_md(fz['examples'])} of {_md(fz['budget'])} examples, seed "
                     f"{_md(fz['seed'])}")  # fmt: skip
            ce = fz.get("counterexample")
            if ce:
                p.append(f"  - minimal counterexample: {_md(ce['what'])}: lhs "
                         f"{_md(_num(ce['lhs']))} > rhs {_md(_num(ce['rhs']))}; instance "
                         f"`{_md_code(json.dumps(ce['instance']))}`")  # fmt: skip
                p.append(f"  - replay: `{_md_code(ce['replay'])}`")
        if c["figures"]:
            p.append("- simulation and figures: " + "; ".join(
                f"{_md(n)}: {_md(line)}" if line else f"{_md(n)} (see its caption)"
                for n, line in c["figures"]))  # fmt: skip
        else:
            p.append("- simulation and figures: none yet")
        p.append(f"- LM lab: {_md(c['lab']) if c['lab'] else 'none yet'}")
        p.append("")
    p += [f"## 2. Figures ({len(figs)} drawn)", ""]
    for f in figs:
        spec = f["spec"]
        paper = f" ({_md(spec.paper)})" if spec.paper else ""
        p += [f"### {_md(spec.name)}{paper}: {_md(spec.title)}", "",
              f"![{_md(spec.name)}]({_md(f['png'].name)})", "", _md(spec.caption), "",
              f"Evidence for: {_md(', '.join(spec.claims) or 'none')}; {_md(f['how'])}; config "
              f"hash {_md(str(f['meta'].get('config_hash'))[:12])}.", ""]  # fmt: skip
    if missing:
        p += [f"### Figures and tables whose data does not exist yet ({len(missing)})", "",
              "| name | reproduces | what | claims | command that will produce its data |",
              "|---|---|---|---|---|"]  # fmt: skip
        for s in missing:
            p.append(f"| {_md(s.name)} | {_md(s.paper)} | {_md(s.title)} | "
                     f"{_md(', '.join(s.claims))} | `{_md_code(s.data_command)}`"
                     f"{' (planned)' if s.planned else ''} |")  # fmt: skip
        p.append("")
    p += ["## 3. The paper's empirical claims S1-S8", "", _md(_s_note(s_rows)), "",
          "| claim | what the paper reports | paper | verdict | command | config | comparisons "
          "| figures |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in s_rows:
        p.append(f"| {_md(r['id'])} | {_md(r['statement'])} | {_md(r['paper'])} | "
                 f"{_md(r['status'])} | `{_md_code(r['command'])}` | `{_md_code(r['config'])}` "
                 f"| {_md(r['detail'])} | {_md(', '.join(r['figures']))} |")  # fmt: skip
    p += ["", "## 4. Provenance", "", "| | |", "|---|---|"]
    p += [f"| {_md(k)} | {_md(v)} |" for k, v in _prov_rows(prov)]
    return "\n".join(p) + "\n"


# ------------------------------------------------------------------------------------- build
def build(
    out_dir=None,
    *,
    fast: bool = False,
    redraw: bool = False,
    figures: list[str] | None = None,
    claim_ids: list[str] | None = None,
    budget: int | None = None,
    seed: int = 0,
    command: str = "vespo report",
    progress: Callable[[str], None] | None = print,
) -> dict[str, Path]:
    """Write ``report.html`` and ``report.md`` (and the figures) into ``out_dir``.

    ``figures`` / ``claim_ids`` restrict the figures drawn and the claims whose derive and
    falsify evidence is run (None: all; every catalogued claim is listed either way: a claim
    left out says "none yet"). Returns the paths written.
    """
    import paper_figures
    from paper_figures import _falsify
    from vespo_theory.cli.common import usable_out_dir
    from vespo_theory.provenance import run_metadata

    def say(text: str) -> None:
        if progress is not None:
            progress(f"[report] {text}")

    t_all = time.perf_counter()
    out = usable_out_dir(out_dir if out_dir is not None else DEFAULT_OUT, "--out")
    if budget is None:
        budget = _falsify.default_budget()
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ValueError(f"budget: an integer > 0, got {budget!r}")
    if figures is not None:
        valid = [s.name for s in paper_figures.drawable()]
        bad = [n for n in figures if n not in valid]
        if bad:
            raise ValueError(f"figures: unknown or not drawable {bad}; valid: {', '.join(valid)}")
    say("claims: running vespo derive and vespo falsify")
    derive = derive_records(claim_ids, say)
    falsify = falsify_results(claim_ids, budget, seed, say)
    lab = lab_evidence()
    say(f"LM lab: evidence for {len(lab)} claim(s) from docs/lm.md")
    figs = draw_figures(out, fast, figures, redraw, say)
    claims = collect_claims(derive, falsify, figs, lab)
    s_rows = _s_rows()
    n_run = sum(r["status"] != "not run yet" for r in s_rows)
    say(f"S1-S8: {len(s_rows)} rows, {n_run} with a verdict from the study's verdicts.csv"
        if n_run else f"S1-S8: {len(s_rows)} rows, every one not run yet")  # fmt: skip
    config = {"fast": fast, "redraw": redraw, "figures": figures, "claims": claim_ids,
              "falsify_budget": budget, "falsify_seed": seed}  # fmt: skip
    prov = run_metadata(config, seed=seed, device="cpu")
    cpu = f", {platform.processor()}" if platform.processor() else ""
    prov["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs{cpu}"
    prov["command"] = command
    prov["wall_time_s"] = time.perf_counter() - t_all
    ctx = {"claims": claims, "figures": figs, "missing": paper_figures.missing(),
           "s_rows": s_rows, "provenance": prov, "command": command}  # fmt: skip
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths["html"].write_text(render_html(ctx), encoding="utf-8")
    paths["md"].write_text(render_md(ctx), encoding="utf-8")
    say(f"provenance: git {prov['git_sha']}; wrote {paths['html']} and {paths['md']} "
        f"({time.perf_counter() - t_all:.1f} s)")  # fmt: skip
    return paths


__all__ = ["DEFAULT_OUT", "build", "collect_claims", "lab_evidence", "render_html", "render_md"]
