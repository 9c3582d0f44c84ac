"""Loading graph files: every example model loads, every bad file fails with its message.

Each file in ``tests/bad_models/`` breaks one rule and carries the message it must
produce in ``# expect:`` comments at its top (pyhf keeps its bad workspaces the same
way).  An expectation that starts with a line number (``8: nodes.x...``) or with
``": "`` (no line) is checked right after the file path, so the line must match exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pgm
from pgm.schema import load_spec, parse_spec, read_yaml

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "models").glob("*.yaml"))
BAD_MODELS = sorted((ROOT / "tests" / "bad_models").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    """The ``# expect:`` lines of a bad model, in order."""
    return [m.group(1) for m in re.finditer(r"^# expect: (.*)$", path.read_text(encoding="utf-8"), re.M)]


def assert_reported(message: str, path: Path, expected: str) -> None:
    if re.match(r"\d+: ", expected):
        expected = f"{path}:{expected}"
    elif expected.startswith(": "):
        expected = f"{path}{expected}"
    assert expected in message, f"expected {expected!r} in:\n{message}"


def test_fixtures_exist():
    assert len(MODELS) >= 12
    assert len(BAD_MODELS) >= 30


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_example_model_loads(path):
    spec = pgm.load(path)
    assert spec.name and spec.description, "each example model carries a name and a description"
    order = spec.topological_order()
    assert sorted(order) == sorted(spec.nodes)
    assert spec.n_params() > 0


@pytest.mark.parametrize("path", BAD_MODELS, ids=lambda p: p.name)
def test_bad_model_is_refused_with_its_message(path):
    expected = expectations(path)
    assert expected, f"{path.name} carries no '# expect:' line"
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for line in message.splitlines():
        assert line.startswith(str(path)), f"every reported error names the file: {line!r}"
    for text in expected:
        assert_reported(message, path, text)
    assert "Traceback" not in message


@pytest.mark.parametrize("path", BAD_MODELS, ids=lambda p: p.name)
def test_bad_model_error_is_a_value_error(path):
    with pytest.raises(ValueError) as info:
        load_spec(str(path))
    assert isinstance(info.value, pgm.PGMError)
    assert info.value.errors and all(e in str(info.value) for e in info.value.errors)


def test_multiple_errors_are_all_reported():
    path = ROOT / "tests" / "bad_models" / "multiple_errors.yaml"
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    err = info.value
    assert len(err.errors) == 4
    assert str(err) == "\n".join(err.errors)
    for text in expectations(path):
        assert_reported(str(err), path, text)


def test_multiple_field_errors_are_all_reported(tmp_path):
    path = tmp_path / "fields.yaml"
    path.write_text(
        "name: fields\n"
        "graph: directed\n"
        "nodes:\n"
        "  a: {states: 0}\n"
        "  b: {states: 2, parnets: [a]}\n"
        "  x: {type: gaussian, dim: 2, covariance: diagonal}\n"
        "wibble: 1\n"
    )
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    err = info.value
    assert len(err.errors) == 4, str(err)
    for expected in ("4: nodes.a.states: a state count must be between 1",
                     "5: nodes.b.parnets: unknown field 'parnets'; did you mean 'parents'? (see docs/format.md#nodes)",
                     "6: nodes.x.covariance: 'diagonal' is not allowed here; did you mean 'diag'?",
                     "7: wibble: unknown field 'wibble'", "(see docs/format.md#top-level)"):
        assert_reported(str(err), path, expected)


def test_malformed_utf8_is_refused_with_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xc3\xa9\ngraph: directed\nnodes:\n  a: {states: [caf\xe9, bar]}\n")
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    assert_reported(str(info.value), path, "4: the file is not valid UTF-8")
    assert "save it as UTF-8" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n"], ids=["empty", "blank"])
def test_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "empty.yaml"
    path.write_bytes(content)
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    assert str(info.value) == f"{path}: the file is empty; a graph file declares at least `name` and `nodes`"


def test_missing_file_and_directory_are_model_errors(tmp_path):
    with pytest.raises(pgm.ModelError, match="no such file"):
        pgm.load(tmp_path / "nowhere.yaml")
    with pytest.raises(pgm.ModelError, match="is a directory"):
        pgm.load(tmp_path)


def test_yes_and_no_stay_state_labels():
    spec = pgm.load(ROOT / "models" / "sprinkler.yaml")
    assert spec.nodes["cloudy"].labels == ["yes", "no"]


def test_numeric_labels_are_text():
    spec = pgm.load(ROOT / "models" / "ising_3x3.yaml")
    assert spec.nodes["s00"].labels == ["-1", "1"]


def test_plate_copies_and_columns():
    spec = pgm.load(ROOT / "models" / "plate_mixture.yaml")
    assert spec.copies("x") == [f"x[{i}]" for i in range(5)]
    assert spec.columns("z") == ["z"]
    iris = pgm.load(ROOT / "models" / "gmm_iris.yaml")
    assert iris.columns("x") == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_parse_spec_without_lines_still_names_the_field():
    data, _ = read_yaml("name: a\nnodes:\n  b: {states: 2, parents: [c]}\n")
    with pytest.raises(pgm.ModelError) as info:
        parse_spec(data, "inline")
    assert str(info.value).startswith("inline: nodes.b.parents[0]: unknown node 'c'")


def test_control_character_is_refused_with_its_line(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_bytes(b"name: a\nnodes:\n  a: {states: [x\x01, y]}\n")
    with pytest.raises(pgm.ModelError) as info:
        pgm.load(path)
    assert_reported(str(info.value), path, "3: the file holds the control character U+0001")
