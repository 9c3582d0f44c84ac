"""Using a fitted model: posterior, predict (marginal and joint), most_probable, query evidence and rows
of probability zero, each against an independent computation (numpy by hand, scikit-learn, brute force)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgm
from pgm.errors import DataError, DataWarning, ModelError
from pgm.fitted import FittedModel
from pgm.infer import enumerate as enumerate_
from pgm.graph import build
from pgm.learn.loglinear import LogLinear
from pgm.markov import FittedMarkovNet
from pgm.schema import parse_spec

NB = {"name": "nb", "graph": "directed", "nodes": {
    "c": {"states": 3},
    "x": {"states": ["lo", "hi"], "parents": ["c"]},
    "y": {"states": ["a", "b", "c"], "parents": ["c"]},
    "z": {"states": 2, "parents": ["c"]}},
    "params": {"c": {"table": [0.5, 0.3, 0.2]},
               "x": {"table": [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]},
               "y": {"table": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]},
               "z": {"table": [[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]]}}}


def nb() -> FittedModel:
    return FittedModel.from_spec(parse_spec(NB))


def test_naive_bayes_posterior_by_hand_without_the_class_column():
    model = nb()
    data = model.sample(300, seed=1).drop(columns="c")
    p = NB["params"]
    x = data["x"].cat.codes.to_numpy()
    y = data["y"].cat.codes.to_numpy()
    z = data["z"].to_numpy()
    joint = (np.array(p["c"]["table"])[None, :] * np.array(p["x"]["table"])[:, x].T
             * np.array(p["y"]["table"])[:, y].T * np.array(p["z"]["table"])[:, z].T)
    want = joint / joint.sum(axis=1, keepdims=True)
    post = model.posterior("c", data)
    np.testing.assert_allclose(post.to_numpy(), want, rtol=0, atol=1e-13)
    assert list(post.columns) == ["0", "1", "2"]
    pred = model.predict("c", data)
    assert pred.dtype == np.int64  # a node declared with a state count: integers, as sample gives
    np.testing.assert_array_equal(pred.to_numpy(), want.argmax(axis=1))
    # a named-state node: a categorical of its labels, like sample
    full = model.sample(300, seed=1).drop(columns="y")
    post_y = model.posterior("y", full)
    pred_y = model.predict("y", full)
    assert isinstance(pred_y.dtype, pd.CategoricalDtype) and list(pred_y.cat.categories) == ["a", "b", "c"]
    np.testing.assert_array_equal(pred_y.cat.codes.to_numpy(), post_y.to_numpy().argmax(axis=1))


def brute(model: FittedModel, row: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every completion of a row's hidden discrete nodes, and its joint probability."""
    names = [n for n in model.graph.order]
    hidden = [n for n in names if n not in row]
    states = np.array(list(itertools.product(*[range(model.graph[n].n_states) for n in hidden])))
    probs = np.ones(len(states))
    for i, s in enumerate(states):
        value = {**row, **dict(zip(hidden, s))}
        for n in names:
            var = model.graph[n]
            cfg = 0
            for par in var.parents:
                cfg = cfg * model.graph[par].n_states + value[par]
            probs[i] *= model.cpds[var.param].probs[cfg, value[n]]
    return hidden, states, probs


