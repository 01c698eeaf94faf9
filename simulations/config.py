"""Frozen configuration dataclasses of the simulators; their fields are the CLI's options.

One source for every name, default and help text: ``vespo simulate`` and ``vespo sweep`` build
their flags from these fields (:func:`add_config_arguments`, the CleanRL pattern), so a sweep
config key and a CLI flag are the same word (``staleness`` <-> ``--staleness``,
``grid_points`` <-> ``--grid-points``). Every field is validated at construction, so a bad value
fails with a message naming the field before any work is done. ``to_dict`` / ``from_dict``
round-trip through JSON (sweep configs); unknown keys are refused with the list of valid ones
(:func:`normalize_keys`, the one such check of the package).

Old spellings still work: sweep keys ``N`` (now ``staleness``) and ``precision`` (now
``mismatch``) are renamed with a note on stderr (:data:`KEY_ALIASES`); old flags are argparse
aliases (``--mu`` for ``--mu-probs``, ``--grid`` for ``--grid-points``, ``--mc SAMPLES`` for
``--method mc --n-mc SAMPLES``, ``--exact`` for ``--method exact``).
"""

from __future__ import annotations

import argparse
import math
import numbers
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields

from vespo_theory.rules import Rule, available, get_rule

POLICIES = ("context-free", "markov", "prefix")
DRIFTS = ("steps", "fixed", "random", "lattice")
PRECISIONS = ("none", "bf16", "fp16")
ADV_MODES = ("reward", "constant")
#: ``exact``: enumeration or the multinomial count-vector sum when they fit, else the lattice
#: when the token log-ratios lie on one exactly, else an error (simulations.runners).
METHODS = ("auto", "exact", "enumeration", "multinomial", "lattice", "mc")

#: The defaults, stated once (dataclass fields, function signatures and flags all use these).
DEFAULT_N_MC = 100_000
DEFAULT_GRID_POINTS = 2049
DEFAULT_MAX_SEQUENCES = 1_000_000
#: The multinomial method's limit on C(T + V - 1, V - 1) count vectors (V = 3, T = 150: 11476;
#: V = 3, T = 4470: 1e7). Memory does not grow with it (chunks); time does, linearly.
DEFAULT_MAX_COUNT_VECTORS = 10_000_000

#: Old sweep-config keys -> their current names (renamed with a note; not both at once).
KEY_ALIASES = {"N": "staleness", "precision": "mismatch"}


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


def _numbers(value, name: str, finite: bool = False) -> tuple[float, ...] | None:
    """A list of floats (probabilities, rewards); ``finite``: refuse inf and NaN by name."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of numbers, got {value!r}")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of numbers, got {value!r}") from None
    if finite and not all(math.isfinite(v) for v in out):
        bad = next(v for v in out if not math.isfinite(v))
        raise ValueError(
            f"{name} (--{name.replace('_', '-')}) must be finite numbers, got {bad!r} in "
            f"{list(out)}: a non-finite reward makes every statistic NaN"
        )
    return out


_probs = _numbers


def normalize_keys(
    d: Mapping,
    valid: Iterable[str],
    where: str,
    *,
    aliases: Mapping[str, str] | None = None,
    renamed: list | None = None,
) -> dict:
    """``d`` with old key spellings renamed (``aliases``, default :data:`KEY_ALIASES`), after
    checking that every key is valid: the one check of field names in the package.

    Raises ``ValueError`` listing the valid keys for an unknown key, and for an old spelling
    given beside its current name. ``renamed`` (a list) collects ``(old, new)`` pairs so that
    the caller can say so once.
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"{where} must be a JSON object (a dict), got {type(d).__name__}")
    aliases = KEY_ALIASES if aliases is None else aliases
    valid = list(valid)
    out = {}
    for k, v in d.items():
        new = aliases.get(k, k) if k not in valid else k
        if new != k:
            if new in d:
                raise ValueError(f"{where}: {k!r} is the old name of {new!r}; give only {new!r}")
            if renamed is not None:
                renamed.append((k, new))
        out[new] = v
    unknown = [k for k in out if k not in valid]
    if unknown:
        old = f" (old names: {', '.join(f'{a} -> {b}' for a, b in aliases.items())})"
        raise ValueError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in {where}; valid keys: "
            f"{', '.join(sorted(valid, key=str.lower))}" + (old if aliases else "")
        )
    return out


