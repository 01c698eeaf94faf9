"""Frozen configuration dataclasses of the simulators; their fields are the CLI's options.

Every field is validated at construction, so a bad value fails with a message naming the field
before any work is done. ``to_dict`` / ``from_dict`` round-trip through JSON (sweep configs).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

POLICIES = ("context-free", "markov", "prefix")
DRIFTS = ("steps", "fixed", "random", "lattice")
PRECISIONS = ("none", "bf16", "fp16")
ADV_MODES = ("reward", "constant")


def _int(value, name: str, lo: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ValueError(
            f"{name} must be an integer >= {lo}, got {value}" + (f": {why}" if why else "")
        )
    return int(value)


def _float(value, name: str, lo: float | None = None, hi: float | None = None, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (v < lo or (strict and v == lo)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return v


def _choice(value, name: str, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


def _probs(value, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of probabilities, got {value!r}") from None
    return out


class _Base:
    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; "
                f"valid fields: {', '.join(sorted(names))}"
            )
        return cls(**d)


@dataclass(frozen=True)
class ARConfig(_Base):
    """A tabular autoregressive setting: models, staleness, mismatch, advantage, method sizes.

    Models (``tabular``): vocabulary ``V``; length ``T`` (the maximum length when ``end_token``:
    token ``V - 1`` then ends the sequence); ``policy`` context-free | markov | prefix (the state
    is a rolling hash of the prefix with ``n_hash`` values); pi's logits are i.i.d.
    N(0, ``logit_scale``^2) per state (seeded).

    Staleness ``N`` >= 0 (``drift``): "steps" (pi is mu after N exact per-state policy-gradient
    steps of size ``step_size`` on the token reward), "fixed" (mu's logits = pi's - N eps d, d a
    fixed unit-RMS direction), "random" (mu's logits = pi's - eps (d_1 + ... + d_N), fresh
    directions), "lattice" (like "fixed" with d integer in {-1, 0, 1}: every token log-ratio is
    an integer multiple of N eps plus a constant, so the lattice method is exact); eps =
    ``drift_size``.

    Engine mismatch: the sampler uses mu's logits rounded to ``precision`` (none | bf16 | fp16)
    plus, with probability ``flip_prob`` per logit, a heavy-tailed Student-t(``flip_df``) jump of
    scale ``flip_scale``. Then W = pi / sampler (three-policy setting). Direct context-free
    token distributions: ``mu_probs`` / ``pi_probs`` (override policy / staleness).

    Advantage: ``adv_mode`` "reward" (A = mean token reward r[y_t] over the response minus
    ``baseline``; r ~ N(0, 1) seeded, or ``reward``) or "constant" (A = ``adv_value`` for every
    sequence, as the lattice method needs).
    """

    V: int = 4
    T: int = 6
    policy: str = "context-free"
    n_hash: int = 8
    logit_scale: float = 1.0
    N: int = 1
    drift: str = "fixed"
    drift_size: float = 0.1
    step_size: float = 0.5
    end_token: bool = False
    precision: str = "none"
    flip_prob: float = 0.0
    flip_scale: float = 1.0
    flip_df: float = 1.5
    mu_probs: tuple | None = None
    pi_probs: tuple | None = None
    reward: tuple | None = None
    adv_mode: str = "reward"
    adv_value: float = 1.0
    baseline: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "V", _int(self.V, "V", 2, "a policy needs at least two tokens"))
        set_(self, "T", _int(self.T, "T", 1))
        set_(self, "policy", _choice(self.policy, "policy", POLICIES))
        set_(self, "n_hash", _int(self.n_hash, "n_hash", 1))
        set_(self, "logit_scale", _float(self.logit_scale, "logit_scale", 0.0))
        set_(
            self,
            "N",
            _int(self.N, "N (staleness)", 0, "N counts optimizer steps between mu and pi"),
        )
        set_(self, "drift", _choice(self.drift, "drift", DRIFTS))
        set_(self, "drift_size", _float(self.drift_size, "drift_size", 0.0))
        set_(self, "step_size", _float(self.step_size, "step_size", 0.0))
        set_(self, "end_token", bool(self.end_token))
        set_(self, "precision", _choice(self.precision, "precision", PRECISIONS))
        set_(self, "flip_prob", _float(self.flip_prob, "flip_prob", 0.0, 1.0))
        set_(self, "flip_scale", _float(self.flip_scale, "flip_scale", 0.0))
        set_(self, "flip_df", _float(self.flip_df, "flip_df", 0.0, strict=True))
        set_(self, "mu_probs", _probs(self.mu_probs, "mu_probs"))
        set_(self, "pi_probs", _probs(self.pi_probs, "pi_probs"))
        if (self.mu_probs is None) != (self.pi_probs is None):
            raise ValueError("mu_probs and pi_probs must be given together (or neither)")
        if self.mu_probs is not None:
            if len(self.mu_probs) != len(self.pi_probs):
                raise ValueError(
                    f"mu_probs has {len(self.mu_probs)} entries but pi_probs has "
                    f"{len(self.pi_probs)}; both are distributions over the same vocabulary"
                )
            set_(self, "V", len(self.mu_probs))
            set_(self, "policy", "context-free")
        set_(self, "reward", _probs(self.reward, "reward"))
        if self.reward is not None and len(self.reward) != self.V:
            raise ValueError(f"reward must have V = {self.V} entries, got {len(self.reward)}")
        set_(self, "adv_mode", _choice(self.adv_mode, "adv_mode", ADV_MODES))
        set_(self, "adv_value", _float(self.adv_value, "adv_value"))
        if self.adv_mode == "constant" and self.adv_value == 0:
            raise ValueError(
                "adv_value must be nonzero with adv_mode='constant' (A = 0 is no signal)"
            )
        set_(self, "baseline", _float(self.baseline, "baseline"))
        set_(self, "seed", _int(self.seed, "seed", 0))


@dataclass(frozen=True)
class BanditConfig(_Base):
    """A K-armed bandit: behaviour ``mu`` and target ``pi`` (probabilities), ``reward`` per arm.

    The advantage of arm a is ``reward[a] - baseline``; pi = softmax(theta) and the gradient is
    taken with respect to theta (pi's logits).
    """

    mu: tuple = (0.5, 0.3, 0.2)
    pi: tuple = (0.3, 0.3, 0.4)
    reward: tuple = (1.0, -1.0, 0.5)
    baseline: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("mu", "pi", "reward"):
            set_(self, name, _probs(getattr(self, name), name))
        K = len(self.mu)
        if K < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got mu with {K} entries")
        for name in ("pi", "reward"):
            if len(getattr(self, name)) != K:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries but mu has {K}; "
                    "give one value per arm"
                )
        set_(self, "baseline", _float(self.baseline, "baseline"))
        set_(self, "seed", _int(self.seed, "seed", 0))
