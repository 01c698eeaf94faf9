"""Fig. 1 (``fig01_variational``) and its solver :mod:`vespo_theory.variational`.

The closed form Q* ∝ mu W^a e^(-bW) with b solved for the budget (arXiv 2602.10693 Prop. B.1,
claims Q1-Q3) is checked against an independent numerical solve of the constrained problem
(SciPy's SLSQP), and the figure's data and drawn artists against the solver.
"""

from __future__ import annotations

import numpy as np
import pytest

from vespo_theory import variational as var

pytest.importorskip("matplotlib")

from paper_figures import fig01_variational as fig1  # noqa: E402 (after the matplotlib skip)
from vespo_theory.cli import main as vespo_main  # noqa: E402 (after the matplotlib skip)

EPS = float(np.finfo(np.float64).eps)
MU, PI = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.3, 0.5])


def _slsqp(mu, pi, a, C):
    """min KL(Q||mu) - a E_Q[log W] s.t. sum Q = 1, E_Q[W] <= C, Q >= 0: the problem as stated,
    with no knowledge of the closed form (start: uniform)."""
    from scipy.optimize import minimize

    log_mu, log_w = np.log(mu), np.log(pi) - np.log(mu)
    w = np.exp(log_w)

    def f(q):
        lq = np.log(np.maximum(q, 1e-300))
        return float(q @ (lq - log_mu - a * log_w))

    def jac(q):
        return np.log(np.maximum(q, 1e-300)) - log_mu - a * log_w + 1.0

    cons = [
        {"type": "eq", "fun": lambda q: q.sum() - 1.0, "jac": lambda q: np.ones_like(q)},
        {"type": "ineq", "fun": lambda q: C - q @ w, "jac": lambda q: -w},
    ]
    res = minimize(
        f, np.full(mu.size, 1.0 / mu.size), jac=jac, method="SLSQP",
        bounds=[(1e-15, 1.0)] * mu.size, constraints=cons,
        options={"ftol": 1e-15, "maxiter": 2000},
    )  # fmt: skip
    assert res.success, res.message
    return res.x


# Tolerance of the comparison: the objective's Hessian on the simplex is diag(1/Q) >= I, so it is
# 1-strongly convex and F(Q) - F(Q*) >= |Q - Q*|^2 / 2 for feasible Q; SLSQP stops when the
# objective changes by < ftol = 1e-15 between iterations, which leaves |Q - Q*| of order
# sqrt(2e-15) ~ 5e-8 in the worst case. 1e-6 covers that with room (seen: below 1e-8), and is far
# below any error a wrong b or a wrong sign of the budget term would make (> 1e-2 here).
SLSQP_TOL = 1e-6


@pytest.mark.parametrize(
    "mu, pi, a, C",
    [
        (MU, PI, 2.0, 1.5),  # the figure's marked optimum
        (MU, PI, 2.0, 3.0),
        (MU, PI, 3.0, 0.8),
        (MU, PI, 0.5, 1.2),
        (MU, PI, -0.5, 0.9),
        (MU, PI, 2.0, 10.0),  # slack: b = 0, Q* = Q_a
        (np.array([0.2, 0.5, 0.3]), np.array([0.45, 0.1, 0.45]), 1.0, 1.3),
    ],
)
def test_q_star_equals_an_independent_slsqp_solve(mu, pi, a, C):
    q, b = var.q_star(mu, pi, a, C)
    q_num = _slsqp(mu, pi, a, C)
    assert np.max(np.abs(q - q_num)) <= SLSQP_TOL
    w = pi / mu
    if C >= var.slack_threshold(mu, pi, a):
        assert b == 0.0
        np.testing.assert_allclose(q, var.path(mu, pi, a)[0], rtol=1e-14, atol=0)
    else:
        # binding budget: E_Q*[W] = C to float64 precision (b from brentq at rtol 4 eps; the
        # sum of 3 terms and the exp/log round trip add a few ulp: 64 eps relative)
        assert b > 0 and abs(float(q @ w) - C) <= 64 * EPS * C


