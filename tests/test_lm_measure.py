"""Measurement-only mode on a tiny built-in model: log W between two versions by length bin."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulations.lm.measure import length_bins, measure_log_w, summarise_log_w
from simulations.lm.model import GPT, GPTConfig
from simulations.lm.tasks import get_task
from simulations.lm.tokenizer import CharTokenizer


def _setup():
    tok = CharTokenizer()
    torch.manual_seed(0)
    early = GPT(GPTConfig(tok.vocab_size, 32, 2, 2, 80))
    prompts = get_task("reverse").sample(np.random.default_rng(0), 10)
    return tok, early, prompts


def _measure(early, later, tok, prompts):
    return measure_log_w(
        early,
        later,
        tok,
        prompts,
        samples_per_prompt=3,
        max_new_tokens=40,
        generator=torch.Generator().manual_seed(0),
        device="cpu",
        chunk=16,
    )


def test_same_version_gives_log_w_zero():
    tok, early, prompts = _setup()
    rows, lw, lengths = _measure(early, early, tok, prompts)
    # scorer == sampler: log W is float32 rounding of cached vs full forward, summed over
    # <= 40 tokens (~40 * 1e-6)
    assert np.abs(lw).max() < 1e-4
    assert rows[-1]["bin"] == "all" and rows[-1]["n"] == 30
    # equal weights up to |log W| < 1e-4: ESS/n = 1 - Var(log W) + O(4th moment) >= 1 - 1e-8,
    # so 1e-6 is 100x the largest deviation the previous assertion allows
    assert abs(rows[-1]["ess_frac"] - 1.0) < 1e-6


def test_later_version_spreads_log_w_and_longer_bins_spread_more():
    tok, early, prompts = _setup()
    later = copy.deepcopy(early)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in later.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    rows, lw, lengths = _measure(early, later, tok, prompts)
    assert sum(r["n"] for r in rows[:-1]) == rows[-1]["n"] == lw.size == lengths.size
    assert lw.std() > 0.01
    for r in rows:
        # float64 phi: within rounding of M only near W = k/lam, where log phi rounds by 8 u
        # (k |L| + lam (1 + W)) ~ 8 u * 6 ~ 1e-14; ESS/n = exp(2 lse(x) - lse(2x)) / n rounds by
        # a few u (|x| + log n) ~ 1e-14 for |log W| < 50: 1e-12 is ~100x both
        assert r["phi2_pos_mean"] <= r["m2_pos"] * (1 + 1e-12)
        assert 0 < r["ess_frac"] <= 1 + 1e-12
        if r["n"] < 20:
            assert math.isnan(r["khat"]) and math.isnan(r["khat_thresh"])
        elif math.isfinite(r["khat"]):  # min(1 - 1/log10 n, 0.7) for the bin's n responses
            from vespo_theory.diagnostics import khat_threshold

            assert r["khat_thresh"] == khat_threshold(r["n"])


def test_summary_matches_direct_formulas():
    x = np.random.default_rng(0).normal(-0.5, 1.0, size=50)
    s = summarise_log_w(x)
    w = np.exp(x)
    # float64 sums of 50 terms (<= 49 u each, u = 1.1e-16), |x| <= 3: ess_frac is a ratio of a
    # squared sum to a sum on one side and logsumexps on the other, <= ~(3 * 49 + 20) u = 1.9e-14
    # relative (4.4e-16 seen); 1e-13 is 5x. (Was 1e-10, 5000x looser than this derivation.)
    assert math.isclose(s["ess_frac"], w.sum() ** 2 / (w**2).sum() / 50, rel_tol=1e-13)
    # log mean W = 0.025 is near 0, so compare absolutely: lse(x) - log 50 rounds by a few u *
    # (|x| + log 50) ~ 3e-15, log(mean w) by ~49 u = 5.4e-15 (8.7e-17 seen); 1e-13 is 10x
    assert math.isclose(s["log_mean_w"], math.log(w.mean()), rel_tol=0.0, abs_tol=1e-13)
    # phi = exp(2 x + 3 (1 - w)) with |2 x| + 3 (1 + w) <= 22: 8 u * 22 = 2e-14 per term, plus the
    # 50-term mean (5.4e-15) on each side: 1e-13 is ~4x (0 seen)
    phi = w**2 * np.exp(3 * (1 - w))
    assert math.isclose(s["phi_pos_mean"], phi.mean(), rel_tol=1e-13)
    assert length_bins(1) == [(1, 2)]
