"""Learning sequence models: EM over forward-backward, or counting when every cell is observed.

:class:`SequenceSource` is a data source for :func:`pgm.learn.em.fit_em` (the same loop, start
rules, priors, ties and convergence checks as every directed model): its E-step is
forward-backward (:mod:`pgm.infer.chain`) and its statistics are the posterior-weighted
complete-data statistics of each family, so the M-step is the kinds' ``from_stats``.  The start is
EM's own (:func:`pgm.learn.start.random_start`: random parameters for the families with a latent
member, from the two-slice graph and the moments of the gaussian columns in ``data``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from pgm.cpd.family import CPD, Stats
from pgm.errors import DataError, ModelError
from pgm.graph import Graph
from pgm.infer.chain import ChainPlan, chain_stats, forward_backward, make_chain_plan, path_posteriors, viterbi
from pgm.infer.enumerate import EStep
from pgm.infer.kalman import KalmanPlan, gaussian_state, kalman, kalman_stats, make_kalman_plan
from pgm.infer.posterior import Posterior
from pgm.learn.driver import Rows
from pgm.learn.stats import add_stats, pool_stats
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
        """Hidden cells to sum out: hidden states, or gaussian vectors partly missing (EM conditions them)."""
        return bool(self.hidden) or (self.plan is not None and bool(self.plan.partial_child))

    def complete_stats(self) -> dict[str, Stats]:
        """Each family's complete-data statistics (every cell observed: no posterior to weigh them)."""
        return chain_stats(self.plan, np.ones((self.data.n_rows, 1)), np.ones((1, 1)), None)

    def observed_stats(self) -> dict[str, Stats]:
        """Every family's statistics come from the E-step (they are weighted by the posteriors)."""
        return {}

    def e_step(self, cpds: dict[str, CPD], rule: Posterior = Posterior.EXACT) -> EStep:
        """Forward-backward's log-likelihood and posterior-weighted statistics; with ``Posterior.HARD``
        (hard EM, Viterbi training) the statistics count each sequence's most probable hidden path
        (the log-likelihood is still the marginal one, as hard EM reports it for other models)."""
        if rule not in (Posterior.EXACT, Posterior.HARD):
            raise ModelError(f"{rule.value} EM is not available for sequence models yet; use learner='em'")
        if self.kalman is not None:
            if rule is not Posterior.EXACT:
                raise ModelError(f"{rule.value} EM needs discrete hidden states; a gaussian hidden state (a linear "
                                "dynamical system) is fitted with learner='em'")
            res = kalman(self.kalman, cpds)
            return EStep(res.log_likelihood, kalman_stats(self.kalman, cpds, res))
        sm = forward_backward(self.plan, cpds, smooth=rule is Posterior.EXACT)
        refuse_impossible_sequences(self.sequences, sm.sequence_log_likelihood, "EM")
        if rule is Posterior.HARD:
            gamma, xi_shared, xi_rows = path_posteriors(self.plan, viterbi(self.plan, cpds)[0])
            return EStep(sm.log_likelihood, chain_stats(self.plan, gamma, xi_shared, xi_rows, cpds))
        return EStep(sm.log_likelihood, chain_stats(self.plan, sm.gamma, sm.xi_shared, sm.xi_rows, cpds))

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


class SequenceParts:
    """Sequences in parts, each holding whole sequences (a file's buckets; see :mod:`pgm.seqstream`),
    as a data source of :func:`pgm.learn.em.fit_em`.

    Forward-backward runs on each part in turn: a sequence's posteriors depend on its own rows only,
    so the log-likelihoods and expected statistics of the parts add up to those of all the sequences
    at once, and EM's start (built from sums over every part) is the in-memory one.

    parts : ``parts()`` -> an iterator of :class:`SequenceSource`, one per part, in a fixed order
    hidden : the slice variables hidden in some part (their union is what one source of every row has)
    where : how messages name the data (a file)
    partial : some part has gaussian vectors partly missing in a row (EM conditions them, as it does
        hidden cells)
    """

    def __init__(self, graph: Graph, parts: Callable[[], Iterator[SequenceSource]], hidden: tuple[str, ...],
                 where: str = "", partial: bool = False) -> None:
        self.graph = graph
        self.parts = parts
        self.hidden = tuple(v for v in graph.slice if v in hidden)
        self.where = where
        self.partial = partial

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden) or self.partial

    def observed_stats(self) -> dict[str, Stats]:
        return {}

    def e_step(self, cpds: dict[str, CPD], rule: Posterior = Posterior.EXACT) -> EStep:
        log_likelihood, stats = 0.0, {}
        for part in self.parts():
            try:
                es = part.e_step(cpds, rule)
            except DataError as exc:
                raise DataError(f"{self.where}: {exc}" if self.where else str(exc)) from None
            log_likelihood += es.log_likelihood
            stats = add_stats(stats, es.stats)
        return EStep(log_likelihood, stats)

    def map_sum(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The sum of ``fn(part, *args)`` over the parts (EM's start)."""
        total = None
        for part in self.parts():
            value = fn(part, *args)
            total = value if total is None else total + value
        return total

    def complete_stats(self) -> dict[str, Stats]:
        total: dict[str, Stats] = {}
        for part in self.parts():
            total = add_stats(total, part.complete_stats())
        return total


def sequence_rows(graph: Graph, source: Any, info: dict[str, Any] | None = None) -> Rows:
    """Sequences (a :class:`SequenceSource`, :class:`SequenceParts`, or Dask partitions of whole
    sequences) as a source of the directed fit driver (:func:`pgm.learn.driver.fit_directed`):
    counting when no cell is hidden, else EM over forward-backward."""
    def complete(strict: bool) -> dict[str, Stats] | None:
        if source.has_hidden:
            return None
        return pool_stats(graph, source.complete_stats().items())

    return Rows(complete, lambda: source, info=dict(info or {}))
