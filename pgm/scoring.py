r"""Bayesian scores of a declared directed structure on complete discrete data.

The log marginal likelihood of the data under a structure whose table CPDs have independent
Dirichlet(``a[c, :]``) priors (Cooper & Herskovits 1992; Heckerman, Geiger & Chickering 1995)::

    log p(D | G) = sum over parameter sets, sum over parent configurations c of
        lgamma(A_c) - lgamma(N_c + A_c) + sum_k [lgamma(n[c, k] + a[c, k]) - lgamma(a[c, k])]

with ``N_c = sum_k n[c, k]`` and ``A_c = sum_k a[c, k]``.  The counts ``n`` are the statistics
the MLE uses (one ``np.bincount`` per family, :func:`pgm.learn.mle.complete_stats`); tied nodes
and the copies of a plate share one parameter set, so their counts are pooled first, as the MLE
pools them.  Row weights weigh the counts (a fractional count is fine for ``lgamma``).

* ``"bdeu"``: ``a[c, k] = ess / (n_configs * n_states)`` (likelihood-equivalent: Markov-equivalent
  structures score the same).
* ``"k2"``: ``a[c, k] = 1``.

Scores are natural logarithms, higher is better (pgmpy's convention; pyAgrum reports log2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import gammaln

from pgm.cpd.table import TableStats
from pgm.encode import EncodedData, check_weights_name, encode
from pgm.errors import DataError, PGMError
from pgm.graph import Graph
from pgm.io.table import read_options
from pgm.learn.mle import complete_stats

#: The Bayesian (marginal likelihood) scores; ``"bic"`` and ``"aic"`` are the fitted model's criteria.
BAYESIAN_SCORES = ("bdeu", "k2")
SCORES = BAYESIAN_SCORES + ("bic", "aic")


def log_marginal_likelihood(counts: np.ndarray, alpha: float | np.ndarray) -> float:
    """log of the Dirichlet-multinomial marginal likelihood of a table of counts.

    Parameters
    ----------
    counts : array of shape (n_configs, n_states)
    alpha : pseudo-counts > 0, broadcasting against ``counts``
    """
    counts = np.asarray(counts, dtype=np.float64)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), counts.shape)
    rows = gammaln(alpha.sum(axis=1)) - gammaln(counts.sum(axis=1) + alpha.sum(axis=1))
    cells = gammaln(counts + alpha) - gammaln(alpha)
    return float(rows.sum() + cells.sum())


def check_kind(kind: Any, ess: Any) -> None:
    """Refuse an unknown score or an equivalent sample size that is not a finite number > 0."""
    if kind not in SCORES:
        raise PGMError(f"unknown score {kind!r}; use one of {', '.join(repr(s) for s in SCORES)}")
    if (isinstance(ess, bool) or not isinstance(ess, (int, float, np.integer, np.floating))
            or not math.isfinite(ess) or ess <= 0):
        raise PGMError(f"ess (the BDeu equivalent sample size) must be a finite number > 0, got {ess!r}")


def _check_supported(graph: Graph, kind: str) -> None:
    what = f"the {kind.upper()} score"
    if not graph.directed:
        raise PGMError(f"{what} is the marginal likelihood of a directed structure; {graph.spec.name!r} is "
                       "undirected (compare undirected models by fitted.bic(data) or fitted.aic(data))")
    nodes = graph.spec.nodes
    gaussian = [n for n, v in nodes.items() if v.type == "gaussian"]
    logistic = [n for n, v in nodes.items() if v.type == "discrete" and v.cpd != "table"]
    latent = [n for n, v in nodes.items() if v.latent]
    problems = []
    if gaussian:
        problems.append(f"gaussian nodes {gaussian[:6]}")
    if logistic:
        problems.append(f"nodes with a {nodes[logistic[0]].cpd} CPD {logistic[:6]}")
    if latent:
        problems.append(f"latent nodes {latent[:6]}")
    if problems:
        raise PGMError(f"{what} is defined for discrete nodes with table CPDs, every node observed; the model has "
                       f"{' and '.join(problems)}. Compare such models by fitted.bic(data) or fitted.aic(data) "
                       "(score kinds 'bic', 'aic')")


def _check_complete(data: EncodedData, kind: str) -> None:
    if data.has_missing:
        cols = sorted(data.missing)
        rows = np.flatnonzero(data.missing[cols[0]])
        shown = [data.index[r] if data.index is not None else int(r) for r in rows[:5]]
        shown = [v.item() if isinstance(v, np.generic) else v for v in shown]
        raise DataError(f"the {kind.upper()} score needs complete data; columns {cols[:6]} have missing cells "
                        f"(column {cols[0]!r}: {len(rows)} row{'s' if len(rows) > 1 else ''}, first {shown}). "
                        "Drop those rows, or compare by fitted.bic(data) of a model fitted with EM")


def family_scores(graph: Graph, data: Any, kind: str = "bdeu", *, ess: float = 1.0,
                  weights: str | None = None, na_values: Any = None, sep: str | None = None) -> dict[str, float]:
    """The local score of every parameter set (a node, or a tie group with its plate copies pooled).

    ``data``: a DataFrame, a path, or :class:`pgm.encode.EncodedData` (its row weights weigh the counts);
    ``weights``: the name of a column of row weights in a DataFrame or file; ``na_values``, ``sep``:
    how cells are read (as in :func:`pgm.fit`).
    """
    check_kind(kind, ess)
    if graph.sequence:
        raise PGMError(f"{kind.upper()} scores of sequence models are not available yet; score a fitted sequence "
                       "model with bic or aic")
    if kind not in BAYESIAN_SCORES:
        raise PGMError(f"family_scores computes {' and '.join(BAYESIAN_SCORES)}; {kind!r} is a criterion of a "
                       "fitted model (fitted.bic(data), fitted.aic(data))")
    _check_supported(graph, kind)
    if isinstance(data, EncodedData):
        if weights is not None:
            raise PGMError("weights= names a column of the data; encoded data carry their weights already")
        enc = data
    else:
        if weights is not None:
            check_weights_name(graph, weights)
        enc = encode(graph, data, weights=weights, options=read_options(na_values, sep))
    _check_complete(enc, kind)
    out = {}
    for key, stats in complete_stats(graph, enc).items():
        assert isinstance(stats, TableStats)
        n_configs, n_states = stats.counts.shape
        alpha = 1.0 if kind == "k2" else float(ess) / (n_configs * n_states)
        out[key] = log_marginal_likelihood(stats.counts, alpha)
    return out


def structure_score(graph: Graph, data: Any, kind: str = "bdeu", *, ess: float = 1.0,
                    weights: str | None = None, na_values: Any = None, sep: str | None = None) -> float:
    """log p(data | structure) under BDeu (equivalent sample size ``ess``) or K2 priors: natural log,
    higher is better.  Complete data, discrete nodes with table CPDs; see the module docstring."""
    return float(sum(family_scores(graph, data, kind, ess=ess, weights=weights, na_values=na_values,
                                   sep=sep).values()))
