"""A user who names a gaussian node's data column (``c[0]``) where pgm takes the node is told so."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pgm
from pgm.cli import main
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

SPEC = {"name": "inv", "nodes": {"a": {"type": "gaussian", "dim": 2},
                                 "c": {"type": "gaussian", "dim": 2, "parents": ["a"], "columns": ["cx", "cy"]}},
        "params": {"a": {"intercept": [1.0, -1.0], "covariance": [[2.0, 0.5], [0.5, 1.0]]},
                   "c": {"intercept": [0.0, 1.0], "coef": [[1.0, 0.0], [0.0, 1.0]],
                         "covariance": [[0.5, 0.1], [0.1, 0.4]]}}}


def test_a_column_named_in_place_of_its_node_is_explained(tmp_path, capsys):
    fitted = FittedModel.from_spec(parse_spec(SPEC))
    for given, column, node in (({"a[0]": 2.0}, "a[0]", "a"), ({"cy": 0.0}, "cy", "c")):
        with pytest.raises(pgm.ModelError, match=rf"'{re.escape(column)}' is a column of the gaussian node '{node}': name the "
                                                 rf"node \(as evidence, a list of its 2 values, NaN where not observed"):
            fitted.query(["a"] if node == "c" else ["c"], given)
    with pytest.raises(pgm.ModelError, match=r"'cx' is a column of the gaussian node 'c'"):
        fitted.query(["cx"])
    # the node with a NaN component is how: p(a | cy = 0) by numpy conditioning of the joint
    got = fitted.query(["a"], {"c": [np.nan, 0.0]})
    mu = np.array([1.0, -1.0, 1.0, 0.0])                     # [a, c]: c = a + (0, 1) + noise
    sa, r = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[0.5, 0.1], [0.1, 0.4]])
    cov = np.block([[sa, sa], [sa, sa + r]])
    k = cov[:2, 3] / cov[3, 3]
    np.testing.assert_allclose(got["mean"].to_numpy(), mu[:2] + k * (0.0 - mu[3]), atol=1e-12)
    path = tmp_path / "inv.yaml"
    fitted.save(path)
    assert main(["query", str(path), "a", "--given", "cy=0"]) == 2
    err = capsys.readouterr().err
    assert "'cy' is a column of the gaussian node 'c'" in err and "Traceback" not in err
    assert "c=nan,x)" in err                                  # the command line's form of the vector
    assert main(["query", str(path), "a", "--given", "c=nan,0"]) == 0


MIXED = {"name": "m", "nodes": {"z": {"states": ["lo", "hi"]}, "a": {"type": "gaussian", "parents": ["z"]},
                                "b": {"type": "gaussian", "parents": ["a", "z"]}},
         "params": {"z": {"table": [0.3, 0.7]}, "a": {"intercept": [0.0, 5.0], "covariance": [1.0, 2.0]},
                    "b": {"intercept": [1.0, -1.0], "coef": [[2.0], [0.5]], "covariance": [0.5, 0.1]}}}


def test_discrete_query_given_a_gaussian_child_through_a_hidden_gaussian():
    # the inverse problem p(z | b): b | z is gaussian with a summed out (N(1, 4 + 0.5) or N(1.5, 0.25 * 2 + 0.1))
    from scipy.stats import norm
    fitted = FittedModel.from_spec(parse_spec(MIXED))
    got = fitted.query(["z"], {"b": 2.0})
    w = np.array([0.3 * norm(1.0, np.sqrt(4.5)).pdf(2.0), 0.7 * norm(1.5, np.sqrt(0.6)).pdf(2.0)])
    np.testing.assert_allclose(got.to_numpy(), w / w.sum(), rtol=1e-12)
    assert list(got.index) == ["lo", "hi"] and got.name == "p"
    # the gaussian query's refusal (z not given) points here, so this must answer
    with pytest.raises(pgm.ModelError, match=r"query\(\['z'\], \.\.\.\) gives its distribution"):
        fitted.query(["a"], {"b": 2.0})
    with pytest.raises(pgm.ModelError, match="one discrete node at a time"):
        FittedModel.from_spec(parse_spec({**MIXED, "nodes": {**MIXED["nodes"], "w": {"states": 2}},
                                          "params": {**MIXED["params"], "w": {"table": [0.5, 0.5]}}})
                              ).query(["z", "w"], {"b": 2.0})
