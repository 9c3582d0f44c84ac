r"""Gibbs sampling of each row's hidden cells given its observed ones, vectorised over rows.

A row's hidden cells (latent nodes and missing cells) are drawn from ``p(z | x)`` by a Markov
chain that visits the hidden nodes in topological order and redraws each from its *full
conditional* given every other cell of the row (Geman & Geman 1984; Koller & Friedman 12.3):

    p(z_v | everything else)  ∝  p(z_v | pa(v)) * prod_{c child of v} p(x_c | pa(c)),

the product over the families that contain ``v`` (its Markov blanket).  Every row has its own
chain and all chains advance together: for a discrete node the log of this product is evaluated
for all rows and all of the node's states at once by each family's kind-agnostic ``log_prob``
(the node's column is the state axis ``arange(k)[None, :]``, the other members the rows'
current values), and one inverse-CDF draw per row follows.  The Python loop is over nodes.

A hidden gaussian node whose own family and whose children are linear-gaussian has a gaussian
full conditional (precision ``Σ⁻¹ + Σ_c W_cᵀ Σ_c⁻¹ W_c``, per row through the discrete
configurations) and is drawn from it exactly.  A hidden gaussian with a discrete (e.g. logistic)
child has no such closed form and is refused, as is a gaussian vector with some components
observed and others missing in one row.

Chains start from an ancestral draw of the model with the observed cells clamped
(:meth:`Gibbs.__init__`) and persist: a learner keeps the object across parameter updates
(warm start, as Monte Carlo EM usually does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scipy.special import log_expit

from pgm.cpd.base import configs, continuous
from pgm.cpd.family import CPD, family_log_prob, kind_of
from pgm.cpd.logistic import design
from pgm.encode import EncodedData
from pgm.errors import DataError, ModelError
from pgm.graph import Graph


@dataclass
class GibbsLayout:
    """Which cells are hidden (depends on the data only) and which families each hidden node is in."""

    hidden: dict[str, np.ndarray]          # node -> (n,) bool: hidden in that row
    rows: dict[str, np.ndarray | None]     # node -> its hidden rows (None: every row)
    blanket: dict[str, tuple[str, ...]]    # hidden node -> the families it is a member of
    hidden_families: tuple[str, ...]       # families with a hidden member in some row
    n_rows: int
    dropped: dict[str, np.ndarray] = field(default_factory=dict)  # node -> (n,) bool: barren, summed out

    def keep(self, f: str, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Where family ``f`` counts (its child is not summed out), over ``rows``; None: everywhere."""
        d = self.dropped.get(f)
        if d is None:
            return None
        return ~(d if rows is None else d[rows])


def gibbs_layout(graph: Graph, data: EncodedData, learner: str = "mcem") -> GibbsLayout:
    """The hidden cells of ``data`` and each hidden node's families, or a clear refusal."""
    hidden: dict[str, np.ndarray] = {}
    n = data.n_rows
    for name in graph.order:
        var = graph[name]
        if var.latent or not data.observed(name):
            mask = np.ones(n, dtype=bool)
        elif name in data.missing:
            mask = np.asarray(data.missing[name], dtype=bool)
            if not var.discrete and var.dim > 1:
                some = ~np.isnan(data.values[name]).all(axis=1) & mask
                if some.any():
                    raise DataError(f"gaussian node {var.decl!r}: some rows have part of its {var.dim} columns "
                                    f"missing (first row {int(np.flatnonzero(some)[0])}); learner={learner!r} "
                                    "samples whole vectors only: use learner='em', or fill or drop those cells")
        else:
            continue
        if mask.any():
            hidden[name] = mask
    fams = graph.families
    children = {v: [c for c in graph.order if v in graph[c].parents] for v in graph.order}
    dropped: dict[str, np.ndarray] = {}
    for name in reversed(graph.order):  # barren: hidden, and every child barren too (as pgm.infer.enumerate)
        if name not in hidden:
            continue
        d = hidden[name].copy()
        for c in children[name]:
            d &= dropped.get(c, np.zeros(n, dtype=bool))
        if d.any():
            dropped[name] = d
    for name, d in dropped.items():
        hidden[name] = hidden[name] & ~d
    hidden = {v: m for v, m in hidden.items() if m.any()}
    blanket = {v: tuple(f for f, fam in fams.items() if v in fam.members) for v in hidden}
    for v in hidden:
        var = graph[v]
        if var.discrete:
            continue
        if fams[v].kind != "linear":
            raise ModelError(f"hidden gaussian node {var.decl!r}: learner={learner!r} samples it from its gaussian "
                             "full conditional, which needs a linear-gaussian family")
        bad = [graph[f].decl for f in blanket[v] if f != v and fams[f].kind != "linear"]
        if bad:
            raise ModelError(f"hidden gaussian node {var.decl!r} has the non-gaussian child(ren) {bad[:5]}: its full "
                             f"conditional is then not gaussian, and learner={learner!r} samples hidden gaussian "
                             "nodes only from gaussian full conditionals; observe it, or use learner='em'")
    rows = {v: None if m.all() else np.flatnonzero(m) for v, m in hidden.items()}
    touched = tuple(f for f, fam in fams.items() if any(m in hidden or m in dropped for m in fam.members))
    return GibbsLayout(hidden, rows, blanket, touched, n, dropped)


