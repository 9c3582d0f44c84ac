"""predict / posterior / most_probable on a multi-column gaussian node with only some of its
columns present in a row: the missing components are conditioned on the observed ones (as fit's
E-step does), checked against numpy Gaussian conditioning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import multivariate_normal

from pgm.fitted import FittedModel
from pgm.schema import parse_spec

MODEL = """
name: mvn
nodes:
  z: {states: [a, b]}
  x: {type: gaussian, dim: 3, parents: [z]}
  y: {type: gaussian, dim: 2, parents: [x], covariance: full}
params:
  z: {table: [0.4, 0.6]}
  x:
    intercept: [[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]]
    covariance:
      - [[1.0, 0.5, 0.2], [0.5, 2.0, -0.3], [0.2, -0.3, 1.5]]
      - [[2.0, -0.4, 0.1], [-0.4, 1.0, 0.3], [0.1, 0.3, 0.7]]
  y:
    intercept: [0.5, -0.5]
    coef: [[1.0, 0.0, -1.0], [0.3, 0.6, 0.0]]
    covariance: [[1.0, 0.4], [0.4, 0.9]]
"""
MU = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
SIGMA = np.array([[[1.0, 0.5, 0.2], [0.5, 2.0, -0.3], [0.2, -0.3, 1.5]],
                  [[2.0, -0.4, 0.1], [-0.4, 1.0, 0.3], [0.1, 0.3, 0.7]]])
PZ = np.array([0.4, 0.6])
COLS = ["x[0]", "x[1]", "x[2]"]


@pytest.fixture(scope="module")
def model() -> FittedModel:
    return FittedModel.from_spec(parse_spec(yaml.safe_load(MODEL)))


def frame(z):
    """Rows with x partly observed, y absent (missing): each missing pattern once, z given or not."""
    x = np.array([[0.7, np.nan, 1.1], [np.nan, 0.2, np.nan], [1.0, 2.0, np.nan], [np.nan, np.nan, -0.4]])
    return pd.DataFrame({"z": z, **{c: x[:, j] for j, c in enumerate(COLS)}, "y[0]": np.nan, "y[1]": np.nan})


def conditional_mean(k: int, x: np.ndarray) -> np.ndarray:
    """E[x | its observed components, z = k] by numpy conditioning."""
    o, h = ~np.isnan(x), np.isnan(x)
    out = x.copy()
    gain = SIGMA[k][np.ix_(h, o)] @ np.linalg.inv(SIGMA[k][np.ix_(o, o)])
    out[h] = MU[k][h] + gain @ (x[o] - MU[k][o])
    return out


def z_posterior(x: np.ndarray) -> np.ndarray:
    o = ~np.isnan(x)
    like = np.array([PZ[k] * multivariate_normal(MU[k][o], SIGMA[k][np.ix_(o, o)]).pdf(x[o]) for k in range(2)])
    return like / like.sum()


def test_most_probable_fills_missing_components_given_the_observed_ones(model):
    data = frame([None, "b", None, "a"])
    got = model.most_probable(data)
    x = data[COLS].to_numpy()
    for i in range(len(data)):
        given = data["z"][i]
        k = int(np.argmax(z_posterior(x[i]))) if pd.isna(given) else {"a": 0, "b": 1}[given]
        assert got["z"][i] == "ab"[k]
        want = conditional_mean(k, x[i])
        np.testing.assert_allclose(got.loc[i, COLS].to_numpy(dtype=float), want, rtol=1e-12, atol=1e-12)
        # y (wholly missing) is then filled from the completed x
        np.testing.assert_allclose(got.loc[i, ["y[0]", "y[1]"]].to_numpy(dtype=float),
                                   np.array([0.5, -0.5]) + np.array([[1.0, 0.0, -1.0], [0.3, 0.6, 0.0]]) @ want,
                                   rtol=1e-12, atol=1e-12)


def test_predict_and_posterior_condition_on_the_observed_components(model):
    data = frame([None, None, None, None])
    x = data[COLS].to_numpy()
    pred = model.predict(["x"], data)
    post_z = model.posterior("z", data)
    for i in range(len(data)):
        q = z_posterior(x[i])
        np.testing.assert_allclose(post_z.iloc[i].to_numpy(), q, rtol=1e-10)
        want = q[0] * conditional_mean(0, x[i]) + q[1] * conditional_mean(1, x[i])
        np.testing.assert_allclose(pred.loc[i, COLS].to_numpy(dtype=float), want, rtol=1e-10, atol=1e-12)
