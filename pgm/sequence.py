"""Long-form sequence data: one row per step, a column naming the sequence and one ordering it.

:func:`encode_sequences` sorts the rows by sequence and step (the rows may come in any order; the
``order`` column holds numbers or timestamps), checks the two columns, and lays the rows out
*time-major*: the first steps of every sequence, then the second steps, and so on, with the
sequences ranked longest first.  Step ``t`` is then one contiguous block of rows holding the
sequences still running at ``t`` as a prefix of the ranks, so inference advances every sequence
together with slices and no per-sequence loop (:mod:`pgm.infer.chain`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pgm.encode import EncodedData, as_frame, check_weights_name, columns_of, encode, row_weights
from pgm.io.table import DEFAULT, Lines, ReadOptions, separator_hint
from pgm.errors import DataError, DataWarning, PGMError
from pgm.graph import Graph


@dataclass(frozen=True)
class SequenceData:
    """Encoded sequences in time-major order.

    Attributes
    ----------
    enc : the slice variables' codes and values, one row per step, time-major
    offsets : (T + 1,) step ``t`` holds rows ``offsets[t]:offsets[t + 1]`` (sequences of rank
        ``0..n_t - 1``, longest first)
    lengths : (S,) the length of each sequence, by rank (non-increasing)
    ids : (S,) each sequence's id, by rank
    rows : (N,) the position in the caller's frame of each time-major row
    index : the caller's row labels (in the caller's order)
    """

    enc: EncodedData
    offsets: np.ndarray
    lengths: np.ndarray
    ids: np.ndarray
    rows: np.ndarray
    index: Any
    frame: Any = None                     # the caller's table as read (for outputs that copy its columns)
    sequence_weights: np.ndarray | None = None  # (S,) each sequence's weight, by rank (None: 1 each)

    @property
    def n_rows(self) -> int:
        return self.enc.n_rows

    @property
    def row_weights(self) -> np.ndarray | None:
        """Each time-major row's weight (its sequence's), or None."""
        return None if self.sequence_weights is None else self.sequence_weights[self.rank]

    @property
    def weights(self) -> np.ndarray | None:
        """Each row's weight (its sequence's) in the caller's row order, as per-row results are given
        (:meth:`to_caller`), or None."""
        w = self.row_weights
        return None if w is None else self.to_caller(w)

    @property
    def n_sequences(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return len(self.offsets) - 1

    def name_rows(self, rows: Any) -> str:
        """How a message names time-major rows: ``rows [labels]``, or ``lines [...] of f.csv``."""
        return name_rows(self.enc.lines if self.enc.lines is not None else self.enc.index, rows)

    def step(self, t: int) -> slice:
        """The rows of step ``t``."""
        return slice(int(self.offsets[t]), int(self.offsets[t + 1]))

    @property
    def rank(self) -> np.ndarray:
        """The sequence rank of every time-major row."""
        sizes = np.diff(self.offsets)
        return np.arange(self.n_rows) - np.repeat(self.offsets[:-1], sizes)

    @property
    def prev_rows(self) -> np.ndarray:
        """For rows of steps >= 1 (rows ``offsets[1]:``), the row of the same sequence one step before."""
        sizes = np.diff(self.offsets)
        return self.rank[self.offsets[1]:] + np.repeat(self.offsets[:-2], sizes[1:])

    def to_caller(self, values: np.ndarray) -> np.ndarray:
        """Per-row results in time-major order, put back in the caller's row order."""
        out = np.empty_like(values)
        out[self.rows] = values
        return out


def slice_graph(graph: Graph) -> Graph:
    """The variables of one step, as a graph to encode a step's row against."""
    names = graph.slice
    return Graph(graph.spec, {n: graph[n] for n in names}, names, {})


