r"""Structured mean-field variational EM for sequence models (``learner="variational"`` on a
``sequence:`` model), e.g. the factorial HMM (Ghahramani & Jordan 1997).

Exact forward-backward (:mod:`pgm.infer.chain`) runs over the joint state of every hidden variable
of one step: ``prod K_m`` states, whose square it pays per row (8 chains of 4 states: 65,536
states, 4.3e9 transitions).  Structured mean-field keeps each tractable *piece* exact and
factorises ``q`` across them:

    log p(x) >= E_q[log p(x, z)] + sum_P H(q_P),      q(z) = prod_P q_P(z_P)

**Pieces** are the connected components of the hidden slice variables across time after removing
the coupling through observed children: a latent variable is joined to its hidden parents (of the
same and of the previous step), and the family of a node with data (even one with missing cells)
joins nothing.  A factorial HMM's chains ``h_m`` (``prev: [h_m]``) sharing the child ``x`` are M
pieces; a node with missing cells is a piece of its own.  Each piece is a chain over its own joint
state (at most :data:`pgm.infer.chain.MAX_JOINT`), and ``q_P`` is any distribution over its paths.

* **E-step** (coordinate ascent, Saul & Jordan 1996): each piece in turn gets the exact optimum of
  the bound with the others fixed, ``q_P ∝ exp(own families + E_{q_-P}[cross families])``, which is
  forward-backward over the piece with its own families as usual and each *cross* family (one whose
  hidden members lie in several pieces, e.g. the shared child ``x``) entering as the per-row
  emission ``E_{q_-P}[log p(x | h)]``: the family's log-probability over the joint states of its
  hidden members (any kind: tables, linear gaussians' table of means and covariances, logistic),
  contracted with the other pieces' marginals at the rows it reads (its previous-step members at
  the previous row).  Sweeps over the pieces stop when the bound stops improving.  The entropy of
  each piece is ``log Z_P - E_{q_P}[its potentials]``, so the bound is exact bookkeeping, not an
  estimate; it equals the log-likelihood when the pieces are independent given the data.
* A binary ``cpd: logistic`` cross family whose hidden parents have more than
  :data:`CROSS_LIMIT` joint states takes the Jaakkola-Jordan (2000) bound (:class:`_Bounded`):
  quadratic in the logit, so each piece sees a table over its own members' states, built from the
  mean and variance of the other pieces' parts of the logit; ``xi`` is reset to its optimum after
  every piece's update.
* **M-step**: the pieces' own families take forward-backward's expected statistics (pairwise
  marginals within a chain); a cross family is weighted by the product of its pieces' marginals;
  both go through the kinds' ``from_stats``, priors and ties included (a bounded family solves the
  bound's normal equations, its L2 ``penalty`` included, which the history subtracts).

``q`` is carried over between iterations, so ``history`` (the bound plus the tables' log-prior)
never decreases.  Everything is vectorised over rows; the Python loops are over steps (inside
forward-backward), pieces, cross families and blocks of rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import networkx as nx
import numpy as np

from scipy import linalg
from scipy.special import log_expit

from pgm.cpd.family import CPD, Family, Stats, family_log_prob, family_stats
from pgm.cpd.logistic import LogisticCPD, logistic_features
from pgm.errors import ConvergenceWarning, DataError, DataWarning, ModelError, PGMError
from pgm.graph import Graph, PREV, slice_name
from pgm.infer.chain import MAX_JOINT, ChainPlan, Tables, chain_stats, forward_backward, make_chain_plan, \
    slice_hidden, tables
from pgm.learn.chain import refuse_impossible_sequences
from pgm.learn.driver import NO_ROWS, Rows
from pgm.learn.em import MAX_ITER, REG_COVAR, TOL, EMResult, _log_prior, best_of_starts
from pgm.learn.mle import fit_from_stats, fit_options
from pgm.learn.start import check_start, marginal_stats, random_start
from pgm.learn.stats import pool_stats
from pgm.learn import variational
from pgm.learn.variational import LOG_FLOOR, _penalties
from pgm.sequence import SequenceData

#: Sweeps over the pieces per E-step (at most; fewer when the bound stops improving).
E_SWEEPS = 3
#: A sweep that raises the bound by less than this (relative) ends the E-step.
E_TOL = 1e-8
#: Sweeps of :func:`sequence_elbo` (fixed parameters, optimised from a uniform start).
ELBO_SWEEPS = 200
#: The most joint states of a cross family's hidden members (its log-table per row is that wide).
CROSS_LIMIT = 2**16
#: Rows x joint states of a cross family evaluated at once (a block of rows).
BLOCK_CELLS = 2**21
#: A cross family's whole log-table is kept through an E-step when it has at most this many cells.
CACHE_CELLS = 2**25
#: Forward-backward costs about this many operations per row and pair of joint states.
FB_OPS = 3.0


@dataclass
class Group:
    """The hidden members of a cross family that lie in one piece."""

    piece: int
    size: int                     # joint states of these members
    onto: np.ndarray              # (K_piece,) index of each piece state in the group's joint states
    previous: bool                # read at the previous step's row


@dataclass
class Cross:
    """A family whose hidden members lie in several pieces."""

    name: str
    fam: Family
    first: bool                   # a first-step family (rows of step 0)
    hidden: tuple[str, ...]       # its hidden members (family member names), grouped by piece (member_group)
    cards: tuple[int, ...]
    groups: list[Group]
    rows: np.ndarray              # the rows it reads (its block: step 0, or steps >= 1)
    prev: np.ndarray | None       # for a later family, the previous-step row of each of its rows
    miss: np.ndarray | None       # rows of its block where its gaussian child is missing
    reads_data: bool              # some member is read from the data (else one table serves every row)
    bounded: bool = False         # a binary logistic child beyond CROSS_LIMIT: the Jaakkola-Jordan bound
    member_group: tuple[int, ...] = ()   # the group of each hidden member

    @property
    def size(self) -> int:
        return math.prod(self.cards)

    def marginal_rows(self, g: Group) -> np.ndarray:
        return self.prev if g.previous else self.rows


@dataclass
class Structure:
    """The pieces of a sequence model's hidden variables and how each family enters the bound."""

    graph: Graph
    data: SequenceData
    pieces: list[tuple[str, ...]]
    plans: list[ChainPlan]            # one chain per piece, over its own families
    cross: list[Cross]

    @property
    def n_rows(self) -> int:
        return self.data.n_rows


