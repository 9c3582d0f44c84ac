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


def test_one_row_sequence_takes_the_step_every_other_sequence_shares():
    fitted = explosive_lds(0.5)
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta([0, 5, 10, 0, 5, 0], unit="min")
    data = pd.DataFrame({"seq": ["a", "a", "a", "b", "b", "c"], "t": stamps, "y": [1.0, 0.4, 0.1, 2.0, 0.9, 0.3]})
    got = fitted.forecast(data, steps=2)
    assert list(got.loc[got["seq"] == "c", "t"]) == [pd.Timestamp("2024-01-01 00:05"), pd.Timestamp("2024-01-01 00:10")]
    ints = data.assign(t=np.array([0, 10, 20, 30, 40, 7]))
    assert ints.pipe(fitted.forecast, steps=2)["t"].tolist() == [30, 40, 50, 60, 17, 27]
    # steps that differ between sequences: a one-row sequence has no step to take
    odd = data.assign(t=pd.Timestamp("2024-01-01") + pd.to_timedelta([0, 5, 10, 0, 6, 0], unit="min"))
    with pytest.raises(pgm.DataError, match=r"1 sequence \(\['c'\]\) has no regular step"):
        fitted.forecast(odd, steps=1)
    assert ints.assign(t=np.array([0, 10, 20, 30, 35, 7])).pipe(fitted.forecast, steps=1)["t"].tolist() == [30, 40, 8]


def test_sequence_file_with_another_separator_says_so(tmp_path):
    fitted = explosive_lds(0.5)
    path = tmp_path / "d.csv"
    path.write_text("seq;t;y\na;0;1.0\na;1;0.5\n")
    with pytest.raises(pgm.DataError, match=r"missing id column 'seq'.*looks separated by ';'.*sep=';'"):
        fitted.forecast(path, steps=1)
    assert fitted.forecast(path, steps=1, sep=";")["t"].tolist() == [2]
