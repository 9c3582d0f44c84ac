"""Learners, and the table that picks one from facts of the graph and the data.

========================  ==========================================
facts                     learner
========================  ==========================================
undirected graph          ``"lbfgs"`` (log-linear, exact gradient)
latent nodes or NaN       ``"em"``; ``"variational"`` when exact inference is over budget
every node observed       ``"mle"`` (closed form / convex per family)
========================  ==========================================

Named only: ``"hard-em"``, and the sampling E-steps ``"mcem"`` / ``"stochastic-em"`` (:mod:`pgm.learn.mcem`).
"""

from __future__ import annotations

import numpy as np

from pgm.encode import EncodedData, row_labels
from pgm.errors import DataError, PGMError
from pgm.graph import Graph
from pgm.infer.posterior import Posterior

DIRECTED_LEARNERS = ("mle", "em", "hard-em", "variational", "mcem", "stochastic-em")
UNDIRECTED_LEARNERS = ("lbfgs", "gradient", "coordinate", "pcd", "pseudo")
#: The posterior rule of each EM learner's E-step.
POSTERIOR_RULES = {rule.learner: rule for rule in Posterior}


def choose(graph: Graph, data: EncodedData, learner: str | None = None) -> str:
    """The learner for this graph and data; ``learner`` overrides it when it can work."""
    hidden = [n for n in graph.order if graph[n].latent]
    if not graph.directed:
        if learner is None:
            return "lbfgs"
        if learner not in UNDIRECTED_LEARNERS:
            raise PGMError(f"learner={learner!r} does not fit an undirected model; use one of "
                           f"{', '.join(UNDIRECTED_LEARNERS)}")
        return learner
    if learner is None:
        return "em" if hidden or data.has_missing else "mle"
    if learner not in DIRECTED_LEARNERS:
        raise PGMError(f"learner={learner!r} does not fit a directed model; use one of {', '.join(DIRECTED_LEARNERS)}")
    if learner == "mle" and hidden:
        raise PGMError(f"nodes {[graph[n].decl for n in hidden][:5]} are latent; learner='mle' needs every node "
                       "observed: use learner='em'")
    if learner == "mle" and data.has_missing:
        cols = sorted(data.missing)[:5]
        rows = np.flatnonzero(data.missing[cols[0]])
        raise DataError(f"columns {cols} have missing cells (column {cols[0]!r}: {len(rows)} "
                        f"row{'s' if len(rows) > 1 else ''}, first {row_labels(data, rows[:5])}); learner='mle' "
                        "needs complete data: "
                        "use learner='em' (the default for missing data) or drop those rows")
    return learner
