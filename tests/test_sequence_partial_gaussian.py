"""Sequence models with a gaussian emission whose vector is partly missing in some rows (issue 13).

Independent check: a numpy forward-backward written here, where a row's emission density is the
marginal density of its observed components (scipy.stats.multivariate_normal on the observed
sub-block), and a numpy EM step whose statistics fill each missing component with its conditional
mean given the observed ones and state, adding the conditional covariance to the scatter (rows
with every component missing are left out of the emission's statistics, as pgm does: their emission
factor integrates to 1, so the step is still an EM step of the observed-data likelihood).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

SPEC = {"name": "phmm", "sequence": {"id": "seq", "order": "t"},
        "nodes": {"h": {"states": 2, "latent": True, "prev": ["h"]},
                  "x": {"type": "gaussian", "dim": 3, "parents": ["h"]}}}
START = np.array([0.6, 0.4])
TRANS = np.array([[0.85, 0.15], [0.25, 0.75]])
MEANS = np.array([[0.0, 1.0, -1.0], [2.0, -1.0, 0.5]])
COVS = np.array([[[1.0, 0.5, 0.2], [0.5, 1.5, -0.3], [0.2, -0.3, 0.8]],
                 [[0.7, -0.2, 0.1], [-0.2, 0.9, 0.4], [0.1, 0.4, 1.2]]])
LENGTHS = [30, 22, 41, 7]


def _model(start, trans, means, covs) -> FittedModel:
    return FittedModel.from_spec(parse_spec({**SPEC, "params": {
        "h@first": {"table": start.tolist()}, "h": {"table": trans.tolist()},
        "x": {"intercept": means.tolist(), "covariance": covs.tolist()}}}))


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Sampled sequences; about 40% of rows lose one or two components, a few lose all three."""
    rng = np.random.default_rng(seed)
    xs = []
    for n in LENGTHS:
        h = [rng.choice(2, p=START)]
        for _ in range(n - 1):
            h.append(rng.choice(2, p=TRANS[h[-1]]))
        xs.append(np.array([rng.multivariate_normal(MEANS[s], COVS[s]) for s in h]))
    x = np.vstack(xs)
    drop = rng.random(x.shape) < 0.2
    drop[rng.random(len(x)) < 0.05] = True
    x[drop] = np.nan
    seq = np.repeat(np.arange(len(LENGTHS)), LENGTHS)
    t = np.concatenate([np.arange(n) for n in LENGTHS])
    return pd.DataFrame({"seq": seq, "t": t, "x[0]": x[:, 0], "x[1]": x[:, 1], "x[2]": x[:, 2]}), x


