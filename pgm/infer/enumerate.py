r"""Exact posteriors over hidden discrete variables by enumeration, vectorised over rows.

For a row with observed values x and hidden values z (latent nodes and missing
cells), p(z | x) = p(x, z) / sum_z p(x, z).  Hidden variables that are not
connected in the moral graph through other hidden variables are independent
given the observed ones, so each *component* of hidden variables is enumerated
on its own: the cost is a sum over components, not a product.

The plan (computed once per data set, since it depends only on which cells are
hidden) groups (row, component) pairs by the component's variables; each group
is then one array computation of shape (rows in group, joint states).  Hidden
variables with no observed descendant in a row ("barren") are summed out
exactly by dropping them, which also makes a row with every cell missing
contribute log 1 = 0.  Everything is in log space, normalised with logsumexp
(numpyro's ``sum_product`` idea, with numpy).

A component can instead go through a calibrated clique tree, batched over rows:
each family is then a per-row factor over its hidden members (an observed
gaussian or logistic child of hidden parents is evidence on them, evaluated by
the kind-agnostic ``family_log_prob``), and its statistics are weighted by the
posterior over those members, which the calibrated tree gives.  Which path a
component takes is decided by estimated cost (:func:`listing_cost`,
:func:`tree_cost`) and memory; beyond :data:`ENUMERATE_LIMIT` joint states it is
always the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from pgm.cpd.family import CPD, Family, Stats, family_log_prob, family_stats
from pgm.cpd.table import TableStats
from pgm.encode import EncodedData, row_labels
from pgm.errors import DataError, ModelError
from pgm.graph import Graph
from pgm.infer.elimination import CliqueTree, TooWideError, build_clique_tree, calibrate, max_decode
from pgm.infer.flat import build_flat, flat_e_step, table_cells
from pgm.infer.posterior import Posterior, row_log_sum_exp
from pgm.infer.gaussian import gaussian_group, joint_states

#: Components with more joint states than this are never listed state by state: their
#: posterior marginals come from a calibrated clique tree (batched over rows) instead.
ENUMERATE_LIMIT = 4096
#: How a component that could be listed is treated: "cost" (listing or the clique tree, whichever
#: :func:`listing_cost` and :func:`tree_cost` estimate cheaper), "list" or "tree" (forced).
STRATEGY = "cost"
#: A clique-tree batch holds about this many float64 entries per calibration (256 MB).
BATCH_ENTRIES = 2**25
#: (rows, joint states) arrays a gaussian group holds at once (pgm.infer.gaussian): sets its row batches.
GAUSS_ARRAYS = 4
#: Families over the same hidden members are summed by one matrix product up to this many keys in all.
MAX_SHARED_KEYS = 4096
#: Cost-model constants, in units of one table family's term of one listed joint state.
COST_LIST_OTHER = 10.0   # a non-table family's term of one listed state (evaluated per row and state)
COST_LIST_STATE = 2.0    # per listed state: the log-sum-exp and the posterior
COST_TREE_ENTRY = 6.0    # per clique entry: two passes of log-space sum-product
COST_TREE_FACTOR = 3.0   # per factor entry: its per-row table, its posterior sum and statistics
COST_CALL = 2000.0       # per numpy call on a batch (Python overhead)


@dataclass
class Group:
    """Rows sharing one hidden component: its variables (topological order) and joint states."""

    variables: tuple[str, ...]
    rows: np.ndarray
    families: tuple[str, ...]
    joint: np.ndarray                      # (len(variables), n_joint) codes of every joint state
    dropped: dict[str, np.ndarray] = field(default_factory=dict)   # family child -> rows (in group) summed out
    all_rows: bool = False                 # the group holds every row (no copies needed)
    cache: dict = field(default_factory=dict)  # data products reused across EM iterations
    tree: Any = None                       # a clique tree when the joint space is too large to list
    gauss: bool = False                    # holds continuous hidden variables (pgm.infer.gaussian)


@dataclass
class Plan:
    groups: list[Group]
    observed_rows: dict[str, np.ndarray]   # family -> bool mask of rows where it is fully observed
    hidden: np.ndarray                     # (n_rows, n_vars) bool: effectively hidden (enumerated)
    dropped: np.ndarray                    # (n_rows, n_vars) bool: summed out (barren)
    names: tuple[str, ...]
    flat: Any = None                       # the flat layout (pgm.infer.flat), built on first use
    flat_checked: bool = False
    cache: dict = field(default_factory=dict)  # data-only products reused across EM iterations

    @property
    def has_hidden(self) -> bool:
        return bool(self.groups)


def make_plan(graph: Graph, fams: dict[str, Family], data: EncodedData, keep: tuple[str, ...] = ()) -> Plan:
    """Which cells are hidden in each row, and how rows group into enumerable components."""
    names = graph.order
    col = {n: i for i, n in enumerate(names)}
    n, v = data.n_rows, len(names)
    hidden = np.zeros((n, v), dtype=bool)
    partial = np.zeros((n, v), dtype=bool)   # a gaussian vector with some components observed
    for name in names:
        var = graph[name]
        if var.latent or not data.observed(name):
            hidden[:, col[name]] = True
        elif name in data.missing:
            hidden[:, col[name]] = data.missing[name]
            if var.gaussian and var.dim > 1:
                partial[:, col[name]] = data.missing[name] & ~np.isnan(data.values[name]).all(axis=1)
    children = {name: [c for c in names if name in graph[c].parents] for name in names}
    dropped = np.zeros_like(hidden)
    for name in reversed(names):  # barren: hidden, and every child barren too
        if name in keep:
            continue
        i = col[name]
        d = hidden[:, i] & ~partial[:, i]
        for c in children[name]:
            d &= dropped[:, col[c]]
        dropped[:, i] = d
    active = hidden & ~dropped
    observed_rows = {}
    for f, fam in fams.items():
        idx = [col[m] for m in fam.members]
        observed_rows[f] = ~active[:, idx].any(axis=1) & ~dropped[:, col[f]]
    groups = _components(graph, fams, active, dropped, names, col)
    return Plan(groups, observed_rows, active, dropped, tuple(names))


def _void_rows(mask: np.ndarray) -> np.ndarray:
    """Each row of a boolean matrix as one hashable byte string (for np.unique over rows)."""
    packed = np.ascontiguousarray(np.packbits(mask, axis=1))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def _components(graph, fams, active, dropped, names, col) -> list[Group]:
    """Group (row, hidden component) pairs by the component's variables.

    Components depend on a row only through its mask of hidden cells, and a data set has far
    fewer distinct masks than rows: the connected components are found once per distinct mask
    (label propagation over the moral graph's edges, vectorised over masks), then mapped back."""
    if not active.any():
        return []
    _, first, inverse = np.unique(_void_rows(active), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    masks = active[first]                                  # (n_masks, n_vars)
    edges = [(col[a], col[b]) for a, b in graph.moral_graph().edges()]
    label = np.where(masks, np.arange(len(names))[None, :], -1)
    changed = True
    while changed:  # every hidden variable takes the smallest index in its component
        changed = False
        for a, b in edges:
            both = (label[:, a] >= 0) & (label[:, b] >= 0)
            if not both.any():
                continue
            low = np.minimum(label[:, a], label[:, b])
            if np.any(both & ((label[:, a] != low) | (label[:, b] != low))):
                changed = True
                label[:, a] = np.where(both, low, label[:, a])
                label[:, b] = np.where(both, low, label[:, b])
    order = np.argsort(inverse, kind="stable")            # rows of each mask, contiguous
    bounds = np.searchsorted(inverse[order], np.arange(len(first) + 1))
    groups = []
    for r in range(len(names)):
        with_root = np.flatnonzero(label[:, r] == r)      # masks in which r roots a component
        if not with_root.size:
            continue
        members = label[with_root] == r
        _, first_set, which = np.unique(_void_rows(members), return_index=True, return_inverse=True)
        which = which.ravel()
        for k, f in enumerate(first_set):
            vars_ = tuple(names[i] for i in np.flatnonzero(members[f]))
            parts = [order[bounds[m]:bounds[m + 1]] for m in with_root[which == k]]
            rows = np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]
            groups.extend(_row_batches(_group(graph, fams, vars_, rows, dropped, col)))
    return groups


def _row_batches(group: Group) -> list[Group]:
    """A gaussian group split into row batches whose (rows, joint states) arrays -- the log-joint, its
    posterior and weighted posterior, about :data:`GAUSS_ARRAYS` of them -- hold at most
    :data:`BATCH_ENTRIES` entries each batch (the Gaussians per state are rebuilt per batch, cheap
    next to its rows); any other group is returned whole."""
    n_joint = group.joint.shape[1]
    if not group.gauss or n_joint <= 1:
        return [group]
    step = max(1, BATCH_ENTRIES // (GAUSS_ARRAYS * n_joint))
    if len(group.rows) <= step:
        return [group]
    return [Group(group.variables, group.rows[i:i + step], group.families, group.joint,
                  {f: d[i:i + step] for f, d in group.dropped.items()}, gauss=True)
            for i in range(0, len(group.rows), step)]


def _group(graph, fams, vars_, rows, dropped, col) -> Group:
    gauss = any(graph[v].gaussian for v in vars_)
    cards = [graph[v].n_states for v in vars_ if graph[v].discrete]
    size = math.prod(cards)
    involved = []
    drop = {}
    for f, fam in fams.items():
        if not any(m in vars_ for m in fam.members):
            continue
        d = dropped[rows, col[f]]
        if d.all():  # the child is summed out in every row: the family contributes nothing
            continue
        involved.append(f)
        if d.any():
            drop[f] = d
    involved = tuple(involved)
    all_rows = len(rows) == dropped.shape[0]
    if gauss:  # continuous hidden variables: gaussian conditioning per configuration of the discrete ones
        if size > ENUMERATE_LIMIT:  # each configuration is listed (a Gaussian per state, (rows, states) arrays)
            disc = [graph[v].decl for v in vars_ if graph[v].discrete]
            raise ModelError(f"the hidden discrete nodes {disc} are parents of hidden continuous variables in one "
                             f"component and have {size:,} joint states, more than the {ENUMERATE_LIMIT:,} that exact "
                             "gaussian inference lists (one Gaussian per joint state); give the gaussian nodes "
                             "fewer hidden discrete parents (or fewer states), or observe some of them")
        return Group(vars_, rows, involved, joint_states(graph, vars_), drop, all_rows, gauss=True)
    if size > ENUMERATE_LIMIT:
        tree = _tree(graph, fams, vars_, involved, size)
    else:
        tree = _cheaper_tree(graph, fams, vars_, involved, size, len(rows))
    joint = (np.indices(cards).reshape(len(cards), -1) if size <= ENUMERATE_LIMIT
             else np.zeros((len(cards), 0), dtype=np.int64))
    return Group(vars_, rows, involved, joint, drop, all_rows, tree=tree)


def _family_scopes(fams: dict[str, Family], vars_, involved) -> list[tuple[str, ...]]:
    """Each family's members inside the component."""
    return [tuple(m for m in fams[f].members if m in vars_) for f in involved]


def _scopes(fams: dict[str, Family], vars_, involved) -> list[tuple[str, ...]]:
    """The scopes of the tree's factors: families over the same hidden members share one factor."""
    return list(dict.fromkeys(_family_scopes(fams, vars_, involved)))


def _tree(graph, fams, vars_, involved, size):
    """The clique tree of a large hidden component: each family is a factor over its hidden members
    (a family with an observed gaussian or logistic child is per-row evidence on its hidden parents)."""
    try:
        return build_clique_tree(_scopes(fams, vars_, involved), {v: graph[v].n_states for v in vars_})
    except TooWideError as exc:
        raise ModelError(f"the hidden nodes {list(vars_)} are connected through each other ({size:.3g} joint "
                         f"states per row) and too wide for exact inference ({str(exc).split('; use')[0]}); "
                         "fewer latent nodes, fewer parents per node or fewer missing cells would make this "
                         "tractable") from None


def listing_cost(n_rows: int, size: int, kinds: list[str]) -> float:
    """Estimated cost of listing ``size`` joint states for ``n_rows`` rows, in units of one
    table-family term (a gather and an add): a non-table family is evaluated for every
    (row, joint state) pair, which costs :data:`COST_LIST_OTHER` such units."""
    per_state = sum(1.0 if k == "table" else COST_LIST_OTHER for k in kinds) + COST_LIST_STATE
    return float(n_rows) * size * per_state


def tree_cost(n_rows: int, tree: CliqueTree, factor_sizes: list[int]) -> float:
    """Estimated cost of the calibrated clique tree for ``n_rows`` rows (same units as
    :func:`listing_cost`): two passes over every clique table, each factor's per-row table
    gathered and its posterior summed, and a fixed overhead per numpy call."""
    n_batches = max(1, math.ceil(n_rows * _row_entries(tree, factor_sizes) / BATCH_ENTRIES))
    calls = 8 * len(tree.cliques) + 4 * len(factor_sizes)
    return (float(n_rows) * (COST_TREE_ENTRY * tree.total_entries + COST_TREE_FACTOR * sum(factor_sizes))
            + COST_CALL * calls * n_batches)


def _row_entries(tree: CliqueTree, factor_sizes: list[int]) -> int:
    """float64 entries one row occupies during calibration (potentials, beliefs, messages, factors)."""
    return 3 * tree.total_entries + sum(factor_sizes)


def _cheaper_tree(graph, fams, vars_, involved, size, n_rows):
    """A clique tree for a listable component when it is estimated cheaper than listing, or when
    listing every row at once would hold more than :data:`BATCH_ENTRIES` entries per array (the tree
    runs in batches of rows), or when forced by :data:`STRATEGY`; None to list."""
    kinds = [fams[f].kind for f in involved]
    listing = listing_cost(n_rows, size, kinds)
    if STRATEGY == "list" or (STRATEGY == "cost" and listing <= COST_CALL * (8 + 4 * len(involved))):
        return None  # listing is cheaper than the fixed cost of any tree: do not build one
    try:
        tree = build_clique_tree(_scopes(fams, vars_, involved), {v: graph[v].n_states for v in vars_})
    except TooWideError:
        return None
    if STRATEGY == "tree":
        return tree
    if n_rows * size > BATCH_ENTRIES:  # listing holds (rows, joint states) arrays at once; the tree is batched
        return tree
    sizes = [math.prod(graph[m].n_states for m in s) for s in _family_scopes(fams, vars_, involved)]
    return tree if tree_cost(n_rows, tree, sizes) < listing else None


def group_assign(graph: Graph, data: EncodedData, group: Group, fams: dict[str, Family]) -> dict[str, np.ndarray]:
    """Values of every member of the group's families: joint states for the group's variables,
    data for the rest.

    A member outside the group's variables that is not observed in a row is barren there
    (summed out), and so is every family it belongs to; its placeholder value (code 0, or 0.0)
    only keeps indexing valid and the masked terms finite -- they are zeroed afterwards."""
    assign: dict[str, np.ndarray] = {}
    rows = slice(None) if group.all_rows else group.rows
    for k, v in enumerate(group.variables):
        assign[v] = group.joint[k][None, :]
    for f in group.families:
        for m in fams[f].members:
            if m in assign:
                continue
            if m in data.codes:
                codes = data.codes[m][rows]
                assign[m] = (np.maximum(codes, 0) if m in data.missing else codes)[:, None]
            elif m in data.values:
                values = data.values[m][rows]
                assign[m] = np.nan_to_num(values, nan=0.0) if m in data.missing else values
            else:  # a latent node summed out in every row of this group
                assign[m] = np.zeros((1, 1), dtype=np.int64)
    return assign


def log_joint(group: Group, assign: dict[str, np.ndarray], fams: dict[str, Family],
              cpds: dict[str, CPD], graph: Graph) -> np.ndarray:
    """log p(observed, hidden = each joint state) restricted to the group's families: (n_rows, n_joint)."""
    n = len(group.rows)
    total = np.zeros((n, group.joint.shape[1]))
    for f in group.families:
        lp = family_log_prob(fams[f], cpds[graph[f].param], assign, n, group.cache)
        if f in group.dropped:
            lp = np.where(group.dropped[f][:, None], 0.0, lp)
        total = total + lp
    return total


def _check_finite(lse: np.ndarray, group: Group, data: EncodedData) -> None:
    if not np.all(np.isfinite(lse)):
        bad = group.rows[~np.isfinite(lse)][:3]
        raise DataError(f"{row_labels(data, bad)} have probability zero under the current parameters "
                        f"(hidden nodes {list(group.variables)}); a prior (prior: {{dirichlet: 1}}) avoids "
                        "zero probabilities")


@dataclass
class _Evidence:
    """One family of a tree group as a factor over its hidden members, per row.

    The family's members inside the component are listed jointly (``assign`` holds
    their codes with shape (1, K)); the observed members hold data.  When every
    observed member is discrete, rows with equal codes are merged ("keys"): the
    family is evaluated once per key and gathered per row, and posterior weights are
    summed per key before the statistics (exact: rows with equal values contribute
    equal terms).  An observed gaussian child or parent keeps one key per row."""

    hidden: tuple[str, ...]
    shape: tuple[int, ...]
    assign: dict[str, np.ndarray]
    n_keys: int
    inverse: np.ndarray | None          # (rows,) key of each group row; None: one key per row
    per_row: tuple[str, ...]            # members whose arrays have one entry per group row
    keep: np.ndarray | None             # (rows,) False where the family is summed out
    cells: np.ndarray | None = None     # (keys, states) the CPT cell each entry reads: merged table families
    cache: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def rows(self, sl: slice) -> dict[str, np.ndarray]:
        """The member values of a batch of group rows (unmerged families)."""
        return {m: (a[sl] if m in self.per_row else a) for m, a in self.assign.items()}

    def row_cells(self, sl: slice) -> np.ndarray:
        """(rows in the batch, states): the CPT cell each entry of a merged table family reads."""
        key = ("cells", sl.start, sl.stop)
        if key not in self.cache:
            assert self.cells is not None and self.inverse is not None
            self.cache[key] = self.cells[self.inverse[sl]]
        return self.cache[key]


def _evidence(group: Group, f: str, fam: Family, graph: Graph, data: EncodedData) -> _Evidence:
    key = ("evidence", f)
    if key in group.cache:
        return group.cache[key]
    rows = slice(None) if group.all_rows else group.rows
    n = len(group.rows)
    hidden = tuple(m for m in fam.members if m in group.variables)
    shape = tuple(graph[m].n_states for m in hidden)
    joint = np.indices(shape).reshape(len(hidden), -1)
    assign = {m: joint[i][None, :] for i, m in enumerate(hidden)}
    observed = [m for m in fam.members if m not in hidden]
    coded = [m for m in observed if m in data.codes]
    for m in observed:  # a latent member outside the component is summed out in these rows
        if m not in data.codes and m not in data.values:
            assign[m] = np.zeros((1, 1), dtype=np.int64)
    inverse, n_keys, per_row = None, n, ()
    if all(m in data.codes or m not in data.values for m in observed):
        codes = [np.maximum(data.codes[m][rows], 0) if m in data.missing else data.codes[m][rows] for m in coded]
        if not codes:
            inverse, n_keys = np.zeros(n, dtype=np.int64), 1
        else:
            uniq, inverse = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
            inverse, n_keys = inverse.ravel(), len(uniq)
            for j, m in enumerate(coded):
                assign[m] = uniq[:, j][:, None]
    else:
        per_row = tuple(observed)
        for m in coded:
            c = data.codes[m][rows]
            assign[m] = (np.maximum(c, 0) if m in data.missing else c)[:, None]
        for m in observed:
            if m in data.values:
                v = data.values[m][rows]
                assign[m] = np.nan_to_num(v, nan=0.0) if m in data.missing else v
    keep = ~group.dropped[f] if f in group.dropped else None
    cells = None
    if fam.kind == "table" and inverse is not None:  # gathered and counted by cell, as the listed path does
        cells = np.broadcast_to(table_cells(fam, assign), (n_keys, math.prod(shape))).astype(np.int64)
    group.cache[key] = ev = _Evidence(hidden, shape, assign, n_keys, inverse, per_row, keep, cells)
    return ev


def _batches(group: Group, evs: list[_Evidence]) -> list[slice]:
    """Row batches of a tree group whose calibration fits in :data:`BATCH_ENTRIES` entries."""
    n = len(group.rows)
    step = max(1, BATCH_ENTRIES // max(_row_entries(group.tree, [ev.size for ev in evs]), 1))
    return [slice(s, min(n, s + step)) for s in range(0, n, step)]


def _calibrated(group: Group, evs: list[_Evidence], graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD],
                downward: bool):
    """Calibrate the group's clique tree batch by batch: yields (batch, Calibration, merged)."""
    for sl, tables, merged in _tree_batches(group, evs, graph, fams, cpds):
        yield sl, calibrate(group.tree, tables, downward=downward), merged


def _slots(group: Group, evs: list[_Evidence]) -> list[int]:
    """The tree factor each family of the group belongs to (families over the same hidden members share one)."""
    if "slots" not in group.cache:
        tree = group.tree
        index = {tuple(tree.variables[i] for i in sc): j for j, sc in enumerate(tree.scopes)}
        group.cache["slots"] = [index[ev.hidden] for ev in evs]
    return group.cache["slots"]


def _tree_batches(group: Group, evs: list[_Evidence], graph: Graph, fams: dict[str, Family],
                  cpds: dict[str, CPD]):
    """The factor tables of the group's tree, batch of rows by batch: yields (batch, tables, merged).

    A factor shared by several merged-key families (a sigmoid belief network's visible units over
    the same hidden units) is one matrix product: a (rows, keys) indicator matrix times their
    stacked (keys, states) log-tables.  ``merged`` maps such a factor to (its families' indices,
    the indicator matrix, each family's first key) for the statistics.  Tables with log 0 entries
    are gathered instead (0 * -inf is not 0)."""
    slot = _slots(group, evs)
    keyed = [None if ev.inverse is None else cpds[graph[f].param].log_probs.reshape(-1)[ev.cells]
             if ev.cells is not None else family_log_prob(fams[f], cpds[graph[f].param], ev.assign, ev.n_keys, ev.cache)
             for f, ev in zip(group.families, evs)]
    shared: dict[int, list[int]] = {}
    for i, (ev, lp) in enumerate(zip(evs, keyed)):
        if lp is not None and not (ev.n_keys == 1 and ev.keep is None) and np.all(np.isfinite(lp)):
            shared.setdefault(slot[i], []).append(i)
    shared = {j: idx for j, idx in shared.items()
              if len(idx) > 1 and sum(evs[i].n_keys for i in idx) <= MAX_SHARED_KEYS}
    stacked = {j: np.vstack([keyed[i] for i in idx]) for j, idx in shared.items()}
    first = {j: np.cumsum([0] + [evs[i].n_keys for i in idx]) for j, idx in shared.items()}
    summed = {i for idx in shared.values() for i in idx}
    for sl in _batches(group, evs):
        m = sl.stop - sl.start
        tables: list[Any] = [None] * len(group.tree.scopes)
        merged = {}
        for j, idx in shared.items():
            ind = np.zeros((m, first[j][-1]))
            for i, start in zip(idx, first[j]):
                ind[np.arange(m), start + evs[i].inverse[sl]] = 1.0 if evs[i].keep is None else evs[i].keep[sl]
            tables[j] = (ind @ stacked[j]).reshape((m,) + evs[idx[0]].shape)
            merged[j] = (idx, ind, first[j])
        for i, (f, ev, lp) in enumerate(zip(group.families, evs, keyed)):
            if i in summed:
                continue
            if lp is None:
                cache = ev.cache.setdefault(("batch", sl.start, sl.stop), {})
                lp = family_log_prob(fams[f], cpds[graph[f].param], ev.rows(sl), m, cache).reshape((m,) + ev.shape)
            elif ev.n_keys == 1 and ev.keep is None:  # the same table in every row: unbatched
                lp = lp.reshape(ev.shape)
            else:
                lp = lp[ev.inverse[sl]].reshape((m,) + ev.shape)
            if ev.keep is not None:
                lp = np.where(ev.keep[sl].reshape((-1,) + (1,) * len(ev.shape)), lp, 0.0)
            tables[slot[i]] = lp if tables[slot[i]] is None else tables[slot[i]] + lp
        yield sl, tables, merged


def _tree_step(group: Group, graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
               stats: bool) -> tuple[np.ndarray, dict[str, Stats]]:
    """log p(observed part) per row and expected statistics, by a batched calibrated clique tree.

    Each family's statistics are weighted by the posterior over its hidden members, which the
    calibrated tree gives (the family's factor sits in a clique holding them)."""
    n = len(group.rows)
    lse = np.empty(n)
    w = None if data.weights is None else data.weights[group.rows]
    acc: dict[str, Any] = {}
    direct: set[str] = set()   # families whose acc holds flat table counts
    evs = [_evidence(group, f, fams[f], graph, data) for f in group.families]
    slot = _slots(group, evs)

    def add(f: str, part: Any) -> None:
        acc[f] = part if f not in acc else acc[f] + part

    for sl, cal, merged in _calibrated(group, evs, graph, fams, cpds, downward=stats):
        m = sl.stop - sl.start
        lse[sl] = np.broadcast_to(cal.log_z, (m,))
        if not stats:
            continue
        qs = []
        for j, q in enumerate(cal.factor_probabilities()):
            q = np.broadcast_to(q.reshape(q.shape[0], -1), (m, q[0].size))
            qs.append(q * w[sl, None] if w is not None else q)
            if j in merged:  # the posterior weight of each key of each family: one matrix product
                idx, ind, first = merged[j]
                part = ind.T @ qs[j]
                for i, start in zip(idx, first):
                    add(group.families[i], part[start:start + evs[i].n_keys])
        for i, (f, ev) in enumerate(zip(group.families, evs)):
            if any(i in merged[j][0] for j in merged):
                continue
            q = qs[slot[i]]
            if ev.keep is not None:
                q = np.where(ev.keep[sl, None], q, 0.0)
            if ev.cells is not None:  # a table family: its counts, one bincount over the cells read
                fam = fams[f]
                part = np.bincount(ev.row_cells(sl).reshape(-1), weights=np.ascontiguousarray(q).reshape(-1),
                                   minlength=fam.n_configs * fam.var.n_states)
                add(f, part)
                direct.add(f)
            elif ev.inverse is not None:  # sum the posterior weights of rows sharing a key
                cells = (ev.inverse[sl, None] * ev.size + np.arange(ev.size)).reshape(-1)
                part = np.bincount(cells, weights=np.ascontiguousarray(q).reshape(-1), minlength=ev.n_keys * ev.size)
                add(f, part.reshape(ev.n_keys, ev.size))
            else:
                cache = ev.cache.setdefault(("batch", sl.start, sl.stop), {})
                add(f, family_stats(fams[f], ev.rows(sl), m, np.ascontiguousarray(q), cache))
    out: dict[str, Stats] = {}
    for f, ev in zip(group.families, evs if stats else []):
        if f in direct:
            out[f] = TableStats(acc[f].reshape(fams[f].n_configs, fams[f].var.n_states))
        else:
            out[f] = (family_stats(fams[f], ev.assign, ev.n_keys, acc[f], ev.cache) if ev.inverse is not None
                      else acc[f])
    return lse, out


@dataclass
class EStep:
    log_likelihood: float
    stats: dict[str, Stats]
    row_log_likelihood: np.ndarray | None = None


def observed_log_prob(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
                      plan: Plan, per_row: bool = False) -> tuple[float, np.ndarray | None]:
    """Sum of log p over the families fully observed in each row."""
    assign = {**data.codes, **data.values}
    total = 0.0
    rows_ll = np.zeros(data.n_rows) if per_row else None
    for f, fam in fams.items():
        mask = plan.observed_rows[f]
        if not mask.any():
            continue
        if fam.kind == "table":  # the CPT cell each observed row reads is fixed: gather it
            key = ("observed cells", f)
            if key not in plan.cache:
                cells = table_cells(fam, {m: assign[m][mask] for m in fam.members})
                plan.cache[key] = (cells, None if data.weights is None else data.weights[mask])
            cells, w = plan.cache[key]
            lp = cpds[graph[f].param].log_probs.reshape(-1)[cells]
        elif mask.all():
            lp = family_log_prob(fam, cpds[graph[f].param], assign, data.n_rows)
            w = data.weights
        else:
            sub = {m: assign[m][mask] for m in fam.members if m in assign}
            lp = family_log_prob(fam, cpds[graph[f].param], sub, int(mask.sum()))
            w = None if data.weights is None else data.weights[mask]
        total += float(lp.sum() if w is None else w @ lp)
        if per_row:
            rows_ll[mask] += lp
    return total, rows_ll


def observed_stats(graph: Graph, fams: dict[str, Family], data: EncodedData, plan: Plan) -> dict[str, Stats]:
    """Statistics of the fully observed part of each family (constant across EM iterations)."""
    assign = {**data.codes, **data.values}
    out: dict[str, Stats] = {}
    for f, fam in fams.items():
        mask = plan.observed_rows[f]
        if not mask.any():
            continue
        if mask.all():
            out[f] = family_stats(fam, assign, data.n_rows, data.weights)
        else:
            sub = {m: assign[m][mask] for m in fam.members if m in assign}
            w = None if data.weights is None else data.weights[mask]
            out[f] = family_stats(fam, sub, int(mask.sum()), w)
    return out


def e_step(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData, plan: Plan,
           *, stats: bool = True, rule: Posterior = Posterior.EXACT, per_row: bool = False,
           zero_ok: bool = False) -> EStep:
    """Log-likelihood and posterior-weighted statistics of the hidden part of every group.

    ``rule`` weights the statistics (:class:`pgm.infer.posterior.Posterior`): with ``HARD`` each
    row's posterior is replaced by the indicator of its most probable joint state (classification
    EM); the log-likelihood is still the marginal one.  Hard EM lists the joint states, so a
    group that could be listed but goes through the clique tree for speed is listed instead.
    A row of probability zero raises a DataError (a learner cannot go on from it); with
    ``zero_ok`` (scoring, ``stats=False``) its log-likelihood is ``-inf`` instead.
    """
    zero_ok = zero_ok and not stats
    total, rows_ll = observed_log_prob(graph, fams, cpds, data, plan, per_row)
    out: dict[str, Stats] = {}

    def add(part: dict[str, Stats]) -> None:
        for f, st in part.items():
            out[f] = st if f not in out else out[f] + st

    def count(group: Group, lse: np.ndarray) -> float:
        if not zero_ok:
            _check_finite(lse, group, data)
        if per_row:
            rows_ll[group.rows] += lse
        w = None if data.weights is None else data.weights[group.rows]
        return float(lse.sum() if w is None else w @ lse)

    listed = [g for g in plan.groups if g.tree is None and not g.gauss]
    for group in plan.groups:
        if group.gauss:  # continuous hidden variables (pgm.infer.gaussian)
            res = gaussian_group(graph, fams, cpds, data, group, stats=stats, rule=rule,
                                 per_row=per_row)
            if res.lse is not None:
                count(group, res.lse)
            total += res.total
            add(res.stats)
            continue
        if group.tree is None:
            continue
        if rule is not Posterior.EXACT:
            if not group.joint.shape[1]:
                raise ModelError(f"{rule.value} EM needs each row's hidden nodes to be listed state by state; "
                                 f"the nodes {list(group.variables)} have more than {ENUMERATE_LIMIT} joint states "
                                 "(use learner='em')")
            lse, part = _list_step(group, graph, fams, cpds, data, stats, rule)
        else:
            lse, part = _tree_step(group, graph, fams, cpds, data, stats)
        total += count(group, lse)
        add(part)
    if not plan.flat_checked:
        plan.flat = build_flat(graph, fams, data, listed, lambda g: group_assign(graph, data, g, fams))
        plan.flat_checked = True
    if plan.flat is not None:  # every hidden family is a table: all listed groups in one pass
        hidden, part, lse = flat_e_step(plan.flat, graph, cpds, stats=stats, rule=rule, zero_ok=zero_ok,
                                        data=data)
        if per_row:
            rows_ll += np.bincount(plan.flat.seg_rows, weights=lse, minlength=data.n_rows)
        add(part)
        return EStep(total + hidden, out, rows_ll)
    for group in listed:
        lse, part = _list_step(group, graph, fams, cpds, data, stats, rule)
        total += count(group, lse)
        add(part)
    return EStep(total, out, rows_ll)


def _list_step(group: Group, graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
               stats: bool, rule: Posterior) -> tuple[np.ndarray, dict[str, Stats]]:
    """log p(observed part) per row and expected statistics, by listing the group's joint states."""
    assign = group_assign(graph, data, group, fams)
    lj = log_joint(group, assign, fams, cpds, graph)
    lse, shifted, sums = row_log_sum_exp(lj)
    out: dict[str, Stats] = {}
    if not stats or not np.all(np.isfinite(lse)):
        return lse, out
    q = rule.weights(lj, shifted, sums)
    if data.weights is not None:
        q = q * data.weights[group.rows][:, None]
    n = len(group.rows)
    for f in group.families:
        qf = q if f not in group.dropped else np.where(group.dropped[f][:, None], 0.0, q)
        out[f] = family_stats(fams[f], assign, n, qf, group.cache)
    return lse, out


@dataclass
class Part:
    """One hidden component's answer for its rows: the asked nodes it holds, and either their
    normalised joint log-posterior ``table`` (rows, *cards) or their most probable ``codes`` (rows, nodes)."""

    rows: np.ndarray
    nodes: tuple[str, ...]
    table: np.ndarray | None = None
    codes: np.ndarray | None = None


def _lse_rows(lj: np.ndarray) -> np.ndarray:
    top = lj.max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.exp(lj - safe[:, None]).sum(axis=1))


def _tree_over(group: Group, graph: Graph, nodes: tuple[str, ...]):
    """The group's clique tree with an extra (uniform) factor over ``nodes``: one clique holds them all."""
    key = ("tree over", nodes)
    if key not in group.cache:
        tree = group.tree
        scopes = [tuple(tree.variables[i] for i in s) for s in tree.scopes] + [nodes]
        try:
            group.cache[key] = build_clique_tree(scopes, {v: graph[v].n_states for v in group.variables})
        except TooWideError as exc:
            raise ModelError(f"the joint posterior of {list(nodes)} is too wide for exact inference ({exc}); "
                             "ask for fewer nodes at once") from None
    return group.cache[key]


def hidden_parts(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
                 nodes: tuple[str, ...], mode: str = "sum") -> tuple[Plan, np.ndarray, list[Part]]:
    """Posteriors of discrete ``nodes`` given each row's observed cells, component by component.

    Hidden components are independent given the observed cells, so a joint posterior over
    nodes in several components is the product of the parts.

    Parameters
    ----------
    nodes : discrete variables (hidden in some rows; observed cells are the caller's).
    mode : "sum" -- each part's normalised joint log-posterior over its nodes (marginal);
        "max" -- each part's most probable joint state of its nodes, the other hidden
        variables of the component summed out (for every hidden node: the MPE).

    Returns
    -------
    plan : the plan (``plan.hidden`` says which cells were hidden)
    row_log_prob : log p(observed cells) per row (``-inf`` for a row of probability zero)
    parts : the answers
    """
    plan = make_plan(graph, fams, data, keep=tuple(nodes))
    _, row_lp = observed_log_prob(graph, fams, cpds, data, plan, per_row=True)
    parts: list[Part] = []
    for group in plan.groups:
        inside = tuple(v for v in group.variables if v in nodes and graph[v].discrete)
        every = len(inside) == len(group.variables)
        if group.gauss:  # continuous hidden variables: the discrete part's posterior q over its joint states
            res = gaussian_group(graph, fams, cpds, data, group, stats=False)
            row_lp[group.rows] += res.lse
            if inside:
                disc = tuple(v for v in group.variables if graph[v].discrete)
                cards = tuple(graph[v].n_states for v in disc)
                with np.errstate(divide="ignore"):
                    full = np.log(res.q).reshape((len(res.q),) + cards)
                drop = tuple(1 + i for i, v in enumerate(disc) if v not in inside)
                table = logsumexp(full, axis=drop) if drop else full
                if mode == "max":
                    flat = table.reshape(len(table), -1).argmax(axis=1)
                    parts.append(Part(group.rows, inside, codes=np.stack(np.unravel_index(flat, table.shape[1:]),
                                                                         axis=1)))
                else:
                    parts.append(Part(group.rows, inside, table=table))
            continue
        if group.tree is not None:
            evs = [_evidence(group, f, fams[f], graph, data) for f in group.families]
            tree = group.tree if len(inside) <= 1 or (mode == "max" and every) else _tree_over(group, graph, inside)
            extra = [] if tree is group.tree else [np.zeros([graph[v].n_states for v in inside])]
            pieces = []
            for sl, tables, _ in _tree_batches(group, evs, graph, fams, cpds):
                rows = group.rows[sl]
                if mode == "max" and every:
                    codes, _ = max_decode(group.tree, tables)
                    row_lp[rows] += calibrate(group.tree, tables, downward=False).log_z
                    pieces.append(Part(rows, inside, codes=np.broadcast_to(codes, (len(rows), codes.shape[1]))))
                    continue
                cal = calibrate(tree, tables + extra, downward=bool(inside))
                row_lp[rows] += np.broadcast_to(cal.log_z, (len(rows),))
                if not inside:
                    continue
                with np.errstate(invalid="ignore"):
                    table = cal.marginal(list(inside)).table
                table = np.broadcast_to(table, (len(rows),) + table.shape[-len(inside):])
                if mode == "max":
                    flat = table.reshape(len(table), -1).argmax(axis=1)
                    codes = np.stack(np.unravel_index(flat, table.shape[1:]), axis=1)
                    pieces.append(Part(rows, inside, codes=codes))
                else:
                    pieces.append(Part(rows, inside, table=table))
            if pieces:
                parts.append(Part(group.rows, inside,
                                  table=None if mode == "max" else np.concatenate([p.table for p in pieces]),
                                  codes=np.concatenate([p.codes for p in pieces]) if mode == "max" else None))
            continue
        assign = group_assign(graph, data, group, fams)
        lj = log_joint(group, assign, fams, cpds, graph)
        lse = _lse_rows(lj)
        row_lp[group.rows] += lse
        if not inside:
            continue
        cards = tuple(graph[v].n_states for v in group.variables)
        if mode == "max" and every:
            best = lj.argmax(axis=1)
            parts.append(Part(group.rows, inside, codes=group.joint[:, best].T))
            continue
        with np.errstate(invalid="ignore"):
            full = (lj - lse[:, None]).reshape((len(lj),) + cards)
        drop = tuple(1 + i for i, v in enumerate(group.variables) if v not in inside)
        table = logsumexp(full, axis=drop) if drop else full
        if mode == "max":
            flat = table.reshape(len(table), -1).argmax(axis=1)
            codes = np.stack(np.unravel_index(flat, table.shape[1:]), axis=1)
            parts.append(Part(group.rows, inside, codes=codes))
        else:
            parts.append(Part(group.rows, inside, table=table))
    return plan, row_lp, parts

