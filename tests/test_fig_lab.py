"""The small-LM lab's figures and tables (arXiv 2602.10693 Figs. 3-12, Tables 1-4, README N = 4):
what they draw is exactly what the study's tables say.

Two kinds of input, both in a temporary folder that the figure's ``tables`` config key points
at: small synthetic block tables written here with known values (the same schema as
``simulations.lm.study`` writes, arm labels from its ``arm_label`` and comparisons from its
``comparisons``), and, where they exist on this machine, copies of the fast study's tables
(``outputs/lm_study/tables_fast/``, git-ignored: those tests skip without them).

Tolerances: every comparison of a plotted value with its CSV cell is exact (``array_equal``):
the figure parses the same text with ``float`` and plots that float, so any difference is a bug.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from paper_figures import _lab  # noqa: E402 (imported after the importorskip of matplotlib above)
from simulations.lm import study  # noqa: E402 (imported after the importorskip of matplotlib above)
from vespo_theory.cli import main as vespo_main  # noqa: E402 (imported after the importorskip of matplotlib above)

REPO = Path(__file__).resolve().parent.parent
FAST_TABLES = REPO / "outputs" / "lm_study" / "tables_fast"

CURVE_FIGURES = {
    "fig03_reward_by_staleness": "s1",
    "fig04_dynamics_grid": "s1",
    "fig05_mismatch": "s5",
    "fig06_length_norm": "s3",
    "fig07_asymmetry": "s4",
    "fig08_grpo_failure": "s1",
    "fig09_gspo_failure": "s1",
    "fig10_sapo_failure": "s1",
    "fig11_baselines": "s6",
    "fig12_second_domain": "s7",
    "readme_n4_reward": "s1",
    "readme_async_grid": "async",
}
TABLES = {
    "table1_model_sizes": "s8",
    "table2_staleness": "s1",
    "table3_baselines": "s6",
    "table4_second_domain": "s7",
}
ALL = {**CURVE_FIGURES, **TABLES}
STEPS = (1, 16, 32, 48)
EVAL_STEPS = (32, 48)  # held-out success exists only at evaluations (NaN elsewhere)


def _mod(name):
    return importlib.import_module(f"paper_figures.{name}")


def _data(name: str, folder: Path, **overrides) -> dict:
    """The figure's data from the tables in ``folder`` (its config, then ``overrides``)."""
    mod = _mod(name)
    return mod.compute(mod.resolve_config(tables=str(folder), **overrides))


# ------------------------------------------------------------------------ synthetic tables
def _arm(rule, n, **kw):
    base = dict(task="add", d_model=64, rule=rule, staleness=n, mismatch="none",
                correction="entangled", routing_replay=False, n_expert=0,
                async_lag=0)  # fmt: skip
    base.update(kw)
    return tuple(base[k] for k in study.ARM_FIELDS)


def _block_arms(block):
    four = ("vespo", "ppo_clip", "gspo", "sapo")
    if block == "s1":
        return [_arm(r, n) for n in (1, 4, 16, 64) for r in four]
    if block == "s3":
        return [_arm(r, n) for n in (16, 64) for r in ("vespo", "vespo_sqrt", "vespo_lin")]
    if block == "s4":
        return [_arm(r, n) for n in (16, 64) for r in ("vespo", "vespo_sym23", "vespo_sym32")]
    if block == "s5":
        moe = dict(n_expert=4, mismatch="route:1.0")
        return [_arm("ppo_clip", 8, **moe), _arm("ppo_clip", 8, correction="decoupled", **moe),
                _arm("ppo_clip", 8, routing_replay=True, **moe), _arm("vespo", 8, **moe),
                _arm("vespo", 8, routing_replay=True, **moe),
                _arm("ppo_clip", 8, n_expert=4), _arm("vespo", 8, n_expert=4)]  # fmt: skip
    if block == "s6":
        return [_arm(r, n) for n in (8, 64) for r in ("vespo", "topr", "cispo", "bapo", "vcpo")]
    if block == "s7":
        return [_arm(r, n, task="stack") for n in (1, 16, 64) for r in four]
    if block == "s8":
        return [_arm(r, 8, d_model=d) for d in (32, 64, 128) for r in ("vespo", "ppo_clip")]
    if block == "async":
        return [_arm(r, 4, async_lag=L) for L in (8, 32) for r in four]
    raise ValueError(block)


