"""Sequence models: time per EM iteration of a gaussian HMM, pgm against hmmlearn (issue 14).

A gaussian HMM with 3 hidden states and 1-d emissions, 1,000 sequences of 100 steps (100,000 rows),
declared once with `sequence:` and `prev:`.  Both fits start from the same parameters (the true
ones), run a fixed number of iterations (no convergence stop), and the time per iteration is

* pgm: the median gap between successive EM callbacks (one M-step and one E-step each), wall and
  this process's CPU time;
* hmmlearn: (time of a fit of 1 + k iterations - time of a fit of 1 iteration) / k, in a subprocess
  run by ``--hmmlearn-python`` (a venv with hmmlearn: it is not a dependency of pgm), wall and CPU.

The machine may be shared: CPU time is the steadier figure.  Multi-threaded BLAS slows both tools
down by an order of magnitude when the cores are oversubscribed (hmmlearn measured 9 s instead of
0.8 s per iteration that way), so run with one BLAS thread; the hmmlearn subprocess inherits it.
Benchmarks are not tests: nothing here fails on a slow result.

With ``--streamed N`` it compares instead a streamed fit (``chunk_rows``, :mod:`pgm.seqstream`) with
the in-memory fit of the same Parquet file of N rows (sequences of ``--length`` steps, rows shuffled
across sequences), each in a fresh process: time per EM iteration (median callback gap, CPU),
the setup before the first iteration (read, encode, spill), peak RSS, and the final log-likelihood
(equal: the streamed fit is the in-memory fit).

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_sequence.py [--sequences 1000] [--length 100] [--iters 10]
      [--hmmlearn-python /work/venv-sequence/bin/python]
      OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_sequence.py --streamed 1000000 [--chunk-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

START = [0.5, 0.3, 0.2]
TRANS = [[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.05, 0.15, 0.8]]
MEANS = [-2.0, 0.0, 3.0]
VARS = [1.0, 0.5, 2.0]
SPEC = {"name": "ghmm", "sequence": {"id": "seq", "order": "t"},
        "nodes": {"h": {"states": 3, "latent": True, "prev": ["h"]}, "x": {"type": "gaussian", "parents": ["h"]}}}

HMMLEARN = r"""
import json, sys, time
import numpy as np
from hmmlearn import hmm
x = np.load(sys.argv[1])
n_seq, length, iters = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
p = json.loads(sys.argv[5])
def run(n_iter):
    m = hmm.GaussianHMM(n_components=3, covariance_type="full", n_iter=n_iter, tol=0.0, init_params="",
                        min_covar=1e-6)
    m.startprob_, m.transmat_ = np.array(p["start"]), np.array(p["trans"])
    m.means_, m.covars_ = np.array(p["means"])[:, None], np.array(p["vars"])[:, None, None]
    w, c = time.perf_counter(), time.process_time()
    m.fit(x[:, None], [length] * n_seq)
    return time.perf_counter() - w, time.process_time() - c, m.monitor_.history[-1]
w1, c1, _ = run(1)
wk, ck, ll = run(1 + iters)
print(json.dumps({"wall": (wk - w1) / iters, "cpu": (ck - c1) / iters, "loglik": ll}))
"""


def draw(n_seq: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Sequences from the true HMM, drawn for all sequences at once, step by step."""
    rng = np.random.default_rng(seed)
    h = np.empty((n_seq, length), dtype=np.int64)
    h[:, 0] = rng.choice(3, size=n_seq, p=START)
    cdf = np.cumsum(TRANS, axis=1)
    for t in range(1, length):
        h[:, t] = (rng.random(n_seq)[:, None] >= cdf[h[:, t - 1]]).sum(axis=1)
    x = np.array(MEANS)[h] + np.sqrt(np.array(VARS))[h] * rng.standard_normal((n_seq, length))
    return pd.DataFrame({"seq": np.repeat(np.arange(n_seq), length), "t": np.tile(np.arange(length), n_seq),
                         "x": x.ravel()})


