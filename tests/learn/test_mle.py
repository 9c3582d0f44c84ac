"""Complete-data maximum likelihood through ``pgm.fit``.

Exactness: on the same rows every table equals an independent count (pandas groupby), every
linear-Gaussian node equals numpy least squares, every covariance equals numpy's, to 1e-12.
Recovery: 100k rows sampled from alarm and ecoli70 give back the true parameters within a
bound derived from the sampling error.  Agreement: alarm's CPTs equal pgmpy's
MaximumLikelihoodEstimator (a stored reference, see tests/reference/make_pgmpy_reference.py).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

import pgm
from pgm.cpd.logistic import logistic_features, logistic_gradient, logistic_stats
from pgm.encode import encode
from pgm.graph import build
from pgm.schema import parse_spec

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference" / "alarm_pgmpy_mle.json"
EXACT = dict(rtol=0, atol=1e-12)


def fit_quiet(spec, data, **kwargs):
    """``pgm.fit`` that fails on any warning (the tests that expect one say so)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pgm.fit(spec, data, **kwargs)


def count_table(frame: pd.DataFrame, child: str, parents: list[str], parent_states: list[list],
                states: list, alpha: float = 0.0) -> np.ndarray:
    """(n_configs, n_states) normalised counts by pandas groupby, configurations in C order."""
    counts = frame.groupby([*parents, child], observed=False).size() if parents else frame.groupby(child).size()
    index = pd.MultiIndex.from_product([*parent_states, states]) if parents else pd.Index(states)
    counts = counts.reindex(index, fill_value=0).to_numpy(dtype=float).reshape(-1, len(states)) + alpha
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), 1.0 / len(states))


def cpt(fitted, node) -> np.ndarray:
    return fitted.cpds[node].probs


# ---------------------------------------------------------------- tables

STUDENT = {
    "name": "student",
    "nodes": {
        "difficulty": {"states": ["easy", "hard"]},
        "intelligence": {"states": ["low", "high"]},
        "grade": {"states": ["A", "B", "C"], "parents": ["difficulty", "intelligence"]},
        "sat": {"states": ["low", "high"], "parents": ["intelligence"]},
        "letter": {"states": ["weak", "strong"], "parents": ["grade"]},
    },
}


def student_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = rng.choice(["easy", "hard"], n, p=[0.6, 0.4])
    i = rng.choice(["low", "high"], n, p=[0.7, 0.3])
    g = np.where((d == "easy") & (i == "high"), rng.choice(["A", "B", "C"], n, p=[0.8, 0.15, 0.05]),
                 rng.choice(["A", "B", "C"], n, p=[0.3, 0.4, 0.3]))
    s = np.where(i == "high", rng.choice(["low", "high"], n, p=[0.2, 0.8]), rng.choice(["low", "high"], n))
    letter = np.where(g == "A", rng.choice(["weak", "strong"], n, p=[0.1, 0.9]), rng.choice(["weak", "strong"], n))
    return pd.DataFrame({"difficulty": d, "intelligence": i, "grade": g, "sat": s, "letter": letter})


@pytest.fixture(scope="module")
def student():
    return parse_spec(STUDENT), student_frame(3000, seed=0)


def assert_tables_equal_counts(spec, fitted, frame, alpha=lambda node, c, k: 0.0):
    for name, node in spec.nodes.items():
        parents = list(node.parents)
        pstates = [spec.nodes[p].labels for p in parents]
        n_configs = int(np.prod([len(s) for s in pstates])) if parents else 1
        expected = count_table(frame, name, parents, pstates, node.labels, alpha(name, n_configs, len(node.labels)))
        np.testing.assert_allclose(cpt(fitted, name), expected, **EXACT, err_msg=name)


def test_tables_equal_groupby_counts(student):
    spec, frame = student
    assert_tables_equal_counts(spec, fit_quiet(spec, frame), frame)


def test_labelled_cpd_is_the_count_table(student):
    spec, frame = student
    table = fit_quiet(spec, frame).cpd("grade")
    assert table.index.names == ["difficulty", "intelligence"]
    assert list(table.columns) == ["A", "B", "C"]
    expected = pd.crosstab([frame["difficulty"], frame["intelligence"]], frame["grade"], normalize="index")
    expected = expected.reindex(index=table.index, columns=table.columns)
    np.testing.assert_allclose(table.to_numpy(), expected.to_numpy(), **EXACT)


