r"""Exact law of log W for context-free policies at any length, by FFT convolution on a lattice.

For a context-free model (one token distribution mu, target pi, token log-ratio
``l_v = log pi_v - log mu_v``) and a fixed length T, ``log W = sum_t l_{y_t}`` is a sum of T
i.i.d. terms. When every ``l_v = c0 + delta m_v`` with integer ``m_v`` (the "lattice" drift
model builds exactly that), log W lives on the lattice ``T c0 + delta Z`` and its law is the
T-fold convolution of the token law, computed here as ``irfft(rfft(q)^T)`` with no aliasing (the
FFT length covers the whole support ``T (max m - min m) + 1``).

Numerics (the error statements, each tested in tests/test_lattice.py):

* FFT round-off. With ``|rfft(q)| <= 1``, the T-th power has absolute error <= T eps per
  frequency and the inverse FFT adds about 2 eps log2(L): each probability is off by at most
  ``eps_p = (T + 2 log2 L) eps`` (eps = 2.2e-16). Negative entries (pure round-off) are clipped
  to 0. An expectation E[f] then has absolute error <= ``eps_p * sum_x |f(x)|`` (reported as
  ``abs_err``); it is tiny for bounded f (VESPO, TIS, MIS) but useless for f ~ W^2 in the far
  tail, where the probabilities are below eps_p.
* Tails: exponential tilting. ``p_mu(x) = p_q(x) e^{-a x} Z_a^T`` with the tilted token law
  ``q_v ∝ mu_v e^{a l_v}`` and ``Z_a = sum_v mu_v e^{a l_v}``: E_mu[f] = Z_a^T sum_x p_q(x)
  e^{-a x} f(x). Each expectation is computed with the tilt a in {0, 1, 2} whose error bound is
  smallest (a = 1 makes IS's E[W] the exact sum of a probability vector, a = 2 does that for
  E[W^2]).
* Discretisation (token log-ratios not on a lattice): each ``l_v`` is rounded to the nearest
  point of ``c0 + delta Z`` (``delta = range / (grid - 1)``), so |log W - log W'| <= h = T
  max_v |l_v - l'_v| <= T delta / 2 along every sequence. The reported bound on E[f] is then
  ``E'[max_{|u| <= h} |f(x + u) - f(x)|]`` (the max taken over 33 points of the window), added
  to ``abs_err`` and reported alone as ``disc_err``. The gradient statistics get the
  Cauchy-Schwarz version of the same coupling (see ``lattice_results``). These bounds grow with
  T; at T in the thousands use token log-ratios on a lattice (the "lattice" drift model).

With a constant advantage A (the coefficient must depend on y only through log W and T), the
gradient statistics follow from two- and three-fold shifted expectations (see
:func:`lattice_results`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft
from scipy.signal import fftconvolve
from scipy.special import logsumexp

from simulations.config import DEFAULT_GRID_POINTS, resolve_rules
from simulations.estimators import bound_checks, khat_or_none, no_nan
from vespo_theory.bounds import exp_or_inf, phi_max
from vespo_theory.diagnostics import khat_threshold
from vespo_theory.resources import check_memory

__all__ = [
    "TokenLattice",
    "token_lattice",
    "fold",
    "LatticeLaw",
    "lattice_results",
    "lattice_bytes",
    "seq_only_names",
]

EPS = float(np.finfo(np.float64).eps)
N_KHAT = 10_000


def seq_only_names() -> str:
    """The rules the lattice covers (``seq_only``), from the registry, for error messages."""
    from vespo_theory.rules import available, get_rule

    return ", ".join(n for n in available() if get_rule(n).seq_only)


@dataclass(frozen=True)
class TokenLattice:
    """One token's law on a lattice: ``l_v ≈ c0 + delta m_v``, ``mu`` the behaviour probs."""

    log_mu: np.ndarray
    log_pi: np.ndarray
    l: np.ndarray  # exact token log-ratios
    m: np.ndarray  # lattice indices (int64)
    c0: float
    delta: float
    max_err: float  # max_v |l_v - c0 - delta m_v|
    exact: bool

    @property
    def mmin(self) -> int:
        return int(self.m.min())

    @property
    def width(self) -> int:
        return int(self.m.max() - self.m.min() + 1)


