"""Out-of-core learning: fit from a .csv or .parquet file read in chunks of rows.

Every directed learner works from sufficient statistics that are sums over rows
(counts, weighted centred moments; see :mod:`pgm.cpd`), so a file larger than memory is
fitted by reading it ``chunk_rows`` rows at a time with pyarrow, encoding each chunk with
:func:`pgm.encode.encode`, and adding the chunks' statistics:

* complete data (``learner="mle"``): one pass; per chunk ``encode -> complete_stats``;
  the sum goes through ``fit_from_stats`` once.  Counts are integers held in float64, so
  tables equal the in-memory fit exactly; gaussian moments merge with the
  parallel-variance update (Chan, Golub & LeVeque 1979) and agree to ~1e-12.
* EM: :class:`FileSource` is a data source of :func:`pgm.learn.em.fit_em`.  Each E-step
  re-reads the file and sums the chunks' log-likelihoods and expected statistics, so
  memory stays bounded whatever the row count, at the price of one read per iteration.
* undirected models: :func:`distinct_rows` merges the file into distinct rows with
  weights.  The empirical feature expectations of the log-linear learners are sums over
  rows, so the weighted distinct rows stand exactly for the file; their number is
  bounded by the state space, not by the file.

Row weights (``weights="w"``): the column is read with the others and every chunk's statistics are
weighted by it; rows of weight 0 are dropped as each chunk is encoded, and weights that sum to 0 over
the whole file are an error at the end of the first pass.

Memory is about ``chunk_rows`` x columns cells, plus one Parquet row group (or pyarrow's
read-ahead of CSV blocks) and the statistics.  Cells are read by the rule of :mod:`pgm.io.table`,
as the in-memory reader reads them.  A data error in a chunk names the file and the line of a CSV
file (the row's position, 0-based, in a Parquet file), as the in-memory fit names it.

EM initialisation does not depend on the chunking: the start is built from statistics summed over
every chunk (the families observed in each row, and the mean and covariance of each gaussian
column) and from random draws that depend only on the seed and the model; k-means++ draws each
centre by a race between rows keyed on a hash of the row's values (one pass per centre).  A
streamed fit therefore equals the in-memory fit, from ``init="auto"`` / ``"random"`` /
``"kmeans++"`` as from ``init=`` a fitted model, for any ``chunk_rows`` (to ~1e-9: sums of
floating-point moments are added in another order).

>>> fitted = pgm.fit("models/alarm.yaml", "big.parquet", chunk_rows=500_000)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from pgm.cpd.family import Stats
from pgm.encode import Columns, EncodedData, arrow_csv_options, check_total_weight, columns_of, encode, \
    existing_file, merge_rows
from pgm.errors import DataError, DataWarning, ModelError, PGMError
from pgm.graph import Graph
from pgm.io.table import DEFAULT, ReadOptions, check_fields, read_header
from pgm.infer.enumerate import EStep
from pgm.infer.posterior import Posterior
from pgm.learn import choose
from pgm.learn.driver import Rows
from pgm.learn.em import InMemory, prepare_rows
from pgm.learn.mle import complete_stats
from pgm.learn.stats import add_stats

#: ``pgm.fit`` streams a file path on its own when the data would take more than this in
#: memory: the size of a CSV file, or the uncompressed column data of a Parquet file.
STREAM_BYTES = 512 * 2**20
#: Default chunk size, in cells: ``chunk_rows = CHUNK_CELLS // columns`` (453k rows for alarm).
CHUNK_CELLS = 2**24
#: Bytes of CSV text parsed at a time (pyarrow's block size).  pyarrow reads many blocks
#: ahead: with 16 MiB blocks 500 MiB were held at once, with 1 MiB about 30 MiB.
CSV_BLOCK_BYTES = 2**20

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv", ".txt", ".gz")


def _pyarrow() -> Any:
    try:
        import pyarrow  # optional: only reading in chunks needs it
    except ImportError:
        raise PGMError("reading a file in chunks needs pyarrow: pip install 'pgm-learn[parquet]'") from None
    return pyarrow


def file_kind(path: str | Path) -> str:
    """"parquet" or "csv", from the file name; a DataError for a missing file or another type."""
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise DataError(f"{path}: unknown data file type {suffix!r}; use .csv or .parquet")


def data_bytes(path: str | Path) -> int:
    """Bytes the file's data would take once read: a CSV's size, a Parquet file's uncompressed size."""
    path = Path(path)
    if file_kind(path) == "csv":
        return path.stat().st_size
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def wants_stream(data: Any, chunk_rows: int | None) -> bool:
    """Whether ``pgm.fit`` should stream ``data``: a path with ``chunk_rows``, or larger than STREAM_BYTES."""
    if chunk_rows is not None:
        if not isinstance(data, (str, Path)):
            raise PGMError(f"chunk_rows= reads a .csv or .parquet file in chunks; pass the file's path, not a "
                           f"{type(data).__name__} already in memory")
        return True
    if not isinstance(data, (str, Path)) or not Path(data).is_file():
        return False
    try:
        _pyarrow()
        return data_bytes(data) > STREAM_BYTES
    except PGMError:  # no pyarrow (or an unreadable file): the in-memory reader reports it
        return False
    except Exception:  # noqa: BLE001  (a corrupt Parquet footer: the in-memory reader names the problem)
        return False


