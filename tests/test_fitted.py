"""FittedModel: log-likelihood against a hand computation, sampling against the CPDs, exact
save/load round trips, hand-edited parameter blocks refused with the field named, labelled
CPD tables, and BIC/AIC as their formulas (and BIC picking the true structure)."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

TINY = {
    "name": "tiny",
    "nodes": {
        "a": {"states": ["x", "y"]},
        "b": {"states": ["lo", "mid", "hi"], "parents": ["a"]},
        "k": {"states": 2},
        "g": {"type": "gaussian", "parents": ["a", "k"]},
        "h": {"type": "gaussian", "parents": ["b", "g"]},
        "m": {"type": "gaussian", "dim": 2, "parents": ["g"]},
        "s": {"states": [0, 1, 2], "cpd": "logistic", "parents": ["a", "g"]},
    },
    "params": {
        "a": {"table": [0.3, 0.7]},
        "b": {"table": [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]},
        "k": {"table": [0.25, 0.75]},
        "g": {"intercept": [1.0, -1.0, 0.5, 2.0], "covariance": [0.5, 1.0, 2.0, 0.25]},  # configurations (a, k) in C order
        "h": {"intercept": [0.0, 1.0, -2.0], "coef": [[1.5], [-0.5], [0.0]], "covariance": [1.0, 0.2, 3.0]},
        "m": {"intercept": [1.0, -1.0], "coef": [[0.5], [2.0]], "covariance": [[1.0, 0.3], [0.3, 0.5]]},
        "s": {"intercept": [0.0, 0.4, -0.3], "coef": [[0.0, 0.0], [1.0, -0.5], [-0.7, 0.8]], "features": ["a=y", "g"]},
    },
}
TINY_ROWS = pd.DataFrame({
    "a": ["x", "y", "y", "x"], "b": ["mid", "lo", "hi", "hi"], "k": [1, 0, 1, 0],
    "g": [0.3, -1.2, 2.5, 0.0], "h": [0.1, 2.0, -1.0, 0.7],
    "m[0]": [1.2, 0.0, -0.5, 2.0], "m[1]": [0.4, -3.0, 1.0, 0.1], "s": [2, 0, 1, 1],
})


@pytest.fixture
def tiny():
    return FittedModel.from_spec(parse_spec(copy.deepcopy(TINY)))


def hand_row_log_likelihood(row) -> float:
    p = TINY["params"]
    a = ["x", "y"].index(row["a"])
    b = ["lo", "mid", "hi"].index(row["b"])
    k = int(row["k"])
    g, h = row["g"], row["h"]
    total = math.log(p["a"]["table"][a]) + math.log(p["b"]["table"][a][b]) + math.log(p["k"]["table"][k])
    total += stats.norm.logpdf(g, p["g"]["intercept"][2 * a + k], math.sqrt(p["g"]["covariance"][2 * a + k]))
    total += stats.norm.logpdf(h, p["h"]["intercept"][b] + p["h"]["coef"][b][0] * g, math.sqrt(p["h"]["covariance"][b]))
    mean = np.array(p["m"]["intercept"]) + np.array(p["m"]["coef"])[:, 0] * g
    total += stats.multivariate_normal(mean, p["m"]["covariance"]).logpdf([row["m[0]"], row["m[1]"]])
    logits = np.array(p["s"]["intercept"]) + np.array(p["s"]["coef"]) @ [float(a == 1), g]
    total += logits[int(row["s"])] - math.log(np.exp(logits).sum())
    return total


def test_log_likelihood_is_the_sum_of_log_cpd_entries(tiny):
    want = [hand_row_log_likelihood(r) for _, r in TINY_ROWS.iterrows()]
    np.testing.assert_allclose(tiny.row_log_likelihood(TINY_ROWS), want, rtol=1e-13, atol=1e-13)
    assert tiny.log_likelihood(TINY_ROWS) == pytest.approx(sum(want), rel=1e-13)


def test_log_likelihood_of_an_impossible_row_is_minus_infinity():
    model = FittedModel.from_spec(parse_spec({"name": "z", "nodes": {"a": {"states": 2}},
                                              "params": {"a": {"table": [1.0, 0.0]}}}))
    rows = model.row_log_likelihood(pd.DataFrame({"a": [0, 1]}))
    assert rows[0] == 0.0 and rows[1] == -np.inf


def test_sample_frequencies_follow_the_joint(tiny):
    """The discrete joint p(a, b, k) = p(a) p(b | a) p(k) by Pearson's chi-square (12 cells, the
    1e-6 upper quantile of chi-square with 11 degrees of freedom as the bound), and g | a, k by
    its mean and variance within 5 standard errors."""
    n = 60_000
    data = tiny.sample(n, seed=0)
    p = TINY["params"]
    joint = (np.array(p["a"]["table"])[:, None, None] * np.array(p["b"]["table"])[:, :, None]
             * np.array(p["k"]["table"])[None, None, :])
    a = data["a"].cat.codes.to_numpy()
    b = data["b"].cat.codes.to_numpy()
    observed = np.bincount((a * 3 + b) * 2 + data["k"].to_numpy(), minlength=12)
    expected = joint.ravel() * n
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < stats.chi2.isf(1e-6, df=11)
    # g | a, k is normal with the declared moments: per configuration, mean within 5 standard errors
    for (ai, ki), rows in data.groupby([data["a"].cat.codes, data["k"]]):
        mu, var = p["g"]["intercept"][2 * ai + ki], p["g"]["covariance"][2 * ai + ki]
        assert abs(rows["g"].mean() - mu) <= 5 * math.sqrt(var / len(rows))
        assert abs(rows["g"].var() - var) <= 5 * var * math.sqrt(2 / len(rows))


def test_sample_columns_types_and_determinism(tiny):
    data = tiny.sample(500, seed=3)
    assert list(data.columns) == ["a", "k", "b", "g", "h", "m[0]", "m[1]", "s"]  # topological order
    assert isinstance(data["a"].dtype, pd.CategoricalDtype)
    assert list(data["a"].cat.categories) == ["x", "y"]
    assert data["k"].dtype == np.int64 and set(data["k"]) <= {0, 1}
    assert data["g"].dtype == np.float64
    pd.testing.assert_frame_equal(data, tiny.sample(500, seed=3))
    assert not data.equals(tiny.sample(500, seed=4))
    assert len(tiny.sample(0, seed=0)) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refit = pgm.fit(tiny.spec, data)  # a sample is valid data for its own model
    assert set(refit.cpds) == set(tiny.cpds)


@pytest.mark.parametrize("n", [-1, 2.5, "10"])
def test_sample_refuses_a_bad_row_count(tiny, n):
    with pytest.raises(pgm.DataError, match="non-negative integer"):
        tiny.sample(n)


# ---------------------------------------------------------------- save / load

def fitted_models():
    rng = np.random.default_rng(1)
    tiny = FittedModel.from_spec(parse_spec(copy.deepcopy(TINY)))
    yield "tiny", tiny, tiny.sample(400, seed=1)
    for cov in ("full", "diag", "spherical", "tied"):
        spec = parse_spec({"name": f"mv-{cov}", "nodes": {
            "c": {"states": ["p", "q"]}, "u": {"type": "gaussian"},
            "x": {"type": "gaussian", "dim": 3, "parents": ["c", "u"], "covariance": cov},
            "y": {"type": "gaussian", "parents": ["c"], "covariance": cov if cov != "full" else "tied"}}})
        frame = pd.DataFrame({"c": rng.choice(["p", "q"], 300), "u": rng.normal(size=300) * 1e3,
                              **{f"x[{i}]": rng.normal(size=300) / 3.0 for i in range(3)}, "y": rng.normal(size=300)})
        yield cov, pgm.fit(spec, frame), frame
    spec = parse_spec({"name": "tied-plated", "plates": {"p": {"size": 3}}, "nodes": {
        "a": {"states": ["u", "v"], "tie": "coin"}, "b": {"states": ["u", "v"], "tie": "coin"},
        "r": {"states": 3, "parents": ["a"], "plate": "p", "prior": {"dirichlet": 1.0 / 3.0}}}})
    frame = pd.DataFrame({"a": rng.choice(["u", "v"], 200), "b": rng.choice(["u", "v"], 200),
                          **{f"r[{i}]": rng.integers(0, 3, 200) for i in range(3)}})
    yield "tied-plated", pgm.fit(spec, frame), frame


@pytest.mark.parametrize("label, fitted, data", list(fitted_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_save_load_round_trip_is_exact(tmp_path, label, fitted, data):
    path = tmp_path / f"{label}.fitted.yaml"
    fitted.save(path)
    loaded = pgm.load(path)
    assert isinstance(loaded, FittedModel)
    assert loaded.to_params() == fitted.to_params()
    for key, cpd in fitted.cpds.items():
        for field in vars(cpd):
            got, want = getattr(loaded.cpds[key], field), getattr(cpd, field)
            if isinstance(want, np.ndarray):
                np.testing.assert_array_equal(got, want, err_msg=f"{key}.{field}")
    assert loaded.log_likelihood(data) == fitted.log_likelihood(data)  # bit for bit
    np.testing.assert_array_equal(loaded.row_log_likelihood(data), fitted.row_log_likelihood(data))
    # saving the loaded model writes the same file
    again = tmp_path / "again.yaml"
    loaded.save(again)
    assert again.read_text() == path.read_text()


def test_saved_file_is_readable_yaml(tmp_path, tiny):
    path = tmp_path / "tiny.yaml"
    tiny.save(path)
    data = yaml.safe_load(path.read_text())
    assert data["params"]["a"] == {"table": [0.3, 0.7]}
    assert data["params"]["s"]["features"] == ["a=y", "g"]


def test_a_fitted_model_can_be_refitted(tiny):
    data = tiny.sample(300, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pgm.fit(tiny, data).to_params() == pgm.fit(tiny.spec.model_copy(update={"params": None}), data).to_params()


# ---------------------------------------------------------------- hand-edited files

def edited(tmp_path, change) -> str:
    data = copy.deepcopy(TINY)
    change(data["params"])
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    message = str(info.value)
    assert str(path) in message
    return message


def _set(block, field, value):
    def change(params):
        params[block][field] = value
    return change


@pytest.mark.parametrize("change, where, fragment", [
    (_set("b", "table", [[0.2, 0.5, 0.3], [0.6, 0.1, 0.2]]), "params.b.table", "row 1 sums to 0.9"),
    (_set("a", "table", [1.2, -0.2]), "params.a.table", "[0, 1]"),
    (_set("a", "table", [0.3, 0.7, 0.0]), "params.a.table", "expected shape (2,)"),
    (_set("b", "table", [0.2, 0.5, 0.3]), "params.b.table", "expected shape (2, 3)"),
    (_set("a", "table", ["x", "y"]), "params.a.table", "numbers"),
    (_set("g", "covariance", [0.5, -1.0, 2.0, 0.25]), "params.g.covariance", "positive definite"),
    (_set("g", "covariance", [[0.5, 1.0], [2.0, 0.25]]), "params.g.covariance", "expected shape (4,)"),
    (_set("h", "covariance", [1.0, 0.0, 3.0]), "params.h.covariance", "positive definite"),
    (_set("m", "covariance", [[1.0, 0.3], [0.2, 0.5]]), "params.m.covariance", "symmetric"),
    (_set("m", "covariance", [[1.0, 2.0], [2.0, 1.0]]), "params.m.covariance", "positive definite"),
    (_set("m", "covariance", [1.0, 0.5]), "params.m.covariance", "expected shape (2, 2)"),
    (_set("h", "coef", [1.5, -0.5, 0.0]), "params.h.coef", "expected shape (3, 1)"),
    (_set("s", "coef", [[0.0, 0.0], [1.0, -0.5]]), "params.s.coef", "expected shape (3, 2)"),
    (_set("g", "intercept", [1.0, float("nan"), 0.5, 2.0]), "params.g.intercept", "finite"),
    (lambda p: p["h"].pop("covariance"), "params.h", "missing `covariance`"),
    (lambda p: p.pop("k"), "params.k", "missing"),
    (lambda p: p.update(kk={"table": [0.5, 0.5]}), "params.kk", "no node or tie"),
    (lambda p: p.update(a=[0.3, 0.7]), "params.a", "mapping"),
])
def test_hand_edited_parameters_are_refused_naming_the_field(tmp_path, change, where, fragment):
    message = edited(tmp_path, change)
    assert where in message, message
    assert fragment in message, message


# ---------------------------------------------------------------- reading parameters

def test_cpd_tables_are_labelled(tiny):
    a = tiny.cpd("a")
    assert list(a.columns) == ["x", "y"] and a.columns.name == "a"
    np.testing.assert_array_equal(a.to_numpy(), [[0.3, 0.7]])
    b = tiny.cpd("b")
    assert list(b.index) == ["x", "y"] and b.index.names == ["a"]
    assert b.loc["y", "lo"] == 0.6
    g = tiny.cpd("g")
    assert g.index.names == ["a", "k", "output"]
    assert g.loc[("y", "1", "g"), "intercept"] == 2.0 and g.loc[("x", "1", "g"), "cov[g]"] == 1.0
    h = tiny.cpd("h")
    assert list(h.columns) == ["intercept", "g", "cov[h]"]
    assert h.loc[("lo", "h"), "g"] == 1.5
    s = tiny.cpd("s")
    assert list(s.columns) == ["intercept", "a=y", "g"] and list(s.index) == ["0", "1", "2"]
    assert s.loc["2", "g"] == 0.8
    m = tiny.cpd("m")
    assert m.loc["m[1]", "cov[m[0]]"] == 0.3
    with pytest.raises(pgm.ModelError, match="unknown node 'zz'"):
        tiny.cpd("zz")


# ---------------------------------------------------------------- information criteria

def test_bic_and_aic_are_their_formulas(tiny):
    data = tiny.sample(1000, seed=5)
    # free parameters counted by hand: a 1, b 2*2, k 1, g 2*2 means + 4 variances,
    # h 3*(1 + 1) + 3 variances, m 2 + 2 + 3 covariance entries, s 2 * (1 + 2)
    k = 1 + 4 + 1 + 8 + 9 + 7 + 6
    assert tiny.n_params == k
    ll = tiny.log_likelihood(data)
    assert tiny.bic(data) == pytest.approx(-2 * ll + k * math.log(1000), rel=1e-14)
    assert tiny.aic(data) == pytest.approx(-2 * ll + 2 * k, rel=1e-14)


def chain_data(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.4
    b = np.where(a, rng.random(n) < 0.8, rng.random(n) < 0.25)
    c = np.where(b, rng.random(n) < 0.7, rng.random(n) < 0.2)
    return pd.DataFrame({"a": a.astype(int), "b": b.astype(int), "c": c.astype(int)})


def structure(parents):
    return parse_spec({"name": "s", "nodes": {n: {"states": 2, "parents": parents.get(n, [])} for n in "abc"}})


def test_bic_prefers_the_true_structure():
    data = chain_data(5000, seed=6)
    candidates = {
        "true chain a->b->c": structure({"b": ["a"], "c": ["b"]}),
        "empty": structure({}),
        "missing b->c": structure({"b": ["a"]}),
        "extra a->c": structure({"b": ["a"], "c": ["a", "b"]}),
        "reversed c->b->a": structure({"b": ["c"], "a": ["b"]}),  # Markov equivalent: same score
    }
    bic = {name: pgm.fit(spec, data).bic(data) for name, spec in candidates.items()}
    ll = {name: pgm.fit(spec, data).log_likelihood(data) for name, spec in candidates.items()}
    assert bic["true chain a->b->c"] == pytest.approx(bic["reversed c->b->a"], rel=1e-12)
    for name in ("empty", "missing b->c", "extra a->c"):
        assert bic["true chain a->b->c"] < bic[name], (name, bic)
    assert ll["extra a->c"] >= ll["true chain a->b->c"]  # a superset always fits at least as well
