r"""The registry of reshaping rules, each defined once by its effective coefficient on grad log pi.

THEORY.md §4. A rule maps the token log-ratios ``tok_log_ratio = log pi_theta - log mu`` of a
batch of sequences ([B, T]), the response mask and the sequence advantage ``adv`` ([B]) to the
coefficient ``c[b, t]`` such that one sequence's gradient estimate is

.. math:: \hat g_b = A_b \sum_t c_{b,t} \nabla \log \pi_\theta(y_{b,t}).

This is the seq-mean-token-sum convention: ``c`` already holds the ``1/T`` that GSPO, GMPO and
SAPO's per-sequence token mean put on every token. The sign of ``adv`` picks the A >= 0 or A < 0
branch; its size never enters ``c``. Every rule is written once for NumPy and torch (array type,
dtype and device in = out; half precision is computed in float32 and cast back).

Masking: the sequence log-weight is ``log W = sum_t where(mask, tok_log_ratio, 0)`` and the length
``T = sum_t mask``; a masked position contributes exactly 0 whatever it holds (NaN, +-inf), and its
coefficient is exactly 0.

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

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from vespo_theory._arrays import as_float_array, check_positive_scalar, is_torch
from vespo_theory.params import VespoParams

__all__ = [
    "Rule",
    "available",
    "get_rule",
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
]


# --------------------------------------------------------------------------- parameters


def _eps_below_one(value, name: str, rule: str) -> float:
    v = check_positive_scalar(value, name, f"rule {rule}: the clip range must be > 0")
    if v >= 1.0:
        raise ValueError(f"{name} must be < 1 for rule {rule} (1 - {name} must stay > 0), got {v}")
    return v


@dataclass(frozen=True)
class IsParams:
    """Sequence IS (coefficient W) has no parameters."""


@dataclass(frozen=True)
class ReinforceParams:
    """REINFORCE on mu's samples (coefficient 1) has no parameters."""


@dataclass(frozen=True)
class PerDecisionIsParams:
    """Per-decision IS (coefficient prod_{s<=t} r_s) has no parameters."""


@dataclass(frozen=True)
class ClipParams:
    """PPO/GRPO clip: A >= 0 keeps r <= 1 + eps_high, A < 0 keeps r >= 1 - eps_low.

    Clip-higher (DAPO) is ``ClipParams(eps_high=0.28)``.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_low", _eps_below_one(self.eps_low, "eps_low", "ppo_clip"))
        object.__setattr__(
            self, "eps_high", check_positive_scalar(self.eps_high, "eps_high", "rule ppo_clip")
        )


@dataclass(frozen=True)
class DualClipParams:
    """Dual-clip PPO: as :class:`ClipParams`, and for A < 0 also r <= c (c > 1)."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    c: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_low", _eps_below_one(self.eps_low, "eps_low", "dual_clip"))
        object.__setattr__(
            self, "eps_high", check_positive_scalar(self.eps_high, "eps_high", "rule dual_clip")
        )
        c = check_positive_scalar(self.c, "c", "rule dual_clip")
        if c <= 1.0:
            raise ValueError(f"c must be > 1 for rule dual_clip (the A < 0 cap on r), got {c}")
        object.__setattr__(self, "c", c)


@dataclass(frozen=True)
class CispoParams:
    """CISPO: the stop-gradient weight clip(r, 1 - eps_low, 1 + eps_high), no indicator."""

    eps_low: float = 0.2
    eps_high: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_low", _eps_below_one(self.eps_low, "eps_low", "cispo"))
        object.__setattr__(
            self, "eps_high", check_positive_scalar(self.eps_high, "eps_high", "rule cispo")
        )


@dataclass(frozen=True)
class SapoParams:
    """SAPO soft gate temperature: tau_pos for A >= 0, tau_neg for A < 0."""

    tau_pos: float = 1.0
    tau_neg: float = 1.05

    def __post_init__(self) -> None:
        for n in ("tau_pos", "tau_neg"):
            object.__setattr__(self, n, check_positive_scalar(getattr(self, n), n, "rule sapo"))


