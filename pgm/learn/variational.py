r"""Variational EM with a fully factorised (mean-field) posterior over hidden discrete cells.

Every row's log-likelihood is bounded below by the evidence lower bound (ELBO)

    log p(x) >= E_q[log p(x, z)] + H(q),     q(z) = prod_i q_i(z_i)   (one categorical per hidden cell)

with equality when the posterior factorises.  Variational EM (Jordan et al. 1999; Koller &
Friedman 19.2; Bishop 10) raises the bound by coordinate ascent:

* E-step: sweeps over the hidden nodes; each ``q_i`` (rows x states) is set to
  ``softmax(sum over the families f containing i of E_{q_-i}[log p_f])``, which maximises the
  bound in ``q_i`` with the others fixed.  A family whose hidden members have few joint states
  (at most :data:`SCOPE_LIMIT`: tables, gaussian children of discrete hidden parents, any kind)
  has its log-probability evaluated as a per-row table over those states (the kind-agnostic
  ``family_log_prob``), and its expectations are exact contractions with the ``q``'s.  A binary
  ``cpd: logistic`` node with more hidden parents uses the Jaakkola-Jordan (2000) bound
  ``log sigma(t) >= log sigma(xi) + (t - xi) / 2 - lambda(xi) (t^2 - xi^2)``,
  ``lambda(xi) = tanh(xi / 2) / (4 xi)``, with one ``xi`` per row and node (set to its optimum
  ``sqrt(E[t^2])`` before and after each sweep), which is quadratic in the logit, so that its
  expectation under the product of ``q``'s needs only the means and variances of the parents'
  indicators: the bound stays a true lower bound (as for sigmoid belief networks, Saul, Jaakkola
  & Jordan 1996).  All updates are matrix products over rows; the Python loop is over nodes.
* M-step: the families evaluated exactly go through the same ``from_stats`` as EM, weighted by
  the product of their hidden members' ``q``'s; a bounded logistic family maximises the bound,
  a quadratic in its weights, in closed form (one linear solve, its L2 ``penalty`` included).

``q`` is carried from one iteration to the next, so every step raises the same objective: the
ELBO (plus the tables' log-prior and minus the logistic penalties, as EM's history) recorded in
``history`` never decreases.  Missing discrete cells are hidden cells like latent nodes (their
``q`` is one-hot where observed); gaussian nodes must be observed.
"""

from __future__ import annotations

import math
import string
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import networkx as nx
import numpy as np
from scipy import linalg
from scipy.special import log_expit

from pgm.cpd.family import CPD, Family, Stats, family_log_prob, family_stats
from pgm.cpd.logistic import LogisticCPD
from pgm.encode import EncodedData
from pgm.errors import ConvergenceWarning, DataError, ModelError
from pgm.graph import Graph
from pgm.infer.elimination import TooWideError, build_clique_tree
from pgm.infer.enumerate import ENUMERATE_LIMIT, listing_cost, make_plan, tree_cost
from pgm.learn.em import MAX_ITER, REG_COVAR, TOL, EMResult, _log_prior, best_of_starts
from pgm.learn.mle import fit_from_stats, fit_options
from pgm.learn.start import check_start, marginal_stats, random_start
from pgm.learn.stats import pool_stats

#: A family whose hidden members have at most this many joint states is evaluated exactly
#: (a per-row table over them); a binary logistic family beyond it uses the Jaakkola-Jordan bound.
SCOPE_LIMIT = 1024
#: Coordinate-ascent sweeps over the hidden nodes per E-step (and the most for :func:`elbo`).
E_SWEEPS = 3
#: An E-step stops early when no q moves by more than this in a sweep.
E_TOL = 1e-6
ELBO_SWEEPS = 500
#: Starts of :func:`elbo`'s coordinate ascent (uniform, then random); each row keeps its best.
ELBO_STARTS = 3
#: Inverse temperatures of :func:`elbo`'s first sweeps (deterministic annealing of the start).
ANNEAL = tuple(np.linspace(0.02, 1.0, 60))
#: When no learner is named, a model whose exact E-step is estimated above this many cost units
#: per iteration (:func:`pgm.infer.enumerate.tree_cost`'s units, roughly a few nanoseconds each) or
#: beyond the clique tree's memory limits is fitted with learner="variational".
EXACT_COST_BUDGET = 1e10
#: Floor of log-probabilities in expectations (a state of probability 0 gets q = 0, not NaN).
LOG_FLOOR = -1e30


