"""The one place where VESPO's sign-dependent kernel parameters and their defaults live.

The reference code (FloyedShen/VESPO ``recipe/vespo/code/core_algos.py``) and TRL's port use
(k, lam) = (2, 3) for sequences with advantage A >= 0 and (3, 2) for A < 0 (arXiv 2602.10693
§3.3).

The symmetric settings of the paper's asymmetry ablation (the same kernel for both signs) are
:data:`VESPO_SYM_23` ((2, 3) / (2, 3)) and :data:`VESPO_SYM_32` ((3, 2) / (3, 2)); every named
setting is in :data:`VESPO_PRESETS` and :func:`vespo_preset`. Request one as ``params=`` of any
registry or loss call (``get_rule("vespo").coefficient(..., params=VESPO_SYM_23)``), or by rule
name where only a name can be passed (the CLI's ``--rule``, sweep cells): the registry holds
them as the rules ``vespo_sym23`` and ``vespo_sym32`` (docs/rules.md).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from vespo_theory.array_ops import check_positive_scalar

_WHY = (
    "the kernel W^k exp(lam (1 - W)) is bounded (claim B1, sup = (k/lam)^k e^(lam-k)) only for "
    "k > 0 and lam > 0; with lam <= 0 it grows without bound as W -> inf, with k <= 0 as W -> 0"
)


@dataclass(frozen=True)
class KernelParams:
    """Parameters (k, lam) of one kernel phi(W) = W^k exp(lam (1 - W)); both must be > 0."""

    k: float
    lam: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_positive_scalar(self.k, "k", _WHY))
        object.__setattr__(self, "lam", check_positive_scalar(self.lam, "lam", _WHY))


@dataclass(frozen=True)
class VespoParams:
    """Sign-dependent VESPO parameters: ``pos`` applies when A >= 0, ``neg`` when A < 0.

    >>> p = VespoParams()
    >>> (p.pos.k, p.pos.lam, p.neg.k, p.neg.lam)
    (2.0, 3.0, 3.0, 2.0)
    """

    k_pos: float = 2.0
    lam_pos: float = 3.0
    k_neg: float = 3.0
    lam_neg: float = 2.0

    def __post_init__(self) -> None:
        for name in ("k_pos", "lam_pos", "k_neg", "lam_neg"):
            object.__setattr__(self, name, check_positive_scalar(getattr(self, name), name, _WHY))

    @property
    def pos(self) -> KernelParams:
        """Kernel parameters for A >= 0."""
        return KernelParams(self.k_pos, self.lam_pos)

    @property
    def neg(self) -> KernelParams:
        """Kernel parameters for A < 0."""
        return KernelParams(self.k_neg, self.lam_neg)

    def for_sign(self, adv: float) -> KernelParams:
        """Kernel parameters for a scalar advantage ``adv`` (A >= 0 -> ``pos``).

        >>> VespoParams().for_sign(-0.5).k
        3.0
        """
        if isinstance(adv, bool) or not isinstance(adv, numbers.Real):
            raise TypeError(f"adv must be a real number, got {adv!r}")
        if math.isnan(adv):
            raise ValueError("adv is NaN: its sign, which picks (k, lam), is undefined")
        return self.pos if adv >= 0 else self.neg


#: VESPO with (k, lam) = (2, 3) for both signs (the asymmetry ablation; registry rule
#: ``vespo_sym23``).
VESPO_SYM_23 = VespoParams(k_pos=2.0, lam_pos=3.0, k_neg=2.0, lam_neg=3.0)
#: VESPO with (k, lam) = (3, 2) for both signs (the asymmetry ablation; registry rule
#: ``vespo_sym32``).
VESPO_SYM_32 = VespoParams(k_pos=3.0, lam_pos=2.0, k_neg=3.0, lam_neg=2.0)

#: The named VESPO settings: the deployed asymmetric one and the two symmetric ablations.
VESPO_PRESETS = {
    "deployed": VespoParams(),
    "sym23": VESPO_SYM_23,
    "sym32": VESPO_SYM_32,
}


def vespo_preset(name: str) -> VespoParams:
    """The VESPO setting called ``name`` (:data:`VESPO_PRESETS`); ValueError naming the valid ones.

    >>> vespo_preset("sym23").k_neg, vespo_preset("sym32").lam_pos
    (2.0, 2.0)
    """
    if name not in VESPO_PRESETS:
        raise ValueError(
            f"unknown VESPO preset {name!r}; valid presets: {', '.join(VESPO_PRESETS)}"
        )
    return VESPO_PRESETS[name]
