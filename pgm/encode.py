"""DataFrame -> EncodedData: small integer codes per discrete variable, float blocks per gaussian.

All data errors happen here, once, at the boundary: a missing column, an unknown
label, a string in a numeric column, a non-finite number.  Each ``DataError``
names the column, the first offending rows and their values, and the fix.
Missing cells (NaN, None, empty) are *not* errors: they become code ``-1`` (discrete)
or NaN (gaussian), and the learner decides (EM handles them).
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pgm.errors import DataError, DataWarning
from pgm.graph import Graph, Variable
from pgm.io.table import DEFAULT, Lines, ReadOptions, check_fields, numbers, read_header, separator, \
    separator_hint

MISSING = -1

#: The largest magnitude a gaussian cell may have.  Learners sum squares and cross products of
#: the values; beyond this they overflow float64 (1.8e308), so larger values are refused with a
#: DataError asking to rescale the column rather than turning into inf or NaN parameters.
MAX_ABS_GAUSSIAN = 1e150


@dataclass(frozen=True)
class EncodedData:
    """Encoded rows of a data set.

    Attributes
    ----------
    n_rows : int
    codes : dict of name -> int array of shape (n_rows,), ``-1`` where missing
        one entry per observed discrete variable.
    values : dict of name -> float array of shape (n_rows, dim), NaN where missing
        one entry per observed gaussian variable.
    weights : float array of shape (n_rows,) or None
        a weight per row (``None`` means 1 each); distinct-row compression uses it.
    index : pandas Index of the original rows (for error messages and outputs).
    lines : for rows read from a CSV file, a :class:`pgm.io.table.Lines` naming their lines in
        messages (see :func:`row_labels`); None otherwise.
    """

    n_rows: int
    codes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    weights: np.ndarray | None = None
    index: Any = None
    missing: dict[str, np.ndarray] = field(default_factory=dict)
    lines: Any = None

    def observed(self, name: str) -> bool:
        return name in self.codes or name in self.values

    @property
    def has_missing(self) -> bool:
        return bool(self.missing)

    def take(self, rows: np.ndarray) -> "EncodedData":
        """The subset of rows ``rows`` (an index or boolean array)."""
        codes = {k: v[rows] for k, v in self.codes.items()}
        values = {k: v[rows] for k, v in self.values.items()}
        weights = None if self.weights is None else self.weights[rows]
        missing = {k: v[rows] for k, v in self.missing.items()}
        missing = {k: v for k, v in missing.items() if v.any()}
        n = len(next(iter(codes.values()))) if codes else (len(next(iter(values.values()))) if values else 0)
        index = None if self.index is None else self.index[rows]
        lines = None if self.lines is None else self.lines[rows]
        return EncodedData(n, codes, values, weights, index, missing, lines)


@dataclass(frozen=True)
class Columns:
    """The data columns of a graph's observed nodes, by how a reader should type them."""

    needed: tuple[str, ...]   # every column of an observed node, in graph order
    text: frozenset[str]      # discrete nodes with named states: read as text (labels such as None, TRUE, 007)
    numeric: frozenset[str]   # gaussian nodes and discrete nodes with a state count: read as numbers


def _unnamed(var: Variable) -> bool:
    return var.labels == tuple(str(i) for i in range(var.n_states))


def columns_of(graph: Graph) -> Columns:
    needed, text, numeric = [], set(), set()
    for name in graph.order:
        var = graph[name]
        if var.latent:
            continue
        needed.extend(var.columns)
        (text if var.discrete and not _unnamed(var) else numeric).update(var.columns)
    return Columns(tuple(needed), frozenset(text), frozenset(numeric))


def _pyarrow_csv() -> Any:
    """pyarrow's CSV module, or None: pyarrow is an optional extra (reading is faster with it)."""
    try:
        import pyarrow.csv as pcsv  # optional extra: the results are the same without it
    except ImportError:
        return None
    return pcsv


