r"""Linear-Gaussian CPD (conditional linear Gaussian).

For each configuration c of the discrete parents, the node y (dim d) given its
continuous parents x (concatenated, dim p) is

    y | x, c  ~  N(b_c + W_c x,  Sigma_c)

Sufficient statistics per configuration are the weight ``w_c``, the mean of
z = [x, y] and its *centred* scatter matrix, merged across chunks with the
parallel-variance update (Chan, Golub & LeVeque 1979), so they hold to ~1e-12
even for data far from the origin.  The MLE is least squares on the centred
blocks: ``W_c = S_yx S_xx^{-1}``, ``b_c = mean_y - W_c mean_x``,
``Sigma_c = (S_yy - W_c S_xy) / w_c``, then restricted by the covariance type
(full, diag, spherical, or tied across configurations) and floored by ``reg_covar``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from pgm.cpd.base import (Family, Moments, ScopedTable, config_labels, configs, continuous, floats, lead, read_array,
                          same_along)
from pgm.errors import DataWarning, ModelError
from pgm.graph import Graph

LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class GaussStats:
    """weight (C,), mean (C, m), scatter (C, m, m) of z = [x, y] per configuration."""

    weight: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray

    def __add__(self, other: "GaussStats") -> "GaussStats":
        w = self.weight + other.weight
        safe = np.where(w > 0, w, 1.0)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.weight / safe)[:, None]
        corr = (self.weight * other.weight / safe)[:, None, None] * delta[:, :, None] * delta[:, None, :]
        return GaussStats(w, mean, self.scatter + other.scatter + corr)


def gauss_stats(z: np.ndarray, configs: np.ndarray | int, n_configs: int,
                weights: np.ndarray | None = None, resp: np.ndarray | None = None) -> GaussStats:
    """Weighted mean and centred scatter of ``z`` per configuration.

    Parameters
    ----------
    z : array of shape (n_rows, m)
    configs : int array of shape (n_rows,) or 0 (hard assignment of rows to configurations)
    weights : array of shape (n_rows,) or None, a weight per row
    resp : array of shape (n_rows, n_configs) or None, soft assignment (EM); overrides ``configs``
    """
    n, m = z.shape
    weight = np.zeros(n_configs)
    mean = np.zeros((n_configs, m))
    scatter = np.zeros((n_configs, m, m))
    if resp is not None:
        r = resp if weights is None else resp * weights[:, None]
        weight = r.sum(axis=0)
        safe = np.where(weight > 0, weight, 1.0)
        mean = (r.T @ z) / safe[:, None]
        for c in range(n_configs):
            d = z - mean[c]
            scatter[c] = (d * r[:, c:c + 1]).T @ d
        return GaussStats(weight, mean, scatter)
    if isinstance(configs, int) or n_configs == 1:
        groups = [(0, slice(None))]
    else:
        order = np.argsort(configs, kind="stable")
        bounds = np.searchsorted(configs[order], np.arange(n_configs + 1))
        groups = [(c, order[bounds[c]:bounds[c + 1]]) for c in range(n_configs) if bounds[c + 1] > bounds[c]]
    for c, rows in groups:
        zc = z[rows]
        wc = None if weights is None else weights[rows]
        if wc is None:
            weight[c] = len(zc)
            mean[c] = zc.mean(axis=0) if len(zc) else 0.0
            d = zc - mean[c]
            scatter[c] = d.T @ d
        else:
            weight[c] = wc.sum()
            mean[c] = (wc @ zc) / weight[c] if weight[c] > 0 else 0.0
            d = zc - mean[c]
            scatter[c] = (d * wc[:, None]).T @ d
    return GaussStats(weight, mean, scatter)


@dataclass(frozen=True)
class LinearCPD:
    """intercept (C, d), coef (C, d, p), cov (C, d, d); ``covariance`` names the type."""

    intercept: np.ndarray
    coef: np.ndarray
    cov: np.ndarray
    covariance: str = "full"

    def __post_init__(self) -> None:
        # one memory layout however the arrays were made (a fit's transposed views, a file's lists): BLAS
        # sums in an order that depends on it, and a saved model must score bit-for-bit as the fitted one
        for name in ("intercept", "coef", "cov"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))

    @property
    def dim(self) -> int:
        return self.intercept.shape[1]

    def _chol(self) -> tuple[np.ndarray, np.ndarray]:
        """Cholesky factors (C, d, d) and log-determinants (C,) of the covariances."""
        try:
            chol = np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError:
            raise ModelError("a covariance matrix is not positive definite; increase reg_covar") from None
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        return chol, logdet

    def mean(self, x: np.ndarray | None, configs: np.ndarray | int) -> np.ndarray:
        """E[y | x, c], shape (n_rows, d)."""
        mu = self.intercept[configs]
        if x is not None and self.coef.shape[2]:
            mu = mu + np.einsum("...dp,...p->...d", self.coef[configs], x)
        return mu

    def log_prob(self, y: np.ndarray, x: np.ndarray | None, configs: np.ndarray | int) -> np.ndarray:
        """log N(y; b_c + W_c x, Sigma_c) per row; y (n, d), x (n, p) or None, configs (n,) or 0."""
        diff = y - self.mean(x, configs)
        if isinstance(configs, (int, np.integer)):
            std = diff @ self.prec_chol[configs]
            return self.log_norm[configs] - 0.5 * np.einsum("nd,nd->n", std, std)
        std = np.einsum("nd,nde->ne", diff, self.prec_chol[np.asarray(configs)])
        return self.log_norm[configs] - 0.5 * np.einsum("nd,nd->n", std, std)

    @cached_property
    def prec_chol(self) -> np.ndarray:
        """Upper factors U with U U^T = Sigma^{-1} (C, d, d): ``(y - mu) @ U`` is standardised."""
        chol, _ = self._chol()
        # one batched inverse of the (tiny) triangular factors: no per-configuration LAPACK call
        return np.transpose(np.linalg.inv(chol), (0, 2, 1))

    @cached_property
    def log_norm(self) -> np.ndarray:
        """-(d log 2 pi + log det Sigma_c) / 2 for every configuration: (C,)."""
        _, logdet = self._chol()
        return -0.5 * (self.dim * LOG_2PI + logdet)

    def log_prob_all(self, y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """log density under every configuration: array of shape (n_rows, C)."""
        n_configs = self.intercept.shape[0]
        out = np.empty((len(y), n_configs))
        for c in range(n_configs):
            std = (y - self.mean(x, c)) @ self.prec_chol[c]
            out[:, c] = self.log_norm[c] - 0.5 * np.einsum("nd,nd->n", std, std)
        return out

    def sample(self, x: np.ndarray | None, configs: np.ndarray | int, n_rows: int,
               rng: np.random.Generator) -> np.ndarray:
        chol, _ = self._chol()
        noise = rng.standard_normal((n_rows, self.dim))
        mu = self.mean(x, configs)
        mu = np.broadcast_to(mu, (n_rows, self.dim))
        return mu + np.einsum("nde,ne->nd", np.broadcast_to(chol[configs], (n_rows, self.dim, self.dim)), noise) \
            if not isinstance(configs, (int, np.integer)) else mu + noise @ chol[configs].T


def condition_missing(cpd: LinearCPD, y: np.ndarray, x: np.ndarray | None) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray]:
    """Rows whose child ``y`` (n, d) has missing (NaN) components, under every configuration.

    Returns ``(log_prob, mean, cov)``: the marginal log-density of each row's observed components
    (n, C) (0 where none is observed), the conditional mean of the whole vector (n, C, d) (the
    observed components as given, the missing ones E[y_h | y_o, x, c] = mu_h + S_ho S_oo^-1 (y_o - mu_o))
    and its conditional covariance (n, C, d, d) (S_hh - S_ho S_oo^-1 S_oh on the missing block, 0
    elsewhere).  Vectorised over the rows of each missingness pattern (a loop over patterns only)."""
    n, d = y.shape
    n_configs = cpd.intercept.shape[0]
    miss = np.isnan(y)
    mu_all = np.broadcast_to(cpd.intercept[None], (n, n_configs, d))
    if x is not None and cpd.coef.shape[2]:
        mu_all = mu_all + np.einsum("cdp,np->ncd", cpd.coef, x)
    log_prob = np.zeros((n, n_configs))
    mean = np.array(mu_all, dtype=np.float64)
    cov = np.zeros((n, n_configs, d, d))
    if not n:
        return log_prob, mean, cov
    patterns, inverse = np.unique(miss, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for k, pat in enumerate(patterns):
        rows = np.flatnonzero(inverse == k)
        o, h = np.flatnonzero(~pat), np.flatnonzero(pat)
        mu = mu_all[rows]                                                        # (r, C, d)
        if not o.size:
            cov[rows] = cpd.cov[None]
            continue
        s_oo = cpd.cov[:, o][:, :, o]                                            # (C, no, no)
        try:
            chol = np.linalg.cholesky(s_oo)
        except np.linalg.LinAlgError:
            raise ModelError("a covariance matrix is not positive definite; increase reg_covar") from None
        linv = np.linalg.inv(chol)
        resid = y[rows][:, None, o] - mu[:, :, o]                                # (r, C, no)
        std = np.einsum("cij,rcj->rci", linv, resid)
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        log_prob[rows] = -0.5 * (o.size * LOG_2PI + logdet)[None] - 0.5 * np.einsum("rci,rci->rc", std, std)
        m = mu.copy()
        m[:, :, o] = y[rows][:, None, o]
        if h.size:
            prec = np.einsum("cji,cjk->cik", linv, linv)                         # S_oo^-1 = L^-T L^-1
            gain = np.einsum("chj,cjk->chk", cpd.cov[:, h][:, :, o], prec)       # (C, nh, no)
            m[:, :, h] += np.einsum("chj,rcj->rch", gain, resid)
            post = cpd.cov[:, h][:, :, h] - np.einsum("chj,cjk->chk", gain, cpd.cov[:, o][:, :, h])
            post = 0.5 * (post + np.transpose(post, (0, 2, 1)))
            block = np.zeros((n_configs, d, d))
            block[np.ix_(np.arange(n_configs), h, h)] = post
            cov[rows] = block[None]
        mean[rows] = m
    return log_prob, mean, cov


def missing_stats(x: np.ndarray | None, mean: np.ndarray, cov: np.ndarray, resp: np.ndarray) -> GaussStats:
    """Expected statistics of z = [x, y] per configuration for rows with missing components of y, from
    :func:`condition_missing`'s ``mean`` (n, C, d) and ``cov`` (n, C, d, d) and the rows' posterior
    weight of each configuration ``resp`` (n, C): E[z z^T] adds the conditional covariance to the
    outer product of the conditional mean."""
    n, n_configs, d = mean.shape
    p = 0 if x is None else x.shape[1]
    weight = np.zeros(n_configs)
    mean_c = np.zeros((n_configs, p + d))
    scatter = np.zeros((n_configs, p + d, p + d))
    for c in np.flatnonzero(resp.sum(axis=0) > 0):
        z = mean[:, c] if x is None else np.hstack([x, mean[:, c]])
        one = gauss_stats(z, 0, 1, resp=resp[:, c:c + 1])
        weight[c], mean_c[c], scatter[c] = one.weight[0], one.mean[0], one.scatter[0]
        scatter[c, p:, p:] += np.einsum("r,rde->de", resp[:, c], cov[:, c])
    return GaussStats(weight, mean_c, scatter)


def linear_from_stats(stats: GaussStats, n_parents: int, covariance: str = "full",
                      reg_covar: float = 0.0, name: str = "node") -> tuple[LinearCPD, np.ndarray]:
    """Least-squares fit per configuration from centred statistics.

    Parameters
    ----------
    stats : GaussStats over z = [x (n_parents columns), y (d columns)]
    n_parents : p, the number of continuous regressor columns
    covariance : full | diag | spherical | tied
    reg_covar : added to the diagonal of every covariance (a floor against singular ones)

    Returns
    -------
    cpd : LinearCPD
    unseen : configurations with zero weight; they get the pooled fit of all configurations
    """
    p = n_parents
    C, m, _ = stats.scatter.shape
    d = m - p
    w = stats.weight
    seen = w > 0
    unseen = np.flatnonzero(~seen)
    if not seen.any():
        raise ModelError(f"{name}: no data to fit this gaussian node (every row weight is zero)")
    if unseen.size:  # pooled statistics fill the configurations no row reached
        total = GaussStats(np.zeros(1), np.zeros((1, m)), np.zeros((1, m, m)))
        for c in np.flatnonzero(seen):
            total = total + GaussStats(w[c:c + 1], stats.mean[c:c + 1], stats.scatter[c:c + 1])
        mean = stats.mean.copy()
        scatter = stats.scatter.copy()
        weight = w.copy()
        mean[unseen] = total.mean[0]
        scatter[unseen] = total.scatter[0]
        weight[unseen] = total.weight[0]
        stats = GaussStats(weight, mean, scatter)
        w = weight
    sxx = stats.scatter[:, :p, :p]
    sxy = stats.scatter[:, :p, p:]
    syy = stats.scatter[:, p:, p:]
    if p:
        coef_t = np.empty((C, p, d))
        for c in range(C):
            try:
                coef_t[c] = linalg.solve(sxx[c], sxy[c], assume_a="pos")
            except (linalg.LinAlgError, ValueError):
                coef_t[c] = linalg.lstsq(sxx[c], sxy[c])[0]
        coef = np.transpose(coef_t, (0, 2, 1))
        resid = syy - np.einsum("cpd,cpe->cde", sxy, coef_t)
    else:
        coef = np.zeros((C, d, 0))
        resid = syy.copy()
    resid = 0.5 * (resid + np.transpose(resid, (0, 2, 1)))
    intercept = stats.mean[:, p:] - np.einsum("cdp,cp->cd", coef, stats.mean[:, :p])
    eye = np.eye(d)
    if covariance == "tied":  # pooled over the configurations that rows reached (not their stand-ins)
        cov = np.broadcast_to(resid[seen].sum(axis=0) / w[seen].sum(), (C, d, d)).copy()
    else:
        cov = resid / w[:, None, None]
        if covariance == "diag":
            cov = np.einsum("cdd->cd", cov)[:, :, None] * eye
        elif covariance == "spherical":
            cov = np.einsum("cdd->c", cov)[:, None, None] / d * eye
    cov = cov + reg_covar * eye
    # a floor against singular covariances (a constant column, a component on one point)
    scale = np.maximum(np.abs(np.einsum("cdd->cd", cov)).max(axis=1), 1e-300)
    var = np.einsum("cdd->cd", cov)
    tiny = var <= 1e-12 * np.maximum(scale[:, None], 1.0) if reg_covar == 0 else np.zeros_like(var, bool)
    if reg_covar == 0 and d > 1 and covariance in ("full", "tied"):  # collinear columns: a singular matrix
        lam = np.linalg.eigvalsh(cov)  # ascending, per configuration
        tiny = tiny | (lam[:, :1] <= 1e-12 * np.maximum(lam[:, -1:], 1e-300))
    if tiny.any():
        warnings.warn(f"{name}: a variance is (nearly) zero (a constant column, collinear columns or too few rows); "
                      "it is floored at 1e-9 times the data scale. Pass reg_covar=... to set the floor yourself.",
                      DataWarning, stacklevel=3)
        floor = 1e-9 * np.maximum(1.0, np.abs(stats.mean[:, p:]).max())
        cov = cov + floor * eye
    return LinearCPD(intercept, coef, cov, covariance), unseen


def standard_cpd(fam: Family, covariance: str = "full") -> LinearCPD:
    """N(0, I) in every discrete-parent configuration (a standard latent gaussian, never fitted)."""
    C, d = fam.n_configs, fam.var.dim
    return LinearCPD(np.zeros((C, d)), np.zeros((C, d, fam.cont_dim)), np.broadcast_to(np.eye(d), (C, d, d)).copy(),
                     covariance)


@dataclass(frozen=True)
class Moments:
    """Data-side products for mixtures, computed once per fit: ``z - shift`` and the
    upper-triangular products of its columns, so the E-step log-densities and the
    M-step moments of all C configurations are each one matrix product."""

    shift: np.ndarray      # (m,)
    z: np.ndarray          # (n_rows, m), centred on shift
    zz: np.ndarray         # (n_rows, m (m + 1) / 2)
    iu: tuple[np.ndarray, np.ndarray]


def moments(z: np.ndarray) -> Moments:
    shift = z.mean(axis=0) if len(z) else np.zeros(z.shape[1])  # no rows (no sequence reaches step 2): no NaN
    zc = z - shift
    iu = np.triu_indices(z.shape[1])
    return Moments(shift, zc, zc[:, iu[0]] * zc[:, iu[1]], iu)


def quad_log_prob_all(cpd: LinearCPD, mom: Moments) -> np.ndarray:
    """log N(y; b_c, Sigma_c) for every row and configuration, no continuous parents: (n_rows, C).

    (y-mu)' P (y-mu) = y'Py - 2 mu'P y + mu'P mu with y, mu centred on the data mean;
    y'Py is ``zz @ vec(P)`` with off-diagonal terms doubled."""
    prec = np.einsum("cij,ckj->cik", cpd.prec_chol, cpd.prec_chol)      # (C, d, d) = U U^T
    mu = cpd.intercept - mom.shift                                       # (C, d)
    i, j = mom.iu
    a = prec[:, i, j] * np.where(i == j, 1.0, 2.0)                       # (C, n_pairs)
    pmu = np.einsum("cij,cj->ci", prec, mu)                              # (C, d)
    maha = mom.zz @ a.T - 2.0 * (mom.z @ pmu.T) + np.einsum("ci,ci->c", mu, pmu)
    return cpd.log_norm - 0.5 * maha