def draw_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One state per row of unnormalised log-probabilities (n, k), by inverse CDF; a row whose
    every state has probability 0 gets -1 (the caller keeps its current state)."""
    top = logits.max(axis=1, keepdims=True)
    dead = ~np.isfinite(top[:, 0])
    p = np.exp(logits - np.where(np.isfinite(top), top, 0.0))
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    out = (u >= cdf).sum(axis=1).clip(0, logits.shape[1] - 1)
    out[dead] = -1
    return out


class Gibbs:
    """The current state of every row's chain: discrete ``codes`` (n,) and gaussian ``values`` (n, d)
    of every node, observed cells fixed from the data, hidden ones drawn."""

    def __init__(self, graph: Graph, layout: GibbsLayout, data: EncodedData, cpds: dict[str, CPD],
                 rng: np.random.Generator) -> None:
        self.graph, self.layout, self.data = graph, layout, data
        n = data.n_rows
        self.codes: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}
        fams = graph.families
        for name in graph.order:  # ancestral draw, observed cells clamped
            var = graph[name]
            store = self.codes if var.discrete else self.values
            if name in data.codes:
                store[name] = data.codes[name].copy()
            elif name in data.values:
                store[name] = data.values[name].copy()
            if name not in layout.hidden and name not in layout.dropped:
                continue
            fam = fams[name]
            draw = kind_of(fam).sample(fam, cpds[var.param], self.assign(), n, rng)
            if name not in store:
                store[name] = draw
            else:  # summed-out cells get a value too (never counted: see GibbsLayout.keep)
                rows = layout.hidden.get(name, np.zeros(n, dtype=bool)) | layout.dropped.get(name, False)
                store[name][rows] = draw[rows]
        # binary logistic families with a hidden discrete parent: their logits are kept per row and
        # moved by one weight column when a parent changes (a sigmoid belief network's Gibbs step)
        self.fast = tuple(f for f, fam in fams.items() if fam.kind == "logistic" and fam.var.n_states == 2
                          and any(p in layout.hidden for p in fam.disc))
        col = {f: j for j, f in enumerate(self.fast)}
        self.fast_parent: dict[str, tuple[np.ndarray, list[tuple[str, int]]]] = {}
        for v in layout.hidden:
            if not graph[v].discrete:
                continue
            found = [(f, fams[f].disc.index(v)) for f in self.fast if v in fams[f].disc]
            if found:
                self.fast_parent[v] = (np.array([col[f] for f, _ in found]), found)
        self.col = col
        self.logit: np.ndarray | None = None      # (n, F): logit of state 1 of each fast family
        self.seen: dict[str, Any] = {}            # the CPDs self.logit was computed with
        self.weights: dict[str, np.ndarray] = {}  # hidden parent -> (|families|, k) weight of each state

    def assign(self) -> dict[str, np.ndarray]:
        """Every node's current value for every row (the complete-data assignment of the learners)."""
        return {**self.codes, **self.values}

    def conditional(self, v: str, cpds: dict[str, CPD]) -> np.ndarray:
        """Unnormalised log full conditional of discrete hidden node ``v`` over its states for its
        hidden rows: (rows, k), the sum of the log-probabilities of the families that contain it."""
        graph = self.graph
        rows = self.layout.rows[v]
        k = graph[v].n_states
        fams = graph.families
        fast_fams = {f for f, _ in self.fast_parent[v][1]} if v in self.fast_parent else set()
        members = {m for f in self.layout.blanket[v] if f not in fast_fams for m in fams[f].members}
        assign: dict[str, np.ndarray] = {}
        for m in members:
            if m == v:
                assign[m] = np.arange(k)[None, :]
            elif m in self.codes:
                c = self.codes[m]
                assign[m] = (c if rows is None else c[rows])[:, None]
            else:
                x = self.values[m]
                assign[m] = x if rows is None else x[rows]
        n = self.data.n_rows if rows is None else len(rows)
        out = np.zeros((n, k))
        fast = ()
        if v in self.fast_parent:
            self._refresh(cpds)
            out += self._fast_terms(v)
            fast = tuple(f for f, _ in self.fast_parent[v][1])
        for f in self.layout.blanket[v]:
            if f in fast:
                continue
            lp = family_log_prob(fams[f], cpds[graph[f].param], assign, n)
            keep = self.layout.keep(f, rows)
            out += lp if keep is None else np.where(keep[:, None], lp, 0.0)
        return out

    def _refresh(self, cpds: dict[str, CPD]) -> None:
        """The fast families' logits from the current state (when their parameters changed)."""
        graph, fams = self.graph, self.graph.families
        keys = {graph[f].param for f in self.fast}
        if self.logit is not None and all(cpds[k] is self.seen.get(k) for k in keys):
            return
        n = self.data.n_rows
        assign = self.assign()
        self.logit = np.empty((n, len(self.fast)))
        for j, f in enumerate(self.fast):
            cpd = cpds[graph[f].param]
            phi = design(fams[f], assign, (n,))
            self.logit[:, j] = cpd.intercept[1] - cpd.intercept[0] + phi @ (cpd.coef[1] - cpd.coef[0])
        for v, (_, found) in self.fast_parent.items():
            k = graph[v].n_states
            w = np.zeros((len(found), k))
            for i, (f, pos) in enumerate(found):
                cpd = cpds[graph[f].param]
                at = sum(c - 1 for c in fams[f].cards[:pos])
                w[i, 1:] = (cpd.coef[1] - cpd.coef[0])[at:at + k - 1]
            self.weights[v] = w
        self.seen = {k: cpds[k] for k in keys}

    def _fast_terms(self, v: str) -> np.ndarray:
        """Σ over v's fast child families of log p(child | parents) for each state of v: (rows, k)."""
        idx, found = self.fast_parent[v]
        rows = self.layout.rows[v]
        w = self.weights[v]                                     # (m, k)
        logit = self.logit[:, idx] if rows is None else self.logit[np.ix_(rows, idx)]
        cur = self.codes[v] if rows is None else self.codes[v][rows]
        base = logit - w[:, cur].T                               # without v's own term
        sign = np.stack([2.0 * (self.codes[f] if rows is None else self.codes[f][rows]) - 1.0
                         for f, _ in found], axis=1)             # (rows, m)
        lp = log_expit(sign[:, :, None] * (base[:, :, None] + w[None, :, :]))   # (rows, m, k)
        for i, (f, _) in enumerate(found):
            keep = self.layout.keep(f, rows)
            if keep is not None:
                lp[:, i, :] *= keep[:, None]
        return lp.sum(axis=1)

    def sweep(self, cpds: dict[str, CPD], rng: np.random.Generator) -> None:
        """Redraw every hidden node once from its full conditional (topological order)."""
        if self.fast:
            self._refresh(cpds)
        for v in self.graph.order:
            if v not in self.layout.hidden:
                continue
            rows = self.layout.rows[v]
            if self.graph[v].discrete:
                draw = draw_categorical(self.conditional(v, cpds), rng)
                cur = self.codes[v] if rows is None else self.codes[v][rows]
                draw = np.where(draw < 0, cur, draw)
                if v in self.fast_parent:  # move the logits of its fast child families
                    idx, _ = self.fast_parent[v]
                    w = self.weights[v]
                    delta = (w[:, draw] - w[:, cur]).T
                    if rows is None:
                        self.logit[:, idx] += delta
                    else:
                        self.logit[np.ix_(rows, idx)] += delta
                if rows is None:
                    self.codes[v] = draw
                else:
                    self.codes[v][rows] = draw
            else:
                mean, chol = self.gaussian_conditional(v, cpds)
                z = rng.standard_normal(mean.shape)
                # x = mean + L^-T z has covariance (L L^T)^-1 = Lambda^-1
                draw = mean + np.linalg.solve(np.swapaxes(chol, 1, 2), z[:, :, None])[:, :, 0]
                if rows is None:
                    self.values[v] = draw
                else:
                    self.values[v][rows] = draw

    def gaussian_conditional(self, v: str, cpds: dict[str, CPD]) -> tuple[np.ndarray, np.ndarray]:
        """Mean (rows, d) and Cholesky factor (rows, d, d) of the precision of the gaussian full
        conditional of hidden gaussian node ``v``: its own linear family and each linear child
        ``c = b + W_v v + W_rest x_rest + noise`` (noise ~ N(0, Σ_c)) multiply to a gaussian."""
        graph = self.graph
        fams = graph.families
        rows = self.layout.rows[v]
        take = (lambda a: a) if rows is None else (lambda a: a[rows])
        assign = {m: take(a) for m, a in self.assign().items()}
        n = self.data.n_rows if rows is None else len(rows)
        d = graph[v].dim
        fam = fams[v]
        cpd = cpds[graph[v].param]
        cfg = configs(fam, assign)
        mu = np.broadcast_to(cpd.mean(continuous(fam, assign), cfg), (n, d))
        u = np.broadcast_to(cpd.prec_chol[cfg], (n, d, d))
        prec = np.einsum("nij,nkj->nik", u, u)                       # Σ⁻¹ per row
        eta = np.einsum("nij,nj->ni", prec, mu)
        for f in self.layout.blanket[v]:
            if f == v:
                continue
            cf = fams[f]
            ccpd = cpds[graph[f].param]
            at = 0
            for p in cf.cont:
                if p == v:
                    break
                at += graph[p].dim
            ccfg = configs(cf, assign)
            w = np.broadcast_to(ccpd.coef[ccfg], (n,) + ccpd.coef.shape[1:])   # (n, d_c, p_c)
            wv = w[:, :, at:at + d]
            x = continuous(cf, assign).copy()
            x[:, at:at + d] = 0.0
            resid = assign[f] - np.broadcast_to(ccpd.mean(x, ccfg), assign[f].shape)
            uc = np.broadcast_to(ccpd.prec_chol[ccfg], (n,) + ccpd.prec_chol.shape[1:])
            pc = np.einsum("nij,nkj->nik", uc, uc)
            keep = self.layout.keep(f, rows)
            if keep is not None:  # a child summed out in a row says nothing about v there
                pc = pc * keep[:, None, None]
            wp = np.einsum("nci,ncd->nid", wv, pc)                   # W_vᵀ Σ_c⁻¹
            prec = prec + np.einsum("nic,ncj->nij", wp, wv)
            eta = eta + np.einsum("nic,nc->ni", wp, resid)
        chol = np.linalg.cholesky(prec)
        mean = np.linalg.solve(prec, eta[:, :, None])[:, :, 0]
        return mean, chol


def complete_log_prob(graph: Graph, cpds: dict[str, CPD], assign: dict[str, Any], n_rows: int,
                      families: tuple[str, ...], weights: np.ndarray | None = None,
                      layout: GibbsLayout | None = None) -> float:
    """Σ_rows w Σ_f log p_f of a complete assignment over the named families (without the rows
    where ``layout`` sums a family's child out)."""
    total = 0.0
    fams = graph.families
    for f in families:
        lp = family_log_prob(fams[f], cpds[graph[f].param], assign, n_rows)
        if layout is not None and layout.keep(f) is not None:
            lp = np.where(layout.keep(f), lp, 0.0)
        total += float(lp.sum() if weights is None else weights @ lp)
    return total
