r"""TRL plug-in: any registered rule as a ``GRPOTrainer`` loss; weight diagnostics as a callback.

Optional extra ``[trl]`` (docs/integrations.md). Nothing here imports trl, transformers or torch
at module import: :class:`RuleGRPOTrainer` and :class:`WeightDiagnosticsCallback` are built on
first access (PEP 562 module ``__getattr__``), so ``import vespo_theory.integrations.trl`` works
without them and only the names that need TRL raise ``ImportError`` (with the extra to install).

``RuleGRPOTrainer(..., rule="vespo", rule_params=None, loss_agg_mode="token-mean",
correction="entangled")`` is a subclass of ``trl.GRPOTrainer`` that overrides
``_compute_loss(model, inputs)`` (TRL 1.16, ``trl/trainer/grpo_trainer.py``: the method that
``compute_loss`` calls; its inputs are the dict built by ``_generate_and_score_completions``:
``prompt_ids``, ``prompt_mask``, ``completion_ids``, ``completion_mask``, ``advantages`` [B],
``old_per_token_logps`` when the policy moved since sampling, ``sampling_per_token_logps``
with vLLM). The per-token log-probs come from TRL's own ``_get_per_token_logps_and_entropies``;
the loss is :func:`vespo_theory.losses.get_loss` of the rule with:

* ``old_log_prob`` = ``old_per_token_logps`` (or the detached current log-probs when TRL skipped
  them: ``num_iterations == 1`` and ``steps_per_generation <= gradient_accumulation_steps``,
  where pi_old = pi_theta and every W = 1);
* ``rollout_log_prob`` = ``sampling_per_token_logps`` when vLLM gave them (NaN entries, tokens
  vLLM could not score, are replaced by ``old_log_prob``: ratio 1), with ``correction``
  ``entangled`` (one kernel of the total ratio, as the reference VESPO code) or ``decoupled``
  (staleness kernel times the truncated pi_old / pi_sampler weight, docs/losses.md);
* ``response_mask`` = ``completion_mask`` (times ``tool_mask`` when present), the advantages
  [B] as given, ``loss_agg_mode`` as named (veRL's modes, docs/losses.md);
* the loss is divided by ``current_gradient_accumulation_steps`` in training, as TRL does for its
  own ``grpo``/``bnpo`` losses (TRL turns off the Trainer's own accumulation scaling).

Not supported (ValueError at construction): ``beta != 0`` (the KL penalty to a reference
model), ``top_entropy_quantile < 1``, ``off_policy_mask_threshold``, and TRL's own ``loss_type``
(the rule replaces it). The loss's metrics (docs/losses.md) are logged under
``rule/<name>/...``.

``WeightDiagnosticsCallback(prefix="weights")`` collects, from every loss call of a
``RuleGRPOTrainer`` (the trainer calls its ``record``), the raw sequence log-weights
``log W = sum_t (log pi_theta - log mu)`` of the ratio the rule sees, the advantages and the
lengths, and at each logging step adds to the logs (and the step's ``state.log_history``
entry) the statistics of :func:`weight_stats` over the sequences since the last log: Kish
ESS/n of the raw weights (log space), the PSIS k-hat and its threshold min(1 - 1/log10 S, 0.7)
(Vehtari et al., arXiv 1507.02646), log W quantiles, and VESPO's E[phi] and E[phi^2] per
advantage sign with the bound quantities of B2 (E[phi^2] <= M E[phi]) and P4 (phi(W) <= K W)
of arXiv 2602.10693. No framework logs these: TRL logs ``sampling/importance_sampling_ratio/*``
(min/mean/max of the token or sequence vLLM ratio) and veRL ``rollout_corr/*``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vespo_theory.diagnostics import (
    khat_threshold,
    kish_ess_from_log_weights,
    log_weight_summary,
    psis_khat,
)

__all__ = ["RuleGRPOTrainer", "WeightDiagnosticsCallback", "weight_stats"]  # noqa: F822 (lazy)

_INSTALL = 'pip install "vespo-theory[trl]" (trl and transformers)'


def weight_stats(seq_log_w: Any, advantages: Any, params=None) -> dict[str, float]:
    """Diagnostics of raw sequence log-weights (NumPy float64; no torch needed).

    Keys: ``n``, ``ess_frac`` (Kish ESS/n, log space), ``khat`` (NaN below 20 sequences),
    ``khat_threshold`` (min(1 - 1/log10 n, 0.7); NaN below 2), ``log_w_mean``, ``log_w_std``,
    ``log_w_min``, ``log_w_q05``, ``log_w_q25``, ``log_w_q50``, ``log_w_q75``, ``log_w_q95``,
    ``log_w_max``; per sign s in (pos, neg) with VESPO's (k, lam) for that sign (``params``, a
    :class:`~vespo_theory.params.VespoParams`, default the paper's): ``phi_mean_s``,
    ``phi2_mean_s``, ``b2_ratio_s`` = E[phi^2] / (M E[phi]) (<= 1 by claim B2) and
    ``p4_ratio_s`` = max phi(W)/W / K (<= 1 by claim P4; NaN when K is infinite), NaN for a
    sign without sequences.
    """
    from vespo_theory.bounds import kernel_bound
    from vespo_theory.kernels import log_phi
    from vespo_theory.params import VespoParams

    lw = np.asarray(seq_log_w, dtype=np.float64).reshape(-1)
    adv = np.asarray(advantages, dtype=np.float64).reshape(-1)
    if lw.shape != adv.shape:
        raise ValueError(f"advantages: expected {lw.size} entries, got {adv.size}")
    n = lw.size
    nan = math.nan
    out: dict[str, float] = {"n": float(n)}
    if n == 0:
        return out
    try:
        khat = psis_khat(lw) if n >= 20 else nan
    except ValueError:
        khat = nan
    out.update(
        ess_frac=kish_ess_from_log_weights(lw) / n,
        khat=float(khat),
        khat_threshold=khat_threshold(n) if n >= 2 else nan,
        # a non-finite log-weight (a zero probability) leaves the location keys NaN, as before
        **(
            log_weight_summary(lw)
            if np.all(np.isfinite(lw))
            else dict.fromkeys(log_weight_summary([0.0]), nan)
        ),
    )
    vp = params or VespoParams()
    for sign, sel, (k, lam) in (
        ("pos", adv >= 0, (vp.k_pos, vp.lam_pos)),
        ("neg", adv < 0, (vp.k_neg, vp.lam_neg)),
    ):
        if not sel.any():
            out.update({f"{m}_{sign}": nan for m in ("phi_mean", "phi2_mean", "b2_ratio",
                                                      "p4_ratio")})  # fmt: skip
            continue
        lphi = np.asarray(log_phi(lw[sel], k, lam), dtype=np.float64)
        phi = np.exp(lphi)
        b = kernel_bound(k, lam)
        m1, m2 = float(phi.mean()), float((phi**2).mean())
        out[f"phi_mean_{sign}"] = m1
        out[f"phi2_mean_{sign}"] = m2
        out[f"b2_ratio_{sign}"] = m2 / (b.M * m1) if m1 > 0 else nan
        # log(phi/W) - log K in log space: no overflow for any log W
        out[f"p4_ratio_{sign}"] = (
            math.exp(float((lphi - lw[sel]).max()) - b.log_K) if b.K_finite else nan
        )
    return out


def _require():
    try:
        import transformers
        import trl
    except ImportError as exc:
        raise ImportError(f"vespo_theory.integrations.trl needs trl: {_INSTALL} ({exc})") from exc
    return trl, transformers


def _make_callback_class():
    _, transformers = _require()

    class WeightDiagnosticsCallback(transformers.TrainerCallback):
        """Adds :func:`weight_stats` of the raw sequence weights to each log (module docstring).

        ``prefix`` names the keys (``weights/ess_frac``, ...); ``params`` are VESPO's (k, lam)
        for the E[phi] columns (default the paper's). ``record(seq_log_w, advantages,
        lengths)`` is called by :class:`RuleGRPOTrainer` on every loss call; the buffer is
        summarised and emptied at each ``on_log``. ``history`` keeps every summary (a list of
        dicts with ``step``), for tests and for writing a ``vespo diagnose`` log
        (:meth:`write_log`).
        """

        def __init__(self, prefix: str = "weights", params=None, keep_sequences: bool = True):
            self.prefix = prefix
            self.params = params
            self.keep_sequences = keep_sequences
            self._buf: list[tuple] = []
            self.history: list[dict] = []
            self.sequences: list[tuple] = []  # (step, log_w, length, advantage) per sequence

        def record(self, seq_log_w, advantages, lengths, step: int | None = None) -> None:
            lw = np.asarray(seq_log_w, dtype=np.float64).reshape(-1)
            adv = np.asarray(advantages, dtype=np.float64).reshape(-1)
            ln = np.asarray(lengths).reshape(-1)
            self._buf.append((lw, adv, ln))
            if self.keep_sequences:
                self.sequences += [(step, *r) for r in zip(lw.tolist(), ln.tolist(),
                                                            adv.tolist())]  # fmt: skip

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not self._buf or logs is None:
                return
            if any(k.startswith("eval_") for k in logs):
                return  # evaluation logs: the buffer holds training batches only
            lw = np.concatenate([b[0] for b in self._buf])
            adv = np.concatenate([b[1] for b in self._buf])
            self._buf.clear()
            stats = {f"{self.prefix}/{k}": v for k, v in weight_stats(lw, adv, self.params).items()}
            logs.update(stats)
            # Trainer.log appends {**logs, "step"} to log_history before the callbacks run
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(stats)
            self.history.append({"step": state.global_step, **stats})

        def write_log(self, path) -> None:
            """The recorded sequences as a ``vespo diagnose`` CSV (log_w, length, advantage,
            step = the optimizer step at which the loss saw them)."""
            import csv

            with open(path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["log_w", "length", "advantage", "step"])
                for step, lw, ln, a in self.sequences:
                    w.writerow([repr(float(lw)), int(ln), repr(float(a)), int(step or 0)])

    return WeightDiagnosticsCallback


def _make_trainer_class():
    trl, _ = _require()
    import torch

    from vespo_theory.losses import AGG_MODES, get_loss
    from vespo_theory.rules import get_rule

    class RuleGRPOTrainer(trl.GRPOTrainer):
        """``trl.GRPOTrainer`` with the policy loss of a registered rule (module docstring)."""

        def __init__(
            self,
            *args,
            rule: str = "vespo",
            rule_params=None,
            loss_agg_mode: str = "token-mean",
            correction: str = "entangled",
            **kwargs,
        ):
            get_rule(rule)  # ValueError listing the valid names
            if loss_agg_mode not in AGG_MODES:
                raise ValueError(
                    f"loss_agg_mode must be one of {', '.join(AGG_MODES)}, got {loss_agg_mode!r}"
                )
            if correction not in ("entangled", "decoupled"):
                raise ValueError(f"correction must be entangled or decoupled, got {correction!r}")
            super().__init__(*args, **kwargs)
            a = self.args
            if getattr(a, "beta", 0.0) != 0.0:
                raise ValueError(
                    f"RuleGRPOTrainer: beta = {a.beta} (KL to a reference model) is not supported; "
                    "set GRPOConfig(beta=0.0)"
                )
            if getattr(a, "top_entropy_quantile", 1.0) < 1.0:
                raise ValueError("RuleGRPOTrainer: top_entropy_quantile < 1 is not supported")
            if getattr(a, "off_policy_mask_threshold", None) is not None:
                raise ValueError("RuleGRPOTrainer: off_policy_mask_threshold is not supported")
            self.rule_name = rule
            self.rule_params = rule_params
            self.rule_loss_agg_mode = loss_agg_mode
            self.rule_correction = correction
            self._rule_loss = get_loss(rule)

        def _compute_loss(self, model, inputs):
            prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
            completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
            input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
            attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
            mask = completion_mask
            if "tool_mask" in inputs:
                mask = mask * inputs["tool_mask"]
            log_prob, _, _ = self._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=False
            )
            old = inputs.get("old_per_token_logps")
            old = log_prob.detach() if old is None else old
            rollout = inputs.get("sampling_per_token_logps")
            if rollout is not None:
                rollout = torch.where(torch.isnan(rollout), old, rollout)
            adv = inputs["advantages"]
            if adv.dim() == 2 and adv.size(1) == 1:
                adv = adv.squeeze(1)
            loss, metrics = self._rule_loss(
                old,
                log_prob,
                adv,
                mask,
                loss_agg_mode=self.rule_loss_agg_mode,
                rollout_log_prob=rollout,
                correction=self.rule_correction,
                params=self.rule_params,
            )
            mode = "train" if self.model.training else "eval"
            with torch.no_grad():
                # the raw sequence log W of the ratio the rule sees (docs/losses.md)
                entangled = rollout is not None and self.rule_correction == "entangled"
                ref = rollout if entangled else old
                m = mask.to(log_prob.dtype)
                seq_log_w = ((log_prob.detach() - ref) * m).sum(-1)
                lengths = mask.sum(-1)
                gathered = [self.accelerator.gather(x) for x in (seq_log_w, adv, lengths)]
            for cb in self.callback_handler.callbacks:
                if hasattr(cb, "record") and mode == "train":
                    cb.record(*(g.double().cpu().numpy() for g in gathered),
                              step=self.state.global_step)  # fmt: skip
            for k, v in metrics.items():
                self._metrics[mode][f"rule/{self.rule_name}/{k}"].append(
                    float(self.accelerator.gather(v.detach().float().reshape(1)).nanmean())
                )
            if mode == "train":
                loss = loss / self.current_gradient_accumulation_steps
            return loss

    return RuleGRPOTrainer


_BUILT: dict[str, Any] = {}
_FACTORIES = {
    "RuleGRPOTrainer": _make_trainer_class,
    "WeightDiagnosticsCallback": _make_callback_class,
}


def __getattr__(name: str):
    """Build the TRL classes on first access (PEP 562): trl is imported only then."""
    if name in _FACTORIES:
        if name not in _BUILT:
            _BUILT[name] = _FACTORIES[name]()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
