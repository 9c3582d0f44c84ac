r"""Noisy-OR CPD: a binary node that each of its binary parents can switch on.

The first listed state of the node and of every parent means "off".  A leak turns the
node on whatever the parents, each parent that is on turns it on independently with
probability ``p_i``, and it is off only when none of them does:

    P(off | u) = (1 - leak) * prod_{i : u_i on} (1 - p_i)

k parents take k + 1 parameters instead of a table's 2^k.

Maximum likelihood.  With ``theta_0 = log(1 - leak)``, ``theta_i = log(1 - p_i)`` (all
``<= 0``) and ``eta_c = theta_0 + sum_i a_i(c) theta_i`` for parent configuration ``c``
(``a_i(c) = 1`` when parent i is on), the log-likelihood is

    l(theta) = sum_c  n_off(c) eta_c + n_on(c) log(1 - exp(eta_c)),

linear in ``eta`` plus ``log(1 - e^eta)``, which is concave for ``eta < 0``; ``eta`` is
linear in ``theta``, so ``l`` is concave on the box ``theta <= 0``.  Its sufficient
statistics are the (weighted, or under EM expected) counts ``n(c, state)`` per parent
configuration -- the table kind's statistics, computed by the same code, so hidden
parents and missing cells work exactly as for a table -- and the fit is a bound-
constrained convex problem in k + 1 variables over at most 2^k count rows, never over
data rows, solved by projected Newton steps with the analytic gradient and Hessian.  ``p_i = 0`` (a parent with no effect) and ``leak = 0`` are reachable.

A Dirichlet prior (``dirichlet: a`` or ``bdeu: ess``, as for a table) adds its pseudo-counts
to every (configuration, state) cell before the fit: pseudo-observations of the node, whose
log-likelihood is the log-prior that EM adds to its history.  A parent that is never on
(no weight on any configuration where it is on) leaves its ``p_i`` undetermined: it is set
to 0 with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pgm.cpd.base import Family, Moments, ScopedTable, all_configs, floats, read_array
from pgm.cpd.counts import TableStats, family_table_stats, prior_pseudo_counts
from pgm.errors import DataWarning, ModelError
from pgm.graph import Graph

#: theta = log(1 - p) is kept in [LOWEST, 0]: p = 1 - e^-40 (~1 - 4e-18) is 1 in floating point.
LOWEST = -40.0
#: eta is kept below this where the node is on, so log(1 - e^eta) stays finite near the bound.
EDGE = -1e-100


@dataclass(frozen=True)
class NoisyOrCPD:
    """leak (a float) and p (k,): each parent's probability of switching the node on alone."""

    leak: float
    p: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "leak", float(self.leak))
        object.__setattr__(self, "p", np.ascontiguousarray(self.p, dtype=np.float64))

    def log_off(self, on: list[np.ndarray]) -> np.ndarray:
        """log P(off | parents) for parent indicators ``on`` (bool arrays, broadcastable)."""
        with np.errstate(divide="ignore"):
            eta = np.log1p(-self.leak) + np.zeros(np.broadcast_shapes(*(np.shape(x) for x in on)) if on else ())
            for a, t in zip(on, np.log1p(-self.p)):
                eta = eta + np.where(a, t, 0.0)  # not a * t: t is -inf when p = 1
        return eta

    def log_prob(self, child: np.ndarray, on: list[np.ndarray]) -> np.ndarray:
        eta = self.log_off(on)
        with np.errstate(divide="ignore"):
            return np.where(np.asarray(child) > 0, np.log(-np.expm1(eta)), eta)

    def sample(self, on: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        """One draw per row: on with probability 1 - P(off | parents)."""
        p_on = -np.expm1(np.broadcast_to(self.log_off(on), (n,)))
        return (rng.random(n) < p_on).astype(np.int64)


def _design(k: int) -> np.ndarray:
    """[1, a_1(c), ..., a_k(c)] for every configuration c of k binary parents in index order: (2^k, k + 1)."""
    a = np.indices((2,) * k).reshape(k, -1).T if k else np.zeros((1, 0), dtype=np.int64)
    return np.hstack([np.ones((len(a), 1)), a.astype(np.float64)])


def _neg_log_lik(theta: np.ndarray, x1: np.ndarray, off: np.ndarray, on: np.ndarray) -> tuple[float, np.ndarray]:
    """-l(theta) and its gradient.  d l / d eta = n_off - n_on / (e^-eta - 1)."""
    eta = x1 @ theta
    edge = np.minimum(eta, EDGE)
    value = off @ eta + on @ np.log(-np.expm1(edge))
    slope = off - on / np.expm1(-edge)
    return -float(value), -(x1.T @ slope)


def _hessian(theta: np.ndarray, x1: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Hessian of -l: x1' diag(n_on e^-eta / (e^-eta - 1)^2) x1 (positive semi-definite)."""
    edge = np.minimum(x1 @ theta, EDGE)
    curv = on * np.exp(-edge) / np.expm1(-edge) ** 2
    return (x1 * curv[:, None]).T @ x1


def _projected_newton(theta: np.ndarray, x1: np.ndarray, off: np.ndarray, on: np.ndarray,
                      fixed: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """Minimise -l on the box [LOWEST, 0] by projected Newton steps (Bertsekas 1982): parameters on a
    bound whose gradient points outwards stay there, the others take a Newton step (a gradient step
    if the Hessian is singular), clipped to the box, halved until the Armijo condition holds.  Stops
    when the free gradient is zero to rounding or no step decreases the loss in floating point."""
    scale = 1.0 / float(off.sum() + on.sum())  # the mean, for well-scaled tolerances
    f, g = (v * scale for v in _neg_log_lik(theta, x1, off, on))
    for _ in range(max_iter):
        held = fixed | ((theta <= LOWEST) & (g > 0)) | ((theta >= 0.0) & (g < 0))
        free = ~held
        if not free.any() or np.abs(g[free]).max() <= 1e-13:
            break
        hess = _hessian(theta, x1, on)[np.ix_(free, free)] * scale
        step = np.zeros_like(theta)
        try:
            step[free] = -np.linalg.solve(hess + 1e-12 * max(float(np.trace(hess)), 1e-300) * np.eye(free.sum()),
                                          g[free])
        except np.linalg.LinAlgError:
            step[free] = -g[free]
        if not g[free] @ step[free] < 0:  # not a descent direction (rounding): fall back to the gradient
            step[free] = -g[free]
        alpha = 1.0
        while alpha > 1e-12:
            candidate = np.clip(theta + alpha * step, LOWEST, 0.0)
            fc, gc = (v * scale for v in _neg_log_lik(candidate, x1, off, on))
            if fc <= f + 1e-4 * (g @ (candidate - theta)):
                break
            alpha /= 2
        else:
            break
        if fc >= f and np.abs(gc[free]).max() >= np.abs(g[free]).max():
            break
        theta, f, g = candidate, fc, gc
    return theta


def noisy_or_from_counts(counts: np.ndarray, init: NoisyOrCPD | None = None, name: str = "node") -> NoisyOrCPD:
    """Maximum likelihood from counts (2^k, 2) of (parent configuration, state), first parent slowest.

    Parameters
    ----------
    counts : weighted counts of (off, on) per configuration of the k binary parents
    init : a starting point (EM's previous parameters); otherwise leak = p_i = 1/2
    """
    k = int(round(np.log2(counts.shape[0])))
    x1 = _design(k)
    seen = counts.sum(axis=1) > 0
    x1, off, on = x1[seen], counts[seen, 0], counts[seen, 1]
    total = float(off.sum() + on.sum())
    if total <= 0:
        raise ModelError(f"{name}: no data to fit this noisy-or node (every row weight is zero)")
    with np.errstate(divide="ignore"):  # a start with p = 1 is clipped below
        start = np.log1p(-np.concatenate([[0.5 if init is None else init.leak], np.full(k, 0.5) if init is None
                                          else init.p]))
    theta = np.clip(start, LOWEST, np.log(1 - 1e-6))  # inside the box: every log(1 - e^eta) finite
    never = np.flatnonzero(x1[:, 1:].T @ (off + on) <= 0)
    theta[1 + never] = 0.0
    theta = _projected_newton(theta, x1, off, on, np.isin(np.arange(k + 1), 1 + never))
    if never.size:
        warnings.warn(f"{name}: parent{'s' if never.size > 1 else ''} {[int(i) for i in never]} (in `parents:` "
                      "order) never on in the data: p is undetermined and set to 0", DataWarning, stacklevel=4)
    return NoisyOrCPD(0.0 - np.expm1(theta[0]), 0.0 - np.expm1(theta[1:]))  # 0.0 - : never -0.0


class NoisyOrKind:
    """``cpd: noisy-or`` -- a binary node with binary parents, a leak and one probability per parent."""

    name = "noisy-or"
    fields = ("leak", "p")

    @staticmethod
    def _on(fam: Family, assign: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(assign[p]) > 0 for p in fam.disc]

    def stats(self, fam: Family, assign: dict[str, np.ndarray], n_rows: int,
              weights: np.ndarray | None = None, cache: dict | None = None) -> TableStats:
        return family_table_stats(fam, assign, n_rows, weights)

    def from_stats(self, fam: Family, stats: TableStats, *, prior: dict | None = None, penalty: float = 0.0,
                   covariance: str = "full", reg_covar: float = 0.0,
                   init: Any = None) -> tuple[NoisyOrCPD, np.ndarray]:
        counts = stats.counts + prior_pseudo_counts(prior, *stats.counts.shape)
        start = init if isinstance(init, NoisyOrCPD) else None
        return noisy_or_from_counts(counts, start, fam.var.decl), np.zeros(0, dtype=int)

    def log_prior(self, fam: Family, cpd: NoisyOrCPD, prior: dict | None) -> float:
        """sum of a[c, s] * log P(s | c): the log-likelihood of the prior's pseudo-counts."""
        a = prior_pseudo_counts(prior, fam.n_configs, 2)
        if not np.any(a):
            return 0.0
        _, table = self.log_factor(fam, cpd, None)
        return float(np.sum(a * np.maximum(table.reshape(fam.n_configs, 2), np.log(1e-300))))

    def log_prob(self, fam: Family, cpd: NoisyOrCPD, assign: dict[str, np.ndarray], n_rows: int,
                 cache: dict | None = None) -> np.ndarray:
        return cpd.log_prob(assign[fam.name], self._on(fam, assign))

    def sample(self, fam: Family, cpd: NoisyOrCPD, values: dict[str, np.ndarray], n: int,
               rng: np.random.Generator) -> np.ndarray:
        return cpd.sample(self._on(fam, values), n, rng)

    def log_factor(self, fam: Family, cpd: NoisyOrCPD, observed: np.ndarray | None) -> ScopedTable:
        codes = all_configs(fam)
        table = np.stack([cpd.log_prob(s, list(codes.T > 0)) for s in (0, 1)], axis=-1)
        return fam.disc + (fam.name,), table.reshape(fam.cards + (2,))

    def to_params(self, graph: Graph, fam: Family, cpd: NoisyOrCPD) -> dict[str, Any]:
        return {"leak": floats(cpd.leak), "p": floats(cpd.p)}

    def from_params(self, graph: Graph, fam: Family, block: dict[str, Any], where: str) -> NoisyOrCPD:
        leak = read_array(block, "leak", (), where)
        p = read_array(block, "p", (len(fam.disc),), where)
        for field_, value in (("leak", leak), ("p", p)):
            if np.any(value < 0) or np.any(value > 1):
                raise ModelError(f"{where}.{field_}: probabilities must be in [0, 1]")
        return NoisyOrCPD(float(leak), p)

    def frame(self, graph: Graph, fam: Family, cpd: NoisyOrCPD) -> pd.DataFrame:
        """One row for the leak and one per parent: the probability that it alone turns the node on."""
        on = graph[fam.name].labels[1]
        return pd.DataFrame({f"p({fam.var.decl}={on})": [cpd.leak, *cpd.p]},
                            index=pd.Index(["leak", *fam.disc], name="cause"))

    def n_params(self, graph: Graph, fam: Family) -> int:
        return len(fam.disc) + 1

    def random_start(self, graph: Graph, fam: Family, moments: Moments, rng: np.random.Generator,
                     reg_covar: float) -> NoisyOrCPD:
        """A leak uniform in [0.05, 0.3) and each p_i uniform in [0.2, 0.8): every row has P(on) in (0, 1)."""
        return NoisyOrCPD(rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.8, len(fam.disc)))

    def init_shapes(self, fam: Family) -> tuple[type, dict[str, tuple[int, ...]]]:
        return NoisyOrCPD, {"leak": (), "p": (len(fam.disc),)}

    def same_across(self, fam: Family, axis: int, cpd: NoisyOrCPD, tol: float) -> bool:
        """The parent never turns the node on."""
        return bool(cpd.p[axis] <= tol)


NOISY_OR = NoisyOrKind()
