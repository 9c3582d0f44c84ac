"""Row weights (``pgm.fit(..., weights="w")``, ``pgm fit --weights w``).

A row of weight w counts as w copies of it: for integer weights every learner and every data
source must give the fit of the data with each row repeated w times, rows of weight 0 the fit
without them, and fractional weights the weighted estimate computed here by hand with numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

import pgm
from pgm.cli import main
from pgm.cpd.family import families, family_log_prob
from pgm.encode import encode
from pgm.errors import DataError

from conftest import MODELS

pytest.importorskip("pyarrow")


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen configurations, EM max_iter
        return pgm.fit(*args, **kwargs)


def strict_fit(*args, **kwargs):
    """A fit that fails on any warning: the weights column must not be reported as an extra column."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pgm.fit(*args, **kwargs)


def repeat(frame: pd.DataFrame, column: str = "w") -> pd.DataFrame:
    """Each row repeated as often as its (integer) weight, without the weights column."""
    w = frame[column].to_numpy().astype(int)
    return frame.loc[frame.index.repeat(w)].drop(columns=column).reset_index(drop=True)


def assert_same(a, b, atol=1e-12):
    assert a.cpds.keys() == b.cpds.keys()
    for key in a.cpds:
        x, y = a.cpds[key], b.cpds[key]
        names = ("probs",) if hasattr(x, "probs") else ("intercept", "coef") + (("cov",) if hasattr(x, "cov") else ())
        for name in names:
            np.testing.assert_allclose(getattr(x, name), getattr(y, name), rtol=atol, atol=atol,
                                       err_msg=f"{key}.{name}")


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def sprinkler_rows():
    rng = np.random.default_rng(0)
    n = 120
    cloudy = rng.random(n) < 0.5
    frame = pd.DataFrame({
        "cloudy": np.where(cloudy, "yes", "no"),
        "sprinkler": np.where(rng.random(n) < np.where(cloudy, 0.1, 0.5), "on", "off"),
        "rain": np.where(rng.random(n) < np.where(cloudy, 0.8, 0.2), "yes", "no"),
    })
    frame["wet_grass"] = np.where(rng.random(n) < 0.2 + 0.35 * (frame.sprinkler == "on") + 0.4 * (frame.rain == "yes"),
                                  "yes", "no")
    frame["w"] = rng.integers(0, 4, n)
    return frame


@pytest.fixture(scope="module")
def lg_rows():
    rng = np.random.default_rng(1)
    n = 150
    soil = rng.random(n) < 0.4
    rainfall = rng.normal(10, 2, n)
    temperature = rng.normal(20, 3, n)
    growth = 1 + 0.5 * rainfall - 0.2 * temperature + rng.normal(0, 1, n)
    yld = np.where(soil, 3 + 2 * growth, 1 + growth) + rng.normal(0, 0.5, n)
    price = 10 - 0.3 * yld + rng.normal(0, 0.2, n)
    return pd.DataFrame({"soil": np.where(soil, "rich", "poor"), "rainfall": rainfall, "temperature": temperature,
                         "growth": growth, "yield": yld, "price": price, "w": rng.integers(0, 4, n)})


@pytest.fixture(scope="module")
def logistic_rows():
    rng = np.random.default_rng(2)
    n = 300
    dose = rng.normal(0, 1, n)
    exposed = (rng.random(n) < 0.4).astype(int)
    symptom = (rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 1.2 * exposed + 0.8 * dose)))).astype(int)
    positive = (rng.random(n) < 1 / (1 + np.exp(-(-1 + exposed + 1.5 * symptom)))).astype(int)
    return pd.DataFrame({"dose": dose, "exposed": exposed, "symptom": symptom, "positive": positive,
                         "w": rng.integers(0, 4, n)})


@pytest.fixture(scope="module")
def gmm_rows():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    z = rng.integers(0, 3, 240)
    x = centres[z] + rng.standard_normal((240, 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]])
    return pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1], "w": rng.integers(0, 4, 240)})


@pytest.fixture(scope="module")
def gmm_start(gmm_rows):
    """A starting point for EM, so weighted and repeated fits start at the same parameters."""
    return quiet_fit(MODELS / "gmm.yaml", gmm_rows.drop(columns="w"), max_iter=3)


