"""Per-state and per-cell Dirichlet priors through pgm.fit: MLE (the (n + a) estimate), EM, the
model-wide prior= option, and the fitted file.

pgmpy's BayesianEstimator with the same pseudo-counts is compared in tests/test_score_reference.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema import parse_spec

TABLE = [[1.0, 0.0, 2.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.0, 4.0, 0.0]]


def declaration(prior_c=None, prior_a=None, latent=False):
    nodes = {
        "a": {"states": ["x", "y"], **({"prior": {"dirichlet": prior_a}} if prior_a is not None else {})},
        "b": {"states": 3},
        "c": {"states": ["lo", "mid", "hi"], "parents": ["a", "b"],
              **({"prior": {"dirichlet": prior_c}} if prior_c is not None else {})},
    }
    if latent:
        nodes["z"] = {"states": 2, "latent": True, "prior": {"dirichlet": [2.0, 0.5]}}
        nodes["b"]["parents"] = ["z"]
        nodes["d"] = {"states": 2, "parents": ["z"], "prior": {"dirichlet": [[1.0, 0.0], [0.0, 3.0]]}}
    return parse_spec({"name": "priors", "graph": "directed", "nodes": nodes})


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 120
    a = rng.choice(["x", "y"], n, p=[0.4, 0.6])
    b = rng.integers(0, 3, n)
    c = np.array(["lo", "mid", "hi"])[(b + (a == "y") + rng.integers(0, 2, n)) % 3]
    frame = pd.DataFrame({"a": a, "b": b, "c": c})
    return frame[~((frame["a"] == "y") & (frame["b"] == 2))].reset_index(drop=True)  # configuration (y, 2) unseen


def hand_map(rows: pd.DataFrame, pseudo) -> np.ndarray:
    """(n + a) normalised, counting with pandas: rows are (a, b) configurations, first parent slowest."""
    counts = pd.crosstab([rows["a"], rows["b"]], rows["c"]).reindex(
        index=pd.MultiIndex.from_product([["x", "y"], [0, 1, 2]]), columns=["lo", "mid", "hi"], fill_value=0)
    total = counts.to_numpy(float) + np.broadcast_to(np.asarray(pseudo, float), (6, 3))
    return total / total.sum(axis=1, keepdims=True)


def test_full_pseudo_count_table_gives_n_plus_a_normalised(rows):
    fitted = pgm.fit(declaration(prior_c=TABLE), rows)
    np.testing.assert_allclose(fitted.cpds["c"].probs, hand_map(rows, TABLE), rtol=1e-14, atol=0)
    # the unseen configuration (y, 2) takes its pseudo-counts normalised: (0, 4, 0) -> (0, 1, 0)
    assert fitted.cpd("c").loc[("y", "2")].tolist() == [0.0, 1.0, 0.0]


def test_per_state_prior_is_the_same_row_under_every_configuration(rows):
    fitted = pgm.fit(declaration(prior_c=[0.5, 2.0, 1.0], prior_a=[3.0, 0.0]), rows)
    np.testing.assert_allclose(fitted.cpds["c"].probs, hand_map(rows, [0.5, 2.0, 1.0]), rtol=1e-14, atol=0)
    n_x = float((rows["a"] == "x").sum())
    np.testing.assert_allclose(fitted.cpds["a"].probs[0], [(n_x + 3) / (len(rows) + 3), (len(rows) - n_x) /
                                                           (len(rows) + 3)], rtol=1e-14)
    # a node's own prior wins over the model-wide one, which still applies to the others
    both = pgm.fit(declaration(prior_c=[0.5, 2.0, 1.0]), rows, prior={"dirichlet": 1.0})
    np.testing.assert_allclose(both.cpds["c"].probs, fitted.cpds["c"].probs, rtol=1e-15)
    assert both.cpds["b"].probs[0] == pytest.approx((np.bincount(rows["b"], minlength=3) + 1) / (len(rows) + 3))


def test_em_with_per_state_and_table_priors_is_monotone(rows):
    """EM's history is log L + sum a log theta, which the (n + a) M-step never decreases."""
    spec = declaration(prior_c=TABLE, prior_a=[1.0, 2.0], latent=True)
    rng = np.random.default_rng(2)
    data = rows.assign(d=rng.integers(0, 2, len(rows)))
    data.loc[rng.random(len(data)) < 0.2, "c"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(spec, data, max_iter=60, seed=3)
    history = np.asarray(fitted.history)
    assert len(history) > 5
    steps = np.diff(history)
    assert steps.min() >= -1e-9 * abs(history[-1]), steps.min()
    # the recorded value is the log-likelihood plus the log-prior of the recorded parameters
    def log_prior_of(key, a):
        a = np.broadcast_to(np.asarray(a, float), fitted.cpds[key].probs.shape)
        return float(sum(a[i] * np.log(p) for i, p in np.ndenumerate(fitted.cpds[key].probs) if a[i] > 0))

    log_prior = sum(log_prior_of(k, a) for k, a in (("c", TABLE), ("a", [[1.0, 2.0]]), ("z", [[2.0, 0.5]]), ("d", [[1, 0], [0, 3]])))
    assert history[-1] == pytest.approx(fitted.log_likelihood(data) + log_prior, rel=1e-9)


@pytest.mark.parametrize("prior", [{"dirichlet": [1, 2, 3]}, {"dirichlet": [[1, 2], [3, 4]]}, {"bdeu": [10]}])
def test_fit_refuses_arrays_in_the_model_wide_prior(rows, prior):
    with pytest.raises(pgm.PGMError, match=r"one number for every table.*declare them on the node in the graph file"):
        pgm.fit(declaration(), rows, prior=prior)


def test_fitted_file_keeps_the_per_cell_prior(rows, tmp_path):
    fitted = pgm.fit(declaration(prior_c=TABLE, prior_a=[3.0, 0.5]), rows)
    path = tmp_path / "priors.fitted.yaml"
    fitted.save(path)
    back = pgm.load(path)
    assert back.spec.nodes["c"].prior.dirichlet == TABLE
    assert back.spec.nodes["a"].prior.dirichlet == [3.0, 0.5]
    refit = pgm.fit(back, rows)
    np.testing.assert_array_equal(refit.cpds["c"].probs, fitted.cpds["c"].probs)


def test_chunked_file_fits_equal_in_memory_with_per_cell_priors(rows, tmp_path):
    """Streaming sums the chunks' statistics, then the same (n + a) step and the same log-prior term."""
    spec = declaration(prior_c=TABLE, prior_a=[1.0, 2.0])
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    in_memory, chunked = pgm.fit(spec, rows), pgm.fit(spec, path, chunk_rows=25)
    for key in in_memory.cpds:
        np.testing.assert_allclose(chunked.cpds[key].probs, in_memory.cpds[key].probs, rtol=1e-13, atol=1e-15)
    latent = declaration(prior_c=TABLE, prior_a=[1.0, 2.0], latent=True)
    data = rows.assign(d=np.random.default_rng(4).integers(0, 2, len(rows)))
    data.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        start = pgm.fit(latent, data, max_iter=3, seed=0)
        in_memory = pgm.fit(latent, data, max_iter=15, init=start)
        chunked = pgm.fit(latent, path, chunk_rows=25, max_iter=15, init=start)
    np.testing.assert_allclose(chunked.history, in_memory.history, rtol=1e-12)
