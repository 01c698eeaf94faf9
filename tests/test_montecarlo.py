"""The alias-method sampler: correct frequencies, seeded, shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2 as chi2_dist

from simulations.config import ARConfig
from simulations.montecarlo import alias_table, sample_sequences, sample_tokens
from simulations.tabular import make_ar_model


@pytest.mark.parametrize("V", [2, 7, 300])
def test_alias_tables_are_exact_and_frequencies_fit(V):
    """The tables encode p exactly (to float rounding, 1e-15) and the sampled counts pass a
    chi-square goodness-of-fit test at the 4-sigma level: p-value > 6.3e-5, the two-sided
    normal tail beyond 4 sd (a per-token 4-se check would be a multiple-comparison test and
    uses a normal approximation that fails for tokens with a handful of counts)."""
    rng = np.random.default_rng(V)
    p = rng.dirichlet(np.ones(V) * 0.5, size=2)
    table = alias_table(p)
    n = 200_000
    for s in range(2):
        prob, alias = table.prob[s * V : (s + 1) * V], table.alias[s * V : (s + 1) * V]
        implied = prob / V + np.bincount(alias, weights=(1 - prob) / V, minlength=V)
        # Vose's build rounds each entry through a short chain of subtractions in the q = V p
        # scale (<= 9 aliases per entry here); / V this is a few u * max p <= a few u = 1.1e-16
        # (1.1e-16 at V = 2, 5e-17 at V = 300 seen); 1e-15 is 9 u
        np.testing.assert_allclose(implied, p[s], atol=1e-15)
        # the packed 32-bit thresholds: within 2^-32 of prob (the sampler's stated resolution)
        thr = (table.packed[s * V : (s + 1) * V] >> np.uint64(32)).astype(float) / 2.0**32
        assert np.max(np.abs(thr - prob)) <= 2.0**-32
        y = sample_tokens(
            table, np.full(n, s), rng.bit_generator.random_raw(n), bits=rng.bit_generator
        )
        counts = np.bincount(y, minlength=V)
        chi2 = float(((counts - n * p[s]) ** 2 / (n * p[s])).sum())
        assert chi2_dist.sf(chi2, V - 1) > 6.3e-5, chi2


def test_sequences_follow_the_state_machine():
    model = make_ar_model(ARConfig(V=3, T=6, policy="markov", end_token=True))
    b = sample_sequences(model, 500, np.random.default_rng(0))
    assert b.tokens.shape == (500, 6) and b.weight is None
    assert (b.states[:, 1:] == b.tokens[:, :-1] + 1).all()  # markov: state = previous token + 1
    assert (b.tok_log_ratio[~b.mask] == 0).all()


def test_markov_transition_frequencies():
    """Frequencies of y_t given y_{t-1} within 4 binomial standard errors of the model."""
    model = make_ar_model(ARConfig(V=3, T=4, policy="markov", staleness=1))
    b = sample_sequences(model, 100_000, np.random.default_rng(1))
    p = np.exp(model.log_behaviour)
    for prev in range(3):
        sel = b.tokens[:, 1][b.tokens[:, 0] == prev]
        freq = np.bincount(sel, minlength=3) / sel.size
        se = np.sqrt(p[prev + 1] * (1 - p[prev + 1]) / sel.size)
        assert (np.abs(freq - p[prev + 1]) <= 4 * se).all()


def test_seeded():
    model = make_ar_model(ARConfig(V=5, T=8))
    a = sample_sequences(model, 1000, np.random.default_rng(7))
    b = sample_sequences(model, 1000, np.random.default_rng(7))
    c = sample_sequences(model, 1000, np.random.default_rng(8))
    assert np.array_equal(a.tokens, b.tokens) and not np.array_equal(a.tokens, c.tokens)
    with pytest.raises(ValueError, match="policy must be"):
        sample_sequences(model, 10, np.random.default_rng(0), policy="sampler")


def test_column_choice_is_exactly_uniform():
    """Lemire's rejection: for V = 3 the rejected low products are exactly those below
    2^32 mod 3 = 1, and every accepted word maps to each column equally often: check on an
    exhaustive grid of high words (2^20 evenly spaced words times V)."""
    from simulations.montecarlo import _columns

    V = 3
    hi = np.arange(0, 1 << 32, 1 << 12, dtype=np.uint64)  # 2^20 high words
    raw = hi << np.uint64(32)
    cols = _columns(raw.copy(), V, np.random.PCG64(0))
    counts = np.bincount(cols.astype(np.int64), minlength=V)
    # each column receives ceil or floor of 2^20 / 3 high words: multiply-shift is balanced
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    "cfg",
    [
        dict(V=5, T=7, policy="markov", staleness=1),
        dict(V=4, T=9, policy="prefix", staleness=2, end_token=True),
        dict(V=3, T=6, staleness=1, end_token=True),
        dict(V=6, T=5, staleness=1),
    ],
    ids=["markov", "prefix-end", "context-free-end", "context-free"],
)
def test_batch_bookkeeping_matches_the_model(cfg):
    """The states, mask and log-ratios the sampler builds on the fly (time-major block buffers,
    one flat index per step) equal those recomputed from the tokens alone, exactly (both sides
    are the same float64 table entries), with a block size that leaves a partial last block."""
    from simulations.tabular import states_and_mask

    model = make_ar_model(ARConfig(**cfg))
    b = sample_sequences(model, 1000, np.random.default_rng(3), block=384)
    states, mask = states_and_mask(model, b.tokens)
    assert np.array_equal(b.states, states) and np.array_equal(b.mask, mask)
    lr = model.log_pi - model.log_behaviour
    assert np.array_equal(b.tok_log_ratio, np.where(mask, lr[states, b.tokens], 0.0))
    assert b.tokens.dtype == np.int64 and b.tok_log_ratio.dtype == np.float64