def default_chunk_rows(graph: Graph) -> int:
    """``CHUNK_CELLS`` divided by the number of data columns (at least 1024 rows)."""
    n_columns = sum(len(graph[n].columns) for n in graph.order if not graph[n].latent)
    return max(1024, CHUNK_CELLS // max(1, n_columns))


def check_chunk_rows(graph: Graph, chunk_rows: int | None) -> int:
    """``chunk_rows`` checked (a positive whole number), or the graph's default."""
    if chunk_rows is None:
        return default_chunk_rows(graph)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise PGMError(f"chunk_rows must be a positive number of rows, got {chunk_rows!r}")
    return int(chunk_rows)


def check_columns(graph: Graph, names: list[str], weights: str | None = None,
                  source: str | Path | None = None) -> Columns:
    """Raise or warn about the header ``names`` exactly as :func:`encode` does on a whole table.

    One valid row under that header goes through ``encode``: missing and duplicated columns
    (and a missing ``weights`` column) raise its DataError, extra and latent columns give its
    DataWarning, once for the file."""
    valid: dict[str, Any] = {} if weights is None else {weights: 1.0}
    for name in graph.order:
        var = graph[name]
        if not var.latent:
            valid.update({c: var.labels[0] if var.discrete else 0.0 for c in var.columns})
    try:
        encode(graph, pd.DataFrame([[valid.get(c) for c in names]], columns=list(names), dtype=object),
               weights=weights)
    except DataError as exc:
        if source is None:
            raise
        raise DataError(f"{source}: {exc}") from None
    return columns_of(graph)


def _rebatch(batches: Iterator[Any], n: int) -> Iterator[Any]:
    """pyarrow tables of exactly ``n`` rows (the last may be shorter) from record batches of any size."""
    pa = _pyarrow()
    pending: list = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= n:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, n)
            pending = table.slice(n).to_batches()
            count -= n
    if count:
        yield pa.Table.from_batches(pending)


