"""The RL loop: GRPO group advantages, staleness N, asynchronous lag L, engine mismatch.

Protocol of one optimizer step (``LMRunConfig`` holds every number):

* A rollout batch holds ``N * prompts_per_step`` prompts with ``group_size`` (G) responses each,
  sampled by the *sampler*: the weights of version ``max(0, v - async_lag)`` (v = optimizer
  steps done) run through the sampler engine (``mismatch``: none, bf16 or noise:SIGMA). The
  sampler's log-probs of the sampled tokens are ``rollout_log_prob`` (log mu).
* Advantages are GRPO's: reward minus the group mean, over the group standard deviation (+1e-6).
* ``old_log_prob`` is the trainer (float32) at version v, computed once per rollout batch
  (pi_old). The batch is split into N mini-batches with one optimizer step each, so mini-batch i
  is i versions stale (staleness N, as in the paper).
* The loss is ``vespo_theory.losses.get_loss(rule)`` with veRL's arguments, entangled or
  decoupled correction passed through; gradients clipped at ``grad_clip`` (the norm before
  clipping is reported).

Per optimizer step one row of ``metrics.csv`` (``COLUMNS``). ``log_w`` is the sequence
log-weight of the current policy against the sampler, ``sum_t (log pi_theta - log mu)``, taken
before the step. ``phi_*`` is VESPO's kernel (default ``VespoParams``) at that W with the sign
of the advantage: the observed E[phi^2] per sign against M^2 (claim B2) for every rule, whatever
rule trains. ``ess`` is Kish's ESS of the mini-batch's W (``ess_frac`` = ess / B), ``khat`` the
PSIS tail index and ``khat_thresh`` its sample-size dependent threshold min(1 - 1/log10 B, 0.7)
for the B sequences of the mini-batch (0.446 at B = 64; Vehtari et al. 2024, arXiv 1507.02646
§3.2.4, Eq. 13: k-hat above it, or above 0.7, is too heavy a tail for B draws; NaN with k-hat).
``kl_sampler`` is the exact KL(sampler || trainer at v) per response position, averaged over
response tokens. ``clip_frac`` / ``zero_frac``: fraction of response tokens that
the rule clips (its own indicator) / gives an exactly zero coefficient.

Collapse criterion (the same for every rule): held-out greedy success falls below
``collapse_frac`` (0.5) of its best-so-far for ``collapse_k`` (3) consecutive evaluations, or
the loss becomes non-finite. The run goes on after a collapse (the criterion is reported).

Resumable: a checkpoint (weights, optimizer, weight snapshots for the lag, RNG states, rows) is
written after every rollout batch; ``run`` continues from it and gives the same numbers as an
uninterrupted run on CPU.
"""

from __future__ import annotations

import collections
import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from simulations.lm.model import ATTN_IMPLS
from simulations.lm.sampling import Rollout, generate, parse_mismatch, sequence_log_probs
from simulations.lm.sft import (
    SFT_RECIPE,
    SFTConfig,
    code_identity,
    drop_late_defaults,
    encode_prompts,
    evaluate,
    load_or_train_sft,
    torch_minor,
)
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer
from vespo_theory.jsonio import dump_json
from vespo_theory.losses import AGG_MODES

__all__ = [
    "COLUMNS",
    "LOSS_AGG_MODES",
    "RL_RECIPE",
    "LMRunConfig",
    "build_model",
    "collapse_summary",
    "heldout_prompts",
    "recipe",
    "resolve_device",
    "run",
    "run_key",
]

# The version of the RL training recipe (``_run`` and its helpers below: sampling, advantages,
# the optimizer, RNG streams, the evaluation, the metrics). BUMP IT with every change that can
# change a run's numbers for the same LMRunConfig: it keys the cached sweep runs (``run_key``)
# and is stored in every checkpoint, so that a run of older code is neither reused nor resumed.
# The warm start has its own, simulations.lm.sft.SFT_RECIPE.
RL_RECIPE = 1

