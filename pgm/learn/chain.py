"""Learning sequence models: EM over forward-backward, or counting when every cell is observed.

:class:`SequenceSource` is a data source for :func:`pgm.learn.em.fit_em` (the same loop, start
rules, priors, ties and convergence checks as every directed model): its E-step is
forward-backward (:mod:`pgm.infer.chain`) and its statistics are the posterior-weighted
complete-data statistics of each family, so the M-step is the kinds' ``from_stats``.  The start is
EM's own (:func:`pgm.learn.start.random_start`: random parameters for the families with a latent
member, from the two-slice graph and the moments of the gaussian columns in ``data``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from pgm.cpd.family import CPD, Stats
from pgm.errors import DataError
from pgm.graph import Graph
from pgm.infer.chain import ChainPlan, chain_stats, forward_backward, make_chain_plan, path_posteriors, viterbi
from pgm.infer.enumerate import EStep
from pgm.infer.kalman import KalmanPlan, gaussian_state, kalman, kalman_stats, make_kalman_plan
from pgm.infer.posterior import Posterior
from pgm.learn.driver import Rows
from pgm.learn.stats import pool_stats
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
        # a gaussian hidden state: Kalman filter and smoother (pgm.infer.kalman); else forward-backward
        self.kalman: KalmanPlan | None = make_kalman_plan(graph, data) if gaussian_state(graph) else None
        if self.kalman is not None and data.sequence_weights is not None:
            raise DataError("sequence weights are not supported for a gaussian hidden state (linear dynamical "
                            "systems) yet; drop weights=")
        self.plan: ChainPlan | None = None if self.kalman is not None else make_chain_plan(graph, data)

    @property
    def hidden(self) -> tuple[str, ...]:
        """The slice's hidden variables (latent nodes and nodes with missing cells)."""
        if self.kalman is not None:
            return self.kalman.state + tuple(f for f, m in self.kalman.miss.items() if m.any())
        return self.plan.hidden

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden)

    def observed_stats(self) -> dict[str, Stats]:
        """Every family's statistics come from the E-step (they are weighted by the posteriors)."""
        return {}

    def e_step(self, cpds: dict[str, CPD], rule: Posterior = Posterior.EXACT) -> EStep:
        """Forward-backward's log-likelihood and posterior-weighted statistics; with ``Posterior.HARD``
        (hard EM, Viterbi training) the statistics count each sequence's most probable hidden path
        (the log-likelihood is still the marginal one, as hard EM reports it for other models)."""
        if rule not in (Posterior.EXACT, Posterior.HARD):
            raise DataError(f"{rule.value} EM is not available for sequence models yet; use learner='em'")
        if self.kalman is not None:
            if rule is not Posterior.EXACT:
                raise DataError(f"{rule.value} EM needs discrete hidden states; a gaussian hidden state (a linear "
                                "dynamical system) is fitted with learner='em'")
            res = kalman(self.kalman, cpds)
            return EStep(res.log_likelihood, kalman_stats(self.kalman, cpds, res))
        sm = forward_backward(self.plan, cpds, smooth=rule is Posterior.EXACT)
        refuse_impossible_sequences(self.sequences, sm.sequence_log_likelihood, "EM")
        if rule is Posterior.HARD:
            gamma, xi_shared, xi_rows = path_posteriors(self.plan, viterbi(self.plan, cpds)[0])
            return EStep(sm.log_likelihood, chain_stats(self.plan, gamma, xi_shared, xi_rows))
        return EStep(sm.log_likelihood, chain_stats(self.plan, sm.gamma, sm.xi_shared, sm.xi_rows))

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


def sequence_rows(graph: Graph, source: SequenceSource) -> Rows:
    """Sequences as a source of the directed fit driver (:func:`pgm.learn.driver.fit_directed`):
    counting when no cell is hidden, else EM over forward-backward."""
    def complete(strict: bool) -> dict[str, Stats] | None:
        if source.has_hidden:
            return None
        stats = chain_stats(source.plan, np.ones((source.data.n_rows, 1)), np.ones((1, 1)), None)
        return pool_stats(graph, stats.items())

    return Rows(complete, lambda: source)
