r"""veRL plug-in: every registered rule in veRL's policy-loss registry (docs/integrations.md).

Optional extra ``[verl]``. veRL selects the actor's policy loss by name,
``actor_rollout_ref.actor.policy_loss.loss_mode``, from ``POLICY_LOSS_REGISTRY``, filled by the
decorator ``register_policy_loss(name)`` (volcengine/verl ``verl/trainer/ppo/core_algos.py``,
read at commit b178a3c of 2026-01-29). The actor calls (``verl/workers/actor/dp_actor.py``)

    loss, metrics = fn(old_log_prob=..., log_prob=..., advantages=..., response_mask=...,
                       loss_agg_mode=..., config=<actor config>, rollout_is_weights=...)

with [B, T] tensors, and expects a scalar loss and a dict of floats. :func:`register_rules`
registers one such function per rule of :mod:`vespo_theory.rules` under ``prefix + name``
(default ``vt_vespo``, ``vt_seq_tis``, ...; the prefix keeps veRL's own ``vanilla``, ``gspo``,
``sapo``, ``cispo``, ``geo_mean`` untouched). Nothing is imported from verl until
:func:`register_rules` is called without a ``register`` argument.

What each registered loss computes (:func:`make_policy_loss`):

* the coefficient ``c[b, t]`` of the rule (:meth:`vespo_theory.rules.Rule.coefficient_and_clipped`)
  of the detached log-ratio ``log_prob - old_log_prob``, with the sequence advantage ``A_b`` (the
  advantage at each row's first valid token: outcome advantages, GRPO/RLOO style, constant along
  a response; per-token GAE advantages are not supported);
* the per-token loss ``-c A_b (log_prob - old_log_prob)`` (gradient ``-c A_b`` on ``log_prob``,
  the contract of docs/losses.md), aggregated by veRL's own ``agg_loss`` with the actor's
  ``global_batch_info`` (so data-parallel and global-batch normalisation are veRL's, exactly);
  without verl (tests) a local copy of its definition with ``dp_size = 1`` is used, the same as
  :mod:`vespo_theory.losses` (the table in docs/losses.md);
* ``rollout_is_weights`` (veRL's rollout-correction weights pi_old / pi_rollout, computed by its
  trainer when ``algorithm.rollout_corr`` is on): multiplied into the per-token loss, as veRL's
  own losses do (decoupled), or with ``fold_rollout_is=True`` folded into the ratio the rule
  sees, ``log r_t + log max(w_t, 1e-8)``, as the reference VESPO code does (one kernel of the
  total weight; a zero weight at a valid token then rejects a sequence-level rule's row);
* the parameters: the rule's defaults, then veRL's own actor fields for the rules veRL also has
  (``clip_ratio``/``clip_ratio_low``/``clip_ratio_high`` for ppo_clip, dual_clip, cispo, gspo,
  gmpo; ``clip_ratio_c`` for dual_clip; ``tau_pos``/``tau_neg`` for sapo), then
  ``config.policy_loss.vespo_theory.<rule>`` (a mapping of the rule's params fields, e.g.
  ``+actor_rollout_ref.actor.policy_loss.vespo_theory.vespo.k_pos=2.5`` with a DictConfig actor
  config), then the ``params`` given to :func:`register_rules` (a dict rule -> params instance
  or field dict), the last one winning. Bad values raise ValueError naming the field (the params
  dataclasses validate them).

Tested against verl 0.9.1 from PyPI (tests/test_integrations_verl.py): gradients equal to
veRL's ``vanilla`` (= ``vt_dual_clip``), ``cispo``, ``gspo``, ``sapo`` (with and without
rollout weights) and ``geo_mean`` (= ``vt_gmpo``; without rollout weights: veRL's geo_mean scales a
row by the geometric mean of its weights, the plug-in multiplies per token like veRL's other
losses). veRL 0.9.1's ``agg_loss`` divides ``seq-mean-token-sum-norm`` by B' T_max, as
:mod:`vespo_theory.losses` does (veRL before 0.9 divided by T_max only); the plug-in always
calls the installed ``agg_loss``, so it agrees with the veRL it runs in.

Aggregation caveat (docs/losses.md): GSPO, GMPO and SAPO carry their 1/T in the coefficient, so
``vt_gspo`` reproduces veRL's ``gspo`` (which always aggregates with ``seq-mean-token-mean``)
under ``loss_agg_mode=seq-mean-token-sum``; under other modes its step is 1/T smaller.

Metrics (floats): ``actor/pg_clipfrac`` (valid tokens the rule clipped), ``actor/ppo_kl``
(masked mean of old - new log-prob), and under ``vespo_theory/``: ``ess_frac`` (Kish ESS/n of
the raw sequence weights, log space), ``log_w_mean``/``log_w_max``, ``phi_mean_pos``/
``phi_mean_neg`` (per-row mean coefficient by advantage sign). Each costs one host
synchronisation (``.item()``), as veRL's own metrics do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from vespo_theory.rules import available, get_rule

__all__ = [
    "DEFAULT_PREFIX",
    "append_sequence_log",
    "make_policy_loss",
    "params_from_config",
    "register_rules",
]

#: Prefix of the registered names (veRL's loss_mode), e.g. ``vt_vespo``.
DEFAULT_PREFIX = "vt_"

# veRL actor-config fields -> this rule's params fields, for the rules veRL has as well.
_CLIP = {"eps_low": ("clip_ratio_low", "clip_ratio"), "eps_high": ("clip_ratio_high", "clip_ratio")}
_NATIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "ppo_clip": _CLIP,
    "dual_clip": {**_CLIP, "c": ("clip_ratio_c",)},
    "cispo": _CLIP,
    "gspo": _CLIP,
    "gmpo": _CLIP,
    "sapo": {"tau_pos": ("tau_pos",), "tau_neg": ("tau_neg",)},
}


def _get(cfg: Any, key: str) -> Any:
    """``cfg.key`` / ``cfg[key]`` / ``cfg.get(key)`` for dataclass, DictConfig or dict; None."""
    if cfg is None:
        return None
    if isinstance(cfg, Mapping):
        return cfg.get(key)
    getter = getattr(cfg, "get", None)
    if callable(getter):
        try:
            return getter(key, None)
        except Exception:  # a config whose get() refuses unknown keys
            pass
    return getattr(cfg, key, None)


def params_from_config(rule_name: str, config: Any = None, override: Any = None):
    """The rule's params from its defaults, veRL's actor ``config`` and ``override`` (see the
    module docstring for the order). ``override`` is a params instance or a dict of fields."""
    rule = get_rule(rule_name)
    base = rule.params
    fields = {f.name for f in dataclasses.fields(base)}
    values: dict[str, Any] = {}
    for field, keys in _NATIVE.get(rule_name, {}).items():
        for key in keys:
            v = _get(config, key)
            if v is not None:
                values[field] = float(v)
                break
    extra = _get(_get(_get(config, "policy_loss"), "vespo_theory"), rule_name)
    for source in (extra, override):
        if source is None:
            continue
        if dataclasses.is_dataclass(source) and not isinstance(source, type):
            rule.resolve_params(source)  # TypeError for another rule's class
            values.update(dataclasses.asdict(source))
            continue
        items = dict(source.items()) if hasattr(source, "items") else None
        if items is None:
            raise TypeError(f"params for {rule_name}: expected a mapping or params, got {source!r}")
        unknown = set(items) - fields
        if unknown:
            raise ValueError(
                f"params for rule {rule_name}: unknown field {sorted(unknown)[0]!r}; "
                f"fields: {', '.join(sorted(fields))}"
            )
        values.update({k: float(v) for k, v in items.items()})
    return dataclasses.replace(base, **values) if values else base


def _agg_loss_local(loss_mat, mask, loss_agg_mode: str):
    """veRL's ``agg_loss`` definition with dp_size = 1 and no global batch info (docs/losses.md)."""
    m = mask.to(loss_mat.dtype)
    if loss_agg_mode == "token-mean":
        return (loss_mat * m).sum() / m.sum().clamp(min=1.0)
    row = (loss_mat * m).sum(-1)
    T = m.sum(-1)
    nonempty = (T > 0).to(loss_mat.dtype)
    if loss_agg_mode == "seq-mean-token-sum":
        return (row * nonempty).sum() / nonempty.sum().clamp(min=1.0)
    if loss_agg_mode == "seq-mean-token-mean":
        return (row / T.clamp(min=1.0) * nonempty).sum() / nonempty.sum().clamp(min=1.0)
    if loss_agg_mode == "seq-mean-token-sum-norm":
        return (row * nonempty).sum() / nonempty.sum().clamp(min=1.0) / mask.shape[-1]
    raise ValueError(f"loss_agg_mode: invalid {loss_agg_mode!r}")


