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


def params_dict(params) -> dict:
    """A rule's parameters as a plain dict (for sidecars and tables)."""
    return {f.name: getattr(params, f.name) for f in fields(params)}
