"""The reading rule for data files, in one place: which cells are missing, the separator, the lines.

Every reader of pgm (pandas with or without pyarrow, the streaming reader of
:mod:`pgm.stream`, the Dask reader of :mod:`pgm.distributed`, Parquet files and DataFrames
in memory) follows one rule, built here from one :class:`ReadOptions` value:

* a cell is **missing** when it is empty (a CSV field with no text, ``""`` quoted, a Parquet
  null, a Python ``None`` or float NaN in a DataFrame), or when its text is one of the user's
  ``na_values`` (``pgm.fit(..., na_values=["?"])``, ``--na '?'``);
* a cell whose text equals a declared state label is that state, whatever it looks like:
  ``None``, ``NA``, ``null``, ``NaN``, ``True``, ``007`` and ``1.0`` are text like any other
  (no reader applies pandas' or pyarrow's default list of "NA" spellings);
* a gaussian (numeric) cell is a decimal number; the text ``nan`` (any case, with a sign) is a
  float NaN and so missing, ``inf`` is refused as non-finite, and any other text (``NA``,
  `` 2`` with spaces, ``1_000``) is not a number unless listed in ``na_values``.

CSV files are read as text (labels) and float64 (numbers) with exactly these null
spellings.  A row with fewer or more fields than the header is a DataError naming its line
(the header is line 1), found by :func:`check_fields`, a vectorised scan of the file's bytes
that follows quoting.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from pgm.errors import DataError, PGMError

#: Separators a header is checked for when it holds one field (the file is not comma-separated).
OTHER_SEPARATORS = (";", "\t", "|")
_SCAN_BYTES = 1 << 24


@dataclass(frozen=True)
class ReadOptions:
    """How data cells are read: the texts that mean missing besides the empty cell, and the separator.

    ``sep=None`` means a comma (a tab for ``.tsv`` files)."""

    na_values: tuple[str, ...] = ()
    sep: str | None = None

    @property
    def missing_texts(self) -> frozenset[str]:
        """Texts of a cell that make it missing: the empty text and the user's na_values."""
        return frozenset(("",) + self.na_values)

    @property
    def null_values(self) -> list[str]:
        """pyarrow's ``null_values`` for numeric columns (text columns never become null)."""
        return sorted(self.missing_texts)


DEFAULT = ReadOptions()


def read_options(na_values: Any = None, sep: Any = None) -> ReadOptions:
    """A validated :class:`ReadOptions` from the user's ``na_values`` and ``sep``."""
    if isinstance(na_values, ReadOptions):
        return na_values
    if na_values is None:
        values: tuple[str, ...] = ()
    elif isinstance(na_values, str):
        values = (na_values,)
    else:
        try:
            values = tuple(na_values)
        except TypeError:
            raise PGMError(f"na_values must be a text or a list of texts, got {na_values!r}") from None
    for v in values:
        if not isinstance(v, str):
            raise PGMError(f"na_values must be texts such as '?' or 'NA', got {v!r} ({type(v).__name__})")
    if sep is not None:
        if not isinstance(sep, str) or len(sep) != 1 or sep in ('"', "\n", "\r"):
            raise PGMError(f"sep must be one character such as ',' ';' or '\\t' (not a quote or a newline), "
                           f"got {sep!r}")
    return ReadOptions(tuple(dict.fromkeys(values)), sep)


def separator(path: str | Path, options: ReadOptions = DEFAULT) -> str:
    """The field separator of a CSV file: the user's, else a tab for .tsv, else a comma."""
    if options.sep is not None:
        return options.sep
    return "\t" if ".tsv" in Path(path).name.lower() else ","


def _open_text(path: Path) -> Any:
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")  # a BOM (Excel's "CSV UTF-8") is not text


