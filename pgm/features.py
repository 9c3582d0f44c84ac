"""Feature families and the log-linear parameterisation of an undirected model.

An undirected model declares cliques with features; the distribution is

    p(x; theta) = exp( sum_c theta_c . f_c(x_c) ) / Z(theta).

Every family maps a clique's joint state to a feature vector; this module turns
those vectors into what inference and learning use:

- a *feature matrix* ``F`` of shape (n_joint_states, dim) per clique shape, so the
  clique's log-potential table is ``F @ theta_c`` (the ``table`` family is the
  identity: ``theta_c`` *is* the log-potential table, never materialised as ``F``);
- *pull-backs*: any table over a clique's joint states (empirical counts, a model
  marginal, a gradient with respect to the log-potential) maps to parameter space as
  ``F.T @ table``.  Empirical statistics, model expectations and gradients are all
  this one operation, vectorised over the cliques of one family and shape;
- *local conditionals* ``log p(x_i | x_rest)`` for pseudo-likelihood and Gibbs
  sampling, vectorised over rows (or chains) and variables.

Built-in families:

``table``
    one indicator per joint state: a free log-potential table of shape ``cards``.
``ising``
    binary nodes; the product of spins ``s = 2 * code - 1`` (one parameter).
``agreement``
    1 when every node of the clique is in the same state (same code), else 0 (one parameter).

:func:`register_feature` adds families from Python (a graph file never runs code).

Unary potentials: every node has one unless it says ``unary: false``.  Its ``k``
log-potentials have the first fixed at 0 (``k - 1`` free parameters): adding a
constant to a unary changes nothing, so this removes the flat direction.  Table
cliques are left fully free (``prod(cards)`` parameters, over-complete together with
the unaries): the log-likelihood is still concave and its maximum unique, only the
maximiser is not; ``l2 > 0`` picks the smallest one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from pgm.errors import ModelError
from pgm.graph import Graph
from pgm.schema import FEATURE_NAMES

FeatureFn = Callable[[np.ndarray], np.ndarray]

#: Features of the node potentials (internal: not a clique family a file can name).
UNARY = "unary"


def joint_states(cards: Sequence[int]) -> np.ndarray:
    """Every joint state of variables with ``cards`` states, in C order (last fastest).

    Returns
    -------
    int array of shape (prod(cards), len(cards))

    Examples
    --------
    >>> joint_states([2, 3]).tolist()[:4]
    [[0, 0], [0, 1], [0, 2], [1, 0]]
    """
    grids = np.indices(tuple(cards)).reshape(len(cards), -1)
    return grids.T.astype(np.int64)


def _ising(codes: np.ndarray) -> np.ndarray:
    return np.prod(2 * codes - 1, axis=1, keepdims=True).astype(float)


def _agreement(codes: np.ndarray) -> np.ndarray:
    return np.all(codes == codes[:, :1], axis=1, keepdims=True).astype(float)


_REGISTRY: dict[str, FeatureFn | None] = {"table": None, "ising": _ising, "agreement": _agreement}
_MATRICES: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}


def register_feature(name: str, fn: FeatureFn, *, replace: bool = False) -> None:
    """Register a custom feature family, usable as ``features: name`` in graph files.

    Parameters
    ----------
    name : the family's name.
    fn : function mapping an int array of joint codes, shape (n, n_nodes), to the
        features, a float array of shape (n, n_features).  It is called once per
        clique shape, on every joint state, and must be deterministic.
    replace : allow replacing an existing custom family (built-ins are never replaced).

    Examples
    --------
    >>> import numpy as np
    >>> register_feature("sum_codes", lambda codes: codes.sum(axis=1, keepdims=True), replace=True)
    >>> feature_matrix("sum_codes", (2, 3)).ravel().tolist()
    [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]
    """
    if not callable(fn):
        raise TypeError(f"a feature family needs a function, got {type(fn).__name__}")
    if name in ("table", "ising", "agreement", UNARY) or (name in _REGISTRY and not replace):
        raise ValueError(f"feature family {name!r} exists already; pick another name"
                         + ("" if name in ("table", "ising", "agreement", UNARY) else " or pass replace=True"))
    _REGISTRY[name] = fn
    for key in [k for k in _MATRICES if k[0] == name]:
        del _MATRICES[key]
    FEATURE_NAMES.add(name)


def feature_matrix(name: str, cards: Sequence[int]) -> np.ndarray:
    """``F``: the features of every joint state of a clique, shape (prod(cards), dim).

    For ``table`` this is the identity (built only on request; learners never need it).
    """
    cards = tuple(int(k) for k in cards)
    key = (name, cards)
    if key in _MATRICES:
        return _MATRICES[key]
    size = math.prod(cards)
    if name == UNARY:
        (k,) = cards
        mat = np.eye(k, k - 1, -1)
    elif name == "table":
        mat = np.eye(size)
    elif name in _REGISTRY:
        fn = _REGISTRY[name]
        assert fn is not None
        mat = np.asarray(fn(joint_states(cards)), dtype=float)
        if mat.ndim == 1:
            mat = mat[:, None]
        if mat.ndim != 2 or mat.shape[0] != size:
            raise ModelError(f"feature family {name!r} returned shape {mat.shape} for {size} joint states; "
                             f"it must return (n_states, n_features) = ({size}, d)")
        if not np.all(np.isfinite(mat)):
            raise ModelError(f"feature family {name!r} returned non-finite features; return finite numbers")
    else:
        raise ModelError(f"unknown feature family {name!r} (known: {sorted(_REGISTRY)}); "
                         "register it with pgm.features.register_feature")
    mat.setflags(write=False)
    _MATRICES[key] = mat
    return mat


def feature_dim(name: str, cards: Sequence[int]) -> int:
    """Number of parameters of a clique of family ``name`` over ``cards``."""
    if name == "table":
        return math.prod(cards)
    return feature_matrix(name, cards).shape[1]


@dataclass(frozen=True)
class Potential:
    """One potential of the model: a node's unary, or a declared clique.

    ``offset:offset + size`` is its log-table inside the flat vector of all tables
    (C order over ``scope``).
    """

    scope: tuple[str, ...]
    cards: tuple[int, ...]
    family: str
    key: str
    clique: int | None
    offset: int

    @property
    def size(self) -> int:
        """Entries of the potential's table."""
        return math.prod(self.cards)


