"""Encoding data at the boundary: labels, codes, categoricals and files become codes and floats,
and every data problem is a ``pgm.DataError`` that names the column, the rows and the values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.encode import encode
from pgm.graph import build
from pgm.learn import choose
from pgm.schema import parse_spec

SPEC = {
    "name": "enc",
    "nodes": {
        "smoke": {"states": ["yes", "no"]},
        "lung": {"states": ["TRUE", "FALSE"], "parents": ["smoke"]},
        "k": {"states": 3},
        "g": {"type": "gaussian", "parents": ["lung"]},
    },
}


@pytest.fixture
def graph():
    return build(parse_spec(SPEC))


@pytest.fixture
def frame():
    return pd.DataFrame({
        "smoke": ["yes", "no", "yes", "no", "yes", "no"],
        "lung": ["TRUE", "FALSE", "FALSE", "TRUE", "TRUE", "TRUE"],
        "k": [0, 1, 2, 1, 0, 0],
        "g": [0.1, 0.2, 0.3, 0.4, -1.5, 2.0],
    })


EXPECTED_CODES = {
    "smoke": [0, 1, 0, 1, 0, 1],
    "lung": [0, 1, 1, 0, 0, 0],
    "k": [0, 1, 2, 1, 0, 0],
}


def encode_quiet(graph, data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean frame must encode without any warning
        return encode(graph, data)


def check_codes(enc, expected=EXPECTED_CODES):
    for name, codes in expected.items():
        np.testing.assert_array_equal(enc.codes[name], codes, err_msg=name)


def data_error(graph, data) -> str:
    with pytest.raises(pgm.DataError) as info:
        encode(graph, data)
    message = str(info.value)
    assert "np.float64" not in message and "np.int64" not in message and "np.str_" not in message, (
        f"numpy scalar reprs leak into the message: {message}")
    return message


# ---------------------------------------------------------------- good data

def test_labels_become_declared_codes(graph, frame):
    enc = encode_quiet(graph, frame)
    assert enc.n_rows == 6
    check_codes(enc)
    np.testing.assert_array_equal(enc.values["g"], frame[["g"]].to_numpy())
    assert enc.values["g"].shape == (6, 1)
    assert not enc.has_missing


def test_column_order_does_not_matter(graph, frame):
    check_codes(encode_quiet(graph, frame[["g", "k", "lung", "smoke"]]))


def test_categorical_columns_use_labels_not_category_codes(graph, frame):
    # categories in another order than the declared states, plus an unused undeclared category
    smoke = pd.Categorical(frame["smoke"], categories=["no", "maybe", "yes"])
    lung = pd.Categorical(frame["lung"], categories=["FALSE", "TRUE"])
    check_codes(encode_quiet(graph, frame.assign(smoke=smoke, lung=lung)))


def test_categorical_with_an_undeclared_category_in_use(graph, frame):
    smoke = pd.Categorical(["yes", "no", "maybe", "no", "yes", "no"])
    message = data_error(graph, frame.assign(smoke=smoke))
    assert "column 'smoke'" in message and "row 2" in message and "'maybe'" in message


def test_integer_codes_for_unnamed_states(graph, frame):
    for codes in ([0, 1, 2, 1, 0, 0], np.array([0, 1, 2, 1, 0, 0], dtype=np.int8),
                  [0.0, 1.0, 2.0, 1.0, 0.0, 0.0], ["0", "1", "2", "1", "0", "0"]):
        check_codes(encode_quiet(graph, frame.assign(k=codes)), {"k": [0, 1, 2, 1, 0, 0]})


@pytest.mark.parametrize("codes, row, shown", [
    ([0, 1, 3, 1, 0, 0], "row 2", "3"),
    ([0, 1, 2, -1, 0, 0], "row 3", "-1"),
    ([0, 1, 2.5, 1, 0, 0], "row 2", "2.5"),
    (["0", "1", "two", "1", "0", "0"], "row 2", "'two'"),
])
def test_bad_codes_for_unnamed_states(graph, frame, codes, row, shown):
    message = data_error(graph, frame.assign(k=codes))
    assert "column 'k'" in message
    assert f"{row}: {shown}" in message


def test_integer_labels_are_matched_as_text():
    g = build(parse_spec({"name": "n", "nodes": {"spin": {"states": [-1, 1]}, "grade": {"states": [1, 2, 3]}}}))
    enc = encode_quiet(g, pd.DataFrame({"spin": [1, -1, -1], "grade": [3, 1, 2]}))
    np.testing.assert_array_equal(enc.codes["spin"], [1, 0, 0])
    np.testing.assert_array_equal(enc.codes["grade"], [2, 0, 1])


def test_boolean_columns_match_true_false_labels(graph, frame):
    lung = [True, False, False, True, True, True]
    check_codes(encode_quiet(graph, frame.assign(lung=lung)))
    check_codes(encode_quiet(graph, frame.assign(lung=["true", "false", "false", "true", "true", "true"])))


def test_true_false_labels_read_from_csv(graph, frame, tmp_path):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    assert "TRUE" in path.read_text()  # pandas would read these as booleans without the schema's help
    check_codes(encode_quiet(graph, path))
    check_codes(encode_quiet(graph, str(path)))


def test_csv_and_parquet_paths_fit_like_the_frame(graph, frame, tmp_path):
    big = pd.concat([frame] * 5, ignore_index=True)
    big["g"] = np.linspace(-1, 1, len(big)) ** 3
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    big.to_csv(csv, index=False)
    big.to_parquet(parquet, index=False)
    want = pgm.fit(graph.spec, big).to_params()
    for path in (csv, parquet, str(csv)):
        got = pgm.fit(graph.spec, path).to_params()
        assert got == want, path


def test_extra_columns_are_ignored_with_a_warning(graph, frame):
    with pytest.warns(pgm.DataWarning, match=r"ignoring 2 columns.*'notes'.*'id'"):
        enc = encode(graph, frame.assign(notes="x", id=range(6)))
    check_codes(enc)
    with pytest.warns(pgm.DataWarning):
        fitted = pgm.fit(graph.spec, frame.assign(notes="x"))
    assert fitted.to_params() == pgm.fit(graph.spec, frame).to_params()


def test_latent_column_is_ignored_with_a_warning():
    g = build(parse_spec({"name": "l", "nodes": {"z": {"states": 2, "latent": True},
                                                  "x": {"states": 2, "parents": ["z"]}}}))
    with pytest.warns(pgm.DataWarning, match="latent"):
        enc = encode(g, pd.DataFrame({"z": [0, 1], "x": [1, 0]}))
    assert "z" not in enc.codes


def test_missing_cells_are_marked_not_refused(graph, frame):
    data = frame.astype({"g": float, "smoke": object})
    data.loc[1, "g"] = np.nan
    data.loc[3, "smoke"] = None
    enc = encode(graph, data)
    np.testing.assert_array_equal(enc.missing["g"], [False, True, False, False, False, False])
    np.testing.assert_array_equal(enc.missing["smoke"], [False, False, False, True, False, False])
    assert enc.codes["smoke"][3] == -1
    assert choose(graph, enc) == "em"  # missing cells send the default learner to EM


@pytest.mark.parametrize("column, value", [("g", np.nan), ("smoke", None), ("k", np.nan)])
def test_missing_cells_with_learner_mle_point_to_em(graph, frame, column, value):
    data = frame.astype({column: object if value is None else float})
    data.loc[4, column] = value
    with pytest.raises(pgm.DataError) as info:
        pgm.fit(graph.spec, data, learner="mle")
    message = str(info.value)
    assert repr(column) in message
    assert "[4]" in message  # the row
    assert "np." not in message
    assert "learner='em'" in message
    assert "missing" in message


def test_multivariate_and_plate_columns():
    spec = parse_spec({
        "name": "cols", "plates": {"s": {"size": 2}},
        "nodes": {"x": {"type": "gaussian", "dim": 2},
                  "y": {"type": "gaussian", "dim": 2, "columns": ["lat", "lon"]},
                  "r": {"states": 2, "plate": "s"}},
    })
    g = build(spec)
    df = pd.DataFrame({"x[0]": [1.0, 2.0], "x[1]": [3.0, 4.0], "lat": [5.0, 6.0], "lon": [7.0, 8.0],
                       "r[0]": [0, 1], "r[1]": [1, 1]})
    enc = encode_quiet(g, df)
    np.testing.assert_array_equal(enc.values["x"], [[1, 3], [2, 4]])
    np.testing.assert_array_equal(enc.values["y"], [[5, 7], [6, 8]])
    np.testing.assert_array_equal(enc.codes["r[1]"], [1, 1])
    message = data_error(g, df.drop(columns=["r[1]", "lon"]))
    assert "'lon'" in message and "'r[1]'" in message
    partial = encode_quiet(g, df.assign(lat=[np.nan, 6.0]))  # partly missing vectors are data now (EM conditions)
    np.testing.assert_array_equal(partial.missing["y"], [True, False])
    np.testing.assert_array_equal(partial.values["y"][0], [np.nan, 7.0])


def test_custom_index_labels_name_the_rows(graph, frame):
    message = data_error(graph, frame.assign(smoke=["yes", "no", "yes", "no", "maybe", "no"]).set_axis(
        [100, 101, 102, 103, 104, 105]))
    assert "row 104: 'maybe'" in message


# ---------------------------------------------------------------- bad data

def test_missing_column_with_did_you_mean(graph, frame):
    message = data_error(graph, frame.rename(columns={"smoke": "smoker"}))
    assert "missing column 'smoke'" in message
    assert "did you mean 'smoker'?" in message


def test_several_missing_columns_are_all_named(graph, frame):
    message = data_error(graph, frame[["g"]])
    for column in ("'smoke'", "'lung'", "'k'"):
        assert column in message


def test_unknown_label_names_column_rows_values_and_states(graph, frame):
    message = data_error(graph, frame.assign(smoke=["yes", "no", "maybe", "no", "yse", "no"]))
    assert "column 'smoke'" in message
    assert "2 rows" in message
    assert "row 2: 'maybe'" in message and "row 4: 'yse'" in message
    assert "['yes', 'no']" in message


def test_unknown_label_lists_only_the_first_rows(graph, frame):
    data = pd.DataFrame({c: np.repeat(frame[c].to_numpy(), 5) for c in frame})
    data["smoke"] = "perhaps"
    message = data_error(graph, data)
    assert "30 rows" in message
    assert "row 4: 'perhaps'" in message and "row 5:" not in message


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_non_finite_gaussian_value(graph, frame, bad):
    message = data_error(graph, frame.assign(g=[0.1, bad, 0.3, 0.4, 0.5, 0.6]))
    assert "column 'g'" in message
    assert f"row 1: {bad}" in message
    assert "finite" in message


def test_string_in_a_numeric_column(graph, frame):
    message = data_error(graph, frame.assign(g=["0.1", "abc", 0.3, 0.4, "1e3", 0.6]))
    assert "column 'g'" in message and "row 1: 'abc'" in message
    assert "row 4" not in message  # "1e3" is a number
    values = encode(graph, frame.assign(g=["0.1", "2", 0.3, 0.4, "1e3", 0.6])).values["g"][:, 0]
    np.testing.assert_array_equal(values, [0.1, 2.0, 0.3, 0.4, 1000.0, 0.6])


def test_booleans_in_a_gaussian_column(graph, frame):
    assert "column 'g'" in data_error(graph, frame.assign(g=[True, False] * 3))


def test_empty_frame(graph, frame):
    assert "no rows" in data_error(graph, frame.iloc[:0])


def test_empty_csv_file(graph, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("smoke,lung,k,g\n")
    assert "empty" in data_error(graph, tmp_path / "empty.csv")
    assert "no rows" in data_error(graph, tmp_path / "header.csv")


def test_duplicated_column_names(graph, frame):
    data = pd.concat([frame, frame[["g", "k"]]], axis=1)
    message = data_error(graph, data)
    assert "duplicated column names ['g', 'k']" in message


@pytest.mark.parametrize("name, fragment", [
    ("nothere.csv", "no such data file"),
    ("data.xlsx", "unknown data file type '.xlsx'"),
])
def test_bad_paths(graph, frame, tmp_path, name, fragment):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        path.write_text("x")
    message = data_error(graph, path)
    assert fragment in message and name in message


def test_a_directory_is_not_a_data_file(graph, tmp_path):
    assert "directory" in data_error(graph, tmp_path)


def test_corrupt_parquet(graph, tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    assert "bad.parquet" in data_error(graph, path)


def test_data_of_the_wrong_type(graph):
    assert "DataFrame" in data_error(graph, 42)


def test_bad_row_weights(graph, frame):
    for weights in ([1.0] * 5, [1, 1, 1, -1, 1, 1], [1, 1, np.nan, 1, 1, 1]):
        with pytest.raises(pgm.DataError, match="weights"):
            encode(graph, frame, weights=np.asarray(weights, dtype=float))
