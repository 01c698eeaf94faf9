r"""torch policy losses for every registered rule, with veRL's argument names.

``get_loss(name)`` returns ``loss_fn(old_log_prob, log_prob, advantages, response_mask,
loss_agg_mode="token-mean", rollout_log_prob=None, correction="entangled", params=None,
discrepancy_cap=2.0, check_finite=False) -> (loss, metrics)``; all tensors [B, T].

Gradient (the contract, tested over every rule and aggregation mode in tests/test_losses.py):

.. math:: \frac{\partial\,\mathrm{loss}}{\partial\,\mathrm{log\_prob}_{b,t}}
          = -\,a_{b,t}\; c_{b,t}\; A_b,

with ``c`` the registry's coefficient (:mod:`vespo_theory.rules`) of the ratio the rule sees,
``A_b`` the sequence advantage and ``a`` the aggregation weights of veRL's ``agg_loss``
(volcengine/verl, ``verl/trainer/ppo/core_algos.py``, function ``agg_loss``, read in the
released verl 0.9.1 from PyPI, its default ``dp_size=1`` and no global batch info; N = number of
valid tokens, B' = number of NON-EMPTY rows (rows with at least one valid token: veRL's ``seq_mask``
"exclude fully masked sequences", in place since 2025-10), T_b = valid tokens of row b,
T_max = ``response_mask.shape[-1]``, veRL's default ``loss_scale_factor``):

=========================== ==================================================
``token-mean``              a = 1 / N
``seq-mean-token-sum``      a = 1 / B'
``seq-mean-token-mean``     a = 1 / (B' T_b)
``seq-mean-token-sum-norm`` a = 1 / (B' T_max)   (the seq-mean of the row sums,
                            then / T_max; veRL before 0.9 divided by T_max only)
=========================== ==================================================

(masked tokens have a = 0; an empty row contributes nothing and does not count in B'.)
Deviations from veRL, all for degenerate batches: with no valid token at all every mode gives 0
(veRL: 0/0 = NaN for ``token-mean`` and the seq-mean modes), and ``seq-mean-token-mean``
divides a row by T_b exactly (veRL by T_b + 1e-8, a relative difference below 1e-8).

The loss VALUE is ``-sum_{b,t} a_{b,t} c_{b,t} A_b (log_prob - log_mu)_{b,t}``: the
coefficient-weighted log-ratio, a first-order (linearised) surrogate of the objective around
pi_theta = mu. It is exactly 0 on-policy (log_prob == the behaviour log-prob) and its gradient is
the one above; it is not an estimate of the expected return, so compare gradients, not values.

Sequence advantage: ``advantages`` is [B, T] (veRL; the value at each row's first valid token is
taken, since GRPO-style outcome advantages are constant along a response) or [B].

Three policies. Without ``rollout_log_prob`` the rule sees ``log_prob - old_log_prob``. With it:

* ``correction="entangled"`` (the reference VESPO code): the rule sees
  ``log_prob - rollout_log_prob`` (W_total = staleness x engine mismatch, one kernel).
* ``correction="decoupled"``: the rule sees ``log_prob - old_log_prob`` and its coefficient is
  multiplied by the truncated discrepancy weight ``min(rho, discrepancy_cap)``, with
  ``rho = pi_old / pi_sampler`` taken at the rule's level: the sequence product
  ``exp(sum_t (old - rollout))`` for sequence-level rules (one weight per row), the token ratio
  for token-level rules (which already drop the prefix product). Truncation in log space.

Masking: a masked token never changes any sequence quantity (W, T, the advantage, the loss):
masked entries are replaced by an exact 0 (``torch.where``, or an integer multiply of the float's
bit pattern by the 0/1 mask, which is the same selection without branches), so a NaN or inf
log-prob at a masked position changes nothing. (The reference VESPO code adds
``log(rollout_is_weights.clamp(min=1e-8))`` MULTIPLIED by the mask to log W: a masked weight
contributes 0 whatever it is, unless it is inf or NaN (0 * inf = NaN); only a zero weight at a
VALID token adds log 1e-8 = -18.4 and so rejects its row.) The sequence-level rules on the CPU
multiply by a 0/1 float mask and recompute, with the integer masking, the rows whose sum is not
finite: the same numbers (see ``_row_sums``).

Metrics: a dict of 0-d tensors computed without any host synchronisation (see docs/losses.md):
``log_w_mean/std/min/max`` and ``w_mean`` over rows with a valid token (raw log W of the ratio the
rule sees), ``phi_mean_pos``/``phi_mean_neg`` (per-row mean coefficient over valid tokens,
averaged over rows with A >= 0 / A < 0) with ``n_pos``/``n_neg``, ``ess`` and ``ess_frac`` (Kish
ESS of the raw, unclamped W), ``clip_frac`` (valid tokens clipped/masked/saturated; rules that
clip), ``n_neg_w_gt_100`` (A < 0 rows with W > 100), and for ``decoupled`` ``disc_log_w_mean``
and ``disc_trunc_frac``.

Mask values: ``response_mask`` must be bool or hold only 0 and 1; any other value (2, 0.5, -1)
raises ValueError naming ``response_mask`` and the value, since it would act as a weight in some
sums and as a selection elsewhere. A bool mask costs nothing; an int or float mask is checked on
the CPU (one pass over the mask, reading host memory: no synchronisation) and, on other devices,
only with ``check_finite=True`` (reading the answer would synchronise with the device).

``check_finite=True`` raises ValueError when an input is non-finite at a valid position or the
loss is non-finite, and checks the mask's values on every device; it synchronises with the
device, so it is off by default.
"""

