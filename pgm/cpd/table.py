"""Table CPD: p(x = k | parents = c) = theta[c, k], fitted by counting.

Sufficient statistics are the counts n[c, k] (one ``np.bincount`` over the
mixed-radix index ``c * n_states + k``); the MLE is ``n[c, k] / n[c, :]`` and a
Dirichlet prior adds pseudo-counts first.  A parent configuration with no
weight (and no prior) gets the uniform distribution, and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pgm.cpd.base import Family, Moments, ScopedTable, config_labels, configs, floats, lead, read_array, same_along
from pgm.cpd.counts import TableStats, family_table_stats, prior_pseudo_counts, table_stats
from pgm.errors import ModelError
from pgm.graph import Graph

#: EM's random start floors hidden table cells at this fraction of the uniform probability.
START_FLOOR = 1e-3

__all__ = ["TABLE", "TableCPD", "TableKind", "TableStats", "dirichlet_log_prior", "family_table_stats",
           "prior_pseudo_counts", "table_from_stats", "table_stats"]


def table_from_stats(stats: TableStats, prior: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MLE of a table CPD, or its estimate under a Dirichlet prior: ``(n + a)`` normalised per row.

    ``(n[c, k] + a[c, k]) / sum_j (n[c, j] + a[c, j])`` is the posterior mean under the prior
    Dirichlet(a) (pgmpy's BayesianEstimator), which is also the posterior mode under Dirichlet(a + 1):
    EM maximises ``log L + sum a log theta`` with it (see :func:`pgm.learn.em.fit_em`).

    Returns
    -------
    probs : array of shape (n_configs, n_states), rows summing to one
    unseen : int array, the parent configurations with zero total weight (made uniform)
    """
    n_configs, n_states = stats.counts.shape
    counts = stats.counts + prior_pseudo_counts(prior, n_configs, n_states)
    totals = counts.sum(axis=1, keepdims=True)
    unseen = np.flatnonzero(totals[:, 0] <= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = counts / totals
    if unseen.size:
        probs[unseen] = 1.0 / n_states
    return probs, unseen


@dataclass(frozen=True)
class TableCPD:
    """A fitted table; ``probs`` has shape (n_configs, n_states)."""

    probs: np.ndarray

    @property
    def n_states(self) -> int:
        return self.probs.shape[1]

    @property
    def log_probs(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.probs)

    def log_prob(self, child: np.ndarray, configs: np.ndarray | int) -> np.ndarray:
        """log p(child | configs), broadcasting child and configs."""
        return self.log_probs[configs, child]

    def sample(self, configs: np.ndarray | int, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """One draw per row by inverse CDF on the row of each configuration."""
        cdf = np.cumsum(self.probs, axis=1)
        cdf[:, -1] = 1.0
        rows = cdf[np.broadcast_to(configs, (n_rows,))]
        u = rng.random(n_rows)[:, None]
        return (u >= rows).sum(axis=1).astype(np.int64).clip(0, self.n_states - 1)

    @staticmethod
    def check(probs: np.ndarray, where: str, atol: float = 1e-6) -> np.ndarray:
        """Validate a table read from a file: finite, in [0, 1], rows summing to one."""
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or np.any(probs > 1 + atol):
            raise ModelError(f"{where}: probabilities must be finite numbers in [0, 1]")
        sums = probs.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > atol)
        if bad.size:
            raise ModelError(f"{where}: row {int(bad[0])} sums to {sums[bad[0]]:.6g}, not 1; "
                             "fix the probabilities so each row sums to one")
        return probs


def dirichlet_log_prior(probs: np.ndarray, prior: dict | None) -> float:
    """sum of a[c, k] * log(theta[c, k]) over the cells of a (n_configs, n_states) table, ``a`` the
    prior's pseudo-counts (per cell, per state or one number): the log-density of Dirichlet(a + 1) up to
    a constant, which the ``(n + a)`` normalised estimate maximises with the log-likelihood."""
    a = prior_pseudo_counts(prior, *probs.shape)
    if not np.any(a):
        return 0.0
    return float(np.sum(a * np.log(np.maximum(probs, 1e-300))))


class TableKind:
    """``cpd: table`` -- one probability per (parent configuration, state)."""

    name = "table"
    fields = ("table",)

    def stats(self, fam: Family, assign: dict[str, np.ndarray], n_rows: int,
              weights: np.ndarray | None = None, cache: dict | None = None) -> TableStats:
        return family_table_stats(fam, assign, n_rows, weights)

    def from_stats(self, fam: Family, stats: TableStats, *, prior: dict | None = None, penalty: float = 0.0,
                   covariance: str = "full", reg_covar: float = 0.0,
                   init: Any = None) -> tuple[TableCPD, np.ndarray]:
        probs, unseen = table_from_stats(stats, prior)
        return TableCPD(probs), unseen

    def log_prior(self, fam: Family, cpd: TableCPD, prior: dict | None) -> float:
        return dirichlet_log_prior(cpd.probs, prior)

    def log_prob(self, fam: Family, cpd: TableCPD, assign: dict[str, np.ndarray], n_rows: int,
                 cache: dict | None = None) -> np.ndarray:
        return cpd.log_prob(assign[fam.name], configs(fam, assign))

    def sample(self, fam: Family, cpd: TableCPD, values: dict[str, np.ndarray], n: int,
               rng: np.random.Generator) -> np.ndarray:
        return cpd.sample(configs(fam, values), n, rng)

    def log_factor(self, fam: Family, cpd: TableCPD, observed: np.ndarray | None) -> ScopedTable:
        return fam.disc + (fam.name,), cpd.log_probs.reshape(fam.cards + (fam.var.n_states,))

    def to_params(self, graph: Graph, fam: Family, cpd: TableCPD) -> dict[str, Any]:
        return {"table": floats(cpd.probs[0] if not fam.cards else cpd.probs)}

    def from_params(self, graph: Graph, fam: Family, block: dict[str, Any], where: str) -> TableCPD:
        k = fam.var.n_states
        probs = read_array(block, "table", lead(fam) + (k,), where).reshape(fam.n_configs, k)
        return TableCPD(TableCPD.check(probs, f"{where}.table"))

    def frame(self, graph: Graph, fam: Family, cpd: TableCPD) -> pd.DataFrame:
        """Rows are parent configurations (a MultiIndex for several parents), columns the states."""
        index = config_labels(graph, fam)
        frame = pd.DataFrame(cpd.probs, columns=pd.Index(list(fam.var.labels), name=fam.var.decl))
        frame.index = index if index is not None else [""]
        return frame

    def n_params(self, graph: Graph, fam: Family) -> int:
        return (fam.var.n_states - 1) * fam.n_configs

    def random_start(self, graph: Graph, fam: Family, moments: Moments, rng: np.random.Generator,
                     reg_covar: float) -> TableCPD:
        """Dirichlet(1) rows, floored at START_FLOOR / n_states so that no cell is zero."""
        k = fam.var.n_states
        probs = rng.dirichlet(np.ones(k), size=fam.n_configs)
        return TableCPD((1.0 - START_FLOOR) * probs + START_FLOOR / k)

    def init_shapes(self, fam: Family) -> tuple[type, dict[str, tuple[int, ...]]]:
        return TableCPD, {"probs": (fam.n_configs, fam.var.n_states)}

    def same_across(self, fam: Family, axis: int, cpd: TableCPD, tol: float) -> bool:
        return same_along([cpd.probs], fam, axis, tol)


TABLE = TableKind()
