"""Fit on a Dask cluster: ``pgm.fit(model, ddf)`` with a dask DataFrame.

The learners work from sufficient statistics that are sums over rows, so each partition
of the DataFrame computes its own and the cluster adds them up:

* complete data: every partition is encoded and reduced to ``complete_stats``; the
  statistics are summed by a tree reduction (``split_every`` at a time, like
  ``dask.array.reduction``) and ``fit_from_stats`` runs once on the client.  Nothing is
  kept on the workers.
* EM: the encoded partitions, with their enumeration plans, are persisted on the workers
  once (:class:`DaskSource`).  Each iteration broadcasts the current parameters (a few
  kilobytes) to every worker, maps the E-step over the persisted partitions and sums the
  log-likelihoods and expected statistics by the same tree reduction; only statistics
  travel.  The persisted partitions are built by a task graph from the DataFrame's own
  graph, not scattered, so when a worker dies Dask recomputes the partitions it held and
  the fit goes on with the same numbers.  If the cluster loses them all (a restart), they
  are persisted again once; if that fails too, or a task keeps killing workers, the fit
  stops with a PGMError -- never a model fitted on part of the rows.
* undirected models: each partition is merged into distinct weighted rows; the tree
  reduction merges those, and the log-linear learner runs on the client.

The computations run on the active ``distributed.Client`` if there is one, else on
Dask's local scheduler.  Results equal the in-memory fit on ``ddf.compute()``: tables
to 1e-12; EM traces to 1e-9 from any ``init=``, whatever the partitions: the start is built from
statistics summed over all partitions and from draws that depend only on the seed and the model
(see :mod:`pgm.stream`).  A data error names the row's position in the whole DataFrame (0-based),
or the file and its line for a DataFrame made by :func:`read_frame`; cells are read by the rule of
:mod:`pgm.io.table`.

Dask is an optional extra (``pip install 'pgm-learn[dask]'``), imported only when used.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from pgm.cpd.family import Stats
from pgm.encode import EncodedData, check_total_weight, encode
from pgm.errors import DataError, PGMError
from pgm.graph import Graph, build
from pgm.infer.enumerate import EStep
from pgm.infer.posterior import Posterior
from pgm.learn import choose
from pgm.learn.driver import Rows
from pgm.learn.em import InMemory, prepare_rows
from pgm.learn.mle import complete_stats
from pgm.learn.chain import SequenceSource
from pgm.learn.stats import Partial, StatsSum, add_stats
from pgm.schema import ModelSpec
from pgm.sequence import check_sequence_columns, check_sequence_total, encode_sequences, slice_graph
from pgm.io.table import DEFAULT, ReadOptions, check_fields, read_header, separator
from pgm.stream import DistinctRows, check_columns, chunk_distinct, columns_of, file_kind

#: Partial results summed per task of the tree reduction.
SPLIT_EVERY = 8
_EXTRA = "pip install 'pgm-learn[dask]'"


def _dask() -> Any:
    try:
        import dask  # optional extra: imported only for a dask DataFrame or --scheduler
    except ImportError:
        raise PGMError(f"fitting on a Dask cluster needs dask and distributed: {_EXTRA}") from None
    return dask


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise PGMError(f"running on a Dask cluster (--scheduler) needs dask and distributed: {_EXTRA}") from None
    return distributed


def _client() -> Any:
    """The active distributed Client, or None (Dask's local scheduler then runs the tasks)."""
    try:
        import distributed
    except ImportError:
        return None
    try:
        return distributed.get_client()
    except ValueError:  # no client running
        return None


def _lost_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the cluster lost a worker or data, not that the data are wrong."""
    errors: list[type[BaseException]] = [concurrent.futures.CancelledError]
    try:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker
        errors += [KilledWorker, CommClosedError]
    except ImportError:
        pass
    return tuple(errors)


def _lost(exc: BaseException, what: str) -> PGMError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return PGMError(f"the Dask cluster failed during {what} ({type(exc).__name__}: {text}); no model was "
                    "returned. A worker may have died or run out of memory: check the dashboard or the worker "
                    "logs, and rerun the fit")


def _compute(obj: Any, what: str) -> Any:
    try:
        (out,) = _dask().compute(obj)
    except PGMError:
        raise
    except _lost_errors() as exc:
        raise _lost(exc, what) from exc
    return out


def tree_sum(items: list[Any], split_every: int = SPLIT_EVERY, add: Callable[..., Any] | None = None) -> Any:
    """One delayed value: the sum of ``items`` by a tree of tasks adding ``split_every`` at a time
    (with ``add(*parts)``; default: ``+`` over the parts that are not None)."""
    delayed = _dask().delayed
    if not items:
        raise PGMError("the dask DataFrame has no partitions")
    while len(items) > 1:
        items = [delayed(add or _add, pure=False)(*items[i:i + split_every])
                 for i in range(0, len(items), split_every)]
    return items[0]


def _value(obj: Any) -> Any:
    """``obj`` as one task of the graph, sent once and not searched for dask collections per call."""
    return _dask().delayed(obj, traverse=False)


def _add(*parts: Any) -> Any:
    """The sum of the parts that are not None (an empty partition contributes None)."""
    total = None
    for part in parts:
        if part is not None:
            total = part if total is None else total + part
    return total


# --------------------------------------------------------------------------- tasks run on workers
@dataclass
class Summary:
    """What a partition task reports: row counts, problems, and (complete data) statistics."""

    sizes: dict[int, int]                       # partition -> rows
    stats: dict[str, Stats] = field(default_factory=dict)
    missing: tuple[int, ...] = ()               # partitions with missing cells
    failed: tuple[int, ...] = ()                # partitions whose encoding raised a DataError
    weight: dict[int, float] = field(default_factory=dict)  # partition -> total row weight (rows if unweighted)

    def __add__(self, other: "Summary") -> "Summary":
        return Summary({**self.sizes, **other.sizes}, add_stats(self.stats, other.stats),
                       self.missing + other.missing, self.failed + other.failed, {**self.weight, **other.weight})

    def start(self, i: int) -> int:
        """The global position of partition i's first row."""
        return sum(n for j, n in self.sizes.items() if j < i)


@dataclass(frozen=True)
class Reading:
    """How the partitions' cells are read (:mod:`pgm.io.table`), the file they come from (if any),
    and the column of row weights (if any)."""

    options: ReadOptions = DEFAULT
    source: Path | None = None
    weights: str | None = None

    def encode(self, graph: Graph, frame: pd.DataFrame, start: int | None = None) -> EncodedData:
        """Encode a partition; with ``start`` (its first row's position) errors name rows in the whole
        DataFrame, or the file and the line when it was read from a CSV file."""
        if start is None:
            return encode(graph, frame, weights=self.weights, part=True, options=self.options)
        frame = frame.set_axis(pd.RangeIndex(start, start + len(frame)), axis=0)
        return encode(graph, frame, weights=self.weights, part=True, options=self.options, source=self.source,
                      start=start)


def _encode_at(graph: Graph, reading: Reading, frame: pd.DataFrame, start: int) -> EncodedData:
    """Encode one partition with its rows numbered by their position in the whole DataFrame."""
    return reading.encode(graph, frame, start)


def _weight(data: EncodedData) -> float:
    return float(data.n_rows if data.weights is None else data.weights.sum())


def _partition_stats(graph: Graph, reading: Reading, frame: pd.DataFrame, i: int) -> Summary:
    n = len(frame)
    if n == 0:
        return Summary({i: 0})
    try:
        data = reading.encode(graph, frame)
    except DataError:  # the client re-encodes this partition with global row numbers for the message
        return Summary({i: n}, failed=(i,))
    if data.has_missing:
        return Summary({i: n}, missing=(i,), weight={i: _weight(data)})
    if data.n_rows == 0:  # every row had weight 0
        return Summary({i: n}, weight={i: 0.0})
    return Summary({i: n}, complete_stats(graph, data), weight={i: _weight(data)})


def _check_mle_at(graph: Graph, reading: Reading, frame: pd.DataFrame, start: int) -> None:
    choose(graph, _encode_at(graph, reading, frame, start), "mle")


@dataclass
class Part:
    """One persisted partition: its EM source (encoded rows and plan), or why it has none."""

    index: int
    n_rows: int
    source: InMemory | None = None
    failed: bool = False
    missing: bool = False
    weight: float = 0.0


def _prepare(graph: Graph, reading: Reading, frame: pd.DataFrame, i: int) -> Part:
    n = len(frame)
    if n == 0:
        return Part(i, 0)
    try:
        data = reading.encode(graph, frame)
        if data.n_rows == 0:  # every row had weight 0
            return Part(i, n)
        return Part(i, n, prepare_rows(graph, data), missing=data.has_missing, weight=_weight(data))
    except DataError:
        return Part(i, n, failed=True)


def _describe(part: Part) -> Summary:
    return Summary({part.index: part.n_rows}, missing=(part.index,) if part.missing else (),
                   failed=(part.index,) if part.failed else (), weight={part.index: part.weight})


def _observed(part: Part) -> Partial:
    return Partial(0.0, part.source.observed_stats() if part.source is not None else {})


def _e_step(part: Part, cpds: dict, rule: Posterior, start: int) -> Partial:
    if part.source is None:
        return Partial(0.0, {})
    try:
        es = part.source.e_step(cpds, rule)
    except PGMError as exc:
        raise type(exc)(f"rows {start}..{start + part.n_rows - 1}: {exc}") from None
    return Partial(es.log_likelihood, es.stats)


def _apply(part: Part, fn: Callable[..., Any], args: tuple) -> Any:
    return None if part.source is None else fn(part.source, *args)


def _distinct_part(graph: Graph, reading: Reading, frame: pd.DataFrame,
                   i: int) -> tuple[Summary, DistinctRows | None]:
    n = len(frame)
    if n == 0:
        return Summary({i: 0}), None
    try:
        data = reading.encode(graph, frame)
    except DataError:
        return Summary({i: n}, failed=(i,)), None
    if data.n_rows == 0:  # every row had weight 0
        return Summary({i: n}, weight={i: 0.0}), None
    return Summary({i: n}, weight={i: _weight(data)}), chunk_distinct(graph, data)


def _add_distinct(*parts: tuple[Summary, DistinctRows | None]) -> tuple[Summary, DistinctRows | None]:
    summary, rows = parts[0]
    for s, r in parts[1:]:
        summary = summary + s
        rows = r if rows is None else (rows if r is None else rows + r)
    return summary, rows


# --------------------------------------------------------------------------- the client side
def partitions(graph: Graph, ddf: Any, reading: Reading | None = None) -> list[Any]:
    """The partitions of ``ddf`` as delayed pandas frames of the observed nodes' columns (and
    the weights column of ``reading``).

    The header is checked once, on the client, as :func:`pgm.encode.encode` checks it."""
    _dask()
    reading = reading or Reading()
    weights = reading.weights
    cols = check_columns(graph, [str(c) for c in ddf.columns], weights, reading.source)
    if any(not isinstance(c, str) for c in ddf.columns):
        ddf = ddf.rename(columns=str)
    return list(ddf[list(cols.needed) + ([weights] if weights is not None else [])].to_delayed())


def _raise_at(graph: Graph, reading: Reading, frames: list[Any], summary: Summary,
              check: Callable = _encode_at) -> None:
    """Re-run the first failing partition with global row numbers: its DataError names them."""
    delayed = _dask().delayed
    bad = min(summary.failed) if summary.failed else min(summary.missing)
    _compute(delayed(check, pure=False)(_value(graph), _value(reading), frames[bad], summary.start(bad)),
             "a data check")
    raise DataError(f"partition {bad} could not be encoded, but encoding it again succeeded; rerun the fit")


def _no_rows(summary: Summary, weights: str | None = None) -> None:
    if not sum(summary.sizes.values()):
        raise DataError("the dask DataFrame has no rows; give at least one row")
    if weights is not None:
        check_total_weight(sum(summary.weight.values()), weights, "the dask DataFrame")


def _complete_stats(graph: Graph, reading: Reading, frames: list[Any], strict: bool) -> dict[str, Stats] | None:
    delayed = _dask().delayed
    g, r = _value(graph), _value(reading)
    summary = _compute(tree_sum([delayed(_partition_stats, pure=False)(g, r, f, i) for i, f in enumerate(frames)]),
                       "the statistics pass")
    if summary.failed:
        _raise_at(graph, reading, frames, summary)
    _no_rows(summary, reading.weights)
    if summary.missing:
        if strict:
            _raise_at(graph, reading, frames, Summary(summary.sizes, missing=summary.missing), _check_mle_at)
        return None
    return summary.stats


def _broadcast(obj: Any) -> Any:
    """``obj`` on every worker (a Future) when a distributed Client runs, else ``obj`` itself."""
    client = _client()
    if client is None:
        return _value(obj)
    # in a list: scatter() would send a mapping's values separately, keyed by its keys
    return client.scatter([obj], broadcast=True, hash=False)[0]


class DaskSource:
    """EM over a dask DataFrame: partitions encoded and planned once, persisted on the workers.

    The data source protocol of :func:`pgm.learn.em.fit_em`; see the module docstring.
    """

    def __init__(self, graph: Graph, frames: list[Any], reading: Reading | None = None) -> None:
        self.graph = graph
        self.reading = reading or Reading()
        self.frames = frames
        self.parts = self._persist()
        delayed = _dask().delayed
        summary = self._run(lambda parts: tree_sum([delayed(_describe, pure=False)(p) for p in parts]),
                            "encoding the partitions")
        if summary.failed:
            _raise_at(graph, self.reading, frames, summary)
        _no_rows(summary, self.reading.weights)
        self.starts = [summary.start(i) for i in range(len(frames))]

    def _persist(self) -> list[Any]:
        dask = _dask()
        g, r = _value(self.graph), _value(self.reading)
        parts = [dask.delayed(_prepare, pure=False)(g, r, f, i) for i, f in enumerate(self.frames)]
        return list(dask.persist(*parts))

    def _run(self, build: Callable[[list[Any]], Any], what: str) -> Any:
        """Compute ``build(persisted parts)``; persist the partitions again once if the cluster lost them."""
        for attempt in (0, 1):
            try:
                (out,) = _dask().compute(build(self.parts))
                return out
            except PGMError:
                raise
            except concurrent.futures.CancelledError as exc:  # e.g. client.restart(): the futures are gone
                if attempt:
                    raise _lost(exc, what) from exc
                self.parts = self._persist()
            except _lost_errors() as exc:
                raise _lost(exc, what) from exc
        raise AssertionError("unreachable")

    def observed_stats(self) -> dict[str, Stats]:
        delayed = _dask().delayed
        total = self._run(lambda parts: tree_sum([delayed(_observed, pure=False)(p) for p in parts]),
                          "the observed statistics")
        return total.stats

    def e_step(self, cpds: dict, rule: Posterior = Posterior.EXACT) -> EStep:
        delayed = _dask().delayed

        def build(parts: list[Any]) -> Any:
            params = _broadcast(cpds)
            return tree_sum([delayed(_e_step, pure=False)(p, params, rule, s) for p, s in zip(parts, self.starts)])

        total = self._run(build, "an E-step")
        return EStep(total.log_likelihood, total.stats)

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The sum of ``fn(partition, *args)`` over the non-empty partitions (EM's start)."""
        delayed = _dask().delayed
        return self._run(lambda parts: tree_sum([delayed(_apply, pure=False)(p, fn, _value(args)) for p in parts]),
                         "the initialisation")


def _reading(ddf: Any, options: ReadOptions, weights: str | None) -> Reading:
    """The Reading of a dask DataFrame: the file :func:`read_frame` read it from (with its options), if so."""
    path, read_with = _FILES.get(getattr(ddf, "_name", None), (None, None))
    if path is not None and options == DEFAULT:
        options = read_with
    return Reading(options, path, weights)


def rows(graph: Graph, ddf: Any, *, chunk_rows: int | None = None, weights: str | None = None,
         options: ReadOptions = DEFAULT) -> Rows:
    """A dask DataFrame as a source of the directed fit driver (:func:`pgm.learn.driver.fit_directed`);
    ``weights`` names the column of row weights."""
    if chunk_rows is not None:
        raise PGMError("chunk_rows= applies to a file read on one machine; a dask DataFrame is processed "
                       "partition by partition (ddf.repartition(...) changes their size)")
    reading = _reading(ddf, options, weights)
    frames = partitions(graph, ddf, reading)
    return Rows(lambda strict: _complete_stats(graph, reading, frames, strict),
                lambda: DaskSource(graph, frames, reading), info={"partitions": len(frames)})


def distinct_rows(graph: Graph, ddf: Any, *, chunk_rows: int | None = None, weights: str | None = None,
                  options: ReadOptions = DEFAULT) -> EncodedData:
    """A dask DataFrame as distinct weighted rows, for the undirected learners (``weights``: the
    column of row weights, summed into the distinct rows' weights)."""
    if chunk_rows is not None:
        raise PGMError("chunk_rows= applies to a file read on one machine, not to a dask DataFrame")
    delayed = _dask().delayed
    reading = _reading(ddf, options, weights)
    frames = partitions(graph, ddf, reading)
    g, r = _value(graph), _value(reading)
    parts = [delayed(_distinct_part, pure=False)(g, r, f, i) for i, f in enumerate(frames)]
    summary, merged = _compute(tree_sum(parts, add=_add_distinct), "merging distinct rows")
    if summary.failed:
        _raise_at(graph, reading, frames, summary)
    _no_rows(summary, weights)
    return merged.encoded()


# --------------------------------------------------------------------------- sequence models
#: Columns added to every row before the shuffle: its partition and its position in it (for messages).
_PART, _ROW = "__pgm_partition__", "__pgm_row__"


def _split(frame: pd.DataFrame, i: int, n: int, id_column: str) -> tuple[pd.DataFrame, ...]:
    """Partition ``i``'s rows in ``n`` pieces by a hash of their sequence id (piece j goes to partition j),
    each row tagged with its partition and position."""
    frame = frame.assign(**{_PART: np.full(len(frame), i, dtype=np.int64), _ROW: np.arange(len(frame))})
    if n == 1:
        return (frame,)
    target = pd.util.hash_pandas_object(frame[id_column], index=False).to_numpy() % np.uint64(n)
    order = np.argsort(target, kind="stable")  # rows keep their order within each piece
    bounds = np.searchsorted(target[order], np.arange(n + 1, dtype=np.uint64))
    return tuple(frame.iloc[order[bounds[j]:bounds[j + 1]]] for j in range(n))


def _gather(*pieces: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]


@dataclass
class SequencePart(Part):
    """One persisted partition of whole sequences: its :class:`pgm.learn.chain.SequenceSource`."""

    hidden: tuple[str, ...] = ()
    sizes: np.ndarray | None = None  # rows of each input partition found here


@dataclass
class SequenceSummary:
    """What the sequence partitions report: rows per input partition, hidden variables, failures."""

    sizes: np.ndarray
    hidden: frozenset = frozenset()
    failed: tuple[int, ...] = ()
    weight: float = 0.0                  # the sequences' summed weight (with a weights column)
    em: bool = False                     # some partition has cells to sum out or condition (hidden or partly missing)

    def __add__(self, other: "SequenceSummary") -> "SequenceSummary":
        return SequenceSummary(self.sizes + other.sizes, self.hidden | other.hidden, self.failed + other.failed,
                               self.weight + other.weight, self.em or other.em)


def _prepare_sequences(graph: Graph, reading: Reading, frame: pd.DataFrame, i: int, n_inputs: int) -> SequencePart:
    sizes = np.bincount(frame[_PART].to_numpy(dtype=np.int64), minlength=n_inputs)
    if len(frame) == 0:
        return SequencePart(i, 0, sizes=sizes)
    try:
        data = encode_sequences(graph, frame.drop(columns=[_PART, _ROW]), options=reading.options,
                                weights=reading.weights, part=True)
        if data is None:  # every sequence here weighs 0
            return SequencePart(i, len(frame), sizes=sizes)
        source = SequenceSource(graph, data)
    except DataError:  # the client encodes this partition again with the rows' places in the data for the message
        return SequencePart(i, len(frame), failed=True, sizes=sizes)
    weight = float(data.sequence_weights.sum()) if data.sequence_weights is not None else float(data.n_sequences)
    return SequencePart(i, len(frame), source, missing=source.has_hidden, hidden=source.hidden, sizes=sizes,
                        weight=weight)


def _describe_sequences(part: SequencePart) -> SequenceSummary:
    return SequenceSummary(part.sizes, frozenset(part.hidden), (part.index,) if part.failed else (), part.weight,
                           part.missing)


def _check_sequences(graph: Graph, reading: Reading, frame: pd.DataFrame, starts: np.ndarray) -> None:
    """Encode a partition with its rows named by their places in the data (lines of a file): its DataError."""
    positions = starts[frame[_PART].to_numpy(dtype=np.int64)] + frame[_ROW].to_numpy(dtype=np.int64)
    frame = frame.drop(columns=[_PART, _ROW]).set_axis(pd.Index(positions), axis=0)
    data = encode_sequences(graph, frame, options=reading.options, weights=reading.weights, source=reading.source,
                            part=True)
    if data is not None:
        SequenceSource(graph, data)


def _sequence_e_step(part: SequencePart, cpds: dict, rule: Posterior) -> Partial:
    if part.source is None:
        return Partial(0.0, {})
    es = part.source.e_step(cpds, rule)
    return Partial(es.log_likelihood, es.stats)


def _complete_part(part: SequencePart) -> StatsSum:
    return StatsSum(part.source.complete_stats() if part.source is not None else {})


class SequenceDaskSource(DaskSource):
    """EM over a dask DataFrame of sequences: the rows regrouped so that each sequence lies in one
    partition (a hash of its id; deterministic), each partition encoded and planned once and persisted
    on the workers (:class:`pgm.learn.chain.SequenceSource`).  Each E-step runs forward-backward on
    every partition and sums the log-likelihoods and statistics by the tree reduction, as
    :class:`DaskSource` does for rows; the data source protocol of :func:`pgm.learn.em.fit_em` (with
    ``has_hidden``, ``hidden`` and ``complete_stats`` of :func:`pgm.learn.chain.sequence_rows`)."""

    def __init__(self, graph: Graph, frames: list[Any], reading: Reading, n_inputs: int) -> None:
        self.graph = graph
        self.reading = reading
        self.frames = frames
        self.n_inputs = n_inputs
        self.parts = self._persist()
        delayed = _dask().delayed
        summary = self._run(lambda parts: tree_sum([delayed(_describe_sequences, pure=False)(p) for p in parts]),
                            "encoding the partitions")
        if summary.failed:
            starts = np.concatenate([[0], np.cumsum(summary.sizes)[:-1]])
            bad = min(summary.failed)
            _compute(delayed(_check_sequences, pure=False)(_value(graph), _value(reading), frames[bad], starts),
                     "a data check")
            raise DataError(f"partition {bad} could not be encoded, but encoding it again succeeded; rerun the fit")
        if not summary.sizes.sum():
            raise DataError("the dask DataFrame has no rows; give at least one row")
        if reading.weights is not None:
            check_sequence_total(summary.weight, reading.weights)
        self.hidden = tuple(v for v in graph.slice if v in summary.hidden)
        self.em = summary.em

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden) or self.em

    def _persist(self) -> list[Any]:
        dask = _dask()
        g, r = _value(self.graph), _value(self.reading)
        parts = [dask.delayed(_prepare_sequences, pure=False)(g, r, f, i, self.n_inputs)
                 for i, f in enumerate(self.frames)]
        return list(dask.persist(*parts))

    def e_step(self, cpds: dict, rule: Posterior = Posterior.EXACT) -> EStep:
        delayed = _dask().delayed

        def build(parts: list[Any]) -> Any:
            params = _broadcast(cpds)
            return tree_sum([delayed(_sequence_e_step, pure=False)(p, params, rule) for p in parts])

        total = self._run(build, "an E-step")
        return EStep(total.log_likelihood, total.stats)

    def complete_stats(self) -> dict[str, Stats]:
        delayed = _dask().delayed
        return self._run(lambda parts: tree_sum([delayed(_complete_part, pure=False)(p) for p in parts]),
                         "the statistics pass").stats


def sequence_source(graph: Graph, ddf: Any, *, chunk_rows: int | None = None, options: ReadOptions = DEFAULT,
                    weights: str | None = None) -> tuple[SequenceDaskSource, dict[str, Any]]:
    """A dask DataFrame of long-form sequences (rows in any order, in any partition) as the data source
    of a sequence model's fit (:func:`pgm.learn.chain.sequence_rows`), with the fitted model's ``info``.

    The rows are regrouped by a hash of their sequence id into as many partitions as ``ddf`` has, so
    that a sequence is never split; a data error names the row's position in the whole DataFrame, or
    the file and its line for a DataFrame made by :func:`read_frame`.  ``weights`` names a column of
    sequence weights (as :func:`pgm.sequence.encode_sequences`)."""
    if chunk_rows is not None:
        raise PGMError("chunk_rows= applies to a file read on one machine; a dask DataFrame is processed "
                       "partition by partition (ddf.repartition(...) changes their size)")
    delayed = _dask().delayed
    reading = _reading(ddf, options, weights)
    seq = graph.spec.sequence
    assert seq is not None
    names = [str(c) for c in ddf.columns]
    try:
        check_sequence_columns(graph, names)
    except DataError as exc:
        raise DataError(f"{reading.source}: {exc}" if reading.source is not None else str(exc)) from None
    cols = check_columns(slice_graph(graph), [c for c in names if c not in (seq.id, seq.order)], weights,
                         reading.source)
    if any(not isinstance(c, str) for c in ddf.columns):
        ddf = ddf.rename(columns=str)
    inputs = list(ddf[list(cols.needed) + [seq.id, seq.order] + ([weights] if weights else [])].to_delayed())
    n = len(inputs)
    if not n:
        raise PGMError("the dask DataFrame has no partitions")
    pieces = [delayed(_split, nout=n, pure=True)(f, i, n, seq.id) for i, f in enumerate(inputs)]
    frames = [delayed(_gather, pure=True)(*[p[j] for p in pieces]) for j in range(n)]
    return SequenceDaskSource(graph, frames, reading, n), {"partitions": n}


# --------------------------------------------------------------------------- the command line
#: Dask DataFrames made by :func:`read_frame` (by their graph name): the file and the options they were
#: read with, so that errors name the file's lines.
_FILES: dict[str, tuple[Path, ReadOptions]] = {}


def read_frame(spec: ModelSpec, path: str | Path, weights: str | None = None,
               options: ReadOptions = DEFAULT) -> Any:
    """A .csv or .parquet file as a dask DataFrame, read by the rule of :mod:`pgm.io.table`.

    CSV cells are read as text (nothing is taken for missing but the empty text and
    ``options.na_values``, applied by :func:`pgm.encode.encode` on each partition), so the
    partitions encode exactly as the in-memory reader's frame; ``weights``, a column of row
    weights, is read as numbers.  The file is scanned once on the client for rows with fewer or
    more fields than the header (Dask's parser would fill or misplace them), naming the line."""
    _dask()
    try:
        import dask.dataframe as dd
    except ImportError:
        raise PGMError(f"reading a file with Dask needs dask[dataframe]: {_EXTRA}") from None
    path = Path(path)
    if file_kind(path) == "parquet":
        ddf = dd.read_parquet(str(path))
    else:
        header = read_header(path, options)
        check_fields(path, options)
        dtype = {c: object for c in header}
        if weights is not None and weights in dtype:
            dtype[weights] = "float64"
        try:
            ddf = dd.read_csv(str(path), sep=separator(path, options), dtype=dtype, keep_default_na=False,
                              na_values={weights: list(options.missing_texts)} if weights is not None else None)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: cannot be read as a csv table ({exc})") from None
    _FILES[ddf._name] = (path, options)
    return ddf


def local_environment() -> Any:
    """Dask config for worker processes started here: glibc's default malloc tuning.

    distributed sets ``MALLOC_TRIM_THRESHOLD_=65536`` in new workers so that freed memory goes
    back to the system at once; setting it also turns off glibc's adaptive mmap threshold, so
    every array above 128 KiB is a fresh mmap whose pages fault in on first touch.  The
    statistics of a partition allocate many such temporaries: with the setting, the tasks
    ran 2-6 times slower in bench/bench_scale.py (docs/scaling.md)."""
    dask = _dask()
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Any]:
    """A distributed Client: on a new LocalCluster for ``"local"``, else on the scheduler at that address."""
    distributed = _distributed()
    if scheduler == "local":
        with local_environment(), distributed.LocalCluster() as cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler)  # waits distributed.comm.timeouts.connect (30 s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PGMError(f"cannot connect to the Dask scheduler at {scheduler!r} ({exc}); check the address "
                       "(e.g. tcp://host:8786), or use --scheduler local") from None
    with client:
        yield client

