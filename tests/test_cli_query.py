"""pgm query / predict / score / fit --init: what the command prints or writes equals the Python API."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ASIA = ROOT / "examples" / "asia.bif"


@pytest.fixture(scope="module")
def asia(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("asia")
    assert main(["convert", str(ASIA), "-o", str(root / "asia.fitted.yaml")]) == 0
    fitted = pgm.load(root / "asia.fitted.yaml")
    data = fitted.sample(300, seed=3).astype(object)
    data = data.mask(np.random.default_rng(0).random(data.shape) < 0.15)
    data.to_csv(root / "asia.csv", index=False)
    return root, fitted


def test_query_prints_the_api_answer(asia, capsys):
    root, fitted = asia
    capsys.readouterr()
    assert main(["query", str(root / "asia.fitted.yaml"), "lung", "tub", "--given", "xray=yes", "smoke=yes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "p(lung, tub | xray=yes, smoke=yes)"
    want = fitted.query(["lung", "tub"], {"xray": "yes", "smoke": "yes"})
    got = [float(line.split()[-1]) for line in out[3:]]
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-9)


def test_predict_writes_the_api_predictions(asia, tmp_path, capsys):
    root, fitted = asia
    data = pd.read_csv(root / "asia.csv", dtype=str, keep_default_na=False).replace("", np.nan)
    part = data.drop(columns=["dysp", "either"])
    part.to_csv(tmp_path / "part.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(root / "asia.fitted.yaml"), str(tmp_path / "part.csv"), "--proba", "-o", str(out)]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    want = fitted.predict(["either", "dysp"], part)
    assert list(got.columns[:8]) == list(part.columns) + ["either", "dysp"]
    for v in ("either", "dysp"):
        assert got[v].tolist() == want[v].astype(str).tolist()
        post = fitted.posterior(v, part.assign(**{w: np.nan for w in ("either", "dysp") if w != v}))
        np.testing.assert_allclose(got[f"p({v}=yes)"].astype(float), post["yes"], rtol=1e-12)
    # the given cells are written back as they were read (missing stays empty)
    assert got[list(part.columns)].replace("", np.nan).equals(part.reset_index(drop=True))
    # --joint: the most probable joint completion
    capsys.readouterr()
    assert main(["predict", str(root / "asia.fitted.yaml"), str(tmp_path / "part.csv"), "--joint",
                 "--node", "either", "dysp"]) == 0
    joint = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    want = fitted.predict(["either", "dysp"], part, joint=True)
    assert joint["either"].tolist() == want["either"].astype(str).tolist()
    assert joint["dysp"].tolist() == want["dysp"].astype(str).tolist()


def test_predict_a_gaussian_mixture_and_an_undirected_model(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = pgm.fit(pgm.load(MODELS / "gmm.yaml"), pd.DataFrame(
            np.vstack([np.random.default_rng(0).normal(m, 1, (50, 2)) for m in (0, 4, 8)]), columns=["x[0]", "x[1]"]))
    gmm.save(tmp_path / "gmm.fitted.yaml")
    data = gmm.sample(40, seed=1).drop(columns="z")
    data.to_csv(tmp_path / "x.csv", index=False)
    assert main(["predict", str(tmp_path / "gmm.fitted.yaml"), str(tmp_path / "x.csv"), "--proba",
                 "-o", str(tmp_path / "z.csv")]) == 0
    got = pd.read_csv(tmp_path / "z.csv")
    model = pgm.load(tmp_path / "gmm.fitted.yaml")
    np.testing.assert_array_equal(got["z"], model.predict("z", data))
    np.testing.assert_allclose(got[["p(z=0)", "p(z=1)", "p(z=2)"]], model.posterior("z", data), rtol=1e-9)
    # undirected: the ising grid with its centre spin absent
    ising = pgm.load(MODELS / "ising_3x3.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = pgm.fit(ising, pd.DataFrame(np.random.default_rng(2).choice([-1, 1], (200, 9)),
                                            columns=[f"s{r}{c}" for r in range(3) for c in range(3)]))
    truth.save(tmp_path / "ising.fitted.yaml")
    grid = truth.sample(50, seed=4).drop(columns="s11")
    grid.to_csv(tmp_path / "grid.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "ising.fitted.yaml"), str(tmp_path / "grid.csv")]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert got["s11"].tolist() == truth.predict("s11", grid).astype(int).tolist()


def test_score_prints_the_api_numbers(asia, capsys):
    root, fitted = asia
    capsys.readouterr()
    assert main(["score", str(root / "asia.fitted.yaml"), str(root / "asia.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = float(lines[0].split()[2])
    assert total == pytest.approx(fitted.log_likelihood(root / "asia.csv"), rel=1e-9)
    bic, aic = float(lines[1].split()[1]), float(lines[1].split()[3])
    assert bic == pytest.approx(fitted.bic(root / "asia.csv"), rel=1e-9)
    assert aic == pytest.approx(fitted.aic(root / "asia.csv"), rel=1e-9)
    assert main(["score", str(root / "asia.fitted.yaml"), str(root / "asia.csv"), "--per-row"]) == 0
    rows = [float(line.split("\t")[1]) for line in capsys.readouterr().out.splitlines()[2:]]
    np.testing.assert_allclose(rows, fitted.row_log_likelihood(root / "asia.csv"), rtol=1e-9)


def test_fit_init_starts_from_the_fitted_file(asia, tmp_path, capsys):
    """--init FITTED equals pgm.fit(init=the loaded model): EM from that start, same iterations."""
    root, fitted = asia
    out = tmp_path / "refit.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(MODELS / "asia.yaml"), str(root / "asia.csv"), "--init",
                     str(root / "asia.fitted.yaml"), "--max-iter", "3", "-o", str(out)]) == 0
        want = pgm.fit(pgm.load(MODELS / "asia.yaml"), root / "asia.csv", init=fitted, max_iter=3)
        default = pgm.fit(pgm.load(MODELS / "asia.yaml"), root / "asia.csv", max_iter=3)
    got = pgm.load(out)
    for key in want.cpds:
        np.testing.assert_allclose(got.cpds[key].probs, want.cpds[key].probs, rtol=1e-12)
    assert not all(np.allclose(got.cpds[k].probs, default.cpds[k].probs, rtol=0, atol=1e-9) for k in want.cpds)


def test_predict_warns_when_an_asked_node_has_its_column(asia, tmp_path, capsys):
    """`--node c` on a labelled file keeps the labels (predict conditions on observed cells): a user scoring
    a classifier would read back the labels as predictions, so the CLI says so and how to predict every row."""
    root, fitted = asia
    data = pd.read_csv(root / "asia.csv", dtype=str, keep_default_na=False).replace("", np.nan)
    kept = int(data["lung"].notna().sum())
    assert 0 < kept < len(data)
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["predict", str(root / "asia.fitted.yaml"), str(root / "asia.csv"), "--node", "lung",
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"column 'lung' of 'lung' is in the data: its value is kept, not predicted, in {kept} of " \
           f"{len(data)} rows; drop the column" in err
    got = pd.read_csv(out, dtype=str, keep_default_na=False)["lung"]
    observed = data["lung"].notna().to_numpy()
    assert got[observed].tolist() == data["lung"][observed].tolist()
    # without the column: every row predicted, no warning
    data.drop(columns=["lung"]).to_csv(tmp_path / "nolung.csv", index=False)
    assert main(["predict", str(root / "asia.fitted.yaml"), str(tmp_path / "nolung.csv"), "--node", "lung",
                 "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    want = fitted.predict("lung", data.drop(columns=["lung"]))
    assert pd.read_csv(out, dtype=str)["lung"].tolist() == want.astype(str).tolist()


def test_messages_agree_in_number(asia, tmp_path, capsys):
    """One row, one column, one iteration: singular words (was '1 row ... they carry', '1 iterations')."""
    root, fitted = asia
    rows = fitted.sample(20, seed=1).astype(object)
    rows.iloc[4] = np.nan
    rows["note"] = "x"
    rows.to_csv(tmp_path / "one.csv", index=False)
    capsys.readouterr()
    assert main(["fit", str(MODELS / "asia.yaml"), str(tmp_path / "one.csv"), "--max-iter", "1",
                 "-o", str(tmp_path / "f.yaml")]) == 0
    out, err = capsys.readouterr()
    assert "(1 iteration, log-likelihood" in out
    assert "1 row with every cell missing (line 6): it carries no information and contributes 0" in err
    assert "drop it to silence" in err
    assert "ignoring 1 column that names no node: ['note']" in err


HMM = """name: umbrella-hmm
sequence: {id: walk, order: day}
nodes:
  rain:     {states: [no, yes], latent: true, prev: [rain]}
  umbrella: {states: [no, yes], parents: [rain]}
