"""The default EM start on textbook models with many hidden variables, where random starting
posteriors used to stop at once near the independent model (issue 15):

* a 20-step discrete HMM unrolled with ties reaches hmmlearn's best of 5 starts (stored by
  ``tests/reference/make_hmm20_reference.py``, which anyone can rerun);
* a 50-step gaussian HMM (2-dimensional emissions) unrolled with ties reaches hmmlearn's best of 10
  starts (stored by ``tests/reference/make_ghmm50_reference.py``);
* an LDA-like plate model (documents as rows, a plate of word tokens each with its own topic)
  reaches the best of 5 starts of a numpy EM written here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema import parse_spec

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def hmm_spec(length: int = 20, states: int = 3, symbols: int = 4):
    nodes = {"h1": {"states": states, "latent": True}}
    for t in range(2, length + 1):
        nodes[f"h{t}"] = {"states": states, "latent": True, "parents": [f"h{t - 1}"], "tie": "transition"}
    for t in range(1, length + 1):
        nodes[f"x{t}"] = {"states": symbols, "parents": [f"h{t}"], "tie": "emission"}
    return parse_spec({"name": "hmm20", "graph": "directed", "nodes": nodes})


@pytest.mark.slow
def test_hmm_with_20_steps_reaches_hmmlearns_best_of_5():
    reference = json.loads((REFERENCE / "hmm20_hmmlearn.json").read_text())
    data = pd.read_csv(REFERENCE / "hmm20_sequences.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(hmm_spec(), data, learner="em", n_init=5, seed=0, max_iter=400, tol=1e-7)
    runs = fitted.info["runs"]
    assert len({run[0] for run in runs}) == 5  # five different starts
    for run in runs:
        assert np.all(np.diff(run) >= -1e-9 * np.abs(run[1:]))
    best = fitted.log_likelihood(data)
    assert best == pytest.approx(max(run[-1] for run in runs), rel=1e-12)
    # hmmlearn stops when an iteration gains less than 1e-4 nats; pgm at a relative 1e-7: 0.05 nats
    assert best >= reference["best_log_likelihood"] - 0.05, (best, reference)
    # far above the independent model the old start stopped next to: every symbol i.i.d.
    counts = np.bincount(data.to_numpy().ravel(), minlength=4)
    independent = float(counts @ np.log(counts / counts.sum()))
    assert best > independent + 100


def ghmm_spec(length: int = 50, states: int = 3):
    nodes = {"h1": {"states": states, "latent": True}}
    for t in range(2, length + 1):
        nodes[f"h{t}"] = {"states": states, "latent": True, "parents": [f"h{t - 1}"], "tie": "transition"}
    for t in range(1, length + 1):
        nodes[f"x{t}"] = {"type": "gaussian", "dim": 2, "parents": [f"h{t}"], "tie": "emission"}
    return parse_spec({"name": "ghmm50", "graph": "directed", "nodes": nodes})


@pytest.mark.slow
def test_gaussian_hmm_with_50_steps_reaches_hmmlearns_best_of_10():
    """The unrolled model goes through the clique tree (gaussian children as per-row evidence on
    their hidden parents); pgm's default start, 5 runs, reaches the best of hmmlearn's 10 k-means starts."""
    reference = json.loads((REFERENCE / "ghmm50_hmmlearn.json").read_text())
    data = pd.read_csv(REFERENCE / "ghmm50_sequences.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(ghmm_spec(), data, learner="em", n_init=5, seed=0, max_iter=1000, tol=1e-9)
    runs = fitted.info["runs"]
    assert len({run[0] for run in runs}) == 5
    for run in runs:
        assert np.all(np.diff(run) >= -1e-9 * np.abs(run[1:]))
    best = fitted.log_likelihood(data)
    assert best == pytest.approx(max(run[-1] for run in runs), rel=1e-12)
    # hmmlearn stops when an iteration gains less than 1e-6 nats, pgm at a relative 1e-9 (about 1e-5 nats)
    assert best >= reference["best_log_likelihood"] - 1e-3, (best, reference["best_log_likelihood"])
    # a maximum of the likelihood is above its value at the parameters the data were drawn from
    assert best > reference["true_parameters_log_likelihood"]


# --------------------------------------------------------------------------- LDA-like plate model
C, K, N, V, D = 2, 3, 8, 10, 300   # document classes, topics, tokens per document, vocabulary, documents
LDA = parse_spec({"name": "lda-like", "graph": "directed", "plates": {"token": {"size": N}}, "nodes": {
    "c": {"states": C, "latent": True},
    "z": {"states": K, "latent": True, "parents": ["c"], "plate": "token"},
    "w": {"states": V, "parents": ["z"], "plate": "token"}}})


def lda_sample(seed: int = 0) -> np.ndarray:
    """Words (D, N): a class per document, a topic per token given the class, a word given the topic."""
    rng = np.random.default_rng(seed)
    pc = np.array([0.6, 0.4])
    pz = np.array([[0.75, 0.2, 0.05], [0.05, 0.25, 0.7]])
    pw = rng.dirichlet(np.full(V, 0.3), size=K)
    c = rng.choice(C, D, p=pc)
    z = (rng.random((D, N))[..., None] > np.cumsum(pz[c], axis=1)[:, None, :]).sum(-1)
    return (rng.random((D, N))[..., None] > np.cumsum(pw[z], axis=-1)).sum(-1)


def numpy_em(w: np.ndarray, seed: int, max_iter: int = 1500, tol: float = 1e-9) -> float:
    """EM for c -> z_i -> w_i (i = 1..N, tied) from Dirichlet(1) parameters; the final log-likelihood."""
    rng = np.random.default_rng(seed)
    pc = rng.dirichlet(np.ones(C))
    pz = rng.dirichlet(np.ones(K), size=C)
    pw = rng.dirichlet(np.ones(V), size=K)
    onehot = np.eye(V)[w]                                              # (D, N, V)
    previous = -np.inf
    for it in range(max_iter):
        b = pw[:, w]                                                   # (K, D, N): p(w_di | z = k)
        a = np.einsum("ck,kdn->dcn", pz, b)                            # (D, C, N): p(w_di | c)
        lj = np.log(pc)[None] + np.log(a).sum(-1)                      # (D, C): log p(c, w_d)
        top = lj.max(1, keepdims=True)
        ll = float((top[:, 0] + np.log(np.exp(lj - top).sum(1))).sum())
        if it and abs(ll - previous) <= tol * abs(ll):
            break
        previous = ll
        qc = np.exp(lj - top)
        qc /= qc.sum(1, keepdims=True)                                 # p(c | w_d)
        r = pz[None, :, None, :] * np.transpose(b, (1, 2, 0))[:, None] / a[..., None]  # p(z_i | c, w_di)
        weighted = qc[:, :, None, None] * r                            # (D, C, N, K)
        pc = qc.sum(0) / len(w)
        nz = weighted.sum((0, 2))
        pz = nz / nz.sum(1, keepdims=True)
        nw = np.einsum("dcnk,dnv->kv", weighted, onehot)
        pw = nw / nw.sum(1, keepdims=True)
    return ll


@pytest.mark.slow
def test_lda_like_plate_model_reaches_a_numpy_ems_best_of_5():
    w = lda_sample()
    data = pd.DataFrame(w, columns=[f"w[{i}]" for i in range(N)])
    reference = max(numpy_em(w, seed) for seed in range(100, 105))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(LDA, data, n_init=5, seed=0, max_iter=1500, tol=1e-9)
    assert set(fitted.cpds) == {"c", "z", "w"}  # one CPD for the N copies of z and of w
    assert len({run[0] for run in fitted.info["runs"]}) == 5
    best = fitted.log_likelihood(data)
    assert best >= reference - 1e-3, (best, reference)
    # far above the independent-words model
    counts = np.bincount(w.ravel(), minlength=V)
    assert best > float(counts @ np.log(counts / counts.sum())) + 100
