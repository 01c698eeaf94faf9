"""Tests that kill the mutants of ``simulations/falsify/claims.py`` (claims L1b, L2, M1, M2, R1,
R2, R3, R4, U2, U3 and their helpers) that the claim searches of tests/test_falsify.py let live
(see docs/mutation.md).

What they pin, each derived by hand or from the formula the module documents, not read back from
the code:

* the search spaces: M2's, L1b's, R1's, R3's, R4's and U3's strategies reach the edges of the
  domain stated in each claim's assumptions (T = 6 for M2, both advantage signs, A in [0, 1)
  for R3, Markov / prefix-hashed / end-token pairs for R4) and draw nothing outside it;
* L2's right-hand side M (a^2 + b) x^2 / 2 against hand values, and its rounding allowance
  (> 0) when M is planted to 0 under an exactly linear kernel;
* M1's and M2's documented tolerances on hand instances (uniform, one with E[W] planted to 2,
  and one whose mu puts probability exp(-800) = 0 on a token), M2's domain (context-free,
  fixed length) and a planted length error that M2 must report;
* L1b's advantage A = sign (|mean token reward| + 1), its M by the sign class and its relative
  tolerance 1e-9; R1's comparison of lengths T and T + 1 and its tolerance; the variance
  E||e||^2 - ||E e||^2 in R1's helper; R2's and R3's rounding tolerances and R2's printout on a
  two-arm bandit computed by hand; R3's trace variance;
* the magnitudes per-decision IS passes to the bias check (2 T times the coefficient with
  |r_s|), and which of U2's checks apply on which kind of model.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from simulations import estimators
from simulations.falsify import claims as C
from simulations.falsify import pdis
from vespo_theory import bounds, kernels

EPS = 2.0**-52  # float64 machine epsilon, the unit of every documented tolerance here
# pytest.approx is used with abs=0 throughout: the tolerances compared are ~1e-14, below its
# default absolute slack of 1e-12


def _draws(strategy, n: int = 100) -> list[dict]:
    """n instances of a strategy, derandomized (the same ones every run)."""
    seen: list[dict] = []

    @settings(
        database=None,
        derandomize=True,
        max_examples=n,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(inst):
        seen.append(inst)

    collect()
    return seen


def _ar(logits_pi, logits_mu, T, kind="context-free", end_token=False, reward=None) -> dict:
    V = len(logits_pi[0])
    inst = {
        "kind": kind,
        "V": V,
        "T": T,
        "n_hash": 1,
        "logits_pi": logits_pi,
        "logits_mu": logits_mu,
        "end_token": end_token,
    }
    if reward is not None:
        inst["reward"] = reward
    return inst


def _max_drift(inst: dict) -> float:
    return float(np.max(np.abs(np.subtract(inst["logits_mu"], inst["logits_pi"]))))


# ------------------------------------------------------------------------ strategies ----


def test_m2_strategy_reaches_length_6_and_stays_context_free_fixed_length():
    """Stated: context-free pairs, fixed length T <= 6."""
    seen = _draws(C._m2_strategy())
    assert all(i["kind"] == "context-free" and not i["end_token"] for i in seen)
    assert max(i["T"] for i in seen) == 6


def test_l1_strategy_covers_both_sign_classes_and_lengths_up_to_5():
    """Stated: T <= 5, A = sign (|mean token reward| + 1) with sign +1 or -1."""
    seen = _draws(C._l1_strategy())
    assert {i["adv_sign"] for i in seen} == {1.0, -1.0}
    assert max(i["T"] for i in seen) == 5


def test_r1_strategy_context_free_fixed_length_both_signs():
    """Stated: a context-free pair (compared at T and T + 1: no end token, no dependence),
    constant advantage (either sign, magnitude 1)."""
    seen = _draws(C._r1_strategy())
    assert all(i["kind"] == "context-free" and not i["end_token"] for i in seen)
    assert {i["adv"] for i in seen} == {1.0, -1.0}


def test_r3_strategy_advantages_fill_0_to_5_and_stay_there():
    """Stated: advantages in [0, 5] (the A >= 0 class only), including those below 1."""
    advs = [a for i in _draws(C._bandit_nonneg_strategy()) for a in i["adv"]]
    assert all(0.0 <= a <= 5.0 for a in advs)
    assert min(advs) < 1.0


def test_r4_strategy_reaches_each_kind_of_its_domain_and_nothing_else():
    """Stated: Markov or prefix-hashed pairs, or context-free ones with an end token; T <= 4;
    logit drift <= 0.09 (token ratios in [0.8, 1.2]). Context-free fixed length is U3's."""
    seen = _draws(C._r4_strategy(), 150)
    for i in seen:
        assert i["kind"] in ("markov", "prefix") or (i["kind"] == "context-free" and i["end_token"])
        assert i["T"] <= 4
        # 1e-12: the drift is (pi's logit + d) - pi's logit, rounded at logits <= 8
        assert _max_drift(i) <= 0.09 + 1e-12
    kinds = {(i["kind"], i["end_token"]) for i in seen}
    assert {k for k, _ in kinds} == {"markov", "prefix", "context-free"}
    assert ("context-free", True) in kinds
    assert max(i["T"] for i in seen) == 4


