"""Fitted files edited by hand: every broken ``params:`` block is a ``pgm.ModelError`` on ``pgm.load``.

Each case starts from a file that ``pgm`` itself wrote (and that loads), changes one thing in
its ``params:`` block, and checks that loading names the file and the place (``params.<key>``
or ``params.<key>.<field>``) and says what is wrong.  Nothing else may escape: no numpy
error, no silent acceptance of text, booleans, NaN or a covariance that is not one.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import pgm
from pgm.io.yaml_text import dump_spec_yaml

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"

DIAG = """\
name: diag
graph: directed
nodes:
  z: {states: 2}
  x: {type: gaussian, dim: 2, parents: [z], covariance: diag}
"""


def _frames(rng: np.random.Generator) -> dict[str, tuple[Path | str, pd.DataFrame]]:
    n = 200
    z = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 2)) + 4.0 * z[:, None]
    soil = rng.choice(["poor", "rich"], n)
    rain, temp = rng.normal(size=n), rng.normal(size=n)
    growth = rain + 0.5 * temp + rng.normal(size=n)
    yld = np.where(soil == "rich", 2.0, 1.0) * growth + rng.normal(size=n)
    lg = pd.DataFrame({"soil": soil, "rainfall": rain, "temperature": temp, "growth": growth,
                       "yield": yld, "price": -yld + rng.normal(size=n)})
    dose = rng.normal(size=n)
    exposed = rng.integers(0, 2, n)
    symptom = (rng.random(n) < 1 / (1 + np.exp(-(dose + exposed)))).astype(int)
    sig = pd.DataFrame({"dose": dose, "exposed": exposed, "symptom": symptom,
                        "positive": (rng.random(n) < 0.3 + 0.4 * symptom).astype(int)})
    sprinkler = pd.DataFrame({c: rng.choice(s, n) for c, s in
                              (("cloudy", ["yes", "no"]), ("sprinkler", ["on", "off"]), ("rain", ["yes", "no"]),
                               ("wet_grass", ["yes", "no"]))})
    zz = rng.integers(0, 2, n)
    diag = pd.DataFrame({"z": zz, "x[0]": rng.normal(size=n) + zz, "x[1]": rng.normal(size=n) * (1 + zz)})
    pairwise = pd.DataFrame({"a": rng.choice(["low", "mid", "high"], n), "b": rng.choice(["off", "on"], n),
                             "c": rng.choice(["low", "mid", "high"], n), "d": rng.choice(["off", "on"], n),
                             "e": rng.choice(["low", "mid", "high"], n)})
    return {"table": (MODELS / "sprinkler.yaml", sprinkler), "gmm": (MODELS / "gmm.yaml",
                                                                       pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})),
            "linear": (MODELS / "linear_gaussian.yaml", lg), "logistic": (MODELS / "sigmoid_belief.yaml", sig),
            "diag": (DIAG, diag), "undirected": (MODELS / "pairwise_table.yaml", pairwise)}


@pytest.fixture(scope="module")
def fitted_data(tmp_path_factory) -> dict[str, dict]:
    """The plain data (as YAML reads it) of one fitted file per kind of node, written by pgm."""
    tmp = tmp_path_factory.mktemp("fitted")
    out = {}
    for kind, (model, frame) in _frames(np.random.default_rng(0)).items():
        if isinstance(model, str):
            (tmp / f"{kind}.yaml").write_text(model)
            model = tmp / f"{kind}.yaml"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unseen configurations, convergence: not the point here
            fitted = pgm.fit(pgm.load(model), frame, max_iter=50)
        path = tmp / f"{kind}.fitted.yaml"
        fitted.save(path)
        out[kind] = yaml.safe_load(path.read_text())
    return out


def _set(path: tuple, value):
    """An edit that sets params[path...] = value."""
    def edit(params):
        node = params
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(path: tuple):
    def edit(params):
        node = params
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


def _apply(fn):
    """An edit that replaces params[path] by fn(old value)."""
    def make(path: tuple):
        def edit(params):
            node = params
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = fn(copy.deepcopy(node[path[-1]]))
        return edit
    return make


def _cell(path: tuple, index: tuple, value):
    def edit(params):
        node = params
        for key in path:
            node = node[key]
        for i in index[:-1]:
            node = node[i]
        node[index[-1]] = value
    return edit


def _transpose_break(cov):
    cov[0][0][1] = cov[0][0][1] + 0.5  # one matrix no longer equals its transpose
    return cov


def _not_pd(cov):
    cov[1] = [[1.0, 5.0], [5.0, 1.0]]  # symmetric, eigenvalues 6 and -4
    return cov


# (id, kind, edit, the place named, what the message says)
CASES = [
    # table CPDs
    ("table-row-sums-above-one", "table", _set(("cloudy", "table"), [0.445, 0.655]), "params.cloudy.table", "sums to 1.1"),
    ("table-second-row-sums-below-one", "table", _cell(("sprinkler", "table"), (1, 0), 0.1),
     "params.sprinkler.table", "row 1 sums to"),
    ("table-negative", "table", _set(("cloudy", "table"), [-0.5, 1.5]), "params.cloudy.table", "[0, 1]"),
    ("table-nan", "table", _set(("cloudy", "table"), [math.nan, 0.5]), "params.cloudy.table", "finite"),
    ("table-inf", "table", _set(("cloudy", "table"), [math.inf, 0.0]), "params.cloudy.table", "finite"),
    ("table-text", "table", _set(("cloudy", "table"), ["abc", 0.5]), "params.cloudy.table", "expected numbers"),
    ("table-numeric-text", "table", _set(("cloudy", "table"), ["0.5", "0.5"]), "params.cloudy.table", "expected numbers"),
    ("table-booleans", "table", _set(("cloudy", "table"), [True, False]), "params.cloudy.table", "expected numbers"),
    ("table-null-cell", "table", _set(("cloudy", "table"), [None, 1.0]), "params.cloudy.table", "expected numbers"),
    ("table-too-long", "table", _set(("cloudy", "table"), [0.4, 0.6, 0.0]), "params.cloudy.table", "expected shape (2,)"),
    ("table-extra-axis", "table", _set(("cloudy", "table"), [[0.4, 0.6]]), "params.cloudy.table", "expected shape (2,)"),
    ("table-scalar", "table", _set(("cloudy", "table"), 0.5), "params.cloudy.table", "expected shape (2,)"),
    ("table-missing-row", "table", _apply(lambda t: t[:1])(("sprinkler", "table")), "params.sprinkler.table",
     "expected shape (2, 2)"),
    ("table-ragged", "table", _set(("sprinkler", "table"), [[0.5, 0.5], [1.0]]), "params.sprinkler.table",
     "expected numbers"),
    ("table-mapping", "table", _set(("cloudy", "table"), {"yes": 0.5, "no": 0.5}), "params.cloudy.table",
     "expected numbers"),
    ("table-unknown-field", "table", _set(("cloudy", "wibble"), 1), "params.cloudy.wibble", "unknown parameter"),
    ("table-field-typo", "table", lambda p: p["cloudy"].update(tabel=p["cloudy"].pop("table")),
     "params.cloudy.tabel", "unknown parameter"),
    ("unknown-node-key", "table", lambda p: p.update(cloudyy=p.pop("cloudy")), "params.cloudyy", "no node or tie"),
    ("missing-node-block", "table", _delete(("rain",)), "params.rain", "missing"),
    ("block-is-a-list", "table", _set(("cloudy",), [0.5, 0.5]), "params.cloudy", "expected a mapping"),
    ("block-is-null", "table", _set(("cloudy",), None), "params.cloudy", "expected a mapping"),
    # gaussian nodes with a full covariance per component
    ("full-negative-variance", "gmm", _cell(("x", "covariance"), (0, 0, 0), -1.0), "params.x.covariance",
     "not positive definite"),
    ("full-not-symmetric", "gmm", _apply(_transpose_break)(("x", "covariance")), "params.x.covariance",
     "not symmetric"),
    ("full-not-positive-definite", "gmm", _apply(_not_pd)(("x", "covariance")), "params.x.covariance",
     "not positive definite"),
    ("full-zero-matrix", "gmm", _cell(("x", "covariance"), (2,), [[0.0, 0.0], [0.0, 0.0]]), "params.x.covariance",
     "not positive definite"),
    ("full-wrong-shape", "gmm", _cell(("x", "covariance"), (0,), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
     "params.x.covariance", "expected numbers"),
    ("full-covariance-scalar", "gmm", _set(("x", "covariance"), 1.0), "params.x.covariance", "expected shape (3, 2, 2)"),
    ("mean-wrong-shape", "gmm", _cell(("x", "intercept"), (0,), [0.0]), "params.x.intercept", "expected numbers"),
    ("mean-nan", "gmm", _cell(("x", "intercept"), (1, 0), math.nan), "params.x.intercept", "finite"),
    ("mean-text", "gmm", _cell(("x", "intercept"), (1, 0), "mean"), "params.x.intercept", "expected numbers"),
    ("covariance-inf", "gmm", _cell(("x", "covariance"), (1, 1, 1), math.inf), "params.x.covariance", "finite"),
    ("gaussian-unknown-field", "gmm", _set(("x", "mean"), [0.0, 0.0]), "params.x.mean", "unknown parameter"),
    ("mixing-weights-sum", "gmm", _set(("z", "table"), [0.5, 0.5, 0.5]), "params.z.table", "sums to 1.5"),
    # diagonal covariances
    ("diag-negative-variance", "diag", _cell(("x", "covariance"), (1, 0), -0.5), "params.x.covariance",
     "not positive definite"),
    ("diag-zero-variance", "diag", _cell(("x", "covariance"), (0, 1), 0.0), "params.x.covariance",
     "not positive definite"),
    ("diag-full-matrix-given", "diag", _set(("x", "covariance"), [[[1.0, 0.0], [0.0, 1.0]]] * 2),
     "params.x.covariance", "expected shape (2, 2)"),
    # one-dimensional linear gaussians
    ("variance-negative", "linear", _set(("rainfall", "covariance"), -1.0), "params.rainfall.covariance",
     "not positive definite"),
    ("variance-zero", "linear", _set(("rainfall", "covariance"), 0.0), "params.rainfall.covariance",
     "not positive definite"),
    ("variance-text", "linear", _set(("rainfall", "covariance"), "1.0"), "params.rainfall.covariance",
     "expected numbers"),
    ("coef-too-short", "linear", _apply(lambda c: c[:1])(("growth", "coef")), "params.growth.coef",
     "expected shape (2,)"),
    ("per-config-intercept-scalar", "linear", _set(("yield", "intercept"), 1.0), "params.yield.intercept",
     "expected shape (2,)"),
    ("per-config-variance-negative", "linear", _cell(("yield", "covariance"), (1,), -2.0),
     "params.yield.covariance", "not positive definite"),
    # logistic CPDs
    ("logistic-features-reordered", "logistic", _apply(lambda f: f[::-1])(("symptom", "features")),
     "params.symptom.features", "expected ['exposed=1', 'dose']"),
    ("logistic-features-scalar", "logistic", _set(("symptom", "features"), 3), "params.symptom.features", "expected"),
    ("logistic-coef-ragged", "logistic", _cell(("symptom", "coef"), (1,), [0.1]), "params.symptom.coef",
     "expected numbers"),
    ("logistic-coef-text", "logistic", _cell(("symptom", "coef"), (1, 0), "big"), "params.symptom.coef",
     "expected numbers"),
    ("logistic-intercept-nan", "logistic", _cell(("exposed", "intercept"), (1,), math.nan), "params.exposed.intercept",
     "finite"),
    ("logistic-coef-missing-state", "logistic", _apply(lambda c: c[:1])(("positive", "coef")), "params.positive.coef",
     "expected shape (2, 2)"),
    ("logistic-unknown-field", "logistic", _set(("positive", "bias"), 0.0), "params.positive.bias", "unknown parameter"),
    # undirected models
    ("undirected-unknown-key", "undirected", lambda p: p.update(wibble=1.0), "params.wibble", "unknown key"),
    ("undirected-nan", "undirected", lambda p: p.update({k: math.nan for k in p if not isinstance(p[k], list)}),
     "params.", "non-finite"),
    ("undirected-text", "undirected", _apply(lambda v: [[str(x) for x in row] for row in v])(("clique0",)),
     "params.clique0", "not numbers"),
    ("undirected-booleans", "undirected", _apply(lambda v: [[True for _ in row] for row in v])(("clique0",)),
     "params.clique0", "not numbers"),
    ("undirected-wrong-shape", "undirected", _apply(lambda v: v[:-1])(("clique0",)), "params.clique0", "shape"),
    ("undirected-missing", "undirected", _delete(("clique1",)), "params.clique1", "missing"),
]


def test_enough_cases():
    assert len(CASES) >= 50
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("kind", ["table", "gmm", "diag", "linear", "logistic", "undirected"])
def test_unedited_files_load(fitted_data, tmp_path, kind):
    path = tmp_path / "ok.yaml"
    path.write_text(dump_spec_yaml(fitted_data[kind]))
    loaded = pgm.load(path)
    assert type(loaded).__name__ in ("FittedModel", "FittedMarkovNet")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hand_edited_params_are_refused(fitted_data, tmp_path, case):
    _, kind, edit, place, what = case
    data = copy.deepcopy(fitted_data[kind])
    if kind == "undirected" and place == "params.":  # the ising/agreement weights are floats
        assert any(not isinstance(v, list) for v in data["params"].values())
    edit(data["params"])
    path = tmp_path / "edited.fitted.yaml"
    path.write_text(dump_spec_yaml(data))
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert place in message, f"{place!r} not named in: {message}"
    assert what in message, f"{what!r} not in: {message}"
    assert "Traceback" not in message
    assert "\n" not in message  # one problem, one line


def test_every_problem_of_an_undirected_file_is_listed(fitted_data, tmp_path):
    data = copy.deepcopy(fitted_data["undirected"])
    data["params"]["wibble"] = 1.0
    del data["params"]["clique1"]
    path = tmp_path / "two.yaml"
    path.write_text(dump_spec_yaml(data))
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    assert len(info.value.errors) == 2
    assert "params.wibble" in info.value.errors[0] and "params.clique1" in info.value.errors[1]


def test_params_that_are_not_a_mapping(tmp_path):
    base = (MODELS / "sprinkler.yaml").read_text()
    for value in ("3", "[1, 2]", "text"):
        path = tmp_path / "p.yaml"
        path.write_text(base + f"params: {value}\n")
        with pytest.raises(pgm.ModelError) as info:
            pgm.load(path)
        assert f"{path}:" in str(info.value) and "params: input should be a valid dictionary" in str(info.value)


def test_params_for_a_declaration_without_every_node(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text((MODELS / "sprinkler.yaml").read_text() + "params: {}\n")
    with pytest.raises(pgm.ModelError, match=r"params\.cloudy: missing"):
        pgm.load(path)
