r"""``vespo diagnose``: importance-weight diagnostics of a training log (docs/integrations.md).

A log holds one row per sequence (``log_w``, ``length``, ``advantage``, optional ``step``) or one
row per token (``seq_id``, ``log_ratio`` or ``token_logp_new`` and ``token_logp_old``,
``advantage``, optional ``step`` and ``mask``), as CSV, JSONL or Parquet. :func:`load_log` reads
and checks it (every bad value raises ``ValueError`` naming the column and the row);
:func:`diagnose` reports, for the whole file, per step and per response-length bin:

* n, Kish ESS/n of the raw weights W = exp(log_w) (log space,
  :func:`vespo_theory.diagnostics.kish_ess_from_log_weights`), the PSIS k-hat
  (:func:`vespo_theory.diagnostics.psis_khat`, Vehtari et al., arXiv 1507.02646) with its
  thresholds 0.7 and min(1 - 1/log10 S, 0.7) (:func:`vespo_theory.diagnostics.khat_threshold`);
* chi^2 = E[W^2] - 1 (sample mean, log space) and its self-normalised form n/ESS - 1;
* E[phi] of VESPO's kernel (arXiv 2602.10693; ``VespoParams`` defaults) per advantage sign;
* per registered rule (:mod:`vespo_theory.rules`): the fraction of sequences it clips
  (its ``clipped`` indicator on any token) and rejects (coefficient 0 on every token), the
  measured E[c] per sign, E[c^2], Kish ESS/n of c, the bias proxy E[(c - W)^2] and the moved
  weight mass sum|c - W| / sum W;
* per rule, the *predicted* E[c], Var[c] and E[(c - W)^2] per sign under a normal law fitted to
  log W (sample mean and standard deviation), by Gauss-Hermite quadrature (:func:`fit_predict`);
* a recommendation (:func:`recommend`) from the measured weights: the largest sequence-TIS cap C
  whose capped weights keep ESS/n >= ``ess_target`` and move at most ``bias_target`` of the
  weight mass, and the VESPO (k, lam) per sign (on a grid) that keeps ESS/n of phi >= the target
  with the least moved mass.

What a rule's coefficient means here (docs/rules.md): ``c`` is the rule's effective coefficient on
grad log pi of one token, with the seq-mean-token-sum convention (GSPO, GMPO and SAPO carry a
1/T). From a per-sequence log only W and T are known, so ``seq_only`` rules (is, reinforce, gspo,
seq_tis, seq_mis, vespo) are evaluated exactly, and the token-level rules on their one-token
curve c(W) at T = 1 (as if the sequence were one ratio; marked ``"exact": false``). From a
per-token log every rule is evaluated exactly on the tokens, and a sequence's c is the mean of its
tokens' coefficients (the ``phi_mean_*`` convention of :mod:`vespo_theory.losses`). The fitted
law is a law of log W only, so the predictions of token-level rules always use the curve at T = 1
and those of ``seq_only`` rules the group's median length.

Everything is float64; sums of weights are taken in log space (a log W of -1e4 or +1e3 gives the
right ESS, chi^2 is ``inf`` only when E[W^2] overflows float64).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from vespo_theory.diagnostics import (
    KHAT_MAX,
    khat_threshold,
    kish_ess_from_log_weights,
    log_weight_summary,
    psis_khat,
)
from vespo_theory.rules import available, get_rule

__all__ = [
    "SEQUENCE_COLUMNS",
    "TOKEN_COLUMNS",
    "DiagnoseLog",
    "diagnose",
    "fit_predict",
    "format_report",
    "load_log",
    "read_table",
    "recommend",
]

#: The per-sequence format: required columns, then optional ones.
SEQUENCE_COLUMNS = ("log_w", "length", "advantage")
#: The per-token format: required columns (plus ``log_ratio`` or both logp columns).
TOKEN_COLUMNS = ("seq_id", "advantage")
_OPTIONAL = ("step", "mask")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
               ".pq": "parquet"}  # fmt: skip

#: Gauss-Hermite nodes of the fitted normal. The integrands are smooth in log W except at a
#: rule's clip edges; 101 nodes (probabilists' weight, nodes up to |x| ~ 18.7) integrate
#: exp(2 sigma x) (E[W^2]) to ~1e-10 relative for sigma <= 4 and every polynomial of degree
#: <= 201 exactly. Clip edges (a step in c) converge only like 1/nodes: see fit_predict.
GH_NODES = 101

#: Largest padded [B, T_max] token matrix evaluated for the token-level rules (float64:
#: 8 bytes each, 400 MB at the limit, times a few temporaries per rule).
MAX_TOKEN_CELLS = 50_000_000


# --------------------------------------------------------------------------- reading


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in _EXTENSIONS:
        raise ValueError(
            f"FILE: unknown extension {path.suffix or '(none)'!r} of {str(path)!r}; "
            "use .csv, .jsonl (.ndjson) or .parquet (.pq)"
        )
    return _EXTENSIONS[ext]


def _read_csv(path: Path) -> dict[str, list]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"FILE: {str(path)!r} is empty (no header row)")
        header = [h.strip() for h in header]
        dup = {h for h in header if header.count(h) > 1}
        if dup:
            raise ValueError(f"FILE: column {sorted(dup)[0]!r} appears twice in the header")
        cols: dict[str, list] = {h: [] for h in header}
        for i, row in enumerate(reader, start=1):
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if len(row) != len(header):
                raise ValueError(
                    f"FILE: row {i} has {len(row)} fields but the header has {len(header)}"
                )
            for h, v in zip(header, row):
                cols[h].append(v.strip())
    return cols


def _read_jsonl(path: Path) -> dict[str, list]:
    cols: dict[str, list] = {}
    n = 0
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"FILE: line {lineno} is not valid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"FILE: line {lineno} is not a JSON object")
            for k in rec:
                if k not in cols:
                    cols[k] = [None] * n  # a column that starts late: earlier rows miss it
            for k in cols:
                cols[k].append(rec.get(k))
            n += 1
    return cols


def _read_parquet(path: Path) -> dict[str, list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        return pq.read_table(path).to_pydict()
    try:
        import pandas as pd
    except ImportError:
        raise ValueError(
            "FILE: reading Parquet needs pyarrow (pip install pyarrow) or pandas with a "
            "Parquet engine; or export the log as CSV or JSONL"
        ) from None
    try:
        df = pd.read_parquet(path)
    except ImportError as exc:  # pandas without pyarrow / fastparquet
        raise ValueError(
            f"FILE: reading Parquet needs pyarrow (pip install pyarrow): {exc}"
        ) from None
    return {str(c): df[c].tolist() for c in df.columns}


def read_table(path) -> dict[str, list]:
    """Column name -> list of raw values of a CSV, JSONL or Parquet file (by its extension)."""
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise ValueError(f"FILE: {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"FILE: {str(path)!r} is a folder, not a file")
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt]
    return reader(path)


def _to_float(values: list, col: str, strings: bool = True) -> np.ndarray:
    """float64 array of a column; ValueError naming the column and the 1-based row.

    ``strings``: parse text (CSV cells); False for typed formats (JSONL, Parquet), where a
    string in a numeric column is a wrong type."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v == ""):
            raise ValueError(f"column {col!r}: row {i + 1} is missing a value")
        if isinstance(v, bool):
            raise ValueError(f"column {col!r}: row {i + 1} is a boolean ({v}), expected a number")
        if isinstance(v, str) and strings:
            try:
                x = float(v)
            except ValueError:
                raise ValueError(f"column {col!r}: row {i + 1} is not a number ({v!r})") from None
        elif isinstance(v, (int, float, np.integer, np.floating)):
            x = float(v)
        else:
            raise ValueError(
                f"column {col!r}: row {i + 1} is a {type(v).__name__} ({v!r}), expected a number"
            )
        if math.isnan(x):
            raise ValueError(f"column {col!r}: row {i + 1} is NaN")
        out[i] = x
    return out