def quad_stats(mom: Moments, resp: np.ndarray) -> GaussStats:
    """GaussStats per configuration from soft assignments ``resp`` (n_rows, C) in two products."""
    weight = resp.sum(axis=0)
    safe = np.where(weight > 0, weight, 1.0)
    # (X^T R)^T rather than R^T X: OpenBLAS handles the long inner dimension far better this way
    s1 = (mom.z.T @ resp).T                                              # (C, m)
    s2 = (mom.zz.T @ resp).T                                             # (C, n_pairs)
    m = mom.z.shape[1]
    C = resp.shape[1]
    raw = np.zeros((C, m, m))
    i, j = mom.iu
    raw[:, i, j] = s2
    raw[:, j, i] = s2
    mean_c = s1 / safe[:, None]
    scatter = raw - weight[:, None, None] * mean_c[:, :, None] * mean_c[:, None, :]
    # The raw form loses about eps * w |mean - shift|^2 to cancellation; where that is not
    # negligible against the scatter (a tight component far from the data mean, one collapsing
    # on a point), recompute that component's scatter centred on its own mean.
    spread = np.einsum("cii->c", scatter)
    offset = weight * np.einsum("ci,ci->c", mean_c, mean_c)
    for c in np.flatnonzero((weight > 0) & (spread <= 1e-4 * offset)):
        d = mom.z - mean_c[c]
        scatter[c] = (d * resp[:, c:c + 1]).T @ d
    return GaussStats(weight, mean_c + mom.shift, scatter)


