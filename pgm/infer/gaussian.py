r"""Exact inference over hidden components that hold continuous variables (conditional linear Gaussian).

A hidden component (see :mod:`pgm.infer.enumerate`) holds *continuous* hidden variables when a
gaussian node is latent or some of its cells are missing.  Exact inference is possible when its
hidden discrete nodes are only *parents* of continuous ones (a strong root; discrete nodes with a
hidden continuous parent are refused at the schema and the plan).  Then, for each joint
configuration ``j`` of the component's hidden discrete nodes (few), every continuous variable
``s`` of the component's linear families is jointly Gaussian given the observed cells:

    s = b + W_cov x_cov + B s + eps,   eps ~ N(0, Psi)     (B strictly lower triangular)
    mean = (I - B)^{-1} (b + W_cov x_cov),   Sigma = (I - B)^{-1} Psi (I - B)^{-T}

(the linear-Gaussian recursion in topological order; ``x_cov`` are observed continuous parents).
Rows are grouped by everything that fixes the structure of that Gaussian -- which components are
observed, which families are summed out, the codes of observed discrete parents -- so the
Cholesky factor of the observed block and the conditioning gain are computed once per group and
configuration, never per row:

    log p(x_o | j) = log N(x_o; mean_o, Sigma_oo)
    E[s_h | x_o, j] = mean_h + Sigma_ho Sigma_oo^{-1} (x_o - mean_o)
    Cov[s_h | x_o, j] = Sigma_hh - Sigma_ho Sigma_oo^{-1} Sigma_oh

Adding the discrete families' log-terms gives ``log p(x, j)``; the posterior over ``j`` follows by
log-sum-exp.  The M-step statistics of a linear family are the posterior moments of its
``[continuous parents, child]``: means of ``E[z]`` and scatter of ``E[z]`` plus the posterior
covariance, weighted by ``q(j)``, merged by the same :class:`~pgm.cpd.linear.GaussStats` as
complete data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import linalg

from pgm.cpd import config_index
from pgm.cpd.family import CPD, Family, Stats, family_log_prob, family_stats
from pgm.cpd.linear import LOG_2PI, GaussStats
from pgm.encode import EncodedData, row_labels
from pgm.errors import DataError
from pgm.graph import Graph
from pgm.infer.posterior import Posterior, row_log_sum_exp


@dataclass
class Block:
    """Rows of a gaussian group that share one structure of the joint Gaussian."""

    rows: np.ndarray                  # positions within the group's rows
    lin: tuple[str, ...]              # linear families present (children in topological order)
    disc: tuple[str, ...]             # discrete families present
    cov: tuple[str, ...]              # observed continuous parents (covariates)
    off: dict[str, int]               # offset of each continuous variable in the full vector [cov..., S...]
    n_cov: int                        # columns of the covariates
    m: int                            # columns of S (children of the linear families)
    obs: np.ndarray                   # indices (within S) of observed components
    hid: np.ndarray                   # indices (within S) of hidden components
    codes: dict[str, int] = field(default_factory=dict)  # observed discrete parents of linear families


@dataclass
class GaussResult:
    lse: np.ndarray | None                    # log p(observed) per group row (None: only the total asked)
    stats: dict[str, Stats]
    q: np.ndarray                             # (n_rows, n_joint) posterior over hidden discrete configurations
    moments: dict[str, tuple[np.ndarray, np.ndarray]]   # node -> mean (n, d), cov (n, d, d)
    total: float = 0.0                        # sum of the rows' (weighted) log p(observed)


def discrete_vars(graph: Graph, variables: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in variables if graph[v].discrete)


def joint_states(graph: Graph, variables: tuple[str, ...]) -> np.ndarray:
    """Codes of every joint state of the group's hidden discrete variables: (n_disc, n_joint)."""
    disc = discrete_vars(graph, variables)
    cards = [graph[v].n_states for v in disc]
    return np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)


