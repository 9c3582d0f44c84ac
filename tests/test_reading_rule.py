"""One reading rule on every path (docs/format.md, "Missing data"; pgm/io/table.py).

A cell is missing when it is empty or its text is in ``na_values``; a cell whose text is a
declared state label is that state, whatever it looks like.  Every reader must give the same
codes: pyarrow's CSV reader (in memory and streamed), pandas' C parser (when pyarrow is
absent), Parquet (in memory and streamed), a DataFrame of strings, and Dask (in
tests/test_distributed.py, on the module's one cluster).  The reference is an independent
count: ``pd.read_csv(keep_default_na=False, dtype=str)`` grouped by the columns.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgm
import pgm.encode as pgm_encode
from pgm.cli import main
from pgm.encode import encode
from pgm.errors import DataError, PGMError
from pgm.graph import build

ROOT = Path(__file__).resolve().parents[1]

#: texts pandas (and pyarrow) take for missing by default, and other look-alikes: all declared states here
TOKENS = ["None", "NA", "null", "NULL", "NaN", "nan", "N/A", "n/a", "#N/A", "<NA>", "-nan", "1.#IND", "-1.#QNAN",
          "#NA", "NaN%", "True", "false", "007", "1.0", "1e3", "n/d"]
CHILD = ["True", "FALSE", "0", " x", "y "]


def write_model(path: Path, a_states: list[str], b_states: list[str]) -> Path:
    spec = {"name": "tokens", "nodes": {"a": {"states": a_states}, "b": {"states": b_states, "parents": ["a"]}}}
    path.write_text(yaml.safe_dump(spec))
    return path


def token_rows(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.choice(TOKENS, n), "b": rng.choice(CHILD, n)})


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The model, a CSV file written with every cell quoted in a third of the rows, and a Parquet file."""
    root = tmp_path_factory.mktemp("tokens")
    model = write_model(root / "tokens.yaml", TOKENS, CHILD)
    rows = token_rows()
    csv = root / "tokens.csv"
    text = rows.to_csv(index=False)
    lines = text.splitlines()
    # quoted cells are read as the same text (pandas would take a quoted "NA" for missing too)
    lines = [lines[0]] + [",".join(f'"{c}"' for c in line.split(",")) if i % 3 == 0 else line
                          for i, line in enumerate(lines[1:])]
    csv.write_text("\n".join(lines) + "\n")
    parquet = root / "tokens.parquet"
    rows.to_parquet(parquet)
    return model, csv, parquet


def reference_tables(csv: Path) -> dict[str, np.ndarray]:
    """MLE tables by an independent count of the file's text."""
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    a = frame.groupby("a").size().reindex(TOKENS, fill_value=0).to_numpy(float)
    ab = frame.groupby(["a", "b"]).size().unstack(fill_value=0).reindex(index=TOKENS, columns=CHILD, fill_value=0)
    ab = ab.to_numpy(float)
    return {"a": a / a.sum(), "b": ab / ab.sum(axis=1, keepdims=True)}


def no_pyarrow(monkeypatch):
    """The in-memory reader as it runs where pyarrow is not installed: pandas' C parser."""
    monkeypatch.setattr(pgm_encode, "_pyarrow_csv", lambda: None)


def readers(model: Path, csv: Path, parquet: Path, monkeypatch) -> dict[str, object]:
    """Fitted models of every reader (but Dask, see tests/test_distributed.py)."""
    out = {
        "pyarrow": pgm.fit(model, csv),
        "stream-csv": pgm.fit(model, csv, chunk_rows=37),
        "parquet": pgm.fit(model, parquet),
        "stream-parquet": pgm.fit(model, parquet, chunk_rows=37),
        "strings": pgm.fit(model, pd.read_csv(csv, keep_default_na=False, dtype=str)),
    }
    with monkeypatch.context() as m:
        no_pyarrow(m)
        out["pandas-c"] = pgm.fit(model, csv)
    return out


