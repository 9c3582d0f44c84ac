"""Fuzzing: mutated graph files, fitted files and data frames; only ``pgm.PGMError`` may come out.

Hypothesis mutates valid inputs (the example models, fitted files written by pgm, and data
frames drawn from them): it flips types, drops, renames and duplicates keys and columns,
inserts NaN, inf, 1e300, text, booleans and mixed cells, truncates files, splices random
bytes and empties frames.  ``pgm.load``, ``pgm.fit`` and ``pgm.cli.main`` must then either
work or raise a ``pgm.PGMError`` subclass (warnings are fine); a fit that works must give
finite parameters and a log-likelihood that is not NaN.

The example counts are in ``BUDGET`` (about 3,900 cases in all; under a minute on two cores).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import math
import os
import re
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pgm
from pgm.cli import main
from pgm.io.yaml_text import dump_spec_yaml

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"

#: Examples per test; their sum is the number of fuzz cases reported in docs/robustness.md.
BUDGET = {
    "graph_data": 900,
    "graph_text": 700,
    "random_bytes": 400,
    "fitted_params": 400,
    "frames_fast": 400,
    "frames_iterative": 100,
    "mutated_model_fit": 150,
    "data_files": 300,
    "cli": 160,
}

SEED_MODELS = ["sprinkler", "gmm", "linear_gaussian", "sigmoid_belief", "ising_3x3", "plate_mixture",
               "latent_class", "pairwise_table", "naive_bayes", "student", "gmm_iris"]
FAST = ["sprinkler", "linear_gaussian", "latent_class", "plate_mixture", "naive_bayes"]
ITERATIVE = ["gmm", "sigmoid_belief", "ising_3x3", "pairwise_table"]

#: ``PGM_FUZZ_SCALE=20 pytest tests/robust/test_fuzz.py`` runs 20 times the examples, with fresh
#: random choices; by default the examples are the same on every run (derandomised, fast).
SCALE = float(os.environ.get("PGM_FUZZ_SCALE", "1"))
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=SCALE == 1)


def fuzz(name: str) -> settings:
    return settings(FUZZ, max_examples=max(1, int(BUDGET[name] * SCALE)))


# --------------------------------------------------------------------------- seeds
@functools.lru_cache(maxsize=None)
def model_text(name: str) -> str:
    return (MODELS / f"{name}.yaml").read_text()


@functools.lru_cache(maxsize=None)
def model_data(name: str) -> Any:
    return yaml.safe_load(model_text(name))


def dump(data: Any) -> str:
    """YAML text of plain data (libyaml when present: fast)."""
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, sort_keys=False,
                     default_flow_style=None, width=1000)


@functools.lru_cache(maxsize=None)
def model(name: str):
    return pgm.load(MODELS / f"{name}.yaml")


@functools.lru_cache(maxsize=None)
def frame(name: str, n: int = 24) -> pd.DataFrame:
    """Rows drawn from the model with random parameters (fitted to noise), so every column is valid."""
    spec = model(name)
    rng = np.random.default_rng(len(name))
    cols: dict[str, Any] = {}
    for node in spec.nodes:
        decl = spec.nodes[node]
        if decl.latent:
            continue
        for col in spec.columns(node):
            if decl.type == "gaussian":
                cols[col] = rng.normal(size=n) * 2.0 + 1.0
            elif isinstance(decl.states, int):
                cols[col] = rng.integers(0, decl.states, n)
            else:
                cols[col] = rng.choice(decl.labels, n)
    return pd.DataFrame(cols)


@functools.lru_cache(maxsize=None)
def fitted_data(name: str) -> dict:
    """The plain data of a fitted file written by pgm."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(model(name), frame(name), max_iter=5)
    return yaml.safe_load(dump_spec_yaml(fitted.to_dict()))


# --------------------------------------------------------------------------- strategies
NAMES = ["a", "b", "x", "z", "x[0]", "cloudy", "rain", "directed", "undirected", "gaussian", "discrete", "table",
         "logistic", "linear", "ising", "agreement", "full", "diag", "tied", "spherical", "yes", "no", "", " ",
         "nodes", "parents", "states", "plate", "trial", "tie", "latent", "dim", "columns", "cpd", "prior", "params"]

SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 2, 3, 100000, 100001, 10 ** 12, 10 ** 20, 2 ** 63, -(2 ** 63), 10 ** 4000]),
    st.integers(-10 ** 30, 10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 5e-324, 0.5, -0.0, math.nan, math.inf]),
    st.sampled_from(NAMES),
    st.text(max_size=12),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.sampled_from(NAMES), SCALARS, max_size=3),
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3), max_size=3),
)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated_data(draw, data: Any, max_ops: int = 3, values=VALUES) -> Any:
    """Plain YAML data with 1..max_ops structural mutations."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, max_ops))):
        paths = _paths(data)
        if not paths or not isinstance(data, dict):
            break
        path = draw(st.sampled_from(paths))
        parent = _get(data, path[:-1])
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "rename", "insert", "wrap", "unwrap",
                                   "duplicate", "stringify"]))
        current = parent[key]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=6)))
            if new not in parent:
                parent[new] = parent.pop(key)
        elif op == "insert":
            target = current if isinstance(current, (dict, list)) else parent
            if isinstance(target, dict):
                target[draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=6)))] = draw(values)
            else:
                target.insert(draw(st.integers(0, len(target))), draw(values))
        elif op == "wrap":
            parent[key] = [current]
        elif op == "unwrap" and isinstance(current, list) and current:
            parent[key] = current[0]
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, current)
        elif op == "stringify":
            parent[key] = str(current)
    return data


YAML_TOKENS = [": ", "- ", "[", "]", "{", "}", "&a ", "*a", "!!python/name:os.system ", "\t", "'", '"', "#", "\n  ", ",",
               "?", "|", ">", "%YAML 1.2\n", "---\n", "...\n", "<<: *a\n", "1e999", ".nan", "\ufeff", "\x00", "9" * 4400]
CSV_TOKENS = [",", ",,", '"', '"a,b"', "\n", "\r\n", ";", "\t", "nan", "NA", "1e999", "-1e300", "1e300", "TRUE", "yes",
              "\ufeff", "\x00", "é", "#", "\\", "''"]


@st.composite
def mutated_text(draw, text: str | bytes, tokens: list[str] = YAML_TOKENS) -> bytes:
    """A file's bytes with 1..3 textual mutations."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "delete", "insert", "insert_bytes", "dup_line", "swap_lines",
                                   "indent", "dedent", "replace_char"]))
        n = len(raw)
        i = draw(st.integers(0, max(n, 1)))
        j = draw(st.integers(i, min(n, i + 40) if n else 0)) if n else 0
        lines = raw.split(b"\n")
        k = draw(st.integers(0, len(lines) - 1))
        if op == "truncate":
            raw = raw[:i]
        elif op == "delete":
            raw = raw[:i] + raw[j:]
        elif op == "insert":
            raw = raw[:i] + draw(st.sampled_from(tokens)).encode() + raw[i:]
        elif op == "insert_bytes":
            raw = raw[:i] + draw(st.binary(min_size=1, max_size=8)) + raw[i:]
        elif op == "dup_line":
            lines.insert(k, lines[k])
            raw = b"\n".join(lines)
        elif op == "swap_lines":
            m = draw(st.integers(0, len(lines) - 1))
            lines[k], lines[m] = lines[m], lines[k]
            raw = b"\n".join(lines)
        elif op == "indent":
            lines[k] = b"  " + lines[k]
            raw = b"\n".join(lines)
        elif op == "dedent":
            lines[k] = lines[k].lstrip()
            raw = b"\n".join(lines)
        elif op == "replace_char" and n:
            raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    return raw