COLUMNS = [
    "step",
    "version_sampler",
    "staleness",
    "reward",
    "heldout_success",
    "response_length",
    "log_w_mean",
    "log_w_std",
    "log_w_min",
    "log_w_max",
    "phi_mean",
    "phi_pos_mean",
    "phi_neg_mean",
    "phi2_pos_mean",
    "phi2_neg_mean",
    "m2_pos",
    "m2_neg",
    "ess",
    "ess_frac",
    "khat",
    "khat_thresh",
    "grad_norm",
    "loss",
    "kl_sampler",
    "clip_frac",
    "zero_frac",
    "coef_pos_mean",
    "coef_neg_mean",
    "entropy",
    "ppo_kl",
    "vcpo_baseline_mean",
]

LOSS_AGG_MODES = AGG_MODES  # the loss's own list (vespo_theory.losses): one list


@dataclass(frozen=True)
class LMRunConfig:
    """One RL run. ``steps`` counts optimizer steps; ``staleness`` is N; ``async_lag`` is L."""

    task: str = "add"
    rule: str = "vespo"
    staleness: int = 1
    async_lag: int = 0
    mismatch: str = "none"
    correction: str = "entangled"
    steps: int = 256
    seed: int = 0
    prompts_per_step: int = 8
    group_size: int = 8
    lr: float = 3e-4
    temperature: float = 1.0
    grad_clip: float = 1.0
    loss_agg_mode: str = "token-mean"
    eval_every: int = 16
    heldout_n: int = 128
    collapse_frac: float = 0.5
    collapse_k: int = 3
    # warm start (built-in model only); the defaults live in SFTConfig
    d_model: int = SFTConfig.d_model
    n_layer: int = SFTConfig.n_layer
    n_head: int = SFTConfig.n_head
    sft_steps: int = SFTConfig.steps
    sft_lr: float = SFTConfig.lr
    sft_batch_size: int = SFTConfig.batch_size
    sft_seed: int = SFTConfig.seed
    attn: str = SFTConfig.attn  # explicit | sdpa (GPTConfig.attn); in run_key only if not default
    # mixture-of-experts warm start (GPTConfig.n_expert / top_k; 0 = dense) and routing replay
    # (R2: the trainer scores with the sampler's expert choices); late fields, in run_key only
    # when not at their defaults (sft.LATE_DEFAULTS)
    n_expert: int = SFTConfig.n_expert
    top_k: int = SFTConfig.top_k
    routing_replay: bool = False
    # Hugging Face causal LM directory (no warm start); None = the built-in transformer
    model: str | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        _check_rule(self.rule)
        for name, lo in (
            ("staleness", 1),
            ("async_lag", 0),
            ("steps", 1),
            ("prompts_per_step", 1),
            ("group_size", 2),
            ("eval_every", 1),
            ("heldout_n", 1),
            ("collapse_k", 1),
            ("sft_steps", 0),
            ("sft_batch_size", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                hint = " (N, mini-batches per rollout batch)" if name == "staleness" else ""
                raise ValueError(f"{name}{hint} must be an integer >= {lo}, got {v!r}")
        for name in ("lr", "temperature", "grad_clip", "sft_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not 0 < self.collapse_frac < 1:
            raise ValueError(f"collapse_frac must be in (0, 1), got {self.collapse_frac!r}")
        if self.correction not in ("entangled", "decoupled"):
            raise ValueError(
                f"correction must be 'entangled' or 'decoupled', got {self.correction!r}"
            )
        if self.rule == "vcpo" and self.correction != "entangled":
            raise ValueError(
                "correction: rule vcpo supports only 'entangled' in the RL loop (its baseline "
                "weights w_i are the ratio the rule sees)"
            )
        if self.loss_agg_mode not in LOSS_AGG_MODES:
            raise ValueError(
                f"loss_agg_mode must be one of {', '.join(LOSS_AGG_MODES)}, "
                f"got {self.loss_agg_mode!r}"
            )
        parse_mismatch(self.mismatch, n_expert=self.n_expert)
        if not isinstance(self.routing_replay, bool):
            raise ValueError(f"routing_replay must be true or false, got {self.routing_replay!r}")
        self.sft_config()  # the warm start's own one-line errors (n_expert, top_k, ...)
        if self.routing_replay and self.n_expert == 0:
            raise ValueError(
                "routing_replay: needs a mixture-of-experts model (n_expert > 0); a dense model "
                "has no routing to replay"
            )
        if self.attn not in ATTN_IMPLS:
            raise ValueError(f"attn must be one of {', '.join(ATTN_IMPLS)}, got {self.attn!r}")
        if self.model is not None and not Path(self.model).exists():
            raise ValueError(f"--model: path {self.model!r} does not exist")

    def sft_config(self) -> SFTConfig:
        return SFTConfig(
            task=self.task,
            d_model=self.d_model,
            n_layer=self.n_layer,
            n_head=self.n_head,
            steps=self.sft_steps,
            batch_size=self.sft_batch_size,
            lr=self.sft_lr,
            seed=self.sft_seed,
            attn=self.attn,
            n_expert=self.n_expert,
            top_k=self.top_k,
        )


def _check_rule(name: str) -> None:
    from vespo_theory.rules import available

    if name not in available():
        raise ValueError(f"rule: unknown rule {name!r}; valid rules: {', '.join(available())}")


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is a ValueError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"--device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda[:i], got {device!r}")
    return dev


# ------------------------------------------------------------------------------- helpers


def _group_advantages(rewards: torch.Tensor, G: int) -> torch.Tensor:
    r = rewards.view(-1, G)
    adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True, unbiased=True) + 1e-6)
    return adv.reshape(-1)


