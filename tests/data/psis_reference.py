"""Independent reference for ``vespo_theory.diagnostics.psis_khat``: the PSIS k-hat of a fixed
seeded input, by a direct transcription of the published algorithm in pure Python (``math`` only;
no NumPy, nothing shared with the package).

Sources:

* Vehtari, Simpson, Gelman, Yao, Gabry, "Pareto smoothed importance sampling", arXiv 1507.02646
  (JMLR 25(72), 2024), §3 and Appendix: tail of M = ceil(min(0.2 S, 3 sqrt(S))) largest weights,
  exceedances over the (M+1)-th largest, generalized Pareto fit by Zhang & Stephens (2009),
  the shape shrunk towards 0.5 by a weak prior worth 10 observations:
  k <- (M k + 10 * 0.5)/(M + 10).
* Zhang & Stephens, "A new and efficient estimation method for the generalized Pareto
  distribution", Technometrics 51(3), 2009: profile parameter theta = -k/sigma on the grid
  theta_j = 1/x_(n) + (1 - sqrt(m/(j - 1/2))) / (3 x_(floor(n/4 + 1/2))), j = 1..m,
  m = 30 + floor(sqrt(n)); posterior mean of theta with weights proportional to the profile
  likelihood exp(n l(theta)), l(theta) = log(-theta/k(theta)) - k(theta) - 1,
  k(theta) = mean(log(1 - theta x)); then k = mean(log(1 - theta_hat x)).

This follows the R package ``loo`` (``gpdfit``, ``psis_smooth_tail``, ``do_psis_i``) line by
line: weights w_j = exp(l_j - logsumexp(l)) over the whole grid (the package instead drops grid
points of weight < 10 eps, a change of < 1e-14 in k), exceedances exp(x) - exp(cutoff) (the
package uses expm1 for accuracy).

Run ``python tests/data/psis_reference.py`` to print the values pinned in
``tests/test_diagnostics.py::test_khat_pinned_reference``.
"""

from __future__ import annotations

import math
import random

SEED = 20260210
N = 2000
XI = 0.7  # tail index of the generating law


def reference_log_weights(seed: int = SEED, n: int = N, xi: float = XI) -> list[float]:
    """log of n Pareto(alpha = 1/xi) draws (GPD tail index xi) from Python's seeded Mersenne
    Twister (``random.paretovariate``: stable across Python versions)."""
    rng = random.Random(seed)
    return [math.log(rng.paretovariate(1.0 / xi)) for _ in range(n)]


def _logsumexp(v: list[float]) -> float:
    m = max(v)
    return m + math.log(math.fsum(math.exp(t - m) for t in v))


def gpdfit(x: list[float], wip: bool = True) -> tuple[float, float]:
    """loo::gpdfit for sorted exceedances ``x`` > 0: (k, sigma)."""
    n = len(x)
    prior = 3.0
    m = 30 + int(math.floor(math.sqrt(n)))
    xstar = x[int(math.floor(n / 4 + 0.5)) - 1]  # R's 1-based x[floor(N/4 + 0.5)]
    theta = [
        1.0 / x[-1] + (1.0 - math.sqrt(m / (j - 0.5))) / prior / xstar for j in range(1, m + 1)
    ]

    def k_of(t: float) -> float:
        return math.fsum(math.log1p(-t * xi) for xi in x) / n

    l_theta = []
    for t in theta:
        kk = k_of(t)
        l_theta.append(n * (math.log(-t / kk) - kk - 1.0))
    lse = _logsumexp(l_theta)
    w = [math.exp(lt - lse) for lt in l_theta]
    theta_hat = math.fsum(t * wt for t, wt in zip(theta, w))
    k = k_of(theta_hat)
    sigma = -k / theta_hat
    if wip:
        k = (k * n + 0.5 * 10) / (n + 10)  # loo::adjust_k_wip
    return k, sigma


def psis_khat_reference(log_ratios: list[float], wip: bool = True) -> float:
    """loo::do_psis_i's k-hat for r_eff = 1."""
    s = len(log_ratios)
    mx = max(log_ratios)
    lw = sorted(v - mx for v in log_ratios)
    tail_len = int(math.ceil(min(0.2 * s, 3.0 * math.sqrt(s))))
    tail = lw[s - tail_len :]
    cutoff = lw[s - tail_len - 1]
    exceed = sorted(math.exp(v) - math.exp(cutoff) for v in tail)
    return gpdfit(exceed, wip=wip)[0]


if __name__ == "__main__":
    lw = reference_log_weights()
    print(f"k-hat with the weak prior (PSIS):  {psis_khat_reference(lw)!r}")
    print(f"k-hat without the prior (raw GPD): {psis_khat_reference(lw, wip=False)!r}")
