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
from scipy.special import logsumexp

from simulations.config import (
    DEFAULT_GRID_POINTS,
    DEFAULT_MAX_COUNT_VECTORS,
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
from simulations.lattice import lattice_results, seq_only_names, token_lattice
from simulations.montecarlo import sample_sequences
from simulations.multinomial import (
    count_function_rules,
    count_vectors_text,
    fits_multinomial,
    multinomial_results,
    n_count_vectors,
)
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
from vespo_theory.resources import check_memory, format_count

__all__ = ["simulate_ar", "choose_method", "advantage_given", "mc_bytes", "METHODS", "LABELS"]


ADV_KEYS = ("bias_norm", "cosine", "var_trace")
#: The record label of each method (the ``method`` column); "mc" is the option's name.
LABELS = {
    "enumeration": "enumeration",
    "multinomial": "multinomial",
    "lattice": "lattice",
    "mc": "monte-carlo",
}


def advantage_given(model: ARModel, cfg: ARConfig) -> bool:
    """False when A is identically 0: reward mode with every token reward 0 (``--mu``/``--pi``
    without ``--reward``) and baseline 0. Then only the advantage-free statistics (E[phi],
    E[phi^2], ESS, k-hat, B1, B2) are reported."""
    if cfg.adv_mode == "constant":
        return True
    return bool(np.any(model.reward != 0)) or cfg.baseline != 0


def _multinomial_ok(model: ARModel) -> str | None:
    """None if the tokens are i.i.d. with a fixed length (the multinomial method applies)."""
    if model.S != 1:
        return f"policy {model.kind!r} is not context-free (tokens are not i.i.d.)"
    if model.end_token is not None:
        return "the length is random (end token)"
    return None


def _lattice_ok(model: ARModel, cfg: ARConfig) -> str | None:
    """None if the lattice method applies, else the reason it does not."""
    why = _multinomial_ok(model)
    if why is not None:
        return why
    if cfg.adv_mode != "constant" and advantage_given(model, cfg):
        return "the advantage depends on the tokens (use adv_mode='constant' / --adv-constant)"
    return None


def _model_lattice(model: ARModel, grid_points: int):
    return token_lattice(
        model.log_behaviour[0], model.log_pi[0], delta=model.lattice_step, grid=grid_points
    )


def choose_method(
    model: ARModel,
    cfg: ARConfig,
    max_sequences: int = DEFAULT_MAX_SEQUENCES,
    rules=None,
    *,
    exact: bool = False,
    explicit: bool = False,
    max_count_vectors: int = DEFAULT_MAX_COUNT_VECTORS,
    grid_points: int = DEFAULT_GRID_POINTS,
) -> tuple[str, dict[str, str]]:
    """The method of ``auto`` (``exact``: of ``--exact``) and the rules it skips (name -> why).

    In order: the multinomial count-vector sum (context-free, fixed length, C(T+V-1, V-1) <=
    ``max_count_vectors``) when it covers every rule; else enumeration (V^T <=
    ``max_sequences``: every rule); else the multinomial sum skipping the rules it cannot do
    (per-decision IS) unless those were asked for by name (``explicit``); else the lattice
    (seq-only rules; with ``exact`` only when the token log-ratios lie on a lattice within
    1e-9 of its step, so that it is exact up to the FFT's stated round-off); else Monte Carlo,
    or with ``exact`` a ValueError naming what to change.
    """
    rules = resolve_rules(rules)
    V, T = model.V, model.T
    why: dict[str, str] = {}
    mn_why = _multinomial_ok(model)
    if mn_why is None and not fits_multinomial(V, T, max_count_vectors):
        mn_why = (
            f"C(T+V-1, V-1) = {count_vectors_text(V, T)} count vectors > --max-count-vectors "
            f"= {format_count(max_count_vectors)}"
        )
    bad_mn: dict[str, str] = {}
    if mn_why is None:
        l = model.log_pi[0] - model.log_behaviour[0]
        bad_mn = count_function_rules(rules, l, T, n_count_vectors(V, T))
        if not bad_mn:
            return "multinomial", {}
    enum_fits = fits_enumeration(V, T, max_sequences)
    if enum_fits:
        return "enumeration", {}
    why["enumeration"] = (
        f"V^T = {V}^{T} = {n_sequences_text(V, T)} sequences > --max-sequences = "
        f"{format_count(max_sequences)}"
    )
    if mn_why is None:
        if not explicit and len(bad_mn) < len(rules):
            return "multinomial", bad_mn
        mn_why = "; ".join(f"rule {n}: {w}" for n, w in bad_mn.items())
    why["multinomial"] = mn_why
    la_why = _lattice_ok(model, cfg)
    if la_why is None:
        token = {
            r.name: "token-level rule (the lattice covers seq_only rules)"
            for r in rules
            if not r.seq_only
        }
        if exact and not _model_lattice(model, grid_points).exact:
            la_why = (
                "the token log-ratios are not on a lattice (every l_v within 1e-9 of "
                "c0 + step Z is needed for an exact FFT law)"
            )
        elif len(token) == len(rules) or (explicit and token):
            la_why = "rule(s) " + ", ".join(token) + " are token-level"
        else:
            return "lattice", token
    why["lattice"] = la_why
    if exact:
        change = ["lower --T or --V", "raise --max-sequences"]
        if "count vectors >" in why["multinomial"]:
            change.insert(1, "raise --max-count-vectors")
        if "not on a lattice" in la_why:
            change.append("use --method lattice (an approximation with error bounds)")
        change.append("use --method mc")
        raise ValueError(
            "no exact method applies: "
            + "; ".join(f"{k}: {v}" for k, v in why.items())
            + ". Change: "
            + ", or ".join(change)
        )
    return "mc", {}


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
    max_count_vectors: int = DEFAULT_MAX_COUNT_VECTORS,
    grid_points: int = DEFAULT_GRID_POINTS,
    progress=None,
) -> dict:
    """Every statistic of ``simulations.estimators`` for each rule in one AR setting.

    ``rules``: Rule objects (names are resolved here once; None = every rule). ``progress``
    (optional) is called with a short text after each stage and each rule. The result's
    ``method`` and every record's ``method`` are the label of the method used (enumeration,
    multinomial, lattice, monte-carlo); ``exact`` says whether the numbers are exact (up to
    float64 rounding, or the FFT's stated round-off on an exact lattice); ``skipped_rules``
    (with ``skipped_why``) lists the rules the method could not do.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    explicit_rules = rules is not None
    rules = resolve_rules(rules)
    say = progress if progress is not None else (lambda _text: None)
    model = make_ar_model(cfg)
    say("model")
    skipped: dict[str, str] = {}
    if method in ("auto", "exact"):
        method, skipped = choose_method(
            model,
            cfg,
            max_sequences,
            rules,
            exact=method == "exact",
            explicit=explicit_rules,
            max_count_vectors=max_count_vectors,
            grid_points=grid_points,
        )
    has_adv = advantage_given(model, cfg)
    out = {
        "config": cfg.to_dict(),
        "method": LABELS[method],
        "exact": method in ("enumeration", "multinomial"),
        "skipped_rules": [],
        "advantage": cfg.adv_mode if has_adv else "none",
    }
    if not has_adv:
        out["note"] = (
            "no advantage given (A = 0: no --adv-constant, no nonzero --reward or --baseline): "
            "bias_norm, cosine, var_trace and check B3 need one"
        )
    if method == "multinomial":
        why = _multinomial_ok(model)
        if why is not None:
            raise ValueError(f"the multinomial method does not apply: {why}")
        if not explicit_rules and not skipped:
            l = model.log_pi[0] - model.log_behaviour[0]
            if fits_multinomial(model.V, model.T, max_count_vectors):
                n_vec = n_count_vectors(model.V, model.T)
                skipped = count_function_rules(rules, l, model.T, n_vec)
        run_rules = [r for r in rules if r.name not in skipped]
        kw = {}
        if cfg.adv_mode == "constant":
            kw["adv_constant"] = cfg.adv_value
        elif has_adv:
            kw.update(reward=model.reward, baseline=cfg.baseline)
        recs, summary, true_grad = multinomial_results(
            model.log_behaviour[0],
            model.log_pi[0],
            cfg.T,
            run_rules,
            max_count_vectors=max_count_vectors,
            seed=cfg.seed,
            progress=say,
            **kw,
        )
        out.update(rules=recs, summary=summary, true_grad_method="closed form")
        out["true_grad_norm"] = None if true_grad is None else float(np.linalg.norm(true_grad))
    elif method == "lattice":
        why = _lattice_ok(model, cfg)
        if why is not None:
            raise ValueError(f"the lattice method does not apply: {why}")
        seq_rules = [r for r in rules if r.seq_only]
        if explicit_rules and len(seq_rules) < len(rules):
            bad = [r.name for r in rules if not r.seq_only]
            raise ValueError(
                f"rule(s) {', '.join(bad)} are token-level; the lattice method covers only "
                f"seq_only rules ({seq_only_names()}): use --method multinomial or --method mc"
            )
        skipped = {r.name: "token-level rule" for r in rules if not r.seq_only}
        recs, summary = lattice_results(
            model.log_behaviour[0],
            model.log_pi[0],
            cfg.T,
            seq_rules,
            adv=cfg.adv_value if cfg.adv_mode == "constant" else 1.0,
            delta=model.lattice_step,
            grid_points=grid_points,
            seed=cfg.seed,
            progress=say,
        )
        for rec in recs:
            rec.pop("mean")
        out["exact"] = bool(summary["lattice_exact"])
        out.update(rules=recs, summary=summary, true_grad_norm=0.0 if has_adv else None)
        out["true_grad_method"] = "closed form: grad E_pi[A] = 0 for constant A"
    else:
        _sequence_methods(out, model, cfg, rules, method, n_mc, max_sequences, say)
    for rec in out["rules"]:
        rec["method"] = out["method"]
        rec["exact"] = out["exact"]
        if not has_adv:
            _drop_advantage_stats(rec)
    if not has_adv:
        out["summary"]["E_g2"] = None
    out["skipped_rules"] = list(skipped)
    out["skipped_why"] = skipped
    if _multinomial_ok(model) is None:  # claim M2's closed form, next to the computed E[W^2]
        lb, lp = model.log_behaviour[0], model.log_pi[0]
        out["summary"]["log_E_W2_closed_form"] = float(cfg.T * logsumexp(2 * lp - lb))
    return out


def _drop_advantage_stats(rec: dict) -> None:
    """A = 0: the gradient statistics are 0 by construction, not information: None, and the
    bound check B3 (which needs E[A^2 ||g||^2]) is dropped."""
    for key in ADV_KEYS:
        rec[key] = None
    for sub in ("abs_err", "se"):
        if isinstance(rec.get(sub), dict):
            for key in (*ADV_KEYS, "mean"):
                rec[sub].pop(key, None)
    if isinstance(rec.get("bounds"), dict):
        rec["bounds"].pop("B3", None)
        rec["bound_holds"] = all(c["holds"] for c in rec["bounds"].values())


def _sequence_methods(out, model, cfg, rules, method, n_mc, max_sequences, say) -> None:
    """Enumeration of the V^T sequences, or a Monte Carlo sample."""
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


def _on_policy_mean(model: ARModel, batch, adv) -> np.ndarray:
    from simulations.estimators import score_moments

    return score_moments(model, batch, batch.mask.astype(np.float64), adv)["mean"]