def _vcpo_advantages(cfg, model, mb: Rollout, log_prob, rewards):
    """VCPO's advantages for one mini-batch (the rule ``vcpo``; Huang et al., arXiv
    2602.17616): R_i minus the off-policy optimal baseline of the prompt's group, b* =
    sum w_i^2 ||g_i||^2 R_i / sum w_i^2 ||g_i||^2 (:func:`vespo_theory.vcpo.vcpo_baseline`),
    over the group's reward std + 1e-6 as GRPO's are. w_i is the sequence weight the rule
    itself sees (``entangled``: the current policy against the sampler, sum_t (log_prob -
    rollout_log_prob)); g_i = grad log pi_theta(y_i) per sequence
    (:func:`simulations.lm.grads.sequence_score_norms`; no RNG is drawn). Returns (advantages
    [B], the mean b* over the mini-batch's rows)."""
    from simulations.lm.grads import sequence_score_norms, vcpo_advantages

    mask = mb.response_mask
    log_w = ((log_prob - mb.rollout_log_prob) * mask).sum(-1).double()
    g2 = sequence_score_norms(_Tempered(model, cfg.temperature), mb)
    adv, b = vcpo_advantages(log_w, g2, rewards, cfg.group_size, return_baseline=True)
    return adv, float(b.mean())


def _policy_stats(mb: Rollout, log_prob, cur_full, old_lp) -> dict:
    """Per-step policy diagnostics of a mini-batch (no gradient, no RNG): ``entropy``, the mean
    over response tokens of the current policy's next-token entropy -sum_v pi log pi (nats);
    ``ppo_kl``, the mean over response tokens of old_log_prob - log_prob (the k1 estimate of
    KL(pi_old || pi_theta) that veRL logs as ``actor/ppo_kl``, verl/trainer/ppo/core_algos.py
    ``compute_policy_loss``)."""
    mask = mb.response_mask
    n_tok = float(mask.sum())
    ent = -(cur_full.exp() * cur_full).sum(-1)
    return {
        "entropy": float((ent * mask).sum()) / n_tok,
        "ppo_kl": float(((old_lp - log_prob) * mask).sum()) / n_tok,
    }


