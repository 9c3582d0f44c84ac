"""Long hidden chains and wide sigmoid belief networks: time per EM iteration (issue 13).

Cases:

a. A discrete HMM (3 hidden states, 4 symbols) unrolled with ties, T = 2..100, 300 sequences.
b. A gaussian HMM (3 hidden states, 1-d gaussian emissions) unrolled with ties, same T, 300 sequences,
   side by side with hmmlearn's GaussianHMM on the same sequences from the same parameters when
   hmmlearn is importable (run in an environment that has it, e.g. /work/venv-ref with this checkout
   first on PYTHONPATH); the ratio is pgm's CPU time per iteration over hmmlearn's.
c. A sigmoid belief network, 10 hidden binary units, each of 30 visible binary units a logistic
   child of all of them, 1,000 rows: time and peak memory (tracemalloc) per iteration.

Every fit starts from the true parameters; the time per iteration is the median gap between
successive EM callbacks (one M-step and one E-step each), as wall time and as this process's CPU
time (the machine is shared: CPU time is the steadier figure).  ``--before PATH`` runs the same
cases in a subprocess on another checkout of pgm (PYTHONPATH=PATH, e.g. ``git archive <commit> pgm``
unpacked there) and prints both side by side; cases the old code refuses say so.

Run:  python bench/bench_chains.py [--before /tmp/pgm-before] [--iters 3] [--sbn-rows 1000]
      [--sbn-before-rows 100] [--lengths 2,3,...]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings

# both tools single-threaded: on a shared machine, spinning BLAS threads cost hmmlearn 30x its CPU time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

import pgm  # noqa: E402
import pgm.learn.em  # noqa: E402
from pgm.cpd.linear import LinearCPD  # noqa: E402
from pgm.cpd.logistic import LogisticCPD  # noqa: E402
from pgm.cpd.table import TableCPD  # noqa: E402
from pgm.fitted import FittedModel  # noqa: E402
from pgm.graph import build  # noqa: E402
from pgm.schema import parse_spec  # noqa: E402

#: plain EM updates (a checkout that predates ``accelerate=`` runs them anyway)
PLAIN = {"accelerate": False} if hasattr(pgm.learn.em, "ACCELERATE") else {}
LENGTHS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 50, 75, 100]


def hmm(T: int, gaussian: bool, K: int = 3, M: int = 4, seed: int = 0) -> FittedModel:
    nodes: dict = {"h1": {"states": K, "latent": True}}
    for t in range(2, T + 1):
        nodes[f"h{t}"] = {"states": K, "latent": True, "parents": [f"h{t - 1}"], "tie": "trans"}
    for t in range(1, T + 1):
        nodes[f"x{t}"] = ({"type": "gaussian", "parents": [f"h{t}"], "tie": "emit"} if gaussian
                          else {"states": M, "parents": [f"h{t}"], "tie": "emit"})
    spec = parse_spec({"name": f"hmm{T}", "nodes": nodes})
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.ones(K), size=K) + 2 * np.eye(K)
    cpds = {"h1": TableCPD(rng.dirichlet(np.ones(K) * 3)[None, :]),
            "trans": TableCPD(trans / trans.sum(axis=1, keepdims=True))}
    cpds["emit"] = (LinearCPD(np.linspace(-2, 2, K)[:, None], np.zeros((K, 1, 0)), np.full((K, 1, 1), 0.6))
                    if gaussian else TableCPD(rng.dirichlet(np.ones(M), size=K)))
    return FittedModel(spec, build(spec), cpds)


def sbn(H: int, V: int, seed: int = 0) -> FittedModel:
    nodes: dict = {f"h{i}": {"states": 2, "latent": True} for i in range(H)}
    for j in range(V):
        nodes[f"v{j}"] = {"states": 2, "parents": [f"h{i}" for i in range(H)], "cpd": "logistic"}
    spec = parse_spec({"name": f"sbn{H}x{V}", "nodes": nodes})
    rng = np.random.default_rng(seed)
    cpds: dict = {f"h{i}": TableCPD(rng.dirichlet([3, 3])[None, :]) for i in range(H)}
    for j in range(V):
        cpds[f"v{j}"] = LogisticCPD(np.array([0.0, rng.normal()]), np.vstack([np.zeros(H), rng.normal(0, 1.5, H)]))
    return FittedModel(spec, build(spec), cpds)


def observed(model: FittedModel, n: int, seed: int = 1):
    df = model.sample(n, seed=seed)
    return df.drop(columns=[c for c in df.columns if model.graph[c].latent])


def per_iteration(model: FittedModel, df, iters: int) -> dict:
    """Median wall and CPU seconds between successive EM callbacks (warm: one untimed fit first)."""
    wall: list[float] = []
    cpu: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgm.fit(model.spec, df, init=model.cpds, max_iter=1, tol=0, **PLAIN)
        pgm.fit(model.spec, df, init=model.cpds, max_iter=1 + iters, tol=0, **PLAIN,
                callback=lambda it, ll: (wall.append(time.perf_counter()), cpu.append(time.process_time())))
    return {"wall": float(np.median(np.diff(wall))), "cpu": float(np.median(np.diff(cpu)))}


def peak_iteration(model: FittedModel, df) -> float:
    """Peak MB allocated (tracemalloc) by a fit of two iterations minus the data's own footprint."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        pgm.fit(model.spec, df, init=model.cpds, max_iter=2, tol=0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20