@dataclass(frozen=True)
class GspoParams:
    """GSPO: clip range of the geometric-mean ratio s = W^(1/T)."""

    eps_low: float = 3e-4
    eps_high: float = 4e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_low", _eps_below_one(self.eps_low, "eps_low", "gspo"))
        object.__setattr__(
            self, "eps_high", check_positive_scalar(self.eps_high, "eps_high", "rule gspo")
        )


@dataclass(frozen=True)
class GmpoParams:
    """GMPO: clip range of each token log-ratio (in log space: [-eps_low, eps_high])."""

    eps_low: float = 0.4
    eps_high: float = 0.4

    def __post_init__(self) -> None:
        for n in ("eps_low", "eps_high"):
            object.__setattr__(self, n, check_positive_scalar(getattr(self, n), n, "rule gmpo"))


@dataclass(frozen=True)
class TokenTisParams:
    """Token truncated IS: min(r_t, cap)."""

    cap: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cap", check_positive_scalar(self.cap, "cap", "rule token_tis"))


@dataclass(frozen=True)
class SeqTisParams:
    """Sequence truncated IS: min(W, cap)."""

    cap: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cap", check_positive_scalar(self.cap, "cap", "rule seq_tis"))


@dataclass(frozen=True)
class TokenMisParams:
    """Token masked IS: r_t 1[low <= r_t <= high] (veRL's rollout-IS mask band 1/2 .. 2)."""

    low: float = 0.5
    high: float = 2.0

    def __post_init__(self) -> None:
        lo = check_positive_scalar(self.low, "low", "rule token_mis")
        hi = check_positive_scalar(self.high, "high", "rule token_mis")
        if not lo < 1.0 < hi:
            raise ValueError(
                f"rule token_mis needs low < 1 < high (on-policy tokens kept), got {lo}, {hi}"
            )
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)


@dataclass(frozen=True)
class SeqMisParams:
    """Sequence masked IS: W 1[W <= cap]."""

    cap: float = 2.0

    def __post_init__(self) -> None:
        cap = check_positive_scalar(self.cap, "cap", "rule seq_mis")
        if cap < 1.0:
            raise ValueError(f"cap must be >= 1 for rule seq_mis (keeps W = 1), got {cap}")
        object.__setattr__(self, "cap", cap)


# --------------------------------------------------------------------------- array ops


class _NumpyOps:
    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    exp = staticmethod(np.exp)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def cumsum(x):
        return np.cumsum(x, axis=-1)

    @staticmethod
    def rowsum(x):
        return np.sum(x, axis=-1)

    @staticmethod
    def logsigmoid(x):
        return -np.logaddexp(0.0, -x)

    @staticmethod
    def ones_like(x):
        return np.ones_like(x)

    @staticmethod
    def full_like(x, v):
        return np.full_like(x, v)

    @staticmethod
    def finfo_max(x):
        return float(np.finfo(x.dtype).max)


class _TorchOps:
    @staticmethod
    def where(c, a, b):
        import torch

        return torch.where(c, a, b)

    @staticmethod
    def exp(x):
        return x.exp()

    @staticmethod
    def minimum(x, v):
        import torch

        return torch.clamp(x, max=v) if isinstance(v, float) else torch.minimum(x, v)

    @staticmethod
    def maximum(x, v):
        import torch

        return torch.clamp(x, min=v) if isinstance(v, float) else torch.maximum(x, v)

    @staticmethod
    def clip(x, lo, hi):
        import torch

        return torch.clamp(x, lo, hi)

    @staticmethod
    def cumsum(x):
        return x.cumsum(-1)

    @staticmethod
    def rowsum(x):
        return x.sum(-1)

    @staticmethod
    def logsigmoid(x):
        import torch

        return torch.nn.functional.logsigmoid(x)

    @staticmethod
    def ones_like(x):
        import torch

        return torch.ones_like(x)

    @staticmethod
    def full_like(x, v):
        import torch

        return torch.full_like(x, v)

    @staticmethod
    def finfo_max(x):
        import torch

        return float(torch.finfo(x.dtype).max)


