"""learner="variational" warns when it stops at max_iter without converging, as EM does.

Both variational learners (mean-field over rows, structured mean-field over sequences) used to
return ``info["converged"] == False`` silently: a user had no sign that the ELBO was still rising.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema import parse_spec

LATENT_CLASS = {"name": "lc", "nodes": {"z": {"states": 2, "latent": True},
                                        **{v: {"states": 2, "parents": ["z"]} for v in "abc"}}}
FACTORIAL = {"name": "fhmm", "sequence": {"id": "seq", "order": "t"},
             "nodes": {"h1": {"states": 2, "latent": True, "prev": ["h1"]},
                       "h2": {"states": 2, "latent": True, "prev": ["h2"]},
                       "x": {"type": "gaussian", "parents": ["h1", "h2"]}}}


def _rows(kind: str) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    if kind == "rows":
        return pd.DataFrame(rng.integers(0, 2, (200, 3)), columns=list("abc"))
    return pd.DataFrame({"seq": np.repeat(np.arange(5), 20), "t": np.tile(np.arange(20), 5),
                         "x": rng.standard_normal(100)})


def _fit(kind: str, **options):
    spec = parse_spec(LATENT_CLASS if kind == "rows" else FACTORIAL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = pgm.fit(spec, _rows(kind), learner="variational", **options)
    return fitted, [w for w in caught if issubclass(w.category, pgm.ConvergenceWarning)]


@pytest.mark.parametrize("kind", ["rows", "sequences"])
def test_stopping_at_max_iter_warns(kind):
    fitted, caught = _fit(kind, max_iter=2, tol=0)
    assert fitted.info["learner"] == "variational" and fitted.info["converged"] is False
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "variational EM did not converge in 2 iterations" in message and "ELBO" in message
    assert caught[0].filename == __file__  # points at the caller's pgm.fit line


@pytest.mark.parametrize("kind", ["rows", "sequences"])
def test_a_converged_fit_does_not_warn(kind):
    fitted, caught = _fit(kind, max_iter=200, tol=1e-2)
    assert fitted.info["converged"] is True
    assert caught == []


@pytest.mark.parametrize("kind", ["rows", "sequences"])
def test_em_warnings_point_at_the_callers_line_too(kind):
    # a sequence fit goes through one more layer of pgm; the warning still names the user's line
    spec = parse_spec(LATENT_CLASS if kind == "rows" else FACTORIAL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pgm.fit(spec, _rows(kind), learner="em", max_iter=2, tol=0, accelerate=False)
    caught = [w for w in caught if issubclass(w.category, pgm.ConvergenceWarning)]
    assert len(caught) == 1 and "EM did not converge in 2 iterations" in str(caught[0].message)
    assert caught[0].filename == __file__