@dataclass
class Layout:
    """Which cells are hidden, and how each family enters the bound (depends on the data only)."""

    hidden: dict[str, np.ndarray]                  # discrete node -> (n,) bool: hidden in that row
    exact: dict[str, tuple[str, ...]]              # family -> its hidden members (evaluated as tables)
    bounded: tuple[str, ...]                       # binary logistic families under the JJ bound
    assign: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # exact family -> its assignment grid


def _hidden_cells(graph: Graph, data: EncodedData) -> dict[str, np.ndarray]:
    out = {}
    for name in graph.order:
        var = graph[name]
        if var.latent or not data.observed(name):
            mask = np.ones(data.n_rows, dtype=bool)
        elif name in data.missing:
            mask = np.asarray(data.missing[name], dtype=bool)
        else:
            continue
        if not mask.any():
            continue
        if not var.discrete and var.latent:
            raise ModelError(f"latent gaussian node {var.decl!r}: learner='variational' handles hidden discrete nodes "
                             "only; use learner='em' (exact gaussian inference)")
        if not var.discrete:
            raise DataError(f"gaussian node {var.decl!r} is hidden (latent or missing cells); learner='variational' "
                            "handles hidden discrete nodes only: use learner='em', or fill those cells")
        out[name] = mask
    return out


def make_layout(graph: Graph, data: EncodedData) -> Layout:
    """The layout of ``data``: hidden cells, and each family's treatment (exact table or bound)."""
    hidden = _hidden_cells(graph, data)
    exact: dict[str, tuple[str, ...]] = {}
    bounded = []
    for f, fam in graph.families.items():
        members = tuple(m for m in fam.members if m in hidden)
        size = math.prod(graph[m].n_states for m in members)
        if size <= SCOPE_LIMIT:
            exact[f] = members
        elif fam.kind == "logistic" and fam.var.n_states == 2:
            bounded.append(f)
        else:
            raise ModelError(f"{fam.var.decl}: its hidden members {[graph[m].decl for m in members][:8]} have "
                             f"{size:.3g} joint states, more than learner='variational' evaluates per row "
                             f"({SCOPE_LIMIT}); a binary node with many hidden parents can be `cpd: logistic` "
                             "(bounded), or give it fewer hidden parents")
    for key, members in graph.params.items():
        kinds = {m in bounded for m in members}
        if len(kinds) > 1:
            raise ModelError(f"{key}: its tied nodes {list(members)} have different numbers of hidden parents; "
                             "learner='variational' needs them all bounded or all exact")
    layout = Layout(hidden, exact, tuple(bounded))
    for f, members in exact.items():
        layout.assign[f] = _grid(graph, graph.families[f], members, data)
    return layout


def _grid(graph: Graph, fam: Family, members: tuple[str, ...], data: EncodedData) -> dict[str, np.ndarray]:
    """Assignment of a family: its hidden members over their joint states (axis 1), the rest from data."""
    cards = [graph[m].n_states for m in members]
    joint = np.indices(cards).reshape(len(cards), -1) if members else np.zeros((0, 1), dtype=np.int64)
    assign: dict[str, np.ndarray] = {}
    for m in fam.members:
        if m in members:
            assign[m] = joint[members.index(m)][None, :]
        elif m in data.codes:
            assign[m] = data.codes[m][:, None]
        else:
            assign[m] = data.values[m]
    return assign