from __future__ import annotations

import functools
import math

from vespo_theory import rules as _rules
from vespo_theory.array_ops import check_binary_mask, check_positive_scalar, compute_dtype
from vespo_theory.diagnostics import kish_ess

__all__ = ["available", "get_loss", "policy_loss", "AGG_MODES", "CORRECTIONS"]

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
CORRECTIONS = ("entangled", "decoupled")


def available() -> list[str]:
    """The loss names: one per registered rule."""
    return _rules.available()


def get_loss(name: str):
    """The loss function of rule ``name`` (ValueError listing the valid names otherwise)."""
    _rules.get_rule(name)
    fn = functools.partial(policy_loss, name)
    functools.update_wrapper(fn, policy_loss)
    fn.__name__ = f"compute_policy_loss_{name}"
    return fn


# --------------------------------------------------------------------------- validation


def _validate(name, old_log_prob, log_prob, advantages, response_mask, rollout_log_prob):
    import torch

    for arg, val in (
        ("old_log_prob", old_log_prob),
        ("log_prob", log_prob),
        ("advantages", advantages),
        ("response_mask", response_mask),
    ):
        if not isinstance(val, torch.Tensor):
            raise TypeError(f"{arg} must be a torch.Tensor (loss {name}), got {type(val).__name__}")
    if rollout_log_prob is not None and not isinstance(rollout_log_prob, torch.Tensor):
        raise TypeError(f"rollout_log_prob must be a torch.Tensor or None (loss {name})")
    if log_prob.dim() != 2:
        raise ValueError(
            f"log_prob must be [B, T], got shape {tuple(log_prob.shape)} (loss {name})"
        )
    if not log_prob.is_floating_point():
        raise TypeError(f"log_prob must be floating point, got {log_prob.dtype} (loss {name})")
    shape = tuple(log_prob.shape)
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(
            f"log_prob must hold at least one sequence and one token, got shape {shape} "
            f"(loss {name})"
        )
    for arg, val in (
        ("old_log_prob", old_log_prob),
        ("response_mask", response_mask),
        ("rollout_log_prob", rollout_log_prob),
    ):
        if val is not None and tuple(val.shape) != shape:
            raise ValueError(
                f"{arg} has shape {tuple(val.shape)} but log_prob has shape {shape}; "
                f"they must match (loss {name})"
            )
    if tuple(advantages.shape) not in (shape, shape[:1]):
        raise ValueError(
            f"advantages must be [B, T] = {shape} or [B] = {shape[:1]}, got shape "
            f"{tuple(advantages.shape)} (loss {name})"
        )


