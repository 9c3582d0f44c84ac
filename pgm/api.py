"""The public entry points: :func:`load`, :func:`fit` and :func:`score`."""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pgm import distributed, seqstream, stream
from pgm.encode import EncodedData, check_weights_name, encode
from pgm.errors import DataWarning, ModelError, PGMError, caller_stacklevel
from pgm.fitted import FittedModel
from pgm.graph import build
from pgm.io.table import read_options
from pgm.learn import choose
from pgm.features import compile_layout
from pgm.graph import Graph
from pgm.learn.chain import SequenceSource, sequence_rows
from pgm.learn.structured import choose_sequence_learner, structured_rows
from pgm.learn.driver import fit_directed, in_memory
from pgm.learn.loglinear import fit_loglinear
from pgm.learn.start import check_start
from pgm.markov import FittedMarkovNet
from pgm.schema import ModelSpec, load_spec
from pgm.scoring import check_kind, structure_score
from pgm.sequence import encode_sequences


def load(path: str | Path) -> ModelSpec | FittedModel:
    """Read a graph file: its validated declaration, or a fitted model if it carries ``params:``.

    Raises
    ------
    pgm.ModelError
        naming the file, the line, the field path, what is wrong and how to fix it.
    """
    spec = load_spec(path)
    if spec.params is None:
        return spec
    if not spec.directed:
        return FittedMarkovNet.from_spec(spec, str(path))
    return FittedModel.from_spec(spec, str(path))


def _spec_of(model: Any) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, (FittedModel, FittedMarkovNet)):
        return model.spec
    if isinstance(model, (str, Path)):
        loaded = load(model)
        return loaded if isinstance(loaded, ModelSpec) else loaded.spec
    raise PGMError(f"model must be a declaration from pgm.load or a path to a graph file, got {type(model).__name__}")