def hmmlearn_iteration(model: FittedModel, df, T: int, iters: int) -> dict | None:
    """hmmlearn's GaussianHMM on the same sequences from the same (true) parameters: CPU and wall seconds
    per EM iteration, from fits of 1 and 1 + iters iterations (None when hmmlearn is not installed)."""
    try:
        from hmmlearn.hmm import GaussianHMM
    except ImportError:
        return None
    x = np.concatenate([df[f"x{t}"].to_numpy()[:, None] for t in range(1, T + 1)], axis=1).reshape(-1, 1)
    lengths = [T] * len(df)
    emit = model.cpds["emit"]

    def fit(n_iter: int) -> tuple[float, float]:
        m = GaussianHMM(n_components=3, covariance_type="full", n_iter=n_iter, tol=-np.inf, init_params="",
                        params="stmc", implementation="scaling")
        m.startprob_ = model.cpds["h1"].probs[0]
        m.transmat_ = model.cpds["trans"].probs
        m.means_, m.covars_ = emit.intercept, emit.cov
        w, c = time.perf_counter(), time.process_time()
        m.fit(x, lengths)
        return time.perf_counter() - w, time.process_time() - c

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(1)
        (w1, c1), (wk, ck) = fit(1), fit(1 + iters)
    return {"wall": (wk - w1) / iters, "cpu": (ck - c1) / iters}


def run_cases(lengths: list[int], iters: int, sbn_rows: int) -> dict:
    out: dict = {"hmm": {}, "ghmm": {}, "hmmlearn": {}, "sbn": None}
    for T in lengths:
        for key, gaussian in (("hmm", False), ("ghmm", True)):
            model = hmm(T, gaussian)
            df = observed(model, 300)
            try:
                out[key][T] = per_iteration(model, df, iters)
            except pgm.PGMError as exc:
                out[key][T] = {"refused": str(exc).split(";")[0][:60]}
            print(f"  {key} T={T}: {out[key][T]}", file=sys.stderr, flush=True)
            if gaussian:
                out["hmmlearn"][T] = hmmlearn_iteration(model, df, T, iters)
    if sbn_rows:
        model = sbn(10, 30)
        df = observed(model, sbn_rows)
        res = per_iteration(model, df, 2)
        res["peak_mb"] = peak_iteration(model, df)
        res["rows"] = sbn_rows
        out["sbn"] = res
        print(f"  sbn: {res}", file=sys.stderr, flush=True)
    return out


def fmt(cell) -> str:
    if cell is None:
        return "-"
    if "refused" in cell:
        return "refused"
    return f"{cell['wall'] * 1e3:8.1f} {cell['cpu'] * 1e3:8.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="PYTHONPATH of the pgm to compare with (runs in a subprocess)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--sbn-rows", type=int, default=1000)
    ap.add_argument("--sbn-before-rows", type=int, default=100,
                    help="rows for the old code's SBN (about 200 s and 6.5 GB per iteration at 1,000)")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    lengths = [int(t) for t in args.lengths.split(",")]
    if args.json:
        print(json.dumps(run_cases(lengths, args.iters, args.sbn_rows)))
        return
    before = None
    if args.before:
        env = dict(os.environ, PYTHONPATH=args.before)
        cmd = [sys.executable, __file__, "--json", "--iters", str(args.iters), "--lengths", args.lengths,
               "--sbn-rows", str(args.sbn_before_rows)]
        print(f"before: {args.before}", file=sys.stderr)
        before = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    print("after: this checkout", file=sys.stderr)
    after = run_cases(lengths, args.iters, args.sbn_rows)
    print(f"\nTime per EM iteration, ms (wall, CPU); 300 sequences, 3 hidden states; pgm {pgm.__file__}")
    head = f"{'T':>4} | {'discrete HMM after':>17} | {'gaussian HMM after':>17} | {'hmmlearn gaussian':>17} | CPU ratio"
    if before:
        head += f" | {'discrete before':>17} | {'gaussian before':>17}"
    print(head)
    for T in lengths:
        ours, theirs = after["ghmm"].get(T), after["hmmlearn"].get(T)
        ratio = f"{ours['cpu'] / theirs['cpu']:8.2f}x" if theirs and ours and "cpu" in ours else f"{'-':>9}"
        row = (f"{T:>4} | {fmt(after['hmm'].get(T)):>17} | {fmt(ours):>17} | {fmt(theirs):>17} | {ratio}")
        if before:
            row += f" | {fmt(before['hmm'].get(str(T))):>17} | {fmt(before['ghmm'].get(str(T))):>17}"
        print(row)
    for label, res in (("after", after["sbn"]), ("before", before["sbn"] if before else None)):
        if res:
            print(f"SBN 10x30, {res['rows']} rows, {label}: {res['wall']:.3f} s wall, {res['cpu']:.3f} s CPU "
                  f"per iteration, peak {res['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