class _State:
    """q of every hidden node, and the bounded families' running sums, for one set of parameters."""

    def __init__(self, graph: Graph, layout: Layout, data: EncodedData, q: dict[str, np.ndarray] | None,
                 rng: np.random.Generator | None) -> None:
        self.graph, self.layout, self.data = graph, layout, data
        n = data.n_rows
        self.w = np.ones(n) if data.weights is None else data.weights
        self.q: dict[str, np.ndarray] = {}
        for v, mask in layout.hidden.items():
            k = graph[v].n_states
            if q is not None and v in q:
                self.q[v] = q[v]
                continue
            qv = np.full((n, k), 1.0 / k) if rng is None else rng.dirichlet(np.ones(k) * 5.0, size=n)
            if not mask.all():  # observed cells: one-hot
                codes = data.codes[v]
                qv[~mask] = 0.0
                qv[np.flatnonzero(~mask), codes[~mask]] = 1.0
            self.q[v] = qv
        self.onehot: dict[str, np.ndarray] = {}

    def dist(self, v: str) -> np.ndarray:
        """q of a hidden node, or the one-hot of an observed one."""
        if v in self.q:
            return self.q[v]
        if v not in self.onehot:
            k = self.graph[v].n_states
            self.onehot[v] = np.eye(k)[self.data.codes[v]]
        return self.onehot[v]


def _contract(table: np.ndarray, qs: list[np.ndarray], skip: int | None = None) -> np.ndarray:
    """sum over joint states of table[n, s1..sm] * prod_{j != skip} q_j[n, s_j]: (n,) or (n, k_skip)."""
    letters = string.ascii_letters[1:len(qs) + 1]
    ops = [table] + [q for j, q in enumerate(qs) if j != skip]
    subs = ["a" + letters] + ["a" + letters[j] for j in range(len(qs)) if j != skip]
    out = "a" + (letters[skip] if skip is not None else "")
    return np.einsum(",".join(subs) + "->" + out, *ops, optimize=True)


class _Bound:
    """The Jaakkola-Jordan bound of the binary logistic families with many hidden parents, stacked:
    column j of every (n, F) array is family ``names[j]``."""

    def __init__(self, graph: Graph, names: tuple[str, ...], cpds: dict[str, CPD], st: _State) -> None:
        self.names = names
        fams = [graph.families[f] for f in names]
        n = st.data.n_rows
        self.b = np.array([cpds[graph[f].param].intercept[1] for f in names])
        # per discrete parent: the families it feeds, and their weight blocks (|F_p|, k_p - 1)
        self.blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        cols: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.cont = np.zeros((n, len(names)))
        for j, (f, fam) in enumerate(zip(names, fams)):
            coef = cpds[graph[f].param].coef[1]
            at = 0
            for p, k in zip(fam.disc, fam.cards):
                cols.setdefault(p, []).append((j, coef[at:at + k - 1]))
                at += k - 1
            for p in fam.cont:
                d = graph[p].dim
                self.cont[:, j] = st.data.values[p] @ coef[at:at + d]
                at += d
        for p, items in cols.items():
            idx = np.array([j for j, _ in items])
            if np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):  # a slice: views, not copies
                idx = slice(int(idx[0]), int(idx[0]) + len(idx))
            self.blocks[p] = (idx, np.array([c for _, c in items]))
        self.child = {f: j for j, f in enumerate(names)}
        self.refresh(st)

    def refresh(self, st: _State) -> None:
        """Means and variances of the logits from the current q, and the optimal xi."""
        n = st.data.n_rows
        mean = np.broadcast_to(self.b, (n, len(self.names))) + self.cont
        var = np.zeros_like(mean)
        for p, (idx, wp) in self.blocks.items():
            qp = st.dist(p)[:, 1:]
            m = qp @ wp.T
            mean[:, idx] += m  # a node is a parent of a family once: idx has no repeats
            if p in st.q:
                v = qp @ (wp ** 2).T - m ** 2
                var[:, idx] += v
        self.mean, self.var = mean, np.maximum(var, 0.0)
        self.sbar = np.stack([2.0 * st.dist(f)[:, 1] - 1.0 for f in self.names], axis=1)
        xi = np.sqrt(self.mean ** 2 + self.var)
        self.xi = xi
        with np.errstate(invalid="ignore", divide="ignore"):
            self.lam = np.where(xi > 1e-6, np.tanh(xi / 2) / (4 * np.where(xi > 1e-6, xi, 1.0)), 0.125)

    def value(self) -> np.ndarray:
        """The bound per row (summed over the families) at the current xi."""
        second = self.mean ** 2 + self.var
        terms = (log_expit(self.xi) + (self.sbar * self.mean - self.xi) / 2 - self.lam * (second - self.xi ** 2))
        return terms.sum(axis=1)

    def parent_logits(self, p: str, qp: np.ndarray) -> np.ndarray:
        """The bound's contribution to log q_p (n, k), with the other parents' q fixed."""
        idx, wp = self.blocks[p]
        m = qp[:, 1:] @ wp.T                          # (n, |F_p|): this parent's part of the mean
        rest = self.mean[:, idx] - m
        lam, sbar = self.lam[:, idx], self.sbar[:, idx]
        out = np.zeros((len(qp), qp.shape[1]))
        out[:, 1:] = (sbar / 2) @ wp - 2 * (lam * rest) @ wp - lam @ (wp ** 2)
        return out

    def parent_update(self, p: str, old: np.ndarray, new: np.ndarray, hidden_parent: bool) -> None:
        """Move the logits' means and variances after q_p changed from ``old`` to ``new``."""
        idx, wp = self.blocks[p]
        d = new[:, 1:] - old[:, 1:]
        self.mean[:, idx] += d @ wp.T
        if not hidden_parent:
            return
        if d.shape[1] == 1:  # binary: the variance of the indicator is q (1 - q)
            self.var[:, idx] += (new[:, 1:] * new[:, :1] - old[:, 1:] * old[:, :1]) @ (wp ** 2).T
        else:
            mo, mn = old[:, 1:] @ wp.T, new[:, 1:] @ wp.T
            self.var[:, idx] += d @ (wp ** 2).T - mn ** 2 + mo ** 2