def _moments(fam: Family, assign: dict[str, np.ndarray], cache: dict | None) -> Moments | None:
    """Cached data products of a mixture family (gaussian child, only discrete parents)."""
    if cache is None or fam.cont:
        return None
    key = ("moments", fam.name)
    if key not in cache:
        cache[key] = moments(assign[fam.name])
    return cache[key]


def _is_joint_index(cfg: np.ndarray, n_configs: int) -> bool:
    """True when the configuration axis is exactly the joint-state axis (a plain mixture)."""
    return (np.ndim(cfg) == 2 and np.shape(cfg) == (1, n_configs)
            and bool(np.array_equal(np.asarray(cfg)[0], np.arange(n_configs))))


def _cov_to_params(cpd: LinearCPD, squeeze) -> Any:
    """How a covariance of each type is written in a params block (d > 1)."""
    if cpd.covariance == "full":
        return squeeze(cpd.cov)
    if cpd.covariance == "diag":
        return squeeze(np.einsum("cdd->cd", cpd.cov))
    if cpd.covariance == "spherical":
        return squeeze(cpd.cov[:, 0, 0])
    return cpd.cov[0]


def _persistent(rng: np.random.Generator, configs: int, k: int) -> np.ndarray:
    """Random symmetric k x k matrices (one per configuration) with eigenvalues drawn in [0.5, 1): the
    starting transition of a state from its own previous step."""
    basis = np.linalg.qr(rng.standard_normal((configs, k, k)))[0]
    values = rng.uniform(0.5, 1.0, (configs, k))
    return np.einsum("cij,cj,ckj->cik", basis, values, basis)


