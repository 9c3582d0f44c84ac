"""Maximum-likelihood learning of undirected log-linear models.

The model is ``p(x; theta) = exp(theta . f(x)) / Z(theta)``, with ``f`` the stacked
features of every clique and node (see :mod:`pgm.features`).  Its mean log-likelihood
on rows ``x_1..x_N`` is

    L(theta) = theta . E_data[f] - log Z(theta),

concave in ``theta``, with gradient

    dL/dtheta = E_data[f] - E_model[f]          (empirical minus model expectations)

because ``d log Z / d theta = E_model[f]`` [1]_ (ch. 20.3).  At the maximum the model
reproduces the empirical feature expectations ("moment matching").  Everything below
is a way of computing or approximating the two expectations:

- ``learner="lbfgs"`` (default) and ``"gradient"``: ``E_model[f]`` and ``log Z`` exactly,
  from one calibrated clique tree per step (:mod:`pgm.infer.elimination`); the
  optimiser is scipy's L-BFGS, or plain gradient ascent with a step size (adapted by
  backtracking unless ``step_size`` is given).
- ``"coordinate"``: one parameter block at a time with the others fixed.  For an
  untied table (or unary) potential the block maximum is closed-form, iterative
  proportional fitting ``theta_c += log(empirical marginal / model marginal)`` [1]_
  (20.5.1); other blocks take a Newton step with the model covariance of their
  features and a backtracking line search.
- ``"pcd"``: stochastic maximum likelihood for models too wide for exact inference.
  ``E_model[f]`` is estimated from persistent Gibbs chains, vectorised over chains and
  over colour classes of the graph (a checkerboard on a grid), that move a little at
  every parameter update [2]_; a decaying step and averaging of the iterates tame the noise.
- ``"pseudo"``: maximum pseudo-likelihood ``sum_i log p(x_i | x_rest)``, which needs no
  ``Z`` and is a consistent estimator [3]_; fitted with L-BFGS.

Hidden nodes (``latent: true``) and missing cells make the likelihood that of the
observed part, ``log sum_z p(x, z)``, no longer concave; its gradient is the clamped
minus the free expectation, ``E_{p(z|x)}[f] - E_{p(x,z)}[f]`` [1]_ (20.6).  The clamped
expectation comes from the same exact core, run on a batch: rows are grouped by their
pattern of hidden cells, identical rows are merged (with weights), and the clique tree
of the hidden variables is calibrated for all distinct rows at once (a leading batch
axis on every table).

References
----------
.. [1] D. Koller and N. Friedman, *Probabilistic Graphical Models*, MIT Press 2009, ch. 20.
.. [2] T. Tieleman, "Training restricted Boltzmann machines using approximations to the
   likelihood gradient", ICML 2008.
.. [3] J. Besag, "Statistical analysis of non-lattice data", The Statistician 24, 1975.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import minimize

from pgm.encode import EncodedData, encode, merge_rows
from pgm.errors import ConvergenceWarning, DataError, ModelError, PGMError
from pgm.features import (UNARY, Layout, compile_layout, feature_matrix, gibbs_sweep, gibbs_terms,
                          local_terms, pseudo_log_likelihood)
from pgm.graph import Graph
from pgm.infer.elimination import CliqueTree, TooWideError, build_clique_tree, calibrate

#: Iteration limits when ``max_iter`` is not given (sweeps for "coordinate").
DEFAULT_MAX_ITER = {"lbfgs": 1000, "gradient": 20000, "coordinate": 1000, "pcd": 2000, "pseudo": 1000}
LEARNERS = tuple(DEFAULT_MAX_ITER)
#: Entries a batched calibration may hold at once (rows are processed in chunks below it).
BATCH_ENTRIES = 2**23


def _distinct(codes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical rows, summing their weights; also return each row's distinct row."""
    first, summed, inverse = merge_rows(codes, weights)
    return codes[first], summed, inverse


