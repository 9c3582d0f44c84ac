"""ModelSpec: the whole declaration, and the structural checks that span fields.

The checks return *every* problem with its field path, so a file with three
mistakes reports three errors at once.
"""

from __future__ import annotations

import difflib
import math
from functools import cached_property
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from pgm.schema.nodes import Clique, DiscreteNode, GaussianNode, Node, Plate, Sequence

#: Feature families a clique may name.  ``pgm.learn.loglinear.register_feature``
#: adds custom ones from Python; a graph file never runs code.
FEATURE_NAMES: set[str] = {"table", "ising", "agreement"}

#: The largest table (CPD or clique potential) a file may declare, in entries.
MAX_TABLE = 50_000_000

#: The most data columns a file may declare (plate copies times gaussian dims, summed).
MAX_COLUMNS = 1_000_000

Path = tuple[Any, ...]


class ModelSpec(BaseModel):
    """A validated graph file.  ``params`` is present on a fitted model."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    kind: Literal["directed", "undirected"] = Field("directed", alias="graph")
    description: str | None = None
    sequence: Sequence | None = None
    nodes: dict[str, Node] = Field(min_length=1)
    cliques: list[Clique] = []
    plates: dict[str, Plate] = {}
    params: dict[str, Any] | None = None

    # ------------------------------------------------------------------ questions
    @property
    def directed(self) -> bool:
        return self.kind == "directed"

    @cached_property
    def graph(self) -> Any:
        """The declared graph as networkx: a ``DiGraph`` (directed) or ``Graph`` (undirected).

        Node attributes carry the declaration (``type``, ``latent``, ``plate``, ``n_states``);
        an undirected graph has an edge between every two nodes that share a clique.
        """
        g = nx.DiGraph(name=self.name) if self.directed else nx.Graph(name=self.name)
        for name, node in self.nodes.items():
            g.add_node(name, type=node.type, latent=node.latent, plate=node.plate,
                       n_states=getattr(node, "n_states", None), dim=getattr(node, "dim", None))
        if self.directed:
            for name, node in self.nodes.items():
                g.add_edges_from((p, name) for p in node.parents)
        else:
            for i, clique in enumerate(self.cliques):
                for a_i, a in enumerate(clique.nodes):
                    for b in clique.nodes[a_i + 1:]:
                        g.add_edge(a, b, features=clique.features, clique=i)
        return nx.freeze(g)

    def parents(self, name: str) -> list[str]:
        return list(self.nodes[name].parents)

    def topological_order(self) -> list[str]:
        """Nodes with every parent before its children (declaration order breaks ties)."""
        order: list[str] = []
        done: set[str] = set()
        indeg = {n: len(v.parents) for n, v in self.nodes.items()}
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for n, v in self.nodes.items():
            for p in v.parents:
                children[p].append(n)
        ready = [n for n in self.nodes if indeg[n] == 0]
        while ready:
            n = ready.pop(0)
            order.append(n)
            done.add(n)
            for c in children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        return order

    def latent_nodes(self) -> list[str]:
        return [n for n, v in self.nodes.items() if v.latent]

    def is_standard(self, name: str, first: bool = False) -> bool:
        """A latent gaussian fixed at N(0, I) and never fitted: ``standard: true``, or by default a
        latent gaussian without gaussian parents (the factor-analysis / PPCA convention).

        In a sequence model ``standard`` concerns a ``prev:`` node's first-step CPD (``first``): its
        later-step CPD (the transition) is always fitted."""
        node = self.nodes[name]
        if not isinstance(node, GaussianNode) or not node.latent:
            return False
        if node.prev and not first:
            return False
        if node.standard is not None:
            return node.standard
        return not any(isinstance(self.nodes[p], GaussianNode) for p in node.parents if p in self.nodes)

    def plate_size(self, name: str) -> int | None:
        plate = self.nodes[name].plate
        return None if plate is None else self.plates[plate].size

    def copies(self, name: str) -> list[str]:
        """Names of the ground copies of ``name``: itself, or ``name[0]..name[size-1]``."""
        size = self.plate_size(name)
        return [name] if size is None else [f"{name}[{i}]" for i in range(size)]

    def columns(self, name: str) -> list[str]:
        """Data columns of a node (all plate copies, all gaussian components)."""
        node = self.nodes[name]
        out: list[str] = []
        for copy in self.copies(name):
            if isinstance(node, GaussianNode) and node.dim > 1:
                if node.columns is not None and copy == name:
                    out.extend(node.columns)
                elif node.columns is not None:
                    out.extend(f"{copy}.{c}" for c in node.columns)
                else:
                    out.extend(f"{copy}[{k}]" for k in range(node.dim))
            else:
                out.append(copy)
        return out

    def n_params(self) -> int:
        """Number of free parameters (tie groups and plate copies counted once; a standard latent
        gaussian of dimension k takes k(k-1)/2 off its children's loadings: its free rotation)."""
        seen: set[str] = set()
        total = 0
        if self.directed:
            for name, node in self.nodes.items():
                key = node.tie or name
                if key in seen:
                    continue
                seen.add(key)
                if not self.is_standard(name):  # fixed at N(0, I): nothing to fit
                    total += _node_params(self, node)
                if node.prev and not self.is_standard(name, first=True):  # the first step's own CPD
                    total += _node_params(self, node, first=True)
                if self.is_standard(name) or (node.prev and self.is_standard(name, first=True)):
                    # N(0, I) is unchanged by a rotation z' = U z (U orthogonal), which the children's
                    # loadings absorb (W U^T): k(k-1)/2 of their parameters are not free (factor
                    # analysis: d k + d - k(k-1)/2, as scikit-learn and the textbooks count)
                    total -= node.dim * (node.dim - 1) // 2
        else:
            for name, node in self.nodes.items():
                if isinstance(node, DiscreteNode) and node.unary:
                    total += node.n_states - 1
            for i, clique in enumerate(self.cliques):
                key = clique.tie or f"#{i}"
                if key in seen:
                    continue
                seen.add(key)
                if clique.features == "table":
                    total += math.prod(_card(self, n) for n in clique.nodes)
                else:
                    total += 1
        return total


def _card(spec: ModelSpec, name: str) -> int:
    node = spec.nodes[name]
    return node.n_states if isinstance(node, DiscreteNode) else 1


def _node_params(spec: ModelSpec, node: Node, first: bool = False) -> int:
    """Free parameters of a node's CPD: the later-step one (parents and ``prev``), or with
    ``first`` the first-step one (parents only)."""
    parents = list(node.parents) + ([] if first else list(node.prev))
    disc = [p for p in parents if isinstance(spec.nodes[p], DiscreteNode)]
    cont = [p for p in parents if isinstance(spec.nodes[p], GaussianNode)]
    n_configs = math.prod(spec.nodes[p].n_states for p in disc)
    if isinstance(node, DiscreteNode):
        k = node.n_states
        if node.cpd == "table":
            return (k - 1) * n_configs
        if node.cpd == "noisy-or":  # a leak and one probability per parent
            return 1 + len(parents)
        n_feat = 1 + sum(spec.nodes[p].n_states - 1 for p in disc) + sum(spec.nodes[p].dim for p in cont)
        return (max(k, 2) - 1) * n_feat
    d = node.dim
    n_reg = 1 + sum(spec.nodes[p].dim for p in cont)
    cov = {"full": d * (d + 1) // 2, "diag": d, "spherical": 1, "tied": 0}[node.covariance]
    total = n_configs * (d * n_reg + cov)
    if node.covariance == "tied":
        total += d * (d + 1) // 2
    return total


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A directed cycle ``[a, b, ..., a]`` following ``edges`` (node -> successors), or None.

    Iterative depth-first search, so deep graphs do not hit the recursion limit.

    >>> find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]})
    ['a', 'b', 'c', 'a']
    """
    colour = dict.fromkeys(edges, 0)
    for root in edges:
        if colour[root]:
            continue
        stack = [(root, iter(edges[root]))]
        path = [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt) == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(edges[nxt])))
                path.append(nxt)
    return None


def _find_cycle(spec: ModelSpec) -> list[str] | None:
    """A directed cycle of the declaration in parent -> child order."""
    children: dict[str, list[str]] = {n: [] for n in spec.nodes}
    for n, v in spec.nodes.items():
        for p in v.parents:
            if p in children and p != n:
                children[p].append(n)
    return find_cycle(children)


def _shape(spec: ModelSpec, node: Node) -> tuple:
    """What must agree for two nodes to share one parameter set."""
    par = tuple(
        ("d", spec.nodes[p].n_states) if isinstance(spec.nodes[p], DiscreteNode) else ("g", spec.nodes[p].dim)
        for p in list(node.parents) + list(node.prev)
    ) + (("prev", len(node.prev)),) * bool(node.prev)
    if isinstance(node, DiscreteNode):
        return ("discrete", node.cpd, node.n_states, par)
    return ("gaussian", node.dim, node.covariance, par)


def _describe_shape(shape: tuple) -> str:
    if shape[0] == "discrete":
        pars = ", ".join(f"{k}" if t == "d" else f"gaussian[{k}]" for t, k in shape[3])
        return f"{shape[1]} CPD over {shape[2]} states given ({pars})"
    pars = ", ".join(f"{k}" if t == "d" else f"gaussian[{k}]" for t, k in shape[3])
    return f"gaussian dim {shape[1]}, {shape[2]} covariance, given ({pars})"


def _prior_shape_problem(spec: ModelSpec, name: str, node: DiscreteNode) -> tuple[Path, str] | None:
    """Whether a per-state or table ``dirichlet:`` prior has the node's shape: ``(sub-path, message)``."""
    k = node.n_states
    value = node.prior.dirichlet if node.prior else None
    parents = [p for p in node.parents if isinstance(spec.nodes[p], DiscreteNode)]
    cards = [spec.nodes[p].n_states for p in parents]
    n_configs = math.prod(cards)
    shown = node.labels[:6] + (["..."] if k > 6 else [])
    states = f"{name!r} has {k} state{'s' if k > 1 else ''} [{', '.join(shown)}]"
    configs = (f"{n_configs} parent configuration{'s' if n_configs > 1 else ''} "
               f"({' x '.join(f'{p}: {c}' for p, c in zip(parents, cards))}, first parent slowest as in the "
               "fitted `table:`)" if parents else "1 parent configuration (no parents)")
    forms = (f"give one pseudo-count per state ([a_1, ..., a_{k}]), or a table of {n_configs} "
             f"row{'s' if n_configs > 1 else ''} (one per parent configuration) of {k} each "
             "(see docs/format.md#per-state-priors)")
    if not isinstance(value, list):
        return None
    if node.prev and isinstance(value[0], list):
        return (), (f"{name!r} has `prev:`, so two CPDs (first step and later steps) with different parent "
                    "configurations; a table of pseudo-counts per configuration is not available for it yet: give "
                    "one pseudo-count per state or one number")
    if not isinstance(value[0], list):
        if len(value) != k:
            return (), f"{len(value)} pseudo-count{'s' if len(value) > 1 else ''} given, but {states}; {forms}"
        return None
    if len(value) != n_configs:
        return (), (f"the pseudo-count table has {len(value)} row{'s' if len(value) > 1 else ''}, but {name!r} has "
                    f"{configs}; {forms}")
    for i, row in enumerate(value):
        if len(row) != k:
            return (i,), f"row {i} has {len(row)} pseudo-counts, but {states}; {forms}"
    return None


