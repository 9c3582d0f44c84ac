r"""Expectation-maximisation for directed models with latent nodes or missing cells.

EM maximises the marginal log-likelihood ``log p(x; theta) = log sum_z p(x, z; theta)``
by alternating (Dempster, Laird & Rubin 1977; Koller & Friedman ch. 19):

* E-step: the exact posterior ``q(z) = p(z | x; theta)`` of each row's hidden
  values, by enumeration (:mod:`pgm.infer.enumerate`).  The log-likelihood
  computed there is the ELBO at its tight point, recorded in ``history``;
* M-step: the expected sufficient statistics (posterior-weighted counts and
  moments) go through the same ``from_stats`` as complete data, priors and ties
  included.  Families that are fully observed in a row contribute constant
  statistics, computed once.

Each iteration cannot decrease the log-likelihood (plus the log-prior under
Dirichlet priors).  ``hard=True`` replaces q by the indicator of the most
probable joint state (classification EM): on a Gaussian mixture with a shared
spherical covariance this is k-means.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pgm.cpd.family import CPD, Family, Stats, families, family_stats
from pgm.cpd.linear import LinearCPD
from pgm.cpd.table import TableCPD, prior_pseudo_counts
from pgm.encode import EncodedData
from pgm.errors import ConvergenceWarning, DataWarning
from pgm.graph import Graph
from pgm.infer.enumerate import Plan, e_step, group_assign, make_plan, observed_stats
from pgm.learn.mle import fit_from_stats, node_options


@dataclass
class EMResult:
    cpds: dict[str, CPD]
    history: list[float]
    converged: bool
    n_iter: int
    seed: int
    all_runs: list[list[float]] = field(default_factory=list)


def _pool(graph: Graph, parts: list[dict[str, Stats]]) -> dict[str, Stats]:
    pooled: dict[str, Stats] = {}
    for part in parts:
        for f, st in part.items():
            key = graph[f].param
            pooled[key] = st if key not in pooled else pooled[key] + st
    return pooled


def _log_prior(graph: Graph, cpds: dict[str, CPD], prior: dict | None) -> float:
    """sum of a * log(theta) over table cells: the Dirichlet log-density up to a constant."""
    total = 0.0
    for key, cpd in cpds.items():
        if not isinstance(cpd, TableCPD):
            continue
        opts = node_options(graph, key, prior, 0.0, None)
        a = prior_pseudo_counts(opts.get("prior"), *cpd.probs.shape)
        if a:
            with np.errstate(divide="ignore"):
                total += a * float(np.sum(np.log(np.maximum(cpd.probs, 1e-300))))
    return total


def _kmeanspp_resp(graph: Graph, fams: dict[str, Family], data: EncodedData, plan: Plan,
                   rng: np.random.Generator) -> dict[str, Stats] | None:
    """k-means++ seeding: for a single latent node whose children are all observed gaussians,
    assign each row to the nearest of K centres chosen by k-means++ (Arthur & Vassilvitskii 2007)."""
    if len(plan.groups) != 1 or len(plan.groups[0].variables) != 1 or data.has_missing:
        return None
    group = plan.groups[0]
    z = group.variables[0]
    kids = [f for f in group.families if f != z]
    if not kids or any(graph[c].discrete or c not in data.values for c in kids):
        return None
    x = np.hstack([data.values[c] for c in kids])
    k = graph[z].n_states
    n = len(x)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        total = d2.sum()
        idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres[j] = x[idx]
        d2 = np.minimum(d2, ((x - centres[j]) ** 2).sum(axis=1))
    dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    q = np.zeros((n, k))
    q[np.arange(n), dist.argmin(axis=1)] = 1.0
    return _group_stats(graph, fams, data, plan, [q])


def _group_stats(graph, fams, data, plan, qs) -> dict[str, Stats]:
    out: dict[str, Stats] = {}
    for group, q in zip(plan.groups, qs):
        assign = group_assign(graph, data, group, fams)
        w = None if data.weights is None else data.weights[group.rows]
        if w is not None:
            q = q * w[:, None]
        for f in group.families:
            qf = q if f not in group.dropped else np.where(group.dropped[f][:, None], 0.0, q)
            st = family_stats(fams[f], assign, len(group.rows), qf, group.cache)
            out[f] = st if f not in out else out[f] + st
    return out


def initial_cpds(graph: Graph, fams: dict[str, Family], data: EncodedData, plan: Plan, const: dict[str, Stats],
                 rng: np.random.Generator, init: Any, opts: dict[str, Any]) -> dict[str, CPD]:
    """Starting parameters: given CPDs, k-means++ (mixtures) or random posteriors, then one M-step."""
    if isinstance(init, dict):
        return dict(init)
    stats = None
    if init in ("auto", "kmeans++"):
        stats = _kmeanspp_resp(graph, fams, data, plan, rng)
    if stats is None:
        qs = [rng.dirichlet(np.ones(g.joint.shape[1]), size=len(g.rows)) for g in plan.groups]
        stats = _group_stats(graph, fams, data, plan, qs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fit_from_stats(graph, _pool(graph, [const, stats]), warn_unseen=False, **opts)


def fit_em(graph: Graph, data: EncodedData, *, max_iter: int = 200, tol: float = 1e-8, n_init: int = 1,
           seed: int | None = 0, init: Any = "auto", hard: bool = False, prior: dict | None = None,
           reg_covar: float = 1e-6, penalty: float | None = None,
           callback: Callable[[int, float], None] | None = None) -> EMResult:
    """Run EM ``n_init`` times from different seeds and keep the best log-likelihood.

    Parameters
    ----------
    max_iter : the most E/M rounds per run
    tol : stop when the log-likelihood changes by less than ``tol * |log-likelihood|``
    init : "auto" (k-means++ for a mixture of gaussians, else random posteriors), "random",
        "kmeans++", or a mapping of parameter key -> CPD to start from
    hard : classification EM (each row takes its most probable hidden state)
    reg_covar : added to covariance diagonals (as scikit-learn's GaussianMixture)
    """
    fams = families(graph)
    plan = make_plan(graph, fams, data)
    const = observed_stats(graph, fams, data, plan)
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    best: EMResult | None = None
    runs = []
    base = 0 if seed is None else int(seed)
    for run in range(max(1, n_init)):
        rng = np.random.default_rng(None if seed is None else base + run)
        cpds = initial_cpds(graph, fams, data, plan, const, rng, init, opts)
        history: list[float] = []
        converged = False
        for it in range(max_iter):
            es = e_step(graph, fams, cpds, data, plan, hard=hard)
            value = es.log_likelihood + _log_prior(graph, cpds, prior)
            history.append(value)
            if callback is not None:
                callback(it, value)
            if it > 0 and abs(value - history[-2]) <= tol * max(abs(value), 1e-300):
                converged = True
                break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                cpds = fit_from_stats(graph, _pool(graph, [const, es.stats]), init=cpds, warn_unseen=False, **opts)
        runs.append(history)
        result = EMResult(cpds, history, converged, len(history), base + run)
        if best is None or history[-1] > best.history[-1]:
            best = result
    assert best is not None
    best.all_runs = runs
    if not best.converged:
        change = best.history[-1] - best.history[-2] if len(best.history) > 1 else float("nan")
        warnings.warn(f"EM did not converge in {max_iter} iterations (last change in log-likelihood {change:.3g}); "
                      "increase max_iter or tol, or try other initialisations (n_init)", ConvergenceWarning,
                      stacklevel=3)
    _warn_empty(graph, fams, data, plan, const, best.cpds, hard)
    return best


def _warn_empty(graph, fams, data, plan, const, cpds, hard) -> None:
    """Warn about hidden states that no row supports (an empty mixture component)."""
    if not plan.groups:
        return
    pooled = _pool(graph, [const, e_step(graph, fams, cpds, data, plan, hard=hard).stats])
    for v in graph.latent:
        st = pooled.get(graph[v].param)
        if not hasattr(st, "counts"):
            continue
        mass = st.counts.sum(axis=0)
        empty = np.flatnonzero(mass <= 1e-10 * max(mass.sum(), 1.0))
        if empty.size:
            warnings.warn(f"latent node {graph[v].decl!r}: state{'s' if empty.size > 1 else ''} "
                          f"{list(empty)} {'have' if empty.size > 1 else 'has'} no support in the data "
                          "(an empty component); its parameters are a fallback (uniform table or pooled fit). "
                          "Use fewer states or another initialisation (n_init)", DataWarning, stacklevel=4)