def _emission(x: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """log p(observed components of each row | state): (n, K), one scipy call per row and state."""
    out = np.zeros((len(x), len(means)))
    for r, row in enumerate(x):
        o = ~np.isnan(row)
        if o.any():
            for k in range(len(means)):
                out[r, k] = multivariate_normal(means[k][o], covs[k][np.ix_(o, o)]).logpdf(row[o])
    return out


def _forward_backward(x, start, trans, means, covs):
    """Per sequence: log-likelihood, gamma (n, K), summed xi (K, K) -- plain numpy, log space."""
    emis = _emission(x, means, covs)
    total, gammas, xi = 0.0, [], np.zeros((2, 2))
    lo = 0
    for n in LENGTHS:
        e = emis[lo:lo + n]
        la = np.zeros((n, 2))
        lb = np.zeros((n, 2))
        la[0] = np.log(start) + e[0]
        for t in range(1, n):
            la[t] = logsumexp(la[t - 1][:, None] + np.log(trans), axis=0) + e[t]
        for t in range(n - 2, -1, -1):
            lb[t] = logsumexp(np.log(trans) + (e[t + 1] + lb[t + 1])[None], axis=1)
        ll = logsumexp(la[-1])
        total += ll
        gammas.append(np.exp(la + lb - ll))
        for t in range(n - 1):
            xi += np.exp(la[t][:, None] + np.log(trans) + (e[t + 1] + lb[t + 1])[None] - ll)
        lo += n
    return total, np.vstack(gammas), xi


def _numpy_em_step(x, start, trans, means, covs):
    _, gamma, xi = _forward_backward(x, start, trans, means, covs)
    firsts = np.cumsum([0] + LENGTHS[:-1])
    new_start = gamma[firsts].sum(axis=0) / len(LENGTHS)
    new_trans = xi / xi.sum(axis=1, keepdims=True)
    new_means, new_covs = np.zeros_like(means), np.zeros_like(covs)
    for k in range(2):
        fill = np.zeros_like(x)
        extra = np.zeros((len(x), 3, 3))
        for r, row in enumerate(x):
            o, h = ~np.isnan(row), np.isnan(row)
            fill[r] = row
            if not h.any():
                continue
            s = covs[k]
            if o.any():
                gain = s[np.ix_(h, o)] @ np.linalg.inv(s[np.ix_(o, o)])
                fill[r, h] = means[k][h] + gain @ (row[o] - means[k][o])
                extra[r][np.ix_(h, h)] = s[np.ix_(h, h)] - gain @ s[np.ix_(o, h)]
            else:
                fill[r, h] = means[k][h]
                extra[r] = s
        w = np.where(np.isnan(x).all(axis=1), 0.0, gamma[:, k])  # an empty row says nothing of x's CPD
        mu = w @ fill / w.sum()
        d = fill - mu
        new_means[k] = mu
        new_covs[k] = ((d * w[:, None]).T @ d + np.einsum("r,rde->de", w, extra)) / w.sum()
    return new_start, new_trans, new_means, new_covs


def test_log_likelihood_is_the_marginal_density_of_observed_components():
    df, x = _data()
    partly = np.isnan(x).any(axis=1) & ~np.isnan(x).all(axis=1)
    assert partly.sum() > 40 and np.isnan(x).all(axis=1).any()
    model = _model(START, TRANS, MEANS, COVS)
    expected, _, _ = _forward_backward(x, START, TRANS, MEANS, COVS)
    assert model.log_likelihood(df) == pytest.approx(expected, rel=1e-10)


@pytest.mark.filterwarnings("ignore::pgm.ConvergenceWarning")
def test_one_em_step_equals_numpy_and_history_is_monotone():
    df, x = _data(1)
    start = _model(START, TRANS, MEANS, COVS)
    one = pgm.fit(parse_spec(SPEC), df, init=start, max_iter=1, tol=0.0, reg_covar=0.0)
    s, a, m, c = _numpy_em_step(x, START, TRANS, MEANS, COVS)
    np.testing.assert_allclose(one.cpd("h@first").to_numpy().ravel(), s, atol=1e-8)
    np.testing.assert_allclose(one.cpd("h").to_numpy(), a, atol=1e-8)
    cpd = one.cpds[one.graph["x"].param]
    np.testing.assert_allclose(cpd.intercept, m, atol=1e-8)
    np.testing.assert_allclose(cpd.cov, c, atol=1e-8)
    expected_ll, _, _ = _forward_backward(x, START, TRANS, MEANS, COVS)
    assert one.history[0] == pytest.approx(expected_ll, rel=1e-10)
    many = pgm.fit(parse_spec(SPEC), df, init=start, max_iter=25, tol=0.0)
    assert np.all(np.diff(many.history) >= -1e-9 * abs(many.history[-1]))
    assert many.log_likelihood(df) == pytest.approx(many.history[-1], rel=1e-9)


def test_posterior_mean_of_a_partly_missing_vector_is_conditional():
    """The posterior of x fills the missing components with E[x_h | x_o, state] mixed over the state
    posterior (observed components unchanged, covariance 0 there)."""
    df, x = _data(2)
    model = _model(START, TRANS, MEANS, COVS)
    _, gamma, _ = _forward_backward(x, START, TRANS, MEANS, COVS)
    mean, cov = model._gaussian("x", model.encode(df))  # the caller's row order
    r = int(np.flatnonzero(np.isnan(x).any(axis=1) & ~np.isnan(x).all(axis=1))[0])
    row = x[r]
    o, h = ~np.isnan(row), np.isnan(row)
    want = np.zeros(3)
    for k in range(2):
        s = COVS[k]
        fill = row.copy()
        fill[h] = MEANS[k][h] + s[np.ix_(h, o)] @ np.linalg.solve(s[np.ix_(o, o)], row[o] - MEANS[k][o])
        want += gamma[r, k] * fill
    np.testing.assert_allclose(mean[r], want, atol=1e-10)
    np.testing.assert_allclose(cov[r][np.ix_(o, o)], 0.0, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov[r][np.ix_(h, h)]) > 0)
    full = ~np.isnan(x).any(axis=1)
    np.testing.assert_allclose(mean[full], x[full], atol=0)