def _typed_float(values: list, col: str) -> np.ndarray:
    """:func:`_to_float` for typed formats (JSONL, Parquet): text is a wrong type."""
    return _to_float(values, col, strings=False)


def _finite(x: np.ndarray, col: str) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"column {col!r}: row {i + 1} is {x[i]} (diagnose needs finite values; a zero "
            "weight, log_w = -inf, cannot be fitted)"
            if col in ("log_w", "log_ratio", "token_logp_new", "token_logp_old")
            else f"column {col!r}: row {i + 1} is {x[i]} (must be finite)"
        )
    return x


def _integers(x: np.ndarray, col: str, lo: int | None = None) -> np.ndarray:
    _finite(x, col)
    bad = (x != np.round(x)) | ((x < lo) if lo is not None else False)
    if np.any(bad):
        i = int(np.argmax(bad))
        need = "an integer" + (f" >= {lo}" if lo is not None else "")
        raise ValueError(f"column {col!r}: row {i + 1} is {x[i]:g}, expected {need}")
    return x.astype(np.int64)


@dataclass
class DiagnoseLog:
    """A checked log: one entry per sequence (float64 / int64 arrays).

    ``tokens`` (per-token logs only): ``(log_ratio [B, T_max], mask [B, T_max] bool)``, the
    padded token log-ratios, for the token-level rules' exact coefficients.
    """

    log_w: np.ndarray
    length: np.ndarray
    advantage: np.ndarray
    step: np.ndarray | None = None
    kind: str = "sequence"
    source: str = ""
    tokens: tuple | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.log_w.size)


def _missing(cols: dict, names, fmt_hint: str) -> None:
    for c in names:
        if c not in cols:
            raise ValueError(f"missing column {c!r} ({fmt_hint}); columns found: "
                             f"{', '.join(cols) or '(none)'}")  # fmt: skip