def _check_finite(name, mask, **tensors):
    import torch

    for arg, val in tensors.items():
        if val is None:
            continue
        bad = ~torch.isfinite(val)
        if val.shape == mask.shape:
            bad = bad & mask
        if bool(bad.any()):
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"{arg} is not finite at valid position {idx} (loss {name})")


# --------------------------------------------------------------------------- the fast kernel


def _make_function():
    import torch

    class _RowWeightedLogRatio(torch.autograd.Function):
        """loss = -sum_b row_coef_b * seq_log_w_b, d loss / d log_prob = -row_coef_b on valid
        tokens, 0 on masked ones. ``seq_log_w`` is computed by the caller from detached inputs;
        the backward writes the [B, T] gradient in one pass and keeps no [B, T] temporary."""

        @staticmethod
        def forward(ctx, log_prob, response_mask, row_coef, seq_log_w):
            ctx.save_for_backward(response_mask, row_coef)
            ctx.lp_dtype = log_prob.dtype
            return -(row_coef * seq_log_w).sum().to(log_prob.dtype)

        @staticmethod
        def backward(ctx, grad_out):
            m, row_coef = ctx.saved_tensors
            col = (-grad_out.to(row_coef.dtype) * row_coef).to(ctx.lp_dtype).unsqueeze(-1)
            if m.is_floating_point():
                # a 0/1 floating mask times a finite column: exact, and one fused pass
                grad = m * col if m.dtype == ctx.lp_dtype else m.to(ctx.lp_dtype) * col
            else:
                zero = torch.zeros((), dtype=ctx.lp_dtype, device=col.device)
                grad = torch.where(m if m.dtype == torch.bool else m.bool(), col, zero)
            return grad, None, None, None

    return _RowWeightedLogRatio


@functools.lru_cache(maxsize=1)
def _row_fn():
    return _make_function()


# --------------------------------------------------------------------------- the loss


