"""Counts of (parent configuration, state): the sufficient statistics of every CPD kind over a
discrete child with discrete parents (table, noisy-or), and the Dirichlet pseudo-counts added to them.

Counts are one ``np.bincount`` over the mixed-radix index ``c * n_states + k``; under EM the
weights are posteriors over the joint states of hidden members, broadcast along a second axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pgm.cpd.base import Family, configs
from pgm.errors import ModelError


@dataclass(frozen=True)
class TableStats:
    """counts : float array of shape (n_configs, n_states)."""

    counts: np.ndarray

    def __add__(self, other: "TableStats") -> "TableStats":
        return TableStats(self.counts + other.counts)


def table_stats(child: np.ndarray, configs: np.ndarray | int, n_configs: int, n_states: int,
                weights: np.ndarray | None = None) -> TableStats:
    """Weighted counts of (parent configuration, state).

    Parameters
    ----------
    child : int array of shape (n_rows,), codes in ``0..n_states-1``
    configs : int array of shape (n_rows,) (mixed-radix parent configuration) or 0
    weights : float array of shape (n_rows,) or None
    """
    if isinstance(configs, int) and configs == 0:
        idx = child
    else:
        idx = np.asarray(configs, dtype=np.int64) * n_states + child
    counts = np.bincount(idx, weights=weights, minlength=n_configs * n_states)
    return TableStats(counts.reshape(n_configs, n_states).astype(np.float64, copy=False))


def family_table_stats(fam: Family, assign: dict[str, np.ndarray], n_rows: int,
                       weights: np.ndarray | None = None) -> TableStats:
    """Counts of (parent configuration, state) of a discrete family, any batch shape (EM's joint axis)."""
    child = assign[fam.name]
    cfg = configs(fam, assign)
    if weights is None and np.ndim(child) == 1 and np.ndim(cfg) <= 1:
        return table_stats(child, cfg, fam.n_configs, fam.var.n_states)
    shape = np.broadcast_shapes(np.shape(child), np.shape(cfg), np.shape(weights) if weights is not None else ())
    idx = np.broadcast_to(np.asarray(cfg, dtype=np.int64) * fam.var.n_states + child, shape).reshape(-1)
    w = None if weights is None else np.broadcast_to(weights, shape).reshape(-1)
    return table_stats(idx, 0, fam.n_configs, fam.var.n_states, w)


def prior_pseudo_counts(prior: dict | None, n_configs: int, n_states: int) -> float | np.ndarray:
    """Pseudo-counts of the cells of a (n_configs, n_states) table.

    ``dirichlet: a`` -> the number ``a`` for every cell; ``dirichlet: [a_1, ..., a_k]`` -> an
    array of shape (1, n_states), the same row for every parent configuration;
    ``dirichlet: [[...], ...]`` -> the array of shape (n_configs, n_states) itself;
    ``bdeu: ess`` -> the number ``ess / (n_configs * n_states)``.  Either way the result
    broadcasts against the counts.
    """
    if not prior:
        return 0.0
    a = prior.get("dirichlet")
    if a is not None:
        if not isinstance(a, (list, tuple, np.ndarray)):
            return float(a)
        arr = np.asarray(a, dtype=np.float64)
        want = (n_states,) if arr.ndim == 1 else (n_configs, n_states)
        if arr.shape != want or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ModelError(f"prior dirichlet: expected finite pseudo-counts >= 0 of shape {want} (one per state, "
                             f"or one row of {n_states} per parent configuration), got shape {arr.shape}")
        return arr.reshape(-1, n_states)
    if prior.get("bdeu") is not None:
        return float(prior["bdeu"]) / (n_configs * n_states)
    return 0.0
