"""Exact inference by variable elimination and a calibrated clique tree, in log space.

Eliminating the variables of a factor graph one at a time (summing each out of the
product of the factors that mention it) computes the partition function ``Z`` and any
marginal; its cost is set by the largest intermediate table, i.e. by the elimination
order, which greedy heuristics choose: *min-fill* (eliminate the variable whose
neighbours need the fewest new edges) and *min-degree* (fewest neighbours) [1]_.

The cliques met along an elimination order form a clique tree (junction tree).  Two
passes of sum-product message passing on that tree -- leaves to root, then root to
leaves -- *calibrate* it: afterwards every clique holds the exact marginal of its
variables (times ``Z``), so the marginals of all cliques cost two passes, not one
elimination per clique [1]_ (ch. 10).  That is what gradient-based learning of a
log-linear model needs on every iteration.

Tables hold logarithms; each sum is a log-sum-exp with the maximum over the summed
axes shifted out, so nothing overflows.  Tables may carry a leading batch axis (one
clamped problem per distinct data row), which the passes carry along.

The largest intermediate table is limited to :data:`MAX_TABLE_ENTRIES` entries and the
tree's tables to :data:`MAX_TOTAL_ENTRIES` entries in all (every belief is kept until
the second pass ends); a wider model raises :class:`TooWideError` (a
``pgm.ModelError``) naming the table size and the approximate alternatives.

References
----------
.. [1] D. Koller and N. Friedman, *Probabilistic Graphical Models*, MIT Press 2009,
   ch. 9 (variable elimination) and ch. 10 (clique trees).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pgm.errors import ModelError
from pgm.infer.factor import LogFactor, logsumexp, normalize, product, reduce

#: Largest intermediate table exact inference builds, in entries (128 MiB of float64).
MAX_TABLE_ENTRIES = 2**24
#: Largest total size of the tables a calibrated clique tree holds at once (1 GiB of float64).
MAX_TOTAL_ENTRIES = 2**27

HEURISTICS = ("min-fill", "min-degree", "frontier", "auto")


class TooWideError(ModelError):
    """Exact inference would need a table larger than the limit (the model's treewidth is too large)."""


def _too_wide(size: int, n_vars: int, limit: int, what: str = "table") -> TooWideError:
    return TooWideError(
        f"exact inference would need a {what} of {size:.3g} entries (a clique of {n_vars} variables: the "
        f"elimination width is at least {n_vars - 1}), more than the limit {limit:.3g} "
        "(pgm.infer.elimination.MAX_TABLE_ENTRIES); use an approximate method: learner='pcd' "
        "(stochastic maximum likelihood) or learner='pseudo' (pseudo-likelihood) to fit, "
        "pseudo_log_likelihood() to score, sample(method='gibbs') to sample")


def _adjacency(scopes: Sequence[Sequence[int]], n_vars: int) -> list[set[int]]:
    adj: list[set[int]] = [set() for _ in range(n_vars)]
    for scope in scopes:
        for a in scope:
            adj[a].update(scope)
    for a in range(n_vars):
        adj[a].discard(a)
    return adj


def _score(adj: list[set[int]], log_card: np.ndarray, v: int, heuristic: str) -> tuple[float, float]:
    nb = adj[v]
    weight = float(log_card[v] + sum(log_card[u] for u in nb))
    if heuristic == "min-degree":
        return (len(nb), weight)
    missing = sum(len(nb) - 1 - len(adj[u] & nb) for u in nb)  # each missing edge counted twice
    return (missing // 2, weight)


def _greedy(adj0: list[set[int]], cards: Sequence[int], heuristic: str, targets: Sequence[int],
            fixed: Sequence[int] | None, max_table: int) -> tuple[list[int], list[frozenset[int]], int]:
    """Eliminate ``targets`` greedily (or in the ``fixed`` order); return order, cliques, cost."""
    adj = [set(a) for a in adj0]
    log_card = np.log(np.asarray(cards, dtype=float))
    alive = set(targets)
    order: list[int] = []
    cliques: list[frozenset[int]] = []
    cost = 0
    current: dict[int, tuple[float, float]] = {}
    heap: list[tuple[tuple[float, float], int]] = []
    if fixed is None:
        for v in targets:
            current[v] = _score(adj, log_card, v, heuristic)
            heap.append((current[v], v))
        heapq.heapify(heap)
    queue = list(fixed) if fixed is not None else None
    while alive:
        if queue is not None:
            v = queue.pop(0)
        else:
            s, v = heapq.heappop(heap)
            if v not in alive or current[v] != s:
                continue
        nb = adj[v]
        clique = frozenset(nb | {v})
        size = math.prod(cards[u] for u in clique)
        if size > max_table:
            raise _too_wide(size, len(clique), max_table)
        cost += size
        order.append(v)
        cliques.append(clique)
        for a in nb:
            adj[a].discard(v)
            adj[a].update(nb)
            adj[a].discard(a)
        adj[v] = set()
        alive.discard(v)
        if queue is None:
            affected = set(nb)
            if heuristic == "min-fill":  # new edges among nb change the fill of nb's neighbours too
                for a in nb:
                    affected |= adj[a]
            for u in affected & alive:
                current[u] = _score(adj, log_card, u, heuristic)
                heapq.heappush(heap, (current[u], u))
    return order, cliques, cost


def elimination_order(scopes: Sequence[Sequence[str]], cards: Mapping[str, int], *,
                      heuristic: str = "min-fill", eliminate: Sequence[str] | None = None,
                      max_table: int = MAX_TABLE_ENTRIES) -> list[str]:
    """A greedy elimination order of the variables of ``scopes``.

    Parameters
    ----------
    scopes : sequence of variable-name sequences
        the scope of every factor (each scope becomes a clique of the interaction graph).
    cards : mapping of variable name -> number of states
        every variable of the problem (variables in no scope are eliminated too).
    heuristic : {"min-fill", "min-degree", "auto"}
        "auto" runs both and keeps the order with the smaller total table size.
    eliminate : the variables to eliminate (default: all of ``cards``).
    max_table : largest intermediate table allowed, in entries.

    Returns
    -------
    list of variable names, first eliminated first.

    Raises
    ------
    TooWideError
        when the order needs a table larger than ``max_table``.

    Examples
    --------
    >>> elimination_order([("a", "b"), ("b", "c")], {"a": 2, "b": 2, "c": 2})
    ['a', 'b', 'c']
    """
    names = list(cards)
    index = {v: i for i, v in enumerate(names)}
    adj = _adjacency([[index[v] for v in s] for s in scopes], len(names))
    targets = [index[v] for v in (names if eliminate is None else eliminate)]
    order, _, _ = _best(adj, [cards[v] for v in names], heuristic, targets, max_table)
    return [names[i] for i in order]


def _frontier(adj: list[set[int]], targets: Sequence[int]) -> list[int]:
    """Targets by decreasing breadth-first distance from a peripheral variable.

    Eliminating the farthest layer first sweeps a frontier across the graph; on
    lattices (grids, ladders) this keeps the cliques as narrow as one layer, where the
    greedy heuristics, myopic, end up about 1.4 times wider.
    """
    allowed = set(targets)
    rank: dict[int, tuple[int, int]] = {}
    for comp, start in enumerate(t for t in targets):
        if start in rank:
            continue
        # two sweeps of breadth-first search find a far (pseudo-peripheral) start
        for _ in range(2):
            dist = {start: 0}
            layer = [start]
            while layer:
                nxt = []
                for a in layer:
                    for b in adj[a]:
                        if b in allowed and b not in dist:
                            dist[b] = dist[a] + 1
                            nxt.append(b)
                layer = nxt
            start = max(dist, key=lambda v: (dist[v], -v))
        for v, d in dist.items():
            rank[v] = (comp, -d)
    return sorted(targets, key=lambda v: (rank[v], v))


def _best(adj: list[set[int]], cards: Sequence[int], heuristic: str, targets: Sequence[int],
          max_table: int) -> tuple[list[int], list[frozenset[int]], int]:
    if heuristic not in HEURISTICS:
        raise ValueError(f"unknown elimination heuristic {heuristic!r}; use one of {HEURISTICS}")
    if heuristic == "frontier":
        return _greedy(adj, cards, heuristic, targets, _frontier(adj, targets), max_table)
    if heuristic != "auto":
        return _greedy(adj, cards, heuristic, targets, None, max_table)
    found, error = [], None
    for h in ("min-fill", "min-degree", "frontier"):
        try:
            fixed = _frontier(adj, targets) if h == "frontier" else None
            found.append(_greedy(adj, cards, h, targets, fixed, max_table))
        except TooWideError as exc:
            error = error or exc
    if not found:
        assert error is not None
        raise error
    return min(found, key=lambda r: r[2])


@dataclass(frozen=True)
class CliqueTree:
    """A clique tree (forest) built from an elimination order; reusable for any factor values.

    Attributes
    ----------
    variables : tuple of str
        every variable; clique axes follow this order.
    cards : tuple of int
        states of each variable.
    scopes : tuple of tuples of int
        the factor scopes the tree was built for (variable indices, factor order).
    cliques : tuple of tuples of int
        variable indices of each clique, sorted.
    parent : tuple of int
        parent clique, ``-1`` for the root of a connected component.
    schedule : tuple of int
        cliques with every child before its parent (the upward pass order).
    home : tuple of int
        for each factor, the clique whose potential absorbs it.
    order : tuple of str
        the elimination order.
    """

    variables: tuple[str, ...]
    cards: tuple[int, ...]
    scopes: tuple[tuple[int, ...], ...]
    cliques: tuple[tuple[int, ...], ...]
    parent: tuple[int, ...]
    schedule: tuple[int, ...]
    home: tuple[int, ...]
    order: tuple[str, ...]
    root: tuple[int, ...] = field(repr=False)
    _factor_view: tuple = field(repr=False)   # (perm, broadcast shape) per factor
    _up_axes: tuple = field(repr=False)        # axes of a clique summed out towards its parent
    _to_parent: tuple = field(repr=False)      # shape of the message in the parent's axes
    _down_axes: tuple = field(repr=False)      # axes of the parent summed out towards the child
    _to_child: tuple = field(repr=False)       # shape of the message in the child's axes
    _factor_out: tuple = field(repr=False)     # (axes summed out, axis order) from home clique to factor

    @property
    def width(self) -> int:
        """Largest clique size minus one (the width of the elimination order)."""
        return max((len(c) for c in self.cliques), default=1) - 1

    @property
    def max_table(self) -> int:
        """Entries of the largest clique table."""
        return max((self.clique_size(i) for i in range(len(self.cliques))), default=1)

    @property
    def total_entries(self) -> int:
        """Entries of all clique tables together."""
        return sum(self.clique_size(i) for i in range(len(self.cliques)))

    def clique_size(self, i: int) -> int:
        """Entries of clique ``i``'s table."""
        return math.prod(self.cards[v] for v in self.cliques[i])

    def clique_shape(self, i: int) -> tuple[int, ...]:
        """Shape of clique ``i``'s table (without the batch axis)."""
        return tuple(self.cards[v] for v in self.cliques[i])


def build_clique_tree(scopes: Sequence[Sequence[str]], cards: Mapping[str, int], *,
                      heuristic: str = "auto", order: Sequence[str] | None = None,
                      max_table: int = MAX_TABLE_ENTRIES, max_total: int = MAX_TOTAL_ENTRIES) -> CliqueTree:
    """Compile the clique tree of a set of factor scopes.

    Parameters
    ----------
    scopes : the scope of each factor, in the order their tables will be given.
    cards : every variable of the model and its number of states (a variable in no
        scope gets a clique of its own: it is uniform).
    heuristic : elimination heuristic ("min-fill", "min-degree", or "auto": the cheaper).
    order : an explicit elimination order instead of a heuristic.
    max_table, max_total : size limits, in entries (see the module docstring).

    Raises
    ------
    TooWideError
        naming the table size, when a clique or the whole tree exceeds the limits.
    """
    names = tuple(cards)
    index = {v: i for i, v in enumerate(names)}
    card = tuple(int(cards[v]) for v in names)
    sc = tuple(tuple(index[v] for v in s) for s in scopes)
    adj = _adjacency(sc, len(names))
    targets = list(range(len(names)))
    if order is not None:
        fixed = [index[v] for v in order]
        if sorted(fixed) != targets:
            raise ValueError("an explicit elimination order must list every variable once")
        elim, elim_cliques, _ = _greedy(adj, card, "min-fill", targets, fixed, max_table)
    else:
        elim, elim_cliques, _ = _best(adj, card, heuristic, targets, max_table)
    n = len(elim)
    pos = {v: k for k, v in enumerate(elim)}
    parent = [-1] * n
    children: list[list[int]] = [[] for _ in range(n)]
    for k, v in enumerate(elim):
        rest = elim_cliques[k] - {v}
        if rest:
            parent[k] = min(pos[u] for u in rest)
            children[parent[k]].append(k)
    # a clique contained in one of its children is not maximal: the child takes its place
    rep = list(range(n))
    for p in range(n):
        big = next((k for k in children[p] if elim_cliques[p] <= elim_cliques[k]), None)
        if big is None:
            continue
        rep[p] = big
        q = parent[p]
        parent[big] = q
        if q >= 0:
            children[q][children[q].index(p)] = big
        for c in children[p]:
            if c != big:
                parent[c] = big
                children[big].append(c)
        children[p] = []

    def find(k: int) -> int:
        while rep[k] != k:
            k = rep[k]
        return k

    kept = [k for k in range(n) if rep[k] == k]
    new = {k: i for i, k in enumerate(kept)}
    cliques = tuple(tuple(sorted(elim_cliques[k])) for k in kept)
    par = tuple(new[parent[k]] if parent[k] >= 0 else -1 for k in kept)
    kids: list[list[int]] = [[] for _ in kept]
    for i, p in enumerate(par):
        if p >= 0:
            kids[p].append(i)
    schedule: list[int] = []
    root = [0] * len(kept)
    for r in (i for i, p in enumerate(par) if p < 0):
        stack = [(r, False)]
        while stack:
            i, done = stack.pop()
            if done:
                schedule.append(i)
                continue
            root[i] = r
            stack.append((i, True))
            stack.extend((c, False) for c in kids[i])
    total = sum(math.prod(card[v] for v in c) for c in cliques)
    if total > max_total:
        widest = max(cliques, key=len)
        raise _too_wide(total, len(widest), max_total, "set of clique tables")
    home = tuple(new[find(min((pos[v] for v in s), default=0))] if s else 0 for s in sc)

    views = []
    for s, h in zip(sc, home):
        cl = cliques[h]
        perm = tuple(sorted(range(len(s)), key=lambda j: cl.index(s[j])))
        shape = tuple(card[v] if v in s else 1 for v in cl)
        views.append((perm, shape))
    factor_out = []
    for s, h, (perm, _) in zip(sc, home, views):
        drop = tuple(1 + j for j, v in enumerate(cliques[h]) if v not in s)
        # the summed table's axes follow the clique (sorted) order; put them back in scope order
        factor_out.append((drop, (0,) + tuple(1 + int(j) for j in np.argsort(perm))))
    up_axes, to_parent, down_axes, to_child = [], [], [], []
    for i, p in enumerate(par):
        if p < 0:
            up_axes.append(()), to_parent.append(()), down_axes.append(()), to_child.append(())
            continue
        sep = set(cliques[i]) & set(cliques[p])
        up_axes.append(tuple(1 + j for j, v in enumerate(cliques[i]) if v not in sep))
        to_parent.append(tuple(card[v] if v in sep else 1 for v in cliques[p]))
        down_axes.append(tuple(1 + j for j, v in enumerate(cliques[p]) if v not in sep))
        to_child.append(tuple(card[v] if v in sep else 1 for v in cliques[i]))
    return CliqueTree(names, card, sc, cliques, par, tuple(schedule), home,
                      tuple(names[v] for v in elim), tuple(root), tuple(views),
                      tuple(up_axes), tuple(to_parent), tuple(down_axes), tuple(to_child), tuple(factor_out))


@dataclass(frozen=True)
class Calibration:
    """A calibrated clique tree: every clique's (unnormalised) log-belief and ``log Z``.

    Attributes
    ----------
    tree : the clique tree.
    beliefs : list of float arrays of shape (n_batch, *clique cards)
        log of ``Z`` times the clique marginal.
    log_z : float array of shape (n_batch,)
        the log partition function of each batch row.
    batched : whether the factors carried a batch axis.
    """

    tree: CliqueTree
    beliefs: list[np.ndarray]
    log_z: np.ndarray
    component_log_z: dict[int, np.ndarray]
    batched: bool

    def clique_marginal(self, i: int) -> np.ndarray:
        """Normalised log-marginal of clique ``i``, shape (n_batch, *clique cards)."""
        z = self.component_log_z[self.tree.root[i]]
        return self.beliefs[i] - z.reshape((-1,) + (1,) * len(self.tree.cliques[i]))

    def factor_marginals(self) -> list[np.ndarray]:
        """Normalised log-marginal over each factor's scope (in the factor's axis order).

        Returns
        -------
        list of float arrays of shape (n_batch, *factor cards)
        """
        out = []
        cache: dict[int, np.ndarray] = {}
        for h, (drop, axes) in zip(self.tree.home, self.tree._factor_out):
            if h not in cache:
                cache[h] = self.clique_marginal(h)
            out.append(np.transpose(logsumexp(cache[h], drop), axes))
        return out

    def factor_probabilities(self) -> list[np.ndarray]:
        """Like :meth:`factor_marginals`, as probabilities (faster: sums, no log-sum-exp).

        Exponentiating a *normalised* log-belief cannot overflow, so the sums over the
        other clique variables run in linear space.
        """
        out = []
        cache: dict[int, np.ndarray] = {}
        for h, (drop, axes) in zip(self.tree.home, self.tree._factor_out):
            if h not in cache:
                cache[h] = np.exp(self.clique_marginal(h))
            table = cache[h].sum(axis=drop) if drop else cache[h]
            out.append(np.transpose(table, axes))
        return out

    def marginal(self, variables: Sequence[str]) -> LogFactor:
        """Normalised log-marginal of variables that share a clique.

        Raises
        ------
        ValueError
            when no clique holds all of them (use :func:`variable_elimination`).
        """
        index = {v: i for i, v in enumerate(self.tree.variables)}
        want = [index[v] for v in variables]
        fits = [i for i, c in enumerate(self.tree.cliques) if set(want) <= set(c)]
        if not fits:
            raise ValueError(f"no clique holds all of {list(variables)}; use variable_elimination")
        i = min(fits, key=self.tree.clique_size)
        cl = self.tree.cliques[i]
        table = logsumexp(self.clique_marginal(i), tuple(1 + j for j, v in enumerate(cl) if v not in want))
        kept = [v for v in cl if v in want]
        table = np.transpose(table, (0,) + tuple(1 + kept.index(v) for v in want))
        return LogFactor(tuple(variables), table if self.batched else table[0])


def _clique_potentials(tree: CliqueTree, tables: Sequence[np.ndarray]) -> tuple[int, list[np.ndarray | float]]:
    """``(n_batch, psi)``: each factor's log-table laid out on its home clique's axes and summed there
    (``psi[i]`` is 0.0 for a clique that homes no factor), for :func:`calibrate` and :func:`max_decode`."""
    if len(tables) != len(tree.scopes):
        raise ValueError(f"the tree was built for {len(tree.scopes)} factors, got {len(tables)} tables")
    n_batch = max((t.shape[0] for t, s in zip(tables, tree.scopes) if t.ndim == len(s) + 1), default=1)
    psi: list[np.ndarray | float] = [0.0] * len(tree.cliques)
    for t, s, h, (perm, shape) in zip(tables, tree.scopes, tree.home, tree._factor_view):
        if t.ndim == len(s) + 1:
            view = np.transpose(t, (0,) + tuple(1 + j for j in perm)).reshape((t.shape[0],) + shape)
        else:
            view = np.transpose(t, perm).reshape((1,) + shape)
        psi[h] = psi[h] + view
    return n_batch, psi


def calibrate(tree: CliqueTree, tables: Sequence[np.ndarray], *, downward: bool = True) -> Calibration:
    """Two-pass sum-product on a clique tree, in log space.

    Parameters
    ----------
    tree : from :func:`build_clique_tree`.
    tables : one log-table per factor scope of ``tree``, of shape ``cards`` or
        ``(n_batch,) + cards`` (all batched tables with the same ``n_batch``).
    downward : run the second pass; without it only ``log_z`` (and the root beliefs) are exact,
        at half the cost.

    Returns
    -------
    Calibration
    """
    batched = any(t.ndim == len(s) + 1 for t, s in zip(tables, tree.scopes))
    n_batch, psi = _clique_potentials(tree, tables)
    n = len(tree.cliques)
    beliefs: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    up: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for i in tree.schedule:  # children first: fold their messages in, then send up
        shape = (n_batch,) + tree.clique_shape(i)
        b = np.broadcast_to(np.asarray(psi[i], dtype=float), shape).copy() if np.ndim(psi[i]) else np.zeros(shape)
        beliefs[i] = b
        p = tree.parent[i]
        if p >= 0:
            up[i] = logsumexp(b, tree._up_axes[i])
            psi[p] = psi[p] + up[i].reshape((n_batch,) + tree._to_parent[i])
    component: dict[int, np.ndarray] = {}
    for i in tree.schedule:
        if tree.parent[i] < 0:
            component[i] = logsumexp(beliefs[i], tuple(range(1, beliefs[i].ndim)))
    for i in reversed(tree.schedule) if downward else ():  # parents first: the parent's belief is final
        p = tree.parent[i]
        if p < 0:
            continue
        msg = logsumexp(beliefs[p], tree._down_axes[i]) - up[i]
        if not np.all(np.isfinite(up[i])):  # 0/0 = 0: a zero sepset entry stays zero
            msg = np.where(np.isneginf(up[i]), -np.inf, msg)
        beliefs[i] = beliefs[i] + msg.reshape((n_batch,) + tree._to_child[i])
    log_z = sum(component.values(), np.zeros(n_batch))
    return Calibration(tree, beliefs, np.asarray(log_z), component, batched)


def max_decode(tree: CliqueTree, tables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The most probable joint state (max-product, then a traceback), batched over rows.

    Parameters
    ----------
    tree : from :func:`build_clique_tree`.
    tables : one log-table per factor scope of ``tree`` (batched or not), as for :func:`calibrate`.

    Returns
    -------
    codes : int array of shape (n_batch, n_variables), columns in ``tree.variables`` order
    log_max : float array of shape (n_batch,), the log of the largest unnormalised joint value
        (``-inf`` where every joint state has value zero)
    """
    n_batch, psi = _clique_potentials(tree, tables)
    n = len(tree.cliques)
    beliefs: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for i in tree.schedule:  # children first: each clique's belief includes its subtree's best
        shape = (n_batch,) + tree.clique_shape(i)
        beliefs[i] = np.broadcast_to(np.asarray(psi[i], dtype=float), shape).copy()
        p = tree.parent[i]
        if p >= 0:
            up = np.max(beliefs[i], axis=tree._up_axes[i]) if tree._up_axes[i] else beliefs[i]
            psi[p] = psi[p] + up.reshape((n_batch,) + tree._to_parent[i])
    out = np.zeros((n_batch, len(tree.variables)), dtype=np.int64)
    log_max = np.zeros(n_batch)
    batch = np.arange(n_batch)
    for i in reversed(tree.schedule):  # parents first: the separator is already decided
        cl = tree.cliques[i]
        p = tree.parent[i]
        sep = [v for v in cl if p >= 0 and v in tree.cliques[p]]
        rest = [v for v in cl if v not in sep]
        b = np.transpose(beliefs[i], (0,) + tuple(1 + cl.index(v) for v in sep + rest))
        b = b[(batch,) + tuple(out[:, v] for v in sep)].reshape(n_batch, -1)
        best = b.argmax(axis=1)
        if p < 0:
            log_max = log_max + b[batch, best]
        if not rest:
            continue
        for v, c in zip(rest, np.unravel_index(best, [tree.cards[v] for v in rest])):
            out[:, v] = c
    return out, log_max


def sample_tree(cal: Calibration, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Exact joint samples from a calibrated (unbatched) tree, root clique first.

    Each clique is drawn from its marginal conditioned on the separator already drawn
    by its parent, so the samples follow the exact joint distribution.

    Returns
    -------
    int array of shape (n_samples, n_variables), columns in ``tree.variables`` order.
    """
    tree = cal.tree
    if cal.beliefs and cal.beliefs[0].shape[0] != 1:
        raise ValueError("sampling needs an unbatched calibration")
    out = np.zeros((n_samples, len(tree.variables)), dtype=np.int64)
    for i in reversed(tree.schedule):
        cl = tree.cliques[i]
        p = tree.parent[i]
        sep = [v for v in cl if p >= 0 and v in tree.cliques[p]]
        rest = [v for v in cl if v not in sep]
        if not rest:
            continue
        log_m = cal.clique_marginal(i)[0]
        perm = [cl.index(v) for v in sep] + [cl.index(v) for v in rest]
        n_sep = math.prod(tree.cards[v] for v in sep)
        n_rest = math.prod(tree.cards[v] for v in rest)
        cond = np.transpose(log_m, perm).reshape(n_sep, n_rest)
        with np.errstate(invalid="ignore"):
            cond = np.nan_to_num(np.exp(cond - logsumexp(cond, 1)[:, None]))
        # one sorted array of all conditional CDFs, row s shifted by s: a single searchsorted
        # draws every sample without building an (n_samples, n_rest) table
        cdf = (np.cumsum(cond, axis=1) + np.arange(n_sep)[:, None]).ravel()
        sep_code = np.zeros(n_samples, dtype=np.int64)
        for v in sep:
            sep_code = sep_code * tree.cards[v] + out[:, v]
        hit = np.searchsorted(cdf, sep_code + rng.random(n_samples), side="right")
        code = np.clip(hit - sep_code * n_rest, 0, n_rest - 1)
        for v, c in zip(rest, np.unravel_index(code, [tree.cards[v] for v in rest])):
            out[:, v] = c
    return out


def variable_elimination(factors: Sequence[LogFactor], keep: Sequence[str] = (),
                         evidence: Mapping[str, int | np.ndarray] | None = None, *,
                         heuristic: str = "min-fill", max_table: int = MAX_TABLE_ENTRIES) -> LogFactor:
    """Sum every variable but ``keep`` out of the product of ``factors``, in log space.

    Parameters
    ----------
    factors : the log-factors (batched or not).
    keep : the variables of the result, in this order.
    evidence : observed variables: a code each, or an int array of shape (n_batch,).
    heuristic : elimination heuristic for the variables summed out.
    max_table : largest intermediate table allowed, in entries.

    Returns
    -------
    LogFactor over ``keep``: the *unnormalised* log-marginal (its log-sum-exp is
    ``log Z`` of the reduced model; apply :func:`pgm.infer.factor.normalize` for a distribution).

    Raises
    ------
    TooWideError
        when the elimination needs a table larger than ``max_table``.

    Examples
    --------
    >>> import numpy as np
    >>> f = [LogFactor(("a", "b"), np.zeros((2, 3))), LogFactor(("b",), np.log([1.0, 2.0, 3.0]))]
    >>> np.exp(variable_elimination(f, ["a"]).table).tolist()
    [6.0, 6.0]
    """
    evidence = dict(evidence or {})
    clash = [v for v in keep if v in evidence]
    if clash:
        raise ValueError(f"variables {clash} are both kept and observed; drop them from `keep`")
    pool = [reduce(f, evidence) for f in factors]
    cards: dict[str, int] = {}
    for f in pool:
        cards.update(f.card_map())
    absent = [v for v in keep if v not in cards]
    if absent:
        raise ValueError(f"variables {absent} are in no factor; add a (zero) factor over them")
    keep_size = math.prod(cards[v] for v in keep)
    if keep_size > max_table:
        raise _too_wide(keep_size, len(keep), max_table)
    names = list(cards)
    idx = {v: i for i, v in enumerate(names)}
    adj = _adjacency([[idx[v] for v in f.variables] for f in pool], len(names))
    targets = [idx[v] for v in names if v not in keep]
    order, _, _ = _best(adj, [cards[v] for v in names], heuristic, targets, max_table)
    for i in order:
        v = names[i]
        used = [f for f in pool if v in f.variables]
        pool = [f for f in pool if v not in f.variables]
        joint = product(used)
        axis = joint.variables.index(v) + (1 if joint.batched else 0)
        pool.append(LogFactor(tuple(u for u in joint.variables if u != v), logsumexp(joint.table, axis)))
    result = product(pool)
    if keep:
        off = 1 if result.batched else 0
        perm = [result.variables.index(v) + off for v in keep]
        table = np.transpose(result.table, ([0] if result.batched else []) + perm)
        return LogFactor(tuple(keep), table)
    return result


def log_partition(factors: Sequence[LogFactor], evidence: Mapping[str, int | np.ndarray] | None = None,
                  **options) -> float | np.ndarray:
    """``log Z``: the log of the sum over all joint states of the product of ``factors``.

    Returns a float, or an array of shape (n_batch,) for batched factors or evidence.
    """
    out = variable_elimination(factors, (), evidence, **options).table
    return float(out) if np.ndim(out) == 0 else out


def marginals(factors: Sequence[LogFactor], *, heuristic: str = "auto",
              max_table: int = MAX_TABLE_ENTRIES) -> tuple[list[LogFactor], float | np.ndarray]:
    """Every factor's normalised marginal and ``log Z``, from one calibrated clique tree.

    Returns
    -------
    marginals : list of LogFactor, one per input factor, over its scope
    log_z : float, or array of shape (n_batch,) for batched factors
    """
    cards: dict[str, int] = {}
    for f in factors:
        cards.update(f.card_map())
    tree = build_clique_tree([f.variables for f in factors], cards, heuristic=heuristic, max_table=max_table)
    cal = calibrate(tree, [f.table for f in factors])
    margs = cal.factor_marginals()
    out = [LogFactor(f.variables, m if cal.batched else m[0]) for f, m in zip(factors, margs)]
    return out, (cal.log_z if cal.batched else float(cal.log_z[0]))


__all__ = [
    "MAX_TABLE_ENTRIES", "MAX_TOTAL_ENTRIES", "TooWideError", "CliqueTree", "Calibration",
    "elimination_order", "build_clique_tree", "calibrate", "max_decode", "sample_tree",
    "variable_elimination", "log_partition", "marginals", "normalize",
]
