"""Large hidden components go through a batched clique tree instead of listing their joint states.

Both paths compute the same exact quantities, so forcing the tree on components that could be
listed must give the same per-row log-likelihoods, posteriors and one-step EM parameters."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import pgm
import pgm.infer.enumerate as enumerate_
from pgm.convert import read_any
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def alarm() -> FittedModel:
    return FittedModel.from_spec(parse_spec(read_any(EXAMPLES / "alarm.bif")))


def _masked(model: FittedModel, n: int, frac: float, seed: int):
    df = model.sample(n, seed=seed).astype(object)
    return df.mask(np.random.default_rng(seed).random(df.shape) < frac)


@pytest.mark.parametrize("frac", [0.1, 0.3])
def test_tree_equals_enumeration(alarm, frac, monkeypatch):
    df = _masked(alarm, 400, frac, seed=1)
    listed = alarm.row_log_likelihood(df)
    post = alarm.posterior("LVFAILURE", df).to_numpy()
    monkeypatch.setattr(enumerate_, "ENUMERATE_LIMIT", 2)  # every component with >2 states: the tree
    np.testing.assert_allclose(alarm.row_log_likelihood(df), listed, rtol=0, atol=1e-10)
    np.testing.assert_allclose(alarm.posterior("LVFAILURE", df).to_numpy(), post, rtol=0, atol=1e-12)


def test_one_em_step_is_the_same_through_the_tree(alarm, monkeypatch):
    df = _masked(alarm, 300, 0.2, seed=2)
    model = pgm.load(Path(__file__).resolve().parents[2] / "models" / "alarm.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = pgm.fit(model, df, init=alarm, max_iter=2, tol=0)
        monkeypatch.setattr(enumerate_, "ENUMERATE_LIMIT", 2)
        b = pgm.fit(model, df, init=alarm, max_iter=2, tol=0)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-12)
    for key in a.cpds:
        np.testing.assert_allclose(a.cpds[key].probs, b.cpds[key].probs, rtol=0, atol=1e-12)


def test_heavily_missing_alarm_fits_and_never_decreases(alarm):
    """With 40% of cells missing, hidden cells connect into components far too large to list."""
    df = _masked(alarm, 300, 0.4, seed=3)
    model = pgm.load(Path(__file__).resolve().parents[2] / "models" / "alarm.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(model, df, max_iter=15, prior={"dirichlet": 0.5})
    hist = np.asarray(fitted.history)
    assert np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) >= -1e-9 * np.abs(hist[1:]))
