"""The one directed fit: every data source (rows in memory, a file read in chunks, Dask
partitions) goes through :func:`fit_directed`.

A source supplies two things (:class:`Rows`): ``complete(strict)``, the complete-data statistics
summed over its rows or None when some rows have missing cells, and ``em_source()``, a data source
of :func:`pgm.learn.em.fit_em`.  The driver picks the learner (:func:`pgm.learn.choose`), runs the
closed form on the summed statistics when every cell is observed, and EM otherwise.  The learners'
defaults live in :mod:`pgm.learn.em` (EM) and here (complete data); their names in :mod:`pgm.learn`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from pgm.cpd.family import CPD, Stats
from pgm.encode import EncodedData
from pgm.errors import ConvergenceWarning, PGMError, caller_stacklevel
from pgm.graph import Graph
from pgm.learn import POSTERIOR_RULES, choose
from pgm.learn.em import ACCELERATE, MAX_ITER, REG_COVAR, TOL, fit_em, prepare_rows
from pgm.learn.mcem import OPTIONS as SAMPLING_OPTIONS, fit_mcem
from pgm.learn.mle import complete_stats, fit_from_stats
from pgm.learn.variational import exact_estimate, fit_variational, make_layout

#: Complete data add nothing to covariance diagonals unless asked (EM: :data:`pgm.learn.em.REG_COVAR`).
MLE_REG_COVAR = 0.0
#: What a source that has read nothing yet knows about its rows (learner names and latent nodes are
#: checked before reading; missing cells are found while reading).
NO_ROWS = EncodedData(0, {}, {})


@dataclass
class Rows:
    """A data source as the driver sees it.

    complete : ``complete(strict)`` -> summed complete-data statistics, or None when some rows
        have missing cells (``strict``, for learner="mle": raise a DataError naming them instead)
    em_source : ``em_source()`` -> an EM data source (``observed_stats``, ``e_step``, ``map_sum``)
    known : the rows already in memory (the learner is chosen from them), else :data:`NO_ROWS`
    info : extra entries of the fitted model's ``info`` (e.g. ``chunk_rows``)
    variational : ``variational(**options)`` -> the variational fit of a source that is not plain
        rows (sequences: :func:`pgm.learn.structured.fit_structured`), else None
    """

    complete: Callable[[bool], dict[str, Stats] | None]
    em_source: Callable[[], Any]
    known: EncodedData = NO_ROWS
    info: dict[str, Any] = field(default_factory=dict)
    variational: Callable[..., Any] | None = None   # learner="variational" of a source that is not plain rows


def in_memory(graph: Graph, data: EncodedData) -> Rows:
    """Encoded rows held in memory as a :class:`Rows` source."""
    def complete(strict: bool) -> dict[str, Stats] | None:
        return None if data.has_missing else complete_stats(graph, data)

    return Rows(complete, lambda: prepare_rows(graph, data), data)


@dataclass
class DirectedFit:
    """What a directed fit gives the fitted model: parameters, EM's history, and ``info``."""

    cpds: dict[str, CPD]
    history: list[float]
    info: dict[str, Any]


