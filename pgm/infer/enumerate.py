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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from pgm.cpd.family import CPD, Family, Stats, family_log_prob, family_stats
from pgm.cpd.table import TableStats
from pgm.encode import EncodedData
from pgm.errors import DataError, ModelError
from pgm.graph import Graph
from pgm.infer.elimination import TooWideError, build_clique_tree, calibrate, max_decode
from pgm.infer.flat import build_flat, flat_e_step, table_cells

#: Components with more joint states than this are not listed state by state: their
#: posterior marginals come from a calibrated clique tree (batched over rows) instead.
ENUMERATE_LIMIT = 4096


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
    for name in names:
        var = graph[name]
        if var.latent or not data.observed(name):
            hidden[:, col[name]] = True
        elif name in data.missing:
            hidden[:, col[name]] = data.missing[name]
    children = {name: [c for c in names if name in graph[c].parents] for name in names}
    dropped = np.zeros_like(hidden)
    for name in reversed(names):  # barren: hidden, and every child barren too
        if name in keep:
            continue
        i = col[name]
        d = hidden[:, i].copy()
        for c in children[name]:
            d &= dropped[:, col[c]]
        dropped[:, i] = d
    active = hidden & ~dropped
    for name in names:
        if not graph[name].discrete and active[:, col[name]].any():
            rows = np.flatnonzero(active[:, col[name]])[:3]
            rows = [data.index[r] if data.index is not None else r for r in rows]  # row labels, plain values
            rows = [r.item() if isinstance(r, np.generic) else r for r in rows]
            raise DataError(f"gaussian node {graph[name].decl!r} is missing in rows {rows} while a child "
                            "depends on it; continuous values can only be missing where no observed node depends "
                            "on them (drop those rows, or fill the cells)")
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
            groups.append(_group(graph, fams, vars_, rows, dropped, col))
    return groups


def _group(graph, fams, vars_, rows, dropped, col) -> Group:
    cards = [graph[v].n_states for v in vars_]
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
    if size > ENUMERATE_LIMIT:
        return Group(vars_, rows, involved, np.zeros((len(cards), 0), dtype=np.int64), drop, all_rows,
                     tree=_tree(graph, fams, vars_, involved, size))
    joint = np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)
    return Group(vars_, rows, involved, joint, drop, all_rows)


def _tree(graph, fams, vars_, involved, size):
    """The clique tree of a large hidden component (each family a factor over its hidden members)."""
    kinds = {fams[f].kind for f in involved}
    if kinds != {"table"}:
        raise ModelError(f"the hidden nodes {list(vars_)} are connected through each other: {size:.3g} joint "
                         f"states per row, too many to list, and families of kind {sorted(kinds - {'table'})} "
                         "cannot go through the clique tree. Fewer latent nodes or missing cells would help")
    scopes = [tuple(m for m in fams[f].members if m in vars_) for f in involved]
    try:
        return build_clique_tree(scopes, {v: graph[v].n_states for v in vars_})
    except TooWideError as exc:
        raise ModelError(f"the hidden nodes {list(vars_)} are connected through each other and too wide for "
                         f"exact inference ({exc}); fewer latent nodes or missing cells would make this tractable") from None


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


def _check_finite(lse: np.ndarray, group: Group) -> None:
    if not np.all(np.isfinite(lse)):
        bad = group.rows[~np.isfinite(lse)][:3]
        raise DataError(f"rows {[int(b) for b in bad]} have probability zero under the current parameters "
                        f"(hidden nodes {list(group.variables)}); a prior (prior: {{dirichlet: 1}}) avoids "
                        "zero probabilities")