def pgm_per_iteration(data: pd.DataFrame, iters: int) -> tuple[float, float, float]:
    true = FittedModel.from_spec(parse_spec({**SPEC, "params": {
        "h@first": {"table": START}, "h": {"table": TRANS}, "x": {"intercept": MEANS, "covariance": VARS}}}))
    stamps: list[tuple[float, float]] = []

    def tick(_: int, __: float) -> None:
        stamps.append((time.perf_counter(), time.process_time()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(SPEC), data, init=true, max_iter=iters, tol=0.0, callback=tick)
    wall = float(np.median(np.diff([s[0] for s in stamps])))
    cpu = float(np.median(np.diff([s[1] for s in stamps])))
    return wall, cpu, fitted.history[-1]


def child(path: str, chunk_rows: int, iters: int) -> None:
    """One fit of the file in this (fresh) process: prints its timings and peak RSS as JSON."""
    import resource

    stamps: list[tuple[float, float]] = []
    w0, c0 = time.perf_counter(), time.process_time()

    def tick(_: int, __: float) -> None:
        stamps.append((time.perf_counter(), time.process_time()))

    options = {"chunk_rows": chunk_rows} if chunk_rows else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(SPEC), path, max_iter=iters, tol=0.0, seed=0, callback=tick, **options)
    print(json.dumps({"wall": float(np.median(np.diff([s[0] for s in stamps]))),
                      "cpu": float(np.median(np.diff([s[1] for s in stamps]))),
                      "setup_cpu": stamps[0][1] - c0, "setup_wall": stamps[0][0] - w0,
                      "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "loglik": fitted.history[-1], "buckets": fitted.info.get("buckets", 1)}))


def streamed_vs_memory(rows: int, length: int, chunk_rows: int, iters: int) -> None:
    data = draw(rows // length, length).sample(frac=1.0, random_state=0)  # rows of a sequence anywhere
    print(f"gaussian HMM, 3 states, {rows // length:,} sequences x {length} steps = {len(data):,} rows shuffled, "
          f"Parquet; {iters} iterations from the seed; each fit in a fresh process")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.parquet")
        data.to_parquet(path, index=False)
        del data
        for name, chunk in (("in memory", 0), (f"streamed ({chunk_rows:,} rows/chunk)", chunk_rows)):
            run = subprocess.run([sys.executable, __file__, "--child", path, str(chunk), str(iters)],
                                 capture_output=True, text=True, check=True)
            out[name] = r = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{name:32s} {r['cpu'] * 1e3:8.1f} ms/iter cpu ({r['wall'] * 1e3:7.1f} wall)  setup "
                  f"{r['setup_cpu']:6.2f} s cpu  peak RSS {r['maxrss'] / 2**20:7.1f} MiB  buckets {r['buckets']}  "
                  f"log-lik {r['loglik']:.9f}")
    mem, st = out["in memory"], out[f"streamed ({chunk_rows:,} rows/chunk)"]
    print(f"ratio streamed/in memory: {st['cpu'] / mem['cpu']:.2f} cpu per iteration, "
          f"{st['maxrss'] / mem['maxrss']:.2f} peak RSS; |log-lik difference| {abs(st['loglik'] - mem['loglik']):.2e}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--hmmlearn-python", default="/work/venv-sequence/bin/python")
    parser.add_argument("--streamed", type=int, metavar="ROWS", help="compare a streamed fit of ROWS rows with the "
                        "in-memory fit instead of hmmlearn")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    if args.streamed:
        return streamed_vs_memory(args.streamed, args.length, args.chunk_rows, args.iters)
    data = draw(args.sequences, args.length)
    print(f"gaussian HMM, 3 states, {args.sequences} sequences x {args.length} steps = {len(data):,} rows, "
          f"{args.iters} iterations from the true parameters")
    wall, cpu, ll = pgm_per_iteration(data, args.iters)
    print(f"pgm       {wall * 1e3:8.1f} ms/iter wall  {cpu * 1e3:8.1f} ms/iter cpu   log-lik {ll:.6f}")
    if not os.path.exists(args.hmmlearn_python):
        print(f"hmmlearn  skipped: {args.hmmlearn_python} not found (a python with hmmlearn installed)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, data["x"].to_numpy())
        params = json.dumps({"start": START, "trans": TRANS, "means": MEANS, "vars": VARS})
        out = subprocess.run([args.hmmlearn_python, "-c", HMMLEARN, path, str(args.sequences), str(args.length),
                              str(args.iters), params], capture_output=True, text=True, check=True)
    ref = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"hmmlearn  {ref['wall'] * 1e3:8.1f} ms/iter wall  {ref['cpu'] * 1e3:8.1f} ms/iter cpu   "
          f"log-lik {ref['loglik']:.6f}")
    print(f"ratio pgm/hmmlearn: {wall / ref['wall']:.3f} wall, {cpu / ref['cpu']:.3f} cpu (issue target: <= 0.5)")


if __name__ == "__main__":
    sys.exit(main())
