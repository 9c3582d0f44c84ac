r"""Logistic CPD: a sigmoid belief-network node (2 states) or softmax (more states).

    p(x = k | u) = exp(a_k + w_k . phi(u)) / sum_j exp(a_j + w_j . phi(u)),   a_0 = 0, w_0 = 0

``phi(u)`` concatenates the parents: a discrete parent with s states as s - 1
indicators (its first state is the reference), a gaussian parent as its values.
State 0 is the reference class, so the parameters are identifiable; with two
states this is the logistic (sigmoid) regression of the second state.

The weighted negative log-likelihood plus ``penalty / 2 * ||w||^2`` (the L2 penalty
leaves the intercepts unpenalised, as scikit-learn does) is convex; it is minimised
by L-BFGS with the analytic gradient.  There is no finite sufficient statistic in
general, so ``LogisticStats`` keeps (features, weighted one-hot targets) rows and
adds by concatenation; rows with identical features are merged first, which makes
discrete-parent nodes as cheap as tables.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize
from scipy.special import logsumexp

from pgm.cpd.base import Family, Moments, ScopedTable, all_configs, batch_shape, floats, read_array
from pgm.errors import ConvergenceWarning, ModelError
from pgm.graph import Graph


@dataclass(frozen=True)
class LogisticStats:
    """features (M, q) and targets (M, k): the weighted count of each state per feature row."""

    features: np.ndarray
    targets: np.ndarray

    def __add__(self, other: "LogisticStats") -> "LogisticStats":
        return LogisticStats(np.vstack([self.features, other.features]), np.vstack([self.targets, other.targets]))


def logistic_features(discrete: list[tuple[np.ndarray, int]], continuous: list[np.ndarray], n_rows: int) -> np.ndarray:
    """phi(u): indicators of states 1.. of each discrete parent, then the continuous parents.

    Parameters
    ----------
    discrete : list of (codes of shape (n_rows,), n_states)
    continuous : list of arrays of shape (n_rows, dim)
    """
    blocks = []
    for codes, k in discrete:
        onehot = np.zeros((n_rows, k - 1))
        rows = np.flatnonzero(codes > 0)
        onehot[rows, codes[rows] - 1] = 1.0
        blocks.append(onehot)
    for v in continuous:  # (n_rows, dim) blocks, or (n_rows,) vectors; n_rows may be 0
        v = np.asarray(v, dtype=np.float64)
        blocks.append(v if v.ndim == 2 else v.reshape(n_rows, 1))
    return np.hstack(blocks) if blocks else np.zeros((n_rows, 0))


def logistic_stats(features: np.ndarray, child: np.ndarray, n_states: int,
                   weights: np.ndarray | None = None, resp: np.ndarray | None = None) -> LogisticStats:
    """Rows of (features, weighted one-hot target); ``resp`` (n, k) gives soft targets (EM)."""
    n = len(features)
    if resp is not None:
        targets = resp if weights is None else resp * weights[:, None]
    else:
        targets = np.zeros((n, n_states))
        targets[np.arange(n), child] = 1.0 if weights is None else weights
    return LogisticStats(features, targets)


def compress(stats: LogisticStats) -> LogisticStats:
    """Merge rows with identical features (exact: the likelihood depends on rows only through sums)."""
    if len(stats.features) < 2:
        return stats
    uniq, inverse = np.unique(stats.features, axis=0, return_inverse=True)
    if len(uniq) == len(stats.features):
        return stats
    targets = np.zeros((len(uniq), stats.targets.shape[1]))
    np.add.at(targets, inverse.ravel(), stats.targets)
    return LogisticStats(uniq, targets)


@dataclass(frozen=True)
class LogisticCPD:
    """intercept (k,), coef (k, q); row 0 is the reference (zeros)."""

    intercept: np.ndarray
    coef: np.ndarray

    @property
    def n_states(self) -> int:
        return len(self.intercept)

    def logits(self, features: np.ndarray) -> np.ndarray:
        return self.intercept + features @ self.coef.T

    def log_probs(self, features: np.ndarray) -> np.ndarray:
        """log p(x = k | u) for every state: array of shape (n_rows, k)."""
        logits = self.logits(features)
        return logits - logsumexp(logits, axis=1, keepdims=True)

    def log_prob(self, child: np.ndarray, features: np.ndarray) -> np.ndarray:
        return np.take_along_axis(self.log_probs(features), np.asarray(child)[:, None], axis=1)[:, 0]

    def sample(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        probs = np.exp(self.log_probs(features))
        cdf = np.cumsum(probs, axis=1)
        cdf[:, -1] = 1.0
        return (rng.random(len(features))[:, None] >= cdf).sum(axis=1)


def _objective(theta: np.ndarray, x1: np.ndarray, targets: np.ndarray, penalty: float):
    k = targets.shape[1]
    q1 = x1.shape[1]
    w = np.vstack([np.zeros(q1), theta.reshape(k - 1, q1)])
    logits = x1 @ w.T
    lse = logsumexp(logits, axis=1)
    totals = targets.sum(axis=1)
    nll = float(totals @ lse - np.sum(targets * logits))
    probs = np.exp(logits - lse[:, None])
    grad = (probs * totals[:, None] - targets).T @ x1  # (k, q1)
    grad = grad[1:]
    if penalty:
        coef = w[1:, 1:]
        nll += 0.5 * penalty * float(np.sum(coef ** 2))
        grad[:, 1:] += penalty * coef
    return nll, grad.ravel()


def _hessian(theta: np.ndarray, x1: np.ndarray, targets: np.ndarray, penalty: float) -> np.ndarray:
    """Hessian of the penalised negative log-likelihood in theta: shape ((k-1)(q+1), (k-1)(q+1)).

    Block (a, b) is ``sum_i t_i p_ia (delta_ab - p_ib) x_i x_i^T`` with ``t_i`` the row's total weight."""
    k = targets.shape[1]
    q1 = x1.shape[1]
    w = np.vstack([np.zeros(q1), theta.reshape(k - 1, q1)])
    logits = x1 @ w.T
    probs = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))[:, 1:]
    totals = targets.sum(axis=1)
    hess = np.empty((k - 1, q1, k - 1, q1))
    for a in range(k - 1):
        for b in range(a, k - 1):
            r = totals * probs[:, a] * (float(a == b) - probs[:, b])
            hess[a, :, b, :] = hess[b, :, a, :] = (x1 * r[:, None]).T @ x1
    hess = hess.reshape((k - 1) * q1, (k - 1) * q1)
    if penalty:
        coef = np.arange(hess.shape[0]) % q1 != 0  # intercepts are not penalised
        hess[coef, coef] += penalty
    return hess


