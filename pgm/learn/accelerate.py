r"""Monotone squared extrapolation of EM (SQUAREM; Varadhan & Roland 2008, scheme S3).

EM's update ``theta -> M(theta)`` converges linearly, and slowly when much information is missing
(factor analysis near a Heywood case, mixtures of overlapping components).  SQUAREM takes two EM
updates, ``theta1 = M(theta0)`` and ``theta2 = M(theta1)``, and jumps along them::

    r = theta1 - theta0,  v = theta2 - theta1 - r,  alpha = -|r| / |v|  (clamped to [-step_max, -1])
    theta' = theta0 - 2 alpha r + alpha^2 v

``alpha = -1`` gives ``theta2`` (two plain EM updates).  ``step_max`` starts at 1 and is multiplied by
4 each time the step reaches it (and divided by 4, not below 1, when an extrapolation is rejected),
as in the reference implementation (R package SQUAREM).

EM's guarantee is kept by a safeguard: the extrapolated point is kept only when its objective (the
log-likelihood plus log-prior that EM records) is at least that of ``theta1``; otherwise the plain
update ``theta2 = M(theta1)``, already computed, is evaluated instead, and EM cannot decrease from
there.  The next cycle starts from whichever was kept (its E-step is the one just done, so its
update ``M(theta')`` is the stabilising EM step of the reference scheme).  Every recorded value is
therefore at least the previous one.  EM's stopping rule is applied after plain updates only (a
kept extrapolation can gain little over ``theta1`` far from convergence).

Extrapolation runs in a parameterisation where every point is a valid parameter set: table rows
(and noisy-OR probabilities) in log space, renormalised (a structural zero stays zero, as EM keeps
it); covariances by their Cholesky factors with log diagonals (positive definite, and a diagonal,
spherical, tied or fixed covariance keeps its form: equal entries extrapolate equally);
regression coefficients, means and logistic weights as they are.  A CPD of any other kind takes
the plain update ``theta2``.  Used by :func:`pgm.learn.em.fit_em` (``accelerate=True``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from pgm.cpd.family import CPD
from pgm.cpd.linear import LinearCPD
from pgm.cpd.logistic import LogisticCPD
from pgm.cpd.noisy_or import NoisyOrCPD
from pgm.cpd.table import TableCPD
from pgm.errors import PGMError

#: The first cycles' largest step and its growth factor (R's SQUAREM: step.max0 = 1, mstep = 4).
STEP_MAX0 = 1.0
STEP_GROWTH = 4.0
#: Extrapolated log-probabilities are kept within this of their row's largest (exp(-700) > 0).
LOG_FLOOR = -700.0


def _cholesky_params(cov: np.ndarray) -> list[np.ndarray] | None:
    """(log of the Cholesky diagonal, the strictly lower part) of each covariance (C, d, d)."""
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    d = cov.shape[-1]
    diag = np.einsum("cii->ci", chol)
    if np.any(diag <= 0):
        return None
    return [np.log(diag), chol[:, np.tri(d, k=-1, dtype=bool)]]


def _from_cholesky(cov: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    d = cov.shape[-1]
    chol = np.zeros_like(cov)
    chol[:, np.tri(d, k=-1, dtype=bool)] = params[1]
    idx = np.arange(d)
    chol[:, idx, idx] = np.exp(params[0])
    return chol @ np.swapaxes(chol, -1, -2)


def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def to_free(cpd: CPD) -> list[np.ndarray] | None:
    """The CPD's parameters as unconstrained arrays (None: a kind this module does not extrapolate).
    Entries that are not finite (log 0) are held fixed by :func:`extrapolate`."""
    if isinstance(cpd, TableCPD):
        return [cpd.log_probs]
    if isinstance(cpd, LinearCPD):
        chol = _cholesky_params(cpd.cov)
        return None if chol is None else [cpd.intercept, cpd.coef, *chol]
    if isinstance(cpd, LogisticCPD):
        return [np.asarray(cpd.intercept, dtype=float), np.asarray(cpd.coef, dtype=float)]
    if isinstance(cpd, NoisyOrCPD):
        return [_logit(np.array([cpd.leak])), _logit(cpd.p)]
    return None


def from_free(like: CPD, params: list[np.ndarray]) -> CPD:
    """A CPD of the same kind and shape as ``like`` from :func:`to_free`'s arrays."""
    if isinstance(like, TableCPD):  # a state possible in theta2 keeps a probability > 0 (no row becomes impossible)
        x = params[0]
        top = np.max(x, axis=1, keepdims=True)
        p = np.exp(np.maximum(x - np.where(np.isfinite(top), top, 0.0), LOG_FLOOR))
        p = np.where(np.isneginf(x), 0.0, p)
        return TableCPD(p / p.sum(axis=1, keepdims=True))
    if isinstance(like, LinearCPD):
        return replace(like, intercept=params[0], coef=params[1], cov=_from_cholesky(like.cov, params[2:]))
    if isinstance(like, LogisticCPD):
        return LogisticCPD(params[0], params[1])
    if isinstance(like, NoisyOrCPD):  # strictly inside (0, 1) where theta2 was
        leak, p = (np.where(np.isfinite(a), np.clip(1.0 / (1.0 + np.exp(-a)), 1e-12, 1 - 1e-12),
                            np.where(a > 0, 1.0, 0.0)) for a in params)
        return NoisyOrCPD(float(leak[0]), p)
    raise TypeError(type(like).__name__)