def _check_options(*, max_iter: Any, tol: Any, n_init: Any, seed: Any, init: Any, prior: Any, reg_covar: Any,
                   penalty: Any) -> None:
    """Refuse option values that would run silently wrong (NaN tolerances, negative pseudo-counts...)."""
    def whole(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

    def real(value: Any) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
            and math.isfinite(value)

    if max_iter is not None and not (whole(max_iter) and max_iter >= 1):
        raise PGMError(f"max_iter must be a whole number of iterations >= 1, got {max_iter!r}")
    if not (whole(n_init) and n_init >= 1):
        raise PGMError(f"n_init must be a whole number of EM runs >= 1, got {n_init!r}")
    if seed is not None and not (whole(seed) and seed >= 0):
        raise PGMError(f"seed must be None or a whole number >= 0, got {seed!r}")
    if tol is not None and not ((real(tol) or tol == math.inf) and tol >= 0):  # inf: stop after one round
        raise PGMError(f"tol must be a number >= 0 (not NaN), got {tol!r}")
    for name, value in (("reg_covar", reg_covar), ("penalty", penalty)):
        if value is not None and not (real(value) and value >= 0):
            raise PGMError(f"{name} must be a finite number >= 0, got {value!r}")
    if prior is not None:
        if not isinstance(prior, dict):
            raise PGMError(f"prior must be a mapping such as {{'dirichlet': 1}}, got {prior!r}")
        if sorted(prior) in (["dirichlet"], ["bdeu"]) and isinstance(next(iter(prior.values())), (list, tuple,
                                                                                             np.ndarray)):
            raise PGMError(f"prior={prior!r}: the prior= option is one number for every table, "
                           "{'dirichlet': a} or {'bdeu': ess}; pseudo-counts per state or per cell depend on each "
                           "node's states and parents, so declare them on the node in the graph file "
                           "(prior: {dirichlet: [a_1, ..., a_k]}, see docs/format.md#per-state-priors)")
        if sorted(prior) not in (["dirichlet"], ["bdeu"]) or not real(next(iter(prior.values()))):
            raise PGMError(f"prior must be {{'dirichlet': a}} (a >= 0) or {{'bdeu': ess}} (ess > 0), got {prior!r}")
        kind, value = next(iter(prior.items()))
        if value < 0 or (kind == "bdeu" and value == 0):
            raise PGMError(f"prior {kind} must be {'> 0' if kind == 'bdeu' else '>= 0'}, got {value!r}")
    if isinstance(init, str) and init not in ("auto", "random", "kmeans++"):
        raise PGMError(f"init={init!r} is unknown; use 'auto', 'random', 'kmeans++' or a fitted model")
    if not isinstance(init, (str, dict, FittedModel, FittedMarkovNet)):
        raise PGMError(f"init must be 'auto', 'random', 'kmeans++' or a fitted model, got {type(init).__name__}")


def _check_init(graph: Graph, init: Any) -> Any:
    """``init`` as the learner takes it: a string, CPDs by key (directed) or parameter arrays (undirected).

    A fitted model of the other kind or of another graph is a PGMError that says what would fit."""
    if isinstance(init, str):
        return init
    kind = "directed" if graph.directed else "undirected"
    if graph.directed and isinstance(init, FittedMarkovNet):
        raise PGMError("init= is a fitted undirected model (graph: undirected) but this model is directed; "
                       "pass a directed model fitted on this same graph, or init='auto' / 'random'")
    if not graph.directed and not isinstance(init, FittedMarkovNet):
        what = "a fitted directed model" if isinstance(init, FittedModel) else f"a {type(init).__name__}"
        raise PGMError(f"init= is {what} but this model is undirected; pass an undirected model fitted on this "
                       "same graph (a FittedMarkovNet), or leave init= out")
    if graph.directed:
        return check_start(graph, init.cpds if isinstance(init, FittedModel) else init)
    want = {k: b.shape for k, b in compile_layout(graph).blocks.items()}
    got = {k: np.shape(v) for k, v in init.params.items()}
    if want != got:
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        raise PGMError(f"init= was fitted on another {kind} graph: its parameters {diff[:5]} do not match this "
                       "model's (name or shape); pass a model fitted on this same graph, or leave init= out")
    return init


def fit(model: Any, data: Any, *, learner: str | None = None, max_iter: int | None = None, tol: float | None = None,
        n_init: int = 1, seed: int | None = 0, init: Any = "auto", prior: dict | None = None,
        reg_covar: float | None = None, penalty: float | None = None,
        callback: Callable[[int, float], None] | None = None, weights: str | None = None, na_values: Any = None,
        sep: str | None = None, **options: Any) -> Any:
    """Learn the parameters of ``model`` from ``data``.

    Parameters
    ----------
    model : a declaration (``pgm.load``), a fitted model (its declaration is refitted), or a path
    data : a pandas DataFrame, or a path to a .csv or .parquet file; columns named by nodes
    learner : None picks from the graph and data: "mle" (every node observed), "em" (latent
        nodes or NaN cells), "lbfgs" (undirected); also "hard-em", "variational", "mcem",
        "stochastic-em", and for undirected models
        "gradient", "coordinate", "pcd", "pseudo"
    max_iter, tol : iteration limit (EM: 200 updates) and stopping rule of iterative learners (EM:
        relative change of the log-likelihood below 1e-8; undirected: gradient below 1e-6).  EM's
        ``history`` is the log-likelihood of the start and after each update (max_iter + 1 values at most)
    n_init, seed, init : EM restarts (the best is kept), random seed, and initialisation: "auto"
        (k-means++ for a gaussian mixture, else "random"), "random" (random parameters for the
        families with a latent member, the smoothed available-case fit for the others), "kmeans++",
        or a model fitted on the same graph to start from (a PGMError says so otherwise)
    prior : default Dirichlet prior for table CPDs, e.g. ``{"dirichlet": 1}`` or ``{"bdeu": 10}``
        (a node's own ``prior:`` wins)
    reg_covar : added to every covariance diagonal; default 0 for complete data, 1e-6 for EM
    penalty : L2 penalty of logistic CPDs (default: each node's ``penalty:``, 0), or of the
        log-linear weights of an undirected model (``l2 / 2 * |theta|^2`` on the mean log-likelihood)
    **options : EM takes ``accelerate`` (True/False; None, the default, is ``pgm.learn.em.ACCELERATE``:
        SQUAREM extrapolation of the updates with a monotone safeguard, docs/learners.md);
        undirected learners take ``step_size``, ``n_chains``, ``n_gibbs``; the sampling
        E-steps ``learner="mcem"`` / ``"stochastic-em"`` take ``samples``, ``burn_in``, ``thin``,
        ``average_from``; they run all ``max_iter`` updates (default 50 for
        mcem, 200 for stochastic-em) and ignore ``tol`` (docs/learners.md)
    callback : called as ``callback(iteration, log_likelihood)`` by iterative learners
    weights : the name of a data column of row weights (finite numbers >= 0; not a node's column):
        a row of weight w counts as w copies of it, so integer weights fit exactly as repeated
        rows, with every learner and every data source; rows of weight 0 are dropped
    na_values, sep : how data cells are read (docs/format.md, "Missing data"): a cell is missing
        when it is empty or its text is in ``na_values`` (e.g. ``["?"]``); a cell whose text is a
        declared state label is that state (``None``, ``NA``, ``True``...).  ``sep``: the CSV
        separator (default ``,``; tab for .tsv)

    Returns
    -------
    FittedModel (directed) or FittedMarkovNet (undirected)
    """
    _check_options(max_iter=max_iter, tol=tol, n_init=n_init, seed=seed, init=init, prior=prior,
                   reg_covar=reg_covar, penalty=penalty)
    reading = read_options(na_values, sep)
    spec = _spec_of(model)
    graph = build(spec)
    if weights is not None:
        check_weights_name(graph, weights)
        if isinstance(data, EncodedData):
            raise PGMError("weights= names a column of the data; encoded data carry their weights already "
                           "(pgm.encode(graph, data, weights=...))")
    init = _check_init(graph, init)
    if graph.sequence:
        return _fit_sequence(spec, graph, data, learner=learner, max_iter=max_iter, tol=tol, n_init=n_init, seed=seed,
                             init=init, prior=prior, reg_covar=reg_covar, penalty=penalty, callback=callback,
                             weights=weights, reading=reading, options=options)
    # Data larger than memory (docs/scaling.md): a dask DataFrame is fitted on its cluster; a file
    # given chunk_rows=, or larger than pgm.stream.STREAM_BYTES, is read in chunks.  Both sum the
    # statistics of their parts.
    chunk_rows = options.pop("chunk_rows", None)
    on_dask = type(data).__module__.startswith("dask")
    scaled = distributed if on_dask else stream if stream.wants_stream(data, chunk_rows) else None
    if graph.directed:
        if scaled is not None:
            rows = scaled.rows(graph, data, chunk_rows=chunk_rows, weights=weights, options=reading)
        else:
            rows = in_memory(graph, data if isinstance(data, EncodedData) else
                             encode(graph, data, weights=weights, options=reading))
        fitted = fit_directed(graph, rows, learner=learner, max_iter=max_iter, tol=tol, n_init=n_init, seed=seed,
                              init=init, prior=prior, reg_covar=reg_covar, penalty=penalty, callback=callback,
                              **options)
        return FittedModel(spec, graph, fitted.cpds, fitted.history, fitted.info)
    if scaled is not None:  # the undirected learners take weighted distinct rows
        data = scaled.distinct_rows(graph, data, chunk_rows=chunk_rows, weights=weights, options=reading)
    enc = data if isinstance(data, EncodedData) else encode(graph, data, weights=weights, options=reading)
    chosen = choose(graph, enc, learner)
    undirected = {"learner": chosen, "max_iter": max_iter, "seed": seed, "l2": penalty or 0.0,
                  "callback": callback, **options}
    if tol is not None:
        undirected["tol"] = tol
    if isinstance(init, FittedMarkovNet):
        undirected["init"] = init.params
    try:
        result = fit_loglinear(graph, enc, **undirected)
    except TypeError as exc:  # an option this learner does not take
        raise PGMError(f"unknown option for learner {chosen!r}: {exc}") from None
    return FittedMarkovNet.from_fit(result)


def _warn_nothing_observed(seq: Any) -> None:
    """A DataWarning when no node cell of the sequence data is observed (every one empty)."""
    enc = seq.enc
    if any((c >= 0).any() for c in enc.codes.values()) or any(np.isfinite(v).any() for v in enc.values.values()):
        return
    warnings.warn(f"no cell of the nodes is observed in any of the {enc.n_rows} rows (only the id and order "
                  "columns hold values): the data carry no information, and the fitted parameters are EM's "
                  "starting point; check the node columns (or na_values)", DataWarning, stacklevel=caller_stacklevel())


def _fit_sequence(spec: ModelSpec, graph: Any, data: Any, *, learner: str | None, max_iter: int | None,
                  tol: float | None, n_init: int, seed: int | None, init: Any, prior: dict | None,
                  reg_covar: float | None, penalty: float | None, callback: Any, weights: str | None,
                  reading: Any, options: dict[str, Any]) -> FittedModel:
    """A sequence model: counting when every cell is observed, else EM over forward-backward, or
    structured mean-field (learner="variational", chosen when forward-backward is too wide); from a
    DataFrame, a file (read whole, or in chunks regrouped into buckets of whole sequences:
    :mod:`pgm.seqstream`) or a dask DataFrame (a sequence in one partition: :mod:`pgm.distributed`)."""
    chunk_rows = options.pop("chunk_rows", None)
    accel = {"accelerate": options.pop("accelerate")} if "accelerate" in options else {}
    if options:
        raise PGMError(f"unknown options for a sequence model: {sorted(options)}")
    if learner not in (None, "mle", "em", "hard-em", "variational"):
        raise PGMError(f"learner={learner!r} does not fit a sequence model; use 'em' or 'hard-em' (Viterbi training), "
                       "'mle' when every cell is observed, or 'variational' when exact inference is too wide")
    on_dask = type(data).__module__.startswith("dask")
    streamed = not on_dask and stream.wants_stream(data, chunk_rows)
    if on_dask or streamed:
        if learner == "variational":
            raise PGMError("learner='variational' fits a sequence model in memory only, not streamed (chunk_rows=) "
                           "or on Dask; use learner='em' (exact forward-backward)")
    with contextlib.ExitStack() as stack:
        if on_dask:
            source, info = distributed.sequence_source(graph, data, chunk_rows=chunk_rows, options=reading,
                                                       weights=weights)
        elif streamed:
            source, info = stack.enter_context(seqstream.spilled(graph, data, chunk_rows=chunk_rows, options=reading,
                                                                 weights=weights))
        else:
            seq = encode_sequences(graph, data, options=reading, weights=weights)
            _warn_nothing_observed(seq)
            learner, extra = choose_sequence_learner(graph, seq, learner)
            if learner == "variational":
                fitted = fit_directed(graph, structured_rows(graph, seq, extra), learner=learner, max_iter=max_iter,
                                      tol=tol, n_init=n_init, seed=seed, init=init, prior=prior, reg_covar=reg_covar,
                                      penalty=penalty, callback=callback, **accel)
                return FittedModel(spec, graph, fitted.cpds, fitted.history, fitted.info)
            source, info = SequenceSource(graph, seq), {}
        chosen = learner or ("em" if source.has_hidden else "mle")
        if chosen == "mle" and source.has_hidden:
            raise PGMError(f"nodes {list(source.hidden)[:5]} are latent or have missing cells; learner='mle' needs "
                           "every cell observed: use learner='em'")
        fitted = fit_directed(graph, sequence_rows(graph, source, info), learner=chosen, max_iter=max_iter, tol=tol,
                              n_init=n_init, seed=seed, init=init, prior=prior, reg_covar=reg_covar, penalty=penalty,
                              callback=callback, **accel)
    return FittedModel(spec, graph, fitted.cpds, fitted.history, fitted.info)


def score(model: Any, data: Any, kind: str, *, ess: float = 1.0, weights: str | None = None,
          na_values: Any = None, sep: str | None = None) -> float:
    """Score a structure (or a fitted model) on ``data``, to compare declarations.

    Parameters
    ----------
    model : a declaration, a fitted model, or a path to a graph file (a fitted file is a fitted model)
    data : a pandas DataFrame or a path to a .csv or .parquet file
    kind : ``"bdeu"`` or ``"k2"``: the log marginal likelihood ``log p(data | structure)`` with the
        table parameters integrated out under Dirichlet priors: BDeu spreads the equivalent sample
        size ``ess`` over each table (``ess / (n_configs * n_states)`` per cell), K2 puts 1 in every
        cell.  Natural log, higher is better; equal to pgmpy's BDeu and K2 scores (pyAgrum reports
        the same in log2).  Needs complete data and discrete nodes with table CPDs; tied nodes and
        plate copies pool their counts, as the MLE does.
        ``"bic"`` or ``"aic"``: the fitted model's ``bic(data)`` / ``aic(data)`` (lower is better); a
        declaration is first fitted with ``pgm.fit(model, data)``.
    ess : the BDeu equivalent sample size (default 1, as bnlearn and pyAgrum; pgmpy's default is 10)
    weights : a data column of row weights (as in :func:`fit`): every score is that of the data with
        each row repeated ``w`` times (weighted counts; BIC's ``n`` is the sum of the weights)
    na_values, sep : how data cells are read, as in :func:`fit`

    Examples
    --------
    >>> pgm.score("models/asia.yaml", rows, "bdeu", ess=10)   # doctest: +SKIP
    """
    check_kind(kind, ess)
    if isinstance(model, (str, Path)):
        model = load(model)  # a fitted file scores with its own parameters
    if isinstance(model, (FittedModel, FittedMarkovNet)):
        fitted = model
    else:
        spec = _spec_of(model)
        if kind in ("bic", "aic"):
            fitted = fit(spec, data, weights=weights, na_values=na_values, sep=sep)
        else:
            return structure_score(build(spec), data, kind, ess=ess, weights=weights, na_values=na_values, sep=sep)
    if isinstance(fitted, FittedModel):
        return fitted.score(data, kind, ess=ess, weights=weights, na_values=na_values, sep=sep)
    if kind in ("bic", "aic"):
        return float(getattr(fitted, kind)(data, weights=weights, na_values=na_values, sep=sep))
    return structure_score(fitted.graph, data, kind, ess=ess, weights=weights, na_values=na_values, sep=sep)  # refuses an undirected graph
