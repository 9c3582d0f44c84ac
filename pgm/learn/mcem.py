r"""EM with a sampling E-step: Monte Carlo EM (``learner="mcem"``) and stochastic EM
(``learner="stochastic-em"``).

When EM's expectations cannot be computed exactly they can be estimated by sampling
(Wei & Tanner 1990): the E-step draws each row's hidden cells from ``p(z | x; θ)`` with the
vectorised Gibbs sampler of :mod:`pgm.infer.gibbs` (every row's chain advancing together), and
the M-step is the complete-data fit of the rows completed by those draws, ``S`` copies of each
row with weight ``w / S`` each: the same ``family_stats`` / ``from_stats`` path as EM's posterior
weights (:mod:`pgm.learn.mle`), priors, ties and plate copies included.

* ``mcem``: per iteration ``samples`` (S) draws per row, ``thin`` sweeps apart, after ``burn_in``
  sweeps before the first iteration; the chains persist from one iteration to the next (warm
  start).  The returned parameters are the final iterate.
* ``stochastic-em`` (Celeux & Diebolt 1985; Nielsen 2000): one draw per row per iteration (S = 1,
  one sweep).  The iterates form a Markov chain around the maximum likelihood estimate rather than
  converging to it; the returned parameters are the average of the iterates after ``average_from``
  updates (default: the second half), Nielsen's estimator.

Neither has a stopping rule: Monte Carlo noise keeps the objective moving, so ``max_iter``
updates are run (``tol`` is not used).  ``history`` is the exact log-likelihood of each iterate
when pgm's exact E-step is cheap on these rows (estimated cost under :data:`HISTORY_BUDGET`),
else the Monte Carlo estimate of the expected complete-data log-likelihood
``(1/S) Σ_s log p(x, z_s; θ)``; ``info["history"]`` says which.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from pgm.cpd.family import CPD, Stats, family_stats
from pgm.cpd.logistic import LogisticStats, compress
from pgm.encode import EncodedData
from pgm.errors import ConvergenceWarning, DataWarning, ModelError, PGMError
from pgm.graph import Graph
from pgm.infer.elimination import TooWideError
from pgm.infer.enumerate import e_step, make_plan
from pgm.infer.gibbs import Gibbs, complete_log_prob, gibbs_layout
from pgm.learn.em import REG_COVAR, EMResult, _log_prior, best_of_starts
from pgm.learn.mle import fit_from_stats, fit_options
from pgm.learn.start import check_start, marginal_stats, random_start
from pgm.learn.stats import add_stats, pool_stats
from pgm.learn.variational import exact_estimate

#: Defaults of learner="mcem": draws per row per iteration, Gibbs sweeps before the first
#: iteration's draws, sweeps between draws, and updates.
SAMPLES = 20
BURN_IN = 20
THIN = 1
MCEM_MAX_ITER = 50
#: learner="stochastic-em" runs this many updates by default (one sweep each).
SEM_MAX_ITER = 200
#: history holds the exact log-likelihood when pgm's exact E-step is estimated at most this many
#: cost units per iteration (:func:`pgm.learn.variational.exact_estimate`), else the Monte Carlo
#: complete-data estimate.
HISTORY_BUDGET = 1e8
#: The options each sampling learner takes (besides pgm.fit's own).
OPTIONS = {"mcem": ("samples", "burn_in", "thin"), "stochastic-em": ("samples", "burn_in", "average_from")}


@dataclass
class MCEMResult(EMResult):
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def mc_statistics(graph: Graph, chain: Gibbs, cpds: dict[str, CPD], rng: np.random.Generator, samples: int,
                  thin: int, const: dict[str, Stats], sweeps_first: int = 0,
                  complete: bool = True) -> tuple[dict[str, Stats], float]:
    """The sampling E-step: ``sweeps_first`` sweeps, then ``samples`` draws ``thin`` sweeps apart.

    Returns the statistics of the completed rows (each draw weighted ``w / samples``) pooled by
    parameter key with ``const`` (the families no row hides), and the Monte Carlo estimate of the
    expected complete-data log-likelihood of the hidden families (weights included; 0 without
    ``complete``)."""
    layout = chain.layout
    data = chain.data
    n = data.n_rows
    w = np.full(n, 1.0 / samples) if data.weights is None else data.weights / samples
    fams = graph.families
    for _ in range(sweeps_first):
        chain.sweep(cpds, rng)
    parts: dict[str, Stats] = {}
    value = 0.0
    for s in range(samples):
        for _ in range(thin):
            chain.sweep(cpds, rng)
        assign = chain.assign()
        for f in layout.hidden_families:
            keep = layout.keep(f)
            if keep is not None and not keep.any():
                continue  # its child is summed out in every row: no statistics (EM leaves it too)
            st = family_stats(fams[f], assign, n, w if keep is None else w * keep)
            parts[f] = st if f not in parts else parts[f] + st
        if complete:
            value += complete_log_prob(graph, cpds, assign, n, layout.hidden_families, w, layout)
    for f, st in parts.items():
        if isinstance(st, LogisticStats):
            parts[f] = compress(st)
    return add_stats(const, pool_stats(graph, parts.items())), value


def _average(cpds_list: list[dict[str, CPD]]) -> dict[str, CPD]:
    """The average of parameter sets, array field by array field (every CPD is a frozen dataclass
    of arrays: table probabilities, regression weights and covariances, noisy-or probabilities)."""
    out = {}
    for key, first in cpds_list[0].items():
        changes = {}
        for fld in dataclasses.fields(first):
            val = getattr(first, fld.name)
            if isinstance(val, (np.ndarray, float)) and not isinstance(val, bool):
                changes[fld.name] = np.mean([np.asarray(getattr(c[key], fld.name), dtype=float) for c in cpds_list],
                                            axis=0)
                if isinstance(val, float):
                    changes[fld.name] = float(changes[fld.name])
        out[key] = dataclasses.replace(first, **changes)
    return out


class _Objective:
    """The exact log-likelihood of parameters on these rows when it is cheap, else None."""

    def __init__(self, graph: Graph, data: EncodedData) -> None:
        self.graph, self.data, self.plan = graph, data, None
        try:
            est = exact_estimate(graph, data)
            if est is None or (est.feasible and est.cost <= HISTORY_BUDGET):
                self.plan = make_plan(graph, graph.families, data)
        except (ModelError, TooWideError):
            self.plan = None

    @property
    def exact(self) -> bool:
        return self.plan is not None

    def __call__(self, cpds: dict[str, CPD]) -> float:
        try:
            return e_step(self.graph, self.graph.families, cpds, self.data, self.plan, stats=False).log_likelihood
        except PGMError:
            return float("-inf")


def fit_mcem(graph: Graph, data: EncodedData, *, learner: str = "mcem", max_iter: int | None = None,
             tol: float | None = None, n_init: int = 1, seed: int | None = 0, init: Any = "auto",
             prior: dict | None = None, reg_covar: float = REG_COVAR, penalty: float | None = None,
             callback: Callable[[int, float], None] | None = None, samples: int | None = None,
             burn_in: int = BURN_IN, thin: int = THIN, average_from: int | None = None,
             trace: Callable[[int, dict[str, CPD]], None] | None = None) -> MCEMResult:
    """Monte Carlo EM or stochastic EM from ``n_init`` starts (the best final history value is kept).

    Parameters
    ----------
    learner : "mcem" (``samples`` draws per row per iteration, the final iterate returned) or
        "stochastic-em" (one draw per row per iteration, the average of the iterates after
        ``average_from`` updates returned; default ``max_iter // 2``)
    max_iter : updates (default 50 for mcem, 200 for stochastic-em); all are run
    samples, burn_in, thin : draws per row per iteration (mcem, default 20), Gibbs sweeps before
        the first draws (default 20), sweeps between draws (default 1)
    trace : called as ``trace(i, cpds)`` with each iterate (tests, benchmarks)

    ``history[i]`` is the exact log-likelihood (plus log-prior) of the ``i``-th iterate when it is
    cheap (``info["history"] == "log-likelihood"``), else the Monte Carlo estimate of its expected
    complete-data log-likelihood (``"complete-data log-likelihood (Monte Carlo)"``).
    """
    if learner not in OPTIONS:
        raise PGMError(f"learner={learner!r} is not a sampling learner; use 'mcem' or 'stochastic-em'")
    sem = learner == "stochastic-em"
    if sem and samples not in (None, 1):
        raise PGMError("learner='stochastic-em' draws one sample per row per iteration; drop samples= "
                       "(or use learner='mcem' for several)")
    samples = 1 if sem else (SAMPLES if samples is None else samples)
    max_iter = max_iter or (SEM_MAX_ITER if sem else MCEM_MAX_ITER)
    for name, value, low in (("samples", samples, 1), ("burn_in", burn_in, 0), ("thin", thin, 1),
                             ("max_iter", max_iter, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise PGMError(f"{name} must be an integer >= {low}, got {value!r}")
    start_avg = max_iter // 2 if average_from is None else average_from
    if sem and not (isinstance(start_avg, (int, np.integer)) and 0 <= start_avg <= max_iter):
        raise PGMError(f"average_from must be an integer in [0, max_iter={max_iter}], got {average_from!r}")
    if graph.sequence:
        raise PGMError(f"learner={learner!r} does not fit sequence models yet; use learner='em'")
    layout = gibbs_layout(graph, data, learner)
    if not layout.hidden:
        raise PGMError(f"learner={learner!r} needs latent nodes or missing cells; every cell is observed: use "
                       "learner='mle'")
    options = fit_options(graph, prior, reg_covar, penalty)
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    given = None if isinstance(init, str) else check_start(graph, init)
    if init not in ("auto", "random") and given is None:
        raise PGMError(f"init={init!r}: learner={learner!r} starts from 'auto' / 'random' or a fitted model")
    fams = graph.families
    assign = {**data.codes, **data.values}
    const = pool_stats(graph, ((f, family_stats(fams[f], assign, data.n_rows, data.weights))
                               for f in fams if f not in layout.hidden_families))
    names = tuple(n for n in graph.order if not graph[n].discrete and not graph[n].latent and n in data.values)
    marginals = marginal_stats(SimpleNamespace(data=data), names).stats if names else {}
    objective = _Objective(graph, data)
    observed_fams = tuple(f for f in fams if f not in layout.hidden_families)

    def one_run(run_seed: int, rng: np.random.Generator) -> MCEMResult:
        cpds = dict(given) if given is not None else random_start(graph, const, marginals, rng, **opts)
        chain = Gibbs(graph, layout, data, cpds, rng)
        history: list[float] = []
        kept: list[dict[str, CPD]] = []
        for it in range(max_iter + 1):
            stats, complete = mc_statistics(graph, chain, cpds, rng, samples, thin, const,
                                            burn_in if it == 0 else 0, not objective.exact)
            if objective.exact:
                value = objective(cpds)
            else:
                value = complete + complete_log_prob(graph, cpds, assign, data.n_rows, observed_fams, data.weights)
            value += _log_prior(graph, cpds, options)
            history.append(value)
            if callback is not None:
                callback(it, value)
            if trace is not None:
                trace(it, cpds)
            if sem and it >= start_avg:
                kept.append(cpds)
            if it == max_iter:
                break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                warnings.simplefilter("ignore", ConvergenceWarning)
                cpds = {**cpds, **fit_from_stats(graph, stats, init=cpds, warn_unseen=False, options=options)}
        info: dict[str, Any] = {
            "history": "log-likelihood" if objective.exact else "complete-data log-likelihood (Monte Carlo)",
            "samples": samples, "burn_in": burn_in}
        if sem:
            cpds = _average(kept)
            info["estimate"] = f"average of the iterates after {start_avg} updates ({len(kept)} iterates)"
            info["average_from"] = start_avg
            if objective.exact:
                info["log_likelihood"] = objective(cpds) + _log_prior(graph, cpds, options)
        else:
            info["estimate"] = "final iterate"
            info["thin"] = thin
        return MCEMResult(cpds, history, False, len(history) - 1, run_seed, [], info)

    return best_of_starts(n_init, seed, one_run, lambda r: r.info.get("log_likelihood", r.history[-1]))
