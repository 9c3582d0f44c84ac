"""Learning sequence models: EM over forward-backward, or counting when every cell is observed.

:class:`SequenceSource` is a data source for :func:`pgm.learn.em.fit_em` (the same loop, start
rules, priors, ties and convergence checks as every directed model): its E-step is
forward-backward (:mod:`pgm.infer.chain`) and its statistics are the posterior-weighted
complete-data statistics of each family, so the M-step is the kinds' ``from_stats``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from pgm.cpd.family import CPD, Stats
from pgm.errors import DataError
from pgm.graph import Graph
from pgm.infer.chain import ChainPlan, chain_stats, forward_backward, make_chain_plan, random_stats
from pgm.infer.enumerate import EStep
from pgm.learn.em import EMResult, fit_em
from pgm.learn.mle import fit_from_stats
from pgm.sequence import SequenceData


def refuse_impossible_sequences(data: SequenceData, seq_ll: np.ndarray, what: str) -> None:
    """A DataError naming the sequences of probability zero (no posterior exists there)."""
    bad = np.flatnonzero(np.isneginf(seq_ll))
    if bad.size:
        shown = [v.item() if isinstance(v, np.generic) else v for v in data.ids[bad[:5]]]
        raise DataError(f"{what}: {bad.size} sequence{'s' if bad.size > 1 else ''} ({shown}) "
                        f"{'have' if bad.size > 1 else 'has'} probability zero under the "
                        "parameters; a prior (prior: {dirichlet: 1}) avoids zero probabilities")


class SequenceSource:
    """Sequences held in memory, as a data source of :func:`pgm.learn.em.fit_em`."""

    def __init__(self, graph: Graph, data: SequenceData) -> None:
        self.graph = graph
        self.sequences = data
        self.data = data.enc
        self.plan: ChainPlan = make_chain_plan(graph, data)

    @property
    def has_hidden(self) -> bool:
        return bool(self.plan.hidden)

    def observed_stats(self) -> dict[str, Stats]:
        """Every family's statistics come from the E-step (they are weighted by the posteriors)."""
        return {}

    def e_step(self, cpds: dict[str, CPD], hard: bool = False) -> EStep:
        if hard:
            raise DataError("hard EM is not available for sequence models yet; use learner='em'")
        sm = forward_backward(self.plan, cpds)
        refuse_impossible_sequences(self.sequences, sm.sequence_log_likelihood, "EM")
        return EStep(sm.log_likelihood, chain_stats(self.plan, sm.gamma, sm.xi_shared, sm.xi_rows))

    def initial_stats(self, rng: np.random.Generator, init: Any) -> dict[str, Stats]:
        return random_stats(self.plan, rng)

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


def fit_sequence(graph: Graph, source: SequenceSource, *, learner: str, prior: dict | None, reg_covar: float | None,
                 penalty: float | None, **em: Any) -> tuple[dict[str, CPD], EMResult | None]:
    """Fit a sequence model: by counting when no cell is hidden, else by EM."""
    if not source.has_hidden and learner == "mle":
        stats = chain_stats(source.plan, np.ones((source.data.n_rows, 1)), np.ones((1, 1)), None)
        pooled: dict[str, Stats] = {}
        for f, st in stats.items():
            key = graph[f].param
            pooled[key] = st if key not in pooled else pooled[key] + st
        return fit_from_stats(graph, pooled, prior=prior, reg_covar=reg_covar or 0.0, penalty=penalty), None
    result = fit_em(graph, source, prior=prior, reg_covar=1e-6 if reg_covar is None else reg_covar,
                    penalty=penalty, **em)
    return result.cpds, result