def _newton_polish(theta: np.ndarray, x1: np.ndarray, targets: np.ndarray, penalty: float,
                   scale: float) -> tuple[np.ndarray, bool]:
    """A few Newton steps from where L-BFGS stopped.

    L-BFGS stops when the mean loss no longer decreases in floating point, with a gradient
    near 1e-9; Newton steps need no decrease of the loss and reach the optimum to rounding.
    Returns the polished parameters and whether the optimum is finite and unique.  Without a
    penalty it is not when the Hessian is singular relative to the features' own scatter
    ``G = mean x x^T`` (a generalised eigenvalue below 1e-8; they lie in [0, 1/2] and are
    ``p (1 - p)``-sized): separable data saturate the probabilities, and a parent state that
    never occurs, or collinear parents, make ``G`` itself singular."""
    hess = _hessian(theta, x1, targets, penalty) * scale
    if not penalty:
        k1 = hess.shape[0] // x1.shape[1]
        scatter = (x1 * (targets.sum(axis=1) * scale)[:, None]).T @ x1
        try:
            lam = linalg.eigh(hess, np.kron(np.eye(k1), scatter), eigvals_only=True)
        except (linalg.LinAlgError, ValueError):
            return theta, False
        if not lam[0] > 1e-8:
            return theta, False
    grad = _objective(theta, x1, targets, penalty)[1] * scale
    for _ in range(5):
        try:
            step = linalg.solve(hess, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            break
        candidate = theta - step
        new_grad = _objective(candidate, x1, targets, penalty)[1] * scale
        if not np.all(np.isfinite(new_grad)) or np.abs(new_grad).max() >= np.abs(grad).max():
            break
        theta, grad = candidate, new_grad
        hess = _hessian(theta, x1, targets, penalty) * scale
    return theta, True


def logistic_from_stats(stats: LogisticStats, penalty: float = 0.0, max_iter: int = 1000,
                        tol: float = 1e-10, init: LogisticCPD | None = None, name: str = "node") -> LogisticCPD:
    """Penalised maximum likelihood by L-BFGS, polished by Newton steps.  Without a penalty on
    separable data the MLE is at infinity: the fit stops and warns (set ``penalty`` on the node)."""
    stats = compress(stats)
    x = stats.features
    targets = stats.targets
    n, q = x.shape
    k = targets.shape[1]
    x1 = np.hstack([np.ones((n, 1)), x])
    if init is not None:
        theta0 = np.hstack([init.intercept[1:, None], init.coef[1:]]).ravel()
    else:
        theta0 = np.zeros((k - 1) * (q + 1))
    total = targets.sum()
    scale = 1.0 / max(total, 1e-300)  # optimise the mean, for well-scaled tolerances
    res = optimize.minimize(lambda t: tuple(v * scale for v in _objective(t, x1, targets, penalty)),
                            theta0, jac=True, method="L-BFGS-B",
                            options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15, "maxcor": 20})
    theta, unique = _newton_polish(res.x, x1, targets, penalty, scale)
    if (not res.success and res.nit >= max_iter) or not unique:
        warnings.warn(f"{name}: the logistic fit has no unique finite optimum (gradient norm "
                      f"{np.abs(res.jac).max():.2g} after {res.nit} iterations); the data may be separable, "
                      "or a parent state never occurs: set `penalty:` on the node",
                      ConvergenceWarning, stacklevel=3)
    w = theta.reshape(k - 1, q + 1)
    intercept = np.concatenate([[0.0], w[:, 0]])
    coef = np.vstack([np.zeros(q), w[:, 1:]])
    return LogisticCPD(intercept, coef)