@pytest.fixture(scope="module")
def pairwise_rows():
    rng = np.random.default_rng(4)
    n = 200
    a = rng.integers(0, 3, n)
    b = (rng.random(n) < 0.3 + 0.2 * (a == 2)).astype(int)
    c = np.where(rng.random(n) < 0.6, a, rng.integers(0, 3, n))
    d = (rng.random(n) < 0.5).astype(int) | b * (rng.random(n) < 0.5)
    e = np.where(rng.random(n) < 0.5, a, rng.integers(0, 3, n))
    three, two = np.array(["low", "mid", "high"]), np.array(["off", "on"])
    return pd.DataFrame({"a": three[a], "b": two[b], "c": three[c], "d": two[d], "e": three[e],
                         "w": rng.integers(0, 4, n)})


# --------------------------------------------------------------------------- MLE
def test_tables_equal_repeated_rows(sprinkler_rows):
    model = pgm.load(MODELS / "sprinkler.yaml")
    weighted = strict_fit(model, sprinkler_rows, weights="w")
    assert_same(weighted, quiet_fit(model, repeat(sprinkler_rows)))
    assert weighted.info["learner"] == "mle"


def test_tables_fractional_weights_are_weighted_counts(sprinkler_rows):
    frame = sprinkler_rows.copy()
    frame["w"] = np.random.default_rng(5).uniform(0, 2.5, len(frame))
    fitted = strict_fit(MODELS / "sprinkler.yaml", frame, weights="w")
    w = frame["w"].to_numpy()
    for s_idx, s in enumerate(["on", "off"]):
        for r_idx, r in enumerate(["yes", "no"]):
            rows = (frame.sprinkler == s) & (frame.rain == r)
            p_yes = w[rows & (frame.wet_grass == "yes")].sum() / w[rows].sum()
            got = fitted.cpds["wet_grass"].probs[s_idx * 2 + r_idx]
            np.testing.assert_allclose(got, [p_yes, 1 - p_yes], rtol=0, atol=1e-14)
    p_cloudy = w[frame.cloudy == "yes"].sum() / w.sum()
    np.testing.assert_allclose(fitted.cpds["cloudy"].probs[0], [p_cloudy, 1 - p_cloudy], atol=1e-14)


def test_zero_weights_equal_dropping_rows(sprinkler_rows):
    frame = sprinkler_rows.copy()
    frame["w"] = np.where(frame["w"] == 0, 0.0, 1.5)
    weighted = strict_fit(MODELS / "sprinkler.yaml", frame, weights="w")
    kept = frame[frame.w > 0].drop(columns="w")
    assert_same(weighted, quiet_fit(MODELS / "sprinkler.yaml", kept), atol=1e-14)
    # a zero-weight row with a missing cell does not turn the fit into EM
    frame.loc[frame.index[frame.w == 0][0], "rain"] = None
    assert strict_fit(MODELS / "sprinkler.yaml", frame, weights="w").info["learner"] == "mle"


def test_linear_gaussian_equals_repeated_rows(lg_rows):
    model = pgm.load(MODELS / "linear_gaussian.yaml")
    assert_same(strict_fit(model, lg_rows, weights="w"), quiet_fit(model, repeat(lg_rows)), atol=1e-11)


def weighted_ls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted least squares with an intercept: coefficients and the ML residual variance."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.linalg.solve(design.T @ (design * w[:, None]), design.T @ (w * y))
    resid = y - design @ beta
    return beta, float(w @ resid**2 / w.sum())


