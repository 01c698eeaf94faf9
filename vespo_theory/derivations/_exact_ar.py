"""A tiny exact enumerator for small autoregressive models with rational token probabilities.

A model is a function ``prefix -> tuple of sympy Rationals`` (the next-token distribution over a
vocabulary of size V given the prefix, a tuple of token ids). Enumerating every sequence of
length T gives exact expectations of functions of the sequence weight W = pi(y)/mu(y).

Used by claims M1 and M2; kept here (not in ``simulations``) so that ``vespo_theory`` stays
self-contained.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import sympy as sp

Model = Callable[[tuple], tuple]


def random_dist(rng: random.Random, vocab: int, *, zero_at: int | None = None) -> tuple:
    """A random distribution over ``vocab`` tokens with small-denominator Rational entries.

    ``zero_at`` forces that token's probability to exactly 0 (a support hole).
    """
    raw = [rng.randint(1, 9) for _ in range(vocab)]
    if zero_at is not None:
        raw[zero_at] = 0
    s = sum(raw)
    return tuple(sp.Rational(r, s) for r in raw)


def context_free(rng: random.Random, vocab: int, T: int) -> Model:
    """Token distribution depends on the position t only (a fresh table per position)."""
    tables = [random_dist(rng, vocab) for _ in range(T)]
    return lambda prefix: tables[len(prefix)]


def markov(rng: random.Random, vocab: int, T: int) -> Model:
    """Token distribution depends on the previous token (first-order Markov)."""
    first = random_dist(rng, vocab)
    trans = {v: random_dist(rng, vocab) for v in range(vocab)}
    return lambda prefix: first if not prefix else trans[prefix[-1]]


def prefix_dependent(rng: random.Random, vocab: int, T: int) -> Model:
    """Token distribution depends on the whole prefix (a separate table for every prefix)."""
    tables = {}
    for t in range(T):
        for prefix in itertools.product(range(vocab), repeat=t):
            tables[prefix] = random_dist(rng, vocab)
    return lambda prefix: tables[tuple(prefix)]


def sequences(vocab: int, T: int):
    """Every token sequence of length T."""
    return itertools.product(range(vocab), repeat=T)


def seq_prob(model: Model, y: tuple) -> sp.Rational:
    """The exact probability of the sequence ``y`` under ``model`` (product of conditionals)."""
    p = sp.Integer(1)
    for t in range(len(y)):
        p *= model(y[:t])[y[t]]
    return p


def moment_w(mu: Model, pi: Model, vocab: int, T: int, power: int) -> sp.Rational:
    """E_mu[W^power] exactly, summing over mu's support (W = pi(y)/mu(y))."""
    total = sp.Integer(0)
    for y in sequences(vocab, T):
        m = seq_prob(mu, y)
        if m == 0:
            continue
        total += m * (seq_prob(pi, y) / m) ** power
    return total


def martingale_defects(mu: Model, pi: Model, vocab: int, T: int) -> list:
    """Prefixes where E_mu[r_t | prefix] != 1, i.e. where W_t fails to be a mean-one martingale."""
    bad = []
    for t in range(T):
        for prefix in itertools.product(range(vocab), repeat=t):
            m, p = mu(prefix), pi(prefix)
            step = sum(m[v] * (p[v] / m[v]) for v in range(vocab) if m[v] != 0)
            if step != 1:
                bad.append((prefix, step))
    return bad