def _ops(x):
    return _TorchOps if is_torch(x) else _NumpyOps


def _log_sat(o, x) -> float:
    """log of the saturation level sqrt(finfo.max) of x's dtype."""
    return 0.5 * math.log(o.finfo_max(x))


def _sat_exp(o, log_x):
    """exp(log_x) saturated at sqrt(finfo.max); returns (value, saturated indicator)."""
    hi = _log_sat(o, log_x)
    return o.exp(o.minimum(log_x, hi)), log_x > hi


# --------------------------------------------------------------------------- rule bodies
# Sequence rules: fn(o, seq_log_w [B], pos [B] bool, T [B] (>= 1), params) -> (c [B], clipped|None)
# Token rules:    fn(o, x [B,T] (0 where masked), mask, pos [B,1], T [B,1], params) -> same, [B,T]


def _seq_is(o, lw, pos, T, p):
    return _sat_exp(o, lw)


def _seq_reinforce(o, lw, pos, T, p):
    return o.ones_like(lw), None


def _seq_vespo(o, lw, pos, T, p):
    from vespo_theory.kernels import phi_signed

    adv_sign = o.where(pos, o.ones_like(lw), -o.ones_like(lw))
    return phi_signed(lw, adv_sign, p, check_nan=False), None


def _seq_tis(o, lw, pos, T, p):
    lc = math.log(p.cap)
    return o.exp(o.minimum(lw, lc)), lw > lc


def _seq_mis(o, lw, pos, T, p):
    lc = math.log(p.cap)
    keep = lw <= lc
    return o.where(keep, o.exp(o.minimum(lw, lc)), 0.0), ~keep


def _seq_gspo(o, lw, pos, T, p):
    log_s = lw / T
    keep = o.where(pos, log_s <= math.log1p(p.eps_high), log_s >= math.log1p(-p.eps_low))
    s, _ = _sat_exp(o, log_s)
    return o.where(keep, s / T, 0.0), ~keep


def _tok_per_decision_is(o, x, mask, pos, T, p):
    return _sat_exp(o, o.cumsum(x))


def _tok_ppo_clip(o, x, mask, pos, T, p):
    keep = o.where(pos, x <= math.log1p(p.eps_high), x >= math.log1p(-p.eps_low))
    r, _ = _sat_exp(o, x)
    return o.where(keep, r, 0.0), ~keep


def _tok_dual_clip(o, x, mask, pos, T, p):
    neg_keep = (x >= math.log1p(-p.eps_low)) & (x <= math.log(p.c))
    keep = o.where(pos, x <= math.log1p(p.eps_high), neg_keep)
    r, _ = _sat_exp(o, x)
    return o.where(keep, r, 0.0), ~keep


def _tok_cispo(o, x, mask, pos, T, p):
    lo, hi = math.log1p(-p.eps_low), math.log1p(p.eps_high)
    return o.exp(o.clip(x, lo, hi)), (x < lo) | (x > hi)


def _tok_sapo(o, x, mask, pos, T, p):
    # r sech^2(tau (r - 1) / 2) = 4 r sigmoid(z) sigmoid(-z), z = tau (r - 1), in log space.
    r, _ = _sat_exp(o, x)
    tau = o.where(pos, o.full_like(x, p.tau_pos), o.full_like(x, p.tau_neg))
    z = tau * (r - 1.0)
    log_c = x + math.log(4.0) + o.logsigmoid(z) + o.logsigmoid(-z)
    return o.exp(o.minimum(log_c, _log_sat(o, x))) / T, None


def _tok_gmpo(o, x, mask, pos, T, p):
    # GMPO: m_t = sgn(A) min(sgn(A) log r_t, sgn(A) clip(log r_t)); ratio = exp(mean_t m_t);
    # d ratio / d log pi_t = ratio / T on the tokens whose min picked the unclipped branch.
    lo, hi = -p.eps_low, p.eps_high
    m = o.where(pos, o.minimum(x, hi), o.maximum(x, lo))
    keep = o.where(pos, x <= hi, x >= lo)
    g, _ = _sat_exp(o, o.rowsum(o.where(mask, m, 0.0)) / T[..., 0])
    return o.where(keep, g[..., None] / T, 0.0), ~keep