def test_linear_gaussian_fractional_weights_are_weighted_least_squares(lg_rows):
    frame = lg_rows.copy()
    frame["w"] = np.random.default_rng(6).uniform(0, 3, len(frame))
    fitted = strict_fit(MODELS / "linear_gaussian.yaml", frame, weights="w")
    w = frame["w"].to_numpy()
    beta, var = weighted_ls(frame[["rainfall", "temperature"]].to_numpy(), frame["growth"].to_numpy(), w)
    cpd = fitted.cpds["growth"]
    np.testing.assert_allclose(cpd.intercept[0, 0], beta[0], rtol=1e-10)
    np.testing.assert_allclose(cpd.coef[0, 0], beta[1:], rtol=1e-10)
    np.testing.assert_allclose(cpd.cov[0, 0, 0], var, rtol=1e-10)
    for c, soil in enumerate(["poor", "rich"]):  # one regression per state of the discrete parent
        rows = (frame.soil == soil).to_numpy()
        beta, var = weighted_ls(frame.loc[rows, ["growth"]].to_numpy(), frame.loc[rows, "yield"].to_numpy(), w[rows])
        cpd = fitted.cpds["yield"]
        np.testing.assert_allclose([cpd.intercept[c, 0], cpd.coef[c, 0, 0], cpd.cov[c, 0, 0]],
                                   [beta[0], beta[1], var], rtol=1e-10)
    mean = w @ frame["rainfall"].to_numpy() / w.sum()
    np.testing.assert_allclose(fitted.cpds["rainfall"].intercept[0, 0], mean, rtol=1e-12)
    np.testing.assert_allclose(fitted.cpds["rainfall"].cov[0, 0, 0],
                               w @ (frame["rainfall"].to_numpy() - mean) ** 2 / w.sum(), rtol=1e-10)


def test_logistic_equals_repeated_rows(logistic_rows):
    model = pgm.load(MODELS / "sigmoid_belief.yaml")
    # the optimiser stops at its tolerance; here both runs took the same steps (measured 1e-16)
    assert_same(strict_fit(model, logistic_rows, weights="w"), quiet_fit(model, repeat(logistic_rows)), atol=1e-9)


def test_logistic_fractional_weights_are_weighted_newton(logistic_rows):
    """symptom | exposed, dose: the fitted probabilities equal a weighted logistic regression solved here by Newton."""
    frame = logistic_rows.copy()
    w = np.random.default_rng(7).uniform(0, 3, len(frame))
    frame["w"] = w
    fitted = strict_fit(MODELS / "sigmoid_belief.yaml", frame, weights="w")
    design = np.column_stack([np.ones(len(frame)), frame["exposed"], frame["dose"]])
    y = frame["symptom"].to_numpy()
    beta = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ beta))
        step = np.linalg.solve(design.T @ (design * (w * p * (1 - p))[:, None]), design.T @ (w * (y - p)))
        beta += step
        if np.abs(step).max() < 1e-14:
            break
    expected = np.log(1 / (1 + np.exp(-design @ beta)))
    fam = families(fitted.graph)["symptom"]
    enc = encode(fitted.graph, frame.drop(columns="w"))
    got = family_log_prob(fam, fitted.cpds["symptom"], {**enc.codes, **enc.values}, enc.n_rows)
    ones = y == 1
    np.testing.assert_allclose(got[ones], expected[ones], rtol=0, atol=1e-7)
    # a node without parents: the weighted frequency
    p1 = w @ frame["exposed"].to_numpy() / w.sum()
    cpd = fitted.cpds["exposed"]
    probs = np.exp(cpd.log_probs(np.zeros((1, cpd.coef.shape[1]))))[0]
    np.testing.assert_allclose(probs, [1 - p1, p1], atol=1e-7)


# --------------------------------------------------------------------------- EM
def test_gaussian_mixture_em_trace_equals_repeated_rows(gmm_rows, gmm_start):
    with warnings.catch_warnings():  # any warning but the one tol=0 gives (max_iter reached) is an error
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=pgm.ConvergenceWarning)
        weighted = pgm.fit(MODELS / "gmm.yaml", gmm_rows, weights="w", init=gmm_start, max_iter=15, tol=0)
    repeated = quiet_fit(MODELS / "gmm.yaml", repeat(gmm_rows), init=gmm_start, max_iter=15, tol=0)
    np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-12)
    assert len(weighted.history) > 5
    assert_same(weighted, repeated, atol=1e-10)


def test_gaussian_mixture_hard_em_equals_repeated_rows(gmm_rows, gmm_start):
    weighted = quiet_fit(MODELS / "gmm.yaml", gmm_rows, weights="w", init=gmm_start, learner="hard-em", max_iter=10, tol=0)
    repeated = quiet_fit(MODELS / "gmm.yaml", repeat(gmm_rows), init=gmm_start, learner="hard-em", max_iter=10, tol=0)
    np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-12)
    assert_same(weighted, repeated, atol=1e-10)


