r"""The registry of reshaping rules, each defined once by its effective coefficient on grad log pi.

docs/rules.md. A rule maps the token log-ratios ``tok_log_ratio = log pi_theta - log mu`` of a
batch of sequences ([B, T]), the response mask and the sequence advantage ``adv`` ([B]) to the
coefficient ``c[b, t]`` such that one sequence's gradient estimate is

.. math:: \hat g_b = A_b \sum_t c_{b,t} \nabla \log \pi_\theta(y_{b,t}).

This is the seq-mean-token-sum convention: ``c`` already holds the ``1/T`` that GSPO, GMPO,
SAPO and TOPR's per-sequence token mean put on every token. The sign of ``adv`` picks the A >= 0
or A < 0 branch; its size never enters ``c``. Every rule is written once for NumPy and torch
(array type, dtype and device in = out; half precision is computed in float32 and cast back).

Layers: the parameters are in :mod:`vespo_theory.rule_params`, the coefficient functions (one
named function per rule, with its formula and source) in :mod:`vespo_theory.coefficients`, the
surrogate statements in :mod:`vespo_theory.surrogate_forms`, the array ops in
:mod:`vespo_theory.array_ops`; this module only validates, masks and
registers. Batch-level rules (``batch_level``: BAPO, VCPO) compute a statistic of the whole
batch they are given (every row with a valid token): their coefficient of a row depends on the
other rows, so call them on the batch the update uses. Adding a rule is one ``_add`` entry at
the end of this module (plus its body, its params class if it has parameters, and its surrogate
statement if it has one).

Masking: the sequence log-weight is ``log W = sum_t where(mask, tok_log_ratio, 0)`` and the length
``T = sum_t mask``; a masked position contributes exactly 0 whatever it holds (NaN, +-inf), and its
coefficient is exactly 0. The mask must be bool or hold only 0 and 1 (ValueError otherwise; see
:func:`vespo_theory.array_ops.check_binary_mask` for when a tensor is checked).

Saturation: a coefficient that would exceed ``sqrt(finfo.max)`` of the compute dtype (unbounded
rules: IS, per-decision IS, the A < 0 side of PPO clip, GSPO, ...) is saturated there (its log is
clamped at ``log(finfo.max) / 2``), so that ``coefficient * adv * grad`` stays finite; the
``clipped`` indicator of :meth:`Rule.coefficient_and_clipped` reports it for IS and per-decision
IS (the other rules report their own clipping only). In float32 that is at W ~ 1.8e19, far beyond
any weight a run could use.

>>> import numpy as np
>>> rule = get_rule("vespo")
>>> c = rule.coefficient(np.log([[2.0, 1.0]]), np.array([[1, 0]]), np.array([1.0]))
>>> np.round(c, 4)  # phi_{2,3}(2) on the valid token, 0 on the masked one
array([[0.1991, 0.    ]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vespo_theory import coefficients as cf
from vespo_theory import surrogate_forms as sf
from vespo_theory.array_ops import (
    as_float_array,
    cast,
    check_binary_mask,
    is_torch,
    ops_for,
    to_compute,
)
from vespo_theory.params import VESPO_SYM_23, VESPO_SYM_32
from vespo_theory.rule_params import (
    BapoParams,
    CispoParams,
    ClipParams,
    DualClipParams,
    GmpoParams,
    GspoParams,
    IsParams,
    PerDecisionIsParams,
    ReinforceParams,
    SapoParams,
    SeqMisParams,
    SeqTisParams,
    TokenMisParams,
    TokenTisParams,
    ToprParams,
    VcpoParams,
    VespoParams,
    params_dict,
)

__all__ = [
    "Rule",
    "available",
    "get_rule",
    "params_dict",
    "IsParams",
    "ReinforceParams",
    "PerDecisionIsParams",
    "ClipParams",
    "DualClipParams",
    "CispoParams",
    "SapoParams",
    "GspoParams",
    "GmpoParams",
    "TokenTisParams",
    "SeqTisParams",
    "TokenMisParams",
    "SeqMisParams",
    "VespoParams",
    "ToprParams",
    "BapoParams",
    "VcpoParams",
]


@dataclass(frozen=True)
class Rule:
    """One reshaping rule: its coefficient on grad log pi, level and default parameters.

    Attributes
    ----------
    name : str
        Registry name.
    level : str
        ``"sequence"`` (the coefficient is a function of the whole sequence) or ``"token"``.
    params : frozen dataclass
        The rule's defaults (VESPO: :class:`~vespo_theory.params.VespoParams`).
    seq_only : bool
        True when the coefficient is shared by every token of a sequence and depends only on
        (log W, sign A, T): then :meth:`seq_coefficient` is available.
    formula : str
        The coefficient as written in docs/rules.md.
    on_policy : str
        The documented coefficient at tok_log_ratio = 0 ("1" or "1/T").
    body : callable
        The coefficient function (:mod:`vespo_theory.coefficients`), sequence signature when
        ``seq_only``, token signature otherwise.
    surrogate_form : callable or None
        The surrogate statement (:mod:`vespo_theory.surrogate_forms`), None for a rule without a
        surrogate of W alone. The registry is the one list of rules with a surrogate.
    batch_level : bool
        True when a row's coefficient depends on the other rows of the batch (BAPO's adaptive
        bounds, VCPO's ESS scale); such a rule has the token signature and is not ``seq_only``.
        Its :meth:`phi` evaluates each point as a batch of its own.
    """

    name: str
    level: str
    params: Any
    seq_only: bool
    formula: str
    on_policy: str
    body: Callable = field(repr=False, compare=False)
    surrogate_form: Callable | None = field(default=None, repr=False, compare=False)
    batch_level: bool = False

    @property
    def has_surrogate(self) -> bool:
        """True when the rule has a surrogate statement (claim ``F-<name>``)."""
        return self.surrogate_form is not None

    # -- validation ----------------------------------------------------------------------
    def resolve_params(self, params=None):
        """``params``, or the rule's defaults for None; TypeError for another rule's class."""
        if params is None:
            return self.params
        if type(params) is not type(self.params):
            raise TypeError(
                f"params for rule {self.name} must be a {type(self.params).__name__}, "
                f"got {type(params).__name__}"
            )
        return params

    def _validate(self, tok_log_ratio, response_mask, adv):
        x = as_float_array(tok_log_ratio, "tok_log_ratio")
        if x.ndim != 2:
            raise ValueError(
                f"tok_log_ratio must be [B, T], got shape {tuple(x.shape)} (rule {self.name})"
            )
        if is_torch(x) != is_torch(response_mask) or is_torch(x) != is_torch(adv):
            raise TypeError(
                f"rule {self.name}: tok_log_ratio, response_mask and adv must all be NumPy "
                "arrays or all torch tensors"
            )
        if tuple(response_mask.shape) != tuple(x.shape):
            raise ValueError(
                f"response_mask has shape {tuple(response_mask.shape)} but tok_log_ratio has "
                f"shape {tuple(x.shape)}; they must match (rule {self.name})"
            )
        if tuple(adv.shape) != (x.shape[0],):
            raise ValueError(
                f"adv must be [B] = ({x.shape[0]},) (one advantage per sequence), got shape "
                f"{tuple(adv.shape)} (rule {self.name})"
            )
        check_binary_mask(response_mask, "response_mask")
        if is_torch(x):
            import torch

            mask = response_mask if response_mask.dtype == torch.bool else response_mask != 0
            return x, mask, adv >= 0
        mask = np.asarray(response_mask)
        mask = mask if mask.dtype == np.bool_ else mask != 0
        adv = as_float_array(adv, "adv")
        if np.isnan(adv).any():
            raise ValueError(f"adv contains NaN (rule {self.name})")
        bad = np.isnan(x) & mask
        if bad.any():
            b, t = np.argwhere(bad)[0]
            raise ValueError(
                f"tok_log_ratio contains NaN at valid position [{b}, {t}] (rule {self.name})"
            )
        return x, mask, adv >= 0

    # -- the coefficient from prepared arrays (no validation: the loss's hot path) ----------
    def coefficient_from_seq(self, seq_log_w, pos, T, params=None):
        """``(c, clipped)`` [B] of a ``seq_only`` rule from prepared [B] arrays, unchecked.

        ``seq_log_w`` in the compute dtype (:func:`~vespo_theory.array_ops.to_compute`), ``pos``
        bool (A >= 0), ``T`` >= 1 of the same dtype. ``clipped`` is None for a rule that never
        clips. No validation and no host synchronisation: for callers that prepared the arrays
        (:mod:`vespo_theory.losses`); the checked entry points are :meth:`seq_coefficient` and
        :meth:`coefficient_and_clipped`.
        """
        if not self.seq_only:
            raise ValueError(f"rule {self.name} is not seq_only; use coefficient_from_tokens")
        return self.body(ops_for(seq_log_w), seq_log_w, pos, T, self.resolve_params(params))

    def coefficient_from_tokens(self, masked_log_ratio, mask, pos, T, params=None):
        """``(c, clipped)`` [B, T] from prepared arrays, unchecked; c is 0 and clipped False at
        masked positions.

        ``masked_log_ratio`` [B, T] in the compute dtype with exactly 0 at masked positions,
        ``mask`` [B, T] bool, ``pos`` [B] bool (A >= 0), ``T`` [B] >= 1 of the compute dtype.
        Works for every rule (a ``seq_only`` rule's coefficient is broadcast along the row).
        No validation and no host synchronisation (see :meth:`coefficient_from_seq`).
        """
        o = ops_for(masked_log_ratio)
        p = self.resolve_params(params)
        if self.seq_only:
            c_seq, clip_seq = self.body(o, o.rowsum(masked_log_ratio), pos, T, p)
            c = o.where(mask, c_seq[..., None], 0.0)
            return c, None if clip_seq is None else (clip_seq[..., None] & mask)
        c, clipped = self.body(o, masked_log_ratio, mask, pos[..., None], T[..., None], p)
        return o.where(mask, c, 0.0), None if clipped is None else (clipped & mask)

    # -- the coefficient -----------------------------------------------------------------
    def coefficient_and_clipped(self, tok_log_ratio, response_mask, adv, params=None):
        """``(c, clipped)``: the coefficient [B, T] and a bool [B, T] that is True where the
        rule clipped, masked or saturated a valid token (None for rules that never clip)."""
        p = self.resolve_params(params)
        x, mask, pos = self._validate(tok_log_ratio, response_mask, adv)
        o = ops_for(x)
        xc = to_compute(x)
        xm = o.where(mask, xc, 0.0)  # masked positions hold exactly 0, whatever they held
        T = o.maximum(o.rowsum(cast(mask, xc.dtype)), 1.0)
        c, clipped = self.coefficient_from_tokens(xm, mask, pos, T, p)
        return cast(c, x.dtype), clipped

    def coefficient(self, tok_log_ratio, response_mask, adv, params=None):
        """The coefficient c[b, t] on grad log pi(y_bt) (see the module docstring).

        Parameters
        ----------
        tok_log_ratio : [B, T] array or tensor, log pi_theta - log mu.
        response_mask : [B, T] bool or 0/1; masked tokens get c = 0 and change nothing else.
        adv : [B] sequence advantages; only their sign is used (A >= 0 / A < 0 branch).
        params : the rule's params dataclass; default ``self.params``.
        """
        return self.coefficient_and_clipped(tok_log_ratio, response_mask, adv, params)[0]

    def seq_coefficient(self, seq_log_w, adv, T, params=None):
        """For ``seq_only`` rules: the per-sequence coefficient from log W, sign(adv), T ([B])."""
        if not self.seq_only:
            raise ValueError(
                f"rule {self.name} is not seq_only: its coefficient depends on individual token "
                "ratios; use coefficient(tok_log_ratio, response_mask, adv)"
            )
        p = self.resolve_params(params)
        lw = as_float_array(seq_log_w, "seq_log_w")
        lwc = to_compute(lw)
        if is_torch(lw):
            import torch

            adv = torch.as_tensor(adv, device=lw.device)
            T = torch.as_tensor(T, device=lw.device, dtype=lwc.dtype)
            if adv.shape != lw.shape:
                adv = torch.broadcast_to(adv, lw.shape)
            T = torch.broadcast_to(T, lw.shape)
            if bool((T < 1).any()):
                raise ValueError(f"T must be >= 1 (rule {self.name})")
        else:
            adv = np.broadcast_to(as_float_array(adv, "adv"), lw.shape)
            T = np.broadcast_to(np.asarray(T, dtype=np.float64), lw.shape)
            if np.isnan(lw).any() or np.isnan(adv).any():
                raise ValueError(f"seq_log_w or adv contains NaN (rule {self.name})")
            if (T < 1).any():
                raise ValueError(f"T must be >= 1 (rule {self.name})")
            T = T.astype(lwc.dtype)
        c, _ = self.coefficient_from_seq(lwc, adv >= 0, T, p)
        return cast(c, lw.dtype)

    def phi(self, log_w, adv, params=None):
        """The coefficient of a one-token sequence (T = 1, W = r) as a function of log W.

        ``log_w`` and ``adv`` are 1-D (or broadcastable scalars); returns the same shape. This is
        the curve phi(W) drawn in the kernel figure. A ``batch_level`` rule is evaluated at each
        point alone (a batch of one sequence: VCPO's ESS/B is then 1, BAPO's bounds those of a
        batch of one sign), not with the points as one batch.
        """
        lw = as_float_array(log_w, "log_w")
        if self.batch_level:
            return self._phi_pointwise(lw, adv, params)
        if is_torch(lw):
            import torch

            lw1 = lw.reshape(-1, 1)
            adv1 = torch.broadcast_to(torch.as_tensor(adv, device=lw.device), lw.shape).reshape(-1)
            mask = torch.ones_like(lw1, dtype=torch.bool)
        else:
            lw1 = np.atleast_1d(lw).reshape(-1, 1)
            adv1 = np.broadcast_to(as_float_array(adv, "adv"), np.shape(lw)).reshape(-1)
            mask = np.ones(lw1.shape, dtype=bool)
        return self.coefficient(lw1, mask, adv1, params).reshape(lw.shape)

    def _phi_pointwise(self, lw, adv, params):
        """phi of a batch-level rule: one [1, 1] batch per point."""
        if is_torch(lw):
            import torch

            flat = lw.reshape(-1, 1, 1)
            adv1 = torch.broadcast_to(torch.as_tensor(adv, device=lw.device), lw.shape)
            adv1 = adv1.reshape(-1, 1)
            one = torch.ones((1, 1), dtype=torch.bool, device=lw.device)
            out = [self.coefficient(flat[i], one, adv1[i], params) for i in range(flat.shape[0])]
            return torch.cat(out).reshape(lw.shape) if out else lw.clone()
        flat = np.atleast_1d(lw).reshape(-1, 1, 1)
        adv1 = np.broadcast_to(as_float_array(adv, "adv"), np.shape(lw)).reshape(-1, 1)
        one = np.ones((1, 1), dtype=bool)
        out = [self.coefficient(flat[i], one, adv1[i], params) for i in range(flat.shape[0])]
        return (np.concatenate(out) if out else flat.astype(lw.dtype)).reshape(np.shape(lw))

    def surrogate(self, log_w, adv, params=None):
        """f(W) at T = 1 with W f'(W) = phi(W) (NumPy float64), or None without a surrogate.

        The statement of f is ``self.surrogate_form`` (:mod:`vespo_theory.surrogate_forms`,
        checked symbolically as claim ``F-<name>`` by :mod:`vespo_theory.derivations.surrogates`);
        f is defined up to an additive constant (stated there).
        """
        if self.surrogate_form is None:
            return None
        p = self.resolve_params(params)
        lw = np.asarray(as_float_array(log_w, "log_w"), dtype=np.float64)
        adv = np.broadcast_to(np.asarray(as_float_array(adv, "adv"), dtype=np.float64), lw.shape)
        return sf.evaluate(self.surrogate_form, np.exp(lw), adv >= 0, p)


# --------------------------------------------------------------------------- the registry

_RULES: dict[str, Rule] = {}


def _add(name, *, level, params, seq_only, body, formula, on_policy, surrogate, batch_level=False):
    """Register one rule (see :class:`Rule` for the fields)."""
    if name in _RULES:
        raise ValueError(f"rule {name!r} is already registered")
    if batch_level and seq_only:
        raise ValueError(f"rule {name!r}: a batch-level rule cannot be seq_only")
    _RULES[name] = Rule(
        name, level, params, seq_only, formula, on_policy, body, surrogate, batch_level
    )


# One entry per rule; the formula is docs/rules.md's, the source is in the body's docstring.
_add("is", level="sequence", params=IsParams(), seq_only=True, body=cf.is_coefficient,
     formula="W", on_policy="1", surrogate=sf.is_surrogate)  # fmt: skip
_add("reinforce", level="sequence", params=ReinforceParams(), seq_only=True,
     body=cf.reinforce_coefficient, formula="1", on_policy="1",
     surrogate=sf.reinforce_surrogate)  # fmt: skip
_add("per_decision_is", level="token", params=PerDecisionIsParams(), seq_only=False,
     body=cf.per_decision_is_coefficient, formula="prod_{s<=t} r_s", on_policy="1",
     surrogate=None)  # fmt: skip
_add("ppo_clip", level="token", params=ClipParams(), seq_only=False,
     body=cf.ppo_clip_coefficient,
     formula="A>=0: r 1[r <= 1+eps_high]; A<0: r 1[r >= 1-eps_low]", on_policy="1",
     surrogate=sf.clip_surrogate)  # fmt: skip
_add("dual_clip", level="token", params=DualClipParams(), seq_only=False,
     body=cf.dual_clip_coefficient,
     formula="A>=0: r 1[r <= 1+eps_high]; A<0: r 1[1-eps_low <= r <= c]", on_policy="1",
     surrogate=sf.clip_surrogate)  # fmt: skip
_add("cispo", level="token", params=CispoParams(), seq_only=False, body=cf.cispo_coefficient,
     formula="clip(r, 1-eps_low, 1+eps_high)", on_policy="1",
     surrogate=sf.cispo_surrogate)  # fmt: skip
_add("sapo", level="token", params=SapoParams(), seq_only=False, body=cf.sapo_coefficient,
     formula="r sech^2(tau (r-1)/2) / T, tau = tau_pos (A>=0) / tau_neg (A<0)",
     on_policy="1/T", surrogate=sf.sapo_surrogate)  # fmt: skip
_add("gspo", level="sequence", params=GspoParams(), seq_only=True, body=cf.gspo_coefficient,
     formula="(s/T) 1[s unclipped on the A side], s = W^(1/T)", on_policy="1/T",
     surrogate=sf.gspo_surrogate)  # fmt: skip
_add("gmpo", level="sequence", params=GmpoParams(), seq_only=False, body=cf.gmpo_coefficient,
     formula="exp(mean_t m_t)/T 1[token t unclipped on the A side], "
     "m_t = min(log r_t, eps_high) (A>=0) / max(log r_t, -eps_low) (A<0)",
     on_policy="1/T", surrogate=None)  # fmt: skip
_add("token_tis", level="token", params=TokenTisParams(), seq_only=False,
     body=cf.token_tis_coefficient, formula="min(r, cap)", on_policy="1",
     surrogate=sf.tis_surrogate)  # fmt: skip
_add("seq_tis", level="sequence", params=SeqTisParams(), seq_only=True,
     body=cf.seq_tis_coefficient, formula="min(W, cap)", on_policy="1",
     surrogate=sf.tis_surrogate)  # fmt: skip
_add("token_mis", level="token", params=TokenMisParams(), seq_only=False,
     body=cf.token_mis_coefficient, formula="r 1[low <= r <= high]", on_policy="1",
     surrogate=sf.token_mis_surrogate)  # fmt: skip
_add("seq_mis", level="sequence", params=SeqMisParams(), seq_only=True,
     body=cf.seq_mis_coefficient, formula="W 1[W <= cap]", on_policy="1",
     surrogate=sf.seq_mis_surrogate)  # fmt: skip
_add("vespo", level="sequence", params=VespoParams(), seq_only=True,
     body=cf.vespo_coefficient,
     formula="W^k exp(lam (1-W)), (k, lam) = (k_pos, lam_pos) (A>=0) / (k_neg, lam_neg) (A<0)",
     on_policy="1", surrogate=sf.vespo_surrogate)  # fmt: skip
# The asymmetry ablation of arXiv 2602.10693: one kernel for both signs (vespo_theory.params).
_add("vespo_sym23", level="sequence", params=VESPO_SYM_23, seq_only=True,
     body=cf.vespo_coefficient, formula="W^2 exp(3 (1-W)) for both signs (VespoParams 2,3,2,3)",
     on_policy="1", surrogate=sf.vespo_surrogate)  # fmt: skip
_add("vespo_sym32", level="sequence", params=VESPO_SYM_32, seq_only=True,
     body=cf.vespo_coefficient, formula="W^3 exp(2 (1-W)) for both signs (VespoParams 3,2,3,2)",
     on_policy="1", surrogate=sf.vespo_surrogate)  # fmt: skip
# The length-normalisation ablation of arXiv 2602.10693 (our reading: the kernel at W').
_add("vespo_sqrt", level="sequence", params=VespoParams(), seq_only=True,
     body=cf.vespo_sqrt_coefficient, formula="phi(W'), W' = exp(log W / sqrt(T))",
     on_policy="1", surrogate=sf.vespo_sqrt_surrogate)  # fmt: skip
_add("vespo_lin", level="sequence", params=VespoParams(), seq_only=True,
     body=cf.vespo_lin_coefficient, formula="phi(W'), W' = exp(log W / T) = s",
     on_policy="1", surrogate=sf.vespo_lin_surrogate)  # fmt: skip
_add("topr", level="sequence", params=ToprParams(), seq_only=True, body=cf.topr_coefficient,
     formula="(1 (A>=0) / min(W, 1) (A<0)) / T", on_policy="1/T",
     surrogate=sf.topr_surrogate)  # fmt: skip
_add("bapo", level="token", params=BapoParams(), seq_only=False, body=cf.bapo_coefficient,
     formula="A>=0: r 1[r <= c_high]; A<0: r 1[c_low <= r <= c], (c_low, c_high) adapted to the "
     "batch's positive share", on_policy="1", surrogate=None,
     batch_level=True)  # fmt: skip
_add("vcpo", level="sequence", params=VcpoParams(), seq_only=False, body=cf.vcpo_coefficient,
     formula="W sqrt(min(1, (ESS/B') / base_ess_ratio)), ESS over the batch's rows",
     on_policy="1", surrogate=None, batch_level=True)  # fmt: skip


def available() -> list[str]:
    """The registered rule names, in registration order."""
    return list(_RULES)


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; ValueError listing the valid names for an unknown one."""
    if name not in _RULES:
        raise ValueError(f"unknown rule {name!r}; valid rules: {', '.join(_RULES)}")
    return _RULES[name]
