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
from pgm.cpd.linear import GaussStats
from pgm.cpd.table import TableCPD, prior_pseudo_counts
from pgm.encode import EncodedData
from pgm.errors import ConvergenceWarning, DataWarning
from pgm.graph import Graph
from pgm.infer.enumerate import EStep, Plan, e_step, group_assign, make_plan, observed_stats
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
    """sum of a[c, k] * log(theta[c, k]) over table cells (``a`` per cell, per state or one number).

    The M-step's ``(n + a)`` normalised maximises ``expected log L + this``: it is the log-density
    of Dirichlet(a + 1) up to a constant, so ``history`` (log-likelihood plus this) never decreases."""
    total = 0.0
    for key, cpd in cpds.items():
        if not isinstance(cpd, TableCPD):
            continue
        opts = node_options(graph, key, prior, 0.0, None)
        a = prior_pseudo_counts(opts.get("prior"), *cpd.probs.shape)
        if np.any(a):
            total += float(np.sum(a * np.log(np.maximum(cpd.probs, 1e-300))))
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


class InMemory:
    """Rows held in memory: the E-step runs on them directly.

    Any object with the same three methods can stand in for it (chunks of a file read
    in turn, Dask partitions): EM only needs expected statistics and log-likelihoods,
    which are sums over rows.
    """

    def __init__(self, graph: Graph, data: EncodedData) -> None:
        self.graph = graph
        self.data = data
        self.fams = families(graph)
        self.plan = make_plan(graph, self.fams, data)

    @property
    def has_hidden(self) -> bool:
        return self.plan.has_hidden

    def observed_stats(self) -> dict[str, Stats]:
        """Statistics of the families fully observed in each row (constant across iterations)."""
        return observed_stats(self.graph, self.fams, self.data, self.plan)

    def e_step(self, cpds: dict[str, CPD], hard: bool = False) -> EStep:
        return e_step(self.graph, self.fams, cpds, self.data, self.plan, hard=hard)

    def initial_stats(self, rng: np.random.Generator, init: Any) -> dict[str, Stats]:
        """Hidden-part statistics from k-means++ assignments (mixtures) or random posteriors."""
        stats = None
        if init in ("auto", "kmeans++"):
            stats = _kmeanspp_resp(self.graph, self.fams, self.data, self.plan, rng)
        if stats is None:
            qs = [rng.dirichlet(np.ones(g.joint.shape[1]), size=len(g.rows)) for g in self.plan.groups]
            stats = _group_stats(self.graph, self.fams, self.data, self.plan, qs)
        return stats