def arrow_csv_options(path: Path, header: list[str], columns: Columns | None, options: ReadOptions,
                      as_text: bool = False, numbers: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """pyarrow's ``(ParseOptions, ConvertOptions)`` for the reading rule (see :mod:`pgm.io.table`).

    Labels are read as dictionary-encoded text and never null (the empty text and na_values become
    missing in :func:`encode`); numbers as float64 with only the empty text and na_values null;
    ``as_text`` reads the numbers as text too, for :func:`encode` to name a cell that is no number;
    ``numbers`` are more columns of numbers (a weights column)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    text = columns.text if columns is not None else frozenset()
    numeric = (columns.numeric if columns is not None else frozenset()) | set(numbers)
    numeric = frozenset() if as_text else numeric
    label = pa.dictionary(pa.int32(), pa.string())
    types = {c: label if c in text else (pa.float64() if c in numeric else pa.string()) for c in header}
    convert = pcsv.ConvertOptions(column_types=types, null_values=options.null_values, strings_can_be_null=False,
                                  quoted_strings_can_be_null=True)
    return pcsv.ParseOptions(delimiter=separator(path, options)), convert


def _read_csv(path: Path, columns: Columns | None, options: ReadOptions,
              numbers: tuple[str, ...] = ()) -> pd.DataFrame:
    header = read_header(path, options)
    counts = pd.Series(header, dtype=object).value_counts()
    repeated = sorted(c for c, k in counts.items() if c and k > 1)
    if repeated:
        raise DataError(f"{path}: duplicated column names {repeated} in the header; every column must be "
                        "named once (rename or drop the copies)")
    pcsv = _pyarrow_csv()
    if pcsv is not None:
        import pyarrow as pa

        for as_text in (False, True):
            parse, convert = arrow_csv_options(path, header, columns, options, as_text,
                                               tuple(c for c in numbers if c in header))
            try:
                return pcsv.read_csv(path, parse_options=parse, convert_options=convert).to_pandas()
            except pa.ArrowInvalid as exc:
                if "columns, got" in str(exc):
                    check_fields(path, options)  # raises, naming the line
                if "conversion error" not in str(exc) or as_text:
                    raise
                # a cell that is no number: read the numbers as text, encode names the line and the value
        raise AssertionError("unreachable")
    with warnings.catch_warnings():
        # pandas takes extra fields in the first row as index columns, or drops them: refuse both
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, sep=separator(path, options), engine="c", dtype=str, keep_default_na=False,
                                na_filter=False, index_col=False, low_memory=False)
        except (pd.errors.ParserWarning, pd.errors.ParserError):
            check_fields(path, options)
            raise
    check_fields(path, options)  # the C parser fills the fields a short row lacks: refuse the row
    return frame


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path; a DataError when there is no such file or it is a directory."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such data file; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file (.csv or .parquet)")
    return path


def read_table(path: str | Path, columns: Columns | None = None, options: ReadOptions = DEFAULT,
               numbers: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame by the reading rule of :mod:`pgm.io.table`.

    ``columns`` says which columns hold labels (read as text: ``None``, ``NA``, ``TRUE``, ``007`` stay
    as written) and which hold numbers (and ``numbers``: more columns of numbers, a weights column).
    pyarrow reads faster when installed; the result is the same."""
    path = existing_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                # the pandas index a DataFrame.to_parquet stored is not data: rows are named by position,
                # as the streamed and Dask readers name them
                return pd.read_parquet(path).reset_index(drop=True)
            except ImportError:
                raise DataError("reading Parquet needs pyarrow: pip install 'pgm-learn[parquet]'") from None
        if suffix in (".csv", ".txt", ".tsv", ".gz"):
            return _read_csv(path, columns, options, numbers)
    except DataError:
        raise
    except Exception as exc:  # pandas' and pyarrow's own exception types on corrupt or undecodable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot be read as a {suffix.lstrip('.')} table ({first})") from None
    raise DataError(f"{path}: unknown data file type {suffix!r}; use .csv or .parquet")


def as_frame(data: Any, columns: Columns | None = None, options: ReadOptions = DEFAULT,
             numbers: tuple[str, ...] = ()) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a path (read by :func:`read_table`), or a mapping of columns."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, Path)):
        return read_table(data, columns, options, numbers)
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise DataError(f"cannot make a table from the given columns: {exc}") from None
    raise DataError(f"data must be a pandas DataFrame or a path to a .csv/.parquet file, got {type(data).__name__}")


def _row_labels(index: Any, rows: Any) -> tuple[str, list[Any]]:
    """How messages name rows: ("line", file lines) for a file, ("row", index labels) for a DataFrame."""
    rows = [int(r) for r in rows]
    if isinstance(index, Lines):
        return "line", index.labels(rows)
    return "row", ([index[r] for r in rows] if index is not None else rows)


def row_labels(data: EncodedData, rows: Any) -> str:
    """How a message names rows of encoded data: ``lines [5, 9] of f.csv`` for rows read from a CSV
    file, else ``rows [3, 7]`` (their index labels, or positions)."""
    word, labels = _row_labels(data.lines if data.lines is not None else data.index, rows)
    labels = [v.item() if isinstance(v, np.generic) else v for v in labels]
    return f"{word}s {labels}" + (f" of {data.lines.path}" if data.lines is not None else "")


def _show_rows(index: Any, rows: np.ndarray, values: Any, limit: int = 5) -> str:
    rows = np.asarray(rows)[:limit]
    word, labels = _row_labels(index, rows)
    # numpy scalars print as np.float64(inf) under numpy 2: show the plain Python value
    vals = [v.item() if isinstance(v, np.generic) else v for v in (values[r] for r in rows)]
    # a 400-digit number or a long text is cut short
    shown = [repr(v) if len(repr(v)) <= 40 else repr(v)[:36] + ("...'" if isinstance(v, str) else "...") for v in vals]
    return ", ".join(f"{word} {lab}: {val}" for lab, val in zip(labels, shown))


def _label_text(values: np.ndarray) -> np.ndarray:
    """Text of unique non-missing cell values, as state labels are written."""
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            out.append("true" if v else "false")
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return np.array(out, dtype=object)


def _lookup(var: Variable, options: ReadOptions = DEFAULT) -> dict[str, int]:
    """Cell text -> code: a declared label is its state, whatever it looks like; then the empty text
    and the user's na_values are missing (-1); then labels match regardless of case when that is
    unambiguous (TRUE/true)."""
    lookup = {label: i for i, label in enumerate(var.labels)}
    for text in options.missing_texts:
        lookup.setdefault(text, MISSING)
    lower: dict[str, int] = {}
    for i, label in enumerate(var.labels):
        lower[label.lower()] = -3 if label.lower() in lower else i
    for label, i in lower.items():
        if i >= 0 and label not in lookup:
            lookup[label] = i
    for label in var.labels:
        for variant in (label.upper(), label.capitalize()):
            if variant not in lookup and lower.get(label.lower(), -3) >= 0:
                lookup[variant] = lower[label.lower()]
    return lookup


def _code_dtype(n_states: int) -> np.dtype:
    return np.dtype(np.int8) if n_states < 127 else (np.dtype(np.int16) if n_states < 32767 else np.dtype(np.int32))


def encode_discrete(column: pd.Series, var: Variable, index: Any = None,
                    options: ReadOptions = DEFAULT) -> np.ndarray:
    """Codes ``0..k-1`` of a column of labels (or integer codes), ``-1`` where missing.

    A cell whose text is a declared label is that state; an empty text, a text in
    ``options.na_values``, None and NaN are missing (:mod:`pgm.io.table`)."""
    name = column.name
    k = var.n_states
    dtype = _code_dtype(k)
    lookup = _lookup(var, options)
    if _unnamed(var) and (pd.api.types.is_string_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype)
                          or column.dtype == object) \
            and pd.api.types.infer_dtype(column, skipna=True) in ("string", "categorical"):
        # codes 0..k-1 read as text (no pyarrow, Dask): numbers by the same rule as pyarrow's reader
        values, bad = numbers(column.astype(object).to_numpy(), options)
        if bad.any():
            raise DataError(_unknown(name, var, index, np.flatnonzero(bad), column.to_numpy()))
        column = pd.Series(values, name=name)
    # integer codes 0..k-1 against unnamed states: the common fast path
    if pd.api.types.is_integer_dtype(column.dtype) and not isinstance(column.dtype, pd.CategoricalDtype):
        arr = column.to_numpy()
        if var.labels == tuple(str(i) for i in range(k)):
            in_range = len(arr) == 0 or (arr.min() >= 0 and arr.max() < k)  # two reductions, no mask
            bad = np.zeros(0, dtype=np.int64) if in_range else np.flatnonzero((arr < 0) | (arr >= k))
            if bad.size:
                raise DataError(f"column {name!r}: codes must be 0..{k - 1}; "
                                f"{_show_rows(index, bad, arr)} (fix the data or the state count)")
            return arr.astype(dtype, copy=False)
        uniques, inverse = np.unique(arr, return_inverse=True)
        return _map_uniques(name, _label_text(uniques), inverse, lookup, var, index, arr, dtype)
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = _label_text(np.asarray(column.cat.categories, dtype=object))
        inverse = column.cat.codes.to_numpy()
        mapped = [lookup.get(c, -2) for c in cats]
        if mapped == list(range(len(cats))):  # categories are the declared states, in order
            return inverse.astype(dtype, copy=False)  # pandas' codes already are ours (NaN is -1)
        table = np.array(mapped + [MISSING], dtype=dtype)
        codes = table[inverse]  # code -1 (NaN) indexes the last entry, MISSING
        bad = np.flatnonzero(codes == -2)
        if bad.size:
            raise DataError(_unknown(name, var, index, bad, column.to_numpy()))
        return codes
    if pd.api.types.is_float_dtype(column.dtype):
        arr = column.to_numpy()
        missing = np.isnan(arr)
        inf = np.flatnonzero(np.isinf(arr))
        if inf.size:
            raise DataError(f"column {name!r}: infinite value where a state is expected; {_show_rows(index, inf, arr)}")
        if var.labels == tuple(str(i) for i in range(k)):
            ok = missing | ((arr == np.round(arr)) & (arr >= 0) & (arr < k))
            bad = np.flatnonzero(~ok)
            if bad.size:
                raise DataError(f"column {name!r}: codes must be integers 0..{k - 1}; "
                                f"{_show_rows(index, bad, arr)}")
            codes = np.where(missing, MISSING, arr).astype(dtype)
            return codes
        codes = np.full(len(arr), MISSING, dtype=dtype)
        seen = ~missing
        if seen.any():  # map only the cells that hold a value (NaN is missing, not a label)
            uniques, inverse = np.unique(arr[seen], return_inverse=True)
            bad_rows = np.flatnonzero(seen)
            mapped = _map_uniques(name, _label_text(uniques), inverse, lookup, var,
                                  None if index is None else index[bad_rows], arr[seen], dtype)
            codes[seen] = mapped
        return codes
    # text, objects, booleans: hash once with factorize, then map the few uniques.  The cells
    # themselves are turned into Python objects only to quote them in an error message.
    try:
        inverse, uniques = pd.factorize(column, use_na_sentinel=True)
    except TypeError:  # cells that cannot be hashed (lists, mappings) are no state label
        arr = column.to_numpy()
        bad = np.flatnonzero([not _hashable(v) for v in arr])
        raise DataError(_unknown(name, var, index, bad, arr)) from None
    texts = _label_text(np.asarray(uniques, dtype=object))
    table = np.array([lookup.get(t, -2) for t in texts] + [MISSING], dtype=dtype)
    codes = table[inverse]
    bad = np.flatnonzero(codes == -2)
    if bad.size:
        raise DataError(_unknown(name, var, index, bad, column.to_numpy()))
    return codes


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _map_uniques(name, texts, inverse, lookup, var, index, arr, dtype) -> np.ndarray:
    table = np.array([lookup.get(t, -2) for t in texts], dtype=np.int64)
    codes = table[inverse]
    bad = np.flatnonzero(codes == -2)
    if bad.size:
        raise DataError(_unknown(name, var, index, bad, arr))
    return codes.astype(dtype)