def test_u3_strategy_context_free_fixed_length_up_to_4():
    """Stated: context-free, fixed length T <= 4, logit drift <= 0.09."""
    seen = _draws(C._u3_strategy())
    for i in seen:
        assert i["kind"] == "context-free" and not i["end_token"]
        assert i["T"] <= 4
        assert _max_drift(i) <= 0.09 + 1e-12  # as in the R4 test
    assert max(i["T"] for i in seen) == 4


# ------------------------------------------------------------------------------------ L2 ----


@pytest.mark.parametrize("x", [0.5, -0.5])
def test_l2_rhs_is_the_second_order_lagrange_bound(x):
    """k = 2, lam = 3: g' = 2/W - 3, g'' = -2/W^2 on [1, 1+x]; a = max |g'| at the ends,
    b = 2 / w_lo^2, M = (2/3)^2 e. rhs = M (a^2 + b) x^2 / 2 + rounding (< 1e-13 here)."""
    w_lo, w_hi = 1 + min(x, 0.0), 1 + max(x, 0.0)
    a = max(abs(2 / w_lo - 3), abs(2 / w_hi - 3))  # 5/3 for x = 0.5, 3 for x = -0.5
    b = 2 / w_lo**2
    m = (2 / 3) ** 2 * math.e
    rem = m * (a * a + b) / 2 * x * x
    (chk,) = C._l2({"k": 2.0, "lam": 3.0, "x": x})
    # the rounding term is 16 eps (~30) < 1e-13 against rem > 0.7: relative 1e-11 leaves it room
    assert chk.rhs == pytest.approx(rem, rel=1e-11, abs=0)
    assert chk.rhs > rem
    assert chk.lhs <= chk.rhs


def test_l2_rounding_allowance_is_positive(monkeypatch):
    """With phi planted exactly linear (phi(1+x) = 1 + (k - lam) x: L2's lhs is rounding only)
    and M planted to 0 (no remainder), the check must still hold: rhs is the rounding
    allowance, > 0 and of order eps."""
    monkeypatch.setattr(kernels, "log_phi", lambda lw, k, lam: np.log1p((k - lam) * np.expm1(lw)))
    monkeypatch.setattr(bounds, "phi_max", lambda k, lam: 0.0)
    (chk,) = C._l2({"k": 2.0, "lam": 3.0, "x": 0.25})
    assert 0.0 < chk.rhs < 1e-12  # 16 eps (ph (k |log 1.25| + lam/4 + 1) + 1 + 25) ~ 1e-13
    assert chk.lhs <= chk.rhs


# ------------------------------------------------------------------------------------ M1 ----


