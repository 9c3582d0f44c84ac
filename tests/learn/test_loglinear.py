"""Log-linear learning against references computed independently here.

The references enumerate every joint state of small models: the log-likelihood, its
maximum (scipy on the enumerated likelihood), model feature expectations, the
pseudo-likelihood and the marginal likelihood with hidden cells are all sums over an
explicit table of joint states built with ``itertools``/numpy, not with pgm's
inference.  Only the map from parameters to log-potential tables (checked against
hand-written Ising and agreement features in ``test_log_tables_follow_the_features``)
is shared.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import chi2

from pgm.encode import encode
from pgm.errors import ConvergenceWarning, DataError, ModelError, PGMError
from pgm.features import UNARY, compile_layout, feature_matrix, register_feature
from pgm.graph import build
from pgm.infer.elimination import calibrate, sample_tree
from pgm.learn.loglinear import LogLinear, fit_loglinear
from pgm.schema import load_spec, parse_spec

MODELS = Path(__file__).resolve().parents[2] / "models"


def grid_spec(n: int, *, tie: bool = True, name: str = "grid"):
    nodes = {f"s{i}{j}" if n <= 10 else f"s{i}_{j}": {"states": [-1, 1]} for i in range(n) for j in range(n)}
    label = (lambda i, j: f"s{i}{j}") if n <= 10 else (lambda i, j: f"s{i}_{j}")
    cliques = [{"nodes": [label(i, j), label(i, j + 1)], "features": "ising", **({"tie": "horizontal"} if tie else {})}
               for i in range(n) for j in range(n - 1)]
    cliques += [{"nodes": [label(i, j), label(i + 1, j)], "features": "ising", **({"tie": "vertical"} if tie else {})}
                for i in range(n - 1) for j in range(n)]
    return parse_spec({"name": f"{name}-{n}", "graph": "undirected", "nodes": nodes, "cliques": cliques})


def mixed_spec():
    """Mixed state counts, table / agreement / ising features, a tie, a triangle."""
    return parse_spec({
        "name": "mixed", "graph": "undirected",
        "nodes": {"a": {"states": ["lo", "mid", "hi"]}, "b": {"states": 2}, "c": {"states": 3},
                  "d": {"states": 2}, "e": {"states": 2, "unary": False}},
        "cliques": [{"nodes": ["a", "b"]}, {"nodes": ["b", "c"]}, {"nodes": ["a", "c"], "features": "agreement"},
                    {"nodes": ["b", "d"], "features": "ising", "tie": "bin"},
                    {"nodes": ["d", "e"], "features": "ising", "tie": "bin"}, {"nodes": ["c", "d", "e"]}],
    })


def theta_with(layout, rng, scale=0.5, **fixed):
    theta = scale * rng.standard_normal(layout.n_params)
    for key, value in fixed.items():
        b = layout.blocks[key]
        theta[b.start:b.stop] = value
    return theta


def exact_sample(graph, theta, n, seed) -> pd.DataFrame:
    engine = LogLinear(graph)
    cal = calibrate(engine.tree, engine.potential_tables(engine.layout.log_tables(theta)))
    codes = sample_tree(cal, n, np.random.default_rng(seed))
    return pd.DataFrame({v: np.asarray(graph[v].labels, dtype=object)[codes[:, j]]
                         for j, v in enumerate(engine.layout.variables)})


class Enumerated:
    """Every joint state of a small model with its unnormalised log-probability."""

    def __init__(self, graph, theta):
        self.layout = layout = compile_layout(graph)
        self.states = np.array(list(itertools.product(*[range(k) for k in layout.cards])), dtype=np.int64)
        flat = layout.log_tables(theta)
        index = {v: i for i, v in enumerate(layout.variables)}
        self.score = np.zeros(len(self.states))
        for i, p in enumerate(layout.potentials):
            table = layout.table(flat, i)
            self.score += table[tuple(self.states[:, index[v]] for v in p.scope)]
        self.log_z = logsumexp(self.score)
        self.prob = np.exp(self.score - self.log_z)

    def potential_marginals(self) -> np.ndarray:
        """Model marginal of every potential, as a flat vector aligned with the layout."""
        layout = self.layout
        index = {v: i for i, v in enumerate(layout.variables)}
        out = np.zeros(layout.n_flat)
        for p in layout.potentials:
            code = np.zeros(len(self.states), dtype=np.int64)
            for v, k in zip(p.scope, p.cards):
                code = code * k + self.states[:, index[v]]
            out[p.offset:p.offset + p.size] = np.bincount(code, weights=self.prob, minlength=p.size)
        return out

    def row_log_likelihood(self, codes: np.ndarray) -> np.ndarray:
        """log p(observed part of each row), codes -1 summed over."""
        out = np.empty(len(codes))
        for r, row in enumerate(codes):
            match = np.all((self.states == row) | (row < 0), axis=1)
            out[r] = logsumexp(self.score[match]) - self.log_z
        return out


def data_codes(graph, data) -> np.ndarray:
    layout = compile_layout(graph)
    return np.stack([data.codes.get(v, np.full(data.n_rows, -1)) for v in layout.variables], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- features
def test_log_tables_follow_the_features():
    spec = mixed_spec()
    layout = compile_layout(build(spec))
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(layout.n_params)
    flat = layout.log_tables(theta)
    params = layout.unpack(theta)
    by_clique = {p.clique: i for i, p in enumerate(layout.potentials) if p.clique is not None}
    np.testing.assert_array_equal(layout.table(flat, by_clique[0]), params["clique0"])
    agree = layout.table(flat, by_clique[2])
    assert agree[1, 1] == params["clique2"] and agree[0, 1] == 0.0 and agree[2, 2] == params["clique2"]
    spins = layout.table(flat, by_clique[3])
    np.testing.assert_array_equal(spins, params["bin"] * np.array([[1.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_array_equal(layout.table(flat, by_clique[4]), spins)  # tied
    unary = [i for i, p in enumerate(layout.potentials) if p.family == UNARY and p.scope == ("a",)][0]
    np.testing.assert_array_equal(layout.table(flat, unary), [0.0, *params["a"]])
    assert "e" not in layout.blocks  # unary: false
    assert layout.n_params == 2 + 1 + 2 + 1 + 6 + 6 + 1 + 1 + 12


def test_custom_features_fit_like_the_builtin_they_copy():
    register_feature("spin_product", lambda codes: np.prod(2 * codes - 1, axis=1), replace=True)
    np.testing.assert_array_equal(feature_matrix("spin_product", (2, 2)), feature_matrix("ising", (2, 2)))
    base = load_spec(MODELS / "ising_3x3.yaml") if (MODELS / "ising_3x3.yaml").exists() else grid_spec(3)
    spec = base.model_copy(update={"cliques": [c.model_copy(update={"features": "spin_product"}) for c in base.cliques]})
    spec = parse_spec(spec.model_dump(by_alias=True, exclude_none=True))  # the name validates now
    rng = np.random.default_rng(1)
    truth = build(base)
    df = exact_sample(truth, theta_with(compile_layout(truth), rng, 0.3), 2000, 1)
    a = fit_loglinear(truth, df, tol=1e-9)
    b = fit_loglinear(build(spec), df, tol=1e-9)
    np.testing.assert_allclose(a.theta, b.theta, atol=1e-6)
    with pytest.raises(ValueError, match="exists"):
        register_feature("ising", lambda codes: codes)


# --------------------------------------------------------------------------- exact learning
def test_moment_matching_at_the_unpenalised_optimum():
    spec = mixed_spec()
    graph = build(spec)
    rng = np.random.default_rng(2)
    layout = compile_layout(graph)
    df = exact_sample(graph, theta_with(layout, rng), 4000, 2)
    fit = fit_loglinear(graph, df, tol=1e-9)
    assert fit.converged and fit.history_kind == "log_likelihood"
    data = encode(graph, df)
    empirical = layout.pullback(layout.counts(data_codes(graph, data))) / data.n_rows
    model = layout.pullback(Enumerated(graph, fit.theta).potential_marginals())
    assert np.max(np.abs(empirical - model)) < 1e-6
    # the history ends at the exact log-likelihood of the returned parameters
    ref = Enumerated(graph, fit.theta).row_log_likelihood(data_codes(graph, data)).sum()
    assert abs(fit.history[-1] - ref) < 1e-8 * abs(ref)


def ising_features(states: np.ndarray, n: int) -> np.ndarray:
    """Unary indicators (state 1) per node, then the horizontal and vertical spin sums,
    written directly from the grid (independent of pgm's layout)."""
    spins = 2 * states - 1
    grid = spins.reshape(-1, n, n)
    horiz = (grid[:, :, :-1] * grid[:, :, 1:]).sum(axis=(1, 2))
    vert = (grid[:, :-1, :] * grid[:, 1:, :]).sum(axis=(1, 2))
    return np.column_stack([states, horiz, vert]).astype(float)


def test_lbfgs_gradient_and_coordinate_ascent_reach_the_brute_force_maximum():
    spec = load_spec(MODELS / "ising_3x3.yaml") if (MODELS / "ising_3x3.yaml").exists() else grid_spec(3)
    graph = build(spec)
    layout = compile_layout(graph)
    rng = np.random.default_rng(3)
    df = exact_sample(graph, theta_with(layout, rng, 0.3, horizontal=0.4, vertical=-0.25), 3000, 3)
    data = encode(graph, df)
    # brute force: the enumerated log-likelihood over all 512 states, maximised by scipy
    states = np.array(list(itertools.product(range(2), repeat=9)))
    phi = ising_features(states, 3)
    observed = ising_features(data_codes(graph, data), 3).sum(axis=0)

    def neg(t):
        scores = phi @ t
        log_z = logsumexp(scores)
        p = np.exp(scores - log_z)
        return -(observed @ t - data.n_rows * log_z), -(observed - data.n_rows * (p @ phi))

    best = minimize(neg, np.zeros(phi.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-9})
    reference = -best.fun
    results = {}
    for learner in ("lbfgs", "gradient", "coordinate"):
        fit = fit_loglinear(graph, data, learner=learner, tol=1e-7)
        assert fit.converged, learner
        results[learner] = fit.history[-1]
        assert abs(fit.history[-1] - reference) < 1e-6, (learner, fit.history[-1], reference)
    assert max(results.values()) - min(results.values()) < 1e-6
    # gradient ascent with backtracking never goes down
    fit = fit_loglinear(graph, data, learner="gradient", tol=1e-5)
    assert np.all(np.diff(fit.history) >= -1e-9)


def test_coordinate_ascent_is_ipf_one_sweep_for_a_single_table():
    spec = parse_spec({"name": "one", "graph": "undirected",
                       "nodes": {"a": {"states": 3, "unary": False}, "b": {"states": 2, "unary": False}},
                       "cliques": [{"nodes": ["a", "b"]}]})
    graph = build(spec)
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.integers(0, 3, 500), "b": rng.integers(0, 2, 500)})
    fit = fit_loglinear(graph, df, learner="coordinate", tol=1e-10)
    assert fit.n_iter <= 2
    counts = pd.crosstab(df["a"], df["b"]).to_numpy() / 500
    np.testing.assert_allclose(np.exp(fit.theta.reshape(3, 2)) / np.exp(fit.theta).sum(), counts, atol=1e-12)