def test_gaussian_mixture_zero_weights_equal_dropping_rows(gmm_rows):
    """Rows of weight 0 are gone before EM starts: even the default (k-means++) start is the same."""
    frame = gmm_rows.copy()
    frame["w"] = (frame["w"] > 0).astype(float)
    kept = frame[frame.w > 0].drop(columns="w").reset_index(drop=True)
    weighted = quiet_fit(MODELS / "gmm.yaml", frame, weights="w", max_iter=20)
    dropped = quiet_fit(MODELS / "gmm.yaml", kept, max_iter=20)
    np.testing.assert_allclose(weighted.history, dropped.history, rtol=1e-12)
    assert_same(weighted, dropped, atol=1e-12)


def test_gaussian_mixture_one_fractional_em_step_by_hand(gmm_rows, gmm_start):
    """max_iter=1: one M-step from the start, i.e. weighted responsibilities -> weighted moments."""
    frame = gmm_rows.copy()
    w = np.random.default_rng(8).uniform(0, 2, len(frame))
    frame["w"] = w
    fitted = quiet_fit(MODELS / "gmm.yaml", frame, weights="w", init=gmm_start, max_iter=1, reg_covar=0.0)
    x = frame[["x[0]", "x[1]"]].to_numpy()
    pi = gmm_start.cpds["z"].probs[0]
    comp = gmm_start.cpds["x"]
    dens = np.column_stack([pi[k] * multivariate_normal(comp.intercept[k], comp.cov[k]).pdf(x) for k in range(3)])
    np.testing.assert_allclose(fitted.history[0], w @ np.log(dens.sum(axis=1)), rtol=1e-12)
    r = dens / dens.sum(axis=1, keepdims=True) * w[:, None]
    np.testing.assert_allclose(fitted.cpds["z"].probs[0], r.sum(axis=0) / w.sum(), rtol=1e-12)
    for k in range(3):
        mean = r[:, k] @ x / r[:, k].sum()
        cov = (x - mean).T @ ((x - mean) * r[:, k, None]) / r[:, k].sum()
        np.testing.assert_allclose(fitted.cpds["x"].intercept[k], mean, rtol=1e-11)
        np.testing.assert_allclose(fitted.cpds["x"].cov[k], cov, rtol=1e-10)


def test_discrete_em_with_missing_cells_equals_repeated_rows(sprinkler_rows):
    """Missing cells -> EM on distinct weighted rows; weights add up with the distinct-row counts."""
    frame = pd.concat([sprinkler_rows] * 2, ignore_index=True)  # enough rows to merge into distinct rows
    rng = np.random.default_rng(9)
    for col in ("rain", "sprinkler"):
        frame[col] = frame[col].astype(object).where(rng.random(len(frame)) > 0.2, None)
    start = quiet_fit(MODELS / "sprinkler.yaml", frame.drop(columns="w"), max_iter=2)
    weighted = strict_fit(MODELS / "sprinkler.yaml", frame, weights="w", init=start, max_iter=30)
    repeated = quiet_fit(MODELS / "sprinkler.yaml", repeat(frame), init=start, max_iter=30)
    assert weighted.info["learner"] == "em"
    np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-12)
    assert_same(weighted, repeated, atol=1e-12)


