"""Log-factors: a scope of variables and a table of log-values, one axis per variable.

A factor may carry one leading *batch* axis (one table per data row), which every
operation keeps: ``table.shape == (n_rows,) + cards`` instead of ``cards``.  Tables
hold logarithms; ``-inf`` is a zero of the potential.  Sums over variables are
log-sum-exp with the maximum over the summed axes subtracted first (exact for every
output entry: nothing overflows, and the largest term of each sum is exactly 1).

>>> import numpy as np
>>> a = LogFactor(("x", "y"), np.log([[1.0, 2.0], [3.0, 4.0]]))
>>> b = LogFactor(("y",), np.log([10.0, 1.0]))
>>> m = marginalize(product([a, b]), ("x",))
>>> np.round(np.exp(m.table), 6).tolist()
[12.0, 34.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogFactor:
    """A log-potential over ``variables``.

    Attributes
    ----------
    variables : tuple of str
        the scope, one table axis per variable (after the batch axis, if any).
    table : float array of shape ``cards`` or ``(n_batch,) + cards``
        log-values; ``-inf`` marks an impossible joint state.
    """

    variables: tuple[str, ...]
    table: np.ndarray

    def __post_init__(self) -> None:
        extra = self.table.ndim - len(self.variables)
        if extra not in (0, 1):
            raise ValueError(f"a factor over {len(self.variables)} variables needs a table with "
                             f"{len(self.variables)} axes (or one more for a batch), got shape {self.table.shape}")
        if len(set(self.variables)) != len(self.variables):
            raise ValueError(f"a factor's scope lists a variable twice: {self.variables}")

    @property
    def batched(self) -> bool:
        """Whether the table has a leading batch axis."""
        return self.table.ndim == len(self.variables) + 1

    @property
    def cards(self) -> tuple[int, ...]:
        """The number of states of each variable of the scope."""
        return tuple(self.table.shape[1:] if self.batched else self.table.shape)

    def card_map(self) -> dict[str, int]:
        """``{variable: number of states}``."""
        return dict(zip(self.variables, self.cards))


def logsumexp(table: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """``log(sum(exp(table), axis))`` with the maximum over ``axis`` shifted out.

    Entries that are ``-inf`` over the whole summed slice give ``-inf`` (not NaN).

    Parameters
    ----------
    table : float array
    axis : the axes to sum over (an empty tuple returns ``table`` unchanged)
    """
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not axis:
        return table
    top = np.max(table, axis=axis, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    shifted = table - top
    np.exp(shifted, out=shifted)  # in place: these tables are the largest arrays inference touches
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(shifted, axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


def align(factor: LogFactor, scope: Sequence[str], batched: bool = True) -> np.ndarray:
    """The factor's table arranged to broadcast against a table over ``scope``.

    Axes are permuted into ``scope`` order and size-1 axes are inserted for the
    variables of ``scope`` the factor does not mention.  With ``batched`` a leading
    batch axis is always present (of size 1 when the factor has none).
    """
    pos = {v: i for i, v in enumerate(scope)}
    missing = [v for v in factor.variables if v not in pos]
    if missing:
        raise ValueError(f"variables {missing} are not in the target scope {tuple(scope)}")
    order = sorted(range(len(factor.variables)), key=lambda i: pos[factor.variables[i]])
    table = factor.table
    if factor.batched:
        table = np.transpose(table, [0] + [i + 1 for i in order])
        lead = (table.shape[0],)
    else:
        table = np.transpose(table, order)
        lead = (1,) if batched else ()
    shape = [1] * len(scope)
    for i in order:
        shape[pos[factor.variables[i]]] = factor.cards[i]
    return table.reshape(lead + tuple(shape))


def _union_scope(factors: Sequence[LogFactor]) -> tuple[tuple[str, ...], dict[str, int]]:
    scope: dict[str, int] = {}
    for f in factors:
        for v, k in zip(f.variables, f.cards):
            if scope.setdefault(v, k) != k:
                raise ValueError(f"variable {v!r} has {scope[v]} states in one factor and {k} in another")
    return tuple(scope), scope


def product(factors: Sequence[LogFactor]) -> LogFactor:
    """The product of factors (a sum of log-tables) over the union of their scopes."""
    if not factors:
        return LogFactor((), np.zeros(()))
    scope, cards = _union_scope(factors)
    batched = any(f.batched for f in factors)
    total: np.ndarray | float = 0.0
    for f in factors:
        total = total + align(f, scope, batched)
    n_batch = max((f.table.shape[0] for f in factors if f.batched), default=None)
    shape = ((n_batch,) if batched else ()) + tuple(cards[v] for v in scope)
    return LogFactor(scope, np.broadcast_to(np.asarray(total, dtype=float), shape).copy())


def marginalize(factor: LogFactor, keep: Iterable[str]) -> LogFactor:
    """Sum (log-sum-exp) out every variable not in ``keep``; the result follows ``keep``'s order."""
    keep = tuple(keep)
    unknown = [v for v in keep if v not in factor.variables]
    if unknown:
        raise ValueError(f"cannot keep {unknown}: not in the factor's scope {factor.variables}")
    off = 1 if factor.batched else 0
    drop = tuple(i + off for i, v in enumerate(factor.variables) if v not in keep)
    table = logsumexp(factor.table, drop)
    rest = [v for v in factor.variables if v in keep]
    perm = [rest.index(v) for v in keep]
    table = np.transpose(table, ([0] if factor.batched else []) + [p + off for p in perm])
    return LogFactor(keep, table)


def reduce(factor: LogFactor, evidence: Mapping[str, int | np.ndarray]) -> LogFactor:
    """Condition on observed codes: drop the axes of observed variables.

    ``evidence`` maps a variable to one code, or to an int array of shape (n_batch,)
    (one code per row); array evidence gives a batched result.
    """
    hits = [v for v in factor.variables if v in evidence]
    if not hits:
        return factor
    rest = tuple(v for v in factor.variables if v not in evidence)
    off = 1 if factor.batched else 0
    order = [factor.variables.index(v) + off for v in hits] + [factor.variables.index(v) + off for v in rest]
    table = np.transpose(factor.table, ([0] if factor.batched else []) + order)
    codes = [np.asarray(evidence[v]) for v in hits]
    arrays = any(c.ndim > 0 for c in codes) or factor.batched
    if not arrays:
        return LogFactor(rest, table[tuple(int(c) for c in codes)])
    n_batch = max([c.shape[0] for c in codes if c.ndim > 0] + ([table.shape[0]] if factor.batched else []))
    idx = [np.broadcast_to(c, (n_batch,)) for c in codes]
    if factor.batched:
        idx = [np.broadcast_to(np.arange(table.shape[0]), (n_batch,))] + idx
    return LogFactor(rest, table[tuple(idx)])


def normalize(factor: LogFactor) -> LogFactor:
    """The factor minus its log-sum-exp (per batch row): a log-distribution."""
    off = 1 if factor.batched else 0
    axes = tuple(range(off, factor.table.ndim))
    log_z = logsumexp(factor.table, axes)
    return LogFactor(factor.variables, factor.table - np.expand_dims(log_z, axes))
