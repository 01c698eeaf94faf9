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
    assert abs(rows[-1]["ess_frac"] - 1.0) < 1e-6  # equal weights: ESS = n


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
        assert r["phi2_pos_mean"] <= r["m2_pos"] * (1 + 1e-12)
        assert 0 < r["ess_frac"] <= 1 + 1e-12
        if r["n"] < 20:
            assert math.isnan(r["khat"])


def test_summary_matches_direct_formulas():
    x = np.random.default_rng(0).normal(-0.5, 1.0, size=50)
    s = summarise_log_w(x)
    w = np.exp(x)
    # float64 sums of 50 terms: relative error ~1e-14; 1e-10 leaves ample room
    assert math.isclose(s["ess_frac"], w.sum() ** 2 / (w**2).sum() / 50, rel_tol=1e-10)
    assert math.isclose(s["log_mean_w"], math.log(w.mean()), rel_tol=1e-10)
    phi = w**2 * np.exp(3 * (1 - w))
    assert math.isclose(s["phi_pos_mean"], phi.mean(), rel_tol=1e-10)
    assert length_bins(1) == [(1, 2)]