def read_header(path: str | Path, options: ReadOptions = DEFAULT) -> list[str]:
    """The column names of a CSV file as written (repeated names kept; blank lines before it skipped,
    as every reader skips them).  A DataError for an empty file or one of blank lines only."""
    path = Path(path)
    sep = separator(path, options)
    kind = path.suffix.lower().lstrip(".")
    first = None
    try:
        with _open_text(path) as handle:
            for record in csv.reader(handle, delimiter=sep):
                if record:
                    first = record
                    break
    except (UnicodeDecodeError, OSError, csv.Error, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as a {kind} table ({_first_line(exc)})") from None
    if first is None and path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; a data file needs a header row naming the columns")
    if first is None or (len(first) == 1 and not first[0].strip()):
        raise DataError(f"{path}: cannot be read as a {kind} table (no header row: the file holds only blank "
                        "lines); a data file needs a header row naming the columns")
    return first


def separator_hint(names: list[str], options: ReadOptions = DEFAULT) -> str:
    """A hint when a table read with one separator has a single column whose name holds another
    (``a;b;c``): the file is likely separated by it.  Empty when not so."""
    if len(names) != 1 or options.sep is not None:
        return ""
    for other in OTHER_SEPARATORS:
        if other in names[0] and len([f for f in names[0].split(other) if f.strip()]) >= 2:
            shown = "\\t" if other == "\t" else other
            return f"; the file looks separated by {shown!r}, not by commas: pass sep='{shown}'"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- rows and lines
def _records(path: Path, sep: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each block of the file: the physical line (1-based) where each record starts and its
    number of fields, the header included and blank lines left out (every reader skips them).
    Separators and newlines inside quotes do not count.  Vectorised per block of bytes."""
    newline, cr, delim = ord("\n"), ord("\r"), ord(sep)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    inside = False      # within quotes at the start of the block
    line = 1            # physical line at the start of the block
    rec_line, rec_fields, rec_bytes, rec_cr = 1, 1, 0, False  # the record pending across blocks
    with opener(path, "rb") as handle:
        while True:
            block = handle.read(_SCAN_BYTES)
            if not block:
                break
            buf = np.frombuffer(block, dtype=np.uint8)
            # within quotes at each byte (a quote toggles; "" inside a quoted field toggles twice)
            quoted = np.logical_xor.accumulate(buf == ord('"')) ^ inside
            is_nl = buf == newline
            ends = np.flatnonzero(is_nl & ~quoted)
            seps = np.cumsum((buf == delim) & ~quoted)
            nls = np.cumsum(is_nl)
            if len(ends):
                prev = np.concatenate(([-1], ends[:-1]))
                fields = seps[ends] - np.where(prev >= 0, seps[np.maximum(prev, 0)], 0) + 1
                lines = line + np.where(prev >= 0, nls[np.maximum(prev, 0)], 0)
                lengths = ends - prev - 1
                before_cr = buf[np.maximum(ends - 1, 0)] == cr
                fields[0] += rec_fields - 1
                lines[0] = rec_line
                if ends[0] == 0:
                    before_cr[0] = rec_cr
                lengths[0] += rec_bytes
                blank = (fields == 1) & ((lengths == 0) | ((lengths == 1) & before_cr))
                yield lines[~blank], fields[~blank]
                rec_line = line + int(nls[ends[-1]])
                rec_fields = 1 + int(seps[-1] - seps[ends[-1]])
                rec_bytes = len(buf) - int(ends[-1]) - 1
            else:
                rec_fields += int(seps[-1])
                rec_bytes += len(buf)
            rec_cr = bool(buf[-1] == cr)
            inside = bool(quoted[-1])
            line += int(nls[-1])
    if rec_bytes and not (rec_bytes == 1 and rec_cr and rec_fields == 1):
        yield np.array([rec_line]), np.array([rec_fields])


def check_fields(path: str | Path, options: ReadOptions = DEFAULT) -> None:
    """Raise a DataError naming the line of the first row with fewer or more fields than the header."""
    path = Path(path)
    sep = separator(path, options)
    expected = None
    for lines, fields in _records(path, sep):
        if not len(fields):
            continue
        if expected is None:
            expected = int(fields[0])
            lines, fields = lines[1:], fields[1:]
        bad = np.flatnonzero(fields != expected)
        if bad.size:
            raise ragged(path, int(lines[bad[0]]), expected, int(fields[bad[0]]))


def ragged(path: Path, line: int | None, expected: int, got: int | None) -> DataError:
    """The DataError for a row whose number of fields differs from the header's."""
    where = f"line {line}" if line is not None else "a row"
    if got is None:
        what = "a different number of fields than"
    else:
        what = f"{got} field{'s' if got != 1 else ''}, {'fewer' if got < expected else 'more'} fields than"
    names = f"{expected} column{'s' if expected != 1 else ''}"
    return DataError(f"{path}: {where}: the row has {what} the header (which names {names}); every row needs one "
                     "field per column (an empty field is a missing cell): check the separators and quoting")


def row_lines(path: str | Path, rows: Iterable[int], options: ReadOptions = DEFAULT) -> dict[int, int]:
    """The physical line of data rows at positions ``rows`` (0-based, the header not counted)."""
    path = Path(path)
    wanted = np.unique(np.asarray(list(rows), dtype=np.int64))
    out: dict[int, int] = {}
    seen = 0  # records of the earlier blocks, the header included (data row r is record r + 1)
    for lines, _ in _records(path, separator(path, options)):
        positions = wanted + 1 - seen  # index into this block's records
        hit = (positions >= 0) & (positions < len(lines))
        for w, p in zip(wanted[hit], positions[hit]):
            out[int(w)] = int(lines[p])
        seen += len(lines)
        if len(out) == len(wanted):
            break
    return out


class Lines:
    """Data rows of a file named by their lines in error messages: ``Lines(path)[r]`` is the line of
    data row ``r`` (0-based position; row 0 is on line 2 below a one-line header).

    The lines are found by scanning the file only when a message needs them (blank lines and
    quoted newlines move rows down); ``word`` tells messages to say "line", not "row".
    ``start`` is the position of the first row of a chunk or partition in the whole file."""

    word = "line"

    def __init__(self, path: str | Path, options: ReadOptions = DEFAULT, start: int = 0,
                 positions: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self.options = options
        self.start = start
        self.positions = positions

    def _position(self, i: int) -> int:
        return self.start + int(self.positions[i] if self.positions is not None else i)

    def __getitem__(self, rows: Any) -> Any:
        if np.ndim(rows) == 0:
            return self.labels([int(rows)])[0]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        base = rows if self.positions is None else np.asarray(self.positions)[rows]
        return Lines(self.path, self.options, self.start, base)

    def labels(self, rows: list[int]) -> list[int]:
        """The lines of the rows at positions ``rows`` of this chunk (one scan of the file)."""
        positions = [self._position(r) for r in rows]
        try:
            found = row_lines(self.path, positions, self.options)
        except Exception:  # noqa: BLE001  (a message must not fail: fall back to position + 2)
            found = {}
        return [found.get(p, p + 2) for p in positions]


def numbers(cells: Any, options: ReadOptions = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """Floats from cells read as text (or Python objects), and a mask of the cells that are not numbers.

    Missing cells (None, NaN, the empty text, na_values) are NaN and not flagged; the text ``nan``
    is NaN; spaces around a number are allowed and underscores are not, as in pyarrow's CSV
    reader, so that every reader agrees."""
    series = pd.Series(np.asarray(cells, dtype=object), dtype=object)
    missing = (series.isna() | series.isin(list(options.missing_texts))).to_numpy()
    values = pd.to_numeric(series.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64,
                                                                                   na_value=np.nan).copy()
    bad = np.isnan(values) & ~missing
    try:
        text = series.str  # string methods; cells that are not text give NaN
    except AttributeError:  # no text cell at all
        return values, bad
    # Python's float() takes 1_000, pyarrow does not; the text nan is a float NaN (missing)
    odd = text.contains("_", regex=False).fillna(False).to_numpy(dtype=bool)
    nan_text = text.fullmatch(r"\s*[+-]?nan\s*", case=False).fillna(False).to_numpy(dtype=bool)
    values[odd] = np.nan
    bad = (bad | odd) & ~(nan_text & ~odd)
    return values, bad
