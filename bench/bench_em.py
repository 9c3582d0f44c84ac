"""EM, side by side, per iteration: pgm, scikit-learn, pomegranate, pyAgrum, pgmpy, plain numpy.

Cases (issue 4, "Speed"):

a. Gaussian mixture, N rows (default 1M), d = 8, K = 8, full covariance: scikit-learn's
   GaussianMixture (its own ``_e_step`` + ``_m_step``, and ``fit`` with max_iter 11 minus 1),
   pgm (``pgm.fit`` with max_iter 11 minus max_iter 1), pomegranate (float64), and a
   straightforward numpy EM.  All start from the same parameters; the log-likelihood traces
   are compared (relative difference).
b. latent class model (a hidden node with 3 states, 8 ternary children), 100k rows: pgm,
   pgmpy's DiscreteEM (one and two iterations), pomegranate, pyAgrum (in a subprocess with a
   time limit), plain numpy over all rows and over the distinct rows weighted by their counts.
c. alarm with 10% of cells missing at random, 10k rows: pgm's EM to convergence, pyAgrum's EM
   (every row), pgmpy's MLE on the complete rows; mean absolute error of the CPTs against the
   true alarm CPTs; then pgm alone on 1M rows.
d. plain EM against ``accelerate=True`` (SQUAREM, pgm.learn.accelerate) from the same starts, to
   convergence: a Gaussian mixture (well separated, and overlapping), the latent class model, alarm
   with missing cells; CPU time to the lower of the two final log-likelihoods.

Run:  python bench/bench_em.py [--rows 1000000] [--lcm-rows 100000] [--alarm-rows 10000]
      [--alarm-big 1000000] [--skip pyagrum,pgmpy,pomegranate]
Benchmarks are not tests: nothing here fails on a slow result.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Table, best_of, header, optional, pgm_tables, pgmpy_tables, pyagrum_bn,  # noqa: E402
                    pyagrum_tables, timed, wait_for_quiet)

import pgm  # noqa: E402
from pgm.schema import parse_spec  # noqa: E402

from bench_mle import ALARM, structure, true_model  # noqa: E402

LOG_2PI = np.log(2 * np.pi)


def quiet(fn):
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    return run


def per_iteration(fit_k, k: int = 10, repeat: int = 1) -> tuple[float, float, float, object]:
    """(seconds per iteration, t(1), t(1 + k), last result) from runs of 1 and 1 + k iterations:
    the difference excludes setup and the final bookkeeping.  One untimed warm-up run first
    (lazy imports, caches)."""
    fit_k(1)
    t1, _ = best_of(lambda: fit_k(1), repeat)
    tk, res = best_of(lambda: fit_k(1 + k), repeat)
    return (tk - t1) / k, t1, tk, res


def pgm_iterations(fit, iters: int):
    """pgm's own iteration times: the intervals between successive ``callback`` calls (each one
    M-step and one E-step).  Returns (min, median, fitted, (t1, tk)) where t1, tk are the wall times
    of runs with 1 and 1 + iters iterations (setup shows in t1)."""
    stamps: list[float] = []
    fit(1)
    t1, _ = timed(lambda: fit(1))
    t0 = time.perf_counter()
    fitted = fit(1 + iters, callback=lambda it, ll: stamps.append(time.perf_counter()))
    tk = time.perf_counter() - t0
    gaps = np.diff(stamps)
    return float(gaps.min()), float(np.median(gaps)), fitted, (t1, tk)


def pomegranate_iterations(model, x, iters: int) -> tuple[float, float, object]:
    """pomegranate's own iteration (``summarize`` = E-step and statistics, ``from_summaries`` =
    M-step, as its ``fit`` loop does), timed one by one: (fastest, median, model)."""
    times = []
    for _ in range(iters + 1):
        t0 = time.perf_counter()
        model.summarize(x)
        model.from_summaries()
        times.append(time.perf_counter() - t0)
    model._reset_cache()
    return float(np.min(times)), float(np.median(times)), model


def rel_trace_diff(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    m = min(len(a), len(b))
    return float(np.max(np.abs(a[:m] - b[:m]) / np.abs(b[:m])))


# =========================================================================== (a) Gaussian mixture
def gmm_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 4, (k, d))
    covs = []
    for _ in range(k):
        a = rng.normal(0, 1, (d, d))
        covs.append(a @ a.T / d + 0.3 * np.eye(d))
    z = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 5.0)))
    chol = np.linalg.cholesky(np.array(covs))
    x = means[z] + np.einsum("nij,nj->ni", chol[z], rng.standard_normal((n, d)))
    return np.ascontiguousarray(x)


def numpy_em_step(x, w, mu, cov, reg):
    """One textbook EM iteration (E-step per component, then weighted moments): returns LL and new params."""
    n, d = x.shape
    k = len(w)
    logp = np.empty((n, k))
    for c in range(k):
        chol = np.linalg.cholesky(cov[c])
        sol = linalg.solve_triangular(chol, (x - mu[c]).T, lower=True)
        logp[:, c] = np.log(w[c]) - 0.5 * (d * LOG_2PI + 2 * np.log(np.diag(chol)).sum() + (sol * sol).sum(axis=0))
    lse = logsumexp(logp, axis=1)
    resp = np.exp(logp - lse[:, None])
    nk = resp.sum(axis=0)
    mu = (resp.T @ x) / nk[:, None]
    cov = np.empty((k, d, d))
    for c in range(k):
        diff = x - mu[c]
        cov[c] = (resp[:, c:c + 1] * diff).T @ diff / nk[c] + reg * np.eye(d)
    return float(lse.sum()), nk / n, mu, cov


def case_gmm(args, skip, report) -> None:
    n, d, k = args.rows, 8, 8
    iters = args.iters
    print(f"(a) Gaussian mixture: {n:,} rows, d={d}, K={k}, full covariance", flush=True)
    x = gmm_data(n, d, k)
    spec = parse_spec({"name": "gmm-bench", "graph": "directed", "nodes": {
        "z": {"states": k, "latent": True},
        "x": {"type": "gaussian", "dim": d, "parents": ["z"], "covariance": "full"}}})
    frame = pd.DataFrame(x, columns=[f"x[{j}]" for j in range(d)])
    reg = 1e-6
    # common starting point: pgm's k-means++ initialisation followed by one EM step
    t, start = timed(quiet(lambda: pgm.fit(spec, frame, max_iter=1, seed=0)))
    print(f"  common start from pgm (k-means++ + 1 iteration) in {t:.1f} s")
    w0 = start.cpds["z"].probs[0].copy()
    mu0 = start.cpds["x"].intercept.copy()
    cov0 = start.cpds["x"].cov.copy()

    ta = Table(f"(a) Gaussian mixture, N={n:,}, d={d}, K={k}, full covariance: seconds per EM iteration",
               floor="scikit-learn GaussianMixture", unit="s/iter")
    traces: dict[str, list[float]] = {}
    rows = {}

    sk = None if "sklearn" in skip else optional("sklearn")
    if sk is not None:
        from sklearn.mixture import GaussianMixture
        from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

        def sk_model(max_iter):
            return GaussianMixture(k, covariance_type="full", reg_covar=reg, max_iter=max_iter, tol=0.0,
                                   weights_init=w0, means_init=mu0, precisions_init=np.linalg.inv(cov0),
                                   init_params="random_from_data", random_state=0)
        gm = sk_model(1)
        gm.weights_, gm.means_, gm.covariances_ = w0.copy(), mu0.copy(), cov0.copy()
        gm.precisions_cholesky_ = _compute_precision_cholesky(cov0, "full")
        trace, times = [], []
        for _ in range(iters + 1):
            t0 = time.perf_counter()
            ll, log_resp = gm._e_step(x)
            gm._m_step(x, log_resp)
            times.append(time.perf_counter() - t0)
            trace.append(ll * n)
        traces["scikit-learn"] = trace
        rows["scikit-learn"] = ta.add("scikit-learn GaussianMixture", float(np.min(times)), None,
                                      f"_e_step + _m_step, fastest of {len(times)} iterations "
                                      f"(median {np.median(times):.3f} s)")
        s, t1, tk, _ = per_iteration(quiet(lambda m: sk_model(m).fit(x)), iters)
        ta.add("scikit-learn fit (max_iter 11 - 1)", s, None,
               f"fit(max_iter=1) {t1:.2f} s, fit(max_iter={iters + 1}) {tk:.2f} s")

    best, med, fitted, (t1, tk) = pgm_iterations(
        quiet(lambda m, **kw: pgm.fit(spec, frame, init=start, max_iter=m, tol=0.0, accelerate=False, **kw)),
        iters)  # plain EM updates: the per-iteration time and trace of the other tools
    traces["pgm"] = list(fitted.history)
    rows["pgm"] = ta.add("pgm", best, None, f"fastest of {iters} iterations (median {med:.3f} s; between callbacks); "
                         f"pgm.fit(max_iter=1) {t1:.2f} s, max_iter={iters + 1} {tk:.2f} s")
    pgm_mu = fitted.cpds["x"].intercept

    def numpy_em():
        w, mu, cov = w0.copy(), mu0.copy(), cov0.copy()
        trace, times, means = [], [], [mu]
        for _ in range(iters + 1):
            t0 = time.perf_counter()
            ll, w, mu, cov = numpy_em_step(x, w, mu, cov, reg)
            times.append(time.perf_counter() - t0)
            trace.append(ll)
            means.append(mu)
        return trace, times, means
    trace, times, np_means = numpy_em()
    traces["numpy"] = trace
    rows["numpy"] = ta.add("numpy EM (straightforward)", float(np.min(times)), None,
                           f"per-component loops, fastest of {len(times)} iterations (median {np.median(times):.3f} s)")
    # pgm.fit(max_iter=m) returns the parameters whose log-likelihood is its last history entry
    j = len(fitted.history) - 1
    rows["pgm"].note += f"; means vs numpy EM after {j} iterations {np.max(np.abs(pgm_mu - np_means[j])):.1e}"

    pom = None if "pomegranate" in skip else optional("pomegranate")
    if pom is not None:
        import torch
        from pomegranate.distributions import Normal
        from pomegranate.gmm import GeneralMixtureModel
        xt = torch.from_numpy(x)

        def pom_model():
            dists = [Normal(means=torch.from_numpy(mu0[c].copy()), covs=torch.from_numpy(cov0[c].copy()),
                            covariance_type="full") for c in range(k)]
            return GeneralMixtureModel(dists, priors=torch.from_numpy(w0.copy()), tol=float("-inf"))
        try:
            s, med, model = quiet(lambda: pomegranate_iterations(pom_model(), xt, iters))()
            pom_mu = np.stack([dist.means.numpy() for dist in model.distributions])
            diff = float(np.max(np.abs(pom_mu - np_means[iters + 1])))
            ta.add("pomegranate (float64)", s, None, f"summarize + from_summaries, fastest of {iters + 1} (median "
                   f"{med:.3f} s); {torch.get_num_threads()} torch threads; means after "
                   f"{iters + 1} iterations vs numpy EM {diff:.1e} (pomegranate adds no reg_covar)")
        except Exception as exc:  # noqa: BLE001
            ta.add("pomegranate (float64)", None, None, f"failed: {type(exc).__name__}: {str(exc)[:80]}")

    ref = "scikit-learn" if "scikit-learn" in traces else "numpy"
    for name, tr in traces.items():
        rows[name].extra[f"LL trace vs {ref} (rel)"] = f"{rel_trace_diff(tr, traces[ref]):.1e}"
    ta.print()
    report.append(ta)


# =========================================================================== (b) latent class model
def lcm_model(k=3, m=8, s=3, seed=0):
    rng = np.random.default_rng(seed)
    pi = np.array([0.5, 0.3, 0.2])
    theta = rng.dirichlet(np.full(s, 0.6), size=(m, k))          # (m, k, s)
    return pi, theta


def lcm_data(n, pi, theta, seed=1):
    rng = np.random.default_rng(seed)
    m, k, s = theta.shape
    z = rng.choice(k, size=n, p=pi)
    u = rng.random((n, m, 1))
    cum = np.cumsum(theta[:, z, :].transpose(1, 0, 2), axis=2)    # (n, m, s)
    return (u > cum).sum(axis=2).clip(max=s - 1)


def lcm_numpy_step(onehot, weights, pi, theta):
    """One E/M pass: E-step as one (rows, m*s) @ (m*s, K) product, M-step as resp' @ onehot."""
    m, k, s = theta.shape
    logt = np.log(theta).transpose(0, 2, 1).reshape(m * s, k)     # rows (child, state), cols K
    lj = onehot @ logt + np.log(pi)
    lse = logsumexp(lj, axis=1)
    resp = np.exp(lj - lse[:, None])
    if weights is not None:
        resp *= weights[:, None]
        ll = float(weights @ lse)
    else:
        ll = float(lse.sum())
    nk = resp.sum(axis=0)
    counts = (resp.T @ onehot).reshape(k, m, s).transpose(1, 0, 2)  # (m, k, s)
    return ll, nk / nk.sum(), counts / counts.sum(axis=2, keepdims=True)


