"""FittedModel: a directed declaration with its learned CPDs.

It answers log-likelihoods (hidden nodes and missing cells summed out exactly),
samples, posteriors of latent nodes, labelled CPD tables, information criteria,
and writes itself back as a readable graph file with a ``params:`` block.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pgm.cpd.base import only_numbers  # noqa: F401  (pgm.markov reads params blocks with it)
from pgm.cpd.family import CPD, Family, families, kind_of
from pgm.encode import EncodedData, encode
from pgm.errors import DataError, DataWarning, ModelError, PGMError
from pgm.graph import Graph, build
from pgm.infer.elimination import variable_elimination
from pgm.infer.enumerate import e_step, make_plan, posterior
from pgm.infer.factor import LogFactor, normalize
from pgm.io.yaml_text import fitted_data, save_fitted
from pgm.schema import ModelSpec
from pgm.scoring import check_kind, structure_score


@dataclass(frozen=True)
class FittedModel:
    """A directed model with parameters.  Build it with :func:`pgm.fit` or :func:`pgm.load`."""

    spec: ModelSpec
    graph: Graph
    cpds: dict[str, CPD]
    history: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    # --------------------------------------------------------------- basics
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_params(self) -> int:
        """Free parameters (a tie group or a plate counts once)."""
        fams = self._families()
        return sum(kind_of(fam).n_params(self.graph, fam)
                   for fam in (fams[members[0]] for members in self.graph.params.values()))

    def __repr__(self) -> str:
        return (f"FittedModel({self.spec.name!r}, {len(self.spec.nodes)} nodes, {self.n_params} free parameters"
                + (f", {len(self.history)} iterations" if self.history else "") + ")")

    def _families(self) -> dict[str, Family]:
        return families(self.graph)

    def encode(self, data: Any, weights: str | None = None) -> EncodedData:
        """``data`` (DataFrame or path) encoded against the model's graph, with the row weights of
        the column ``weights`` if given; EncodedData passes through."""
        if isinstance(data, EncodedData):
            if weights is not None:
                raise PGMError("weights= names a column of the data; encoded data carry their weights already")
            return data
        return encode(self.graph, data, weights=weights)

    # --------------------------------------------------------------- likelihoods
    def row_log_likelihood(self, data: Any) -> np.ndarray:
        """log p(row) for every row, latent nodes and missing cells summed out: shape (n_rows,)."""
        enc = self.encode(data)
        fams = self._families()
        plan = make_plan(self.graph, fams, enc)
        rows = e_step(self.graph, fams, self.cpds, enc, plan, stats=False, per_row=True).row_log_likelihood
        impossible = np.flatnonzero(np.isneginf(rows))
        if impossible.size:  # log 0 is the right answer, but it must not pass unnoticed
            shown = ", ".join(f"row {enc.index[r] if enc.index is not None else r}" for r in impossible[:5])
            warnings.warn(f"{impossible.size} row{'s' if impossible.size > 1 else ''} ({shown}"
                          f"{' ...' if impossible.size > 5 else ''}) {'have' if impossible.size > 1 else 'has'} "
                          "probability 0 under the model (log-likelihood -inf): the fitted tables give a state "
                          "probability 0 there. Fit with a prior (e.g. prior={'dirichlet': 1}) to keep every "
                          "probability above 0", DataWarning, stacklevel=2)
        return rows

    def log_likelihood(self, data: Any, weights: str | None = None) -> float:
        """Total log-likelihood of the rows: ``sum_i w_i log p(row_i)`` with the row weights of
        the column ``weights`` (each 1 without; as if each row were repeated ``w_i`` times).

        ``-inf`` (with a ``pgm.DataWarning`` naming the rows) when a row has probability 0."""
        enc = self.encode(data, weights)
        fams = self._families()
        plan = make_plan(self.graph, fams, enc)
        total = e_step(self.graph, fams, self.cpds, enc, plan, stats=False).log_likelihood
        if total == -math.inf:
            self.row_log_likelihood(enc)  # names the impossible rows in a DataWarning
        return total

    def bic(self, data: Any, weights: str | None = None) -> float:
        """Bayesian information criterion ``-2 log L + k log n`` (lower is better).

        With ``weights`` (a column of row weights), ``log L`` is the weighted log-likelihood and
        ``n`` the sum of the weights: the BIC of the data with each row repeated ``w`` times."""
        enc = self.encode(data, weights)
        n = enc.n_rows if enc.weights is None else float(enc.weights.sum())
        return -2.0 * self.log_likelihood(enc) + self.n_params * math.log(n)

    def aic(self, data: Any, weights: str | None = None) -> float:
        """Akaike information criterion ``-2 log L + 2 k`` (lower is better); ``weights`` as in :meth:`bic`."""
        return -2.0 * self.log_likelihood(data, weights) + 2.0 * self.n_params

    def score(self, data: Any, kind: str, *, ess: float = 1.0, weights: str | None = None) -> float:
        """A score of this model on ``data`` (see :func:`pgm.score`); ``weights`` names a column of
        row weights (the score of the data with each row repeated ``w`` times).

        ``"bic"``, ``"aic"``: :meth:`bic` and :meth:`aic` of these fitted parameters (lower is better).
        ``"bdeu"``, ``"k2"``: the log marginal likelihood of the declared structure, the parameters
        integrated out under BDeu (equivalent sample size ``ess``) or K2 priors, so the fitted
        parameters play no part (natural log, higher is better; complete discrete data, table CPDs).
        ``weights``: a column of row weights, which weigh the counts (as repeated rows for integers).
        """
        check_kind(kind, ess)
        if kind == "bic":
            return self.bic(data, weights)
        if kind == "aic":
            return self.aic(data, weights)
        return structure_score(self.graph, data, kind, ess=ess, weights=weights)

    # --------------------------------------------------------------- latent nodes
    def _discrete_node(self, node: str) -> str:
        if node not in self.graph.variables:
            known = [n for n in self.graph.order if self.graph[n].discrete]
            raise ModelError(f"unknown node {node!r}; discrete nodes: {known[:12]}")
        if not self.graph[node].discrete:
            raise ModelError(f"{node!r} is gaussian; posterior() and predict() take a discrete node")
        return node

    def posterior(self, node: str, data: Any) -> pd.DataFrame:
        """p(node | each row's observed values): a DataFrame of shape (n_rows, n_states)."""
        node = self._discrete_node(node)
        enc = self.encode(data)
        probs = posterior(self.graph, self._families(), self.cpds, enc, node)
        return pd.DataFrame(probs, index=enc.index, columns=list(self.graph[node].labels))

    def predict(self, node: str, data: Any) -> pd.Series:
        """The most probable state of ``node`` for every row."""
        post = self.posterior(node, data)
        labels = np.asarray(self.graph[node].labels, dtype=object)
        return pd.Series(labels[post.to_numpy().argmax(axis=1)], index=post.index, name=node)

    # --------------------------------------------------------------- queries
    def query(self, variables: list[str] | str, evidence: dict[str, Any] | None = None) -> pd.Series:
        """Exact posterior p(variables | evidence) by variable elimination.

        Parameters
        ----------
        variables : discrete node names (plate copies as ``x[2]``)
        evidence : node -> observed state label (or code for counted states); a gaussian node
            whose parents are all discrete may be observed with a number

        Returns
        -------
        pandas Series ``p`` indexed by the joint states of ``variables`` (a MultiIndex for several).

        Examples
        --------
        >>> fitted.query(["either"], evidence={"xray": "yes"})   # doctest: +SKIP
        """
        variables = [variables] if isinstance(variables, str) else list(variables)
        evidence = dict(evidence or {})
        for v in variables + list(evidence):
            if v not in self.graph.variables:
                raise ModelError(f"unknown node {v!r} in query; nodes: {list(self.graph.order)[:12]}")
        for v in variables:
            self._discrete_node(v)
        both = [v for v in variables if v in evidence]
        if both:
            raise ModelError(f"{both} are both queried and observed; drop them from one of the two")
        codes: dict[str, int] = {}
        dens: dict[str, np.ndarray] = {}
        for v, value in evidence.items():
            var = self.graph[v]
            if var.discrete:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                if text not in var.labels:
                    raise DataError(f"evidence {v}={value!r}: unknown state; states are {list(var.labels)}")
                codes[v] = var.labels.index(text)
            else:
                dens[v] = np.atleast_1d(np.asarray(value, dtype=float)).reshape(1, -1)
        relevant = set(variables) | set(evidence)
        stack = list(relevant)
        while stack:  # only ancestors of the query and evidence matter (the rest sums to one)
            for p in self.graph[stack.pop()].parents:
                if p not in relevant:
                    relevant.add(p)
                    stack.append(p)
        fams = self._families()
        factors = []
        for name in self.graph.order:
            if name not in relevant:
                continue
            fam = fams[name]
            var = fam.var
            if fam.cont or (not var.discrete and name not in dens):
                raise ModelError(f"query needs discrete nodes (or observed gaussian nodes with discrete parents); "
                                 f"{name!r} is {'a gaussian with gaussian parents' if fam.cont else 'unobserved gaussian'}")
            factors.append(self._log_factor(fam, self.cpds[var.param], dens.get(name)))
        joint = variable_elimination(factors, variables, codes)
        probs = np.exp(normalize(joint).table)
        if len(variables) == 1:
            index = pd.Index(list(self.graph[variables[0]].labels), name=variables[0])
        else:
            index = pd.MultiIndex.from_product([list(self.graph[v].labels) for v in variables], names=variables)
        return pd.Series(probs.reshape(-1), index=index, name="p")

    def _log_factor(self, fam: Family, cpd: CPD, observed: np.ndarray | None) -> LogFactor:
        """The family's CPD as a log-factor over (discrete parents..., child), or over the discrete
        parents of an observed gaussian."""
        return LogFactor(*kind_of(fam).log_factor(fam, cpd, observed))

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """``n`` rows by ancestral sampling (vectorised over rows), with the model's columns.

        Discrete nodes with named states give their labels (a categorical column);
        nodes with a state count give integer codes.  Latent nodes are included.
        """
        check_sample_size(n)
        rng = sample_rng(seed)
        fams = self._families()
        values: dict[str, np.ndarray] = {}
        for name in self.graph.order:
            fam = fams[name]
            values[name] = kind_of(fam).sample(fam, self.cpds[self.graph[name].param], values, n, rng)
        return self._frame(values, n)

    def _frame(self, values: dict[str, np.ndarray], n: int) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for name in self.graph.order:
            var = self.graph[name]
            if var.gaussian:
                for j, col in enumerate(var.columns):
                    cols[col] = values[name][:, j]
            elif isinstance(self.spec.nodes[var.decl].states, int):
                cols[name] = values[name].astype(np.int64)
            else:
                cols[name] = pd.Categorical.from_codes(values[name], categories=list(var.labels))
        return pd.DataFrame(cols, index=pd.RangeIndex(n))

    # --------------------------------------------------------------- reading parameters
    def cpd(self, node: str) -> pd.DataFrame:
        """A labelled view of a node's CPD.

        Table: rows are parent configurations (a MultiIndex), columns the states.
        Linear gaussian: one row per (discrete-parent configuration, output dimension), with the
        intercept, one column per continuous regressor, and the (co)variance.
        Logistic: one row per state, with the intercept and one column per feature.
        Noisy-OR: the leak and each parent's probability of turning the node on, one row each.
        """
        if node not in self.graph.variables and node not in self.spec.nodes and node not in self.cpds:
            raise ModelError(f"unknown node {node!r}; nodes: {list(self.spec.nodes)[:12]}")
        key = node if node in self.cpds else self.graph[node if node in self.graph.variables
                                                       else self.spec.copies(node)[0]].param
        fam = self._families()[self.graph.params[key][0]]
        return kind_of(fam).frame(self.graph, fam, self.cpds[key])

    # --------------------------------------------------------------- persistence
    def to_params(self) -> dict[str, Any]:
        """The ``params:`` block: plain lists and floats (see :func:`params_to_cpds` for the layout)."""
        fams = self._families()
        out: dict[str, Any] = {}
        for key in self.graph.params:  # declaration order, whatever order a learner filled cpds in
            if key in self.cpds:
                out[key] = cpd_to_params(self.graph, fams[self.graph.params[key][0]], self.cpds[key])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole fitted graph file as plain data."""
        return fitted_data(self.spec, self.to_params())

    def save(self, path: Any) -> None:
        """Write the model and its parameters as a graph file, atomically."""
        save_fitted(path, self.spec, self.to_params())

    @classmethod
    def from_spec(cls, spec: ModelSpec, source: str = "<model>") -> "FittedModel":
        """Rebuild a fitted model from a declaration that carries ``params:``."""
        graph = build(spec)
        return cls(spec, graph, params_to_cpds(graph, spec.params or {}, source))


#: The most rows one call to ``sample`` draws; more is refused before anything is allocated.
MAX_SAMPLE_ROWS = 10 ** 9


def check_sample_size(n: Any) -> None:
    """Refuse a row count that is not a count, or so large that allocating it must fail."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or n < 0:
        raise DataError(f"the number of rows to sample must be a non-negative integer, got {n!r}")
    if n > MAX_SAMPLE_ROWS:
        raise DataError(f"{n:.3g} rows is more than one call samples (limit {MAX_SAMPLE_ROWS:.0e}); draw them "
                        "in batches, e.g. several calls with different seeds")


def sample_rng(seed: Any) -> np.random.Generator:
    """``np.random.default_rng(seed)``, with a PGMError for a seed numpy refuses (a negative number, text)."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise PGMError(f"seed must be None or a whole number >= 0, got {seed!r}") from None


def cpd_to_params(graph: Graph, fam: Family, cpd: CPD) -> dict[str, Any]:
    """A CPD as plain data (the layout of each kind: its ``to_params``)."""
    return kind_of(fam).to_params(graph, fam, cpd)


def params_to_cpds(graph: Graph, params: dict[str, Any], source: str = "<model>") -> dict[str, CPD]:
    """Read and check a ``params:`` block (shapes, probabilities, positive-definite covariances)."""
    fams = families(graph)
    cpds: dict[str, CPD] = {}
    unknown = sorted(set(params) - set(graph.params))
    if unknown:
        raise ModelError(f"{source}: params.{unknown[0]}: no node or tie of that name; expected keys "
                         f"{sorted(graph.params)[:12]}")
    for key, members in graph.params.items():
        where = f"{source}: params.{key}"
        if key not in params:
            raise ModelError(f"{where}: missing; a fitted model needs parameters for every node (or refit it)")
        block = params[key]
        if not isinstance(block, dict):
            raise ModelError(f"{where}: expected a mapping of parameter arrays, got {type(block).__name__}")
        fam = fams[members[0]]
        kind = kind_of(fam)
        extra = [k for k in block if k not in kind.fields]
        if extra:
            raise ModelError(f"{where}.{extra[0]}: unknown parameter; a {fam.kind} node has "
                             f"{', '.join(f'`{k}`' for k in kind.fields)} (remove it or fix the name)")
        cpds[key] = kind.from_params(graph, fam, block, where)
    return cpds