def _tree_tables(group: Group, graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD] | None,
                 data: EncodedData) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per family of a tree group: its log-table over (rows, hidden members) and the CPT cell each
    entry reads (the cells are data-only and cached on the group)."""
    rows = slice(None) if group.all_rows else group.rows
    n = len(group.rows)
    tables, cells = [], []
    for f in group.families:
        fam = fams[f]
        hidden = [m for m in fam.members if m in group.variables]
        key = ("tree cells", f)
        if key not in group.cache:
            assign = {}
            for m in fam.members:
                if m in hidden:
                    i = hidden.index(m)
                    shape = [1] * (1 + len(hidden))
                    shape[1 + i] = graph[m].n_states
                    assign[m] = np.arange(graph[m].n_states).reshape(shape)
                elif m in data.codes:
                    assign[m] = np.maximum(data.codes[m][rows], 0).reshape((n,) + (1,) * len(hidden))
                else:  # summed out in these rows (masked below)
                    assign[m] = np.zeros((1,) * (1 + len(hidden)), dtype=np.int64)
            full = (n,) + tuple(graph[m].n_states for m in hidden)
            group.cache[key] = np.broadcast_to(table_cells(fam, assign), full)
        cell = group.cache[key]
        cells.append(cell)
        if cpds is not None:
            lp = cpds[graph[f].param].log_probs.reshape(-1)[cell]
            if f in group.dropped:
                lp = np.where(group.dropped[f].reshape((n,) + (1,) * len(hidden)), 0.0, lp)
            tables.append(lp)
    return tables, cells


def _tree_step(group: Group, graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
               stats: bool, hard: bool) -> tuple[np.ndarray, dict[str, Stats]]:
    """log p(observed part) per row and expected counts, by a batched calibrated clique tree."""
    if hard:
        raise ModelError(f"hard EM needs each row's hidden nodes to be listed state by state; the nodes "
                         f"{list(group.variables)} have more than {ENUMERATE_LIMIT} joint states (use learner='em')")
    tables, cells = _tree_tables(group, graph, fams, cpds, data)
    cal = calibrate(group.tree, tables, downward=stats)
    lse = cal.log_z
    out: dict[str, Stats] = {}
    if stats:
        w = None if data.weights is None else data.weights[group.rows]
        for f, q, cell in zip(group.families, cal.factor_probabilities(), cells):
            if w is not None:
                q = q * w.reshape((-1,) + (1,) * (q.ndim - 1))
            if f in group.dropped:
                q = np.where(group.dropped[f].reshape((-1,) + (1,) * (q.ndim - 1)), 0.0, q)
            fam = fams[f]
            counts = np.bincount(cell.reshape(-1), weights=q.reshape(-1),
                                 minlength=fam.n_configs * fam.var.n_states)
            out[f] = TableStats(counts.reshape(fam.n_configs, fam.var.n_states))
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
           *, stats: bool = True, hard: bool = False, per_row: bool = False, zero_ok: bool = False) -> EStep:
    """Log-likelihood and posterior-weighted statistics of the hidden part of every group.

    With ``hard=True`` each row's posterior is replaced by the indicator of its most
    probable joint state (classification EM); the log-likelihood is still the marginal one.
    A row of probability zero raises a DataError (a learner cannot go on from it); with
    ``zero_ok`` (scoring, ``stats=False``) its log-likelihood is ``-inf`` instead.
    """
    zero_ok = zero_ok and not stats
    total, rows_ll = observed_log_prob(graph, fams, cpds, data, plan, per_row)
    out: dict[str, Stats] = {}
    listed = [g for g in plan.groups if g.tree is None]
    for group in plan.groups:
        if group.tree is None:
            continue
        lse, part = _tree_step(group, graph, fams, cpds, data, stats, hard)
        if not zero_ok:
            _check_finite(lse, group)
        w = None if data.weights is None else data.weights[group.rows]
        total += float(lse.sum() if w is None else w @ lse)
        if per_row:
            rows_ll[group.rows] += lse
        for f, st in part.items():
            out[f] = st if f not in out else out[f] + st
    if not plan.flat_checked:
        plan.flat = build_flat(graph, fams, data, listed, lambda g: group_assign(graph, data, g, fams))
        plan.flat_checked = True
    if plan.flat is not None:  # every hidden family is a table: all listed groups in one pass
        hidden, part, lse = flat_e_step(plan.flat, graph, cpds, stats=stats, hard=hard, zero_ok=zero_ok)
        if per_row:
            rows_ll += np.bincount(plan.flat.seg_rows, weights=lse, minlength=data.n_rows)
        for f, st in part.items():
            out[f] = st if f not in out else out[f] + st
        return EStep(total + hidden, out, rows_ll)
    for group in listed:
        assign = group_assign(graph, data, group, fams)
        lj = log_joint(group, assign, fams, cpds, graph)
        # log-sum-exp by hand, keeping exp(lj - max) for the posterior: one exp pass, not two
        top = lj.max(axis=1)
        top = np.where(np.isfinite(top), top, 0.0)
        shifted = np.exp(lj - top[:, None])
        sums = shifted.sum(axis=1)
        with np.errstate(divide="ignore"):
            lse = top + np.log(sums)
        w = None if data.weights is None else data.weights[group.rows]
        if not zero_ok:
            _check_finite(lse, group)
        total += float(lse.sum() if w is None else w @ lse)
        if per_row:
            rows_ll[group.rows] += lse
        if not stats:
            continue
        if hard:
            q = np.zeros_like(lj)
            q[np.arange(len(lj)), lj.argmax(axis=1)] = 1.0
        else:
            q = shifted / sums[:, None]
        if w is not None:
            q = q * w[:, None]
        n = len(group.rows)
        for f in group.families:
            qf = q if f not in group.dropped else np.where(group.dropped[f][:, None], 0.0, q)
            st = family_stats(fams[f], assign, n, qf, group.cache)
            out[f] = st if f not in out else out[f] + st
    return EStep(total, out, rows_ll)


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
        inside = tuple(v for v in group.variables if v in nodes)
        every = len(inside) == len(group.variables)
        if group.tree is not None:
            tables, _ = _tree_tables(group, graph, fams, cpds, data)
            if mode == "max" and every:
                codes, lse_max = max_decode(group.tree, tables)
                lse = calibrate(group.tree, tables, downward=False).log_z
                parts.append(Part(group.rows, inside, codes=codes))
            else:
                tree = group.tree if len(inside) <= 1 else _tree_over(group, graph, inside)
                extra = [] if tree is group.tree else [np.zeros([graph[v].n_states for v in inside])]
                cal = calibrate(tree, tables + extra, downward=bool(inside))
                lse = cal.log_z
                if inside:
                    with np.errstate(invalid="ignore"):
                        table = cal.marginal(list(inside)).table
                    if mode == "max":
                        flat = table.reshape(len(table), -1).argmax(axis=1)
                        codes = np.stack(np.unravel_index(flat, table.shape[1:]), axis=1)
                        parts.append(Part(group.rows, inside, codes=codes))
                    else:
                        parts.append(Part(group.rows, inside, table=table))
            row_lp[group.rows] += lse
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


def posterior(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData,
              node: str) -> np.ndarray:
    """p(node | observed values of the row) for every row: array of shape (n_rows, n_states)."""
    plan, _, parts = hidden_parts(graph, fams, cpds, data, (node,))
    k = graph[node].n_states
    out = np.zeros((data.n_rows, k))
    col = plan.names.index(node)
    seen = ~plan.hidden[:, col]
    if node in data.codes:
        rows = np.flatnonzero(seen)
        out[rows, data.codes[node][rows]] = 1.0
    for part in parts:
        out[part.rows] = np.exp(part.table)
    return out