def test_every_na_token_is_a_state_on_every_reader(files, monkeypatch):
    model, csv, parquet = files
    ref = reference_tables(csv)
    fits = readers(model, csv, parquet, monkeypatch)
    for name, fitted in fits.items():
        assert fitted.info["learner"] == "mle", name  # nothing was read as missing: no EM
        np.testing.assert_allclose(fitted.cpds["a"].probs[0], ref["a"], rtol=0, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(fitted.cpds["b"].probs, ref["b"], rtol=0, atol=1e-15, err_msg=name)
    # scored through every reader: the same log-likelihood, and the same per row
    fitted = fits["pyarrow"]
    scores = {"pyarrow": fitted.log_likelihood(csv), "parquet": fitted.log_likelihood(parquet),
              "strings": fitted.log_likelihood(pd.read_csv(csv, keep_default_na=False, dtype=str))}
    rows = fitted.row_log_likelihood(csv)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        scores["pandas-c"] = fitted.log_likelihood(csv)
        np.testing.assert_array_equal(fitted.row_log_likelihood(csv), rows)
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    expected = float(np.sum(np.log(ref["a"][[TOKENS.index(v) for v in frame["a"]]])
                            + np.log(ref["b"][[TOKENS.index(v) for v in frame["a"]],
                                              [CHILD.index(v) for v in frame["b"]]])))
    for name, value in scores.items():
        assert value == pytest.approx(expected, rel=1e-12, abs=0), name


def test_encoded_codes_are_equal_on_every_reader(files, monkeypatch):
    model, csv, parquet = files
    graph = build(pgm.load(model))
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    want = {"a": np.array([TOKENS.index(v) for v in frame["a"]]), "b": np.array([CHILD.index(v) for v in frame["b"]])}
    got = {"pyarrow": encode(graph, csv), "parquet": encode(graph, parquet), "strings": encode(graph, frame)}
    with monkeypatch.context() as m:
        no_pyarrow(m)
        got["pandas-c"] = encode(graph, csv)
    reader = pgm.stream.ChunkReader(graph, csv, 50)
    chunks = [data for _, data in reader.encoded()]
    got["stream"] = pgm_encode.EncodedData(len(frame), {k: np.concatenate([c.codes[k] for c in chunks]) for k in "ab"},
                                           {})
    for name, enc in got.items():
        for k in "ab":
            np.testing.assert_array_equal(enc.codes[k], want[k], err_msg=name)
        assert not enc.missing, name


def test_empty_and_na_values_are_missing_and_labels_win(tmp_path, monkeypatch):
    model = write_model(tmp_path / "m.yaml", ["NA", "yes", "no"], ["x", "y"])
    graph = build(pgm.load(model))
    csv = tmp_path / "d.csv"
    csv.write_text('a,b\nNA,x\n,y\n"",x\n?,y\nyes,-\nno,\n')
    frames = {"pyarrow": lambda **kw: encode(graph, csv, **kw),
              "stream": lambda **kw: next(pgm.stream.ChunkReader(graph, csv, 100, **kw).encoded())[1]}
    with pytest.raises(DataError, match=r"d.csv: column 'a': unknown label in 1 row \(line 5: '\?'\)"):
        encode(graph, csv)
    for name, read in frames.items():
        enc = read(options=pgm.io.table.read_options(["?", "-", "NA"]))
        # NA is a declared state of a: the label wins over na_values; in b it is no label, so missing
        np.testing.assert_array_equal(enc.codes["a"], [0, -1, -1, -1, 1, 2], err_msg=name)
        np.testing.assert_array_equal(enc.codes["b"], [0, 1, 0, 1, -1, -1], err_msg=name)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        enc = encode(graph, csv, options=pgm.io.table.read_options(["?", "-"]))
        np.testing.assert_array_equal(enc.codes["a"], [0, -1, -1, -1, 1, 2])
    # the API: pgm.fit and the fitted methods take na_values
    fitted = quiet(pgm.fit, model, csv, na_values=["?", "-"])
    assert fitted.info["learner"] == "em"
    assert np.isfinite(fitted.log_likelihood(csv, na_values=["?", "-"]))
    assert fitted.posterior("a", csv, na_values=["?", "-"]).shape == (6, 3)
    with pytest.raises(DataError, match="line 5"):
        fitted.log_likelihood(csv)
    # a DataFrame: None and NaN objects are missing, the texts "None" and "" follow the rule
    frame = pd.DataFrame({"a": ["NA", None, np.nan, "", "?"], "b": ["x", "y", "x", "None", "y"]})
    with pytest.raises(DataError, match=r"column 'b': unknown label in 1 row \(row 3: 'None'\)"):
        encode(graph, frame, options=pgm.io.table.read_options(["?"]))
    enc = encode(graph, frame.assign(b="x"), options=pgm.io.table.read_options(["?"]))
    np.testing.assert_array_equal(enc.codes["a"], [0, -1, -1, -1, -1])


NUMBER_CELLS = ["1.5", "-2", "+.5", "1e3", "1E-2", "nan", "NaN", "-nan", "", "7.", " 2", '" 3 "']


def test_numbers_in_gaussian_columns_agree_on_every_reader(tmp_path, monkeypatch):
    """The text nan is missing in a gaussian column; other text is refused by every reader alike."""
    spec = {"name": "g", "nodes": {"c": {"states": ["NaN", "x"]}, "g": {"type": "gaussian", "parents": ["c"]}}}
    model = tmp_path / "g.yaml"
    model.write_text(yaml.safe_dump(spec))
    graph = build(pgm.load(model))
    csv = tmp_path / "g.csv"
    csv.write_text("c,g\n" + "".join(f"NaN,{v}\n" for v in NUMBER_CELLS))
    want = np.array([1.5, -2, 0.5, 1000, 0.01, np.nan, np.nan, np.nan, np.nan, 7.0, 2.0, 3.0])
    got = {"pyarrow": encode(graph, csv).values["g"][:, 0],
           "strings": encode(graph, pd.read_csv(csv, keep_default_na=False, dtype=str)).values["g"][:, 0],
           "stream": next(pgm.stream.ChunkReader(graph, csv, 4).encoded())[1].values["g"][:, 0]}
    with monkeypatch.context() as m:
        no_pyarrow(m)
        got["pandas-c"] = encode(graph, csv).values["g"][:, 0]
    for name, values in got.items():
        np.testing.assert_array_equal(values[:len(want)] if name != "stream" else values, want[:len(values)],
                                      err_msg=name)
    assert (encode(graph, csv).codes["c"] == 0).all()  # the label NaN stays a state in the discrete column
    for bad in ["NA", "1_000", "None", "1,5", "?"]:
        csv.write_text(f'c,g\nx,1\nx,"{bad}"\n')
        messages = []
        for reader in ("pyarrow", "stream", "pandas-c"):
            with monkeypatch.context() as m:
                if reader == "pandas-c":
                    no_pyarrow(m)
                with pytest.raises(DataError) as err:
                    quiet(pgm.fit, model, csv, chunk_rows=1 if reader == "stream" else None)
            messages.append(str(err.value))
        assert all("line 3" in m and "g.csv" in m and "not numbers" in m for m in messages), (bad, messages)
    csv.write_text('c,g\nx,1\nx,NA\n')
    assert np.isnan(encode(graph, csv, options=pgm.io.table.read_options(["NA"])).values["g"][1, 0])


def sample_round_trip(tmp_path: Path, labels: list[str], children: list[str], n: int, seed: int) -> None:
    model = write_model(tmp_path / "rt.yaml", labels, children)
    rng = np.random.default_rng(seed)
    true = pd.DataFrame({"a": rng.choice(labels, 60), "b": rng.choice(children, 60)})
    fitted = pgm.fit(model, true, prior={"dirichlet": 1})
    sample = fitted.sample(n, seed=seed)
    csv = tmp_path / "rt.csv"
    sample.to_csv(csv, index=False)  # what `pgm sample` writes
    refit = quiet(pgm.fit, model, csv)  # (a DataWarning for parent states the sample never drew)
    assert refit.info["learner"] == "mle"
    counts = sample.groupby(["a", "b"], observed=False).size().unstack().reindex(index=labels, columns=children)
    counts = counts.fillna(0).to_numpy(float)
    a = counts.sum(axis=1)
    np.testing.assert_allclose(refit.cpds["a"].probs[0], a / a.sum(), rtol=0, atol=1e-15)
    seen = a > 0
    np.testing.assert_allclose(refit.cpds["b"].probs[seen], counts[seen] / a[seen, None], rtol=0, atol=1e-15)


def test_sample_output_reads_back_exactly(tmp_path):
    """Labels that look like missing markers, numbers, booleans, padded or quoted text round trip."""
    labels = TOKENS + [" x", "x ", "a,b", 'say "hi"', "é", "0", "-0", "1e-5"]
    sample_round_trip(tmp_path, labels, ["True", "False", "0.0", "None"], 3000, 0)


LABEL = st.sampled_from(TOKENS + ["x", " x", "a,b", "None ", "TRUE", "0", "00"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.lists(LABEL, min_size=2, max_size=6, unique=True), b=st.lists(LABEL, min_size=2, max_size=4, unique=True),
       n=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_property_sample_csv_fit_recovers_the_counts(tmp_path_factory, a, b, n, seed):
    sample_round_trip(tmp_path_factory.mktemp("prop"), a, b, n, seed)


# --------------------------------------------------------------------------- rows, separators, lines
SP = ROOT / "models" / "sprinkler.yaml"
HEADER = "cloudy,sprinkler,rain,wet_grass\n"


@pytest.mark.parametrize("body, line, what", [
    ("yes,on,yes,yes\nno,off,no\n", 3, "3 fields, fewer fields than the header"),
    ("yes,on,yes,yes\nyes,on,yes,yes\n\nno,off,no,no,no\n", 5, "5 fields, more fields than the header"),
    ('yes,on,yes,yes\n"no\nsplit",off,no,no\nyes,on\n', 5, "2 fields, fewer"),
    ("yes,on,yes,yes\r\nyes,on\r\n", 3, "2 fields"),
])
def test_rows_with_another_field_count_name_their_line_on_every_reader(tmp_path, monkeypatch, body, line, what):
    path = tmp_path / "ragged.csv"
    path.write_text(HEADER + body, newline="")
    runs = {"pyarrow": lambda: pgm.fit(SP, path), "stream": lambda: pgm.fit(SP, path, chunk_rows=1)}
    for name, run in runs.items():
        with pytest.raises(DataError, match=fr"ragged.csv: line {line}: the row has {what}"):
            quiet(run)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        with pytest.raises(DataError, match=fr"ragged.csv: line {line}: the row has {what}"):
            quiet(pgm.fit, SP, path)


def test_a_semicolon_file_says_which_separator_to_pass(tmp_path, capsys):
    path = tmp_path / "semi.csv"
    path.write_text("cloudy;sprinkler;rain;wet_grass\nyes;on;yes;yes\nno;off;no;no\n")
    for kwargs in ({}, {"chunk_rows": 1}):
        with pytest.raises(DataError, match=r"semi.csv: missing columns .*looks separated by ';'.*pass sep=';'$"):
            pgm.fit(SP, path, **kwargs)  # Python's wording; the command line says --sep ';' (test_cli_table)
    assert pgm.fit(SP, path, sep=";").info["learner"] == "mle"
    assert pgm.fit(SP, path, sep=";", chunk_rows=1).info["learner"] == "mle"
    tsv = tmp_path / "data.tsv"
    tsv.write_text(HEADER.replace(",", "\t") + "yes\ton\tyes\tyes\n")
    assert pgm.fit(SP, tsv).info["learner"] == "mle"  # .tsv stays tab-separated
    with pytest.raises(PGMError, match="sep must be one character"):
        pgm.fit(SP, path, sep=";;")
    with pytest.raises(PGMError, match="na_values must be texts"):
        pgm.fit(SP, path, sep=";", na_values=[float("nan")])
    # predicting: every node's column may be absent, so the one `a;b;c` column was "no evidence" and every
    # row got the marginal mode without a word but "ignoring 1 column"; now the same hint as fit
    fitted = pgm.fit(SP, path, sep=";")
    with pytest.raises(DataError, match=r"semi.csv: no column of the data names a node.*looks separated by ';'"):
        fitted.predict(["cloudy", "sprinkler", "rain", "wet_grass"], path)
    fitted.save(tmp_path / "sp.fitted.yaml")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "sp.fitted.yaml"), str(path)]) == 2  # default: the absent nodes
    assert "no column of the data names a node" in capsys.readouterr().err
    assert fitted.predict("rain", path, sep=";").tolist() == ["yes", "no"]


