"""Scaling of complete-data and EM fits: out of core (pgm.stream) and on Dask (pgm.distributed).

Cases (issue 7, "Speed and memory"):

a. alarm (37 discrete nodes) with 1M, 3M, 10M rows sampled from the true network and
   written to Parquet in chunks (``FittedModel.sample`` + ``pyarrow.parquet.ParquetWriter``,
   row groups of ``--row-group`` rows).  For each size: the streaming fit (default
   ``chunk_rows``), the in-memory fit of the same file, and a 2-worker local cluster:
   wall time and peak resident memory.
b. ``--sweep-rows`` rows (10M) on a local cluster of 1 and of 2 workers (processes, one thread each),
   with glibc's malloc defaults (what ``pgm fit --scheduler local`` starts) and with Dask's
   ``MALLOC_TRIM_THRESHOLD_``: the speed-up; and how time changes with the number of
   partitions (row groups per partition).
c. EM (alarm with 5% of the cells of 6 columns missing, ``--em-rows`` rows, ``--em-iter``
   iterations from one fixed starting point): the per-iteration cost when streaming
   (the file is re-read every iteration), in memory, and on 1 and 2 persisted workers.

Every fit runs in a fresh subprocess, started by a small wrapper process that reports
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak resident memory of the fit
alone (for the cluster runs, of the client process only: the workers are not included).
Cluster start-up is excluded from the times.  Each measurement is the best time of
``--repeat`` fresh runs, each started when the load average is below ``--quiet-load`` (or
after ``--quiet-wait`` seconds).  Benchmarks are not tests: nothing fails on a slow result.

Run:  python bench/bench_scale.py [--rows 1000000,3000000,10000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MODEL = ROOT / "models" / "alarm.yaml"
MISSING_COLUMNS = ["HISTORY", "CVP", "HYPOVOLEMIA", "LVFAILURE", "BP", "HR"]

# Runs CHILD as its only child and prints the child's peak RSS (bytes) on the last line.
WRAPPER = """
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:])
print("maxrss", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, flush=True)
sys.exit(run.returncode)
"""


# --------------------------------------------------------------------------- data
def write_alarm(path: Path, n_rows: int, row_group: int, missing: float = 0.0, chunk: int = 1_000_000) -> None:
    """``n_rows`` rows of alarm to ``path`` in chunks: memory stays that of one chunk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pgm.convert import read_any
    from pgm.fitted import FittedModel
    from pgm.schema import parse_spec

    true = FittedModel.from_spec(parse_spec(read_any(SHARED / "alarm.bif")))
    tmp = path.with_suffix(".tmp")
    writer = None
    for i, start in enumerate(range(0, n_rows, chunk)):
        frame = true.sample(min(chunk, n_rows - start), seed=i)
        if missing:
            rng = np.random.default_rng(1000 + i)
            for col in MISSING_COLUMNS:
                frame[col] = frame[col].astype(object).where(rng.random(len(frame)) >= missing, None)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=row_group)
    writer.close()
    tmp.rename(path)


def dataset(workdir: Path, n_rows: int, row_group: int, missing: float = 0.0) -> Path:
    tag = f"_missing{int(missing * 100)}" if missing else ""
    path = workdir / f"alarm_{n_rows}_rg{row_group}{tag}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        write_alarm(path, n_rows, row_group, missing)
        print(f"  wrote {path.name} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s",
              flush=True)
    return path


