"""Out-of-core fits (pgm.stream) equal the in-memory fit on the same rows.

Files are written to tmp_path from samples of the reference networks; chunk sizes are
small and not divisors of the row count, so every test crosses chunk boundaries.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
import pgm.api
from pgm import stream
from pgm.cli import main
from pgm.encode import encode
from pgm.errors import DataError, DataWarning, PGMError
from pgm.graph import build

pytest.importorskip("pyarrow")

from conftest import MODELS  # noqa: E402


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen parent configurations, EM max_iter
        return pgm.fit(*args, **kwargs)


def assert_same_cpds(a, b, atol=1e-12):
    assert a.cpds.keys() == b.cpds.keys()
    for key in a.cpds:
        x, y = a.cpds[key], b.cpds[key]
        if hasattr(x, "probs"):
            np.testing.assert_allclose(x.probs, y.probs, rtol=0, atol=atol, err_msg=key)
        else:
            for name in ("intercept", "coef", "cov"):
                np.testing.assert_allclose(getattr(x, name), getattr(y, name), rtol=atol, atol=atol, err_msg=key)


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def alarm_rows(alarm_true):
    return alarm_true.sample(6000, seed=0)


@pytest.fixture(scope="module")
def alarm_missing(alarm_rows):
    """alarm with 8% of the cells of six columns (roots and leaves) emptied."""
    df = alarm_rows.copy()
    rng = np.random.default_rng(1)
    for col in ["HISTORY", "CVP", "HYPOVOLEMIA", "LVFAILURE", "BP", "HR"]:
        df[col] = df[col].astype(object).where(rng.random(len(df)) >= 0.08, None)
    return df


@pytest.fixture(scope="module")
def gmm_rows():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    z = rng.integers(0, 3, 3000)
    x = centres[z] + rng.standard_normal((3000, 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]])
    return pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_complete_alarm_equals_in_memory(alarm_rows, tmp_path, suffix):
    path = write(alarm_rows, tmp_path / f"alarm{suffix}")
    model = pgm.load(MODELS / "alarm.yaml")
    streamed = quiet_fit(model, path, chunk_rows=997)
    assert streamed.info == {"learner": "mle", "chunk_rows": 997}
    assert_same_cpds(streamed, quiet_fit(model, alarm_rows))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_linear_gaussian_equals_in_memory(ecoli_true, tmp_path, suffix):
    rows = ecoli_true.sample(5000, seed=1) + 100.0  # far from the origin: centred moments must merge exactly
    path = write(rows, tmp_path / f"ecoli{suffix}")
    model = pgm.load(MODELS / "ecoli70.yaml")
    assert_same_cpds(quiet_fit(model, path, chunk_rows=613), quiet_fit(model, path), atol=1e-9)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_em_with_missing_cells_equals_in_memory(alarm_missing, tmp_path, suffix):
    path = write(alarm_missing, tmp_path / f"alarm{suffix}")
    model = pgm.load(MODELS / "alarm.yaml")
    start = quiet_fit(model, alarm_missing, max_iter=1, seed=2).cpds  # the in-memory starting point
    memory = quiet_fit(model, alarm_missing, max_iter=8, init=start)
    streamed = quiet_fit(model, path, chunk_rows=1500, max_iter=8, init=start)
    assert streamed.info["learner"] == "em"
    np.testing.assert_allclose(streamed.history, memory.history, rtol=0, atol=1e-9)
    assert_same_cpds(streamed, memory, atol=1e-9)


@pytest.mark.parametrize("chunk_rows", [1500, None])
def test_em_from_a_seed_equals_in_memory_for_any_chunking(alarm_missing, tmp_path, chunk_rows):
    """The documented rule: the start is built from sums over every chunk and the seed, not from one chunk."""
    path = write(alarm_missing, tmp_path / "alarm.parquet")
    model = pgm.load(MODELS / "alarm.yaml")
    memory = quiet_fit(model, alarm_missing, max_iter=5, seed=4)
    streamed = quiet_fit(model, path, chunk_rows=chunk_rows or len(alarm_missing), max_iter=5, seed=4)
    np.testing.assert_allclose(streamed.history, memory.history, rtol=1e-9)
    assert_same_cpds(streamed, memory, atol=1e-9)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_gaussian_mixture_equals_in_memory(gmm_rows, tmp_path, suffix):
    path = write(gmm_rows, tmp_path / f"gmm{suffix}")
    model = pgm.load(MODELS / "gmm.yaml")
    start = quiet_fit(model, path, max_iter=1, seed=0).cpds  # k-means++ on the whole file, in memory
    memory = quiet_fit(model, path, max_iter=30, init=start)
    streamed = quiet_fit(model, path, chunk_rows=701, max_iter=30, init=start)
    np.testing.assert_allclose(streamed.history, memory.history, rtol=0, atol=1e-9)
    assert_same_cpds(streamed, memory, atol=1e-8)


def test_a_large_file_streams_without_chunk_rows(alarm_rows, tmp_path, monkeypatch):
    path = write(alarm_rows, tmp_path / "alarm.parquet")
    monkeypatch.setattr(stream, "STREAM_BYTES", 1000)
    fitted = quiet_fit(pgm.load(MODELS / "alarm.yaml"), path)
    assert fitted.info["chunk_rows"] == stream.default_chunk_rows(build(pgm.load(MODELS / "alarm.yaml")))
    monkeypatch.setattr(stream, "STREAM_BYTES", 10**12)
    assert "chunk_rows" not in quiet_fit(pgm.load(MODELS / "alarm.yaml"), path).info


def test_bad_label_names_the_row_in_the_whole_file(alarm_rows, tmp_path):
    rows = alarm_rows.astype(object)
    rows.loc[4321, "CVP"] = "LOWISH"
    path = write(rows, tmp_path / "alarm.csv")
    with pytest.raises(DataError) as streamed:
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=1000)
    with pytest.raises(DataError) as memory:
        pgm.fit(MODELS / "alarm.yaml", path)
    assert "line 4323: 'LOWISH'" in str(streamed.value)
    assert str(streamed.value) == str(memory.value)


def test_bad_number_in_csv_names_column_and_row(ecoli_true, tmp_path):
    rows = ecoli_true.sample(3000, seed=0).astype(object)
    rows.loc[2500, "eutG"] = "n/d?"
    path = write(rows, tmp_path / "ecoli.csv")
    with pytest.raises(DataError, match=r"column 'eutG'.*line 2502: 'n/d\?'"):
        pgm.fit(MODELS / "ecoli70.yaml", path, chunk_rows=700)


def test_mle_on_missing_cells_names_the_rows(alarm_rows, alarm_missing, tmp_path):
    rows = pd.concat([alarm_rows.iloc[:2000].astype(object), alarm_missing.iloc[2000:].astype(object)])
    path = write(rows, tmp_path / "alarm.parquet")
    with pytest.raises(DataError, match=r"rows 2000\.\.2999: columns .* have missing cells"):
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=1000, learner="mle")


def test_missing_column_same_message_as_in_memory(alarm_rows, tmp_path):
    path = write(alarm_rows.drop(columns=["CVP"]).rename(columns={"HR": "HRR"}), tmp_path / "alarm.parquet")
    with pytest.raises(DataError) as streamed:
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=100)
    with pytest.raises(DataError) as memory:
        pgm.fit(MODELS / "alarm.yaml", path)
    assert str(streamed.value) == str(memory.value)
    assert "did you mean 'HRR'" in str(streamed.value)


def test_extra_column_warns_once(alarm_rows, tmp_path):
    path = write(alarm_rows.assign(note="x"), tmp_path / "alarm.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=500)
    ignoring = [w for w in caught if issubclass(w.category, DataWarning) and "ignoring" in str(w.message)]
    assert len(ignoring) == 1 and "note" in str(ignoring[0].message)


def test_options_are_checked(alarm_rows, tmp_path):
    path = write(alarm_rows.head(100), tmp_path / "alarm.parquet")
    with pytest.raises(PGMError, match="chunk_rows must be a positive number"):
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=0)
    with pytest.raises(PGMError, match="pass the file's path"):
        pgm.fit(MODELS / "alarm.yaml", alarm_rows, chunk_rows=10)
    with pytest.raises(PGMError, match=r"unknown options for learner 'mle': \['colour'\]"):
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=10, colour="red")
    with pytest.raises(PGMError, match="use learner='em'"):
        pgm.fit(MODELS / "gmm.yaml", write(pd.DataFrame({"x[0]": [0.0], "x[1]": [1.0]}), tmp_path / "x.csv"),
                chunk_rows=10, learner="mle")


def test_header_only_csv_has_no_rows(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("x[0],x[1]\n")
    with pytest.raises(DataError, match="no rows"):
        pgm.fit(MODELS / "gmm.yaml", path, chunk_rows=10)


def test_undirected_distinct_rows_give_the_in_memory_fit(tmp_path):
    from pgm.learn.loglinear import fit_loglinear

    graph = build(pgm.load(MODELS / "pairwise_table.yaml"))
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({n: rng.choice(list(graph[n].labels), 4000) for n in graph.order})
    rows.loc[rng.random(4000) < 0.05, "c"] = None  # missing cells: clamped expectations
    path = write(rows, tmp_path / "mrf.csv")
    merged = stream.distinct_rows(graph, path, chunk_rows=333)
    assert merged.weights.sum() == 4000
    memory = fit_loglinear(graph, encode(graph, rows))
    streamed = fit_loglinear(graph, merged)
    np.testing.assert_allclose(streamed.theta, memory.theta, rtol=0, atol=1e-9)
    # and through pgm.fit, which dispatches an undirected model to the same learner
    model = pgm.load(MODELS / "pairwise_table.yaml")
    np.testing.assert_allclose(quiet_fit(model, path, chunk_rows=333).theta, quiet_fit(model, rows).theta,
                               rtol=0, atol=1e-9)


def test_cli_chunk_rows(alarm_rows, tmp_path, capsys):
    path = write(alarm_rows, tmp_path / "alarm.parquet")
    out = tmp_path / "fitted.yaml"
    assert main(["fit", str(MODELS / "alarm.yaml"), path, "--chunk-rows", "1000", "-o", str(out)]) == 0
    fitted = pgm.load(out)
    assert_same_cpds(fitted, quiet_fit(pgm.load(MODELS / "alarm.yaml"), alarm_rows), atol=1e-9)
    assert main(["fit", str(MODELS / "alarm.yaml"), path, "--chunk-rows", "0"]) == 2
    assert "--chunk-rows must be a positive number" in capsys.readouterr().err  # the CLI names its flag


def test_em_rereads_warn_once(alarm_missing, tmp_path):
    """Encoding warnings come from the first read of the file, not again at every EM iteration."""
    rows = alarm_missing.astype(object)
    rows.iloc[10] = None  # a row with every cell missing
    path = write(rows, tmp_path / "alarm.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pgm.fit(MODELS / "alarm.yaml", path, chunk_rows=2500, max_iter=4)
    empty = [w for w in caught if "every cell missing" in str(w.message)]
    assert len(empty) == 1 and "row 10" in str(empty[0].message)


def test_reading_parquet_holds_one_chunk_not_the_file(alarm_true, tmp_path):
    """pyarrow's buffers stay those of one chunk while a Parquet file is read: with pre-buffering
    (pyarrow's default) the reader held the whole file's column chunks, so memory grew with it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "alarm.parquet"
    pq.write_table(pa.Table.from_pandas(alarm_true.sample(600_000, seed=3), preserve_index=False), path,
                   row_group_size=5000)
    reader = stream.ChunkReader(build(pgm.load(MODELS / "alarm.yaml")), path, 5000)
    base = pa.total_allocated_bytes()  # the pool is per process: earlier tests may still hold buffers
    held = max(pa.total_allocated_bytes() for _ in reader) - base
    assert held < path.stat().st_size / 2, (held, path.stat().st_size)


def _csv_with_blank_line(path, header: str, rows: list[str]) -> str:
    """A CSV whose blank third line moves every later row one line down (row r is on line r + 3)."""
    path.write_text(header + "\n" + rows[0] + "\n\n" + "\n".join(rows[1:]) + "\n")
    return str(path)


def test_streamed_em_errors_name_file_lines_as_in_memory(tmp_path):
    """An error of the E-step preparation in a later chunk names the file's line, not positions."""
    spec = tmp_path / "lg.yaml"
    spec.write_text("name: lg\nnodes:\n  x: {type: gaussian}\n  y: {states: [0, 1], parents: [x], cpd: logistic}\n"
                    "  z: {states: [a, b]}\n")
    rows = ["1.0,0,a", "2.0,1,b", "0.3,1,", "1.5,0,a", ",1,a", "0.5,1,a"]
    path = _csv_with_blank_line(tmp_path / "d.csv", "x,y,z", rows)  # data row 4 (x empty) is on line 7
    with pytest.raises(DataError) as memory:
        pgm.fit(pgm.load(spec), path)
    with pytest.raises(DataError) as streamed:
        pgm.fit(pgm.load(spec), path, chunk_rows=2)
    assert f"hidden (missing) in lines [7] of {path} while" in str(memory.value)
    assert str(streamed.value) == str(memory.value)
    assert "rows 4..5" not in str(streamed.value)


def test_streamed_em_zero_probability_rows_name_file_lines(tmp_path):
    """A row of probability 0 under EM's start, in a later chunk: the file's line, in memory and streamed."""
    spec = "name: zero\nnodes:\n  z: {states: 2, latent: true}\n  x: {states: [p, q], parents: [z]}\n" \
           "  y: {states: [p, q], parents: [z]}\n"
    fitted = tmp_path / "start.fitted.yaml"
    fitted.write_text(spec + "params:\n  z: {table: [0.5, 0.5]}\n  x: {table: [[1.0, 0.0], [1.0, 0.0]]}\n"
                      "  y: {table: [[0.3, 0.7], [0.6, 0.4]]}\n")
    (tmp_path / "zero.yaml").write_text(spec)
    rows = ["p,p", "p,q", "p,p", "p,q", "p,p", "q,q", "p,p"]
    path = _csv_with_blank_line(tmp_path / "d.csv", "x,y", rows)  # data row 5 (x = q) is on line 8
    model, init = pgm.load(tmp_path / "zero.yaml"), pgm.load(fitted)
    with pytest.raises(DataError) as memory:
        pgm.fit(model, path, init=init)
    with pytest.raises(DataError) as streamed:
        pgm.fit(model, path, init=init, chunk_rows=3)
    assert f"lines [8] of {path} have probability zero" in str(memory.value)
    assert str(streamed.value) == str(memory.value)