def _blocks(graph: Graph, fams: dict[str, Family], data: EncodedData, group: Any) -> list[Block]:
    """Split the group's rows by the structure of their joint Gaussian (cached on the group)."""
    if "gauss blocks" in group.cache:
        return group.cache["gauss blocks"]
    rows = group.rows
    n = len(rows)
    keys = []
    fam_list = list(group.families)
    for f in fam_list:  # which families are summed out in each row
        keys.append(group.dropped[f].astype(np.int64) if f in group.dropped else np.zeros(n, dtype=np.int64))
    cont_vals = {}
    for f in fam_list:
        fam = fams[f]
        for m in fam.members:
            if graph[m].gaussian and m in data.values and m not in cont_vals:
                cont_vals[m] = data.values[m][rows]
    for m, vals in cont_vals.items():
        keys.extend(np.isnan(vals).T.astype(np.int64))
    obs_disc = []
    for f in fam_list:
        if graph[f].gaussian:
            for p in fams[f].disc:
                if p not in group.variables and p in data.codes and p not in obs_disc:
                    obs_disc.append(p)
    for p in obs_disc:
        keys.append(data.codes[p][rows].astype(np.int64))
    if keys:
        mat = np.ascontiguousarray(np.column_stack(keys))
        _, first, inverse = np.unique(mat, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    else:
        first, inverse = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(first) + 1))
    out = []
    for b, r0 in enumerate(first):
        idx = order[bounds[b]:bounds[b + 1]]
        live = [f for f in fam_list if not (f in group.dropped and group.dropped[f][r0])]
        lin = tuple(f for f in graph.order if f in live and graph[f].gaussian)
        disc = tuple(f for f in live if graph[f].discrete)
        s_nodes = set(lin)
        for f in disc:  # a discrete family with a hidden continuous parent: no exact inference
            for p in fams[f].cont:
                if p in group.variables:
                    raise DataError(f"the gaussian node {graph[p].decl!r} is hidden (missing) in "
                                    f"{row_labels(data, group.rows[idx[:3]])} "
                                    f"while its discrete child {graph[f].decl!r} depends on it: a discrete node "
                                    "with a hidden continuous parent has no exact inference; fill those cells "
                                    "or drop the rows")
        cov = []
        for f in lin:
            for p in fams[f].cont:
                if p not in s_nodes and p not in cov:
                    cov.append(p)
        cov = tuple(v for v in graph.order if v in cov)
        off, start = {}, 0
        for v in cov:
            off[v] = start
            start += graph[v].dim
        n_cov = start
        obs, hid = [], []
        for v in lin:
            off[v] = start
            d = graph[v].dim
            if v in cont_vals:
                miss = np.isnan(cont_vals[v][r0])
            else:
                miss = np.ones(d, dtype=bool)
            for k in range(d):
                (hid if miss[k] else obs).append(start - n_cov + k)
            start += d
        codes = {p: int(data.codes[p][rows[r0]]) for p in obs_disc}
        out.append(Block(idx, lin, disc, cov, off, n_cov, start - n_cov, np.array(obs, dtype=np.int64),
                         np.array(hid, dtype=np.int64), codes))
    group.cache["gauss blocks"] = out
    return out


def _config(fam: Family, codes: dict[str, int], jcodes: dict[str, int]) -> int:
    if not fam.disc:
        return 0
    return int(config_index([np.asarray(jcodes[p] if p in jcodes else codes[p]) for p in fam.disc], fam.cards))


def _moments(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], blk: Block,
             jcodes: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """The block's continuous children S under configuration j: mean = xcov @ mx.T + m0, covariance."""
    m, nc = blk.m, blk.n_cov
    eye_minus_b = np.eye(m)
    wcov = np.zeros((m, nc))
    b = np.zeros(m)
    psi = np.zeros((m, m))
    cfgs = {}
    for f in blk.lin:
        fam = fams[f]
        cpd = cpds[graph[f].param]
        c = _config(fam, blk.codes, jcodes)
        cfgs[f] = c
        o = blk.off[f] - nc
        d = graph[f].dim
        b[o:o + d] = cpd.intercept[c]
        psi[o:o + d, o:o + d] = cpd.cov[c]
        k = 0
        for p in fam.cont:
            dp = graph[p].dim
            w = cpd.coef[c][:, k:k + dp]
            po = blk.off[p]
            if po >= nc:
                eye_minus_b[o:o + d, po - nc:po - nc + dp] -= w
            else:
                wcov[o:o + d, po:po + dp] = w
            k += dp
    lmat = np.linalg.inv(eye_minus_b)  # unit lower triangular (topological order): exact, and tiny
    sigma = lmat @ psi @ lmat.T
    return lmat @ wcov, lmat @ b, 0.5 * (sigma + sigma.T), cfgs


