"""Logistic (sigmoid / softmax) CPDs: the fit reaches the optimum of the documented objective,
which is scikit-learn's logistic regression (unpenalised, and L2 with C = 1 / penalty)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import log_softmax

import pgm
from pgm.cpd.logistic import (
    LogisticCPD,
    compress,
    logistic_features,
    logistic_from_stats,
    logistic_gradient,
    logistic_stats,
)
from pgm.schema import parse_spec

sklearn_linear = pytest.importorskip("sklearn.linear_model", reason="scikit-learn is a test extra")


def make_data(n: int, n_states: int, seed: int):
    """Design (one 3-state discrete parent, two continuous parents) and a drawn child."""
    rng = np.random.default_rng(seed)
    parent = rng.integers(0, 3, n)
    cont = np.column_stack([rng.normal(size=n), rng.normal(2.0, 1.5, n)])
    feats = logistic_features([(parent, 3)], [cont], n)
    assert feats.shape == (n, 4)
    true = np.random.default_rng(99).normal(scale=0.7, size=(n_states, 5))
    true[0] = 0.0
    logits = true[:, 0] + feats @ true[:, 1:].T
    probs = np.exp(log_softmax(logits, axis=1))
    child = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1).clip(0, n_states - 1)
    return parent, cont, feats, child


def independent_design(parent: np.ndarray, cont: np.ndarray) -> np.ndarray:
    """The same features built without pgm: indicators of parent states 1 and 2, then the values."""
    return np.column_stack([(parent == 1).astype(float), (parent == 2).astype(float), cont])


def sklearn_fit(x, y, C=np.inf, sample_weight=None):
    # C=np.inf is scikit-learn's unpenalised fit (penalty=None is deprecated from 1.8)
    model = sklearn_linear.LogisticRegression(C=C, tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Setting penalty=None will ignore the C..." on old versions
        model.fit(x, y, sample_weight=sample_weight)
    return model


def nll(cpd: LogisticCPD, feats, child, weights=None, penalty=0.0) -> float:
    """The documented objective, computed directly from the softmax."""
    logits = cpd.intercept + feats @ cpd.coef.T
    lp = log_softmax(logits, axis=1)[np.arange(len(child)), child]
    w = np.ones(len(child)) if weights is None else weights
    return float(-(w @ lp) + 0.5 * penalty * np.sum(cpd.coef[1:] ** 2))


# ---------------------------------------------------------------- the optimum

@pytest.mark.parametrize("n_states", [2, 3, 4])
@pytest.mark.parametrize("penalty", [0.0, 2.5])
def test_gradient_vanishes_at_the_fit(n_states, penalty):
    _, _, feats, child = make_data(1500, n_states, seed=n_states)
    stats = logistic_stats(feats, child, n_states)
    cpd = logistic_from_stats(stats, penalty)
    grad = logistic_gradient(cpd, stats, penalty)
    assert grad.shape == ((n_states - 1) * 5,)
    # the total (not mean) gradient over 1500 rows: the optimiser's tolerance must reach it
    assert np.linalg.norm(grad) < 1e-6


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_logistic_gradient_is_the_derivative_of_the_objective(penalty):
    """Central differences of the directly computed objective at an arbitrary point."""
    _, _, feats, child = make_data(300, 3, seed=7)
    rng = np.random.default_rng(8)
    intercept = np.r_[0.0, rng.normal(size=2)]
    coef = np.vstack([np.zeros(4), rng.normal(size=(2, 4))])
    weights = rng.uniform(0.2, 2.0, 300)
    stats = logistic_stats(feats, child, 3, weights=weights)
    grad = logistic_gradient(LogisticCPD(intercept, coef), stats, penalty)
    theta = np.hstack([intercept[1:, None], coef[1:]])  # the (k - 1, 1 + q) layout, raveled
    numeric = np.empty(theta.size)
    h = 1e-6
    for i in range(theta.size):
        up, down = theta.ravel().copy(), theta.ravel().copy()
        up[i] += h
        down[i] -= h
        vals = []
        for t in (up, down):
            t = t.reshape(2, 5)
            vals.append(nll(LogisticCPD(np.r_[0.0, t[:, 0]], np.vstack([np.zeros(4), t[:, 1:]])),
                            feats, child, weights, penalty))
        numeric[i] = (vals[0] - vals[1]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-5)


def test_fit_minimises_the_objective():
    _, _, feats, child = make_data(800, 3, seed=11)
    cpd = logistic_from_stats(logistic_stats(feats, child, 3))
    best = nll(cpd, feats, child)
    rng = np.random.default_rng(12)
    for _ in range(20):
        moved = LogisticCPD(cpd.intercept + np.r_[0, rng.normal(scale=1e-3, size=2)],
                            cpd.coef + np.vstack([np.zeros(4), rng.normal(scale=1e-3, size=(2, 4))]))
        assert nll(moved, feats, child) > best


# ---------------------------------------------------------------- scikit-learn

def test_binary_equals_sklearn_unpenalised():
    parent, cont, feats, child = make_data(2000, 2, seed=1)
    cpd = logistic_from_stats(logistic_stats(feats, child, 2))
    ref = sklearn_fit(independent_design(parent, cont), child)
    np.testing.assert_allclose(cpd.intercept, [0.0, ref.intercept_[0]], rtol=0, atol=1e-5)
    np.testing.assert_allclose(cpd.coef[1], ref.coef_[0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(cpd.coef[0], 0.0)


@pytest.mark.parametrize("n_states", [3, 4])
def test_softmax_equals_sklearn_unpenalised(n_states):
    """Unpenalised softmax is identified only up to a shift shared by all states, so compare
    each state's parameters minus those of state 0 (pgm's reference state), and the probabilities."""
    parent, cont, feats, child = make_data(1500, n_states, seed=n_states + 10)
    cpd = logistic_from_stats(logistic_stats(feats, child, n_states))
    x = independent_design(parent, cont)
    ref = sklearn_fit(x, child)
    np.testing.assert_array_equal(ref.classes_, np.arange(n_states))
    np.testing.assert_allclose(cpd.intercept, ref.intercept_ - ref.intercept_[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(cpd.coef, ref.coef_ - ref.coef_[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.exp(cpd.log_probs(feats)), ref.predict_proba(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("penalty", [0.1, 1.0, 10.0])
def test_binary_penalised_equals_sklearn_with_C_one_over_penalty(penalty):
    parent, cont, feats, child = make_data(1000, 2, seed=3)
    cpd = logistic_from_stats(logistic_stats(feats, child, 2), penalty)
    ref = sklearn_fit(independent_design(parent, cont), child, C=1.0 / penalty)
    np.testing.assert_allclose(cpd.intercept[1], ref.intercept_[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(cpd.coef[1], ref.coef_[0], rtol=0, atol=1e-5)


def test_weighted_equals_sklearn_sample_weight():
    parent, cont, feats, child = make_data(1000, 2, seed=4)
    weights = np.random.default_rng(5).uniform(0.1, 3.0, 1000)
    cpd = logistic_from_stats(logistic_stats(feats, child, 2, weights=weights))
    ref = sklearn_fit(independent_design(parent, cont), child, sample_weight=weights)
    np.testing.assert_allclose(cpd.intercept[1], ref.intercept_[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(cpd.coef[1], ref.coef_[0], rtol=0, atol=1e-5)


def test_pgm_fit_of_a_logistic_node_equals_sklearn():
    """Through the public API: parents declared in any order; features are the discrete
    parent's indicators then the continuous parents (as ``FittedModel.cpd`` labels them)."""
    parent, cont, _, child = make_data(1500, 3, seed=21)
    spec = parse_spec({"name": "lg", "nodes": {
        "u": {"type": "gaussian"}, "v": {"type": "gaussian"}, "p": {"states": ["a", "b", "c"]},
        "y": {"states": ["r", "s", "t"], "cpd": "logistic", "parents": ["u", "p", "v"]}}})
    df = pd.DataFrame({"u": cont[:, 0], "v": cont[:, 1], "p": np.array(["a", "b", "c"])[parent],
                       "y": np.array(["r", "s", "t"])[child]})
    table = pgm.fit(spec, df).cpd("y")
    assert list(table.columns) == ["intercept", "p=b", "p=c", "u", "v"]
    assert list(table.index) == ["r", "s", "t"]
    ref = sklearn_fit(independent_design(parent, cont), child)
    np.testing.assert_allclose(table["intercept"], ref.intercept_ - ref.intercept_[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), ref.coef_ - ref.coef_[0], rtol=0, atol=1e-5)


