"""``theory_grad_bound``: B3 at the gradient level in the small-LM lab, per length bin.

The figure draws ``docs/lm_validate/validate_fast.csv`` (``vespo validate-bound --fast``'s whole
table) and computes nothing. Inputs here: that committed table, and a small synthetic table with
known values written by the test (the same columns as ``simulations.lm.validate.RECORD_KEYS``),
which the config key ``table`` points at.

Tolerances: a plotted value against its CSV cell is exact (``array_equal``: the figure parses the
text with ``float`` and plots that float); tightness against var_trace / bound_B3 recomputed is
within 1e-12 relative (the table's own division, float64 rounding); the fit line's two points
are a + b T computed the same way (exact).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from paper_figures import theory_grad_bound as mod  # noqa: E402 (imported after the importorskip of matplotlib above)
from simulations.lm.validate import RECORD_KEYS  # noqa: E402 (imported after the importorskip of matplotlib above)
from vespo_theory.cli import main as vespo_main  # noqa: E402 (imported after the importorskip of matplotlib above)

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "docs" / "lm_validate" / "validate_fast.csv"


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _f(v) -> float:
    return float(v) if v not in ("", None) else math.nan


# --------------------------------------------------------------------- the committed table
@pytest.fixture(scope="module")
def committed():
    if not TABLE.is_file():
        pytest.skip(f"{TABLE} absent ({mod.DATA_COMMAND} writes it)")
    return mod.compute(mod.resolve_config()), _rows(TABLE)


def test_plotted_arrays_are_the_csv_cells(committed):
    data, rows = committed
    arr = mod.arrays(data)
    assert list(arr["rules"]) == ["vespo", "seq_tis", "reinforce", "is"]
    for rule in arr["rules"]:
        want = [r for r in rows if r["rule"] == rule and r["length_bin"] != "all"]
        want = sorted((r for r in want if int(r["n"]) >= 2), key=lambda r: float(r["len_lo"]))
        assert list(arr[f"{rule}__bins"]) == [r["length_bin"] for r in want]
        for col in mod.COLUMNS:
            np.testing.assert_array_equal(arr[f"{rule}__{col}"], [_f(r[col]) for r in want])
        allrow = next(r for r in rows if r["rule"] == rule and r["length_bin"] == "all")
        for col in mod.ALL_COLUMNS:
            np.testing.assert_array_equal(arr[f"{rule}__all__{col}"], _f(allrow[col]))
        # the table's tightness is var_trace / bound_B3 (where the rule has a bound)
        b = arr[f"{rule}__bound_B3"]
        ok = np.isfinite(b)
        np.testing.assert_allclose(arr[f"{rule}__tightness"][ok],
                                   arr[f"{rule}__var_trace"][ok] / b[ok], rtol=1e-12)  # fmt: skip
    fit = next(r for r in rows if r["rule"] == "vespo" and r["length_bin"] == "all")
    for k in mod.L1_KEYS:
        assert float(arr[k]) == float(fit[k])
    np.testing.assert_array_equal(arr["fit_T"], [float(fit["len_lo"]), float(fit["len_hi"])])
    np.testing.assert_array_equal(arr["fit_y"], float(fit["l1_intercept"])
                                  + float(fit["l1_slope"]) * arr["fit_T"])  # fmt: skip
    # B3 holds in every drawn bin (c <= M pointwise, so under the empirical law exactly)
    for rule in ("vespo", "seq_tis", "reinforce"):
        assert np.all(arr[f"{rule}__tightness"] < 1.0), rule
    assert not np.isfinite(arr["is__bound_B3"]).any()  # IS: no bound


def test_the_drawn_lines_are_the_arrays(committed):
    from paper_figures._style import label

    data, _ = committed
    arr = mod.arrays(data)
    fig = mod.plot(data)
    try:
        ax, axt, axl = fig.axes
        lines = {ln.get_label(): ln for ax_ in fig.axes for ln in ax_.get_lines()}
        for rule in arr["rules"]:
            name = label(rule)
            bounded = np.isfinite(arr[f"{rule}__bound_B3"]).any()
            var = lines[f"{name}{'' if bounded else ' (no bound)'}: tr Cov"]
            np.testing.assert_array_equal(var.get_xdata(), arr[f"{rule}__mean_T"])
            np.testing.assert_array_equal(var.get_ydata(), arr[f"{rule}__var_trace"])
            if bounded:
                np.testing.assert_array_equal(lines[f"{name}: B3 bound"].get_ydata(),
                                              arr[f"{rule}__bound_B3"])  # fmt: skip
                np.testing.assert_array_equal(lines[name].get_ydata(), arr[f"{rule}__tightness"])
            else:
                assert f"{name}: B3 bound" not in lines and name not in lines
        assert ax.get_yscale() == axt.get_yscale() == "log"
        assert any(list(ln.get_ydata()) == [1.0, 1.0] for ln in axt.get_lines())  # the bound
        dots = [ln for ln in axl.get_lines() if ln.get_linestyle() == "None"]
        np.testing.assert_array_equal(dots[0].get_ydata(), arr["vespo__E_score2"])
        np.testing.assert_array_equal(dots[1].get_ydata(), arr["vespo__E_g2"])
        for a in fig.axes:
            assert a.get_xlabel() and a.get_ylabel()
            assert a.get_legend() is None or a is axl
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_evidence_quotes_the_table(committed):
    from vespo_theory import claims

    data, rows = committed
    ev = mod.evidence(mod.arrays(data))
    assert set(mod.FIGURE.claims) <= set(claims.ids())
    assert set(ev) <= set(mod.FIGURE.claims) and {"B3", "L1a"} <= set(ev)
    tight = [(float(r["tightness"]), r["rule"]) for r in rows
             if r["length_bin"] != "all" and int(r["n"]) >= 2
             and r["rule"] in mod.CONFIG["rules"] and r["tightness"]]  # fmt: skip
    worst, rule = max(tight)
    assert f"max {worst:.4g} ({rule}) < 1: yes" in ev["B3"]
    assert f"over {len(tight)} (rule, length bin) pairs" in ev["B3"]
    fit = next(r for r in rows if r["rule"] == "vespo" and r["length_bin"] == "all")
    b, lo, hi = (float(fit[k]) for k in ("l1_slope", "l1_slope_lo", "l1_slope_hi"))
    assert f"b = {b:.4g} [{lo:.4g}, {hi:.4g}] per token" in ev["L1a"]
    assert "grows with T: yes" in ev["L1a"]


# ---------------------------------------------------------------------- a synthetic table
def _row(rule, bin_, lo, hi, n, T, var, E_g2, M=None, **kw):
    r = {k: "" for k in RECORD_KEYS}
    bound = M * M * E_g2 if M is not None else None
    r.update(rule=rule, length_bin=bin_, len_lo=lo, len_hi=hi, n=n, mean_T=T, var_trace=var,
             E_g2=E_g2, E_score2=2 * E_g2, M="" if M is None else M,
             bound_B3="" if bound is None else bound,
             tightness="" if bound is None else var / bound)  # fmt: skip
    r.update(kw)
    return r


SYNTH_FIT = dict(l1_slope=10.0, l1_slope_lo=5.0, l1_slope_hi=15.0, l1_intercept=-100.0,
                 l1_intercept_lo=-200.0, l1_intercept_hi=0.0)  # fmt: skip


def _write_synth(path: Path) -> Path:
    rows = []
    for rule, M, scale in (("vespo", 1.25, 0.5), ("is", None, 2.0), ("reinforce", 1.0, 0.75)):
        rows += [
            _row(rule, "[1,2)", 1, 2, 1, 1.0, 9.0, 1.0, M),  # n < 2: not drawn
            _row(
                rule,
                "[128,256)",
                128,
                256,
                4,
                200.0,
                scale * 100.0,
                200.0,
                M,
                E_phi2="0.5",
                K_E_phiW="1.0",
            ),  # fmt: skip
            _row(
                rule,
                "[64,128)",
                64,
                128,
                3,
                100.0,
                scale * 50.0,
                100.0,
                M,
                E_phi2="0.25",
                K_E_phiW="1.0",
            ),  # fmt: skip
            _row(
                rule, "all", 1, 250, 8, 140.0, 80.0, 150.0, M, n_groups=2, g1_ratio=0.5, **SYNTH_FIT
            ),  # fmt: skip
        ]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=RECORD_KEYS)
        w.writeheader()
        w.writerows(rows)
    return path


def test_a_synthetic_table_gives_its_known_values(tmp_path):
    table = _write_synth(tmp_path / "v.csv")
    data = mod.compute(mod.resolve_config(table=str(table)))
    arr = mod.arrays(data)
    assert list(arr["rules"]) == ["vespo", "reinforce", "is"]  # seq_tis absent: left out
    for rule, scale in (("vespo", 0.5), ("is", 2.0), ("reinforce", 0.75)):
        assert list(arr[f"{rule}__bins"]) == ["[64,128)", "[128,256)"]  # sorted, n >= 2 only
        np.testing.assert_array_equal(arr[f"{rule}__mean_T"], [100.0, 200.0])
        np.testing.assert_array_equal(arr[f"{rule}__n"], [3.0, 4.0])
        np.testing.assert_array_equal(arr[f"{rule}__var_trace"], [scale * 50, scale * 100])
        np.testing.assert_array_equal(arr[f"{rule}__E_g2"], [100.0, 200.0])
        np.testing.assert_array_equal(arr[f"{rule}__E_score2"], [200.0, 400.0])
        assert float(arr[f"{rule}__all__g1_ratio"]) == 0.5
    np.testing.assert_array_equal(arr["vespo__bound_B3"], [156.25, 312.5])
    np.testing.assert_array_equal(arr["vespo__tightness"], [0.16, 0.16])
    np.testing.assert_array_equal(arr["reinforce__tightness"], [0.375, 0.375])
    assert np.isnan(arr["is__bound_B3"]).all() and np.isnan(arr["is__tightness"]).all()
    np.testing.assert_array_equal(arr["fit_T"], [1.0, 250.0])
    np.testing.assert_array_equal(arr["fit_y"], [-90.0, 2400.0])
    ev = mod.evidence(arr)
    assert "over 4 (rule, length bin) pairs of vespo, reinforce: max 0.375 (reinforce)" in ev["B3"]
    assert "< 1: yes; VESPO's 0.16-0.16" in ev["B3"]
    assert "8 sequences of 1-250 tokens" in ev["L1a"]
    assert "b = 10 [5, 15] per token" in ev["L1a"] and "grows with T: yes" in ev["L1a"]
    assert "(empirical law, 2 bins): max 0.5 <= 1: yes" in ev["P4"]
    assert "vespo 0.5, reinforce 0.5, is 0.5 (above 1 in this run: no)" in ev["G1"]
    rows = mod.summary(data)
    assert [(r["rule"], r["bin"]) for r in rows][:3] == [
        ("vespo", "[64,128)"), ("vespo", "[128,256)"), ("vespo", "all")]  # fmt: skip
    # a violated bound would be reported as such, not hidden
    arr2 = dict(arr, reinforce__tightness=np.array([0.5, 1.5]))
    assert "max 1.5 (reinforce) < 1: NO" in mod.evidence(arr2)["B3"]


def test_bad_config_names_its_key(tmp_path):
    table = _write_synth(tmp_path / "v.csv")
    with pytest.raises(ValueError, match="rules: none of"):
        mod.compute(mod.resolve_config(table=str(table), rules=["gspo"]))
    with pytest.raises(ValueError, match="fit_rule"):
        mod.compute(mod.resolve_config(table=str(table), fit_rule="gspo"))
    with pytest.raises(ValueError, match="unknown keys"):
        mod.resolve_config(tables="x")


# ------------------------------------------------------------------- availability and CLI
def test_default_table_is_the_committed_one():
    assert mod.CONFIG["table"] == "docs/lm_validate/validate_fast.csv"
    assert mod.table_path(mod.CONFIG["table"]) == TABLE
    assert mod.table_path("/abs/v.csv") == Path("/abs/v.csv")


def test_a_missing_table_makes_the_figure_unavailable(tmp_path, monkeypatch, capsys):
    import paper_figures

    spec = paper_figures.registry()["theory_grad_bound"]
    assert spec.data_command == "python scripts/regen_lm_docs.py --only validate_fast"
    assert not spec.planned
    monkeypatch.setitem(mod.CONFIG, "table", str(tmp_path / "absent.csv"))
    assert not spec.data_available()
    assert "theory_grad_bound" in {s.name for s in paper_figures.missing()}
    assert f"run: {spec.data_command}" in spec.missing_line()
    with pytest.raises(FileNotFoundError, match="regen_lm_docs.py --only validate_fast"):
        mod.compute(mod.resolve_config())
    rc = vespo_main(["figures", "theory_grad_bound", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "data missing" in err and spec.data_command in err
    _write_synth(tmp_path / "absent.csv")
    assert spec.data_available()


def test_cli_writes_png_pdf_npz_and_sidecar(tmp_path, monkeypatch, capsys):
    import paper_figures

    table = _write_synth(tmp_path / "v.csv")
    monkeypatch.setitem(mod.CONFIG, "table", str(table))
    out = tmp_path / "out"
    assert vespo_main(["figures", "theory_grad_bound", "--out", str(out)]) == 0
    capsys.readouterr()
    for suffix in ("png", "pdf", "npz", "json"):
        path = out / f"theory_grad_bound.{suffix}"
        assert path.is_file() and path.stat().st_size > 0, suffix
    assert (out / "theory_grad_bound.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "theory_grad_bound.json").read_text())
    spec = paper_figures.registry()["theory_grad_bound"]
    assert meta["caption"] == spec.caption and meta["config"]["table"] == str(table)
    assert meta["validate_table"] == str(table)
    want = mod.arrays(mod.compute(mod.resolve_config(table=str(table))))
    with np.load(out / "theory_grad_bound.npz", allow_pickle=False) as z:
        assert set(z.files) == set(want)
        for k, v in want.items():
            np.testing.assert_array_equal(z[k], v)
        assert mod.evidence({k: z[k] for k in z.files}) == mod.evidence(want)


def test_listed_by_figures_list(capsys):
    assert vespo_main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "theory_grad_bound" in ln)
    assert ("ok" in line) == TABLE.is_file()