@pytest.mark.parametrize("limit", [None, 2])
def test_joint_prediction_and_most_probable_equal_brute_force(limit, monkeypatch):
    """Both inference paths: listing joint states, and (limit 2) the batched clique tree with max-product."""
    if limit is not None:
        monkeypatch.setattr(enumerate_, "ENUMERATE_LIMIT", limit)
    model = nb()
    rng = np.random.default_rng(3)
    data = model.sample(40, seed=2).astype(object)
    data = data.mask(rng.random(data.shape) < 0.4)
    codes = {n: [None if pd.isna(v) else model.graph[n].labels.index(str(v)) for v in data[n]] for n in data}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "1 row with every cell missing", DataWarning)
        mpe = model.most_probable(data.assign(c=np.nan))
        both = model.predict(["c", "y"], data.drop(columns="c"), joint=True)
    for r in range(len(data)):
        row = {n: codes[n][r] for n in ["x", "y", "z"] if codes[n][r] is not None}
        hidden, states, probs = brute(model, row)
        best = states[probs.argmax()]
        for n, s in zip(hidden, best):
            got = mpe[n].iloc[r]
            assert (got if isinstance(got, (int, np.integer)) else model.graph[n].labels.index(got)) == s
        # joint over c and y (y's own cell kept where observed); other hidden nodes summed out
        keep = [hidden.index(n) for n in ["c", "y"] if n in hidden]
        marg = {}
        for s, p in zip(states, probs):
            key = tuple(s[keep])
            marg[key] = marg.get(key, 0.0) + p
        top = max(marg, key=marg.get)
        names = [n for n in ["c", "y"] if n in hidden]
        for n, s in zip(names, top):
            got = both[n].iloc[r]
            assert (got if isinstance(got, (int, np.integer)) else model.graph[n].labels.index(got)) == s


# --------------------------------------------------------------------------- random small networks
@st.composite
def networks(draw):
    n = draw(st.integers(3, 5))
    nodes = {}
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    params = {}
    for i in range(n):
        k = draw(st.integers(2, 3))
        parents = [f"v{j}" for j in range(i) if draw(st.booleans())][:2]
        nodes[f"v{i}"] = {"states": k, "parents": parents}
        n_cfg = int(np.prod([nodes[p]["states"] for p in parents])) if parents else 1
        table = rng.dirichlet(np.ones(k), size=n_cfg)
        params[f"v{i}"] = {"table": (table if parents else table[0]).tolist()}
    hidden = draw(st.lists(st.sampled_from(sorted(nodes)), min_size=1, max_size=3, unique=True))
    return FittedModel.from_spec(parse_spec({"name": "r", "nodes": nodes, "params": params})), hidden


@pytest.mark.filterwarnings("ignore:[0-9]+ rows? with every cell missing")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_mpe_equals_brute_force_on_random_networks(case):
    model, hidden = case
    data = model.sample(12, seed=0).drop(columns=hidden)
    mpe = model.most_probable(data.assign(**{h: np.nan for h in hidden}))
    joint = model.predict(hidden, data, joint=True)
    for r in range(len(data)):
        row = {n: int(data[n].iloc[r]) for n in data}
        names, states, probs = brute(model, row)
        best = probs.max()
        got = tuple(int(mpe[n].iloc[r]) for n in names)
        assert probs[[tuple(s) for s in states].index(got)] == pytest.approx(best, rel=1e-12)
        got = tuple(int(joint[n].iloc[r]) for n in names)
        assert probs[[tuple(s) for s in states].index(got)] == pytest.approx(best, rel=1e-12)
        post = model.posterior(hidden[0], data.assign(**{h: np.nan for h in hidden[1:]})).iloc[r].to_numpy()
        want = np.bincount(states[:, names.index(hidden[0])], weights=probs,
                           minlength=model.graph[hidden[0]].n_states)
        np.testing.assert_allclose(post, want / want.sum(), atol=1e-12)