def test_recovery_of_known_couplings_within_sampling_error():
    spec = load_spec(MODELS / "ising_4x4.yaml") if (MODELS / "ising_4x4.yaml").exists() else grid_spec(4)
    graph = build(spec)
    layout = compile_layout(graph)
    rng = np.random.default_rng(5)
    truth = theta_with(layout, rng, 0.2, horizontal=0.3, vertical=-0.2)
    n = 10_000
    df = exact_sample(graph, truth, n, 5)
    fit = fit_loglinear(graph, df)
    # standard errors from the Fisher information N Cov(f), enumerated at the truth
    states = np.array(list(itertools.product(range(2), repeat=16)))
    phi = ising_features(states, 4)
    assert list(layout.blocks)[-2:] == ["horizontal", "vertical"]
    scores = phi @ truth
    p = np.exp(scores - logsumexp(scores))
    mean = p @ phi
    cov = (phi * p[:, None]).T @ phi - np.outer(mean, mean)
    err_cov = np.linalg.inv(n * cov)
    se = np.sqrt(np.diag(err_cov))
    z = (fit.theta - truth) / se
    assert np.all(np.abs(z[-2:]) < 3), z[-2:]
    assert (fit.theta - truth) @ np.linalg.solve(err_cov, fit.theta - truth) < chi2.ppf(0.999, len(truth))


