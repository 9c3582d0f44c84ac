"""Table CPDs: the pure counting and normalising functions against brute force."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import pgm
from pgm.cpd import config_index
from pgm.cpd.table import TableCPD, TableStats, prior_pseudo_counts, table_from_stats, table_stats


def test_config_index_is_c_order_first_parent_slowest():
    rng = np.random.default_rng(0)
    cards = (2, 3, 4)
    codes = [rng.integers(0, k, 50) for k in cards]
    np.testing.assert_array_equal(config_index(codes, cards), np.ravel_multi_index(codes, cards))
    assert config_index([], ()) == 0
    # broadcasting (EM enumerates hidden parents along a second axis)
    grid = config_index([np.array([[0], [1]]), np.arange(3)[None, :]], (2, 3))
    np.testing.assert_array_equal(grid, [[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("weighted", [False, True])
def test_table_stats_equal_a_loop_over_rows(weighted):
    rng = np.random.default_rng(1)
    n, n_configs, n_states = 500, 6, 3
    child = rng.integers(0, n_states, n)
    configs = rng.integers(0, n_configs, n)
    weights = rng.uniform(0, 2, n) if weighted else None
    brute = np.zeros((n_configs, n_states))
    for i in range(n):
        brute[configs[i], child[i]] += 1.0 if weights is None else weights[i]
    stats = table_stats(child, configs, n_configs, n_states, weights)
    assert stats.counts.dtype == np.float64
    np.testing.assert_allclose(stats.counts, brute, rtol=1e-13, atol=0)
    no_parents = table_stats(child, 0, 1, n_states, weights)
    np.testing.assert_allclose(no_parents.counts[0], brute.sum(axis=0), rtol=1e-13)


def test_mle_is_counts_over_row_totals_and_unseen_rows_are_uniform():
    counts = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.5, 2.5, 5.0]])
    probs, unseen = table_from_stats(TableStats(counts))
    np.testing.assert_array_equal(unseen, [1])
    np.testing.assert_array_equal(probs, [[0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.25, 0.25, 0.5]])


def test_prior_pseudo_counts():
    assert prior_pseudo_counts(None, 4, 3) == 0.0
    assert prior_pseudo_counts({"dirichlet": 2.5}, 4, 3) == 2.5
    assert prior_pseudo_counts({"bdeu": 12}, 4, 3) == 1.0  # ess / (n_configs * n_states)
    probs, unseen = table_from_stats(TableStats(np.array([[3.0, 1.0], [0.0, 0.0]])), {"dirichlet": 1})
    assert unseen.size == 0
    np.testing.assert_array_equal(probs, [[4 / 6, 2 / 6], [0.5, 0.5]])


def test_log_prob_indexes_the_table():
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0]])
    cpd = TableCPD(probs)
    child = np.array([0, 1, 1, 0])
    configs = np.array([0, 0, 1, 2])
    np.testing.assert_array_equal(cpd.log_prob(child, configs), np.log([0.2, 0.8, 0.4, 1.0]))
    assert cpd.log_prob(np.array([1]), np.array([2]))[0] == -np.inf
    with np.errstate(divide="ignore"):
        logs = np.log(probs)
    # broadcast: every state of a hidden child against each row's configuration
    table = cpd.log_prob(np.arange(2)[None, :], configs[:, None])
    assert table.shape == (4, 2)
    np.testing.assert_array_equal(table, logs[configs])


def test_sample_frequencies_match_each_configuration():
    probs = np.array([[0.1, 0.6, 0.3], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    cpd = TableCPD(probs)
    n = 90_000
    configs = np.repeat(np.arange(3), n // 3)
    draws = cpd.sample(configs, n, np.random.default_rng(0))
    assert draws.min() >= 0 and draws.max() <= 2
    for c in range(3):
        m = n // 3
        freq = np.bincount(draws[configs == c], minlength=3) / m
        bound = 5 * np.sqrt(probs[c] * (1 - probs[c]) / m)
        assert np.all(np.abs(freq - probs[c]) <= bound), (c, freq)  # zero-probability states never drawn
    again = cpd.sample(configs, n, np.random.default_rng(0))
    np.testing.assert_array_equal(draws, again)


@pytest.mark.parametrize("probs, fragment", [
    ([[0.5, 0.5], [0.3, 0.6]], "row 1 sums to 0.9"),
    ([[0.5, 0.5], [1.2, -0.2]], "in [0, 1]"),
    ([[0.5, np.nan], [0.5, 0.5]], "finite"),
])
def test_check_refuses_tables_that_are_not_distributions(probs, fragment):
    with pytest.raises(pgm.ModelError, match=r"params\.x\.table") as info:
        TableCPD.check(np.array(probs), "params.x.table")
    assert fragment in str(info.value)


def test_check_accepts_rounded_tables():
    # BIF files print 4-6 digits: rows summing to 1 within 1e-6 are accepted as written
    probs = np.array([[0.3333333, 0.3333333, 0.3333334], [0.9999995, 0.0000005, 0.0]])
    np.testing.assert_array_equal(TableCPD.check(probs, "x"), probs)


def test_counts_of_every_cell_with_all_parent_configurations():
    """Each (configuration, state) cell of a 2 x 3 x 2 family gets exactly the rows that hold it."""
    cells = list(itertools.product(range(2), range(3), range(2)))
    reps = np.arange(1, len(cells) + 1)  # cell i appears i + 1 times
    rows = np.repeat(np.array(cells), reps, axis=0)
    stats = table_stats(rows[:, 2], config_index([rows[:, 0], rows[:, 1]], (2, 3)), 6, 2)
    np.testing.assert_array_equal(stats.counts.ravel(), reps)


# ---------------------------------------------------------------- per-state and per-cell priors
def test_per_state_and_table_pseudo_counts_broadcast_against_the_counts():
    per_state = prior_pseudo_counts({"dirichlet": [0.5, 1.0, 2.0]}, 4, 3)
    assert per_state.shape == (1, 3)
    np.testing.assert_array_equal(np.broadcast_to(per_state, (4, 3)), [[0.5, 1.0, 2.0]] * 4)
    table = [[1, 2, 3], [0, 0, 1], [4, 5, 6], [0.25, 0, 0]]
    np.testing.assert_array_equal(prior_pseudo_counts({"dirichlet": table}, 4, 3), table)
    # a one-row table of a node without parents is its per-state prior
    np.testing.assert_array_equal(prior_pseudo_counts({"dirichlet": [[1, 2]]}, 1, 2), [[1, 2]])


@pytest.mark.parametrize("value, shape", [([1, 2], "(3,)"), ([[1, 2, 3]] * 3, "(4, 3)"), ([[1, 2]] * 4, "(4, 3)"),
                                          ([1, -1, 0], "(3,)")])
def test_pseudo_counts_of_the_wrong_shape_are_refused(value, shape):
    # the schema refuses these in a graph file; a prior built in Python is checked here too
    with pytest.raises(pgm.ModelError, match=re.escape(f"of shape {shape}")):
        prior_pseudo_counts({"dirichlet": value}, 4, 3)


def test_map_with_a_full_pseudo_count_table_is_counts_plus_pseudo_counts_normalised():
    """(n[c, k] + a[c, k]) / sum_j (n[c, j] + a[c, j]), cell by cell, as pgmpy's BayesianEstimator;
    a configuration with no rows takes its pseudo-counts normalised, and one with neither is uniform."""
    counts = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 5.0, 1.0], [0.0, 0.0, 0.0]])
    a = [[0.5, 0.0, 2.0], [1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    probs, unseen = table_from_stats(TableStats(counts), {"dirichlet": a})
    expected = np.empty((4, 3))
    for c in range(4):
        row = [counts[c, k] + a[c][k] for k in range(3)]
        total = sum(row)
        expected[c] = [x / total for x in row] if total > 0 else [1 / 3] * 3
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(probs[0], [3.5 / 6.5, 1 / 6.5, 2 / 6.5])
    np.testing.assert_array_equal(probs[1], [0.25, 0.75, 0.0])
    np.testing.assert_array_equal(unseen, [3])
    # per state: the same pseudo-counts under every configuration
    probs, unseen = table_from_stats(TableStats(counts), {"dirichlet": [1.0, 0.0, 3.0]})
    np.testing.assert_allclose(probs, (counts + [1, 0, 3]) / (counts + [1, 0, 3]).sum(axis=1, keepdims=True),
                               rtol=0, atol=1e-15)
    assert unseen.size == 0
