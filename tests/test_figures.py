"""Tests for paper_figures: the figure protocol and registry, ``vespo figures``, and Fig. 2
(the kernel comparison, ``fig02_kernels``, alias ``kernels``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from paper_figures import fig02_kernels as kernels
from vespo_theory.cli import main as vespo_main
from vespo_theory.provenance import config_hash
from vespo_theory.rules import available, get_rule

EPS64 = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def fast_data():
    return kernels.compute(kernels.resolve_config(fast=True, extra_rules=["reinforce", "gspo"]))


def test_phi_curves_are_the_registry_coefficients(fast_data):
    w = fast_data["w"]
    assert fast_data["names"] == ["vespo", "ppo_clip", "sapo", "is", "reinforce", "gspo"]
    for name in fast_data["names"]:
        rule = get_rule(name)
        for sign_name, sign in (("pos", 1.0), ("neg", -1.0)):
            # one-token sequences, evaluated here through the registry's own [B, T] entry point
            c = rule.coefficient(
                np.log(w)[:, None], np.ones((w.size, 1), dtype=bool), np.full(w.size, sign)
            )[:, 0]
            np.testing.assert_array_equal(fast_data["phi"][name][sign_name], c)


def test_f_is_anchored_and_matches_the_primitive_of_phi(fast_data):
    """W f'(W) = phi: checked against the closed form of K2 for VESPO, f = W for IS.

    VESPO: f(W) - f(1) = e^lam lam^-k Gamma(k) [P(k, lam W) - P(k, lam)] (K2, scipy's regularised
    lower incomplete gamma P). These rules state f in the registry, so the drawn f is the registry
    surrogate, anchored as f_reg - f_reg(1) + 1: it must equal the closed form to float rounding.
    Independently, the figure also integrates phi(u)/u by the composite midpoint rule and records
    max |f_reg - f_quadrature| as f_check: that must be within the midpoint rule's error bound
    (b - a) h^2 / 24 * max|g''| for g(u) = phi(u)/u on (0, 3], with max|g''| taken on a dense grid,
    doubled to cover the dense grid missing the maximum (|g'''| is bounded, the grid is 1e-4 fine).
    """
    from scipy.special import gamma, gammainc

    w = fast_data["w"]
    cfg = fast_data["config"]
    h = cfg["w_max"] / (cfg["n_points"] * cfg["refine"])
    i1 = int(np.argmin(np.abs(w - 1.0)))
    # W = 1 is a grid node: linspace(0, 3, 601)[200] = 200 * (3 / 600) rounds by a few u (0 seen)
    assert w[i1] == pytest.approx(1.0, abs=4 * EPS64)
    for name in ("vespo", "is", "reinforce"):
        assert fast_data["f_source"][name] == "registry", name  # the premise of the sizes below
    p = get_rule("vespo").params
    quad_tol = 0.0
    for sign_name, k, lam in (("pos", p.k_pos, p.lam_pos), ("neg", p.k_neg, p.lam_neg)):
        f = fast_data["f"]["vespo"][sign_name]
        # the anchor f(1) = 1: f_reg(1) enters twice (in the grid and alone) and may differ by an
        # ulp of f_reg(1) <= f(inf) = e^lam Gamma(k) lam^-k <= 2.3 (4.4e-16): 16 eps covers it
        assert f[i1] == pytest.approx(1.0, abs=16 * EPS64)
        scale = math.exp(lam) * lam**-k * gamma(k)
        exact = 1.0 + scale * (gammainc(k, lam * w) - gammainc(k, lam))
        u = np.linspace(1e-6, cfg["w_max"], 30001)
        g2 = (
            np.exp(lam * (1 - u))
            * u ** (k - 3)
            * ((k - 1) * (k - 2) - 2 * (k - 1) * lam * u + lam**2 * u**2)
        )
        quad_tol = max(quad_tol, 2 * cfg["w_max"] * h**2 / 24 * np.max(np.abs(g2)))
        # registry f vs the closed form typed here: both round scale * P (P <= 1, scale <= 2.3)
        # and the anchor by a few u each: <= ~8 u (1 + 2 scale) ~ 5e-15 (6.7e-16 seen)
        np.testing.assert_allclose(f, exact, rtol=0, atol=16 * EPS64 * (1 + 2 * scale))
    # the quadrature of phi(u)/u agrees with the registry f within the midpoint bound (7.5e-4,
    # from k = 2, lam = 3 near u = 0; 2.1e-5 seen)
    assert fast_data["f_check"]["vespo"] <= quad_tol
    # IS: f = (W - 1) + 1: W - 1 rounds by <= u |W - 1|, + 1 by <= u |f|, |f| <= 3: <= 6 u
    np.testing.assert_allclose(fast_data["f"]["is"]["pos"], w, rtol=0, atol=6 * EPS64 / 2)
    # REINFORCE: f = 1 + log W - log 1: log rounds by <= u |log W| (plus libm's < 1 ulp), the sum
    # by u |f|: <= 4 u (1 + |log W|) (2.2e-16 seen)
    lw = np.log(w)
    np.testing.assert_allclose(
        fast_data["f"]["reinforce"]["neg"], 1 + lw, rtol=0, atol=2 * EPS64 * (1 + np.abs(lw).max())
    )


def test_reference_numbers(fast_data):
    """Hand values: phi(0.5) = 1.120, phi(2) = 0.199 for (2,3); 0.340 and 1.083 for (3,2)."""
    w = fast_data["w"]

    def at(x, sign):
        return fast_data["phi"]["vespo"][sign][int(np.argmin(np.abs(w - x)))]

    # both 0.5 and 2 are grid points (step 0.02); the reference is rounded to 3 decimals
    assert at(0.5, "pos") == pytest.approx(1.120, abs=5e-4)
    assert at(2.0, "pos") == pytest.approx(0.199, abs=5e-4)
    assert at(0.5, "neg") == pytest.approx(0.340, abs=5e-4)
    assert at(2.0, "neg") == pytest.approx(1.083, abs=5e-4)


def test_plot_draws_every_rule_in_four_panels(fast_data):
    fig = kernels.plot(fast_data)
    axes = fig.get_axes()
    assert len(axes) == 4
    n = len(fast_data["names"])
    for ax in axes:
        lines = [
            ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")
        ]
        assert len(lines) == n
        styles = {ln.get_label().split(" (")[0]: ln.get_linestyle() for ln in lines}
        assert styles["IS"] == "--" and styles["VESPO"] == "-"
    # the bottom-right panel (phi, A < 0) holds exactly the registry's numbers
    ax = axes[3]
    y = {ln.get_label().split(" (")[0]: ln.get_ydata() for ln in ax.get_lines()}
    np.testing.assert_array_equal(y["VESPO"], fast_data["phi"]["vespo"]["neg"])


def test_cli_writes_png_pdf_data_and_sidecar(tmp_path, capsys):
    rc = vespo_main(["figures", "kernels", "--fast", "--out", str(tmp_path), "--rules", "cispo"])
    assert rc == 0
    # the alias draws the figure under its canonical name
    for suffix in ("png", "pdf", "npz", "json"):
        path = tmp_path / f"fig02_kernels.{suffix}"
        assert path.is_file() and path.stat().st_size > 0, suffix
    assert (tmp_path / "fig02_kernels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = (tmp_path / "fig02_kernels.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    # TrueType (Type 42) fonts embedded, no Type 3 (the docs promise it; publishers ask for it).
    # Uncompressed object headers in matplotlib's PDF backend name the font subtype and file.
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    # the PNG is written at the dpi docs/figures.md states (pHYs chunk; Pillow rounds the
    # pixels-per-metre back to dpi, 200 dpi = 7874.0 px/m -> 199.9994, hence the 0.01)
    from PIL import Image

    from paper_figures._style import DPI

    assert DPI == 200
    with Image.open(tmp_path / "fig02_kernels.png") as im:
        assert im.info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)
    meta = json.loads((tmp_path / "fig02_kernels.json").read_text())
    assert meta["config"]["extra_rules"] == ["cispo"]
    assert meta["config"]["n_points"] == kernels.FAST["n_points"]
    assert {"git_sha", "versions", "timestamp_utc", "wall_time_s", "rule_params"} <= set(meta)
    assert meta["config_hash"] == config_hash(meta["config"])
    assert meta["paper"] == "Fig. 2" and "2602.10693" in meta["caption"]
    assert meta["versions"]["matplotlib"]
    data = np.load(tmp_path / "fig02_kernels.npz")
    c = get_rule("cispo").coefficient(
        np.log(data["w"])[:, None], np.ones((data["w"].size, 1)), np.full(data["w"].size, -1.0)
    )[:, 0]
    np.testing.assert_array_equal(data["phi__cispo__neg"], c)
    assert "cispo" in capsys.readouterr().out


def test_unknown_rule_and_figure_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="valid rules"):
        kernels.compute(kernels.resolve_config(fast=True, extra_rules=["nope"]))
    rc = vespo_main(["figures", "kernels", "--fast", "--out", str(tmp_path), "--rules", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and "vespo" in err
    rc = vespo_main(["figures", "nofig", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "fig02_kernels" in err and "kernels" in err and "all" in err
    assert not list(tmp_path.iterdir())  # nothing written on bad input


def test_bad_grid_is_rejected():
    with pytest.raises(ValueError, match="W = 1"):
        kernels.compute(kernels.resolve_config(n_points=100, w_max=3.0))
    with pytest.raises(ValueError, match="n_points"):
        kernels.compute(kernels.resolve_config(n_points=0))


def test_every_registered_rule_can_be_drawn():
    data = kernels.compute(kernels.resolve_config(n_points=30, refine=2, extra_rules=available()))
    assert set(data["names"]) == set(available())
    for name in data["names"]:
        for s in ("pos", "neg"):
            assert np.all(np.isfinite(data["f"][name][s])), name


def test_python_dash_m_entry_point(tmp_path):
    from paper_figures.__main__ import main

    assert main(["kernels", "--fast", "--out", str(tmp_path), "--json"]) == 0
    assert (tmp_path / "fig02_kernels.png").is_file()


def test_registry_surrogates_are_used_and_agree_with_the_quadrature(fast_data):
    """Where the registry states f, the figure draws it; W f'(W) = phi ties it to the coefficient.

    f_check is max |f_registry - f_quadrature|; for VESPO and SAPO (smooth phi/u) it is within the
    midpoint bound (b - a) h^2/24 max|(phi/u)''|, doubled (b - a = w_max = 3, h = 3/600). VESPO:
    max|g''| = 6 e^3 = 120.5 at u -> 0 for (k, lam) = (2, 3), g'' = e^(3 (1 - u)) (9 u - 6): bound
    7.5e-4 (2.1e-5 seen). SAPO: phi/u = sech^2(x), x = tau (u - 1)/2, |g''| = tau^2 / 2 *
    sech^2 x |3 tanh^2 x - 1| <= tau^2 / 2: bound 6.9e-6 at tau = 1.05 (4.2e-7 seen).
    """
    for name in fast_data["names"]:
        has = get_rule(name).surrogate(np.zeros(1), np.ones(1)) is not None
        assert fast_data["f_source"][name] == ("registry" if has else "quadrature"), name
    cfg = fast_data["config"]
    h = cfg["w_max"] / (cfg["n_points"] * cfg["refine"])
    sapo = get_rule("sapo").params
    g2_max = {"vespo": 6 * math.exp(3), "sapo": max(sapo.tau_pos, sapo.tau_neg) ** 2 / 2}
    for name in ("vespo", "sapo"):
        assert fast_data["f_source"][name] == "registry", name
        bound = 2 * cfg["w_max"] * h**2 / 24 * g2_max[name]
        assert fast_data["f_check"][name] <= bound, (name, fast_data["f_check"][name], bound)


def test_labels_use_greek_symbols(fast_data):
    fig = kernels.plot(fast_data)
    try:
        texts = [ax.get_ylabel() for ax in fig.axes] + [ax.get_xlabel() for ax in fig.axes]
        texts += [label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]]
        joined = " ".join(texts)
        assert r"$\varphi(W)" in joined and r"\pi_\theta" in joined and r"$\lambda$" in joined
        assert " phi(" not in joined and "lam=" not in joined  # no spelled-out Greek left
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_unusable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert vespo_main(["figures", "kernels", "--fast", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--out" in err and "not a folder" in err


# ------------------------------------------------------------------ the protocol and registry


def test_registry_discovers_figures_and_resolves_aliases():
    import paper_figures

    reg = paper_figures.registry()
    assert "fig02_kernels" in reg and reg["fig02_kernels"].module == "paper_figures.fig02_kernels"
    assert paper_figures.resolve_name("kernels") is reg["fig02_kernels"]
    assert paper_figures.FIGURES["fig02_kernels"] == "paper_figures.fig02_kernels"
    with pytest.raises(ValueError, match="valid names: all, .*fig02_kernels"):
        paper_figures.resolve_name("nope")
    # every name says what it reproduces
    for name, spec in reg.items():
        assert name.split("_")[0] in {
            *(f"fig{i:02d}" for i in range(1, 13)),
            *(f"table{i}" for i in range(1, 5)),
            "readme",
            "theory",
        }, name
        assert spec.caption and spec.title


def test_protocol_of_every_drawable_figure():
    import importlib

    import paper_figures

    for spec in paper_figures.drawable():
        mod = importlib.import_module(spec.module)
        for attr in ("CONFIG", "FAST", "resolve_config", "compute", "plot", "arrays", "summary"):
            assert hasattr(mod, attr), (spec.name, attr)
        assert set(mod.FAST) <= set(mod.CONFIG), spec.name  # --fast only changes known keys


def test_adding_a_figure_is_adding_one_module(tmp_path, monkeypatch):
    """A module dropped into the package (here: a second folder on its __path__) registers
    itself: nothing else is edited, and ``vespo figures all`` draws it."""
    import paper_figures

    (tmp_path / "theory_dummy.py").write_text(
        "import numpy as np\n"
        "from paper_figures import FigureSpec\n"
        "from paper_figures._style import new_figure, styled\n"
        "FIGURE = FigureSpec(name='theory_dummy', title='a line', caption='y = x.')\n"
        "CONFIG = {'n': 5}\nFAST = {'n': 3}\n"
        "def resolve_config(fast=False):\n"
        "    return dict(CONFIG, **(FAST if fast else {}))\n"
        "def compute(cfg):\n    return {'x': np.arange(cfg['n'], dtype=float)}\n"
        "@styled\n"
        "def plot(data):\n"
        "    fig, ax = new_figure(1, 1)\n    ax.plot(data['x'], data['x'])\n    return fig\n"
        "def arrays(data):\n    return dict(data)\n"
        "def summary(data):\n    return [{'n': int(data['x'].size)}]\n"
    )
    monkeypatch.setattr(paper_figures, "__path__", [*paper_figures.__path__, str(tmp_path)])
    monkeypatch.setattr(paper_figures, "_REGISTRY", None)
    try:
        assert paper_figures.registry()["theory_dummy"].module == "paper_figures.theory_dummy"
        out = tmp_path / "out"
        assert vespo_main(["figures", "theory_dummy", "--fast", "--out", str(out)]) == 0
        assert np.load(out / "theory_dummy.npz")["x"].size == 3
    finally:
        import sys

        sys.modules.pop("paper_figures.theory_dummy", None)
        paper_figures._REGISTRY = None


def test_all_draws_every_figure_from_the_committed_tables(tmp_path, capsys):
    """Figures 3-12, the README figures and Tables 1-4 read the LM lab's result tables, which
    are committed (docs/lm_study/): `all --fast` draws every registered figure, each with its
    four files and a sidecar naming its config hash and commit, and lists none as missing.
    (tests/test_fig_lab.py checks that a figure whose tables are absent is listed as missing
    with its command, and never drawn.)"""
    import paper_figures

    drawable = {s.name for s in paper_figures.drawable()}
    expected = {f"fig{i:02d}" for i in range(1, 13)} | {f"table{i}" for i in range(1, 5)}
    assert {n.split("_")[0] for n in drawable} >= expected | {"readme", "theory"}
    assert not paper_figures.missing(), [s.name for s in paper_figures.missing()]
    rc = vespo_main(["figures", "all", "--fast", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "missing" not in out
    for spec in paper_figures.drawable():
        assert f"] {spec.name} ..." in out  # one progress line each
        for suffix in ("png", "pdf", "npz", "json"):
            assert (tmp_path / f"{spec.name}.{suffix}").is_file(), (spec.name, suffix)
        meta = json.loads((tmp_path / f"{spec.name}.json").read_text())
        assert meta["config_hash"] == config_hash(meta["config"]) and "git_sha" in meta
        assert meta["caption"] == spec.caption


def test_batch_level_rules_are_drawn_point_by_point():
    """VCPO scales W by sqrt(ESS/B) of its batch: the kernel figure must draw phi(W) = W (a batch
    of one), not W times the ESS factor of the plotted grid taken as one batch."""
    data = kernels.compute(kernels.resolve_config(fast=True, extra_rules=["vcpo"]))
    w = data["w"]
    for sign in ("pos", "neg"):
        # W itself up to float64 rounding of exp(log W) (a few ulp)
        np.testing.assert_allclose(data["phi"]["vcpo"][sign], w, rtol=1e-13)
