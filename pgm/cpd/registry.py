"""The one map from the schema's ``cpd:`` value to the kind that implements it.

Adding a CPD kind is one module in ``pgm/cpd/`` defining an object that satisfies
:class:`pgm.cpd.base.CPDKind`, one line here, and the value in the schema's ``cpd:``
literal (with its structural checks).  Everything else calls the kind.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from pgm.cpd.base import CPDKind, Family
from pgm.cpd.linear import LINEAR, GaussStats, LinearCPD
from pgm.cpd.logistic import LOGISTIC, LogisticCPD, LogisticStats
from pgm.cpd.noisy_or import NOISY_OR, NoisyOrCPD
from pgm.cpd.table import TABLE, TableCPD, TableStats

CPD = Union[TableCPD, LinearCPD, LogisticCPD, NoisyOrCPD]
Stats = Union[TableStats, GaussStats, LogisticStats]

KINDS: dict[str, CPDKind] = {kind.name: kind for kind in (TABLE, LOGISTIC, LINEAR, NOISY_OR)}


def kind_of(fam: Family) -> CPDKind:
    """The kind of a family's CPD (its variable's ``cpd:``)."""
    return KINDS[fam.kind]


def family_log_prob(fam: Family, cpd: CPD, assign: dict[str, np.ndarray], n_rows: int,
                    cache: dict | None = None) -> np.ndarray:
    """log p(x_v | parents) for every entry of the batch shape.

    ``cache`` (a dict kept by the caller across EM iterations) lets mixture families
    reuse their data products."""
    return kind_of(fam).log_prob(fam, cpd, assign, n_rows, cache)


def family_stats(fam: Family, assign: dict[str, np.ndarray], n_rows: int,
                 weights: np.ndarray | None = None, cache: dict | None = None) -> Stats:
    """Sufficient statistics of the family; ``weights`` broadcast to the batch shape (EM posteriors)."""
    return kind_of(fam).stats(fam, assign, n_rows, weights, cache)


def fit_cpd(fam: Family, stats: Stats, *, prior: dict | None = None, penalty: float = 0.0,
            covariance: str = "full", reg_covar: float = 0.0, init: Any = None) -> tuple[CPD, np.ndarray]:
    """``from_stats`` for the family's CPD kind; returns the CPD and its unseen parent configurations."""
    return kind_of(fam).from_stats(fam, stats, prior=prior, penalty=penalty, covariance=covariance,
                                   reg_covar=reg_covar, init=init)