# --------------------------------------------------------------------------- one measured fit
def child(args: argparse.Namespace) -> None:
    """Run one fit (in a fresh process) and print a JSON line with its time."""
    import warnings

    import pgm
    from pgm import stream

    warnings.simplefilter("ignore")
    model = pgm.load(MODEL)
    options = json.loads(args.options)
    if options.pop("fixed_init", False):  # one EM starting point for every mode: from the first rows
        options["init"] = pgm.fit(model, _head(args.path, 20000), max_iter=1, seed=0).cpds
    out: dict = {}
    if args.mode == "baseline":  # imports and the model only: what every mode pays before reading a row
        import pyarrow.parquet  # noqa: F401

        print("result", json.dumps({"seconds": 0.0}), flush=True)
        return
    if args.mode == "stream":
        t0 = time.perf_counter()
        if args.chunk_rows:
            fitted = pgm.fit(model, args.path, chunk_rows=args.chunk_rows, **options)
        else:
            fitted = _stream_default(model, args.path, options)
        out["seconds"] = time.perf_counter() - t0
    elif args.mode == "memory":
        stream.STREAM_BYTES = 1 << 62  # never stream: read the whole file
        t0 = time.perf_counter()
        fitted = pgm.fit(model, args.path, **options)
        out["seconds"] = time.perf_counter() - t0
    else:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        from pgm.distributed import local_environment

        environ = local_environment() if args.malloc == "glibc" else contextlib.nullcontext()
        with environ, LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("pgm.distributed"))  # imports on the workers: not the fit's cost
            t0 = time.perf_counter()
            ddf = dd.read_parquet(args.path, split_row_groups=args.groups_per_partition or True)
            fitted = pgm.fit(model, ddf, **options)
            out["seconds"] = time.perf_counter() - t0
            out["partitions"] = ddf.npartitions
    out["n_iter"] = len(fitted.history)
    out["info"] = {k: v for k, v in fitted.info.items() if k in ("learner", "chunk_rows", "partitions")}
    print("result", json.dumps(out), flush=True)


def _stream_default(model, path, options):
    import pgm
    from pgm import stream

    stream.STREAM_BYTES = 0  # stream with the default chunk size, as a file over the threshold is
    return pgm.fit(model, path, **options)


def _head(path: str, n: int):
    import pyarrow.parquet as pq

    batch = next(pq.ParquetFile(path).iter_batches(batch_size=n))
    return batch.to_pandas()


#: Set by --repeat, --quiet-load and --quiet-wait.
REPEAT, QUIET_LOAD, QUIET_WAIT = 2, 1.0, 300.0
LOADS: list[float] = []


def wait_quiet() -> None:
    """Wait (up to QUIET_WAIT s) until the 1-minute load average is below QUIET_LOAD: other
    processes on a small machine distort both the timings and the 1-vs-2-worker comparison."""
    deadline = time.time() + QUIET_WAIT
    while os.getloadavg()[0] > QUIET_LOAD and time.time() < deadline:
        time.sleep(5)
    LOADS.append(os.getloadavg()[0])


def measure_once(mode: str, path: Path, **kw) -> dict:
    cmd = [sys.executable, "-c", WRAPPER, sys.executable, __file__, "--child", mode, "--path", str(path)]
    for key, value in kw.items():
        cmd += [f"--{key.replace('_', '-')}", json.dumps(value) if key == "options" else str(value)]
    wait_quiet()
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"{mode} on {path.name} failed:\n{run.stderr[-3000:]}")
    out: dict = {}
    for line in run.stdout.splitlines():
        if line.startswith("result "):
            out.update(json.loads(line[7:]))
        elif line.startswith("maxrss "):
            out["peak_mib"] = int(line.split()[1]) / 2**20
    return out


def measure(mode: str, path: Path, **kw) -> dict:
    """The best time of REPEAT fresh runs (the least disturbed), and the largest peak memory."""
    runs = [measure_once(mode, path, **kw) for _ in range(REPEAT)]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_mib": max(r["peak_mib"] for r in runs)}


