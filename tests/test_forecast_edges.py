"""Forecast edge cases found by trying it as a user: explosive dynamics over many steps, one-row
sequences among regularly spaced ones, and a sequence file read with the wrong separator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

SEQ = {"id": "seq", "order": "t"}


def _fitted(spec: dict, params: dict) -> FittedModel:
    return FittedModel.from_spec(parse_spec({**spec, "params": params}))


def explosive_lds(growth: float) -> FittedModel:
    spec = {"name": "lds", "sequence": SEQ,
            "nodes": {"s": {"type": "gaussian", "latent": True, "prev": ["s"]},
                      "y": {"type": "gaussian", "parents": ["s"]}}}
    return _fitted(spec, {"s@first": {"intercept": 0.0, "covariance": 1.0},
                          "s": {"intercept": 0.0, "coef": [growth], "covariance": 0.1},
                          "y": {"intercept": 0.0, "coef": [1.0], "covariance": 0.5}})


def test_forecast_that_overflows_is_refused_not_nan():
    fitted = explosive_lds(1.1)
    data = pd.DataFrame({"seq": ["a", "a", "b"], "t": [0, 1, 0], "y": [1.0, 1.2, -0.5]})
    ok = fitted.forecast(data, steps=50, proba=True)
    assert np.isfinite(ok.iloc[:, 2:].to_numpy(float)).all()
    np.testing.assert_allclose(ok["y"].iloc[49] / ok["y"].iloc[48], 1.1, rtol=1e-12)   # the mean grows by the slope
    # 1.1^k overflows float64 after about 7,400 steps (its square, the variance, after half): no silent NaN
    with pytest.raises(pgm.PGMError, match=r"forecast of 'y' is not finite from step \d+ on .*fewer steps"):
        fitted.forecast(data, steps=10_000, proba=True)