def test_a_byte_order_mark_is_not_part_of_the_first_column_name_on_every_reader(tmp_path, monkeypatch):
    """Excel's "CSV UTF-8" starts with a BOM: the in-memory readers dropped it, the streamed reader's header
    kept it ('missing column 'cloudy' (did you mean '\\ufeffcloudy'?)')."""
    body = HEADER + "yes,on,yes,yes\nno,off,no,no\nyes,off,yes,no\n"
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(body, encoding="utf-8")
    bom.write_text(body, encoding="utf-8-sig")
    assert bom.read_bytes()[:3] == b"\xef\xbb\xbf"
    ref = quiet(pgm.fit, SP, plain, prior={"dirichlet": 1})
    fits = [quiet(pgm.fit, SP, bom, prior={"dirichlet": 1}, **kw) for kw in ({}, {"chunk_rows": 1}, {"chunk_rows": 2})]
    with monkeypatch.context() as m:
        no_pyarrow(m)
        fits.append(quiet(pgm.fit, SP, bom, prior={"dirichlet": 1}))
    for got in fits:
        for key in ref.cpds:
            np.testing.assert_array_equal(got.cpds[key].probs, ref.cpds[key].probs)
    bom.write_text(HEADER + "yes,on,yes,yes\nno,maybe,no,no\n", encoding="utf-8-sig")
    for kw in ({}, {"chunk_rows": 1}):  # lines as an editor counts them
        with pytest.raises(DataError, match=r"bom.csv: column 'sprinkler': unknown label in 1 row \(line 3: 'maybe'\)"):
            quiet(pgm.fit, SP, bom, **kw)