def _noisy_or_problems(spec: ModelSpec, name: str, node: DiscreteNode) -> list[tuple[Path, str]]:
    """A noisy-or node and each of its parents must be binary and discrete (first state = off)."""
    out: list[tuple[Path, str]] = []
    if node.states is not None and node.n_states != 2:
        out.append((("nodes", name, "states"), f"a noisy-or node has 2 states (off first, then on); {name!r} has "
                    f"{node.n_states}: list two states, e.g. [off, on], or use `cpd: table`"))
    for where, i, parent in [("parents", i, p) for i, p in enumerate(node.parents)] + \
            [("prev", i, p) for i, p in enumerate(node.prev)]:
        pnode = spec.nodes.get(parent)
        if isinstance(pnode, GaussianNode):
            out.append((("nodes", name, where, i), f"a noisy-or node takes binary discrete parents; {parent!r} "
                        "is gaussian: make it discrete with 2 states, or use `cpd: logistic` on this node"))
        elif isinstance(pnode, DiscreteNode) and pnode.states is not None and pnode.n_states != 2:
            out.append((("nodes", name, where, i), f"a noisy-or node takes binary parents (first state = off); "
                        f"{parent!r} has {pnode.n_states} states: give it 2, or use `cpd: table` on this node"))
    return out


def _option_problems(spec: ModelSpec, name: str, node: DiscreteNode) -> list[tuple[Path, str]]:
    """A node's ``prior`` and ``penalty`` must be ones its kind uses (they used to be ignored silently):
    a Dirichlet prior smooths a probability table (``table``, ``noisy-or``), a penalty regularises
    logistic weights, and an undirected model takes neither per node."""
    out: list[tuple[Path, str]] = []
    base = ("nodes", name)
    has_penalty = node.penalty != 0  # 0 (the default, also what a dumped spec holds) changes nothing
    if not spec.directed:
        if node.prior is not None:
            out.append((base + ("prior",), "an undirected (log-linear) model has potentials, not probability "
                        "tables: a Dirichlet `prior` does not apply; regularise the fit with "
                        "`pgm.fit(..., penalty=λ)` and remove `prior`"))
        if has_penalty:
            out.append((base + ("penalty",), "an undirected (log-linear) model takes one fit-wide L2 penalty, "
                        "not one per node: remove `penalty` and pass `pgm.fit(..., penalty=λ)`"))
        return out
    if node.cpd == "logistic" and node.prior is not None:
        out.append((base + ("prior",), f"a Dirichlet `prior` smooths a probability table (`cpd: table` or "
                    f"`cpd: noisy-or`); {name!r} has `cpd: logistic`, whose weights are regularised by "
                    "`penalty: λ` (an L2 penalty): remove `prior` and set `penalty` instead "
                    "(see docs/format.md#penalty)"))
    if node.cpd != "logistic" and has_penalty:
        out.append((base + ("penalty",), f"`penalty` is the L2 penalty on the weights of a logistic CPD; "
                    f"{name!r} has `cpd: {node.cpd}`, smoothed by a Dirichlet `prior:` instead "
                    "(e.g. prior: {dirichlet: 1}): remove `penalty` (see docs/format.md#priors)"))
    return out