def _unknown(name: str, var: Variable, index: Any, bad: np.ndarray, arr: np.ndarray) -> str:
    shown = list(var.labels[:10]) + (["..."] if len(var.labels) > 10 else [])
    return (f"column {name!r}: unknown label in {len(bad)} row{'s' if len(bad) > 1 else ''} "
            f"({_show_rows(index, bad, arr)}); the declared states of {var.decl!r} are {shown} "
            "(fix the data, or add the state to the graph file)")


def encode_gaussian(frame: pd.DataFrame, var: Variable, index: Any = None,
                    options: ReadOptions = DEFAULT) -> np.ndarray:
    """A float block of shape (n_rows, dim); NaN where missing; strings and infinities refused.

    Text cells are numbers by the rule of :func:`pgm.io.table.numbers` (the text ``nan`` and
    ``options.na_values`` are missing)."""
    blocks = []
    for col in var.columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series.dtype):
            raise DataError(f"column {col!r}: booleans in the gaussian column of {var.decl!r}; give numbers")
        kind = series.dtype.kind
        if kind in "cmM" or isinstance(series.dtype, pd.PeriodDtype):  # complex, timedelta, datetime
            raise DataError(f"column {col!r}: the gaussian column of {var.decl!r} holds {series.dtype} values, "
                            "not real numbers; convert them first (e.g. dates to days since a start date)")
        if pd.api.types.is_numeric_dtype(series.dtype):
            arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            try:
                arr, not_number = numbers(series.to_numpy(), options)
            except (OverflowError, TypeError, ValueError):  # an integer beyond float range, a complex cell
                arr = np.array([_real(v) for v in series.to_numpy()], dtype=np.float64)
                not_number = np.isnan(arr) & series.notna().to_numpy()
            if pd.api.types.infer_dtype(series, skipna=True) not in ("floating", "integer", "mixed-integer-float",
                                                                      "decimal", "empty"):
                # text, or cells of several kinds: True, a date, or a complex number must not pass as numbers
                odd = np.array([isinstance(v, (bool, np.bool_, complex, np.complexfloating, pd.Timestamp,
                                               pd.Timedelta)) for v in series.to_numpy()], dtype=bool)
                if odd.any():
                    arr = np.where(odd, np.nan, arr)
                    not_number = not_number | odd
            bad = np.flatnonzero(not_number)
            if bad.size:
                raw = series.to_numpy()
                raise DataError(f"column {col!r}: {len(bad)} cell{'s' if len(bad) > 1 else ''} that are not "
                                f"numbers in the gaussian column of {var.decl!r} ({_show_rows(index, bad, raw)}); "
                                "fix them, leave them empty (missing), or list their text in na_values")
        bad = np.flatnonzero(np.isinf(arr))
        if bad.size:
            raw = arr if pd.api.types.is_numeric_dtype(series.dtype) else series.to_numpy()
            raise DataError(f"column {col!r}: non-finite value in the gaussian column of {var.decl!r} "
                            f"({_show_rows(index, bad, raw)}); use finite numbers, or leave the cell empty (missing)")
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(np.abs(arr) > MAX_ABS_GAUSSIAN)
        if bad.size:
            raise DataError(f"column {col!r}: {len(bad)} value{'s' if len(bad) > 1 else ''} beyond "
                            f"+-{MAX_ABS_GAUSSIAN:.0e} in the gaussian column of {var.decl!r} "
                            f"({_show_rows(index, bad, arr)}); squares of such values overflow: rescale the column "
                            "(e.g. divide it by a power of ten)")
        blocks.append(arr)
    return np.column_stack(blocks) if len(blocks) > 1 else blocks[0][:, None]


