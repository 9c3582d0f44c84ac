"""Predictions from a fitted model: one vectorised call against a loop of per-row queries.

Cases (issue 16, "Using a fitted model"):

a. undirected: the 4x4 Ising grid (models/ising_4x4.yaml) with random couplings; 1,000 (and N)
   rows sampled from it, with the centre spin s11 absent and 10% of the other cells missing.
   ``fitted.predict("s11", rows)`` (distinct rows merged, one batched clique-tree calibration per
   pattern of hidden cells) against a Python loop of ``fitted.query("s11", evidence_of_row)``
   (what a user had to write before: variable elimination per row).  The answers are compared.
b. directed: alarm (37 nodes) with LVFAILURE absent and 10% of cells missing; ``predict`` against
   the same per-row query loop (on the first 200 rows: the loop is slow).

Run:  python bench/bench_predict.py [--rows 100000]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import pgm
from pgm.convert import read_any
from pgm.fitted import FittedModel
from pgm.graph import build
from pgm.learn.loglinear import LogLinear
from pgm.markov import FittedMarkovNet
from pgm.schema import parse_spec

ROOT = Path(__file__).resolve().parents[1]


def per_row_queries(model, node: str, frame: pd.DataFrame) -> np.ndarray:
    out = []
    for _, row in frame.iterrows():
        evidence = {k: v for k, v in row.items() if not pd.isna(v)}
        out.append(model.query(node, evidence).to_numpy())
    return np.array(out)


def timed(fn, repeat: int = 3):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def case(name: str, model, node: str, frame: pd.DataFrame, loop_rows: int) -> None:
    t_vec, post = timed(lambda: model.posterior(node, frame))
    sub = frame.iloc[:loop_rows]
    t_loop, ref = timed(lambda: per_row_queries(model, node, sub), repeat=1)
    err = np.abs(post.to_numpy()[:loop_rows] - ref).max()
    print(f"{name}: {len(frame)} rows: posterior() {t_vec * 1e3:.1f} ms ({len(frame) / t_vec:,.0f} rows/s); "
          f"query loop {t_loop / loop_rows * 1e3:.2f} ms/row ({loop_rows / t_loop:,.0f} rows/s); "
          f"speed-up {t_loop / loop_rows * len(frame) / t_vec:,.0f}x; max |difference| {err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)

    spec = pgm.load(ROOT / "models" / "ising_4x4.yaml")
    graph = build(spec)
    engine = LogLinear(graph)
    ising = FittedMarkovNet(spec, graph, engine, 0.4 * rng.standard_normal(engine.layout.n_params))
    for n in (1_000, args.rows):
        rows = ising.sample(n, seed=1).astype(object).drop(columns="s11")
        rows = rows.mask(rng.random(rows.shape) < 0.1)
        case("ising 4x4 (undirected)", ising, "s11", rows, loop_rows=min(n, 1_000))

    alarm = FittedModel.from_spec(parse_spec(read_any(ROOT.parent / "shared" / "data" / "alarm.bif")))
    for n in (1_000, args.rows):
        rows = alarm.sample(n, seed=2).astype(object).drop(columns="LVFAILURE")
        rows = rows.mask(rng.random(rows.shape) < 0.1)
        case("alarm (directed)", alarm, "LVFAILURE", rows, loop_rows=200)


if __name__ == "__main__":
    main()
