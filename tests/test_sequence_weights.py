"""Sequence weights and hard EM (Viterbi training) for sequence models (issue 14).

A weighted fit equals the fit of the data with each sequence repeated as many times as its (integer)
weight; a hard-EM update equals the normalised counts along the Viterbi path, counted with numpy here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec
from test_forecast import discrete_hmm, gaussian_hmm

WEIGHTS = np.array([3, 1, 2, 1, 4, 2])


def weighted_and_replicated(fitted, seed: int = 0):
    data = fitted.sample(6, seed=seed, length=8).drop(columns="h")
    data = data[data["t"] < np.repeat([8, 3, 6, 8, 1, 5], 8)].reset_index(drop=True)  # different lengths
    data["w"] = WEIGHTS[data["seq"].to_numpy()].astype(float)
    copies = []
    for s, w in enumerate(WEIGHTS):
        part = data[data["seq"] == s]
        copies += [part.assign(seq=f"{s}-{c}") for c in range(w)]
    return data, pd.concat(copies, ignore_index=True).drop(columns="w")


@pytest.mark.parametrize("make", [discrete_hmm, gaussian_hmm], ids=["discrete", "gaussian"])
def test_weighted_fit_equals_the_fit_of_repeated_sequences(make):
    fitted = make()
    data, repeated = weighted_and_replicated(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = pgm.fit(fitted.spec, data.sample(frac=1.0, random_state=1), weights="w", max_iter=25, seed=3)
        b = pgm.fit(fitted.spec, repeated, max_iter=25, seed=3)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-10)
    for key in b.cpds:
        for x, y in zip(a.to_params()[key].values(), b.to_params()[key].values()):
            np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=1e-7, atol=1e-10)
    assert a.log_likelihood(data, weights="w") == pytest.approx(a.log_likelihood(repeated), rel=1e-12)
    assert a.history[-1] == pytest.approx(a.log_likelihood(data, weights="w"), rel=1e-10)
    assert a.bic(data, weights="w") == pytest.approx(a.bic(repeated), rel=1e-12)


def test_weighted_counting_of_fully_observed_sequences():
    fitted = discrete_hmm()
    data, repeated = weighted_and_replicated(fitted)
    full = fitted.sample(6, seed=0, length=8)                # h observed: counting
    full = full[full["t"] < np.repeat([8, 3, 6, 8, 1, 5], 8)].reset_index(drop=True)
    spec = parse_spec({**fitted.spec.model_dump(exclude={"params"}, exclude_none=True),
                       "nodes": {"h": {"states": 3, "prev": ["h"]}, "o": {"states": ["a", "b", "c"], "parents": ["h"]}}})
    a = pgm.fit(spec, full.assign(w=WEIGHTS[full["seq"]] * 0.5), weights="w")   # fractional weights scale out
    h, s = full["h"].to_numpy(), full["seq"].to_numpy()
    w = WEIGHTS[s].astype(float)
    first = np.bincount(h[full["t"] == 0], weights=w[full["t"] == 0], minlength=3)
    np.testing.assert_allclose(a.cpd("h@first").to_numpy().ravel(), first / first.sum(), atol=1e-12)
    later = full["t"].to_numpy() > 0
    counts = np.zeros((3, 3))
    np.add.at(counts, (h[np.flatnonzero(later) - 1], h[later]), w[later])
    np.testing.assert_allclose(a.cpd("h").to_numpy(), counts / counts.sum(axis=1, keepdims=True), atol=1e-12)


def test_sequence_weights_must_be_one_per_sequence():
    fitted = discrete_hmm()
    data, _ = weighted_and_replicated(fitted)
    bad = data.assign(w=data["w"].where(data.index != 2, 7.0))
    with pytest.raises(pgm.DataError, match=r"weights column 'w' weighs whole sequences.*1 sequence \(\[0\]\) has "
                                            r"several \(sequence 0: 3 and 7, rows \[0, 1, 2"):
        pgm.fit(fitted.spec, bad, weights="w")
    with pytest.raises(pgm.DataError, match=r"weights column 'w': 1 negative value"):
        fitted.log_likelihood(data.assign(w=data["w"].where(data.index != 0, -1.0)), weights="w")
    with pytest.raises(pgm.DataError, match="missing weights column 'v'"):
        fitted.log_likelihood(data, weights="v")
    with pytest.raises(pgm.DataError, match="sum to 0"):
        fitted.log_likelihood(data.assign(w=0.0), weights="w")
    # a sequence of weight 0 is no sequence
    zero = data.assign(w=data["w"].where(data["seq"] != 2, 0.0))
    assert fitted.log_likelihood(zero, weights="w") == pytest.approx(
        fitted.log_likelihood(data[data["seq"] != 2], weights="w"), rel=1e-12)


def viterbi_counts(fitted, data):
    """One hard-EM update from ``fitted``, by hand: normalised counts along each sequence's Viterbi path."""
    best = fitted.most_probable(data.drop(columns="w")).sort_values(["seq", "t"])
    h, o, t = best["h"].to_numpy(), best["o"].cat.codes.to_numpy(), best["t"].to_numpy()
    w = data.set_index(["seq", "t"]).loc[list(zip(best["seq"], best["t"])), "w"].to_numpy()
    first = np.bincount(h[t == 0], weights=w[t == 0], minlength=3)
    trans = np.zeros((3, 3))
    later = np.flatnonzero(t > 0)
    np.add.at(trans, (h[later - 1], h[later]), w[later])
    emit = np.zeros((3, 3))
    np.add.at(emit, (h, o), w)
    return first / first.sum(), trans / trans.sum(axis=1, keepdims=True), emit / emit.sum(axis=1, keepdims=True)


