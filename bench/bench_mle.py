"""Complete-data maximum likelihood, side by side: a numpy floor, pgm, pyAgrum, pgmpy.

Cases (issue 3, "Speed and memory"):

a. alarm (37 discrete nodes) with N rows sampled from the true network, integer-coded and
   categorical frames: the numpy floor (one ``np.bincount`` per node over the mixed-radix
   index of node and parents, from precomputed integer codes), ``pgm.fit``, pyAgrum's counting
   (``BNLearner.fitParameters`` on a learner whose database is already loaded), pgmpy's
   ``DiscreteMLE``.  Every tool's CPTs are compared with the floor's.
b. the same rows as strings, end to end (reading and encoding included): from a DataFrame and
   from a CSV file.
c. ecoli70 (46 linear-Gaussian nodes) with N rows: the Gram floor (one ``[1, X]' [1, X]``),
   per-node ``np.linalg.lstsq``, ``pgm.fit``, pgmpy's ``LinearGaussianBayesianNetwork.fit``;
   coefficients compared with per-node least squares.
d. pgm's peak memory (tracemalloc: Python and numpy allocations) relative to the encoded data.

Run:  python bench/bench_mle.py [--rows 1000000] [--repeat 3] [--skip pyagrum,pgmpy]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (MB, Table, best_of, header, measure, nbytes, normalise, optional,  # noqa: E402
                    pgm_tables, pgmpy_tables, pyagrum_bn, pyagrum_tables, timed, timed_rss, traced_peak,
                    wait_for_quiet)

import pgm  # noqa: E402
from pgm.convert import read_any  # noqa: E402
from pgm.encode import encode  # noqa: E402
from pgm.fitted import FittedModel  # noqa: E402
from pgm.graph import build  # noqa: E402
from pgm.schema import parse_spec  # noqa: E402

DATA = Path(os.environ.get("PGM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ALARM = DATA / "alarm.bif"
ECOLI = DATA / "ecoli70.json"


def quiet(fn):
    """Run fn with pgm's and the reference tools' warnings silenced (unseen configurations, deprecations)."""
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    return run


# --------------------------------------------------------------------------- models
def true_model(path: Path) -> tuple[dict, FittedModel]:
    data = read_any(path)
    return data, FittedModel.from_spec(parse_spec(data, str(path)))


def structure(data: dict, counts: bool = False) -> pgm.schema.ModelSpec:
    """The declaration without parameters; ``counts=True`` replaces named states by state counts."""
    nodes = {}
    for name, node in data["nodes"].items():
        node = dict(node)
        if counts and isinstance(node.get("states"), list):
            node["states"] = len(node["states"])
        nodes[name] = node
    return parse_spec({"name": data.get("name", "model"), "graph": "directed", "nodes": nodes})


# --------------------------------------------------------------------------- floors
def mixed_radix(codes: dict[str, np.ndarray], cards: dict[str, int], node: str, parents: list[str]) -> np.ndarray:
    idx = np.zeros(len(codes[node]), dtype=np.intp)
    for p in parents:
        idx *= cards[p]
        idx += codes[p]
    idx *= cards[node]
    idx += codes[node]
    return idx


def floor_counts(codes, cards, parents) -> dict[str, np.ndarray]:
    """One bincount per node over the mixed-radix index of (parents, node): counts (n_configs, k)."""
    out = {}
    for node, pa in parents.items():
        n_cfg = int(np.prod([cards[p] for p in pa])) if pa else 1
        idx = mixed_radix(codes, cards, node, pa)
        out[node] = np.bincount(idx, minlength=n_cfg * cards[node]).reshape(n_cfg, cards[node])
    return out


def max_diff(tables: dict[str, np.ndarray], ref: dict[str, np.ndarray], seen: dict[str, np.ndarray]) -> float:
    """Largest |difference| over the parent configurations seen in the data."""
    worst = 0.0
    for node, arr in ref.items():
        a = np.nan_to_num(tables[node][seen[node]], nan=np.inf)
        worst = max(worst, float(np.max(np.abs(a - arr[seen[node]]))))
    return worst



def memory_row(table: Table, name: str, fn, enc) -> None:
    """A row of traced peak allocation during ``fn()`` relative to the encoded data's size."""
    peak, _ = traced_peak(fn)
    size = nbytes(enc)
    table.add(name, None, None, "", **{"traced peak MB": f"{peak / MB:.0f}", "encoded MB": f"{size / MB:.0f}",
                                       "peak / encoded": f"{peak / size:.2f}x"})


TINY = 1e-12


