"""Numerical extremes: tiny and certain probabilities, thousands of nodes, a million rows,
gaussian values far from 1, singular covariances, separable data, fits that cannot converge.

What is guaranteed (docs/robustness.md lists the floors):

* likelihoods and posteriors are computed in log space: a row whose probability is 1e-300
  per node over 2000 nodes has log-likelihood ~ -1.4e6, not -inf, and a posterior that
  linear arithmetic would underflow sums to one;
* a row the model gives probability exactly 0 has log-likelihood -inf, with a ``DataWarning``
  naming the row (a prior keeps every probability above 0);
* a gaussian cell beyond +-1e150 (``pgm.encode.MAX_ABS_GAUSSIAN``) is a ``DataError`` naming the
  column and rows: squares of such values overflow float64; up to that bound fits are finite;
* a (nearly) zero variance, a constant column or collinear columns, is floored at 1e-9 times the
  data scale with a ``DataWarning`` (fits without ``reg_covar``); EM adds ``reg_covar=1e-6``;
* a logistic CPD on separable data and an iterative fit stopped at ``max_iter`` warn with
  ``pgm.ConvergenceWarning`` and return finite parameters, never NaN.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.io.yaml_text import dump_spec_yaml

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def all_finite_params(fitted) -> bool:
    for block in fitted.to_params().values():
        for value in (block.values() if isinstance(block, dict) else [block]):
            if isinstance(value, list) and value and isinstance(value[0], str):
                continue
            if not np.all(np.isfinite(np.asarray(value, dtype=float))):
                return False
    return True


def write_model(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return pgm.load(path)


# --------------------------------------------------------------------------- probabilities near 0 and 1
def _chain_yaml(n: int, params: bool = False, p_flip: float = 1e-300) -> dict:
    nodes = {f"n{i}": ({"states": 2} if i == 0 else {"states": 2, "parents": [f"n{i - 1}"]}) for i in range(n)}
    data: dict = {"name": "chain", "graph": "directed", "nodes": nodes}
    if params:
        stay = 1.0 - p_flip  # 1 - 1e-300 == 1.0 in float64: rows still sum to one
        data["params"] = {"n0": {"table": [0.5, 0.5]}, **{f"n{i}": {"table": [[stay, p_flip], [p_flip, stay]]}
                                                        for i in range(1, n)}}
    return data


def test_two_thousand_improbable_transitions_stay_finite(tmp_path):
    """Every row flips state at every one of 1999 links, each of probability 1e-300:
    p(row) = 0.5 * 1e-300^1999, far below the smallest float; log p is exact."""
    path = tmp_path / "chain.fitted.yaml"
    path.write_text(dump_spec_yaml(_chain_yaml(2000, params=True)))
    fitted = pgm.load(path)
    alternating = pd.DataFrame([[i % 2 for i in range(2000)], [(i + 1) % 2 for i in range(2000)]],
                               columns=[f"n{i}" for i in range(2000)])
    rows = fitted.row_log_likelihood(alternating)
    expected = math.log(0.5) + 1999 * math.log(1e-300)
    assert np.all(np.isfinite(rows))
    assert rows == pytest.approx([expected, expected], rel=1e-12)
    constant = pd.DataFrame([[0] * 2000], columns=alternating.columns)
    assert fitted.log_likelihood(constant) == pytest.approx(math.log(0.5) + 1999 * math.log1p(-1e-300))


def test_denormal_and_certain_probabilities(tmp_path):
    path = tmp_path / "tiny.yaml"
    spec = {"name": "tiny", "graph": "directed",
            "nodes": {"a": {"states": ["rare", "common"]}, "b": {"states": [0, 1], "parents": ["a"]}},
            "params": {"a": {"table": [5e-324, 1.0]}, "b": {"table": [[1e-300, 1.0], [0.5, 0.5]]}}}
    path.write_text(dump_spec_yaml(spec))
    fitted = pgm.load(path)
    rare = pd.DataFrame({"a": ["rare"], "b": [0]})
    ll = fitted.log_likelihood(rare)
    assert ll == pytest.approx(math.log(5e-324) + math.log(1e-300))
    post = fitted.query("a", evidence={"b": "0"})  # p(rare, b=0) = 5e-324 * 1e-300 underflows: 0, not NaN
    assert np.all(np.isfinite(post)) and post.sum() == pytest.approx(1.0) and post["common"] == 1.0
    sample = fitted.sample(1000, seed=0)
    assert set(sample["a"]) == {"common"}


def test_a_row_of_probability_zero_is_minus_inf_with_a_warning(tmp_path):
    sprinkler = pgm.load(MODELS / "sprinkler.yaml")
    seen = pd.DataFrame({"cloudy": ["yes"] * 9 + ["no"], "sprinkler": ["on"] * 10, "rain": ["yes"] * 10,
                         "wet_grass": ["yes"] * 10})
    fitted = quiet(pgm.fit, sprinkler, seen)
    unseen = pd.DataFrame({"cloudy": ["yes", "no"], "sprinkler": ["on", "off"], "rain": ["yes", "no"],
                           "wet_grass": ["yes", "no"]}, index=["a", "b"])
    with pytest.warns(pgm.DataWarning, match=r"1 row \(row b\) has probability 0 under the model"):
        rows = fitted.row_log_likelihood(unseen)
    assert np.isfinite(rows[0]) and rows[1] == -math.inf
    with pytest.warns(pgm.DataWarning, match="prior"):
        assert fitted.log_likelihood(unseen) == -math.inf
    smoothed = pgm.fit(sprinkler, seen, prior={"dirichlet": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(smoothed.log_likelihood(unseen))


# --------------------------------------------------------------------------- thousands of nodes
N_NODES = 2000


def test_a_chain_of_two_thousand_nodes(tmp_path):
    spec = write_model(tmp_path, "chain", dump_spec_yaml(_chain_yaml(N_NODES)))
    rng = np.random.default_rng(0)
    n = 300
    x = np.zeros((n, N_NODES), dtype=np.int8)
    x[:, 0] = rng.integers(0, 2, n)
    flips = rng.random((n, N_NODES)) < 0.01
    for i in range(1, N_NODES):
        x[:, i] = x[:, i - 1] ^ flips[:, i]
    data = pd.DataFrame(x, columns=[f"n{i}" for i in range(N_NODES)])
    start = time.perf_counter()
    fitted = quiet(pgm.fit, spec, data)
    ll = fitted.log_likelihood(data)
    assert time.perf_counter() - start < 60
    assert np.isfinite(ll) and ll < 0
    assert all_finite_params(fitted)
    # the flip probability of the links is learned (averaged over the 1999 links)
    flip = np.mean([fitted.cpds[f"n{i}"].probs[[0, 1], [1, 0]] for i in range(1, N_NODES)])
    assert flip == pytest.approx(0.01, abs=0.002)


def _naive_bayes(n_children: int, latent: bool) -> str:
    children = "\n".join(f"  c{i}: {{states: 2, parents: [y]}}" for i in range(n_children))
    flag = ", latent: true" if latent else ""
    return f"name: nb\ngraph: directed\nnodes:\n  y: {{states: 2{flag}}}\n{children}\n"


def _nb_data(n: int, n_children: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.random((n, n_children)) < np.where(y[:, None] == 1, 0.8, 0.2)).astype(np.int8)
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(n_children)])
    frame["y"] = y
    return frame


def test_naive_bayes_with_two_thousand_children(tmp_path):
    """Each row's class likelihood is a product of 2000 factors (~1e-1000 in linear space)."""
    spec = write_model(tmp_path, "nb", _naive_bayes(N_NODES, latent=False))
    data = _nb_data(300, N_NODES)
    start = time.perf_counter()
    fitted = pgm.fit(spec, data)
    ll = fitted.row_log_likelihood(data)
    assert time.perf_counter() - start < 60
    assert np.all(np.isfinite(ll)) and ll.max() < -500
    post = fitted.query("y", evidence={f"c{i}": str(v) for i, v in enumerate(data.iloc[0, :N_NODES])})
    assert np.all(np.isfinite(post)) and post.sum() == pytest.approx(1.0)
    assert post.idxmax() == str(data["y"].iloc[0])