def _agg(loss_mat, mask, loss_agg_mode: str, config: Any):
    try:
        from verl.trainer.ppo.core_algos import agg_loss
    except ImportError:
        return _agg_loss_local(loss_mat, mask, loss_agg_mode)
    info = _get(config, "global_batch_info") or {}
    return agg_loss(loss_mat=loss_mat, loss_mask=mask, loss_agg_mode=loss_agg_mode, **dict(info))


def make_policy_loss(rule_name: str, params: Any = None, fold_rollout_is: bool = False) -> Callable:
    """veRL's policy-loss function for one rule (module docstring): same signature as veRL's
    ``compute_policy_loss_vanilla``; returns ``(loss, metrics)``."""
    rule = get_rule(rule_name)

    def policy_loss(
        old_log_prob,
        log_prob,
        advantages,
        response_mask,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights=None,
    ):
        import torch

        from vespo_theory.diagnostics import log_kish_ess

        p = params_from_config(rule_name, config, params)
        mask = response_mask.bool()
        diff = log_prob - old_log_prob
        tok = diff.detach().double()
        if rollout_is_weights is not None and fold_rollout_is:
            tok = tok + torch.log(rollout_is_weights.detach().double().clamp(min=1e-8))
        tok = torch.where(mask, tok, torch.zeros_like(tok))
        if advantages.dim() == 2:
            first = torch.argmax(mask.to(torch.int8), dim=-1, keepdim=True)
            adv = torch.gather(advantages, -1, first).squeeze(-1)
        else:
            adv = advantages
        c, clipped = rule.coefficient_and_clipped(tok, mask, adv.detach().double(), p)
        coef = (c * adv.detach().double()[:, None]).to(log_prob.dtype)
        pg_losses = -coef * diff
        if rollout_is_weights is not None and not fold_rollout_is:
            pg_losses = pg_losses * rollout_is_weights
        loss = _agg(pg_losses, response_mask, loss_agg_mode, config)
        with torch.no_grad():
            n_tok = mask.sum().clamp(min=1)
            valid_rows = mask.any(-1)
            seq_lw = tok.sum(-1)[valid_rows]
            T = mask.sum(-1).clamp(min=1)
            c_row = (c.sum(-1) / T)[valid_rows]
            pos = (adv >= 0)[valid_rows]
            nrows = max(int(valid_rows.sum()), 1)

            def mean_where(x, sel):
                return float(x[sel].mean()) if bool(sel.any()) else math.nan

            metrics = {
                "actor/pg_clipfrac": 0.0 if clipped is None else float(clipped.sum() / n_tok),
                "actor/ppo_kl": float(-(diff.detach() * mask).sum() / n_tok),
                "vespo_theory/ess_frac": (
                    float(log_kish_ess(seq_lw).exp()) / nrows if seq_lw.numel() else math.nan
                ),
                "vespo_theory/log_w_mean": float(seq_lw.mean()) if seq_lw.numel() else math.nan,
                "vespo_theory/log_w_max": float(seq_lw.max()) if seq_lw.numel() else math.nan,
                "vespo_theory/phi_mean_pos": mean_where(c_row, pos),
                "vespo_theory/phi_mean_neg": mean_where(c_row, ~pos),
            }
        return loss, metrics

    policy_loss.__name__ = f"compute_policy_loss_vt_{rule_name}"
    policy_loss.__doc__ = (
        f"veRL policy loss of the registered rule {rule_name!r} (vespo_theory.integrations.verl)."
    )
    return policy_loss