# --------------------------------------------------------------------------- the report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,3000000,10000000")
    parser.add_argument("--sweep-rows", type=int, default=10_000_000, help="rows of the workers/partitions runs")
    parser.add_argument("--row-group", type=int, default=250_000, help="rows per Parquet row group")
    parser.add_argument("--em-rows", type=int, default=1_000_000)
    parser.add_argument("--em-iter", type=int, default=5)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "pgm-bench-scale"),
                        help="where the Parquet files are written (and reused by later runs)")
    parser.add_argument("--skip", default="", help="comma-separated: rows, workers, partitions, em")
    parser.add_argument("--repeat", type=int, default=2, help="fresh runs per measurement; the best time is kept")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="wait for a load average below this")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="... but at most this many seconds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--chunk-rows", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--groups-per-partition", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--malloc", default="glibc", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return
    global REPEAT, QUIET_LOAD, QUIET_WAIT
    REPEAT, QUIET_LOAD, QUIET_WAIT = max(1, args.repeat), args.quiet_load, args.quiet_wait
    skip = set(filter(None, args.skip.split(",")))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(r) for r in args.rows.split(",")]
    print(f"# bench_scale: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"# alarm, Parquet row groups of {args.row_group} rows\n", flush=True)

    if "rows" not in skip:
        base = measure("baseline", dataset(workdir, sizes[0], args.row_group))
        print(f"## a. time and peak memory against rows (imports alone: {base['peak_mib']:.0f} MiB)\n")
        print("| rows | streaming s | streaming peak MiB | in memory s | in memory peak MiB | 2 workers s |")
        print("|---:|---:|---:|---:|---:|---:|", flush=True)
        for n in sizes:
            path = dataset(workdir, n, args.row_group)
            s = measure("stream", path)
            m = measure("memory", path)
            d = measure("dask", path, workers=2)
            print(f"| {n:,} | {s['seconds']:.1f} | {s['peak_mib']:.0f} | {m['seconds']:.1f} | {m['peak_mib']:.0f} "
                  f"| {d['seconds']:.1f} |", flush=True)
        print()

    big_rows = args.sweep_rows
    big = dataset(workdir, big_rows, args.row_group)
    if "workers" not in skip:
        print(f"## b. workers ({big_rows:,} rows, one partition per row group)\n")
        print("| worker malloc | workers | partitions | seconds | speed-up over 1 worker |")
        print("|---|---:|---:|---:|---:|", flush=True)
        for malloc, label in (("glibc", "glibc defaults (pgm fit --scheduler local)"),
                              ("dask", "MALLOC_TRIM_THRESHOLD_=65536 (Dask's default)")):
            base = None
            for w in (1, 2):
                d = measure("dask", big, workers=w, malloc=malloc)
                base = base or d["seconds"]
                print(f"| {label} | {w} | {d['partitions']} | {d['seconds']:.1f} | {base / d['seconds']:.2f} |",
                      flush=True)
        print()
    if "partitions" not in skip:
        print(f"## b'. partitions ({big_rows:,} rows, 2 workers)\n")
        print("| row groups per partition | partitions | seconds |")
        print("|---:|---:|---:|", flush=True)
        for g in (1, 2, 4, 8):
            d = measure("dask", big, workers=2, groups_per_partition=g)
            print(f"| {g} | {d['partitions']} | {d['seconds']:.1f} |", flush=True)
        print()
    if "em" not in skip:
        em = dataset(workdir, args.em_rows, args.row_group, missing=0.05)
        opts = {"max_iter": args.em_iter, "tol": 1e-300, "fixed_init": True}
        print(f"## c. EM, {args.em_rows:,} rows with missing cells, {args.em_iter} iterations\n")
        print("| mode | seconds | seconds per iteration (set-up included) | peak MiB |")
        print("|---|---:|---:|---:|", flush=True)
        for label, mode, kw in (("streaming", "stream", {}), ("in memory", "memory", {}),
                                ("1 worker", "dask", {"workers": 1}), ("2 workers", "dask", {"workers": 2})):
            r = measure(mode, em, options=opts, **kw)
            print(f"| {label} | {r['seconds']:.1f} | {r['seconds'] / max(r['n_iter'], 1):.2f} | {r['peak_mib']:.0f} |",
                  flush=True)
    print(f"\n# load average when runs started: median {sorted(LOADS)[len(LOADS) // 2]:.2f}, max {max(LOADS):.2f} "
          f"(best of {REPEAT} runs each)")


if __name__ == "__main__":
    main()
