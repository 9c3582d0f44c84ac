"""What the two fitted-model classes share when a fitted model is *used*.

One evidence parser, one query index, one BIC/AIC, one way to report rows of probability
zero, and the prediction front end (``posterior``, ``predict``, ``most_probable``) over
an inference back end each class provides (:meth:`Answers._infer`): a directed model
enumerates hidden components (:mod:`pgm.infer.enumerate`), an undirected one calibrates
batched clique trees.

Evidence values follow the data-reading rule: a value is read as a cell of that column
would be (``1``, ``1.0`` and ``"1"`` are the same state of a node with three counted states;
``True`` is the label ``true``); ``None`` or NaN means unobserved.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from pgm.encode import EncodedData, encode, encode_discrete
from pgm.errors import DataError, DataWarning, ModelError
from pgm.graph import Graph
from pgm.io.table import Lines, read_options


# --------------------------------------------------------------------------- rows of probability zero
def row_names(index: Any, rows: np.ndarray, limit: int = 5) -> str:
    """``row 3, row 17 ...``: the first rows by their label in the data (position without an index);
    ``line 4, line 18 of f.csv`` for rows read from a CSV file (``index`` a :class:`pgm.io.table.Lines`)."""
    rows = np.asarray(rows)
    if isinstance(index, Lines):
        lines = index.labels([int(r) for r in rows[:limit]])
        return ", ".join(f"line {n}" for n in lines) + (" ..." if len(rows) > limit else "") + f" of {index.path}"
    labels = [index[r] if index is not None else r for r in rows[:limit]]
    labels = [lab.item() if isinstance(lab, np.generic) else lab for lab in labels]
    return ", ".join(f"row {lab}" for lab in labels) + (" ..." if len(rows) > limit else "")


def warn_impossible(index: Any, rows: np.ndarray, stacklevel: int = 3) -> None:
    """A DataWarning naming rows whose log-likelihood is ``-inf``."""
    n = len(rows)
    warnings.warn(f"{n} row{'s' if n > 1 else ''} ({row_names(index, rows)}) {'have' if n > 1 else 'has'} "
                  "probability 0 under the model (log-likelihood -inf): the fitted parameters give a state "
                  "probability 0 there. Fit with a prior (e.g. prior={'dirichlet': 1}) "
                  "to keep every probability above 0", DataWarning, stacklevel=stacklevel)


def rows_of(enc: EncodedData) -> Any:
    """How messages name the rows of ``enc``: their file lines when read from a CSV file, else the index."""
    lines = getattr(enc, "lines", None)  # sequence data name rows by their index
    return lines if lines is not None else enc.index


def refuse_impossible(index: Any, row_log_prob: np.ndarray, what: str) -> None:
    """A DataError naming the rows of probability zero: a posterior given them is undefined."""
    bad = np.flatnonzero(np.isneginf(row_log_prob) | np.isnan(row_log_prob))
    if bad.size:
        n = bad.size
        them = "them" if n > 1 else "it"
        raise DataError(f"{what}: {n} row{'s' if n > 1 else ''} ({row_names(index, bad)}) "
                        f"{'have' if n > 1 else 'has'} probability 0 under the model, so nothing can be "
                        f"conditioned on {them}; drop or fix {them}, or refit with a prior "
                        "(prior={'dirichlet': 1})")


# --------------------------------------------------------------------------- queries and evidence
def _column_hint(graph: Graph, name: Any) -> str:
    """When ``name`` is a data column of a multi-column gaussian node: how to name the node instead."""
    for v in graph.slice:
        var = graph[v]
        if var.gaussian and var.dim > 1 and name in var.columns:
            return (f"; {name!r} is a column of the gaussian node {var.decl!r}: name the node (as evidence, a list "
                    f"of its {var.dim} values, NaN where not observed: {var.decl}={_example(var.columns, name)})")
    return ""


def _example(columns: tuple[str, ...], name: str) -> str:
    return "[" + ", ".join("x" if c == name else "nan" for c in columns) + "]"


def check_nodes(graph: Graph, nodes: Any, what: str) -> list[str]:
    """Nodes asked about, as a list: at least one, each known and listed once."""
    nodes = [nodes] if isinstance(nodes, str) else list(nodes)
    if not nodes:
        raise ModelError(f"{what} needs at least one node to ask about")
    known = set(graph.slice)  # a sequence model's h@prev is the graph's previous-step copy, not a node to ask
    for v in nodes:
        if not isinstance(v, str) or v not in known:
            raise ModelError(f"unknown node {v!r} in {what}; nodes: {list(graph.slice)[:12]}{_column_hint(graph, v)}")
    twice = sorted({v for v in nodes if nodes.count(v) > 1})
    if twice:
        raise ModelError(f"nodes {twice} are listed twice in {what}; list each once")
    return nodes


def query_nodes(graph: Graph, variables: Any, evidence: Any, discrete: bool = True) -> list[str]:
    """The queried nodes as a list, checked: known, listed once, not also observed, discrete."""
    variables = check_nodes(graph, variables, "query")
    if evidence is not None and not isinstance(evidence, dict):
        raise DataError(f"evidence must be a mapping node -> state, got {type(evidence).__name__}")
    check_nodes(graph, list(evidence or {}) or variables, "query")
    both = [v for v in variables if v in (evidence or {})]
    if both:
        raise ModelError(f"nodes {both} are both queried and observed; drop them from one of the two")
    if discrete:
        cont = [v for v in variables if not graph[v].discrete]
        if cont:
            raise ModelError(f"{cont} {'are' if len(cont) > 1 else 'is'} gaussian; query() takes discrete "
                             "nodes (use posterior() or predict() for the conditional mean of a gaussian node)")
    return variables


def parse_evidence(graph: Graph, evidence: dict[str, Any] | None,
                   partial: bool = False) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Evidence as state codes (discrete nodes) and value rows of shape (1, dim) (gaussian nodes).

    A value is read by the data-reading rule (see the module docstring); None/NaN is dropped.
    With ``partial``, a gaussian value may leave some components NaN (unobserved)."""
    codes: dict[str, int] = {}
    values: dict[str, np.ndarray] = {}
    for v, value in (evidence or {}).items():
        var = graph[v]
        if var.discrete:
            if isinstance(value, (list, tuple, dict, set, np.ndarray)):
                raise DataError(f"evidence {v}={value!r}: give one state; states are {list(var.labels)}")
            cell = pd.Series([value], name=v, dtype=object if not isinstance(value, float) else float)
            try:
                code = int(encode_discrete(cell, var)[0])
            except DataError:
                raise DataError(f"evidence {v}={value!r}: unknown state; states are {list(var.labels)}") from None
            if code >= 0:
                codes[v] = code
            continue
        try:
            arr = np.asarray(value, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"evidence {v}={value!r}: the gaussian node {v!r} takes {var.dim} number"
                            f"{'s' if var.dim > 1 else ''}") from None
        if isinstance(value, (bool, np.bool_, str)) or arr.shape != (var.dim,):
            raise DataError(f"evidence {v}={value!r}: the gaussian node {v!r} takes {var.dim} number"
                            f"{'s' if var.dim > 1 else ''}")
        if np.isnan(arr).all():
            continue
        if not np.all(np.isfinite(arr[~np.isnan(arr)] if partial else arr)):
            raise DataError(f"evidence {v}={value!r}: values must be finite numbers")
        values[v] = arr.reshape(1, -1)
    return codes, values


