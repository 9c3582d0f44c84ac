"""The exact inference core against brute-force enumeration written independently here.

The brute force builds the full joint log-table of every variable by broadcasting each
factor into it (``np.einsum``-free, no elimination, no tree) and sums it with scipy's
``logsumexp``; pgm eliminates along a heuristic order and calibrates a clique tree.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as sp_logsumexp

from pgm.errors import ModelError
from pgm.infer.elimination import (TooWideError, build_clique_tree, calibrate, elimination_order, log_partition,
                                   marginals, sample_tree, variable_elimination)
from pgm.infer.factor import LogFactor, logsumexp, marginalize, normalize, product, reduce


def brute_joint(factors: list[LogFactor], names: list[str], cards: dict[str, int]) -> np.ndarray:
    """Full joint log-table over ``names`` (axis i = names[i])."""
    joint = np.zeros([cards[v] for v in names])
    for f in factors:
        order = sorted(range(len(f.variables)), key=lambda i: names.index(f.variables[i]))
        table = np.transpose(f.table, order)
        joint = joint + table.reshape([cards[v] if v in f.variables else 1 for v in names])
    return joint


def brute_marginal(joint: np.ndarray, names: list[str], keep: tuple[str, ...]) -> np.ndarray:
    drop = tuple(i for i, v in enumerate(names) if v not in keep)
    table = sp_logsumexp(joint, axis=drop) - sp_logsumexp(joint)
    kept = [v for v in names if v in keep]
    return np.transpose(table, [kept.index(v) for v in keep])


@st.composite
def models(draw, max_vars: int = 14):
    """Random factor graphs: mixed cardinalities on small models, binary up to ``max_vars``;
    edges, triangles and three-way factors; some isolated variables."""
    n = draw(st.integers(2, max_vars))
    if n <= 8:
        cards = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    else:
        cards = [2] * n
    names = [f"x{i}" for i in range(n)]
    n_factors = draw(st.integers(1, 2 * n))
    scopes = []
    for _ in range(n_factors):
        size = draw(st.integers(1, min(3, n)))
        scope = draw(st.lists(st.integers(0, n - 1), min_size=size, max_size=size, unique=True))
        scopes.append(tuple(names[i] for i in scope))
    if draw(st.booleans()) and n >= 3:  # a triangle of pairwise factors
        a, b, c = draw(st.lists(st.integers(0, n - 1), min_size=3, max_size=3, unique=True))
        scopes += [(names[a], names[b]), (names[b], names[c]), (names[c], names[a])]
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.5, 2.0, 10.0]))
    rng = np.random.default_rng(seed)
    card = dict(zip(names, cards))
    factors = [LogFactor(s, scale * rng.standard_normal([card[v] for v in s])) for s in scopes]
    return factors, names, card


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(max_vars=16))
def test_log_z_and_every_clique_marginal_equal_brute_force(model):
    factors, names, cards = model
    joint = brute_joint(factors, names, cards)
    tree = build_clique_tree([f.variables for f in factors], cards)
    cal = calibrate(tree, [f.table for f in factors])
    assert cal.log_z.shape == (1,)
    assert abs(cal.log_z[0] - sp_logsumexp(joint)) < 1e-10 * max(1.0, abs(cal.log_z[0]))
    for f, m in zip(factors, cal.factor_marginals()):
        np.testing.assert_allclose(m[0], brute_marginal(joint, names, f.variables), atol=1e-10, rtol=0)
    for f, p in zip(factors, cal.factor_probabilities()):
        np.testing.assert_allclose(p[0], np.exp(brute_marginal(joint, names, f.variables)), atol=1e-12, rtol=0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(max_vars=10), st.data())
def test_variable_elimination_with_evidence_equals_brute_force(model, data):
    factors, names, cards = model
    present = sorted({v for f in factors for v in f.variables}, key=names.index)
    observed = data.draw(st.lists(st.sampled_from(present), max_size=2, unique=True))
    evidence = {v: data.draw(st.integers(0, cards[v] - 1)) for v in observed}
    free = [v for v in present if v not in evidence]
    keep = tuple(data.draw(st.lists(st.sampled_from(free), max_size=2, unique=True))) if free else ()
    joint = brute_joint(factors, present, cards)
    index = tuple(evidence[v] if v in evidence else slice(None) for v in present)
    cond = joint[index]
    rest = [v for v in present if v not in evidence]
    result = variable_elimination(factors, keep, evidence)
    assert result.variables == keep
    np.testing.assert_allclose(sp_logsumexp(result.table), sp_logsumexp(cond), atol=1e-10)
    if keep:
        np.testing.assert_allclose(normalize(result).table, brute_marginal(cond, rest, keep), atol=1e-10)
    assert abs(log_partition(factors, evidence) - sp_logsumexp(cond)) < 1e-10


def test_batched_evidence_equals_one_inference_per_row():
    rng = np.random.default_rng(3)
    cards = {"a": 2, "b": 3, "c": 2, "d": 4}
    factors = [LogFactor(("a", "b"), rng.normal(size=(2, 3))), LogFactor(("b", "c", "d"), rng.normal(size=(3, 2, 4))),
               LogFactor(("d", "a"), rng.normal(size=(4, 2)))]
    rows = {"a": rng.integers(0, 2, 9), "c": rng.integers(0, 2, 9)}
    reduced = [reduce(f, rows) for f in factors]
    assert all(f.batched for f in reduced) and reduced[0].table.shape == (9, 3)
    tree = build_clique_tree([f.variables for f in reduced], {"b": 3, "d": 4})
    cal = calibrate(tree, [f.table for f in reduced])
    marg = cal.marginal(["d", "b"])
    assert marg.table.shape == (9, 4, 3)
    for r in range(9):
        ev = {"a": int(rows["a"][r]), "c": int(rows["c"][r])}
        assert abs(cal.log_z[r] - log_partition(factors, ev)) < 1e-12
        single = normalize(variable_elimination(factors, ["d", "b"], ev)).table
        np.testing.assert_allclose(marg.table[r], single, atol=1e-12)
    # array evidence through variable elimination gives the same batch
    np.testing.assert_allclose(log_partition(factors, rows), cal.log_z, atol=1e-12)


def test_no_overflow_and_zeros_are_exact():
    # log-potentials of 1e4 would overflow exp(); a -inf entry is a hard zero
    big = LogFactor(("a", "b"), np.array([[1e4, 1e4 - 1.0], [-np.inf, 1e4 - 2.0]]))
    other = LogFactor(("b", "c"), np.array([[0.0, -np.inf], [5e3, 5e3]]))
    margs, log_z = marginals([big, other])
    joint = brute_joint([big, other], ["a", "b", "c"], {"a": 2, "b": 2, "c": 2})
    assert np.isfinite(log_z) and abs(log_z - sp_logsumexp(joint)) < 1e-9
    assert margs[0].table[1, 0] == -np.inf
    np.testing.assert_allclose(np.exp(margs[0].table), np.exp(brute_marginal(joint, ["a", "b", "c"], ("a", "b"))),
                               atol=1e-12)
    assert np.all(np.isfinite(logsumexp(np.array([[1e308, 1e308]]), 1)))
    assert logsumexp(np.full((2, 3), -np.inf), 1).tolist() == [-np.inf, -np.inf]


def test_factor_operations():
    a = LogFactor(("x", "y"), np.log(np.array([[1.0, 2.0], [3.0, 4.0]])))
    b = LogFactor(("y", "z"), np.log(np.array([[1.0, 1.0], [2.0, 0.5]])))
    p = product([a, b])
    assert p.variables == ("x", "y", "z") and p.cards == (2, 2, 2)
    np.testing.assert_allclose(np.exp(marginalize(p, ("z", "x")).table), [[1 + 4, 3 + 8], [1 + 1, 3 + 2]])
    np.testing.assert_allclose(np.exp(reduce(a, {"y": 1}).table), [2.0, 4.0])
    with pytest.raises(ValueError, match="axes"):
        LogFactor(("x",), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="twice"):
        LogFactor(("x", "x"), np.zeros((2, 2)))


def test_sampling_from_the_tree_follows_the_exact_joint():
    rng = np.random.default_rng(0)
    cards = {"a": 2, "b": 3, "c": 2, "d": 2}
    factors = [LogFactor(("a", "b"), rng.normal(size=(2, 3))), LogFactor(("b", "c"), rng.normal(size=(3, 2))),
               LogFactor(("c", "d", "a"), rng.normal(size=(2, 2, 2)))]
    tree = build_clique_tree([f.variables for f in factors], cards)
    cal = calibrate(tree, [f.table for f in factors])
    n = 200_000
    draws = sample_tree(cal, n, rng)
    names = list(tree.variables)
    joint = np.exp(brute_joint(factors, names, cards) - sp_logsumexp(brute_joint(factors, names, cards)))
    counts = np.zeros(joint.shape)
    np.add.at(counts, tuple(draws.T), 1)
    # every joint cell within 5 binomial standard errors
    se = np.sqrt(joint * (1 - joint) / n)
    assert np.all(np.abs(counts / n - joint) <= 5 * se + 1e-12)


def grid_scopes(n: int) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    names = [f"s{i}_{j}" for i in range(n) for j in range(n)]
    scopes = [(f"s{i}_{j}", f"s{i}_{j + 1}") for i in range(n) for j in range(n - 1)]
    scopes += [(f"s{i}_{j}", f"s{i + 1}_{j}") for i in range(n - 1) for j in range(n)]
    return scopes, {v: 2 for v in names}


def test_orders_and_widths():
    chain = [("a", "b"), ("b", "c"), ("c", "d")]
    cards = {v: 2 for v in "abcd"}
    for heuristic in ("min-fill", "min-degree", "frontier", "auto"):
        order = elimination_order(chain, cards, heuristic=heuristic)
        assert sorted(order) == list("abcd")
        assert build_clique_tree(chain, cards, heuristic=heuristic).width == 1
    tree = build_clique_tree(chain, cards, order=["b", "a", "c", "d"])
    assert tree.order == ("b", "a", "c", "d") and tree.width == 2
    # a grid's treewidth is its side; the frontier sweep attains it (auto may trade width for total size)
    scopes, gcards = grid_scopes(8)
    assert build_clique_tree(scopes, gcards, heuristic="frontier").width == 8
    assert build_clique_tree(scopes, gcards).width <= 10
    with pytest.raises(ValueError, match="heuristic"):
        elimination_order(chain, cards, heuristic="best")


def test_too_wide_is_a_model_error_that_points_to_approximations():
    scopes, cards = grid_scopes(30)
    with pytest.raises(ModelError) as info:
        build_clique_tree(scopes, cards)
    assert isinstance(info.value, TooWideError)
    text = str(info.value)
    assert "entries" in text and "learner='pcd'" in text and "learner='pseudo'" in text
    with pytest.raises(TooWideError, match="limit"):
        variable_elimination([LogFactor(s, np.zeros((2, 2))) for s in scopes], [])


def test_disconnected_models_and_isolated_variables():
    cards = {"a": 2, "b": 3, "c": 4}
    factors = [LogFactor(("a",), np.log([1.0, 3.0]))]
    tree = build_clique_tree([f.variables for f in factors], cards)
    cal = calibrate(tree, [f.table for f in factors])
    # b and c appear in no factor: uniform, and they multiply Z by their state counts
    assert abs(cal.log_z[0] - math.log(4.0 * 3 * 4)) < 1e-12
    np.testing.assert_allclose(np.exp(cal.marginal(["c"]).table), np.full(4, 0.25))
    draws = sample_tree(cal, 1000, np.random.default_rng(0))
    assert draws.shape == (1000, 3) and draws[:, 2].max() == 3


def test_every_joint_state_of_a_small_model_sums_to_one():
    rng = np.random.default_rng(7)
    cards = {"a": 2, "b": 2, "c": 3}
    factors = [LogFactor(("a", "b"), rng.normal(size=(2, 2))), LogFactor(("b", "c"), rng.normal(size=(2, 3)))]
    log_z = log_partition(factors)
    total = 0.0
    for a, b, c in itertools.product(range(2), range(2), range(3)):
        total += math.exp(factors[0].table[a, b] + factors[1].table[b, c] - log_z)
    assert abs(total - 1.0) < 1e-12