class LinearKind:
    """``cpd: linear`` (every gaussian node) -- a linear regression per discrete-parent configuration."""

    name = "linear"
    fields = ("intercept", "coef", "covariance")

    def stats(self, fam: Family, assign: dict[str, np.ndarray], n_rows: int,
              weights: np.ndarray | None = None, cache: dict | None = None) -> GaussStats:
        y = assign[fam.name]
        x = continuous(fam, assign)
        z = y if x is None else np.hstack([x, y])
        cfg = configs(fam, assign)
        if weights is None or np.ndim(weights) != 2:
            return gauss_stats(z, cfg, fam.n_configs, weights=weights)
        mom = _moments(fam, assign, cache)
        if _is_joint_index(cfg, fam.n_configs) and weights.shape == (n_rows, fam.n_configs):
            resp = weights
        else:
            cfg = np.broadcast_to(cfg, weights.shape)
            rows = np.broadcast_to(np.arange(n_rows)[:, None], weights.shape)
            resp = np.bincount((rows * fam.n_configs + cfg).reshape(-1), weights=weights.reshape(-1),
                               minlength=n_rows * fam.n_configs).reshape(n_rows, fam.n_configs)
        return quad_stats(mom, resp) if mom is not None else gauss_stats(z, 0, fam.n_configs, resp=resp)

    def from_stats(self, fam: Family, stats: GaussStats, *, prior: dict | None = None, penalty: float = 0.0,
                   covariance: str = "full", reg_covar: float = 0.0,
                   init: Any = None) -> tuple[LinearCPD, np.ndarray]:
        return linear_from_stats(stats, fam.cont_dim, covariance, reg_covar, fam.var.decl)

    def log_prior(self, fam: Family, cpd: LinearCPD, prior: dict | None) -> float:
        return 0.0

    def log_prob(self, fam: Family, cpd: LinearCPD, assign: dict[str, np.ndarray], n_rows: int,
                 cache: dict | None = None) -> np.ndarray:
        y = assign[fam.name]
        x = continuous(fam, assign)
        cfg = configs(fam, assign)
        if np.ndim(cfg) <= 1:
            return cpd.log_prob(y, x, cfg)
        mom = _moments(fam, assign, cache)
        table = quad_log_prob_all(cpd, mom) if mom is not None else cpd.log_prob_all(y, x)  # (n_rows, C)
        if _is_joint_index(cfg, fam.n_configs):
            return table
        cfg = np.broadcast_to(cfg, (n_rows,) + np.shape(cfg)[1:])
        return np.take_along_axis(table, cfg.reshape(n_rows, -1), axis=1).reshape(cfg.shape)

    def sample(self, fam: Family, cpd: LinearCPD, values: dict[str, np.ndarray], n: int,
               rng: np.random.Generator) -> np.ndarray:
        return cpd.sample(continuous(fam, values), configs(fam, values), n, rng)

    def log_factor(self, fam: Family, cpd: LinearCPD, observed: np.ndarray | None) -> ScopedTable:
        """An observed gaussian with discrete parents only: a factor over its parents."""
        return fam.disc, cpd.log_prob_all(observed, None)[0].reshape(fam.cards)

    def to_params(self, graph: Graph, fam: Family, cpd: LinearCPD) -> dict[str, Any]:
        """The leading configuration axis is omitted without discrete parents; a 1-dimensional gaussian
        has a scalar intercept and variance per configuration; ``coef`` is omitted without gaussian parents."""
        squeeze = (lambda a: a[0]) if not fam.cards else (lambda a: a)
        if fam.var.dim == 1:
            cov: Any = cpd.cov[0, 0, 0] if cpd.covariance == "tied" else squeeze(cpd.cov[:, 0, 0])
            block = {"intercept": floats(squeeze(cpd.intercept[:, 0])), "coef": floats(squeeze(cpd.coef[:, 0, :])),
                     "covariance": floats(cov)}
        else:
            block = {"intercept": floats(squeeze(cpd.intercept)), "coef": floats(squeeze(cpd.coef)),
                     "covariance": floats(_cov_to_params(cpd, squeeze))}
        if fam.cont_dim == 0:
            del block["coef"]
        return block

    def from_params(self, graph: Graph, fam: Family, block: dict[str, Any], where: str) -> LinearCPD:
        d, p, C = fam.var.dim, fam.cont_dim, fam.n_configs
        first = lead(fam)
        covariance = graph.spec.nodes[fam.var.decl].covariance
        if d == 1:
            intercept = read_array(block, "intercept", first, where).reshape(C, 1)
            coef = read_array(block, "coef", first + (p,), where).reshape(C, 1, p)
            shape = () if covariance == "tied" else first
            var_ = read_array(block, "covariance", shape, where).reshape(-1)
            cov = np.broadcast_to(var_, (C,)).reshape(C, 1, 1).copy()
        else:
            intercept = read_array(block, "intercept", first + (d,), where).reshape(C, d)
            coef = read_array(block, "coef", first + (d, p), where).reshape(C, d, p)
            if covariance == "full":
                cov = read_array(block, "covariance", first + (d, d), where).reshape(C, d, d)
            elif covariance == "diag":
                cov = read_array(block, "covariance", first + (d,), where).reshape(C, d)[:, :, None] * np.eye(d)
            elif covariance == "spherical":
                cov = read_array(block, "covariance", first, where).reshape(C)[:, None, None] * np.eye(d)
            else:
                cov = np.broadcast_to(read_array(block, "covariance", (d, d), where), (C, d, d)).copy()
        if not np.allclose(cov, np.transpose(cov, (0, 2, 1)), rtol=1e-10, atol=0):
            raise ModelError(f"{where}.covariance: not symmetric; a covariance matrix equals its transpose")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ModelError(f"{where}.covariance: not positive definite (variances must be > 0)") from None
        return LinearCPD(intercept, coef, cov, covariance)

    def frame(self, graph: Graph, fam: Family, cpd: LinearCPD) -> pd.DataFrame:
        """One row per (discrete-parent configuration, output dimension): the intercept, one column
        per continuous regressor, and the (co)variance."""
        var = fam.var
        index = config_labels(graph, fam)
        regs = [c for p in fam.cont for c in graph.shown_columns(fam.name, p)]
        rows, labels = [], []
        for c in range(cpd.intercept.shape[0]):
            cfg = index[c] if index is not None else ()
            for j, out in enumerate(var.columns):
                rows.append([cpd.intercept[c, j], *cpd.coef[c, j], *cpd.cov[c, j]])
                labels.append((*(cfg if isinstance(cfg, tuple) else (cfg,)), out) if index is not None else out)
        cols = ["intercept"] + regs + [f"cov[{o}]" for o in var.columns]
        idx = pd.MultiIndex.from_tuples(labels, names=[graph.shown(fam.name, p) for p in fam.disc] + ["output"]) if index is not None else labels
        return pd.DataFrame(rows, index=idx, columns=cols)

    def n_params(self, graph: Graph, fam: Family) -> int:
        if graph.is_standard(fam.name):  # fixed at N(0, I); a rotation of it is free (see ModelSpec.n_params)
            return -(fam.var.dim * (fam.var.dim - 1) // 2)
        d = fam.var.dim
        covariance = graph.spec.nodes[fam.var.decl].covariance
        cov = {"full": d * (d + 1) // 2, "diag": d, "spherical": 1, "tied": 0}[covariance]
        total = fam.n_configs * (d * (1 + fam.cont_dim) + cov)
        return total + (d * (d + 1) // 2 if covariance == "tied" else 0)

    def random_start(self, graph: Graph, fam: Family, moments: Moments, rng: np.random.Generator,
                     reg_covar: float) -> LinearCPD:
        """Means drawn around the data mean with the data's covariance, the data's covariance, no slopes
        on observed parents; on a latent gaussian parent random loadings of the data's scale (a zero
        loading is a fixed point of EM: the parent's posterior would never depend on the data)."""
        d = fam.var.dim
        mean, cov = moments(graph.params[fam.var.param], d)
        cov = cov + reg_covar * np.eye(d)
        c = fam.n_configs
        intercept = mean + rng.standard_normal((c, d)) @ np.linalg.cholesky(cov).T
        coef = np.zeros((c, d, fam.cont_dim))
        width = sum(graph[p].dim for p in fam.cont if graph[p].latent)
        col = 0
        for p in fam.cont:
            k = graph[p].dim
            if graph[p].latent and p != fam.var.name and graph[p].decl == fam.var.decl:
                # a state's transition from its own previous step: persistent (symmetric, eigenvalues in
                # [0.5, 1)).  A random sign is a basin of its own: a negative transition on a persistent
                # series sends the loadings to zero, and EM stops at the model where the state explains nothing
                coef[:, :, col:col + k] = _persistent(rng, c, k)
            elif graph[p].latent:  # unit-variance parents (standard by default): W W' about the data's variances
                coef[:, :, col:col + k] = rng.standard_normal((c, d, k)) * np.sqrt(np.diag(cov))[:, None] / np.sqrt(width)
            col += k
        kind = graph.spec.nodes[fam.var.decl].covariance
        if kind == "diag":
            cov = np.diag(np.diag(cov))
        elif kind == "spherical":
            cov = np.trace(cov) / d * np.eye(d)
        return LinearCPD(intercept, coef, np.broadcast_to(cov, (c, d, d)).copy(), kind)

    def init_shapes(self, fam: Family) -> tuple[type, dict[str, tuple[int, ...]]]:
        c, d = fam.n_configs, fam.var.dim
        return LinearCPD, {"intercept": (c, d), "coef": (c, d, fam.cont_dim), "cov": (c, d, d)}

    def same_across(self, fam: Family, axis: int, cpd: LinearCPD, tol: float) -> bool:
        return same_along([cpd.intercept, cpd.coef, cpd.cov], fam, axis, tol)


LINEAR = LinearKind()
