"""``vespo report``: the self-contained HTML page and its Markdown twin, opened in a real browser.

One full ``--fast`` report is built once for the module (about 30-50 s on 2 shared cores: every
derive check, every falsify search, every drawable figure); the other tests build small ones
(no figures, a couple of claims). The browser test opens the page in headless Chromium
(installed by .ci/run when absent) and is skipped, with the reason, only when no browser exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from types import MappingProxyType

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("hypothesis")

PLANTED = "<script>alert(1)</script>"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    from paper_figures import report

    out = tmp_path_factory.mktemp("report")
    lines: list[str] = []
    paths = report.build(out, fast=True, progress=lines.append)
    return {"out": out, "paths": paths, "lines": lines}


def _drawable():
    import paper_figures

    return [s.name for s in paper_figures.drawable()]


def test_every_claim_figure_and_section_is_in_both_files(full_report):
    import paper_figures
    from paper_figures.lab_planned import S_CLAIMS, planned_command
    from vespo_theory import claims

    html = full_report["paths"]["html"].read_text()
    md = full_report["paths"]["md"].read_text()
    for cid in claims.ids():
        assert f'id="claim-{cid}"' in html, cid
        assert f"### {cid} (" in md, cid
    for name in _drawable():
        assert f'id="fig-{name}"' in html and f'alt="{name}"' in html, name
        assert f"![{name}]({name}.png)" in md
        assert (full_report["out"] / f"{name}.png").is_file()
    # every drawable figure embedded as a PNG data URI, and every caption (escaped) is there
    assert html.count('src="data:image/png;base64,') == len(_drawable())
    import html as html_mod

    for spec in paper_figures.drawable():
        assert html_mod.escape(spec.caption) in html
    for spec in paper_figures.missing():
        assert spec.name in html and spec.name in md
    # S1-S8: the study's verdict where docs/lm_study/verdicts.csv exists, else "not run yet"
    # with the command; no invented number
    from paper_figures.lab_planned import verdicts

    found = verdicts()
    for sid in S_CLAIMS:
        row = re.search(rf'<tr id="claim-{sid}">(.*?)</tr>', html, re.S).group(1)
        if found is None or sid not in found:
            assert "not run yet" in row and planned_command(sid) in row
            cmd = re.escape(planned_command(sid))
            assert re.search(rf"\| {sid} \|.*\| not run yet \| `{cmd}`", md)
        else:
            assert found[sid]["verdict"] in row and "not run yet" not in row
            assert re.search(rf"\| {sid} \|.*{re.escape(found[sid]['verdict'])}", md)
    # provenance
    from vespo_theory.provenance import git_sha

    sha = git_sha()
    if sha is not None:
        assert sha in html and sha in md
    for key in ("git SHA", "time (UTC)", "machine", "versions"):
        assert f"<th>{key}</th>" in html
    # progress: one line per section and per figure
    text = "\n".join(full_report["lines"])
    for what in ("derive:", "falsify:", "LM lab:", "S1-S8:", "provenance:"):
        assert f"[report] {what}" in text
    assert text.count("[report] figures [") == len(_drawable())


def test_relaxed_claims_carry_their_counterexample_and_replay(full_report):
    from vespo_theory import claims

    html = full_report["paths"]["html"].read_text()
    md = full_report["paths"]["md"].read_text()
    for cid in claims.ids("relaxed"):
        card = html.split(f'<div class="claim" id="claim-{cid}">')[1].split('<div class="claim"')[0]
        assert "minimal counterexample" in card and "vespo falsify --replay" in card
        assert "false, as expected" in card
    assert md.count("  - replay: `vespo falsify --replay '") == len(claims.ids("relaxed"))


def test_no_network_resource(full_report):
    html = full_report["paths"]["html"].read_text()
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "url(" not in html
    assert not re.search(r'\b(src|href)="(?!#|data:image/png;base64,)', html)


def test_strings_from_claims_and_runs_are_escaped(tmp_path, monkeypatch):
    from paper_figures import report
    from vespo_theory import claims

    cat = dict(claims.CATALOGUE)
    from dataclasses import replace

    cat["B2"] = replace(cat["B2"], statement=PLANTED, assumptions=f"a {PLANTED} b")
    monkeypatch.setattr(claims, "CATALOGUE", MappingProxyType(cat))
    monkeypatch.setattr(report, "lab_evidence", lambda: {"B3": f"lab {PLANTED}"})
    paths = report.build(tmp_path, fast=True, figures=[], claim_ids=["B2", "R1"], progress=None)
    for p in paths.values():
        text = p.read_text()
        assert PLANTED not in text and "<script" not in text, p.name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, p.name
    html = paths["html"].read_text()
    # the derive record (which copies the statement) went through the same escaping
    assert html.count("&lt;script&gt;") >= 4
    # a claim left out of claim_ids is listed, with "none yet" as its evidence
    assert 'id="claim-P1"' in html and "no check yet" in html


def test_figures_in_dir_are_reused_when_config_and_commit_match(tmp_path):
    from paper_figures import report

    lines: list[str] = []
    kw = {
        "fast": True,
        "figures": ["fig02_kernels_peak"],
        "claim_ids": [],
        "progress": lines.append,
    }
    report.build(tmp_path, **kw)
    first = (tmp_path / "fig02_kernels_peak.png").stat().st_mtime_ns
    report.build(tmp_path, **kw)
    from vespo_theory.provenance import git_sha

    if git_sha() is None:  # no checkout: nothing can prove the figure is current; redrawn
        pytest.skip("not in a git checkout: figures are always redrawn")
    assert any("fig02_kernels_peak: reused" in ln for ln in lines)
    assert (tmp_path / "fig02_kernels_peak.png").stat().st_mtime_ns == first
    n = len(lines)
    report.build(tmp_path, redraw=True, **kw)
    assert any("fig02_kernels_peak: drawn" in ln for ln in lines[n:])


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from vespo_theory.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", "--fast", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err
    assert main(["report", "--budget", "0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--budget" in err


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_headless_browser_renders_every_claim_and_figure(full_report, tmp_path):
    """The page opened by a real browser (Debian's chromium; .ci/run installs it if absent)."""
    exe = _browser()
    if exe is None:
        pytest.skip(f"no headless browser binary ({', '.join(BROWSERS)}) on PATH")
    from vespo_theory import claims

    url = full_report["paths"]["html"].resolve().as_uri()
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for cid in claims.ids():
        assert f'id="claim-{cid}"' in dom.stdout, cid
    for name in _drawable():
        assert f'id="fig-{name}"' in dom.stdout, name
    assert dom.stdout.count("<img ") == len(_drawable())
    shot = tmp_path / "report.png"
    res = subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (2400, 1280)
    # a rendered page, not a blank one: text and table rules make many distinct grey levels;
    # a blank (or error) page is one colour (std 0). 0.05 of the 0-1 range is far from both.
    grey = img[..., :3].mean(axis=2)
    assert float(np.std(grey)) > 0.05
    assert shot.stat().st_size > 50_000


def test_every_figure_names_real_claims():
    import paper_figures
    from paper_figures.lab_planned import S_CLAIMS
    from vespo_theory import claims

    valid = set(claims.ids()) | set(S_CLAIMS)
    for spec in paper_figures.registry().values():
        assert set(spec.claims) <= valid, (spec.name, set(spec.claims) - valid)