def test_slack_threshold_and_budget_of_b_are_inverse_to_solve_b():
    e0 = var.slack_threshold(MU, PI, 2.0)
    w = PI / MU
    # E(0) = E_mu[W^3] / E_mu[W^2] by hand: 12.8222 / 2.8667
    assert e0 == pytest.approx((MU @ w**3) / (MU @ w**2), rel=1e-14)
    for b in (0.1, 1.0, 3.0, 10.0):
        c = var.budget_of_b(MU, PI, 2.0, b)
        # b recovered to brentq's precision, relative 1e-10 (the map C -> b is steep near min W:
        # |db/dC| = 1/Var_Q(W), which is ~1e2 at b = 10 here, times a few ulp of C)
        assert var.solve_b(MU, PI, 2.0, c) == pytest.approx(b, rel=1e-10)
    assert var.solve_b(MU, PI, 2.0, e0) == 0.0


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: var.q_star([0.5, 0.5, 0.1], PI, 2.0, 1.0), "mu"),
        (lambda: var.q_star(MU, [0.5, 0.5], 2.0, 1.0), "pi"),
        (lambda: var.q_star(MU, [0.5, 0.5, 0.0], 2.0, 1.0), "pi"),
        (lambda: var.q_star(MU, PI, float("nan"), 1.0), "a"),
        (lambda: var.q_star(MU, PI, 2.0, 1 / 3), "C"),  # = min W: infeasible
        (lambda: var.q_star(MU, PI, 2.0, "big"), "C"),
        (lambda: var.log_q_star(MU, PI, 2.0, -1.0), "b"),
        (lambda: var.path(MU, PI, [[1.0]]), "a"),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_argument(call, arg):
    with pytest.raises(ValueError) as exc:
        call()
    msg = str(exc.value)
    assert msg.startswith(f"{arg}:") and "\n" not in msg


def test_log_space_survives_extreme_exponents():
    # a = 400 would overflow W^a = 5^400 in float64; in log space Q* is a clean vertex
    q, b = var.q_star(MU, PI, 400.0, 4.9)
    assert np.all(np.isfinite(q)) and q.sum() == pytest.approx(1.0, abs=4 * EPS)
    assert b == 0.0 or float(q @ (PI / MU)) == pytest.approx(4.9, rel=1e-12)


@pytest.fixture(scope="module")
def data():
    return fig1.compute(fig1.resolve_config(fast=True))


def test_figure_data_is_the_solver(data):
    cfg = data["config"]
    q, b = var.q_star(cfg["mu"], cfg["pi"], cfg["a"], cfg["C"])
    np.testing.assert_array_equal(data["q_star"], q)
    assert data["b"] == b
    np.testing.assert_array_equal(data["q_path"], var.path(cfg["mu"], cfg["pi"], data["a_path"]))
    for c, qt, bt in zip(data["C_track"], data["q_star_track"], data["b_track"]):
        q2, b2 = var.q_star(cfg["mu"], cfg["pi"], cfg["a"], float(c))
        np.testing.assert_array_equal(qt, q2)
        assert bt == b2
    # the track runs from Q_a (C = E(0), b = 0) towards the vertex of min W
    assert data["b_track"][0] == 0.0 and np.all(np.diff(data["b_track"]) >= 0)
    assert data["q_star_track"][-1][np.argmin(data["w"])] > 0.99
    # the deployed b = lam = 3 sits at the budget it implies
    assert var.solve_b(cfg["mu"], cfg["pi"], cfg["a"], float(data["deployed_C"])) == pytest.approx(
        3.0, rel=1e-10
    )


def test_plotted_points_are_the_data(data):
    import matplotlib.pyplot as plt

    fig = fig1.plot(data)
    try:
        ax, axb = fig.axes
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        star = next(ln for lab, ln in lines.items() if lab.startswith(r"$Q^*(a, C)$"))
        np.testing.assert_array_equal(
            np.array([star.get_xdata()[0], star.get_ydata()[0]]), fig1.to_xy(data["q_star"])
        )
        track = lines[r"track of $Q^*$ as $C$ shrinks"]
        np.testing.assert_array_equal(
            np.column_stack([track.get_xdata(), track.get_ydata()]),
            fig1.to_xy(data["q_star_track"]),
        )
        bline = axb.get_lines()[0]
        np.testing.assert_array_equal(bline.get_xdata(), data["C_track"])
        np.testing.assert_array_equal(bline.get_ydata(), data["b_track"])
        # the shaded region is exactly {Q : Q . w <= C} cut from the simplex
        region = fig1.budget_region(data["w"], float(data["C"]))
        assert np.all(region @ data["w"] <= float(data["C"]) * (1 + 4 * EPS))
        assert np.allclose(region.sum(axis=1), 1.0)
    finally:
        plt.close(fig)


def test_npz_holds_mu_pi_a_C_q_star(tmp_path):
    assert vespo_main(["figures", "fig01_variational", "--fast", "--out", str(tmp_path)]) == 0
    z = np.load(tmp_path / "fig01_variational.npz")
    assert {"mu", "pi", "a", "C", "q_star"} <= set(z.files)
    q, _ = var.q_star(z["mu"], z["pi"], float(z["a"]), float(z["C"]))
    np.testing.assert_array_equal(z["q_star"], q)
    # and an outside solver agrees (the point of shipping the arrays)
    assert np.max(np.abs(_slsqp(z["mu"], z["pi"], float(z["a"]), float(z["C"])) - q)) <= SLSQP_TOL