def _real(value: Any) -> float:
    """A cell as a float, NaN when it is not a real number within float range (refused by the caller)."""
    try:
        return float(value)
    except OverflowError:
        return np.inf  # refused as a non-finite value
    except (TypeError, ValueError):
        return np.nan


def encode(graph: Graph, data: Any, *, weights: str | np.ndarray | None = None, part: bool = False,
           source: str | Path | None = None, absent: tuple[str, ...] = (), options: ReadOptions | None = None,
           start: int = 0, positions: np.ndarray | None = None) -> EncodedData:
    """Encode ``data`` (DataFrame or path) for the observed variables of ``graph``.

    Columns are matched to variables by name; extra columns are ignored with a
    ``DataWarning``; columns of latent variables are ignored (they are never observed).
    The variables in ``absent`` may lack their columns (what a prediction asks for): such
    a variable is then unobserved in every row, like a latent one.
    Cells are read by the rule of :mod:`pgm.io.table` with ``options`` (na_values, sep).

    ``source`` names the file a frame was read from (a chunk of it starting at data row
    ``start``): errors then name the file and the line of a CSV file.  A path as ``data`` is
    its own source.  ``positions`` are the rows' positions in the file when they are not
    consecutive (rows regrouped, e.g. by sequence), counted from ``start``.

    ``weights`` is the name of a data column of row weights (or an array, one weight per row):
    non-negative finite numbers, a row of weight ``w`` counting as ``w`` copies of the row.
    Rows of weight 0 are dropped (``index`` keeps the others').  ``part=True`` says the data
    are one chunk or partition of a larger table, so a zero total weight is for the caller to
    judge; ``source`` is the file the rows were read from (errors then name its lines).

    Raises
    ------
    pgm.DataError
        missing column, unknown label, non-numeric or non-finite gaussian cell,
        duplicated column names, empty table; a weights column that is missing, names a node,
        or holds a negative, NaN, infinite or non-numeric cell, or weights that sum to 0.
    """
    options = DEFAULT if options is None else options
    if source is None and isinstance(data, (str, Path)):
        source = data
    weight_col = weights if isinstance(weights, str) else None
    if weight_col is not None:
        check_weights_name(graph, weight_col)
    frame = as_frame(data, columns_of(graph), options, (weight_col,) if weight_col is not None else ())
    where: Any = frame.index
    if source is not None and Path(source).suffix.lower() not in (".parquet", ".pq"):
        where = Lines(source, options, start, positions)
    try:
        return _encode_frame(graph, frame, weights, weight_col, part, options, where, absent)
    except DataError as exc:
        if source is None or str(exc).startswith(f"{source}:"):
            raise
        raise DataError(f"{source}: {exc}") from None


