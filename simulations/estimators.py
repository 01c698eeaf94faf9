r"""Per-rule statistics of the one-sequence gradient estimate, exact or Monte Carlo.

For a rule with coefficient ``c[y, t]`` (from :func:`vespo_theory.rules.get_rule`) the estimate
from one sequence y ~ b (the behaviour policy) is

.. math:: e(y) = A(y) \sum_t c_t(y)\, \nabla_\theta \log \pi_\theta(y_t \mid s_t),

a vector over pi's logits table (``dim = S V``). Given a :class:`~simulations.tabular.SequenceBatch`
with exact probabilities (enumeration) or an i.i.d. sample (Monte Carlo), :func:`rule_results`
returns one record per rule with the keys of ``vespo simulate --json``:

* ``bias_norm`` = ||E e - grad J||, ``cosine`` = cos(E e, grad J) (None when grad J = 0);
* ``var_trace`` = trace Cov(e) = E||e||^2 - ||E e||^2;
* ``E_phi``, ``E_phi2``: E and E[.^2] of the rule's **sequence coefficient**
  ``cbar(y) = (1/T_y) sum_t c_t(y)`` (the per-token coefficient averaged over the response). For
  sequence rules this is the coefficient itself (phi(W) for VESPO, W for IS, ``s/T`` for GSPO);
  for token rules it is their mean token coefficient;
* ``ess`` = (E cbar)^2 / E[cbar^2], the per-sample Kish ESS fraction of the rule's weights (the
  Kish ESS of n draws is about n times this); for IS it is the raw weights' 1/E[W^2]. Computed
  in log space (log cbar; log W itself for IS, log phi for VESPO), so weights that underflow
  float64 (log W ~ -1e6 at V = 32000, T = 1e6) still give the right ratio, not 0;
* ``khat`` = PSIS k-hat of the rule's sequence coefficients (of W for IS), from the Monte Carlo
  sample or, for the exact methods, from 10000 seeded draws of the exact distribution;
  ``khat_thresh`` = its sample-size dependent threshold min(1 - 1/log10 S, 0.7)
  (``vespo_theory.diagnostics.khat_threshold``; Vehtari et al. 2024, arXiv 1507.02646 §3.2.4,
  Eq. 13) for the S draws it was fitted to (S = n for Monte Carlo, 10000 for the exact
  methods, where it is the cap 0.7); None when ``khat`` is None. k-hat above it (or above 0.7)
  marks the rule's weights as too heavy-tailed for S draws;
* ``bound_M2``, ``bound_holds`` (VESPO only, None for other rules): M^2 with M = the largest
  sup phi over the sign classes present, and whether B1 (cbar <= M everywhere), B2
  (E phi^2 <= M E phi <= M^2) and B3 (var_trace <= M^2 E[A^2 ||g||^2]) all hold; the three
  observed-vs-bound pairs are in ``bounds``.

Monte Carlo records add ``se`` (standard errors: sd/sqrt(n); for ``bias_norm`` the RMS of the
error of the mean vector, sqrt(var_trace / n), a bound on the error of its norm).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from simulations.tabular import BATCH_BYTES_PER_ENTRY, ARModel, SequenceBatch
from vespo_theory.bounds import exp_or_inf, phi_max
from vespo_theory.diagnostics import khat_threshold, kish_ess_from_log_weights, psis_khat
from vespo_theory.kernels import log_phi_signed
from vespo_theory.resources import check_memory
from vespo_theory.rules import Rule

__all__ = [
    "bound_checks",
    "score_moments",
    "rule_results",
    "weight_summary",
    "true_gradient_from_batch",
    "log_ess_fraction",
    "rule_results_bytes",
    "khat_or_none",
    "khat_with_threshold",
]

RESULT_KEYS = (
    "rule",
    "method",
    "bias_norm",
    "cosine",
    "var_trace",
    "E_phi",
    "E_phi2",
    "ess",
    "khat",
    "khat_thresh",
    "bound_M2",
    "bound_holds",
)
N_KHAT = 10_000
# Relative slack of the bound checks: sums of up to 1e6 float64 terms carry a relative
# rounding error below n * eps ~ 2e-10; 1e-9 covers it, and nothing larger is forgiven.
_BOUND_RTOL = 1e-9


# Per-rule working arrays of rule_results, [n, T] float64 each: the coefficient, the rule's own
# temporaries while computing it (its masked log-ratios, cumulative sums, the sequence sum
# broadcast, the exp, the clip masks), coef * adv in score_moments and the float mask of
# E||g||^2. tracemalloc saw up to 80 bytes per entry beyond the batch (every rule, enumeration at
# V = 4, T = 8 and Monte Carlo at n = 20000, T = 32): 11 arrays, 88 bytes per entry.
RULE_BYTES_PER_ENTRY = 88


def rule_results_bytes(n: int, T: int) -> int:
    """Peak bytes :func:`rule_results` allocates beyond the batch itself (one rule at a time)."""
    return n * T * RULE_BYTES_PER_ENTRY + 64 * n


def log_ess_fraction(log_c: np.ndarray, w: np.ndarray | None) -> float:
    """(E c)^2 / E[c^2] from log|c|, in log space.

    ``w`` None: an i.i.d. sample, the Kish ESS / n (``vespo_theory.diagnostics``'
    ``kish_ess_from_log_weights``). ``w`` given: exact probabilities, the population ratio
    exp(2 LSE(log w + log c) - LSE(log w + 2 log c)) (not the Kish ESS of the products w c,
    which would square the probabilities). 0 when every c is 0.
    """
    if w is None:
        return kish_ess_from_log_weights(log_c) / log_c.size
    with np.errstate(divide="ignore"):
        lw = np.log(w)
    if np.isneginf(log_c[w > 0]).all():
        return 0.0
    return float(np.exp(2 * logsumexp(lw + log_c) - logsumexp(lw + 2 * log_c)))


def _log_cbar(rule: Rule, cbar: np.ndarray, seq_log_w: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """log |cbar| computed in log space where the rule's coefficient underflows: log W for IS,
    log phi(W) for VESPO (seq_only rules: cbar is the coefficient itself); log|cbar| otherwise
    (bounded rules: clipped ratios, their values do not underflow)."""
    if rule.name == "is":
        return seq_log_w.copy()
    if rule.name == "vespo":
        return np.asarray(log_phi_signed(seq_log_w, adv, rule.params), dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(cbar))


def _weights(batch: SequenceBatch) -> np.ndarray:
    return np.full(batch.n, 1.0 / batch.n) if batch.weight is None else batch.weight


def _estimates_chunk(model: ARModel, states, tokens, coef_adv) -> np.ndarray:
    """e_i = sum_t coef_adv[i, t] (onehot(s_t, y_t) - pi(. | s_t)) for a chunk of rows, [n, S*V]."""
    n = states.shape[0]
    S, V = model.S, model.V
    row = np.arange(n, dtype=np.int64)[:, None]
    counts = np.bincount(
        ((row * S + states) * V + tokens).ravel(), weights=coef_adv.ravel(), minlength=n * S * V
    ).reshape(n, S, V)
    per_state = np.bincount(
        (row * S + states).ravel(), weights=coef_adv.ravel(), minlength=n * S
    ).reshape(n, S)
    counts -= per_state[:, :, None] * model.pi[None, :, :]
    return counts.reshape(n, S * V)


def score_moments(
    model: ARModel,
    batch: SequenceBatch,
    coef: np.ndarray,
    adv: np.ndarray,
    *,
    center: np.ndarray | None = None,
    full_cov: bool = False,
    chunk_elems: int = 1 << 22,
) -> dict:
    """Weighted moments of the per-sequence estimates e_i (see module docstring).

    Returns ``mean`` [dim], ``e2`` = E||e||^2, ``comp2`` = E[e_j^2] [dim], ``cov`` [dim, dim]
    when ``full_cov``, and, when ``center`` is given, ``q`` = the per-row ||e_i - center||^2.
    """
    # overflow of huge advantages gives inf / NaN here, refused by no_nan in rule_results
    with np.errstate(over="ignore", invalid="ignore"):
        return _score_moments(model, batch, coef, adv, center, full_cov, chunk_elems)


def _score_moments(model, batch, coef, adv, center, full_cov, chunk_elems) -> dict:
    w = _weights(batch)
    dim = model.dim
    step = max(1, chunk_elems // max(dim, 1))
    mean = np.zeros(dim)
    comp2 = np.zeros(dim)
    cov = np.zeros((dim, dim)) if full_cov else None
    q = np.empty(batch.n) if center is not None else None
    coef_adv = coef * adv[:, None]
    for lo in range(0, batch.n, step):
        hi = min(batch.n, lo + step)
        e = _estimates_chunk(model, batch.states[lo:hi], batch.tokens[lo:hi], coef_adv[lo:hi])
        wc = w[lo:hi]
        mean += wc @ e
        comp2 += wc @ (e * e)
        if full_cov:
            cov += (e * wc[:, None]).T @ e
        if center is not None:
            d = e - center[None, :]
            q[lo:hi] = np.einsum("ij,ij->i", d, d)
    out = {"mean": mean, "e2": float(comp2.sum()), "comp2": comp2}
    if full_cov:
        out["cov"] = cov - np.outer(mean, mean)
    if q is not None:
        out["q"] = q
    return out


def khat_or_none(log_vals: np.ndarray, w: np.ndarray | None = None, seed: int = 0) -> float | None:
    """PSIS k-hat of ``log_vals`` (a sample, or an exact distribution resampled N_KHAT times);
    None when there are < 20 finite values, the GPD fit fails (ties) or k-hat is not finite."""
    if w is not None:
        rng = np.random.default_rng(seed)
        log_vals = log_vals[rng.choice(log_vals.size, size=N_KHAT, p=w / w.sum())]
    finite = np.isfinite(log_vals)
    if finite.sum() < 20:
        return None
    try:
        k = psis_khat(log_vals[finite])
    except ValueError:  # the GPD fit fails on heavily tied (few-atom) samples: no k-hat
        return None
    return None if not math.isfinite(k) else float(k)


def khat_with_threshold(
    log_vals: np.ndarray, w: np.ndarray | None = None, seed: int = 0
) -> tuple[float | None, float | None]:
    """(k-hat, its threshold): :func:`khat_or_none` and ``khat_threshold(S)`` for the S draws the
    k-hat is fitted to (``log_vals.size`` for a sample, zero weights included: they are draws of
    the estimate too; N_KHAT for an exact law); (None, None) when there is no k-hat."""
    k = khat_or_none(log_vals, w, seed)
    if k is None:
        return None, None
    return k, khat_threshold(N_KHAT if w is not None else int(log_vals.size))


def weight_summary(batch: SequenceBatch, seed: int = 0) -> dict:
    """Raw-weight statistics: E[W] (claim M1: = 1), log E[W^2], Kish ESS fraction, k-hat of W
    and its sample-size dependent threshold (``khat_W_thresh``, see :func:`khat_with_threshold`).

    All from log W in log space: weights that underflow float64 still give the right ESS.
    """
    w = _weights(batch)
    lw = batch.seq_log_w
    with np.errstate(divide="ignore"):
        log_p = np.log(w)
    log_e_w = float(logsumexp(log_p + lw))
    log_e_w2 = float(logsumexp(log_p + 2 * lw))
    khat_w, khat_w_thresh = khat_with_threshold(lw, batch.weight, seed)
    out = {
        "E_W": exp_or_inf(log_e_w),
        "log_E_W2": log_e_w2,
        "E_W2": exp_or_inf(log_e_w2),
        "ess_W": log_ess_fraction(lw, batch.weight),
        "khat_W": khat_w,
        "khat_W_thresh": khat_w_thresh,
    }
    if batch.weight is None:
        n = batch.n
        # sd(W) = e^m sd(e^(lw - m)), m = max log W: W itself may overflow float64
        m = float(lw.max())
        sd = float(np.std(np.exp(lw - m), ddof=1)) if np.isfinite(m) else 0.0
        out["se"] = {"E_W": exp_or_inf(m + math.log(sd / math.sqrt(n))) if sd > 0 else 0.0}
    return out


def true_gradient_from_batch(model: ARModel, batch: SequenceBatch, adv: np.ndarray) -> dict:
    """grad J = E_b[W A g] from a batch (exact with enumeration; the IS mean otherwise)."""
    coef = np.where(batch.mask, np.exp(batch.seq_log_w)[:, None], 0.0)
    return score_moments(model, batch, coef, adv)


def _vespo_bounds(rule, adv, w, cbar, E_phi, E_phi2, var_trace_plugin, e_g2) -> tuple:
    p = rule.params
    present = w > 0
    Ms = []
    if (present & (adv >= 0)).any():
        Ms.append(phi_max(p.k_pos, p.lam_pos))
    if (present & (adv < 0)).any():
        Ms.append(phi_max(p.k_neg, p.lam_neg))
    M = max(Ms)
    b1 = float(cbar[present].max())
    checks = bound_checks(M, b1, E_phi, E_phi2, var_trace_plugin, e_g2)
    return M * M, all(c["holds"] for c in checks.values()), checks


def bound_checks(
    M: float,
    b1: float,
    E_phi: float,
    E_phi2: float,
    var_trace: float,
    e_g2: float,
    *,
    err_phi: float = 0.0,
    err_phi2: float = 0.0,
    err_var: float = 0.0,
) -> dict:
    """Claims B1-B3 as observed-vs-bound records (the one place both exact methods use).

    ``b1`` is the largest coefficient on the support; ``err_*`` are stated absolute errors of
    the observed values (0 for enumeration; the lattice's discretisation bounds otherwise),
    added to the bound side so that a reported violation is a fact. ``_BOUND_RTOL`` covers
    float summation. B3 also gets an absolute floor of one subnormal spacing (2^-1074): when the
    weighted scores underflow, both sides are ~0 and a relative slack alone would report the
    rounding of a subnormal as a violation.
    """
    slack = 1 + _BOUND_RTOL
    tiny = math.ulp(0.0)
    return {
        "B1": {"observed": b1, "bound": M, "holds": b1 <= M * slack},
        "B2": {
            "observed": E_phi2,
            "bound": M * E_phi,
            "bound2": M * M,
            "holds": E_phi2 <= (M * E_phi + err_phi * M + err_phi2) * slack and E_phi <= M * slack,
        },
        "B3": {
            "observed": var_trace,
            "bound": M * M * e_g2,
            "holds": var_trace <= M * M * e_g2 * slack + err_var + tiny,
        },
    }


def rule_results(
    model: ARModel,
    batch: SequenceBatch,
    adv: np.ndarray,
    rules: list[Rule],
    true_grad: np.ndarray,
    method: str,
    *,
    seed: int = 0,
    progress=None,
) -> list[dict]:
    """One record per rule (keys ``RESULT_KEYS`` + ``bounds``, ``se`` for Monte Carlo).

    ``rules`` are :class:`~vespo_theory.rules.Rule` objects (resolved once by the caller);
    ``progress`` (optional) is called with each rule's name after its record is done.
    """
    n_, T_ = batch.tokens.shape
    check_memory(  # the batch (already allocated) and the per-rule arrays, together
        n_ * T_ * BATCH_BYTES_PER_ENTRY + rule_results_bytes(n_, T_),
        f"the per-rule arrays of {n_} sequences of length {T_}",
        "lower --n-mc or --T (or --V / --T for enumeration)",
    )
    # overflow (huge advantages or weights) is not warned about: no_nan refuses its NaNs
    with np.errstate(over="ignore", invalid="ignore"):
        return _records(model, batch, adv, rules, true_grad, method, seed, progress)


def _records(model, batch, adv, rules, true_grad, method, seed, progress) -> list[dict]:
    w = _weights(batch)
    mc = batch.weight is None
    n = batch.n
    lengths = batch.lengths.astype(np.float64)
    g_norm = float(np.linalg.norm(true_grad))
    e_g2 = score_moments(model, batch, batch.mask.astype(np.float64), adv)["e2"]
    seq_log_w = batch.seq_log_w
    out = []
    for rule in rules:
        name = rule.name
        coef = np.asarray(rule.coefficient(batch.tok_log_ratio, batch.mask, adv), dtype=np.float64)
        if not np.isfinite(coef).all():
            raise ValueError(f"rule {name} returned non-finite coefficients on this setting")
        cbar = coef.sum(axis=1) / lengths
        E_phi = float(w @ cbar)
        E_phi2 = float(w @ (cbar * cbar))
        mom = score_moments(model, batch, coef, adv)
        mean = mom["mean"]
        var_plugin = max(mom["e2"] - float(mean @ mean), 0.0)
        var_trace = var_plugin * n / (n - 1) if mc else var_plugin
        m_norm = float(np.linalg.norm(mean))
        cosine = float(mean @ true_grad / (m_norm * g_norm)) if m_norm > 0 and g_norm > 0 else None
        log_cbar = _log_cbar(rule, cbar, seq_log_w, adv)
        khat, khat_thresh = khat_with_threshold(log_cbar, batch.weight, seed)
        rec = {
            "rule": name,
            "method": method,
            "bias_norm": float(np.linalg.norm(mean - true_grad)),
            "cosine": cosine,
            "var_trace": var_trace,
            "E_phi": E_phi,
            "E_phi2": E_phi2,
            # exact: the population Kish ratio; MC: the sample's Kish ESS / n (same estimand)
            "ess": log_ess_fraction(log_cbar, batch.weight),
            "khat": khat,
            "khat_thresh": khat_thresh,
            "bound_M2": None,
            "bound_holds": None,
        }
        if name == "vespo":
            m2, holds, checks = _vespo_bounds(rule, adv, w, cbar, E_phi, E_phi2, var_plugin, e_g2)
            rec["bound_M2"], rec["bound_holds"], rec["bounds"] = m2, holds, checks
        if mc:
            q = score_moments(model, batch, coef, adv, center=mean)["q"]
            rec["se"] = {
                "bias_norm": math.sqrt(var_trace / n),
                "var_trace": float(np.std(q, ddof=1) / math.sqrt(n)),
                "E_phi": float(np.std(cbar, ddof=1) / math.sqrt(n)),
                "E_phi2": float(np.std(cbar * cbar, ddof=1) / math.sqrt(n)),
            }
        no_nan(rec, adv)
        out.append(rec)
        if progress is not None:
            progress(name)
    return out


def no_nan(rec: dict, adv) -> None:
    """Refuse a record with a NaN statistic (never a silent NaN in a table): it comes from
    float64 overflow (inf - inf, inf / inf) of huge advantages or weights."""
    flat = {k: v for k, v in rec.items() if not isinstance(v, dict)}
    flat.update({f"se.{k}": v for k, v in (rec.get("se") or {}).items()})
    for key, v in flat.items():
        if isinstance(v, float) and math.isnan(v):
            a = float(np.max(np.abs(adv))) if np.size(adv) else 0.0
            raise ValueError(
                f"rule {rec['rule']}: {key} is NaN: the statistics overflow float64 (|A| up to "
                f"{a:.3g}); rescale --reward / --adv-value / --baseline"
            )