# --------------------------------------------------------------------------- undirected learners
@pytest.mark.parametrize("learner", ["lbfgs", "gradient", "coordinate", "pcd", "pseudo"])
def test_undirected_learners_equal_repeated_rows(pairwise_rows, learner):
    opts = {"learner": learner, "max_iter": 30 if learner in ("pcd", "gradient", "coordinate") else None}
    weighted = quiet_fit(MODELS / "pairwise_table.yaml", pairwise_rows, weights="w", **opts)
    repeated = quiet_fit(MODELS / "pairwise_table.yaml", repeat(pairwise_rows), **opts)
    assert weighted.params.keys() == repeated.params.keys()
    for key in weighted.params:
        # both fit the same weighted distinct rows: equal to rounding (measured: exactly)
        np.testing.assert_allclose(weighted.params[key], repeated.params[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_undirected_fractional_weights_match_weighted_marginals(pairwise_rows):
    """At the lbfgs optimum the model's clique marginals equal the weighted empirical ones (moment matching)."""
    frame = pairwise_rows.copy()
    w = np.random.default_rng(10).uniform(0, 2, len(frame))
    frame["w"] = w
    fitted = quiet_fit(MODELS / "pairwise_table.yaml", frame, weights="w", tol=1e-9)
    for u, v in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("b", "d")]:
        model = fitted.query([u, v])
        for (su, sv), p in model.items():
            empirical = w[(frame[u] == su) & (frame[v] == sv)].sum() / w.sum()
            assert abs(p - empirical) < 1e-6, (u, v, su, sv, p, empirical)
    agree = (frame["a"] == frame["e"]).to_numpy()  # the a-e agreement feature
    model = fitted.query(["a", "e"])
    p_agree = sum(p for (sa, se), p in model.items() if sa == se)
    assert abs(p_agree - w[agree].sum() / w.sum()) < 1e-6


def test_undirected_zero_weights_equal_dropping_rows(pairwise_rows):
    frame = pairwise_rows.copy()
    frame["w"] = (frame["w"] > 0).astype(float)
    weighted = quiet_fit(MODELS / "pairwise_table.yaml", frame, weights="w", learner="pcd", max_iter=20)
    dropped = quiet_fit(MODELS / "pairwise_table.yaml", frame[frame.w > 0].drop(columns="w"), learner="pcd",
                        max_iter=20)
    for key in weighted.params:
        np.testing.assert_array_equal(weighted.params[key], dropped.params[key])


# --------------------------------------------------------------------------- scores
def test_log_likelihood_bic_aic_weighted_equal_repeated_rows(sprinkler_rows, pairwise_rows):
    fitted = quiet_fit(MODELS / "sprinkler.yaml", sprinkler_rows, weights="w")
    rep = repeat(sprinkler_rows)
    for name in ("log_likelihood", "bic", "aic"):
        a = getattr(fitted, name)(sprinkler_rows, weights="w")
        b = getattr(fitted, name)(rep)
        np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=name)
    n = sprinkler_rows["w"].sum()  # BIC's n is the sum of the weights: the number of repeated rows
    np.testing.assert_allclose(fitted.bic(sprinkler_rows, weights="w") - fitted.aic(sprinkler_rows, weights="w"),
                               fitted.n_params * (np.log(n) - 2), rtol=1e-12)
    markov = quiet_fit(MODELS / "pairwise_table.yaml", pairwise_rows, weights="w")
    for name in ("log_likelihood", "bic", "aic"):
        np.testing.assert_allclose(getattr(markov, name)(pairwise_rows, weights="w"),
                                   getattr(markov, name)(repeat(pairwise_rows)), rtol=1e-12, err_msg=name)


def test_structure_scores_weighted_equal_repeated_rows(sprinkler_rows):
    rep = repeat(sprinkler_rows)
    fitted = quiet_fit(MODELS / "sprinkler.yaml", sprinkler_rows, weights="w")
    for kind in ("bdeu", "k2", "bic", "aic"):
        expected = pgm.score(MODELS / "sprinkler.yaml", rep, kind, ess=5.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = pgm.score(MODELS / "sprinkler.yaml", sprinkler_rows, kind, ess=5.0, weights="w")
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=kind)
        np.testing.assert_allclose(fitted.score(sprinkler_rows, kind, ess=5.0, weights="w"), expected, rtol=1e-12,
                                   err_msg=kind)


# --------------------------------------------------------------------------- files, streaming
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_and_streaming_equal_in_memory(sprinkler_rows, lg_rows, tmp_path, suffix):
    for name, rows in (("sprinkler", sprinkler_rows), ("linear_gaussian", lg_rows)):
        frame = rows.copy()
        frame.loc[10:25, "w"] = 0  # chunk 2 of 7 rows has no weight at all
        frame["w"] = frame["w"] * 0.75
        path = tmp_path / f"{name}{suffix}"
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
        memory = strict_fit(MODELS / f"{name}.yaml", frame, weights="w")
        assert_same(strict_fit(MODELS / f"{name}.yaml", path, weights="w"), memory, atol=1e-12)
        streamed = strict_fit(MODELS / f"{name}.yaml", path, weights="w", chunk_rows=7)
        assert streamed.info["chunk_rows"] == 7
        assert_same(streamed, memory, atol=1e-11)


