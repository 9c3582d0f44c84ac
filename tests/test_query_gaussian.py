"""fitted.query on gaussian nodes: a linear-Gaussian network (given its discrete parents) is jointly
Gaussian, so a query answers the conditional mean and covariance, checked against numpy
conditioning of the joint written out by hand."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import yaml

import pgm
from pgm.cli import main
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

CHAIN = """
name: lg3
nodes:
  a: {type: gaussian}
  b: {type: gaussian, parents: [a]}
  c: {type: gaussian, parents: [a, b]}
params:
  a: {intercept: 1.0, covariance: 2.0}
  b: {intercept: -0.5, coef: [0.8], covariance: 1.5}
  c: {intercept: 0.3, coef: [1.2, -0.7], covariance: 0.5}
"""

MIXED = """
name: clg
nodes:
  s: {states: [lo, hi]}
  u: {type: gaussian, dim: 2, parents: [s]}
  v: {type: gaussian, parents: [s, u]}
  w: {type: gaussian, dim: 2, parents: [v], covariance: diag}
params:
  s: {table: [0.3, 0.7]}
  u:
    intercept: [[0.0, 1.0], [2.0, -1.0]]
    covariance: [[[1.0, 0.3], [0.3, 2.0]], [[0.5, -0.1], [-0.1, 0.8]]]
  v:
    intercept: [0.5, -0.5]
    coef: [[1.0, -2.0], [0.4, 0.6]]
    covariance: [0.7, 1.3]
  w:
    intercept: [1.0, 2.0]
    coef: [[0.9], [-1.1]]
    covariance: [0.4, 0.6]
