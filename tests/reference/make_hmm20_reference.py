"""Write hmmlearn's best-of-5 fit of a 20-step discrete HMM, for ``tests/learn/test_em_textbook.py``.

The sequences are drawn here with numpy from known parameters (a fixed seed) and stored as
``hmm20_sequences.csv`` (one sequence of 20 symbols per row, columns x1..x20); hmmlearn's
``CategoricalHMM`` is fitted from 5 random starts (random_state 0..4; at most 300 iterations, stopping
when one gains less than 1e-4 nats) and every start's final
log-likelihood is stored in ``hmm20_hmmlearn.json`` with the best one.

hmmlearn is not a dependency of pgm (not even a test extra); run this in a separate environment:

    python3 -m venv /tmp/hmm-venv
    /tmp/hmm-venv/bin/pip install hmmlearn pandas
    /tmp/hmm-venv/bin/python tests/reference/make_hmm20_reference.py
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import hmmlearn
import numpy as np
import pandas as pd
from hmmlearn.hmm import CategoricalHMM

HERE = Path(__file__).resolve().parent
SEQUENCES = HERE / "hmm20_sequences.csv"
OUTPUT = HERE / "hmm20_hmmlearn.json"
SEED = 20261202
N_SEQUENCES = 200
LENGTH = 20
START = np.array([0.6, 0.3, 0.1])
TRANSITION = np.array([[0.80, 0.15, 0.05],
                       [0.10, 0.75, 0.15],
                       [0.20, 0.10, 0.70]])
EMISSION = np.array([[0.70, 0.15, 0.10, 0.05],
                     [0.10, 0.60, 0.20, 0.10],
                     [0.05, 0.10, 0.25, 0.60]])


def sample() -> np.ndarray:
    """Symbols of shape (N_SEQUENCES, LENGTH), by inverse CDF, vectorised over sequences."""
    rng = np.random.default_rng(SEED)
    n, k = N_SEQUENCES, len(START)
    h = np.empty((n, LENGTH), dtype=int)
    x = np.empty((n, LENGTH), dtype=int)
    draw = lambda probs: (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)  # noqa: E731
    h[:, 0] = draw(np.broadcast_to(START, (n, k)))
    for t in range(LENGTH):
        if t:
            h[:, t] = draw(TRANSITION[h[:, t - 1]])
        x[:, t] = draw(EMISSION[h[:, t]])
    return x


def fit_one(flat: np.ndarray, lengths: list[int], seed: int) -> dict:
    """hmmlearn's EM from its random start ``random_state=seed``, until an iteration gains < 1e-4 nats."""
    model = CategoricalHMM(n_components=len(START), n_iter=300, tol=1e-4, random_state=seed)
    model.fit(flat, lengths)
    return {"random_state": seed, "log_likelihood": float(model.score(flat, lengths)),
            "iterations": int(model.monitor_.iter), "converged": bool(model.monitor_.converged)}


def main() -> None:
    x = sample()
    pd.DataFrame(x, columns=[f"x{t + 1}" for t in range(LENGTH)]).to_csv(SEQUENCES, index=False)
    flat = x.reshape(-1, 1)
    lengths = [LENGTH] * len(x)
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(fit_one, [flat] * 5, [lengths] * 5, range(5)))
    truth = CategoricalHMM(n_components=len(START))
    truth.n_features = EMISSION.shape[1]
    truth.startprob_, truth.transmat_, truth.emissionprob_ = START, TRANSITION, EMISSION
    best = max(r["log_likelihood"] for r in runs)
    out = {"hmmlearn": hmmlearn.__version__, "n_sequences": N_SEQUENCES, "length": LENGTH, "seed": SEED,
           "runs": runs, "best_log_likelihood": best,
           "true_parameters_log_likelihood": float(truth.score(flat, lengths))}
    OUTPUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