class _Base:
    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping, where: str | None = None):
        return cls(**normalize_keys(d, cls.field_names(), where or f"a {cls.__name__}"))


def resolve_rules(rules) -> tuple[Rule, ...]:
    """Rule objects from names (or Rule objects, passed through); ``None`` = every rule the
    simulators can evaluate.

    The one place names become :class:`~vespo_theory.rules.Rule` objects: the entry points
    (CLI, sweep cells, the public ``simulate_*`` functions) call it once and pass Rules down.
    A single string is one name, or several separated by commas (as ``--rules``).

    Batch-level rules (``Rule.batch_level``: BAPO's adaptive bounds, VCPO's ESS scale) are left
    out of ``None`` and refused by name: their coefficient depends on the whole training batch,
    so the simulators' per-sequence population statistics (an enumerated support or Monte
    Carlo draws treated as one batch) would be numbers of no batch anyone trains with.
    """
    if rules is None:
        return tuple(r for r in (get_rule(n) for n in available()) if not r.batch_level)
    if isinstance(rules, (str, Rule)):
        rules = [rules]
    if not isinstance(rules, Iterable):
        raise TypeError(f"rules must be a list of rule names, got {rules!r}")
    out: list[Rule] = []
    for r in rules:
        if isinstance(r, Rule):
            out.append(r)
        elif isinstance(r, str):
            out += [get_rule(n.strip()) for n in r.split(",") if n.strip()]
        else:
            raise TypeError(f"rules must be rule names (strings), got {r!r}")
    if not out:
        raise ValueError(
            "rules is empty: name at least one rule (or omit it for every rule); valid: "
            + ", ".join(available())
        )
    batch = [r.name for r in out if r.batch_level]
    if batch:
        raise ValueError(
            f"rules: {', '.join(batch)} "
            + ("is a batch-level rule" if len(batch) == 1 else "are batch-level rules")
            + " (the coefficient depends on the whole training batch): the simulators "
            "compute per-sequence population statistics and do not cover them; use them in "
            "vespo train-lm or vespo_theory.losses"
        )
    return tuple(out)


def _meta(help: str, *, choices=None, flags=(), metavar=None) -> dict:
    return {"help": help, "choices": choices, "flags": tuple(flags), "metavar": metavar}