def test_streaming_em_and_undirected_equal_repeated_rows(gmm_rows, gmm_start, pairwise_rows, tmp_path):
    path = tmp_path / "gmm.csv"
    gmm_rows.to_csv(path, index=False)
    streamed = quiet_fit(MODELS / "gmm.yaml", path, weights="w", init=gmm_start, max_iter=10, chunk_rows=50)
    repeated = quiet_fit(MODELS / "gmm.yaml", repeat(gmm_rows), init=gmm_start, max_iter=10)
    np.testing.assert_allclose(streamed.history, repeated.history, rtol=1e-12)
    assert_same(streamed, repeated, atol=1e-10)
    path = tmp_path / "pairwise.parquet"
    pairwise_rows.to_parquet(path, index=False)
    streamed = quiet_fit(MODELS / "pairwise_table.yaml", path, weights="w", chunk_rows=33)
    repeated = quiet_fit(MODELS / "pairwise_table.yaml", repeat(pairwise_rows))
    for key in streamed.params:
        np.testing.assert_allclose(streamed.params[key], repeated.params[key], rtol=1e-8, atol=1e-8)


# --------------------------------------------------------------------------- bad weights
@pytest.mark.parametrize("value, says", [(-1.0, "1 negative value (row 3: -1.0)"),
                                         (np.nan, "1 empty (missing) cell (row 3: nan)"),
                                         (np.inf, "1 infinite value (row 3: inf)"),
                                         ("heavy", "1 cell that is not a number (row 3: 'heavy')")])
def test_bad_weight_cells_are_named(sprinkler_rows, value, says):
    frame = sprinkler_rows.copy()
    frame["w"] = frame["w"].astype(object if isinstance(value, str) else float)
    frame.loc[3, "w"] = value
    with pytest.raises(DataError, match="weights column 'w'") as err:
        pgm.fit(MODELS / "sprinkler.yaml", frame, weights="w")
    assert says in str(err.value)


def test_bad_weights_columns(sprinkler_rows):
    with pytest.raises(DataError, match="weights column 'rain' is the data column of node 'rain'"):
        pgm.fit(MODELS / "sprinkler.yaml", sprinkler_rows, weights="rain")
    with pytest.raises(DataError, match=r"missing weights column 'wt' \(did you mean 'w'\?\)"):
        pgm.fit(MODELS / "sprinkler.yaml", sprinkler_rows, weights="wt")
    with pytest.raises(DataError, match="sum to 0 over the 120 rows"):
        pgm.fit(MODELS / "sprinkler.yaml", sprinkler_rows.assign(w=0.0), weights="w")
    with pytest.raises(DataError, match="sum beyond the float range over the 120 rows; rescale them"):
        pgm.fit(MODELS / "sprinkler.yaml", sprinkler_rows.assign(w=1e307), weights="w")
    with pytest.raises(DataError, match=r"1 cell that is not a number \(row 5: True\)"):
        pgm.fit(MODELS / "sprinkler.yaml", sprinkler_rows.assign(w=[1.0] * 5 + [True] + [1.0] * 114), weights="w")
    with pytest.raises(DataError, match="weights column 'z' is the data column of node 'z'"):  # a latent node
        pgm.fit(MODELS / "gmm.yaml", pd.DataFrame({"x[0]": [1.0], "x[1]": [2.0], "z": [1.0]}), weights="z")


def test_bad_weights_in_files_name_lines(sprinkler_rows, tmp_path):
    frame = sprinkler_rows.copy()
    frame["w"] = frame["w"].astype(float)
    frame.loc[40, "w"] = -2.0
    path = tmp_path / "data.csv"
    text = frame.to_csv(index=False).replace("\n", "\n\n", 1)  # a blank line after the header: lines != rows + 2
    path.write_text(text)
    with pytest.raises(DataError, match=r"data.csv: weights column 'w': 1 negative value \(line 43: -2.0\)"):
        pgm.fit(MODELS / "sprinkler.yaml", path, weights="w")
    with pytest.raises(DataError, match=r"data.csv: weights column 'w': 1 negative value \(line 43: -2.0\)"):
        pgm.fit(MODELS / "sprinkler.yaml", path, weights="w", chunk_rows=16)
    frame.loc[40, "w"] = 1.0
    frame["w"] = frame["w"].astype(object)
    frame.loc[70, "w"] = "a lot"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError,
                       match=r"data.csv: weights column 'w': 1 cell that is not a number \(line 72: 'a lot'\)"):
        pgm.fit(MODELS / "sprinkler.yaml", path, weights="w", chunk_rows=16)
    frame.assign(w=0).to_csv(path, index=False)
    with pytest.raises(DataError, match="sum to 0"):
        pgm.fit(MODELS / "sprinkler.yaml", path, weights="w", chunk_rows=16)