@pytest.mark.parametrize("prior, per_cell", [
    ({"dirichlet": 1}, lambda node, c, k: 1.0),
    ({"dirichlet": 0.25}, lambda node, c, k: 0.25),
    ({"bdeu": 10}, lambda node, c, k: 10.0 / (c * k)),
])
def test_fit_wide_priors_add_pseudo_counts(student, prior, per_cell):
    spec, frame = student
    assert_tables_equal_counts(spec, fit_quiet(spec, frame, prior=prior), frame, per_cell)


def test_node_prior_overrides_the_fit_wide_prior(student):
    _, frame = student
    decl = json.loads(json.dumps(STUDENT))
    decl["nodes"]["grade"]["prior"] = {"bdeu": 6}
    decl["nodes"]["sat"]["prior"] = {"dirichlet": 3}
    spec = parse_spec(decl)

    def alpha(node, c, k):
        return {"grade": 6.0 / (c * k), "sat": 3.0}.get(node, 0.5)

    assert_tables_equal_counts(spec, fit_quiet(spec, frame, prior={"dirichlet": 0.5}), frame, alpha)


def test_integer_coded_and_categorical_frames_fit_identically(student):
    spec, frame = student
    want = fit_quiet(spec, frame).to_params()
    codes = pd.DataFrame({c: frame[c].map({s: i for i, s in enumerate(spec.nodes[c].labels)}) for c in frame})
    coded_spec = parse_spec({"name": "coded", "nodes": {
        n: {"states": len(v.labels), "parents": list(v.parents)} for n, v in spec.nodes.items()}})
    assert fit_quiet(coded_spec, codes).to_params() == want
    cats = frame.astype({c: pd.CategoricalDtype(spec.nodes[c].labels[::-1]) for c in frame})
    assert fit_quiet(spec, cats).to_params() == want


