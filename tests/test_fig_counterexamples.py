"""theory_counterexamples: the bars are the falsifier's minimal counterexamples, replayable."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("hypothesis")


@pytest.fixture(scope="module")
def data():
    from paper_figures import theory_counterexamples as mod

    return mod.compute(mod.resolve_config())


def test_every_relaxed_claim_is_drawn_from_its_search(data):
    from simulations.falsify import get_claim, search
    from vespo_theory import claims

    assert data["claims"] == claims.ids("relaxed")
    cfg = data["config"]
    for i, cid in enumerate(data["claims"]):
        # the search is deterministic for a seed: a fresh one gives the same counterexample
        res = search(get_claim(cid), cfg["budget"], seed=cfg["seed"])
        assert res.status == "violated" == data["status"][i]
        ce = res.counterexample
        assert data["lhs"][i] == ce["lhs"] and data["rhs"][i] == ce["rhs"]
        assert data["lhs"][i] > data["rhs"][i]
        assert data["replay"][i] == ce["replay"] and data["instances"][i] == ce["instance"]


def test_saved_instances_replay_to_the_plotted_sides(data):
    from paper_figures import theory_counterexamples as mod
    from simulations.falsify import get_claim, replay

    arr = mod.arrays(data)
    for i, text in enumerate(arr["instance_json"]):
        inst = json.loads(str(text))
        res = replay(get_claim(inst.pop("claim")), inst)
        # JSON round-trips floats exactly, and the evaluation is deterministic: equal sides
        assert res.status == "violated"
        assert res.counterexample["lhs"] == arr["lhs"][i]
        assert res.counterexample["rhs"] == arr["rhs"][i]


def test_plot_draws_the_two_sides(data):
    import matplotlib.pyplot as plt

    from paper_figures import theory_counterexamples as mod

    fig = mod.plot(data)
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == len(data["claims"])
        for i, ax in enumerate(visible):
            heights = [p.get_height() for p in ax.patches]
            assert heights == [data["lhs"][i], data["rhs"][i]]
            assert ax.get_title(loc="left").startswith(data["claims"][i] + ":")
    finally:
        plt.close(fig)


def test_bad_config_names_itself():
    from paper_figures import theory_counterexamples as mod

    with pytest.raises(ValueError, match="^claims:"):
        mod.compute(mod.resolve_config(claims=["NOPE"]))
    with pytest.raises(ValueError, match="^budget:"):
        mod.compute(mod.resolve_config(budget=0))
    assert np.all(np.isfinite(mod.arrays(mod.compute(mod.resolve_config(claims=["R1"])))["lhs"]))
