r"""The variance bound at the gradient level (claims B3, P4, G1, L1a): ``vespo validate-bound``.

Sample n = ``prompts`` x G sequences from one model version (mu) and differentiate them under a
later one (pi). Built-in model: mu is the warm start and pi the model after ``rl_steps`` RL steps
of ``rl_rule`` at staleness N = ``rl_steps`` (one rollout batch sampled by mu, then N Adam steps:
pi is exactly as far from mu as the stalest mini-batch of a staleness-N run; trained, or resumed,
in ``OUT/train`` by :func:`simulations.lm.rl.run`). Hugging Face path: ``model`` is mu and
``later_model`` pi. Advantages are GRPO's group advantages (:func:`simulations.lm.rl`'s formula,
(r - group mean) / (group std + 1e-6)).

Per rule, the per-sequence gradient estimate is

.. math:: x_i = A_i \nabla_\theta \sum_t c_{i,t} \log \pi_\theta(y_{i,t}),

``c`` the rule's coefficient (:mod:`vespo_theory.rules`, entangled correction: log pi - log mu,
the tokens' log-ratios under pi against the sampler's own log-probs). For a sequence-level rule
(``seq_only``) c is one number per sequence, x_i = c_i A_i g_i with the score g_i =
grad log pi(y_i), and every such rule shares one gradient pass; a token-level rule has its own
pass with the coefficients as token weights (:mod:`simulations.lm.grads`).

Per rule and response-length bin (powers of two, :func:`simulations.lm.measure.length_bins`,
plus ``all``), over the bin's sequences (the empirical law: ddof 0):

* ``var_trace`` = tr Cov(x) = mean ||x||^2 - ||mean x||^2: the batch estimator's per-sample
  variance, computed exactly from exact per-sequence gradients (never an n x n matrix);
* ``E_phi2_g2`` = mean ||x_i||^2 (for VESPO: E[phi^2 ||A g||^2]); ``E_g2`` = mean ||A_i g_i||^2;
  ``E_score2`` = mean ||g_i||^2;
* ``M`` the sup of the rule's coefficient (claim BT; VESPO: max(M+, M-) of
  :mod:`vespo_theory.bounds`), ``bound_B3`` = M^2 E_g2 and ``tightness`` = var_trace /
  bound_B3 (null where the coefficient is unbounded or token-level: B3's per-sequence bound
  does not apply). Under the empirical law var_trace <= E_phi2_g2 <= bound_B3 holds exactly
  (c <= M pointwise), so B3 holds in every bin to float rounding;
* P4 (VESPO): ``E_phi2`` = mean phi^2, ``K_E_phiW`` = mean K_i phi_i W_i (K by the sign of A,
  phi^2 <= K phi W pointwise, so E_phi2 <= K_E_phiW), ``M2``; and at the gradient level
  ``K_E_phiW_g2`` = mean K_i phi_i W_i ||A_i g_i||^2 >= E_phi2_g2;
* G1 (``all`` rows): the groups of G are independent of each other but their samples are
  dependent through the group-normalised advantage; ``var_group_mean`` = tr Cov over the n/G
  groups of the group mean x_bar_g (the variance of a G-sample batch estimator, dependence
  included) against the i.i.d. bound ``bound_iid_G`` = bound_B3 / G (B3's /n for n = G),
  ``g1_ratio`` = var_group_mean / bound_iid_G (> 1 is the gap G1 describes) and ``iid_var_G``
  = var_trace / G (what independence would give);
* L1 (``all`` rows): least-squares line ||g_i||^2 = a + b T_i over all sequences, slope ``l1_slope``
  and intercept ``l1_intercept`` with 95% intervals (heteroscedasticity-robust HC1 standard
  errors, Student t with n - 2 degrees of freedom).

Resumable: ``OUT/samples.pt`` (the sampled batch), ``OUT/score.npz`` (||g_i||^2) and one
``OUT/records/<rule>.json`` per finished rule (all its bins); a rerun with the same settings
skips every finished stage and rule; other settings in the same OUT are refused. ``rules``,
``chunk`` and ``grad_method`` are not part of that key (they change float rounding only), so a
rule can be added to a finished run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DEFAULT_RULES",
    "FAST",
    "RECORD_KEYS",
    "ValidateConfig",
    "l1_fit",
    "run_validate",
]

# The recipe of this module's numbers (sampling streams, advantages, statistics): part of the
# resume key, so a rerun of changed code never mixes old cached records with new ones.
VALIDATE_RECIPE = 1

DEFAULT_RULES = ("vespo", "is", "reinforce", "seq_tis", "gspo", "ppo_clip", "token_tis")

RECORD_KEYS = [
    "rule",
    "length_bin",
    "len_lo",
    "len_hi",
    "n",
    "mean_T",
    "log_w_mean",
    "log_w_std",
    "var_trace",
    "E_phi2_g2",
    "E_g2",
    "E_score2",
    "M",
    "bound_B3",
    "tightness",
    "mid_ratio",
    "E_phi2",
    "M2",
    "K_E_phiW",
    "K_E_phiW_g2",
    "n_groups",
    "var_group_mean",
    "iid_var_G",
    "bound_iid_G",
    "g1_ratio",
    "l1_slope",
    "l1_slope_lo",
    "l1_slope_hi",
    "l1_intercept",
    "l1_intercept_lo",
    "l1_intercept_hi",
]


@dataclass(frozen=True)
class ValidateConfig:
    """One validate-bound run; ``prompts`` x ``group_size`` sequences."""

    task: str = "add"
    rules: tuple[str, ...] = DEFAULT_RULES
    prompts: int = 256
    group_size: int = 8
    rl_steps: int = 64
    rl_rule: str = "vespo"
    seed: int = 0
    max_new_tokens: int | None = None
    chunk: int = 64
    grad_method: str = "auto"
    sketch_dim: int | None = None
    sketch_kind: str = "gaussian"
    model: str | None = None
    later_model: str | None = None
    extra: dict = field(default_factory=dict)  # LMRunConfig fields of the warm start / RL

    def __post_init__(self) -> None:
        from simulations.lm.grads import METHODS, GradSketch
        from simulations.lm.tasks import get_task
        from vespo_theory.rules import available

        get_task(self.task)
        object.__setattr__(self, "rules", tuple(self.rules))
        if not self.rules:
            raise ValueError("--rules: give at least one rule")
        for r in (*self.rules, self.rl_rule):
            if r not in available():
                raise ValueError(
                    f"--rules: unknown rule {r!r}; valid rules: {', '.join(available())}"
                )
        if len(set(self.rules)) != len(self.rules):
            raise ValueError(f"--rules: a rule is named twice in {','.join(self.rules)}")
        for name, lo in (("prompts", 1), ("group_size", 2), ("rl_steps", 1), ("chunk", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}"
                )
        if self.max_new_tokens is not None and (
            isinstance(self.max_new_tokens, bool)
            or not isinstance(self.max_new_tokens, int)
            or self.max_new_tokens < 1
        ):
            raise ValueError(
                f"--max-new-tokens must be an integer >= 1, got {self.max_new_tokens!r}"
            )
        if self.grad_method not in METHODS:
            raise ValueError(
                f"--grad-method must be one of {', '.join(METHODS)}, got {self.grad_method!r}"
            )
        if self.sketch_dim is not None and (
            isinstance(self.sketch_dim, bool)
            or not isinstance(self.sketch_dim, int)
            or self.sketch_dim < 1
        ):
            raise ValueError(f"--sketch-dim must be an integer >= 1, got {self.sketch_dim!r}")
        if self.sketch_kind not in GradSketch.KINDS:
            raise ValueError(
                f"--sketch-kind must be gaussian or rademacher, got {self.sketch_kind!r}"
            )
        if (self.model is None) != (self.later_model is None):
            raise ValueError("--model and --later-model go together (mu and pi, two HF folders)")
        for name in ("model", "later_model"):
            v = getattr(self, name)
            if v is not None and not Path(v).exists():
                raise ValueError(f"--{name.replace('_', '-')}: path {v!r} does not exist")
        from dataclasses import fields

        from simulations.lm.rl import LMRunConfig

        known = {f.name for f in fields(LMRunConfig)} - {"task", "rule", "seed", "model"}
        bad = sorted(set(self.extra) - known)
        if bad:
            raise ValueError(f"extra: unknown LMRunConfig fields {bad}")
        if self.model is None:
            self.rl_config()  # its own one-line ValueErrors (--sft-steps, --d-model, ...)

    @property
    def n(self) -> int:
        return self.prompts * self.group_size

    def rl_config(self):
        """The LMRunConfig of the warm start and of the RL steps that make pi (built-in)."""
        from simulations.lm.rl import LMRunConfig

        d = {
            "task": self.task,
            "rule": self.rl_rule,
            "staleness": self.rl_steps,
            "steps": self.rl_steps,
            "seed": self.seed,
            "eval_every": self.rl_steps,
            "heldout_n": 32,
            "group_size": self.group_size,
        }
        d.update(self.extra)
        return LMRunConfig(**d)

    def key_dict(self) -> dict:
        """What the cached samples, scores and records depend on (not rules/chunk/method)."""
        from simulations.lm.rl import recipe

        d = asdict(self)
        for k in ("rules", "chunk", "grad_method"):
            d.pop(k)
        return {"validate": d, "validate_recipe": VALIDATE_RECIPE, **recipe()}


# --fast: the long-response task (responses of 100-1,024 tokens, so log W sums over hundreds
# of tokens), 32 prompts x 4 = 128 sequences scored under pi = the warm start after one rollout
# of 8 stale steps (2 prompts x 4 per step). Its warm start is the long study's (TASK_EXTRA).
FAST = {"task": "count-long", "prompts": 32, "group_size": 4, "rl_steps": 8}

# Warm-start and RL settings a task needs (LMRunConfig fields, under the user's own): the
# long-response task's warm start of docs/lm.md "Long responses" (configs/lm_long*.json), so
# validate-bound and the long study share one cached warm start; 2 prompts per RL step, since
# sampling ~1,000 tokens is sequential.
TASK_EXTRA = {
    "count-long": {"attn": "sdpa", "sft_steps": 400, "sft_batch_size": 16, "prompts_per_step": 2}
}


# ------------------------------------------------------------------------------ statistics


def l1_fit(T, y) -> dict:
    """OLS y = a + b T with HC1 standard errors and 95% Student-t intervals (float64).

    >>> f = l1_fit([1, 2, 3, 4], [2.0, 4.0, 6.0, 8.0])
    >>> round(f["slope"], 12), round(f["intercept"], 12)
    (2.0, 0.0)
    """
    from scipy.stats import t as student_t

    T = np.asarray(T, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = T.size
    nan = {k: math.nan for k in ("slope", "slope_lo", "slope_hi", "intercept")}
    nan.update(intercept_lo=math.nan, intercept_hi=math.nan, n=n)
    if n < 3 or np.ptp(T) == 0:
        return nan
    X = np.column_stack([np.ones(n), T])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ beta
    XtX_inv = np.linalg.inv(X.T @ X)
    cov = XtX_inv @ (X.T * e**2) @ X @ XtX_inv * n / (n - 2)  # HC1
    se = np.sqrt(np.diag(cov))
    q = float(student_t.ppf(0.975, n - 2))
    return {
        "n": n,
        "intercept": float(beta[0]),
        "intercept_lo": float(beta[0] - q * se[0]),
        "intercept_hi": float(beta[0] + q * se[0]),
        "slope": float(beta[1]),
        "slope_lo": float(beta[1] - q * se[1]),
        "slope_hi": float(beta[1] + q * se[1]),
    }


def _rule_M(name: str) -> tuple[float | None, str]:
    """(M, note): the sup of a sequence-level rule's coefficient, or None with the reason."""
    from vespo_theory.rules import get_rule

    rule = get_rule(name)
    if not rule.seq_only:
        return None, "token-level coefficient: B3's per-sequence bound does not apply"
    if name == "vespo":
        from vespo_theory.bounds import phi_max
        from vespo_theory.params import VespoParams

        vp = VespoParams()
        return max(phi_max(vp.k_pos, vp.lam_pos), phi_max(vp.k_neg, vp.lam_neg)), "bounds.phi_max"
    from vespo_theory.derivations.extended import sup_coefficient_table

    row = {r.rule: r for r in sup_coefficient_table()}[name]
    return row.M, ("unbounded coefficient (claim BT)" if row.M is None else "claim BT")