def test_latent_class_with_two_thousand_children_by_em(tmp_path):
    spec = write_model(tmp_path, "nbl", _naive_bayes(N_NODES, latent=True))
    data = _nb_data(200, N_NODES).drop(columns="y")
    start = time.perf_counter()
    fitted = quiet(pgm.fit, spec, data, max_iter=4)
    assert time.perf_counter() - start < 90
    assert np.all(np.isfinite(fitted.history)) and np.all(np.diff(fitted.history) >= -1e-6 * abs(fitted.history[-1]))
    post = fitted.posterior("y", data).to_numpy()
    assert np.all(np.isfinite(post)) and np.allclose(post.sum(axis=1), 1.0)
    assert np.isfinite(fitted.log_likelihood(data))


# --------------------------------------------------------------------------- a million rows
@pytest.mark.slow
def test_a_million_discrete_rows():
    truth = quiet(pgm.fit, pgm.load(MODELS / "asia.yaml"),
                  pd.DataFrame({n: np.random.default_rng(i).choice(["yes", "no"], 50)
                                for i, n in enumerate(pgm.load(MODELS / "asia.yaml").nodes)}),
                  prior={"dirichlet": 1})
    data = truth.sample(1_000_000, seed=1)
    start = time.perf_counter()
    fitted = pgm.fit(truth.spec, data)
    ll = fitted.log_likelihood(data)
    assert time.perf_counter() - start < 120
    assert np.isfinite(ll) and ll / 1e6 > -20
    assert ll >= truth.log_likelihood(data) - 1e-6 * abs(ll)  # the MLE is at least as likely as the truth