def pyagrum_prior(gum, learner, bn) -> str:
    """pyAgrum refuses a parent configuration absent from the data unless a prior is set:
    then a smoothing prior of 1e-12 pseudo-counts (a negligible change of the CPTs) is used."""
    try:
        learner.fitParameters(bn)
        return ""
    except gum.DatabaseError:
        learner.useSmoothingPrior(TINY)
        learner.fitParameters(bn)
        return f", smoothing prior {TINY:g} (unseen configurations)"


# --------------------------------------------------------------------------- cases
def case_discrete(args, skip, report) -> None:
    n = args.rows
    data, truth = true_model(ALARM)
    spec = structure(data)
    spec_int = structure(data, counts=True)
    order = list(data["nodes"])
    parents = {v: list(data["nodes"][v].get("parents", [])) for v in order}
    print(f"sampling {n:,} rows from alarm ...", flush=True)
    t, cat = timed(lambda: truth.sample(n, seed=0))
    print(f"  sampled in {t:.1f} s", flush=True)
    labels = {v: [str(x) for x in cat[v].cat.categories] for v in order}
    cards = {v: len(labels[v]) for v in order}
    codes = {v: cat[v].cat.codes.to_numpy().astype(np.intp) for v in order}   # precomputed integer arrays
    ints = pd.DataFrame({v: codes[v].astype(np.int64) for v in order})
    int_labels = {v: [str(i) for i in range(cards[v])] for v in order}

    floor = floor_counts(codes, cards, parents)
    seen = {v: c.sum(axis=1) > 0 for v, c in floor.items()}
    ref = {v: normalise(c) for v, c in floor.items()}
    n_unseen = sum(int((~s).sum()) for s in seen.values())
    print(f"  {n_unseen} parent configurations of alarm never occur in these rows (compared where seen)")

    # ---------------- (a) integer-coded and categorical frames
    ta = Table(f"(a) alarm, {n:,} rows, integer-coded / categorical frame: counting", floor="numpy floor")
    measure(ta, "numpy floor", lambda: floor_counts(codes, cards, parents), args.repeat,
            "mixed-radix index + np.bincount per node, from intp code arrays")
    idx = {v: mixed_radix(codes, cards, v, parents[v]) for v in order}
    s, _ = best_of(lambda: [np.bincount(idx[v], minlength=floor[v].size) for v in order], args.repeat)
    ta.add("numpy bincount only", s, None, "indices precomputed too (a lower bound)")
    del idx

    fit_int = quiet(lambda: pgm.fit(spec_int, ints))
    fit_cat = quiet(lambda: pgm.fit(spec, cat))
    row, f_int = measure(ta, "pgm.fit, integer frame", fit_int, args.repeat)
    row.note = f"max CPT diff vs floor {max_diff(pgm_tables(f_int, order), ref, seen):.1e}"
    row, f_cat = measure(ta, "pgm.fit, categorical frame", fit_cat, args.repeat)
    row.note = f"max CPT diff vs floor {max_diff(pgm_tables(f_cat, order), ref, seen):.1e}"
    graph, graph_int = build(spec), build(spec_int)
    enc_cat = encode(graph, cat)
    enc_int = encode(graph_int, ints)
    s, _ = best_of(lambda: encode(graph, cat), args.repeat)
    ta.add("  of which pgm encode (categorical)", s, None, "pgm.encode.encode alone")
    s, _ = best_of(quiet(lambda: pgm.fit(spec, enc_cat)), args.repeat)
    ta.add("  pgm.fit on pre-encoded data", s, None, "counting + M-step, encoding excluded")

    gum = None if "pyagrum" in skip else optional("pyagrum")
    if gum is not None:
        bn_int = pyagrum_bn(gum, parents, int_labels, order)
        t, learner = timed(lambda: gum.BNLearner(ints, bn_int))
        print(f"  (pyAgrum database from the integer frame loaded in {t:.1f} s, untimed)")
        prior = pyagrum_prior(gum, learner, bn_int)
        row, _ = measure(ta, "pyAgrum fitParameters", lambda: learner.fitParameters(bn_int), args.repeat, trace=False)
        d = max_diff(pyagrum_tables(bn_int, parents, int_labels), ref, seen)
        row.note = (f"counting only, database preloaded, {learner.getNumberOfThreads()} threads{prior}; "
                    f"max CPT diff vs floor {d:.1e}")
        del learner

    pgmpy_ok = "pgmpy" not in skip and optional("pgmpy") is not None
    if pgmpy_ok:
        from pgmpy.models import DiscreteBayesianNetwork
        from pgmpy.parameter_estimator import DiscreteMLE
        edges = [(p, v) for v in order for p in parents[v]]

        def pgmpy_fit(frame, state_names):
            def run():
                model = DiscreteBayesianNetwork(edges)
                model.add_nodes_from(order)
                return model.fit(frame, estimator=DiscreteMLE(state_names=state_names))
            return quiet(run)
        sn_int = {v: list(range(cards[v])) for v in order}
        row, m = measure(ta, "pgmpy DiscreteMLE, integer frame", pgmpy_fit(ints, sn_int), args.repeat)
        row.note = f"max CPT diff vs floor {max_diff(pgmpy_tables(m, parents, int_labels), ref, seen):.1e}"
        row, m = measure(ta, "pgmpy DiscreteMLE, categorical frame", pgmpy_fit(cat, labels), args.repeat)
        row.note = f"max CPT diff vs floor {max_diff(pgmpy_tables(m, parents, labels), ref, seen):.1e}"
    ta.print()
    report.append(ta)

    # ---------------- (b) string labels, end to end
    strings = pd.DataFrame({v: np.asarray(labels[v], dtype=object)[codes[v]] for v in order}).astype(str)
    tb = Table(f"(b) alarm, {n:,} rows of string labels, end to end (encoding included)", floor="pgm.fit")
    fit_str = quiet(lambda: pgm.fit(spec, strings))
    row, f_str = measure(tb, "pgm.fit", fit_str, args.repeat)
    d = max_diff(pgm_tables(f_str, order), ref, seen)
    row.note = f"DataFrame of {strings[order[0]].dtype} columns; max CPT diff vs floor {d:.1e}"
    tmp = Path(tempfile.mkdtemp(prefix="pgm-bench-"))
    csv = tmp / "alarm.csv"
    t, _ = timed(lambda: strings.to_csv(csv, index=False))
    print(f"  (CSV of {csv.stat().st_size / MB:.0f} MB written in {t:.1f} s, untimed)")
    s, _ = best_of(quiet(lambda: pgm.fit(spec, csv)), args.repeat)
    tb.add("pgm.fit from CSV", s, None, "read (pyarrow engine) + encode + count")
    pq = tmp / "alarm.parquet"
    strings.to_parquet(pq)
    s, _ = best_of(quiet(lambda: pgm.fit(spec, pq)), args.repeat)
    tb.add("pgm.fit from Parquet", s, None, "read + encode + count")
    if gum is not None:
        bn = gum.loadBN(str(ALARM))

        def agrum_frame():
            learner = gum.BNLearner(strings, bn)
            if prior:
                learner.useSmoothingPrior(TINY)
            learner.fitParameters(bn)
            return learner
        s, mem, _ = timed_rss(agrum_frame)
        d = max_diff(pyagrum_tables(bn, parents, labels), ref, seen)
        tb.add("pyAgrum from DataFrame", s, mem,
               f"BNLearner(df) writes a CSV and parses it; max CPT diff vs floor {d:.1e}")

        def agrum_csv():
            learner = gum.BNLearner(str(csv), bn)
            if prior:
                learner.useSmoothingPrior(TINY)
            learner.fitParameters(bn)
            return learner
        s, _ = timed(agrum_csv)
        tb.add("pyAgrum from CSV", s, None, "BNLearner(path) + fitParameters")
    if pgmpy_ok:
        s, mem, m = timed_rss(pgmpy_fit(strings, labels))
        d = max_diff(pgmpy_tables(m, parents, labels), ref, seen)
        tb.add("pgmpy from DataFrame", s, mem, f"max CPT diff vs floor {d:.1e}")
        s, _ = timed(lambda: pgmpy_fit(pd.read_csv(csv, engine="pyarrow", dtype=str), labels)())
        tb.add("pgmpy from CSV", s, None, "pd.read_csv(engine='pyarrow', dtype=str) + fit")
    tb.print()
    report.append(tb)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()

    # ---------------- (d) memory of the discrete fits
    td = Table(f"(d) pgm peak memory, alarm {n:,} rows (tracemalloc: Python + numpy allocations)")
    for name, fn, enc in (("integer frame", fit_int, enc_int), ("categorical frame", fit_cat, enc_cat),
                          ("string frame", fit_str, enc_cat),
                          ("pre-encoded", quiet(lambda: pgm.fit(spec, enc_cat)), enc_cat)):
        memory_row(td, f"pgm.fit, {name}", fn, enc)
    td.print()
    report.append(td)