def fit_em(graph: Graph, data: Any, *, max_iter: int = 200, tol: float = 1e-8, n_init: int = 1,
           seed: int | None = 0, init: Any = "auto", hard: bool = False, prior: dict | None = None,
           reg_covar: float = 1e-6, penalty: float | None = None,
           callback: Callable[[int, float], None] | None = None) -> EMResult:
    """Run EM ``n_init`` times from different seeds and keep the best log-likelihood.

    Parameters
    ----------
    data : EncodedData, or a source with ``observed_stats``, ``e_step`` and ``initial_stats``
        (see :class:`InMemory`)
    max_iter : the most E/M rounds per run
    tol : stop when the log-likelihood changes by less than ``tol * |log-likelihood|``
    init : "auto" (k-means++ for a mixture of gaussians, else random posteriors), "random",
        "kmeans++", or a mapping of parameter key -> CPD to start from
    hard : classification EM (each row takes its most probable hidden state)
    reg_covar : added to covariance diagonals (as scikit-learn's GaussianMixture)
    """
    source = InMemory(graph, data) if isinstance(data, EncodedData) else data
    const = _pool(graph, [source.observed_stats()])
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    best: EMResult | None = None
    best_stats: dict[str, Stats] = {}
    runs = []
    base = 0 if seed is None else int(seed)
    for run in range(max(1, n_init)):
        rng = np.random.default_rng(None if seed is None else base + run)
        if isinstance(init, dict):
            cpds = dict(init)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                start = _pool(graph, [source.initial_stats(rng, init)])
                cpds = fit_from_stats(graph, _merge(const, start), warn_unseen=False, **opts)
        history: list[float] = []
        converged = False
        stats: dict[str, Stats] = {}
        for it in range(max_iter):
            es = source.e_step(cpds, hard)
            stats = _merge(const, _pool(graph, [es.stats]))
            value = es.log_likelihood + _log_prior(graph, cpds, prior)
            history.append(value)
            if callback is not None:
                callback(it, value)
            if it > 0 and abs(value - history[-2]) <= tol * max(abs(value), 1e-300):
                converged = True
                break
            if it == max_iter - 1:
                break  # keep the parameters whose log-likelihood was recorded last
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                cpds = fit_from_stats(graph, stats, init=cpds, warn_unseen=False, **opts)
        runs.append(history)
        result = EMResult(cpds, history, converged, len(history), base + run)
        if best is None or history[-1] > best.history[-1]:
            best, best_stats = result, stats
    assert best is not None
    best.all_runs = runs
    if not best.converged:
        change = (f"last change in log-likelihood {best.history[-1] - best.history[-2]:.3g}"
                  if len(best.history) > 1 else "a single iteration gives no change to judge")
        warnings.warn(f"EM did not converge in {max_iter} iterations ({change}); "
                      "increase max_iter or tol, or try other initialisations (n_init)", ConvergenceWarning,
                      stacklevel=3)
    _warn_empty(graph, best_stats)
    _warn_collapsed(graph, best_stats, reg_covar)
    return best


def _merge(a: dict[str, Stats], b: dict[str, Stats]) -> dict[str, Stats]:
    out = dict(a)
    for key, st in b.items():
        out[key] = st if key not in out else out[key] + st
    return out


def _warn_empty(graph: Graph, pooled: dict[str, Stats]) -> None:
    """Warn about hidden states that no row supports (an empty mixture component)."""
    seen = set()
    for v in graph.latent:
        key = graph[v].param
        st = pooled.get(key)
        if key in seen or not hasattr(st, "counts"):
            continue
        seen.add(key)
        mass = st.counts.sum(axis=0)
        empty = np.flatnonzero(mass <= 1e-10 * max(mass.sum(), 1.0))
        if empty.size:
            warnings.warn(f"latent node {graph[v].decl!r}: state{'s' if empty.size > 1 else ''} "
                          f"{[int(e) for e in empty]} {'have' if empty.size > 1 else 'has'} no support in the data "
                          "(an empty component); its parameters are a fallback (uniform table or pooled fit). "
                          "Use fewer states or another initialisation (n_init)", DataWarning, stacklevel=4)


def _warn_collapsed(graph: Graph, pooled: dict[str, Stats], reg_covar: float) -> None:
    """Warn about gaussian configurations (mixture components) whose rows sit on one point:
    their covariance is then only the floor (``reg_covar``, or the documented minimum)."""
    for key, st in pooled.items():
        if not isinstance(st, GaussStats):
            continue
        fam = families(graph)[graph.params[key][0]]
        p = fam.cont_dim
        seen = np.flatnonzero(st.weight > 0)
        if not seen.size:
            continue
        syy = st.scatter[:, p:, p:]
        scale = max(float(np.max(np.abs(st.mean[seen, p:]))), float(np.max(np.einsum("cdd->cd", syy[seen]))
                    / max(st.weight[seen].sum(), 1e-300)), 1.0)
        small = [int(c) for c in seen
                 if np.linalg.eigvalsh(syy[c] / st.weight[c]).min() <= 1e-12 * scale]
        if small:
            parents = ", ".join(fam.disc) or "its parents"
            warnings.warn(f"{graph[fam.name].decl}: configuration{'s' if len(small) > 1 else ''} {small} of "
                          f"({parents}) collapsed onto a single point; the covariance there is only the floor "
                          f"(reg_covar={reg_covar:g}). Raise reg_covar, use fewer states, or try other "
                          "initialisations (n_init)", DataWarning, stacklevel=4)
