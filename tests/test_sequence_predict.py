"""Predictions of a sequence model per step (issue 14): the posterior of gaussian cells against the network
unrolled over every step (pgm's non-temporal Gaussian conditioning, another code path), and `pgm predict`
on sequences: one row per input row in the input order, posterior-based by default, Viterbi with --joint."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from pgm.cli import main
from test_forecast import TBN, _fitted, discrete_hmm, tbn_params, unrolled


def tbn_data(seed: int = 4) -> pd.DataFrame:
    seq = _fitted(TBN, tbn_params())
    data = seq.sample(12, seed=seed, length=3).drop(columns="r")
    rng = np.random.default_rng(seed)
    data["u"] = data["u"].astype(float).where(rng.random(len(data)) > 0.3)   # y's previous input, sometimes hidden
    data["z"] = data["z"].astype(float).where(rng.random(len(data)) > 0.3)
    data["y"] = data["y"].where(rng.random(len(data)) > 0.4)                  # the cells to predict
    return data


def test_gaussian_posterior_per_step_equals_the_unrolled_network():
    seq, data = _fitted(TBN, tbn_params()), tbn_data()
    wide = unrolled(3)
    table = data.pivot(index="seq", columns="t", values=["u", "z", "y"])
    table.columns = [f"{name}{t}" for name, t in table.columns]
    post = seq.posterior("y", data.sample(frac=1.0, random_state=2)).loc[data.index]
    assert list(post.columns) == ["mean", "variance"]
    for t in range(3):
        rows = data.index[data["t"] == t]
        want = wide.posterior(f"y{t}", table)
        np.testing.assert_allclose(post.loc[rows, "mean"].to_numpy(), want["mean"].to_numpy(), atol=1e-10)
        np.testing.assert_allclose(post.loc[rows, "variance"].to_numpy(), want["variance"].to_numpy(), atol=1e-10)
    seen = data["y"].notna()
    assert seen.any() and (~seen).any()
    np.testing.assert_array_equal(post.loc[seen, "mean"].to_numpy(), data.loc[seen, "y"].to_numpy())
    assert (post.loc[seen, "variance"] == 0).all() and (post.loc[~seen, "variance"] > 0).all()
    np.testing.assert_allclose(seq.predict("y", data).to_numpy(), post["mean"].to_numpy(), atol=0)


def test_cli_predict_on_sequences_per_step_in_the_input_order(tmp_path, capsys):
    fitted = discrete_hmm()
    fitted.save(tmp_path / "hmm.yaml")
    data = fitted.sample(4, seed=5, length=6).drop(columns="h")
    data = data[data["t"] < np.repeat([6, 2, 5, 1], 6)]      # sequences of different lengths
    data.loc[data.index[[1, 7]], "o"] = None
    data = data.sample(frac=1.0, random_state=3)              # rows in any order
    data.to_csv(tmp_path / "d.csv", index=False)
    model, path = str(tmp_path / "hmm.yaml"), str(tmp_path / "d.csv")
    assert main(["predict", model, path, "--proba"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert got[["seq", "t"]].to_numpy().tolist() == data[["seq", "t"]].to_numpy().tolist()
    post = fitted.posterior("h", data)
    np.testing.assert_allclose(got[["p(h=0)", "p(h=1)", "p(h=2)"]].to_numpy(), post.to_numpy(), atol=1e-12)
    assert got["h"].tolist() == post.to_numpy().argmax(axis=1).tolist()
    # --joint: the most probable path of each sequence (Viterbi), not the per-step argmax
    assert main(["predict", model, path, "--joint", "--node", "h", "o"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    best = fitted.most_probable(data)
    assert got["h"].tolist() == best["h"].tolist()
    assert got["o"].tolist() == best["o"].astype(str).tolist()  # the missing cells filled along the path
    assert main(["predict", model, path, "--node", "q"]) == 2
    assert "unknown node 'q' in predict()" in capsys.readouterr().err


def test_cli_predict_fills_missing_gaussian_cells_of_sequences(tmp_path, capsys):
    seq, data = _fitted(TBN, tbn_params()), tbn_data()
    seq.save(tmp_path / "tbn.yaml")
    data.drop(columns=["g", "x"], errors="ignore").to_csv(tmp_path / "d.csv", index=False)
    assert main(["predict", str(tmp_path / "tbn.yaml"), str(tmp_path / "d.csv"), "--node", "y", "--proba"]) == 0
    captured = capsys.readouterr()
    got = pd.read_csv(io.StringIO(captured.out))
    post = seq.posterior("y", data)
    np.testing.assert_allclose(got["y"].to_numpy(), post["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["variance(y)"].to_numpy(), post["variance"].to_numpy(), rtol=1e-12, atol=1e-300)
    assert "is kept, not predicted" in captured.err