def _sweep_order(graph: Graph, layout: Layout) -> list[tuple[str, list[tuple[str, int]]]]:
    """Each hidden node with the exact families it belongs to (and its position among their hidden members)."""
    out = []
    for v in graph.order:
        if v not in layout.hidden:
            continue
        fams = [(f, members.index(v)) for f, members in layout.exact.items() if v in members]
        out.append((v, fams))
    return out


def _tables(graph: Graph, layout: Layout, cpds: dict[str, CPD], data: EncodedData) -> dict[str, np.ndarray]:
    """log p of each exact family per row over its hidden members' joint states: (n, k1, ..., km)."""
    out = {}
    n = data.n_rows
    for f, members in layout.exact.items():
        lp = family_log_prob(graph.families[f], cpds[graph[f].param], layout.assign[f], n)
        lp = np.broadcast_to(lp, (n, lp.shape[1] if lp.ndim > 1 else 1))
        out[f] = np.maximum(lp.reshape((n,) + tuple(graph[m].n_states for m in members)), LOG_FLOOR)
    return out


def _elbo(st: _State, tables: dict[str, np.ndarray], bound: _Bound | None, per_row: bool = False) -> Any:
    rows = np.zeros(st.data.n_rows)
    for f, members in st.layout.exact.items():
        rows += _contract(tables[f], [st.q[m] for m in members]) if members else tables[f].reshape(-1)
    if bound is not None:
        rows += bound.value()
    for v, qv in st.q.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            rows -= np.where(qv > 0, qv * np.log(qv), 0.0).sum(axis=1)
    return rows if per_row else float(st.w @ rows)