def _pyagrum_lcm_worker(frame, parents, labels, order, init, iters, queue):
    import pyagrum as gum
    bn = pyagrum_bn(gum, parents, labels, order)
    for node, table in init.items():
        pot = bn.cpt(node)
        axes = list(reversed(pot.names))
        shape = [len(labels[v]) for v in parents[node] + [node]]
        arr = table.reshape(shape).transpose([(parents[node] + [node]).index(v) for v in axes])
        pot.fillWith(arr.ravel().tolist())
    t0 = time.perf_counter()
    learner = gum.BNLearner(frame, bn)
    t_load = time.perf_counter() - t0
    learner.useEM(1e-12, 0.0)
    learner.EMsetMaxIter(iters)
    t0 = time.perf_counter()
    out = learner.learnParameters(bn)
    t_fit = time.perf_counter() - t0
    queue.put((t_load, t_fit, learner.EMnbrIterations(), pyagrum_tables(out, parents, labels)))


def run_with_timeout(target, args, timeout):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001  (queue.Empty: the time limit)
        return None
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()


def case_lcm(args, skip, report) -> None:
    n = args.lcm_rows
    k, m, s = 3, 8, 3
    iters = args.iters
    print(f"(b) latent class model: {n:,} rows, hidden node with {k} states, {m} ternary children", flush=True)
    pi_true, theta_true = lcm_model(k, m, s)
    codes = lcm_data(n, pi_true, theta_true)
    kids = [f"q{j + 1}" for j in range(m)]
    frame = pd.DataFrame(codes, columns=kids)
    nodes = {"class": {"states": k, "latent": True}}
    nodes.update({q: {"states": s, "parents": ["class"]} for q in kids})
    spec = parse_spec({"name": "lcm-bench", "graph": "directed", "nodes": nodes})
    t, start = timed(quiet(lambda: pgm.fit(spec, frame, max_iter=1, seed=0)))
    pi0 = start.cpds["class"].probs[0].copy()
    theta0 = np.stack([start.cpds[q].probs for q in kids])          # (m, k, s)
    onehot = np.zeros((n, m * s))
    onehot[np.arange(n)[:, None], np.arange(m) * s + codes] = 1.0
    uniq, counts = np.unique(codes, axis=0, return_counts=True)
    onehot_u = np.zeros((len(uniq), m * s))
    onehot_u[np.arange(len(uniq))[:, None], np.arange(m) * s + uniq] = 1.0
    wts = counts.astype(float)
    print(f"  {len(uniq):,} distinct rows; common start from pgm (random posteriors + 1 iteration)")

    tb = Table(f"(b) latent class model, N={n:,} (3 hidden states, 8 ternary children): seconds per EM iteration",
               floor="pgm", unit="s/iter")

    best, med, fitted, (t1, tk) = pgm_iterations(
        quiet(lambda m, **kw: pgm.fit(spec, frame, init=start, max_iter=m, tol=0.0, accelerate=False, **kw)),
        iters)  # plain EM updates: the per-iteration time and trace of the other tools
    tb.add("pgm", best, None, f"fastest of {iters} iterations (median {med:.2g} s); pgm.fit(max_iter=1) {t1:.3f} s "
           f"incl. encoding and row compression; max_iter={iters + 1} {tk:.3f} s")
    pgm_trace = list(fitted.history)

    def numpy_run(oh, w):
        pi, theta = pi0.copy(), theta0.copy()
        trace, times, params = [], [], [(pi, theta)]
        for _ in range(iters + 1):
            t0 = time.perf_counter()
            ll, pi, theta = lcm_numpy_step(oh, w, pi, theta)
            times.append(time.perf_counter() - t0)
            trace.append(ll)
            params.append((pi, theta))
        return trace, times, params
    trace, times, np_params = numpy_run(onehot, None)

    def np_tables(j):
        pi, theta = np_params[j]
        return {"class": pi[None, :], **{q: theta[i] for i, q in enumerate(kids)}}

    def diff_tables(tabs, j):
        ref_ = np_tables(j)
        return max(float(np.max(np.abs(np.asarray(v).reshape(ref_[n_].shape) - ref_[n_]))) for n_, v in tabs.items())
    tb.add("numpy E/M pass, all rows", float(np.min(times)), None,
           f"LL trace vs pgm (rel) {rel_trace_diff(trace, pgm_trace):.1e}")
    trace, times, _ = numpy_run(onehot_u, wts)
    tb.add("numpy E/M pass, distinct rows weighted", float(np.min(times)), None,
           f"{len(uniq):,} rows; LL trace vs pgm (rel) {rel_trace_diff(trace, pgm_trace):.1e}")
    j = len(pgm_trace) - 1     # pgm.fit(max_iter=m) returns the parameters of its last history entry
    pgm_tabs = {"class": fitted.cpds["class"].probs, **{q: fitted.cpds[q].probs for q in kids}}
    tb.rows[0].note += f"; CPTs vs numpy after {j} iterations {diff_tables(pgm_tabs, j):.1e}"

    pom = None if "pomegranate" in skip else optional("pomegranate")
    if pom is not None:
        import torch
        from pomegranate.distributions import Categorical
        from pomegranate.gmm import GeneralMixtureModel
        xt = torch.from_numpy(codes.astype(np.int64))

        def pom_model():
            dists = [Categorical(probs=torch.from_numpy(theta0[:, c, :].copy())) for c in range(k)]
            return GeneralMixtureModel(dists, priors=torch.from_numpy(pi0.copy()), tol=float("-inf"))
        try:
            sp, med, model = quiet(lambda: pomegranate_iterations(pom_model(), xt, iters))()
            tabs = {"class": model.priors.numpy()[None, :],
                    **{q: np.stack([dist.probs.numpy()[i] for dist in model.distributions])
                       for i, q in enumerate(kids)}}
            tb.add("pomegranate (float64)", sp, None, f"mixture of independent Categoricals, summarize + "
                   f"from_summaries, fastest of {iters + 1} (median {med:.2g} s); CPTs after {iters + 1} "
                   f"iterations vs numpy {diff_tables(tabs, iters + 1):.1e}")
        except Exception as exc:  # noqa: BLE001
            tb.add("pomegranate (float64)", None, None, f"failed: {type(exc).__name__}: {str(exc)[:80]}")

    if "pgmpy" not in skip and optional("pgmpy") is not None:
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork
        from pgmpy.parameter_estimator import DiscreteEM

        def pgmpy_run(max_iter):
            model = DiscreteBayesianNetwork([("class", q) for q in kids], latents={"class"})
            init = {"class": TabularCPD("class", k, pi0.reshape(k, 1), state_names={"class": list(range(k))})}
            for j, q in enumerate(kids):
                init[q] = TabularCPD(q, s, theta0[j].T, evidence=["class"], evidence_card=[k],
                                     state_names={q: list(range(s)), "class": list(range(k))})
            est = DiscreteEM(latent_card={"class": k}, max_iter=max_iter, init_cpds=init, show_progress=False,
                             atol=0.0, state_names={q: list(range(s)) for q in kids})
            est.fit(model, frame)
            model.add_cpds(*est.parameters_)
            return model
        t1, m1 = timed(quiet(lambda: pgmpy_run(1)))
        t2, m2 = timed(quiet(lambda: pgmpy_run(2)))
        labels = {"class": [str(i) for i in range(k)], **{q: [str(i) for i in range(s)] for q in kids}}
        parents = {"class": [], **{q: ["class"] for q in kids}}
        d1 = diff_tables(pgmpy_tables(m1, parents, labels), 1)
        d2 = diff_tables(pgmpy_tables(m2, parents, labels), 2)
        tb.add("pgmpy DiscreteEM", t2 - t1, None,
               f"1 iteration {t1:.2f} s, 2 iterations {t2:.2f} s (difference shown); "
               f"CPTs vs numpy after 1 / 2 iterations: {d1:.1e} / {d2:.1e}")

    if "pyagrum" not in skip and optional("pyagrum") is not None:
        order = ["class"] + kids
        labels = {"class": [str(i) for i in range(k)], **{q: [str(i) for i in range(s)] for q in kids}}
        parents = {"class": [], **{q: ["class"] for q in kids}}
        pframe = frame.astype(str)
        pframe.insert(0, "class", np.nan)                    # the hidden column: every cell missing
        init = {"class": pi0, **{q: theta0[j] for j, q in enumerate(kids)}}
        res = run_with_timeout(_pyagrum_lcm_worker, (pframe, parents, labels, order, init, 2), args.lcm_timeout)
        if res is None:
            tb.add("pyAgrum EM", None, None, f"2 iterations did not finish within {args.lcm_timeout:.0f} s (stopped)")
        else:
            t_load, t_fit, n_it, tabs = res
            dd = diff_tables(tabs, min(n_it, len(np_params) - 1))
            tb.add("pyAgrum EM", t_fit / max(n_it, 1), None, f"{n_it} iterations in {t_fit:.1f} s (+{t_load:.1f} s "
                   f"loading); CPTs vs numpy after {n_it} iterations {dd:.1e}")
    tb.print()
    report.append(tb)