def _div(a: float, b: float | None) -> float:
    if b is None or not math.isfinite(b) or b == 0 or not math.isfinite(a):
        return math.nan
    return a / b


# ------------------------------------------------------------------------------- samples


def _sample(cfg: ValidateConfig, mu, pi, tok, dev) -> dict:
    """The batch: n sequences from mu, scored under pi (no gradient); CPU tensors."""
    from simulations.lm.rl import _group_advantages
    from simulations.lm.sampling import generate, sequence_log_probs
    from simulations.lm.sft import encode_prompts
    from simulations.lm.tasks import get_task

    task = get_task(cfg.task)
    max_new = cfg.max_new_tokens or (256 if cfg.model is not None else task.max_response_len())
    prompts = task.sample(np.random.default_rng([cfg.seed, 11]), cfg.prompts)
    seqs = [p for p in prompts for _ in range(cfg.group_size)]
    gen = torch.Generator(device=dev).manual_seed(int(cfg.seed) * 1_000_003 + 23)
    mu.eval()
    pi.eval()
    parts = []
    step = 16 * cfg.group_size  # whole groups per sampling call
    for i in range(0, len(seqs), step):
        ps = seqs[i : i + step]
        ids, mask = encode_prompts(task, tok, ps, dev)
        with torch.no_grad():
            r = generate(
                mu, ids, mask, max_new, eos_id=tok.eos_id, pad_id=tok.pad_id, generator=gen
            )
            lp_pi = sequence_log_probs(pi, r)
        resp = [tok.decode(row) for row in r.response_ids.tolist()]
        rew = torch.tensor([task.reward(p, y) for p, y in zip(ps, resp)], dtype=torch.float32)
        parts.append((r, lp_pi, rew))
    T = max(p[0].response_ids.shape[1] for p in parts)
    P = max(p[0].prompt_ids.shape[1] for p in parts)

    def pad_right(x, width, value=0):
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)

    def pad_left(x, width, value=0):
        return torch.nn.functional.pad(x, (width - x.shape[1], 0), value=value)

    rewards = torch.cat([p[2] for p in parts])
    return {
        "prompt_ids": torch.cat([pad_left(p[0].prompt_ids, P, tok.pad_id) for p in parts]).cpu(),
        "prompt_mask": torch.cat([pad_left(p[0].prompt_mask, P) for p in parts]).cpu(),
        "response_ids": torch.cat(
            [pad_right(p[0].response_ids, T, tok.pad_id) for p in parts]
        ).cpu(),
        "response_mask": torch.cat([pad_right(p[0].response_mask, T) for p in parts]).cpu(),
        "log_mu": torch.cat([pad_right(p[0].rollout_log_prob, T) for p in parts]).cpu(),
        "log_pi": torch.cat([pad_right(p[1], T) for p in parts]).cpu(),
        "reward": rewards,
        "adv": _group_advantages(rewards, cfg.group_size).cpu(),
        "max_new_tokens": max_new,
    }


