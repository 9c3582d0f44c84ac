"""Sequence models fitted from a file read in chunks: whole sequences in buckets spilled to disk.

A sequence's posteriors depend on all of its rows, and the rows of one sequence may lie anywhere
in the file (the rows come in any order), so the chunks of :mod:`pgm.stream` cannot be the E-step's
parts.  :func:`spilled` regroups the file into *buckets* of whole sequences, once:

1. one pass reads the file ``chunk_rows`` rows at a time by the reading rule of
   :mod:`pgm.io.table` (the streaming reader of :mod:`pgm.stream`), checks the id and order
   columns, encodes the node columns (small integer codes, float arrays) and numbers each sequence
   in the order its id is first seen.  The encoded rows are written to a temporary directory in
   *runs* of at least :data:`RUN_ROWS` rows, each sorted by sequence number (``.npy`` files);
2. the sequences are cut, in that order, into buckets of about ``chunk_rows`` rows (a bucket
   takes the sequences that start within its ``chunk_rows`` rows, so it holds at most
   ``chunk_rows`` rows plus the rest of its last sequence).  A bucket is a contiguous range of
   sequence numbers, so each run holds its rows as one slice, read through a memory map;
3. each bucket is laid out time-major (:func:`pgm.sequence.arrange`: duplicated steps are found
   here), checked for inference (:func:`pgm.infer.chain.make_chain_plan`) and written as one file.

EM then runs forward-backward on one bucket at a time and adds up the log-likelihoods and
expected statistics (:class:`pgm.learn.chain.SequenceParts`).  The statistics are sums over
sequences and the start is built from sums over every bucket plus the seed, so a streamed fit
equals the in-memory fit for any ``chunk_rows`` (to ~1e-12: sums are added in another order).
Memory holds one chunk, one run and one bucket at a time, plus the ids and lengths of the
sequences; the disk holds the encoded rows twice at most (runs, then buckets).  A file that makes
one bucket is kept in memory after the pass.  The directory (under ``tempfile.gettempdir()``,
``TMPDIR``) is removed when the fit ends, whether it succeeds or raises.

Errors name the file and the line of a CSV file (the row's position, 0-based, in a Parquet file):
a cell that is no label or number, a ragged row, an empty id or order cell, a step that appears
twice in a sequence.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from pgm.encode import EncodedData, encode, row_weights
from pgm.errors import DataError, DataWarning, PGMError
from pgm.graph import Graph
from pgm.io.table import DEFAULT, Lines, ReadOptions
from pgm.learn.chain import SequenceParts, SequenceSource
from pgm.sequence import SequenceData, arrange, check_sequence_columns, check_sequence_total, order_values, \
    sequence_ids, slice_graph, weigh_sequences, where_of
from pgm.stream import ChunkReader, check_chunk_rows

#: The fewest rows of a run written to disk (small chunks are gathered: fewer, larger files).
RUN_ROWS = 1 << 16


class _Stamps:
    """Order values of timestamps shown as timestamps in messages."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __getitem__(self, i: int) -> Any:
        return pd.Timestamp(int(self.values[i]))