def test_partly_missing_parent_is_refused_with_the_row_count():
    spec = {"name": "ar", "sequence": {"id": "seq", "order": "t"},
            "nodes": {"x": {"type": "gaussian", "dim": 2}, "y": {"type": "gaussian", "parents": ["x"]}}}
    df = pd.DataFrame({"seq": 0, "t": np.arange(8), "x[0]": [1.0, np.nan, 2, np.nan, 1, np.nan, 0, np.nan],
                       "x[1]": np.arange(8.0), "y": np.arange(8.0)})
    with pytest.raises(pgm.DataError, match=r"missing in rows \[1, 3, 5\] \(and 1 more: 4 rows in all\)"):
        pgm.fit(parse_spec(spec), df)


def test_variational_learner_refuses_a_partly_missing_cross_family_and_conditions_its_own():
    """learner='variational': an emission reading two hidden chains (a cross family, built without
    conditioning) is refused with the row count; one reading a single chain is conditioned exactly
    (its plan's statistics)."""
    df, x = _data(3)
    n_partly = int((np.isnan(x).any(axis=1) & ~np.isnan(x).all(axis=1)).sum())
    cross = {"name": "f", "sequence": {"id": "seq", "order": "t"},
             "nodes": {"a": {"states": 2, "latent": True, "prev": ["a"]},
                       "b": {"states": 2, "latent": True, "prev": ["b"]},
                       "x": {"type": "gaussian", "dim": 3, "parents": ["a", "b"]}}}
    with pytest.raises(pgm.DataError, match=rf"'x' are missing in {n_partly} rows.*learner='variational'"):
        pgm.fit(parse_spec(cross), df, learner="variational", max_iter=2)
    own = {"name": "g", "sequence": {"id": "seq", "order": "t"},
           "nodes": {"a": {"states": 2, "latent": True, "prev": ["a"]},
                     "b": {"states": 2, "latent": True, "prev": ["b"]},
                     "x": {"type": "gaussian", "dim": 3, "parents": ["a"]},
                     "o": {"states": 2, "parents": ["b"]}}}
    data = df.assign(o=(np.arange(len(df)) % 3 == 0).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(own), data, learner="variational", max_iter=20, seed=0)
    assert np.all(np.isfinite(fitted.history)) and np.all(np.diff(fitted.history) >= -1e-8 * abs(fitted.history[-1]))


