"""theory_staleness: the plotted arrays are the exact simulator's records, rule by rule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def data():
    from paper_figures import theory_staleness as mod

    # a subset of N (the full figure has 8): the equality checked is the same at every N
    return mod.compute(mod.resolve_config(staleness=[0, 2, 16]))


def test_arrays_are_the_simulator_records(data):
    from paper_figures import theory_staleness as mod
    from simulations.runners import simulate_ar

    cfg = data["config"]
    for j, n in enumerate(cfg["staleness"]):
        res = simulate_ar(mod.model_config(cfg, n), data["rules"], method="exact")
        assert res["method"] == "enumeration" and res["exact"]
        rec = {r["rule"]: r for r in res["rules"]}
        for i, name in enumerate(data["rules"]):
            # the same computation: bit-for-bit equal
            assert data["bias"][i, j] == rec[name]["bias_norm"]
            assert data["cosine"][i, j] == rec[name]["cosine"]
            assert data["var_trace"][i, j] == rec[name]["var_trace"]
            assert data["rel_bias"][i, j] == rec[name]["bias_norm"] / res["true_grad_norm"]


def test_is_is_unbiased_and_on_policy_rules_agree(data):
    rules = data["rules"]
    i_is = rules.index("is")
    # claim U1: IS is exactly unbiased; the enumeration sums 4^6 terms, so rounding of the order
    # 4096 eps relative to ||grad J|| is the most a float64 sum can leave (1e-12 covers it)
    assert np.all(data["rel_bias"][i_is] <= 1e-12)
    # N = 0 (mu = pi): every coefficient of W-based rules is 1, so they all equal IS exactly
    # (rounding aside: 1e-12 relative)
    for name in ("vespo", "ppo_clip", "cispo", "reinforce"):
        i = rules.index(name)
        assert data["var_trace"][i, 0] == pytest.approx(data["var_trace"][i_is, 0], rel=1e-12)
        assert data["rel_bias"][i, 0] <= 1e-12
    # staleness makes VESPO biased (relaxed claim R9)
    assert data["rel_bias"][rules.index("vespo"), -1] > 0.5


def test_plot_draws_the_arrays(data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_staleness as mod
    from paper_figures._style import label

    fig = mod.plot(data)
    try:
        for ax, key in zip(fig.axes, ("rel_bias", "one_minus_cos", "var_trace")):
            lines = {ln.get_label(): ln for ln in ax.get_lines()}
            for i, name in enumerate(data["rules"]):
                ln = lines[label(name)]
                np.testing.assert_array_equal(ln.get_xdata(), data["N"])
                np.testing.assert_array_equal(ln.get_ydata(), data[key][i])
    finally:
        plt.close(fig)


def test_rules_come_from_the_registry_and_bad_input_names_itself(monkeypatch):
    from paper_figures import theory_staleness as mod

    cfg = mod.resolve_config(rules=["vespo", "no_such_rule", "is"])
    assert mod.rules_of(cfg) == ["vespo", "is"]  # an unknown (or removed) rule is skipped
    with pytest.raises(ValueError, match="^rules:"):
        mod.rules_of(mod.resolve_config(rules=["no_such_rule"]))
    with pytest.raises(ValueError, match="^staleness:"):
        mod.compute(mod.resolve_config(staleness=[2, 1]))
    with pytest.raises(ValueError, match="^staleness:"):
        mod.compute(mod.resolve_config(staleness=[-1]))
    with pytest.raises(ValueError, match="^config:"):
        mod.resolve_config(nope=1)


def test_evidence_lines_follow_the_arrays(data):
    from paper_figures import theory_staleness as mod

    ev = mod.evidence(mod.arrays(data))
    assert set(ev) == {"U1", "R9", "ASC1"}
    assert "IS's relative bias" in ev["U1"]