# --------------------------------------------------------------------------- gaussian nodes
def test_gaussian_prediction_is_ols_per_configuration():
    """y | d, x is linear per configuration of d: the conditional mean is numpy's least squares fit per
    configuration, the variance the residual variance (MLE), on a frame without y."""
    rng = np.random.default_rng(0)
    n = 600
    d = rng.integers(0, 3, n)
    x = rng.normal(size=n)
    y = np.array([1.0, -2.0, 0.5])[d] + np.array([2.0, 0.3, -1.0])[d] * x + rng.normal(scale=0.5, size=n)
    spec = {"name": "ols", "nodes": {"d": {"states": 3}, "x": {"type": "gaussian"},
                                     "y": {"type": "gaussian", "parents": ["d", "x"]}}}
    fitted = pgm.fit(parse_spec(spec), pd.DataFrame({"d": d, "x": x, "y": y}))
    test = pd.DataFrame({"d": [0, 1, 2, 2], "x": [0.3, -1.0, 2.0, 0.0]})
    want_mean, want_var = [], []
    for dd, xx in zip(test["d"], test["x"]):
        design = np.column_stack([np.ones((d == dd).sum()), x[d == dd]])
        beta, res, *_ = np.linalg.lstsq(design, y[d == dd], rcond=None)
        want_mean.append(beta[0] + beta[1] * xx)
        want_var.append(res[0] / (d == dd).sum())
    np.testing.assert_allclose(fitted.predict("y", test).to_numpy(), want_mean, rtol=1e-10)
    post = fitted.posterior("y", test)
    assert list(post.columns) == ["mean", "variance"]
    np.testing.assert_allclose(post["variance"].to_numpy(), want_var, rtol=1e-10)
    # d hidden too: the mean mixes the per-configuration means over p(d | x) = p(d) (d and x independent)
    prior = fitted.cpds["d"].probs[0]
    cpd = fitted.cpds["y"]
    mus = cpd.intercept[None, :, 0] + cpd.coef[None, :, 0, 0] * test["x"].to_numpy()[:, None]
    post = fitted.posterior("y", test.assign(d=np.nan))
    np.testing.assert_allclose(post["mean"].to_numpy(), mus @ prior, rtol=1e-10)
    spread = (cpd.cov[None, :, 0, 0] + (mus - (mus @ prior)[:, None]) ** 2) @ prior
    np.testing.assert_allclose(post["variance"].to_numpy(), spread, rtol=1e-10)


def test_gaussian_prediction_from_an_observed_child_conditions_on_it():
    """x ~ N(0, 1), y | x ~ N(1 + 2x, 0.5): x | y ~ N(4 (y - 1) / 9, 1 / 9) (Gaussian conditioning;
    this was refused before latent gaussian inference)."""
    model = FittedModel.from_spec(parse_spec({"name": "chain", "nodes": {
        "x": {"type": "gaussian"}, "y": {"type": "gaussian", "parents": ["x"]}},
        "params": {"x": {"intercept": 0.0, "covariance": 1.0}, "y": {"intercept": 1.0, "coef": [2.0],
                                                                    "covariance": 0.5}}}))
    y = np.array([0.5, 1.0])
    np.testing.assert_allclose(model.predict("x", pd.DataFrame({"y": y})).to_numpy(), 4 * (y - 1) / 9, atol=1e-12)
    post = model.posterior("x", pd.DataFrame({"y": y}))
    np.testing.assert_allclose(post["variance"].to_numpy(), [1 / 9, 1 / 9], rtol=1e-12)
    # without the child, the prediction is x's own distribution
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "1 row with every cell missing", DataWarning)
        post = model.posterior("x", pd.DataFrame({"x": [np.nan, 0.3], "y": [np.nan, np.nan]}))
    np.testing.assert_allclose(post.to_numpy(), [[0.0, 1.0], [0.3, 0.0]])


def test_gmm_posterior_equals_scikit_learn_from_the_same_parameters():
    GaussianMixture = pytest.importorskip("sklearn.mixture").GaussianMixture

    weights = [0.5, 0.3, 0.2]
    means = [[0.0, 0.0], [3.0, 1.0], [-2.0, 2.5]]
    covs = [[[1.0, 0.3], [0.3, 0.8]], [[0.5, 0.0], [0.0, 1.5]], [[2.0, -0.6], [-0.6, 1.0]]]
    spec = {"name": "gmm", "nodes": {"z": {"states": 3, "latent": True},
                                     "x": {"type": "gaussian", "dim": 2, "parents": ["z"], "covariance": "full"}},
            "params": {"z": {"table": weights}, "x": {"intercept": means, "coef": [[[], []]] * 3,
                                                      "covariance": covs}}}
    model = FittedModel.from_spec(parse_spec(spec))
    gm = GaussianMixture(3, covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = np.array(weights), np.array(means), np.array(covs)
    gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(np.array(covs)))
    data = model.sample(500, seed=4).drop(columns="z")
    np.testing.assert_allclose(model.posterior("z", data).to_numpy(), gm.predict_proba(data.to_numpy()),
                               rtol=0, atol=1e-10)
    np.testing.assert_array_equal(model.predict("z", data).to_numpy(), gm.predict(data.to_numpy()))