def case_gaussian(args, skip, report) -> None:
    n = args.gauss_rows or args.rows
    data, truth = true_model(ECOLI)
    spec = structure(data)
    order = list(data["nodes"])
    parents = {v: list(data["nodes"][v].get("parents", [])) for v in order}
    print(f"sampling {n:,} rows from ecoli70 ...", flush=True)
    t, frame = timed(lambda: truth.sample(n, seed=0))
    print(f"  sampled in {t:.1f} s", flush=True)
    cols = {v: np.ascontiguousarray(frame[v].to_numpy(dtype=np.float64)) for v in order}
    ones = np.ones(n)
    design = np.column_stack([ones] + [cols[v] for v in order])   # [1, X], precomputed

    tc = Table(f"(c) ecoli70, {n:,} rows, linear-Gaussian", floor="Gram floor")
    measure(tc, "Gram floor", lambda: design.T @ design, args.repeat,
            "one [1, X]'[1, X] over all 47 columns (precomputed array)")

    def lstsq_all():
        out = {}
        for v in order:
            x = np.column_stack([ones] + [cols[p] for p in parents[v]])
            beta, rss, *_ = np.linalg.lstsq(x, cols[v], rcond=None)
            resid = cols[v] - x @ beta
            out[v] = (beta, float(resid @ resid) / n)
        return out
    _, ls = measure(tc, "numpy lstsq per node", lstsq_all, args.repeat, "np.linalg.lstsq on [1, parents] for each node")

    fit = quiet(lambda: pgm.fit(spec, frame))
    row, f = measure(tc, "pgm.fit", fit, args.repeat)
    coef_diff = var_diff = 0.0
    for v in order:
        cpd = f.cpd(v).iloc[0]
        beta = np.array([cpd["intercept"]] + [cpd[p] for p in parents[v]])
        coef_diff = max(coef_diff, float(np.max(np.abs(beta - ls[v][0]))))
        var_diff = max(var_diff, abs(float(cpd[f"cov[{v}]"]) - ls[v][1]) / ls[v][1])
    row.note = f"vs lstsq: max |coef diff| {coef_diff:.1e}, max rel variance diff {var_diff:.1e}"
    graph = build(spec)
    enc = encode(graph, frame)
    s, _ = best_of(quiet(lambda: pgm.fit(spec, enc)), args.repeat)
    tc.add("  pgm.fit on pre-encoded data", s, None, "statistics + solves, encoding excluded")

    if "pgmpy" not in skip and optional("pgmpy") is not None:
        from pgmpy.models import LinearGaussianBayesianNetwork

        def pgmpy_fit():
            model = LinearGaussianBayesianNetwork([(p, v) for v in order for p in parents[v]])
            model.add_nodes_from(order)
            return model.fit(frame)
        row, m = measure(tc, "pgmpy LinearGaussianBayesianNetwork.fit", quiet(pgmpy_fit), args.repeat)
        pdiff = 0.0
        for v in order:
            cpd = m.get_cpds(v)
            ev = list(cpd.evidence)
            beta = np.asarray(cpd.beta, dtype=float)
            mine = np.concatenate([[beta[0]], [beta[1 + ev.index(p)] for p in parents[v]]])
            pdiff = max(pdiff, float(np.max(np.abs(mine - ls[v][0]))))
        row.note = f"vs lstsq: max |coef diff| {pdiff:.1e}"
    tc.print()
    report.append(tc)

    td = Table(f"(d) pgm peak memory, ecoli70 {n:,} rows (tracemalloc: Python + numpy allocations)")
    memory_row(td, "pgm.fit, float frame", fit, enc)
    memory_row(td, "pgm.fit, pre-encoded", quiet(lambda: pgm.fit(spec, enc)), enc)
    td.print()
    report.append(td)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of alarm (and ecoli70) data")
    ap.add_argument("--gauss-rows", type=int, default=None, help="rows of ecoli70 data (default: --rows)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the best is reported")
    ap.add_argument("--skip", default="", help="comma-separated: pyagrum, pgmpy, discrete, gaussian")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    ap.add_argument("--quiet-load", type=float, default=None,
                    help="wait (up to --quiet-wait s) until the 1-minute load average is below this")
    ap.add_argument("--quiet-wait", type=float, default=600.0)
    args = ap.parse_args(argv)
    skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    header("pgm benchmark: complete-data maximum likelihood", ("pgm-learn", "numpy", "pandas", "pyarrow", "pyagrum",
                                                               "pgmpy", "torch", "psutil"))
    report: list[Table] = []
    t0 = time.perf_counter()
    if "discrete" not in skip:
        case_discrete(args, skip, report)
    if "gaussian" not in skip:
        case_gaussian(args, skip, report)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.markdown:
        args.markdown.write_text("\n\n".join(t.markdown() for t in report) + "\n")


if __name__ == "__main__":
    main()
