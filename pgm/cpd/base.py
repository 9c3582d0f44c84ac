"""What every CPD kind shares: the family it is fitted on, the kind protocol, and the
helpers for reading and writing parameter blocks.

A *family* is a variable with its parents.  ``assign`` maps variable names to arrays:
discrete codes may have any shape that broadcasts to a common batch shape ``B``
(``(n_rows,)`` for complete data, ``(n_rows, n_joint)`` when EM enumerates the joint
states of hidden parents or children); gaussian values have shape ``(n_rows, dim)``
and are always observed.

A CPD *kind* (table, logistic, linear, noisy-or) is one module in ``pgm/cpd/`` that
defines one object satisfying :class:`CPDKind`; :mod:`pgm.cpd.registry` maps the
schema's ``cpd:`` value to it.  Learners, inference and the fitted model call the
kind and never ask which kind it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from pgm.cpd import config_index
from pgm.errors import ModelError
from pgm.graph import Family, Graph


def families(graph: Graph) -> dict[str, Family]:
    """Every variable's family (the graph computes them once: :attr:`pgm.graph.Graph.families`)."""
    return graph.families


#: A log-table with the names of its axes, in order (a factor, without depending on pgm.infer).
ScopedTable = tuple[tuple[str, ...], np.ndarray]
#: ``moments(names, dim) -> (mean, covariance)`` of the observed values of gaussian nodes.
Moments = Callable[[tuple[str, ...], int], tuple[np.ndarray, np.ndarray]]


class CPDKind(Protocol):
    """Everything about one kind of conditional distribution.

    The CPD objects themselves are small frozen values (``TableCPD``, ...); a kind knows
    how to make them from statistics, evaluate, sample, factorise, save and show them.
    Statistics are frozen values supporting ``+`` (chunks, partitions, tied nodes and
    plate copies merge by addition before ``from_stats`` runs once)."""

    name: str                    #: the schema's ``cpd:`` value
    fields: tuple[str, ...]      #: the keys of its ``params:`` block (any other key is refused)

    def stats(self, fam: Family, assign: dict[str, np.ndarray], n_rows: int,
              weights: np.ndarray | None = None, cache: dict | None = None) -> Any:
        """Sufficient statistics; ``weights`` broadcast to the batch shape (EM posteriors)."""

    def from_stats(self, fam: Family, stats: Any, *, prior: dict | None = None, penalty: float = 0.0,
                   covariance: str = "full", reg_covar: float = 0.0, init: Any = None) -> tuple[Any, np.ndarray]:
        """The fitted CPD and the parent configurations no weight reached (for the learner to report)."""

    def log_prior(self, fam: Family, cpd: Any, prior: dict | None) -> float:
        """The log-prior density of ``cpd`` up to a constant (0 when the kind takes no prior)."""

    def log_prob(self, fam: Family, cpd: Any, assign: dict[str, np.ndarray], n_rows: int,
                 cache: dict | None = None) -> np.ndarray:
        """log p(x_v | parents) for every entry of the batch shape (``cache``: kept across EM iterations)."""

    def sample(self, fam: Family, cpd: Any, values: dict[str, np.ndarray], n: int,
               rng: np.random.Generator) -> np.ndarray:
        """One draw per row given the parents' sampled ``values`` (codes (n,), gaussian values (n, d))."""

    def log_factor(self, fam: Family, cpd: Any, observed: np.ndarray | None) -> ScopedTable:
        """(scope, log-table) for exact inference over discrete variables; ``observed`` is the value
        of a gaussian child (its factor is then over the parents only)."""

    def to_params(self, graph: Graph, fam: Family, cpd: Any) -> dict[str, Any]:
        """The ``params:`` block: plain lists and floats."""

    def from_params(self, graph: Graph, fam: Family, block: dict[str, Any], where: str) -> Any:
        """Read and check a ``params:`` block (``where`` names it in errors)."""

    def frame(self, graph: Graph, fam: Family, cpd: Any) -> pd.DataFrame:
        """A labelled view for :meth:`pgm.FittedModel.cpd`."""

    def n_params(self, graph: Graph, fam: Family) -> int:
        """Free parameters."""

    def random_start(self, graph: Graph, fam: Family, moments: Moments, rng: np.random.Generator,
                     reg_covar: float) -> Any:
        """Random parameters for EM's start of a hidden family; ``moments(names, dim)`` gives the mean
        and covariance of the observed values of gaussian nodes (pooled over ``names``)."""

    def init_shapes(self, fam: Family) -> tuple[type, dict[str, tuple[int, ...]]]:
        """The CPD class and the shapes of its arrays, to check parameters given as EM's start."""

    def same_across(self, fam: Family, axis: int, cpd: Any, tol: float) -> bool:
        """Whether the distribution is the same (to ``tol``) for every state of discrete parent ``axis``."""