def extrapolate(theta0: dict[str, CPD], theta1: dict[str, CPD], theta2: dict[str, CPD],
                step_max: float) -> tuple[dict[str, CPD] | None, float]:
    """SQUAREM's point ``theta'`` from three successive EM iterates, and its ``alpha``.

    None when there is nothing to extrapolate (EM has stopped moving, ``alpha = -1``) or the point
    is not a valid parameter set (then ``theta2`` is the step)."""
    free = {}
    for key in theta2:
        ps = [to_free(t[key]) for t in (theta0, theta1, theta2)]
        if all(p is not None for p in ps) and all(len(p) == len(ps[0]) for p in ps):
            free[key] = ps
    rr = vv = 0.0
    parts = {}
    for key, (p0, p1, p2) in free.items():
        for a0, a1, a2 in zip(p0, p1, p2):
            ok = np.isfinite(a0) & np.isfinite(a1) & np.isfinite(a2)
            a0, a1 = np.where(ok, a0, 0.0), np.where(ok, a1, 0.0)
            r = a1 - a0
            v = np.where(ok, a2, 0.0) - 2 * a1 + a0
            rr += float(np.sum(r * r))
            vv += float(np.sum(v * v))
            parts.setdefault(key, []).append((ok, a0, r, v, a2))
    if not (rr > 0 and vv > 0 and np.isfinite(rr) and np.isfinite(vv)):
        return None, -1.0
    alpha = max(-np.sqrt(rr / vv), -step_max)
    if alpha >= -1.0:
        return None, -1.0
    out = dict(theta2)
    try:
        with np.errstate(all="ignore"):
            for key, arrays in parts.items():
                new = [np.where(ok, a0 - 2 * alpha * r + alpha * alpha * v, a2) for ok, a0, r, v, a2 in arrays]
                if not all(np.all(np.isfinite(a) | ~ok) for a, (ok, *_) in zip(new, arrays)):
                    return None, alpha
                cpd = from_free(theta2[key], new)
                if isinstance(cpd, TableCPD) and not np.all(np.isfinite(cpd.probs)):
                    return None, alpha
                out[key] = cpd
    except (PGMError, np.linalg.LinAlgError, FloatingPointError):
        return None, alpha
    return out, alpha


class Squarem:
    """The extrapolation's state across one EM run (see the module docstring).

    EM calls :meth:`next` with the parameters it has just evaluated and kept and their update,
    and evaluates what it returns; after each evaluation :meth:`accept` says whether the point is
    kept (an extrapolated point below ``theta1``'s objective is not); when it is not,
    :meth:`fallback` gives the plain update to evaluate instead."""

    def __init__(self) -> None:
        self.step_max = STEP_MAX0
        self.theta0: dict[str, CPD] | None = None   # the cycle's start, when its update was returned
        self.pending: dict[str, CPD] | None = None  # theta2 while theta' is being evaluated
        self.threshold = -np.inf
        self.value = -np.inf
        self.extrapolated = 0
        self.rejected = 0
        #: whether the parameters kept last are the plain EM update of the ones kept before (EM's
        #: stopping rule applies to those; a kept extrapolation may gain little over theta1 even far
        #: from convergence)
        self.plain = True

    def accept(self, value: float) -> bool:
        """Whether the parameters just evaluated (objective ``value``) are kept."""
        if self.pending is None:
            self.value, self.plain = value, True
            return True
        if value >= self.threshold:
            self.pending = None
            self.value, self.plain = value, False
            return True
        self.rejected += 1
        self.step_max = max(STEP_MAX0, self.step_max / STEP_GROWTH)
        return False

    @property
    def extrapolating(self) -> bool:
        """Whether the parameters being evaluated are an extrapolated point (which may be rejected)."""
        return self.pending is not None

    def fallback(self) -> dict[str, CPD]:
        """The plain update ``theta2`` after a rejected extrapolation (EM cannot decrease from theta1)."""
        assert self.pending is not None
        theta2, self.pending = self.pending, None
        return theta2

    def next(self, cpds: dict[str, CPD], updated: dict[str, CPD]) -> dict[str, CPD]:
        """What to evaluate next, given the parameters just kept and their EM update."""
        if self.theta0 is None:  # a cycle starts: evaluate theta1 = M(theta0)
            self.theta0 = cpds
            return updated
        theta0, self.theta0 = self.theta0, None
        point, alpha = extrapolate(theta0, cpds, updated, self.step_max)
        if alpha <= -self.step_max:  # the step was clamped: allow longer ones
            self.step_max *= STEP_GROWTH
        if point is None:
            return updated  # theta2, a plain EM point: it starts the next cycle
        self.pending = updated
        self.threshold = self.value
        self.extrapolated += 1
        return point


def make_accelerator(accelerate: Any) -> Squarem | None:
    """A fresh :class:`Squarem` for one EM run when ``accelerate`` is true, else None."""
    return Squarem() if accelerate else None