def split_pieces(graph: Graph, data: SequenceData, hidden: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The pieces of the hidden slice variables: connected components after joining each latent
    variable (or one without any data) to its hidden parents of the same and the previous step;
    then a variable with missing cells that is still alone joins the piece of its hidden parents when
    they all lie in one piece (and the piece stays within MAX_JOINT joint states), so that a missing
    cell of a single chain's child is summed exactly."""
    enc = data.enc
    joined = {v for v in hidden if graph[v].latent or not enc.observed(v)}
    g = nx.Graph()
    g.add_nodes_from(hidden)
    for f, fam in graph.families.items():
        child = slice_name(f)
        if child not in joined:
            continue
        for m in fam.members:
            if slice_name(m) in hidden:
                g.add_edge(child, slice_name(m))
    piece_of: dict[str, int] = {}
    comps: list[set[str]] = []
    for i, c in enumerate(nx.connected_components(g)):
        comps.append(set(c))
        piece_of.update({v: i for v in c})
    for v in graph.slice:
        if v not in hidden or v in joined or len(comps[piece_of[v]]) > 1:
            continue
        parents = {piece_of[slice_name(p)] for f in (v, v + PREV) for p in graph[f].parents if slice_name(p) in hidden}
        parents.discard(piece_of[v])
        if len(parents) != 1:
            continue
        target = parents.pop()
        if math.prod(graph[u].n_states for u in comps[target]) * graph[v].n_states > MAX_JOINT:
            continue
        comps[piece_of[v]] = set()
        comps[target].add(v)
        piece_of[v] = target
    rank = {v: i for i, v in enumerate(graph.slice)}
    out = [tuple(sorted(c, key=rank.__getitem__)) for c in comps if c]
    return sorted(out, key=lambda c: rank[c[0]])


def make_structure(graph: Graph, data: SequenceData) -> Structure:
    """Pieces, their chain plans and the cross families of ``data``.

    Raises
    ------
    pgm.ModelError : a latent gaussian node, a piece of more than MAX_JOINT joint states, a cross
        family reading one piece at two steps, or one whose hidden members have more than
        CROSS_LIMIT joint states.
    pgm.PGMError : nothing hidden (every cell observed: learner='mle').
    """
    for v in graph.slice:
        if graph[v].latent and not graph[v].discrete:
            raise ModelError(f"latent gaussian node {graph[v].decl!r}: learner='variational' handles hidden discrete "
                             "nodes only; use learner='em' (exact inference)")
    hidden = slice_hidden(graph, data)
    if not hidden:
        raise PGMError("learner='variational' needs latent nodes or missing cells; every cell is observed here: "
                       "use learner='mle'")
    pieces = split_pieces(graph, data, hidden)
    piece_of = {v: i for i, p in enumerate(pieces) for v in p}
    for p in pieces:
        size = math.prod(graph[v].n_states for v in p)
        if size > MAX_JOINT:
            raise ModelError(f"the hidden nodes {list(p)} are joined through each other (a latent node and its hidden "
                             f"parents): {size:.3g} joint states per step, more than {MAX_JOINT}; learner='variational' "
                             "keeps each such piece exact: use fewer latent states or fewer hidden parents")
    own: list[list[str]] = [[] for _ in pieces]
    cross_names = []
    for f, fam in graph.families.items():
        touched = sorted({piece_of[slice_name(m)] for m in fam.members if slice_name(m) in piece_of})
        if len(touched) <= 1:
            own[touched[0] if touched else 0].append(f)
        else:
            cross_names.append(f)
    plans = [make_chain_plan(graph, data, hidden=p, only=tuple(o)) for p, o in zip(pieces, own)]
    n0 = plans[0].n0
    cross = []
    for f in cross_names:
        fam = graph.families[f]
        first = f.endswith(PREV)
        if f in plans[0].partial_child:  # a cross family's table is built here, without conditioning
            raise DataError(f"some but not all components of the gaussian node {slice_name(f)!r} are missing in "
                            f"{sum(int(v.sum()) for k, v in plans[0].partial_child.items() if slice_name(k) == slice_name(f))} rows while its parents are hidden nodes of "
                            "different pieces; learner='variational' takes such a vector whole or not at all "
                            "(use learner='em', or fill or empty the other components)")
        members = [m for m in fam.members if slice_name(m) in piece_of]
        members.sort(key=lambda m: piece_of[slice_name(m)])  # stable: the family's order within a piece
        groups = []
        order = sorted({piece_of[slice_name(m)] for m in members})
        for i in order:
            mine = [m for m in members if piece_of[slice_name(m)] == i]
            when = {m.endswith(PREV) and not first for m in mine}
            if len(when) > 1:
                names = [slice_name(m) for m in mine]
                raise ModelError(f"{graph[f].decl}: it reads the hidden nodes {names} at two steps "
                                 "and also other hidden nodes; learner='variational' needs each piece read at one step "
                                 "by such a family")
            plan = plans[i]
            cards = [graph[slice_name(m)].n_states for m in mine]
            codes = [plan.joint[plan.hidden.index(slice_name(m))] for m in mine]
            onto = np.ravel_multi_index(tuple(codes), cards) if codes else np.zeros(plan.n_states, dtype=np.int64)
            groups.append(Group(i, math.prod(cards), onto, when.pop()))
        cards = tuple(graph[slice_name(m)].n_states for m in members)
        bounded = math.prod(cards) > CROSS_LIMIT
        if bounded and not (fam.kind == "logistic" and fam.var.n_states == 2 and slice_name(f) not in piece_of):
            raise ModelError(f"{graph[f].decl}: its hidden parents {[graph.shown(f, m) for m in members][:8]} have "
                             f"{math.prod(cards):.3g} joint states, more than learner='variational' evaluates per row "
                             f"({CROSS_LIMIT}); a binary node with data can be `cpd: logistic` (bounded), or give it "
                             "fewer hidden parents or fewer states")
        rows = np.arange(n0) if first else np.arange(n0, data.n_rows)
        reads_data = any(slice_name(m) not in piece_of for m in fam.members)
        cross.append(Cross(f, fam, first, tuple(members), cards, groups, rows, None if first else plans[0].prev_rows,
                           plans[0].missing_child.get(f), reads_data, bounded,
                           tuple(order.index(piece_of[slice_name(m)]) for m in members)))
    return Structure(graph, data, pieces, plans, cross)


# ------------------------------------------------------------------------------------------- cross families
def _assign(st: Structure, c: Cross, lo: int, hi: int, hidden: bool = True) -> dict[str, np.ndarray]:
    """The members of cross family ``c`` on rows ``lo:hi`` of its block: its hidden members over their
    joint states (axis 1; left out with ``hidden=False``), the rest from the data."""
    enc = st.data.enc
    grid = np.indices(c.cards).reshape(len(c.cards), -1) if hidden else None
    assign: dict[str, np.ndarray] = {}
    for m in c.fam.members:
        if m in c.hidden:
            if grid is not None:
                assign[m] = grid[c.hidden.index(m)][None, :]
            continue
        base = slice_name(m)
        rows = c.prev[lo:hi] if (m.endswith(PREV) and not c.first) else c.rows[lo:hi]
        if base in enc.codes:
            assign[m] = enc.codes[base][rows][:, None]
        elif base in enc.values:
            assign[m] = np.nan_to_num(enc.values[base][rows], nan=0.0)
        else:  # an unobserved gaussian child: its rows are masked
            assign[m] = np.zeros((len(rows), st.graph[base].dim))
    return assign


def _blocks(c: Cross) -> list[tuple[int, int]]:
    n = len(c.rows)
    step = max(1, BLOCK_CELLS // c.size)
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


@dataclass
class _Quadratic:
    """A gaussian child of hidden discrete parents only, as ``log N(y; mu_c, Sigma_c) = phi(y) . theta_c``
    with ``phi(y) = [1, z, z_i z_j (i <= j)]``, ``z = y - shift``: its log-table over the joint states
    is one matrix product per block of rows (the table of means and precisions)."""

    shift: np.ndarray             # (d,)
    theta: np.ndarray             # (J, C) in the family's grid order
    iu: tuple[np.ndarray, np.ndarray]

    def table(self, y: np.ndarray) -> np.ndarray:
        z = y - self.shift
        phi = np.hstack([np.ones((len(z), 1)), z, z[:, self.iu[0]] * z[:, self.iu[1]]])
        return np.einsum("nj,jc->nc", phi, self.theta)  # J is a few: einsum beats BLAS's thin product here


def _quadratic(st: Structure, c: Cross, cpd: CPD) -> _Quadratic | None:
    """The quadratic form of cross family ``c`` when its child is gaussian and every parent a hidden discrete node."""
    fam = c.fam
    if not fam.var.gaussian or fam.cont or set(c.hidden) != set(fam.disc):
        return None
    y = st.data.enc.values[slice_name(c.name)][c.rows]
    ok = ~np.isnan(y).any(axis=1)
    shift = y[ok].mean(axis=0) if ok.any() else np.zeros(y.shape[1])
    prec = np.einsum("cij,ckj->cik", cpd.prec_chol, cpd.prec_chol)           # (C, d, d)
    mu = cpd.intercept - shift                                              # (C, d)
    pmu = np.einsum("cij,cj->ci", prec, mu)
    iu = np.triu_indices(fam.var.dim)
    quad = -0.5 * prec[:, iu[0], iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
    theta = np.hstack([(cpd.log_norm - 0.5 * np.einsum("ci,ci->c", mu, pmu))[:, None], pmu, quad])   # (C, J)
    grid = np.indices(c.cards).reshape(len(c.cards), -1)
    perm = np.ravel_multi_index(tuple(grid[c.hidden.index(p)] for p in fam.disc), fam.cards)
    return _Quadratic(shift, np.ascontiguousarray(theta[perm].T), iu)


def _log_table(st: Structure, c: Cross, cpds: dict[str, CPD], lo: int, hi: int,
               quadratic: _Quadratic | None = None) -> np.ndarray:
    """log p of the family on rows lo:hi over its hidden members' joint states, floored: (hi - lo, C)."""
    if quadratic is not None:  # finite everywhere: no floor needed
        lp = quadratic.table(np.nan_to_num(st.data.enc.values[slice_name(c.name)][c.rows[lo:hi]], nan=0.0))
        return lp if c.miss is None else np.where(c.miss[lo:hi, None], 0.0, lp)
    else:
        lp = family_log_prob(c.fam, cpds[st.graph[c.name].param], _assign(st, c, lo, hi), hi - lo, {})
        lp = np.broadcast_to(np.asarray(lp).reshape(-1, c.size), (hi - lo, c.size))
    if c.miss is not None:
        lp = np.where(c.miss[lo:hi, None], 0.0, lp)
    return np.maximum(lp, LOG_FLOOR)


def _contract(table: np.ndarray, qs: list[np.ndarray | None]) -> np.ndarray:
    """sum over the group axes j with ``qs[j]`` given of table[n, g1..gk] * prod_j qs[j][n, g_j], the
    remaining axis (at most one) kept: batched matrix-vector products, trailing axes first."""
    n = table.shape[0]
    keep = next((j for j, q in enumerate(qs) if q is None), len(qs))
    x = table.reshape(n, -1)
    for j in range(len(qs) - 1, keep, -1):
        x = np.matmul(x.reshape(n, -1, qs[j].shape[1]), qs[j][:, :, None])[..., 0]
    for j in range(min(keep, len(qs))):
        x = np.matmul(qs[j][:, None, :], x.reshape(n, qs[j].shape[1], -1))[:, 0]
    return x


# ------------------------------------------------------------------------------------------------- the bound
class _State:
    """q of every piece (its posterior marginals per row, and what its last update left)."""

    def __init__(self, st: Structure, rng: np.random.Generator | None) -> None:
        self.st = st
        n = st.n_rows
        self.gamma: list[np.ndarray] = []
        for plan in st.plans:
            k = plan.n_states
            g = np.full((n, k), 1.0 / k) if rng is None else rng.dirichlet(np.full(k, 5.0), size=n)
            if plan.mask is not None:  # observed cells of hidden nodes
                g = g * np.exp(plan.mask)
                g /= g.sum(axis=1, keepdims=True)
            self.gamma.append(g)
        self.entropy = [0.0] * len(st.plans)
        self.own = [0.0] * len(st.plans)
        self.xi: list[tuple[np.ndarray | None, np.ndarray | None]] = [(None, None)] * len(st.plans)
        self.version = [0] * len(st.plans)          # how often each piece was updated (invalidates contractions)

    def group_marginal(self, c: Cross, g: Group, lo: int, hi: int) -> np.ndarray:
        """The joint marginal of the family's members in piece ``g.piece`` at the rows it reads: (hi - lo, G)."""
        block = self.gamma[g.piece][c.marginal_rows(g)[lo:hi]]
        if g.size == block.shape[1] and np.array_equal(g.onto, np.arange(g.size)):
            return block
        out = np.zeros((len(block), g.size))
        np.add.at(out.T, g.onto, block.T)
        return out


def _wsum(p: np.ndarray, logs: np.ndarray) -> float:
    """sum of p * logs with 0 * log 0 = 0."""
    with np.errstate(invalid="ignore"):
        return float(np.where(p > 0, p * logs, 0.0).sum())


class _Bounded:
    """A binary logistic cross family under the Jaakkola-Jordan bound (one ``xi`` per row):
    ``log sigma(s a) >= log sigma(xi) + (s a - xi) / 2 - lambda(xi) (a^2 - xi^2)``, quadratic in the
    logit ``a = b + w . phi``, whose expectation under the product of the pieces needs the mean and
    variance of each piece's part of the logit (a table over the piece's members' joint states)."""

    def __init__(self, st: Structure, c: Cross, cpd: CPD, q: _State) -> None:
        self.c, self.q = c, q
        n = len(c.rows)
        w = cpd.coef[1]
        self.features = [self._group_features(st, c, j) for j in range(len(c.groups))]       # (G_j, Q) each
        self.parts = [f @ w for f in self.features]                                          # (G_j,)
        self.observed = self._observed_features(st, c)                                       # (n, Q)
        self.base = cpd.intercept[1] + self.observed @ w
        self.sbar = 2.0 * st.data.enc.codes[slice_name(c.name)][c.rows] - 1.0
        self.weight = np.ones(n) if st.data.row_weights is None else st.data.row_weights[c.rows]
        self.mean = [np.zeros(n)] * len(c.groups)
        self.var = [np.zeros(n)] * len(c.groups)
        for j in range(len(c.groups)):
            self.refresh(j)

    @staticmethod
    def _group_features(st: Structure, c: Cross, j: int) -> np.ndarray:
        """The features of group j's joint states (its members' indicators; every other parent 0)."""
        fam, g = c.fam, c.groups[j]
        mine = [m for m, i in zip(c.hidden, c.member_group) if i == j]
        grid = np.indices([st.graph[slice_name(m)].n_states for m in mine]).reshape(len(mine), -1)
        assign = {p: np.zeros(g.size, dtype=np.int64) for p in fam.disc}
        assign.update({m: grid[i] for i, m in enumerate(mine)})
        disc = [(assign[p], k) for p, k in zip(fam.disc, fam.cards)]
        return logistic_features(disc, [np.zeros((g.size, st.graph[p].dim)) for p in fam.cont], g.size)

    @staticmethod
    def _observed_features(st: Structure, c: Cross) -> np.ndarray:
        """The features of the observed parents per row (hidden members at state 0)."""
        fam, n = c.fam, len(c.rows)
        assign = _assign(st, c, 0, n, hidden=False)
        disc = [((np.zeros(n, dtype=np.int64) if p in c.hidden else np.broadcast_to(assign[p], (n, 1))[:, 0]), k)
                for p, k in zip(fam.disc, fam.cards)]
        return logistic_features(disc, [assign[p] for p in fam.cont], n)

    def refresh(self, j: int) -> None:
        """Group j's part of the logit's mean and variance from its piece's marginals, then the optimal xi."""
        c = self.c
        m = self.q.group_marginal(c, c.groups[j], 0, len(c.rows))
        mean = m @ self.parts[j]
        self.mean[j], self.var[j] = mean, np.maximum(m @ self.parts[j] ** 2 - mean ** 2, 0.0)
        self.total = self.base + sum(self.mean)
        self.second = self.total ** 2 + sum(self.var)
        self.xi = np.sqrt(self.second)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.lam = np.where(self.xi > 1e-6, np.tanh(self.xi / 2) / (4 * np.where(self.xi > 1e-6, self.xi, 1.0)),
                                0.125)

    def terms(self, j: int) -> np.ndarray:
        """The bound over group j's joint states with the other groups' marginals (state-free terms dropped):
        (n, G_j), to be weighed by the row weights like every other potential."""
        a = self.parts[j][None, :]
        rest = (self.total - self.mean[j])[:, None]
        return self.sbar[:, None] / 2 * a - self.lam[:, None] * (a ** 2 + 2 * a * rest)

    def value(self) -> float:
        rows = log_expit(self.xi) + (self.sbar * self.total - self.xi) / 2 - self.lam * (self.second - self.xi ** 2)
        return float(self.weight @ rows)

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        """The bound's normal equations for (intercept, coef): ``A`` and ``b`` summed over rows."""
        c, n = self.c, len(self.c.rows)
        lam = self.lam * self.weight
        means = [self.q.group_marginal(c, g, 0, n) for g in c.groups]
        phi = np.hstack([np.ones((n, 1)), self.observed + sum(m @ f for m, f in zip(means, self.features))])
        a = (phi * lam[:, None]).T @ phi
        for m, f in zip(means, self.features):   # + sum_n lam_n Cov_n of each group's features
            ef = m @ f
            f1 = np.hstack([np.zeros((len(f), 1)), f])
            e1 = np.hstack([np.zeros((n, 1)), ef])
            a += (f1 * (lam @ m)[:, None]).T @ f1 - (e1 * lam[:, None]).T @ e1
        return a, phi.T @ (self.sbar * self.weight / 2)


class _EStep:
    """The coordinate ascent for one set of parameters."""

    def __init__(self, st: Structure, q: _State, cpds: dict[str, CPD]) -> None:
        self.st, self.q, self.cpds = st, q, cpds
        self.own = [tables(plan, cpds) for plan in st.plans]
        self.cache: dict[str, np.ndarray] = {}
        self.held: dict[tuple[str, int, int], tuple[tuple[int, ...], np.ndarray]] = {}
        self.exact = [c for c in st.cross if not c.bounded]
        self.bounded = [_Bounded(st, c, cpds[st.graph[c.name].param], q) for c in st.cross if c.bounded]
        self.quadratic = {c.name: _quadratic(st, c, cpds[st.graph[c.name].param]) for c in self.exact}
        for c in self.exact:
            n = len(c.rows)
            if n * c.size <= CACHE_CELLS:
                self.cache[c.name] = _log_table(st, c, cpds, 0, n, self.quadratic[c.name])

    def _table(self, c: Cross, lo: int, hi: int) -> np.ndarray:
        if c.name in self.cache:
            return self.cache[c.name][lo:hi]
        return _log_table(self.st, c, self.cpds, lo, hi, self.quadratic[c.name])

    def cross_evidence(self, i: int) -> np.ndarray:
        """sum over the cross families touching piece i of E_{q_-i}[log p_f] over piece i's joint state: (N, K_i)."""
        st = self.st
        out = np.zeros((st.n_rows, st.plans[i].n_states))
        for c in self.exact:
            for j, g in enumerate(c.groups):
                if g.piece == i:
                    out[c.marginal_rows(g)] += self.outside(c, j, j + 1)[:, g.onto]    # (rows, K_i)
        return out

    def outside(self, c: Cross, lo: int, hi: int) -> np.ndarray:
        """The family's log-table contracted with the current marginals of every group outside
        ``lo:hi``: (rows, joint states of groups lo..hi-1).

        The groups form a binary tree (halves of ``0:G``); a node's tensor is its parent's contracted
        with its sibling's marginals, kept while those marginals are unchanged.  A sweep updates the
        pieces in order, so the whole table is read twice per sweep (for the two halves), not once
        per piece."""
        key = (c.name, lo, hi)
        sizes = [g.size for g in c.groups]
        versions = tuple(self.q.version[g.piece] for g in c.groups)
        held = self.held.get(key)
        if held is not None and all(held[0][j] == versions[j] for j in range(len(sizes)) if not lo <= j < hi):
            return held[1]
        plo, phi = 0, len(sizes)
        while True:  # the parent of lo:hi in the tree
            mid = (plo + phi) // 2
            if (plo, mid) == (lo, hi) or (mid, phi) == (lo, hi):
                break
            plo, phi = (plo, mid) if hi <= mid else (mid, phi)
        marg = lambda j, a, b: self.q.group_marginal(c, c.groups[j], a, b)  # noqa: E731
        if (plo, phi) == (0, len(sizes)):  # the root: the table itself, by blocks of rows
            parts = []
            for a, b in _blocks(c):
                qs = [marg(j, a, b) for j in range(lo)] + [None] + [marg(j, a, b) for j in range(hi, len(sizes))]
                parts.append(_contract(self._table(c, a, b), qs))
            value = np.concatenate(parts) if parts else np.zeros((0, math.prod(sizes[lo:hi])))
        else:
            parent = self.outside(c, plo, phi)
            n = len(c.rows)
            qs = ([marg(j, 0, n) for j in range(plo, lo)] + [None] + [marg(j, 0, n) for j in range(hi, phi)])
            value = _contract(parent, qs)
        self.held[key] = (versions, value)
        return value

    def cross_value(self, c: Cross) -> float:
        """E_q[log p_f] summed over rows for a cross family."""
        total = 0.0
        for lo, hi in _blocks(c):
            qs = [self.q.group_marginal(c, h, lo, hi) for h in c.groups]
            rows = _contract(self._table(c, lo, hi), qs).ravel()
            rw = self.st.data.row_weights
            total += float(rows.sum() if rw is None else rows @ rw[c.rows[lo:hi]])
        return total

    def update(self, i: int) -> float:
        """Set q_i to its optimum given the other pieces; returns sum over rows of E_q[cross families touching i]."""
        st, q = self.st, self.q
        plan, own = st.plans[i], self.own[i]
        cross = self.cross_evidence(i)
        bounded = np.zeros_like(cross)
        touched = [(b, j, g) for b in self.bounded for j, g in enumerate(b.c.groups) if g.piece == i]
        for b, j, g in touched:
            bounded[b.c.marginal_rows(g)] += b.terms(j)[:, g.onto]
        tab = Tables(own.evidence + cross + bounded, own.shared, own.rows)
        sm = forward_backward(plan, self.cpds, tab=tab)
        refuse_impossible_sequences(st.data, sm.sequence_log_likelihood, "learner='variational'")
        gamma = sm.gamma
        rw = st.data.row_weights  # sequence weights: forward-backward's totals and xi_shared carry them
        weighted = gamma if rw is None else gamma * rw[:, None]
        e_own = _wsum(weighted, own.evidence)
        e_cross = float((weighted * cross).sum())
        e_bounded = float((weighted * bounded).sum()) if touched else 0.0
        e_trans = _wsum(sm.xi_shared, own.shared)
        if own.rows is not None:
            e_trans += _wsum(sm.xi_rows if rw is None else sm.xi_rows * rw[plan.n0:, None, None], own.rows)
        q.gamma[i] = gamma
        q.xi[i] = (sm.xi_shared, sm.xi_rows)
        q.entropy[i] = sm.log_likelihood - e_own - e_cross - e_bounded - e_trans
        q.own[i] = e_own + e_trans
        q.version[i] += 1
        for b, j, _ in touched:  # the new marginals move the logits' moments, and xi to its optimum
            b.refresh(j)
        return e_cross

    def bound(self, last: float) -> float:
        """The bound once every piece has been updated, the last one being the last piece (``last``:
        what its update returned, the cross families touching it)."""
        final = len(self.st.plans) - 1
        rest = sum(self.cross_value(c) for c in self.exact if all(g.piece != final for g in c.groups))
        return float(sum(self.q.entropy) + sum(self.q.own) + last + rest + sum(b.value() for b in self.bounded))

    def sweep(self) -> float:
        """One pass over the pieces; the bound after it."""
        last = 0.0
        for i in range(len(self.st.plans)):
            last = self.update(i)
        return self.bound(last)

    def run(self, sweeps: int, tol: float) -> float:
        value = -math.inf
        for _ in range(sweeps):
            new = self.sweep()
            done = new - value <= tol * abs(new)
            value = new
            if done:
                break
        return value


def _m_step(st: Structure, q: _State, cpds: dict[str, CPD], options: dict[str, dict[str, Any]]) -> dict[str, CPD]:
    """Expected statistics: forward-backward's within each piece, products of marginals across pieces."""
    parts: list[tuple[str, Stats]] = []
    for plan, gamma, (xs, xr) in zip(st.plans, q.gamma, q.xi):
        parts.extend(chain_stats(plan, gamma, xs, xr, cpds).items())
    normal: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c in st.cross:
        if c.bounded:  # the bound's normal equations, summed under the parameter key
            key = st.graph[c.name].param
            a, b = _Bounded(st, c, cpds[key], q).fit()
            normal[key] = (a, b) if key not in normal else (normal[key][0] + a, normal[key][1] + b)
            continue
        total = None
        for lo, hi in _blocks(c):
            w = None
            for g in c.groups:
                m = q.group_marginal(c, g, lo, hi)
                w = m if w is None else (w[:, :, None] * m[:, None, :]).reshape(len(m), -1)
            if c.miss is not None:
                w = np.where(c.miss[lo:hi, None], 0.0, w)
            if st.data.row_weights is not None:
                w = w * st.data.row_weights[c.rows[lo:hi], None]
            n = hi - lo
            if not c.reads_data:  # the family reads no data: one table for every row
                w, n = w.sum(axis=0, keepdims=True), 1
            s = family_stats(c.fam, _assign(st, c, lo, lo + n), n, w, {})
            total = s if total is None else total + s
        if total is not None:  # None: no sequence reaches a second step
            parts.append((c.name, total))
    stats = pool_stats(st.graph, parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DataWarning)
        out = fit_from_stats(st.graph, stats, init=cpds, warn_unseen=False, options=options)
    for key, (a, b) in normal.items():  # maximise sbar/2 E[a] - lambda E[a^2] - penalty/2 |coef|^2
        pen = float(options[key].get("penalty") or 0.0)
        m = 2 * a + np.diag(np.r_[0.0, np.full(len(a) - 1, pen)]) + 1e-10 * np.eye(len(a))
        try:
            theta = linalg.solve(m, b, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            theta = np.linalg.lstsq(m, b, rcond=None)[0]
        out[key] = LogisticCPD(np.array([0.0, theta[0]]), np.vstack([np.zeros(len(theta) - 1), theta[1:]]))
    return {key: out.get(key, cpds[key]) for key in st.graph.params}


def fit_structured(graph: Graph, data: SequenceData, *, max_iter: int = MAX_ITER, tol: float = TOL, n_init: int = 1,
                   seed: int | None = 0, init: Any = "auto", prior: dict | None = None, reg_covar: float = REG_COVAR,
                   penalty: float | None = None, callback: Callable[[int, float], None] | None = None,
                   trace: Callable[[int, float, dict[str, CPD]], None] | None = None) -> EMResult:
    """Structured mean-field variational EM from ``n_init`` starts; keeps the run with the highest bound.

    ``history[i]`` is the bound (plus the tables' log-prior) of the parameters after ``i``
    updates with their optimised q; it never decreases.  ``trace(i, bound, cpds)`` is for tests
    and benchmarks."""
    st = make_structure(graph, data)
    bounded = tuple(c.name for c in st.cross if c.bounded)
    options = fit_options(graph, prior, reg_covar, penalty)
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    given = None if isinstance(init, str) else check_start(graph, init)
    names = tuple(n for n in graph.order if not graph[n].discrete and not graph[n].latent)
    marginals = marginal_stats(SimpleNamespace(data=data.enc), names).stats if names else {}

    def one_run(run_seed: int, rng: np.random.Generator) -> EMResult:
        start = dict(given) if given is not None else random_start(graph, {}, marginals, rng, **opts)
        q = _State(st, rng)

        def e_step(cpds: dict[str, CPD]) -> float:
            return (_EStep(st, q, cpds).run(E_SWEEPS, E_TOL) + _log_prior(graph, cpds, options)
                    - _penalties(graph, cpds, options, bounded))

        cpds, history, converged = variational.ascend(start, e_step, lambda c: _m_step(st, q, c, options),
                                                      max_iter=max_iter, tol=tol, callback=callback, trace=trace)
        return EMResult(cpds, history, converged, len(history) - 1, run_seed)

    return best_of_starts(n_init, seed, one_run)


def sequence_elbo(graph: Graph, cpds: dict[str, CPD], data: SequenceData, *, sweeps: int = ELBO_SWEEPS,
                  tol: float = 1e-12) -> float:
    """The structured mean-field bound of ``data`` under fixed parameters (<= the log-likelihood):
    q optimised by sweeps over the pieces from uniform marginals."""
    st = make_structure(graph, data)
    return _EStep(st, _State(st, None), cpds).run(sweeps, tol)


# ---------------------------------------------------------------------------------------- the automatic choice
@dataclass
class ChainEstimate:
    """What exact forward-backward over the joint hidden state of one step would need."""

    hidden: tuple[str, ...]
    states: int
    cost: float                   # operations per EM iteration (about FB_OPS * rows * states^2)

    @property
    def feasible(self) -> bool:
        return self.states <= MAX_JOINT

    @property
    def over_budget(self) -> bool:
        return not self.feasible or self.cost > variational.EXACT_COST_BUDGET

    def describe(self) -> str:
        limit = "" if self.feasible else f", more than {MAX_JOINT}"
        return (f"forward-backward over the joint state of the hidden nodes {list(self.hidden)[:8]}"
                f"{'...' if len(self.hidden) > 8 else ''} of one step: {self.states:.3g} joint states{limit}, "
                f"~{self.cost:.2g} operations per iteration")


def chain_estimate(graph: Graph, data: SequenceData) -> ChainEstimate | None:
    """The cost of exact inference on ``data`` (None when nothing is hidden)."""
    hidden = slice_hidden(graph, data)
    if not hidden:
        return None
    k = math.prod(graph[v].n_states for v in hidden)
    return ChainEstimate(hidden, k, FB_OPS * data.n_rows * float(k) ** 2)


def choose_sequence_learner(graph: Graph, data: SequenceData, learner: str | None) -> tuple[str | None, dict[str, Any]]:
    """``learner``, or "variational" (with ``learner_reason``) when none is named and exact
    forward-backward is over :data:`pgm.infer.chain.MAX_JOINT` joint states or the cost budget
    (:data:`pgm.learn.variational.EXACT_COST_BUDGET`, read at each call); a named "em" beyond MAX_JOINT is refused."""
    if learner not in (None, "em"):
        return learner, {}
    est = chain_estimate(graph, data)
    if est is None or not est.over_budget:
        return learner, {}
    note = f"exact inference would need {est.describe()}"
    if learner is None:
        try:
            make_structure(graph, data)
        except ModelError as exc:
            if est.feasible:
                return learner, {}
            raise ModelError(f"{note}, and learner='variational' does not apply: {exc}") from None
        return "variational", {"learner_reason": note}
    if not est.feasible:
        raise ModelError(f"learner='em' needs {est.describe()} (forward-backward costs their square per step); use "
                         "learner='variational' (structured mean-field, each chain exact; the default when no learner "
                         "is named), or fewer latent states")
    return learner, {}


def structured_rows(graph: Graph, data: SequenceData, info: dict[str, Any]) -> Rows:
    """Sequences as a source of the directed fit driver for learner='variational'."""
    def exact_only() -> Any:
        raise PGMError("this source fits sequence models with learner='variational' only")

    return Rows(lambda strict: None, exact_only, NO_ROWS, dict(info),
                variational=lambda **kw: fit_structured(graph, data, **kw))