@pytest.mark.slow
def test_a_million_gaussian_rows_with_a_mixture():
    rng = np.random.default_rng(2)
    z = rng.integers(0, 3, 1_000_000)
    x = rng.normal(size=(1_000_000, 2)) + 5.0 * z[:, None]
    data = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    start = time.perf_counter()
    fitted = quiet(pgm.fit, pgm.load(MODELS / "gmm.yaml"), data, max_iter=10)
    ll = fitted.log_likelihood(data)
    assert time.perf_counter() - start < 180
    assert np.isfinite(ll) and all_finite_params(fitted)
    assert np.all(np.diff(fitted.history) >= -1e-9 * abs(ll))


# --------------------------------------------------------------------------- gaussian values far from 1
LG_COLUMNS = ["rainfall", "temperature", "growth", "yield", "price"]


def lg_frame(scale: float, n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {c: np.clip(rng.normal(size=n), -1, 1) * scale for c in LG_COLUMNS}
    return pd.DataFrame({"soil": rng.choice(["poor", "rich"], n), **cols})


@pytest.mark.parametrize("scale", [1e300, -1e300, 1e200, 1.7976931348623157e308])
def test_gaussian_values_near_1e300_are_a_clear_data_error(scale):
    spec = pgm.load(MODELS / "linear_gaussian.yaml")
    data = lg_frame(scale)
    with pytest.raises(pgm.DataError) as info:
        pgm.fit(spec, data)
    message = str(info.value)
    assert message.startswith("column 'rainfall':") and "beyond +-1e+150" in message
    assert "rescale the column" in message and "row 0:" in message


def test_one_huge_cell_in_scoring_data_is_a_data_error():
    spec = pgm.load(MODELS / "gmm.yaml")
    data = pd.DataFrame({"x[0]": [0.0, 1.0, 5.0, 6.0], "x[1]": [0.0, 1.0, 5.0, 6.0]})
    fitted = quiet(pgm.fit, spec, data, max_iter=5)
    bad = data.copy()
    bad.loc[2, "x[1]"] = 3e300
    with pytest.raises(pgm.DataError, match=r"column 'x\[1\]': 1 value beyond \+-1e\+150 .*row 2: 3e\+300"):
        fitted.log_likelihood(bad)


@pytest.mark.parametrize("scale", [1e150, -1e150, 1e100, 1e-100, 1e-300])
def test_gaussian_values_up_to_the_bound_give_finite_answers(scale):
    spec = pgm.load(MODELS / "linear_gaussian.yaml")
    data = lg_frame(scale)
    fitted = quiet(pgm.fit, spec, data)
    assert all_finite_params(fitted)
    rows = fitted.row_log_likelihood(data)
    assert np.all(np.isfinite(rows))


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_a_mixture_at_extreme_scales_is_finite(scale):
    rng = np.random.default_rng(3)
    x = np.clip(np.r_[rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 4] / 8, -1, 1) * scale
    data = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    fitted = quiet(pgm.fit, pgm.load(MODELS / "gmm.yaml"), data, max_iter=20)
    assert all_finite_params(fitted)
    assert np.all(np.isfinite(fitted.history)) and np.isfinite(fitted.log_likelihood(data))


# --------------------------------------------------------------------------- singular covariances
MVN = "name: mvn\ngraph: directed\nnodes:\n  x: {type: gaussian, dim: 3}\n"


@pytest.mark.parametrize("case", ["constant-column", "collinear-columns", "all-constant", "one-row"])
def test_singular_full_covariance_is_floored_with_a_warning(tmp_path, case):
    spec = write_model(tmp_path, "mvn", MVN)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3))
    x = {"constant-column": np.c_[x[:, :2], np.full(100, 7.0)],
         "collinear-columns": np.c_[x[:, :2], 2 * x[:, 0] - x[:, 1]],
         "all-constant": np.ones((100, 3)),
         "one-row": x[:1]}[case]
    data = pd.DataFrame(x, columns=["x[0]", "x[1]", "x[2]"])
    with pytest.warns(pgm.DataWarning, match=r"x: a variance is \(nearly\) zero .* floored at 1e-9"):
        fitted = pgm.fit(spec, data)
    assert np.all(np.linalg.eigvalsh(fitted.cpds["x"].cov) > 0)
    assert np.all(np.isfinite(fitted.row_log_likelihood(data)))


