"""``simulate_ar``: one autoregressive setting, every rule, by the best exact method or Monte Carlo.

Method choice (``method="auto"``): enumeration when V^T <= ``max_sequences``; else the lattice
when the policy is context-free with fixed length and a constant advantage; else Monte Carlo.
``method="exact"``: the same without the Monte Carlo fallback (an error instead).
The result is a plain dict (JSON-ready through :func:`vespo_theory.jsonio.to_jsonable`):
``config``, ``method``, ``rules`` (one record per rule, keys of
:data:`simulations.estimators.RESULT_KEYS`), ``summary`` (raw-weight statistics: E_W, log_E_W2,
ess_W, khat_W) and ``true_grad_norm``.

Memory: before any large allocation the run's peak is estimated (tables, enumeration, Monte
Carlo batch, lattice; the estimates live next to the code that allocates) and refused past the
limit of :mod:`vespo_theory.resources` with a hint of what to lower.
"""

from __future__ import annotations

import math

import numpy as np

from simulations.config import (
    DEFAULT_GRID_POINTS,
    DEFAULT_MAX_SEQUENCES,
    DEFAULT_N_MC,
    METHODS,
    ARConfig,
    resolve_rules,
)
from simulations.estimators import (
    rule_results,
    rule_results_bytes,
    true_gradient_from_batch,
    weight_summary,
)
from simulations.lattice import lattice_results, seq_only_names
from simulations.montecarlo import sample_sequences
from simulations.tabular import (
    BATCH_BYTES_PER_ENTRY,
    ARModel,
    advantages,
    enumerate_sequences,
    enumeration_bytes,
    fits_enumeration,
    make_ar_model,
    n_sequences_text,
)
from vespo_theory.resources import check_memory

__all__ = ["simulate_ar", "choose_method", "mc_bytes", "METHODS"]


def _lattice_ok(model: ARModel, cfg: ARConfig) -> str | None:
    """None if the lattice method applies, else the reason it does not."""
    if model.S != 1:
        return f"policy {cfg.policy!r} is not context-free"
    if model.end_token is not None:
        return "the length is random (end token)"
    if cfg.adv_mode != "constant":
        return "the advantage depends on the tokens (use adv_mode='constant' / --adv-constant)"
    return None


def choose_method(model: ARModel, cfg: ARConfig, max_sequences: int = DEFAULT_MAX_SEQUENCES) -> str:
    """auto: enumeration if V^T <= max_sequences, else the lattice if it applies, else mc."""
    if fits_enumeration(model.V, model.T, max_sequences):
        return "enumeration"
    if _lattice_ok(model, cfg) is None:
        return "lattice"
    return "mc"


