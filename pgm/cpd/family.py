"""A variable with its parents: the unit every CPD is fitted and evaluated on.

``assign`` maps variable names to arrays.  Discrete codes may have any shape
that broadcasts to a common batch shape ``B`` (``(n_rows,)`` for complete data,
``(n_rows, n_joint)`` when EM enumerates the joint states of hidden parents or
children); gaussian values have shape ``(n_rows, dim)`` and are always observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.linear import GaussStats, LinearCPD, gauss_stats, linear_from_stats, moments, quad_log_prob_all, quad_stats
from pgm.cpd.logistic import LogisticCPD, LogisticStats, logistic_features, logistic_from_stats, logistic_stats
from pgm.cpd.table import TableCPD, TableStats, table_from_stats, table_stats
from pgm.graph import Graph, Variable

CPD = Union[TableCPD, LinearCPD, LogisticCPD]
Stats = Union[TableStats, GaussStats, LogisticStats]


@dataclass(frozen=True)
class Family:
    var: Variable
    disc: tuple[str, ...]        # discrete parents, in declared order
    cards: tuple[int, ...]
    cont: tuple[str, ...]        # gaussian parents, in declared order
    cont_dim: int

    @property
    def name(self) -> str:
        return self.var.name

    @property
    def kind(self) -> str:
        return self.var.cpd if self.var.discrete else "linear"

    @property
    def n_configs(self) -> int:
        return int(np.prod(self.cards)) if self.cards else 1

    @property
    def members(self) -> tuple[str, ...]:
        return (self.var.name,) + self.var.parents


def families(graph: Graph) -> dict[str, Family]:
    out = {}
    for name in graph.order:
        var = graph[name]
        disc = tuple(p for p in var.parents if graph[p].discrete)
        cont = tuple(p for p in var.parents if not graph[p].discrete)
        out[name] = Family(var, disc, tuple(graph[p].n_states for p in disc), cont,
                           sum(graph[p].dim for p in cont))
    return out


def _configs(fam: Family, assign: dict[str, np.ndarray]) -> Any:
    return config_index([assign[p] for p in fam.disc], fam.cards)


def _cont(fam: Family, assign: dict[str, np.ndarray]) -> np.ndarray | None:
    if not fam.cont:
        return None
    blocks = [assign[p] for p in fam.cont]
    return blocks[0] if len(blocks) == 1 else np.hstack(blocks)


def _logistic_design(fam: Family, assign: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Features phi(u) for every entry of the batch shape, flattened: (prod(shape), q)."""
    n = int(np.prod(shape))
    disc = [(np.broadcast_to(assign[p], shape).reshape(-1), k) for p, k in zip(fam.disc, fam.cards)]
    cont = []
    for p in fam.cont:
        v = assign[p]  # (n_rows, d): repeat over the joint-state axes
        reps = n // len(v)
        cont.append(np.repeat(v, reps, axis=0) if reps > 1 else v)
    return logistic_features(disc, cont, n)


def batch_shape(fam: Family, assign: dict[str, np.ndarray], n_rows: int) -> tuple[int, ...]:
    """The broadcast shape of the family's discrete codes, with the row axis made explicit."""
    names = fam.disc + ((fam.name,) if fam.var.discrete else ())
    shape = np.broadcast_shapes(*(np.shape(assign[m]) for m in names)) if names else ()
    return (n_rows,) + tuple(shape[1:])


def _moments(fam: Family, assign: dict[str, np.ndarray], cache: dict | None):
    """Cached data products of a mixture family (gaussian child, only discrete parents)."""
    if cache is None or fam.cont:
        return None
    key = ("moments", fam.name)
    if key not in cache:
        cache[key] = moments(assign[fam.name])
    return cache[key]


def _is_joint_index(configs: np.ndarray, n_configs: int) -> bool:
    """True when the configuration axis is exactly the joint-state axis (a plain mixture)."""
    return (np.ndim(configs) == 2 and np.shape(configs) == (1, n_configs)
            and bool(np.array_equal(np.asarray(configs)[0], np.arange(n_configs))))


