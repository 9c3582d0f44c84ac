"""Linear dynamical systems: time per EM iteration, pgm against pykalman (issue 14).

State dimension 2, observation dimension 3, drawn here from known parameters.

(a) 100 sequences of 1,000 steps.  pgm fits all sequences in one call (Kalman filter and RTS
    smoother advancing every sequence together); pykalman takes one sequence per call, so its time
    for the data set is the sum over the sequences of one EM iteration each
    (``KalmanFilter.em(y_i, n_iter=1, em_vars="all")``), run in a subprocess by ``--pykalman-python``
    (a venv with pykalman: it is not a dependency of pgm).  Both start from the true parameters.
(b) One sequence of 1,000,000 steps: pgm's time per EM iteration and the process's peak resident
    memory (a fresh subprocess, so the peak is this fit's), with the size of the data for scale.

pgm's time per iteration is the median gap between successive EM callbacks (one M-step and one
E-step with its log-likelihood each), wall and this process's CPU time.  The machine may be
shared: CPU time is the steadier figure.  Run with one BLAS thread.  Benchmarks are not tests.

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_lds.py [--sequences 100] [--length 1000]
      [--long 1000000] [--iters 5] [--pykalman-python /work/venv-ref/bin/python]
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

A = [[0.9, 0.2], [-0.15, 0.85]]
Q = [[0.2, 0.02], [0.02, 0.1]]
C = [[1.0, 0.5], [-0.4, 0.8], [0.6, -1.1]]
D = [0.5, -0.2, 0.1]
R = [[0.4, 0.05, 0.0], [0.05, 0.3, 0.0], [0.0, 0.0, 0.5]]
MODEL = """name: lds
graph: directed
sequence: {id: seq, order: t}
nodes:
  s: {type: gaussian, dim: 2, latent: true, prev: [s]}
  y: {type: gaussian, dim: 3, parents: [s]}
"""

PYKALMAN = r"""
import json, sys, time
import numpy as np
from pykalman import KalmanFilter
y = np.load(sys.argv[1])
p = json.loads(sys.argv[2])
kf = KalmanFilter(transition_matrices=np.array(p["A"]), observation_matrices=np.array(p["C"]),
                  transition_covariance=np.array(p["Q"]), observation_covariance=np.array(p["R"]),
                  transition_offsets=np.zeros(2), observation_offsets=np.array(p["D"]),
                  initial_state_mean=np.zeros(2), initial_state_covariance=np.eye(2), em_vars="all")
wall = cpu = 0.0
for seq in y:
    w, c = time.perf_counter(), time.process_time()
    kf.em(seq, n_iter=1)
    wall += time.perf_counter() - w
    cpu += time.process_time() - c
