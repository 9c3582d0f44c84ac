"""Statistics algebra: the one place statistics keyed by name are added up.

Every directed learner works from sufficient statistics that are sums over rows (each kind's
statistics support ``+``; see :mod:`pgm.cpd`), so the parts of anything merge key by key: chunks
of a file, Dask partitions, tied nodes and plate copies (pooled under their parameter key), and
EM's constant and expected statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pgm.cpd.family import Stats
from pgm.graph import Graph


def add_stats(a: dict[str, Stats], b: dict[str, Stats]) -> dict[str, Stats]:
    """Key-wise sum of two statistics mappings (a key in one only is kept as is)."""
    out = dict(a)
    for key, st in b.items():
        out[key] = st if key not in out else out[key] + st
    return out


def pool_stats(graph: Graph, by_family: Iterable[tuple[str, Stats]]) -> dict[str, Stats]:
    """Statistics of families (``(variable, stats)`` pairs) summed under their parameter keys
    (tied nodes and plate copies share one), in the order given."""
    pooled: dict[str, Stats] = {}
    for name, st in by_family:
        key = graph[name].param
        pooled[key] = st if key not in pooled else pooled[key] + st
    return pooled


@dataclass
class StatsSum:
    """Statistics keyed by name, summed over the parts of a data source with ``+``."""

    stats: dict[str, Stats]

    def __add__(self, other: "StatsSum") -> "StatsSum":
        return StatsSum(add_stats(self.stats, other.stats))


@dataclass
class Partial:
    """A log-likelihood and statistics summed over parts of a data source with ``+``."""

    log_likelihood: float
    stats: dict[str, Stats]

    def __add__(self, other: "Partial") -> "Partial":
        return Partial(self.log_likelihood + other.log_likelihood, add_stats(self.stats, other.stats))
