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


def test_lds_posterior_of_observed_cells_has_zero_not_negative_zero_covariance():
    # an observed cell's covariance is 0 exactly; it was (rounding, ~1e-33 below 0) times a False mask: -0.0,
    # written '-0.0' by pgm predict --proba
    spec = {"name": "cv", "sequence": SEQ,
            "nodes": {"s": {"type": "gaussian", "dim": 4, "latent": True, "prev": ["s"]},
                      "y": {"type": "gaussian", "dim": 2, "parents": ["s"]}}}
    fitted = _fitted(spec, {
        "s@first": {"intercept": [0.0] * 4, "covariance": np.eye(4).tolist()},
        "s": {"intercept": [0.03, 0.04, 0.0, 0.0], "covariance": (0.01 * np.eye(4)).tolist(),
              "coef": [[0.94, -0.2, 0.07, 0.12], [-0.02, 1.05, -0.05, 0.1], [0.1, 0, 0.9, 0], [0, 0.1, 0, 0.9]]},
        "y": {"intercept": [-0.07, 2.1], "coef": [[2.9, -2.9, 0.5, 2.1], [-1.9, 3.9, 2.1, 1.4]],
              "covariance": [[0.22, 0.001], [0.001, 0.24]]}})
    data = fitted.sample(5, length=6, seed=0).drop(columns=["s[0]", "s[1]", "s[2]", "s[3]"])
    data.loc[data.index % 7 == 3, "y[0]"] = np.nan
    post = fitted.posterior("y", data)
    cov = post[["cov[y[0],y[0]]", "cov[y[0],y[1]]", "cov[y[1],y[1]]"]].to_numpy()
    seen = data["y[0]"].notna().to_numpy()
    assert (cov[seen] == 0).all() and not np.signbit(cov[seen]).any()
    assert (cov[~seen, 0] > 0).all() and (cov[~seen, 1:] == 0).all()