def _show_prior(prior: Any) -> str:
    if prior is None:
        return "no prior"
    shown = ", ".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in prior.model_dump(exclude_none=True).items())
    return "{" + shown + "}"


def _tie_option_problems(spec: ModelSpec) -> list[tuple[Path, str]]:
    """Tied nodes share one CPD, fitted with one prior and one penalty: members that declare different
    ones are refused (the first member's used to win silently)."""
    out: list[tuple[Path, str]] = []
    groups: dict[str, list[str]] = {}
    for name, node in spec.nodes.items():
        if node.tie and isinstance(node, DiscreteNode):
            groups.setdefault(node.tie, []).append(name)
    for tie, members in groups.items():
        first = spec.nodes[members[0]]
        for name in members[1:]:
            node = spec.nodes[name]
            for field_, a, b, show in (("prior", first.prior, node.prior, _show_prior),
                                       ("penalty", first.penalty, node.penalty, lambda v: f"{v:g}")):
                if a != b:
                    out.append((("nodes", name, field_), f"tie {tie!r} shares one CPD between {members[0]!r} and "
                                f"{name!r}, so they must declare the same {field_}; {members[0]!r} has {show(a)}, "
                                f"{name!r} has {show(b)}: give every node of the tie the same `{field_}` "
                                "(see docs/format.md#ties)"))
    return out


