"""Undirected log-linear learning: exact gradients, stochastic maximum likelihood, the grid limit.

Cases (issue 5, "Speed"):

a. exact learning of a 10x10 binary Ising grid (100 nodes, tied couplings, a field per
   spin) from N rows (default 10k) sampled exactly from known parameters: time per exact
   gradient (one calibrated clique tree), and time to convergence for L-BFGS (default),
   coordinate ascent and gradient ascent; pseudo-likelihood and PCD for comparison.
b. stochastic maximum likelihood (PCD, persistent Gibbs chains) on a 32x32 grid, N rows
   drawn by a long Gibbs run: time per iteration and in all; pseudo-likelihood alongside;
   error of the couplings against the generating ones.
c. a 4x4 grid: log Z and every clique marginal by the calibrated clique tree versus
   brute-force enumeration of the 65,536 joint states (the reference the tests use).
d. the largest square grid that exact L-BFGS learning fits within a minute (N rows).

Run:  python bench/bench_loglinear.py [--rows 10000] [--pcd-side 32] [--pcd-iter 1000]
      [--budget 60] [--skip a,b,c,d]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from pgm.encode import encode
from pgm.errors import ConvergenceWarning
from pgm.graph import build
from pgm.infer.elimination import calibrate
from pgm.learn.loglinear import LogLinear, fit_loglinear
from pgm.markov import FittedMarkovNet
from pgm.schema import parse_spec

COUPLINGS = {"horizontal": 0.25, "vertical": 0.15}


def best_of(fn, k: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(k):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def grid(n: int):
    name = (lambda i, j: f"s{i}_{j}")
    nodes = {name(i, j): {"states": [-1, 1]} for i in range(n) for j in range(n)}
    cliques = [{"nodes": [name(i, j), name(i, j + 1)], "features": "ising", "tie": "horizontal"}
               for i in range(n) for j in range(n - 1)]
    cliques += [{"nodes": [name(i, j), name(i + 1, j)], "features": "ising", "tie": "vertical"}
                for i in range(n - 1) for j in range(n)]
    return parse_spec({"name": f"ising-{n}x{n}", "graph": "undirected", "nodes": nodes, "cliques": cliques})


def truth(n: int, seed: int = 0) -> FittedMarkovNet:
    spec = grid(n)
    graph = build(spec)
    engine = LogLinear(graph)
    theta = 0.1 * np.random.default_rng(seed).standard_normal(engine.layout.n_params)
    for key, value in COUPLINGS.items():
        theta[engine.layout.blocks[key].start] = value
    return FittedMarkovNet(spec, graph, engine, theta)


def row(cells: list, widths: list[int]) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))


def table(title: str, head: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"\n{title}")
    print(row(head, widths))
    print(row(["-" * w for w in widths], widths))
    for r in rows:
        print(row(r, widths))


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_loglinear(*args, **kwargs)


def case_a(n_rows: int) -> None:
    model = truth(10)
    t_sample, df = best_of(lambda: model.sample(n_rows, seed=1, method="exact"), 1)
    graph = model.graph
    data = encode(graph, df)
    engine = LogLinear(graph)
    t_tree, tree = best_of(lambda: LogLinear(graph).tree, 1)
    rows = engine.prepare(data)
    theta = np.zeros(engine.layout.n_params)
    t_grad, _ = best_of(lambda: engine.value_and_grad(rows, theta), 5)
    out = []
    exact_theta = None
    for learner, opts in [("lbfgs", {}), ("coordinate", {}), ("gradient", {}), ("pseudo", {}),
                          ("pcd", {"max_iter": 1000, "n_chains": 200})]:
        t, fit = best_of(lambda: quiet_fit(graph, data, learner=learner, **opts), 1)
        if learner == "lbfgs":
            exact_theta = fit.theta
        ll = engine.log_likelihood(rows, engine.layout.log_tables(fit.theta))
        gap = abs(fit.theta[-2:] - exact_theta[-2:]).max()
        out.append([learner, fit.n_iter, f"{t:.2f}", f"{ll:.3f}", f"{gap:.4f}",
                    "yes" if fit.converged else "no"])
    print(f"\n(a) 10x10 Ising grid, {n_rows} rows: clique tree width {tree.width}, {len(tree.cliques)} cliques, "
          f"{tree.total_entries} table entries (built in {t_tree * 1e3:.0f} ms); exact sampling {t_sample:.2f} s")
    print(f"    time per exact gradient (log Z + every clique marginal + statistics): {t_grad * 1e3:.1f} ms")
    table("    learners (iterations are sweeps for coordinate)",
          ["learner", "iters", "seconds", "log-likelihood", "|coupling - lbfgs|", "converged"], out)


def case_b(side: int, n_rows: int, iters: int) -> None:
    model = truth(side)
    t_sample, df = best_of(lambda: model.sample(n_rows, seed=2, method="gibbs", burn_in=300, thin=5,
                                                n_chains=500), 1)
    graph = model.graph
    data = encode(graph, df)
    t_wide, ok = best_of(lambda: LogLinear(graph).tractable(), 1)
    t_pcd, fit = best_of(lambda: fit_loglinear(graph, data, learner="pcd", max_iter=iters, n_chains=200), 1)
    t_pl, pl = best_of(lambda: quiet_fit(graph, data, learner="pseudo"), 1)
    out = [["pcd", iters, f"{t_pcd:.2f}", f"{t_pcd / iters * 1e3:.1f}",
            f"{fit.theta[-2]:.4f}", f"{fit.theta[-1]:.4f}"],
           ["pseudo", pl.n_iter, f"{t_pl:.2f}", f"{t_pl / max(pl.n_iter, 1) * 1e3:.1f}",
            f"{pl.theta[-2]:.4f}", f"{pl.theta[-1]:.4f}"],
           ["truth", "", "", "", f"{COUPLINGS['horizontal']:.4f}", f"{COUPLINGS['vertical']:.4f}"]]
    print(f"\n(b) {side}x{side} Ising grid ({side * side} nodes), {n_rows} rows by Gibbs sampling in {t_sample:.1f} s; "
          f"exact inference {'possible' if ok else 'out of reach'} (decided in {t_wide:.2f} s); 200 chains")
    table("    stochastic maximum likelihood and pseudo-likelihood",
          ["learner", "iters", "seconds", "ms/iter", "horizontal", "vertical"], out)


def case_c() -> None:
    model = truth(4)
    engine = model.engine
    layout = engine.layout
    flat = layout.log_tables(model.theta)
    tables = engine.potential_tables(flat)
    states = np.array(list(itertools.product(range(2), repeat=16)))
    index = {v: i for i, v in enumerate(layout.variables)}

    def brute():
        score = np.zeros(len(states))
        for p, t in zip(layout.potentials, tables):
            score += t[tuple(states[:, index[v]] for v in p.scope)]
        log_z = logsumexp(score)
        prob = np.exp(score - log_z)
        margs = []
        for p in layout.potentials:
            code = np.zeros(len(states), dtype=np.int64)
            for v in p.scope:
                code = code * 2 + states[:, index[v]]
            margs.append(np.bincount(code, weights=prob, minlength=p.size))
        return log_z, margs

    def tree():
        cal = calibrate(engine.tree, tables)
        return float(cal.log_z[0]), [m[0].ravel() for m in cal.factor_probabilities()]

    engine.tree  # compiled once, as a learner does
    t_brute, (z1, m1) = best_of(brute, 3)
    t_tree, (z2, m2) = best_of(tree, 20)
    err = max(abs(z1 - z2), max(np.abs(a - b).max() for a, b in zip(m1, m2)))
    table("(c) 4x4 grid: log Z and all 40 potential marginals",
          ["method", "ms", "speed-up", "max |difference|"],
          [["brute-force enumeration (65,536 states)", f"{t_brute * 1e3:.2f}", "1", ""],
           ["calibrated clique tree", f"{t_tree * 1e3:.2f}", f"{t_brute / t_tree:.0f}x", f"{err:.1e}"]])


def case_d(n_rows: int, budget: float, start: int = 10) -> None:
    out = []
    largest = None
    for side in itertools.count(start, 2):
        model = truth(side)
        try:
            df = model.sample(n_rows, seed=3, method="exact")
        except Exception as exc:  # too wide even to sample exactly
            out.append([side, "", "", "", "", f"{type(exc).__name__}"])
            break
        graph = model.graph
        engine = LogLinear(graph)
        tree = engine.tree
        rows = engine.prepare(encode(graph, df))
        t_grad, _ = best_of(lambda: engine.value_and_grad(rows, np.zeros(engine.layout.n_params)), 1)
        if t_grad * 15 > budget:  # L-BFGS needs 15-30 gradients here: it cannot finish in the budget
            out.append([side, tree.width, tree.max_table, f"{t_grad:.2f}", "", "skipped (> budget)"])
            break
        t_fit, fit = best_of(lambda: quiet_fit(graph, df), 1)
        out.append([side, tree.width, tree.max_table, f"{t_grad:.2f}", f"{t_fit:.1f}",
                    f"{fit.n_iter} iters" + ("" if fit.converged else ", not converged")])
        if t_fit <= budget:
            largest = side
        else:
            break
    table(f"(d) exact L-BFGS learning of n x n grids, {n_rows} rows, budget {budget:.0f} s",
          ["n", "width", "largest table", "s/gradient", "s to fit", "note"], out)
    print(f"    largest grid fitted exactly within {budget:.0f} s: {largest}x{largest}" if largest else
          "    no grid fitted within the budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--pcd-side", type=int, default=32)
    parser.add_argument("--pcd-iter", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"pgm log-linear benchmark -- {platform.python_implementation()} {platform.python_version()}, numpy "
          f"{np.__version__}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    if "a" not in skip:
        case_a(args.rows)
    if "b" not in skip:
        case_b(args.pcd_side, args.rows, args.pcd_iter)
    if "c" not in skip:
        case_c()
    if "d" not in skip:
        case_d(args.rows, args.budget)


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