def where_of(index: Any, source: str | Path | None, options: ReadOptions = DEFAULT) -> Any:
    """How messages name the rows labelled ``index``: the lines of a CSV ``source`` (``index`` holds the
    rows' positions in the file), else the labels themselves (a DataFrame's, or positions in a Parquet file)."""
    if source is not None and Path(source).suffix.lower() not in (".parquet", ".pq"):
        return Lines(source, options, 0, np.asarray(index, dtype=np.int64))
    return index


def name_rows(where: Any, rows: Any) -> str:
    """``rows [3, 7]`` (the labels of ``where``) or ``lines [5, 9] of f.csv`` (a :class:`Lines`)."""
    rows = [int(r) for r in rows]
    if isinstance(where, Lines):
        return f"lines {where.labels(rows)} of {where.path}"
    labels = [where[r] for r in rows]
    return f"rows {[v.item() if isinstance(v, np.generic) else v for v in labels]}"


def _pair(where: Any, a: int, b: int) -> str:
    if isinstance(where, Lines):
        la, lb = where.labels([a, b])
        return f"lines {la} and {lb}"
    return f"rows {where[a]} and {where[b]}"


def _text_missing(column: pd.Series, options: ReadOptions) -> pd.Series:
    """A column with its empty (and na_values) text cells as missing: the reading rule of pgm.io.table."""
    if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
        return column.where(~column.isin(list(options.missing_texts)))
    return column


def sequence_ids(column: pd.Series, name: str, where: Any, options: ReadOptions = DEFAULT) -> pd.Series:
    """The id column; a DataError naming the rows of empty cells (every row names its sequence)."""
    ids = _text_missing(column, options)
    if ids.isna().any():
        bad = np.flatnonzero(ids.isna().to_numpy())
        raise DataError(f"id column {name!r}: {len(bad)} empty cell{'s' if len(bad) > 1 else ''} "
                        f"({name_rows(where, bad[:5])}); every row must name its sequence")
    return ids


def to_stamps(column: pd.Series) -> pd.Series:
    """Text cells as timestamps; ISO stamps whose UTC offset changes (summer time: +01:00 then
    +02:00) in UTC, the instants they name.  ValueError or TypeError when a cell is not one."""
    with warnings.catch_warnings():  # pandas' "could not infer format" / mixed-offset notices
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            stamps = pd.to_datetime(column, errors="raise")
        except ValueError:
            return pd.to_datetime(column, errors="raise", utc=True)
        if not pd.api.types.is_datetime64_any_dtype(stamps.dtype):  # offsets kept per cell (object)
            stamps = pd.to_datetime(column, errors="raise", utc=True)
    return stamps


def _all_stamps(cells: pd.Series) -> bool:
    """Whether every cell reads as a timestamp."""
    try:
        return bool(pd.to_datetime(cells, errors="coerce", format="mixed").notna().all())
    except (ValueError, TypeError):
        return False


def order_values(column: pd.Series, name: str, where: Any = None,
                 options: ReadOptions = DEFAULT) -> tuple[np.ndarray, str]:
    """The order column as sortable numbers (timestamps as their integer nanoseconds), and which
    they were: ``"number"`` or ``"time"``.  ``where`` names rows in messages (see :func:`where_of`)."""
    where = column.index if where is None else where
    column = _text_missing(column, options)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if column.isna().any():
            bad = np.flatnonzero(column.isna().to_numpy())
            raise DataError(f"order column {name!r}: {len(bad)} empty cell{'s' if len(bad) > 1 else ''} "
                            f"({name_rows(where, bad[:5])}); every step needs its place in the sequence")
        return pd.DatetimeIndex(column).as_unit("ns").asi8.astype(np.float64), "time"  # UTC for zoned stamps
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        converted = pd.to_numeric(column, errors="coerce")
        if converted.isna().any() and column.notna().all():
            try:
                stamps = to_stamps(column)
                return order_values(stamps, name, where, options)
            except (ValueError, TypeError):
                pass
        bad = np.flatnonzero(converted.isna().to_numpy() & column.notna().to_numpy())
        if bad.size or pd.api.types.is_bool_dtype(column.dtype):
            bad = bad if bad.size else np.arange(min(len(column), 5))
            shown = f"({name_rows(where, bad[:5])}: {list(column.iloc[bad[:5]])})"
            if bad.size < column.notna().sum() and _all_stamps(column.iloc[bad]):
                raise DataError(f"order column {name!r} mixes numbers and timestamps: {len(bad)} "
                                f"cell{'s are' if len(bad) > 1 else ' is a'} timestamp{'s' if len(bad) > 1 else ''} "
                                f"{shown} among numbers; give one kind (every order a number, or every one a date)")
            raise DataError(f"order column {name!r}: {len(bad)} "
                            + ("cells that are neither numbers nor timestamps " if len(bad) > 1 else
                               "cell that is neither a number nor a timestamp ")
                            + f"{shown}; the order column orders the steps")
        column = converted
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"order column {name!r}: {len(bad)} empty or non-finite cell{'s' if len(bad) > 1 else ''} "
                        f"({name_rows(where, bad[:5])}); every step needs its place in the sequence")
    return values, "number"


