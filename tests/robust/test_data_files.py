"""Data files and frames that are not what the model needs: one ``pgm.DataError`` each, naming the problem.

Extends ``tests/test_encode.py`` (missing columns, unknown labels, NaN/inf, duplicated frame
columns) with what comes from real files: mixed types in one column, duplicated names in a
CSV header, rows with more fields than the header, a million-row CSV with one bad cell
(the error names its row), empty files, files that are not tables, and Parquet files whose
schema differs from the model's.

Rows are named by their DataFrame label, for a CSV file the 0-based data row: the file line
is the row plus 2 (the header is line 1).
"""

from __future__ import annotations

import gzip
import time
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema.load import parse_spec

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"

MIXED = """\
name: mixed
graph: directed
nodes:
  z: {states: 3}
  label: {states: [low, high], parents: [z]}
  x: {type: gaussian, parents: [z, label]}
"""


@pytest.fixture(scope="module")
def sprinkler():
    return pgm.load(MODELS / "sprinkler.yaml")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mixed.yaml"
    path.write_text(MIXED)
    return pgm.load(path)


def good_frame(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, n)
    return pd.DataFrame({"z": z, "label": rng.choice(["low", "high"], n), "x": rng.normal(size=n) + z})


def sprinkler_frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"cloudy": rng.choice(["yes", "no"], n), "sprinkler": rng.choice(["on", "off"], n),
                         "rain": rng.choice(["yes", "no"], n), "wet_grass": rng.choice(["yes", "no"], n)})


