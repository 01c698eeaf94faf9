"""The derivation checks: all twelve claims verify with the true premises, and every one of them
fails when fed a deliberately wrong premise (so none can pass vacuously)."""

from __future__ import annotations

import json
import random

import pytest
import sympy as sp

from vespo_theory import cli
from vespo_theory.derivations import CHECKS, CheckRecord, run_checks
from vespo_theory.derivations import _exact_ar as ar
from vespo_theory.derivations import checks as C

CLAIMS = ["Q1", "Q2", "Q3", "K1", "K2", "K3", "K4", "B1", "B2", "M1", "M2", "M3"]
KEYS = ["id", "statement", "assumptions", "method", "status", "detail", "seconds"]

W, k, lam = C.W, C.k, C.lam
TYPO_KERNEL = W**k * sp.exp(lam * (W - 1))  # sign typo in the exponent
GROWING_KERNEL = W**k * sp.exp(-lam * (1 - W))  # lam <= 0 in disguise: no interior maximum


@pytest.fixture(scope="module")
def records():
    return {r.id: r for r in run_checks(CLAIMS)}


def test_every_claim_has_a_check():
    run_checks(["Q1"])  # loads the check modules
    assert set(CLAIMS) <= set(CHECKS)


@pytest.mark.parametrize("cid", CLAIMS)
def test_claim_verified_with_true_premises(records, cid):
    r = records[cid]
    assert r.status == "verified", r.detail
    assert r.id == cid and r.seconds >= 0 and r.detail and r.assumptions


def _statement_drift(recs) -> list[str]:
    """IDs whose record does not carry the catalogue's statement (vespo_theory.claims)."""
    from vespo_theory import claims

    return [r.id for r in recs if r.statement != claims.statement(r.id)]


def test_records_carry_the_catalogue_statement_and_assumptions(records):
    from vespo_theory import claims

    assert _statement_drift(records.values()) == []
    for cid, r in records.items():
        assert r.assumptions.startswith(claims.assumptions(cid)), cid


def test_statement_drift_is_detected():
    """Wrong premise: a record with its own text (the old K3 wording of the falsifier)."""
    bad = CheckRecord(
        "K3", "argmax phi = k/lam, M = phi(k/lam)", "k > 0", "symbolic", "verified", "d", 0.0
    )
    assert _statement_drift([bad]) == ["K3"]


def _support_hole_models():
    """mu puts probability 0 on token 2 at every position, pi does not: supp pi ⊄ supp mu."""
    rng = random.Random(3)
    mu_t = [ar.random_dist(rng, 3, zero_at=2) for _ in range(3)]
    pi_t = [ar.random_dist(rng, 3) for _ in range(3)]
    return {"hole": (lambda p: mu_t[len(p)], lambda p: pi_t[len(p)])}


def _markov_models():
    rng = random.Random(4)
    return {"Markov": (ar.markov(rng, 3, 4), ar.markov(rng, 3, 4))}


def _solver_without_feasibility_check(log_mu, log_w, w, a_val, budget, sign=1):
    """A budget solver that never refuses: without a bracket it returns its last b (claim Q3
    says C <= min W has no b, so this must make the check fail)."""
    from scipy.optimize import brentq

    def excess(bv):
        return float(C._closed_form(log_mu, log_w, w, a_val, bv, sign) @ w) - budget

    if excess(0.0) <= 0:
        return 0.0
    hi = 1.0
    while excess(hi) > 0 and hi < 1e6:
        hi *= 2
    if excess(hi) > 0:
        return hi
    return brentq(excess, 0.0, hi, xtol=1e-14, rtol=1e-14)


def test_q3_solver_refuses_an_infeasible_budget():
    import numpy as np

    mu, w = np.array([0.5, 0.5]), np.array([0.4, 1.6])
    with pytest.raises(C.InfeasibleBudget, match="infeasible"):
        C._solve_b(np.log(mu), np.log(w), w, 1.0, 0.4)
    assert C._solve_b(np.log(mu), np.log(w), w, 1.0, 10.0) == 0.0