# --------------------------------------------------------------------------- approximate learning
@pytest.mark.slow
def test_pcd_on_a_10x10_grid_lands_near_the_exact_answer():
    graph = build(grid_spec(10))
    layout = compile_layout(graph)
    rng = np.random.default_rng(6)
    df = exact_sample(graph, theta_with(layout, rng, 0.1, horizontal=0.25, vertical=0.15), 3000, 6)
    data = encode(graph, df)
    exact = fit_loglinear(graph, data)
    pcd = fit_loglinear(graph, data, learner="pcd", max_iter=600, n_chains=300, seed=0)
    assert pcd.history_kind == "log_likelihood"  # a 10x10 grid is still exact: it monitors the real thing
    np.testing.assert_allclose(pcd.theta[-2:], exact.theta[-2:], atol=0.03)
    assert np.mean(np.abs(pcd.theta[:-2] - exact.theta[:-2])) < 0.05
    assert exact.history[-1] - pcd.history[-1] < 2.0  # within a couple of nats of 3000 rows' maximum


def test_pseudo_likelihood_value_gradient_and_consistency():
    spec = mixed_spec()
    graph = build(spec)
    engine = LogLinear(graph)
    layout = engine.layout
    rng = np.random.default_rng(7)
    theta = theta_with(layout, rng)
    df = exact_sample(graph, theta, 300, 7)
    rows = engine.prepare(encode(graph, df))
    # brute force: sum over rows and variables of log p(x_i | rest), by enumeration
    enum = Enumerated(graph, theta)
    codes = data_codes(graph, encode(graph, df))
    lookup = {tuple(s): enum.score[i] for i, s in enumerate(enum.states)}
    ref = 0.0
    for row in codes:
        for i, k in enumerate(layout.cards):
            alt = [lookup[tuple(np.r_[row[:i], s, row[i + 1:]])] for s in range(k)]
            ref += lookup[tuple(row)] - logsumexp(alt)
    value, dflat = engine.pseudo(rows, layout.log_tables(theta), grad=True)
    assert abs(value - ref) < 1e-9 * abs(ref)
    grad = layout.pullback(dflat)
    eps = 1e-6
    for j in rng.choice(layout.n_params, 8, replace=False):
        e = np.zeros(layout.n_params)
        e[j] = eps
        fd = (engine.pseudo(rows, layout.log_tables(theta + e))[0]
              - engine.pseudo(rows, layout.log_tables(theta - e))[0]) / (2 * eps)
        assert abs(fd - grad[j]) < 1e-5 * max(1.0, abs(fd))