@dataclass(frozen=True)
class ARConfig(_Base):
    """A tabular autoregressive setting: models, staleness, mismatch, advantage, method sizes.

    Models (``tabular``): vocabulary ``V``; length ``T`` (the maximum length when ``end_token``:
    token ``V - 1`` then ends the sequence); ``policy`` context-free | markov | prefix (the state
    is a rolling hash of the prefix with ``n_hash`` values); pi's logits are i.i.d.
    N(0, ``logit_scale``^2) per state (seeded).

    Staleness ``staleness`` = N >= 0 (``drift``): "steps" (pi is mu after N exact per-state
    policy-gradient steps of size ``step_size`` on the token reward), "fixed" (mu's logits =
    pi's - N eps d, d a fixed unit-RMS direction), "random" (mu's logits = pi's - eps (d_1 +
    ... + d_N), fresh directions), "lattice" (like "fixed" with d integer in {-1, 0, 1}: every
    token log-ratio is an integer multiple of N eps plus a constant, so the lattice method is
    exact); eps = ``drift_size``.

    Engine mismatch: the sampler uses mu's logits rounded to ``mismatch`` (none | bf16 | fp16)
    plus, with probability ``flip_prob`` per logit, a heavy-tailed Student-t(``flip_df``) jump of
    scale ``flip_scale``. Then W = pi / sampler (three-policy setting). Direct context-free
    token distributions: ``mu_probs`` / ``pi_probs`` (override policy / staleness).

    Advantage: ``adv_mode`` "reward" (A = mean token reward r[y_t] over the response minus
    ``baseline``; r ~ N(0, 1) seeded, or ``reward``) or "constant" (A = ``adv_value`` for every
    sequence, as the lattice method needs).
    """

    V: int = field(default=4, metadata=_meta("vocabulary size (>= 2)"))
    T: int = field(default=6, metadata=_meta("(maximum) sequence length"))
    policy: str = field(
        default="context-free", metadata=_meta("state of the model", choices=POLICIES)
    )
    n_hash: int = field(default=8, metadata=_meta("prefix-hash states (policy prefix)"))
    logit_scale: float = field(default=1.0, metadata=_meta("sd of pi's logits"))
    staleness: int = field(
        default=1, metadata=_meta("N >= 0: optimizer steps between mu and pi", metavar="N")
    )
    drift: str = field(default="fixed", metadata=_meta("how mu drifts from pi", choices=DRIFTS))
    drift_size: float = field(default=0.1, metadata=_meta("logit drift per step eps"))
    step_size: float = field(default=0.5, metadata=_meta("learning rate of the 'steps' drift"))
    end_token: bool = field(default=False, metadata=_meta("token V-1 ends the sequence"))
    mismatch: str = field(
        default="none",
        metadata=_meta(
            "sampler = pi_old with logits rounded to this precision (three-policy setting)",
            choices=PRECISIONS,
        ),
    )
    flip_prob: float = field(default=0.0, metadata=_meta("per-logit heavy-tailed flip probability"))
    flip_scale: float = field(default=1.0, metadata=_meta("flip size (Student-t scale)"))
    flip_df: float = field(default=1.5, metadata=_meta("flip Student-t degrees of freedom"))
    mu_probs: tuple | None = field(
        default=None, metadata=_meta("context-free behaviour token probabilities", flags=["--mu"])
    )
    pi_probs: tuple | None = field(
        default=None, metadata=_meta("context-free target token probabilities", flags=["--pi"])
    )
    reward: tuple | None = field(
        default=None, metadata=_meta("token rewards, finite (default: seeded N(0, 1))")
    )
    adv_mode: str = field(
        default="reward",
        metadata=_meta("A = mean token reward - baseline, or constant", choices=ADV_MODES),
    )
    adv_value: float = field(default=1.0, metadata=_meta("A of adv_mode constant (nonzero)"))
    baseline: float = field(default=0.0, metadata=_meta("A = mean token reward - baseline"))
    seed: int = field(default=0, metadata=_meta("random seed"))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "V", _int(self.V, "V", 2, "a policy needs at least two tokens"))
        set_(self, "T", _int(self.T, "T", 1))
        set_(self, "policy", _choice(self.policy, "policy", POLICIES))
        set_(self, "n_hash", _int(self.n_hash, "n_hash", 1))
        set_(self, "logit_scale", _float(self.logit_scale, "logit_scale", 0.0))
        set_(
            self,
            "staleness",
            _int(self.staleness, "staleness", 0, "it counts optimizer steps between mu and pi"),
        )
        set_(self, "drift", _choice(self.drift, "drift", DRIFTS))
        set_(self, "drift_size", _float(self.drift_size, "drift_size", 0.0))
        set_(self, "step_size", _float(self.step_size, "step_size", 0.0))
        set_(self, "end_token", bool(self.end_token))
        set_(self, "mismatch", _choice(self.mismatch, "mismatch", PRECISIONS))
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
        set_(self, "reward", _numbers(self.reward, "reward", finite=True))
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

    mu: tuple = field(default=(0.5, 0.3, 0.2), metadata=_meta("behaviour probabilities"))
    pi: tuple = field(default=(0.3, 0.3, 0.4), metadata=_meta("target probabilities"))
    reward: tuple = field(default=(1.0, -1.0, 0.5), metadata=_meta("reward per arm, finite"))
    baseline: float = field(default=0.0, metadata=_meta("A = reward - baseline"))
    seed: int = field(default=0, metadata=_meta("random seed"))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("mu", "pi", "reward"):
            set_(self, name, _numbers(getattr(self, name), name, finite=name == "reward"))
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