def test_m1_tolerance_on_the_uniform_pair():
    """mu = pi = (1/2, 1/2), T = 1: E[W] = 1, n = 2, max|log b| + max|log W| = log 2: the
    documented 8 eps (n + T + big) max(E[W], 1) = 8 eps (3 + log 2)."""
    (chk,) = C._m1(_ar([[0.0, 0.0]], [[0.0, 0.0]], 1))
    assert chk.lhs <= 1e-15  # E[W] = 1/2 + 1/2 up to one rounding
    # the mutants change the tolerance by >= 1/8; 1e-9 is far above the rounding of log 2
    assert chk.rhs == pytest.approx(8 * EPS * (3 + math.log(2)), rel=1e-9, abs=0)


def test_m1_fails_when_e_w_is_planted_to_2(monkeypatch):
    """Every token log-ratio shifted by log 2 (T = 1): E[W] = 2, so M1 must fail; the tolerance
    scales with E[W]: 8 eps (2 + 1 + 2 log 2) * 2."""
    orig = C._enum

    def planted(inst, T=None):
        model, batch = orig(inst, T)
        return model, replace(batch, tok_log_ratio=batch.tok_log_ratio + math.log(2))

    monkeypatch.setattr(C, "_enum", planted)
    (chk,) = C._m1(_ar([[0.0, 0.0]], [[0.0, 0.0]], 1))
    assert chk.lhs == pytest.approx(1.0, rel=1e-12, abs=0)  # |2 - 1| up to rounding
    assert chk.lhs > chk.rhs
    assert chk.rhs == pytest.approx(
        8 * EPS * (3 + 2 * math.log(2)) * 2, rel=1e-9, abs=0
    )  # as above


def test_m1_zero_probability_sequence_does_not_open_the_tolerance():
    """mu puts exp(-800) = 0.0 on token 0 (pi too, so W = 1 on the support): the sequence of
    weight 0 is left out of max|log b|; the tolerance stays 8 eps (2 + 1 + 0), not inf."""
    (chk,) = C._m1(_ar([[-800.0, 0.0]], [[-800.0, 0.0]], 1))
    assert chk.lhs == 0.0
    assert chk.rhs == pytest.approx(24 * EPS, rel=1e-9, abs=0)  # rounding of one product


# ------------------------------------------------------------------------------------ M2 ----


def test_m2_refuses_markov_and_end_token_instances():
    with pytest.raises(C.OutsideAssumptions):
        C._m2(_ar([[0.0, 1.0]] * 3, [[0.0, 0.0]] * 3, 2, kind="markov"))
    with pytest.raises(C.OutsideAssumptions):
        C._m2(_ar([[0.0, 1.0]], [[0.0, 0.0]], 2, end_token=True))


def test_m2_tolerance_by_hand():
    """mu = (1/2, 1/2), pi = (3/4, 1/4), T = 2: 1 + chi2 = 2 (9/16 + 1/16) = 5/4; the terms
    log b + 2 log W are log(1/4) + 2 log(W1 W2), the largest in size -6 log 2 (W = 1/4). Documented
    tol: 16 eps (n + T (1 + |log(5/4)|) + max|term|) = 16 eps (4 + 2 (1 + log 1.25) + 6 log 2)."""
    (chk,) = C._m2(_ar([[math.log(3.0), 0.0]], [[0.0, 0.0]], 2))
    assert chk.lhs <= chk.rhs
    expected = 16 * EPS * (4 + 2 * (1 + math.log(1.25)) + 6 * math.log(2))
    assert chk.rhs == pytest.approx(expected, rel=1e-9, abs=0)  # mutants change it by >= 1/16