def token_lattice(
    log_mu: np.ndarray,
    log_pi: np.ndarray,
    *,
    delta: float | None = None,
    grid: int = DEFAULT_GRID_POINTS,
) -> TokenLattice:
    """Put the token log-ratios on a lattice.

    ``delta`` (e.g. ``N * drift_size`` of the lattice drift model) is tried first, then the
    smallest gap between distinct l_v (two distinct values are always on a lattice): if every
    ``l_v`` is within ``1e-9 delta`` of ``l_0 + delta Z`` (float rounding of the logits), the
    lattice is exact (``max_err`` then holds that rounding, ~1e-15). Otherwise the range of l is
    split into ``grid - 1`` steps and each l_v rounded (``max_err <= delta / 2``).
    """
    log_mu = np.asarray(log_mu, dtype=np.float64).ravel()
    log_pi = np.asarray(log_pi, dtype=np.float64).ravel()
    if log_mu.shape != log_pi.shape:
        raise ValueError(f"log_mu {log_mu.shape} and log_pi {log_pi.shape} must match")
    if not (np.isfinite(log_mu).all() and np.isfinite(log_pi).all()):
        raise ValueError(
            "the lattice method needs mu > 0 and pi > 0 on every token (finite token log-ratios)"
        )
    l = log_pi - log_mu
    if delta is not None and delta > 0:
        c0 = float(l[0])
        m = np.rint((l - c0) / delta)
        err = float(np.max(np.abs(l - c0 - delta * m)))
        if err <= 1e-9 * delta:
            return TokenLattice(log_mu, log_pi, l, m.astype(np.int64), c0, delta, err, True)
    lo, hi = float(l.min()), float(l.max())
    distinct = np.unique(l)
    if distinct.size >= 2:  # the smallest gap between distinct values may be a common step
        gap = float(np.diff(distinct).min())
        m = np.rint((l - lo) / gap)
        err = float(np.max(np.abs(l - lo - gap * m)))
        if err <= 1e-9 * gap and m.max() < 4 * grid:
            return TokenLattice(log_mu, log_pi, l, m.astype(np.int64), lo, gap, err, True)
    if hi - lo <= 1e-300:
        return TokenLattice(log_mu, log_pi, l, np.zeros(l.size, np.int64), lo, 1.0, 0.0, True)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    step = (hi - lo) / (grid - 1)
    m = np.rint((l - lo) / step)
    err = float(np.max(np.abs(l - lo - step * m)))
    return TokenLattice(log_mu, log_pi, l, m.astype(np.int64), lo, step, err, False)