_SEQ_HINT = "per-sequence format: log_w, length, advantage[, step]"
_TOK_HINT = (
    "per-token format: seq_id, log_ratio (or token_logp_new and token_logp_old), "
    "advantage[, step, mask]"
)


def load_log(path) -> DiagnoseLog:
    """Read and check a per-sequence or per-token log (see the module docstring).

    The format is chosen by the columns: ``log_w`` present -> per sequence; else ``seq_id``
    present -> per token; else ValueError naming ``log_w``. Every bad entry (missing, NaN, not a
    number, infinite, a non-integer length or step, an advantage that changes within a sequence)
    raises ValueError naming the column and the row.
    """
    cols = read_table(path)
    to_float = _to_float if _format_of(Path(path)) == "csv" else _typed_float
    nrows = max((len(v) for v in cols.values()), default=0)
    if nrows == 0:
        raise ValueError(f"FILE: {str(path)!r} has no data rows")
    if "log_w" in cols or "seq_id" not in cols:
        _missing(cols, SEQUENCE_COLUMNS, _SEQ_HINT)
        log_w = _finite(to_float(cols["log_w"], "log_w"), "log_w")
        length = _integers(to_float(cols["length"], "length"), "length", lo=1)
        adv = _finite(to_float(cols["advantage"], "advantage"), "advantage")
        step = None
        if "step" in cols:
            step = _integers(to_float(cols["step"], "step"), "step")
        return DiagnoseLog(log_w, length, adv, step, "sequence", str(path))
    return _load_tokens(cols, str(path), to_float)


def _load_tokens(cols: dict, source: str, to_float=_to_float) -> DiagnoseLog:
    _missing(cols, TOKEN_COLUMNS, _TOK_HINT)
    if "log_ratio" in cols:
        lr = _finite(to_float(cols["log_ratio"], "log_ratio"), "log_ratio")
    elif "token_logp_new" in cols or "token_logp_old" in cols:
        _missing(cols, ("token_logp_new", "token_logp_old"), _TOK_HINT)
        new = _finite(to_float(cols["token_logp_new"], "token_logp_new"), "token_logp_new")
        old = _finite(to_float(cols["token_logp_old"], "token_logp_old"), "token_logp_old")
        lr = new - old
    else:
        raise ValueError(f"missing column 'log_ratio' ({_TOK_HINT})")
    adv = _finite(to_float(cols["advantage"], "advantage"), "advantage")
    ids = cols["seq_id"]
    for i, v in enumerate(ids):
        if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"column 'seq_id': row {i + 1} is missing a value")
        if isinstance(v, (list, dict, bool)):
            raise ValueError(f"column 'seq_id': row {i + 1} is a {type(v).__name__}, expected "
                             "a string or an integer")  # fmt: skip
    step = _integers(to_float(cols["step"], "step"), "step") if "step" in cols else None
    keep = np.ones(lr.size, dtype=bool)
    if "mask" in cols:
        m = to_float(cols["mask"], "mask")
        bad = (m != 0) & (m != 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"column 'mask': row {i + 1} is {m[i]:g}, expected 0 or 1")
        keep = m == 1
    groups: dict[tuple, list[int]] = {}
    for i in range(lr.size):
        key = (None if step is None else int(step[i]), str(ids[i]))
        groups.setdefault(key, []).append(i)
    rows = [np.asarray(ix, dtype=np.int64) for ix in groups.values()]
    B = len(rows)
    t_max = max(int(keep[ix].sum()) for ix in rows)
    if t_max == 0:
        raise ValueError("column 'mask': every token is masked (0); nothing to diagnose")
    if B * t_max > MAX_TOKEN_CELLS:
        raise ValueError(
            f"FILE: the per-token log pads to {B} x {t_max} tokens (> {MAX_TOKEN_CELLS}); "
            "export per-sequence log_w, length, advantage instead (docs/integrations.md)"
        )
    tok = np.zeros((B, t_max), dtype=np.float64)
    mask = np.zeros((B, t_max), dtype=bool)
    a = np.empty(B)
    st = None if step is None else np.empty(B, dtype=np.int64)
    for b, ix in enumerate(rows):
        a0 = adv[ix[0]]
        differ = adv[ix] != a0
        if differ.any():
            j = int(ix[np.argmax(differ)])
            raise ValueError(
                f"column 'advantage': row {j + 1} changes the advantage within seq_id "
                f"{ids[ix[0]]!r} ({adv[j]:g} vs {a0:g}); diagnose needs one advantage per "
                "sequence (outcome advantages, as GRPO's)"
            )
        a[b] = a0
        if st is not None:
            st[b] = step[ix[0]]
        v = ix[keep[ix]]
        tok[b, : v.size] = lr[v]
        mask[b, : v.size] = True
    length = mask.sum(1).astype(np.int64)
    if (length == 0).any():
        b = int(np.argmax(length == 0))
        raise ValueError(
            f"column 'mask': seq_id {ids[rows[b][0]]!r} has no unmasked token; drop it or "
            "unmask one"
        )
    log_w = np.where(mask, tok, 0.0).sum(1)
    return DiagnoseLog(log_w, length, a, st, "token", source, (tok, mask))


