"""FittedMarkovNet: an undirected log-linear model with parameters.

Built by :func:`fit_markov` (what ``pgm.fit`` calls for ``graph: undirected``) or read
back from a fitted graph file with :meth:`FittedMarkovNet.from_spec`.

The ``params:`` block of a fitted undirected file is a mapping:

- each node with a unary potential, under its name (or its ``tie``): a list of its
  ``k`` log-potentials, ``[0.0, t1, ..., t_{k-1}]`` (on reading, the list is shifted so
  the first is 0: adding a constant to a unary changes nothing);
- each clique under its ``tie`` name, or ``clique{i}`` with ``i`` its index in
  ``cliques``: for ``features: table`` the log-potential table as nested lists of shape
  ``[k_1][k_2]...`` (first node slowest), for ``ising`` / ``agreement`` one float, for a
  registered family with ``d`` features a list of ``d`` floats (one float when d = 1).

>>> fitted = fit_markov(graph, data)                  # doctest: +SKIP
>>> fitted.query(["a"], evidence={"b": "on"})         # doctest: +SKIP
>>> fitted.potential(0)                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pgm.encode import EncodedData, encode, merge_rows
from pgm.errors import ModelError, PGMError
from pgm.evidence import Answers, parse_evidence, query_nodes, query_series
from pgm.features import UNARY, Layout, gibbs_sweep
from pgm.fitted import check_sample_size, only_numbers, sample_rng
from pgm.graph import Graph, build
from pgm.infer.elimination import (CliqueTree, TooWideError, build_clique_tree, calibrate, max_decode, sample_tree,
                                   variable_elimination)
from pgm.infer.factor import LogFactor, logsumexp
from pgm.io.table import read_options
from pgm.io.yaml_text import fitted_data, save_fitted
from pgm.learn.loglinear import BATCH_ENTRIES, LogLinear, LogLinearFit, Rows, fit_loglinear
from pgm.schema import ModelSpec

#: Gibbs sampling defaults of :meth:`FittedMarkovNet.sample`.
GIBBS_BURN_IN = 500
GIBBS_THIN = 10
GIBBS_CHAINS = 100


@dataclass(frozen=True, eq=False)
class FittedMarkovNet(Answers):
    """An undirected model with fitted log-linear parameters.

    Attributes
    ----------
    spec : the declaration (``params`` is ignored; ``theta`` holds the parameters).
    graph : the ground graph.
    engine : compiled layout, clique tree and samplers (shared with the learner).
    theta : float array of shape (n_params,), laid out by ``engine.layout``.
    history : total log-likelihood per iteration of the fit (``info["history_kind"]``
        says when it is the pseudo-log-likelihood instead).
    info : learner, iterations, convergence and options of the fit.
    """

    spec: ModelSpec
    graph: Graph
    engine: LogLinear = field(repr=False)
    theta: np.ndarray = field(repr=False)
    history: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    # --------------------------------------------------------------- basics
    @classmethod
    def from_fit(cls, fit: LogLinearFit) -> "FittedMarkovNet":
        """Wrap what :func:`pgm.learn.loglinear.fit_loglinear` returns."""
        info = {"learner": fit.learner, "n_iter": fit.n_iter, "converged": fit.converged,
                "history_kind": fit.history_kind, **fit.options}
        return cls(fit.graph.spec, fit.graph, fit.engine, fit.theta, list(fit.history), info)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.spec.name

    @property
    def layout(self) -> Layout:
        """The parameter layout (potentials, parameter blocks)."""
        return self.engine.layout

    @property
    def n_params(self) -> int:
        """Number of parameters (a tie group counts once; unaries have k - 1)."""
        return self.layout.n_params

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters by key, as arrays (unaries without their fixed first entry)."""
        return self.layout.unpack(self.theta)

    def __repr__(self) -> str:
        return (f"FittedMarkovNet({self.spec.name!r}, {len(self.spec.nodes)} nodes, {len(self.spec.cliques)} "
                f"cliques, {self.n_params} parameters" + (f", {len(self.history)} iterations" if self.history
                                                          else "") + ")")

    def encode(self, data: Any, weights: str | None = None, *, na_values: Any = None,
               sep: str | None = None) -> EncodedData:
        """``data`` (DataFrame or path) encoded against the model's graph, with the row weights of
        the column ``weights`` if given; EncodedData passes through.  Cells are read by the rule of
        docs/format.md "Missing data" (``na_values``, ``sep`` as in pgm.fit)."""
        if isinstance(data, EncodedData):
            if weights is not None:
                raise PGMError("weights= names a column of the data; encoded data carry their weights already")
            return data
        return encode(self.graph, data, weights=weights, options=read_options(na_values, sep))

    def _flat(self) -> np.ndarray:
        return self.layout.log_tables(self.theta)

    def _rows(self, data: Any, weights: str | None = None, na_values: Any = None, sep: str | None = None) -> Rows:
        return self.engine.prepare(self.encode(data, weights, na_values=na_values, sep=sep))

    def _exact(self, what: str) -> None:
        try:
            self.engine.tree
        except TooWideError as exc:
            raise TooWideError(f"{what} needs exact inference, out of reach here: {exc}") from None

    # --------------------------------------------------------------- scores
    def log_likelihood(self, data: Any, weights: str | None = None, *, na_values: Any = None,
                       sep: str | None = None) -> float:
        """Total exact log-likelihood of the rows, latent nodes and missing cells summed out
        (``sum_i w_i log p(row_i)`` with the row weights of the column ``weights``).

        Raises
        ------
        pgm.ModelError
            when the model is too wide for exact inference; use :meth:`pseudo_log_likelihood`.
        """
        self._exact("log_likelihood()")
        return self.engine.log_likelihood(self._rows(data, weights, na_values=na_values, sep=sep), self._flat())

    def row_log_likelihood(self, data: Any, *, na_values: Any = None, sep: str | None = None) -> np.ndarray:
        """Exact log-likelihood of every row, shape (n_rows,)."""
        self._exact("row_log_likelihood()")
        rows = self._rows(data, na_values=na_values, sep=sep)
        flat = self._flat()
        log_z, _ = self.engine.free(flat, marginals=False)
        return (self.engine.row_values(rows, flat) - log_z)[rows.inverse]

    def pseudo_log_likelihood(self, data: Any, *, na_values: Any = None, sep: str | None = None) -> float:
        """Total pseudo-log-likelihood ``sum_rows sum_i log p(x_i | x_rest)`` (no ``Z`` needed).

        Raises
        ------
        pgm.DataError
            when a row has latent or missing cells.
        """
        return self.engine.pseudo(self._rows(data, na_values=na_values, sep=sep), self._flat())[0]

    # --------------------------------------------------------------- inference
    def factors(self) -> list[LogFactor]:
        """The model as log-factors: every potential, plus a zero factor per variable."""
        flat = self._flat()
        out = [LogFactor(p.scope, t) for p, t in zip(self.layout.potentials, self.engine.potential_tables(flat))]
        out.extend(LogFactor((v,), np.zeros(k)) for v, k in zip(self.layout.variables, self.layout.cards))
        return out

    def query(self, variables: list[str] | str, evidence: dict[str, Any] | None = None) -> pd.Series:
        """Exact marginal ``p(variables | evidence)`` by variable elimination.

        Parameters
        ----------
        variables : node names.
        evidence : node -> observed state label (or code for counted states; values are read as a
            data cell would be, see :mod:`pgm.evidence`).

        Returns
        -------
        pandas Series ``p`` indexed by the joint states of ``variables`` (a MultiIndex for several).

        Raises
        ------
        pgm.ModelError : an unknown node, a node listed twice, or both queried and observed.
        pgm.DataError : an unknown state.
        """
        variables = query_nodes(self.graph, variables, evidence)
        codes, _ = parse_evidence(self.graph, evidence)
        joint = variable_elimination(self.factors(), variables, codes)
        return query_series(self.graph, variables, joint.table, evidence)

    def _evidence_tree(self, together: tuple[str, ...] = ()) -> CliqueTree:
        """The model's clique tree with a unary scope per variable (where each row's evidence goes),
        and optionally one scope holding ``together`` (so their joint posterior is one clique's)."""
        cache = self.__dict__.setdefault("_trees", {})
        if together not in cache:
            layout = self.layout
            scopes = [p.scope for p in layout.potentials] + [(v,) for v in layout.variables]
            try:
                cache[together] = build_clique_tree(scopes + ([together] if together else []), layout.card_map)
            except TooWideError as exc:
                raise TooWideError(f"the joint posterior of {list(together)} needs exact inference out of reach "
                                   f"here ({exc}); ask for fewer nodes at once") from None
        return cache[together]

    def _infer(self, enc: EncodedData, nodes: tuple[str, ...], mode: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Posteriors (mode "sum") or the most probable joint state (mode "max") of ``nodes`` per row.

        Identical rows are merged; the distinct rows go through one clique tree of the whole model
        at once (a leading batch axis), each row's observed cells entering as a unary indicator
        (log 0 off the observed state), in chunks of at most ``BATCH_ENTRIES`` table entries.
        Every variable asked (``most_probable``): max-product and a traceback; otherwise the
        joint marginal of the nodes from one clique, then its argmax for mode "max"."""
        self._exact("posterior() and predict()")
        layout = self.layout
        codes = np.full((enc.n_rows, len(layout.variables)), -1, dtype=np.int64)
        for j, v in enumerate(layout.variables):
            if v in enc.codes:
                codes[:, j] = enc.codes[v]
        first, _, inverse = merge_rows(codes)
        codes = codes[first]
        index = {v: i for i, v in enumerate(layout.variables)}
        decode = mode == "max" and set(nodes) == set(layout.variables)
        together = () if decode or len(nodes) == 1 else tuple(nodes)
        tree = self._evidence_tree(together)
        potentials = self.engine.potential_tables(self._flat())
        extra = [np.zeros([layout.cards[index[v]] for v in together])] if together else []
        n = len(codes)
        out = {v: np.zeros((n, layout.cards[index[v]])) if mode == "sum" else np.zeros(n, dtype=np.int64)
               for v in nodes}
        step = max(1, BATCH_ENTRIES // max(tree.total_entries, 1))
        for start in range(0, n, step):
            part = codes[start:start + step]
            evidence = [np.where((part[:, j, None] < 0) | (part[:, j, None] == np.arange(k)[None, :]), 0.0, -np.inf)
                        for j, k in enumerate(layout.cards)]
            tables = potentials + evidence + extra
            rows = slice(start, start + len(part))
            if decode:
                best, _ = max_decode(tree, tables)
                for v in nodes:
                    out[v][rows] = best[:, tree.variables.index(v)]
                continue
            table = calibrate(tree, tables).marginal(list(nodes)).table
            table = np.broadcast_to(table, (len(part),) + table.shape[1:])
            if mode == "max":
                best = np.unravel_index(table.reshape(len(part), -1).argmax(axis=1), table.shape[1:])
                for j, v in enumerate(nodes):
                    out[v][rows] = best[j]
                continue
            for j, v in enumerate(nodes):
                other = tuple(1 + i for i in range(len(nodes)) if i != j)
                out[v][rows] = np.exp(logsumexp(table, other) if other else table)
        return np.zeros(enc.n_rows), {v: a[inverse] for v, a in out.items()}

    def sample(self, n: int, seed: int | None = None, method: str = "auto", *, burn_in: int = GIBBS_BURN_IN,
               thin: int = GIBBS_THIN, n_chains: int | None = None) -> pd.DataFrame:
        """``n`` rows from the model, with its columns (latent nodes included).

        Parameters
        ----------
        n : number of rows.
        seed : random seed.
        method : "exact" (forward sampling on the calibrated clique tree: independent,
            exact draws), "gibbs" (Markov chain), or "auto" (exact where tractable).
        burn_in, thin : Gibbs only: sweeps discarded at the start of each chain, and sweeps
            between kept draws.
        n_chains : Gibbs only: independent chains run side by side (default ``min(n, 100)``);
            each gives ``ceil(n / n_chains)`` draws.

        Returns
        -------
        DataFrame: labels (categorical) for named states, integer codes for counted states.
        """
        check_sample_size(n)
        if method not in ("auto", "exact", "gibbs"):
            raise PGMError(f"unknown sampling method {method!r}; use 'auto', 'exact' or 'gibbs'")
        if burn_in < 0 or thin < 1:
            raise PGMError(f"burn_in must be >= 0 and thin >= 1, got {burn_in}, {thin}")
        rng = sample_rng(seed)
        flat = self._flat()
        if method == "auto":
            method = "exact" if self.engine.tractable() else "gibbs"
        if method == "exact":
            self._exact("sample(method='exact')")
            cal = calibrate(self.engine.tree, self.engine.potential_tables(flat))
            codes = sample_tree(cal, int(n), rng)
        else:
            codes = self._gibbs(int(n), flat, rng, burn_in, thin, n_chains)
        return self._frame(codes)

    def _gibbs(self, n: int, flat: np.ndarray, rng: np.random.Generator, burn_in: int, thin: int,
               n_chains: int | None) -> np.ndarray:
        chains_n = max(1, min(n, GIBBS_CHAINS) if n_chains is None else int(n_chains))
        cards = np.asarray(self.layout.cards)
        chains = (rng.random((chains_n, len(cards))) * cards).astype(np.int64)
        for _ in range(burn_in):
            gibbs_sweep(self.engine.gibbs, chains, flat, rng)
        draws = []
        for _ in range(-(-n // chains_n)):
            for _ in range(thin):
                gibbs_sweep(self.engine.gibbs, chains, flat, rng)
            draws.append(chains.copy())
        out = np.stack(draws, axis=1).reshape(-1, len(cards)) if draws else np.zeros((0, len(cards)), np.int64)
        return out[:n]

    def _frame(self, codes: np.ndarray) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for j, name in enumerate(self.layout.variables):
            var = self.graph[name]
            if isinstance(self.spec.nodes[var.decl].states, int):
                cols[name] = codes[:, j].astype(np.int64)
            else:
                cols[name] = pd.Categorical.from_codes(codes[:, j], categories=list(var.labels))
        return pd.DataFrame(cols, index=pd.RangeIndex(codes.shape[0]))

    # --------------------------------------------------------------- reading parameters
    def _key(self, which: int | str) -> tuple[str, int]:
        """Parameter key and a potential index for a clique index, tie, ``clique{i}`` or node name."""
        layout = self.layout
        if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
            i = int(which)
            if not 0 <= i < len(self.spec.cliques):
                raise ModelError(f"clique index {i} is out of range; the model has {len(self.spec.cliques)} cliques")
            pot = next(j for j, p in enumerate(layout.potentials) if p.clique == i)
            return layout.potentials[pot].key, pot
        if which in layout.blocks:
            return str(which), layout.blocks[which].potentials[0]
        if which in self.graph.variables and self.graph[which].param in layout.blocks:
            key = self.graph[which].param
            pot = next(j for j, p in enumerate(layout.potentials) if p.family == UNARY and p.scope == (which,))
            return key, pot
        raise ModelError(f"no potential named {which!r}; use a clique index, a tie name or a node with a "
                         f"unary potential (keys: {list(layout.blocks)[:12]})")

    def potential(self, which: int | str) -> pd.DataFrame:
        """A potential's log-values ``theta . f(x_c)`` over its joint states, labelled.

        ``which`` : a clique index, a tie name, ``clique{i}``, or a node name (its unary).
        Rows are the states of all but the last variable (a MultiIndex for several),
        columns the states of the last.
        """
        _, pot = self._key(which)
        p = self.layout.potentials[pot]
        table = self.layout.table(self._flat(), pot)
        last = p.scope[-1]
        columns = pd.Index(list(self.graph[last].labels), name=last)
        head = p.scope[:-1]
        if not head:
            return pd.DataFrame(table.reshape(1, -1), index=[""], columns=columns)
        if len(head) == 1:
            index = pd.Index(list(self.graph[head[0]].labels), name=head[0])
        else:
            index = pd.MultiIndex.from_product([list(self.graph[v].labels) for v in head], names=list(head))
        return pd.DataFrame(table.reshape(-1, p.cards[-1]), index=index, columns=columns)

    def potentials(self) -> dict[str, pd.DataFrame]:
        """Every parameter key's potential (see :meth:`potential`), in ``params`` order."""
        return {key: self.potential(key) for key in self.layout.blocks}

    # --------------------------------------------------------------- persistence
    def to_params(self) -> dict[str, Any]:
        """The ``params:`` block (see the module docstring for the format)."""
        out: dict[str, Any] = {}
        for key, value in self.layout.unpack(self.theta).items():
            b = self.layout.blocks[key]
            if b.family == UNARY:
                out[key] = [0.0] + [float(x) for x in value]
            elif value.ndim == 0:
                out[key] = float(value)
            else:
                out[key] = value.tolist()
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole fitted graph file as plain data."""
        return fitted_data(self.spec, self.to_params())

    def save(self, path: Any) -> None:
        """Write the model and its parameters as a graph file, atomically."""
        save_fitted(path, self.spec, self.to_params())

    @classmethod
    def from_spec(cls, spec: ModelSpec, source: str = "<model>") -> "FittedMarkovNet":
        """Rebuild a fitted model from a declaration that carries ``params:``.

        Raises
        ------
        pgm.ModelError
            naming the key: a missing or unknown key, a wrong shape, a non-finite value.
        """
        graph = build(spec)
        engine = LogLinear(graph)
        layout = engine.layout
        params = dict(spec.params or {})
        problems = []
        unknown = [k for k in params if k not in layout.blocks]
        for k in unknown:
            problems.append(f"{source}: params.{k}: unknown key; expected one of {list(layout.blocks)[:12]} "
                            "(a node's unary, a clique's tie name, or clique<i>)")
        values: dict[str, np.ndarray] = {}
        for key, b in layout.blocks.items():
            if key not in params:
                problems.append(f"{source}: params.{key}: missing; {_expect(b)}")
                continue
            try:
                if not only_numbers(params[key]):
                    raise ValueError("text, booleans or ragged lists")
                arr = np.asarray(params[key], dtype=float)
            except (TypeError, ValueError):
                problems.append(f"{source}: params.{key}: not numbers (or ragged lists); {_expect(b)}")
                continue
            want = (b.cards[0],) if b.family == UNARY else b.shape
            if arr.shape != want:
                problems.append(f"{source}: params.{key}: shape {list(arr.shape)}, expected {list(want)}; {_expect(b)}")
                continue
            if not np.all(np.isfinite(arr)):
                problems.append(f"{source}: params.{key}: non-finite values; log-potentials must be finite numbers")
                continue
            values[key] = arr[1:] - arr[0] if b.family == UNARY else arr
        if problems:
            raise ModelError("\n".join(problems), problems)
        return cls(spec, graph, engine, layout.pack(values), [], {"source": source})


def _expect(b: Any) -> str:
    if b.family == UNARY:
        return f"give a list of {b.cards[0]} log-potentials, one per state"
    if b.family == "table":
        return f"give the log-potential table as nested lists of shape {list(b.cards)}"
    if not b.shape:
        return f"give one number (the {b.family} weight)"
    return f"give a list of {b.shape[0]} numbers (the {b.family} weights)"


def fit_markov(model: ModelSpec | Graph, data: Any, **options: Any) -> FittedMarkovNet:
    """Fit an undirected model: :func:`pgm.learn.loglinear.fit_loglinear`, wrapped.

    Parameters
    ----------
    model : a ModelSpec (``pgm.load``) or a ground Graph.
    data : DataFrame, path, or EncodedData.
    **options : learner, max_iter, tol, l2, step_size, seed, n_chains, n_gibbs, init
        (see :func:`~pgm.learn.loglinear.fit_loglinear`).
    """
    graph = model if isinstance(model, Graph) else build(model)
    return FittedMarkovNet.from_fit(fit_loglinear(graph, data, **options))


__all__ = ["FittedMarkovNet", "fit_markov"]