@dataclass(frozen=True)
class Block:
    """The parameters of one key (a node, a clique, or a tie group).

    ``theta[start:stop]`` reshaped to ``shape``: ``(k - 1,)`` for a unary,
    ``cards`` for a table, ``(dim,)`` otherwise (``()`` when dim is 1).
    """

    key: str
    family: str
    cards: tuple[int, ...]
    shape: tuple[int, ...]
    start: int
    stop: int
    potentials: tuple[int, ...]


@dataclass(frozen=True)
class _Group:
    family: str
    cards: tuple[int, ...]
    start: int                    # first entry in the flat tables
    matrix: np.ndarray | None     # F, or None for the identity (table)
    params: np.ndarray            # (n_potentials, dim) indices into theta


@dataclass(frozen=True)
class Layout:
    """The compiled log-linear parameterisation of an undirected ground graph.

    Attributes
    ----------
    variables : tuple of str, in graph order.
    cards : tuple of int, states of each variable.
    potentials : tuple of Potential (unaries in variable order, then cliques in file order).
    blocks : dict of parameter key -> Block, in theta order.
    n_params : length of theta.
    n_flat : length of the flat vector of all log-tables.
    """

    variables: tuple[str, ...]
    cards: tuple[int, ...]
    potentials: tuple[Potential, ...]
    blocks: dict[str, Block]
    n_params: int
    n_flat: int
    groups: tuple[_Group, ...] = field(repr=False)
    scope_index: np.ndarray = field(repr=False)    # (n_potentials, width) variable indices, 0-padded
    scope_strides: np.ndarray = field(repr=False)  # (n_potentials, width) C-order strides, 0-padded
    offsets: np.ndarray = field(repr=False)        # (n_potentials,)

    @property
    def card_map(self) -> dict[str, int]:
        """``{variable: number of states}``, in layout order."""
        return dict(zip(self.variables, self.cards))

    def log_tables(self, theta: np.ndarray) -> np.ndarray:
        """All log-potential tables, ``theta . f(x_c)`` for every clique and joint state.

        Parameters
        ----------
        theta : float array of shape (n_params,)

        Returns
        -------
        float array of shape (n_flat,); potential ``p`` is ``[p.offset:p.offset + p.size]``.
        """
        flat = np.empty(self.n_flat)
        for g in self.groups:
            vals = theta[g.params]
            if g.matrix is not None:
                vals = vals @ g.matrix.T
            flat[g.start:g.start + vals.size] = vals.ravel()
        return flat

    def pullback(self, weights: np.ndarray) -> np.ndarray:
        """Map a weight per joint state of every potential to parameter space.

        ``grad[j] = sum over potentials and states of weights * d table / d theta_j``:
        with counts this gives sufficient statistics, with marginals model
        expectations, with ``d objective / d table`` the gradient.

        Parameters
        ----------
        weights : float array of shape (n_flat,)

        Returns
        -------
        float array of shape (n_params,)
        """
        out = np.zeros(self.n_params)
        for g in self.groups:
            n, size = g.params.shape[0], math.prod(g.cards)
            w = weights[g.start:g.start + n * size].reshape(n, size)
            if g.matrix is not None:
                w = w @ g.matrix
            out += np.bincount(g.params.ravel(), weights=w.ravel(), minlength=self.n_params)
        return out

    def table(self, flat: np.ndarray, i: int) -> np.ndarray:
        """Potential ``i``'s table (a view) out of a flat vector, shape ``cards`` (or (n, *cards) for 2-D input)."""
        p = self.potentials[i]
        return flat[..., p.offset:p.offset + p.size].reshape(flat.shape[:-1] + p.cards)

    def flat_index(self, codes: np.ndarray) -> np.ndarray:
        """Flat-table index of every potential's joint state in every row.

        Parameters
        ----------
        codes : int array of shape (n_rows, n_variables), columns in ``variables`` order.

        Returns
        -------
        int array of shape (n_rows, n_potentials)
        """
        return self.offsets[None, :] + np.einsum("rpw,pw->rp", codes[:, self.scope_index], self.scope_strides)

    def counts(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """(Weighted) counts of every potential's joint states, as a flat vector.

        ``codes`` : int array of shape (n_rows, n_variables) without missing codes.
        """
        out = np.zeros(self.n_flat)
        n_pot = len(self.potentials)
        step = max(1, 2**22 // max(n_pot * self.scope_index.shape[1], 1))
        for start in range(0, codes.shape[0], step):
            idx = self.flat_index(codes[start:start + step])
            w = None if weights is None else np.repeat(weights[start:start + step], n_pot)
            out += np.bincount(idx.ravel(), weights=w, minlength=self.n_flat)
        return out

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """``{key: parameter array}`` (copies), shaped as in :class:`Block`."""
        return {k: np.array(theta[b.start:b.stop]).reshape(b.shape) for k, b in self.blocks.items()}

    def pack(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`unpack`."""
        theta = np.zeros(self.n_params)
        for k, b in self.blocks.items():
            theta[b.start:b.stop] = np.asarray(params[k], dtype=float).ravel()
        return theta


def compile_layout(graph: Graph) -> Layout:
    """The log-linear parameterisation of an undirected ground graph.

    Raises
    ------
    pgm.ModelError
        when a node tie joins nodes of different state counts, or a tie name is
        used both by nodes and by cliques.
    """
    spec = graph.spec
    variables = tuple(graph.order)
    cards = tuple(graph[v].n_states for v in variables)
    card = dict(zip(variables, cards))
    raw: list[tuple[tuple[str, ...], str, str, int | None]] = []
    unary_keys: dict[str, str] = {}
    for v in variables:
        node = spec.nodes[graph[v].decl]
        if not getattr(node, "unary", True) or card[v] < 2:
            continue
        key = graph[v].param
        if key in unary_keys and card[unary_keys[key]] != card[v]:
            raise ModelError(f"nodes.{v}.tie: tie {key!r} joins nodes with {card[v]} and "
                             f"{card[unary_keys[key]]} states; tie only nodes with the same states")
        unary_keys.setdefault(key, v)
        raw.append(((v,), UNARY, key, None))
    for i, clique in enumerate(spec.cliques):
        key = clique.tie or f"clique{i}"
        if key in unary_keys:
            raise ModelError(f"cliques[{i}]: parameter name {key!r} is also the name of a node's unary "
                             "potential; rename the tie (or the node)")
        raw.append((tuple(clique.nodes), clique.features, key, i))

    # parameter blocks in order of first appearance
    blocks: dict[str, Block] = {}
    start = 0
    members: dict[str, list[int]] = {}
    for j, (scope, family, key, _) in enumerate(raw):
        members.setdefault(key, []).append(j)
        if key in blocks:
            continue
        cc = tuple(card[v] for v in scope)
        if family == UNARY:
            shape: tuple[int, ...] = (cc[0] - 1,)
        elif family == "table":
            shape = cc
        else:
            d = feature_dim(family, cc)
            shape = () if d == 1 else (d,)
        size = math.prod(shape)
        blocks[key] = Block(key, family, cc, shape, start, start + size, ())
        start += size
    blocks = {k: Block(b.key, b.family, b.cards, b.shape, b.start, b.stop, tuple(members[k]))
              for k, b in blocks.items()}

    # potentials grouped by (family, cards) so each group is one contiguous block of tables
    group_of: dict[tuple[str, tuple[int, ...]], list[int]] = {}
    for j, (scope, family, _, _) in enumerate(raw):
        group_of.setdefault((family, tuple(card[v] for v in scope)), []).append(j)
    offsets = [0] * len(raw)
    groups = []
    pos = 0
    for (family, cc), idxs in group_of.items():
        size = math.prod(cc)
        params = []
        for j in idxs:
            offsets[j] = pos + len(params) * size
            b = blocks[raw[j][2]]
            params.append(np.arange(b.start, b.stop))
        mat = None if family == "table" else feature_matrix(family, cc)
        groups.append(_Group(family, cc, pos, mat, np.array(params, dtype=np.int64).reshape(len(idxs), -1)))
        pos += size * len(idxs)
    potentials = tuple(Potential(scope, tuple(card[v] for v in scope), family, key, clique, offsets[j])
                       for j, (scope, family, key, clique) in enumerate(raw))
    index = {v: i for i, v in enumerate(variables)}
    width = max((len(p.scope) for p in potentials), default=1)
    scope_index = np.zeros((len(potentials), width), dtype=np.int64)
    scope_strides = np.zeros((len(potentials), width), dtype=np.int64)
    for j, p in enumerate(potentials):
        scope_index[j, :len(p.scope)] = [index[v] for v in p.scope]
        scope_strides[j, :len(p.scope)] = _strides(p.cards)
    return Layout(variables, cards, potentials, blocks, start, pos, tuple(groups), scope_index, scope_strides,
                  np.array(offsets, dtype=np.int64))


def _strides(cards: Sequence[int]) -> list[int]:
    """C-order strides of a table of shape ``cards``, in entries."""
    out = [1] * len(cards)
    for j in range(len(cards) - 2, -1, -1):
        out[j] = out[j + 1] * cards[j + 1]
    return out


@dataclass(frozen=True)
class LocalTerms:
    """Local conditionals ``log p(x_t | x_rest)`` of target variables sharing one state count.

    Every (potential, target) pair is a *term*: the potential's table read along the
    target's axis at the other variables' states.  The logits of a target are the sum
    of its terms, all gathered with one fancy index over rows and terms.
    """

    targets: np.ndarray      # (n_targets,) variable indices
    k: int                   # states of every target
    offset: np.ndarray       # (n_terms,) start of the term's potential in the flat tables
    stride: np.ndarray       # (n_terms,) stride of the target's axis
    others: np.ndarray       # (n_terms, width) variable indices of the other scope members
    other_strides: np.ndarray  # (n_terms, width), 0 for padding
    slot: np.ndarray         # (n_terms,) position of the term's target in ``targets``, sorted
    starts: np.ndarray       # first term of each target that has terms
    has_terms: np.ndarray    # (n_targets,) bool

    def index(self, codes: np.ndarray) -> np.ndarray:
        """Flat-table index of every term and target state, shape (n_rows, n_terms, k).

        ``codes`` : int array of shape (n_rows, n_variables), columns in layout order.
        """
        base = np.broadcast_to(self.offset, (codes.shape[0], len(self.offset))).copy()
        for col in range(self.others.shape[1]):  # one gather per scope position: cheaper than a 3-D gather
            if self.other_strides[:, col].any():
                base += codes[:, self.others[:, col]] * self.other_strides[:, col]
        if self.k == 2:
            return np.stack([base, base + self.stride], axis=2)
        return base[:, :, None] + self.stride[None, :, None] * np.arange(self.k)[None, None, :]

    def logits(self, codes: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised ``log p(x_t = s | rest)``, shape (n_rows, n_targets, k), and the index used."""
        idx = self.index(codes)
        out = np.zeros((codes.shape[0], len(self.targets), self.k))
        if idx.shape[1]:
            out[:, self.has_terms] = np.add.reduceat(flat[idx], self.starts, axis=1)
        return out, idx


def local_terms(layout: Layout, targets: Sequence[int]) -> list[LocalTerms]:
    """:class:`LocalTerms` for ``targets`` (variable indices), one per state count."""
    var_index = {v: i for i, v in enumerate(layout.variables)}
    by_k: dict[int, list[int]] = {}
    for t in targets:
        by_k.setdefault(layout.cards[t], []).append(t)
    out = []
    width = max((len(p.scope) - 1 for p in layout.potentials), default=0)
    width = max(width, 1)
    for k, ts in by_k.items():
        slot_of = {t: s for s, t in enumerate(ts)}
        rows = []
        for p in layout.potentials:
            strides = _strides(p.cards)
            scope = [var_index[v] for v in p.scope]
            for j, v in enumerate(scope):
                if v not in slot_of:
                    continue
                others = [u for u in range(len(scope)) if u != j]
                ov = [scope[u] for u in others] + [0] * (width - len(others))
                os_ = [int(strides[u]) for u in others] + [0] * (width - len(others))
                rows.append((slot_of[v], p.offset, int(strides[j]), ov, os_))
        rows.sort(key=lambda r: r[0])
        slot = np.array([r[0] for r in rows], dtype=np.int64)
        has = np.zeros(len(ts), dtype=bool)
        has[slot] = True
        starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]]) if len(rows) else np.zeros(0, np.int64)
        out.append(LocalTerms(
            np.array(ts, dtype=np.int64), k,
            np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64),
            np.array([r[3] for r in rows], dtype=np.int64).reshape(len(rows), width),
            np.array([r[4] for r in rows], dtype=np.int64).reshape(len(rows), width),
            slot, starts, has))
    return out


