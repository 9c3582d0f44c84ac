"""Complete-data maximum likelihood for directed models.

The log-likelihood of a Bayesian network factorises over families,
``sum_v log p(x_v | x_pa(v))``, so each CPD is fitted on its own from its
sufficient statistics.  Tied nodes and plate copies share one CPD: their
statistics are added first, so the shared parameters are the MLE of the pooled
data.  Gaussian families without discrete parents read their statistics off one
centred Gram matrix of all gaussian columns (one BLAS call for the whole network).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pgm.cpd.family import CPD, Family, Stats, family_stats, fit_cpd
from pgm.cpd.linear import GaussStats, standard_cpd
from pgm.encode import EncodedData
from pgm.errors import DataWarning
from pgm.graph import Graph
from pgm.learn.stats import pool_stats


def fit_options(graph: Graph, prior: dict | None, reg_covar: float,
                penalty: float | None) -> dict[str, dict[str, Any]]:
    """Fit options of every parameter set, resolved once per fit: the node's declared options
    (:attr:`pgm.graph.Graph.options`) override the fit-wide ``prior``; ``penalty`` overrides the node's."""
    out: dict[str, dict[str, Any]] = {}
    for key, declared in graph.options.items():
        opts: dict[str, Any] = {"reg_covar": reg_covar}
        if "penalty" in declared:  # a discrete node
            opts["prior"] = prior if declared["prior"] is None else declared["prior"]
            opts["penalty"] = declared["penalty"] if penalty is None else penalty
        if "covariance" in declared:
            opts["covariance"] = declared["covariance"]
        out[key] = opts
    return out


def gram_stats(graph: Graph, data: EncodedData) -> dict[str, GaussStats]:
    """Statistics of every gaussian family without discrete parents, from one centred Gram matrix."""
    fams = graph.families
    names = [n for n, f in fams.items() if f.kind == "linear" and not f.disc]
    if not names:
        return {}
    cols = [n for n in graph.order if graph[n].gaussian and n in data.values]
    offset, start = {}, 0
    for n in cols:
        offset[n] = start
        start += graph[n].dim
    # one column-major block, filled column by column and centred in place: no strided hstack,
    # no second copy; the Gram product reads it as contiguous columns
    d = np.empty((data.n_rows, start), order="F")
    for n in cols:
        d[:, offset[n]:offset[n] + graph[n].dim] = data.values[n]
    w = data.weights
    if w is None:
        total = float(data.n_rows)
        mean = d.mean(axis=0)
        d -= mean
        gram = d.T @ d
    else:
        total = float(w.sum())
        mean = (w @ d) / total
        d -= mean
        gram = (d * w[:, None]).T @ d
    out = {}
    for n in names:
        fam = fams[n]
        idx = np.concatenate([np.arange(offset[m], offset[m] + graph[m].dim) for m in fam.cont + (n,)])
        out[n] = GaussStats(np.array([total]), mean[idx][None], gram[np.ix_(idx, idx)][None])
    return out


def complete_stats(graph: Graph, data: EncodedData) -> dict[str, Stats]:
    """Sufficient statistics of every parameter set (tie groups and plate copies pooled)."""
    fams = graph.families
    assign = {**data.codes, **data.values}
    gram = gram_stats(graph, data)
    return pool_stats(graph, ((name, gram[name] if name in gram else
                                  family_stats(fams[name], assign, data.n_rows, data.weights))
                                 for members in graph.params.values() for name in members))


def _config_label(graph: Graph, fam: Family, config: int) -> str:
    codes = np.unravel_index(config, fam.cards) if fam.cards else ()
    return ", ".join(f"{graph.shown(fam.name, p)}={graph[p].labels[int(c)]}" for p, c in zip(fam.disc, codes))


def fit_from_stats(graph: Graph, stats: dict[str, Stats], *, prior: dict | None = None, reg_covar: float = 0.0,
                   penalty: float | None = None, init: dict[str, CPD] | None = None,
                   warn_unseen: bool = True, options: dict[str, dict[str, Any]] | None = None) -> dict[str, CPD]:
    """One ``from_stats`` per parameter set (``options``: :func:`fit_options` when already resolved)."""
    fams = graph.families
    options = options or fit_options(graph, prior, reg_covar, penalty)
    cpds: dict[str, CPD] = {}
    for key in graph.params:  # a standard latent gaussian stays N(0, I): nothing to fit
        if graph.is_standard(graph.params[key][0]):
            cpds[key] = standard_cpd(fams[graph.params[key][0]], graph.spec.nodes[graph[graph.params[key][0]].decl]
                                     .covariance)
    for key, st in stats.items():
        if key in cpds:
            continue
        fam = fams[graph.params[key][0]]
        cpd, unseen = fit_cpd(fam, st, init=(init or {}).get(key), **options[key])
        if unseen.size and warn_unseen:
            shown = "; ".join(_config_label(graph, fam, int(c)) for c in unseen[:3])
            more = f" and {unseen.size - 3} more" if unseen.size > 3 else ""
            what = "uniform" if fam.kind == "table" else "the pooled fit of all configurations"
            warnings.warn(f"{key}: {unseen.size} parent configuration{'s' if unseen.size > 1 else ''} never seen "
                          f"in the data ({shown}{more}); {'they get' if unseen.size > 1 else 'it gets'} {what}. "
                          "A prior (e.g. prior: {dirichlet: 1}) gives every configuration pseudo-counts.",
                          DataWarning, stacklevel=5)
        cpds[key] = cpd
    return cpds


def fit_mle(graph: Graph, data: EncodedData, *, prior: dict | None = None, reg_covar: float = 0.0,
            penalty: float | None = None) -> dict[str, CPD]:
    """Per-family maximum likelihood (or MAP under Dirichlet priors) on complete data."""
    return fit_from_stats(graph, complete_stats(graph, data), prior=prior, reg_covar=reg_covar, penalty=penalty)