def test_pseudo_likelihood_is_consistent():
    graph = build(grid_spec(4))
    layout = compile_layout(graph)
    rng = np.random.default_rng(8)
    truth = theta_with(layout, rng, 0.2, horizontal=0.3, vertical=-0.2)
    df = exact_sample(graph, truth, 20_000, 8)
    pseudo = fit_loglinear(graph, df, learner="pseudo")
    exact = fit_loglinear(graph, df)
    assert pseudo.history_kind == "pseudo_log_likelihood"
    np.testing.assert_allclose(pseudo.theta[-2:], truth[-2:], atol=0.03)
    np.testing.assert_allclose(pseudo.theta, exact.theta, atol=0.06)


# --------------------------------------------------------------------------- hidden nodes
def hidden_spec():
    nodes = {f"v{i}": {"states": 2} for i in range(4)}
    nodes["v4"] = {"states": 3}
    nodes.update({f"h{j}": {"states": 2, "latent": True} for j in range(2)})
    nodes["h2"] = {"states": 3, "latent": True}
    cliques = [{"nodes": [f"v{i}", f"h{j}"]} for i in range(5) for j in range(3)]
    cliques += [{"nodes": ["h0", "h1"], "features": "agreement"}, {"nodes": ["v0", "v1"], "features": "ising"}]
    return parse_spec({"name": "rbm", "graph": "undirected", "nodes": nodes, "cliques": cliques})