class _Spill:
    """The runs and buckets of one file in one temporary directory (see the module docstring)."""

    def __init__(self, graph: Graph, reader: ChunkReader, directory: Path) -> None:
        self.graph = graph
        self.slice = slice_graph(graph)
        self.reader = reader
        self.path = reader.path
        self.options = reader.options
        self.directory = directory
        self.codes: tuple[str, ...] = ()
        self.values: tuple[str, ...] = ()
        self.uniques: pd.Index | None = None
        self.counts = np.zeros(0, dtype=np.int64)
        self.kind: str | None = None
        self.runs: list[Path] = []
        self.bounds = np.zeros(1, dtype=np.int64)
        self.hidden: set[str] = set()
        self.partial = False                      # a bucket has gaussian vectors partly missing in a row
        self.kept: SequenceSource | None = None  # the only bucket, held in memory
        self.weights = reader.weights            # the column of sequence weights, or None
        self.total = 0.0                          # the sequences' summed weight
        self.empty: set[int] = set()              # buckets whose sequences all weigh 0

    # ------------------------------------------------------------------ the pass over the file
    def _where(self, index: Any) -> Any:
        return where_of(index, self.path, self.options)

    def _number(self, ids: pd.Series) -> np.ndarray:
        """Each row's sequence number: ids are numbered in the order they are first seen."""
        if self.uniques is None:
            self.uniques = pd.Index(pd.unique(ids))
        idx = self.uniques.get_indexer(ids)
        new = idx < 0
        if new.any():
            self.uniques = self.uniques.append(pd.Index(pd.unique(ids[new])))
            idx[new] = self.uniques.get_indexer(ids[new])
        return idx.astype(np.int64)

    def _chunk(self, start: int, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        seq = self.graph.spec.sequence
        where = self._where(frame.index)
        ids = sequence_ids(frame[seq.id], seq.id, where, self.options)
        order, kind = order_values(frame[seq.order], seq.order, where, self.options)
        if self.kind is None:
            self.kind = kind
        elif kind != self.kind:
            raise DataError(f"order column {seq.order!r}: {self.kind}s before {name_first(where)} and "
                            f"{kind}s from there; the order column holds numbers or timestamps, not both")
        gid = self._number(ids)
        drop = [seq.id, seq.order] + ([self.weights] if self.weights is not None else [])
        with warnings.catch_warnings():  # a step with every cell missing still moves its chain on
            warnings.filterwarnings("ignore", message=r".*with every cell missing", category=DataWarning)
            enc = encode(self.slice, frame.drop(columns=drop), part=True, options=self.options,
                         source=self.path, start=start)
        if not self.codes and not self.values:
            self.codes, self.values = tuple(enc.codes), tuple(enc.values)
        self.counts = np.bincount(gid, minlength=len(self.uniques)) + np.concatenate(
            [self.counts, np.zeros(len(self.uniques) - len(self.counts), dtype=np.int64)])
        piece = {"pos": np.arange(start, start + len(frame), dtype=np.int64), "gid": gid, "order": order}
        if self.weights is not None:  # checked per row here, per sequence when its bucket is built
            piece["w"] = row_weights(frame[self.weights], self.weights, where)
        piece.update({f"c{j}": enc.codes[n] for j, n in enumerate(self.codes)})
        piece.update({f"v{j}": enc.values[n] for j, n in enumerate(self.values)})
        return piece

    def _flush(self, pieces: list[dict[str, np.ndarray]]) -> None:
        run = self.directory / f"run{len(self.runs)}"
        run.mkdir()
        gid = np.concatenate([p["gid"] for p in pieces])
        by_seq = np.argsort(gid, kind="stable")
        for key in pieces[0]:
            np.save(run / f"{key}.npy", np.concatenate([p[key] for p in pieces])[by_seq])
        self.runs.append(run)

    def read(self) -> None:
        """The pass over the file: encoded rows written in runs sorted by sequence number."""
        pieces: list[dict[str, np.ndarray]] = []
        pending = 0
        threshold = max(self.reader.chunk_rows, RUN_ROWS)
        for start, frame in self.reader:
            pieces.append(self._chunk(start, frame))
            pending += len(frame)
            if pending >= threshold:
                self._flush(pieces)
                pieces, pending = [], 0
        if pieces:
            self._flush(pieces)
        if not self.runs:
            raise DataError(f"{self.path}: the data have no rows; give at least one row")

    # ------------------------------------------------------------------ buckets
    def _bucket_rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """The rows of sequences ``lo..hi - 1`` gathered from every run."""
        parts: dict[str, list[np.ndarray]] = {}
        for run in self.runs:
            gid = np.load(run / "gid.npy", mmap_mode="r")
            a, b = np.searchsorted(gid, [lo, hi])
            if a == b:
                continue
            for file in run.glob("*.npy"):
                parts.setdefault(file.stem, []).append(np.array(np.load(file, mmap_mode="r")[a:b]))
        return {key: np.concatenate(value) for key, value in parts.items()}

    def _encoded(self, rows: dict[str, np.ndarray], pos: np.ndarray, weights: np.ndarray | None = None) -> EncodedData:
        codes = {n: rows[f"c{j}"] for j, n in enumerate(self.codes)}
        values = {n: rows[f"v{j}"] for j, n in enumerate(self.values)}
        missing = {n: c < 0 for n, c in codes.items()}
        missing.update({n: np.isnan(v).any(axis=1) for n, v in values.items()})
        lines = self._where(pos)
        return EncodedData(len(pos), codes, values, weights, pd.Index(pos),
                           {n: m for n, m in missing.items() if m.any()}, lines if isinstance(lines, Lines) else None)

    def _ids(self, gids: np.ndarray) -> np.ndarray:
        assert self.uniques is not None
        return np.asarray(self.uniques[gids])

    def _weigh(self, rows: dict[str, np.ndarray], code: np.ndarray,
               gids: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray | None]:
        """The rows of the sequences of positive weight, their codes (renumbered), sequence numbers and
        weights (None without a weights column)."""
        if self.weights is None:
            return rows, code, gids, None
        w = weigh_sequences(code, self._ids(gids), rows["w"], self._where(rows["pos"]), self.weights)
        self.total += float(w.sum())
        keep = w > 0
        if keep.all():
            return rows, code, gids, w
        renumber = np.cumsum(keep) - 1
        kept = keep[code]
        return {k: v[kept] for k, v in rows.items()}, renumber[code[kept]], gids[keep], w[keep]

    def bucket(self, b: int) -> SequenceSource | None:
        """Bucket ``b`` from its runs: laid out time-major, checked, and written as one file (None
        when its sequences all weigh 0)."""
        lo, hi = int(self.bounds[b]), int(self.bounds[b + 1])
        rows, code, gids, w = self._weigh(*self._gathered(lo, hi))
        if not len(code):
            self.empty.add(b)
            return None
        pos, order = rows["pos"], rows["order"]
        data = arrange(self.graph, code, self._ids(gids), order, self._encoded(rows, pos),
                       self._where(pos), _Stamps(order) if self.kind == "time" else order, weights=w)
        source = SequenceSource(self.graph, data)  # the plan's data checks: a gaussian missing where needed
        self.hidden.update(source.hidden)
        self.partial |= source.has_hidden
        if len(self.bounds) == 2:
            self.kept = source
            return source
        by_rank = gids[np.argsort(-np.bincount(code, minlength=len(gids)), kind="stable")]
        enc = data.enc
        arrays = {"offsets": data.offsets, "lengths": data.lengths, "gid": by_rank, "pos": np.asarray(enc.index)}
        if data.sequence_weights is not None:
            arrays["sw"] = data.sequence_weights
        arrays.update({f"c{j}": enc.codes[n] for j, n in enumerate(self.codes)})
        arrays.update({f"v{j}": enc.values[n] for j, n in enumerate(self.values)})
        np.savez(self.directory / f"bucket{b}.npz", **arrays)
        return source

    def _gathered(self, lo: int, hi: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        rows = self._bucket_rows(lo, hi)
        return rows, rows["gid"] - lo, np.arange(lo, hi)

    def buckets(self, size: int) -> None:
        """Cut the sequences into buckets of about ``size`` rows and write each; the runs are then removed."""
        first = np.cumsum(self.counts) - self.counts  # the first row of each sequence, in sequence order
        cut = first // size
        self.bounds = np.concatenate([[0], np.flatnonzero(np.diff(cut)) + 1, [len(self.counts)]]).astype(np.int64)
        for b in range(len(self.bounds) - 1):
            self.bucket(b)
        if self.weights is not None:
            check_sequence_total(self.total, self.weights)
        for run in self.runs:
            shutil.rmtree(run, ignore_errors=True)
        self.runs = []

    def load(self, b: int) -> SequenceSource:
        """Bucket ``b`` as written by :meth:`bucket`."""
        if self.kept is not None:
            return self.kept
        with np.load(self.directory / f"bucket{b}.npz") as stored:
            arrays = {key: stored[key] for key in stored.files}
        pos, offsets, sw = arrays["pos"], arrays["offsets"], arrays.get("sw")
        rank = np.arange(len(pos)) - np.repeat(offsets[:-1], np.diff(offsets))
        enc = self._encoded(arrays, pos, None if sw is None else sw[rank])
        data = SequenceData(enc, offsets, arrays["lengths"], self._ids(arrays["gid"]), np.arange(len(pos)),
                            enc.index, None, sw)
        return SequenceSource(self.graph, data)

    def parts(self) -> Iterator[SequenceSource]:
        for b in range(len(self.bounds) - 1):
            if b not in self.empty:
                yield self.load(b)


def name_first(where: Any) -> str:
    """The first row of a chunk, as messages name it."""
    if isinstance(where, Lines):
        return f"line {where.labels([0])[0]}"
    return f"row {where[0]}"


@contextlib.contextmanager
def spilled(graph: Graph, path: str | Path, *, chunk_rows: int | None = None, options: ReadOptions = DEFAULT,
            weights: str | None = None) -> Iterator[tuple[SequenceParts, dict[str, Any]]]:
    """The sequences of the file at ``path`` in buckets of about ``chunk_rows`` rows, as an EM data
    source (:class:`pgm.learn.chain.SequenceParts`), with the fitted model's ``info`` entries.
    ``weights`` names a column of sequence weights (as :func:`pgm.sequence.encode_sequences`):
    sequences of weight 0 are dropped as their bucket is built.

    The temporary directory holding the buckets is removed on leaving the ``with`` block, also
    when it raises."""
    rows = check_chunk_rows(slice_graph(graph), chunk_rows)
    seq = graph.spec.sequence
    assert seq is not None
    reader = ChunkReader(slice_graph(graph), path, rows, weights, options, extra=(seq.id, seq.order))
    try:
        check_sequence_columns(graph, reader.header, options)
    except DataError as exc:
        raise DataError(f"{reader.path}: {exc}") from None
    directory = Path(tempfile.mkdtemp(prefix="pgm-sequences-"))
    try:
        spill = _Spill(graph, reader, directory)
        try:
            spill.read()
            spill.buckets(rows)
        except DataError as exc:
            if str(reader.path) in str(exc):
                raise
            raise DataError(f"{reader.path}: {exc}") from None
        except OSError as exc:  # the spill's own files (a full disk): not the data file's fault
            if str(reader.path) in str(exc):
                raise
            raise PGMError(f"{reader.path}: cannot write the encoded rows to the temporary directory {directory} "
                           f"({exc.strerror or exc}); free disk space there or point TMPDIR at a larger disk") from None
        n_buckets = len(spill.bounds) - 1
        yield (SequenceParts(graph, spill.parts, tuple(spill.hidden), str(reader.path), spill.partial),
               {"chunk_rows": rows, "buckets": n_buckets})
    finally:
        shutil.rmtree(directory, ignore_errors=True)