def fit_directed(graph: Graph, rows: Rows, *, learner: str | None = None, max_iter: int | None = None,
                 tol: float | None = None, n_init: int = 1, seed: int | None = 0, init: Any = "auto",
                 prior: dict | None = None, reg_covar: float | None = None, penalty: float | None = None,
                 callback: Callable[[int, float], None] | None = None, **options: Any) -> DirectedFit:
    """Fit a directed model to ``rows``; the options are those of :func:`pgm.fit` (``init``: a string
    or CPDs by parameter key, as :func:`pgm.learn.start.check_start` gives them)."""
    chosen = choose(graph, rows.known, learner)
    accelerate = options.pop("accelerate", None)
    if accelerate is not None and not isinstance(accelerate, bool):
        raise PGMError(f"accelerate must be True, False or None (the default: {ACCELERATE}), got {accelerate!r}")
    extra: dict[str, Any] = {}
    if chosen in ("em", "hard-em") and rows.known is not NO_ROWS and not graph.sequence:
        chosen, extra = _exact_or_variational(graph, rows.known, chosen, learner is None)
    if accelerate and learner is not None and learner != "em":
        raise PGMError(f"accelerate=True extrapolates soft EM's updates (learner='em'); learner={learner!r} has no "
                       "such option: drop accelerate")
    sampling = {k: options.pop(k) for k in SAMPLING_OPTIONS.get(chosen, ()) if k in options}
    if options:
        raise PGMError(f"unknown options for learner {chosen!r}: {sorted(options)}")
    if chosen == "mle":
        stats = rows.complete(learner == "mle")
        if stats is not None:
            cpds = fit_from_stats(graph, stats, prior=prior,
                                  reg_covar=MLE_REG_COVAR if reg_covar is None else reg_covar, penalty=penalty)
            return DirectedFit(cpds, [], {"learner": "mle", **rows.info})
        chosen = "em"
    iterative = {"max_iter": max_iter or MAX_ITER, "tol": TOL if tol is None else tol, "n_init": n_init,
                 "seed": seed, "init": init, "prior": prior, "reg_covar": REG_COVAR if reg_covar is None else reg_covar,
                 "penalty": penalty, "callback": callback}
    if chosen == "variational" and rows.variational is not None:
        result = rows.variational(**iterative)
    elif chosen == "variational":
        if rows.known is NO_ROWS:
            raise PGMError("learner='variational' needs the rows in memory (not a file read in chunks or Dask "
                           "partitions)")
        result = fit_variational(graph, rows.known, **iterative)
    elif chosen in SAMPLING_OPTIONS:  # Monte Carlo E-steps (pgm.learn.mcem): their own defaults and options
        if rows.known is NO_ROWS:
            raise PGMError(f"learner={chosen!r} needs the rows in memory (not a file read in chunks or Dask "
                           "partitions)")
        result = fit_mcem(graph, rows.known, learner=chosen, **{**iterative, "max_iter": max_iter, "tol": tol},
                          **sampling)
        extra = {**extra, **result.info}
    else:
        result = fit_em(graph, rows.em_source(), rule=POSTERIOR_RULES[chosen], accelerate=accelerate, **iterative)
    if chosen == "variational" and not result.converged and len(result.history) > 1:
        # as fit_em warns (the sampling learners never converge by design and say so in their docs)
        change = result.history[-1] - result.history[-2]
        warnings.warn(f"variational EM did not converge in {result.n_iter} iterations (last change in the ELBO "
                      f"{change:.3g}); increase max_iter or tol, or try other initialisations (n_init)",
                      ConvergenceWarning, stacklevel=caller_stacklevel())
    info = {"learner": chosen, "converged": result.converged, "n_iter": result.n_iter, "seed": result.seed,
            "runs": result.all_runs, **extra, **rows.info}
    return DirectedFit(result.cpds, result.history, info)


def _exact_or_variational(graph: Graph, data: EncodedData, chosen: str, automatic: bool) -> tuple[str, dict[str, Any]]:
    """EM, or learner="variational" when exact inference is over budget (see docs/learners.md):
    chosen automatically when no learner is named; a named "em" that cannot run is refused."""
    est = exact_estimate(graph, data)
    if est is None or not est.over_budget:
        return chosen, {}
    note = f"exact inference would need {est.describe()}"
    if automatic:
        try:
            make_layout(graph, data)
        except PGMError as exc:
            if est.feasible:
                return chosen, {}
            raise PGMError(f"{note}, beyond the clique tree's limits, and learner='variational' does not apply: "
                           f"{exc}") from None
        return "variational", {"learner_reason": note}
    if not est.feasible:
        raise PGMError(f"learner={chosen!r} needs exact inference, and {note}, beyond the clique tree's limits "
                       f"(nodes {list(est.nodes)[:6]}{'...' if len(est.nodes) > 6 else ''}); use learner='variational' "
                       "(mean-field bound; the default when no learner is named), or fewer latent nodes or parents")
    return chosen, {}
