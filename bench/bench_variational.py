"""Variational EM (learner="variational") on sigmoid belief networks over scikit-learn's digits (issue 15).

A sigmoid belief network: H hidden binary units, each of the 64 binarised pixels (load_digits,
value >= 8) a logistic child of all of them.  For H = 16, 40, 100 it reports the time per
variational EM iteration (median gap between successive callbacks: one M-step and one E-step of
a few mean-field sweeps) as wall and CPU time, the final ELBO, and, where the 2^H hidden states can
be summed (H <= 16), the exact log-likelihood of the returned parameters by brute force (numpy,
rows x 2^H) and its gap to the ELBO.  It also shows what exact inference would need (pgm's
estimate, the one the automatic choice uses) and the independent-pixel log-likelihood.

Factorial HMMs (structured mean-field, :mod:`pgm.learn.structured`): M chains of K states
sharing one gaussian child, ``--fhmm-seqs`` sequences of ``--fhmm-steps`` steps.  For each MxK it
reports the CPU time per variational EM iteration, the final ELBO, and where exact
forward-backward runs (K^M <= MAX_JOINT) the exact log-likelihood of the returned parameters, the
gap, and exact EM's CPU time per iteration on the same data side by side (the ratio).

Run:  python bench/bench_variational.py [--rows 500] [--iters 20] [--hidden 16,40,100]
                                         [--fhmm 3x3,8x3] [--fhmm-seqs 200] [--fhmm-steps 100] [--fhmm-iters 5]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_expit
from sklearn.datasets import load_digits

from pgm.encode import encode
from pgm.graph import build
from pgm.infer.chain import MAX_JOINT, forward_backward, make_chain_plan
from pgm.learn.chain import SequenceSource
from pgm.learn.em import fit_em
from pgm.learn.structured import chain_estimate, fit_structured
from pgm.learn.variational import exact_estimate, fit_variational
from pgm.schema import parse_spec
from pgm.sequence import encode_sequences


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


def fhmm(m: int, k: int, n_seq: int, length: int, seed: int = 0):
    """M chains of K states sharing the gaussian child x (mean: a weighted sum of the chains' states)."""
    nodes = {f"h{i}": {"states": k, "latent": True, "prev": [f"h{i}"]} for i in range(m)}
    nodes["x"] = {"type": "gaussian", "parents": [f"h{i}" for i in range(m)]}
    graph = build(parse_spec({"name": f"fhmm{m}x{k}", "sequence": {"id": "seq", "order": "t"}, "nodes": nodes}))
    rng = np.random.default_rng(seed)
    n = n_seq * length
    h = np.zeros((n, m), dtype=int)
    for t in range(length):  # each chain keeps its state with probability 0.8
        rows = slice(t * n_seq, (t + 1) * n_seq)
        fresh = rng.integers(0, k, (n_seq, m))
        h[rows] = fresh if t == 0 else np.where(rng.random((n_seq, m)) < 0.8, h[(t - 1) * n_seq:t * n_seq], fresh)
    x = h @ (np.arange(m) + 1.0) + rng.normal(0, 0.5, n)
    df = pd.DataFrame({"seq": np.tile(np.arange(n_seq), length), "t": np.repeat(np.arange(length), n_seq), "x": x})
    return graph, encode_sequences(graph, df)


def per_iteration(fit) -> tuple[float, Any]:
    """Median CPU seconds between successive callbacks of ``fit(callback)``, and its result."""
    stamps: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(lambda i, v: stamps.append(time.process_time()))
    return float(np.median(np.diff(stamps))), result


def fhmm_lines(args: argparse.Namespace) -> None:
    print(f"\nfactorial HMM, gaussian child: {args.fhmm_seqs} sequences x {args.fhmm_steps} steps, "
          f"{args.fhmm_iters} iterations (CPU seconds per iteration)")
    print(f"{'MxK':>5} {'joint':>7} {'variational':>11} {'ELBO':>11} {'exact LL':>11} {'gap':>8} "
          f"{'exact EM':>9} {'EM/var':>7}  automatic choice")
    for spec in args.fhmm.split(","):
        m, k = (int(v) for v in spec.lower().split("x"))
        graph, seq = fhmm(m, k, args.fhmm_seqs, args.fhmm_steps)
        var_s, res = per_iteration(lambda cb: fit_structured(graph, seq, max_iter=args.fhmm_iters, tol=0, callback=cb))
        exact_ll = gap = em_s = float("nan")
        if k ** m <= MAX_JOINT:
            exact_ll = forward_backward(make_chain_plan(graph, seq), res.cpds, smooth=False).log_likelihood
            gap = exact_ll - res.history[-1]
            em_s, _ = per_iteration(lambda cb: fit_em(graph, SequenceSource(graph, seq), max_iter=args.fhmm_iters,
                                                      tol=0, callback=cb))
        est = chain_estimate(graph, seq)
        choice = "variational" if est.over_budget else "em"
        print(f"{spec:>5} {k ** m:>7} {var_s:>11.3f} {res.history[-1]:>11.1f} {exact_ll:>11.1f} {gap:>8.2f} "
              f"{em_s:>9.3f} {em_s / var_s:>7.2f}  {choice} (~{est.cost:.2g} operations per exact iteration)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--hidden", default="16,40,100")
    ap.add_argument("--fhmm", default="3x3,8x3")
    ap.add_argument("--fhmm-seqs", type=int, default=200)
    ap.add_argument("--fhmm-steps", type=int, default=100)
    ap.add_argument("--fhmm-iters", type=int, default=5)
    args = ap.parse_args()
    x = (load_digits().data[:args.rows] >= 8).astype(int)
    df = pd.DataFrame(x, columns=[f"p{j}" for j in range(64)])
    p = x.mean(axis=0).clip(1e-12, 1 - 1e-12)
    independent = float((x * np.log(p) + (1 - x) * np.log(1 - p)).sum())
    print(f"digits: {len(x)} rows x 64 pixels; independent-pixel log-likelihood {independent:.1f}")
    print(f"{'H':>4} {'wall s/iter':>11} {'cpu s/iter':>10} {'ELBO':>10} {'exact':>10} {'gap':>7} "
          f"{'monotone':>8}  exact inference would need")
    for hidden in (int(h) for h in args.hidden.split(",") if h):
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
    if args.fhmm:
        fhmm_lines(args)


if __name__ == "__main__":
    main()
