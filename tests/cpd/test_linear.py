"""Linear-Gaussian CPDs: centred statistics, least squares per configuration, covariance
types, densities and sampling, each against numpy / scipy computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import pgm
from pgm.cpd.linear import GaussStats, LinearCPD, gauss_stats, linear_from_stats


def brute_stats(z, configs, n_configs, weights=None):
    w = np.ones(len(z)) if weights is None else weights
    weight = np.zeros(n_configs)
    mean = np.zeros((n_configs, z.shape[1]))
    scatter = np.zeros((n_configs, z.shape[1], z.shape[1]))
    for c in range(n_configs):
        rows = configs == c
        weight[c] = w[rows].sum()
        if weight[c] > 0:
            mean[c] = np.average(z[rows], axis=0, weights=w[rows])
            d = z[rows] - mean[c]
            scatter[c] = (d * w[rows, None]).T @ d
    return weight, mean, scatter


@pytest.mark.parametrize("weighted", [False, True])
def test_gauss_stats_equal_per_configuration_moments(weighted):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 100.0]
    configs = rng.integers(0, 4, 400)
    configs[configs == 3] = 2  # configuration 3 has no rows
    weights = rng.uniform(0.1, 3.0, 400) if weighted else None
    got = gauss_stats(z, configs, 4, weights=weights)
    weight, mean, scatter = brute_stats(z, configs, 4, weights)
    np.testing.assert_allclose(got.weight, weight, rtol=1e-13)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scatter, scatter, rtol=1e-11, atol=1e-10)
    assert got.weight[3] == 0 and not got.scatter[3].any()


def test_soft_assignments_equal_weighted_hard_ones():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 2))
    resp = rng.dirichlet(np.ones(3), 200)
    soft = gauss_stats(z, 0, 3, resp=resp)
    for c in range(3):
        hard = gauss_stats(z, 0, 1, weights=resp[:, c])
        np.testing.assert_allclose(soft.weight[c], hard.weight[0], rtol=1e-13)
        np.testing.assert_allclose(soft.mean[c], hard.mean[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(soft.scatter[c], hard.scatter[0], rtol=1e-12, atol=1e-12)


def test_merged_statistics_hold_far_from_the_origin():
    """The parallel-variance merge keeps the scatter exact where E[x^2] - mean^2 loses every digit."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(10_000, 2)) + 1e6
    total = GaussStats(np.zeros(1), np.zeros((1, 2)), np.zeros((1, 2, 2)))
    for chunk in np.array_split(z, 37):
        total = total + gauss_stats(chunk, 0, 1)
    zl = z.astype(np.longdouble)  # the reference in extended precision where the platform has it
    d = zl - zl.mean(axis=0)
    exact = (d.T @ d).astype(np.float64)
    # relative to the scale of the matrix (its diagonal): off-diagonal entries may be near zero
    np.testing.assert_allclose(total.scatter[0], exact, rtol=0, atol=1e-9 * np.diag(exact).max())
    np.testing.assert_allclose(total.mean[0], zl.mean(axis=0).astype(np.float64), rtol=1e-14)
    naive = (z ** 2).sum(axis=0) - len(z) * z.mean(axis=0) ** 2
    assert np.abs(naive / np.diag(exact) - 1).max() > 1e-6  # the form the merge avoids


def regression_data(n=300, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) * [2.0, 0.5] + [10.0, -4.0]
    configs = rng.integers(0, 3, n)
    coef = np.array([[[1.0, -2.0], [0.5, 0.0]], [[0.0, 1.0], [-1.0, 3.0]], [[2.0, 2.0], [0.1, 0.2]]])  # (C, d, p)
    y = np.einsum("ndp,np->nd", coef[configs], x) + rng.normal(size=(n, 2)) @ [[1.0, 0.3], [0.0, 0.7]]
    return x, y, configs