# ---------------------------------------------------------------- pieces

def test_features_are_indicators_then_values():
    codes = np.array([0, 2, 1, 2])
    values = np.array([[1.5], [-2.0], [0.0], [3.0]])
    feats = logistic_features([(codes, 3), (np.array([1, 0, 0, 1]), 2)], [values], 4)
    np.testing.assert_array_equal(feats, [[0, 0, 1, 1.5], [0, 1, 0, -2.0], [1, 0, 0, 0.0], [0, 1, 1, 3.0]])
    assert logistic_features([], [], 3).shape == (3, 0)


def test_compress_merges_identical_feature_rows_exactly():
    feats = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    stats = logistic_stats(feats, np.array([0, 1, 1, 0]), 2, weights=np.array([1.0, 2.0, 0.5, 3.0]))
    merged = compress(stats)
    order = np.lexsort(merged.features.T[::-1])
    np.testing.assert_array_equal(merged.features[order], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(merged.targets[order], [[4.0, 0.5], [0.0, 2.0]])


def test_no_parents_gives_the_state_frequencies():
    child = np.array([0, 1, 1, 2, 2, 2, 2, 0, 2, 1])
    cpd = logistic_from_stats(logistic_stats(np.zeros((10, 0)), child, 3))
    np.testing.assert_allclose(np.exp(cpd.log_probs(np.zeros((1, 0))))[0], [0.2, 0.3, 0.5], rtol=0, atol=1e-9)


def test_log_prob_and_sample_follow_the_softmax():
    cpd = LogisticCPD(np.array([0.0, 0.5, -1.0]), np.array([[0.0, 0.0], [1.0, -0.5], [0.3, 2.0]]))
    feats = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
    expected = log_softmax(cpd.intercept + feats @ cpd.coef.T, axis=1)
    np.testing.assert_allclose(cpd.log_probs(feats), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cpd.log_prob(np.array([2, 0, 1]), feats), expected[[0, 1, 2], [2, 0, 1]], atol=1e-14)
    n = 60_000
    draws = cpd.sample(np.repeat(feats[1:2], n, axis=0), np.random.default_rng(0))
    p = np.exp(expected[1])
    freq = np.bincount(draws, minlength=3) / n
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n))