@dataclass(frozen=True)
class RunOptions(_Base):
    """How to run a setting: which rules, which method, and the method sizes.

    ``rules``: names (a list, or one string with commas; None = every rule; an empty list is an
    error). ``method``: auto (the multinomial count-vector sum for a context-free model of fixed
    length when C(T + V - 1, V - 1) <= ``max_count_vectors``, else enumeration if V^T <=
    ``max_sequences``, else the lattice if it applies, else Monte Carlo), exact (the same
    without Monte Carlo and with the lattice only where the token log-ratios lie on one: else
    an error), enumeration, multinomial, lattice or mc (see simulations.runners).
    A bandit uses only ``rules`` and ``n_mc`` (:data:`BANDIT_RUN_FIELDS`).
    """

    rules: tuple | None = field(
        default=None,
        metadata=_meta(
            "registered rules, comma-separated or repeated (default: every rule)",
            flags=["--rule"],
            metavar="NAME",
        ),
    )
    method: str = field(
        default="auto",
        metadata=_meta(
            "auto: the exact multinomial sum or enumeration where they fit, else the lattice, "
            "else Monte Carlo; exact: never an approximation (an error instead)",
            choices=METHODS,
        ),
    )
    n_mc: int = field(
        default=DEFAULT_N_MC, metadata=_meta("Monte Carlo samples", metavar="SAMPLES")
    )
    max_sequences: int = field(
        default=DEFAULT_MAX_SEQUENCES, metadata=_meta("enumeration limit on V^T")
    )
    max_count_vectors: int = field(
        default=DEFAULT_MAX_COUNT_VECTORS,
        metadata=_meta("multinomial-method limit on C(T+V-1, V-1) count vectors"),
    )
    grid_points: int = field(
        default=DEFAULT_GRID_POINTS,
        metadata=_meta("lattice points per token (off-lattice logits)", flags=["--grid"]),
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        rules = resolve_rules(self.rules)  # refuses [] and unknown names, listing valid ones
        if self.rules is not None:
            set_(self, "rules", tuple(r.name for r in rules))
        set_(self, "_resolved", rules)  # not a field: to_dict / asdict leave it out
        set_(self, "method", _choice(self.method, "method", METHODS))
        set_(self, "n_mc", _int(self.n_mc, "n_mc", 2, "standard errors need two samples"))
        set_(self, "max_sequences", _int(self.max_sequences, "max_sequences", 1))
        set_(self, "max_count_vectors", _int(self.max_count_vectors, "max_count_vectors", 1))
        set_(self, "grid_points", _int(self.grid_points, "grid_points", 2))

    def rule_objects(self) -> tuple[Rule, ...]:
        """The rules as :class:`~vespo_theory.rules.Rule` objects (every rule when None),
        resolved once when the options were made."""
        return self._resolved


#: The run options a bandit takes (it always runs enumeration and Monte Carlo).
BANDIT_RUN_FIELDS = ("rules", "n_mc")


# --------------------------------------------------------------------------- flags from fields


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


class _AppendNames(argparse.Action):
    """``--rules a,b --rules c`` -> ("a", "b", "c")."""

    def __call__(self, parser, namespace, values, option_string=None):
        old = getattr(namespace, self.dest) or ()
        new = tuple(v.strip() for v in values.split(",") if v.strip())
        setattr(namespace, self.dest, tuple(old) + new)


def flag(name: str) -> str:
    """The command-line flag of a field: ``grid_points`` -> ``--grid-points``."""
    return "--" + name.replace("_", "-")


def add_config_arguments(parser, cls, names: Iterable[str] | None = None) -> None:
    """Add one flag per field of the dataclass ``cls`` (``names``: a subset, in field order).

    The flag is the field name with ``-`` for ``_`` (plus the old spellings in the field's
    ``flags`` metadata as aliases), its type, default, choices and help come from the field.
    Values are checked by the dataclass when it is built from the parsed arguments.
    """
    hints = typing.get_type_hints(cls)
    keep = None if names is None else set(names)
    for f in fields(cls):
        if keep is not None and f.name not in keep:
            continue
        meta = f.metadata
        default = f.default if f.default is not MISSING else None
        hint = hints[f.name]
        opts = [flag(f.name), *meta.get("flags", ())]
        kw: dict = {"dest": f.name, "default": default}
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = meta.get("help", "")
        if f.name == "rules":
            kw.update(action=_AppendNames, metavar=meta.get("metavar") or "NAME")
        elif hint is bool:
            kw["action"] = "store_true"
        elif hint in (int, float, str):
            kw["type"] = hint
            if meta.get("choices"):
                kw["choices"] = list(meta["choices"])
        else:  # a tuple of numbers
            kw["type"] = _float_list
            kw["metavar"] = "P,P,..."
        if meta.get("metavar") and "metavar" not in kw:
            kw["metavar"] = meta["metavar"]
        if hint is not bool:
            help_ += f" (default {shown})" if shown is not None else ""
        kw["help"] = help_
        parser.add_argument(*opts, **kw)


def config_from_args(cls, args, names: Iterable[str] | None = None):
    """``cls`` built from the parsed flags of :func:`add_config_arguments`."""
    keep = cls.field_names() if names is None else list(names)
    return cls(**{n: getattr(args, n) for n in keep})