@dataclass(frozen=True)
class Pattern:
    """Distinct rows that hide the same variables, compiled for batched clamped inference.

    Attributes
    ----------
    hidden : variable indices summed out in these rows.
    rows : int array of shape (n_rows,), the distinct rows (indices into ``Rows.codes``).
    weights : float array of shape (n_rows,).
    gather : per potential touching a hidden variable, flat-table indices of shape
        (n_rows or 1, n_hidden_states): row ``b``'s slice of the potential with its
        observed variables fixed.
    batched : per such potential, whether it touches an observed variable.
    scopes, hidden_cards : the hidden part of each such potential.
    tree : clique tree of the hidden variables.
    """

    hidden: tuple[int, ...]
    rows: np.ndarray
    weights: np.ndarray
    gather: tuple[np.ndarray, ...]
    batched: tuple[bool, ...]
    hidden_cards: tuple[tuple[int, ...], ...]
    tree: CliqueTree


@dataclass(frozen=True)
class Rows:
    """Data prepared for learning: distinct rows, their weights and hidden-cell patterns.

    Attributes
    ----------
    codes : int array of shape (n_distinct, n_variables), ``-1`` where hidden.
    weights : float array of shape (n_distinct,).
    total : total weight (the number of rows for unweighted data).
    fixed : float array of shape (n_flat,): weighted counts of the joint states of every
        potential whose variables are all observed, summed over rows (theta-free).
    patterns : the rows with hidden cells, by pattern.
    inverse : int array of shape (n_rows,): the distinct row of every original row.
    """

    codes: np.ndarray
    weights: np.ndarray
    total: float
    fixed: np.ndarray
    patterns: tuple[Pattern, ...]
    inverse: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        """Whether every cell of every row is observed (no latent nodes, no missing cells)."""
        return not self.patterns