"""


def fitted(text: str) -> FittedModel:
    return FittedModel.from_spec(parse_spec(yaml.safe_load(text)))


def condition(mean, cov, hid, obs, x):
    """numpy Gaussian conditioning: mean and covariance of the components hid given obs = x."""
    gain = cov[np.ix_(hid, obs)] @ np.linalg.inv(cov[np.ix_(obs, obs)])
    return mean[hid] + gain @ (x - mean[obs]), cov[np.ix_(hid, hid)] - gain @ cov[np.ix_(obs, hid)]


def chain_joint():
    """[a, b, c] written out: b = -0.5 + 0.8 a + e_b, c = 0.3 + 1.2 a - 0.7 b + e_c."""
    ma = 1.0
    mb = -0.5 + 0.8 * ma
    mc = 0.3 + 1.2 * ma - 0.7 * mb
    vaa = 2.0
    vab = 0.8 * vaa
    vbb = 0.8 ** 2 * vaa + 1.5
    vac = 1.2 * vaa - 0.7 * vab
    vbc = 1.2 * vab - 0.7 * vbb
    vcc = 1.2 ** 2 * vaa + 0.7 ** 2 * vbb - 2 * 1.2 * 0.7 * vab + 0.5
    return np.array([ma, mb, mc]), np.array([[vaa, vab, vac], [vab, vbb, vbc], [vac, vbc, vcc]])


@pytest.mark.parametrize("query, given", [(["a"], {"c": 1.0}), (["a", "b"], {"c": 2.0}), (["b"], {}),
                                          (["c"], {"a": -1.0}), (["c", "a"], {"b": 0.25})])
def test_chain_query_is_numpy_conditioning(query, given):
    mean, cov = chain_joint()
    pos = {"a": 0, "b": 1, "c": 2}
    hid, obs = [pos[q] for q in query], [pos[g] for g in given]
    want_mean, want_cov = condition(mean, cov, hid, obs, np.array(list(given.values()), dtype=float)) \
        if given else (mean[hid], cov[np.ix_(hid, hid)])
    got = fitted(CHAIN).query(query, given)
    assert list(got.index) == query
    assert list(got.columns) == ["mean"] + [f"cov[{q}]" for q in query]
    np.testing.assert_allclose(got["mean"].to_numpy(), want_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), want_cov, rtol=1e-12, atol=1e-12)


def mixed_joint(s: int):
    """[u0, u1, v, w0, w1] given s, by the linear-Gaussian recursion written for this network."""
    mu_u = np.array([[0.0, 1.0], [2.0, -1.0]])[s]
    su = np.array([[[1.0, 0.3], [0.3, 2.0]], [[0.5, -0.1], [-0.1, 0.8]]])[s]
    bv, wv, sv = [0.5, -0.5][s], np.array([[1.0, -2.0], [0.4, 0.6]])[s], [0.7, 1.3][s]
    bw, ww, sw = np.array([1.0, 2.0]), np.array([0.9, -1.1]), np.diag([0.4, 0.6])
    # x = B x + b + e, in the order u0, u1, v, w0, w1
    big_b = np.zeros((5, 5))
    big_b[2, :2] = wv
    big_b[3:, 2] = ww
    b = np.r_[mu_u, bv, bw]
    psi = np.zeros((5, 5))
    psi[:2, :2], psi[2, 2], psi[3:, 3:] = su, sv, sw
    inv = np.linalg.inv(np.eye(5) - big_b)
    return inv @ b, inv @ psi @ inv.T


def test_multidimensional_query_with_an_observed_discrete_parent_and_partial_evidence():
    model = fitted(MIXED)
    mean, cov = mixed_joint(1)
    # u and v given s=hi and w = (0.5, nan): only w[0] observed
    got = model.query(["u", "v"], {"s": "hi", "w": [0.5, np.nan]})
    want_mean, want_cov = condition(mean, cov, [0, 1, 2], [3], np.array([0.5]))
    assert list(got.index) == ["u[0]", "u[1]", "v"]
    np.testing.assert_allclose(got["mean"].to_numpy(), want_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[["cov[u[0]]", "cov[u[1]]", "cov[v]"]].to_numpy(), want_cov, rtol=1e-12, atol=1e-12)
    # w given s=lo and v = 2: only the recursion below v
    mean, cov = mixed_joint(0)
    got = model.query("w", {"s": "lo", "v": 2.0})
    want_mean, want_cov = condition(mean, cov, [3, 4], [2], np.array([2.0]))
    np.testing.assert_allclose(got["mean"].to_numpy(), want_mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), want_cov, rtol=1e-12, atol=1e-12)


def test_a_query_by_sampling_agrees():
    """An independent check of the whole chain: conditional moments from many samples near c = 1."""
    model = fitted(CHAIN)
    rows = model.sample(400_000, seed=3)
    near = rows[np.abs(rows["c"] - 1.0) < 0.02]
    got = model.query(["a"], {"c": 1.0})
    assert got.loc["a", "mean"] == pytest.approx(near["a"].mean(), abs=0.03)
    assert got.loc["a", "cov[a]"] == pytest.approx(near["a"].var(), rel=0.05)


def test_gaussian_queries_that_are_not_one_gaussian_are_refused():
    model = fitted(MIXED)
    with pytest.raises(pgm.ModelError, match=r"'s' is not given.*a mixture of gaussians.*give s in the evidence"):
        model.query(["v"], {"w": [0.0, 0.0]})
    with pytest.raises(pgm.ModelError, match="discrete and gaussian nodes at once"):
        model.query(["s", "v"], {})
    logistic = fitted(CHAIN.replace("params:", "  d: {states: [0, 1], parents: [c], cpd: logistic}\nparams:")
                      + "  d: {intercept: [0.0, 0.5], coef: [[0.0], [1.0]], features: [c]}\n")
    with pytest.raises(pgm.ModelError, match="'d' has the gaussian parent 'c'"):
        logistic.query(["a"], {"d": "1"})
    assert logistic.query(["a"], {"c": 1.0}).loc["a", "mean"] == pytest.approx(fitted(CHAIN).query("a", {"c": 1.0}).loc["a", "mean"])


def test_evidence_of_probability_zero_is_refused():
    text = MIXED.replace("s: {table: [0.3, 0.7]}", "s: {table: [1.0, 0.0]}")
    with pytest.raises(pgm.DataError, match="probability 0"):
        fitted(text).query(["v"], {"s": "hi"})


def test_cli_prints_the_mean_and_covariance(tmp_path, capsys):
    path = tmp_path / "lg3.yaml"
    path.write_text(CHAIN)
    assert main(["query", str(path), "a", "b", "--given", "c=2.0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "p(a, b | c=2.0)"
    answer = fitted(CHAIN).query(["a", "b"], {"c": 2.0})
    printed = pd.read_csv(io.StringIO("\n".join(lines[1:])), sep=r"\s+")
    assert list(printed.columns) == ["mean", "cov[a]", "cov[b]"]
    np.testing.assert_allclose(printed.to_numpy(), answer.to_numpy(), rtol=1e-9)


def test_cli_given_leaves_an_empty_component_unobserved(tmp_path, capsys):
    path = tmp_path / "clg.yaml"
    path.write_text(MIXED)
    assert main(["query", str(path), "v", "--given", "s=hi", "w=0.5,"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "p(v | s=hi, w=0.5,)"
    mean, cov = mixed_joint(1)
    want_mean, want_cov = condition(mean, cov, [2], [3], np.array([0.5]))
    values = [float(x) for x in printed[2].split()[1:]]
    np.testing.assert_allclose(values, [want_mean[0], want_cov[0, 0]], rtol=1e-9)
