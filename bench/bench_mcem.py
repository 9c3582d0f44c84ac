"""Sampling E-steps (learner="mcem", "stochastic-em") next to exact EM and variational EM (issue 15).

Time per iteration (median CPU time between successive callbacks: one M-step and one E-step)
of each learner, run side by side in one process, with the ratio to exact EM (or, where EM cannot
run, to variational EM), and the log-likelihood of the returned parameters where exact inference
is possible (pgm's exact E-step; the 40-unit network has none).

Models:
* ``coupled``: three coupled latent table nodes (2, 3, 2 states) with eight observed children
  (5,000 rows by default): all four learners apply;
* ``sbn10``: a sigmoid belief network with 10 hidden units over the 64 binarised pixels of
  scikit-learn's digits (exact EM lists 1,024 states per row);
* ``sbn40``: 40 hidden units (exact EM refused: ~10^12 joint states).

Run:  python bench/bench_mcem.py [--rows 5000] [--digits 500] [--iters 10] [--samples 10] [--penalty P]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from pgm.encode import encode
from pgm.graph import build
from pgm.learn.em import fit_em, prepare_rows
from pgm.learn.mcem import fit_mcem
from pgm.learn.variational import fit_variational
from pgm.schema import parse_spec


def coupled(n: int):
    nodes = {"z1": {"states": 2, "latent": True}, "z2": {"states": 3, "latent": True, "parents": ["z1"]},
             "z3": {"states": 2, "latent": True, "parents": ["z2"]}}
    kids = {"a": ["z1", "z2"], "b": ["z2"], "c": ["z1"], "d": ["z1"], "e": ["z2", "z3"], "f": ["z3"],
            "g": ["z3"], "h": ["z2"]}
    nodes.update({k: {"states": 3, "parents": p} for k, p in kids.items()})
    graph = build(parse_spec({"name": "coupled", "graph": "directed", "nodes": nodes}))
    rng = np.random.default_rng(0)
    z1 = rng.integers(0, 2, n)
    z2 = np.where(rng.random(n) < 0.6, z1, rng.integers(0, 3, n))
    z3 = np.where(rng.random(n) < 0.7, z2 % 2, 1 - z2 % 2)
    z = {"z1": z1, "z2": z2, "z3": z3}
    df = pd.DataFrame({k: np.where(rng.random(n) < 0.7, sum(z[q] for q in p) % 3, rng.integers(0, 3, n))
                       for k, p in kids.items()})
    return graph, df


def sbn(hidden: int, rows: int):
    nodes = {f"h{i}": {"states": 2, "latent": True} for i in range(hidden)}
    nodes.update({f"p{j}": {"states": 2, "cpd": "logistic", "parents": [f"h{i}" for i in range(hidden)]}
                  for j in range(64)})
    graph = build(parse_spec({"name": f"sbn{hidden}", "graph": "directed", "nodes": nodes}))
    x = (load_digits().data[:rows] >= 8).astype(int)
    return graph, pd.DataFrame(x, columns=[f"p{j}" for j in range(64)])


def timed(run) -> tuple[float, float, object]:
    stamps: list[tuple[float, float]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(lambda i, v: stamps.append((time.perf_counter(), time.process_time())))
    wall = float(np.median(np.diff([s[0] for s in stamps])))
    cpu = float(np.median(np.diff([s[1] for s in stamps])))
    return wall, cpu, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--digits", type=int, default=500)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--models", default="coupled,sbn10,sbn40")
    ap.add_argument("--penalty", type=float, default=None, help="L2 penalty of the logistic CPDs (every learner)")
    args = ap.parse_args()
    it, s, pen = args.iters, args.samples, args.penalty
    print(f"{'model':>8} {'learner':>14} {'wall s/iter':>11} {'cpu s/iter':>10} {'ratio':>7} {'log-lik':>12}  history")
    for name in args.models.split(","):
        graph, df = coupled(args.rows) if name == "coupled" else sbn(int(name[3:]), args.digits)
        enc = encode(graph, df)
        exact = name != "sbn40"
        runs = {}
        if exact:
            runs["em"] = lambda cb: fit_em(graph, enc, max_iter=it, tol=0, penalty=pen, callback=cb)
        runs["variational"] = lambda cb: fit_variational(graph, enc, max_iter=it, tol=0, penalty=pen,
                                                         callback=cb)
        runs[f"mcem S={s}"] = lambda cb: fit_mcem(graph, enc, max_iter=it, samples=s, burn_in=10, penalty=pen,
                                                      callback=cb)
        runs["stochastic-em"] = lambda cb: fit_mcem(graph, enc, learner="stochastic-em", max_iter=it, burn_in=10,
                                                    penalty=pen, callback=cb)
        base = None
        source = prepare_rows(graph, enc) if exact else None
        for learner, run in runs.items():
            wall, cpu, result = timed(run)
            base = base or cpu
            ll = source.e_step(result.cpds).log_likelihood if exact else float("nan")
            what = getattr(result, "info", {}).get("history", "ELBO" if learner == "variational" else "log-likelihood")
            print(f"{name:>8} {learner:>14} {wall:11.3f} {cpu:10.3f} {cpu / base:7.2f} {ll:12.1f}  {what}")


if __name__ == "__main__":
    main()