def _e_step(st: _State, tables: dict[str, np.ndarray], bound: _Bound | None, order, sweeps: int,
            tol: float = 0.0, anneal: tuple[float, ...] = ()) -> None:
    """Coordinate ascent on the q's (and xi) for fixed parameters; ``anneal`` gives inverse
    temperatures for the first sweeps (q proportional to exp(beta * logits): not ascent steps, a start)."""
    for sweep in range(sweeps):
        beta = anneal[sweep] if sweep < len(anneal) else 1.0
        change = 0.0
        for v, fams in order:
            old = st.q[v]
            logits = np.zeros_like(old)
            for f, pos in fams:
                members = st.layout.exact[f]
                logits += _contract(tables[f], [st.q[m] for m in members], skip=pos)
            if bound is not None:
                if v in bound.blocks:
                    logits += bound.parent_logits(v, old)
                if v in bound.child:
                    j = bound.child[v]
                    logits[:, 1] += bound.mean[:, j] / 2
                    logits[:, 0] -= bound.mean[:, j] / 2
            if beta != 1.0:
                logits = logits * beta
            new = np.exp(logits - logits.max(axis=1, keepdims=True))
            new /= new.sum(axis=1, keepdims=True)
            mask = st.layout.hidden[v]
            if not mask.all():
                new = np.where(mask[:, None], new, old)
            st.q[v] = new
            if bound is not None:
                if v in bound.blocks:
                    bound.parent_update(v, old, new, True)
                if v in bound.child:
                    bound.sbar[:, bound.child[v]] = 2.0 * new[:, 1] - 1.0
            change = max(change, float(np.max(np.abs(new - old))) if new.size else 0.0)
        if bound is not None:
            bound.refresh(st)
        if change <= tol and sweep >= len(anneal):
            break


