r"""K-armed bandits: the exact policy gradient and every rule's one-sample estimate, exactly.

Behaviour ``mu`` and target ``pi = softmax(theta)`` over K arms, reward ``r_a``, advantage
``A_a = r_a - baseline``. One draw a ~ mu gives the estimate ``e(a) = A_a c_a (e_a - pi)``
(``grad_theta log pi_a = e_a - pi``), with ``c_a`` the rule's coefficient at the one-token
ratio ``pi_a / mu_a``. The exact policy gradient is ``grad E_pi[A] = sum_a pi_a A_a (e_a - pi)``.

A bandit is the T = 1 context-free case of :mod:`simulations.tabular`, so enumeration (K arms),
Monte Carlo and the estimators are the same code; here the full K x K covariance is returned too.
"""

from __future__ import annotations

import numpy as np

from simulations.config import DEFAULT_N_MC, BanditConfig, resolve_rules
from simulations.estimators import rule_results, score_moments, weight_summary
from simulations.montecarlo import sample_sequences
from simulations.runners import mc_bytes
from simulations.tabular import SequenceBatch, enumerate_sequences, model_from_probs
from vespo_theory.resources import check_memory

__all__ = ["bandit_model", "bandit_bytes", "exact_gradient", "simulate_bandit"]


def bandit_model(cfg: BanditConfig):
    """The bandit as a T = 1 context-free model (checks mu, pi: sum 1, support)."""
    return model_from_probs(cfg.mu, cfg.pi, 1, reward=cfg.reward)


def exact_gradient(cfg: BanditConfig) -> np.ndarray:
    """grad_theta E_pi[A] = sum_a pi_a A_a (e_a - pi), A_a = r_a - baseline."""
    model = bandit_model(cfg)
    pi = model.pi[0]
    adv = np.asarray(cfg.reward) - cfg.baseline
    return pi * adv - pi * float(pi @ adv)


def _adv(cfg: BanditConfig, batch: SequenceBatch) -> np.ndarray:
    return np.asarray(cfg.reward)[batch.tokens[:, 0]] - cfg.baseline


def bandit_bytes(K: int, n_mc: int) -> int:
    """Peak bytes of :func:`simulate_bandit`: the Monte Carlo batch (T = 1) and the K x K
    covariance of ``score_moments(full_cov=True)``: cov, the chunk's cross product,
    outer(mean, mean) and cov - outer (4 K^2), plus the chunk of estimates, its weighted copy,
    its square and the bincount behind it (4 arrays of at most K^2 and at most 2^22 entries).
    tracemalloc: 40 MB at K = 1000, the estimate 64 MB (tests/test_memory.py); K = 50000 needs
    about 80 GB."""
    return mc_bytes(n_mc, 1) + 8 * (4 * K * K + 4 * min(K * K, 1 << 22))


def simulate_bandit(
    cfg: BanditConfig, rules=None, *, n_mc: int = DEFAULT_N_MC, progress=None
) -> dict:
    """Exact (enumeration over the K arms) and Monte Carlo statistics for every rule.

    ``rules``: Rule objects (names are resolved here once; None = every rule). Returns
    ``{"config", "true_grad", "exact": [records + "mean", "cov"], "mc": [records + se],
    "summary"}``; the records carry the keys of ``vespo simulate --json``.
    """
    rules = resolve_rules(rules)
    say = progress if progress is not None else (lambda _text: None)
    model = bandit_model(cfg)
    K = model.V
    check_memory(
        bandit_bytes(K, n_mc),
        f"a bandit with K = {K} arms and {n_mc} Monte Carlo draws",
        "lower --n-mc or the number of arms",
    )
    g = exact_gradient(cfg)
    batch = enumerate_sequences(model)
    adv = _adv(cfg, batch)
    exact = rule_results(model, batch, adv, rules, g, "enumeration", seed=cfg.seed)
    for rule, rec in zip(rules, exact):
        coef = np.asarray(rule.coefficient(batch.tok_log_ratio, batch.mask, adv))
        mom = score_moments(model, batch, coef, adv, full_cov=True)
        rec["mean"], rec["cov"] = mom["mean"], mom["cov"]
    say("exact")
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2]))
    sample = sample_sequences(model, n_mc, rng)
    mc = rule_results(model, sample, _adv(cfg, sample), rules, g, "mc", seed=cfg.seed, progress=say)
    return {
        "config": cfg.to_dict(),
        "true_grad": g,
        "exact": exact,
        "mc": mc,
        "n_mc": n_mc,
        "summary": weight_summary(batch, seed=cfg.seed),
    }