def _reorder(enc: EncodedData, rows: np.ndarray) -> EncodedData:
    """The encoded rows in the order ``rows`` (every row kept, so the row count holds without columns)."""
    missing = {k: v[rows] for k, v in enc.missing.items()}
    return EncodedData(len(rows), {k: v[rows] for k, v in enc.codes.items()},
                       {k: v[rows] for k, v in enc.values.items()},
                       None if enc.weights is None else enc.weights[rows],
                       None if enc.index is None else enc.index[rows], missing,
                       None if enc.lines is None else enc.lines[rows])


def arrange(graph: Graph, code: np.ndarray, ids: np.ndarray, order: np.ndarray, enc: EncodedData, where: Any,
            order_cells: Any = None, frame: Any = None, weights: np.ndarray | None = None) -> SequenceData:
    """Rows of encoded steps laid out time-major (see the module docstring).

    ``code`` numbers each row's sequence (``ids[code]`` its id), ``order`` places the row in it,
    ``enc`` holds the rows as given and ``where`` names them in messages; ``order_cells`` shows the
    order cells as written in the duplicate message (default: ``order``); ``weights`` are the
    sequences' weights (by ``code``), or None.

    Raises
    ------
    pgm.DataError
        two rows with the same (id, order).
    """
    seq = graph.spec.sequence
    assert seq is not None
    by_seq = np.lexsort((order, code))
    sc, so = code[by_seq], order[by_seq]
    dup = np.flatnonzero((sc[1:] == sc[:-1]) & (so[1:] == so[:-1]))
    if dup.size:
        shown = "; ".join(_pair(where, by_seq[d], by_seq[d + 1]) for d in dup[:3])
        first = by_seq[dup[0]]
        cells = order if order_cells is None else order_cells
        one = ids[code[first]]
        raise DataError(f"{dup.size} duplicated ({seq.id}, {seq.order}) pair{'s' if dup.size > 1 else ''} ({shown}, "
                        f"e.g. {seq.id}={one.item() if isinstance(one, np.generic) else one!r}, "
                        f"{seq.order}={cells[first]!r}); each step of a sequence must appear once")
    counts = np.bincount(code, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(sc)) - starts[sc]
    rank_of = np.empty(len(counts), dtype=np.int64)
    by_length = np.argsort(-counts, kind="stable")
    rank_of[by_length] = np.arange(len(counts))
    tm = np.lexsort((rank_of[sc], pos))
    rows = by_seq[tm]
    lengths = counts[by_length]
    n_t = np.bincount(pos, minlength=int(lengths[0]))  # sequences still running at each step
    offsets = np.concatenate([[0], np.cumsum(n_t)])
    laid = _reorder(enc, rows)
    ranked = None if weights is None else weights[by_length]
    if ranked is not None:  # the encoded rows carry their weights too (EM's start reads moments from them)
        laid = replace(laid, weights=ranked[np.arange(len(rows)) - np.repeat(offsets[:-1], n_t)])
    return SequenceData(laid, offsets, lengths, np.asarray(ids)[by_length], rows, enc.index, frame, ranked)