# --------------------------------------------------------------------------- per-rule arrays


def _rule_per_sequence(name: str, log: DiagnoseLog) -> dict:
    """Per sequence of ``log``: the rule's coefficient c (a row's mean over its tokens for a
    per-token log), whether it clipped any token, whether it rejected the whole sequence."""
    rule = get_rule(name)
    pos = log.advantage >= 0
    if log.tokens is not None:
        tok, mask = log.tokens
        c, clipped = rule.coefficient_and_clipped(tok, mask, log.advantage)
        T = mask.sum(1)
        c_seq = c.sum(1) / T
        rejected = ~((c != 0) & mask).any(1)
        any_clip = np.zeros(log.n, bool) if clipped is None else clipped.any(1)
        tok_clip = 0.0 if clipped is None else float(clipped.sum()) / float(mask.sum())
        return dict(c=c_seq, clipped=any_clip, rejected=rejected, exact=True,
                    token_clip_frac=tok_clip)  # fmt: skip
    if rule.seq_only:
        c, clipped = rule.coefficient_from_seq(log.log_w, pos, log.length.astype(np.float64))
    else:
        c, clipped = rule.coefficient_and_clipped(
            log.log_w[:, None], np.ones((log.n, 1), bool), log.advantage
        )
        c = c[:, 0]
        clipped = None if clipped is None else clipped[:, 0]
    clipped = np.zeros(log.n, bool) if clipped is None else np.asarray(clipped, bool)
    return dict(c=np.asarray(c, np.float64), clipped=clipped, rejected=c == 0,
                exact=rule.seq_only, token_clip_frac=None)  # fmt: skip


def _curve(name: str, log_w: np.ndarray, positive: bool, T: float) -> np.ndarray:
    """c(log W) of one sign at length T (seq_only rules) or on the T = 1 curve (token rules)."""
    rule = get_rule(name)
    pos = np.full(log_w.shape, positive)
    if rule.seq_only:
        c, _ = rule.coefficient_from_seq(log_w, pos, np.full(log_w.shape, float(T)))
        return np.asarray(c, np.float64)
    return np.asarray(rule.phi(log_w, np.where(pos, 1.0, -1.0)), np.float64)


def _log_abs_diff(lc: np.ndarray, lw: np.ndarray) -> np.ndarray:
    """log |exp(lc) - exp(lw)| elementwise, without forming either exponential."""
    hi = np.maximum(lc, lw)
    lo = np.minimum(lc, lw)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hi + np.log(-np.expm1(lo - hi))
    return np.where(np.isneginf(hi), -np.inf, out)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _exp_or_inf(log_x: float) -> float:
    return math.inf if log_x > 709.78 else math.exp(log_x)


def _ess_frac(log_w: np.ndarray) -> float:
    if np.isneginf(log_w).all():
        return 0.0
    return kish_ess_from_log_weights(log_w) / log_w.size


def _moved_frac(log_c: np.ndarray, log_w: np.ndarray) -> float:
    """sum |c - W| / sum W, in log space."""
    return _exp_or_inf(float(logsumexp(_log_abs_diff(log_c, log_w)) - logsumexp(log_w)))


# --------------------------------------------------------------------------- prediction