def hidden_data(n: int = 400, seed: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"v{i}": rng.integers(0, 3 if i == 4 else 2, n).astype(float) for i in range(5)})
    df.iloc[:40, 1] = np.nan   # missing cells: summed out like the latent nodes
    df.iloc[30:70, 4] = np.nan
    return df


def test_hidden_units_log_likelihood_and_gradient():
    graph = build(hidden_spec())
    engine = LogLinear(graph)
    layout = engine.layout
    data = encode(graph, hidden_data())
    rows = engine.prepare(data)
    assert len(rows.patterns) == 4  # latent only, v1 missing, v4 missing, both
    rng = np.random.default_rng(10)
    theta = rng.standard_normal(layout.n_params)
    value, grad = engine.value_and_grad(rows, theta)
    ref = Enumerated(graph, theta).row_log_likelihood(data_codes(graph, data)).sum()
    assert abs(value - ref) < 1e-9 * abs(ref)
    eps = 1e-6
    fd = np.array([(engine.log_likelihood(rows, layout.log_tables(theta + eps * e))
                    - engine.log_likelihood(rows, layout.log_tables(theta - eps * e))) / (2 * eps)
                   for e in np.eye(layout.n_params)]) / data.n_rows
    np.testing.assert_allclose(grad, fd, atol=1e-7)


def test_hidden_units_fit_with_every_exact_learner():
    graph = build(hidden_spec())
    df = hidden_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lbfgs = fit_loglinear(graph, df, max_iter=60, tol=1e-4, seed=1)
        coord = fit_loglinear(graph, df, learner="coordinate", max_iter=3, seed=1)
        grad = fit_loglinear(graph, df, learner="gradient", max_iter=20, seed=1)
        pcd = fit_loglinear(graph, df, learner="pcd", max_iter=30, seed=1, n_chains=50)
    assert lbfgs.history[-1] > lbfgs.history[0]
    assert np.all(np.diff(coord.history) > -1e-9)  # block updates with a line search never go down
    assert np.all(np.diff(grad.history) > -1e-9)
    assert np.all(np.isfinite(pcd.theta))


# --------------------------------------------------------------------------- options and errors
def test_l2_penalty_stationarity_and_learner_agreement():
    graph = build(mixed_spec())
    layout = compile_layout(graph)
    df = exact_sample(graph, theta_with(layout, np.random.default_rng(11)), 1000, 11)
    engine = LogLinear(graph)
    rows = engine.prepare(encode(graph, df))
    a = fit_loglinear(graph, df, l2=0.05, tol=1e-9)
    _, grad = engine.value_and_grad(rows, a.theta)
    np.testing.assert_allclose(grad, 0.05 * a.theta, atol=1e-8)
    b = fit_loglinear(graph, df, l2=0.05, learner="coordinate", tol=1e-8)
    np.testing.assert_allclose(b.theta, a.theta, atol=1e-5)


