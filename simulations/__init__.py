"""Simulators with exact ground truth for the reshaping rules of ``vespo_theory.rules``.

Modules:

* ``runners``     ``simulate_ar``: one AR setting, every rule, best exact method or Monte Carlo.
* ``config``      frozen dataclasses ``BanditConfig`` and ``ARConfig`` (the CLI's fields).
* ``bandits``     K-armed bandits: exact mean and covariance of every rule's one-sample estimate.
* ``tabular``     finite-state autoregressive models (context-free, Markov, prefix-hashed),
                  staleness N and engine mismatch; exact enumeration of all V^T sequences.
* ``lattice``     context-free models at any length: the law of log W by FFT convolution.
* ``montecarlo``  vectorised sampling of sequences (alias method) with standard errors.
* ``estimators``  per-rule bias, covariance trace, E[phi], E[phi^2], ESS, k-hat, bound checks.
* ``sweep``       the resumable grid runner ``run_grid`` and the ``CELL_KINDS`` registry.
* ``lm``, ``falsify``  subpackages of other issues (small language models; claim falsification).

``simulations`` imports ``vespo_theory`` and never matplotlib; see docs/simulations.md.
"""