# =========================================================================== (c) alarm with missing cells
def with_missing(frame: pd.DataFrame, frac: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in out.columns:
        mask = rng.random(len(out)) < frac
        out[col] = out[col].where(~mask)
    return out


def mae(tables: dict[str, np.ndarray], truth: dict[str, np.ndarray],
        rows: dict[str, np.ndarray] | None = None) -> float:
    """Mean absolute difference over all CPT cells (or over the parent configurations ``rows``)."""
    diffs = []
    for v in truth:
        d = np.abs(np.nan_to_num(tables[v], nan=1.0 / truth[v].shape[1]) - truth[v])
        diffs.append((d if rows is None else d[rows[v]]).ravel())
    return float(np.mean(np.concatenate(diffs)))


def tag_of(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else (f"{n / 1e3:g}k" if n >= 1000 else str(n))


def supported(full: pd.DataFrame, parents: dict[str, list[str]], least: int) -> dict[str, np.ndarray]:
    """Parent configurations with at least ``least`` rows in the complete data (before masking)."""
    from bench_mle import floor_counts
    codes = {v: full[v].cat.codes.to_numpy().astype(np.intp) for v in parents}
    cards = {v: len(full[v].cat.categories) for v in parents}
    return {v: c.sum(axis=1) >= least for v, c in floor_counts(codes, cards, parents).items()}


def case_alarm(args, skip, report) -> None:
    data, truth = true_model(ALARM)
    spec = structure(data)
    order = list(data["nodes"])
    parents = {v: list(data["nodes"][v].get("parents", [])) for v in order}
    true_tabs = pgm_tables(truth, order)
    labels = {v: list(truth.cpd(v).columns.astype(str)) for v in order}

    tc = Table("(c) alarm, 10% of cells missing at random: EM to convergence",
               floor=f"pgm, {tag_of(args.alarm_rows)} rows")
    for n, tools in ((args.alarm_rows, True), (args.alarm_big, False)):
        if n <= 0:
            continue
        print(f"(c) alarm, {n:,} rows, 10% of cells missing", flush=True)
        full = truth.sample(n, seed=1)
        frame = with_missing(full, 0.10, seed=2)
        complete = int(frame.notna().all(axis=1).sum())
        tag = tag_of(n)
        well = supported(full, parents, 50)
        n_well = sum(int(w.sum()) for w in well.values())
        n_cfg = sum(w.size for w in well.values())
        col = "MAE, configs with >= 50 rows"

        def errors(tables):
            return {"MAE": f"{mae(tables, true_tabs):.4f}", col: f"{mae(tables, true_tabs, well):.4f}"}
        print(f"  {n_well} of {n_cfg} parent configurations have at least 50 rows in the complete data")
        t_one, _ = timed(quiet(lambda: pgm.fit(spec, frame, max_iter=1)))
        t_all, fitted = timed(quiet(lambda: pgm.fit(spec, frame)))
        it = fitted.info["n_iter"]
        per = (t_all - t_one) / max(it - 1, 1)
        tc.add(f"pgm, {tag} rows", t_all, None, f"{it} iterations, converged {fitted.info['converged']}, "
               f"{per:.3f} s/iteration (setup {t_one - per:.2f} s); every row used",
               **errors(pgm_tables(fitted, order)))
        if not tools:
            continue
        t_loose, loose = timed(quiet(lambda: pgm.fit(spec, frame, tol=args.pyagrum_eps)))
        tc.add(f"pgm, {tag} rows, tol={args.pyagrum_eps:g}", t_loose, None,
               f"{loose.info['n_iter']} iterations: stopped by pyAgrum's rule (relative change {args.pyagrum_eps:g})",
               **errors(pgm_tables(loose, order)))
        if "pyagrum" not in skip and optional("pyagrum") is not None:
            import pyagrum as gum
            bn = pyagrum_bn(gum, parents, labels, order)             # zero CPTs: pyAgrum initialises EM itself
            pframe = frame.astype(object).where(frame.notna(), np.nan)
            learner = gum.BNLearner(pframe, bn)
            learner.useEM(args.pyagrum_eps)
            learner.EMsetMaxTime(args.timeout)
            note = ""
            try:
                t, out = timed(lambda: learner.learnParameters(bn))
            except gum.DatabaseError:   # a parent configuration absent from the complete-case counts
                learner.useSmoothingPrior(1e-12)
                note = "; smoothing prior 1e-12 (pyAgrum refuses unseen parent configurations otherwise)"
                t, out = timed(lambda: learner.learnParameters(bn))
            n_it = learner.EMnbrIterations()
            tc.add(f"pyAgrum EM, {tag} rows", t, None, f"useEM({args.pyagrum_eps:g}): {n_it} iterations, "
                   f"{t / max(n_it, 1):.2f} s/iteration; {learner.EMStateMessage()}{note}",
                   **errors(pyagrum_tables(out, parents, labels)))
        if "pgmpy" not in skip and optional("pgmpy") is not None:
            from pgmpy.models import DiscreteBayesianNetwork
            from pgmpy.parameter_estimator import DiscreteMLE
            rows = frame.dropna()

            def run():
                model = DiscreteBayesianNetwork([(p, v) for v in order for p in parents[v]])
                model.add_nodes_from(order)
                return model.fit(rows.astype(str), estimator=DiscreteMLE(state_names=labels))
            t, model = timed(quiet(run))
            tc.add(f"pgmpy MLE on complete rows, {tag} rows", t, None,
                   f"{complete:,} of {n:,} rows complete (unseen configurations uniform)",
                   **errors(pgmpy_tables(model, parents, labels)))
    tc.print()
    report.append(tc)


def converge(spec, frame, accelerate: bool, seed: int = 0, **kw) -> dict:
    """pgm's EM to convergence (default tol) from ``seed``, plain or accelerated: CPU seconds at which each
    kept log-likelihood is known (this process; the machine is shared), and the fit."""
    stamps: list[tuple[float, float]] = []
    t0 = time.process_time()
    fitted = quiet(pgm.fit)(spec, frame, seed=seed, accelerate=accelerate, max_iter=5000,
                            callback=lambda it, ll: stamps.append((time.process_time() - t0, ll)), **kw)
    return {"cpu": time.process_time() - t0, "stamps": stamps, "n_iter": fitted.info["n_iter"],
            "final": fitted.history[-1], "converged": fitted.info["converged"]}


def case_accelerate(args, skip, report) -> None:
    """Plain EM against SQUAREM-accelerated EM (``accelerate=True``) from the same start, to convergence:
    the default ``pgm.learn.em.ACCELERATE`` is chosen from this table and bench_fa.py."""
    n = args.accel_rows
    cases = []
    x = gmm_data(n, 8, 8)
    cases.append((f"Gaussian mixture d=8 K=8, {n:,} rows", parse_spec({"name": "gmm-acc", "nodes": {
        "z": {"states": 8, "latent": True}, "x": {"type": "gaussian", "dim": 8, "parents": ["z"]}}}),
        pd.DataFrame(x, columns=[f"x[{j}]" for j in range(8)]), {}))
    x = gmm_data(n, 2, 5, seed=3) / 3.0  # overlapping components: slow EM
    cases.append((f"Gaussian mixture d=2 K=5 overlapping, {n:,} rows", parse_spec({"name": "gmm2-acc", "nodes": {
        "z": {"states": 5, "latent": True}, "x": {"type": "gaussian", "dim": 2, "parents": ["z"]}}}),
        pd.DataFrame(x, columns=["x[0]", "x[1]"]), {}))
    pi_true, theta_true = lcm_model(3, 8, 3)
    kids = [f"q{j + 1}" for j in range(8)]
    nodes = {"class": {"states": 3, "latent": True}, **{q: {"states": 3, "parents": ["class"]} for q in kids}}
    cases.append((f"latent class model 3 x 8 ternary, {n:,} rows", parse_spec({"name": "lcm-acc", "nodes": nodes}),
                  pd.DataFrame(lcm_data(n, pi_true, theta_true), columns=kids), {}))
    data, truth = true_model(ALARM)
    cases.append((f"alarm, 10% cells missing, {n // 2:,} rows", structure(data),
                  with_missing(truth.sample(n // 2, seed=1), 0.10, seed=2), {}))
    for name, spec, frame, kw in cases:
        td = Table(f"(d) {name}: EM to convergence (tol 1e-8), plain vs accelerate=True from the same start, "
                   "CPU seconds to the lower final log-likelihood", floor="seed 0: plain", unit="s")
        for seed in (0, 1):
            print(f"(d) {name}, seed {seed}", flush=True)
            plain = converge(spec, frame, False, seed, **kw)
            fast = converge(spec, frame, True, seed, **kw)
            target = min(plain["final"], fast["final"])
            reach = lambda r: next(t for t, v in r["stamps"] if v >= target - 1e-9 * abs(target))  # noqa: E731
            for label, r in (("plain", plain), ("accelerated", fast)):
                td.add(f"seed {seed}: {label}", reach(r), None,
                       f"{r['n_iter']} kept sets, converged {r['converged']}, {r['cpu']:.2f} s in all, "
                       f"final {r['final']:.6f}; target {target:.6f}")
        td.print()
        report.append(td)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the Gaussian mixture")
    ap.add_argument("--lcm-rows", type=int, default=100_000, help="rows of the latent class model")
    ap.add_argument("--alarm-rows", type=int, default=10_000, help="rows of alarm with missing cells")
    ap.add_argument("--alarm-big", type=int, default=1_000_000, help="rows of alarm for pgm alone (0: skip)")
    ap.add_argument("--accel-rows", type=int, default=20_000, help="rows of the acceleration cases (d)")
    ap.add_argument("--iters", type=int, default=10, help="iterations timed per tool")
    ap.add_argument("--repeat", type=int, default=1, help="repeats of the short runs (best kept)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to pyAgrum's EM on alarm")
    ap.add_argument("--lcm-timeout", type=float, default=60.0,
                    help="seconds allowed to pyAgrum's EM on the latent class model")
    ap.add_argument("--pyagrum-eps", type=float, default=1e-4, help="pyAgrum's EM stopping rate")
    ap.add_argument("--skip", default="", help="comma-separated: gmm, lcm, alarm, accelerate, sklearn, pomegranate, pyagrum, pgmpy")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    ap.add_argument("--quiet-load", type=float, default=None,
                    help="wait (up to --quiet-wait s) until the 1-minute load average is below this")
    ap.add_argument("--quiet-wait", type=float, default=600.0)
    args = ap.parse_args(argv)
    skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    header("pgm benchmark: EM", ("pgm-learn", "numpy", "scipy", "scikit-learn", "pomegranate", "torch", "pyagrum",
                                 "pgmpy"))
    report: list[Table] = []
    t0 = time.perf_counter()
    if "gmm" not in skip:
        case_gmm(args, skip, report)
    if "lcm" not in skip:
        case_lcm(args, skip, report)
    if "alarm" not in skip:
        case_alarm(args, skip, report)
    if "accelerate" not in skip:
        case_accelerate(args, skip, report)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.markdown:
        args.markdown.write_text("\n\n".join(t.markdown() for t in report) + "\n")


if __name__ == "__main__":
    main()