def collapse_summary(steps, heldout, frac: float, k: int, nonfinite_step=None) -> dict:
    """Apply the collapse criterion to the held-out series (steps with a value only).

    Collapse when success < ``frac`` * best-so-far for ``k`` consecutive evaluations (the
    collapse step is the k-th such evaluation), or at the first non-finite loss.

    >>> collapse_summary([8, 16, 24, 32, 40], [0.4, 0.6, 0.2, 0.1, 0.25], 0.5, 3)["collapse_step"]
    40
    >>> collapse_summary([8, 16], [0.4, 0.1], 0.5, 3)["collapsed"]
    False
    """
    best, run_len, when = -math.inf, 0, None
    for s, h in zip(steps, heldout):
        best = max(best, h)
        run_len = run_len + 1 if (best > 0 and h < frac * best) else 0
        if run_len >= k and when is None:
            when = int(s)
    if nonfinite_step is not None and (when is None or nonfinite_step < when):
        when = int(nonfinite_step)
    return {
        "collapsed": when is not None,
        "collapse_step": when,
        "best_heldout": None if not heldout else float(max(heldout)),
        "final_heldout": None if not heldout else float(heldout[-1]),
    }


def _row_stats(cfg, rule, mb: Rollout, log_prob, old_lp, adv, trainer_full) -> dict:
    """Diagnostics of one mini-batch before its optimizer step (no gradient)."""
    from vespo_theory.bounds import kernel_bound
    from vespo_theory.diagnostics import khat_threshold, kish_ess, psis_khat
    from vespo_theory.kernels import phi_signed
    from vespo_theory.params import VespoParams

    mask = mb.response_mask
    tok_log_ratio = (log_prob - mb.rollout_log_prob) * mask
    seq_log_w = tok_log_ratio.sum(-1).double()
    vp = VespoParams()
    phi = phi_signed(seq_log_w, adv.double(), vp)
    pos = adv >= 0
    ess = float(kish_ess(seq_log_w))
    try:
        khat = float(psis_khat(seq_log_w))
        khat_thresh = khat_threshold(seq_log_w.numel())  # psis_khat needs >= 20: S >= 2 holds
    except ValueError:  # fewer than 20 sequences: no tail fit
        khat = khat_thresh = float("nan")
    coef, clipped = rule.coefficient_and_clipped(tok_log_ratio, mask, adv)
    n_tok = float(mask.sum())
    valid = mask > 0
    zero_frac = float(((coef == 0) & valid).sum()) / n_tok
    clip_frac = float("nan") if clipped is None else float(clipped.sum()) / n_tok
    kl = (mb.sampler_logp_full.exp() * (mb.sampler_logp_full - trainer_full)).sum(-1)
    kl = float((kl * mask).sum()) / n_tok

    def mean_where(x, sel):
        return float(x[sel].mean()) if bool(sel.any()) else float("nan")

    return {
        "response_length": float(mask.sum(-1).mean()),
        "log_w_mean": float(seq_log_w.mean()),
        "log_w_std": float(seq_log_w.std()) if seq_log_w.numel() > 1 else 0.0,
        "log_w_min": float(seq_log_w.min()),
        "log_w_max": float(seq_log_w.max()),
        "phi_mean": float(phi.mean()),
        "phi_pos_mean": mean_where(phi, pos),
        "phi_neg_mean": mean_where(phi, ~pos),
        "phi2_pos_mean": mean_where(phi**2, pos),
        "phi2_neg_mean": mean_where(phi**2, ~pos),
        "m2_pos": kernel_bound(vp.k_pos, vp.lam_pos).M2,
        "m2_neg": kernel_bound(vp.k_neg, vp.lam_neg).M2,
        "ess": ess,
        "ess_frac": ess / seq_log_w.numel(),
        "khat": khat,
        "khat_thresh": khat_thresh,
        "kl_sampler": kl,
        "clip_frac": clip_frac,
        "zero_frac": zero_frac,
    }