def refused(model, data, *fragments: str) -> str:
    """Fit, expect a DataError, check that every fragment is in its (one-line) message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(pgm.DataError) as info:
            pgm.fit(model, data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert "\n" not in message and "Traceback" not in message
    assert "np.int64" not in message and "np.float64" not in message, message  # plain values
    return message


def test_the_good_data_fit(mixed, sprinkler, tmp_path):
    frame = good_frame()
    pgm.fit(mixed, frame)
    frame.to_csv(tmp_path / "ok.csv", index=False)
    frame.to_parquet(tmp_path / "ok.parquet")
    pgm.fit(mixed, tmp_path / "ok.csv")
    pgm.fit(mixed, tmp_path / "ok.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgm.fit(sprinkler, sprinkler_frame())


# --------------------------------------------------------------------------- mixed types in one column
@pytest.mark.parametrize("cells, fragments", [
    ([1.0, "x", 2.5], ["column 'x'", "not numbers", "row 1: 'x'"]),
    ([1.0, True, 2.5], ["column 'x'", "not numbers", "row 1: True"]),
    ([1.0, [2.0], 2.5], ["column 'x'", "not numbers", "row 1: [2.0]"]),
    ([1.0, {"a": 1}, 2.5], ["column 'x'", "not numbers", "row 1: {'a': 1}"]),
    ([1.0, 10 ** 400, 2.5], ["column 'x'", "non-finite", "row 1: 1000000000"]),
    ([1.0, pd.Timestamp("2020-01-01"), 2.5], ["column 'x'", "not numbers", "row 1: Timestamp"]),
    ([1.0, 2 + 3j, 2.5], ["column 'x'", "not numbers", "row 1: (2+3j)"]),
], ids=["text", "boolean", "list", "mapping", "beyond-float", "date", "complex"])
def test_mixed_cells_in_a_gaussian_column(mixed, cells, fragments):
    frame = good_frame(3)
    frame["x"] = pd.Series(cells, dtype=object)
    refused(mixed, frame, *fragments)


def test_numbers_written_as_text_and_decimals_are_numbers(mixed):
    frame = good_frame(3)
    frame["x"] = pd.Series(["1.5", 2, Decimal("2.5")], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(mixed, frame)
    assert np.isfinite(fitted.log_likelihood(frame))


@pytest.mark.parametrize("column, dtype_values, fragments", [
    ("x", pd.date_range("2020", periods=3), ["column 'x'", "datetime64", "not real numbers"]),
    ("x", pd.to_timedelta([1, 2, 3], "s"), ["column 'x'", "timedelta64"]),
    ("x", np.array([1 + 1j, 2, 3]), ["column 'x'", "complex128"]),
    ("x", np.array([True, False, True]), ["column 'x'", "booleans"]),
    ("label", pd.Series(["low", ["high"], "low"], dtype=object), ["column 'label'", "unknown label", "row 1: ['high']"]),
    ("label", pd.Series(["low", {"s": 1}, 2.5], dtype=object), ["column 'label'", "unknown label", "row 1: {'s': 1}"]),
    ("label", pd.Series(["low", 1, True], dtype=object), ["column 'label'", "row 1: 1, row 2: True"]),
    ("z", pd.Series([0, "two", 1], dtype=object), ["column 'z'", "row 1: 'two'"]),
    ("z", [0.0, 1.5, 2.0], ["column 'z'", "codes must be integers 0..2", "row 1: 1.5"]),
    ("z", [0, 1, 3], ["column 'z'", "codes must be 0..2", "row 2: 3"]),
], ids=["datetime", "timedelta", "complex", "bool", "list-label", "dict-label", "int-and-bool-label",
        "text-code", "fractional-code", "code-out-of-range"])
def test_columns_of_the_wrong_kind(mixed, column, dtype_values, fragments):
    frame = good_frame(3)
    frame[column] = dtype_values
    refused(mixed, frame, *fragments)


def test_a_missing_gaussian_parent_names_its_rows_by_label():
    """A gaussian parent missing under a gaussian child is conditioned on (EM); under a discrete
    (logistic) child it has no exact inference, and the refusal names the rows by their labels."""
    spec = parse_spec({"name": "mixed-child", "nodes": {"rainfall": {"type": "gaussian"},
                                                      "wet": {"states": 2, "parents": ["rainfall"], "cpd": "logistic"}}})
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rainfall": rng.normal(size=6), "wet": [0, 1] * 3}, index=list("abcdef"))
    frame.loc["c", "rainfall"] = np.nan
    refused(spec, frame, "gaussian node 'rainfall' is hidden (missing) in rows ['c'] while its discrete child 'wet'")


def test_mixed_types_in_one_csv_column(mixed, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("z,label,x\n0,low,1.5\n1,high,oops\n2,low,2.5\n1,high,3\n")
    refused(mixed, path, "column 'x'", "line 3: 'oops'")
    path.write_text("z,label,x\n0,low,1.5\n1,high,2\n2,7,2.5\n1,TRUE,3\n")
    refused(mixed, path, "column 'label'", "line 4: '7', line 5: 'TRUE'", "['low', 'high']")
    path.write_text("z,label,x\n0,low,1.5\n1.0,high,2\nthree,low,2.5\n")
    refused(mixed, path, "column 'z'", "line 4: 'three'")


# --------------------------------------------------------------------------- duplicated and ragged columns
def test_duplicated_column_names_in_a_csv_header(sprinkler, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("cloudy,sprinkler,cloudy,rain,wet_grass\nyes,on,no,yes,yes\n")
    message = refused(sprinkler, path, "duplicated column names ['cloudy']", str(path))
    assert "cloudy.1" not in message


def test_duplicated_column_names_in_a_frame(sprinkler):
    frame = sprinkler_frame(5)
    frame = pd.concat([frame, frame[["rain"]]], axis=1)
    refused(sprinkler, frame, "duplicated column names ['rain']")


def test_duplicated_names_in_a_tsv_and_a_gzipped_csv(sprinkler, tmp_path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text("cloudy\tsprinkler\train\twet_grass\train\nyes\ton\tyes\tyes\tno\n")
    refused(sprinkler, tsv, "duplicated column names ['rain']")
    gz = tmp_path / "d.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("cloudy,sprinkler,rain,wet_grass,wet_grass\nyes,on,yes,yes,no\n")
    refused(sprinkler, gz, "duplicated column names ['wet_grass']")


def test_a_first_row_with_more_fields_than_the_header(sprinkler, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("cloudy,sprinkler,rain,wet_grass\nyes,on,yes,yes,extra,more\nno,off,no,no\n")
    refused(sprinkler, path, str(path), "more fields than the header", "4 columns")


def test_a_later_row_with_more_fields_names_its_line(sprinkler, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("cloudy,sprinkler,rain,wet_grass\nyes,on,yes,yes\nno,off,no,no,extra\n")
    refused(sprinkler, path, str(path), "line 3")


# --------------------------------------------------------------------------- empty files, files that are not tables
@pytest.mark.parametrize("name, content, fragment", [
    ("empty.csv", b"", "the file is empty"),
    ("blank.csv", b"\n\n  \n", "cannot be read as a csv table"),
    ("header.csv", b"cloudy,sprinkler,rain,wet_grass\n", "the data have no rows"),
    ("empty.parquet", b"", "cannot be read as a parquet table"),
    ("garbage.csv", bytes(range(256)) * 4, "cannot be read as a csv table"),
    ("garbage.parquet", bytes(range(256)) * 4, "cannot be read as a parquet table"),
    ("not-gzip.csv.gz", b"cloudy,sprinkler\nyes,on\n", "cannot be read as a gz table"),
    ("latin1.csv", "cloudy,sprinkler,rain,wet_grass\nyes,on,yes,caf\xe9\n".encode("latin-1"),
     "cannot be read as a csv table"),
    ("model.csv", (MODELS / "sprinkler.yaml").read_bytes(),
     "line 7: the row has 2 fields, more fields than the header"),
    ("model.parquet", (MODELS / "sprinkler.yaml").read_bytes(), "cannot be read as a parquet table"),
    ("data.xlsx", b"PK\x03\x04", "unknown data file type '.xlsx'; use .csv or .parquet"),
    ("noext", b"cloudy\nyes\n", "unknown data file type ''"),
], ids=lambda v: v if isinstance(v, str) and "." in v or v == "noext" else "")
def test_files_that_are_not_tables(sprinkler, tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    message = refused(sprinkler, path, fragment)
    assert message.startswith(str(path)) or fragment == "the data have no rows", message


def test_a_png_named_csv(sprinkler, tmp_path):
    path = tmp_path / "plot.csv"
    path.write_bytes((ROOT / "docs" / "plate_example.png").read_bytes())
    refused(sprinkler, path, str(path), "cannot be read as a csv table")


def test_a_missing_file_and_a_directory(sprinkler, tmp_path):
    refused(sprinkler, tmp_path / "nowhere.csv", "no such data file")
    refused(sprinkler, tmp_path, "is a directory")


def test_data_that_is_not_a_table_in_python(sprinkler):
    for value in (None, 3, [1, 2], np.zeros((3, 4)), sprinkler_frame(3)["rain"]):
        refused(sprinkler, value, "data must be a pandas DataFrame or a path")
    refused(sprinkler, {"cloudy": ["yes"], "rain": ["yes", "no"]}, "cannot make a table")
    refused(sprinkler, pd.DataFrame(), "the data have no rows")


# --------------------------------------------------------------------------- Parquet with another schema
def test_parquet_with_a_missing_column(sprinkler, tmp_path):
    path = tmp_path / "p.parquet"
    sprinkler_frame().drop(columns="rain").to_parquet(path)
    refused(sprinkler, path, "missing column 'rain'", "found: ['cloudy', 'sprinkler', 'wet_grass']")


def test_parquet_with_a_renamed_column(sprinkler, tmp_path):
    path = tmp_path / "p.parquet"
    sprinkler_frame().rename(columns={"rain": "rainy"}).to_parquet(path)
    refused(sprinkler, path, "missing column 'rain' (did you mean 'rainy'?)")


@pytest.mark.parametrize("column, values, fragments", [
    ("x", ["1.0", "2.0", "n/a"], ["column 'x'", "not numbers", "row 2: 'n/a'"]),
    ("x", [True, False, True], ["column 'x'", "booleans"]),
    ("x", pd.date_range("2020", periods=3), ["column 'x'", "datetime64"]),
    ("label", [0.5, 1.5, 2.5], ["column 'label'", "unknown label in 3 rows", "row 0: 0.5"]),
    ("z", ["a", "b", "c"], ["column 'z'", "unknown label in 3 rows"]),
    ("z", [0.5, 1.0, 2.0], ["column 'z'", "codes must be integers 0..2", "row 0: 0.5"]),
], ids=["text-in-gaussian", "bool-gaussian", "date-gaussian", "float-labels", "text-codes", "fractional-codes"])
def test_parquet_with_a_column_of_another_type(mixed, tmp_path, column, values, fragments):
    path = tmp_path / "p.parquet"
    frame = good_frame(3)
    frame[column] = values
    frame.to_parquet(path)
    refused(mixed, path, *fragments)


def test_scoring_a_file_of_another_schema(mixed, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(mixed, good_frame())
    path = tmp_path / "p.parquet"
    good_frame().drop(columns="label").to_parquet(path)
    with pytest.raises(pgm.DataError, match="missing column 'label'"):
        fitted.log_likelihood(path)


# --------------------------------------------------------------------------- a million rows, one bad cell
def _million_row_csv(path: Path, bad_row: int, bad_line: str, n: int = 1_000_000) -> None:
    """z,label,x rows (a 1000-row block repeated), with row ``bad_row`` replaced by ``bad_line``."""
    rng = np.random.default_rng(1)
    z = rng.integers(0, 3, 1000).astype(str)
    label = rng.choice(["low", "high"], 1000)
    x = np.round(rng.normal(size=1000), 6).astype(str)
    block = [f"{a},{b},{c}\n" for a, b, c in zip(z, label, x)]
    text = "".join(block)
    reps, rest = divmod(bad_row, 1000)
    with open(path, "w") as handle:
        handle.write("z,label,x\n")
        handle.write(text * reps)
        handle.write("".join(block[:rest]))
        handle.write(bad_line + "\n")
        handle.write("".join(block[rest + 1:]))
        handle.write(text * ((n - bad_row - 1) // 1000))


@pytest.mark.slow
@pytest.mark.parametrize("bad_line, fragments", [
    ("1,low,1.2.3", ["column 'x'", "1 cell that are not numbers", "line 654323: '1.2.3'"]),
    ("1,medium,0.5", ["column 'label'", "unknown label in 1 row", "line 654323: 'medium'"]),
    ("7,low,0.5", ["column 'z'", "line 654323: 7"]),
    ("1,low,1e999", ["column 'x'", "non-finite", "line 654323"]),
], ids=["gaussian", "label", "code", "overflow"])
def test_a_million_row_csv_with_one_bad_cell_names_its_row(mixed, tmp_path, bad_line, fragments):
    path = tmp_path / "big.csv"
    _million_row_csv(path, 654321, bad_line)
    start = time.perf_counter()
    refused(mixed, path, *fragments)
    assert time.perf_counter() - start < 30


@pytest.mark.slow
def test_a_million_row_csv_without_bad_cells_fits(mixed, tmp_path):
    path = tmp_path / "big.csv"
    _million_row_csv(path, 10, "1,low,0.5")
    start = time.perf_counter()
    fitted = pgm.fit(mixed, path)
    assert time.perf_counter() - start < 30
    assert np.isfinite(fitted.log_likelihood(good_frame()))
