"""EM's start and its bookkeeping: ``max_iter`` counts updates, the default start breaks symmetry
and never gives an observed row probability zero, it does not depend on how the rows are split
(in memory, streamed in chunks of any size, Dask partitions), and unsuitable ``init=`` values are
refused with a message that says what would fit.

Independent computations: a single EM step written here in numpy, and the in-memory fit for the
streamed and distributed ones.  The textbook models (an HMM against hmmlearn, an LDA-like plate
model against a numpy EM) are in ``test_em_textbook.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
import pgm.graph
from pgm.cpd.table import TableCPD
from pgm.errors import ConvergenceWarning, PGMError
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

from conftest import MODELS


def fit_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgm.fit(*args, **kwargs)


# --------------------------------------------------------------------------- one EM step by hand
TWO_CHILDREN = parse_spec({"name": "two-children", "graph": "directed", "nodes": {
    "z": {"states": 2, "latent": True},
    "a": {"states": 2, "parents": ["z"]},
    "b": {"states": 3, "parents": ["z"]}}})


def _start() -> dict[str, TableCPD]:
    return {"z": TableCPD(np.array([[0.3, 0.7]])),
            "a": TableCPD(np.array([[0.8, 0.2], [0.35, 0.65]])),
            "b": TableCPD(np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]))}


def _hand_step(pz, pa, pb, a, b):
    """One EM step on z -> (a, b) in plain numpy; a cell of b may be missing (-1).

    Returns the new tables and the log-likelihood of the parameters the step started from."""
    lik_b = np.where(b[:, None] >= 0, pb[:, np.maximum(b, 0)].T, 1.0)      # (n, 2): p(b | z), 1 if missing
    joint = pz[None, :] * pa[:, a].T * lik_b                               # (n, 2): p(z, a, b)
    marginal = joint.sum(axis=1)
    q = joint / marginal[:, None]                                          # p(z | a, b)
    new_pz = q.sum(axis=0) / len(a)
    new_pa = np.stack([np.bincount(a, weights=q[:, k], minlength=2) for k in range(2)])
    new_pa /= new_pa.sum(axis=1, keepdims=True)
    seen = b >= 0
    new_pb = np.stack([np.bincount(b[seen], weights=q[seen, k], minlength=3) for k in range(2)])
    new_pb /= new_pb.sum(axis=1, keepdims=True)
    return (new_pz, new_pa, new_pb), float(np.log(marginal).sum())


def test_max_iter_k_runs_k_updates_equal_to_a_hand_computed_em_step():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 200)
    b = rng.integers(0, 3, 200)
    b[rng.random(200) < 0.2] = -1
    data = pd.DataFrame({"a": a, "b": np.where(b >= 0, b, np.nan)})
    start = _start()
    params = (start["z"].probs[0], start["a"].probs, start["b"].probs)
    lls = []
    for steps in (1, 2):  # from the same start: max_iter=2 is two hand steps from it
        with pytest.warns(ConvergenceWarning, match=f"did not converge in {steps} iteration"):
            fitted = pgm.fit(TWO_CHILDREN, data, init=start, max_iter=steps, tol=0.0)
        params, ll = _hand_step(*params, a, b)
        lls.append(ll)
        np.testing.assert_allclose(fitted.cpds["z"].probs[0], params[0], rtol=1e-12)
        np.testing.assert_allclose(fitted.cpds["a"].probs, params[1], rtol=1e-12)
        np.testing.assert_allclose(fitted.cpds["b"].probs, params[2], rtol=1e-12)
        # history: the start, then the log-likelihood after each update (the returned parameters last)
        assert fitted.info["n_iter"] == steps and len(fitted.history) == steps + 1
        np.testing.assert_allclose(fitted.history[:-1], lls, rtol=1e-12)
        assert fitted.history[-1] == pytest.approx(fitted.log_likelihood(data), rel=1e-12)
        assert np.all(np.diff(fitted.history) > 0)
    # a fitted model as init= continues from it: one more update is the third hand step
    again = fit_quiet(TWO_CHILDREN, data, init=fitted, max_iter=1, tol=0.0)
    params, _ = _hand_step(*params, a, b)
    np.testing.assert_allclose(again.cpds["b"].probs, params[2], rtol=1e-12)


# --------------------------------------------------------------------------- the default start
def _latent_class_data(n: int = 400, seed: int = 1) -> tuple[FittedModel, pd.DataFrame]:
    spec = pgm.load(MODELS / "latent_class.yaml")
    graph = pgm.graph.build(spec)
    cpds = {"class": TableCPD(np.array([[0.3, 0.45, 0.25]]))}
    for j in range(1, 9):
        table = np.full((3, 3), 0.1)
        for k in range(3):
            table[k, (k + j) % 3] = 0.8
        cpds[f"q{j}"] = TableCPD(table)
    truth = FittedModel(spec, graph, cpds)
    return truth, truth.sample(n, seed=seed).drop(columns="class")


def test_n_init_runs_start_from_different_points():
    truth, data = _latent_class_data()
    fitted = fit_quiet(truth.spec, data, n_init=4, seed=0)
    firsts = [run[0] for run in fitted.info["runs"]]
    assert len(set(firsts)) == 4, firsts
    # the default start is not the uniform stationary point: every run moves far from it
    for run in fitted.info["runs"]:
        assert run[-1] - run[0] > 100


def test_a_symmetric_start_is_reported_with_the_fix():
    """Uniform tables are a stationary point: EM stops at once; a ConvergenceWarning says how to move on."""
    truth, data = _latent_class_data()
    uniform = {k: TableCPD(np.full_like(c.probs, 1.0 / c.probs.shape[1])) for k, c in truth.cpds.items()}
    with pytest.warns(ConvergenceWarning, match=r"stationary point.*\['class'\].*n_init.*init='random'.*fitted model"):
        stuck = pgm.fit(truth.spec, data, init=uniform)
    # the first update fits the answers' marginals, the second changes nothing: stopped at the start's orbit
    assert stuck.info["converged"] and stuck.info["n_iter"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        good = pgm.fit(truth.spec, data, seed=0)
    assert good.history[-1] > stuck.history[-1] + 100


def zero_start_network() -> tuple[object, pd.DataFrame]:
    """A network whose available-case start gives observed rows probability zero.

    c = 1 occurs only in rows where its parent b is missing, so the rows that observe the family
    (b, c) all have c = 0 and its unsmoothed available-case estimate is P(c = 1 | b) = 0 for every b:
    those rows would have probability zero.  A latent node z (with a missing parent cell here and
    there) makes the start random as well."""
    spec = parse_spec({"name": "zeros", "graph": "directed", "nodes": {
        "a": {"states": 2},
        "b": {"states": 3, "parents": ["a"]},
        "c": {"states": 2, "parents": ["b"]},
        "z": {"states": 2, "latent": True, "parents": ["a"]},
        "d": {"states": 3, "parents": ["z"]},
        "e": {"states": 2, "parents": ["z"]}}})
    rng = np.random.default_rng(3)
    n = 240
    a = rng.integers(0, 2, n)
    z = (rng.random(n) < np.where(a == 1, 0.8, 0.3)).astype(int)
    d = np.where(z == 1, rng.choice(3, n, p=[0.1, 0.2, 0.7]), rng.choice(3, n, p=[0.7, 0.2, 0.1]))
    e = np.where(z == 1, rng.random(n) < 0.8, rng.random(n) < 0.2).astype(int)
    b = (a + rng.integers(0, 2, n)) % 3
    hidden_b = rng.random(n) < 0.15
    c = np.where(hidden_b, rng.integers(0, 2, n), 0)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "d": d, "e": e}).astype(float)
    frame.loc[hidden_b, "b"] = np.nan
    frame.loc[rng.random(n) < 0.05, "a"] = np.nan
    frame.loc[rng.random(n) < 0.05, "d"] = np.nan
    assert set(frame.loc[frame.b.notna(), "c"]) == {0.0} and set(frame.loc[frame.b.isna(), "c"]) == {0.0, 1.0}
    return spec, frame


def test_the_default_start_never_gives_an_observed_row_probability_zero():
    spec, data = zero_start_network()
    fitted = fit_quiet(spec, data, max_iter=30, seed=0)
    h = np.asarray(fitted.history)
    assert np.all(np.isfinite(h)) and np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    assert np.all(np.isfinite(fitted.row_log_likelihood(data)))


@pytest.mark.parametrize("chunk_rows", [pytest.param(1, marks=pytest.mark.slow), 7, 1000, None])
def test_streamed_em_from_a_seed_equals_in_memory_for_any_chunking(tmp_path, chunk_rows):
    pytest.importorskip("pyarrow")
    spec, data = zero_start_network()
    path = tmp_path / "zeros.parquet"
    data.to_parquet(path, index=False)
    memory = fit_quiet(spec, data, max_iter=5, seed=5, n_init=2)
    streamed = fit_quiet(spec, str(path), max_iter=5, seed=5, n_init=2, chunk_rows=chunk_rows or len(data))
    assert streamed.info["learner"] == "em"
    for ours, theirs in zip(streamed.info["runs"], memory.info["runs"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    for key in memory.cpds:
        np.testing.assert_allclose(streamed.cpds[key].probs, memory.cpds[key].probs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_streamed_kmeanspp_start_equals_in_memory(tmp_path, chunk_rows):
    """k-means++ picks its centres by a hash of each row's values, so chunking cannot change them."""
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    x = centres[rng.integers(0, 3, 300)] + rng.standard_normal((300, 2))
    data = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    path = tmp_path / "gmm.csv"
    data.to_csv(path, index=False)
    model = pgm.load(MODELS / "gmm.yaml")
    memory = fit_quiet(model, data, max_iter=5, seed=2, n_init=2)
    streamed = fit_quiet(model, str(path), max_iter=5, seed=2, n_init=2, chunk_rows=chunk_rows)
    for ours, theirs in zip(streamed.info["runs"], memory.info["runs"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    np.testing.assert_allclose(streamed.cpds["x"].intercept, memory.cpds["x"].intercept, rtol=1e-8)


# --------------------------------------------------------------------------- init= edge cases
def test_init_of_another_structure_says_what_would_fit():
    truth, data = _latent_class_data(200)
    other = parse_spec({"name": "other", "graph": "directed", "nodes": {
        "class": {"states": 2, "latent": True},
        **{f"q{j}": {"states": 3, "parents": ["class"]} for j in range(1, 9)}}})
    fitted_other = fit_quiet(other, data, max_iter=3)
    with pytest.raises(PGMError, match=r"init\['class'\]\.probs has shape \(1, 2\); this model needs \(1, 3\).*"
                                       r"fitted on this same graph"):
        pgm.fit(truth.spec, data, init=fitted_other)
    fewer = fit_quiet(TWO_CHILDREN, pd.DataFrame({"a": [0, 1, 1], "b": [0, 2, 1]}), max_iter=2)
    with pytest.raises(PGMError, match=r"does not match this model's graph: it has parameters \['z', 'a', 'b'\] "
                                       r"that this model does not have and no parameters for \['class', 'q1'"):
        pgm.fit(truth.spec, data, init=fewer)


def test_init_mapping_of_non_cpds_is_refused():
    truth, data = _latent_class_data(200)
    with pytest.raises(PGMError, match=r"no parameters for.*this same graph"):
        pgm.fit(truth.spec, data, init={"class": 1})
    with pytest.raises(PGMError, match=r"init\['class'\] is a int; this model needs a TableCPD"):
        pgm.fit(truth.spec, data, init={**truth.cpds, "class": 1})
    with pytest.raises(PGMError, match=r"init\['class'\].*sums to"):
        pgm.fit(truth.spec, data, init={**truth.cpds, "class": TableCPD(np.array([[0.5, 0.5, 0.5]]))})


def test_init_of_the_other_kind_of_graph_is_refused():
    ising = pgm.load(MODELS / "ising_3x3.yaml")
    spins = pd.DataFrame(np.random.default_rng(0).choice([-1, 1], size=(200, 9)), columns=list(ising.nodes))
    markov = fit_quiet(ising, spins, max_iter=5)
    truth, data = _latent_class_data(200)
    with pytest.raises(PGMError, match="fitted undirected model.*this model is directed.*directed model fitted on"):
        pgm.fit(truth.spec, data, init=markov)
    with pytest.raises(PGMError, match="fitted directed model but this model is undirected.*FittedMarkovNet"):
        pgm.fit(ising, spins, init=truth)
    with pytest.raises(PGMError, match="dict but this model is undirected"):
        pgm.fit(ising, spins, init=truth.cpds)
    small = parse_spec({"name": "pair", "graph": "undirected", "nodes": {"s00": {"states": [-1, 1]},
                        "s01": {"states": [-1, 1]}}, "cliques": [{"nodes": ["s00", "s01"], "features": "ising"}]})
    pair = fit_quiet(small, spins[["s00", "s01"]], max_iter=5)
    with pytest.raises(PGMError, match="fitted on another undirected graph.*same graph"):
        pgm.fit(ising, spins, init=pair)
    # the same kind and graph is accepted
    assert fit_quiet(ising, spins, init=markov, max_iter=2).spec.name == "ising-3x3"