def encode_sequences(graph: Graph, data: Any, absent: tuple[str, ...] = (),
                     options: ReadOptions | None = None, weights: str | None = None,
                     source: str | Path | None = None, part: bool = False) -> SequenceData | None:
    """Encode long-form ``data`` (DataFrame or path) for a sequence model's graph.

    ``weights`` names a column of sequence weights: a number >= 0 per row, the same in every row
    of a sequence (a sequence of weight w counts as w copies of it); sequences of weight 0 are
    dropped.  ``source`` names the file a DataFrame was read from, its index holding the rows'
    positions in the file (a path as ``data`` is its own source): messages then name the file's lines.
    ``part=True``: the rows are part of the data (whole sequences of it), so weights that sum to 0
    here are not an error: the result is then None.

    Raises
    ------
    pgm.DataError
        a missing ``id`` or ``order`` column, an empty id or order cell, an order cell that is no
        number or timestamp, two rows with the same (id, order), a weights column that is missing,
        holds a bad cell or differs within a sequence, and every error of
        :func:`pgm.encode.encode` on the node columns.
    """
    if isinstance(data, SequenceData):
        return data
    if isinstance(data, EncodedData):
        raise PGMError("a sequence model needs its data as a table with the id and order columns, not "
                       "encoded rows")
    options = options or DEFAULT
    if isinstance(data, (str, Path)):
        source = data
    if weights is not None:
        check_weights_name(graph, weights)
    frame = as_frame(data, columns_of(slice_graph(graph)), options, (weights,) if weights is not None else ())
    try:
        return _encode_frame(graph, frame, absent, options, source, weights, part)
    except DataError as exc:
        if source is None or str(source) in str(exc):  # CSV lines name their file already
            raise
        raise DataError(f"{source}: {exc}") from None


def check_sequence_columns(graph: Graph, columns: Any, options: ReadOptions = DEFAULT) -> None:
    """A DataError when the id or the order column is missing (with a hint when the one column read
    holds another separator: ``seq;t;y``)."""
    seq = graph.spec.sequence
    assert seq is not None
    for role, col in (("id", seq.id), ("order", seq.order)):
        if col not in columns:
            raise DataError(f"missing {role} column {col!r}: a sequence model reads long data, one row per step, "
                            f"with `sequence: {{id: {seq.id}, order: {seq.order}}}` naming the sequence and "
                            f"ordering its steps (found: {sorted(map(str, columns))[:12]})"
                            f"{separator_hint(list(map(str, columns)), options)}")


def _encode_frame(graph: Graph, frame: pd.DataFrame, absent: tuple[str, ...], options: ReadOptions,
                  source: str | Path | None, weights: str | None, part: bool = False) -> SequenceData | None:
    seq = graph.spec.sequence
    assert seq is not None
    check_sequence_columns(graph, frame.columns, options)
    if len(frame) == 0:
        raise DataError("the data have no rows; give at least one row")
    where = where_of(frame.index, source, options)
    ids = sequence_ids(frame[seq.id], seq.id, where, options)
    seq_weight = None
    if weights is not None:
        frame, seq_weight = _sequence_weights(frame, seq.id, weights, where, part)
        if not len(frame):  # a part of the data whose sequences all weigh 0
            return None
        ids, where = frame[seq.id], where_of(frame.index, source, options)
    code, uniques = pd.factorize(ids, sort=True)
    order, _ = order_values(frame[seq.order], seq.order, where, options)
    body = frame.drop(columns=[seq.id, seq.order] + ([weights] if weights is not None else []))
    positions = np.asarray(frame.index, dtype=np.int64) if isinstance(where, Lines) else None
    with warnings.catch_warnings():  # a step with every cell missing still moves its chain on: not uninformative
        warnings.filterwarnings("ignore", message=r".*with every cell missing", category=DataWarning)
        enc = encode(slice_graph(graph), body, absent=absent, options=options, source=source, positions=positions)
    return arrange(graph, code, np.asarray(uniques), order, enc, where, frame[seq.order].to_numpy(), frame,
                   seq_weight)