def _chunk(n_terms: int, k: int) -> int:
    """Rows per chunk so a (rows, terms, k) gather stays near 2**21 entries."""
    return max(1, 2**21 // max(n_terms * k, 1))


def pseudo_log_likelihood(terms: Sequence[LocalTerms], codes: np.ndarray, weights: np.ndarray,
                          flat: np.ndarray, *, grad: bool = False) -> tuple[float, np.ndarray | None]:
    """Weighted pseudo-log-likelihood ``sum_r w_r sum_i log p(x_ri | x_r,-i)`` and its gradient.

    Parameters
    ----------
    terms : local terms covering every variable (from :func:`local_terms`).
    codes : int array of shape (n_rows, n_variables), fully observed.
    weights : float array of shape (n_rows,).
    flat : log-tables, shape (n_flat,).
    grad : also return ``d PLL / d flat`` (shape (n_flat,); map to theta with ``Layout.pullback``).
    """
    total = 0.0
    dflat = np.zeros(flat.shape[0]) if grad else None
    for t in terms:
        step = _chunk(len(t.offset), t.k)
        for start in range(0, codes.shape[0], step):
            x = codes[start:start + step]
            w = weights[start:start + step]
            logits, idx = t.logits(x, flat)
            top = logits.max(axis=2, keepdims=True)
            lse = top + np.log(np.exp(logits - top).sum(axis=2, keepdims=True))
            own = x[:, t.targets][:, :, None]
            total += float(w @ (np.take_along_axis(logits, own, 2) - lse)[:, :, 0].sum(axis=1))
            if grad and idx.shape[1]:
                g = -np.exp(logits - lse)
                np.put_along_axis(g, own, np.take_along_axis(g, own, 2) + 1.0, 2)
                g *= w[:, None, None]
                # np.take keeps (rows, terms, k) C-contiguous, so ravel does not copy again
                dflat += np.bincount(idx.ravel(), weights=np.take(g, t.slot, axis=1).ravel(), minlength=flat.shape[0])
    return total, dflat


def colour_classes(layout: Layout) -> list[list[int]]:
    """Groups of variables with no potential in common (a greedy colouring).

    Variables of one class are independent given all the others, so a Gibbs sampler
    may redraw a whole class at once (a checkerboard on a grid).
    """
    g = nx.Graph()
    g.add_nodes_from(range(len(layout.variables)))
    for row, p in zip(layout.scope_index, layout.potentials):
        members = row[:len(p.scope)]
        g.add_edges_from((int(a), int(b)) for i, a in enumerate(members) for b in members[i + 1:])
    # smallest-last is near DSATUR's quality (two colours on grids and other bipartite
    # lattices) at a tiny fraction of its cost on thousands of variables
    colour = nx.greedy_color(g, strategy="smallest_last")
    classes: dict[int, list[int]] = {}
    for v in sorted(colour):
        classes.setdefault(colour[v], []).append(v)
    return [classes[c] for c in sorted(classes)]


def gibbs_terms(layout: Layout, variables: Sequence[int] | None = None) -> list[list[LocalTerms]]:
    """Local terms per colour class, for :func:`gibbs_sweep` (all variables by default)."""
    wanted = set(range(len(layout.variables)) if variables is None else variables)
    return [local_terms(layout, [v for v in cls if v in wanted]) for cls in colour_classes(layout)
            if any(v in wanted for v in cls)]


def gibbs_sweep(classes: Sequence[Sequence[LocalTerms]], codes: np.ndarray, flat: np.ndarray,
                rng: np.random.Generator) -> None:
    """One systematic-scan Gibbs sweep over every chain, a colour class at a time.

    ``codes`` (int array of shape (n_chains, n_variables)) is updated in place: the
    chains are the sampler's state.  Each class is redrawn at once by the Gumbel-max
    trick on its exact local conditionals.
    """
    for cls in classes:
        for t in cls:
            logits, _ = t.logits(codes, flat)
            codes[:, t.targets] = np.argmax(logits + rng.gumbel(size=logits.shape), axis=2)