params:
  rain@first:
    table: [0.5, 0.5]
  umbrella:
    table:
      - [0.8, 0.2]
      - [0.1, 0.9]
  rain:
    table:
      - [0.7, 0.3]
      - [0.3, 0.7]
"""


def test_sample_and_predict_a_sequence_model(tmp_path, capsys):
    """pgm sample had no way to give a sequence model its length; pgm predict's default nodes took the
    graph's previous-step copies (rain@prev) and crashed with an internal KeyError."""
    (tmp_path / "hmm.yaml").write_text(HMM)
    fitted = pgm.load(tmp_path / "hmm.yaml")
    data = tmp_path / "walks.csv"
    assert main(["sample", str(tmp_path / "hmm.yaml"), "-n", "4"]) == 2
    assert "pass --length T" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "hmm.yaml"), "-n", "4", "--length", "6", "--seed", "1", "-o", str(data)]) == 0
    assert "wrote 4 sequences of 6 steps (24 rows)" in capsys.readouterr().out
    assert data.read_text() == fitted.sample(4, seed=1, length=6).to_csv(index=False)
    rows = pd.read_csv(data)
    assert main(["predict", str(tmp_path / "hmm.yaml"), str(data)]) == 0  # rain is latent: predicted
    got = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    assert got["rain"].tolist() == fitted.predict("rain", rows).astype(str).tolist()
    assert main(["predict", str(tmp_path / "hmm.yaml"), str(data), "--node", "rain@prev"]) == 2
    assert "unknown node 'rain@prev' in predict(); nodes: ['rain', 'umbrella']" in capsys.readouterr().err
    (tmp_path / "coin.yaml").write_text("name: coin\nnodes:\n  c: {states: [h, t]}\nparams:\n  c:\n    table: [0.5, 0.5]\n")
    assert main(["sample", str(tmp_path / "coin.yaml"), "-n", "3", "--length", "2"]) == 2
    assert "--length is for sequence models" in capsys.readouterr().err