def check_structure(spec: ModelSpec) -> list[tuple[Path, str]]:
    """Every cross-field problem of a declaration, as ``(field path, message)`` pairs."""
    problems: list[tuple[Path, str]] = []
    names = list(spec.nodes)
    add = lambda path, msg: problems.append((tuple(path), msg))  # noqa: E731

    for name, node in spec.nodes.items():
        base = ("nodes", name)
        if isinstance(node, DiscreteNode) and node.states is None:
            if node.latent:
                add(base + ("latent",), "a latent node needs a state count; add `states: K` (e.g. states: 3)")
            else:
                add(base, "a discrete node needs `states`: a list of labels ([yes, no]) or a count (3)")
        if isinstance(node, GaussianNode) and node.standard:
            if not node.latent:
                add(base + ("standard",), "`standard: true` fixes a latent gaussian at N(0, I); this node is "
                    "observed: remove `standard` or add `latent: true`")
            elif any(p in spec.nodes and isinstance(spec.nodes[p], GaussianNode) for p in node.parents):
                add(base + ("standard",), "`standard: true` fixes the node at N(0, I), which leaves no place "
                    "for its gaussian parents; remove `standard` (or the gaussian parents)")
        if isinstance(node, DiscreteNode):
            hidden = [p for p in tuple(node.parents) + tuple(node.prev) if p in spec.nodes
                      and isinstance(spec.nodes[p], GaussianNode) and spec.nodes[p].latent]
            if hidden:
                add(base + ("parents",), f"the discrete node {name!r} has the latent gaussian parent "
                    f"{hidden[0]!r}: a discrete node with a hidden continuous parent has no exact inference "
                    "(the posterior is no longer a finite mixture of gaussians); make the parent observed, "
                    "or the node gaussian (see docs/format.md#latent-gaussian-nodes)")
        if isinstance(node, DiscreteNode):
            problems.extend(_option_problems(spec, name, node))
        if node.plate is not None and node.plate not in spec.plates:
            hint = _suggest(node.plate, list(spec.plates))
            where = f"declared plates: {sorted(spec.plates)}" if spec.plates else "declare it under top-level `plates:`"
            add(base + ("plate",), f"unknown plate {node.plate!r}{hint} ({where})")
        if node.plate is not None and not spec.directed:
            add(base + ("plate",), "plates are supported in directed graphs only; remove `plate`")
        if not spec.directed:
            if node.parents:
                add(base + ("parents",), "an undirected graph has no parents; declare the edge as a clique "
                    "under `cliques:` or set `graph: directed`")
            if isinstance(node, GaussianNode):
                add(base + ("type",), "undirected models hold discrete nodes only; use `states:`")
            continue
        seen: set[str] = set()
        for i, parent in enumerate(node.parents):
            path = base + ("parents", i)
            if parent == name:
                add(path, f"node {name!r} lists itself as a parent; remove it")
            elif parent not in spec.nodes:
                add(path, f"unknown node {parent!r}{_suggest(parent, names)} (declare it under `nodes:` or fix the name)")
            elif parent in seen:
                add(path, f"parent {parent!r} is listed twice; list each parent once")
            else:
                pnode = spec.nodes[parent]
                if isinstance(pnode, GaussianNode) and isinstance(node, DiscreteNode) and node.cpd == "table":
                    add(path, f"a table CPD cannot condition on the gaussian node {parent!r}; "
                        "set `cpd: logistic` on this node, or make the parent discrete")
                if pnode.plate is not None and pnode.plate != node.plate:
                    where = f"plate {node.plate!r}" if node.plate else "the data plate"
                    add(path, f"parent {parent!r} sits in plate {pnode.plate!r} but {name!r} sits in {where}; "
                        f"a child must be in its parents' plate (put {name!r} in plate {pnode.plate!r})")
            seen.add(parent)
        if isinstance(node, DiscreteNode) and node.cpd == "noisy-or":
            problems.extend(_noisy_or_problems(spec, name, node))
        seen = set()
        for i, parent in enumerate(node.prev):
            path = base + ("prev", i)
            if spec.sequence is None:
                add(path, "`prev:` (parents from the previous step) needs a sequence model: add top-level "
                    "`sequence: {id: <sequence column>, order: <step column>}`, or remove `prev`")
            elif parent not in spec.nodes:
                add(path, f"unknown node {parent!r}{_suggest(parent, names)} (declare it under `nodes:` or fix the name)")
            elif parent in seen:
                add(path, f"previous-step parent {parent!r} is listed twice; list each once")
            elif (isinstance(spec.nodes[parent], GaussianNode) and isinstance(node, DiscreteNode)
                  and node.cpd == "table"):
                add(path, f"a table CPD cannot condition on the gaussian node {parent!r}; "
                    "set `cpd: logistic` on this node, or make the parent discrete")
            seen.add(parent)

    if spec.sequence is not None:
        if not spec.directed:
            add(("sequence",), "sequence models are directed; set `graph: directed` (or remove `sequence`)")
        if spec.plates:
            add(("plates",), "plates inside the steps of a sequence model are not supported yet; "
                "declare the copies as separate nodes")
        state = [n for n, v in spec.nodes.items() if isinstance(v, GaussianNode) and v.latent]
        switch = [n for n, v in spec.nodes.items() if isinstance(v, DiscreteNode) and v.latent]
        if state and switch:
            add(("nodes", switch[0], "latent"),
                f"the latent discrete node{'s' if len(switch) > 1 else ''} {switch} and the latent gaussian "
                f"node{'s' if len(state) > 1 else ''} {state} in one step make a switching linear dynamical system, "
                "whose exact posterior is a mixture with (states)^T components: no exact inference. Make the "
                "discrete node observed (remove `latent` and give it a column), or use a discrete hidden state "
                "alone (an HMM) or a gaussian one alone (a linear dynamical system)")
        for name in spec.nodes:
            if "@" in name:
                add(("nodes", name), f"node name {name!r} contains '@', which names the first-step CPD "
                    "(`h@first`) in a sequence model; rename the node")
        for field_ in ("id", "order"):
            column = getattr(spec.sequence, field_)
            for name in spec.nodes:
                if column == name or column in spec.columns(name):
                    add(("sequence", field_), f"the {field_} column {column!r} is also the data column of node "
                        f"{name!r}; the sequence columns must be columns of their own")

    if spec.directed:
        if spec.cliques:
            add(("cliques",), "cliques belong to undirected graphs; use `parents:` on the nodes, "
                "or set `graph: undirected`")
        if not problems:
            cycle = _find_cycle(spec)
            if cycle:
                add(("nodes", cycle[1], "parents"),
                    "directed cycle " + " -> ".join(cycle) + "; a Bayesian network must be acyclic "
                    "(remove one of these edges)")
    else:
        for i, clique in enumerate(spec.cliques):
            base = ("cliques", i)
            seen = set()
            for j, member in enumerate(clique.nodes):
                if member not in spec.nodes:
                    add(base + ("nodes", j), f"clique over unknown node {member!r}{_suggest(member, names)}")
                elif member in seen:
                    add(base + ("nodes", j), f"node {member!r} appears twice in this clique; list it once")
                seen.add(member)
            if clique.features not in FEATURE_NAMES:
                add(base + ("features",), f"unknown features {clique.features!r}"
                    f"{_suggest(clique.features, sorted(FEATURE_NAMES))} "
                    f"(known: {', '.join(sorted(FEATURE_NAMES))}; register custom ones from Python)")
            elif clique.features == "ising" and not problems:
                for j, member in enumerate(clique.nodes):
                    if spec.nodes[member].n_states != 2:
                        add(base + ("nodes", j), f"ising features need binary nodes; {member!r} has "
                            f"{spec.nodes[member].n_states} states (use features: table or agreement)")

    if problems:
        return problems

    # sizes, refused before anything is allocated
    for name, node in spec.nodes.items():
        if spec.directed:  # a gaussian node holds one regression per discrete-parent configuration
            if isinstance(node, DiscreteNode) and node.cpd == "logistic":
                size = _node_params(spec, node)  # logistic: a weight per state and parent feature
            else:
                width = node.n_states if isinstance(node, DiscreteNode) else node.dim
                size = width * math.prod(
                    spec.nodes[p].n_states for p in list(node.parents) + list(node.prev)
                    if isinstance(spec.nodes[p], DiscreteNode))
            if size > MAX_TABLE:
                add(("nodes", name, "parents"), f"the CPD of {name!r} would have {size:.3g} entries, "
                    f"more than the limit {MAX_TABLE:.3g}; reduce its parents or their states")
    if spec.directed:
        for name, node in spec.nodes.items():
            if isinstance(node, DiscreteNode) and node.prior is not None and isinstance(node.prior.dirichlet, list):
                problem = _prior_shape_problem(spec, name, node)
                if problem:
                    add(("nodes", name, "prior", "dirichlet") + problem[0], problem[1])
    for i, clique in enumerate(spec.cliques):
        size = math.prod(spec.nodes[n].n_states for n in clique.nodes)
        if clique.features == "table" and size > MAX_TABLE:
            add(("cliques", i, "nodes"), f"the clique table would have {size:.3g} entries, more than "
                f"the limit {MAX_TABLE:.3g}")

    # ties: every member must have the same parameter shape
    groups: dict[str, list[tuple[Path, tuple]]] = {}
    if spec.directed:
        for name, node in spec.nodes.items():
            if node.tie:
                groups.setdefault(node.tie, []).append((("nodes", name, "tie"), _shape(spec, node)))
    else:
        for i, clique in enumerate(spec.cliques):
            if clique.tie:
                shape = (clique.features, tuple(spec.nodes[n].n_states for n in clique.nodes))
                groups.setdefault(clique.tie, []).append((("cliques", i, "tie"), shape))
    if spec.directed and not problems:
        problems.extend(_tie_option_problems(spec))
    for tie, members in groups.items():
        if spec.directed and tie in spec.nodes and spec.nodes[tie].tie != tie:
            add(members[0][0], f"tie name {tie!r} is also the name of a node; choose another tie name")
        first_path, first = members[0]
        for path, shape in members[1:]:
            if shape != first:
                if spec.directed:
                    what = f"{_describe_shape(shape)} vs {_describe_shape(first)}"
                else:
                    what = f"{shape[0]} over states {list(shape[1])} vs {first[0]} over states {list(first[1])}"
                add(path, f"tie {tie!r} joins parameters of different shapes ({what} at "
                    f"{'.'.join(map(str, first_path[:-1]))}); tie only identical shapes or rename the tie")

    # data columns must not collide; count them first, as listing them can be costly
    n_columns = sum((spec.plate_size(n) or 1) * getattr(v, "dim", 1) for n, v in spec.nodes.items())
    if n_columns > MAX_COLUMNS:
        add(("nodes",), f"the nodes span {n_columns:.3g} data columns (plate sizes times gaussian dims), "
            f"more than the limit {MAX_COLUMNS:.3g}; reduce plate sizes or dims")
        return problems
    owner: dict[str, str] = {}
    for name in spec.nodes:
        for col in spec.columns(name):
            if col in owner and owner[col] != name:
                add(("nodes", name), f"data column {col!r} of {name!r} clashes with node {owner[col]!r}; "
                    "rename one of them or set `columns:`")
            owner[col] = name
    return problems