def _encode_frame(graph: Graph, frame: pd.DataFrame, weights: Any, weight_col: str | None, part: bool,
                  options: ReadOptions, where: Any, absent: tuple[str, ...] = ()) -> EncodedData:
    """encode() on a frame: ``where`` names rows in messages (the frame's index, or a file's lines)."""
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"duplicated column names {dups}; every column must be named once")
    if len(frame) == 0:
        raise DataError("the data have no rows; give at least one row")
    present = {str(c): c for c in frame.columns}
    needed: list[str] = []
    observed_vars = [graph[n] for n in graph.order if not graph[n].latent
                     and not (n in absent and any(c not in present for c in graph[n].columns))]
    for var in observed_vars:
        needed.extend(var.columns)
    missing_cols = [c for c in needed if c not in present]
    if missing_cols:
        hints = []
        for col in missing_cols[:5]:
            close = difflib.get_close_matches(col, list(present), n=1)
            hints.append(f"{col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        more = f" and {len(missing_cols) - 5} more" if len(missing_cols) > 5 else ""
        raise DataError(f"missing column{'s' if len(missing_cols) > 1 else ''} {', '.join(hints)}{more}; "
                        f"the data must have a column per observed node (found: {sorted(present)[:12]})"
                        f"{separator_hint(list(present), options)}")
    latent_cols = {c for n in graph.latent for c in graph[n].columns}
    if weight_col is not None and weight_col not in present:
        close = difflib.get_close_matches(weight_col, list(present), n=1)
        raise DataError(f"missing weights column {weight_col!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                        + f"; the data have no such column (found: {sorted(present)[:12]})")
    needed.extend(c for n in absent if n in graph.variables for c in graph[n].columns if c in present)
    extra = [c for c in present if c not in set(needed) and c != weight_col]
    if extra:
        ignored = [c for c in extra if c not in latent_cols]
        hint = separator_hint(list(present), options) if ignored == list(present) else ""
        if hint:  # predict's absent columns would otherwise take every row's `a;b;c` header as "no evidence"
            raise DataError(f"no column of the data names a node (found: {sorted(present)[:12]}){hint}")
        if ignored:
            warnings.warn(f"ignoring {len(ignored)} column{'s that name' if len(ignored) > 1 else ' that names'} no node: "
                          f"{ignored[:8]}{' ...' if len(ignored) > 8 else ''}", DataWarning, stacklevel=4)
        if latent_cols & set(extra):
            warnings.warn(f"ignoring the columns of latent nodes {sorted(latent_cols & set(extra))}: latent "
                          "nodes are never observed (drop `latent: true` to use them)", DataWarning, stacklevel=4)
    if frame.columns.dtype != object or any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    index = where
    codes: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    whole: list[np.ndarray] = []   # per node: rows where every one of its cells is missing
    for var in observed_vars:
        if var.discrete:
            arr = encode_discrete(frame[var.columns[0]], var, index, options)
            codes[var.name] = arr
            miss = arr < 0
            whole.append(miss)
        else:
            arr = encode_gaussian(frame, var, index, options)
            values[var.name] = arr
            miss = np.isnan(arr).any(axis=1)  # some or all components (EM conditions on the observed ones)
            whole.append(np.isnan(arr).all(axis=1))
        if miss.any():
            missing[var.name] = miss
    if observed_vars and len(missing) == len(observed_vars):
        empty = np.flatnonzero(np.logical_and.reduce(whole))
        if empty.size:
            word, labels = _row_labels(index, empty[:5])
            warnings.warn(f"{empty.size} row{'s' if empty.size > 1 else ''} with every cell missing "
                          f"({', '.join(f'{word} {lab}' for lab in labels)}{' ...' if empty.size > 5 else ''}): "
                          + ("they carry no information and each contributes" if empty.size > 1 else
                             "it carries no information and contributes")
                          + " 0 to the log-likelihood; drop "
                          + ("them" if empty.size > 1 else "it") + " to silence this warning", DataWarning, stacklevel=4)
    if weight_col is not None:
        weights = row_weights(frame[weight_col], weight_col, index)
    elif weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(frame),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise DataError("weights must be finite, non-negative and one per row")
    if weights is not None:
        with np.errstate(over="ignore"):  # an overflowing total is refused here
            total = float(weights.sum())
        check_total_weight(total, weight_col, f"the {len(frame)} rows", part)
    data = EncodedData(len(frame), codes, values, weights, frame.index, missing,
                       index if isinstance(index, Lines) else None)
    if weights is not None and not weights.all():  # a row of weight 0 is no row: drop it
        data = data.take(np.flatnonzero(weights))
    return data


def _weights_name(column: str | None) -> str:
    return "the row weights" if column is None else f"the weights in column {column!r}"


def check_total_weight(total: float, column: str | None, where: str, part: bool = False) -> None:
    """A DataError when the weights of ``where`` sum to 0 (unless ``part``: one chunk of more) or overflow."""
    if not np.isfinite(total):
        raise DataError(f"{_weights_name(column)} sum beyond the float range over {where}; rescale them (the "
                        "estimates depend only on the ratios of the weights, under no prior)")
    if not part and not total > 0:
        raise DataError(f"{_weights_name(column)} sum to 0 over {where}: there is nothing to fit; give some rows "
                        "a positive weight")


def check_weights_name(graph: Graph, column: Any) -> None:
    """A DataError unless ``column`` can name a weights column: text that names no node or node column."""
    if not isinstance(column, str) or not column:
        raise DataError(f"weights must name a data column of row weights, got {column!r}")
    for name in graph.order:
        var = graph[name]
        if column in (name, var.decl) or column in var.columns:
            raise DataError(f"weights column {column!r} is the data column of node {var.decl!r}; row weights "
                            "need a column of their own (name another column, or rename the node)")


def row_weights(column: pd.Series, name: str, index: Any = None) -> np.ndarray:
    """The weights column as float64, refused (naming its rows) unless every cell is a number >= 0.

    ``index`` labels the rows in messages (a :class:`pgm.io.table.Lines` for a CSV file: its lines)."""
    if pd.api.types.is_bool_dtype(column.dtype) or column.dtype.kind in "cmM":
        raise DataError(f"weights column {name!r} holds {column.dtype} values, not numbers; give a number >= 0 "
                        "per row")
    if pd.api.types.is_numeric_dtype(column.dtype):
        arr = column.to_numpy(dtype=np.float64, na_value=np.nan)
        text = np.zeros(len(arr), dtype=bool)
    else:
        try:
            arr = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        except (OverflowError, TypeError, ValueError):
            arr = np.array([_real(v) for v in column.to_numpy()], dtype=np.float64)
        if pd.api.types.infer_dtype(column, skipna=True) not in ("floating", "integer", "mixed-integer-float",
                                                                  "decimal", "empty"):
            # cells of several kinds: True or a complex number must not pass as a number
            odd = np.array([isinstance(v, (bool, np.bool_, complex, np.complexfloating)) for v in column.to_numpy()],
                           dtype=bool)
            arr = np.where(odd, np.nan, arr)
        text = np.isnan(arr) & column.notna().to_numpy()
    raw = column.to_numpy()
    problems = (("cell that is not a number", "cells that are not numbers", text),
                ("empty (missing) cell", "empty (missing) cells", np.isnan(arr) & ~text),
                ("infinite value", "infinite values", np.isinf(arr)),
                ("negative value", "negative values", arr < 0))
    for one, many, mask in problems:
        bad = np.flatnonzero(mask)
        if bad.size:
            shown = _show_rows(index, bad, raw)
            raise DataError(f"weights column {name!r}: {bad.size} {many if bad.size > 1 else one} ({shown}); "
                            "every row needs a weight: a finite number >= 0")
    return arr


def merge_rows(codes: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical rows of a code matrix (missing cells are -1): the one place rows are merged.

    Returns ``(first, summed, inverse)``: the index of each distinct row's first occurrence (distinct
    rows in lexicographic order when the codes fit one 64-bit key, else in byte order), the summed weights of its copies (its count without ``weights``),
    and each row's distinct row.  Likelihoods and expected statistics are sums over rows, so a
    weighted distinct row stands exactly for its copies.
    """
    codes = np.asarray(codes)
    if codes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    if codes.shape[1] == 0:
        total = float(codes.shape[0] if weights is None else np.sum(weights))
        return np.zeros(1, dtype=np.int64), np.array([total]), np.zeros(codes.shape[0], dtype=np.int64)
    radix = codes.max(axis=0).astype(np.int64) + 2
    if np.sum(np.log2(radix)) < 62:  # one int64 key per row: much faster than a row-wise unique
        key = np.zeros(codes.shape[0], dtype=np.int64)
        for j in range(codes.shape[1]):
            key = key * radix[j] + (codes[:, j].astype(np.int64) + 1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # each row as one byte string: much faster than np.unique(axis=0)
        matrix = np.ascontiguousarray(codes)
        keys = matrix.view(np.dtype((np.void, matrix.dtype.itemsize * matrix.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    return first, np.bincount(inverse, weights=weights, minlength=len(first)).astype(np.float64), inverse


def compress_rows(data: EncodedData) -> EncodedData | None:
    """Merge identical rows of an all-discrete data set into distinct rows with weights.

    Returns None when the data hold gaussian values or when merging would not halve
    the rows (EM then costs per distinct row; see :func:`merge_rows`).
    """
    if data.values or not data.codes or data.n_rows < 64:
        return None
    names = list(data.codes)
    matrix = np.column_stack([data.codes[n].astype(np.int32, copy=False) for n in names])
    first, weights, _ = merge_rows(matrix, data.weights)
    if len(first) * 2 > data.n_rows:
        return None
    codes = {n: data.codes[n][first] for n in names}
    missing = {n: m[first] for n, m in data.missing.items()}
    missing = {n: m for n, m in missing.items() if m.any()}
    return EncodedData(len(first), codes, {}, weights, None, missing)
