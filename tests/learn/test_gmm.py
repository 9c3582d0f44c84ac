"""The Gaussian mixture as the generic EM on ``z -> x``, checked against scikit-learn.

scikit-learn's ``GaussianMixture`` is an independent, closed-form implementation of the
same EM.  Started from the same parameters with the same ``reg_covar``, the two must
follow the same path: ``lower_bounds_[i]`` (the mean log-likelihood of the parameters
*before* M-step ``i + 1``) equals pgm's ``history[i] / n_rows`` (pgm's history also holds
the log-likelihood of the parameters it returns, after the last update), and ``max_iter=k``
runs k updates in both.  Hard EM on a mixture is
compared with scikit-learn's ``KMeans`` (see the docstrings for when they must agree).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture

import pgm
import pgm.graph
from pgm.cpd.linear import LinearCPD
from pgm.cpd.table import TableCPD
from pgm.errors import ConvergenceWarning, DataWarning
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

COVARIANCES = ["full", "diag", "spherical", "tied"]
REG = 1e-6  # pgm's EM default; passed to both libraries explicitly
IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris.csv"
IRIS_COLS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# --------------------------------------------------------------------------- helpers
def mixture_spec(k: int, d: int, covariance: str):
    return parse_spec({"name": "mix", "graph": "directed", "nodes": {
        "z": {"states": k, "latent": True},
        "x": {"type": "gaussian", "dim": d, "parents": ["z"], "covariance": covariance}}})


def frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"x[{j}]" for j in range(x.shape[1])])


def blobs(n: int = 450, k: int = 3, d: int = 3, seed: int = 0, spread: float = 3.0, offset: float = 5.0) -> np.ndarray:
    """Overlapping anisotropic blobs away from the origin (so centring matters)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    parts = [c + rng.normal(size=(n // k, d)) @ rng.normal(size=(d, d)) for c in centres]
    return np.vstack(parts) + offset


def random_start(x: np.ndarray, k: int, covariance: str, seed: int):
    """Initial weights, means, covariances (k, d, d) and scikit-learn's precisions_init."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    weights = rng.dirichlet(np.full(k, 5.0))
    means = x[rng.choice(n, k, replace=False)] + rng.normal(scale=0.1, size=(k, d))
    if covariance == "full":
        a = rng.normal(size=(k, d, d))
        cov = a @ np.transpose(a, (0, 2, 1)) + np.eye(d)
        prec = np.linalg.inv(cov)
    elif covariance == "diag":
        v = rng.uniform(0.5, 3.0, size=(k, d))
        cov, prec = v[:, :, None] * np.eye(d), 1.0 / v
    elif covariance == "spherical":
        v = rng.uniform(0.5, 3.0, size=k)
        cov, prec = v[:, None, None] * np.eye(d), 1.0 / v
    else:
        a = rng.normal(size=(d, d))
        shared = a @ a.T + np.eye(d)
        cov, prec = np.broadcast_to(shared, (k, d, d)).copy(), np.linalg.inv(shared)
    return weights, means, cov, prec


def pgm_init(weights, means, cov, covariance):
    k, d = means.shape
    return {"z": TableCPD(np.asarray(weights, dtype=float)[None, :]),
            "x": LinearCPD(np.array(means, dtype=float), np.zeros((k, d, 0)), np.array(cov, dtype=float), covariance)}


def sklearn_covariances(gm: GaussianMixture) -> np.ndarray:
    """scikit-learn's covariances_ as an array of shape (k, d, d)."""
    k, d = gm.means_.shape
    c = gm.covariances_
    if gm.covariance_type == "full":
        return c
    if gm.covariance_type == "diag":
        return c[:, :, None] * np.eye(d)
    if gm.covariance_type == "spherical":
        return c[:, None, None] * np.eye(d)
    return np.broadcast_to(c, (k, d, d))


def sklearn_fit(x, k, covariance, weights, means, prec, max_iter):
    gm = GaussianMixture(k, covariance_type=covariance, weights_init=weights, means_init=means,
                         precisions_init=prec, max_iter=max_iter, tol=0.0, reg_covar=REG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        gm.fit(x)
    return gm


def fit_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pgm.fit(*args, **kwargs)


def one_m_step(spec, data, cpds, **kwargs):
    """Exactly one E+M step from ``cpds``: with tol=inf the second E-step always stops the loop."""
    return pgm.fit(spec, data, init=cpds, max_iter=5, tol=np.inf, **kwargs)


# --------------------------------------------------------------------------- EM traces
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_log_likelihood_trace_equals_sklearn(covariance):
    x = blobs(seed=1)
    n, k = len(x), 3
    weights, means, cov, prec = random_start(x, k, covariance, seed=2)
    fitted = fit_quiet(mixture_spec(k, x.shape[1], covariance), frame(x), init=pgm_init(weights, means, cov, covariance),
                       max_iter=40, tol=0.0, reg_covar=REG, accelerate=False)  # plain EM's own trace
    gm = sklearn_fit(x, k, covariance, weights, means, prec, max_iter=40)
    ours = np.asarray(fitted.history) / n
    # max_iter=40: 40 updates in both; pgm records the start and each update's result (41 values)
    assert len(ours) == 41 and len(gm.lower_bounds_) == 40 and fitted.info["n_iter"] == 40
    np.testing.assert_allclose(ours[:40], gm.lower_bounds_, rtol=1e-8, atol=0)
    assert np.all(np.diff(ours) >= -1e-9 * np.abs(ours[1:]))
    # and the returned parameters are scikit-learn's after its 40 M-steps
    np.testing.assert_allclose(fitted.cpds["x"].intercept, gm.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fitted.cpds["z"].probs[0], gm.weights_, rtol=1e-7)
    assert ours[40] == pytest.approx(gm.score(x), rel=1e-9)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_parameters_one_step_at_a_time_equal_sklearn(covariance):
    """Eight single EM steps chained through ``init=`` land on scikit-learn's parameters after max_iter=8."""
    x = blobs(seed=3)
    k = 3
    spec = mixture_spec(k, x.shape[1], covariance)
    weights, means, cov, prec = random_start(x, k, covariance, seed=4)
    cpds = pgm_init(weights, means, cov, covariance)
    previous = -np.inf
    for _ in range(8):
        step = one_m_step(spec, frame(x), cpds, reg_covar=REG)
        assert step.history[0] >= previous - 1e-9 * abs(step.history[0])  # monotone, step by step
        previous = step.history[0]
        cpds = step.cpds
    gm = sklearn_fit(x, k, covariance, weights, means, prec, max_iter=8)
    np.testing.assert_allclose(cpds["z"].probs[0], gm.weights_, rtol=1e-8)
    np.testing.assert_allclose(cpds["x"].intercept, gm.means_, rtol=1e-8)
    np.testing.assert_allclose(cpds["x"].cov, sklearn_covariances(gm), rtol=1e-8, atol=1e-12)


@pytest.mark.slow
def test_iris_n_init_10_at_least_sklearn_best():
    iris = pd.read_csv(IRIS)[IRIS_COLS]
    x = iris.to_numpy()
    fitted = fit_quiet(pgm.load("models/gmm_iris.yaml"), iris, n_init=10, seed=0, max_iter=1000)
    ours = fitted.log_likelihood(iris) / len(x)
    gm = GaussianMixture(3, covariance_type="full", n_init=10, reg_covar=REG, tol=1e-10, max_iter=1000,
                         random_state=0).fit(x)
    assert ours >= gm.score(x) - 1e-6
    assert np.all(np.isfinite(fitted.history))
    assert len(fitted.info["runs"]) == 10
    assert fitted.history[-1] == pytest.approx(max(run[-1] for run in fitted.info["runs"]), rel=1e-12)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_posterior_predict_and_density_equal_sklearn(covariance):
    x = blobs(seed=5)
    k = 3
    gm = GaussianMixture(k, covariance_type=covariance, reg_covar=REG, random_state=0).fit(x)
    spec = mixture_spec(k, x.shape[1], covariance)
    model = FittedModel(spec, pgm.graph.build(spec), pgm_init(gm.weights_, gm.means_, sklearn_covariances(gm), covariance))
    np.testing.assert_allclose(model.posterior("z", frame(x)).to_numpy(), gm.predict_proba(x), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(model.predict("z", frame(x)).to_numpy().astype(int), gm.predict(x))
    np.testing.assert_allclose(model.row_log_likelihood(frame(x)), gm.score_samples(x), rtol=1e-10)
    assert model.log_likelihood(frame(x)) == pytest.approx(gm.score(x) * len(x), rel=1e-10)


def test_default_init_recovers_separated_means():
    """init='auto' (k-means++) on well-separated blobs finds every centre (up to label switching)."""
    rng = np.random.default_rng(6)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    x = np.vstack([c + rng.normal(size=(250, 2)) for c in centres])
    fitted = fit_quiet(mixture_spec(4, 2, "full"), frame(x))
    got = fitted.cpds["x"].intercept
    order = [int(np.argmin(((got - c) ** 2).sum(axis=1))) for c in centres]
    assert sorted(order) == [0, 1, 2, 3]
    # standard error of a mean is 1/sqrt(250) = 0.063: 0.25 is four of them
    np.testing.assert_allclose(got[order], centres, atol=0.25)
    np.testing.assert_allclose(fitted.cpds["z"].probs[0], 0.25, atol=1e-3)


# --------------------------------------------------------------------------- hard EM
def test_first_hard_em_step_is_a_lloyd_step():
    """From equal weights and one shared spherical covariance, the hard E-step assigns every row to its
    nearest centre, so the first M-step's means are exactly one Lloyd step (KMeans(max_iter=1)); the
    weights and variances are the classification MLE of that partition.  This holds on any data."""
    x = blobs(n=600, k=4, d=2, seed=7, spread=2.0)
    k, d = 4, 2
    centres = x[[3, 170, 320, 480]]
    start = pgm_init(np.full(k, 1 / k), centres, np.broadcast_to(2.0 * np.eye(d), (k, d, d)).copy(), "spherical")
    step = one_m_step(mixture_spec(k, d, "spherical"), frame(x), start, learner="hard-em", reg_covar=REG)
    km = KMeans(k, init=centres, n_init=1, max_iter=1, algorithm="lloyd").fit(x)
    np.testing.assert_allclose(step.cpds["x"].intercept, km.cluster_centers_, rtol=1e-12, atol=1e-12)
    labels = ((x[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(labels, minlength=k)
    np.testing.assert_allclose(step.cpds["z"].probs[0], counts / len(x), rtol=1e-12)
    sq = ((x - km.cluster_centers_[labels]) ** 2).sum(axis=1)
    variances = np.bincount(labels, weights=sq, minlength=k) / counts / d + REG
    np.testing.assert_allclose(step.cpds["x"].cov, variances[:, None, None] * np.eye(d), rtol=1e-10)


@pytest.mark.parametrize("covariance", ["spherical", "tied"])
def test_hard_em_partition_equals_kmeans_on_separated_blobs(covariance):
    """k-means is hard EM with equal weights and one fixed spherical covariance.  pgm's hard EM also
    learns weights and (co)variances, so the two can differ in principle near a boundary; on equal-sized,
    well-separated isotropic blobs every row is far nearer its own centre than any other under both
    rules, and the partitions (and hence the means) must coincide."""
    rng = np.random.default_rng(8)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 20.0]])
    x = np.vstack([c + rng.normal(size=(200, 2)) for c in centres])
    k, d = len(centres), 2
    start_centres = centres + rng.normal(scale=1.5, size=centres.shape)
    start = pgm_init(np.full(k, 1 / k), start_centres, np.broadcast_to(np.eye(d), (k, d, d)).copy(), covariance)
    fitted = fit_quiet(mixture_spec(k, d, covariance), frame(x), init=start, learner="hard-em", reg_covar=REG)
    km = KMeans(k, init=start_centres, n_init=1, algorithm="lloyd").fit(x)
    labels = fitted.predict("z", frame(x)).to_numpy().astype(int)
    np.testing.assert_array_equal(labels, km.labels_)
    np.testing.assert_allclose(fitted.cpds["x"].intercept, km.cluster_centers_, rtol=1e-10, atol=1e-10)
    assert fitted.info["converged"]


# --------------------------------------------------------------------------- degenerate mixtures
def _finite_model(fitted: FittedModel, data: pd.DataFrame) -> None:
    assert np.all(np.isfinite(fitted.history))
    for cpd in fitted.cpds.values():
        for arr in vars(cpd).values():
            if isinstance(arr, np.ndarray):
                assert np.all(np.isfinite(arr))
    assert np.all(np.isfinite(fitted.posterior("z", data).to_numpy()))
    assert np.isfinite(fitted.log_likelihood(data))


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_empty_component_warns_and_stays_finite(covariance):
    """A component started far from every row gets no responsibility (exactly 0): a DataWarning names it,
    and it does not disturb the other components, whose fit equals the K-1 mixture's."""
    rng = np.random.default_rng(9)
    x = np.vstack([rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 8.0])
    data = frame(x)
    means = np.array([[0.0, 0.0], [8.0, 8.0], [1e4, 1e4]])
    cov = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    with pytest.warns(DataWarning, match="no support"):
        fitted = fit_quiet(mixture_spec(3, 2, covariance), data, init=pgm_init([0.4, 0.4, 0.2], means, cov, covariance),
                           reg_covar=REG)
    _finite_model(fitted, data)
    assert fitted.cpds["z"].probs[0, 2] == 0.0
    two = fit_quiet(mixture_spec(2, 2, covariance), data, init=pgm_init([0.5, 0.5], means[:2], cov[:2], covariance),
                    reg_covar=REG)
    np.testing.assert_allclose(fitted.cpds["z"].probs[0, :2], two.cpds["z"].probs[0], rtol=1e-8)
    np.testing.assert_allclose(fitted.cpds["x"].intercept[:2], two.cpds["x"].intercept, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fitted.cpds["x"].cov[:2], two.cpds["x"].cov, rtol=1e-8, atol=1e-12)
    assert fitted.log_likelihood(data) == pytest.approx(two.log_likelihood(data), rel=1e-10)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_more_components_than_clusters(covariance):
    """Six components on three distinct points (50 copies each): the surplus components end up empty,
    a warning says so, and nothing is NaN; the log-likelihood equals the three-component fit's."""
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), 50, axis=0)
    data = frame(x)
    with pytest.warns(DataWarning, match="no support"):
        six = fit_quiet(mixture_spec(6, 2, covariance), data, n_init=2, reg_covar=REG)
    _finite_model(six, data)
    three = fit_quiet(mixture_spec(3, 2, covariance), data, n_init=2, reg_covar=REG)
    assert six.log_likelihood(data) == pytest.approx(three.log_likelihood(data), rel=1e-9)


@pytest.mark.parametrize("reg_covar", [REG, 1e-3])
def test_component_collapsing_on_one_point_is_floored_and_reported(reg_covar):
    """Ten copies of one point beside a cloud: one component collapses onto the point.  Its covariance
    is floored at exactly reg_covar (scikit-learn's rule), everything stays finite, and the user is told
    (a warning that points at reg_covar), as the issue asks for degenerate cases."""
    rng = np.random.default_rng(10)
    x = np.vstack([rng.normal(size=(200, 2)), np.tile([[6.0, 6.0]], (10, 1))])
    data = frame(x)
    start = pgm_init([0.5, 0.5], np.array([[0.0, 0.0], [6.0, 6.0]]), np.broadcast_to(np.eye(2), (2, 2, 2)).copy(),
                     "full")
    with pytest.warns(UserWarning, match="reg_covar"):
        fitted = fit_quiet(mixture_spec(2, 2, "full"), data, init=start, reg_covar=reg_covar)
    _finite_model(fitted, data)
    np.testing.assert_allclose(fitted.cpds["x"].intercept[1], [6.0, 6.0], atol=1e-12)
    np.testing.assert_allclose(fitted.cpds["x"].cov[1], reg_covar * np.eye(2), rtol=1e-8, atol=1e-15)
    assert fitted.cpds["z"].probs[0, 1] == pytest.approx(10 / 210, rel=1e-8)


def test_reg_covar_zero_on_a_collapsed_component_warns_and_floors():
    """With reg_covar=0 the covariance of a collapsed component would be singular: pgm floors it and warns."""
    rng = np.random.default_rng(11)
    x = np.vstack([rng.normal(size=(200, 2)), np.tile([[6.0, 6.0]], (10, 1))])
    data = frame(x)
    start = pgm_init([0.5, 0.5], np.array([[0.0, 0.0], [6.0, 6.0]]), np.broadcast_to(np.eye(2), (2, 2, 2)).copy(),
                     "full")
    with pytest.warns(UserWarning, match="reg_covar"):
        fitted = fit_quiet(mixture_spec(2, 2, "full"), data, init=start, reg_covar=0.0)
    _finite_model(fitted, data)
    assert np.linalg.eigvalsh(fitted.cpds["x"].cov[1]).min() > 0


def test_nan_in_gaussian_child_of_latent_node():
    """Rows whose gaussian child is NaN still inform z through a discrete sibling: fit runs, stays
    monotone and finite, and those rows' log-likelihood is log sum_z p(z) p(c | z)."""
    spec = parse_spec({"name": "mixed", "graph": "directed", "nodes": {
        "z": {"states": 2, "latent": True},
        "c": {"states": 3, "parents": ["z"]},
        "x": {"type": "gaussian", "dim": 2, "parents": ["z"], "covariance": "full"}}})
    graph = pgm.graph.build(spec)
    truth = FittedModel(spec, graph, {
        "z": TableCPD(np.array([[0.4, 0.6]])),
        "c": TableCPD(np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7]])),
        "x": LinearCPD(np.array([[0.0, 0.0], [4.0, 4.0]]), np.zeros((2, 2, 0)),
                       np.array([np.eye(2), [[1.0, 0.5], [0.5, 1.0]]]), "full")})
    data = truth.sample(2000, seed=1).drop(columns="z")
    hole = np.random.default_rng(2).random(2000) < 0.3
    data.loc[hole, ["x[0]", "x[1]"]] = np.nan
    fitted = fit_quiet(spec, data, seed=0)
    _finite_model(fitted, data)
    h = np.asarray(fitted.history)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    pz, pc = fitted.cpds["z"].probs[0], fitted.cpds["c"].probs
    codes = data["c"].to_numpy().astype(int)
    expected = np.log(pz @ pc[:, codes])
    np.testing.assert_allclose(fitted.row_log_likelihood(data)[hole], expected[hole], rtol=1e-12)
    # near the truth up to label switching (2000 rows: a few standard errors)
    perm = [0, 1] if fitted.cpds["x"].intercept[0, 0] < 2 else [1, 0]
    np.testing.assert_allclose(fitted.cpds["z"].probs[0, perm], [0.4, 0.6], atol=0.04)
    np.testing.assert_allclose(fitted.cpds["x"].intercept[perm], [[0.0, 0.0], [4.0, 4.0]], atol=0.15)
