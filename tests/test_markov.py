"""FittedMarkovNet: scores, queries, sampling, labelled potentials and the params round-trip.

References are enumerated here over every joint state of small models.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from pgm.errors import DataError, ModelError, PGMError
from pgm.graph import build
from pgm.learn.loglinear import LogLinear
from pgm.markov import FittedMarkovNet, fit_markov
from pgm.schema import load_spec, parse_spec

SPEC = {
    "name": "mixed", "graph": "undirected",
    "nodes": {"a": {"states": ["lo", "mid", "hi"]}, "b": {"states": ["off", "on"]}, "c": {"states": 3},
              "d": {"states": [-1, 1]}, "z": {"states": 2, "latent": True}},
    "cliques": [{"nodes": ["a", "b"]}, {"nodes": ["b", "c"], "tie": "pair"}, {"nodes": ["a", "c"], "features": "agreement"},
                {"nodes": ["c", "d", "z"]}, {"nodes": ["d", "z"], "features": "ising"}],
}


def model(seed: int = 0, spec: dict | None = None) -> FittedMarkovNet:
    spec = parse_spec(spec or SPEC)
    graph = build(spec)
    engine = LogLinear(graph)
    theta = 0.7 * np.random.default_rng(seed).standard_normal(engine.layout.n_params)
    return FittedMarkovNet(spec, graph, engine, theta)


def joint(m: FittedMarkovNet) -> tuple[np.ndarray, np.ndarray]:
    """Every joint state (layout order) and its probability, by enumeration."""
    layout = m.layout
    states = np.array(list(itertools.product(*[range(k) for k in layout.cards])))
    flat = layout.log_tables(m.theta)
    index = {v: i for i, v in enumerate(layout.variables)}
    score = np.zeros(len(states))
    for i, p in enumerate(layout.potentials):
        score += layout.table(flat, i)[tuple(states[:, index[v]] for v in p.scope)]
    return states, np.exp(score - logsumexp(score))


def test_query_equals_enumeration():
    m = model()
    states, prob = joint(m)
    names = list(m.layout.variables)
    out = m.query(["c", "a"], evidence={"b": "on", "d": 1})
    assert out.name == "p" and list(out.index.names) == ["c", "a"]
    assert list(out.index[0]) == ["0", "lo"]
    keep = (states[:, names.index("b")] == 1) & (states[:, names.index("d")] == 1)
    ref = np.zeros((3, 3))
    np.add.at(ref, (states[keep, names.index("c")], states[keep, names.index("a")]), prob[keep])
    np.testing.assert_allclose(out.to_numpy(), (ref / ref.sum()).ravel(), atol=1e-12)
    single = m.query("z")
    ref_z = np.bincount(states[:, names.index("z")], weights=prob)
    np.testing.assert_allclose(single.to_numpy(), ref_z, atol=1e-12)
    with pytest.raises(ModelError, match="unknown node 'q'"):
        m.query(["q"])
    with pytest.raises(ModelError, match="both queried and observed"):
        m.query(["a"], evidence={"a": "lo"})
    with pytest.raises(DataError, match="unknown state"):
        m.query(["a"], evidence={"b": "maybe"})


def test_scores_equal_enumeration():
    m = model(1)
    states, prob = joint(m)
    names = list(m.layout.variables)
    rng = np.random.default_rng(1)
    rows = states[rng.choice(len(states), 200, p=prob)]
    df = pd.DataFrame({v: np.asarray(m.graph[v].labels, dtype=object)[rows[:, j]] for j, v in enumerate(names)
                       if not m.graph[v].latent})
    df.loc[:9, "a"] = None  # missing cells are summed out
    per_row = m.row_log_likelihood(df)
    zi = names.index("z")
    for r in [0, 5, 10, 150]:
        match = np.all((states == rows[r]) | (np.arange(len(names)) == zi), axis=1)
        if r < 10:
            match = np.all((states == rows[r]) | np.isin(np.arange(len(names)), [zi, names.index("a")]), axis=1)
        assert abs(per_row[r] - np.log(prob[match].sum())) < 1e-10
    assert abs(per_row.sum() - m.log_likelihood(df)) < 1e-9
    assert m.bic(df) > m.aic(df) > -2 * m.log_likelihood(df)
    with pytest.raises(DataError, match="pseudo-likelihood"):
        m.pseudo_log_likelihood(df)


def test_every_joint_state_sums_to_one():
    m = model(2, {**SPEC, "nodes": {k: {**v, "latent": False} for k, v in SPEC["nodes"].items()}})
    names = list(m.layout.variables)
    states = np.array(list(itertools.product(*[range(k) for k in m.layout.cards])))
    df = pd.DataFrame({v: np.asarray(m.graph[v].labels, dtype=object)[states[:, j]] for j, v in enumerate(names)})
    assert abs(np.exp(m.row_log_likelihood(df)).sum() - 1.0) < 1e-12
    assert np.isfinite(m.pseudo_log_likelihood(df))


def test_exact_and_gibbs_samples_follow_the_model():
    m = model(3)
    states, prob = joint(m)
    names = list(m.layout.variables)
    exact = m.sample(40_000, seed=0)
    assert list(exact.columns) == names
    assert isinstance(exact["a"].dtype, pd.CategoricalDtype) and list(exact["a"].cat.categories) == ["lo", "mid", "hi"]
    assert exact["c"].dtype == np.int64 and exact["z"].dtype == np.int64
    ref_a = np.bincount(states[:, 0], weights=prob)
    freq = exact["a"].value_counts(normalize=True).reindex(["lo", "mid", "hi"]).to_numpy()
    assert np.all(np.abs(freq - ref_a) < 5 * np.sqrt(ref_a * (1 - ref_a) / 40_000))
    pair = pd.crosstab(exact["c"], exact["z"], normalize=True).to_numpy()
    ref = np.zeros((3, 2))
    np.add.at(ref, (states[:, names.index("c")], states[:, names.index("z")]), prob)
    assert np.max(np.abs(pair - ref)) < 0.015
    gibbs = m.sample(4000, seed=1, method="gibbs", burn_in=100, thin=5)
    assert len(gibbs) == 4000
    pair = pd.crosstab(gibbs["c"], gibbs["z"], normalize=True).to_numpy()
    assert np.max(np.abs(pair - ref)) < 0.04
    assert m.sample(5, seed=3).equals(m.sample(5, seed=3))
    with pytest.raises(PGMError, match="method"):
        m.sample(5, method="slice")
    with pytest.raises(DataError, match="non-negative"):
        m.sample(-1)


def test_labelled_potentials():
    m = model(4)
    table = m.potential(0)
    assert list(table.index) == ["lo", "mid", "hi"] and list(table.columns) == ["off", "on"]
    np.testing.assert_array_equal(table.to_numpy(), m.params["clique0"])
    agree = m.potential(2).to_numpy()
    assert agree[1, 1] == m.params["clique2"] and agree[1, 0] == 0.0
    assert m.potential("pair").index.name == "b"
    np.testing.assert_array_equal(m.potential(1).to_numpy(), m.potential("pair").to_numpy())
    three = m.potential(3)
    assert list(three.index.names) == ["c", "d"] and list(three.columns) == ["0", "1"]
    unary = m.potential("a")
    assert unary.shape == (1, 3) and unary.iloc[0, 0] == 0.0
    assert list(m.potentials()) == list(m.layout.blocks)
    with pytest.raises(ModelError, match="out of range"):
        m.potential(9)
    with pytest.raises(ModelError, match="no potential named"):
        m.potential("nope")


def test_params_round_trip_through_a_file(tmp_path: Path):
    m = model(5)
    path = tmp_path / "mixed.fitted.yaml"
    m.save(path)
    back = FittedMarkovNet.from_spec(load_spec(path), str(path))
    np.testing.assert_array_equal(back.theta, m.theta)  # bit for bit
    params = m.to_params()
    assert params["a"][0] == 0.0 and len(params["a"]) == 3
    assert isinstance(params["clique2"], float) and np.asarray(params["clique0"]).shape == (3, 2)
    assert list(load_spec(path).params) == list(params)


def test_params_are_validated_by_key():
    m = model(6)
    good = m.to_params()

    def load(params):
        return FittedMarkovNet.from_spec(parse_spec({**SPEC, "params": params}), "m.yaml")

    shifted = dict(good, a=[1.0 + x for x in good["a"]])  # a constant on a unary changes nothing
    np.testing.assert_allclose(load(shifted).theta, m.theta, atol=1e-15)
    with pytest.raises(ModelError, match=r"params\.pair: missing"):
        load({k: v for k, v in good.items() if k != "pair"})
    with pytest.raises(ModelError, match=r"params\.clique9: unknown key"):
        load(dict(good, clique9=1.0))
    with pytest.raises(ModelError, match=r"params\.clique0: shape \[2, 3\], expected \[3, 2\]"):
        load(dict(good, clique0=np.zeros((2, 3)).tolist()))
    with pytest.raises(ModelError, match=r"params\.clique4: non-finite"):
        load(dict(good, clique4=float("nan")))
    with pytest.raises(ModelError, match=r"params\.b: .*list of 2 log-potentials"):
        load(dict(good, b=[0.0]))


def test_fit_markov_scores_and_history():
    truth = model(7)
    df = truth.sample(3000, seed=7).drop(columns=["z"])
    fitted = fit_markov(truth.spec, df, max_iter=200, tol=1e-5, seed=0)
    assert fitted.info["learner"] == "lbfgs" and "FittedMarkovNet('mixed'" in repr(fitted)
    assert abs(fitted.history[-1] - fitted.log_likelihood(df)) < 1e-6
    assert fitted.info["converged"] and fitted.log_likelihood(df) >= truth.log_likelihood(df) - 1e-6


def test_a_grid_too_wide_for_exact_inference_points_to_the_pseudo_likelihood():
    nodes = {f"s{i}_{j}": {"states": [-1, 1]} for i in range(26) for j in range(26)}
    cliques = [{"nodes": [f"s{i}_{j}", f"s{i}_{j + 1}"], "features": "ising", "tie": "h"}
               for i in range(26) for j in range(25)]
    cliques += [{"nodes": [f"s{i}_{j}", f"s{i + 1}_{j}"], "features": "ising", "tie": "v"}
                for i in range(25) for j in range(26)]
    m = model(8, {"name": "wide", "graph": "undirected", "nodes": nodes, "cliques": cliques})
    df = m.sample(50, seed=0, burn_in=20, thin=1)  # auto: Gibbs
    assert df.shape == (50, 676)
    with pytest.raises(ModelError, match="pseudo_log_likelihood"):
        m.log_likelihood(df)
    with pytest.raises(ModelError, match="exact"):
        m.sample(5, method="exact")
    assert np.isfinite(m.pseudo_log_likelihood(df))
