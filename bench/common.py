"""Shared helpers of the benchmark scripts: timing, peak memory, tables with ratios.

Benchmarks are not tests: nothing here asserts a speed.  Timings are the best of
``k`` runs of ``time.perf_counter`` (the minimum is the least disturbed by other
processes on the machine); memory is measured in separate runs so that the
measurement does not slow the timed ones.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

MB = 1024.0 ** 2


# --------------------------------------------------------------------------- timing
def best_of(fn: Callable[[], Any], k: int = 3, setup: Callable[[], Any] | None = None,
            min_time: float = 2.0, max_k: int = 15) -> tuple[float, Any]:
    """Best wall time of at least ``k`` calls of ``fn()`` (``setup()`` runs untimed before each), and
    the last result.  Fast calls are repeated until ``min_time`` seconds were spent (at most ``max_k``
    calls): the minimum of many short runs is the least disturbed by other work on the machine."""
    best = float("inf")
    result = None
    spent = 0.0
    runs = 0
    while runs < max(1, k) or (spent < min_time and runs < max_k):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
        best = min(best, elapsed)
        spent += elapsed
        runs += 1
    return best, result


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One timed call: (seconds, result)."""
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# --------------------------------------------------------------------------- memory
def traced_peak(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Peak bytes allocated through Python's allocators during ``fn()`` (numpy arrays included).

    tracemalloc sees numpy and pandas buffers (numpy reports them to it) but not memory
    that C++ libraries (pyAgrum) or torch allocate on their own; use :func:`rss_peak` for those.
    """
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return float(peak - base), result


def rss_peak(fn: Callable[[], Any], interval: float = 0.002) -> tuple[float, Any]:
    """Peak increase of the process's resident memory during ``fn()``, sampled every ``interval`` s.

    Sees every allocation (C++, torch, numpy) but only when pages are touched and only
    at the sampling times; memory the allocator already held before the call is not counted.
    """
    import psutil

    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            rss = proc.memory_info().rss
            if rss > peak[0]:
                peak[0] = rss
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        stop.set()
        thread.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return float(peak[0] - base), result


def timed_rss(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """One call, timed and with its sampled peak RSS increase (for slow tools run once)."""
    t0 = time.perf_counter()
    peak, result = rss_peak(fn)
    return time.perf_counter() - t0, peak, result


def measure(table: "Table", name: str, fn: Callable[[], Any], repeat: int = 3, note: str = "",
            rss: bool = True, trace: bool = True) -> tuple["Row", Any]:
    """Best-of-``repeat`` time of ``fn``, then (in separate calls) its RSS increase and its traced peak;
    adds a row to ``table`` and returns (row, result of the last timed call)."""
    seconds, result = best_of(fn, repeat)
    peak = rss_peak(fn)[0] if rss else None
    extra = {"traced MB": f"{traced_peak(fn)[0] / MB:.0f}"} if trace else {}
    return table.add(name, seconds, peak, note, **extra), result


def nbytes(obj: Any) -> int:
    """Bytes held by the arrays of an EncodedData, a DataFrame, an array or a container of arrays."""
    import pandas as pd

    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, pd.DataFrame):
        return int(obj.memory_usage(index=False, deep=True).sum())
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if hasattr(obj, "codes") and hasattr(obj, "values"):  # pgm.encode.EncodedData
        total = nbytes(obj.codes) + nbytes(obj.values)
        return total + (0 if getattr(obj, "weights", None) is None else int(obj.weights.nbytes))
    return 0


# --------------------------------------------------------------------------- tables
@dataclass
class Row:
    name: str
    seconds: float | None = None
    peak: float | None = None          # bytes, or None when not measured
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Table:
    """Rows of (tool, seconds, peak memory, note), printed with the ratio of each time to a floor.

    The floor is the row named by ``floor`` (its ratio is 1.00x)."""

    def __init__(self, title: str, floor: str | None = None, unit: str = "s"):
        self.title = title
        self.floor = floor
        self.unit = unit
        self.rows: list[Row] = []

    def add(self, name: str, seconds: float | None, peak: float | None = None, note: str = "", **extra: str) -> Row:
        row = Row(name, seconds, peak, note, dict(extra))
        self.rows.append(row)
        shown = ", ".join(f"{k} {v}" for k, v in extra.items())
        print(f"  .. {name}: {_fmt_s(seconds)}{'' if peak is None else f', RSS +{peak / MB:.0f} MB'}"
              f"{'' if not shown else ', ' + shown}{'' if not note else ' (' + note + ')'}", flush=True)
        return row

    def floor_seconds(self) -> float | None:
        for row in self.rows:
            if row.name == self.floor:
                return row.seconds
        return None

    def ratio(self, name: str, other: str | None = None) -> float | None:
        """seconds(name) / seconds(other or the floor)."""
        a = next((r.seconds for r in self.rows if r.name == name), None)
        b = next((r.seconds for r in self.rows if r.name == (other or self.floor)), None)
        if a is None or b is None or b <= 0:
            return None
        return a / b

    def markdown(self) -> str:
        floor = self.floor_seconds()
        extra_cols: list[str] = []
        for row in self.rows:
            for key in row.extra:
                if key not in extra_cols:
                    extra_cols.append(key)
        has_time = any(r.seconds is not None for r in self.rows)
        has_rss = any(r.peak is not None for r in self.rows)
        has_note = any(r.note for r in self.rows)
        head = (["tool"] + ([f"time ({self.unit})"] if has_time else []) + ([f"x {self.floor}"] if floor else [])
                + (["RSS MB"] if has_rss else []) + extra_cols + (["note"] if has_note else []))
        lines = [f"**{self.title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [row.name] + ([_fmt_s(row.seconds)] if has_time else [])
            if floor:
                cells.append("" if row.seconds is None else f"{row.seconds / floor:.2f}x")
            if has_rss:
                cells.append("" if row.peak is None else f"{row.peak / MB:.0f}")
            cells += [row.extra.get(k, "") for k in extra_cols]
            if has_note:
                cells.append(row.note)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def print(self) -> None:
        print()
        print(self.markdown())
        if hasattr(os, "getloadavg"):
            print(f"\n(load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())})")
        print(flush=True)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 100:
        return f"{seconds:.0f}"
    if seconds >= 1:
        return f"{seconds:.2f}"
    if seconds >= 0.01:
        return f"{seconds:.3f}"
    return f"{seconds:.2g}"


# --------------------------------------------------------------------------- CPTs of each tool
# Every table is returned as an array (n_parent_configurations, n_states): configurations in
# pgm's order (declared parents, first slowest) and states in pgm's label order.

def normalise(counts):
    """Rows of counts -> probabilities; a row without counts becomes uniform."""
    tot = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / tot
    p[tot[:, 0] == 0] = 1.0 / counts.shape[1]
    return p


def pgm_tables(fitted, nodes):
    return {n: fitted.cpd(n).to_numpy(dtype=float) for n in nodes}


def pyagrum_tables(bn, parents, labels):
    """pyAgrum CPTs as (n_configs, k) arrays, configurations in pgm's parent order and labels."""
    out = {}
    for node, pa in parents.items():
        pot = bn.cpt(node)
        arr = np.asarray(pot.toarray(), dtype=float)                       # axes: reversed pot.names
        axes = list(reversed(pot.names))
        arr = np.transpose(arr, [axes.index(v) for v in pa + [node]])
        for i, v in enumerate(pa + [node]):       # states in pgm's label order
            have = list(bn.variable(v).labels())
            arr = np.take(arr, [have.index(lab) for lab in labels[v]], axis=i)
        out[node] = arr.reshape(-1, len(labels[node]))
    return out


def pgmpy_tables(model, parents, labels):
    """pgmpy TabularCPDs as (n_configs, k) arrays (state names matched by their text)."""
    out = {}
    for node, pa in parents.items():
        cpd = model.get_cpds(node)
        arr = np.asarray(cpd.values, dtype=float)     # axes: cpd.variables = [node, *evidence]
        vars_ = list(cpd.variables)
        for i, v in enumerate(vars_):
            have = [str(s) for s in cpd.state_names[v]]
            arr = np.take(arr, [have.index(lab) for lab in labels[v]], axis=i)
        arr = np.transpose(arr, [vars_.index(v) for v in pa + [node]])
        out[node] = arr.reshape(-1, len(labels[node]))
    return out


def pyagrum_bn(gum, parents, labels, order):
    """A pyAgrum BayesNet with the given states (labels) and arcs."""
    bn = gum.BayesNet("bench")
    for node in order:
        var = gum.LabelizedVariable(node, node, 0)
        for lab in labels[node]:
            var.addLabel(lab)
        bn.add(var)
    for node, pa in parents.items():
        for p in pa:
            bn.addArc(p, node)
    return bn


# --------------------------------------------------------------------------- context
def versions(*modules: str) -> dict[str, str]:
    """Installed versions of the named distributions (``not installed`` when absent)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for mod in modules:
        try:
            out[mod] = metadata.version(mod)
        except metadata.PackageNotFoundError:
            out[mod] = "not installed"
    return out


def machine() -> str:
    """CPU model, core count, memory and the load average when the run started."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil
        mem = f"{psutil.virtual_memory().total / 1024 ** 3:.0f} GiB"
    except ImportError:
        mem = "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{cpu}, {os.cpu_count()} cores, {mem}; load average at start {load}"


def wait_for_quiet(below: float | None, max_wait: float = 600.0) -> None:
    """Wait until the 1-minute load average drops below ``below`` (at most ``max_wait`` seconds)."""
    if below is None or not hasattr(os, "getloadavg"):
        return
    t0 = time.perf_counter()
    while os.getloadavg()[0] >= below and time.perf_counter() - t0 < max_wait:
        time.sleep(5)
    print(f"(waited {time.perf_counter() - t0:.0f} s for the load average to drop below {below}: "
          f"now {os.getloadavg()[0]:.1f})", flush=True)


def header(title: str, modules: tuple[str, ...]) -> None:
    print(f"# {title}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions(*modules).items()))
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(flush=True)


def optional(module: str) -> Any:
    """Import ``module`` or return None (the reference tools are optional)."""
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        print(f"  (skipping {module}: {type(exc).__name__}: {exc})")
        return None