def test_unseen_parent_configuration_is_uniform_and_named(student):
    spec, frame = student
    rows = ~((frame["difficulty"] == "hard") & (frame["intelligence"] == "high"))
    with pytest.warns(pgm.DataWarning) as caught:
        fitted = pgm.fit(spec, frame[rows])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert messages[0].startswith("grade:")
    assert "difficulty=hard, intelligence=high" in messages[0]
    assert "uniform" in messages[0]
    table = fitted.cpd("grade")
    np.testing.assert_array_equal(table.loc[("hard", "high")].to_numpy(), [1 / 3] * 3)
    seen = count_table(frame[rows], "grade", ["difficulty", "intelligence"],
                       [["easy", "hard"], ["low", "high"]], ["A", "B", "C"])
    np.testing.assert_allclose(cpt(fitted, "grade"), seen, **EXACT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a prior gives every configuration pseudo-counts: no warning
        pgm.fit(spec, frame[rows], prior={"dirichlet": 1})


def test_tied_nodes_pool_their_counts():
    spec = parse_spec({"name": "tied", "nodes": {
        "a": {"states": ["x", "y"]},
        "b1": {"states": ["u", "v", "w"], "parents": ["a"], "tie": "shared"},
        "b2": {"states": ["u", "v", "w"], "parents": ["a"], "tie": "shared"},
        "c": {"states": ["u", "v", "w"], "parents": ["a"]},
    }})
    rng = np.random.default_rng(4)
    n = 700
    frame = pd.DataFrame({"a": rng.choice(["x", "y"], n), "b1": rng.choice(["u", "v", "w"], n, p=[0.5, 0.3, 0.2]),
                          "b2": rng.choice(["u", "v", "w"], n, p=[0.1, 0.3, 0.6]), "c": rng.choice(["u", "v", "w"], n)})
    fitted = fit_quiet(spec, frame)
    assert set(fitted.cpds) == {"a", "shared", "c"}
    pooled = pd.concat([frame[["a", "b1"]].rename(columns={"b1": "b"}), frame[["a", "b2"]].rename(columns={"b2": "b"})])
    expected = count_table(pooled, "b", ["a"], [["x", "y"]], ["u", "v", "w"])
    np.testing.assert_allclose(cpt(fitted, "shared"), expected, **EXACT)
    np.testing.assert_allclose(fitted.cpd("b1").to_numpy(), expected, **EXACT)
    np.testing.assert_allclose(cpt(fitted, "c"), count_table(frame, "c", ["a"], [["x", "y"]], ["u", "v", "w"]), **EXACT)
    assert fitted.n_params == 1 + 2 * 2 + 2 * 2  # the tie counts once
    with_prior = fit_quiet(spec, frame, prior={"dirichlet": 2})
    np.testing.assert_allclose(cpt(with_prior, "shared"),
                               count_table(pooled, "b", ["a"], [["x", "y"]], ["u", "v", "w"], alpha=2.0), **EXACT)


def test_plate_copies_pool_their_counts():
    """``r`` in a plate of 4 stands for r[0..3] with one table; its parent ``s`` is shared."""
    spec = parse_spec({"name": "plated", "plates": {"rater": {"size": 4}}, "nodes": {
        "s": {"states": ["bad", "good"]},
        "r": {"states": 3, "parents": ["s"], "plate": "rater"},
        "q": {"states": 2, "parents": ["r"], "plate": "rater"},
    }})
    rng = np.random.default_rng(5)
    n = 500
    frame = pd.DataFrame({"s": rng.choice(["bad", "good"], n)})
    for i in range(4):
        frame[f"r[{i}]"] = rng.integers(0, 3, n)
        frame[f"q[{i}]"] = (rng.random(n) < 0.2 + 0.3 * frame[f"r[{i}]"]).astype(int)
    fitted = fit_quiet(spec, frame)
    assert set(fitted.cpds) == {"s", "r", "q"}
    long = pd.concat([frame[["s", f"r[{i}]", f"q[{i}]"]].set_axis(["s", "r", "q"], axis=1) for i in range(4)])
    np.testing.assert_allclose(cpt(fitted, "r"), count_table(long, "r", ["s"], [["bad", "good"]], [0, 1, 2]), **EXACT)
    np.testing.assert_allclose(cpt(fitted, "q"), count_table(long, "q", ["r"], [[0, 1, 2]], [0, 1]), **EXACT)
    np.testing.assert_allclose(cpt(fitted, "s"), count_table(frame, "s", [], [], ["bad", "good"]), **EXACT)


def test_weighted_rows_equal_repeated_rows(student):
    """Distinct rows with counts (a frequency table) fit like the full data."""
    spec, frame = student
    graph = build(spec)
    distinct = frame.value_counts().reset_index()
    weighted = encode(graph, distinct.drop(columns="count"), weights=distinct["count"].to_numpy(dtype=float))
    got = pgm.fit(spec, weighted)
    want = fit_quiet(spec, frame)
    for key in want.cpds:
        np.testing.assert_allclose(cpt(got, key), cpt(want, key), **EXACT)


# ---------------------------------------------------------------- linear gaussian

CLG = {
    "name": "clg",
    "nodes": {
        "soil": {"states": ["poor", "rich"]},
        "site": {"states": ["n", "s", "e"]},
        "rain": {"type": "gaussian"},
        "temp": {"type": "gaussian"},
        "growth": {"type": "gaussian", "parents": ["rain", "temp"]},
        "yield": {"type": "gaussian", "parents": ["soil", "site", "growth", "rain"]},
        "price": {"type": "gaussian", "parents": ["yield"]},
        "base": {"type": "gaussian", "parents": ["soil"]},
    },
}


@pytest.fixture(scope="module")
def clg():
    rng = np.random.default_rng(6)
    n = 1200
    soil = rng.choice(["poor", "rich"], n)
    site = rng.choice(["n", "s", "e"], n)
    rain = rng.normal(800.0, 120.0, n)  # real units, far from the origin
    temp = rng.normal(15.0, 4.0, n)
    growth = 0.01 * rain + 0.4 * temp + rng.normal(0, 1.0, n)
    shift = (soil == "rich") * 2.0 + (site == "s") * 1.0
    y = shift + (1.0 + (soil == "rich")) * growth + 0.002 * rain + rng.normal(0, 0.5 + (site == "e"), n)
    price = 100.0 - 2.0 * y + rng.normal(0, 3.0, n)
    base = np.where(soil == "rich", 5.0, -5.0) + rng.normal(0, 1.0, n)
    frame = pd.DataFrame({"soil": soil, "site": site, "rain": rain, "temp": temp, "growth": growth,
                          "yield": y, "price": price, "base": base})
    return parse_spec(CLG), frame


def ols(frame, child, regressors):
    """Intercept, coefficients and mean squared residual by numpy lstsq."""
    x = np.column_stack([np.ones(len(frame))] + [frame[r].to_numpy() for r in regressors])
    y = frame[child].to_numpy()
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    return beta[0], beta[1:], float(resid @ resid / len(y))


def assert_close_rel(got, want, tol=1e-12, err_msg=""):
    """|got - want| <= tol * max(1, |want|): 1e-12 in the units of each number."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert np.all(np.abs(got - want) <= tol * np.maximum(1.0, np.abs(want))), f"{err_msg}: {got} != {want}"


def test_linear_gaussian_nodes_equal_lstsq(clg):
    spec, frame = clg
    fitted = fit_quiet(spec, frame, reg_covar=0)
    params = fitted.to_params()
    for node, regressors in (("growth", ["rain", "temp"]), ("price", ["yield"]), ("rain", []), ("temp", [])):
        b, w, var = ols(frame, node, regressors)
        assert_close_rel(params[node]["intercept"], b, err_msg=node)
        if regressors:
            assert_close_rel(params[node]["coef"], w, err_msg=node)
        assert_close_rel(params[node]["covariance"], var, err_msg=node)


def test_one_regression_per_discrete_parent_configuration(clg):
    spec, frame = clg
    fitted = fit_quiet(spec, frame)
    table = fitted.cpd("yield")
    assert list(table.columns) == ["intercept", "growth", "rain", "cov[yield]"]
    assert table.index.names == ["soil", "site", "output"]
    for (soil, site), rows in frame.groupby(["soil", "site"]):
        b, w, var = ols(rows, "yield", ["growth", "rain"])
        row = table.loc[(soil, site, "yield")]
        assert_close_rel(row["intercept"], b, err_msg=f"{soil},{site}")
        assert_close_rel(row[["growth", "rain"]].to_numpy(), w, err_msg=f"{soil},{site}")
        assert_close_rel(row["cov[yield]"], var, err_msg=f"{soil},{site}")
    base = fitted.cpd("base")
    for soil, rows in frame.groupby("soil"):
        assert_close_rel(base.loc[(soil, "base"), "intercept"], rows["base"].mean())
        assert_close_rel(base.loc[(soil, "base"), "cov[base]"], rows["base"].var(ddof=0))


def test_unseen_configuration_of_a_gaussian_node_is_named(clg):
    spec, frame = clg
    rows = ~((frame["soil"] == "poor") & (frame["site"] == "e"))
    with pytest.warns(pgm.DataWarning, match=r"yield: .*soil=poor, site=e"):
        fitted = pgm.fit(spec, frame[rows])
    b, w, var = ols(frame[rows], "yield", ["growth", "rain"])  # the pooled regression
    row = fitted.cpd("yield").loc[("poor", "e", "yield")]
    assert_close_rel(row["intercept"], b, tol=1e-10)
    assert_close_rel(row[["growth", "rain"]].to_numpy(), w, tol=1e-10)


def test_reg_covar_adds_to_the_variance(clg):
    spec, frame = clg
    plain = fit_quiet(spec, frame).to_params()
    reg = fit_quiet(spec, frame, reg_covar=0.5).to_params()
    assert_close_rel(np.asarray(reg["price"]["covariance"]) - 0.5, plain["price"]["covariance"])
    assert reg["price"]["coef"] == plain["price"]["coef"]


def test_tied_gaussian_nodes_pool_their_rows():
    spec = parse_spec({"name": "tg", "nodes": {
        "x": {"type": "gaussian"},
        "y1": {"type": "gaussian", "parents": ["x"], "tie": "resp"},
        "y2": {"type": "gaussian", "parents": ["x"], "tie": "resp"},
    }})
    rng = np.random.default_rng(7)
    x = rng.normal(3.0, 2.0, 400)
    frame = pd.DataFrame({"x": x, "y1": 1 + 2 * x + rng.normal(size=400), "y2": -1 + 2.5 * x + rng.normal(size=400)})
    params = fit_quiet(spec, frame).to_params()
    long = pd.concat([frame[["x", "y1"]].set_axis(["x", "y"], axis=1), frame[["x", "y2"]].set_axis(["x", "y"], axis=1)])
    b, w, var = ols(long, "y", ["x"])
    assert_close_rel(params["resp"]["intercept"], b)
    assert_close_rel(params["resp"]["coef"], w)
    assert_close_rel(params["resp"]["covariance"], var)


# ---------------------------------------------------------------- multivariate gaussian

@pytest.fixture(scope="module")
def mv():
    rng = np.random.default_rng(8)
    n = 900
    group = rng.choice(["a", "b", "c"], n)
    u = rng.normal(50.0, 5.0, n)
    g = np.searchsorted(["a", "b", "c"], group)
    mix = np.array([[[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.2, -0.3, 0.5]],
                    [[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]],
                    [[0.3, 0.0, 0.0], [0.1, 0.3, 0.0], [1.0, 1.0, 1.0]]])
    x = np.einsum("nij,nj->ni", mix[g], rng.normal(size=(n, 3))) + 0.1 * u[:, None] * (1 + g[:, None]) + 10.0
    frame = pd.DataFrame({"group": group, "u": u, "x[0]": x[:, 0], "x[1]": x[:, 1], "x[2]": x[:, 2]})
    return frame


def mv_spec(covariance, parents):
    return parse_spec({"name": "mv", "nodes": {
        "group": {"states": ["a", "b", "c"]}, "u": {"type": "gaussian"},
        "x": {"type": "gaussian", "dim": 3, "parents": parents, "covariance": covariance}}})


def residuals(frame, regressors):
    """Per group: lstsq of the 3 outputs on [1, regressors], and the residual matrix."""
    out = {}
    for name, rows in frame.groupby("group"):
        design = np.column_stack([np.ones(len(rows))] + [rows[r].to_numpy() for r in regressors])
        y = rows[["x[0]", "x[1]", "x[2]"]].to_numpy()
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        out[name] = (beta, y - design @ beta)
    return out


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical", "tied"])
def test_multivariate_covariances_equal_numpy(mv, covariance):
    fitted = fit_quiet(mv_spec(covariance, ["group", "u"]), mv)
    cpd = fitted.cpds["x"]
    for c, (name, (beta, resid)) in enumerate(residuals(mv, ["u"]).items()):
        full = np.cov(resid, rowvar=False, bias=True)
        assert_close_rel(cpd.intercept[c], beta[0], err_msg=name)
        assert_close_rel(cpd.coef[c][:, 0], beta[1], err_msg=name)
        if covariance == "full":
            want = full
        elif covariance == "diag":
            want = np.diag(np.diag(full))
        elif covariance == "spherical":
            want = np.eye(3) * np.trace(full) / 3
        else:
            pooled = np.vstack([r for _, r in residuals(mv, ["u"]).values()])
            want = pooled.T @ pooled / len(pooled)
        assert_close_rel(cpd.cov[c], want, err_msg=f"{covariance} {name}")


def test_multivariate_without_parents_is_the_sample_covariance(mv):
    fitted = fit_quiet(mv_spec("full", []), mv)
    x = mv[["x[0]", "x[1]", "x[2]"]].to_numpy()
    assert_close_rel(fitted.cpds["x"].intercept[0], x.mean(axis=0))
    assert_close_rel(fitted.cpds["x"].cov[0], np.cov(x, rowvar=False, bias=True))
    table = fitted.cpd("x")
    assert list(table.index) == ["x[0]", "x[1]", "x[2]"]
    assert list(table.columns) == ["intercept", "cov[x[0]]", "cov[x[1]]", "cov[x[2]]"]


def test_named_columns_of_a_multivariate_node(mv):
    spec = parse_spec({"name": "named", "nodes": {
        "pos": {"type": "gaussian", "dim": 3, "columns": ["px", "py", "pz"]}}})
    frame = mv[["x[0]", "x[1]", "x[2]"]].set_axis(["px", "py", "pz"], axis=1)
    fitted = fit_quiet(spec, frame)
    assert_close_rel(fitted.cpds["pos"].cov[0], np.cov(frame.to_numpy(), rowvar=False, bias=True))


# ---------------------------------------------------------------- logistic

def test_logistic_nodes_reach_the_optimum():
    spec = parse_spec({"name": "sig", "nodes": {
        "dose": {"type": "gaussian"},
        "exposed": {"states": [0, 1], "cpd": "logistic"},
        "symptom": {"states": ["none", "mild", "severe"], "parents": ["exposed", "dose"], "cpd": "logistic"},
        "positive": {"states": [0, 1], "parents": ["exposed", "symptom"], "cpd": "logistic", "penalty": 0.5},
    }})
    rng = np.random.default_rng(9)
    n = 2000
    dose = rng.normal(1.0, 1.0, n)
    exposed = (rng.random(n) < 0.4).astype(int)
    z = np.column_stack([np.zeros(n), -0.5 + exposed + 0.8 * dose, -2.0 + 2 * exposed + 1.2 * dose])
    p = np.exp(z - z.max(axis=1, keepdims=True))
    symptom = (rng.random(n)[:, None] > np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)).sum(axis=1)
    positive = (rng.random(n) < 1 / (1 + np.exp(1.0 - exposed - symptom))).astype(int)
    labels = np.array(["none", "mild", "severe"])
    frame = pd.DataFrame({"dose": dose, "exposed": exposed, "symptom": labels[symptom], "positive": positive})
    fitted = fit_quiet(spec, frame)
    sym = fitted.cpds["symptom"]
    feats = logistic_features([(exposed, 2)], [dose[:, None]], n)
    assert np.linalg.norm(logistic_gradient(sym, logistic_stats(feats, symptom, 3))) < 1e-6
    pos = fitted.cpds["positive"]
    feats = logistic_features([(exposed, 2), (symptom, 3)], [], n)
    assert np.linalg.norm(logistic_gradient(pos, logistic_stats(feats, positive, 2), 0.5)) < 1e-6
    # a logistic node without parents is the frequency of its states
    np.testing.assert_allclose(np.exp(fitted.cpds["exposed"].log_probs(np.zeros((1, 0))))[0],
                               [1 - exposed.mean(), exposed.mean()], rtol=0, atol=1e-9)
    # the fit-wide penalty overrides the nodes' own
    stiff = fit_quiet(spec, frame, penalty=50.0).cpds["symptom"]
    feats = logistic_features([(exposed, 2)], [dose[:, None]], n)
    assert np.linalg.norm(logistic_gradient(stiff, logistic_stats(feats, symptom, 3), 50.0)) < 1e-6
    assert np.abs(stiff.coef).sum() < np.abs(sym.coef).sum()


# ---------------------------------------------------------------- dispatch

def test_learner_mle_refuses_latent_nodes():
    spec = parse_spec({"name": "lat", "nodes": {"z": {"states": 2, "latent": True},
                                                 "x": {"states": 2, "parents": ["z"]}}})
    with pytest.raises(pgm.PGMError, match="learner='em'"):
        pgm.fit(spec, pd.DataFrame({"x": [0, 1, 1]}), learner="mle")


def test_unknown_option_is_refused(student):
    spec, frame = student
    with pytest.raises(pgm.PGMError, match="n_components"):
        pgm.fit(spec, frame, n_components=3)


def test_fit_leaves_its_inputs_alone(student):
    spec, frame = student
    before = frame.copy()
    fitted = fit_quiet(spec, frame)
    pd.testing.assert_frame_equal(frame, before)
    assert spec.params is None and fitted.spec is spec


# ---------------------------------------------------------------- recovery from 100k rows

def test_alarm_recovery_within_sampling_error(alarm_true):
    """Every CPT entry whose parent configuration holds n >= 30 of the 100k rows: the count
    k = n p_hat lies in the central interval of Binomial(n, p) that has probability 1 - 2e-7.

    The exact binomial interval, rather than the normal |p_hat - p| <= 5 sqrt(p (1 - p) / n):
    alarm has many entries p = 0.01 on a few hundred rows, where the normal bound is too tight
    (seed 0 draws 11 of 257 where np = 2.6: a 5.3-sigma normal deviation, yet P = 1e-4 under the
    binomial).  With ~750 entries the chance of a false alarm is below 2e-4; a wrong table (a
    transposed parent, a shifted row) misses by thousands of sigmas."""
    data = alarm_true.sample(100_000, seed=0)
    fitted = fit_quiet(pgm.load(ROOT / "models" / "alarm.yaml"), data)
    checked = 0
    for name, node in fitted.spec.nodes.items():
        got = fitted.cpd(name)
        want = alarm_true.cpd(name).reindex(index=got.index, columns=got.columns)
        parents = list(node.parents)
        if parents:
            sizes = data[parents].astype(str).groupby(parents).size()
            n_config = sizes.reindex(got.index, fill_value=0).to_numpy()
        else:
            n_config = np.array([len(data)])
        assert n_config.sum() == len(data), name  # every row counted under its configuration's label
        p, p_hat = want.to_numpy(), got.to_numpy()
        n = np.broadcast_to(n_config[:, None], p.shape)
        k = np.round(p_hat * n)
        keep = n >= 30
        lo = binom.ppf(1e-7, n, p)
        hi = binom.isf(1e-7, n, p)
        bad = keep & ((k < lo) | (k > hi))
        assert not bad.any(), (name, np.argwhere(bad)[:3], p_hat[bad][:3], p[bad][:3], n[bad][:3])
        np.testing.assert_allclose(p_hat[keep], k[keep] / n[keep], rtol=0, atol=1e-12)  # counts, exactly
        checked += int(keep.sum())
    assert checked > 650  # most of alarm's 752 entries (694 with this seed)


def test_ecoli70_recovery_within_standard_errors(ecoli_true):
    """Each coefficient within 5 OLS standard errors (sigma^2 (X'X)^-1 on the sample), each
    variance within 5 sqrt(2 / n) relative (the standard error of a normal sample variance)."""
    data = ecoli_true.sample(100_000, seed=0)
    fitted = fit_quiet(pgm.load(ROOT / "models" / "ecoli70.yaml"), data)
    n = len(data)
    for name, node in fitted.spec.nodes.items():
        parents = list(node.parents)
        got = fitted.cpd(name).iloc[0]
        want = ecoli_true.cpd(name).iloc[0]
        design = np.column_stack([np.ones(n)] + [data[p].to_numpy() for p in parents])
        xtx_inv = np.linalg.inv(design.T @ design)
        var = want[f"cov[{name}]"]
        se = np.sqrt(var * np.diag(xtx_inv))
        got_beta = got[["intercept", *parents]].to_numpy(dtype=float)
        want_beta = want[["intercept", *parents]].to_numpy(dtype=float)
        assert np.all(np.abs(got_beta - want_beta) <= 5 * se), (name, got_beta, want_beta, se)
        assert abs(got[f"cov[{name}]"] - var) <= 5 * var * np.sqrt(2 / n), name


# ---------------------------------------------------------------- agreement with pgmpy

def test_alarm_cpts_equal_pgmpy(alarm_true):
    """pgmpy's MaximumLikelihoodEstimator on the same rows (stored by
    tests/reference/make_pgmpy_reference.py), to 1e-12; pgmpy also fills unseen parent
    configurations uniformly."""
    reference = json.loads(REFERENCE.read_text())
    data = alarm_true.sample(reference["n_rows"], seed=reference["seed"])
    spec = pgm.load(ROOT / "models" / "alarm.yaml")
    codes = [data[name].astype(str).map({s: i for i, s in enumerate(node.labels)}).to_numpy(dtype=np.int8)
             for name, node in spec.nodes.items()]
    digest = hashlib.sha256(np.column_stack(codes).tobytes()).hexdigest()
    assert digest == reference["data_sha256"], (
        "pgm's sampler no longer draws the reference data: rerun tests/reference/make_pgmpy_reference.py")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.DataWarning)  # unseen configurations are compared too
        fitted = pgm.fit(spec, data)
    assert set(reference["cpts"]) == set(spec.nodes)
    for name, ref in reference["cpts"].items():
        node_vars = ref["variables"]
        assert node_vars[0] == name
        evidence = node_vars[1:]
        assert sorted(evidence) == sorted(spec.nodes[name].parents)
        cards = [len(ref["states"][v]) for v in node_vars]
        values = np.asarray(ref["values"]).reshape(cards)  # (node, *evidence in pgmpy's order)
        # move to pgm's layout (*parents in declared order, node), matching states by label
        order = [node_vars.index(p) for p in spec.nodes[name].parents] + [0]
        values = np.transpose(values, order)
        for axis, var in enumerate([*spec.nodes[name].parents, name]):
            perm = [ref["states"][var].index(label) for label in spec.nodes[var].labels]
            values = np.take(values, perm, axis=axis)
        np.testing.assert_allclose(cpt(fitted, name), values.reshape(-1, cards[0]), **EXACT, err_msg=name)