def test_weights_count_like_repeated_rows():
    graph = build(mixed_spec())
    layout = compile_layout(graph)
    df = exact_sample(graph, theta_with(layout, np.random.default_rng(12)), 200, 12)
    weights = np.random.default_rng(0).integers(1, 4, len(df))
    a = fit_loglinear(graph, encode(graph, df, weights=weights.astype(float)), tol=1e-9)
    b = fit_loglinear(graph, df.loc[df.index.repeat(weights)].reset_index(drop=True), tol=1e-9)
    assert abs(a.history[-1] - b.history[-1]) < 1e-7 * abs(b.history[-1])


def test_clear_errors_and_warnings():
    graph = build(mixed_spec())
    df = exact_sample(graph, theta_with(compile_layout(graph), np.random.default_rng(13)), 100, 13)
    directed = build(parse_spec({"name": "d", "nodes": {"a": {"states": 2}, "b": {"states": 2, "parents": ["a"]}}}))
    with pytest.raises(ModelError, match="undirected"):
        fit_loglinear(directed, pd.DataFrame({"a": [0], "b": [1]}))
    with pytest.raises(PGMError, match="unknown learner 'em'.*lbfgs"):
        fit_loglinear(graph, df, learner="em")
    with pytest.raises(PGMError, match="l2"):
        fit_loglinear(graph, df, l2=-1.0)
    with pytest.raises(DataError, match="pseudo-likelihood needs every cell observed.*learner='lbfgs'"):
        fit_loglinear(build(hidden_spec()), hidden_data(), learner="pseudo")
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        fit_loglinear(graph, df, max_iter=2)
    wide = build(grid_spec(30))
    cols = {v: np.resize(["-1", "1"], 5) for v in wide.order}
    with pytest.raises(ModelError, match="learner='pcd'"):
        fit_loglinear(wide, pd.DataFrame(cols))
    tied = parse_spec({"name": "t", "graph": "undirected", "nodes": {"a": {"states": 2}, "b": {"states": 2}},
                       "cliques": [{"nodes": ["a", "b"], "tie": "a"}]})
    with pytest.raises(ModelError, match="also the name of a node"):
        fit_loglinear(build(tied), pd.DataFrame({"a": [0], "b": [1]}))


@pytest.mark.slow
def test_pcd_and_pseudo_handle_a_grid_too_wide_for_exact_inference():
    graph = build(grid_spec(24))
    layout = compile_layout(graph)
    rng = np.random.default_rng(14)
    df = pd.DataFrame({v: rng.choice(["-1", "1"], 300) for v in layout.variables})
    fit = fit_loglinear(graph, df, learner="pcd", max_iter=40, n_chains=20)
    assert fit.history_kind == "pseudo_log_likelihood" and len(fit.history) > 5
    pseudo = fit_loglinear(graph, df, learner="pseudo", max_iter=30)
    assert np.all(np.isfinite(pseudo.theta))


@pytest.mark.parametrize("name", ["ising_3x3", "ising_4x4", "pairwise_table"])
def test_fit_the_example_models(name):
    path = MODELS / f"{name}.yaml"
    assert path.exists(), f"{path}: the bundled example model is missing"
    graph = build(load_spec(path))
    layout = compile_layout(graph)
    df = exact_sample(graph, theta_with(layout, np.random.default_rng(15), 0.4), 2000, 15)
    fit = fit_loglinear(graph, df, tol=1e-8)
    engine = LogLinear(graph)
    rows = engine.prepare(encode(graph, df))
    assert fit.converged
    assert abs(fit.history[-1] - engine.log_likelihood(rows, layout.log_tables(fit.theta))) < 1e-9 * 2000
    _, grad = engine.value_and_grad(rows, fit.theta)
    assert np.max(np.abs(grad)) < 1e-6