def logistic_gradient(cpd: LogisticCPD, stats: LogisticStats, penalty: float = 0.0) -> np.ndarray:
    """Gradient of the penalised negative log-likelihood at ``cpd`` (zero at the optimum)."""
    x1 = np.hstack([np.ones((len(stats.features), 1)), stats.features])
    theta = np.hstack([cpd.intercept[1:, None], cpd.coef[1:]]).ravel()
    return _objective(theta, x1, stats.targets, penalty)[1]


def design(fam: Family, assign: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Features phi(u) for every entry of the batch shape, flattened: (prod(shape), q)."""
    n = int(np.prod(shape))
    disc = [(np.broadcast_to(assign[p], shape).reshape(-1), k) for p, k in zip(fam.disc, fam.cards)]
    cont = []
    for p in fam.cont:
        v = assign[p]  # (n_rows, d): repeat over the joint-state axes
        reps = n // len(v) if len(v) else 1
        cont.append(np.repeat(v, reps, axis=0) if reps > 1 else v)
    return logistic_features(disc, cont, n)


def feature_names(graph: Graph, fam: Family) -> list[str]:
    """``parent=state`` for states 1.. of each discrete parent, then the gaussian parents' columns."""
    names = []
    for p in fam.disc:
        names.extend(f"{graph.shown(fam.name, p)}={label}" for label in graph[p].labels[1:])
    for p in fam.cont:
        names.extend(graph.shown_columns(fam.name, p))
    return names


class LogisticKind:
    """``cpd: logistic`` -- a softmax regression on the parents' features."""

    name = "logistic"
    fields = ("intercept", "coef", "features")

    def stats(self, fam: Family, assign: dict[str, np.ndarray], n_rows: int,
              weights: np.ndarray | None = None, cache: dict | None = None) -> LogisticStats:
        shape = batch_shape(fam, assign, n_rows)
        child = np.broadcast_to(assign[fam.name], shape).reshape(-1)
        w = None if weights is None else np.broadcast_to(weights, shape).reshape(-1)
        return logistic_stats(design(fam, assign, shape), child, fam.var.n_states, weights=w)

    def from_stats(self, fam: Family, stats: LogisticStats, *, prior: dict | None = None, penalty: float = 0.0,
                   covariance: str = "full", reg_covar: float = 0.0,
                   init: Any = None) -> tuple[LogisticCPD, np.ndarray]:
        start = init if isinstance(init, LogisticCPD) else None
        return logistic_from_stats(stats, penalty, init=start, name=fam.var.decl), np.zeros(0, dtype=int)

    def log_prior(self, fam: Family, cpd: LogisticCPD, prior: dict | None) -> float:
        return 0.0

    def log_prob(self, fam: Family, cpd: LogisticCPD, assign: dict[str, np.ndarray], n_rows: int,
                 cache: dict | None = None) -> np.ndarray:
        shape = batch_shape(fam, assign, n_rows)
        child = np.broadcast_to(assign[fam.name], shape).reshape(-1)
        return cpd.log_prob(child, design(fam, assign, shape)).reshape(shape)

    def sample(self, fam: Family, cpd: LogisticCPD, values: dict[str, np.ndarray], n: int,
               rng: np.random.Generator) -> np.ndarray:
        return cpd.sample(design(fam, values, (n,)), rng)

    def log_factor(self, fam: Family, cpd: LogisticCPD, observed: np.ndarray | None) -> ScopedTable:
        codes = all_configs(fam)
        feats = logistic_features([(codes[:, i], k) for i, k in enumerate(fam.cards)], [], len(codes))
        return fam.disc + (fam.name,), cpd.log_probs(feats).reshape(fam.cards + (fam.var.n_states,))

    def to_params(self, graph: Graph, fam: Family, cpd: LogisticCPD) -> dict[str, Any]:
        return {"intercept": floats(cpd.intercept), "coef": floats(cpd.coef), "features": feature_names(graph, fam)}

    def from_params(self, graph: Graph, fam: Family, block: dict[str, Any], where: str) -> LogisticCPD:
        names = feature_names(graph, fam)
        given = block.get("features", names)
        if not isinstance(given, list) or [str(f) for f in given] != names:
            raise ModelError(f"{where}.features: expected {names}, got {given!r}; the columns of `coef` "
                             "follow this order (fix the list, or refit the model)")
        k = fam.var.n_states
        return LogisticCPD(read_array(block, "intercept", (k,), where),
                           read_array(block, "coef", (k, len(names)), where))

    def frame(self, graph: Graph, fam: Family, cpd: LogisticCPD) -> pd.DataFrame:
        """One row per state, with the intercept and one column per feature."""
        cols = ["intercept"] + feature_names(graph, fam)
        return pd.DataFrame(np.hstack([cpd.intercept[:, None], cpd.coef]),
                            index=pd.Index(list(fam.var.labels), name=fam.var.decl), columns=cols)

    def n_params(self, graph: Graph, fam: Family) -> int:
        n_feat = 1 + sum(k - 1 for k in fam.cards) + fam.cont_dim
        return (max(fam.var.n_states, 2) - 1) * n_feat

    def random_start(self, graph: Graph, fam: Family, moments: Moments, rng: np.random.Generator,
                     reg_covar: float) -> LogisticCPD:
        """Standard normal weights (a continuous parent's divided by its spread), row 0 the reference."""
        k = fam.var.n_states
        scale = [np.ones(n - 1) for n in fam.cards]
        for p in fam.cont:
            _, cov = moments((p,), graph[p].dim)
            scale.append(1.0 / np.sqrt(np.diag(cov)))
        scale = np.concatenate(scale) if scale else np.zeros(0)
        coef = rng.standard_normal((k, len(scale))) * scale
        intercept = rng.standard_normal(k)
        coef[0], intercept[0] = 0.0, 0.0
        return LogisticCPD(intercept, coef)

    def init_shapes(self, fam: Family) -> tuple[type, dict[str, tuple[int, ...]]]:
        q = sum(n - 1 for n in fam.cards) + fam.cont_dim
        return LogisticCPD, {"intercept": (fam.var.n_states,), "coef": (fam.var.n_states, q)}

    def same_across(self, fam: Family, axis: int, cpd: LogisticCPD, tol: float) -> bool:
        """The weights of the parent's indicators are zero."""
        start = sum(n - 1 for n in fam.cards[:axis])
        return bool(np.all(np.abs(cpd.coef[:, start:start + fam.cards[axis] - 1]) <= tol))


LOGISTIC = LogisticKind()
