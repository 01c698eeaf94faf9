"""vespo-theory: verify the theory of VESPO (arXiv 2602.10693) and test it against simulation.

Layers: ``vespo_theory`` (symbols, derivations, bounds, numeric kernels, losses, diagnostics) is
imported by ``simulations`` (Monte Carlo, small LMs), which is imported by ``paper_figures``.
This package imports without torch or matplotlib.
"""

from vespo_theory.bounds import kernel_bound, phi_max, variance_factor
from vespo_theory.kernels import log_phi, log_phi_signed, phi, phi_signed
from vespo_theory.params import KernelParams, VespoParams

__version__ = "0.1.0"

__all__ = [
    "KernelParams",
    "VespoParams",
    "kernel_bound",
    "log_phi",
    "log_phi_signed",
    "phi",
    "phi_max",
    "phi_signed",
    "variance_factor",
]