def test_errors_name_the_file_and_the_line_on_every_reader(tmp_path, monkeypatch):
    path = tmp_path / "bad.csv"
    # a blank line and a quoted newline (in a column no node reads) move the row down: line 6, not row 2 + 2
    path.write_text(HEADER.replace("\n", ",note\n") + 'yes,on,yes,yes,a\n\n"no",off,no,no,"two\nlines"\n'
                    'yes,maybe,no,no,b\n')
    expected = r"bad.csv: column 'sprinkler': unknown label in 1 row \(line 6: 'maybe'\)"
    for kwargs in ({}, {"chunk_rows": 1}, {"chunk_rows": 2}):
        with pytest.raises(DataError, match=expected):
            quiet(pgm.fit, SP, path, **kwargs)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        with pytest.raises(DataError, match=expected):
            quiet(pgm.fit, SP, path)
    # a Parquet file names the file and the row; a DataFrame its row label
    frame = pd.DataFrame({"cloudy": ["yes", "no"], "sprinkler": ["on", "maybe"], "rain": ["no", "no"],
                          "wet_grass": ["no", "no"]}, index=["first", "second"])
    frame.to_parquet(tmp_path / "bad.parquet")
    for kwargs in ({}, {"chunk_rows": 1}):  # by position, not by the pandas index the file stores
        with pytest.raises(DataError, match=r"bad.parquet: column 'sprinkler'.*\(row 1: 'maybe'\)"):
            pgm.fit(SP, tmp_path / "bad.parquet", **kwargs)
    with pytest.raises(DataError, match=r"column 'sprinkler'.*\(row second: 'maybe'\)"):
        pgm.fit(SP, frame)