def lstsq_fit(x, y):
    design = np.column_stack([np.ones(len(x)), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    return beta[0], beta[1:].T, resid.T @ resid / len(x)


def test_linear_from_stats_is_least_squares_per_configuration():
    x, y, configs = regression_data()
    cpd, unseen = linear_from_stats(gauss_stats(np.hstack([x, y]), configs, 3), 2)
    assert unseen.size == 0
    for c in range(3):
        b, w, cov = lstsq_fit(x[configs == c], y[configs == c])
        np.testing.assert_allclose(cpd.intercept[c], b, rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(cpd.coef[c], w, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cpd.cov[c], cov, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("covariance", ["diag", "spherical", "tied"])
def test_covariance_types_restrict_the_full_residual_covariance(covariance):
    x, y, configs = regression_data()
    stats = gauss_stats(np.hstack([x, y]), configs, 3)
    full, _ = linear_from_stats(stats, 2, "full")
    got, _ = linear_from_stats(stats, 2, covariance)
    np.testing.assert_array_equal(got.coef, full.coef)  # the mean does not depend on the covariance type
    np.testing.assert_array_equal(got.intercept, full.intercept)
    diag = np.einsum("cdd->cd", full.cov)
    if covariance == "diag":
        expected = diag[:, :, None] * np.eye(2)
    elif covariance == "spherical":
        expected = diag.mean(axis=1)[:, None, None] * np.eye(2)
    else:
        resid = np.concatenate([y[configs == c] - full.mean(x[configs == c], c) for c in range(3)])
        expected = np.broadcast_to(resid.T @ resid / len(y), (3, 2, 2))
    np.testing.assert_allclose(got.cov, expected, rtol=1e-12, atol=1e-14)


def test_reg_covar_is_added_to_the_diagonal():
    x, y, configs = regression_data()
    stats = gauss_stats(np.hstack([x, y]), configs, 3)
    plain, _ = linear_from_stats(stats, 2)
    reg, _ = linear_from_stats(stats, 2, reg_covar=0.25)
    np.testing.assert_allclose(reg.cov, plain.cov + 0.25 * np.eye(2), rtol=1e-14)


def test_unseen_configuration_gets_the_pooled_fit():
    x, y, configs = regression_data()
    keep = configs != 1
    cpd, unseen = linear_from_stats(gauss_stats(np.hstack([x, y])[keep], configs[keep], 3), 2)
    np.testing.assert_array_equal(unseen, [1])
    b, w, cov = lstsq_fit(x[keep], y[keep])
    np.testing.assert_allclose(cpd.intercept[1], b, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(cpd.coef[1], w, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(cpd.cov[1], cov, rtol=1e-11, atol=1e-13)


def test_no_rows_at_all_is_an_error():
    with pytest.raises(pgm.ModelError, match="no data"):
        linear_from_stats(GaussStats(np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2, 2))), 1, name="y")


def test_a_constant_column_warns_and_floors_the_variance():
    y = np.full((50, 1), 3.0)
    with pytest.warns(pgm.DataWarning, match="reg_covar"):
        cpd, _ = linear_from_stats(gauss_stats(y, 0, 1), 0, name="y")
    assert cpd.cov[0, 0, 0] > 0
    assert cpd.intercept[0, 0] == 3.0


def test_log_prob_equals_scipy_multivariate_normal():
    x, y, configs = regression_data(n=50)
    cpd, _ = linear_from_stats(gauss_stats(np.hstack([x, y]), configs, 3), 2)
    got = cpd.log_prob(y, x, configs)
    for c in range(3):
        rows = configs == c
        mean = cpd.intercept[c] + x[rows] @ cpd.coef[c].T
        want = [sps.multivariate_normal(m, cpd.cov[c]).logpdf(v) for m, v in zip(mean, y[rows])]
        np.testing.assert_allclose(got[rows], want, rtol=1e-12, atol=1e-12)
    every = cpd.log_prob_all(y, x)
    assert every.shape == (50, 3)
    np.testing.assert_allclose(every[np.arange(50), configs], got, rtol=1e-12, atol=1e-12)
    one = cpd.log_prob(y, x, 2)
    np.testing.assert_allclose(one, every[:, 2], rtol=1e-12, atol=1e-12)


def test_sample_moments_approach_the_parameters():
    cpd = LinearCPD(np.array([[1.0, -2.0]]), np.array([[[0.5], [2.0]]]),
                    np.array([[[1.0, 0.6], [0.6, 2.0]]]))
    n = 200_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1))
    y = cpd.sample(x, 0, n, rng)
    resid = y - cpd.mean(x, 0)
    cov = resid.T @ resid / n
    # standard error of a sample covariance entry: sqrt((s_ii s_jj + s_ij^2) / n)
    s = cpd.cov[0]
    se = np.sqrt((np.outer(np.diag(s), np.diag(s)) + s ** 2) / n)
    assert np.all(np.abs(cov - s) <= 5 * se)
    assert np.all(np.abs(resid.mean(axis=0)) <= 5 * np.sqrt(np.diag(s) / n))
    b, w, _ = lstsq_fit(x, y)
    assert np.all(np.abs(w[:, 0] - [0.5, 2.0]) <= 5 * np.sqrt(np.diag(s) / n))  # x has unit variance
    configs = np.zeros(n, dtype=int)  # the per-row path draws the same distribution
    y2 = cpd.sample(x, configs, n, np.random.default_rng(1))
    r2 = y2 - cpd.mean(x, 0)
    assert np.all(np.abs(r2.T @ r2 / n - s) <= 5 * se)