def test_constant_columns_in_a_linear_gaussian_network():
    spec = pgm.load(MODELS / "linear_gaussian.yaml")
    data = lg_frame(1.0).assign(rainfall=3.0, price=-1.0)
    with pytest.warns(pgm.DataWarning, match="floored") as record:
        fitted = pgm.fit(spec, data)
    assert {str(w.message).split(":")[0] for w in record if "floored" in str(w.message)} == {"rainfall", "price"}
    assert np.all(np.isfinite(fitted.row_log_likelihood(data)))
    exact_child = lg_frame(1.0).pipe(lambda d: d.assign(growth=2 * d.rainfall - d.temperature))
    with pytest.warns(pgm.DataWarning, match="growth: a variance is"):
        fitted = pgm.fit(spec, exact_child)
    assert np.all(np.isfinite(fitted.row_log_likelihood(exact_child)))


@pytest.mark.parametrize("case", ["constant-column", "identical-rows", "two-rows"])
def test_a_mixture_on_degenerate_data_is_finite(case):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 2))
    x = {"constant-column": np.c_[x[:, 0], np.full(120, 2.0)], "identical-rows": np.ones((120, 2)),
         "two-rows": x[:2]}[case]
    data = pd.DataFrame(x, columns=["x[0]", "x[1]"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted = pgm.fit(pgm.load(MODELS / "gmm.yaml"), data, max_iter=30)
    assert any(issubclass(w.category, pgm.DataWarning) for w in record), [str(w.message) for w in record]
    assert all_finite_params(fitted)
    assert np.all(np.isfinite(fitted.history)) and np.isfinite(fitted.log_likelihood(data))


# --------------------------------------------------------------------------- fits that cannot converge
def _sigmoid_data(n: int = 200, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dose = rng.normal(size=n)
    return pd.DataFrame({"dose": dose, "exposed": rng.integers(0, 2, n), "symptom": (dose > 0).astype(int),
                         "positive": rng.integers(0, 2, n)})


@pytest.mark.parametrize("case", ["separable-on-a-gaussian", "copy-of-a-parent", "constant-node"])
def test_a_logistic_cpd_on_separable_data_warns_and_stays_finite(case):
    data = _sigmoid_data()
    data = {"separable-on-a-gaussian": data, "copy-of-a-parent": data.assign(positive=data.symptom),
            "constant-node": data.assign(exposed=1)}[case]
    with pytest.warns(pgm.ConvergenceWarning, match="no unique finite optimum"):
        fitted = pgm.fit(pgm.load(MODELS / "sigmoid_belief.yaml"), data)
    assert all_finite_params(fitted)
    rows = fitted.row_log_likelihood(data)
    assert not np.any(np.isnan(rows)) and np.all(np.isfinite(rows))


def test_em_that_cannot_converge_in_max_iter_says_so():
    rng = np.random.default_rng(7)
    x = np.r_[rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 0.7]
    data = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    with pytest.warns(pgm.ConvergenceWarning, match="EM did not converge in 3 iterations"):
        fitted = pgm.fit(pgm.load(MODELS / "gmm.yaml"), data, max_iter=3)
    assert fitted.info["converged"] is False and len(fitted.history) == 4  # the start + 3 updates
    assert np.all(np.diff(fitted.history) >= -1e-9 * abs(fitted.history[-1])) and all_finite_params(fitted)


def test_discrete_em_that_cannot_converge_in_max_iter_says_so():
    rng = np.random.default_rng(8)
    data = pd.DataFrame({f"q{i}": rng.integers(0, 3, 300) for i in range(1, 9)})
    with pytest.warns(pgm.ConvergenceWarning, match="EM did not converge in 2 iterations"):
        fitted = pgm.fit(pgm.load(MODELS / "latent_class.yaml"), data, max_iter=2)
    assert np.isfinite(fitted.log_likelihood(data))


@pytest.mark.parametrize("learner", ["lbfgs", "gradient", "coordinate", "pseudo"])
def test_undirected_fits_stopped_early_say_so(learner):
    rng = np.random.default_rng(9)
    data = pd.DataFrame({f"s{i}{j}": rng.choice([-1, 1], 80) for i in range(3) for j in range(3)})
    with pytest.warns(pgm.ConvergenceWarning, match=f"learner='{learner}' stopped at max_iter=1"):
        fitted = pgm.fit(pgm.load(MODELS / "ising_3x3.yaml"), data, learner=learner, max_iter=1)
    assert np.isfinite(fitted.log_likelihood(data))


def test_undirected_fit_on_identical_rows_is_finite():
    data = pd.DataFrame({f"s{i}{j}": [1] * 40 for i in range(3) for j in range(3)})
    fitted = quiet(pgm.fit, pgm.load(MODELS / "ising_3x3.yaml"), data)
    assert np.all(np.isfinite(fitted.theta))
    ll = fitted.log_likelihood(data)
    assert np.isfinite(ll) and ll <= 0


@pytest.mark.parametrize("n", [10 ** 10, 10 ** 22])
def test_absurd_sample_sizes_are_refused_before_allocating(n):
    fitted = quiet(pgm.fit, pgm.load(MODELS / "sprinkler.yaml"),
                   pd.DataFrame({"cloudy": ["yes", "no"], "sprinkler": ["on", "off"], "rain": ["yes", "no"],
                                 "wet_grass": ["yes", "no"]}))
    with pytest.raises(pgm.DataError, match=r"rows is more than one call samples \(limit 1e\+09\)"):
        fitted.sample(n)
    with pytest.raises(pgm.PGMError, match="seed must be None or a whole number >= 0, got -1"):
        fitted.sample(3, seed=-1)
    markov = quiet(pgm.fit, pgm.load(MODELS / "ising_3x3.yaml"),
                   pd.DataFrame({f"s{i}{j}": [1, -1] for i in range(3) for j in range(3)}))
    with pytest.raises(pgm.DataError, match="limit 1e\\+09"):
        markov.sample(n)