@dataclass
class Conditioned:
    """The block under one configuration, as affine maps of a row's observed y = [xcov, s_obs]:
    the full vector's posterior mean ``y @ a.T + a0`` (covariance ``cov``, the same for every row)
    and the residual ``y @ r.T + r0`` of the observed components, with precision ``prec``."""

    a: np.ndarray
    a0: np.ndarray
    cov: np.ndarray
    r: np.ndarray
    r0: np.ndarray
    prec: np.ndarray
    logdet: float
    cfgs: dict[str, int]


def _condition(blk: Block, mx: np.ndarray, m0: np.ndarray, sigma: np.ndarray, cfgs: dict[str, int]) -> Conditioned:
    nc, m = blk.n_cov, blk.m
    o, h = blk.obs, blk.hid
    ny = nc + o.size
    a = np.zeros((nc + m, ny))
    a0 = np.zeros(nc + m)
    a[:nc, :nc] = np.eye(nc)
    cov = np.zeros((nc + m, nc + m))
    r = np.zeros((o.size, ny))
    r[:, :nc] = -mx[o]
    r[:, nc:] = np.eye(o.size)
    r0 = -m0[o]
    a[nc + o, nc:] = np.eye(o.size)
    if o.size:
        chol = linalg.cholesky(sigma[np.ix_(o, o)], lower=True)
        prec = linalg.cho_solve((chol, True), np.eye(o.size))
        logdet = 2.0 * float(np.log(np.diag(chol)).sum())
        if h.size:
            gain = sigma[np.ix_(h, o)] @ prec                       # Sigma_ho Sigma_oo^-1
            a[nc + h, :nc] = mx[h]
            a[nc + h] += gain @ r
            a0[nc + h] = m0[h] + gain @ r0
            post = sigma[np.ix_(h, h)] - gain @ sigma[np.ix_(o, h)]
            cov[np.ix_(nc + h, nc + h)] = 0.5 * (post + post.T)
    else:
        prec, logdet = np.zeros((0, 0)), 0.0
        a[nc:, :nc] = mx
        a0[nc:] = m0
        cov[nc:, nc:] = sigma
    return Conditioned(a, a0, cov, r, r0, prec, logdet, cfgs)


def _observed_y(graph: Graph, data: EncodedData, blk: Block, rows: np.ndarray) -> np.ndarray:
    """Each row's observed continuous values [xcov, s_obs]: (rows, n_cov + n_obs)."""
    parts = [data.values[v][rows] for v in blk.cov]
    if blk.obs.size:
        vals = np.hstack([data.values[v][rows] if v in data.values else np.full((len(rows), graph[v].dim), np.nan)
                          for v in blk.lin])
        parts.append(vals[:, blk.obs])
    return np.hstack(parts) if parts else np.zeros((len(rows), 0))


def _y_moments(graph: Graph, data: EncodedData, group: Any, b: int, blk: Block) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted total, mean and centred scatter of a block's observed values (data only: cached)."""
    key = ("gauss y moments", b)
    if key not in group.cache:
        rows = group.rows[blk.rows]
        y = _observed_y(graph, data, blk, rows)
        w = np.ones(len(rows)) if data.weights is None else data.weights[rows]
        total = float(w.sum())
        mean = (w @ y) / total
        d = y - mean
        group.cache[key] = (total, mean, (d * w[:, None]).T @ d)
    return group.cache[key]


def _family_stats(graph: Graph, fam: Family, blk: Block, cond: Conditioned, total: float, mean_full: np.ndarray,
                  scatter_full: np.ndarray) -> GaussStats:
    idx = np.concatenate([np.arange(blk.off[v], blk.off[v] + graph[v].dim) for v in fam.cont + (fam.name,)])
    C, k = fam.n_configs, len(idx)
    weight = np.zeros(C)
    mean_c = np.zeros((C, k))
    scat = np.zeros((C, k, k))
    c = cond.cfgs[fam.name]
    weight[c] = total
    mean_c[c] = mean_full[idx]
    scat[c] = scatter_full[np.ix_(idx, idx)] + total * cond.cov[np.ix_(idx, idx)]
    return GaussStats(weight, mean_c, scat)