# --------------------------------------------------------------------------- undirected models
GRID = {"name": "grid", "graph": "undirected",
        "nodes": {**{f"g{i}": {"states": 2 if i % 2 else ["lo", "mid", "hi"]} for i in range(6)},
                  "h": {"states": 2, "latent": True}},
        "cliques": [{"nodes": ["g0", "g1"]}, {"nodes": ["g1", "g2"]}, {"nodes": ["g0", "g3"]},
                    {"nodes": ["g1", "g4"]}, {"nodes": ["g2", "g5"]}, {"nodes": ["g3", "g4"]},
                    {"nodes": ["g4", "g5"], "features": "agreement"}, {"nodes": ["g5", "h"]}]}


def grid_model(seed: int = 0) -> FittedMarkovNet:
    spec = parse_spec(GRID)
    graph = build(spec)
    engine = LogLinear(graph)
    theta = 0.8 * np.random.default_rng(seed).standard_normal(engine.layout.n_params)
    return FittedMarkovNet(spec, graph, engine, theta)


def grid_joint(m: FittedMarkovNet) -> tuple[np.ndarray, np.ndarray]:
    layout = m.layout
    states = np.array(list(itertools.product(*[range(k) for k in layout.cards])))
    flat = layout.log_tables(m.theta)
    index = {v: i for i, v in enumerate(layout.variables)}
    score = np.zeros(len(states))
    for i, p in enumerate(layout.potentials):
        score += layout.table(flat, i)[tuple(states[:, index[v]] for v in p.scope)]
    return states, np.exp(score - score.max())


def test_undirected_posterior_predict_and_mpe_equal_brute_force():
    m = grid_model()
    states, prob = grid_joint(m)
    names = list(m.layout.variables)
    data = m.sample(60, seed=1).astype(object).drop(columns="h")  # h is latent
    data = data.mask(np.random.default_rng(2).random(data.shape) < 0.3)
    asked = data.drop(columns=["g1", "g4"])
    post_h = m.posterior("h", data)
    post = m.posterior("g1", asked.assign(g4=np.nan))
    pred = m.predict(["g1", "g4"], asked, joint=True)
    single = m.predict(["g1", "g4"], asked)
    mpe = m.most_probable(data.assign(g1=np.nan, g4=np.nan))
    assert post.shape == (60, 2) and single["g1"].dtype == np.int64
    for r in range(len(data)):
        keep = np.ones(len(states), dtype=bool)
        for v in asked:
            if not pd.isna(asked[v].iloc[r]):
                keep &= states[:, names.index(v)] == m.graph[v].labels.index(str(asked[v].iloc[r]))
        p = np.where(keep, prob, 0.0)
        g1 = np.bincount(states[:, names.index("g1")], weights=p, minlength=2)
        np.testing.assert_allclose(post.iloc[r].to_numpy(), g1 / g1.sum(), atol=1e-12)
        assert single["g1"].iloc[r] == g1.argmax()
        keep_h = np.ones(len(states), dtype=bool)
        for v in data:
            if not pd.isna(data[v].iloc[r]):
                keep_h &= states[:, names.index(v)] == m.graph[v].labels.index(str(data[v].iloc[r]))
        h = np.bincount(states[:, names.index("h")], weights=np.where(keep_h, prob, 0.0), minlength=2)
        np.testing.assert_allclose(post_h.iloc[r].to_numpy(), h / h.sum(), atol=1e-12)
        pair = np.zeros((2, 3))
        np.add.at(pair, (states[:, names.index("g1")], states[:, names.index("g4")]), p)
        assert pair[pred["g1"].iloc[r], m.graph["g4"].labels.index(pred["g4"].iloc[r])] == pytest.approx(pair.max(), rel=1e-12)
        got = tuple(m.graph[v].labels.index(str(mpe[v].iloc[r])) for v in names)
        assert p[[tuple(s) for s in states].index(got)] == pytest.approx(p.max(), rel=1e-12)


