"""Write pykalman's log-likelihoods and smoothed moments of a linear dynamical system, for
``tests/infer/test_kalman.py``.

Three sequences of different lengths (40, 25 and 9 steps) are drawn here with numpy from known
parameters (a fixed seed): a 2-dimensional state ``s_t = A s_{t-1} + b + N(0, Q)``, ``s_0 ~ N(mu0, P0)``,
and a 3-dimensional observation ``y_t = C s_t + d + N(0, R)``; a few steps have the whole observation
missing (pykalman takes a masked step as no observation).  For each sequence pykalman's
``KalmanFilter.loglikelihood`` and ``smooth`` (means and covariances) are stored with the data and
the parameters in ``lds_pykalman.json``.

pykalman is not a dependency of pgm; run this in an environment that has it:

    python3 -m venv /tmp/ref-venv && /tmp/ref-venv/bin/pip install pykalman numpy
    /tmp/ref-venv/bin/python tests/reference/make_lds_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pykalman
from pykalman import KalmanFilter

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "lds_pykalman.json"
SEED = 20261203
LENGTHS = (40, 25, 9)
PARAMS = {
    "A": [[0.85, 0.25], [-0.2, 0.9]],
    "b": [0.1, -0.05],
    "Q": [[0.3, 0.05], [0.05, 0.2]],
    "mu0": [0.5, -1.0],
    "P0": [[1.5, 0.3], [0.3, 0.8]],
    "C": [[1.0, 0.5], [-0.3, 0.8], [0.6, -1.2]],
    "d": [0.2, 0.0, -0.4],
    "R": [[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.6]],
}
MISSING = {0: [3, 17, 18], 1: [0, 24], 2: []}   # sequence -> steps with the whole observation missing


def main() -> None:
    rng = np.random.default_rng(SEED)
    p = {k: np.array(v) for k, v in PARAMS.items()}
    kf = KalmanFilter(transition_matrices=p["A"], observation_matrices=p["C"], transition_covariance=p["Q"],
                      observation_covariance=p["R"], transition_offsets=p["b"], observation_offsets=p["d"],
                      initial_state_mean=p["mu0"], initial_state_covariance=p["P0"])
    out = {"pykalman": pykalman.__version__, "params": PARAMS, "sequences": []}
    for i, length in enumerate(LENGTHS):
        s = rng.multivariate_normal(p["mu0"], p["P0"])
        ys = []
        for t in range(length):
            if t:
                s = p["A"] @ s + p["b"] + rng.multivariate_normal(np.zeros(2), p["Q"])
            ys.append(p["C"] @ s + p["d"] + rng.multivariate_normal(np.zeros(3), p["R"]))
        y = np.ma.masked_array(np.array(ys), mask=np.zeros((length, 3), dtype=bool))
        for t in MISSING[i]:
            y.mask[t] = True
        means, covs = kf.smooth(y)
        out["sequences"].append({
            "y": [[None if y.mask[t, j] else float(y.data[t, j]) for j in range(3)] for t in range(length)],
            "loglikelihood": float(kf.loglikelihood(y)),
            "smoothed_means": means.tolist(),
            "smoothed_covariances": covs.tolist(),
        })
    OUTPUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