def fold(q: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The n-fold convolution of a probability vector ``q`` (sum 1) and its per-entry error.

    Returns ``(p, eps_p)``: p has length ``n (len(q) - 1) + 1``, tiny negatives clipped to 0;
    eps_p = (n + 2 log2 L) eps bounds the absolute error of every entry (module docstring).
    """
    q = np.asarray(q, dtype=np.float64)
    if n == 0:
        return np.ones(1), 0.0
    if q.size == 1:
        return np.ones(1) * q[0] ** n, n * EPS
    size = n * (q.size - 1) + 1
    L = sp_fft.next_fast_len(size, real=True)
    p = sp_fft.irfft(sp_fft.rfft(q, L) ** n, L)[:size]
    np.maximum(p, 0.0, out=p)
    return p, (n + 2 * math.log2(L)) * EPS


class LatticeLaw:
    """The laws of S_n = sum of n token log-ratios (n = T, T-1, T-2) under the tilts a = 0, 1, 2."""

    def __init__(self, lat: TokenLattice):
        self.lat = lat
        self._cache: dict = {}

    def log_z(self, a: float) -> float:
        """log Z_a = log sum_v mu_v e^{a l_v} (exact l, not the rounded one)."""
        return float(logsumexp(self.lat.log_mu + a * self.lat.l))

    def _q(self, a: float) -> np.ndarray:
        lat = self.lat
        lr = lat.c0 + lat.delta * lat.m  # the lattice values actually used
        lq = lat.log_mu + a * lr
        q = np.bincount(lat.m - lat.mmin, weights=np.exp(lq - lq.max()), minlength=lat.width)
        return q / q.sum()

    def _log_z_lattice(self, a: float) -> float:
        lat = self.lat
        return float(logsumexp(lat.log_mu + a * (lat.c0 + lat.delta * lat.m)))

    def pmf(self, n: int, a: float = 0.0) -> tuple[np.ndarray, float]:
        key = (n, a)
        if key not in self._cache:
            self._cache[key] = fold(self._q(a), n)
        return self._cache[key]

    def grid(self, n_total: int, length: int) -> np.ndarray:
        """The log W values of lattice indices 0..length-1 for a sum of ``n_total`` tokens."""
        lat = self.lat
        return n_total * lat.c0 + lat.delta * (n_total * lat.mmin + np.arange(length))

    def expect(self, log_f, n: int, extra: int, a: float) -> tuple[np.ndarray, np.ndarray]:
        """E_mu[f(S_n + s_k)] for every shift s_k = extra c0 + delta (extra mmin + k),
        k = 0..extra (width - 1): the shifts of ``extra`` further tokens' log-ratios.

        ``log_f(x)`` returns ``(log|f(x)|, sign)``. Returns ``(values, abs_err)`` per k.
        """
        lat = self.lat
        p, eps_p = self.pmf(n, a)
        n_shift = extra * (lat.width - 1) + 1
        y = self.grid(n + extra, p.size + n_shift - 1)
        lf, sign = log_f(y)
        # overflow / inf * 0 only make this tilt's result non-finite; _best then rejects it
        with np.errstate(over="ignore", invalid="ignore"):
            g = sign * np.exp(lf - a * y)
            return self._correlate(g, p, eps_p, n, extra, a, n_shift)

    def _correlate(self, g, p, eps_p, n, extra, a, n_shift):
        lat = self.lat
        if not np.isfinite(g).all():
            return np.full(n_shift, np.nan), np.full(n_shift, np.inf)
        if n_shift * p.size <= 30_000_000:
            win = sliding_window_view(g, p.size)  # [n_shift, len(p)]
            H = win @ p
            absg = np.abs(win).sum(axis=1)
            corr_err = 0.0
        else:
            H = fftconvolve(g, p[::-1], mode="valid")
            cs = np.concatenate([[0.0], np.cumsum(np.abs(g))])
            absg = cs[p.size :] - cs[:n_shift]
            corr_err = 4 * math.log2(g.size + p.size) * EPS * float(np.abs(g).max())
        log_scale = n * self._log_z_lattice(a) + a * (
            extra * lat.c0 + lat.delta * (extra * lat.mmin + np.arange(n_shift))
        )
        scale = np.exp(log_scale)
        return scale * H, scale * (eps_p * absg + corr_err + 4 * p.size * EPS * np.abs(H))


def _log_abs(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore"):
        return np.log(np.abs(c)), np.sign(c)


def _best(law: LatticeLaw, log_f, n: int, extra: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``expect`` with the tilt (0, 1 or 2) of smallest error bound at shift 0."""
    best = None
    for a in (0.0, 1.0, 2.0):
        v, e = law.expect(log_f, n, extra, a)
        if not (np.isfinite(e).all() and np.isfinite(v).all()):
            continue
        score = float(e.max())
        if best is None or score < best[3]:
            best = (v, e, a, score)
    if best is None:
        raise ValueError("the lattice expectation overflows under every tilt; lower T or the drift")
    return best[0], best[1], best[2]


def _disc_err(law: LatticeLaw, fn, T: int, power: int = 1) -> float:
    """E'[osc_f(x)^power], osc_f(x) = max_{|u|<=h} |f(x+u) - f(x)|, h = T max_err (33-point
    window), under the lattice law (tilt 0); 0 for an exact lattice."""
    lat = law.lat
    if lat.exact:
        return 0.0
    h = T * lat.max_err
    p, _ = law.pmf(T, 0.0)
    x = law.grid(T, p.size)
    keep = p > 0
    x, p = x[keep], p[keep]
    f0 = fn(x)
    osc = np.zeros_like(x)
    for u in np.linspace(-h, h, 33):
        osc = np.maximum(osc, np.abs(fn(x + u) - f0))
    return float(p @ osc**power)


def lattice_results(
    log_mu: np.ndarray,
    log_pi: np.ndarray,
    T: int,
    rules,
    *,
    adv: float = 1.0,
    delta: float | None = None,
    grid_points: int = DEFAULT_GRID_POINTS,
    seed: int = 0,
    progress=None,
) -> tuple[list[dict], dict]:
    """Exact per-rule statistics for a context-free model of length T with constant advantage.

    With A constant the true gradient grad E_pi[A] is 0, so ``bias_norm`` = ||E e|| and
    ``cosine`` is None. Every seq-only rule is supported (its ``seq_coefficient``). With
    H_j(s) = E[c(S_{T-j} + s)^p] (p = 1 or 2):

    * E e_v = A T (mu_v H_1(l_v) - pi_v sum_u mu_u H_1(l_u))               (p = 1)
    * E[c^2 ||g||^2] = sum_v [T mu_v H_1(l_v) + T(T-1) mu_v^2 H_2(2 l_v)]
      - 2 T^2 sum_v pi_v mu_v H_1(l_v) + T^2 ||pi||^2 H_0(0)               (p = 2)
    * var_trace = A^2 E[c^2 ||g||^2] - ||E e||^2.

    Returns ``(records, summary)``; the summary holds E_W (claim M1), log_E_W2 (closed form
    T log sum_v mu_v e^{2 l_v}, claim M2), ess_W, khat_W and the lattice's error statements.
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    T = int(T)
    rules = resolve_rules(rules)  # Rule objects pass through; names (library callers) resolve here
    lat = token_lattice(log_mu, log_pi, delta=delta, grid=grid_points)
    check_memory(
        lattice_bytes(T, lat.width),
        f"the lattice law of log W at T = {T} ({T * (lat.width - 1) + 1} points)",
        "lower --T or --grid-points",
    )
    law = LatticeLaw(lat)
    mu = np.exp(lat.log_mu)
    pi = np.exp(lat.log_pi)
    A = float(adv)
    sign = np.ones(1) if A >= 0 else -np.ones(1)
    kv = lat.m - lat.mmin  # shift index of each token

    # raw-weight summary (closed forms from the exact l; M1 and M2)
    log_e_w = T * law.log_z(1.0)
    log_e_w2 = T * law.log_z(2.0)
    p0, eps0 = law.pmf(T, 0.0)
    x0 = law.grid(T, p0.size)
    rng = np.random.default_rng(seed)
    draws = rng.choice(p0.size, size=N_KHAT, p=p0 / p0.sum())
    summary = {
        "E_W": math.exp(log_e_w),
        "log_E_W2": log_e_w2,
        "E_W2": exp_or_inf(log_e_w2),
        "ess_W": math.exp(2 * log_e_w - log_e_w2),
        "khat_W": khat_or_none(x0[draws]),
        "khat_W_thresh": None,
        "lattice_exact": lat.exact,
        "lattice_delta": lat.delta,
        "lattice_max_token_err": lat.max_err,
        "lattice_points": int(p0.size),
        "fft_entry_err": eps0,
    }
    if summary["khat_W"] is not None:  # fitted to N_KHAT draws of the exact (lattice) law
        summary["khat_W_thresh"] = khat_threshold(N_KHAT)
    e_g2 = A * A * (T * (1 - 2 * mu @ pi + pi @ pi) + T * (T - 1) * float((mu - pi) @ (mu - pi)))

    records = []
    for rule in rules:
        name = rule.name
        if not rule.seq_only:
            raise ValueError(
                f"rule {name} is token-level: the lattice method only covers rules whose "
                f"coefficient depends on log W, sign(A) and T (seq_only rules: "
                f"{seq_only_names()}); use enumeration or --mc"
            )

        def c_of(x, rule=rule):
            return np.asarray(
                rule.seq_coefficient(x, np.broadcast_to(sign, x.shape), T), dtype=np.float64
            )

        def log_c(x):
            return _log_abs(c_of(x))

        def log_c2(x):
            lc, _ = _log_abs(c_of(x))
            return 2 * lc, np.ones_like(x)

        E_phi, err1, _ = _best(law, log_c, T, 0)
        E_phi2, err2, _ = _best(law, log_c2, T, 0)
        E_phi, E_phi2, err1, err2 = (
            float(E_phi[0]),
            float(E_phi2[0]),
            float(err1[0]),
            float(err2[0]),
        )
        d1 = _disc_err(law, c_of, T)
        d2 = _disc_err(law, lambda x: c_of(x) ** 2, T)
        H1, eH1, _ = _best(law, log_c, T - 1, 1)
        H1c2, eH1c2, _ = _best(law, log_c2, T - 1, 1)
        h1, eh1 = H1[kv], eH1[kv]
        mean = A * T * (mu * h1 - pi * float(mu @ h1))
        mean_err = abs(A) * T * (mu * eh1 + pi * float(mu @ eh1))
        h1c2, eh1c2 = H1c2[kv], eH1c2[kv]
        second = T * float(mu @ h1c2) - 2 * T * T * float((pi * mu) @ h1c2)
        second += T * T * float(pi @ pi) * E_phi2
        second_err = T * float(mu @ eh1c2) + 2 * T * T * float((pi * mu) @ eh1c2)
        second_err += T * T * float(pi @ pi) * err2
        if T >= 2:
            H2, eH2, _ = _best(law, log_c2, T - 2, 2)
            second += T * (T - 1) * float((mu * mu) @ H2[2 * kv])
            second_err += T * (T - 1) * float((mu * mu) @ eH2[2 * kv])
        m2 = float(mean @ mean)
        var_trace = A * A * second - m2
        mean_err_norm = float(np.linalg.norm(mean_err))
        if not lat.exact:
            # Discretisation moves log W by at most h along every sequence (same tokens, same
            # score g): ||E e - E e'|| <= |A| E[osc_c ||g||] <= |A| sqrt(E'[osc_c^2] E||g||^2)
            # (Cauchy-Schwarz), and |E[c^2 ||g||^2] - E'[.]| <= E'[osc_{c^2}] max ||g||^2
            # with max ||g||^2 <= 2 T^2 (||e_y - pi||^2 <= 2 per token).
            mean_err_norm += abs(A) * math.sqrt(_disc_err(law, c_of, T, 2) * e_g2 / (A * A))
            second_err += 2.0 * T * T * d2
        var_err = A * A * second_err + 2 * float(np.linalg.norm(mean)) * mean_err_norm
        var_err += mean_err_norm**2
        with np.errstate(divide="ignore"):
            log_c_draws = np.log(np.abs(c_of(x0[draws])))
        rec = {
            "rule": name,
            "method": "lattice",
            "bias_norm": float(np.linalg.norm(mean)),
            "cosine": None,
            "var_trace": var_trace,
            "E_phi": E_phi,
            "E_phi2": E_phi2,
            "ess": E_phi * E_phi / E_phi2 if E_phi2 > 0 else 0.0,
            "khat": khat_or_none(log_c_draws),
            "khat_thresh": None,
            "bound_M2": None,
            "bound_holds": None,
            "abs_err": {
                "E_phi": err1 + d1,
                "E_phi2": err2 + d2,
                "mean": mean_err_norm,
                "var_trace": var_err,
            },
            "disc_err": {"E_phi": d1, "E_phi2": d2},  # also inside abs_err
            "mean": mean,
        }
        if rec["khat"] is not None:
            rec["khat_thresh"] = khat_threshold(N_KHAT)
        if name == "vespo":
            p = rule.params
            M = phi_max(p.k_pos, p.lam_pos) if A >= 0 else phi_max(p.k_neg, p.lam_neg)
            support = p0 > eps0
            b1 = float(c_of(x0[support]).max())
            checks = bound_checks(
                M, b1, E_phi, E_phi2, var_trace, e_g2, err_phi=err1, err_phi2=err2, err_var=var_err
            )
            rec["bound_M2"] = M * M
            rec["bound_holds"] = all(c["holds"] for c in checks.values())
            rec["bounds"] = checks
        no_nan(rec, np.array([A]))
        records.append(rec)
        if progress is not None:
            progress(name)
    summary["E_g2"] = e_g2
    return records, summary


def lattice_bytes(T: int, width: int) -> int:
    """Peak bytes of :func:`lattice_results` for length T and a token lattice of ``width``
    points. Arrays of the law's size ``L = T (width - 1) + 1`` (8 bytes each): up to 9 cached
    folds (n = T, T-1, T-2 under tilts 0, 1, 2), the FFT's spectrum and its power (complex, half
    length: one L each) and the inverse, the grid, log f, sign and g of one expectation, and
    _disc_err's x, p, f(x), osc and f(x + u): 21 in all. Plus ``|window|`` of the direct
    correlation, [n_shift, L] with n_shift = extra (width - 1) + 1 for extra = 0, 1, 2, made
    when it has at most 30M entries (else the FFT path has no such array), and 1 MiB for the
    k-hat draws (10000 of them, with their index and weight arrays). Checked against
    tracemalloc's peak in tests/test_memory.py."""
    size = T * (width - 1) + 1
    windows = [(e * (width - 1) + 1) * size for e in (0, 1, 2)]
    window = max(w for w in windows if w <= 30_000_000) if windows[0] <= 30_000_000 else 0
    return 8 * (21 * size + window) + 2**20
