"""The ground graph: a declaration with inner plates expanded into copies.

A node ``x`` in a plate of size 3 becomes the variables ``x[0], x[1], x[2]``,
which share one parameter set (their ``param`` key), exactly as tied nodes do.
A parent inside the same plate maps copy ``i`` to copy ``i``; a parent outside
the plate is shared by every copy.  Learners work on this graph only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import networkx as nx

from pgm.schema import DiscreteNode, GaussianNode, ModelSpec


#: What a variable's values are: codes of finitely many states, or real vectors.  A new
#: kind (counts, say) is a new value here, so every ``discrete``/``gaussian`` test says which it means.
VariableKind = Literal["discrete", "gaussian"]


@dataclass(frozen=True)
class Variable:
    """One ground variable (a node, or one plate copy of a node)."""

    name: str
    decl: str
    kind: VariableKind
    parents: tuple[str, ...]
    param: str                    # key of the (possibly shared) parameter set
    latent: bool
    columns: tuple[str, ...]      # data columns (one, or dim for a gaussian)
    n_states: int = 0             # discrete only
    labels: tuple[str, ...] = ()  # discrete only
    dim: int = 0                  # gaussian only
    cpd: str = "table"            # the CPD kind (the schema's `cpd:`; "linear" for a gaussian)
    copy: int | None = None

    @property
    def discrete(self) -> bool:
        """Finitely many states, held as integer codes."""
        return self.kind == "discrete"

    @property
    def gaussian(self) -> bool:
        """Real-valued, ``dim`` columns."""
        return self.kind == "gaussian"


@dataclass(frozen=True)
class Family:
    """A variable with its parents: the unit every CPD is fitted and evaluated on."""

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
        """The ``cpd:`` value of the variable: the key of its kind in the registry."""
        return self.var.cpd

    @property
    def n_configs(self) -> int:
        return math.prod(self.cards)

    @property
    def members(self) -> tuple[str, ...]:
        return (self.var.name,) + self.var.parents


@dataclass(frozen=True)
class Graph:
    """A frozen ground graph of a declaration, in topological order."""

    spec: ModelSpec
    variables: dict[str, Variable]
    order: tuple[str, ...]
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)  # param key -> variables

    @property
    def directed(self) -> bool:
        return self.spec.directed

    def __getitem__(self, name: str) -> Variable:
        return self.variables[name]

    @property
    def sequence(self) -> bool:
        """A sequence model: the graph holds two slices (see :func:`build`)."""
        return self.spec.sequence is not None

    def is_standard(self, name: str) -> bool:
        """The CPD of variable ``name`` is fixed at N(0, I) (see ``ModelSpec.is_standard``; a sequence
        model's ``v@prev`` variables carry the first-step CPDs)."""
        return self.spec.is_standard(self[name].decl, first=name.endswith(PREV))

    @property
    def slice(self) -> tuple[str, ...]:
        """The variables of one step (a sequence model's later-step slice; every variable otherwise)."""
        return tuple(n for n in self.order if not n.endswith(PREV))

    def shown(self, child: str, parent: str) -> str:
        """How a parent of ``child`` is named to a reader: itself, or in a sequence model's two
        slices the node (a first-step family's parents) or ``h[t-1]`` (a previous-step parent)."""
        if not parent.endswith(PREV):
            return parent
        base = parent[:-len(PREV)]
        return base if child.endswith(PREV) else f"{base}[t-1]"

    def shown_columns(self, child: str, parent: str) -> tuple[str, ...]:
        """The data columns of a gaussian parent as a reader sees them (``y[t-1]`` for a previous step)."""
        cols = self.variables[parent].columns
        if parent.endswith(PREV) and not child.endswith(PREV):
            return tuple(f"{c}[t-1]" for c in cols)
        return cols

    @cached_property
    def families(self) -> dict[str, Family]:
        """Every variable's family, in topological order (computed once per graph)."""
        out = {}
        for name in self.order:
            var = self.variables[name]
            disc = tuple(p for p in var.parents if self.variables[p].discrete)
            cont = tuple(p for p in var.parents if self.variables[p].gaussian)
            out[name] = Family(var, disc, tuple(self.variables[p].n_states for p in disc), cont,
                               sum(self.variables[p].dim for p in cont))
        return out

    @cached_property
    def options(self) -> dict[str, dict[str, Any]]:
        """Each parameter set's fit options as declared on its node (read once): ``prior`` (a mapping
        or None) and ``penalty`` for a discrete node, ``covariance`` for a gaussian one."""
        out: dict[str, dict[str, Any]] = {}
        for key, members in self.params.items():
            decl = self.spec.nodes[self.variables[members[0]].decl]
            declared: dict[str, Any] = {}
            if isinstance(decl, DiscreteNode):
                declared["prior"] = decl.prior.model_dump(exclude_none=True) if decl.prior else None
                declared["penalty"] = decl.penalty
            if isinstance(decl, GaussianNode):
                declared["covariance"] = decl.covariance
            out[key] = declared
        return out

    @property
    def latent(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.variables[n].latent)

    def children(self, name: str) -> list[str]:
        return [n for n in self.order if name in self.variables[n].parents]

    def to_networkx(self) -> nx.DiGraph | nx.Graph:
        g = nx.DiGraph() if self.directed else nx.Graph()
        for n in self.order:
            g.add_node(n)
        if self.directed:
            for n in self.order:
                g.add_edges_from((p, n) for p in self.variables[n].parents)
        else:
            for clique in self.spec.cliques:
                for copy_edges in _clique_edges(clique.nodes):
                    g.add_edge(*copy_edges)
        return nx.freeze(g)

    def moral_graph(self) -> nx.Graph:
        """Undirected graph linking each variable to its parents and co-parents."""
        if not self.directed:
            return self.to_networkx()
        g = nx.Graph()
        g.add_nodes_from(self.order)
        for n in self.order:
            family = (n,) + self.variables[n].parents
            for i, a in enumerate(family):
                for b in family[i + 1:]:
                    g.add_edge(a, b)
        return g

    def hidden_components(self, hidden: set[str] | frozenset[str]) -> list[list[str]]:
        """Groups of hidden variables that are independent given the observed ones.

        Two hidden variables are dependent given the rest when they are connected in
        the moral graph through hidden variables only, so the groups are the connected
        components of the moral graph restricted to ``hidden`` (each in topological order).
        """
        sub = self.moral_graph().subgraph(hidden)
        rank = {n: i for i, n in enumerate(self.order)}
        comps = [sorted(c, key=rank.__getitem__) for c in nx.connected_components(sub)]
        return sorted(comps, key=lambda c: rank[c[0]])


def _clique_edges(nodes: list[str]):
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            yield a, b


#: Suffix of a sequence model's previous-step (and first-step) variables: ``h@prev``.
PREV = "@prev"
#: Suffix of the parameter key of a ``prev:`` node's first-step CPD: ``h@first``.
FIRST = "@first"


def prev_name(name: str) -> str:
    """The previous-step copy of a slice variable: ``h`` -> ``h@prev``."""
    return name + PREV


def slice_name(name: str) -> str:
    """The slice variable a name stands for: ``h@prev`` -> ``h`` (other names unchanged)."""
    return name[:-len(PREV)] if name.endswith(PREV) else name


def _build_sequence(spec: ModelSpec) -> Graph:
    """A sequence model as two slices: ``v@prev`` (a step, with the first-step CPDs) and ``v``
    (the next step, whose ``prev:`` parents are the ``@prev`` variables).

    The parameter key of a slice variable is its node (or tie); a ``prev:`` node's first-step CPD
    has its own key ``v@first``, and a node without ``prev:`` shares one CPD across both slices."""
    variables: dict[str, Variable] = {}
    params: dict[str, list[str]] = {}
    order: list[str] = []
    topo = spec.topological_order()
    for slice_ in ("first", "later"):
        for name in topo:
            node = spec.nodes[name]
            key = node.tie or name
            if slice_ == "first":
                ground, parents = prev_name(name), tuple(prev_name(p) for p in node.parents)
                if node.prev:
                    key += FIRST
            else:
                ground, parents = name, tuple(node.parents) + tuple(prev_name(p) for p in node.prev)
            if isinstance(node, DiscreteNode):
                var = Variable(ground, name, "discrete", parents, key, node.latent, (name,),
                               n_states=node.n_states, labels=tuple(node.labels), cpd=node.cpd)
            else:
                assert isinstance(node, GaussianNode)
                cols = spec.columns(name)
                var = Variable(ground, name, "gaussian", parents, key, node.latent, tuple(cols),
                               dim=node.dim, cpd="linear")
            variables[ground] = var
            order.append(ground)
            params.setdefault(key, []).append(ground)
    return Graph(spec, variables, tuple(order), {k: tuple(v) for k, v in params.items()})


def build(spec: ModelSpec) -> Graph:
    """Expand plates and ties of a validated declaration into a ground :class:`Graph`.

    A sequence model becomes its two-slice template (see :func:`_build_sequence`)."""
    if spec.sequence is not None:
        return _build_sequence(spec)
    variables: dict[str, Variable] = {}
    order: list[str] = []
    params: dict[str, list[str]] = {}
    for name in spec.topological_order():
        node = spec.nodes[name]
        size = spec.plate_size(name)
        key = node.tie or name
        copies = [None] if size is None else list(range(size))
        for c in copies:
            ground = name if c is None else f"{name}[{c}]"
            parents = tuple(
                p if spec.nodes[p].plate is None or c is None else f"{p}[{c}]" for p in node.parents
            )
            if isinstance(node, DiscreteNode):
                var = Variable(ground, name, "discrete", parents, key, node.latent, (ground,),
                               n_states=node.n_states, labels=tuple(node.labels), cpd=node.cpd, copy=c)
            else:
                assert isinstance(node, GaussianNode)
                if node.dim == 1:
                    cols: tuple[str, ...] = (ground,)
                elif node.columns is not None:
                    cols = tuple(node.columns) if c is None else tuple(f"{ground}.{x}" for x in node.columns)
                else:
                    cols = tuple(f"{ground}[{k}]" for k in range(node.dim))
                var = Variable(ground, name, "gaussian", parents, key, node.latent, cols,
                               dim=node.dim, cpd="linear", copy=c)
            variables[ground] = var
            order.append(ground)
            params.setdefault(key, []).append(ground)
    return Graph(spec, variables, tuple(order), {k: tuple(v) for k, v in params.items()})
