"""Variational EM (learner="variational") on sigmoid belief networks over scikit-learn's digits (issue 15).

A sigmoid belief network: H hidden binary units, each of the 64 binarised pixels (load_digits,
value >= 8) a logistic child of all of them.  For H = 16, 40, 100 it reports the time per
variational EM iteration (median gap between successive callbacks: one M-step and one E-step of
a few mean-field sweeps) as wall and CPU time, the final ELBO, and, where the 2^H hidden states can
be summed (H <= 16), the exact log-likelihood of the returned parameters by brute force (numpy,
rows x 2^H) and its gap to the ELBO.  It also shows what exact inference would need (pgm's
estimate, the one the automatic choice uses) and the independent-pixel log-likelihood.

Run:  python bench/bench_variational.py [--rows 500] [--iters 20] [--hidden 16,40,100]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import log_expit
from sklearn.datasets import load_digits

from pgm.encode import encode
from pgm.graph import build
from pgm.learn.variational import exact_estimate, fit_variational
from pgm.schema import parse_spec


def sbn(hidden: int):
    nodes = {f"h{i}": {"states": 2, "latent": True} for i in range(hidden)}
    nodes.update({f"p{j}": {"states": 2, "cpd": "logistic", "parents": [f"h{i}" for i in range(hidden)]}
                  for j in range(64)})
    return build(parse_spec({"name": f"sbn{hidden}", "graph": "directed", "nodes": nodes}))


def brute_force(cpds, x: np.ndarray, hidden: int, block: int = 2**14) -> float:
    """log p(x) summed over all 2^hidden states, in blocks of states (streaming log-sum-exp)."""
    prior = np.array([cpds[f"h{i}"].log_probs[0] for i in range(hidden)])
    w = np.array([cpds[f"p{j}"].coef[1] for j in range(64)])
    b = np.array([cpds[f"p{j}"].intercept[1] for j in range(64)])
    acc = np.full(len(x), -np.inf)
    for start in range(0, 2**hidden, block):
        codes = np.arange(start, min(start + block, 2**hidden))
        z = ((codes[:, None] >> np.arange(hidden)) & 1).astype(float)
        a = z @ w.T + b
        joint = (z @ prior[:, 1] + (1 - z) @ prior[:, 0])[None, :] + x @ log_expit(a).T + (1 - x) @ log_expit(-a).T
        top = np.maximum(acc, joint.max(axis=1))
        acc = top + np.log(np.exp(acc - top) + np.exp(joint - top[:, None]).sum(axis=1))
    return float(acc.sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--hidden", default="16,40,100")
    args = ap.parse_args()
    x = (load_digits().data[:args.rows] >= 8).astype(int)
    df = pd.DataFrame(x, columns=[f"p{j}" for j in range(64)])
    p = x.mean(axis=0).clip(1e-12, 1 - 1e-12)
    independent = float((x * np.log(p) + (1 - x) * np.log(1 - p)).sum())
    print(f"digits: {len(x)} rows x 64 pixels; independent-pixel log-likelihood {independent:.1f}")
    print(f"{'H':>4} {'wall s/iter':>11} {'cpu s/iter':>10} {'ELBO':>10} {'exact':>10} {'gap':>7} "
          f"{'monotone':>8}  exact inference would need")
    for hidden in (int(h) for h in args.hidden.split(",")):
        graph = sbn(hidden)
        enc = encode(graph, df)
        stamps: list[tuple[float, float]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit_variational(graph, enc, max_iter=args.iters, tol=0,
                                     callback=lambda i, v: stamps.append((time.perf_counter(), time.process_time())))
        wall = float(np.median(np.diff([s[0] for s in stamps])))
        cpu = float(np.median(np.diff([s[1] for s in stamps])))
        h = np.array(result.history)
        monotone = bool(np.all(np.diff(h) >= -1e-9 * abs(h[-1])))
        exact = brute_force(result.cpds, x, hidden) if hidden <= 16 else float("nan")
        est = exact_estimate(graph, enc)
        print(f"{hidden:>4} {wall:>11.3f} {cpu:>10.3f} {h[-1]:>10.1f} {exact:>10.1f} {exact - h[-1]:>7.1f} "
              f"{str(monotone):>8}  {est.describe()}{'' if est.feasible else ' (beyond the tree limits)'}")


if __name__ == "__main__":
    main()