def family_log_prob(fam: Family, cpd: CPD, assign: dict[str, np.ndarray], n_rows: int,
                    cache: dict | None = None) -> np.ndarray:
    """log p(x_v | parents) for every entry of the batch shape.

    ``cache`` (a dict kept by the caller across EM iterations) lets mixture families
    reuse their data products."""
    if isinstance(cpd, TableCPD):
        return cpd.log_prob(assign[fam.name], _configs(fam, assign))
    if isinstance(cpd, LinearCPD):
        y = assign[fam.name]
        x = _cont(fam, assign)
        configs = _configs(fam, assign)
        if np.ndim(configs) <= 1:
            return cpd.log_prob(y, x, configs)
        mom = _moments(fam, assign, cache)
        table = quad_log_prob_all(cpd, mom) if mom is not None else cpd.log_prob_all(y, x)  # (n_rows, C)
        if _is_joint_index(configs, fam.n_configs):
            return table
        configs = np.broadcast_to(configs, (n_rows,) + np.shape(configs)[1:])
        return np.take_along_axis(table, configs.reshape(n_rows, -1), axis=1).reshape(configs.shape)
    shape = batch_shape(fam, assign, n_rows)
    feats = _logistic_design(fam, assign, shape)
    child = np.broadcast_to(assign[fam.name], shape).reshape(-1)
    return cpd.log_prob(child, feats).reshape(shape)


def family_stats(fam: Family, assign: dict[str, np.ndarray], n_rows: int,
                 weights: np.ndarray | None = None, cache: dict | None = None) -> Stats:
    """Sufficient statistics of the family; ``weights`` broadcast to the batch shape (EM posteriors)."""
    if fam.kind == "table":
        child = assign[fam.name]
        configs = _configs(fam, assign)
        if weights is None and np.ndim(child) == 1 and np.ndim(configs) <= 1:
            return table_stats(child, configs, fam.n_configs, fam.var.n_states)
        shape = np.broadcast_shapes(np.shape(child), np.shape(configs), np.shape(weights) if weights is not None else ())
        idx = np.broadcast_to(np.asarray(configs, dtype=np.int64) * fam.var.n_states + child, shape).reshape(-1)
        w = None if weights is None else np.broadcast_to(weights, shape).reshape(-1)
        return table_stats(idx, 0, fam.n_configs, fam.var.n_states, w)
    if fam.kind == "linear":
        y = assign[fam.name]
        x = _cont(fam, assign)
        z = y if x is None else np.hstack([x, y])
        configs = _configs(fam, assign)
        if weights is not None and np.ndim(weights) == 2:
            mom = _moments(fam, assign, cache)
            if _is_joint_index(configs, fam.n_configs) and weights.shape == (n_rows, fam.n_configs):
                resp = weights
                return quad_stats(mom, resp) if mom is not None else gauss_stats(z, 0, fam.n_configs, resp=resp)
            configs = np.broadcast_to(configs, weights.shape)
            rows = np.broadcast_to(np.arange(n_rows)[:, None], weights.shape)
            resp = np.bincount((rows * fam.n_configs + configs).reshape(-1), weights=weights.reshape(-1),
                               minlength=n_rows * fam.n_configs).reshape(n_rows, fam.n_configs)
            return quad_stats(mom, resp) if mom is not None else gauss_stats(z, 0, fam.n_configs, resp=resp)
        return gauss_stats(z, configs, fam.n_configs, weights=weights)
    shape = batch_shape(fam, assign, n_rows)
    feats = _logistic_design(fam, assign, shape)
    child = np.broadcast_to(assign[fam.name], shape).reshape(-1)
    w = None if weights is None else np.broadcast_to(weights, shape).reshape(-1)
    return logistic_stats(feats, child, fam.var.n_states, weights=w)


def fit_cpd(fam: Family, stats: Stats, *, prior: dict | None = None, penalty: float = 0.0,
            covariance: str = "full", reg_covar: float = 0.0, init: CPD | None = None) -> tuple[CPD, np.ndarray]:
    """``from_stats`` for the family's CPD kind; returns the CPD and its unseen parent configurations."""
    if isinstance(stats, TableStats):
        probs, unseen = table_from_stats(stats, prior)
        return TableCPD(probs), unseen
    if isinstance(stats, GaussStats):
        return linear_from_stats(stats, fam.cont_dim, covariance, reg_covar, fam.var.decl)
    start = init if isinstance(init, LogisticCPD) else None
    return logistic_from_stats(stats, penalty, init=start, name=fam.var.decl), np.zeros(0, dtype=int)
