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
Dirichlet priors).  ``max_iter=k`` runs k updates (as scikit-learn, pgmpy and pomegranate);
``history`` holds the log-likelihood of every parameter set evaluated: the start, then the result
of each update, so its last value is that of the returned parameters.

By default (:data:`ACCELERATE`) soft EM extrapolates its updates (SQUAREM with a monotone
safeguard, :mod:`pgm.learn.accelerate`): then ``max_iter`` counts evaluated parameter sets and
``history`` holds the kept ones (still never decreasing); ``accelerate=False`` runs plain EM.

The start (:func:`random_start`) breaks symmetry for any model and never gives an observed row
probability zero: random parameters for the families with a latent member (Dirichlet tables,
gaussian means drawn around the data mean with the data's covariance), the available-case fit with
random pseudo-counts for the others; k-means++ for a gaussian mixture.  It is built from sums over
all rows and from draws that depend only on the seed, so a streamed or distributed fit starts where
the in-memory fit starts.  Random posteriors, the usual alternative, give exactly uniform tables
through the clique tree (a stationary point) and near-uniform ones over many joint states.

``rule=Posterior.HARD`` replaces q by the indicator of the most probable joint state (classification
EM): on a Gaussian mixture with a shared spherical covariance this is k-means
(:mod:`pgm.infer.posterior`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np

from pgm.cpd.family import CPD, Stats, kind_of
from pgm.cpd.linear import GaussStats
from pgm.encode import EncodedData, compress_rows
from pgm.errors import ConvergenceWarning, DataError, DataWarning, caller_stacklevel
from pgm.graph import Graph
from pgm.infer.enumerate import EStep, e_step, make_plan, observed_stats
from pgm.infer.posterior import Posterior
from pgm.learn.accelerate import make_accelerator
from pgm.learn.mle import fit_from_stats, fit_options
from pgm.learn.start import FEW_ITERATIONS, check_start, interchangeable, kmeanspp_start, lag_depth, lds_of, \
    marginal_stats, mixture_of, random_start, subspace_start, WindowSums, window_sums
from pgm.learn.stats import add_stats, pool_stats


#: EM's defaults (``pgm.fit`` and every data source use these): the most updates, the relative
#: change of the log-likelihood that stops a run, and the floor added to covariance diagonals.
MAX_ITER = 200
TOL = 1e-8
REG_COVAR = 1e-6
#: Whether soft EM extrapolates its updates by default (:mod:`pgm.learn.accelerate`): on, since it
#: reached the same or a higher log-likelihood in less time on every case of bench/bench_fa.py and
#: bench/bench_em.py (case d), with 1.6x to 5x fewer parameter sets kept.
ACCELERATE = True


@dataclass
class EMResult:
    cpds: dict[str, CPD]
    history: list[float]
    converged: bool
    n_iter: int
    seed: int
    all_runs: list[list[float]] = field(default_factory=list)


R = TypeVar("R", bound=EMResult)


def best_of_starts(n_init: int, seed: int | None, run: Callable[[int, np.random.Generator], R],
                   score: Callable[[R], float] = lambda r: r.history[-1]) -> R:
    """Run a learner from ``n_init`` starts and keep the best: start ``i`` gets the seed ``seed + i``
    and its own generator (``seed=None``: fresh entropy); ``all_runs`` of the best result holds every
    run's history.  Shared by every iterative learner so that ``n_init``/``seed`` mean one thing."""
    base = 0 if seed is None else int(seed)
    best: R | None = None
    runs: list[list[float]] = []
    for i in range(max(1, n_init)):
        result = run(base + i, np.random.default_rng(None if seed is None else base + i))
        runs.append(result.history)
        if best is None or score(result) > score(best):
            best = result
    assert best is not None
    best.all_runs = runs
    return best


def _log_prior(graph: Graph, cpds: dict[str, CPD], options: dict[str, dict[str, Any]]) -> float:
    """sum of a[c, k] * log(theta[c, k]) over table cells (``a`` per cell, per state or one number),
    and each other kind's own log-prior (:meth:`pgm.cpd.base.CPDKind.log_prior`).

    The M-step's ``(n + a)`` normalised maximises ``expected log L + this``: it is the log-density
    of Dirichlet(a + 1) up to a constant, so ``history`` (log-likelihood plus this) never decreases."""
    total = 0.0
    for key, cpd in cpds.items():
        fam = graph.families[graph.params[key][0]]
        total += kind_of(fam).log_prior(fam, cpd, options[key].get("prior"))
    return total


class InMemory:
    """Rows held in memory: the E-step runs on them directly.

    Any object with the same methods can stand in for it (chunks of a file read in turn, Dask
    partitions): EM only needs expected statistics and log-likelihoods, which are sums over rows,
    and ``map_sum(fn, *args)``, the sum of ``fn(part, *args)`` over in-memory parts (for the start).
    """

    def __init__(self, graph: Graph, data: EncodedData) -> None:
        self.graph = graph
        self.data = data
        self.fams = graph.families
        self.plan = make_plan(graph, self.fams, data)

    @property
    def has_hidden(self) -> bool:
        return self.plan.has_hidden

    def observed_stats(self) -> dict[str, Stats]:
        """Statistics of the families fully observed in each row (constant across iterations)."""
        return observed_stats(self.graph, self.fams, self.data, self.plan)

    def e_step(self, cpds: dict[str, CPD], rule: Posterior = Posterior.EXACT) -> EStep:
        return e_step(self.graph, self.fams, cpds, self.data, self.plan, rule=rule)

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


def prepare_rows(graph: Graph, data: EncodedData) -> InMemory:
    """An EM source for rows in memory (all of them, a chunk or a partition): distinct rows when that
    halves them (identical rows share one posterior), and its plan."""
    distinct = compress_rows(data)
    return InMemory(graph, distinct if distinct is not None else data)


def fit_em(graph: Graph, data: Any, *, max_iter: int = MAX_ITER, tol: float = TOL, n_init: int = 1,
           seed: int | None = 0, init: Any = "auto", rule: Posterior = Posterior.EXACT, prior: dict | None = None,
           reg_covar: float = REG_COVAR, penalty: float | None = None,
           callback: Callable[[int, float], None] | None = None, accelerate: bool | None = None) -> EMResult:
    """Run EM ``n_init`` times from different seeds and keep the best log-likelihood.

    Parameters
    ----------
    data : EncodedData, or a source with ``observed_stats``, ``e_step`` and ``map_sum``
        (see :class:`InMemory`)
    max_iter : the most EM updates (M-steps) per run
    tol : stop when the log-likelihood changes by less than ``tol * |log-likelihood|``
    init : "auto" (k-means++ for a mixture of gaussians, subspace identification for a linear dynamical
        system (:func:`pgm.learn.start.subspace_start`), else :func:`random_start`), "random"
        (:func:`random_start`), "kmeans++", or a mapping of parameter key -> CPD to start from
    rule : the E-step's posterior rule (``Posterior.HARD``: classification EM, each row takes its
        most probable hidden state)
    reg_covar : added to covariance diagonals (as scikit-learn's GaussianMixture)
    accelerate : extrapolate the updates (SQUAREM with a monotone safeguard,
        :mod:`pgm.learn.accelerate`); None: :data:`ACCELERATE`.  Soft EM only.  ``max_iter`` then
        counts evaluated parameter sets, rejected extrapolations included, and ``history`` holds the
        kept ones

    Returns
    -------
    EMResult whose ``history[i]`` is the log-likelihood (plus log-prior) of the parameters after
    ``i`` updates: ``history[0]`` the start, ``history[-1]`` the returned parameters, and
    ``n_iter = len(history) - 1`` updates.  It never decreases (soft EM).
    """
    source = InMemory(graph, data) if isinstance(data, EncodedData) else data
    const = pool_stats(graph, source.observed_stats().items())
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    options = fit_options(graph, prior, reg_covar, penalty)
    given = None if isinstance(init, str) else check_start(graph, init)
    mixture = mixture_of(graph) if init in ("auto", "kmeans++") else None
    lds = lds_of(graph) if init == "auto" and hasattr(source, "map_sum") else None
    windows: WindowSums | None = None
    first_seed = 0 if seed is None else int(seed)  # best_of_starts: run i has the seed first_seed + i
    marginals: dict[str, Stats] | None = None
    final_stats: dict[int, dict[str, Stats]] = {}

    def one_run(run_seed: int, rng: np.random.Generator) -> EMResult:
        nonlocal marginals, windows
        if given is not None:
            cpds = dict(given)
        else:
            if marginals is None:
                names = tuple(n for n in graph.order if not graph[n].discrete and not graph[n].latent)
                marginals = source.map_sum(marginal_stats, names).stats if names else {}
            cpds = random_start(graph, const, marginals, rng, **opts)
            if mixture is not None:
                cpds = kmeanspp_start(graph, source, const, cpds, mixture, rng, **opts)
            if lds is not None:
                if windows is None:
                    h, lp = lag_depth(graph[lds[0]].dim, sum(graph[c].dim for c in lds[1]))
                    windows = source.map_sum(window_sums, lds[1], h, lp)
                cpds = {**cpds, **(subspace_start(graph, lds, windows, rng, jitter=run_seed != first_seed) or {})}
        history: list[float] = []
        converged = False
        stats: dict[str, Stats] = {}
        kept = cpds
        speedup = make_accelerator(ACCELERATE if accelerate is None else accelerate) \
            if rule is Posterior.EXACT else None
        for it in range(max_iter + 1):  # evaluate the start, then up to max_iter updates each evaluated
            try:
                es = source.e_step(cpds, rule)
            except DataError:  # a row of probability zero: refused at an extrapolated point, raised otherwise
                if speedup is None or not speedup.extrapolating:
                    raise
                es = None
            value = -np.inf if es is None else es.log_likelihood + _log_prior(graph, cpds, options)
            if speedup is not None and not speedup.accept(value):  # an extrapolation below theta1: EM's step
                cpds = speedup.fallback()
                continue
            assert es is not None
            kept = cpds
            stats = add_stats(const, pool_stats(graph, es.stats.items()))
            history.append(value)
            if callback is not None:
                callback(len(history) - 1, value)
            stop = len(history) > 1 and (speedup is None or speedup.plain)  # after EM's own updates
            if stop and abs(value - history[-2]) <= tol * max(abs(value), 1e-300):
                converged = True
                break
            if it == max_iter:
                break  # the parameters returned are the ones whose log-likelihood was recorded last
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                cpds = {**cpds, **fit_from_stats(graph, stats, init=cpds, warn_unseen=False, options=options)}
            if speedup is not None:
                cpds = speedup.next(kept, cpds)
        final_stats[run_seed] = stats
        return EMResult(kept, history, converged, len(history) - 1, run_seed)

    best = best_of_starts(n_init, seed, one_run)
    best_stats = final_stats[best.seed]
    if not best.converged:
        change = f"last change in log-likelihood {best.history[-1] - best.history[-2]:.3g}"
        if best.n_iter < max_iter:  # the extrapolation's safeguard refused some of the evaluated sets
            change = f"{max_iter} updates evaluated, {best.n_iter} kept by the extrapolation's safeguard; {change}"
        warnings.warn(f"EM did not converge in {max_iter} iterations ({change}); "
                      "increase max_iter or tol, or try other initialisations (n_init)", ConvergenceWarning,
                      stacklevel=caller_stacklevel())
    elif best.n_iter <= FEW_ITERATIONS:
        stuck = interchangeable(graph, best.cpds)
        if stuck:
            warnings.warn(f"EM stopped after {best.n_iter} iteration{'s' if best.n_iter != 1 else ''} at a stationary "
                          f"point: the states of latent node{'s' if len(stuck) > 1 else ''} {stuck} give their "
                          "children the same distributions, so they explain nothing (a symmetric start, such as "
                          "uniform tables, stays there). Start elsewhere: n_init=5, init='random', or init= a "
                          "fitted model whose states differ", ConvergenceWarning, stacklevel=caller_stacklevel())
    _warn_empty(graph, best_stats)
    _warn_collapsed(graph, best_stats, reg_covar)
    return best


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
                          "Use fewer states or another initialisation (n_init)", DataWarning,
                          stacklevel=caller_stacklevel())


def _warn_collapsed(graph: Graph, pooled: dict[str, Stats], reg_covar: float) -> None:
    """Warn about gaussian configurations (mixture components) whose rows sit on one point:
    their covariance is then only the floor (``reg_covar``, or the documented minimum)."""
    for key, st in pooled.items():
        if not isinstance(st, GaussStats):
            continue
        fam = graph.families[graph.params[key][0]]
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
                          "initialisations (n_init)", DataWarning, stacklevel=caller_stacklevel())
