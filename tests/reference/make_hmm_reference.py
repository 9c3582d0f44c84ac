"""Write hmmlearn's answers on a discrete and a gaussian HMM, for ``tests/test_sequence.py``.

The data (drawn here with numpy from fixed parameters and a fixed seed) are stored with the
answers, so the test needs neither hmmlearn nor this script: the log-likelihood at the true
parameters (``score``), the Viterbi paths (``decode``) and the best log-likelihood of several
EM starts (``fit``).

hmmlearn is not a dependency of pgm (not even a test extra); run this in a separate environment:

    python3 -m venv /work/venv-sequence
    /work/venv-sequence/bin/pip install hmmlearn
    /work/venv-sequence/bin/python tests/reference/make_hmm_reference.py

It writes ``tests/reference/hmm_hmmlearn.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import hmmlearn
import numpy as np
from hmmlearn import hmm

HERE = Path(__file__).resolve().parent

START = [0.6, 0.3, 0.1]
TRANS = [[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
EMIT = [[0.7, 0.2, 0.05, 0.05], [0.1, 0.6, 0.2, 0.1], [0.05, 0.05, 0.3, 0.6]]
MEANS = [[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]]
COVARS = [[[1.0, 0.3], [0.3, 0.5]], [[0.7, -0.2], [-0.2, 1.2]], [[0.4, 0.0], [0.0, 0.4]]]


def draw(rng: np.random.Generator, lengths: list[int], emit) -> tuple[np.ndarray, np.ndarray]:
    states, obs = [], []
    for n in lengths:
        h = rng.choice(3, p=START)
        for t in range(n):
            if t:
                h = rng.choice(3, p=TRANS[h])
            states.append(h)
            obs.append(emit(rng, h))
    return np.array(states), np.array(obs)


def main() -> None:
    rng = np.random.default_rng(20261202)
    lengths = [int(n) for n in rng.integers(1, 60, size=25)]
    _, sym = draw(rng, lengths, lambda r, h: r.choice(4, p=EMIT[h]))
    _, xs = draw(rng, lengths, lambda r, h: r.multivariate_normal(MEANS[h], COVARS[h]))
    out = {"hmmlearn": hmmlearn.__version__, "lengths": lengths, "start": START, "trans": TRANS, "emit": EMIT,
           "means": MEANS, "covars": COVARS, "symbols": sym.tolist(), "x": xs.tolist()}

    cat = hmm.CategoricalHMM(n_components=3)
    cat.startprob_, cat.transmat_, cat.emissionprob_ = np.array(START), np.array(TRANS), np.array(EMIT)
    out["discrete_score"] = float(cat.score(sym[:, None], lengths))
    out["discrete_decode"] = cat.decode(sym[:, None], lengths)[1].tolist()
    best = -np.inf
    for seed in range(10):
        m = hmm.CategoricalHMM(n_components=3, n_features=4, n_iter=2000, tol=1e-9, random_state=seed)
        m.fit(sym[:, None], lengths)
        best = max(best, float(m.score(sym[:, None], lengths)))
    out["discrete_best_fit"] = best

    gau = hmm.GaussianHMM(n_components=3, covariance_type="full")
    gau.startprob_, gau.transmat_ = np.array(START), np.array(TRANS)
    gau.means_, gau.covars_ = np.array(MEANS), np.array(COVARS)
    out["gaussian_score"] = float(gau.score(xs, lengths))
    out["gaussian_decode"] = gau.decode(xs, lengths)[1].tolist()
    best = -np.inf
    for seed in range(10):
        m = hmm.GaussianHMM(n_components=3, covariance_type="full", n_iter=2000, tol=1e-9, min_covar=1e-6,
                            random_state=seed)
        m.fit(xs, lengths)
        best = max(best, float(m.score(xs, lengths)))
    out["gaussian_best_fit"] = best
    (HERE / "hmm_hmmlearn.json").write_text(json.dumps(out) + "\n")
    print({k: v for k, v in out.items() if "score" in k or "best" in k})


if __name__ == "__main__":
    main()
