"""pgm against an older pgm, side by side: the MLE and EM cases of bench_mle.py and bench_em.py
(pgm only), each version in its own subprocess, alternating, printing after/before ratios.

    python bench/bench_versions.py --before /path/to/old/checkout [--after .] [--rounds 3]

``--before`` / ``--after`` are checkouts (directories holding ``pgm/``), e.g. a ``git worktree`` of
an older commit.  Each case is timed ``--repeat`` times per subprocess and the fastest of every
round is kept; BLAS runs single-threaded so that the two versions compete for the same core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = ("mle_discrete", "mle_gauss", "em_gmm", "em_lcm", "em_alarm")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_case(case: str, repeat: int) -> dict[str, float]:
    """Time one case with the pgm on sys.path (run in a subprocess)."""
    import numpy as np  # noqa: F401
    import pandas as pd

    import pgm
    from pgm.encode import encode
    from pgm.graph import build
    from pgm.schema import parse_spec

    sys.path.insert(0, str(HERE))
    from bench_em import gmm_data, lcm_data, lcm_model, with_missing
    from bench_mle import ALARM, ECOLI, structure, true_model

    warnings.simplefilter("ignore")
    out = {}
    if case == "mle_discrete":
        data, truth = true_model(ALARM)
        spec = structure(data)
        cat = truth.sample(300_000, seed=0)
        out["alarm 300k categorical, pgm.fit"] = best(lambda: pgm.fit(spec, cat), repeat)
        enc = encode(build(spec), cat)
        out["alarm 300k pre-encoded, pgm.fit"] = best(lambda: pgm.fit(spec, enc), repeat)
    elif case == "mle_gauss":
        data, truth = true_model(ECOLI)
        spec = structure(data)
        frame = truth.sample(300_000, seed=0)
        out["ecoli70 300k, pgm.fit"] = best(lambda: pgm.fit(spec, frame), repeat)
    elif case == "em_gmm":
        n, d, k = 100_000, 8, 8
        spec = parse_spec({"name": "gmm-bench", "graph": "directed", "nodes": {
            "z": {"states": k, "latent": True},
            "x": {"type": "gaussian", "dim": d, "parents": ["z"], "covariance": "full"}}})
        frame = pd.DataFrame(gmm_data(n, d, k), columns=[f"x[{j}]" for j in range(d)])
        start = pgm.fit(spec, frame, max_iter=1, seed=0)
        out["gmm 100k d=8 K=8, 10 EM updates"] = best(
            lambda: pgm.fit(spec, frame, init=start, max_iter=10, tol=0.0), repeat)
    elif case == "em_lcm":
        pi, theta = lcm_model()
        m, k, s = theta.shape
        codes = lcm_data(100_000, pi, theta)
        nodes = {"z": {"states": k, "latent": True}}
        nodes.update({f"x{j}": {"states": s, "parents": ["z"]} for j in range(m)})
        spec = parse_spec({"name": "lcm", "graph": "directed", "nodes": nodes})
        frame = pd.DataFrame({f"x{j}": codes[:, j] for j in range(m)})
        out["lcm 100k, 20 EM updates"] = best(lambda: pgm.fit(spec, frame, max_iter=20, tol=0.0, seed=0), repeat)
    elif case == "em_alarm":
        data, truth = true_model(ALARM)
        spec = structure(data)
        frame = with_missing(truth.sample(10_000, seed=1), 0.10, seed=2)
        out["alarm 10k, 10% missing, 10 EM updates"] = best(
            lambda: pgm.fit(spec, frame, max_iter=10, tol=0.0), repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout of the older pgm")
    ap.add_argument("--after", type=Path, default=HERE.parent, help="checkout of the newer pgm (default: this one)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the fastest is kept")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per subprocess")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import pgm
        if not Path(pgm.__file__).resolve().is_relative_to(args.before.resolve()):
            sys.exit(f"imported {pgm.__file__}, not the pgm in {args.before}")
        print(json.dumps(run_case(args.worker, args.repeat)))
        return
    versions = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: dict[str, dict[str, list[float]]] = {}
    for case in args.cases.split(","):
        for r in range(args.rounds):
            order = list(versions.items()) if r % 2 == 0 else list(reversed(versions.items()))
            for tag, root in order:
                env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                           MKL_NUM_THREADS="1")
                run = subprocess.run([sys.executable, __file__, "--before", str(root), "--worker", case,
                                      "--repeat", str(args.repeat)], env=env, capture_output=True, text=True,
                                     cwd="/")
                if run.returncode:
                    sys.exit(f"{tag} ({root}) failed on {case}:\n{run.stderr[-2000:]}")
                for name, t in json.loads(run.stdout.strip().splitlines()[-1]).items():
                    times.setdefault(name, {}).setdefault(tag, []).append(t)
    print(f"before: {versions['before']}\nafter:  {versions['after']}")
    print(f"{'case':42s} {'before s':>9s} {'after s':>9s} {'after/before':>12s}")
    for name, by in times.items():
        b, a = min(by["before"]), min(by["after"])
        print(f"{name:42s} {b:9.3f} {a:9.3f} {a / b:12.3f}")


if __name__ == "__main__":
    main()