def test_hard_em_update_counts_along_the_viterbi_path():
    fitted = discrete_hmm()
    data = fitted.sample(40, seed=2, length=12).drop(columns="h")
    data = data[data["t"] < np.tile([12, 7, 3, 10], 10).repeat(12)].reset_index(drop=True)
    data["w"] = (data["seq"] % 3 + 1).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = pgm.fit(fitted.spec, data, learner="hard-em", init=fitted, max_iter=1, weights="w")
    first, trans, emit = viterbi_counts(fitted, data)
    np.testing.assert_allclose(one.cpd("h@first").to_numpy().ravel(), first, atol=1e-12)
    np.testing.assert_allclose(one.cpd("h").to_numpy(), trans, atol=1e-12)
    np.testing.assert_allclose(one.cpd("o").to_numpy(), emit, atol=1e-12)
    assert one.info["learner"] == "hard-em"
    assert one.history[0] == pytest.approx(fitted.log_likelihood(data, weights="w"), rel=1e-12)
    # run to the end: a fixed point, where the update reproduces the parameters it started from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = pgm.fit(fitted.spec, data, learner="hard-em", init=fitted, max_iter=100, weights="w")
    assert done.info["converged"]
    first, trans, emit = viterbi_counts(done, data)
    np.testing.assert_allclose(done.cpd("h").to_numpy(), trans, atol=1e-12)
    np.testing.assert_allclose(done.cpd("o").to_numpy(), emit, atol=1e-12)


def test_cli_fit_and_score_with_sequence_weights_and_hard_em(tmp_path, capsys):
    from pgm.cli import main

    fitted = discrete_hmm()
    data, repeated = weighted_and_replicated(fitted)
    data.to_csv(tmp_path / "w.csv", index=False)
    model = tmp_path / "hmm.yaml"
    model.write_text("name: hmm\nsequence: {id: seq, order: t}\nnodes:\n"
                     "  h: {states: 3, latent: true, prev: [h]}\n  o: {states: [a, b, c], parents: [h]}\n")
    out = tmp_path / "f.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(model), str(tmp_path / "w.csv"), "--weights", "w", "--max-iter", "5",
                     "-o", str(out)]) == 0
        api = pgm.fit(model, data, weights="w", max_iter=5)
    capsys.readouterr()
    assert pgm.load(out).to_params() == api.to_params()
    assert main(["score", str(out), str(tmp_path / "w.csv"), "--weights", "w"]) == 0
    printed = capsys.readouterr().out
    assert f"total log-likelihood: {api.log_likelihood(repeated):.10g}" in printed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(model), str(tmp_path / "w.csv"), "--learner", "hard-em", "--max-iter", "3",
                     "-o", str(out)]) == 0
    assert "iterations" in capsys.readouterr().out and pgm.load(out).log_likelihood(data) < 0
    data.assign(w=data["t"]).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["fit", str(model), str(tmp_path / "bad.csv"), "--weights", "w", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "weights column 'w' weighs whole sequences" in err and len(err.strip().splitlines()) == 1


def test_a_gaussian_hidden_state_refuses_sequence_weights_and_hard_em_and_forecasts():
    spec = {"name": "lds", "sequence": {"id": "seq", "order": "t"},
            "nodes": {"s": {"type": "gaussian", "latent": True, "prev": ["s"]},
                      "y": {"type": "gaussian", "parents": ["s"]}}}
    lds = FittedModel.from_spec(parse_spec({**spec, "params": {
        "s@first": {"intercept": 0.0, "covariance": 1.0},
        "s": {"intercept": 0.0, "coef": [0.9], "covariance": 0.2},
        "y": {"intercept": 0.5, "coef": [1.0], "covariance": 0.3}}}))
    data = lds.sample(4, seed=0, length=5).drop(columns="s")
    with pytest.raises(pgm.DataError, match="sequence weights are not supported for a gaussian hidden state"):
        pgm.fit(parse_spec(spec), data.assign(w=1.0), weights="w")
    with pytest.raises(pgm.ModelError, match="hard EM needs discrete hidden states"):
        pgm.fit(parse_spec(spec), data, learner="hard-em", max_iter=2)
    # forecast propagates the last step's filtered state (the Kalman predictive; it was refused before)
    ahead = lds.forecast(data, proba=True)
    last = lds.posterior("s", data)[data["t"] == 4]
    np.testing.assert_allclose(ahead["y"], 0.5 + 0.9 * last["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ahead["variance(y)"], 0.3 + 0.81 * last["variance"].to_numpy() + 0.2, rtol=1e-12)
    # the log-likelihood of weighted sequences is the weighted sum (the Kalman filter's terms)
    w = data["seq"].to_numpy() + 1.0
    each = [lds.log_likelihood(data[data["seq"] == s]) for s in range(4)]
    assert lds.log_likelihood(data.assign(w=w), weights="w") == pytest.approx(np.dot(np.arange(1, 5), each), rel=1e-12)