def _item(x) -> float:
    return float("nan") if x is None else float(x)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in COLUMNS])
    os.replace(tmp, path)


def heldout_prompts(task, n: int) -> list[str]:
    """The fixed held-out prompts of every run (the same for every rule, N and seed)."""
    return task.sample(np.random.default_rng([99, 0]), n)


def recipe() -> dict:
    """What a run's numbers depend on besides its config: both recipe versions and torch's
    major.minor (part of ``run_key`` and of every checkpoint; a sweep keying "lm" cells should
    hold it too)."""
    return {"sft_recipe": SFT_RECIPE, "rl_recipe": RL_RECIPE, "torch": torch_minor()}


def run_key(cfg: LMRunConfig) -> str:
    """The cache key of a run of ``cfg`` (sweep cells keep their runs under it): the config plus
    the recipe versions and torch's major.minor, so code that changes the numbers changes the
    key."""
    from vespo_theory.provenance import config_hash

    run = drop_late_defaults(asdict(cfg))  # keys of configs older than a late field unchanged
    return config_hash({"run": run, **recipe()})


def build_model(cfg: LMRunConfig, device: torch.device, progress: bool = False, cache_dir=None):
    """(model, tokenizer) on ``device``: the warm-started built-in model (from the warm-start
    cache in ``cache_dir``, see :func:`simulations.lm.sft.load_or_train_sft`) or a HF
    checkpoint (``cfg.model``)."""
    if cfg.model is not None:
        from simulations.lm.hf import load_hf

        return load_hf(cfg.model, device)
    model = load_or_train_sft(
        cfg.sft_config(), device="cpu", cache_dir=cache_dir, progress=progress
    )
    return model.to(device), CharTokenizer()


# ---------------------------------------------------------------------------------- run


