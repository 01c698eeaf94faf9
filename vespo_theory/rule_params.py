"""The parameters of every reshaping rule: one frozen dataclass per rule, validated on creation.

Each default says where it comes from (papers by arXiv id, peers by repository and file); the
values are pinned by ``tests/test_rules.py::test_default_parameters_and_their_sources``. VESPO's
parameters live in :mod:`vespo_theory.params` (the one place for (2, 3) / (3, 2)) and are
re-exported here. Bad values raise ValueError naming the field and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from vespo_theory.array_ops import check_positive_scalar
from vespo_theory.params import VespoParams

__all__ = [
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
    "params_dict",
]


def _eps_below_one(value, name: str, rule: str) -> float:
    v = check_positive_scalar(value, name, f"rule {rule}: the clip range must be > 0")
    if v >= 1.0:
        raise ValueError(f"{name} must be < 1 for rule {rule} (1 - {name} must stay > 0), got {v}")
    return v


def _set_eps_pair(obj, rule: str) -> None:
    object.__setattr__(obj, "eps_low", _eps_below_one(obj.eps_low, "eps_low", rule))
    hi = check_positive_scalar(obj.eps_high, "eps_high", f"rule {rule}")
    object.__setattr__(obj, "eps_high", hi)


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

    Default eps 0.2 on both sides: PPO (Schulman et al., arXiv 1707.06347, its recommended
    epsilon) and veRL's ``clip_ratio``. Clip-higher (DAPO, arXiv 2503.14476) is
    ``ClipParams(eps_high=0.28)``.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2

    def __post_init__(self) -> None:
        _set_eps_pair(self, "ppo_clip")


@dataclass(frozen=True)
class DualClipParams:
    """Dual-clip PPO: as :class:`ClipParams`, and for A < 0 also r <= c (c > 1).

    Default c = 3: Ye et al. (arXiv 1912.09729) and veRL's ``clip_ratio_c``
    (volcengine/verl, verl/trainer/ppo/core_algos.py).
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    c: float = 3.0

    def __post_init__(self) -> None:
        _set_eps_pair(self, "dual_clip")
        c = check_positive_scalar(self.c, "c", "rule dual_clip")
        if c <= 1.0:
            raise ValueError(f"c must be > 1 for rule dual_clip (the A < 0 cap on r), got {c}")
        object.__setattr__(self, "c", c)