def _tok_tis(o, x, mask, pos, T, p):
    lc = math.log(p.cap)
    return o.exp(o.minimum(x, lc)), x > lc


def _tok_mis(o, x, mask, pos, T, p):
    lo, hi = math.log(p.low), math.log(p.high)
    keep = (x >= lo) & (x <= hi)
    return o.where(keep, o.exp(o.minimum(x, hi)), 0.0), ~keep


# --------------------------------------------------------------------------- numeric surrogates


def _surrogate_numeric(name: str, w: np.ndarray, pos: np.ndarray, p) -> np.ndarray | None:
    """f(W) at T = 1 (float64 NumPy), from the SymPy statement in derivations.surrogates."""
    from vespo_theory.derivations.surrogates import surrogate_numeric

    return surrogate_numeric(name, w, pos, p)


# --------------------------------------------------------------------------- the registry


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
    """

    name: str
    level: str
    params: Any
    seq_only: bool
    formula: str
    on_policy: str
    _fn: Callable = field(repr=False, compare=False)
    has_surrogate: bool = True

    # -- validation ----------------------------------------------------------------------
    def _params(self, params):
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
        if is_torch(x):
            mask = response_mask if response_mask.dtype is _torch_bool() else response_mask != 0
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

    # -- the coefficient -----------------------------------------------------------------
    def coefficient_and_clipped(self, tok_log_ratio, response_mask, adv, params=None):
        """``(c, clipped)``: the coefficient [B, T] and a bool [B, T] that is True where the
        rule clipped, masked or saturated a valid token (None for rules that never clip)."""
        p = self._params(params)
        x, mask, pos = self._validate(tok_log_ratio, response_mask, adv)
        o = _ops(x)
        out_dtype = x.dtype
        xc = _to_compute(x)
        xm = o.where(mask, xc, 0.0)  # masked positions hold exactly 0, whatever they held
        T = o.maximum(o.rowsum(_as_dtype(mask, xc)), 1.0)
        if self.seq_only:
            c_seq, clip_seq = self._fn(o, o.rowsum(xm), pos, T, p)
            c = o.where(mask, c_seq[..., None], 0.0)
            clipped = None if clip_seq is None else (clip_seq[..., None] & mask)
        else:
            c, clipped = self._fn(o, xm, mask, pos[..., None], T[..., None], p)
            c = o.where(mask, c, 0.0)
            clipped = None if clipped is None else (clipped & mask)
        return _cast(c, out_dtype), clipped

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
        p = self._params(params)
        lw = as_float_array(seq_log_w, "seq_log_w")
        o = _ops(lw)
        if is_torch(lw):
            import torch

            adv = torch.as_tensor(adv, device=lw.device)
            T = torch.as_tensor(T, device=lw.device, dtype=_to_compute(lw).dtype)
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
        lwc = _to_compute(lw)
        T = T.astype(lwc.dtype) if not is_torch(lwc) else T.to(lwc.dtype)
        c, _ = self._fn(o, lwc, adv >= 0, T, p)
        return _cast(c, lw.dtype)

    def phi(self, log_w, adv, params=None):
        """The coefficient of a one-token sequence (T = 1, W = r) as a function of log W.

        ``log_w`` and ``adv`` are 1-D (or broadcastable scalars); returns the same shape. This is
        the curve phi(W) drawn in the kernel figure.
        """
        lw = as_float_array(log_w, "log_w")
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

    def surrogate(self, log_w, adv, params=None):
        """f(W) at T = 1 with W f'(W) = phi(W) (NumPy float64), or None without a surrogate.

        The statement of f lives in :mod:`vespo_theory.derivations.surrogates` (SymPy, checked
        there as claims ``F-<name>``); f is defined up to an additive constant (stated there).
        """
        if not self.has_surrogate:
            return None
        p = self._params(params)
        lw = np.asarray(as_float_array(log_w, "log_w"), dtype=np.float64)
        adv = np.broadcast_to(np.asarray(as_float_array(adv, "adv"), dtype=np.float64), lw.shape)
        return _surrogate_numeric(self.name, np.exp(lw), adv >= 0, p)


def _torch_bool():
    import torch

    return torch.bool


def _as_dtype(a, like):
    return a.to(like.dtype) if is_torch(a) else a.astype(like.dtype)


def _to_compute(x):
    if is_torch(x):
        import torch

        return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _cast(x, dtype):
    return x.to(dtype) if is_torch(x) else np.asarray(x).astype(dtype, copy=False)


_RULES: dict[str, Rule] = {}


def _add(name, level, params, seq_only, fn, formula, on_policy, has_surrogate=True):
    _RULES[name] = Rule(name, level, params, seq_only, formula, on_policy, fn, has_surrogate)


_add("is", "sequence", IsParams(), True, _seq_is, "W", "1")
_add("reinforce", "sequence", ReinforceParams(), True, _seq_reinforce, "1", "1")
_add(
    "per_decision_is",
    "token",
    PerDecisionIsParams(),
    False,
    _tok_per_decision_is,
    "prod_{s<=t} r_s",
    "1",
    has_surrogate=False,
)
_add(
    "ppo_clip",
    "token",
    ClipParams(),
    False,
    _tok_ppo_clip,
    "A>=0: r 1[r <= 1+eps_high]; A<0: r 1[r >= 1-eps_low]",
    "1",
)
_add(
    "dual_clip",
    "token",
    DualClipParams(),
    False,
    _tok_dual_clip,
    "A>=0: r 1[r <= 1+eps_high]; A<0: r 1[1-eps_low <= r <= c]",
    "1",
)
_add("cispo", "token", CispoParams(), False, _tok_cispo, "clip(r, 1-eps_low, 1+eps_high)", "1")
_add(
    "sapo",
    "token",
    SapoParams(),
    False,
    _tok_sapo,
    "r sech^2(tau (r-1)/2) / T, tau = tau_pos (A>=0) / tau_neg (A<0)",
    "1/T",
)
_add(
    "gspo",
    "sequence",
    GspoParams(),
    True,
    _seq_gspo,
    "(s/T) 1[s unclipped on the A side], s = W^(1/T)",
    "1/T",
)
_add(
    "gmpo",
    "sequence",
    GmpoParams(),
    False,
    _tok_gmpo,
    "exp(mean_t m_t)/T 1[token t unclipped on the A side], "
    "m_t = min(log r_t, eps_high) (A>=0) / max(log r_t, -eps_low) (A<0)",
    "1/T",
    has_surrogate=False,
)
_add("token_tis", "token", TokenTisParams(), False, _tok_tis, "min(r, cap)", "1")
_add("seq_tis", "sequence", SeqTisParams(), True, _seq_tis, "min(W, cap)", "1")
_add("token_mis", "token", TokenMisParams(), False, _tok_mis, "r 1[low <= r <= high]", "1")
_add("seq_mis", "sequence", SeqMisParams(), True, _seq_mis, "W 1[W <= cap]", "1")
_add(
    "vespo",
    "sequence",
    VespoParams(),
    True,
    _seq_vespo,
    "W^k exp(lam (1-W)), (k, lam) = (k_pos, lam_pos) (A>=0) / (k_neg, lam_neg) (A<0)",
    "1",
)


def available() -> list[str]:
    """The registered rule names, in registration order."""
    return list(_RULES)


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; ValueError listing the valid names for an unknown one."""
    if name not in _RULES:
        raise ValueError(f"unknown rule {name!r}; valid rules: {', '.join(_RULES)}")
    return _RULES[name]


def params_dict(params) -> dict:
    """A rule's parameters as a plain dict (for sidecars and tables)."""
    return {f.name: getattr(params, f.name) for f in fields(params)}
