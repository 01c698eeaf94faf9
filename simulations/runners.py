"""``simulate_ar``: one autoregressive setting, every rule, by the best exact method or Monte Carlo.

Method choice (``method="auto"``): enumeration when V^T <= ``max_sequences``; else the lattice
when the policy is context-free with fixed length and a constant advantage; else Monte Carlo.
The result is a plain dict (JSON-ready after :func:`to_jsonable`): ``config``, ``method``,
``rules`` (one record per rule, keys of :data:`simulations.estimators.RESULT_KEYS`),
``summary`` (raw-weight statistics: E_W, log_E_W2, ess_W, khat_W) and ``true_grad_norm``.
"""

from __future__ import annotations

import math

import numpy as np

from simulations.config import ARConfig
from simulations.estimators import rule_results, true_gradient_from_batch, weight_summary
from simulations.lattice import lattice_results
from simulations.montecarlo import sample_sequences
from simulations.tabular import (
    MAX_ENUMERATION,
    ARModel,
    advantages,
    enumerate_sequences,
    make_ar_model,
)
from vespo_theory.rules import available, get_rule

__all__ = ["simulate_ar", "choose_method", "to_jsonable", "METHODS"]

METHODS = ("auto", "enumeration", "lattice", "mc")


def _lattice_ok(model: ARModel, cfg: ARConfig) -> str | None:
    """None if the lattice method applies, else the reason it does not."""
    if model.S != 1:
        return f"policy {cfg.policy!r} is not context-free"
    if model.end_token is not None:
        return "the length is random (end token)"
    if cfg.adv_mode != "constant":
        return "the advantage depends on the tokens (use adv_mode='constant' / --adv-constant)"
    return None


def choose_method(model: ARModel, cfg: ARConfig, max_sequences: int = MAX_ENUMERATION) -> str:
    if model.n_sequences <= max_sequences:
        return "enumeration"
    if _lattice_ok(model, cfg) is None:
        return "lattice"
    return "mc"


def _context_free_true_grad(model: ARModel, cfg: ARConfig) -> np.ndarray | None:
    """grad E_pi[A] in closed form when it has one (context-free, fixed length), else None."""
    if cfg.adv_mode == "constant":
        return np.zeros(model.dim)
    if model.S == 1 and model.end_token is None:
        pi = model.pi[0]
        r = model.reward
        return pi * r - pi * float(pi @ r)
    return None


def simulate_ar(
    cfg: ARConfig,
    rules: list[str] | None = None,
    *,
    method: str = "auto",
    n_mc: int = 100_000,
    max_sequences: int = MAX_ENUMERATION,
    grid: int = 2049,
) -> dict:
    """Every statistic of ``simulations.estimators`` for each rule in one AR setting."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    model = make_ar_model(cfg)
    explicit_rules = rules is not None
    rules = list(available()) if rules is None else list(rules)
    for r in rules:
        get_rule(r)  # unknown names fail here, listing the valid ones
    if method == "auto":
        method = choose_method(model, cfg, max_sequences)
    out = {"config": cfg.to_dict(), "method": method, "skipped_rules": []}
    if method == "lattice":
        why = _lattice_ok(model, cfg)
        if why is not None:
            raise ValueError(f"the lattice method does not apply: {why}")
        seq_rules = [r for r in rules if get_rule(r).seq_only]
        if explicit_rules and len(seq_rules) < len(rules):
            bad = [r for r in rules if r not in seq_rules]
            raise ValueError(
                f"rule(s) {', '.join(bad)} are token-level; the lattice method covers only "
                "seq_only rules (is, reinforce, vespo, seq_tis, seq_mis, gspo): use --mc"
            )
        out["skipped_rules"] = [r for r in rules if r not in seq_rules]
        recs, summary = lattice_results(
            model.log_behaviour[0],
            model.log_pi[0],
            cfg.T,
            seq_rules,
            adv=cfg.adv_value,
            delta=model.lattice_step,
            grid=grid,
            seed=cfg.seed,
        )
        for rec in recs:
            rec.pop("mean")
        out.update(rules=recs, summary=summary, true_grad_norm=0.0)
        return out
    if method == "enumeration":
        batch = enumerate_sequences(model, max_sequences)
        adv = advantages(model, cfg, batch)
        true_grad = true_gradient_from_batch(model, batch, adv)["mean"]
        out["true_grad_method"] = "enumeration"
    else:
        rng_b, rng_pi = (
            np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, 1]).spawn(2)
        )
        batch = sample_sequences(model, n_mc, rng_b)
        adv = advantages(model, cfg, batch)
        true_grad = _context_free_true_grad(model, cfg)
        out["true_grad_method"] = "closed form"
        if true_grad is None:
            on_policy = sample_sequences(model, n_mc, rng_pi, policy="pi")
            adv_pi = advantages(model, cfg, on_policy)
            mom = rule_results(model, on_policy, adv_pi, ["reinforce"], np.zeros(model.dim), "mc")
            true_grad = _on_policy_mean(model, on_policy, adv_pi)
            out["true_grad_method"] = "mc on-policy (pi samples)"
            out["true_grad_se"] = math.sqrt(mom[0]["var_trace"] / n_mc)
        out["n_mc"] = n_mc
    out["rules"] = rule_results(model, batch, adv, rules, true_grad, method, seed=cfg.seed)
    out["summary"] = weight_summary(batch, seed=cfg.seed)
    out["true_grad_norm"] = float(np.linalg.norm(true_grad))
    return out


def _on_policy_mean(model: ARModel, batch, adv) -> np.ndarray:
    from simulations.estimators import score_moments

    return score_moments(model, batch, batch.mask.astype(np.float64), adv)["mean"]


def to_jsonable(x):
    """numpy scalars/arrays to Python; non-finite floats stay floats (dump_json quotes them)."""
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x