def register_rules(
    register: Callable | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
    rules: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
    fold_rollout_is: bool = False,
) -> dict[str, Callable]:
    """Register every rule (or ``rules``) as ``prefix + name`` and return name -> function.

    ``register`` is veRL's ``register_policy_loss`` (the default: imported from
    ``verl.trainer.ppo.core_algos`` now, ImportError naming the ``[verl]`` extra otherwise) or
    any decorator factory of the same shape (``register(name)(fn)``). ``params``: rule name ->
    params instance or dict of fields (checked now: ValueError naming the field).
    """
    if register is None:
        try:
            from verl.trainer.ppo.core_algos import register_policy_loss as register
        except ImportError as exc:
            raise ImportError(
                f'register_rules needs verl: pip install "vespo-theory[verl]" ({exc})'
            ) from exc
    names = list(available() if rules is None else rules)
    params = dict(params or {})
    for name in list(params):
        if name not in names:
            raise ValueError(f"params: rule {name!r} is not among the rules registered")
        params_from_config(name, None, params[name])  # validate now, not at the first step
    out = {}
    for name in names:
        fn = make_policy_loss(name, params.get(name), fold_rollout_is)
        out[prefix + name] = register(prefix + name)(fn)
    return out


def append_sequence_log(path, log_prob, ref_log_prob, response_mask, advantages, step: int) -> int:
    """Append one JSONL row per sequence, the per-sequence format of ``vespo diagnose``:
    ``log_w = sum_t (log_prob - ref_log_prob)`` over the response mask (float64), ``length``,
    ``advantage`` (first valid token's) and ``step``. Works for any framework's [B, T] tensors
    (veRL: ``batch.batch["old_log_probs"]`` and ``["rollout_log_probs"]`` for the engine
    mismatch). Returns the number of rows written.
    """
    import json

    import torch

    mask = response_mask.bool()
    diff = torch.where(mask, log_prob.double() - ref_log_prob.double(), 0.0)
    lw = diff.sum(-1).cpu().tolist()
    T = mask.sum(-1).cpu().tolist()
    if advantages.dim() == 2:
        first = torch.argmax(mask.to(torch.int8), dim=-1, keepdim=True)
        advantages = torch.gather(advantages, -1, first).squeeze(-1)
    adv = advantages.double().cpu().tolist()
    n = 0
    with open(path, "a") as fh:
        for a, b, c in zip(lw, T, adv):
            if b > 0:
                fh.write(json.dumps({"log_w": a, "length": int(b), "advantage": c,
                                     "step": int(step)}) + "\n")  # fmt: skip
                n += 1
    return n