def test_m2_zero_probability_sequence_keeps_a_finite_tolerance_and_no_warning():
    """mu = pi with probability exp(-800) = 0.0 on token 0: log b = -inf on those sequences
    (expected, silently); the tolerance takes the finite terms only: 16 eps (4 + 2 + 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (chk,) = C._m2(_ar([[-800.0, 0.0]], [[-800.0, 0.0]], 2))
    assert chk.lhs == 0.0
    assert chk.rhs == pytest.approx(96 * EPS, rel=1e-9, abs=0)  # as above


def test_m2_fails_when_the_enumeration_has_the_wrong_length(monkeypatch):
    """Planted: E_mu[W^2] enumerated at T + 1 while the model (and the closed form) has T: off
    by log(5/4)."""
    orig = C._enum
    monkeypatch.setattr(
        C, "_enum", lambda inst, T=None: (orig(inst)[0], orig(inst, int(inst["T"]) + 1)[1])
    )
    (chk,) = C._m2(_ar([[math.log(3.0), 0.0]], [[0.0, 0.0]], 2))
    assert chk.lhs == pytest.approx(math.log(1.25), rel=1e-12, abs=0)  # float rounding only
    assert chk.lhs > chk.rhs


# ------------------------------------------------------------------------------------ L1b ----


def _stub_moments(monkeypatch, calls):
    def fake(model, batch, coef, adv, **kw):
        calls.append((np.array(coef, dtype=np.float64), np.array(adv, dtype=np.float64)))
        return {"e2": 1.0, "mean": np.zeros(model.dim)}

    monkeypatch.setattr(estimators, "score_moments", fake)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_l1_advantage_and_m_by_sign(monkeypatch, sign):
    """T = 1, rewards (0.5, -1.5): A = sign (|r| + 1) = sign (1.5, 2.5). Moments stubbed to
    E||e||^2 = 1, E e = 0, so rhs = M^2 (1 + 1e-9) with M of the sign's kernel:
    (2/3)^2 e for A > 0 (k, lam = 2, 3), (3/2)^3 / e for A < 0 (3, 2)."""
    calls = []
    _stub_moments(monkeypatch, calls)
    inst = {**_ar([[0.0, 0.0]], [[0.0, 0.0]], 1, reward=[0.5, -1.5]), "adv_sign": sign}
    (chk,) = C._l1(inst)
    assert [list(a) for _, a in calls] == [[1.5 * sign, 2.5 * sign]] * 2
    m = (2 / 3) ** 2 * math.e if sign > 0 else (3 / 2) ** 3 / math.e
    # the stated relative tolerance 1e-9, pinned to 1e-12 (M's rounding is ~1e-16)
    assert chk.rhs == pytest.approx(m * m * (1 + 1e-9), rel=1e-12, abs=0)
    assert chk.lhs == 1.0


# ------------------------------------------------------------------------------------ R1 ----


def _stub_var(monkeypatch, table):
    monkeypatch.setattr(C, "_vespo_var", lambda inst, T: table[T])


def test_r1_compares_lengths_t_and_t_plus_1_within_its_tolerance(monkeypatch):
    """Var_T = 3, E_T = 2; Var_{T+1} = 3 + 5e-9, E_{T+1} = 4: |dVar| = 5e-9 <= 1e-9 (2 + 4)."""
    _stub_var(monkeypatch, {2: (3.0, 2.0), 3: (3.0 + 5e-9, 4.0)})
    (chk,) = C._r1({"T": 2, "adv": 1.0})
    assert chk.lhs == pytest.approx(5e-9, rel=1e-6, abs=0)  # 3 + 5e-9 rounds to 4e-16 absolute
    assert chk.rhs == pytest.approx(6e-9, rel=1e-12, abs=0)  # one product, exact to rounding
    assert chk.lhs <= chk.rhs
    _stub_var(monkeypatch, {2: (3.0, 2.0), 3: (3.0 + 7e-9, 4.0)})
    (chk,) = C._r1({"T": 2, "adv": 1.0})
    assert chk.lhs > chk.rhs


def test_vespo_var_is_second_moment_minus_squared_mean(monkeypatch):
    """Var = E||e||^2 - ||E e||^2: with E||e||^2 = 5 and E e = (1, 2), Var = 0."""
    monkeypatch.setattr(
        estimators, "score_moments", lambda *a, **k: {"e2": 5.0, "mean": np.array([1.0, 2.0])}
    )
    inst = {**_ar([[0.0, 0.0]], [[0.0, 0.0]], 1), "adv": 1.0}
    assert C._vespo_var(inst, 1) == (0.0, 5.0)


# ------------------------------------------------------------------------------- R2, R3 ----


def _bandit_by_hand(mu, pi, adv):
    """W, phi(W) (deployed kernels: W^2 e^(3(1-W)) for A >= 0, W^3 e^(2(1-W)) for A < 0) and the
    softmax scores g_i = A_i (e_i - pi), written out independently of the module."""
    mu, pi, adv = (np.array(v, dtype=np.float64) for v in (mu, pi, adv))
    w = pi / mu
    phi = np.where(adv >= 0, w**2 * np.exp(3 * (1 - w)), w**3 * np.exp(2 * (1 - w)))
    g = adv[:, None] * (np.eye(mu.size) - pi[None, :])
    return mu, w, phi, g


BANDIT = {"mu": [0.5, 0.5], "pi": [0.75, 0.25], "adv": [1.0, 2.0]}


def test_r2_tolerances_by_hand():
    """Bias check: 64 n eps (E[phi ||g||] + E[W ||g||]); direction check: (pi/2) (delta_est +
    delta_true) + 8 eps with delta = 64 n eps ||E|x| || / ||E x|| (module and _direction_tol
    docs), on the two-arm bandit mu = (1/2, 1/2), pi = (3/4, 1/4), A = (1, 2)."""
    mu, w, phi, g = _bandit_by_hand(BANDIT["mu"], BANDIT["pi"], BANDIT["adv"])
    n = 2
    gn = np.sqrt((g * g).sum(axis=1))
    est, true = (mu * phi) @ g, (mu * w) @ g
    tol = 64 * n * EPS * (float((mu * phi) @ gn) + float((mu * w) @ gn))

    def delta(v, vabs):
        return 64 * n * EPS * float(np.linalg.norm(vabs)) / float(np.linalg.norm(v))

    ga = np.abs(g)
    tol_cos = math.pi / 2 * (delta(est, (mu * phi) @ ga) + delta(true, (mu * w) @ ga)) + 8 * EPS
    cos = float(est @ true) / float(np.linalg.norm(est) * np.linalg.norm(true))
    bias, direction = C._r2(dict(BANDIT))
    # 1e-9: our sums and the module's differ by rounding only (~1e-15 relative); the mutants
    # change a tolerance by >= 1/600 (one eps in ~600)
    assert bias.rhs == pytest.approx(tol, rel=1e-9, abs=0)
    assert direction.rhs == pytest.approx(tol_cos, rel=1e-9, abs=0)
    assert bias.lhs == pytest.approx(float(np.linalg.norm(est - true)), rel=1e-9, abs=0)
    assert direction.lhs == pytest.approx(1 - cos, rel=1e-6, abs=1e-15)  # 1 - cos cancels


def test_r2_without_a_direction_reports_0_le_0():
    """mu = pi, constant A: E_mu[W g] = A E_pi[e_y - pi] = 0 exactly (and E[phi g] too): no
    direction; the cosine part is reported as 0 <= 0 (the bias check remains)."""
    inst = {"mu": [0.5, 0.5], "pi": [0.5, 0.5], "adv": [1.0, 1.0]}
    _, direction = C._r2(inst)
    assert (direction.lhs, direction.rhs) == (0.0, 0.0)
    det = C._r2_details(inst)
    assert det["||E[phi g]|| / ||E[W g]||"] == math.inf


def test_r2_details_by_hand():
    """The printout: ||E[phi g]|| / ||E[W g]|| (here ||E[W g]|| = 0.265 < 1), W and phi(W)."""
    mu, w, phi, g = _bandit_by_hand(BANDIT["mu"], BANDIT["pi"], BANDIT["adv"])
    est, true = (mu * phi) @ g, (mu * w) @ g
    assert float(np.linalg.norm(true)) < 1
    det = C._r2_details(dict(BANDIT))
    ratio = float(np.linalg.norm(est) / np.linalg.norm(true))
    assert det["||E[phi g]|| / ||E[W g]||"] == pytest.approx(
        ratio, rel=1e-9, abs=0
    )  # rounding only
    assert det["W"] == pytest.approx([1.5, 0.5], rel=1e-12, abs=0)
    assert det["phi(W)"] == pytest.approx(list(phi), rel=1e-9, abs=0)


def test_trace_var_by_hand():
    """mu = (1/4, 3/4), x = ((1, 0), (3, 2)): mean (2.5, 1.5), trVar = 1/4 * 4.5 + 3/4 * 0.5."""
    x = np.array([[1.0, 0.0], [3.0, 2.0]])
    assert C._trace_var(np.array([0.25, 0.75]), x) == pytest.approx(1.5, rel=1e-15, abs=0)


def test_r3_sides_by_hand():
    """lhs = E||phi g||^2 - ||E[phi g]||^2 on the two-arm bandit, by hand."""
    mu, w, phi, g = _bandit_by_hand(BANDIT["mu"], BANDIT["pi"], BANDIT["adv"])
    x = phi[:, None] * g
    var = float(mu @ (x * x).sum(axis=1)) - float(np.linalg.norm(mu @ x)) ** 2
    (chk,) = C._r3(dict(BANDIT))
    assert chk.lhs == pytest.approx(var, rel=1e-9, abs=0)  # rounding only


def test_r3_tolerance_by_hand(monkeypatch):
    """Both variances stubbed to 0: rhs is the tolerance alone, 64 n eps E[(phi^2 + W^2)||g||^2]."""
    mu, w, phi, g = _bandit_by_hand(BANDIT["mu"], BANDIT["pi"], BANDIT["adv"])
    expected = 64 * 2 * EPS * float(mu @ ((phi**2 + w**2) * (g * g).sum(axis=1)))
    monkeypatch.setattr(C, "_trace_var", lambda mu, x: 0.0)
    (chk,) = C._r3(dict(BANDIT))
    assert chk.rhs == pytest.approx(expected, rel=1e-9, abs=0)  # mutants change it by >= 1/64


# ----------------------------------------------------------------------------- PDIS, U2 ----


@pytest.mark.parametrize(
    "form, fn",
    [("per_reward", "per_reward_coefficient"), ("reward_to_go", "reward_to_go_coefficient")],
)
def test_pdis_passes_2t_times_the_absolute_coefficient(monkeypatch, form, fn):
    """c_t sums up to 2T rewards of both signs: the bias check gets coef_mag = 2 T times the
    coefficient computed with |r_s| (stubbed to 5 here, the signed one to 1), and A = 1."""
    monkeypatch.setattr(
        pdis,
        fn,
        lambda model, batch, absolute=False: np.full((batch.n, model.T), 5.0 if absolute else 1.0),
    )
    seen = {}

    def record(*args, **kw):
        names = [
            "model",
            "batch",
            "coef",
            "adv",
            "model_pi",
            "batch_pi",
            "adv_pi",
            "what",
            "coef_mag",
        ]
        seen.update(dict(zip(names, args)), **kw)
        return C.Check(0.0, 0.0, "recorded")

    monkeypatch.setattr(C, "_bias_check", record)
    C._pdis_bias(_ar([[0.0, 1.0]], [[0.0, 0.0]], 3, reward=[1.0, -2.0]), form)
    assert seen.get("coef_mag") is not None
    np.testing.assert_array_equal(seen["coef_mag"], np.full((8, 3), 2 * 3 * 5.0))
    np.testing.assert_array_equal(seen["coef"], np.ones((8, 3)))
    np.testing.assert_array_equal(seen["adv"], np.ones(8))


@pytest.mark.parametrize(
    "kind, end_token, n_checks",
    [("context-free", False, 2), ("context-free", True, 1), ("markov", False, 1)],
)
def test_u2_checks_per_decision_is_only_on_context_free_fixed_length(kind, end_token, n_checks):
    """Per-reward weights are checked on every model; rho_{1:t} on the mean token reward only on
    context-free fixed-length ones (there both must hold)."""
    S = 3 if kind == "markov" else 1
    inst = _ar(
        [[0.3, -0.2]] * S, [[0.0, 0.1]] * S, 2, kind=kind, end_token=end_token, reward=[1.0, -0.5]
    )
    checks = C._u2(inst)
    assert len(checks) == n_checks
    assert "rho_{1:s}" in checks[0].what  # the per-reward check comes first, always
    assert all(c.lhs <= c.rhs for c in checks)