class ChunkReader:
    """A .csv or .parquet file as consecutive pandas frames of ``chunk_rows`` rows.

    Each iteration re-opens the file and yields ``(start, frame)``: the global position of
    the chunk's first row, and a frame of the observed nodes' columns (and the ``weights``
    column) indexed by global position.  The header is checked once, on construction.
    """

    def __init__(self, graph: Graph, path: str | Path, chunk_rows: int, weights: str | None = None,
                 options: ReadOptions = DEFAULT, extra: tuple[str, ...] = ()) -> None:
        self.graph = graph
        self.path = Path(path)
        self.kind = file_kind(self.path)
        self.chunk_rows = chunk_rows
        self.weights = weights
        self.options = options
        self.extra = extra  # more columns read (as text from a CSV file), not nodes: a sequence's id and order
        self.header = self._header()
        self.columns = check_columns(graph, [c for c in self.header if c not in extra], weights, self.path)
        self.warned = 0  # rows whose encoding warnings were given

    def _header(self) -> list[str]:
        pa = _pyarrow()
        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                schema = pq.ParquetFile(self.path).schema_arrow
                # the pandas index a DataFrame.to_parquet stored is not data (nor in memory, nor with Dask)
                index = {c for c in ((schema.pandas_metadata or {}).get("index_columns") or []) if isinstance(c, str)}
                return [c for c in schema.names if c not in index]
            names = read_header(self.path, self.options)
            repeated = sorted({c for c in names if c and names.count(c) > 1})
            if repeated:
                raise DataError(f"{self.path}: duplicated column names {repeated} in the header; every column "
                                "must be named once (rename or drop the copies)")
            return names
        except PGMError:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.path}: cannot be read as a {self.kind} table ({_first_line(exc)})") from None

    def _tables(self, as_text: bool = False) -> Iterator[Any]:
        pa = _pyarrow()
        cols = list(self.columns.needed) + ([self.weights] if self.weights is not None else []) + list(self.extra)
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            schema = pq.ParquetFile(self.path).schema_arrow
            # labels read as dictionaries become pandas categoricals: encode maps the few categories
            strings = [c for c in self.columns.needed if pa.types.is_string(schema.field(c).type)
                       or pa.types.is_large_string(schema.field(c).type)]
            # pre_buffer=False: with pre-buffering, iter_batches keeps every row group it has read
            # (measured: 106 -> 280 MiB over a 30M-row file), so memory would grow with the file
            batches = pq.ParquetFile(self.path, read_dictionary=strings, pre_buffer=False).iter_batches(
                batch_size=self.chunk_rows, columns=cols)
            return _rebatch(batches, self.chunk_rows)
        import pyarrow.csv as pcsv

        # the reading rule of pgm.io.table, as the in-memory reader applies it
        parse, convert = arrow_csv_options(self.path, self.header, self.columns, self.options, as_text,
                                           numbers=(self.weights,) if self.weights is not None else ())
        convert.include_columns = cols
        reader = pcsv.open_csv(self.path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                               parse_options=parse, convert_options=convert)
        return _rebatch(iter(reader), self.chunk_rows)

    def _frames(self, as_text: bool = False) -> Iterator[tuple[int, pd.DataFrame]]:
        pool = _pyarrow().default_memory_pool()
        start = 0
        for table in self._tables(as_text):
            frame = table.to_pandas()
            del table
            pool.release_unused()  # give the last chunk's buffers back: the peak stays one chunk's
            frame.index = pd.RangeIndex(start, start + len(frame))
            yield start, frame
            start += len(frame)

    def __iter__(self) -> Iterator[tuple[int, pd.DataFrame]]:
        pa = _pyarrow()
        try:
            yield from self._frames()
        except (pa.ArrowException, OSError) as exc:
            if self.kind == "csv" and isinstance(exc, pa.ArrowInvalid):
                if "columns, got" in str(exc):
                    check_fields(self.path, self.options)  # a row with fewer or more fields: names its line
                self._locate(exc)
            raise DataError(f"{self.path}: cannot be read as a {self.kind} table ({_first_line(exc)})") from None

    def _locate(self, exc: Exception) -> None:
        """Re-read the CSV as text and let ``encode`` name the cell pyarrow could not convert."""
        for start, frame in self._frames(as_text=True):
            self._encode(frame, start)
        raise DataError(f"{self.path}: cannot be read as a csv table ({_first_line(exc)})") from None

    def _encode(self, frame: pd.DataFrame, start: int) -> EncodedData:
        """One chunk encoded; a DataError names the file and the line (CSV) or row (Parquet)."""
        if self.extra:
            frame = frame.drop(columns=list(self.extra))
        return encode(self.graph, frame, weights=self.weights, part=True, options=self.options, source=self.path,
                      start=start)

    def encoded(self) -> Iterator[tuple[int, EncodedData]]:
        """``(start, encoded chunk)`` for every chunk; a DataError names the row in the whole file.

        encode's DataWarnings are given once per row: not again when EM re-reads the file.
        With weights, rows of weight 0 are dropped and a chunk left without rows is skipped;
        weights that sum to 0 over the whole file are a DataError at the end of the pass."""
        empty = True
        total = 0.0
        for start, frame in self:
            empty = False
            with warnings.catch_warnings():
                if start < self.warned:
                    warnings.simplefilter("ignore", DataWarning)
                data = self._encode(frame, start)
            self.warned = max(self.warned, start + len(frame))
            if data.weights is not None:
                total += float(data.weights.sum())
                if data.n_rows == 0:
                    continue
            yield start, data
        if empty:
            raise DataError(f"{self.path}: the data have no rows; give at least one row")
        if self.weights is not None:
            check_total_weight(total, self.weights, str(self.path))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _located(path: Path, start: int, chunk: EncodedData, exc: PGMError) -> PGMError:
    """An error raised on one chunk, placed in the file as the in-memory fit places it: a message
    that names rows of a CSV file names their lines and the file already (``row_labels``) and is
    kept; any other gets the file and the chunk's place in front: its lines (CSV; the header is
    line 1) or its 0-based rows (Parquet)."""
    message = str(exc)
    if str(path) in message:
        return type(exc)(message)
    if chunk.lines is not None:
        first, last = chunk.lines.labels([0, chunk.n_rows - 1])
        return type(exc)(f"{path}: lines {first}..{last}: {message}")
    return type(exc)(f"{path}: rows {start}..{start + chunk.n_rows - 1}: {message}")