def test_rows_of_probability_zero_are_named_by_their_file_line(asia, tmp_path, capsys):
    """A CSV file's rows of probability 0 are named by line, as every other data message names them
    (was 'row 0', the position, for what an editor shows as line 2)."""
    root, fitted = asia
    path = tmp_path / "zero.csv"  # either=no with lung=yes: impossible under asia's deterministic 'either'
    path.write_text("asia,smoke,tub,lung,bronc,either,xray,dysp\nno,yes,no,no,no,no,yes,no\n\n"
                    "no,yes,,yes,no,no,yes,no\n")
    capsys.readouterr()
    assert main(["score", str(root / "asia.fitted.yaml"), str(path)]) == 0
    err = capsys.readouterr().err
    assert f"1 row (line 4 of {path}) has probability 0" in err
    assert "(e.g. --prior 1)" in err and "dirichlet" not in err  # the CLI names its flag, once
    with pytest.raises(pgm.DataError, match=r"predict\(\): 1 row \(line 4 of .*zero.csv\) has probability 0 .* "
                                            r"conditioned on it; drop or fix it, .*\(prior=\{'dirichlet': 1\}\)$"):
        fitted.predict("tub", path)  # Python names its argument
    assert main(["predict", str(root / "asia.fitted.yaml"), str(path), "--node", "tub"]) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith("refit with a prior (--prior 1)"), err
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", np.nan)
    with pytest.raises(pgm.DataError, match=r"1 row \(row 1\) has probability 0"):
        fitted.posterior("tub", frame)