@pytest.mark.filterwarnings("ignore::pgm.ConvergenceWarning")
def test_regression_emission_with_an_observed_gaussian_parent():
    """x | h, u ~ N(b_h + W_h u, S_h) with x partly missing: the log-likelihood and one EM step against
    numpy (the step's least squares on the expected moments of z = [u, x])."""
    rng = np.random.default_rng(4)
    n = sum(LENGTHS)
    u = rng.normal(size=n)
    df, x = _data(4)
    w_true = np.array([[0.5, -1.0, 0.3], [-0.7, 0.2, 1.1]])
    h_guess = (np.arange(n) % 2)
    x = x + (w_true[h_guess] * u[:, None])
    df = df.assign(u=u, **{f"x[{i}]": x[:, i] for i in range(3)})
    spec = {**SPEC, "nodes": {**SPEC["nodes"], "u": {"type": "gaussian"},
                              "x": {"type": "gaussian", "dim": 3, "parents": ["h", "u"]}}}
    coef = w_true[:, :, None]
    params = {"h@first": {"table": START.tolist()}, "h": {"table": TRANS.tolist()},
              "u": {"intercept": 0.0, "covariance": 1.0},
              "x": {"intercept": MEANS.tolist(), "coef": coef.tolist(), "covariance": COVS.tolist()}}
    model = FittedModel.from_spec(parse_spec({**spec, "params": params}))
    # numpy: the emission is the marginal of the observed components around b_h + W_h u
    emis = np.zeros((n, 2))
    for r in range(n):
        o = ~np.isnan(x[r])
        for k in range(2):
            if o.any():
                mu = MEANS[k] + w_true[k] * u[r]
                emis[r, k] = multivariate_normal(mu[o], COVS[k][np.ix_(o, o)]).logpdf(x[r][o])
    u_ll = multivariate_normal(0.0, 1.0).logpdf(u).sum()
    lo, total, gamma = 0, u_ll, []
    for m in LENGTHS:
        e = emis[lo:lo + m]
        la, lb = np.zeros((m, 2)), np.zeros((m, 2))
        la[0] = np.log(START) + e[0]
        for t in range(1, m):
            la[t] = logsumexp(la[t - 1][:, None] + np.log(TRANS), axis=0) + e[t]
        for t in range(m - 2, -1, -1):
            lb[t] = logsumexp(np.log(TRANS) + (e[t + 1] + lb[t + 1])[None], axis=1)
        total += logsumexp(la[-1])
        gamma.append(np.exp(la + lb - logsumexp(la[-1])))
        lo += m
    gamma = np.vstack(gamma)
    assert model.log_likelihood(df) == pytest.approx(total, rel=1e-10)
    one = pgm.fit(parse_spec(spec), df, init=model, max_iter=1, tol=0.0, reg_covar=0.0)
    for rows in (np.ones(n, dtype=bool),):  # x has no prev: one CPD for every step
        cpd = one.cpds[one.graph["x"].param]
        for k in range(2):
            z = np.zeros((n, 4))
            extra = np.zeros((n, 4, 4))
            z[:, 0] = u
            for r in range(n):
                mu = MEANS[k] + w_true[k] * u[r]
                o, hm = ~np.isnan(x[r]), np.isnan(x[r])
                z[r, 1:] = x[r]
                if hm.any() and o.any():
                    s = COVS[k]
                    gain = s[np.ix_(hm, o)] @ np.linalg.inv(s[np.ix_(o, o)])
                    z[r, 1:][hm] = mu[hm] + gain @ (x[r][o] - mu[o])
                    extra[r, 1:, 1:][np.ix_(hm, hm)] = s[np.ix_(hm, hm)] - gain @ s[np.ix_(o, hm)]
            w = np.where(rows & ~np.isnan(x).all(axis=1), gamma[:, k], 0.0)
            z = np.nan_to_num(z)  # the rows with every component missing: weight 0
            mean = w @ z / w.sum()
            d = z - mean
            scat = (d * w[:, None]).T @ d + np.einsum("r,rde->de", w, extra)
            coef_k = scat[1:, :1] / scat[0, 0]
            np.testing.assert_allclose(cpd.coef[k], coef_k, atol=1e-8)
            np.testing.assert_allclose(cpd.intercept[k], mean[1:] - coef_k[:, 0] * mean[0], atol=1e-8)
            np.testing.assert_allclose(cpd.cov[k], (scat[1:, 1:] - coef_k @ scat[:1, 1:]) / w.sum(), atol=1e-8)