def _rollout(s: dict, dev):
    from simulations.lm.sampling import Rollout

    return Rollout(
        s["prompt_ids"].to(dev),
        s["prompt_mask"].to(dev),
        s["response_ids"].to(dev),
        s["response_mask"].to(dev),
        s["log_mu"].to(dev),
        None,
    )


# ------------------------------------------------------------------------------ the passes


class _Acc:
    """Per-rule accumulators over the chunks of a pass (float64)."""

    def __init__(self, n: int, n_groups: int, n_bins: int):
        self.sq = np.full(n, np.nan)  # ||x_i||^2
        self.grp_sq = np.full(n_groups, np.nan)  # ||x_bar_g||^2
        self.bin_sum: list[torch.Tensor | None] = [None] * n_bins  # sum of x_i over the bin

    def add(self, idx: slice, a: torch.Tensor, Gd: torch.Tensor, bins: np.ndarray, G: int):
        """Rows ``idx`` (whole groups): x_i = a_i Gd_i."""
        x = a[:, None] * Gd
        self.sq[idx] = (x * x).sum(1).cpu().numpy()
        xg = x.view(-1, G, x.shape[1]).mean(1)
        self.grp_sq[idx.start // G : idx.stop // G] = (xg * xg).sum(1).cpu().numpy()
        for b in np.unique(bins[idx]):
            sel = torch.as_tensor(bins[idx] == b, device=x.device)
            s = x[sel].sum(0)
            self.bin_sum[b] = s if self.bin_sum[b] is None else self.bin_sum[b] + s


def _gradient_pass(
    pi, rollout, weights, accs: dict, coefs: dict, adv, bins, cfg, sketch, score, on_chunk
):
    """One pass of per-sample gradients; feeds every rule in ``accs`` (x_i = coefs[r]_i Gd_i).

    ``score`` (an array) receives ||Gd_i||^2 when given (the score pass)."""
    from simulations.lm.grads import iter_per_sample_grads

    G = cfg.group_size
    chunk = max(G, (cfg.chunk // G) * G)  # whole groups per chunk (G1 needs them)
    for start, Gm in iter_per_sample_grads(
        pi, rollout, weights, method=cfg.grad_method, chunk=chunk, sketch=sketch
    ):
        Gd = Gm.to(torch.float64)
        idx = slice(start, start + Gd.shape[0])
        if score is not None:
            score[idx] = (Gd * Gd).sum(1).cpu().numpy()
        for r, acc in accs.items():
            a = torch.as_tensor(coefs[r][idx] * adv[idx], dtype=torch.float64, device=Gd.device)
            acc.add(idx, a, Gd, bins, G)
        on_chunk()


def _records(
    rule: str, acc: _Acc, s: dict, score: np.ndarray, bins, bin_edges, cfg, l1: dict
) -> list[dict]:
    from vespo_theory.bounds import kernel_bound
    from vespo_theory.kernels import phi_signed
    from vespo_theory.params import VespoParams
    from vespo_theory.rules import get_rule

    adv = s["adv"].double().numpy()
    T = s["response_mask"].sum(1).double().numpy()
    lw = s["log_w"]
    g2 = adv**2 * score
    M, _note = _rule_M(rule)
    vespo = rule == "vespo"
    if vespo:
        vp = VespoParams()
        phi = np.asarray(phi_signed(lw, adv, vp), dtype=np.float64)
        kp, kn = kernel_bound(vp.k_pos, vp.lam_pos), kernel_bound(vp.k_neg, vp.lam_neg)
        K = np.where(adv >= 0, kp.K, kn.K)
        with np.errstate(over="ignore"):
            phiW = np.exp(np.log(np.maximum(phi, 1e-300)) + lw) * (phi > 0)  # log space
        M2 = max(kp.M2, kn.M2)
    seq_coef = get_rule(rule).seq_only
    out = []
    groups = list(enumerate(bin_edges)) + [(None, None)]
    for b, edges in groups:
        sel = np.ones(T.size, bool) if b is None else bins == b
        n = int(sel.sum())
        if n == 0:
            continue
        if b is None:
            vec = sum(v for v in acc.bin_sum if v is not None)
            lo, hi, name = int(T.min()), int(T.max()) + 1, "all"
        else:
            vec = acc.bin_sum[b]
            (lo, hi), name = edges, f"[{edges[0]},{edges[1]})"
        mean_vec = vec / n
        E_x2 = float(acc.sq[sel].mean())
        var = E_x2 - float((mean_vec * mean_vec).sum())
        E_g2 = float(g2[sel].mean())
        bound = None if M is None else M * M * E_g2
        rec = {
            "rule": rule,
            "length_bin": name,
            "len_lo": lo,
            "len_hi": hi,
            "n": n,
            "mean_T": float(T[sel].mean()),
            "log_w_mean": float(lw[sel].mean()),
            "log_w_std": float(lw[sel].std()),
            "var_trace": var,
            "E_phi2_g2": E_x2,
            "E_g2": E_g2,
            "E_score2": float(score[sel].mean()),
            "M": M,
            "bound_B3": bound,
            "tightness": _div(var, bound),
            "mid_ratio": _div(E_x2, bound),
            "E_phi2": float((s["coef"][rule][sel] ** 2).mean()) if seq_coef else math.nan,
            "M2": M2 if vespo else math.nan,
            "K_E_phiW": float((K * phiW)[sel].mean()) if vespo else math.nan,
            "K_E_phiW_g2": float((K * phiW * g2)[sel].mean()) if vespo else math.nan,
        }
        for k in RECORD_KEYS[RECORD_KEYS.index("n_groups") :]:
            rec[k] = math.nan
        if b is None:
            G = cfg.group_size
            var_g = float(acc.grp_sq.mean()) - float((mean_vec * mean_vec).sum())
            bound_g = None if bound is None else bound / G
            rec.update(
                n_groups=int(acc.grp_sq.size),
                var_group_mean=var_g,
                iid_var_G=var / G,
                bound_iid_G=math.nan if bound_g is None else bound_g,
                g1_ratio=_div(var_g, bound_g),
            )
            rec.update({f"l1_{k}": v for k, v in l1.items() if k != "n"})
        out.append(rec)
    return out


# ------------------------------------------------------------------------------ the run


def _load_models(cfg: ValidateConfig, out: Path, dev, progress: bool, cache_dir):
    from simulations.lm.rl import build_model, run

    if cfg.model is not None:
        from simulations.lm.hf import load_hf

        mu, tok = load_hf(cfg.model, dev)
        pi, _ = load_hf(cfg.later_model, dev)
        return mu, pi, tok
    rl_cfg = cfg.rl_config()
    mu, tok = build_model(rl_cfg, dev, progress=progress, cache_dir=cache_dir)
    run(rl_cfg, out / "train", device=str(dev), progress=progress, cache_dir=cache_dir)
    pi, _ = build_model(rl_cfg, dev, progress=False, cache_dir=cache_dir)
    ck = torch.load(out / "train" / "checkpoint.pt", map_location=dev, weights_only=False)
    pi.load_state_dict(ck["model"])
    return mu, pi, tok


def _write_json(path: Path, obj) -> None:
    from vespo_theory.jsonio import dump_json

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_json(obj) + "\n")
    os.replace(tmp, path)


def run_validate(
    cfg: ValidateConfig,
    out_dir: str | os.PathLike,
    *,
    device: str = "auto",
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Run (or resume) ``cfg`` into ``out_dir``.

    Returns ``{"records": [...], "csv": Path, "sidecar": Path, "l1": dict, "skipped": [rules
    taken from the cache], "computed": [rules computed now], "n_params": P, ...}``.
    """
    from simulations.cli.progress import progress as bar
    from simulations.lm.grads import GradSketch, jl_eps, param_count
    from simulations.lm.measure import length_bins
    from simulations.lm.rl import RL_RECIPE, resolve_device
    from simulations.lm.sft import code_identity
    from vespo_theory.provenance import config_hash, run_metadata, write_sidecar
    from vespo_theory.rules import get_rule

    t0 = time.time()
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = config_hash(cfg.key_dict())
    key_path = out / "validate_key.json"
    if key_path.exists():
        old = json.loads(key_path.read_text())
        if old.get("key") != key:
            raise ValueError(
                f"--out {str(out)!r} holds a validate-bound run with other settings; "
                "use a new --out directory (or the same options to resume)"
            )
    else:
        _write_json(key_path, {"key": key, "settings": cfg.key_dict()})
    rec_dir = out / "records"
    rec_dir.mkdir(exist_ok=True)
    cached = {r: rec_dir / f"{r}.json" for r in cfg.rules}
    todo = [r for r in cfg.rules if not cached[r].exists()]
    score_path, samples_path = out / "score.npz", out / "samples.pt"
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    if dev.type == "cpu":  # as in the RL runs: numbers independent of the core count
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
    try:
        need_grads = bool(todo) or not score_path.exists()
        mu = pi = tok = None
        if need_grads or not samples_path.exists():
            mu, pi, tok = _load_models(cfg, out, dev, progress, cache_dir)
        if samples_path.exists():
            s = torch.load(samples_path, map_location="cpu", weights_only=False)
        else:
            s = _sample(cfg, mu, pi, tok, dev)
            tmp = samples_path.with_name(samples_path.name + ".tmp")
            torch.save(s, tmp)
            os.replace(tmp, samples_path)
        mask = s["response_mask"].double()
        tok_lr = ((s["log_pi"].double() - s["log_mu"].double()) * mask).numpy()
        s["log_w"] = tok_lr.sum(1)
        T = mask.sum(1).numpy()
        bin_edges = length_bins(int(T.max()))
        bins = np.searchsorted([lo for lo, _ in bin_edges], T, side="right") - 1
        adv = s["adv"].double().numpy()
        mask_np = mask.numpy() > 0
        s["coef"] = {}
        for r in cfg.rules:
            c = np.asarray(get_rule(r).coefficient(tok_lr, mask_np, adv), dtype=np.float64)
            s["coef"][r] = c[np.arange(c.shape[0]), 0] if get_rule(r).seq_only else c
        P = param_count(pi) if pi is not None else None
        sketch = None
        if cfg.sketch_dim is not None and pi is not None:
            sketch = GradSketch(cfg.sketch_dim, P, seed=cfg.seed, kind=cfg.sketch_kind)
        seq_rules = [r for r in todo if get_rule(r).seq_only]
        tok_rules = [r for r in todo if not get_rule(r).seq_only]
        n, G = cfg.n, cfg.group_size
        n_chunks = math.ceil(n / max(G, (cfg.chunk // G) * G))
        passes = (1 if (seq_rules or not score_path.exists()) else 0) + len(tok_rules)
        rollout = _rollout(s, dev)
        with bar(progress, "validate-bound", total=passes * n_chunks, unit="chunk") as step:
            if passes and (seq_rules or not score_path.exists()):
                score = np.full(n, np.nan)
                accs = {r: _Acc(n, n // G, len(bin_edges)) for r in seq_rules}
                _gradient_pass(
                    pi,
                    rollout,
                    None,
                    accs,
                    s["coef"],
                    adv,
                    bins,
                    cfg,
                    sketch,
                    score,
                    lambda: step("score"),
                )
                np.savez(score_path, score=score)
            score = np.load(score_path)["score"]
            l1 = l1_fit(T, score)
            for r in seq_rules:
                _write_json(cached[r], _records(r, accs[r], s, score, bins, bin_edges, cfg, l1))
            ones = {"_": np.ones(n)}
            for r in tok_rules:
                acc = _Acc(n, n // G, len(bin_edges))
                w = torch.as_tensor(s["coef"][r], dtype=next(pi.parameters()).dtype)
                _gradient_pass(
                    pi,
                    rollout,
                    w.to(dev),
                    {"_": acc},
                    ones,
                    adv,
                    bins,
                    cfg,
                    sketch,
                    None,
                    lambda r=r: step(r),
                )
                _write_json(cached[r], _records(r, acc, s, score, bins, bin_edges, cfg, l1))
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])
    records = []
    for r in cfg.rules:
        records.extend(json.loads(cached[r].read_text()))
    records = [{k: rec.get(k) for k in RECORD_KEYS} for rec in records]
    csv_path = out / "validate.csv"
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=RECORD_KEYS)
        w.writeheader()
        for rec in records:
            w.writerow(
                {
                    k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                    for k, v in rec.items()
                }
            )
    os.replace(tmp, csv_path)
    meta = run_metadata({"validate": asdict(cfg), "n": cfg.n}, seed=cfg.seed, device=dev)
    meta["code"] = code_identity(rl_recipe=RL_RECIPE, validate_recipe=VALIDATE_RECIPE)
    meta["l1_fit"] = l1
    meta["n_params"] = P
    meta["max_new_tokens"] = s["max_new_tokens"]
    meta["rules_from_cache"] = [r for r in cfg.rules if r not in todo]
    meta["gradient_dtype"] = str(next(pi.parameters()).dtype) if pi is not None else None
    if cfg.sketch_dim is not None:
        meta["sketch"] = {
            "dim": cfg.sketch_dim,
            "kind": cfg.sketch_kind,
            "eps_at_delta_0.05": jl_eps(cfg.n, cfg.sketch_dim, 0.05),
        }
    sidecar = write_sidecar(out / "validate.json", meta, wall_time=time.time() - t0)
    return {
        "records": records,
        "csv": csv_path,
        "sidecar": sidecar,
        "l1": l1,
        "skipped": [r for r in cfg.rules if r not in todo],
        "computed": todo,
        "n_params": P,
        "max_new_tokens": s["max_new_tokens"],
    }


def fast_config(**kw) -> ValidateConfig:
    """``ValidateConfig`` with the --fast sizes (and the task's :data:`TASK_EXTRA`), then
    ``kw``."""
    d = {**FAST, **kw}
    d["extra"] = {**TASK_EXTRA.get(d["task"], {}), **d.get("extra", {})}
    return ValidateConfig(**d)