def fit_predict(log_w: np.ndarray, lengths: np.ndarray, frac_pos: float, rules) -> dict:
    r"""Fit log W ~ N(mu, sigma^2) and predict each rule's moments by Gauss-Hermite quadrature.

    mu and sigma are the sample mean and standard deviation (ddof 1) of ``log_w``. For each rule
    and sign, with c the rule's coefficient as a function of log W (``seq_only`` rules at the
    median of ``lengths``; token-level rules on their one-token curve, T = 1):

    .. math:: E[g(\log W)] \approx \frac{1}{\sqrt{2\pi}} \sum_i w_i\, g(\mu + \sigma x_i)

    (probabilists' Hermite nodes x_i and weights w_i, :data:`GH_NODES` of them) for g = c, c^2
    and (c - W)^2, the last two in log space. ``c_var = E[c^2] - E[c]^2``; the rows ``c_mean``,
    ``c_var`` and ``bias2`` mix the two signs with the measured fraction of A >= 0.

    Accuracy: smooth rules (is, reinforce, vespo, sapo, the TIS/CISPO curves away from their
    cap) are integrated to ~1e-10; a rule with an indicator (a clip edge: ppo_clip, dual_clip,
    gspo, token_mis, seq_mis, gmpo) has a jump in c, where Gauss-Hermite converges slowly (an
    error up to about the jump times the density there times the node spacing, ~ sigma *
    pi / sqrt(2 GH_NODES) in log W). The closed forms of the log-normal law are reported too:
    ESS/n -> exp(-sigma^2), chi^2 = exp(sigma^2) - 1 (with mu = -sigma^2/2, E[W] = 1).
    """
    lw = np.asarray(log_w, np.float64)
    mu = float(lw.mean())
    sigma = float(lw.std(ddof=1)) if lw.size > 1 else 0.0
    x, w = np.polynomial.hermite_e.hermegauss(GH_NODES)
    logwt = np.log(w) - 0.5 * math.log(2.0 * math.pi)
    nodes = mu + sigma * x
    T = float(np.median(lengths))
    out: dict = {
        "mu": mu,
        "sigma": sigma,
        "median_length": T,
        "ess_frac_lognormal": math.exp(-(sigma**2)),
        "chi2_lognormal": _exp_or_inf(2 * mu + 2 * sigma**2)
        - 2 * _exp_or_inf(mu + sigma**2 / 2)
        + 1,  # E[(W - 1)^2] = E[W^2] - 2 E[W] + 1 under the fitted law
        "rules": {},
    }
    for name in rules:
        per = {}
        for sign, positive in (("pos", True), ("neg", False)):
            c = _curve(name, nodes, positive, T)
            lc = _log(c)
            m1 = float(np.sum(np.exp(logwt) * c))
            lm2 = float(logsumexp(logwt + 2 * lc))
            lb2 = float(logsumexp(logwt + 2 * _log_abs_diff(lc, nodes)))
            m2 = _exp_or_inf(lm2)
            per[f"c_mean_{sign}"] = m1
            per[f"c2_mean_{sign}"] = m2
            per[f"c_var_{sign}"] = max(m2 - m1 * m1, 0.0) if math.isfinite(m2) else math.inf
            per[f"bias2_{sign}"] = _exp_or_inf(lb2)
        fp, fn = frac_pos, 1.0 - frac_pos
        for key in ("c_mean", "c_var", "bias2"):
            a, b = per[f"{key}_pos"], per[f"{key}_neg"]
            per[key] = (fp * a if fp else 0.0) + (fn * b if fn else 0.0)
        out["rules"][name] = per
    return out


# --------------------------------------------------------------------------- one group


def _group(log: DiagnoseLog, sel: np.ndarray, per_rule: dict, rules) -> dict:
    from vespo_theory.kernels import phi_signed
    from vespo_theory.params import VespoParams

    lw = log.log_w[sel]
    n = int(lw.size)
    adv = log.advantage[sel]
    pos = adv >= 0
    g: dict = {"n": n, "n_pos": int(pos.sum()), "n_neg": int((~pos).sum())}
    if n == 0:
        return g
    lse1 = float(logsumexp(lw))
    lse2 = float(logsumexp(2 * lw))
    ess = kish_ess_from_log_weights(lw)
    try:
        khat = float(psis_khat(lw))
    except ValueError:  # fewer than 20 sequences: no tail fit
        khat = math.nan
    thr = khat_threshold(n) if n >= 2 else math.nan
    phi = np.asarray(phi_signed(lw, adv, VespoParams()), np.float64)
    g.update(
        length_mean=float(log.length[sel].mean()),
        **log_weight_summary(lw),
        log_mean_w=lse1 - math.log(n),
        ess=ess,
        ess_frac=ess / n,
        khat=khat,
        khat_threshold=thr,
        khat_threshold_max=KHAT_MAX,
        khat_ok=(None if math.isnan(khat) else bool(max(khat, 0.0) <= thr)),
        log_mean_w2=lse2 - math.log(n),
        chi2=_exp_or_inf(lse2 - math.log(n)) - 1.0,
        chi2_normalised=n / ess - 1.0,
        phi_mean_pos=float(phi[pos].mean()) if pos.any() else math.nan,
        phi_mean_neg=float(phi[~pos].mean()) if (~pos).any() else math.nan,
    )
    if n >= 2:
        g["fit"] = fit_predict(lw, log.length[sel], float(pos.mean()), rules)
    rr = {}
    for name in rules:
        r = per_rule[name]
        c = r["c"][sel]
        lc = _log(c)
        rec = {
            "exact": r["exact"],
            "clip_frac": float(r["clipped"][sel].mean()),
            "reject_frac": float(r["rejected"][sel].mean()),
            "c_mean_pos": float(c[pos].mean()) if pos.any() else math.nan,
            "c_mean_neg": float(c[~pos].mean()) if (~pos).any() else math.nan,
            "c2_mean": _exp_or_inf(float(logsumexp(2 * lc)) - math.log(n)),
            "ess_frac_c": _ess_frac(lc),
            "bias2": _exp_or_inf(float(logsumexp(2 * _log_abs_diff(lc, lw))) - math.log(n)),
            "moved_frac": _moved_frac(lc, lw),
        }
        rr[name] = rec
    g["rules"] = rr
    return g