def test_a_stored_pandas_index_is_not_data_on_every_parquet_reader(tmp_path):
    """DataFrame.to_parquet stores the index (here 0, 2, 4, ... after a filter) as `__index_level_0__`: in memory
    it named rows by those labels and streamed it was an unknown column with a warning; now neither."""
    rows = pgm.load(ROOT / "models" / "sprinkler.yaml")
    sample = pd.DataFrame({"cloudy": ["yes", "no"] * 20, "sprinkler": ["on", "off", "off", "on"] * 10,
                           "rain": ["no", "yes", "yes", "no", "no"] * 8, "wet_grass": ["yes", "no"] * 20})
    kept = sample.iloc[::2]
    assert list(kept.index[:3]) == [0, 2, 4]
    kept.to_parquet(tmp_path / "kept.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", pgm.DataWarning)  # no "ignoring 1 column that names no node"
        ref = pgm.fit(rows, kept.reset_index(drop=True), prior={"dirichlet": 1})
        for kwargs in ({}, {"chunk_rows": 3}):
            got = pgm.fit(rows, tmp_path / "kept.parquet", prior={"dirichlet": 1}, **kwargs)
            for key in ref.cpds:
                np.testing.assert_allclose(got.cpds[key].probs, ref.cpds[key].probs, rtol=1e-12)
    bad = kept.copy()
    bad.iloc[3, 1] = "maybe"  # position 3, index label 6
    bad.to_parquet(tmp_path / "bad.parquet")
    for kwargs in ({}, {"chunk_rows": 2}):
        with pytest.raises(DataError, match=r"bad.parquet: column 'sprinkler'.*\(row 3: 'maybe'\)"):
            pgm.fit(rows, tmp_path / "bad.parquet", **kwargs)


