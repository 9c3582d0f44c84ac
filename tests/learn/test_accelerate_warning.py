"""An accelerated EM run that stops at max_iter keeps fewer updates than it evaluated: the warning says
both numbers, so that it agrees with the fitted model's n_iter (the CLI's 'wrote ... (165 iterations)'
next to 'did not converge in 200 iterations' read as a contradiction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema import parse_spec


def test_unconverged_accelerated_run_names_evaluations_and_kept_updates():
    spec = parse_spec({"name": "ll", "sequence": {"id": "seq", "order": "t"},
                       "nodes": {"s": {"type": "gaussian", "dim": 2, "latent": True, "prev": ["s"]},
                                 "y": {"type": "gaussian", "dim": 2, "parents": ["s"]}}})
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 0.5, (200, 2)), axis=0)
    data = pd.DataFrame({"seq": np.repeat(["a", "b"], 100), "t": np.tile(np.arange(100), 2),
                         "y[0]": walk[:, 0] + rng.normal(0, 1, 200), "y[1]": walk[:, 1] - walk[:, 0]})
    with pytest.warns(pgm.ConvergenceWarning) as caught:
        fitted = pgm.fit(spec, data, max_iter=40, seed=0, init="random")  # the start it was written for
    message = str(caught[0].message)
    assert message.startswith("EM did not converge in 40 iterations")
    assert fitted.info["n_iter"] < 40   # the safeguard refused some extrapolations (35 kept)
    assert f"40 updates evaluated, {fitted.info['n_iter']} kept by the extrapolation's safeguard" in message