def curve_value(i: int, j: int, step: int) -> float:
    """The synthetic mean of curve column j of arm i at ``step`` (exact in binary + decimal)."""
    return 0.25 * i + 0.125 * j + step / 64


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_block(folder: Path, block: str, seeds: int = 3) -> list[tuple]:
    """Write ``<block>.curves/results/summary/paired.csv`` with known values; returns the arms."""
    arms = _block_arms(block)
    curves, results, summ = [], [], []
    for i, arm in enumerate(arms):
        fields = {"arm": study.arm_label(arm), **dict(zip(study.ARM_FIELDS, arm))}
        for step in STEPS:
            row = {**fields, "step": step}
            for j, c in enumerate(study.CURVE_COLUMNS):
                v = curve_value(i, j, step)
                if c == "heldout_success" and step not in EVAL_STEPS:
                    row[c], row[f"{c}_hw"] = "nan", "nan"
                else:
                    row[c], row[f"{c}_hw"] = repr(v), repr(0.5 + i / 8)
            row["seeds"] = seeds
            curves.append(row)
        for s in range(seeds):
            results.append({**fields, "seed": s, "heldout_last_k": 0.3})
        m = 0.5 + i / 32
        summ.append({**fields, "seeds": seeds, "initial_heldout": 0.4, "metric_mean": repr(m),
                     "metric_lo": repr(m - 0.0625), "metric_hi": repr(m + 0.0625),
                     "gain_mean": 0.0, "collapsed": i % 2})  # fmt: skip
    paired = []
    for k, c in enumerate(study.comparisons(block)):
        d = (k + 1) / 64
        paired.append({"claim": c["claim"], "comparison": c["label"], "rule_a": c["a"][2],
                       "rule_b": c["b"][2], "metric": c["metric"], "expected": "A > B",
                       "primary": c["primary"], "seeds": seeds, "exploratory": True,
                       "diff": repr(d), "lo": repr(d - 0.5), "hi": repr(d + 0.5),
                       "outcome": "inconclusive"})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / f"{block}.curves.csv", curves)
    _write(folder / f"{block}.results.csv", results)
    _write(folder / f"{block}.summary.csv", summ)
    _write(folder / f"{block}.paired.csv", paired)
    return arms


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab_tables")
    for block in ("s1", "s3", "s4", "s5", "s6", "s7", "s8", "async"):
        write_block(folder, block)
    return folder