CELLS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 5e-324, 1e150, -1e150, 0.0, -1, 2.5,
                     10 ** 30, 2 ** 63, 10 ** 400, True, False, None, "", "abc", "nan", "inf", "1e999", "yes", "no",
                     "0", "1", "TRUE", " 1", "x[0]", b"1", 1 + 2j, Decimal("1.5"), pd.Timestamp("2020-01-01"),
                     pd.NaT, pd.NA, np.float32(1e30), np.int8(3), ("a",), "\x00"]),
    st.builds(list, st.lists(st.integers(0, 2), max_size=2)),
    st.builds(dict, st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=1)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.text(max_size=5),
)


@st.composite
def mutated_frame(draw, base: pd.DataFrame, max_ops: int = 4) -> pd.DataFrame:
    """A data frame with 1..max_ops mutations of its columns, cells, types and rows.

    Columns are addressed by position: after a duplication two columns share a name."""
    df = base.copy()
    for _ in range(draw(st.integers(1, max_ops))):
        if df.shape[1] == 0:
            break
        j = draw(st.integers(0, df.shape[1] - 1))
        col = df.columns[j]
        series = df.iloc[:, j]
        op = draw(st.sampled_from(["cells", "cells", "cells", "drop", "dup", "rename", "cast", "rows", "constant",
                                   "scale", "extra", "all_missing", "shuffle"]))
        if op == "cells" and len(df):
            rows = draw(st.lists(st.integers(0, len(df) - 1), min_size=1, max_size=4))
            values = series.astype(object).to_numpy().copy()
            for r in rows:
                values[r] = draw(CELLS)
            infer = draw(st.booleans())  # let pandas infer a type, as a CSV reader would, or keep objects
            df.isetitem(j, pd.Series(list(values), index=df.index, dtype=None if infer else object))
        elif op == "drop":
            df = df.iloc[:, [k for k in range(df.shape[1]) if k != j]]
        elif op == "dup":
            df = pd.concat([df, df.iloc[:, [j]]], axis=1)
        elif op == "rename":
            names = list(df.columns)
            names[j] = draw(st.sampled_from(NAMES + [str(col).upper(), f"{col} "]))
            df.columns = names
        elif op == "cast":
            kind = draw(st.sampled_from(["str", "object", "category", "bool", "float64", "int64", "string"]))
            try:
                df.isetitem(j, series.astype(kind))
            except (ValueError, TypeError):
                pass
        elif op == "rows":
            df = df.iloc[: draw(st.sampled_from([0, 1, 2, 3]))]
        elif op == "constant" and len(df):
            df.isetitem(j, pd.Series([series.iloc[0]] * len(df), index=df.index))
        elif op == "scale" and pd.api.types.is_float_dtype(series.dtype):
            df.isetitem(j, series * draw(st.sampled_from([1e300, 1e150, 1e-300, -1.0, 0.0])))
        elif op == "extra":
            df[draw(st.sampled_from(NAMES))] = pd.Series([draw(CELLS)] * len(df), index=df.index, dtype=object)
        elif op == "all_missing":
            df.isetitem(j, pd.Series([None] * len(df), index=df.index, dtype=object))
        elif op == "shuffle":
            df = df.iloc[:, list(np.random.default_rng(j).permutation(df.shape[1]))]
    return df