def run(
    cfg: LMRunConfig,
    out_dir: str | os.PathLike,
    *,
    device: str = "auto",
    progress: bool = False,
    max_rollouts: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Run (or resume) ``cfg`` into ``out_dir``; returns the summary dict.

    ``max_rollouts`` stops after that many rollout batches of this call (as an interruption
    would, right after a checkpoint); calling ``run`` again resumes (refused when the checkpoint
    was written by another recipe version or torch minor version). ``cache_dir`` holds the
    warm-start checkpoints (default :func:`vespo_theory.cache.cache_dir`). On CPU the run uses
    ``torch.use_deterministic_algorithms(True)`` and one thread; both settings are restored.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        return _run(cfg, out_dir, device, progress, max_rollouts, cache_dir)
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def _run(cfg, out_dir, device, progress, max_rollouts, cache_dir) -> dict:
    from vespo_theory.losses import get_loss
    from vespo_theory.provenance import run_metadata, write_sidecar
    from vespo_theory.rules import get_rule

    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_dict = asdict(cfg)
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = drop_late_defaults(json.loads(cfg_path.read_text()))  # runs older than a field
        if old != drop_late_defaults(json.loads(json.dumps(cfg_dict))):
            raise ValueError(
                f"--out {str(out)!r} holds a run with a different config; "
                "use a new --out directory (or the same options to resume)"
            )
    else:
        cfg_path.write_text(json.dumps(cfg_dict, indent=2) + "\n")

    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
        # One thread: float summation order (and so every number) must not depend on the
        # core count; parallelism comes from running sweep cells side by side.
        torch.set_num_threads(1)
    t_start = time.time()
    task = get_task(cfg.task)
    rule = get_rule(cfg.rule)
    loss_fn = get_loss(cfg.rule)
    engine = parse_mismatch(cfg.mismatch)
    model, tok = build_model(cfg, dev, progress, cache_dir)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    heldout = heldout_prompts(task, cfg.heldout_n)
    rng = np.random.default_rng([cfg.seed, 1])
    gen = torch.Generator(device=dev).manual_seed(int(cfg.seed) * 1000003 + 17)
    version, rows, nonfinite_step, wall_before, initial = 0, [], None, 0.0, None
    snapshots: collections.OrderedDict[int, dict] = collections.OrderedDict()

    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ck.get("recipe") != recipe():
            raise ValueError(
                f"--out {str(out)!r} holds a checkpoint of other code (recipe "
                f"{ck.get('recipe')}, this code {recipe()}): its numbers would mix both; "
                "use a new --out directory"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        snapshots = collections.OrderedDict(ck["snapshots"])
        rng.bit_generator.state = ck["rng"]
        gen.set_state(ck["gen"].cpu())  # generator states are CPU byte tensors on any device
        version, rows = ck["version"], ck["rows"]
        nonfinite_step, wall_before = ck["nonfinite_step"], ck["wall_time"]
        initial = ck["initial_heldout"]
    if initial is None:
        initial = evaluate(model, task, tok, heldout, dev)
        model.train()

    def snapshot():
        snapshots[version] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        while len(snapshots) > cfg.async_lag + 1:
            snapshots.popitem(last=False)

    if not snapshots:
        snapshot()

    pbar = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        pbar = tqdm(
            total=cfg.steps,
            initial=version,
            desc=f"{cfg.rule} N={cfg.staleness}",
            file=sys.stderr,
        )
    eos, pad = tok.eos_id, tok.pad_id
    n_rollouts = 0
    while version < cfg.steps:
        if max_rollouts is not None and n_rollouts >= max_rollouts:
            break
        # ---- sampling with the lagged weights through the sampler engine
        v_sampler = max(0, version - cfg.async_lag)
        v_sampler = v_sampler if v_sampler in snapshots else min(snapshots)
        if v_sampler == version and engine.kind != "bf16":
            sampler = model
        else:
            sampler = copy.deepcopy(model)
            sampler.load_state_dict(snapshots[v_sampler])
            sampler = engine.prepare(sampler)
        sampler.eval()
        n_mb = min(cfg.staleness, cfg.steps - version)
        prompts = task.sample(rng, n_mb * cfg.prompts_per_step)
        minibatches = []
        for i in range(n_mb):
            ps = prompts[i * cfg.prompts_per_step : (i + 1) * cfg.prompts_per_step]
            ps = [p for p in ps for _ in range(cfg.group_size)]
            ids, mask = encode_prompts(task, tok, ps, dev)
            with torch.no_grad():
                r = generate(
                    _Tempered(sampler, cfg.temperature),
                    ids,
                    mask,
                    task.max_response_len(),
                    eos_id=eos,
                    pad_id=pad,
                    generator=gen,
                    engine=engine,
                    keep_full=True,
                )
                resp = [tok.decode(row) for row in r.response_ids.tolist()]
                rewards = torch.tensor(
                    [task.reward(p, y) for p, y in zip(ps, resp)], dtype=torch.float32
                ).to(dev)
                old_lp, old_full = sequence_log_probs(
                    _Tempered(model, cfg.temperature),
                    r,
                    return_full=True,
                    replay_routing=cfg.routing_replay,
                )
            minibatches.append((r, rewards, old_lp, old_full))
        model.train()
        reward_mean = float(torch.cat([m[1] for m in minibatches]).mean())
        # ---- N optimizer steps, one per mini-batch
        for mb, rewards, old_lp, old_full in minibatches:
            log_prob, cur_full = sequence_log_probs(
                _Tempered(model, cfg.temperature),
                mb,
                return_full=True,
                replay_routing=cfg.routing_replay,
            )
            b_mean = None
            if cfg.rule == "vcpo":
                adv, b_mean = _vcpo_advantages(cfg, model, mb, log_prob.detach(), rewards)
            else:
                adv = _group_advantages(rewards, cfg.group_size)
            with torch.no_grad():
                stats = _row_stats(cfg, rule, mb, log_prob.detach(), old_lp, adv, old_full)
                stats.update(_policy_stats(mb, log_prob.detach(), cur_full.detach(), old_lp))
            del cur_full
            loss, lmetrics = loss_fn(
                old_log_prob=old_lp,
                log_prob=log_prob,
                advantages=adv[:, None].expand_as(log_prob),
                response_mask=mb.response_mask,
                loss_agg_mode=cfg.loss_agg_mode,
                rollout_log_prob=mb.rollout_log_prob,
                correction=cfg.correction,
            )
            opt.zero_grad(set_to_none=True)
            loss_val = float(loss.detach())
            if math.isfinite(loss_val):
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
                if math.isfinite(grad_norm):
                    opt.step()
                elif nonfinite_step is None:
                    nonfinite_step = version + 1
            else:
                grad_norm = float("nan")
                if nonfinite_step is None:
                    nonfinite_step = version + 1
            version += 1
            snapshot()
            row = {
                "step": version,
                "version_sampler": v_sampler,
                "staleness": version - 1 - v_sampler,
                "reward": reward_mean,
                "heldout_success": None,
                "grad_norm": grad_norm,
                "loss": loss_val,
                "coef_pos_mean": _item(lmetrics.get("phi_mean_pos")),
                "coef_neg_mean": _item(lmetrics.get("phi_mean_neg")),
                "vcpo_baseline_mean": b_mean,
                **stats,
            }
            if version % cfg.eval_every == 0 or version == cfg.steps:
                row["heldout_success"] = evaluate(model, task, tok, heldout, dev)
                model.train()
            rows.append(row)
            if pbar is not None:
                pbar.update(1)
                if row["heldout_success"] is not None:
                    pbar.set_postfix(heldout=f"{row['heldout_success']:.2f}")
        n_rollouts += 1
        # ---- checkpoint after every rollout batch
        ck = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "snapshots": list(snapshots.items()),
            "rng": rng.bit_generator.state,
            "gen": gen.get_state(),
            "version": version,
            "rows": rows,
            "nonfinite_step": nonfinite_step,
            "initial_heldout": initial,
            "wall_time": wall_before + time.time() - t_start,
            "recipe": recipe(),
        }
        tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
        torch.save(ck, tmp)
        os.replace(tmp, ckpt_path)
        _write_csv(out / "metrics.csv", rows)
    if pbar is not None:
        pbar.close()

    ev = [(0, initial)]
    ev += [(r["step"], r["heldout_success"]) for r in rows if r["heldout_success"] is not None]
    summary = collapse_summary(
        [s for s, _ in ev], [h for _, h in ev], cfg.collapse_frac, cfg.collapse_k, nonfinite_step
    )
    summary.update(
        {
            "complete": version >= cfg.steps,
            "steps_done": version,
            "initial_heldout": initial,
            "mean_reward_last": None if not rows else rows[-1]["reward"],
        }
    )
    _write_csv(out / "metrics.csv", rows)
    (out / "summary.json").write_text(dump_json(summary) + "\n")  # strict: NaN -> null
    meta = run_metadata(cfg_dict, seed=cfg.seed, device=dev)
    meta["summary"] = summary
    meta["code"] = code_identity(rl_recipe=RL_RECIPE)
    write_sidecar(out / "metrics.json", meta, wall_time=wall_before + time.time() - t_start)
    return summary


class _Tempered(torch.nn.Module):
    """The model with logits divided by the sampling temperature (identity at 1.0)."""

    def __init__(self, model, temperature: float):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)

    def forward(self, idx, attn_mask, pos_ids, past=None):
        logits, present = self.model(idx, attn_mask, pos_ids, past)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits, present