print(json.dumps({"wall": wall, "cpu": cpu, "loglik": float(sum(kf.loglikelihood(seq) for seq in y[:3]))}))
"""

LONG = r"""
import json, resource, sys, time, warnings
import numpy as np, pandas as pd
sys.path.insert(0, sys.argv[4])
import pgm
from bench_lds import draw, fitted_truth, per_iteration
n, iters = int(sys.argv[1]), int(sys.argv[2])
frame = draw(1, n, seed=1)
data_mb = frame.memory_usage(index=True).sum() / 2**20
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
wall, cpu, ll = per_iteration(fitted_truth(sys.argv[3]), frame, iters)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "cpu": cpu, "loglik": ll, "data_mb": data_mb, "base_mb": base, "peak_mb": peak}))
"""


def draw(n_seq: int, length: int, seed: int = 0) -> pd.DataFrame:
    """Sequences from the true LDS (s_0 ~ N(0, I)), all sequences advanced together."""
    rng = np.random.default_rng(seed)
    a, c, q, r = np.array(A), np.array(C), np.linalg.cholesky(Q), np.linalg.cholesky(R)
    y = np.empty((n_seq, length, 3))
    s = rng.standard_normal((n_seq, 2))
    noise = 256
    for t0 in range(0, length, noise):  # noise drawn in blocks: the loop is over steps only
        e_s = rng.standard_normal((min(noise, length - t0), n_seq, 2)) @ q.T
        e_y = rng.standard_normal((min(noise, length - t0), n_seq, 3)) @ r.T
        for k in range(len(e_s)):
            t = t0 + k
            if t:
                s = s @ a.T + e_s[k]
            y[:, t] = s @ c.T + np.array(D) + e_y[k]
    return pd.DataFrame({"seq": np.repeat(np.arange(n_seq), length), "t": np.tile(np.arange(length), n_seq),
                         "y[0]": y[:, :, 0].ravel(), "y[1]": y[:, :, 1].ravel(), "y[2]": y[:, :, 2].ravel()})


def fitted_truth(folder: str) -> pgm.FittedModel:
    params = {"s@first": {"intercept": [0.0, 0.0], "covariance": [[1.0, 0.0], [0.0, 1.0]]},
              "s": {"intercept": [0.0, 0.0], "coef": A, "covariance": Q},
              "y": {"intercept": D, "coef": C, "covariance": R}}
    path = os.path.join(folder, "lds_truth.yaml")
    with open(path, "w") as fh:
        fh.write(MODEL + "params: " + json.dumps(params) + "\n")
    return pgm.load(path)


def per_iteration(truth: pgm.FittedModel, frame: pd.DataFrame, iters: int) -> tuple[float, float, float]:
    """Median wall and CPU seconds between successive EM callbacks, and the last log-likelihood."""
    stamps: list[tuple[float, float]] = []
    values: list[float] = []

    def tick(it: int, value: float) -> None:
        stamps.append((time.perf_counter(), time.process_time()))
        values.append(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgm.fit(truth.spec, frame, init=truth, max_iter=iters, tol=0.0, callback=tick)
    gaps = np.diff(np.array(stamps), axis=0)
    return float(np.median(gaps[:, 0])), float(np.median(gaps[:, 1])), values[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=100)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--long", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--pykalman-python", default="/work/venv-ref/bin/python")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        truth = fitted_truth(tmp)
        frame = draw(args.sequences, args.length)
        print(f"(a) {args.sequences} sequences x {args.length} steps, state dim 2, observation dim 3")
        wall, cpu, ll = per_iteration(truth, frame, args.iters)
        print(f"  pgm       per EM iteration: wall {wall:8.3f} s  cpu {cpu:8.3f} s   (log-likelihood {ll:.6g})")
        y = frame[["y[0]", "y[1]", "y[2]"]].to_numpy().reshape(args.sequences, args.length, 3)
        np.save(os.path.join(tmp, "y.npy"), y)
        params = json.dumps({"A": A, "Q": Q, "C": C, "D": D, "R": R})
        got = subprocess.run([args.pykalman_python, "-c", PYKALMAN, os.path.join(tmp, "y.npy"), params],
                             capture_output=True, text=True)
        if got.returncode:
            print(f"  pykalman failed: {got.stderr.strip().splitlines()[-1:]}")
        else:
            pk = json.loads(got.stdout)
            print(f"  pykalman  per EM iteration: wall {pk['wall']:8.3f} s  cpu {pk['cpu']:8.3f} s   "
                  f"(sum over {args.sequences} one-sequence calls)")
            print(f"  ratio pykalman / pgm: wall {pk['wall'] / wall:.1f}x  cpu {pk['cpu'] / cpu:.1f}x")
        if args.long:
            print(f"(b) one sequence of {args.long:,} steps (a fresh process)")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here)] + sys.path))
            got = subprocess.run([sys.executable, "-c", LONG, str(args.long), str(max(2, args.iters // 2)), tmp, here],
                                 capture_output=True, text=True, env=env)
            if got.returncode:
                print(f"  failed: {got.stderr.strip()[-2000:]}")
            else:
                lg = json.loads(got.stdout)
                print(f"  pgm per EM iteration: wall {lg['wall']:.2f} s  cpu {lg['cpu']:.2f} s  "
                      f"({1e6 * lg['cpu'] / args.long:.1f} us of CPU per step)")
                print(f"  peak RSS {lg['peak_mb']:.0f} MB (after reading the data: {lg['base_mb']:.0f} MB; the data frame "
                      f"{lg['data_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