# --------------------------------------------------------------------------- directed models
def _complete_stats(graph: Graph, reader: ChunkReader, strict: bool) -> dict[str, Stats] | None:
    """Summed complete-data statistics, or None as soon as a chunk has missing cells."""
    total: dict[str, Stats] = {}
    for start, chunk in reader.encoded():
        if chunk.has_missing:
            if strict:
                try:
                    choose(graph, chunk, "mle")
                except PGMError as exc:
                    raise _located(reader.path, start, chunk, exc) from None
            return None
        total = add_stats(total, complete_stats(graph, chunk))
    return total


class FileSource:
    """EM over a file that does not fit in memory: every call re-reads it chunk by chunk.

    The three methods :func:`pgm.learn.em.fit_em` needs, each a sum over chunks of the
    in-memory :class:`pgm.learn.em.InMemory` on that chunk.  Only one chunk (encoded, with
    its enumeration plan) is held at a time.
    """

    def __init__(self, reader: ChunkReader) -> None:
        self.reader = reader
        self.graph = reader.graph

    def _parts(self) -> Iterator[tuple[int, EncodedData, InMemory]]:
        for start, chunk in self.reader.encoded():
            try:
                part = prepare_rows(self.graph, chunk)
            except PGMError as exc:
                raise _located(self.reader.path, start, chunk, exc) from None
            yield start, chunk, part

    def observed_stats(self) -> dict[str, Stats]:
        total: dict[str, Stats] = {}
        for _, _, part in self._parts():
            total = add_stats(total, part.observed_stats())
        return total

    def e_step(self, cpds: dict, rule: Posterior = Posterior.EXACT) -> EStep:
        log_likelihood, stats = 0.0, {}
        for start, chunk, part in self._parts():
            try:
                es = part.e_step(cpds, rule)
            except PGMError as exc:
                raise _located(self.reader.path, start, chunk, exc) from None
            log_likelihood += es.log_likelihood
            stats = add_stats(stats, es.stats)
        return EStep(log_likelihood, stats)

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The sum of ``fn(chunk, *args)`` over the chunks (EM's start: see the module docstring)."""
        total = None
        for start, chunk, part in self._parts():
            try:
                value = fn(part, *args)
            except PGMError as exc:
                raise _located(self.reader.path, start, chunk, exc) from None
            total = value if total is None else total + value
        if total is None:
            raise DataError(f"{self.reader.path}: the data have no rows; give at least one row")
        return total


def rows(graph: Graph, path: str | Path, *, chunk_rows: int | None = None, weights: str | None = None,
         options: ReadOptions = DEFAULT) -> Rows:
    """The file at ``path``, read ``chunk_rows`` rows at a time, as a source of the directed fit driver
    (:func:`pgm.learn.driver.fit_directed`); ``weights`` names the column of row weights.  The result
    equals the in-memory fit on the same rows (EM: from the same ``init``; see the module docstring).
    """
    reader = ChunkReader(graph, path, check_chunk_rows(graph, chunk_rows), weights, options)
    return Rows(lambda strict: _complete_stats(graph, reader, strict), lambda: FileSource(reader),
                info={"chunk_rows": reader.chunk_rows})


# --------------------------------------------------------------------------- undirected models
@dataclass(frozen=True)
class DistinctRows:
    """Distinct rows of codes with their summed weights (missing cells are code -1).

    codes : int array of shape (n_distinct, n_variables); weights : float array (n_distinct,).
    """

    names: tuple[str, ...]
    codes: np.ndarray
    weights: np.ndarray

    def __add__(self, other: "DistinctRows") -> "DistinctRows":
        codes = np.concatenate([self.codes, other.codes])
        return _distinct(self.names, codes, np.concatenate([self.weights, other.weights]))

    def encoded(self) -> EncodedData:
        """The rows as EncodedData with weights, for an in-memory learner."""
        codes = {n: self.codes[:, j].copy() for j, n in enumerate(self.names)}
        missing = {n: c < 0 for n, c in codes.items() if (c < 0).any()}
        return EncodedData(len(self.weights), codes, {}, self.weights, None, missing)


def _distinct(names: tuple[str, ...], codes: np.ndarray, weights: np.ndarray) -> DistinctRows:
    first, summed, _ = merge_rows(codes, weights)
    return DistinctRows(names, codes[first], summed)


def chunk_distinct(graph: Graph, chunk: EncodedData) -> DistinctRows:
    """The distinct rows of one encoded chunk (discrete nodes only)."""
    if chunk.values:
        raise ModelError(f"gaussian nodes {sorted(chunk.values)[:5]} in an undirected model: merging rows "
                         "into distinct rows (how undirected models are fitted out of memory) needs discrete nodes")
    names = tuple(n for n in graph.order if n in chunk.codes)
    codes = np.column_stack([chunk.codes[n].astype(np.int32) for n in names]) if names else \
        np.zeros((chunk.n_rows, 0), dtype=np.int32)
    weights = np.ones(chunk.n_rows) if chunk.weights is None else chunk.weights
    return _distinct(names, codes, weights)


def distinct_rows(graph: Graph, path: str | Path, *, chunk_rows: int | None = None,
                  weights: str | None = None, options: ReadOptions = DEFAULT) -> EncodedData:
    """The file as distinct weighted rows, for the undirected learners (see the module docstring);
    ``weights`` names a column of row weights, summed into the distinct rows' weights."""
    reader = ChunkReader(graph, path, check_chunk_rows(graph, chunk_rows), weights, options)
    total: DistinctRows | None = None
    for _, chunk in reader.encoded():
        part = chunk_distinct(graph, chunk)
        total = part if total is None else total + part
    assert total is not None  # encoded() raises on a file without rows
    return total.encoded()
