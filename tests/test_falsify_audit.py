"""``vespo falsify`` for the claims the audit added or changed: R2 (directional), R3 (A >= 0),
R4/U3, U2 (per-reward weights), R6 (reward-to-go), R7/G1 (group advantages), R8 (ascent), R9
(staleness), K5 ((3,2) below IS).

For every new evaluator: its known counterexample replays (by the printed command) to a
violation with the stated numbers, and a wrong premise (pi = mu, a planted kernel or bound, the
i.i.d. premise restored) gives the opposite outcome, so the check can fail both ways.
"""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from simulations.falsify import OutsideAssumptions, get_claim, replay, replay_command, search
from simulations.falsify.core import Check, Claim
from vespo_theory.cli import main as vespo_main

CI_BUDGET = 100  # the ci hypothesis profile's max_examples (tests/conftest.py)

# Known counterexamples (the numbers are asserted below).
R7_KNOWN = {"mu": [0.789, 0.211], "pi": [0.631, 0.369], "reward": [0.2, -2.262], "G": 2}
R8_KNOWN = {  # softmax of integer logits (0, 3, 0) and (1, 0, 2); the search's minimal one
    "mu": [0.04527850074362907, 0.9094429985127419, 0.04527850074362907],
    "pi": [0.24472847105479764, 0.09003057317038046, 0.6652409557748218],
    "reward": [1.0, 0.0, 0.0],
}
R2_REVERSED = {"mu": [0.5, 0.5], "pi": [1 / 6, 5 / 6], "adv": [1.0, 1.1]}  # W = (1/3, 5/3)
MARKOV_T2 = {  # a Markov pair (state = previous token) of fixed length: R6 breaks, U2 holds
    "kind": "markov",
    "V": 2,
    "T": 2,
    "n_hash": 1,
    "logits_pi": [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
    "logits_mu": [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
    "end_token": False,
    "reward": [0.0, 1.0],
}
R9_BASE = {"logits_mu": [0.3, -0.2], "delta": [0.05, -0.05], "N": 8, "T": 100, "reward": [1, 0]}


def _replay_cli(claim_id: str, instance: dict, capsys) -> dict:
    """Run the printed replay command through the CLI; its JSON result."""
    argv = shlex.split(replay_command(claim_id, instance))
    assert argv[:3] == ["vespo", "falsify", "--replay"]
    capsys.readouterr()
    rc = vespo_main(argv[1:] + ["--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    return out


# ----------------------------------------------------------------------------- R7, G1


def test_r7_known_group_counterexample_replays(capsys):
    """mu = (0.789, 0.211), pi = (0.631, 0.369), rewards (0.2, -2.262), G = n = 2: the exact
    group variance is 1.1376 M^2 E||A g||^2 / n and 1.241 E[phi^2 ||A g||^2] / n."""
    out = _replay_cli("R7", R7_KNOWN, capsys)
    assert out["status"] == "violated"
    d = out["counterexample"]["details"]
    # 4-digit numbers quoted from the analysis; the evaluation is exact to ~1e-15
    assert d["Var/(M^2 E||A g||^2/n)"] == pytest.approx(1.1376, abs=5e-5)
    assert d["Var/(E[phi^2 ||A g||^2]/n)"] == pytest.approx(1.2411, abs=5e-5)
    assert d["Var/(M^2 max_i E||A_i g_i||^2)  (G1, <= 1)"] <= 1.0
    # the same instance satisfies G1 (no 1/n)
    assert replay(get_claim("G1"), R7_KNOWN).status == "held"


def test_r7_group_variance_equals_the_pairwise_decomposition():
    """Var(mean of G exchangeable x_i) = Var(x_1)/G + (G-1)/G Cov(x_1, x_2), the covariance from
    an independent enumeration of (y_1, y_2) with the others summed out."""
    import itertools

    from simulations.falsify.groups import group_moments
    from vespo_theory import kernels

    inst = {**R7_KNOWN, "G": 3}
    mom = group_moments(inst)
    mu, pi, r = (np.asarray(inst[k]) for k in ("mu", "pi", "reward"))
    lw = np.log(pi) - np.log(mu)
    x = {}
    for tup in itertools.product(range(2), repeat=3):
        rr = r[list(tup)]
        a = (rr - rr.mean()) / (rr.std() + 1e-6)
        ph = kernels.phi_signed(lw[list(tup)], a)
        x[tup] = [ph[i] * a[i] * (np.eye(2)[tup[i]] - pi) for i in range(3)]
    p = {t: float(np.prod(mu[list(t)])) for t in x}
    m1 = sum(p[t] * x[t][0] for t in x)
    v1 = sum(p[t] * float((x[t][0] - m1) @ (x[t][0] - m1)) for t in x)
    c12 = sum(p[t] * float((x[t][0] - m1) @ (x[t][1] - m1)) for t in x)
    # two routes through the same ~30 terms: agree to ~1e-15 relative; 1e-12 is 1000x that
    assert mom["var"] == pytest.approx(v1 / 3 + 2 / 3 * c12, rel=1e-12)
    assert c12 > 0  # the samples of a group are positively correlated here: the /n fails


def test_r7_wrong_premise_fixed_advantages_restore_the_iid_bound(monkeypatch):
    """With a fixed advantage function (B3's premise: A = R - 1, no group statistics) the samples
    are i.i.d. and the search finds no violation of the /n bound."""
    import simulations.falsify.groups as groups

    monkeypatch.setattr(groups, "group_advantages", lambda r: r - 1.0)
    r = search(get_claim("R7"), CI_BUDGET, seed=0)
    assert r.status == "held", r.counterexample
    assert replay(get_claim("R7"), R7_KNOWN).status == "held"


def test_g1_wrong_premise_unbounded_is_weights_break_it(monkeypatch):
    """With phi(W) = W (sequence IS, no bound M) in place of the kernel, G1 breaks within the ci
    budget: the bound is a property of the bounded kernel, not of any weight."""
    import vespo_theory.kernels as kernels

    monkeypatch.setattr(kernels, "phi_signed", lambda log_w, adv, params=None: np.exp(log_w))
    r = search(get_claim("G1"), CI_BUDGET, seed=0)
    assert r.status == "violated"
    assert r.counterexample["what"].startswith("max_i E||x_i||^2 <= M^2")


# ----------------------------------------------------------------------------- R8


def test_r8_known_counterexample_turns_the_update(capsys):
    out = _replay_cli("R8", R8_KNOWN, capsys)
    assert out["status"] == "violated"
    cos = out["counterexample"]["details"]["cos(E_mu[phi A g], grad J)"]
    assert cos == pytest.approx(-0.1496, abs=5e-5)
    assert out["lhs"] == pytest.approx(1 - cos, rel=1e-12)


def test_r8_wrong_premise_on_policy_and_two_arms_cannot_break_it():
    """pi = mu: the update is grad J itself (phi(1) = 1); two arms with a baseline: a positive
    multiple of it. Neither can be a counterexample."""
    r8 = get_claim("R8")
    for inst in (
        {"mu": R8_KNOWN["mu"], "pi": R8_KNOWN["mu"], "reward": R8_KNOWN["reward"]},
        {"mu": [0.9, 0.1], "pi": [0.01, 0.99], "reward": [1.0, -2.0]},
    ):
        res = replay(r8, inst)
        assert res.status == "held"
        assert res.worst.lhs <= 1.0  # cos >= 0
    on_policy = {"mu": R8_KNOWN["mu"], "pi": R8_KNOWN["mu"], "reward": R8_KNOWN["reward"]}
    d = r8.details(on_policy)
    assert d["cos(E_mu[phi A g], grad J)"] == pytest.approx(1.0, abs=1e-12)
    two_arm = Claim("R8", r8.inequality, "", "", _two_arm_strategy, r8.evaluate)
    assert search(two_arm, CI_BUDGET, seed=0).status == "held"


def _two_arm_strategy():
    import hypothesis.strategies as st

    from simulations.falsify import strategies as S

    return st.builds(
        lambda p, r: {**p, "reward": r},
        S.finite_pair(min_n=2, max_n=2, pi_zeros=False),
        st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=2),
    )


def test_r8_wrong_premise_is_weights_never_turn(monkeypatch):
    """With phi(W) = W (sequence IS) the update is grad J exactly: no violation anywhere."""
    import vespo_theory.kernels as kernels

    monkeypatch.setattr(kernels, "phi_signed", lambda log_w, adv, params=None: np.exp(log_w))
    assert search(get_claim("R8"), CI_BUDGET, seed=0).status == "held"
    assert replay(get_claim("R8"), R8_KNOWN).status == "held"


# ----------------------------------------------------------------------------- R9


def test_r9_update_shrinks_with_staleness_and_length(capsys):
    """E_mu[phi] and the update's component along grad J fall with N and T (M4, D1)."""
    from simulations.falsify.staleness import expected_update

    def ratio(**kw):
        e = expected_update({**R9_BASE, **kw})
        return float(e["u"] @ e["grad"]) / float(e["grad"] @ e["grad"]), e["E_phi"]

    r_t = [ratio(N=8, T=t) for t in (10, 100, 1000)]
    r_n = [ratio(N=n, T=100) for n in (1, 8, 32)]
    for seq in (r_t, r_n):
        assert seq[0][0] > seq[1][0] > seq[2][0] and seq[0][1] > seq[1][1] > seq[2][1]
    out = _replay_cli("R9", R9_BASE, capsys)
    assert out["status"] == "violated"
    d = out["counterexample"]["details"]
    assert d["<u, grad J>/||grad J||^2"] < 0.5 and d["E_mu[phi]"] < 0.05


def test_r9_wrong_premise_on_policy_or_is_weights_keep_the_update(monkeypatch):
    """N = 0 (pi = mu): u = grad J exactly; with phi = W (IS) u = grad J at any staleness."""
    from simulations.falsify.staleness import expected_update

    e = expected_update({**R9_BASE, "N": 0})
    # an fsum of T + 1 = 101 terms of size <= T = 100: 1e-12 absolute is ~40x their rounding
    np.testing.assert_allclose(e["u"], e["grad"], rtol=0, atol=1e-12)
    assert replay(get_claim("R9"), {**R9_BASE, "N": 0}).status == "held"
    import vespo_theory.kernels as kernels

    monkeypatch.setattr(kernels, "log_phi_signed", lambda log_w, adv, params=None: log_w)
    assert replay(get_claim("R9"), R9_BASE).status == "held"
    assert search(get_claim("R9"), CI_BUDGET, seed=0).status == "held"


# ----------------------------------------------------------------------------- R2, R3, K5


def test_r2_two_arm_reversal_and_three_arm_turn(capsys):
    """Two arms: W = (1/3, 5/3), A = (1, 1.1): IS's update and VESPO's point opposite ways
    (phi/W = 2.46 vs 0.23 swaps which arm dominates). The searched one turns by cos < 1."""
    out = _replay_cli("R2", R2_REVERSED, capsys)
    ce = out["counterexample"]
    assert out["status"] == "violated" and all(c["lhs"] > c["rhs"] for c in ce["checks"])
    assert ce["details"]["cos(E[phi g], E[W g])"] == pytest.approx(-1.0, abs=1e-12)


def test_r2_wrong_premise_is_weights_or_on_policy_are_unbiased(monkeypatch):
    r2 = get_claim("R2")
    assert replay(r2, {"mu": [0.2, 0.3, 0.5], "pi": [0.2, 0.3, 0.5], "adv": [1, -2, 3]}).status == (
        "held"
    )
    import vespo_theory.kernels as kernels

    monkeypatch.setattr(kernels, "phi_signed", lambda log_w, adv, params=None: np.exp(log_w))
    assert replay(r2, R2_REVERSED).status == "held"
    assert search(r2, CI_BUDGET, seed=0).status == "held"


def test_require_all_reports_only_instances_that_break_every_check():
    """A require_all claim: an instance breaking one of two checks is not reported by the search
    (replay still calls it violated); one breaking both is, with every check listed."""
    import hypothesis.strategies as st

    def ev(inst):
        return [Check(inst["a"], 0.0, "a <= 0"), Check(inst["b"], 0.0, "b <= 0")]

    strat = st.fixed_dictionaries({"a": st.sampled_from([1.0]), "b": st.sampled_from([-1.0])})
    c = Claim("R2", "a <= 0 and b <= 0", "", "", lambda: strat, ev, require_all=True)
    assert search(c, 20, seed=0).status == "held"
    assert replay(c, {"a": 1.0, "b": -1.0}).status == "violated"
    both = Claim("R2", "", "", "", lambda: strat.map(lambda d: {**d, "b": 2.0}), ev, None, True)
    ce = search(both, 20, seed=0).counterexample
    assert ce is not None and [x["what"] for x in ce["checks"]] == ["a <= 0", "b <= 0"]
    assert ce["what"] == "a <= 0"  # the binding (least violated) check: gap 1 < gap 2


def test_r3_counterexample_is_in_the_a_nonneg_class_where_phi_exceeds_w():
    ce = search(get_claim("R3"), CI_BUDGET, seed=0).counterexample
    inst, d = ce["instance"], ce["details"]
    assert min(inst["adv"]) >= 0
    # an outcome with A > 0 and W < 1 gets phi(W) > W: the (2,3) mechanism
    assert any(a > 0 and w < 1 < p / w for a, w, p in zip(inst["adv"], d["W"], d["phi(W)"]))


def test_k5_wrong_premise_the_23_kernel_breaks_it(monkeypatch):
    """K5 is about (3,2); a kernel computing (2,3) instead puts phi(0.54) = 1.15 above W."""
    import vespo_theory.kernels as kernels

    real = kernels.log_phi
    monkeypatch.setattr(kernels, "log_phi", lambda log_w, k, lam, **kw: real(log_w, 2.0, 3.0))
    r = search(get_claim("K5"), CI_BUDGET, seed=0)
    assert r.status == "violated"
    monkeypatch.undo()
    inst = {"mu": [1.0], "log_w": [math.log(0.54)], "score": [[1.0]]}
    assert replay(get_claim("K5"), inst).status == "held"


# ----------------------------------------------------------------------------- R4, U3, U2, R6


def test_r4_and_u3_split_the_domain():
    """U3 refuses R4's counterexample (a random length) and R4 refuses a context-free
    fixed-length pair: the two claims partition the unclipped instances."""
    ce = search(get_claim("R4"), CI_BUDGET, seed=0).counterexample["instance"]
    with pytest.raises(OutsideAssumptions, match="U3 is stated"):
        get_claim("U3").checks(ce)
    cf = {**ce, "kind": "context-free", "end_token": False}
    assert replay(get_claim("U3"), cf).status == "held"
    with pytest.raises(OutsideAssumptions, match="U3"):
        get_claim("R4").checks(cf)


def test_u2_per_reward_weights_are_unbiased_where_r6_breaks():
    """On a Markov pair of fixed length T = 2 and 3 both rho_{1:t} forms are biased (R6) while
    per-reward weights rho_{1:s} are not (U2)."""
    for T in (2, 3):
        inst = {**MARKOV_T2, "T": T}
        r6 = get_claim("R6").checks(inst)
        assert all(c.violated for c in r6) and len(r6) == 2
        u2 = get_claim("U2").checks(inst)
        assert len(u2) == 1 and not u2[0].violated  # Markov: only the per-reward check applies
        assert u2[0].lhs < 1e-15 < r6[1].lhs


def test_u2_wrong_premise_reward_to_go_weights_break_it(monkeypatch):
    """Planting the reward-to-go coefficient in place of the per-reward one breaks U2."""
    import simulations.falsify.pdis as pdis

    monkeypatch.setattr(pdis, "per_reward_coefficient", pdis.reward_to_go_coefficient)
    assert search(get_claim("U2"), CI_BUDGET, seed=0).status == "violated"


def test_u3_wrong_premise_a_squared_ratio_is_biased(monkeypatch):
    """A planted PPO coefficient r_t^2 (instead of r_t) is biased even on context-free
    fixed-length models: U3 breaks, so its check can fail."""
    import vespo_theory.rules as rules

    real = rules.get_rule

    class Squared:
        def __init__(self, rule):
            self.rule = rule

        def coefficient(self, tok_log_ratio, mask, adv):
            return np.asarray(self.rule.coefficient(tok_log_ratio, mask, adv)) ** 2

        def coefficient_and_clipped(self, tok_log_ratio, mask, adv):
            return self.rule.coefficient_and_clipped(tok_log_ratio, mask, adv)

    monkeypatch.setattr(
        rules, "get_rule", lambda name: Squared(real(name)) if name == "ppo_clip" else real(name)
    )
    assert search(get_claim("U3"), CI_BUDGET, seed=0).status == "violated"


def test_r6_wrong_premise_per_reward_weights_leave_nothing_to_find(monkeypatch):
    """With per-reward weights planted as the reward-to-go form, R6's second part is unbiased,
    so no instance breaks both parts: the search holds."""
    import simulations.falsify.pdis as pdis

    monkeypatch.setattr(pdis, "reward_to_go_coefficient", pdis.per_reward_coefficient)
    assert search(get_claim("R6"), CI_BUDGET, seed=0).status == "held"


def test_r6_counterexample_breaks_both_forms():
    ce = search(get_claim("R6"), CI_BUDGET, seed=0).counterexample
    assert len(ce["checks"]) == 2 and all(c["lhs"] > c["rhs"] for c in ce["checks"])
    assert ce["instance"]["V"] == 2 and ce["instance"]["T"] == 2


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "claim_id, instance, words",
    [
        ("R7", {**R7_KNOWN, "G": 1}, "G must be an integer >= 2"),
        ("R7", {**R7_KNOWN, "reward": [1.0]}, "reward must be a list of 2"),
        ("R8", {"mu": [0.5, 0.5], "pi": [0.5, 0.5]}, "reward must be a list of 2"),
        ("R9", {**R9_BASE, "T": 0}, "T must be an integer in [1, 4096]"),
        ("R9", {**R9_BASE, "logits_mu": [0.0, 1.0, 2.0]}, "logits_mu must be a list of 2"),
        ("K5", {"mu": [1.0], "log_w": [0.0], "score": [[1.0], [2.0]]}, "score must be a [1]"),
    ],
)
def test_bad_new_instances_are_one_line_errors(claim_id, instance, words, capsys):
    rc = vespo_main(["falsify", "--replay", json.dumps({"claim": claim_id, **instance})])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.strip().count("\n") == 0, err


def _doc_replay_lines() -> list[str]:
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "falsify.md"
    return [
        ln.strip()
        for ln in doc.read_text().splitlines()
        if ln.startswith("    ") and ln.strip().startswith("vespo falsify --replay '{")
    ]  # (the usage line's placeholder '<json instance ...>' is not an instance)


def test_docs_replay_commands_reproduce_their_violations(capsys):
    """Every replay command docs/falsify.md shows runs and exhibits a violation of a relaxed
    claim (the doc's numbers come from these instances)."""
    lines = _doc_replay_lines()
    assert len(lines) >= 5
    for line in lines:
        capsys.readouterr()
        assert vespo_main(shlex.split(line)[1:] + ["--json"]) == 0, line
        out = json.loads(capsys.readouterr().out)
        assert out["kind"] == "relaxed" and out["status"] == "violated", line