def gaussian_group(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], data: EncodedData, group: Any,
                   *, stats: bool = True, rule: Posterior = Posterior.EXACT, nodes: tuple[str, ...] = (),
                   per_row: bool = True) -> GaussResult:
    """log p(observed) per row (its weighted sum in ``total``), posterior-weighted statistics and (for
    ``nodes``) posterior moments of one hidden component with continuous hidden variables.

    Without hidden discrete nodes, and when no per-row answer is asked, everything comes from the
    (cached) weighted mean and scatter of each block's observed values: the E-step then costs
    nothing per row."""
    n = len(group.rows)
    disc = discrete_vars(graph, group.variables)
    joint = joint_states(graph, group.variables)
    n_joint = joint.shape[1]
    blocks = _blocks(graph, fams, data, group)
    conds = [[_condition(blk, *_moments(graph, fams, cpds, blk, {v: int(joint[k, j]) for k, v in enumerate(disc)}))
              for j in range(n_joint)] for blk in blocks]
    out: dict[str, Stats] = {}
    if n_joint == 1 and not nodes and not per_row and not any(blk.disc for blk in blocks):
        total_ll = 0.0
        for b, (blk, (cond,)) in enumerate(zip(blocks, conds)):
            tw, ybar, sy = _y_moments(graph, data, group, b, blk)
            rbar = cond.r @ ybar + cond.r0
            maha = float(np.sum(cond.prec * (cond.r @ sy @ cond.r.T + tw * np.outer(rbar, rbar))))
            total_ll += -0.5 * (tw * (blk.obs.size * LOG_2PI + cond.logdet) + maha)
            if stats:
                mean_full = cond.a @ ybar + cond.a0
                scatter_full = cond.a @ sy @ cond.a.T
                for f in blk.lin:
                    st = _family_stats(graph, fams[f], blk, cond, tw, mean_full, scatter_full)
                    out[f] = st if f not in out else out[f] + st
        return GaussResult(None, out, np.ones((n, 1)), {}, total_ll)
    lj = np.zeros((n, n_joint))
    ys = []
    for blk, per_j in zip(blocks, conds):
        rows = group.rows[blk.rows]
        y = _observed_y(graph, data, blk, rows)
        ys.append(y)
        for j, cond in enumerate(per_j):
            if blk.obs.size:
                resid = y @ cond.r.T + cond.r0
                maha = np.einsum("ij,ij->i", resid @ cond.prec, resid)
                lj[blk.rows, j] += -0.5 * (blk.obs.size * LOG_2PI + cond.logdet + maha)
        if blk.disc:  # discrete families: a log-term per row and configuration
            assign = _disc_assign(graph, fams, data, rows, blk.disc, disc, joint)
            for f in blk.disc:
                lj[blk.rows] += np.broadcast_to(family_log_prob(fams[f], cpds[graph[f].param], assign, len(rows)),
                                                (len(rows), n_joint))
    lse, shifted, sums = row_log_sum_exp(lj)
    q = rule.weights(lj, shifted, sums)
    w_rows = None if data.weights is None else data.weights[group.rows]
    if stats:
        qw = q if w_rows is None else q * w_rows[:, None]
        for blk, per_j, y in zip(blocks, conds, ys):
            rows = group.rows[blk.rows]
            for j, cond in enumerate(per_j):
                wq = qw[blk.rows, j]
                tw = float(wq.sum())
                if not tw > 0:
                    continue
                ybar = (wq @ y) / tw
                dy = y - ybar
                sy = (dy * wq[:, None]).T @ dy
                mean_full = cond.a @ ybar + cond.a0
                scatter_full = cond.a @ sy @ cond.a.T
                for f in blk.lin:
                    st = _family_stats(graph, fams[f], blk, cond, tw, mean_full, scatter_full)
                    out[f] = st if f not in out else out[f] + st
            if blk.disc:
                assign = _disc_assign(graph, fams, data, rows, blk.disc, disc, joint)
                for f in blk.disc:
                    st = family_stats(fams[f], assign, len(rows), qw[blk.rows])
                    out[f] = st if f not in out else out[f] + st
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for v in nodes:
        d = graph[v].dim
        mean = np.full((n, d), np.nan)
        cov = np.full((n, d, d), np.nan)
        for blk, per_j, y in zip(blocks, conds, ys):
            if v not in blk.off:
                continue
            idx = np.arange(blk.off[v], blk.off[v] + d)
            qb = q[blk.rows]
            m1 = np.zeros((len(y), d))
            m2 = np.zeros((len(y), d, d))
            for j, cond in enumerate(per_j):
                fm = y @ cond.a[idx].T + cond.a0[idx]
                m1 += qb[:, j, None] * fm
                m2 += qb[:, j, None, None] * (cond.cov[np.ix_(idx, idx)][None] + fm[:, :, None] * fm[:, None, :])
            mean[blk.rows] = m1
            cov[blk.rows] = m2 - m1[:, :, None] * m1[:, None, :]
        moments[v] = (mean, cov)
    total_ll = float(lse.sum() if w_rows is None else w_rows @ lse)
    return GaussResult(lse, out, q, moments, total_ll)