def policy_loss(
    name: str,
    old_log_prob,
    log_prob,
    advantages,
    response_mask,
    loss_agg_mode: str = "token-mean",
    rollout_log_prob=None,
    correction: str = "entangled",
    params=None,
    discrepancy_cap: float = 2.0,
    check_finite: bool = False,
):
    """The policy loss of rule ``name``; see the module docstring for the contract."""
    import torch

    rule = _rules.get_rule(name)
    if loss_agg_mode not in AGG_MODES:
        raise ValueError(
            f"unknown loss_agg_mode {loss_agg_mode!r} (loss {name}); valid: {', '.join(AGG_MODES)}"
        )
    if correction not in CORRECTIONS:
        raise ValueError(
            f"unknown correction {correction!r} (loss {name}); valid: {', '.join(CORRECTIONS)}"
        )
    p = rule.resolve_params(params)
    log_cap = math.log(check_positive_scalar(discrepancy_cap, "discrepancy_cap", f"loss {name}"))
    _validate(name, old_log_prob, log_prob, advantages, response_mask, rollout_log_prob)
    # CPU: always (no sync); other devices: only on request (check_finite), see the docstring
    check_binary_mask(response_mask, "response_mask", sync=True if check_finite else None)

    B, T_max = log_prob.shape
    cdt = compute_dtype(log_prob)
    is_bool = response_mask.dtype == torch.bool
    # mask01: the 0/1 float mask itself when one was given (multiplied only with finite numbers).
    mask01 = response_mask if response_mask.dtype in (torch.float32, torch.float64) else None
    decoupled = rollout_log_prob is not None and correction == "decoupled"
    ref = rollout_log_prob if (rollout_log_prob is not None and not decoupled) else old_log_prob
    fast = rule.seq_only
    # bool mask: made only where needed (token-level rules, the finiteness check)
    need_bool = not fast or check_finite
    mask = response_mask if is_bool else (response_mask.bool() if need_bool else None)

    if check_finite:
        _check_finite(
            name,
            mask,
            old_log_prob=old_log_prob,
            log_prob=log_prob.detach(),
            advantages=advantages,
            rollout_log_prob=rollout_log_prob,
        )

    with torch.no_grad():
        if fast:
            # One blocked pass over the rows: log W (and the discrepancy's log), T and each
            # row's first valid token (see _row_sums).
            pairs = [(log_prob.detach(), ref)]
            if decoupled:
                pairs.append((old_log_prob, rollout_log_prob))
            sums, T, first, bwd_mask = _row_sums(pairs, response_mask, cdt, advantages.dim() == 2)
            seq_log_w = sums[0]
        else:
            # counts from the 0/1 mask as given when that is exact and cheaper (a bool sum first
            # widens to int64; a half-precision sum is not exact beyond 256 / 2048)
            exact = mask01 is not None or not (response_mask.is_floating_point() or is_bool)
            T = (response_mask if exact else mask).sum(-1).to(cdt)
            first = _first_valid(mask, mask01) if advantages.dim() == 2 else None
        valid = T > 0
        # Sequence advantage: the value at the first valid token (row 0 for an empty row).
        if advantages.dim() == 2:
            seq_adv = advantages.gather(-1, first).squeeze(-1).to(cdt)
        else:
            seq_adv = advantages.to(cdt)
        seq_adv = torch.where(valid, seq_adv, 0.0)  # an empty row reads a masked value
        pos = seq_adv >= 0
        T1 = T.clamp(min=1.0)
        # Aggregation weight per valid token of each row (veRL's agg_loss; the seq-mean modes
        # divide by the number of non-empty rows, a 0-d tensor: no host sync).
        if loss_agg_mode == "token-mean":
            row_w = (1.0 / T.sum().clamp(min=1.0)).expand(B)
        elif loss_agg_mode == "seq-mean-token-sum":
            row_w = (1.0 / valid.sum().to(cdt).clamp(min=1.0)).expand(B)
        elif loss_agg_mode == "seq-mean-token-mean":
            row_w = 1.0 / (valid.sum().to(cdt).clamp(min=1.0) * T1)
        else:  # seq-mean-token-sum-norm: the seq-mean of the row sums, then / T_max
            row_w = (1.0 / (valid.sum().to(cdt).clamp(min=1.0) * T_max)).expand(B)

        if not fast:
            int_dt = torch.int32 if torch.finfo(cdt).bits == 32 else torch.int64
            mask_int = mask01.to(int_dt) if mask01 is not None else mask
            x = log_prob.detach().to(cdt) - ref.to(cdt)
            _zero_masked_(x, mask_int)  # a masked token holds exactly 0, whatever it held
            seq_log_w = x.sum(-1)

        metrics = {}
        if decoupled:
            if fast:
                seq_d = sums[1]
            else:
                d = old_log_prob.to(cdt) - rollout_log_prob.to(cdt)
                _zero_masked_(d, mask_int)
                seq_d = d.sum(-1)
            if rule.level == "sequence":
                disc = seq_d.clamp(max=log_cap).exp()
                trunc = (seq_d > log_cap).to(cdt)
                metrics["disc_trunc_frac"] = _masked_mean(trunc, valid)
            else:
                disc = d.clamp(max=log_cap).exp()
                metrics["disc_trunc_frac"] = ((d > log_cap) & mask).sum().to(cdt) / T.sum().clamp(
                    min=1.0
                )
                del d
            metrics["disc_log_w_mean"] = _masked_mean(seq_d, valid)

        if fast:
            c_seq, clip_seq = rule.coefficient_from_seq(seq_log_w, pos, T1, p)
            c_seq = torch.where(valid, c_seq, 0.0)
            if decoupled:
                c_seq = c_seq * disc
            row_coef = row_w * c_seq * seq_adv
            phi_row = c_seq
            clip_tok = None if clip_seq is None else (clip_seq & valid).to(cdt) * T
        else:
            # c is 0 and clipped False at masked positions (so the metrics below see valid
            # tokens only)
            c, clipped = rule.coefficient_from_tokens(x, mask, pos, T1, p)
            if decoupled:
                c = c * disc if disc.dim() == 2 else c * disc[:, None]
            tok_coef = c * (row_w * seq_adv)[:, None]
            phi_row = c.sum(-1) / T1
            clip_tok = None if clipped is None else clipped.sum(-1).to(cdt)
            del x

    if fast:
        loss = _row_fn().apply(log_prob, bwd_mask, row_coef, seq_log_w)
    else:
        diff = log_prob.to(cdt) - ref.to(cdt)
        loss = -torch.where(mask, tok_coef * diff, 0.0).sum().to(log_prob.dtype)

    with torch.no_grad():
        metrics.update(_metrics(seq_log_w, T, pos, phi_row, clip_tok, cdt))
    if check_finite and not bool(torch.isfinite(loss)):
        raise ValueError(f"the loss is not finite (loss {name}): {float(loss)}")
    return loss, metrics