def test_separable_data_warns_and_a_penalty_fixes_it():
    x = np.linspace(-1, 1, 40)[:, None]
    child = (x[:, 0] > 0).astype(int)
    stats = logistic_stats(x, child, 2)
    with pytest.warns(pgm.ConvergenceWarning, match="penalty"):
        logistic_from_stats(stats, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cpd = logistic_from_stats(stats, penalty=1.0)
    assert np.linalg.norm(logistic_gradient(cpd, stats, 1.0)) < 1e-7


def test_a_parent_state_that_never_occurs_warns():
    parent, cont, feats, child = make_data(500, 2, seed=6)
    keep = parent != 2  # the indicator of parent state 2 is zero on every row: its weight is arbitrary
    with pytest.warns(pgm.ConvergenceWarning, match="parent state never occurs"):
        logistic_from_stats(logistic_stats(feats[keep], child[keep], 2))


def test_no_false_alarm_on_a_rare_state():
    """Extreme but finite probabilities are not separation."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(20_000, 1))
    child = (rng.random(20_000) < 1 / (1 + np.exp(-(-6.0 + 0.5 * x[:, 0])))).astype(int)
    assert 10 < child.sum() < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cpd = logistic_from_stats(logistic_stats(x, child, 2))
    ref = sklearn_fit(x, child)
    np.testing.assert_allclose([cpd.intercept[1], cpd.coef[1, 0]], [ref.intercept_[0], ref.coef_[0, 0]], atol=1e-5)
