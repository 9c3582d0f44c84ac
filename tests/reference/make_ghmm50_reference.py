"""Write hmmlearn's best fit of several starts of a 50-step gaussian HMM, for ``tests/learn/test_em_textbook.py``.

The sequences (2-dimensional gaussian emissions, 3 hidden states) are drawn here with numpy from
known parameters and a fixed seed and stored as ``ghmm50_sequences.csv`` (one sequence of 50 steps
per row, columns x1[0], x1[1], ..., x50[1]).  hmmlearn's ``GaussianHMM`` (full covariances) is
fitted from 10 starts (random_state 0..9: k-means means, uniform transitions; at most 1000
iterations, stopping when one gains less than 1e-6 nats); every start's final log-likelihood is
stored in ``ghmm50_hmmlearn.json`` with the best one and the log-likelihood at the true parameters.

hmmlearn is not a dependency of pgm (not even a test extra); run this in a separate environment:

    python3 -m venv /tmp/hmm-venv
    /tmp/hmm-venv/bin/pip install hmmlearn pandas
    /tmp/hmm-venv/bin/python tests/reference/make_ghmm50_reference.py
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # hmmlearn's many small products: threads only spin

import hmmlearn  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from hmmlearn.hmm import GaussianHMM  # noqa: E402

HERE = Path(__file__).resolve().parent
SEQUENCES = HERE / "ghmm50_sequences.csv"
OUTPUT = HERE / "ghmm50_hmmlearn.json"
SEED = 20261203
N_SEQUENCES = 60
LENGTH = 50
START = np.array([0.5, 0.3, 0.2])
TRANSITION = np.array([[0.85, 0.10, 0.05],
                       [0.10, 0.80, 0.10],
                       [0.15, 0.15, 0.70]])
MEANS = np.array([[0.0, 0.0], [1.5, 1.0], [-1.0, 2.0]])
COVARS = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.7, -0.2], [-0.2, 1.0]], [[0.6, 0.0], [0.0, 0.9]]])


def sample() -> np.ndarray:
    """Emissions of shape (N_SEQUENCES, LENGTH, 2): states by inverse CDF, vectorised over sequences."""
    rng = np.random.default_rng(SEED)
    n, k = N_SEQUENCES, len(START)
    h = np.empty((n, LENGTH), dtype=int)
    draw = lambda probs: (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)  # noqa: E731
    h[:, 0] = draw(np.broadcast_to(START, (n, k)))
    for t in range(1, LENGTH):
        h[:, t] = draw(TRANSITION[h[:, t - 1]])
    chol = np.linalg.cholesky(COVARS)
    noise = rng.normal(size=(n, LENGTH, 2))
    return MEANS[h] + np.einsum("ntij,ntj->nti", chol[h], noise)


def fit_one(flat: np.ndarray, lengths: list[int], seed: int) -> dict:
    """hmmlearn's EM from its start ``random_state=seed``, until an iteration gains < 1e-6 nats."""
    model = GaussianHMM(n_components=len(START), covariance_type="full", n_iter=1000, tol=1e-6, min_covar=1e-6,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(flat, lengths)
    return {"random_state": seed, "log_likelihood": float(model.score(flat, lengths)),
            "iterations": int(model.monitor_.iter), "converged": bool(model.monitor_.converged)}


def main() -> None:
    x = sample()
    columns = [f"x{t + 1}[{k}]" for t in range(LENGTH) for k in range(2)]
    pd.DataFrame(x.reshape(N_SEQUENCES, -1), columns=columns).to_csv(SEQUENCES, index=False, float_format="%.17g")
    x = pd.read_csv(SEQUENCES).to_numpy().reshape(N_SEQUENCES, LENGTH, 2)  # exactly what the test reads
    flat = x.reshape(-1, 2)
    lengths = [LENGTH] * N_SEQUENCES
    runs = [fit_one(flat, lengths, seed) for seed in range(10)]
    truth = GaussianHMM(n_components=len(START), covariance_type="full")
    truth.startprob_, truth.transmat_, truth.means_, truth.covars_ = START, TRANSITION, MEANS, COVARS
    best = max(r["log_likelihood"] for r in runs)
    out = {"hmmlearn": hmmlearn.__version__, "n_sequences": N_SEQUENCES, "length": LENGTH, "seed": SEED,
           "runs": runs, "best_log_likelihood": best,
           "true_parameters_log_likelihood": float(truth.score(flat, lengths))}
    OUTPUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
