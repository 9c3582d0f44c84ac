"""max_decode (max-product on a clique tree and a traceback) against brute force over every joint state."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pgm.infer.elimination import build_clique_tree, max_decode


@st.composite
def factor_sets(draw):
    n_vars = draw(st.integers(1, 6))
    names = [f"v{i}" for i in range(n_vars)]
    cards = {v: draw(st.integers(1, 3)) for v in names}
    n_factors = draw(st.integers(1, 6))
    scopes = [tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))
              for _ in range(n_factors)]
    seed = draw(st.integers(0, 2**31))
    batch = draw(st.integers(1, 4))
    zeros = draw(st.booleans())
    return names, cards, scopes, seed, batch, zeros


@settings(max_examples=60, deadline=None)
@given(factor_sets())
def test_max_decode_is_the_brute_force_maximum(case):
    names, cards, scopes, seed, batch, zeros = case
    rng = np.random.default_rng(seed)
    tables = []
    for i, s in enumerate(scopes):
        shape = ((batch,) if i % 2 == 0 else ()) + tuple(cards[v] for v in s)
        t = rng.normal(size=shape)
        if zeros:  # some impossible entries (log 0), as evidence indicators make
            t = np.where(rng.random(shape) < 0.3, -np.inf, t)
        tables.append(t)
    tree = build_clique_tree(scopes, cards)
    codes, log_max = max_decode(tree, tables)
    states = list(itertools.product(*[range(cards[v]) for v in tree.variables]))
    for b in range(batch):
        def value(state):
            a = dict(zip(tree.variables, state))
            return sum((t[b] if t.ndim == len(s) + 1 else t)[tuple(a[v] for v in s)] for t, s in zip(tables, scopes))
        best = max(value(s) for s in states)
        assert log_max[b] == best or np.isclose(log_max[b], best, rtol=1e-12, atol=1e-12)
        if np.isfinite(best):
            got = value(tuple(codes[b]))
            assert np.isclose(got, best, rtol=1e-12, atol=1e-12)