# --------------------------------------------------------------------------- the property
def only_pgm_errors(fn, *args, **kwargs):
    """Run fn; return its result, or None when it raised a PGMError with a useful message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs)
            event(f"{getattr(fn, '__name__', 'call')}: ok")
            return out
        except pgm.PGMError as exc:
            event(f"{getattr(fn, '__name__', 'call')}: {type(exc).__name__}")
            message = str(exc)
            assert message.strip(), f"{type(exc).__name__} with an empty message"
            assert "Traceback" not in message
            return None


def check_fitted(fitted, data) -> None:
    """A fit that worked has finite parameters and a log-likelihood that is not NaN."""
    if fitted is None:
        return
    params = fitted.to_params()
    for key, block in params.items():
        values = block.values() if isinstance(block, dict) else [block]
        for value in values:
            if isinstance(value, list) and value and isinstance(value[0], str):
                continue  # logistic feature names
            arr = np.asarray(value, dtype=float)
            assert np.all(np.isfinite(arr)), f"non-finite parameters params.{key}: {block}"
    ll = only_pgm_errors(fitted.log_likelihood, data)
    if ll is not None:
        assert not math.isnan(ll), "a NaN log-likelihood"


def write(tmp: Path, name: str, content: bytes | str) -> Path:
    path = tmp / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --------------------------------------------------------------------------- graph files
@fuzz("graph_data")
@given(data=st.data())
def test_mutated_graph_files_load_or_raise_pgm_errors(tmp, data):
    name = data.draw(st.sampled_from(SEED_MODELS))
    mutated = data.draw(mutated_data(model_data(name)))
    only_pgm_errors(pgm.load, write(tmp, "g.yaml", dump(mutated)))


@fuzz("graph_text")
@given(data=st.data())
def test_textually_mutated_graph_files_load_or_raise_pgm_errors(tmp, data):
    name = data.draw(st.sampled_from(SEED_MODELS))
    raw = data.draw(mutated_text(model_text(name)))
    only_pgm_errors(pgm.load, write(tmp, "t.yaml", raw))


@fuzz("random_bytes")
@given(raw=st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(str.encode)))
def test_random_bytes_as_a_graph_file(tmp, raw):
    only_pgm_errors(pgm.load, write(tmp, "r.yaml", raw))


@fuzz("fitted_params")
@given(data=st.data())
def test_mutated_fitted_files_load_or_raise_pgm_errors(tmp, data):
    name = data.draw(st.sampled_from(["sprinkler", "gmm", "linear_gaussian", "sigmoid_belief", "pairwise_table",
                                      "plate_mixture"]))
    base = fitted_data(name)
    params = data.draw(mutated_data({"params": base["params"]}, max_ops=2))
    mutated = dict(base, params=params.get("params"))
    loaded = only_pgm_errors(pgm.load, write(tmp, "f.yaml", dump_spec_yaml(mutated)))
    if loaded is not None and hasattr(loaded, "log_likelihood"):
        check_fitted(loaded, frame(name))


# --------------------------------------------------------------------------- data frames
@fuzz("frames_fast")
@given(data=st.data())
def test_mutated_frames_fit_or_raise_pgm_errors(data):
    name = data.draw(st.sampled_from(FAST))
    df = data.draw(mutated_frame(frame(name)))
    check_fitted(only_pgm_errors(pgm.fit, model(name), df, max_iter=5), df)


@fuzz("frames_iterative")
@given(data=st.data())
def test_mutated_frames_for_iterative_learners(data):
    name = data.draw(st.sampled_from(ITERATIVE))
    df = data.draw(mutated_frame(frame(name, 16), max_ops=2))
    check_fitted(only_pgm_errors(pgm.fit, model(name), df, max_iter=3), df)


@fuzz("mutated_model_fit")
@given(data=st.data())
def test_mutated_models_fit_or_raise_pgm_errors(tmp, data):
    """A mutated declaration that still loads is fitted to the original model's data."""
    name = data.draw(st.sampled_from(FAST + ["gmm"]))
    small = st.one_of(st.sampled_from([0, 1, 2, 3, -1, True, None, "a", "x", 2.5, math.nan, "gaussian", "logistic",
                                       "diag", "tied", "spherical", "table", [], ["x"], {"dirichlet": 1}]),
                      st.sampled_from(list(model(name).nodes)))
    mutated = data.draw(mutated_data(model_data(name), max_ops=2, values=small))
    spec = only_pgm_errors(pgm.load, write(tmp, "m.yaml", dump(mutated)))
    if spec is not None and not hasattr(spec, "log_likelihood"):
        df = frame(name)
        check_fitted(only_pgm_errors(pgm.fit, spec, df, max_iter=3), df)