def query_index(graph: Graph, variables: list[str]) -> pd.Index:
    """The joint states of ``variables``: an Index for one, a MultiIndex (first slowest) for several."""
    if len(variables) == 1:
        return pd.Index(list(graph[variables[0]].labels), name=variables[0])
    return pd.MultiIndex.from_product([list(graph[v].labels) for v in variables], names=variables)


def query_series(graph: Graph, variables: list[str], log_table: np.ndarray, evidence: dict | None) -> pd.Series:
    """A normalised query answer; evidence of probability zero is a DataError, never NaN."""
    table = np.asarray(log_table, dtype=float)
    top = table.max() if table.size else -math.inf
    if not np.isfinite(top):
        raise DataError(f"the evidence {evidence or {}} has probability 0 under the model, so the query "
                        "has no answer; check the evidence, or refit with a prior (prior={'dirichlet': 1})")
    probs = np.exp(table - top)
    probs /= probs.sum()
    return pd.Series(probs.reshape(-1), index=query_index(graph, variables), name="p")


# --------------------------------------------------------------------------- typed labels
def state_values(graph: Graph, name: str) -> np.ndarray:
    """A node's states as ``sample`` returns them: integers for a state count, labels otherwise."""
    var = graph[name]
    if isinstance(graph.spec.nodes[var.decl].states, int):
        return np.arange(var.n_states, dtype=np.int64)
    return np.asarray(var.labels, dtype=object)


def typed_column(graph: Graph, name: str, codes: np.ndarray) -> Any:
    """Codes as a column typed like ``sample``'s: int64 for a state count, a categorical otherwise."""
    var = graph[name]
    if isinstance(graph.spec.nodes[var.decl].states, int):
        return np.asarray(codes, dtype=np.int64)
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(var.labels))


def criteria(log_likelihood: float, n_params: int, n: float) -> tuple[float, float]:
    """``(BIC, AIC)``: ``-2 log L + k log n`` and ``-2 log L + 2 k`` (lower is better); ``n`` is
    the number of rows (the total row weight for weighted data)."""
    return -2.0 * log_likelihood + n_params * math.log(n), -2.0 * log_likelihood + 2.0 * n_params