WRONG_PREMISES = {
    "Q1 flipped Lagrangian sign": lambda: C.check_q1(lagrangian_sign=-1),
    "Q2 KL(Q||pi) entering with a minus sign": lambda: C.check_q2(kl_signs=(1, -1)),
    "Q3 flipped Lagrangian sign": lambda: C.check_q3(lagrangian_sign=-1),
    "Q3 slack threshold E_mu[W] instead of E_mu[W^(a+1)]/E_mu[W^a]": lambda: C.check_q3(
        claimed_e0=lambda ms, ws, a: sum(m * w for m, w in zip(ms, ws)) / sum(ms)
    ),
    "Q3 solver that returns a number for an infeasible budget": lambda: C.check_q3(
        solver=_solver_without_feasibility_check
    ),
    "K1 typo'd kernel": lambda: C.check_k1(kernel=TYPO_KERNEL),
    "K1 flipped Lagrangian sign": lambda: C.check_k1(lagrangian_sign=-1),
    "K2 surrogate with lam^-(k+1)": lambda: C.check_k2(
        surrogate=sp.exp(lam) * lam ** (-k - 1) * sp.lowergamma(k, lam * W)
    ),
    "K2 typo'd kernel": lambda: C.check_k2(kernel=TYPO_KERNEL),
    "K3 claimed M with e^(k-lam)": lambda: C.check_k3(claimed_M=(k / lam) ** k * sp.exp(k - lam)),
    "K3 claimed argmax lam/k": lambda: C.check_k3(claimed_argmax=lam / k),
    "K3 typo'd kernel": lambda: C.check_k3(kernel=TYPO_KERNEL),
    "K4 wrong x^2 coefficient": lambda: C.check_k4(
        claimed_coeffs=[1, k - lam, ((k - lam) ** 2 + k) / 2]
    ),
    "K4 typo'd kernel": lambda: C.check_k4(kernel=TYPO_KERNEL),
    "B1 claimed M = phi(1) = 1": lambda: C.check_b1(claimed_M=sp.Integer(1)),
    "B1 unbounded kernel": lambda: C.check_b1(kernel=GROWING_KERNEL),
    "B2 claimed M = 1": lambda: C.check_b2(claimed_M=sp.Integer(1)),
    "B2 unbounded kernel": lambda: C.check_b2(kernel=GROWING_KERNEL),
    "B2 kernel 2 phi": lambda: C.check_b2(kernel=2 * W**k * sp.exp(lam * (1 - W))),
    "B2 kernel W^(k+1) e^(lam(1-W))": lambda: C.check_b2(
        kernel=W ** (k + 1) * sp.exp(lam * (1 - W))
    ),
    "M1 supp pi not inside supp mu": lambda: C.check_m1(models=_support_hole_models()),
    "M2 Markov (context-dependent) policies": lambda: C.check_m2(models=_markov_models()),
    "M3 log W mean 0 instead of -s2/2": lambda: C.check_m3(mean=sp.Integer(0)),
}


def test_every_claim_has_a_wrong_premise_test():
    assert {name.split()[0] for name in WRONG_PREMISES} == set(CLAIMS)


@pytest.mark.parametrize("name", list(WRONG_PREMISES))
def test_wrong_premise_fails(name):
    r = WRONG_PREMISES[name]()
    assert isinstance(r, CheckRecord)
    assert r.status == "failed", r.detail


def test_only_runs_the_subset():
    recs = run_checks(["K3", "B2"])
    assert [r.id for r in recs] == ["K3", "B2"]
    with pytest.raises(ValueError, match="unknown claim ID"):
        run_checks(["Z9"])


def test_cli_json_keys_and_only(capsys):
    assert cli.main(["derive", "--only", "K3,K4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["K3", "K4"]
    for d in data:
        assert list(d) == KEYS
        assert d["status"] == "verified"
        assert set(d["method"].split("+")) <= {"symbolic", "exact", "numeric"}


def test_cli_table(capsys):
    assert cli.main(["derive", "--only", "M1"]) == 0
    out = capsys.readouterr().out
    assert "M1" in out and "verified" in out and "1 checks: 1 verified, 0 failed" in out


def test_cli_unknown_id_exits_2(capsys):
    assert cli.main(["derive", "--only", "K9"]) == 2
    assert "unknown claim ID" in capsys.readouterr().err


def test_exit_status_nonzero_iff_a_check_failed(monkeypatch, capsys):
    monkeypatch.setitem(CHECKS, "XX", lambda: C.check_k3(kernel=TYPO_KERNEL))
    assert cli.main(["derive", "--only", "K4,XX"]) == 1
    assert "1 failed" in capsys.readouterr().out
    monkeypatch.setitem(
        CHECKS,
        "YY",
        lambda: CheckRecord("YY", "s", "a", "numeric", "inconclusive", "d", 0.0),
    )
    assert cli.main(["derive", "--only", "K4,YY"]) == 0