@dataclass(frozen=True)
class CispoParams:
    """CISPO: the stop-gradient weight clip(r, 1 - eps_low, 1 + eps_high), no indicator.

    Defaults 0.2 / 0.2 are this project's choice (PPO's range); MiniMax-M1 (arXiv 2506.13585)
    tunes only the upper bound.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2

    def __post_init__(self) -> None:
        _set_eps_pair(self, "cispo")


@dataclass(frozen=True)
class SapoParams:
    """SAPO soft gate temperature: tau_pos for A >= 0, tau_neg for A < 0.

    Defaults 1.0 / 1.05: SAPO (arXiv 2511.20347) and veRL's ``tau_pos``/``tau_neg``
    (volcengine/verl, verl/trainer/config/actor/actor.yaml).
    """

    tau_pos: float = 1.0
    tau_neg: float = 1.05

    def __post_init__(self) -> None:
        for n in ("tau_pos", "tau_neg"):
            object.__setattr__(self, n, check_positive_scalar(getattr(self, n), n, "rule sapo"))


@dataclass(frozen=True)
class GspoParams:
    """GSPO: clip range of the geometric-mean ratio s = W^(1/T).

    Defaults 3e-4 / 4e-4: GSPO (arXiv 2507.18071, §5.1) and veRL's GSPO examples
    (volcengine/verl, examples/gspo_trainer/).
    """

    eps_low: float = 3e-4
    eps_high: float = 4e-4

    def __post_init__(self) -> None:
        _set_eps_pair(self, "gspo")


@dataclass(frozen=True)
class GmpoParams:
    """GMPO: clip range of each token log-ratio (in log space: [-eps_low, eps_high]).

    Defaults 0.4 / 0.4 (ratio band (e^-0.4, e^0.4)): GMPO (arXiv 2507.20673).
    """

    eps_low: float = 0.4
    eps_high: float = 0.4

    def __post_init__(self) -> None:
        for n in ("eps_low", "eps_high"):
            object.__setattr__(self, n, check_positive_scalar(getattr(self, n), n, "rule gmpo"))


@dataclass(frozen=True)
class TokenTisParams:
    """Token truncated IS: min(r_t, cap).

    Default cap 2: veRL's ``rollout_is_threshold`` (volcengine/verl,
    verl/trainer/config/algorithm.py); truncated IS after Yao et al. (blog post, no arXiv id).
    """

    cap: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cap", check_positive_scalar(self.cap, "cap", "rule token_tis"))


@dataclass(frozen=True)
class SeqTisParams:
    """Sequence truncated IS: min(W, cap). Default cap 2 as :class:`TokenTisParams`."""

    cap: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cap", check_positive_scalar(self.cap, "cap", "rule seq_tis"))


@dataclass(frozen=True)
class TokenMisParams:
    """Token masked IS: r_t 1[low <= r_t <= high].

    Default band 1/2 .. 2: veRL's rollout-IS mask band (upper ``rollout_is_threshold`` 2, lower
    its reciprocal; volcengine/verl, verl/trainer/config/algorithm.py).
    """

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
    """Sequence masked IS: W 1[W <= cap]. Default cap 2 as :class:`TokenTisParams`."""

    cap: float = 2.0

    def __post_init__(self) -> None:
        cap = check_positive_scalar(self.cap, "cap", "rule seq_mis")
        if cap < 1.0:
            raise ValueError(f"cap must be >= 1 for rule seq_mis (keeps W = 1), got {cap}")
        object.__setattr__(self, "cap", cap)


@dataclass(frozen=True)
class ToprParams:
    """TOPR: weight 1 for A >= 0, min(W, 1) for A < 0; ``length_norm`` divides it by T.

    Default ``length_norm=True``: TOPR as arXiv 2602.10693 compares it ("length-normalised";
    our reading: the per-sequence token mean, 1/T, held in the coefficient as GSPO's is). TOPR's
    own gradient (Le Roux et al., arXiv 2503.14286, Eq. for grad J_topr) is on the sequence
    log-probability sum_t log pi, i.e. ``length_norm=False``.
    """

    length_norm: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.length_norm, bool):
            raise TypeError(f"length_norm must be a bool for rule topr, got {self.length_norm!r}")


@dataclass(frozen=True)
class BapoParams:
    """BAPO: the bound search (start, maximum and step of each explicit ratio bound), the target
    positive share ``rho0`` and the A < 0 hard cap ``c``.

    Defaults: ``rho0`` 0.5, lower bound 0.6 .. 0.9, upper bound 1.2 .. 3.0 (arXiv 2510.18927 and
    WooooDyy/BAPO README.md, "as used in the paper"); steps 0.05 (WooooDyy/BAPO
    recipe/bapo/config.py, ``ratio_lower_step`` / ``ratio_upper_step`` defaults); ``c`` 3
    (the ``clip_ratio_c`` default read by WooooDyy/BAPO recipe/bapo/policy_loss.py, veRL's
    dual-clip constant). Bounds are ratios, not 1 +- eps (as in the released code).
    """

    rho0: float = 0.5
    low_start: float = 0.6
    low_max: float = 0.9
    low_step: float = 0.05
    high_start: float = 1.2
    high_max: float = 3.0
    high_step: float = 0.05
    c: float = 3.0

    def __post_init__(self) -> None:
        for n in ("rho0", "low_start", "low_max", "low_step", "high_start", "high_max",
                  "high_step", "c"):  # fmt: skip
            object.__setattr__(self, n, check_positive_scalar(getattr(self, n), n, "rule bapo"))
        if not self.rho0 < 1.0:
            raise ValueError(
                f"rho0 must be < 1 for rule bapo (a share of the loss), got {self.rho0}"
            )
        if not self.low_start <= self.low_max < 1.0:
            raise ValueError(
                "rule bapo needs low_start <= low_max < 1 (on-policy tokens kept), got "
                f"{self.low_start}, {self.low_max}"
            )
        if not 1.0 < self.high_start <= self.high_max:
            raise ValueError(
                "rule bapo needs 1 < high_start <= high_max (on-policy tokens kept), got "
                f"{self.high_start}, {self.high_max}"
            )
        if self.c <= 1.0:
            raise ValueError(f"c must be > 1 for rule bapo (the A < 0 cap on r), got {self.c}")


@dataclass(frozen=True)
class VcpoParams:
    """VCPO's ESS step scale sqrt(min(1, (ESS/B) / base_ess_ratio)).

    Default ``base_ess_ratio`` 1: the released scripts (mit-han-lab/vcpo,
    recipe/fully_async_policy/shell/vcpo/math/vcpo_k=10.sh, ``ess_scaling_base_ess_ratio=1.0``,
    ``scaling_rule="sqrt"``), so the scale is sqrt(ESS/B) (arXiv 2602.17616).
    """

    base_ess_ratio: float = 1.0

    def __post_init__(self) -> None:
        v = check_positive_scalar(self.base_ess_ratio, "base_ess_ratio", "rule vcpo")
        if v > 1.0:
            raise ValueError(f"base_ess_ratio must be <= 1 for rule vcpo (ESS/B <= 1), got {v}")
        object.__setattr__(self, "base_ess_ratio", v)


def params_dict(params) -> dict:
    """A rule's parameters as a plain dict (for sidecars and tables)."""
    return {f.name: getattr(params, f.name) for f in fields(params)}