def _csv(folder: Path, block: str, kind: str) -> list[dict]:
    with open(folder / f"{block}.{kind}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _csv_series(folder: Path, block: str, arm: str, col: str):
    """Steps, means and half-widths of ``col`` of ``arm`` read straight from the CSV."""
    rows = [r for r in _csv(folder, block, "curves") if r["arm"] == arm]
    rows.sort(key=lambda r: int(r["step"]))
    keep = [r for r in rows if math.isfinite(float(r[col]))]
    hw = [float(r[f"{col}_hw"]) if f"{col}_hw" in r else math.nan for r in keep]
    return (np.array([float(r["step"]) for r in keep]), np.array([float(r[col]) for r in keep]),
            np.array(hw))  # fmt: skip


def _check_curves_match_csv(name: str, folder: Path, **overrides) -> dict:
    """Every plotted line (the Line2D in the figure, and its saved arrays) equals its CSV cells."""
    from paper_figures._style import plt

    mod, block = _mod(name), ALL[name]
    data = _data(name, folder, **overrides)
    arr = mod.arrays(data)
    fig = mod.plot(data)
    try:
        axes = [ax for ax in fig.axes if ax.get_visible()]
        n_lines = 0
        for i, panel in enumerate(data["panels"]):
            drawn = axes[i].get_lines()
            plotted = [ln for ln in panel["lines"] if ln["y"].size]
            assert len(drawn) == len(plotted), (name, panel["title"])
            for ln, l2d in zip(plotted, drawn):
                x, y, hw = _csv_series(folder, block, ln["arm"], ln["col"])
                key = f"p{i}__{_lab.slug(ln['arm'])}__{ln['col']}"
                np.testing.assert_array_equal(arr[f"{key}__x"], x)
                np.testing.assert_array_equal(arr[f"{key}__y"], y)
                np.testing.assert_array_equal(arr[f"{key}__hw"], hw)
                np.testing.assert_array_equal(l2d.get_xdata(), x)
                np.testing.assert_array_equal(l2d.get_ydata(), y)
                n_lines += 1
        assert n_lines > 0, name
    finally:
        plt.close(fig)
    return data


# --------------------------------------------------------------------------------- curves
@pytest.mark.parametrize("name", sorted(CURVE_FIGURES))
def test_plotted_curves_are_the_csv_values(name, synth):
    _check_curves_match_csv(name, synth)


def test_known_values_and_selected_arms(synth):
    """Spot checks against the synthetic formula: which arm lands in which panel."""
    # fig03: the VESPO panel holds N = 1, 4, 16, 64 (no 8, 32 in these tables), in that order
    d = _data("fig03_reward_by_staleness", synth)
    vespo = d["panels"][0]
    assert [ln["arm"] for ln in vespo["lines"]] == ["vespo N=1", "vespo N=4", "vespo N=16",
                                                    "vespo N=64"]  # fmt: skip
    assert "N = 8, 32" in vespo["note"]
    labels = [study.arm_label(a) for a in _block_arms("s1")]
    i = labels.index("vespo N=64")
    j = study.CURVE_COLUMNS.index("heldout_success")
    np.testing.assert_array_equal(vespo["lines"][-1]["y"],
                                  [curve_value(i, j, s) for s in EVAL_STEPS])  # fmt: skip
    np.testing.assert_array_equal(vespo["lines"][-1]["hw"], [0.5 + i / 8] * 2)
    # fig08: hard clip's entropy at N = 1 and 64 only
    d = _data("fig08_grpo_failure", synth)
    assert [ln["arm"] for ln in d["panels"][0]["lines"]] == ["ppo_clip N=1", "ppo_clip N=64"]
    assert d["panels"][0]["lines"][0]["col"] == "entropy"
    # fig10: one panel per N (64 first), SAPO and VESPO's coefficient on A < 0
    d = _data("fig10_sapo_failure", synth)
    assert [[ln["arm"] for ln in p["lines"]] for p in d["panels"]] == [
        ["sapo N=64", "vespo N=64"], ["sapo N=1", "vespo N=1"]]  # fmt: skip
    # fig05: every s5 arm, the no-mismatch ones last; TIS dashed, R2 dotted
    d = _data("fig05_mismatch", synth)
    lines = d["panels"][0]["lines"]
    assert len(lines) == 7 and all("no mismatch" in ln["label"] for ln in lines[-2:])
    style = {ln["arm"]: ln["linestyle"] for ln in lines}
    assert style["ppo_clip+TIS route:1.0 N=8 moe"] == "--"
    assert style["vespo+R2 route:1.0 N=8 moe"] == ":"
    # fig12: only the stack arms; fig04: rows N = 1, 16, 64 x 6 columns
    d = _data("fig12_second_domain", synth)
    assert all(ln["arm"].endswith("[stack]") for p in d["panels"] for ln in p["lines"])
    d = _data("fig04_dynamics_grid", synth)
    assert d["rows"] == [1, 16, 64] and len(d["panels"]) == 18
    # the legend gives each curve's seed count, read from the table
    assert all("3 seeds" in ln["label"] for ln in d["panels"][0]["lines"])


def test_a_requested_staleness_absent_from_the_table_is_an_error(synth):
    mod = _mod("fig06_length_norm")
    with pytest.raises(ValueError, match="no arm for N = 32"):
        mod.compute(mod.resolve_config(tables=str(synth), staleness=32))


# --------------------------------------------------------------------------------- tables
@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_arrays_and_rows_are_the_summary_and_paired_cells(name, synth):
    mod, block = _mod(name), TABLES[name]
    data = _data(name, synth)
    summ = {r["arm"]: r for r in _csv(synth, block, "summary")}
    paired = {r["comparison"]: r for r in _csv(synth, block, "paired")}
    arr = mod.arrays(data)
    rows = mod.table(data)
    assert rows, name
    for k, r in enumerate(rows):
        s = summ[r["arm"]]
        for col in ("metric_mean", "metric_lo", "metric_hi"):
            assert r[col] == float(s[col]), (name, r["arm"], col)
        assert r["seeds"] == int(s["seeds"]) and r["collapsed"] == int(s["collapsed"])
        assert arr["mean"][k] == float(s["metric_mean"])
        assert arr["lo"][k] == float(s["metric_lo"]) and arr["hi"][k] == float(s["metric_hi"])
        if r["rule"] != "vespo":
            hit = [p for lb, p in paired.items() if lb.endswith(f" - {r['arm']}")
                   and lb.startswith("vespo")]  # fmt: skip
            assert r["vespo_minus_diff"] == float(hit[0]["diff"]), (name, r["arm"])
            assert r["vespo_minus_outcome"] == hit[0]["outcome"]
        else:
            assert r["vespo_minus_outcome"] == ""
    np.testing.assert_array_equal(arr["table__metric_mean"], [r["metric_mean"] for r in rows])


def test_tables_select_their_arms(synth):
    # table1: every size, VESPO and GRPO, with the parameter counts of docs/lm.md
    data = _data("table1_model_sizes", synth)
    assert [(r["d_model"], r["rule"]) for r in data["rows"]] == [
        (d, r) for d in (32, 64, 128) for r in ("vespo", "ppo_clip")]  # fmt: skip
    assert data["rows"][-1]["parameters"] == 408_599
    # table3 is at N = 8 only; table4 on the stack task only
    data = _data("table3_baselines", synth)
    assert {r["N"] for r in data["rows"]} == {8} and len(data["rows"]) == 5
    data = _data("table4_second_domain", synth)
    assert all(r["arm"].endswith("[stack]") for r in data["rows"]) and len(data["rows"]) == 12


def test_markdown_table_writer(tmp_path):
    from paper_figures._io import markdown_table, write_table

    rows = [{"a": 1, "b": 0.123456789, "c": "x|y"}, {"a": 2, "b": math.nan, "c": ""}]
    md = markdown_table(rows)
    assert md.splitlines()[:2] == ["| a | b | c |", "|---|---|---|"]
    assert "| 1 | 0.123457 | x\\|y |" in md and "| 2 | nan |  |" in md
    paths = write_table(rows, "t", tmp_path)
    with open(paths["csv"], newline="") as fh:
        back = list(csv.DictReader(fh))
    assert back == [{"a": "1", "b": "0.123457", "c": "x|y"}, {"a": "2", "b": "nan", "c": ""}]
    assert paths["md"].read_text() == md
    assert write_table(rows, "u", tmp_path, markdown="# hi\n")["md"].read_text() == "# hi\n"


# --------------------------------------------------------------------- availability, CLI
@pytest.mark.parametrize("name", sorted(ALL))
def test_missing_tables_make_the_figure_unavailable(name, tmp_path, monkeypatch, synth):
    import paper_figures

    mod, block = _mod(name), ALL[name]
    spec = paper_figures.registry()[name]
    assert spec.data_command == f"python scripts/lm_study.py {block} --run --jobs 2"
    assert not spec.planned and spec.kind == ("table" if name in TABLES else "figure")
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setitem(mod.CONFIG, "tables", str(empty))
    assert not spec.data_available()
    assert name in {s.name for s in paper_figures.missing()}
    assert f"run: {spec.data_command}" in spec.missing_line()
    # the block's tables appear: available; a needed file removed: unavailable again
    for f in synth.glob(f"{block}.*.csv"):
        shutil.copy(f, empty / f.name)
    assert spec.data_available()
    needed = "summary" if name in TABLES else "curves"
    (empty / f"{block}.{needed}.csv").unlink()
    assert not spec.data_available()


def test_default_tables_folder_is_the_committed_docs_folder():
    for name in ALL:
        mod = _mod(name)
        assert mod.CONFIG["tables"] == "docs/lm_study"
        assert _lab.tables_dir(mod.CONFIG["tables"]) == REPO / "docs" / "lm_study"
        assert _lab.tables_dir("/abs/x") == Path("/abs/x")


def test_cli_names_the_command_when_tables_are_missing(tmp_path, monkeypatch, capsys):
    mod = _mod("fig03_reward_by_staleness")
    monkeypatch.setitem(mod.CONFIG, "tables", str(tmp_path / "absent"))
    rc = vespo_main(["figures", "fig03_reward_by_staleness", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "python scripts/lm_study.py s1 --run --jobs 2" in err and "data missing" in err


@pytest.mark.parametrize("name", ["fig03_reward_by_staleness", "table2_staleness"])
def test_cli_writes_png_pdf_npz_sidecar_and_table_files(name, synth, tmp_path, monkeypatch,
                                                         capsys):  # fmt: skip
    import paper_figures

    mod = _mod(name)
    monkeypatch.setitem(mod.CONFIG, "tables", str(synth))
    out = tmp_path / "out"
    assert vespo_main(["figures", name, "--out", str(out)]) == 0
    capsys.readouterr()
    suffixes = ["png", "pdf", "npz", "json"] + (["csv", "md"] if name in TABLES else [])
    for suffix in suffixes:
        path = out / f"{name}.{suffix}"
        assert path.is_file() and path.stat().st_size > 0, suffix
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / f"{name}.json").read_text())
    spec = paper_figures.registry()[name]
    assert meta["caption"] == spec.caption and meta["config"]["tables"] == str(synth)
    assert meta["lab_tables"] == str(synth) and ALL[name] in meta["lab_blocks"]
    data = _data(name, synth)
    with np.load(out / f"{name}.npz", allow_pickle=False) as z:
        want = mod.arrays(data)
        assert set(z.files) == set(want)
        for k, v in want.items():
            np.testing.assert_array_equal(z[k], v)
    if name in TABLES:
        with open(out / f"{name}.csv", newline="") as fh:
            back = list(csv.DictReader(fh))
        summ = {r["arm"]: r for r in _csv(synth, ALL[name], "summary")}
        assert [r["arm"] for r in back] == [r["arm"] for r in mod.table(data)]
        for r in back:
            assert float(r["metric_mean"]) == float(summ[r["arm"]]["metric_mean"])
        md = (out / f"{name}.md").read_text()
        assert "| rule | N = 1 | N = 4 | N = 16 | N = 64 |" in md and "[" in md


# --------------------------------------------------------------------------- fast tables
@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    if not (FAST_TABLES / "s1.curves.csv").is_file():
        pytest.skip(f"no fast study tables in {FAST_TABLES} (python scripts/lm_study.py all "
                    "--fast --run writes them)")  # fmt: skip
    folder = tmp_path_factory.mktemp("fast_tables")
    for f in FAST_TABLES.iterdir():
        if f.is_file():
            shutil.copy(f, folder / f.name)
    return folder


def _staleness_in(folder: Path, block: str) -> list[int]:
    return sorted({int(r["staleness"]) for r in _csv(folder, block, "curves")})


def _fast_staleness(name: str, fast: Path, needed: str, *, one_n: bool) -> dict:
    """The override of ``staleness`` for the fast tables (the fast variants run fewer N than the
    full study): every N of the block for a list, with ``one_n`` the largest for a single N;
    skips when the block's ``needed`` table is not there yet."""
    block, cfg = ALL[name], _mod(name).CONFIG
    if not (fast / f"{block}.{needed}.csv").is_file():
        pytest.skip(f"no fast {block} tables yet")
    ns = _staleness_in(fast, block)
    if isinstance(cfg.get("staleness"), list):
        return {"staleness": ns}
    return {"staleness": ns[-1]} if one_n and "staleness" in cfg else {}


@pytest.mark.parametrize("name", sorted(CURVE_FIGURES))
def test_fast_tables_plotted_curves_are_the_csv_values(name, fast):
    _check_curves_match_csv(name, fast, **_fast_staleness(name, fast, "curves", one_n=True))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_fast_tables_table_rows_are_the_summary_cells(name, fast):
    block = ALL[name]
    data = _data(name, fast, **_fast_staleness(name, fast, "summary", one_n=False))
    summ = {r["arm"]: r for r in _csv(fast, block, "summary")}
    assert data["rows"]
    for r in data["rows"]:
        assert r["metric_mean"] == float(summ[r["arm"]]["metric_mean"])


# ----------------------------------------------------------------- registry and report
def test_no_lab_figure_is_a_placeholder_any_more():
    import paper_figures
    from paper_figures import lab_planned

    assert lab_planned.SPECS == ()
    assert not any(s.planned for s in paper_figures.registry().values())
    for name in ALL:
        assert paper_figures.registry()[name].module == f"paper_figures.{name}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_captions_state_scale_block_protocol_and_seeds(name):
    import paper_figures

    spec = paper_figures.registry()[name]
    block = ALL[name]
    cap = spec.caption
    assert "30B" in cap and "256 optimizer steps" in cap and "d_model 64" in cap
    assert f"configs/study/{block}.json" in cap and "docs/lm.md" in cap
    assert "seed" in cap and _lab.SEEDS[block] in cap
    assert spec.paper and spec.claims


def test_report_s_table_reads_the_verdicts(tmp_path):
    from paper_figures import report
    from paper_figures.lab_planned import S_CLAIMS, STUDY_COMMAND

    rows = report._s_rows(tables=str(tmp_path))  # no verdicts.csv: not run yet
    assert [r["id"] for r in rows] == list(S_CLAIMS)
    assert all(r["status"] == "not run yet" and r["command"] == STUDY_COMMAND for r in rows)
    assert STUDY_COMMAND == "python scripts/lm_study.py all --run --jobs 2"
    assert rows[1]["config"] == "configs/study/s1.json"  # S2 is tested in block s1
    assert report._s_note(rows) == report.S_NOTE
    _write(tmp_path / "verdicts.csv", [
        {"claim": "S1", "verdict": "supported", "favourable": 2, "unfavourable": 0,
         "primary": 3, "seeds": 10, "exploratory": False, "not_judged": ""},
        {"claim": "S6", "verdict": "not judged", "favourable": "", "unfavourable": "",
         "primary": "", "seeds": "", "exploratory": "", "not_judged": "vespo N=8 - topr N=8"},
        {"claim": "S8", "verdict": "partly", "favourable": 1, "unfavourable": 0,
         "primary": 3, "seeds": 3, "exploratory": True, "not_judged": ""},
    ])  # fmt: skip
    by = {r["id"]: r for r in report._s_rows(tables=str(tmp_path))}
    assert by["S1"]["status"] == "supported" and by["S1"]["class"] == "ok"
    assert by["S1"]["detail"] == "2/3 favourable, 10 paired seeds"
    assert by["S8"]["detail"] == "1/3 favourable, 3 paired seeds (exploratory)"
    assert by["S8"]["class"] == "warn"
    assert by["S6"]["status"] == "not judged" and "vespo N=8 - topr N=8" in by["S6"]["detail"]
    assert by["S3"]["status"] == "not run yet"
    assert "verdicts.csv" in report._s_note(list(by.values()))


def test_bands_are_drawn_inside_each_column_range_and_unbounded_ones_are_not_clipped():
    # A 3-seed t band of a success rate can reach below 0 (e.g. one collapsed seed); the drawn
    # band of a bounded column stays in its range ([0, 1] for a fraction, [0, inf) for a
    # gradient norm), the data keep the half-width, and an unbounded column (ppo_kl, a k1
    # estimate that can be negative) is drawn with its full band.
    import matplotlib.pyplot as plt

    def line(col):
        return {"arm": "a", "col": col, "label": col, "color": "C0", "linestyle": "-",
                "seeds": 3, "x": np.array([32.0, 64.0]), "y": np.array([0.1, 0.9]),
                "hw": np.array([0.5, 0.5])}  # fmt: skip

    cols = ("heldout_success", "grad_norm", "ppo_kl")
    data = {"panels": [{"title": c, "ylabel": c, "lines": [line(c)]} for c in cols]}
    fig = _lab.plot_panels(data, ncols=3)
    try:
        ys = [np.concatenate([p.get_paths()[0].vertices[:, 1] for p in ax.collections])
              for ax in fig.axes[:3]]  # fmt: skip
        assert ys[0].min() == 0.0 and ys[0].max() == 1.0  # clipped exactly at both ends
        assert ys[1].min() == 0.0 and ys[1].max() == pytest.approx(1.4)  # 0.9 + 0.5, float sum
        assert ys[2].min() == pytest.approx(-0.4) and ys[2].max() == pytest.approx(1.4)
        np.testing.assert_array_equal(data["panels"][0]["lines"][0]["hw"], [0.5, 0.5])
    finally:
        plt.close(fig)
