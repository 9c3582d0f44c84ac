r"""The posterior of a gaussian node of a sequence model, per step.

A gaussian cell may be missing only where no node depends on it (:func:`pgm.infer.chain.make_chain_plan`
refuses the rest), so given everything else it is its own CPD (conditioned on the observed components
of a partly missing vector) mixed over the posterior of its discrete parents: with ``w_c`` the posterior of configuration ``c`` of the family's discrete
members (this step's hidden state from forward-backward's ``gamma``; with a hidden ``prev:`` parent
the pair of consecutive states from ``xi``) and its gaussian parents observed,

    E[x] = sum_c w_c mu_c(x_pa),   Cov[x] = sum_c w_c (Sigma_c + mu_c mu_c^T) - E[x] E[x]^T.

An observed cell is its own answer (covariance 0).
"""

from __future__ import annotations

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.family import CPD
from pgm.cpd.linear import condition_missing
from pgm.graph import PREV, prev_name, slice_name
from pgm.infer.chain import ChainPlan, Smoothed


def gaussian_posterior(plan: ChainPlan, cpds: dict[str, CPD], sm: Smoothed, node: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (N, d) and covariance (N, d, d) of gaussian slice variable ``node`` in every
    row (time-major), from forward-backward's result ``sm``."""
    data, graph = plan.data, plan.graph
    enc = data.enc
    d, n, n0, k = graph[node].dim, data.n_rows, plan.n0, plan.n_states
    mean = np.zeros((n, d))
    cov = np.zeros((n, d, d))
    seen = ~np.isnan(enc.values[node]).any(axis=1) if node in enc.values else np.zeros(n, dtype=bool)
    mean[seen] = enc.values[node][seen]
    hidx = {v: i for i, v in enumerate(plan.hidden)}
    for f, block in ((prev_name(node), np.arange(n0)), (node, np.arange(n0, n))):
        missing = np.flatnonzero(~seen[block])
        if not missing.size:
            continue
        rows = block[missing]
        fam = plan.fams[f]
        pair = f in plan.trans
        width = k * k if pair else k
        previous_rows = plan.prev_rows[rows - n0] if f == node else rows
        codes = []
        for m in fam.disc:
            base = slice_name(m)
            before = m.endswith(PREV) and f == node
            if base in hidx:
                c = plan.joint[hidx[base]]
                c = (c[np.arange(width) // k] if before else c[np.arange(width) % k]) if pair else c
                codes.append(c[None, :])
            else:
                codes.append(enc.codes[base][previous_rows if before else rows][:, None])
        configs = np.broadcast_to(np.asarray(config_index(codes, fam.cards), dtype=np.int64), (len(rows), width))
        cpd = cpds[graph[f].param]
        x = np.hstack([enc.values[slice_name(m)][previous_rows if m.endswith(PREV) and f == node else rows]
                       for m in fam.cont]) if fam.cont else None
        y = enc.values[node][rows] if node in enc.values else np.full((len(rows), d), np.nan)
        _, cond_mean, cond_cov = condition_missing(cpd, y, x)                    # (r, C, d), (r, C, d, d)
        at = np.arange(len(rows))[:, None]
        mu, sigma = cond_mean[at, configs], cond_cov[at, configs]                # (r, w, d), (r, w, d, d)
        if pair:
            weights = sm.xi_rows[rows - n0].reshape(len(rows), width)
        else:
            weights = sm.gamma[rows]
        m_ = np.einsum("rw,rwd->rd", weights, mu)
        second = np.einsum("rw,rwde->rde", weights, sigma + mu[..., :, None] * mu[..., None, :])
        mean[rows] = m_
        cov[rows] = second - m_[:, :, None] * m_[:, None, :]
    return mean, cov