def mc_bytes(n: int, T: int) -> int:
    """Peak bytes of a Monte Carlo run: the batch [n, T] (tokens, states, log-ratios, mask)
    plus the per-rule arrays of :func:`simulations.estimators.rule_results_bytes`. The
    on-policy batch (true gradient without a closed form) is freed before the behaviour batch
    is drawn, so it does not add."""
    return n * T * BATCH_BYTES_PER_ENTRY + rule_results_bytes(n, T)


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
    rules=None,
    *,
    method: str = "auto",
    n_mc: int = DEFAULT_N_MC,
    max_sequences: int = DEFAULT_MAX_SEQUENCES,
    grid_points: int = DEFAULT_GRID_POINTS,
    progress=None,
) -> dict:
    """Every statistic of ``simulations.estimators`` for each rule in one AR setting.

    ``rules``: Rule objects (names are resolved here once; None = every rule). ``progress``
    (optional) is called with a short text after each stage and each rule.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    explicit_rules = rules is not None
    rules = resolve_rules(rules)
    say = progress if progress is not None else (lambda _text: None)
    model = make_ar_model(cfg)
    say("model")
    if method in ("auto", "exact"):
        chosen = choose_method(model, cfg, max_sequences)
        if method == "exact" and chosen == "mc":
            raise ValueError(
                f"no exact method applies: V^T = {cfg.V}^{cfg.T} = "
                f"{n_sequences_text(cfg.V, cfg.T)} exceeds --max-sequences and the lattice "
                f"does not apply ({_lattice_ok(model, cfg)}); use --method mc"
            )
        method = chosen
    out = {"config": cfg.to_dict(), "method": method, "skipped_rules": []}
    if method == "lattice":
        why = _lattice_ok(model, cfg)
        if why is not None:
            raise ValueError(f"the lattice method does not apply: {why}")
        seq_rules = [r for r in rules if r.seq_only]
        if explicit_rules and len(seq_rules) < len(rules):
            bad = [r.name for r in rules if not r.seq_only]
            raise ValueError(
                f"rule(s) {', '.join(bad)} are token-level; the lattice method covers only "
                f"seq_only rules ({seq_only_names()}): use --method mc"
            )
        out["skipped_rules"] = [r.name for r in rules if not r.seq_only]
        recs, summary = lattice_results(
            model.log_behaviour[0],
            model.log_pi[0],
            cfg.T,
            seq_rules,
            adv=cfg.adv_value,
            delta=model.lattice_step,
            grid_points=grid_points,
            seed=cfg.seed,
            progress=say,
        )
        for rec in recs:
            rec.pop("mean")
        out.update(rules=recs, summary=summary, true_grad_norm=0.0)
        return out
    T = cfg.T
    if method == "enumeration":
        if fits_enumeration(cfg.V, T, max_sequences):  # else enumerate_sequences says why
            count = cfg.V**T
            check_memory(
                max(
                    enumeration_bytes(cfg.V, T),
                    count * T * BATCH_BYTES_PER_ENTRY + rule_results_bytes(count, T),
                ),
                f"the enumeration of V^T = {n_sequences_text(cfg.V, T)} sequences of length "
                f"T = {T}",
                "lower --V, --T or --max-sequences, or use --method mc",
            )
        batch = enumerate_sequences(model, max_sequences)
        say("enumeration")
        adv = advantages(model, cfg, batch)
        true_grad = true_gradient_from_batch(model, batch, adv)["mean"]
        out["true_grad_method"] = "enumeration"
    else:
        check_memory(
            mc_bytes(n_mc, T),
            f"a Monte Carlo batch of {n_mc} sequences of length T = {T}",
            "lower --n-mc or --T",
        )
        rng_b, rng_pi = (
            np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, 1]).spawn(2)
        )
        true_grad = _context_free_true_grad(model, cfg)
        out["true_grad_method"] = "closed form"
        if true_grad is None:
            # drawn first and freed before the behaviour batch (its own generator: the order
            # does not change any number), so the two batches are never in memory together
            on_policy = sample_sequences(model, n_mc, rng_pi, policy="pi")
            adv_pi = advantages(model, cfg, on_policy)
            reinforce = resolve_rules(["reinforce"])
            mom = rule_results(model, on_policy, adv_pi, reinforce, np.zeros(model.dim), "mc")
            true_grad = _on_policy_mean(model, on_policy, adv_pi)
            del on_policy, adv_pi
            out["true_grad_method"] = "mc on-policy (pi samples)"
            out["true_grad_se"] = math.sqrt(mom[0]["var_trace"] / n_mc)
            say("on-policy sample")
        batch = sample_sequences(model, n_mc, rng_b)
        say("sample")
        adv = advantages(model, cfg, batch)
        out["n_mc"] = n_mc
    out["rules"] = rule_results(
        model, batch, adv, rules, true_grad, method, seed=cfg.seed, progress=say
    )
    out["summary"] = weight_summary(batch, seed=cfg.seed)
    with np.errstate(over="ignore"):  # inf only next to a NaN that rule_results refused
        out["true_grad_norm"] = float(np.linalg.norm(true_grad))
    return out


def _on_policy_mean(model: ARModel, batch, adv) -> np.ndarray:
    from simulations.estimators import score_moments

    return score_moments(model, batch, batch.mask.astype(np.float64), adv)["mean"]