# --------------------------------------------------------------------------- the command line
def test_cli_na_and_sep(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("cloudy;sprinkler;rain;wet_grass\nyes;on;yes;?\nno;off;no;-\nyes;off;no;no\n")
    out = tmp_path / "f.yaml"
    assert main(["fit", str(SP), str(path), "--sep", ";", "--na", "?", "--na", "-", "-o", str(out)]) == 0
    assert main(["score", str(out), str(path), "--sep", ";", "--na", "?", "--na", "-"]) == 0
    assert "total log-likelihood" in capsys.readouterr().out
    assert main(["score", str(out), str(path), "--sep", ";"]) == 2
    assert "line 2: '?'" in capsys.readouterr().err
    help_text = subprocess.run([sys.executable, "-m", "pgm.cli", "fit", "--help"], capture_output=True, text=True,
                               cwd=ROOT).stdout
    assert "--na TEXT" in help_text and "--sep CHAR" in help_text and "whatever it looks like" in help_text


BIF = """network child_part { }
variable DuctFlow { type discrete [ 4 ] { Lo, Normal, High, None }; }
variable Sick { type discrete [ 2 ] { yes, no }; }
probability ( Sick ) { table 0.3, 0.7; }
probability ( DuctFlow | Sick ) {
  (yes) 0.05, 0.15, 0.35, 0.45;
  (no) 0.25, 0.25, 0.1, 0.4;
}
"""


def test_bif_with_a_none_state_converts_samples_and_fits_back_by_mle(tmp_path, capsys):
    """child's DuctFlow has a state None: convert -> sample -> fit is MLE with the sample's counts."""
    (tmp_path / "net.bif").write_text(BIF)
    for argv in (["convert", "net.bif", "-o", "net.yaml"], ["sample", "net.yaml", "-n", "5000", "--seed", "3",
                                                             "-o", "s.csv"],
                 ["fit", "net.yaml", "s.csv", "-o", "fit.yaml"], ["score", "fit.yaml", "s.csv"]):
        assert main([str(tmp_path / a) if a.endswith((".bif", ".yaml", ".csv")) else a for a in argv]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err  # no "rows with every cell missing"
    assert "iterations" not in out  # no EM: the fit was closed-form
    fitted = pgm.load(tmp_path / "fit.yaml")
    rows = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, dtype=str)
    counts = rows.groupby(["Sick", "DuctFlow"]).size().unstack().reindex(index=["yes", "no"],
                                                                          columns=["Lo", "Normal", "High", "None"])
    want = counts.to_numpy(float) / counts.to_numpy(float).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted.cpds["DuctFlow"].probs, want, rtol=0, atol=1e-12)
    assert fitted.cpd("DuctFlow").to_numpy().max() > 0.3  # P(None | yes) is about 0.45, not 0


def test_scores_take_na_values(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(HEADER + "yes,on,yes,yes\nno,off,no,?\nyes,off,no,no\n")
    with pytest.raises(DataError, match="line 3: '[?]'"):
        pgm.score(SP, path, "bdeu")
    complete = tmp_path / "c.csv"
    complete.write_text(HEADER + "yes,on,yes,yes\nyes,off,no,no\n")
    # with '?' missing the data are not complete, which BDeu needs: refused by name, not read as a label
    with pytest.raises(DataError, match="complete"):
        pgm.score(SP, path, "bdeu", na_values=["?"])
    fitted = pgm.fit(SP, complete, prior={"dirichlet": 1})
    assert fitted.score(path, "bic", na_values=["?"]) == pytest.approx(fitted.bic(path, na_values=["?"]))
    assert np.isfinite(pgm.score(fitted, path, "aic", na_values=["?"]))


def test_mle_on_missing_cells_names_the_lines(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "yes,on,yes,yes\n\nno,,no,no\nyes,off,no,no\nno,,no,no\n")
    # (streamed, the first chunk with missing cells is named: line 4 only)
    expected = r"column 'sprinkler': [12] rows?, first lines \[4(, 6)?\] of .*m.csv\); learner='mle' needs complete"
    for kwargs in ({}, {"chunk_rows": 2}):
        with pytest.raises(DataError, match=expected):
            pgm.fit(SP, path, learner="mle", **kwargs)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        with pytest.raises(DataError, match=expected):
            pgm.fit(SP, path, learner="mle")