def _length_bins(lengths: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) bins 1-2, 2-4, 4-8, ... (powers of two, as simulations.lm.measure) that hold
    at least one sequence."""
    out, lo = [], 1
    top = int(lengths.max())
    while lo <= top:
        if ((lengths >= lo) & (lengths < 2 * lo)).any():
            out.append((lo, 2 * lo))
        lo *= 2
    return out


# --------------------------------------------------------------------------- recommendation


def _tis_scan(lw: np.ndarray, n_caps: int = 241) -> dict:
    """ESS/n and moved mass of min(W, C) over log C on a grid from min(0, q10) to max log W."""
    lo = min(0.0, float(np.quantile(lw, 0.10)))
    hi = float(lw.max())
    log_caps = np.unique(np.concatenate([np.linspace(lo, hi, n_caps), np.log([1.5, 2, 3, 5, 10])]))
    log_caps = log_caps[(log_caps >= lo) & (log_caps <= hi)]
    lse_w = float(logsumexp(lw))
    ess, moved = [], []
    for lc in log_caps:
        capped = np.minimum(lw, lc)
        ess.append(kish_ess_from_log_weights(capped) / lw.size)
        over = lw > lc
        moved.append(
            _exp_or_inf(float(logsumexp(_log_abs_diff(np.full(over.sum(), lc), lw[over]))) - lse_w)
            if over.any()
            else 0.0  # fmt: skip
        )
    return {"log_cap": log_caps, "ess_frac": np.asarray(ess), "moved_frac": np.asarray(moved)}


#: The (k, lam) grid searched for VESPO (the defaults (2, 3) and (3, 2) are on it).
VESPO_GRID = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)


def _vespo_scan(lw: np.ndarray) -> list[dict]:
    out = []
    for k in VESPO_GRID:
        for lam in VESPO_GRID:
            lphi = k * lw + lam * (1.0 - np.exp(np.minimum(lw, 700.0)))
            out.append({"k": k, "lam": lam, "ess_frac": _ess_frac(lphi),
                        "moved_frac": _moved_frac(lphi, lw)})  # fmt: skip
    return out


def recommend(log: DiagnoseLog, ess_target: float = 0.5, bias_target: float = 0.05) -> dict:
    """A TIS cap and VESPO (k, lam) per sign from the measured weights, with the reasoning.

    Sequence TIS (``seq_tis``, c = min(W, C)): on a grid of caps, ESS/n of the capped weights
    (Kish, log space) rises as C falls, and the moved mass sum (W - C)_+ / sum W (the relative
    truncation bias of sum W) falls as C rises. The answer is the largest C with ESS/n >=
    ``ess_target`` and moved mass <= ``bias_target``; where no C meets both, both ends are
    reported and the reasoning says why.

    VESPO: for each sign's sequences, the grid point of :data:`VESPO_GRID` x :data:`VESPO_GRID`
    with ESS/n of phi(W) >= ``ess_target`` and the least moved mass sum |phi - W| / sum W.
    """
    lines: list[str] = []
    rec: dict = {"ess_target": ess_target, "bias_target": bias_target}
    lw = log.log_w
    n = lw.size
    ess = kish_ess_from_log_weights(lw) / n
    try:
        khat = float(psis_khat(lw))
    except ValueError:
        khat = math.nan
    thr = khat_threshold(n) if n >= 2 else math.nan
    if ess >= ess_target and (math.isnan(khat) or max(khat, 0.0) <= thr):
        lines.append(
            f"raw weights are healthy: ESS/n = {ess:.3g} >= {ess_target:g}"
            + ("" if math.isnan(khat) else f" and k-hat = {khat:.3g} <= {thr:.3g}")
            + "; plain IS is usable, any correction below costs little"
        )
    else:
        why = []
        if ess < ess_target:
            why.append(f"ESS/n = {ess:.3g} < {ess_target:g}")
        if not math.isnan(khat) and max(khat, 0.0) > thr:
            why.append(f"k-hat = {khat:.3g} > {thr:.3g} (threshold for n = {n})")
        lines.append("raw weights need a correction: " + ", ".join(why))
    rec.update(ess_frac=ess, khat=khat, khat_threshold=thr)

    scan = _tis_scan(lw)
    ok_e = scan["ess_frac"] >= ess_target
    ok_b = scan["moved_frac"] <= bias_target
    both = ok_e & ok_b
    caps = np.exp(scan["log_cap"])
    if both.any():
        # ESS/n falls and the moved mass falls as C rises: the feasible caps are an interval
        # [C_bias, C_ess]. C_bias, its smallest cap, buys the most ESS within the bias target.
        j = int(np.flatnonzero(both)[0])
        j_hi = int(np.flatnonzero(both)[-1])
        rec["tis_cap"] = float(caps[j])
        rec["tis_cap_range"] = [float(caps[j]), float(caps[j_hi])]
        if scan["moved_frac"][j] == 0.0:
            lines.append(
                f"seq_tis: no cap needed; the smallest scanned cap that moves at most "
                f"{bias_target:g} of the weight mass is C = {caps[j]:.4g} >= max W, which "
                f"changes nothing (ESS/n stays {scan['ess_frac'][j]:.3g})"
            )
        else:
            lines.append(
                f"seq_tis cap C = {caps[j]:.4g}: the smallest scanned cap whose moved mass "
                f"sum(W - C)+/sum W = {scan['moved_frac'][j]:.3g} <= {bias_target:g}; it "
                f"raises ESS/n from {ess:.3g} to {scan['ess_frac'][j]:.3g} (>= {ess_target:g}); "
                f"every cap in [{caps[j]:.4g}, {caps[j_hi]:.4g}] meets both targets"
            )
    else:
        rec["tis_cap"] = None
        je = int(np.flatnonzero(ok_e)[-1]) if ok_e.any() else None
        jb = int(np.flatnonzero(ok_b)[0]) if ok_b.any() else None
        msg = "no seq_tis cap meets both targets:"
        if je is not None:
            msg += (f" C <= {caps[je]:.4g} keeps ESS/n >= {ess_target:g} but moves "
                    f"{scan['moved_frac'][je]:.3g} of the weight mass;")  # fmt: skip
        if jb is not None:
            msg += (f" C >= {caps[jb]:.4g} moves <= {bias_target:g} but has ESS/n = "
                    f"{scan['ess_frac'][jb]:.3g};")  # fmt: skip
        msg += " the tail is too heavy for truncation alone (reduce staleness or mismatch, or "
        msg += "accept the bias of the smaller cap)"
        lines.append(msg)
        rec["tis_cap_ess"] = None if je is None else float(caps[je])
        rec["tis_cap_bias"] = None if jb is None else float(caps[jb])

    pos = log.advantage >= 0
    for sign, sel, default in (("pos", pos, (2.0, 3.0)), ("neg", ~pos, (3.0, 2.0))):
        if sel.sum() < 2:
            continue
        grid = _vespo_scan(lw[sel])
        d = next(g for g in grid if (g["k"], g["lam"]) == default)
        ok = [g for g in grid if g["ess_frac"] >= ess_target]
        label = "A >= 0" if sign == "pos" else "A < 0"
        if ok:
            best = min(ok, key=lambda g: (g["moved_frac"], -g["ess_frac"]))
            rec[f"vespo_{sign}"] = {"k": best["k"], "lam": best["lam"]}
            lines.append(
                f"vespo ({label}, {int(sel.sum())} seqs): (k, lam) = ({best['k']:g}, "
                f"{best['lam']:g}) has ESS/n of phi = {best['ess_frac']:.3g} >= {ess_target:g} "
                f"with the least moved mass {best['moved_frac']:.3g} on the grid; the default "
                f"({default[0]:g}, {default[1]:g}): ESS/n {d['ess_frac']:.3g}, moved "
                f"{d['moved_frac']:.3g}"
            )
        else:
            best = max(grid, key=lambda g: g["ess_frac"])
            rec[f"vespo_{sign}"] = None
            lines.append(
                f"vespo ({label}): no (k, lam) on the grid reaches ESS/n {ess_target:g}; the "
                f"best is ({best['k']:g}, {best['lam']:g}) with {best['ess_frac']:.3g}"
            )
    rec["reasoning"] = lines
    return rec


# --------------------------------------------------------------------------- the report


def diagnose(
    log: DiagnoseLog,
    *,
    rules=None,
    ess_target: float = 0.5,
    bias_target: float = 0.05,
    progress=None,
) -> dict:
    """The whole report of ``log`` (a dict; JSON-ready through ``vespo_theory.jsonio``).

    Keys: ``ess_frac`` and ``khat`` (whole file), ``overall`` (the whole file's group),
    ``steps`` (one group per step, with ``step``; empty without a step column),
    ``length_bins`` (one group per [len_lo, len_hi) power-of-two bin), ``recommendation``.
    A group holds n, ESS/n, k-hat and its threshold, chi^2, E[phi] per sign, log W quantiles,
    ``fit`` (:func:`fit_predict`) and ``rules`` (measured per rule). ``progress`` is called with
    a short text after each stage (a progress bar's step).
    """
    for name, v in (("--ess-target", ess_target), ("--bias-target", bias_target)):
        if not (isinstance(v, (int, float)) and 0 < v < 1):
            raise ValueError(f"{name} must be in (0, 1), got {v!r}")
    rules = list(available() if rules is None else rules)
    for r in rules:
        get_rule(r)  # ValueError listing the valid names
    tick = progress or (lambda _t=None: None)
    per_rule = {}
    for name in rules:
        per_rule[name] = _rule_per_sequence(name, log)
        tick(name)
    everything = np.ones(log.n, bool)
    overall = _group(log, everything, per_rule, rules)
    tick("whole file")
    steps = []
    if log.step is not None:
        for s in np.unique(log.step):
            g = _group(log, log.step == s, per_rule, rules)
            steps.append({"step": int(s)} | g)
        tick("steps")
    bins = []
    for lo, hi in _length_bins(log.length):
        g = _group(log, (log.length >= lo) & (log.length < hi), per_rule, rules)
        bins.append({"len_lo": lo, "len_hi": hi} | g)
    tick("length bins")
    token_clip = {n: per_rule[n]["token_clip_frac"] for n in rules}
    report = {
        "file": log.source,
        "format": log.kind,
        "n": log.n,
        "ess_frac": overall["ess_frac"],
        "khat": overall["khat"],
        "khat_threshold": overall["khat_threshold"],
        "overall": overall,
        "steps": steps,
        "length_bins": bins,
        "rules": rules,
        "recommendation": recommend(log, ess_target, bias_target),
    }
    if log.kind == "token":
        report["token_clip_frac"] = token_clip
    tick("recommendation")
    return report


def _f(v, fmt=".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float) and math.isnan(v):
        return "-"
    return format(v, fmt)


def format_report(report: dict) -> str:
    """The report as plain text: groups, the whole file's rules, the recommendation."""
    from vespo_theory.cli.common import format_table

    o = report["overall"]
    out = [
        f"{report['file']}: {report['n']} sequences ({report['format']} log); "
        f"ESS/n = {_f(o['ess_frac'], '.4g')}, k-hat = {_f(o['khat'], '.3f')} "
        f"(threshold {_f(o['khat_threshold'], '.3f')} for n = {o['n']}; 0.7 for any n)",
    ]
    if "fit" in o:
        fit = o["fit"]
        out.append(
            f"fitted log W ~ N({fit['mu']:.4g}, {fit['sigma']:.4g}^2): log-normal ESS/n = "
            f"exp(-sigma^2) = {_f(fit['ess_frac_lognormal'], '.4g')}, chi^2 (measured) = "
            f"{_f(o['chi2'], '.4g')}, n/ESS - 1 = {_f(o['chi2_normalised'], '.4g')}"
        )
    cols = ["group", "n", "len", "ESS/n", "k-hat", "thr", "ok", "chi2", "logW q50", "logW q95",
            "E[phi|A>=0]", "E[phi|A<0]"]  # fmt: skip

    def row(label, g):
        if g["n"] == 0:
            return {"group": label, "n": 0}
        return {
            "group": label,
            "n": g["n"],
            "len": _f(g["length_mean"], ".4g"),
            "ESS/n": _f(g["ess_frac"], ".4g"),
            "k-hat": _f(g["khat"], ".3f"),
            "thr": _f(g["khat_threshold"], ".3f"),
            "ok": _f(g["khat_ok"]),
            "chi2": _f(g["chi2"], ".3g"),
            "logW q50": _f(g["log_w_q50"], ".3g"),
            "logW q95": _f(g["log_w_q95"], ".3g"),
            "E[phi|A>=0]": _f(g["phi_mean_pos"], ".3g"),
            "E[phi|A<0]": _f(g["phi_mean_neg"], ".3g"),
        }

    rows = [row("all", o)]
    rows += [row(f"step {s['step']}", s) for s in report["steps"]]
    rows += [row(f"len [{b['len_lo']},{b['len_hi']})", b) for b in report["length_bins"]]
    out += ["", format_table(rows, cols)]
    rcols = ["rule", "exact", "clip", "reject", "E[c|A>=0]", "E[c|A<0]", "ESS/n(c)",
             "E[(c-W)^2]", "moved", "pred E[c]", "pred Var[c]", "pred E[(c-W)^2]"]  # fmt: skip
    rrows = []
    for name in report["rules"]:
        m = o["rules"][name]
        p = o.get("fit", {}).get("rules", {}).get(name, {})
        rrows.append({
            "rule": name,
            "exact": "yes" if m["exact"] else "T=1",
            "clip": _f(m["clip_frac"], ".3f"),
            "reject": _f(m["reject_frac"], ".3f"),
            "E[c|A>=0]": _f(m["c_mean_pos"]),
            "E[c|A<0]": _f(m["c_mean_neg"]),
            "ESS/n(c)": _f(m["ess_frac_c"]),
            "E[(c-W)^2]": _f(m["bias2"]),
            "moved": _f(m["moved_frac"]),
            "pred E[c]": _f(p.get("c_mean")),
            "pred Var[c]": _f(p.get("c_var")),
            "pred E[(c-W)^2]": _f(p.get("bias2")),
        })  # fmt: skip
    out += [
        "",
        "per rule, whole file (clip/reject: fraction of sequences; moved: sum|c-W|/sum W; "
        "pred: Gauss-Hermite on the fitted normal of log W; T=1: token rule on its one-token "
        "curve of W)",
        format_table(rrows, rcols),
        "",
        "recommendation (targets: ESS/n >= "
        f"{report['recommendation']['ess_target']:g}, moved mass <= "
        f"{report['recommendation']['bias_target']:g}):",
    ]
    out += [f"  - {line}" for line in report["recommendation"]["reasoning"]]
    out.append("(per-step and per-bin rule tables: --json)")
    return "\n".join(out)