class LogLinear:
    """The compiled machinery of one undirected ground graph: layout, clique tree, samplers.

    Everything theta-independent is built once (lazily) and reused on every iteration.
    """

    def __init__(self, graph: Graph) -> None:
        if graph.directed:
            raise ModelError(f"model {graph.spec.name!r} is directed; log-linear learning needs "
                             "`graph: undirected` (directed models are fitted by maximum likelihood or EM)")
        self.graph = graph
        self.layout: Layout = compile_layout(graph)
        self._tree: CliqueTree | TooWideError | None = None

    @property
    def tree(self) -> CliqueTree:
        """The clique tree of the whole model (raises TooWideError when exact inference is out of reach).

        Built once; a failure is remembered too, so asking again costs nothing.
        """
        if self._tree is None:
            try:
                self._tree = build_clique_tree([p.scope for p in self.layout.potentials], self.layout.card_map)
            except TooWideError as exc:
                self._tree = exc
        if isinstance(self._tree, TooWideError):
            raise TooWideError(str(self._tree))
        return self._tree

    @cached_property
    def local(self) -> list:
        """Local conditionals of every variable (pseudo-likelihood)."""
        return local_terms(self.layout, range(len(self.layout.variables)))

    @cached_property
    def gibbs(self) -> list:
        """Local conditionals per colour class (Gibbs sampling)."""
        return gibbs_terms(self.layout)

    def tractable(self) -> bool:
        """Whether exact inference fits the limits of :mod:`pgm.infer.elimination`."""
        try:
            self.tree
        except TooWideError:
            return False
        return True

    def potential_tables(self, flat: np.ndarray) -> list[np.ndarray]:
        """Every potential's log-table (views into ``flat``), shaped by its scope's cards."""
        return [flat[p.offset:p.offset + p.size].reshape(p.cards) for p in self.layout.potentials]

    # ------------------------------------------------------------------ exact quantities
    def free(self, flat: np.ndarray, marginals: bool = True) -> tuple[float, np.ndarray | None]:
        """``log Z`` and the model marginal of every potential (a flat vector of probabilities)."""
        cal = calibrate(self.tree, self.potential_tables(flat), downward=marginals)
        log_z = float(cal.log_z[0])
        if not marginals:
            return log_z, None
        out = np.empty(self.layout.n_flat)
        for p, m in zip(self.layout.potentials, cal.factor_probabilities()):
            out[p.offset:p.offset + p.size] = m[0].ravel()
        return log_z, out

    def prepare(self, data: EncodedData) -> Rows:
        """Distinct rows, weights and compiled hidden patterns of encoded data (theta-free)."""
        layout = self.layout
        n = data.n_rows
        codes = np.full((n, len(layout.variables)), -1, dtype=np.int64)
        for j, v in enumerate(layout.variables):
            if v in data.codes:
                codes[:, j] = data.codes[v]
        weights = np.ones(n) if data.weights is None else np.asarray(data.weights, dtype=float)
        codes, weights, inverse = _distinct(codes, weights)
        hidden = codes < 0
        fixed = np.zeros(layout.n_flat)
        whole = ~hidden.any(axis=1)
        if whole.any():
            fixed += layout.counts(codes[whole], weights[whole])
        patterns = []
        if not whole.all():
            masks, which = np.unique(hidden[~whole], axis=0, return_inverse=True)
            part = np.flatnonzero(~whole)
            for i, mask in enumerate(masks):
                rows = part[which.ravel() == i]
                pat, counts = self._pattern(codes, rows, weights[rows], tuple(np.flatnonzero(mask)))
                patterns.append(pat)
                fixed += counts
        return Rows(codes, weights, float(weights.sum()), fixed, tuple(patterns), inverse)

    def _pattern(self, all_codes: np.ndarray, rows: np.ndarray, weights: np.ndarray,
                 hidden: tuple[int, ...]) -> tuple[Pattern, np.ndarray]:
        layout = self.layout
        codes = all_codes[rows]
        hid = set(hidden)
        index = {v: i for i, v in enumerate(layout.variables)}
        fixed = np.zeros(layout.n_flat)
        gather, batched, scopes, hcards = [], [], [], []
        for p in layout.potentials:
            scope = [index[v] for v in p.scope]
            hpos = [j for j, v in enumerate(scope) if v in hid]
            opos = [j for j, v in enumerate(scope) if v not in hid]
            if not hpos:
                code = np.zeros(len(codes), dtype=np.int64)
                for j in opos:
                    code = code * p.cards[j] + codes[:, scope[j]]
                fixed[p.offset:p.offset + p.size] += np.bincount(code, weights=weights, minlength=p.size)
                continue
            n_obs = math.prod(p.cards[j] for j in opos)
            n_hid = math.prod(p.cards[j] for j in hpos)
            arranged = (p.offset + np.arange(p.size).reshape(p.cards).transpose(opos + hpos)).reshape(n_obs, n_hid)
            if opos:
                code = np.zeros(len(codes), dtype=np.int64)
                for j in opos:
                    code = code * p.cards[j] + codes[:, scope[j]]
                gather.append(arranged[code])
            else:
                gather.append(arranged)
            batched.append(bool(opos))
            scopes.append(tuple(p.scope[j] for j in hpos))
            hcards.append(tuple(p.cards[j] for j in hpos))
        cards = {layout.variables[h]: layout.cards[h] for h in hidden}
        tree = build_clique_tree(scopes, cards)
        return Pattern(hidden, rows, weights, tuple(gather), tuple(batched), tuple(hcards), tree), fixed

    def clamped(self, rows: Rows, flat: np.ndarray, counts: bool = True) -> tuple[float, np.ndarray | None]:
        """``sum_r w_r log sum_z exp(theta . f(x_r, z))`` and the clamped expected counts.

        Returns
        -------
        value : float, the weighted sum over rows of the unnormalised log-probability of
            the observed part (subtract ``total * log Z`` for the log-likelihood).
        counts : float array of shape (n_flat,), ``sum_r w_r E_{p(z | x_r)}[1{x_c = state}]``
            for every potential and joint state (None unless ``counts``).
        """
        value = float(flat @ rows.fixed)
        out = rows.fixed.copy() if counts else None
        for pat in rows.patterns:
            step = max(1, BATCH_ENTRIES // max(pat.tree.total_entries, 1))
            idx_parts, w_parts = [], []
            for start in range(0, len(pat.weights), step):
                w = pat.weights[start:start + step]
                tables = [flat[g[start:start + step]].reshape((-1,) + hc) if b else flat[g].reshape(hc)
                          for g, b, hc in zip(pat.gather, pat.batched, pat.hidden_cards)]
                cal = calibrate(pat.tree, tables, downward=counts)
                value += float(w @ np.broadcast_to(cal.log_z, w.shape))
                if counts:
                    for g, b, m in zip(pat.gather, pat.batched, cal.factor_probabilities()):
                        q = m.reshape(m.shape[0], -1)
                        gi = g[start:start + step] if b else g
                        idx_parts.append(np.broadcast_to(gi, (len(w), gi.shape[-1])).ravel())
                        w_parts.append((w[:, None] * q).ravel())
            if counts and idx_parts:
                out += np.bincount(np.concatenate(idx_parts), weights=np.concatenate(w_parts),
                                   minlength=len(flat))
        return value, out

    def row_values(self, rows: Rows, flat: np.ndarray) -> np.ndarray:
        """``log sum_z exp(theta . f(x_r, z))`` for every distinct row, shape (n_distinct,)."""
        layout = self.layout
        out = np.empty(len(rows.weights))
        step = max(1, 2**21 // layout.scope_index.size)
        for start in range(0, len(out), step):
            codes = rows.codes[start:start + step]
            idx = layout.flat_index(np.maximum(codes, 0))
            # a potential counts here only when all its variables are observed in the row
            seen = np.all((codes[:, layout.scope_index] >= 0) | (layout.scope_strides == 0)[None], axis=2)
            out[start:start + step] = np.where(seen, flat[idx], 0.0).sum(axis=1)
        for pat in rows.patterns:
            step = max(1, BATCH_ENTRIES // max(pat.tree.total_entries, 1))
            for start in range(0, len(pat.weights), step):
                tables = [flat[g[start:start + step]].reshape((-1,) + hc) if b else flat[g].reshape(hc)
                          for g, b, hc in zip(pat.gather, pat.batched, pat.hidden_cards)]
                sub = pat.rows[start:start + step]
                out[sub] += np.broadcast_to(calibrate(pat.tree, tables, downward=False).log_z, sub.shape)
        return out

    def log_likelihood(self, rows: Rows, flat: np.ndarray) -> float:
        """Exact total log-likelihood of the observed cells."""
        log_z, _ = self.free(flat, marginals=False)
        value, _ = self.clamped(rows, flat, counts=False)
        return value - rows.total * log_z

    def value_and_grad(self, rows: Rows, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact total log-likelihood and the gradient of the *mean* log-likelihood.

        The gradient is ``pullback(clamped counts / N - model marginals)``: empirical
        (or clamped) minus model feature expectations.
        """
        flat = self.layout.log_tables(theta)
        log_z, marg = self.free(flat)
        value, counts = self.clamped(rows, flat)
        return value - rows.total * log_z, self.layout.pullback(counts / rows.total - marg)

    def pseudo(self, rows: Rows, flat: np.ndarray, grad: bool = False) -> tuple[float, np.ndarray | None]:
        """Total pseudo-log-likelihood and ``d/d flat`` of it (fully observed rows only)."""
        if not rows.complete:
            hidden = sorted({self.layout.variables[h] for p in rows.patterns for h in p.hidden})
            raise DataError(f"pseudo-likelihood needs every cell observed, but {hidden[:8]} are latent or have "
                            "missing cells; use learner='lbfgs' (exact) or learner='pcd', and "
                            "log_likelihood() to score")
        return pseudo_log_likelihood(self.local, rows.codes, rows.weights, flat, grad=grad)


@dataclass(frozen=True, eq=False)
class LogLinearFit:
    """What a log-linear learner returns (wrapped by :class:`pgm.markov.FittedMarkovNet`).

    Attributes
    ----------
    graph : the ground graph.
    engine : the compiled :class:`LogLinear` (reusable for scoring and sampling).
    theta : float array of shape (n_params,).
    history : total log-likelihood per iteration (``history_kind`` says which quantity:
        "log_likelihood", or "pseudo_log_likelihood" for ``learner="pseudo"`` and where the
        exact one is out of reach).  "pcd" records about 20 evenly spaced iterations (its
        pseudo-log-likelihood on a fixed subsample of at most 500 distinct rows, scaled to
        the total weight), and nothing when rows have hidden cells and the model is too wide.
    learner, n_iter, converged : how the fit went.
    """

    graph: Graph
    engine: LogLinear
    theta: np.ndarray
    history: list[float]
    history_kind: str
    learner: str
    n_iter: int
    converged: bool
    options: dict[str, Any] = field(default_factory=dict)


class _Trace(list):
    """The history list; with a callback, ``callback(iteration, value)`` sees every entry as it lands."""

    def __init__(self, callback: Callable[[int, float], None] | None) -> None:
        super().__init__()
        self.callback = callback

    def append(self, value: float) -> None:
        super().append(float(value))
        if self.callback is not None:
            self.callback(len(self) - 1, float(value))


def _warn(learner: str, max_iter: int, detail: str) -> None:
    warnings.warn(f"learner={learner!r} stopped at max_iter={max_iter} before converging ({detail}); "
                  "increase max_iter, loosen tol, or add an l2 penalty", ConvergenceWarning, stacklevel=4)


def _multiplicity(layout: Layout) -> np.ndarray:
    """How many potentials share each parameter (tie groups sum their cliques' statistics)."""
    out = np.ones(layout.n_params)
    for b in layout.blocks.values():
        out[b.start:b.stop] = len(b.potentials)
    return out


def _fit_lbfgs(objective, theta: np.ndarray, max_iter: int, tol: float, l2: float, total: float,
               learner: str, share: np.ndarray, history: list[float]) -> tuple[np.ndarray, list[float], int, bool]:
    """Minimise the negative mean (pseudo-)log-likelihood plus ``l2 / 2 |theta|^2`` with L-BFGS.

    The search runs on ``x = theta * sqrt(share)``: a parameter tied across ``m`` cliques
    has a gradient (and curvature) about ``m`` times larger, and this diagonal rescaling
    evens the problem out (fewer iterations; the optimum is the same).
    """
    scale = np.sqrt(share)
    last: dict[str, Any] = {}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = x / scale
        value, grad = objective(t)
        last["x"], last["value"], last["grad"] = x.copy(), value, -grad + l2 * t
        return -value / total + 0.5 * l2 * (t @ t), (-grad + l2 * t) / scale

    def record(x: np.ndarray) -> None:
        history.append(last["value"] if np.array_equal(last.get("x"), x) else objective(x / scale)[0])

    # tol bounds the gradient in theta; in x it is divided by scale >= 1
    res = minimize(fun, theta * scale, jac=True, method="L-BFGS-B", callback=record,
                   options={"maxiter": max_iter, "gtol": tol / scale.max(initial=1.0),
                            "ftol": 0.0})
    if not history or not np.array_equal(last.get("x"), res.x):
        fun(res.x)
        record(res.x)
    grad_norm = float(np.max(np.abs(last["grad"]), initial=0.0))
    converged = res.nit < max_iter or grad_norm <= tol
    if not converged:
        _warn(learner, max_iter, f"largest gradient component {grad_norm:.3g} > tol={tol:g}")
    return res.x / scale, history, int(res.nit), converged


def _fit_gradient(engine: LogLinear, rows: Rows, theta: np.ndarray, max_iter: int, tol: float, l2: float,
                  step_size: float | None, history: list[float]) -> tuple[np.ndarray, list[float], int, bool]:
    """Gradient ascent; a fixed ``step_size``, or (None) one adapted by backtracking.

    Each parameter's step is divided by the number of cliques sharing it (see
    :func:`_fit_lbfgs` for why).
    """
    share = _multiplicity(engine.layout)
    value, grad = engine.value_and_grad(rows, theta)
    history.append(value)
    eta = 1.0 if step_size is None else step_size
    objective = value / rows.total - 0.5 * l2 * theta @ theta
    it = 0
    for it in range(1, max_iter + 1):
        g = grad - l2 * theta
        if np.max(np.abs(g), initial=0.0) < tol:
            return theta, history, it - 1, True
        while True:
            cand = theta + eta * g / share
            c_value, c_grad = engine.value_and_grad(rows, cand)
            c_obj = c_value / rows.total - 0.5 * l2 * cand @ cand
            if step_size is not None or c_obj >= objective:
                break
            eta *= 0.5
            if eta < 1e-14:  # no ascent step left at machine precision: we are at the top
                return theta, history, it, True
        theta, value, grad, objective = cand, c_value, c_grad, c_obj
        history.append(value)
        if step_size is None:
            eta *= 1.5
    g = grad - l2 * theta
    if np.max(np.abs(g), initial=0.0) < tol:
        return theta, history, it, True
    _warn("gradient", max_iter, f"largest gradient component {np.max(np.abs(g)):.3g} > tol={tol:g}")
    return theta, history, it, False


def _block_hessian(layout: Layout, key: str, marg: np.ndarray, l2: float) -> np.ndarray:
    """Sum over the block's potentials of the model covariance of their features, plus ``l2 I``.

    For a tie group this leaves out the covariances between the tied cliques, so it is
    only a preconditioner: the line search makes the step safe.
    """
    b = layout.blocks[key]
    d = b.stop - b.start
    h = l2 * np.eye(d)
    for i in b.potentials:
        p = layout.potentials[i]
        m = marg[p.offset:p.offset + p.size]
        if p.family == "table":
            h += np.diag(m) - np.outer(m, m)
        else:
            f = feature_matrix(p.family, p.cards)
            fm = f.T @ m
            h += f.T @ (m[:, None] * f) - np.outer(fm, fm)
    return h


def _fit_coordinate(engine: LogLinear, rows: Rows, theta: np.ndarray, max_iter: int, tol: float,
                    l2: float, history: list[float]) -> tuple[np.ndarray, list[float], int, bool]:
    """Block coordinate ascent: IPF for untied tables and unaries, Newton + line search otherwise."""
    layout = engine.layout
    total = rows.total
    theta = theta.copy()

    def objective(t: np.ndarray) -> float:
        return engine.log_likelihood(rows, layout.log_tables(t)) / total - 0.5 * l2 * t @ t

    history.append(engine.log_likelihood(rows, layout.log_tables(theta)))
    it = 0
    worst = np.inf
    for it in range(1, max_iter + 1):
        worst = 0.0
        for key, b in layout.blocks.items():
            flat = layout.log_tables(theta)
            log_z, marg = engine.free(flat)
            value, counts = engine.clamped(rows, flat)
            emp = counts / total
            g = layout.pullback(emp - marg)[b.start:b.stop] - l2 * theta[b.start:b.stop]
            worst = max(worst, float(np.max(np.abs(g), initial=0.0)))
            if np.max(np.abs(g), initial=0.0) < 0.01 * tol:
                continue
            p = layout.potentials[b.potentials[0]]
            if rows.complete and l2 == 0 and len(b.potentials) == 1 and p.family in ("table", UNARY):
                # iterative proportional fitting: the block's exact maximiser
                sl = slice(p.offset, p.offset + p.size)
                with np.errstate(divide="ignore"):
                    delta = np.log(np.maximum(emp[sl], 1e-300)) - np.log(marg[sl])
                theta[b.start:b.stop] += delta[1:] - delta[0] if p.family == UNARY else delta
                continue
            h = _block_hessian(layout, key, marg, l2)
            step = np.linalg.lstsq(h + 1e-12 * np.eye(len(g)), g, rcond=None)[0]
            base = (value - total * log_z) / total - 0.5 * l2 * theta @ theta
            slope = float(g @ step)
            alpha = 1.0
            for _ in range(50):
                cand = theta.copy()
                cand[b.start:b.stop] += alpha * step
                if objective(cand) >= base + 1e-4 * alpha * slope:
                    theta = cand
                    break
                alpha *= 0.5
        history.append(engine.log_likelihood(rows, layout.log_tables(theta)))
        if worst < tol:
            return theta, history, it, True
    _warn("coordinate", max_iter, f"largest gradient component {worst:.3g} > tol={tol:g}")
    return theta, history, it, False


def _fit_pcd(engine: LogLinear, rows: Rows, theta: np.ndarray, max_iter: int, l2: float,
             step_size: float | None, n_chains: int, n_gibbs: int, rng: np.random.Generator,
             record, history: list[float]) -> tuple[np.ndarray, list[float], int]:
    """Stochastic maximum likelihood with persistent, vectorised Gibbs chains.

    Each parameter's step is divided by the number of cliques sharing it (a tied
    coupling sums the statistics of all its cliques), decays as ``1 / (1 + t / tau)``,
    and the returned parameters average the iterates of the second half (Polyak-Ruppert).
    """
    layout = engine.layout
    total = rows.total
    step = 0.5 if step_size is None else step_size
    share = _multiplicity(layout)
    tau = max(1.0, max_iter / 10)
    # chains start at data rows drawn by weight; hidden cells start uniform
    pick = rng.choice(len(rows.weights), size=n_chains, p=rows.weights / total)
    chains = rows.codes[pick].copy()
    cards = np.asarray(layout.cards)
    hidden = chains < 0
    chains[hidden] = (rng.random(hidden.sum()) * np.broadcast_to(cards, chains.shape)[hidden]).astype(np.int64)
    emp = rows.fixed / total if rows.complete else None
    average = np.zeros_like(theta)
    n_avg = 0
    every = max(1, max_iter // 20)
    for t in range(max_iter):
        flat = layout.log_tables(theta)
        for _ in range(n_gibbs):
            gibbs_sweep(engine.gibbs, chains, flat, rng)
        model = layout.counts(chains) / n_chains
        target = emp if emp is not None else engine.clamped(rows, flat)[1] / total
        grad = layout.pullback(target - model) - l2 * theta
        theta = theta + (step / (1.0 + t / tau)) * grad / share
        if t >= max_iter // 2:
            n_avg += 1
            average += (theta - average) / n_avg
        if record is not None and (t % every == 0 or t == max_iter - 1):
            history.append(record(average if n_avg else theta))
    return (average if n_avg else theta), history, max_iter


def fit_loglinear(graph: Graph, data: EncodedData | Any, *, learner: str = "lbfgs", max_iter: int | None = None,
                  tol: float = 1e-6, l2: float = 0.0, step_size: float | None = None, seed: int | None = 0,
                  n_chains: int = 200, n_gibbs: int = 1, init: Mapping[str, Any] | None = None,
                  callback: Callable[[int, float], None] | None = None) -> LogLinearFit:
    """Fit the parameters of an undirected log-linear model.

    Parameters
    ----------
    graph : pgm.graph.Graph
        an undirected ground graph (``pgm.graph.build(spec)``).
    data : pgm.encode.EncodedData, or a DataFrame / path (encoded against ``graph``).
    learner : {"lbfgs", "gradient", "coordinate", "pcd", "pseudo"}
        see the module docstring.  The first three need exact inference.
    max_iter : iterations (sweeps for "coordinate"); default per learner in :data:`DEFAULT_MAX_ITER`.
    tol : stop when every component of the gradient of the mean (penalised) objective is
        below ``tol`` (not used by "pcd", which runs ``max_iter`` steps).
    l2 : penalty ``l2 / 2 * |theta|^2`` on the *mean* log-likelihood.
    step_size : "gradient": fixed step (default: adapted by backtracking); "pcd": initial
        step (default 0.5), divided by the tie multiplicity and decayed.
    seed : random seed ("pcd" chains; the initial values when there are latent nodes).
    n_chains, n_gibbs : "pcd": number of persistent chains and Gibbs sweeps per update.
    init : starting parameters ``{key: array}`` (as :meth:`Layout.unpack` gives).
    callback : called as ``callback(iteration, value)`` with every history entry as it is recorded.

    Returns
    -------
    LogLinearFit

    Raises
    ------
    pgm.ModelError
        directed graph; exact learner on a model too wide for exact inference (the
        message names the table size and points to "pcd" / "pseudo").
    pgm.DataError
        "pseudo" with latent nodes or missing cells.
    pgm.PGMError
        unknown learner or bad option.

    Warns
    -----
    pgm.ConvergenceWarning
        when ``max_iter`` is reached before ``tol``.
    """
    if learner not in LEARNERS:
        raise PGMError(f"unknown learner {learner!r} for an undirected model; use one of {list(LEARNERS)}")
    if not (l2 >= 0 and math.isfinite(l2)):
        raise PGMError(f"l2 must be a finite number >= 0, got {l2!r}")
    if not tol > 0:
        raise PGMError(f"tol must be > 0, got {tol!r}")
    if step_size is not None and not (step_size > 0 and math.isfinite(step_size)):
        raise PGMError(f"step_size must be a positive number, got {step_size!r}")
    if learner == "pcd" and (n_chains < 1 or n_gibbs < 1):
        raise PGMError(f"n_chains and n_gibbs must be >= 1, got {n_chains}, {n_gibbs}")
    max_iter = DEFAULT_MAX_ITER[learner] if max_iter is None else int(max_iter)
    if max_iter < 1:
        raise PGMError(f"max_iter must be >= 1, got {max_iter}")
    engine = LogLinear(graph)
    if not isinstance(data, EncodedData):
        data = encode(graph, data)
    rows = engine.prepare(data)
    if rows.total <= 0:
        raise DataError("the data have no rows with positive weight; nothing to fit")
    layout = engine.layout
    rng = np.random.default_rng(seed)
    if init is not None:
        theta = layout.pack(init)
    elif graph.latent:  # zero is a symmetric point for exchangeable hidden units: break the tie
        theta = 0.1 * rng.standard_normal(layout.n_params)
    else:
        theta = np.zeros(layout.n_params)
    options = dict(max_iter=max_iter, tol=tol, l2=l2, step_size=step_size, seed=seed)
    trace = _Trace(callback)
    kind = "log_likelihood"
    if learner == "lbfgs":
        theta, history, n_iter, ok = _fit_lbfgs(lambda x: engine.value_and_grad(rows, x), theta, max_iter,
                                                tol, l2, rows.total, learner, _multiplicity(layout), trace)
    elif learner == "gradient":
        theta, history, n_iter, ok = _fit_gradient(engine, rows, theta, max_iter, tol, l2, step_size, trace)
    elif learner == "coordinate":
        theta, history, n_iter, ok = _fit_coordinate(engine, rows, theta, max_iter, tol, l2, trace)
    elif learner == "pseudo":
        engine.pseudo(rows, layout.log_tables(theta))  # fails early, and clearly, on hidden cells

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, dflat = engine.pseudo(rows, layout.log_tables(x), grad=True)
            return value, layout.pullback(dflat) / rows.total

        theta, history, n_iter, ok = _fit_lbfgs(objective, theta, max_iter, tol, l2, rows.total, learner,
                                                _multiplicity(layout), trace)
        kind = "pseudo_log_likelihood"
    else:
        if engine.tractable():
            record = lambda x: engine.log_likelihood(rows, layout.log_tables(x))  # noqa: E731
        elif rows.complete:
            kind = "pseudo_log_likelihood"
            sub = rows
            if len(rows.weights) > 500:  # monitor on a fixed subsample, scaled to the whole
                keep = np.sort(rng.choice(len(rows.weights), 500, replace=False))
                sub = Rows(rows.codes[keep], rows.weights[keep], float(rows.weights[keep].sum()), rows.fixed, ())
            scale = rows.total / sub.total
            record = lambda x: scale * engine.pseudo(sub, layout.log_tables(x))[0]  # noqa: E731
        else:
            kind, record = "none", None
        options.update(n_chains=n_chains, n_gibbs=n_gibbs)
        theta, history, n_iter = _fit_pcd(engine, rows, theta, max_iter, l2, step_size, n_chains, n_gibbs,
                                          rng, record, trace)
        ok = True
    return LogLinearFit(graph, engine, theta, [float(h) for h in history], kind, learner, n_iter, ok, options)
