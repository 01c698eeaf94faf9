"""Small shared helpers of the theory figures: the lattice-drift model of the length story and
E_mu[phi(W) W] (for the P4 bound K E_mu[phi W]) from the exact simulators.

No formula of its own: the models are :func:`simulations.tabular.make_ar_model`, the laws of
log W are :class:`simulations.lattice.LatticeLaw` (FFT convolution, exact on a lattice) or the
enumeration :func:`simulations.tabular.enumerate_sequences`, and phi is
:func:`vespo_theory.kernels.log_phi`.
"""

from __future__ import annotations

import numpy as np


def ar_config(**fields):
    """An :class:`simulations.config.ARConfig` (validated there: a bad field names itself)."""
    from simulations.config import ARConfig

    return ARConfig(**fields)


def kernel_for_sign(adv: float) -> tuple[float, float]:
    """(k, lam) of the registry's VESPO for the sign of A ((2, 3) for A >= 0, (3, 2) below)."""
    from vespo_theory.rules import get_rule

    p = get_rule("vespo").params
    return (p.k_pos, p.lam_pos) if adv >= 0 else (p.k_neg, p.lam_neg)


def e_phi_w(cfg, k: float, lam: float) -> tuple[float, float, str]:
    """E_mu[phi(W) W] (= E_pi[phi], the P4 bound's expectation) with its absolute error bound
    and the method: enumeration when V^T fits (exact up to float64 summation: error bound
    n eps times the sum), else the lattice law of log W (context-free, fixed length) with the
    tilt 0, 1 or 2 of smallest error bound (the lattice's FFT error statement, ``abs_err``)."""
    from simulations.config import DEFAULT_MAX_SEQUENCES
    from simulations.lattice import LatticeLaw, token_lattice
    from simulations.tabular import enumerate_sequences, fits_enumeration, make_ar_model
    from vespo_theory.kernels import log_phi

    model = make_ar_model(cfg)

    def log_f(x):
        return np.asarray(log_phi(x, k, lam), dtype=np.float64) + x

    if fits_enumeration(model.V, model.T, DEFAULT_MAX_SEQUENCES):
        batch = enumerate_sequences(model)
        terms = batch.weight * np.exp(log_f(batch.seq_log_w))
        value = float(terms.sum())
        return value, batch.n * np.finfo(float).eps * value, "enumeration"
    if model.S != 1 or model.end_token is not None:
        raise ValueError(
            "cfg: E[phi W] needs enumeration (V^T too large) or a context-free "
            "fixed-length model (the lattice)"
        )
    law = LatticeLaw(token_lattice(model.log_behaviour[0], model.log_pi[0],
                                   delta=model.lattice_step))  # fmt: skip
    if not law.lat.exact:
        raise ValueError("cfg: the token log-ratios are not on a lattice; use the lattice drift")
    best = None
    for a in (0.0, 1.0, 2.0):
        v, e = law.expect(lambda x: (log_f(x), np.ones_like(x)), model.T, 0, a)
        if np.isfinite(v[0]) and np.isfinite(e[0]) and (best is None or e[0] < best[1]):
            best = (float(v[0]), float(e[0]))
    if best is None:
        raise ValueError("cfg: E[phi W] overflows under every tilt of the lattice")
    return best[0], best[1], "lattice"


__all__ = ["ar_config", "e_phi_w", "kernel_for_sign"]