# --------------------------------------------------------------------------- command line
def test_cli_fit_and_score_with_weights(sprinkler_rows, tmp_path, capsys):
    data = tmp_path / "data.csv"
    sprinkler_rows.to_csv(data, index=False)
    out = tmp_path / "fitted.yaml"
    assert main(["fit", str(MODELS / "sprinkler.yaml"), str(data), "--weights", "w", "-o", str(out)]) == 0
    fitted = pgm.load(out)
    assert_same(fitted, quiet_fit(MODELS / "sprinkler.yaml", sprinkler_rows, weights="w"), atol=1e-12)
    capsys.readouterr()
    assert main(["score", str(out), str(data), "--weights", "w"]) == 0
    printed = capsys.readouterr().out
    total = fitted.log_likelihood(repeat(sprinkler_rows))
    assert f"total log-likelihood: {total:.10g}" in printed
    assert f"total weight {sprinkler_rows['w'].sum()}" in printed
    bic, aic = fitted.bic(repeat(sprinkler_rows)), fitted.aic(repeat(sprinkler_rows))  # n = the repeated rows
    assert f"BIC: {bic:.10g}  AIC: {aic:.10g}" in printed
    assert main(["fit", str(MODELS / "sprinkler.yaml"), str(data), "--weights", "cloudy", "-o", str(out)]) == 2
    assert "weights column 'cloudy' is the data column of node 'cloudy'" in capsys.readouterr().err


# --------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_dask_em_equals_repeated_rows(client, gmm_rows, gmm_start):
    """EM over partitions, the first of which has no weight: equals the repeated rows in memory."""
    import dask.dataframe as dd

    frame = gmm_rows.copy()
    frame.loc[:47, "w"] = 0
    ddf = dd.from_pandas(frame, npartitions=5)  # partitions of 48 rows: the first has no weight at all
    fitted = quiet_fit(MODELS / "gmm.yaml", ddf, weights="w", init=gmm_start, max_iter=10, tol=0)
    repeated = quiet_fit(MODELS / "gmm.yaml", repeat(frame), init=gmm_start, max_iter=10, tol=0)
    assert fitted.info["partitions"] == 5
    np.testing.assert_allclose(fitted.history, repeated.history, rtol=1e-12)
    assert_same(fitted, repeated, atol=1e-10)
    # the default (k-means++) start is drawn from every row with weight, as in memory on the whole frame
    drawn = quiet_fit(MODELS / "gmm.yaml", ddf, weights="w", max_iter=1)
    memory = quiet_fit(MODELS / "gmm.yaml", frame, weights="w", max_iter=1)
    assert_same(drawn, memory, atol=1e-10)
    frame.loc[100, "w"] = -1
    with pytest.raises(DataError, match=r"weights column 'w': 1 negative value \(row 100: -1\)"):
        pgm.fit(MODELS / "gmm.yaml", dd.from_pandas(frame, npartitions=5), weights="w")
    with pytest.raises(DataError, match="sum to 0 over the dask DataFrame"):
        pgm.fit(MODELS / "gmm.yaml", dd.from_pandas(frame.assign(w=0.0), npartitions=5), weights="w")


@pytest.mark.slow
def test_cli_scheduler_reads_the_weights_column(client, lg_rows, tmp_path):
    import subprocess
    import sys

    data = tmp_path / "lg.csv"
    frame = lg_rows.assign(w=lg_rows["w"] * 0.5)
    frame.to_csv(data, index=False)
    out = tmp_path / "fitted.yaml"
    run = subprocess.run([sys.executable, "-m", "pgm.cli", "fit", str(MODELS / "linear_gaussian.yaml"), str(data),
                          "--weights", "w", "--scheduler", client.scheduler.address, "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    assert_same(pgm.load(out), strict_fit(MODELS / "linear_gaussian.yaml", frame, weights="w"), atol=1e-10)