# --------------------------------------------------------------- assignments

def configs(fam: Family, assign: dict[str, np.ndarray]) -> Any:
    """Mixed-radix index of the discrete-parent configuration (0 without discrete parents)."""
    return config_index([assign[p] for p in fam.disc], fam.cards)


def continuous(fam: Family, assign: dict[str, np.ndarray]) -> np.ndarray | None:
    """The gaussian parents' values side by side, (n_rows, cont_dim), or None."""
    if not fam.cont:
        return None
    blocks = [assign[p] for p in fam.cont]
    return blocks[0] if len(blocks) == 1 else np.hstack(blocks)


def batch_shape(fam: Family, assign: dict[str, np.ndarray], n_rows: int) -> tuple[int, ...]:
    """The broadcast shape of the family's discrete codes, with the row axis made explicit."""
    names = fam.disc + ((fam.name,) if fam.var.discrete else ())
    shape = np.broadcast_shapes(*(np.shape(assign[m]) for m in names)) if names else ()
    return (n_rows,) + tuple(shape[1:])


def all_configs(fam: Family) -> np.ndarray:
    """The codes of every discrete-parent configuration in index order: (n_configs, n_disc)."""
    if not fam.cards:
        return np.zeros((1, 0), dtype=np.int64)
    return np.indices(fam.cards).reshape(len(fam.cards), -1).T


def config_labels(graph: Graph, fam: Family) -> pd.Index | None:
    """The discrete-parent configurations as a labelled index (None without discrete parents)."""
    if len(fam.cards) == 1:  # a plain Index: a one-level MultiIndex would make labels 1-tuples
        return pd.Index(list(graph[fam.disc[0]].labels), name=graph.shown(fam.name, fam.disc[0]))
    if fam.cards:
        return pd.MultiIndex.from_product([list(graph[p].labels) for p in fam.disc],
                                          names=[graph.shown(fam.name, p) for p in fam.disc])
    return None


def same_along(arrays: list[np.ndarray], fam: Family, axis: int, tol: float) -> bool:
    """Whether arrays with a leading configuration axis are the same (to ``tol`` times their scale)
    for every state of discrete parent ``axis``."""
    for a in arrays:
        a = np.moveaxis(np.asarray(a).reshape(fam.cards + a.shape[1:]), axis, 0)
        scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
        if np.max(np.abs(a - a[:1]), initial=0.0) > tol * scale:
            return False
    return True


def lead(fam: Family) -> tuple[int, ...]:
    """The leading configuration axis of a params array: omitted without discrete parents."""
    return (fam.n_configs,) if fam.cards else ()


# --------------------------------------------------------------- params blocks

def floats(value: Any) -> Any:
    return np.asarray(value, dtype=float).tolist()


def only_numbers(value: Any) -> bool:
    """True when ``value`` is a number or (nested) lists of numbers: not text, not booleans.

    numpy would turn ``"0.5"`` and ``true`` into floats; a hand-edited file must not pass that way."""
    try:
        leaves = np.asarray(value, dtype=object).ravel()
    except (TypeError, ValueError):  # ragged lists
        return False
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in leaves)


def read_array(block: dict, field_: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``block[field_]`` as a finite float array of exactly ``shape``, or a ModelError naming it."""
    if field_ == "coef" and field_ not in block and shape and shape[-1] == 0:
        return np.zeros(shape)
    if field_ not in block:
        raise ModelError(f"{where}: missing `{field_}`; a fitted node of this kind needs it")
    if not only_numbers(block[field_]):
        raise ModelError(f"{where}.{field_}: expected numbers in an array of shape {shape} "
                         "(not text, booleans or ragged lists)")
    try:
        arr = np.asarray(block[field_], dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelError(f"{where}.{field_}: expected numbers in an array of shape {shape}") from None
    if arr.shape != shape:
        raise ModelError(f"{where}.{field_}: expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{where}.{field_}: values must be finite numbers")
    return arr