@fuzz("data_files")
@given(data=st.data())
def test_mutated_data_files_fit_or_raise_pgm_errors(tmp, data):
    """CSV text and Parquet bytes with textual or byte-level damage."""
    name = data.draw(st.sampled_from(["sprinkler", "linear_gaussian", "latent_class"]))
    if data.draw(st.integers(0, 3)):
        raw = data.draw(mutated_text(frame(name, 12).to_csv(index=False), CSV_TOKENS))
        path = write(tmp, data.draw(st.sampled_from(["d.csv", "d.tsv", "d.txt"])), raw)
    else:
        raw = data.draw(mutated_text(parquet_bytes(name), ["PAR1", "\x00" * 8]))
        path = write(tmp, "d.parquet", raw)
    check_fitted(only_pgm_errors(pgm.fit, model(name), path, max_iter=3), path)


@functools.lru_cache(maxsize=None)
def parquet_bytes(name: str) -> bytes:
    buffer = io.BytesIO()
    frame(name, 12).to_parquet(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the command line
@fuzz("cli")
@given(data=st.data())
def test_mutated_inputs_through_the_command_line(tmp, data):
    name = data.draw(st.sampled_from(["sprinkler", "linear_gaussian", "latent_class"]))
    if data.draw(st.booleans()):
        model_bytes = data.draw(mutated_text(model_text(name)))
        df = frame(name)
    else:
        model_bytes = model_text(name).encode()
        df = data.draw(mutated_frame(frame(name), max_ops=2))
    command = data.draw(st.sampled_from(["validate", "fit", "score", "sample"]))
    if command in ("score", "sample"):  # a fitted file, perhaps damaged
        fitted_text = dump_spec_yaml(fitted_data(name))
        model_bytes = data.draw(mutated_text(fitted_text)) if data.draw(st.booleans()) else fitted_text.encode()
    model_path = write(tmp, "cli.yaml", model_bytes)
    data_path = write(tmp, "cli.csv", df.to_csv(index=False))
    out = str(tmp / "cli.out")
    argv = {"validate": ["validate", str(model_path)],
            "fit": ["fit", str(model_path), str(data_path), "-o", out, "--max-iter", "3"],
            "score": ["score", str(model_path), str(data_path), "-o", out],
            "sample": ["sample", str(model_path), "-n", "20", "-o", out]}[command]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(argv)
    assert code in (0, 2), f"exit {code}: {err.getvalue()}"
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    if code == 2:
        lines = [line for line in err.getvalue().splitlines() if not line.startswith("pgm: warning:")]
        assert lines and all(line.strip() for line in lines)


def test_budget_is_a_few_thousand():
    assert sum(BUDGET.values()) >= 3000


# --------------------------------------------------------------------------- hostile YAML, by hand
@pytest.mark.parametrize("levels", [9, 12, 16])
def test_alias_bombs_are_refused_quickly_in_little_memory(tmp, levels):
    """10**levels strings from a few lines: refused by counting, never expanded."""
    import time
    import tracemalloc

    lines = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    path = write(tmp, "bomb.yaml", "\n".join(lines) + "\nname: x\nnodes: {a: {states: 2}}\n")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(pgm.ModelError, match="refusing a possible alias bomb"):
            pgm.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 20
    assert peak < 50e6, f"{peak / 1e6:.0f} MB"


@pytest.mark.parametrize("text, fragment", [
    ("name: x\nnodes: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply"),
    ("name: x\nnodes: {a: {states: " + "7" * 4400 + "}}\n", "more than 4300 digits"),
    ("a: &a [*a]\nname: x\nnodes: {a: {states: 2}}\n", "unknown field 'a'"),
    ("name: x\nnodes: {a: {states: 2}}\n---\nname: y\n", "expected a single document"),
    ("name: !!python/name:os.system\nnodes: {a: {states: 2}}\n", "tags that build objects are refused"),
    ("name: x\nnodes: {a: {states: !!float 2}}\n", "`states` must be a list of labels"),
    ("name: 2001-12-14\nnodes: {a: {states: 2}}\n", "name: input should be a valid string"),
], ids=["deep-lists", "long-number", "recursive-alias", "two-documents", "python-tag", "float-tag", "date"])
def test_hostile_yaml_is_a_model_error(tmp, text, fragment):
    with pytest.raises(pgm.ModelError, match=re.escape(fragment)):
        pgm.load(write(tmp, "hostile.yaml", text))