def test_undirected_predict_is_one_batched_pass(monkeypatch):
    """1,000 rows in one call: the clique tree is calibrated once per pattern of hidden cells
    (a batch axis over the distinct rows), not once per row."""
    import pgm.markov as markov

    m = grid_model(3)
    data = m.sample(1000, seed=5).drop(columns=["g2", "h"])
    calls = []
    real = markov.calibrate
    monkeypatch.setattr(markov, "calibrate", lambda *a, **k: calls.append(1) or real(*a, **k))
    m.predict("g2", data)
    assert len(calls) == 1


# --------------------------------------------------------------------------- probability zero
ZERO = {"name": "zero", "nodes": {"a": {"states": 2}, "b": {"states": 2, "parents": ["a"]},
                                  "c": {"states": 2, "parents": ["b"]}},
        "params": {"a": {"table": [1.0, 0.0]}, "b": {"table": [[1.0, 0.0], [0.5, 0.5]]},
                   "c": {"table": [[0.3, 0.7], [0.6, 0.4]]}}}


@pytest.mark.parametrize("limit", [None, 1])
def test_rows_of_probability_zero_on_every_path(limit, monkeypatch):
    """Listed components (the flat E-step) and (limit 1) the batched clique tree alike."""
    if limit is not None:
        monkeypatch.setattr(enumerate_, "ENUMERATE_LIMIT", limit)
    model = FittedModel.from_spec(parse_spec(ZERO))
    # row 1: a=1 is impossible (complete part); row 2: b=1 with a missing is impossible (hidden part)
    data = pd.DataFrame({"a": [0, 1, np.nan, np.nan], "b": [0, 0, 1, 0], "c": [1, 0, 0, 1]})
    with pytest.warns(DataWarning, match=r"2 rows \(row 1, row 2\) have probability 0") as caught:
        rows = model.row_log_likelihood(data)
    assert np.isneginf(rows[[1, 2]]).all() and np.isfinite(rows[[0, 3]]).all()
    with pytest.warns(DataWarning, match=r"row 1, row 2"):
        assert model.log_likelihood(data) == -np.inf
    with pytest.warns(DataWarning, match=r"row 1, row 2"):
        assert model.bic(data) == np.inf
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarning must not leak either
        for call, rows in ((lambda: model.posterior("a", data), r"2 rows \(row 1, row 2\) have"),
                           (lambda: model.predict("a", data), r"2 rows \(row 1, row 2\) have"),
                           (lambda: model.predict("c", data.drop(columns="c")), r"2 rows \(row 1, row 2\) have"),
                           (lambda: model.most_probable(data), r"2 rows \(row 1, row 2\) have"),
                           # without b, row 2 is possible again
                           (lambda: model.predict(["a", "b"], data.drop(columns="b"), joint=True),
                            r"1 row \(row 1\) has")):
            with pytest.raises(DataError, match=rows + " probability 0"):
                call()
        with pytest.raises(DataError, match="has probability 0"):
            model.query("c", {"a": 1})
        with pytest.raises(DataError, match="has probability 0"):
            model.query("a", {"b": 1})


# --------------------------------------------------------------------------- one evidence parser
def test_both_classes_read_evidence_alike():
    directed = nb()
    undirected = grid_model()
    for m, node, other in ((directed, "x", "c"), (undirected, "g0", "g1")):
        with pytest.raises(ModelError, match="listed twice"):
            m.query([node, node])
        with pytest.raises(ModelError, match="unknown node 'nope'"):
            m.query(["nope"])
        with pytest.raises(ModelError, match="both queried and observed"):
            m.query([node], {node: m.graph[node].labels[0]})
        with pytest.raises(DataError, match="unknown state"):
            m.query([node], {other: "maybe"})
        # a count read as a data cell reads it: 1, 1.0 and "1" are the same state; None is unobserved
        same = [m.query(node, {other: v}) for v in (1, 1.0, "1", np.int64(1))]
        for s in same[1:]:
            pd.testing.assert_series_equal(s, same[0])
        pd.testing.assert_series_equal(m.query(node, {other: None}), m.query(node))
    with pytest.raises(DataError, match="unknown state"):
        directed.query("c", {"x": 1.0})  # named states lo/hi: 1.0 is no label