# --------------------------------------------------------------------------- the shared front end
class Answers:
    """Prediction, scoring criteria and query plumbing shared by the fitted-model classes.

    A subclass has ``graph``, ``n_params``, ``encode`` and ``log_likelihood``, and implements
    :meth:`_infer`.
    """

    graph: Graph

    # ---- criteria
    def bic(self, data: Any, weights: str | None = None, *, na_values: Any = None,
            sep: str | None = None) -> float:
        """Bayesian information criterion ``-2 log L + k log n`` (lower is better).

        With ``weights`` (a column of row weights), ``log L`` is the weighted log-likelihood and
        ``n`` the sum of the weights: the BIC of the data with each row repeated ``w`` times."""
        enc = self.encode(data, weights, na_values=na_values, sep=sep)  # type: ignore[attr-defined]
        n = enc.n_rows if enc.weights is None else float(enc.weights.sum())
        return criteria(self.log_likelihood(enc), self.n_params, n)[0]  # type: ignore[attr-defined]

    def aic(self, data: Any, weights: str | None = None, *, na_values: Any = None,
            sep: str | None = None) -> float:
        """Akaike information criterion ``-2 log L + 2 k`` (lower is better); ``weights`` as in :meth:`bic`."""
        log_l = self.log_likelihood(data, weights, na_values=na_values, sep=sep)  # type: ignore[attr-defined]
        return criteria(log_l, self.n_params, 1.0)[1]  # type: ignore[attr-defined]

    # ---- back end
    def _infer(self, enc: EncodedData, nodes: tuple[str, ...], mode: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(row log-probability, answers)`` for discrete ``nodes``: with mode "sum" each node's
        posterior (n_rows, k) (one-hot where observed); with "max" the codes (n_rows,) of the most
        probable joint state of the nodes (others summed out), observed cells kept."""
        raise NotImplementedError

    # ---- front end
    def _asked(self, nodes: Any, what: str) -> list[str]:
        return check_nodes(self.graph, nodes, f"{what}()")

    def _encode_for(self, data: Any, nodes: list[str], na_values: Any = None, sep: str | None = None) -> EncodedData:
        if isinstance(data, EncodedData):
            return data
        return encode(self.graph, data, absent=tuple(nodes), options=read_options(na_values, sep))

    def _encode_completing(self, data: Any, na_values: Any = None, sep: str | None = None,
                           stacklevel: int = 4) -> Any:
        """Encode rows to complete (most_probable): an observed node's absent column counts as a
        column of missing cells, with a DataWarning naming the nodes (a misspelt column is then
        also reported among the ignored ones); data naming no observed node are refused."""
        if isinstance(data, EncodedData):
            return data
        names = [v for v in self.graph.slice if not self.graph[v].latent]
        got = self._encode_for(data, names, na_values=na_values, sep=sep)
        inner = got if isinstance(got, EncodedData) else got.enc  # a sequence model's SequenceData
        gone = [v for v in names if not inner.observed(v)]
        if gone and len(gone) == len(names):
            raise DataError(f"no column of the data names an observed node ({', '.join(names[:8])}"
                            f"{' ...' if len(names) > 8 else ''}); most_probable() completes rows from their "
                            "observed cells")
        if gone:
            warnings.warn(f"no column for the node{'s' if len(gone) > 1 else ''} {', '.join(map(repr, gone))}: "
                          "treated as missing in every row (most_probable() completes "
                          f"{'them' if len(gone) > 1 else 'it'})", DataWarning, stacklevel=stacklevel)
        return got

    def _gaussian(self, node: str, enc: EncodedData) -> tuple[np.ndarray, np.ndarray]:
        raise ModelError(f"{node!r} is gaussian; this model predicts discrete nodes only")

    def posterior(self, node: str, data: Any, *, na_values: Any = None, sep: str | None = None) -> pd.DataFrame:
        """p(node | each row's other observed cells).

        The node's column may be absent from ``data`` (then it is predicted in every row); where
        the column holds a value, that value is the answer (probability 1).

        Returns
        -------
        DataFrame (n_rows, n_states) for a discrete node, columns its states. For a gaussian node
        (directed models), its conditional mean and variance: columns ``mean`` and ``variance``
        (dimension 1) or ``mean[c]`` per column and ``cov[c1,c2]`` per pair (dimension > 1).

        Raises
        ------
        pgm.DataError
            naming rows of probability zero under the model (no posterior exists there).
        """
        (node,) = self._asked([node], "posterior")
        enc = self._encode_for(data, [node], na_values=na_values, sep=sep)
        var = self.graph[node]
        if not var.discrete:
            mean, cov = self._gaussian(node, enc)
            cols = list(var.columns)
            if var.dim == 1:
                return pd.DataFrame({"mean": mean[:, 0], "variance": cov[:, 0, 0]}, index=enc.index)
            out = {f"mean[{c}]": mean[:, j] for j, c in enumerate(cols)}
            out.update({f"cov[{a},{b}]": cov[:, i, j] for i, a in enumerate(cols) for j, b in enumerate(cols)
                        if j >= i})
            return pd.DataFrame(out, index=enc.index)
        row_lp, probs = self._infer(enc, (node,), "sum")
        refuse_impossible(rows_of(enc), row_lp, f"posterior({node!r})")
        return pd.DataFrame(probs[node], index=enc.index, columns=list(var.labels))

    def predict(self, nodes: str | list[str], data: Any, *, joint: bool = False, na_values: Any = None,
                sep: str | None = None) -> pd.Series | pd.DataFrame:
        """The most probable value of ``nodes`` for every row, given the row's other observed cells.

        Parameters
        ----------
        nodes : a node or a list of nodes; their columns may be absent from ``data``.
        data : DataFrame or path; cells of the nodes that hold a value are kept as they are.
        na_values, sep : how cells are read, as in :func:`pgm.fit`.
        joint : False -- each node's own most probable state; True -- the most probable joint
            state of the (discrete) nodes together, other hidden nodes summed out.

        Returns
        -------
        For one node a Series, for a list a DataFrame with a column per node (a gaussian node of
        dimension > 1: its columns). Discrete values are typed as ``sample`` gives them (integers
        for a state count, a categorical of labels otherwise); a gaussian node gets its
        conditional mean.
        """
        single = isinstance(nodes, str)
        asked = self._asked(nodes, "predict")
        enc = self._encode_for(data, asked, na_values=na_values, sep=sep)
        discrete = tuple(v for v in asked if self.graph[v].discrete)
        if joint and len(discrete) != len(asked):
            raise ModelError(f"predict(joint=True) completes discrete nodes jointly; "
                             f"{[v for v in asked if v not in discrete]} are gaussian (predict them separately)")
        cols: dict[str, Any] = {}
        if discrete:
            row_lp, got = self._infer(enc, discrete, "max" if joint else "sum")
            refuse_impossible(rows_of(enc), row_lp, "predict()")
            for v in discrete:
                codes = got[v] if joint else got[v].argmax(axis=1)
                cols[v] = typed_column(self.graph, v, codes)
        for v in asked:
            if v in discrete:
                continue
            mean, _ = self._gaussian(v, enc)
            for j, c in enumerate(self.graph[v].columns):
                cols[c] = mean[:, j]
        if single and len(cols) == 1:
            return pd.Series(cols[asked[0]], index=enc.index, name=asked[0])
        return pd.DataFrame(cols, index=enc.index)

    def _fill_gaussian(self, node: str, codes: dict[str, np.ndarray], values: dict[str, np.ndarray],
                       n: int, observed: np.ndarray | None = None) -> np.ndarray:
        raise ModelError(f"{node!r} is gaussian; this model has discrete nodes only")

    def most_probable(self, data: Any, *, na_values: Any = None, sep: str | None = None) -> pd.DataFrame:
        """The most probable joint completion of every row's hidden discrete cells (latent nodes
        and missing cells), given its observed cells: the MPE, by enumeration or max-product
        (missing gaussian cells integrated out).  A missing gaussian cell is then filled with its
        conditional mean given the completed row (its parents' values, filled first) and the
        node's own observed components (a partly missing vector).

        Returns a DataFrame with a column per node (latent ones included), discrete values typed as
        ``sample`` gives them; observed cells are kept.  An observed node's column may be absent
        (its cells all missing, with a DataWarning naming it).
        """
        discrete = tuple(v for v in self.graph.order if self.graph[v].discrete)
        enc = self._encode_completing(data, na_values=na_values, sep=sep)
        row_lp, got = self._infer(enc, discrete, "max")
        refuse_impossible(rows_of(enc), row_lp, "most_probable()")
        values: dict[str, np.ndarray] = {}
        cols: dict[str, Any] = {}
        for v in self.graph.order:
            var = self.graph[v]
            if var.discrete:
                cols[v] = typed_column(self.graph, v, got[v])
                continue
            block = enc.values.get(v, np.full((enc.n_rows, var.dim), np.nan))
            if np.isnan(block).any():
                block = np.where(np.isnan(block), self._fill_gaussian(v, got, values, enc.n_rows, block), block)
            values[v] = block
            for j, c in enumerate(var.columns):
                cols[c] = block[:, j]
        return pd.DataFrame(cols, index=enc.index)


__all__ = ["Answers", "criteria", "check_nodes", "parse_evidence", "query_nodes", "query_index", "query_series", "state_values",
           "typed_column", "warn_impossible", "refuse_impossible", "row_names"]
