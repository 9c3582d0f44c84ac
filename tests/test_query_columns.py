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