def _sequence_weights(frame: pd.DataFrame, id_col: str, column: str, where: Any,
                      part: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of the sequences of positive weight, and each kept sequence's weight in sorted-id order
    (``part``: the rows are some of the data's, so weights summing to 0 here are for the caller to judge)."""
    if column not in frame.columns:
        raise DataError(f"missing weights column {column!r}; found: {sorted(map(str, frame.columns))[:12]}")
    w = row_weights(frame[column], column, where)
    code, uniques = pd.factorize(frame[id_col], sort=True)
    lo = weigh_sequences(code, uniques, w, where, column)
    if not part:
        check_sequence_total(float(lo.sum()), column)
    keep = lo[code] > 0
    if keep.all():
        return frame, lo
    return frame[keep], lo[lo > 0]


def weigh_sequences(code: np.ndarray, ids: Any, w: np.ndarray, where: Any, column: str) -> np.ndarray:
    """Each sequence's weight (by ``code``) from its rows' weights ``w``: a DataError naming a
    sequence whose rows hold several (``where`` names the rows, see :func:`where_of`)."""
    lo, hi = np.full(len(ids), np.inf), np.full(len(ids), -np.inf)
    np.minimum.at(lo, code, w)
    np.maximum.at(hi, code, w)
    bad = np.flatnonzero(lo != hi)
    if bad.size:
        first = bad[0]
        rows = np.flatnonzero(code == first)
        shown = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(ids)[bad[:5]]]
        raise DataError(f"weights column {column!r} weighs whole sequences, so it must hold one value per sequence: "
                        f"{bad.size} sequence{'s' if bad.size > 1 else ''} ({shown}) "
                        f"{'have' if bad.size > 1 else 'has'} several (sequence {shown[0]!r}: {lo[first]:g} and "
                        f"{hi[first]:g}, {name_rows(where, rows[:5])}); give every row of a sequence its "
                        "sequence's weight")
    return lo


def check_sequence_total(total: float, column: str) -> None:
    """A DataError when the sequences' weights sum to 0 or beyond the float range."""
    if not total > 0:
        raise DataError(f"the weights in column {column!r} sum to 0: there is nothing to fit; give some sequences "
                        "a positive weight")
    if not np.isfinite(total):
        raise DataError(f"the weights in column {column!r} sum beyond the float range; rescale them")


def long_frame(graph: Graph, columns: dict[str, np.ndarray], n_sequences: int, length: int) -> pd.DataFrame:
    """Sampled columns (each of n_sequences * length entries, sequence-major) as long-form data with
    the id and order columns first."""
    seq = graph.spec.sequence
    assert seq is not None
    out: dict[str, Any] = {seq.id: np.repeat(np.arange(n_sequences), length),
                           seq.order: np.tile(np.arange(length), n_sequences)}
    out.update(columns)
    return pd.DataFrame(out)


def last_rows(data: SequenceData) -> np.ndarray:
    """The time-major row of each sequence's last step, by rank: (S,)."""
    return data.offsets[data.lengths - 1] + np.arange(data.n_sequences)


def _shared_step(lo: np.ndarray, hi: np.ndarray, stamps: bool) -> Any:
    """The step of the regularly spaced sequences (their min ``lo`` and max ``hi`` differences) when
    they all have the same one (exactly for timestamps, to rounding for numbers), else None."""
    if lo.size == 0:
        return None
    top, bottom = hi.max(), lo.min()
    same = top == bottom if stamps else top - bottom <= 1e-9 * max(abs(float(top)), 1.0)
    return top if same else None


def next_orders(data: SequenceData, name: str, steps: int) -> Any:
    """The order values of the ``steps`` steps after each sequence's last one, by rank: a
    (S * steps,) array (sequence-major) typed like the order column ``name``.

    A sequence whose steps are equally spaced continues with its own step, a one-row sequence with
    the step every equally spaced sequence shares (if they share one); otherwise integer
    orders continue by 1 (the model counts steps, not time).  Timestamps and fractional numbers
    without a regular step (or a sequence of one row) have no next value: a DataError names them.
    """
    column = data.frame[name]
    order_values(column, name)                                 # the encoder's checks and messages
    stamps = pd.api.types.is_datetime64_any_dtype(column.dtype)
    if not stamps and not pd.api.types.is_numeric_dtype(column.dtype):
        converted = pd.to_numeric(column, errors="coerce")    # numbers written as text, as the encoder reads them
        stamps = bool(converted.isna().any())
        column = column if stamps else converted
    if stamps:  # whole nanoseconds (as floats they would lose their last digits)
        stamp_index = pd.DatetimeIndex(to_stamps(column)).as_unit("ns")
        values: np.ndarray = stamp_index.asi8[data.rows]
    else:
        values = column.to_numpy(dtype=np.float64)[data.rows]
    n_seq, n0 = data.n_sequences, int(data.offsets[1])
    diffs = values[n0:] - values[data.prev_rows]
    rank = data.rank[n0:]
    big = np.iinfo(np.int64).max if stamps else np.inf
    lo, hi = np.full(n_seq, big, dtype=values.dtype), np.full(n_seq, -big, dtype=values.dtype)
    np.minimum.at(lo, rank, diffs)
    np.maximum.at(hi, rank, diffs)
    last = values[last_rows(data)]
    several = data.lengths > 1
    if stamps:
        regular = several & (lo == hi)                         # whole nanoseconds: exactly equal steps
        whole = False
    else:
        regular = several & (hi - lo <= 1e-9 * np.maximum(np.abs(hi), 1.0))
        whole = bool(np.all(values == np.round(values)))
    # a one-row sequence has no step of its own: it takes the one every other sequence shares
    single = data.lengths == 1
    shared = _shared_step(lo[regular], hi[regular], stamps) if single.any() else None
    if shared is not None:
        lo[single] = hi[single] = shared
        regular = regular | single
    if not whole and not regular.all():
        bad = np.flatnonzero(~regular)
        shown = [v.item() if isinstance(v, np.generic) else v for v in data.ids[bad[:5]]]
        raise DataError(f"{bad.size} sequence{'s' if bad.size > 1 else ''} ({shown}) {'have' if bad.size > 1 else 'has'} "
                        f"no regular step in the order column {name!r} (one row, or steps not equally spaced), so the "
                        "forecast steps have no order value; give integer orders (the forecast then continues "
                        "after the last by the sequence's regular step, else by 1) or equally spaced ones")
    ahead = np.arange(1, steps + 1)
    if stamps:
        ns = (last[:, None] + lo[:, None] * ahead[None, :]).reshape(-1)
        out = pd.to_datetime(ns, unit="ns", utc=stamp_index.tz is not None)
        return out.tz_convert(stamp_index.tz) if stamp_index.tz is not None else out
    first = values[:n_seq]
    spans = (last - first) / np.maximum(data.lengths - 1, 1)  # the regular step, without rounding drift
    spans = np.where(data.lengths > 1, spans, lo)             # a one-row sequence: the shared step
    step = np.where(regular, np.round(spans) if whole else spans, 1.0)
    future = (last[:, None] + step[:, None] * ahead[None, :]).reshape(-1)
    return future.astype(np.int64) if pd.api.types.is_integer_dtype(column.dtype) else future