def test_most_probable_fills_missing_gaussian_cells_with_their_conditional_mean():
    """Mixed model: the discrete MPE (gaussian cells integrated out) by brute force, then each missing
    gaussian cell is its regression at the completed row: y = a[d] + b[d] x, then w = c + e y."""
    spec = {"name": "mixed", "nodes": {
        "d": {"states": 2}, "x": {"type": "gaussian"},
        "y": {"type": "gaussian", "parents": ["d", "x"]}, "w": {"type": "gaussian", "parents": ["y"]}},
        "params": {"d": {"table": [0.3, 0.7]}, "x": {"intercept": 0.0, "covariance": 1.0},
                   "y": {"intercept": [1.0, -1.0], "coef": [[2.0], [0.5]], "covariance": [1.0, 0.2]},
                   "w": {"intercept": 0.5, "coef": [3.0], "covariance": 0.1}}}
    model = FittedModel.from_spec(parse_spec(spec))
    data = pd.DataFrame({"d": [np.nan, 1, np.nan], "x": [0.4, -1.0, 2.0], "y": [np.nan, np.nan, 4.2],
                         "w": [np.nan, np.nan, np.nan]})
    got = model.most_probable(data)
    # row 0: y and w missing, so d | x is its prior: d = 1; y = -1 + 0.5 * 0.4; w = 0.5 + 3 y
    # row 2: y observed: p(d | x, y) proportional to p(d) N(4.2; a[d] + b[d] 2, var[d])
    from scipy.stats import norm

    scores = [0.3 * norm.pdf(4.2, 1.0 + 2.0 * 2.0, 1.0), 0.7 * norm.pdf(4.2, -1.0 + 0.5 * 2.0, np.sqrt(0.2))]
    assert got["d"].tolist() == [1, 1, int(np.argmax(scores))]
    y0 = -1.0 + 0.5 * 0.4
    np.testing.assert_allclose(got["y"], [y0, -1.0 + 0.5 * -1.0, 4.2], rtol=1e-14)
    np.testing.assert_allclose(got["w"], [0.5 + 3.0 * y0, 0.5 + 3.0 * -1.5, 0.5 + 3.0 * 4.2], rtol=1e-14)


def test_most_probable_takes_absent_node_columns_as_missing_cells():
    """An observed node's absent column is a column of missing cells (with a warning naming it), as
    predict/posterior accept absent predicted columns; checked against brute force on asia."""
    from pathlib import Path

    from pgm.io.bif import read_bif
    root = Path(__file__).resolve().parents[1]
    truth = FittedModel.from_spec(parse_spec(read_bif((root / "examples" / "asia.bif").read_text())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # a parent configuration unseen in 400 rows
        model = pgm.fit(root / "models" / "asia.yaml", truth.sample(400, seed=5))
    rng = np.random.default_rng(7)
    data = truth.sample(30, seed=6).astype(object)
    data = data.mask(rng.random(data.shape) < 0.3)
    data[["lung", "either"]] = np.nan
    data = data.dropna(how="all")
    with pytest.warns(DataWarning, match=r"no column for the nodes 'lung', 'either': treated as missing"):
        gone = model.most_probable(data.drop(columns=["lung", "either"]))
    nan = model.most_probable(data)
    pd.testing.assert_frame_equal(gone, nan)
    for r in range(len(data)):
        row = {n: model.graph[n].labels.index(str(v)) for n, v in data.iloc[r].items() if not pd.isna(v)}
        hidden, states, probs = brute(model, row)
        best = dict(zip(hidden, states[probs.argmax()]))
        got = {n: model.graph[n].labels.index(str(gone[n].iloc[r])) for n in model.graph.order}
        assert got == {**row, **best}
    # a misspelt column is still reported (ignored), and data naming no observed node are refused
    with pytest.warns(DataWarning) as rec:
        model.most_probable(data.drop(columns=["lung"]).rename(columns={"either": "eihter"}))
    assert any("['eihter']" in str(w.message) for w in rec)
    assert any("'lung', 'either'" in str(w.message) for w in rec)
    with pytest.raises(DataError, match="no column of the data names an observed node"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            model.most_probable(data.rename(columns=str.upper))
