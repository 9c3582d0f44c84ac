"""EM with latent gaussian nodes: PPCA equals its closed form, factor analysis reaches scikit-learn's
maximum, histories are monotone, and a fitted model saves, loads, samples and answers posteriors."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema.load import parse_spec


def _spec(d: int, k: int, covariance: str, extra: dict | None = None, parents: list | None = None) -> pgm.ModelSpec:
    nodes = {"z": {"type": "gaussian", "dim": k, "latent": True},
             "x": {"type": "gaussian", "dim": d, "parents": (parents or []) + ["z"], "covariance": covariance}}
    nodes.update(extra or {})
    return parse_spec({"name": "fa", "graph": "directed", "nodes": nodes})


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"x[{i}]" for i in range(x.shape[1])])


def _monotone(history: list[float]) -> bool:
    h = np.asarray(history)
    return bool(np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])))


def test_ppca_equals_the_closed_form():
    """Tipping & Bishop (1999): sigma^2 = mean of the discarded eigenvalues of the sample covariance,
    W W^T = U_k (L_k - sigma^2 I) U_k^T; the maximum log-likelihood follows."""
    rng = np.random.default_rng(0)
    n, d, k = 400, 6, 2
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    scales = np.array([3.0, 2.0, 0.6, 0.5, 0.45, 0.4])
    x = (rng.normal(size=(n, d)) * scales) @ basis.T + rng.normal(size=d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)   # tol=0: run until nothing changes
        fitted = pgm.fit(_spec(d, k, "spherical"), _frame(x), max_iter=2000, tol=0.0, reg_covar=0.0)
    assert _monotone(fitted.history)
    S = np.cov(x.T, bias=True)
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    sigma2 = lam[k:].mean()
    C = U[:, :k] @ np.diag(lam[:k] - sigma2) @ U[:, :k].T + sigma2 * np.eye(d)
    ll = -0.5 * n * (d * np.log(2 * np.pi) + np.linalg.slogdet(C)[1] + np.trace(np.linalg.solve(C, S)))
    cpd = fitted.cpds["x"]
    W = cpd.coef[0]
    assert cpd.cov[0, 0, 0] == pytest.approx(sigma2, rel=1e-6)
    np.testing.assert_allclose(W @ W.T + cpd.cov[0], C, atol=1e-6)
    assert fitted.log_likelihood(_frame(x)) == pytest.approx(ll, abs=1e-6)
    np.testing.assert_allclose(cpd.intercept[0], x.mean(axis=0), atol=1e-5)   # the MLE of b is the data mean


def test_factor_analysis_reaches_sklearn_on_wine():
    """load_wine (bundled with scikit-learn, no download; columns standardised), 2 factors: the
    log-likelihood at convergence is at least scikit-learn FactorAnalysis's (its score times n), and the
    implied covariance W W^T + Psi is scikit-learn's (the factors themselves only up to a rotation).
    (load_diabetes and load_iris are Heywood cases: a noise variance goes to 0 and neither EM nor
    scikit-learn's iteration converges in thousands of steps.)"""
    from sklearn.datasets import load_wine
    from sklearn.decomposition import FactorAnalysis

    x = load_wine().data
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    n, d = x.shape
    fa = FactorAnalysis(n_components=2, tol=1e-10, max_iter=100000, random_state=0).fit(x)
    reference = fa.score(x) * n
    fitted = pgm.fit(_spec(d, 2, "diag"), _frame(x), max_iter=5000, tol=1e-13, reg_covar=0.0)
    assert fitted.info["converged"]
    assert _monotone(fitted.history)
    ll = fitted.log_likelihood(_frame(x))
    assert ll >= reference - 1e-9 * abs(reference)
    W = fitted.cpds["x"].coef[0]
    ours = W @ W.T + fitted.cpds["x"].cov[0]
    np.testing.assert_allclose(ours, fa.get_covariance(), atol=1e-3)


def test_mixture_of_factor_analysers_is_monotone_and_beats_one_component():
    rng = np.random.default_rng(3)
    d, k = 5, 1
    parts = []
    for shift in (-4.0, 4.0):
        w = rng.normal(size=(d, k))
        parts.append(rng.normal(size=(150, k)) @ w.T + 0.3 * rng.normal(size=(150, d)) + shift)
    x = np.vstack(parts)
    spec = _spec(d, k, "diag", extra={"c": {"states": 2, "latent": True}}, parents=["c"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(spec, _frame(x), max_iter=150, n_init=2, seed=0)
        single = pgm.fit(_spec(d, k, "diag"), _frame(x), max_iter=150)
    assert len(fitted.info["runs"]) == 2
    for run in fitted.info["runs"]:
        assert _monotone(run)
    assert fitted.history[-1] > single.history[-1] + 100
    post = fitted.posterior("c", _frame(x)).to_numpy()
    labels = post.argmax(axis=1)
    assert {labels[:150].mean().round(), labels[150:].mean().round()} == {0.0, 1.0}


def test_partly_missing_vectors_em_is_monotone_and_recovers_the_covariance():
    rng = np.random.default_rng(4)
    cov = np.array([[2.0, 0.8, 0.3], [0.8, 1.0, -0.2], [0.3, -0.2, 0.5]])
    x = rng.multivariate_normal([1.0, -1.0, 0.5], cov, size=3000)
    full = pgm.fit(parse_spec({"name": "m", "nodes": {"x": {"type": "gaussian", "dim": 3}}}), _frame(x))
    holes = x.copy()
    holes[rng.random(x.shape) < 0.2] = np.nan
    spec = parse_spec({"name": "m", "nodes": {"x": {"type": "gaussian", "dim": 3}}})
    fitted = pgm.fit(spec, _frame(holes), tol=1e-12, max_iter=500, reg_covar=0.0)
    assert fitted.info.get("learner", "em") == "em"
    assert _monotone(fitted.history)
    np.testing.assert_allclose(fitted.cpds["x"].cov[0], full.cpds["x"].cov[0], atol=0.1)
    # the recorded history is the observed-data log-likelihood (the marginal of the observed components)
    base = fitted.log_likelihood(_frame(holes))
    assert base == pytest.approx(fitted.history[-1], rel=1e-10)
    # and EM stopped at a maximum of it: small moves of the mean or the covariance all lower it
    cpd = fitted.cpds["x"]
    for _ in range(4):
        step = rng.normal(size=3) * 1e-3
        sym = rng.normal(size=(3, 3)) * 1e-3
        for moved in (replace(cpd, intercept=cpd.intercept + step),
                      replace(cpd, cov=cpd.cov + (sym + sym.T)[None] / 2)):
            other = replace(fitted, cpds={"x": moved})
            assert other.log_likelihood(_frame(holes)) < base


def test_factor_analysis_counts_parameters_as_the_textbooks():
    """d k + d - k(k-1)/2 loadings and variances plus d means (scikit-learn's FactorAnalysis count plus
    the mean): a standard latent's rotation is not a free parameter.  On wine (d = 13, k = 2): 51."""
    fa = pgm.load(Path(__file__).resolve().parents[2] / "models" / "fa_wine.yaml")
    assert fa.n_params() == 13 * 2 + 13 - 1 + 13
    for k in (1, 2, 3, 5):
        assert _spec(6, k, "diag").n_params() == 6 * k + 6 - k * (k - 1) // 2 + 6
        assert _spec(6, k, "spherical").n_params() == 6 * k + 1 - k * (k - 1) // 2 + 6


def test_standard_latent_saves_loads_samples_and_counts_no_parameters(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 4)) + 0.5 * rng.normal(size=(300, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(_spec(4, 2, "diag"), _frame(x), max_iter=50)
    np.testing.assert_array_equal(fitted.cpds["z"].intercept, 0.0)
    np.testing.assert_array_equal(fitted.cpds["z"].cov[0], np.eye(2))
    # x: intercept, 2 loadings, a variance per column, less z's free rotation (k(k-1)/2 = 1): d k + d + d - 1
    assert fitted.n_params == fitted.spec.n_params() == 4 * 3 + 4 - 1
    path = tmp_path / "fa.yaml"
    fitted.save(path)
    again = pgm.load(path)
    assert again.log_likelihood(_frame(x)) == fitted.log_likelihood(_frame(x))
    sample = again.sample(5, seed=0)
    assert list(sample.columns) == ["z[0]", "z[1]", "x[0]", "x[1]", "x[2]", "x[3]"]
    post = again.posterior("z", _frame(x))
    assert list(post.columns) == ["mean[z[0]]", "mean[z[1]]", "cov[z[0],z[0]]", "cov[z[0],z[1]]", "cov[z[1],z[1]]"]
    # posterior of z given x: (I + W' Psi^-1 W)^-1 covariance, the same in every row
    W = fitted.cpds["x"].coef[0]
    psi_inv = np.linalg.inv(fitted.cpds["x"].cov[0])
    post_cov = np.linalg.inv(np.eye(2) + W.T @ psi_inv @ W)
    np.testing.assert_allclose(post["cov[z[0],z[1]]"].to_numpy(), post_cov[0, 1], atol=1e-12)
    mean = (x - fitted.cpds["x"].intercept[0]) @ psi_inv @ W @ post_cov
    np.testing.assert_allclose(post[["mean[z[0]]", "mean[z[1]]"]].to_numpy(), mean, atol=1e-10)


def test_standard_is_refused_where_it_cannot_hold():
    with pytest.raises(pgm.ModelError, match="standard"):
        parse_spec({"name": "s", "nodes": {"x": {"type": "gaussian", "standard": True}}})
    with pytest.raises(pgm.ModelError, match="standard"):
        parse_spec({"name": "s", "nodes": {"a": {"type": "gaussian"},
                                          "z": {"type": "gaussian", "latent": True, "parents": ["a"],
                                                "standard": True}}})


def test_n_init_runs_start_differently():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 5)) + rng.normal(size=(200, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(_spec(5, 2, "diag"), _frame(x), max_iter=3, n_init=3)
    starts = {round(run[0], 6) for run in fitted.info["runs"]}
    assert len(starts) == 3


def test_chunked_file_fit_equals_in_memory(tmp_path):
    """Factor analysis with partly missing rows: EM over a file read in chunks of 200 rows gives the
    in-memory fit's history (the E-step statistics are sums over rows; the start uses only sums)."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + rng.normal(size=(500, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    path = tmp_path / "fa.csv"
    _frame(x).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        whole = pgm.fit(_spec(5, 2, "diag"), _frame(x), max_iter=15)
        chunked = pgm.fit(_spec(5, 2, "diag"), path, max_iter=15, chunk_rows=200)
    assert _monotone(whole.history)
    np.testing.assert_allclose(chunked.history, whole.history, rtol=1e-10)


def test_partly_missing_rows_are_not_reported_as_empty_and_the_declaration_counts_no_standard_parameters():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(20, 3))
    x[:5, 0] = np.nan          # partly missing: informative rows
    x[5, :] = np.nan           # every cell missing
    spec = _spec(3, 1, "diag")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pgm.fit(spec, _frame(x), max_iter=5)
    empty = [str(w.message) for w in caught if "every cell missing" in str(w.message)]
    assert len(empty) == 1 and empty[0].startswith("1 row with every cell missing")
    assert spec.n_params() == 3 * 2 + 3          # x: intercept, loading, variance per column; z none
