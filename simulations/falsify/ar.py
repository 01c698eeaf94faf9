"""Autoregressive instances of the falsifier: explicit logits tables -> simulations' exact tools.

An instance (from :func:`simulations.falsify.strategies.ar_model`) is a JSON dict with ``kind``
(context-free | markov | prefix), ``V``, ``T``, ``n_hash``, ``logits_pi`` and ``logits_mu``
([S][V] lists), ``end_token`` (bool) and optionally ``reward`` ([V]). :func:`build` turns it into
a :class:`simulations.tabular.ARModel`; expectations then come from
:func:`simulations.tabular.enumerate_sequences` (every sequence, exact probabilities) and
:mod:`simulations.estimators`, or :mod:`simulations.lattice` for long context-free sequences.
"""

from __future__ import annotations

import numpy as np

from simulations.config import ARConfig
from simulations.tabular import ARModel, _transitions, advantages, enumerate_sequences

__all__ = ["build", "enumerate_instance", "mean_token_reward"]


def _table(x, name: str, S: int, V: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (S, V):
        raise ValueError(f"{name} must be a [{S}][{V}] table of logits, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (pi and mu > 0 on every token)")
    return a


def build(instance: dict, T: int | None = None) -> ARModel:
    """The :class:`ARModel` of an instance dict (``T`` overrides the instance's length)."""
    try:
        kind, V = instance["kind"], int(instance["V"])
        T = int(instance["T"] if T is None else T)
    except KeyError as exc:
        raise ValueError(f"autoregressive instance: missing key {exc.args[0]!r}") from None
    if V < 2 or T < 1:
        raise ValueError(f"autoregressive instance: need V >= 2 and T >= 1, got V={V}, T={T}")
    n_hash = int(instance.get("n_hash", 1))
    if kind not in ("context-free", "markov", "prefix"):
        raise ValueError(f"kind must be context-free, markov or prefix; got {kind!r}")
    trans = _transitions(kind, V, n_hash)
    S = trans.shape[0]
    reward = np.asarray(instance.get("reward", [0.0] * V), dtype=np.float64)
    if reward.shape != (V,):
        raise ValueError(f"reward must have V = {V} entries, got {reward.size}")
    return ARModel(
        V=V,
        T=T,
        kind=kind,
        trans=trans,
        logits_pi=_table(instance["logits_pi"], "logits_pi", S, V),
        logits_mu=_table(instance["logits_mu"], "logits_mu", S, V),
        logits_sampler=None,
        reward=reward,
        end_token=V - 1 if instance.get("end_token") else None,
    )


def enumerate_instance(instance: dict, T: int | None = None):
    """(model, batch): the model and every one of its V^T sequences with exact probabilities."""
    model = build(instance, T)
    return model, enumerate_sequences(model)


def mean_token_reward(model: ARModel, batch, baseline: float = 0.0) -> np.ndarray:
    """A(y) = mean token reward over the response - baseline (the simulators' "reward" mode)."""
    cfg = ARConfig(V=model.V, T=model.T, adv_mode="reward", baseline=baseline)
    return advantages(model, cfg, batch)