def _zero_masked_(x, mask_int):
    """Set ``x`` to +0.0 where the mask is 0, in place, whatever it held there (NaN, inf).

    The float's bit pattern is multiplied by the 0/1 integer mask: exact (valid entries keep
    their bits, NaN included), branch-free, and no second buffer. (``torch.where`` branches per
    element and is several times slower on ragged masks.)
    """
    import torch

    bits = x.view(torch.int32 if x.element_size() == 4 else torch.int64)
    bits.mul_(mask_int)
    return x


# Row blocks of about this many elements (256 KB of float32) on the CPU: the temporaries of one
# block stay in the L2 cache, so each input is read from memory once instead of once per
# elementwise op. Other devices take all rows at once (blocking would only add kernel launches).
_CHUNK_ELEMS = 1 << 16
# On the CPU, rows whose first token is masked are searched for their first valid token after
# the blocked pass when they are at most this fraction of the rows, inside it otherwise.
_SEARCH_AFTER_FRAC = 1 / 8


def _row_sums(pairs, response_mask, cdt, want_first):
    """Masked row sums of ``a - b`` for each ``(a, b)`` in ``pairs``, the valid count ``T`` and,
    with ``want_first``, each row's first valid index, from one blocked pass over the rows.

    Returns ``(sums, T, first, bwd_mask)``: ``sums`` a list of [B] tensors of dtype ``cdt``,
    ``T`` [B] of dtype ``cdt`` (exact: whole numbers), ``first`` [B, 1] int64 or None (an empty
    row gets an index in range whose value the caller ignores), ``bwd_mask`` the mask for the
    backward (on the CPU a bool copy of a mask that is neither bool nor of dtype ``cdt``, made
    in the same pass; the given mask otherwise).

    Rows are processed in blocks (``_CHUNK_ELEMS``): per block, T is the mask's row sum and
    ``a - b`` is written into a block-sized buffer, masked and summed by row. Masking is exact
    whatever a masked entry holds (NaN, inf):

    * in general the mask becomes 0/1 integers and the float's bit pattern is multiplied by them
      (see _zero_masked_): branch-free, used on every device other than the CPU;
    * on the CPU with a 0/1 float mask of dtype ``cdt``, the difference is multiplied by the mask
      as floats (one op fewer). This is exact for every row whose sum comes out finite (a finite
      entry times 0 is 0; any NaN/inf product would make the sum non-finite); the rows whose sum
      does not are recomputed with the integer masking. Finding them (``nonzero`` of a CPU
      tensor) reads host memory, which is no synchronisation.

    The per-row arithmetic (a subtraction, then torch's row sum) is the same on every path, so
    the result is too.

    First valid token: ``T_max - max_t(mask * (T_max - t))`` (whole numbers, exact in ``cdt``
    below 2^24; argmax beyond). A row whose first token is valid needs no search. On the CPU the
    rows that do are looked up first and searched alone after the pass when they are few
    (``_SEARCH_AFTER_FRAC``), inside the pass otherwise; on other devices every row is searched
    inside the (single) pass, branch-free.
    """
    import torch

    B, T_max = response_mask.shape
    dev = response_mask.device
    cpu = dev.type == "cpu"
    int_dt = torch.int32 if torch.finfo(cdt).bits == 32 else torch.int64
    R = max(1, min(B, _CHUNK_ELEMS // max(T_max, 1))) if cpu else max(B, 1)
    by_rev = T_max <= _max_exact_whole(cdt)
    rev = torch.arange(T_max, 0, -1, dtype=cdt, device=dev) if by_rev else None
    float_mask = cpu and response_mask.dtype == cdt
    # CPU, a mask neither bool nor of dtype cdt: a bool copy, made block by block, for the
    # backward (torch.where on it is one pass; on an int or other float mask it would be two)
    mask_b = None
    if cpu and not float_mask and response_mask.dtype != torch.bool:
        mask_b = torch.empty(B, T_max, dtype=torch.bool, device=dev)

    search_rows = None  # rows searched after the pass (CPU, few)
    in_pass = want_first and by_rev
    if in_pass and cpu:
        rows = (response_mask[:, 0] == 0).nonzero().squeeze(-1)
        if rows.shape[0] <= _SEARCH_AFTER_FRAC * B:
            in_pass, search_rows = False, rows

    sums = [torch.empty(B, dtype=cdt, device=dev) for _ in pairs]
    T = torch.empty(B, dtype=cdt, device=dev)
    top = torch.empty(B, dtype=cdt, device=dev) if in_pass else None
    xbuf = torch.empty(R, T_max, dtype=cdt, device=dev)
    mbuf = None if float_mask else torch.empty(R, T_max, dtype=int_dt, device=dev)
    blocks = [response_mask.split(R), T.split(R)]
    blocks.append(top.split(R) if in_pass else [None] * len(blocks[1]))
    blocks.append(mask_b.split(R) if mask_b is not None else [None] * len(blocks[1]))
    for a, b in pairs:
        blocks += [a.split(R), b.split(R)]
    blocks += [s.split(R) for s in sums]
    n_pairs = len(pairs)
    mi = None
    for m, t, tp, mb, *rest in zip(*blocks):
        n = m.shape[0]
        if mb is not None:
            torch.ne(m, 0, out=mb)
        x = xbuf if n == R else xbuf[:n]
        if not float_mask:
            mi = mbuf if n == R else mbuf[:n]
            mi.copy_(m)
        torch.sum(m, -1, dtype=cdt, out=t)
        if tp is not None:
            torch.mul(m if m.dtype == cdt else mi, rev, out=x)
            torch.amax(x, -1, out=tp)
        for j in range(n_pairs):
            a, b, out = rest[2 * j], rest[2 * j + 1], rest[2 * n_pairs + j]
            _masked_diff(a, b, m if float_mask else mi, cdt, out=x)
            torch.sum(x, -1, out=out)

    if float_mask:  # recompute the non-finite rows with the integer masking
        for (a, b), out in zip(pairs, sums):
            bad = (~torch.isfinite(out)).nonzero().squeeze(-1)
            if bad.shape[0]:
                m_bad = response_mask.index_select(0, bad).to(int_dt)
                x = torch.empty(bad.shape[0], T_max, dtype=cdt, device=dev)
                _masked_diff(a.index_select(0, bad), b.index_select(0, bad), m_bad, cdt, out=x)
                out.index_copy_(0, bad, x.sum(-1))

    bwd_mask = response_mask if mask_b is None else mask_b
    if not want_first:
        return sums, T, None, bwd_mask
    if not by_rev:
        first = (response_mask != 0).view(torch.uint8).argmax(-1, keepdim=True)
    elif in_pass:
        first = (T_max - top.to(torch.int64)).clamp_(max=T_max - 1).unsqueeze(-1)
    else:
        first = torch.zeros(B, 1, dtype=torch.int64, device=dev)
        if search_rows.shape[0]:
            sel = response_mask.index_select(0, search_rows)
            top_sel = (sel.to(cdt) * rev).amax(-1, keepdim=True)
            first.index_copy_(
                0, search_rows, (T_max - top_sel.to(torch.int64)).clamp_(max=T_max - 1)
            )
    return sums, T, first, bwd_mask


def _masked_diff(a, b, m, cdt, out):
    """``out = a - b`` in ``cdt`` with masked entries 0: ``m`` is the 0/1 integer mask (exact
    whatever a masked entry holds) or the 0/1 float mask (exact where ``a - b`` is finite)."""
    import torch

    if a.dtype == cdt and b.dtype == cdt:
        torch.sub(a, b, out=out)
    else:  # the difference in cdt, as a.to(cdt) - b.to(cdt)
        out.copy_(a)
        out.sub_(b.to(cdt))
    if m.is_floating_point():
        out.mul_(m)
    else:
        _zero_masked_(out, m)
    return out


def _max_exact_whole(cdt) -> float:
    """The largest whole number up to which every whole number is exact in ``cdt`` (2^24 for
    float32)."""
    import torch

    return 2.0 / torch.finfo(cdt).eps


def _first_valid(mask, mask01):
    """Index [B, 1] of each row's first valid token (0 for an empty row)."""
    import torch

    if mask01 is None:
        return mask.view(torch.uint8).argmax(-1, keepdim=True)
    # max_t mask01 * (T_max - t) = T_max - first: one fused multiply-reduce over a 0/1 mask,
    # cheaper than an argmax.
    T_max = mask01.shape[-1]
    rev = torch.arange(T_max, 0, -1, dtype=mask01.dtype, device=mask01.device)
    top = (mask01 * rev).amax(-1, keepdim=True)
    return (T_max - top.long()).clamp(max=T_max - 1)


def _masked_mean(v, valid):
    import torch

    n = valid.sum().to(v.dtype)
    return torch.where(valid, v, 0.0).sum() / n.clamp(min=1.0)


def _metrics(seq_log_w, T, pos, phi_row, clip_tok, cdt):
    """Metrics from [B] tensors only (a handful of small ops, no host sync)."""
    import torch

    valid = T > 0
    vf = valid.to(cdt)
    n = vf.sum()
    n1 = n.clamp(min=1.0)
    lw = seq_log_w
    mean = torch.where(valid, lw, 0.0).sum() / n1
    # fill invalid rows with the mean: it lies inside [min, max] of the valid rows (0 if none)
    lw_fill = torch.where(valid, lw, mean)
    lo, hi = torch.aminmax(lw_fill)
    var = ((lw_fill - mean) ** 2).sum() / (n - 1.0).clamp(min=1.0)
    lse = torch.logsumexp(torch.where(valid, lw, float("-inf")), 0)
    ess = kish_ess(lw, valid, check_nan_input=False)
    vpos = (valid & pos).to(cdt)
    vneg = vf - vpos
    n_pos, n_neg = vpos.sum(), vneg.sum()
    # phi_row is 0 on empty rows and finite elsewhere (NaN only from NaN inputs): products are
    # exact here.
    out = {
        "log_w_mean": mean,
        "log_w_std": var.sqrt(),
        "log_w_min": lo,
        "log_w_max": hi,
        "w_mean": torch.where(n > 0, (lse - n1.log()).exp(), 0.0),
        "n_pos": n_pos,
        "n_neg": n_neg,
        "phi_mean_pos": (phi_row * vpos).sum() / n_pos.clamp(min=1.0),
        "phi_mean_neg": (phi_row * vneg).sum() / n_neg.clamp(min=1.0),
        "ess": ess,
        "ess_frac": ess / n1,
    }
    if clip_tok is not None:
        out["clip_frac"] = clip_tok.sum() / T.sum().clamp(min=1.0)
    out["n_neg_w_gt_100"] = ((vneg > 0) & (lw > math.log(100.0))).sum().to(cdt)
    return out
