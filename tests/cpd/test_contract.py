"""One contract over every CPD kind (sklearn's parametrize_with_checks, pomegranate's
``_utils.py``): sufficient statistics add over chunks of rows, integer weights equal repeated
rows, ``from_stats`` gives a normalised distribution, and Dirichlet/BDeu priors add the
documented pseudo-counts.

Each case is one node of ``SPEC`` fitted through the family layer (``family_stats`` ->
``fit_cpd``), on rows drawn independently per column, which is all these identities need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pgm.cpd.family import families, family_stats, fit_cpd
from pgm.cpd.linear import GaussStats, LinearCPD
from pgm.cpd.logistic import LogisticCPD, LogisticStats, logistic_features
from pgm.cpd.table import TableCPD, TableStats
from pgm.encode import encode
from pgm.graph import build
from pgm.schema import parse_spec

GAUSS = {"type": "gaussian"}
SPEC = {
    "name": "contract",
    "nodes": {
        "a": {"states": ["lo", "hi"]},
        "b": {"states": 3},
        "u": GAUSS,
        "v": GAUSS,
        # the CPDs under test
        "t_root": {"states": 3},
        "t_par": {"states": 4, "parents": ["a", "b"]},
        "l_root": GAUSS,
        "l_cont": {**GAUSS, "parents": ["u", "v"]},
        "l_disc": {**GAUSS, "parents": ["a", "b"]},
        "l_both": {**GAUSS, "parents": ["b", "u", "v"]},
        "m_full": {**GAUSS, "dim": 3, "parents": ["a", "u"], "covariance": "full"},
        "m_diag": {**GAUSS, "dim": 3, "parents": ["a", "u"], "covariance": "diag"},
        "m_spherical": {**GAUSS, "dim": 3, "parents": ["a", "u"], "covariance": "spherical"},
        "m_tied": {**GAUSS, "dim": 3, "parents": ["a", "u"], "covariance": "tied"},
        "m_root": {**GAUSS, "dim": 2},
        "g_binary": {"states": ["no", "yes"], "cpd": "logistic", "parents": ["a", "u"]},
        "g_softmax": {"states": 3, "cpd": "logistic", "parents": ["b", "u", "v"]},
        "g_root": {"states": 3, "cpd": "logistic"},
    },
}
TABLES = ["t_root", "t_par"]
LINEAR = ["l_root", "l_cont", "l_disc", "l_both", "m_full", "m_diag", "m_spherical", "m_tied", "m_root"]
LOGISTIC = ["g_binary", "g_softmax", "g_root"]
KINDS = TABLES + LINEAR + LOGISTIC
N_ROWS = 240


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {
        "a": rng.choice(["lo", "hi"], n), "b": rng.integers(0, 3, n),
        "u": rng.normal(size=n), "v": rng.normal(3.0, 2.0, n),
        "t_root": rng.integers(0, 3, n), "t_par": rng.integers(0, 4, n),
        "g_binary": rng.choice(["no", "yes"], n), "g_softmax": rng.integers(0, 3, n), "g_root": rng.integers(0, 3, n),
    }
    for name in ("l_root", "l_cont", "l_disc", "l_both"):
        cols[name] = rng.normal(10.0, 3.0, n)  # away from the origin, as real data are
    for name in ("m_full", "m_diag", "m_spherical", "m_tied"):
        block = rng.normal(size=(n, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.0, 0.0, 2.0]]) + 5.0
        for j in range(3):
            cols[f"{name}[{j}]"] = block[:, j]
    for j in range(2):
        cols[f"m_root[{j}]"] = rng.normal(-2.0, 1.0 + j, n)
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def setup():
    graph = build(parse_spec(SPEC))
    data = encode(graph, make_frame(N_ROWS, seed=1))
    return graph, families(graph), data


def stats_of(fam, data, weights=None):
    assign = {**data.codes, **data.values}
    return family_stats(fam, assign, data.n_rows, None if weights is None else np.asarray(weights, float))


def options(graph, fam, prior=None):
    decl = graph.spec.nodes[fam.var.decl]
    if fam.kind == "linear":
        return {"covariance": decl.covariance}
    if fam.kind == "table":
        return {"prior": prior}
    return {}


def fitted(graph, fam, stats, prior=None):
    cpd, _ = fit_cpd(fam, stats, **options(graph, fam, prior))
    return cpd


def canonical(stats) -> list[np.ndarray]:
    """The content of a statistic as arrays, independent of how rows were chunked or ordered."""
    if isinstance(stats, TableStats):
        return [stats.counts]
    if isinstance(stats, GaussStats):
        return [stats.weight, stats.mean, stats.scatter]
    assert isinstance(stats, LogisticStats)
    # rows are a multiset of (features, targets): merge equal features and sort them
    uniq, inverse = np.unique(stats.features, axis=0, return_inverse=True)
    targets = np.zeros((len(uniq), stats.targets.shape[1]))
    np.add.at(targets, inverse.ravel(), stats.targets)
    keep = targets.sum(axis=1) > 0  # a zero-weight row carries no information
    return [uniq[keep], targets[keep]]


def assert_same_stats(got, want, rtol=1e-12):
    assert type(got) is type(want)
    for g, w in zip(canonical(got), canonical(want), strict=True):
        assert g.shape == w.shape
        scale = max(1.0, float(np.abs(w).max())) if w.size else 1.0
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * scale)


def cpd_arrays(cpd) -> list[np.ndarray]:
    if isinstance(cpd, TableCPD):
        return [cpd.probs]
    if isinstance(cpd, LinearCPD):
        return [cpd.intercept, cpd.coef, cpd.cov]
    return [cpd.intercept, cpd.coef]


def assert_same_cpd(got, want, atol):
    for g, w in zip(cpd_arrays(got), cpd_arrays(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=atol)


def cpd_tolerance(fam) -> float:
    # closed forms agree to rounding; the logistic fit is iterative (L-BFGS, then Newton steps
    # to a gradient near rounding), so two runs on statistics equal to 1e-16 agree to ~1e-13
    return 1e-11 if fam.kind == "logistic" else 1e-12


# ---------------------------------------------------------------- additivity

@pytest.mark.parametrize("node", KINDS)
def test_stats_add_over_chunks(setup, node):
    graph, fams, data = setup
    fam = fams[node]
    rng = np.random.default_rng(2)
    perm = rng.permutation(data.n_rows)
    # three uneven chunks; the last holds 7 rows, so some configurations are absent from it
    chunks = [np.sort(perm[:150]), np.sort(perm[150:233]), np.sort(perm[233:])]
    parts = [stats_of(fam, data.take(rows)) for rows in chunks]
    total = parts[0] + parts[1] + parts[2]
    whole = stats_of(fam, data)
    assert_same_stats(total, whole)
    assert_same_stats(parts[2] + (parts[0] + parts[1]), whole)  # order of addition is irrelevant
    assert_same_cpd(fitted(graph, fam, total), fitted(graph, fam, whole), cpd_tolerance(fam))


@pytest.mark.parametrize("node", KINDS)
def test_integer_weights_equal_repeated_rows(setup, node):
    graph, fams, data = setup
    fam = fams[node]
    weights = np.random.default_rng(3).integers(0, 4, data.n_rows)  # zeros drop rows
    repeated = data.take(np.repeat(np.arange(data.n_rows), weights))
    weighted = stats_of(fam, data, weights)
    assert_same_stats(weighted, stats_of(fam, repeated))
    assert_same_cpd(fitted(graph, fam, weighted), fitted(graph, fam, stats_of(fam, repeated)), cpd_tolerance(fam))


@pytest.mark.parametrize("node", KINDS)
def test_unit_weights_equal_no_weights(setup, node):
    _, fams, data = setup
    fam = fams[node]
    assert_same_stats(stats_of(fam, data, np.ones(data.n_rows)), stats_of(fam, data))


@pytest.mark.parametrize("node", KINDS)
def test_scaling_all_weights_leaves_the_mle_unchanged(setup, node):
    graph, fams, data = setup
    fam = fams[node]
    weights = np.random.default_rng(4).uniform(0.5, 2.0, data.n_rows)
    a = fitted(graph, fam, stats_of(fam, data, weights))
    b = fitted(graph, fam, stats_of(fam, data, 7.5 * weights))
    assert_same_cpd(a, b, 10 * cpd_tolerance(fam))


# ---------------------------------------------------------------- from_stats is a distribution

@pytest.mark.parametrize("node", KINDS)
def test_from_stats_gives_a_normalised_distribution(setup, node):
    graph, fams, data = setup
    fam = fams[node]
    cpd = fitted(graph, fam, stats_of(fam, data))
    if isinstance(cpd, TableCPD):
        assert cpd.probs.shape == (fam.n_configs, fam.var.n_states)
        assert np.all(cpd.probs >= 0) and np.all(cpd.probs <= 1)
        np.testing.assert_allclose(cpd.probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    elif isinstance(cpd, LogisticCPD):
        assert cpd.intercept.shape == (fam.var.n_states,)
        assert cpd.intercept[0] == 0 and not cpd.coef[0].any()  # state 0 is the reference
        disc = [(data.codes[p], k) for p, k in zip(fam.disc, fam.cards)]
        feats = logistic_features(disc, [data.values[p] for p in fam.cont], data.n_rows)
        probs = np.exp(cpd.log_probs(feats))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    else:
        d = fam.var.dim
        assert cpd.cov.shape == (fam.n_configs, d, d)
        assert cpd.coef.shape == (fam.n_configs, d, fam.cont_dim)
        np.testing.assert_array_equal(cpd.cov, np.transpose(cpd.cov, (0, 2, 1)))
        assert np.all(np.linalg.eigvalsh(cpd.cov) > 0)
        off = cpd.cov - np.einsum("cdd->cd", cpd.cov)[:, :, None] * np.eye(d)
        kind = cpd.covariance
        if kind in ("diag", "spherical"):
            assert not off.any()
        if kind == "spherical":
            diag = np.einsum("cdd->cd", cpd.cov)
            np.testing.assert_array_equal(diag, diag[:, :1] * np.ones(d))
        if kind == "tied":
            np.testing.assert_array_equal(cpd.cov, np.broadcast_to(cpd.cov[0], cpd.cov.shape))


# ---------------------------------------------------------------- priors (tables)

@pytest.mark.parametrize("node", TABLES)
@pytest.mark.parametrize("prior, per_cell", [
    ({"dirichlet": 1.0}, lambda c, k: 1.0),
    ({"dirichlet": 0.5}, lambda c, k: 0.5),
    ({"dirichlet": 0.0}, lambda c, k: 0.0),
    ({"bdeu": 10.0}, lambda c, k: 10.0 / (c * k)),
    ({"bdeu": 1.0}, lambda c, k: 1.0 / (c * k)),
])
def test_priors_add_documented_pseudo_counts(setup, node, prior, per_cell):
    graph, fams, data = setup
    fam = fams[node]
    stats = stats_of(fam, data)
    alpha = per_cell(fam.n_configs, fam.var.n_states)
    expected = (stats.counts + alpha) / (stats.counts + alpha).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted(graph, fam, stats, prior).probs, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("node", TABLES)
def test_prior_equals_adding_pseudo_rows(setup, node):
    """An integer Dirichlet prior a is exactly a extra rows in every (configuration, state) cell."""
    graph, fams, data = setup
    fam = fams[node]
    stats = stats_of(fam, data)
    pseudo = TableStats(np.full_like(stats.counts, 2.0))
    assert_same_cpd(fitted(graph, fam, stats, {"dirichlet": 2}), fitted(graph, fam, stats + pseudo), 1e-15)


def test_prior_fills_unseen_configurations_without_a_warning(setup, recwarn):
    graph, fams, data = setup
    fam = fams["t_par"]
    rows = np.flatnonzero(data.codes["a"] == 0)  # configuration a=hi never seen
    cpd, unseen = fit_cpd(fam, stats_of(fam, data.take(rows)), prior=None)
    np.testing.assert_array_equal(unseen, [3, 4, 5])  # a=hi (code 1) with b=0,1,2: mixed radix 1*3+b
    np.testing.assert_array_equal(cpd.probs[3:], 0.25)
    cpd, unseen = fit_cpd(fam, stats_of(fam, data.take(rows)), prior={"bdeu": 24})
    assert unseen.size == 0
    np.testing.assert_allclose(cpd.probs[3:], 0.25, rtol=0, atol=1e-15)  # prior only: uniform
    assert not recwarn.list  # fit_cpd reports; the learner warns (tested in tests/learn)