def _m_step(graph: Graph, st: _State, bound: _Bound | None, cpds: dict[str, CPD],
            options: dict[str, dict[str, Any]]) -> dict[str, CPD]:
    """Expected statistics of the exact families through ``from_stats``; bounded families in closed form."""
    n = st.data.n_rows
    parts = []
    for f, members in st.layout.exact.items():
        if members:
            weight = st.q[members[0]]
            for m in members[1:]:
                weight = (weight[:, :, None] * st.q[m][:, None, :]).reshape(n, -1)
            weight = weight * st.w[:, None]
        else:
            weight = st.w[:, None]
        parts.append((f, family_stats(graph.families[f], st.layout.assign[f], n, weight)))
    stats = pool_stats(graph, parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = fit_from_stats(graph, stats, init=cpds, warn_unseen=False, options=options) if stats else {}
    if bound is not None:
        out.update(_bounded_m_step(graph, st, bound, options))
    return {key: out.get(key, cpds[key]) for key in graph.params}


def _bounded_m_step(graph: Graph, st: _State, bound: _Bound, options: dict[str, dict[str, Any]]) -> dict[str, CPD]:
    """Maximise sum_rows sbar/2 E[a] - lambda E[a^2] over (intercept, coef): (2A + penalty) theta = b.

    ``A = sum_n lambda_n E[phi phi^T]``: families with the same parents share ``phi`` (the parents'
    expected indicators), so their ``A``'s come from one matrix product over rows; a hidden
    parent adds ``diag(q) - q q^T`` on its own block (its indicators are exclusive)."""
    A: dict[str, np.ndarray] = {}
    B: dict[str, np.ndarray] = {}
    n = st.data.n_rows
    groups: dict[tuple, list[int]] = {}
    for j, f in enumerate(bound.names):
        fam = graph.families[f]
        groups.setdefault((fam.disc, fam.cont), []).append(j)
    for (disc, cont), cols in groups.items():
        fam = graph.families[bound.names[cols[0]]]
        blocks = [np.ones((n, 1))]
        hidden = []
        at = 1
        for p, k in zip(fam.disc, fam.cards):
            qp = st.dist(p)[:, 1:]
            blocks.append(qp)
            if p in st.q:
                hidden.append((at, qp))
            at += k - 1
        blocks.extend(st.data.values[p] for p in fam.cont)
        phi = np.hstack(blocks)                                   # (n, Q1)
        q1 = phi.shape[1]
        lam = bound.lam[:, cols] * st.w[:, None]                  # (n, F)
        half = bound.sbar[:, cols] * st.w[:, None] / 2
        a = np.zeros((q1 * q1, len(cols)))
        step = max(1, 2**22 // max(q1 * q1, 1))
        for r in range(0, n, step):  # sum_n lambda_nf phi_n phi_n^T for every f: one product per chunk
            ph = phi[r:r + step]
            a += (ph[:, :, None] * ph[:, None, :]).reshape(len(ph), -1).T @ lam[r:r + step]
        a = a.T.reshape(len(cols), q1, q1)
        binary = [(at, qp) for at, qp in hidden if qp.shape[1] == 1]
        if binary:
            pos = np.array([at for at, _ in binary])
            v = np.hstack([qp for _, qp in binary])               # (n, n_binary)
            a[:, pos, pos] += ((v * (1 - v)).T @ lam).T
        for at, qp in hidden:
            k1 = qp.shape[1]
            if k1 == 1:
                continue
            a[:, at:at + k1, at:at + k1] += (np.einsum("nf,nk->fk", lam, qp)[:, :, None] * np.eye(k1)
                                             - np.einsum("nf,nk,nl->fkl", lam, qp, qp))
        b = (phi.T @ half).T                                      # (F, Q1)
        for i, j in enumerate(cols):
            key = graph[bound.names[j]].param
            A[key] = a[i] if key not in A else A[key] + a[i]
            B[key] = b[i] if key not in B else B[key] + b[i]
    out: dict[str, CPD] = {}
    for key, a in A.items():
        pen = float(options[key].get("penalty") or 0.0)
        m = 2 * a + np.diag(np.r_[0.0, np.full(len(a) - 1, pen)]) + 1e-10 * np.eye(len(a))
        try:
            theta = linalg.solve(m, B[key], assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            theta = np.linalg.lstsq(m, B[key], rcond=None)[0]
        q = len(theta) - 1
        out[key] = LogisticCPD(np.array([0.0, theta[0]]), np.vstack([np.zeros(q), theta[1:]]))
    return out


def _penalties(graph: Graph, cpds: dict[str, CPD], options: dict[str, dict[str, Any]], bounded: tuple[str, ...]) -> float:
    keys = {graph[f].param for f in bounded}
    return sum(0.5 * float(options[k].get("penalty") or 0.0) * float(np.sum(cpds[k].coef ** 2)) for k in keys)


#: A variational fit gives what an EM fit gives (its history is the ELBO).
VariationalResult = EMResult


def fit_variational(graph: Graph, data: EncodedData, *, max_iter: int = MAX_ITER, tol: float = TOL, n_init: int = 1,
                    seed: int | None = 0, init: Any = "auto", prior: dict | None = None, reg_covar: float = REG_COVAR,
                    penalty: float | None = None, callback: Callable[[int, float], None] | None = None,
                    trace: Callable[[int, float, dict[str, CPD]], None] | None = None) -> VariationalResult:
    """Variational EM (mean-field) from ``n_init`` starts; keeps the run with the highest ELBO.

    ``history[i]`` is the ELBO (plus the tables' log-prior, minus logistic penalties) of the
    parameters after ``i`` updates, each with its optimised q; it never decreases.  ``trace``
    (tests, benchmarks) is called as ``trace(i, elbo, cpds)``."""
    layout = make_layout(graph, data)
    options = fit_options(graph, prior, reg_covar, penalty)
    opts = {"prior": prior, "reg_covar": reg_covar, "penalty": penalty}
    given = None if isinstance(init, str) else check_start(graph, init)
    order = _sweep_order(graph, layout)
    const = {}
    if given is None:
        assign = {**data.codes, **data.values}
        fams = graph.families
        complete = [(f, family_stats(fams[f], assign, data.n_rows, data.weights)) for f, members in layout.exact.items()
                    if not members and all(m in assign for m in fams[f].members)]
        const = pool_stats(graph, complete)
        names = tuple(n for n in graph.order if not graph[n].discrete)
        marginals = marginal_stats(SimpleNamespace(data=data), names).stats if names else {}

    def one_run(run_seed: int, rng: np.random.Generator) -> VariationalResult:
        start = dict(given) if given is not None else random_start(graph, const, marginals, rng, **opts)
        st = _State(graph, layout, data, None, rng)
        bounds: list[_Bound | None] = [None]  # the E-step's logistic bounds, which the M-step uses

        def e_step(cpds: dict[str, CPD]) -> float:
            tables = _tables(graph, layout, cpds, data)
            bounds[0] = bound = _Bound(graph, layout.bounded, cpds, st) if layout.bounded else None
            _e_step(st, tables, bound, order, E_SWEEPS, E_TOL)
            return (_elbo(st, tables, bound) + _log_prior(graph, cpds, options)
                    - _penalties(graph, cpds, options, layout.bounded))

        cpds, history, converged = ascend(start, e_step, lambda c: _m_step(graph, st, bounds[0], c, options),
                                          max_iter=max_iter, tol=tol, callback=callback, trace=trace)
        return VariationalResult(cpds, history, converged, len(history) - 1, run_seed)

    return best_of_starts(n_init, seed, one_run)


def ascend(cpds: dict[str, CPD], e_step: Callable[[dict[str, CPD]], float],
           m_step: Callable[[dict[str, CPD]], dict[str, CPD]], *, max_iter: int, tol: float,
           callback: Callable[[int, float], None] | None = None,
           trace: Callable[[int, float, dict[str, CPD]], None] | None = None,
           ) -> tuple[dict[str, CPD], list[float], bool]:
    """Variational EM's coordinate ascent on the bound: ``e_step(cpds)`` fits q and returns the bound
    (plus log-prior, minus penalties) at ``cpds``; ``m_step(cpds)`` the parameters that maximise it
    given that q.  Stops when the bound changes by at most ``tol * |bound|`` or after ``max_iter``
    updates.  Returns the last parameters evaluated, the bound after each update (``history[0]`` the
    start) and whether it converged."""
    history: list[float] = []
    for it in range(max_iter + 1):
        value = e_step(cpds)
        if not np.isfinite(value):
            raise DataError("the variational bound is -inf: some row has probability 0 under every state the "
                            "variational q allows; check the data against the model's states")
        history.append(value)
        if callback is not None:
            callback(it, value)
        if trace is not None:
            trace(it, value, cpds)
        if it and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
            return cpds, history, True
        if it == max_iter:
            break
        cpds = m_step(cpds)
    return cpds, history, False


def elbo(graph: Graph, cpds: dict[str, CPD], data: EncodedData, *, starts: int = ELBO_STARTS,
         tol: float = 1e-10) -> float:
    """The mean-field ELBO of ``data`` under fixed parameters: a lower bound on ``log p(data)``.

    Each row's q is optimised by coordinate ascent (until no q moves by more than ``tol``, at most
    :data:`ELBO_SWEEPS` sweeps) from a uniform start and ``starts - 1`` random ones (fixed seed);
    rows are independent given the parameters, so each row keeps its best start."""
    layout = make_layout(graph, data)
    tables = _tables(graph, layout, cpds, data)
    order = _sweep_order(graph, layout)
    best = None
    for k in range(max(1, starts)):
        st = _State(graph, layout, data, None, None if k == 0 else np.random.default_rng(k))
        bound = _Bound(graph, layout.bounded, cpds, st) if layout.bounded else None
        _e_step(st, tables, bound, order, ELBO_SWEEPS, tol, ANNEAL)
        rows = _elbo(st, tables, bound, per_row=True)
        best = rows if best is None else np.maximum(best, rows)
    w = np.ones(data.n_rows) if data.weights is None else data.weights
    return float(w @ best)


@dataclass
class ExactEstimate:
    """What exact inference (EM's E-step) would need on some rows: the widest hidden component."""

    cost: float                 # per EM iteration, in pgm.infer.enumerate's cost units
    row_bytes: float            # float64 tables of one row of the widest component (listing or clique tree)
    states: float               # joint states of the widest component
    nodes: tuple[str, ...]      # its nodes
    feasible: bool              # within the clique tree's limits (MAX_TABLE_ENTRIES, MAX_TOTAL_ENTRIES)

    @property
    def over_budget(self) -> bool:
        return not self.feasible or self.cost > EXACT_COST_BUDGET

    def describe(self) -> str:
        """E.g. ``~8.8e+03 GB per row (40 hidden nodes with 1.1e+12 joint states)``."""
        gb = self.row_bytes / 2**30
        size = f"~{gb:.2g} GB per row" if gb >= 0.01 else f"~{self.row_bytes / 2**20:.2g} MB per row"
        return (f"{size} and ~{self.cost:.2g} operations per iteration ({len(self.nodes)} hidden nodes "
                f"connected through each other, {self.states:.3g} joint states)")


def exact_estimate(graph: Graph, data: EncodedData) -> ExactEstimate | None:
    """Estimated cost of exact inference over the hidden discrete nodes of ``data`` (None without
    any): components of the moral graph over the nodes hidden in some row, each listed or put
    through a clique tree as :mod:`pgm.infer.enumerate` would (its :func:`listing_cost` and
    :func:`tree_cost`); a component beyond the tree's limits is estimated with the same tree built
    without limits.  Conservative: it treats a node hidden in any row as hidden in every row."""
    hidden = [n for n in graph.order if graph[n].discrete and (graph[n].latent or not data.observed(n)
                                                               or n in data.missing)]
    if not hidden:
        return None
    moral = graph.moral_graph().subgraph(hidden)
    n = data.n_rows
    total, widest, every = 0.0, None, True
    for comp in nx.connected_components(moral):
        vars_ = tuple(v for v in graph.order if v in comp)
        cards = {v: graph[v].n_states for v in vars_}
        size = float(math.prod(cards.values()))
        fams = [f for f, fam in graph.families.items() if any(m in comp for m in fam.members)]
        scopes = list(dict.fromkeys(tuple(m for m in graph.families[f].members if m in comp) for f in fams))
        kinds = [graph.families[f].kind for f in fams]
        feasible = True
        if size <= ENUMERATE_LIMIT:
            cost, row = listing_cost(n, int(size), kinds), size * 8.0 * 2
        else:
            try:
                tree = build_clique_tree(scopes, cards)
            except TooWideError:
                feasible = False
                tree = build_clique_tree(scopes, cards, max_table=2**400, max_total=2**400)
            sizes = [math.prod(cards[m] for m in s) for s in scopes]
            cost = tree_cost(n, tree, sizes)
            row = 8.0 * (3 * float(tree.total_entries) + float(sum(sizes)))
        total += cost
        every = every and feasible
        here = ExactEstimate(cost, row, size, vars_, feasible)
        if widest is None or (row, not feasible) > (widest.row_bytes, not widest.feasible):
            widest = here
    assert widest is not None
    first = ExactEstimate(total, widest.row_bytes, widest.states, widest.nodes, every)
    if not first.over_budget or not data.missing:
        return first
    return _planned(graph, data, first)


def _planned(graph: Graph, data: EncodedData, first: ExactEstimate) -> ExactEstimate:
    """The estimate from EM's own plan, where missing cells make the union estimate too coarse
    (cells missing in different rows join components that no row holds): the components of each
    row's hidden cells, as :func:`pgm.infer.enumerate.make_plan` groups them."""
    try:
        plan = make_plan(graph, graph.families, data)
    except TooWideError:
        return first
    except ModelError:
        return first
    total, widest = 0.0, (0.0, 0.0, ())
    for group in plan.groups:
        cards = {v: graph[v].n_states for v in group.variables}
        size = float(math.prod(cards.values()))
        if group.tree is None:
            cost = listing_cost(len(group.rows), int(size), [graph.families[f].kind for f in group.families])
            row = size * 8.0 * 2
        else:
            scopes = list(dict.fromkeys(tuple(m for m in graph.families[f].members if m in cards)
                                        for f in group.families))
            sizes = [math.prod(cards[m] for m in sc) for sc in scopes]
            cost = tree_cost(len(group.rows), group.tree, sizes)
            row = 8.0 * (3 * float(group.tree.total_entries) + float(sum(sizes)))
        total += cost
        if row > widest[0]:
            widest = (row, size, group.variables)
    return ExactEstimate(total, widest[0], widest[1], widest[2], True)