def _disc_assign(graph: Graph, fams: dict[str, Family], data: EncodedData, rows: np.ndarray,
                 families_: tuple[str, ...], disc: tuple[str, ...], joint: np.ndarray) -> dict[str, np.ndarray]:
    """Members of discrete families: joint codes for the hidden discrete variables, data for the rest."""
    assign: dict[str, np.ndarray] = {v: joint[k][None, :] for k, v in enumerate(disc)}
    for f in families_:
        for m in fams[f].members:
            if m in assign:
                continue
            if m in data.codes:
                assign[m] = data.codes[m][rows][:, None]
            elif m in data.values:
                assign[m] = data.values[m][rows]
    return assign


def gaussian_query(graph: Graph, fams: dict[str, Family], cpds: dict[str, CPD], queried: list[str],
                   codes: dict[str, int], values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(q,)`` and covariance ``(q, q)`` of the queried gaussian nodes' components given evidence.

    ``queried`` are gaussian variables; ``codes`` observed discrete variables; ``values`` observed
    gaussian variables (``(1, dim)``, NaN components unobserved).  With every discrete parent of the
    gaussian ancestors given, those ancestors are one linear-Gaussian network, hence jointly Gaussian
    (the recursion of the module docstring, with no covariates), and the answer is Gaussian
    conditioning on the observed components.  The caller checks that no discrete node depends on a
    gaussian one among the ancestors (the answer would not be Gaussian)."""
    relevant = set(queried) | set(values)
    stack = list(relevant)
    while stack:  # the gaussian ancestors: the rest of the network integrates to one
        for p in graph[stack.pop()].parents:
            if graph[p].gaussian and p not in relevant:
                relevant.add(p)
                stack.append(p)
    lin = tuple(n for n in graph.order if n in relevant)
    off: dict[str, int] = {}
    m = 0
    for n in lin:
        off[n] = m
        m += graph[n].dim
    observed = np.full(m, np.nan)
    for n, row in values.items():
        observed[off[n]:off[n] + graph[n].dim] = row.reshape(-1)
    obs = np.flatnonzero(~np.isnan(observed))
    hid = np.flatnonzero(np.isnan(observed))
    blk = Block(rows=np.zeros(1, dtype=np.int64), lin=lin, disc=(), cov=(), off=off, n_cov=0, m=m, obs=obs, hid=hid,
                codes={p: codes[p] for n in lin for p in fams[n].disc})
    mx, m0, sigma, cfgs = _moments(graph, fams, cpds, blk, {})
    cond = _condition(blk, mx, m0, sigma, cfgs)
    mean = cond.a @ observed[obs] + cond.a0
    idx = np.concatenate([np.arange(off[n], off[n] + graph[n].dim) for n in queried])
    return mean[idx], cond.cov[np.ix_(idx, idx)]
