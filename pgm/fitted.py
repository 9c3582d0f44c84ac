"""FittedModel: a directed declaration with its learned CPDs.

It answers log-likelihoods (hidden nodes and missing cells summed out exactly),
samples, posteriors of latent nodes, labelled CPD tables, information criteria,
and writes itself back as a readable graph file with a ``params:`` block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pgm.cpd import config_index
from pgm.cpd.base import only_numbers  # noqa: F401  (pgm.markov reads params blocks with it)
from pgm.cpd.family import CPD, Family, families, kind_of
from pgm.encode import EncodedData, as_frame, encode
from pgm.errors import DataError, ModelError, PGMError
from pgm.graph import PREV, Graph, build, prev_name
from pgm.infer.elimination import variable_elimination
from pgm.evidence import (Answers, parse_evidence, query_nodes, query_series, refuse_impossible, rows_of,
                          state_values, typed_column, warn_impossible)
from pgm.infer.chain import ChainPlan, forward_backward, make_chain_plan, marginal, viterbi
from pgm.infer.chain_gaussian import gaussian_posterior
from pgm.infer.forecast import Belief, ForecastPlan, check_forecast, discrete_predictive, gaussian_predictive, \
    make_forecast_plan, propagate, start_belief, state_probs
from pgm.infer.kalman import gaussian_state, kalman, make_kalman_plan, node_moments
from pgm.infer.enumerate import e_step, hidden_parts, make_plan, observed_log_prob
from pgm.infer.gaussian import gaussian_group, gaussian_query
from pgm.infer.factor import LogFactor, logsumexp
from pgm.io.table import read_options
from pgm.learn.chain import refuse_impossible_sequences
from pgm.learn.structured import sequence_elbo
from pgm.learn.variational import elbo as mean_field_elbo
from pgm.io.yaml_text import fitted_data, save_fitted
from pgm.schema import ModelSpec
from pgm.scoring import check_kind, structure_score
from pgm.sequence import SequenceData, encode_sequences, last_rows, long_frame, next_orders


def _check_finite_forecast(node: str, step: int, mean: np.ndarray, cov: np.ndarray, ids: np.ndarray) -> None:
    """A PGMError when a gaussian forecast overflows float64 (a transition that grows, over many
    steps): naming the node, the first such step and the sequences, never a silent NaN or inf."""
    bad = ~(np.isfinite(mean).all(axis=1) & np.isfinite(cov).all(axis=(1, 2)))
    if not bad.any():
        return
    shown = [v.item() if isinstance(v, np.generic) else v for v in ids[np.flatnonzero(bad)[:5]]]
    raise PGMError(f"the forecast of {node!r} is not finite from step {step + 1} on (sequences {shown}): its "
                   "predictive mean or variance overflows, the fitted dynamics growing without bound over "
                   "so many steps; ask for fewer steps")


@dataclass(frozen=True)
class FittedModel(Answers):
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
                + (f", {self.info.get('n_iter', len(self.history))} iterations" if self.history else "") + ")")

    def _families(self) -> dict[str, Family]:
        return families(self.graph)

    def encode(self, data: Any, weights: str | None = None, *, na_values: Any = None,
               sep: str | None = None) -> EncodedData | SequenceData:
        """``data`` (DataFrame or path) encoded against the model's graph, with the row weights of
        the column ``weights`` if given; EncodedData passes through.  Cells are read by the rule of
        docs/format.md "Missing data" (``na_values``, ``sep`` as in :func:`pgm.fit`).  A sequence
        model's data become :class:`pgm.sequence.SequenceData` (sorted into sequences, time-major)."""
        if self.graph.sequence:  # weights: one per sequence, repeated in each of its rows
            return encode_sequences(self.graph, data, options=read_options(na_values, sep), weights=weights)
        if isinstance(data, EncodedData):
            if weights is not None:
                raise PGMError("weights= names a column of the data; encoded data carry their weights already")
            return data
        return encode(self.graph, data, weights=weights, options=read_options(na_values, sep))

    # --------------------------------------------------------------- likelihoods
    def row_log_likelihood(self, data: Any, *, na_values: Any = None, sep: str | None = None) -> np.ndarray:
        """log p(row) for every row, latent nodes and missing cells summed out: shape (n_rows,).

        ``-inf`` (with a ``pgm.DataWarning`` naming the rows) for a row of probability 0.
        For a sequence model, a row's term is log p(row | the earlier rows of its sequence), so the
        terms of a sequence sum to its log-likelihood; the rows keep the order of ``data``."""
        if self.graph.sequence:
            seq = self.encode(data, na_values=na_values, sep=sep)
            rows = seq.to_caller(self._forward(seq).row_log_likelihood)
            impossible = np.flatnonzero(np.isneginf(rows))
            if impossible.size:
                warn_impossible(seq.index, impossible)
            return rows
        enc = self.encode(data, na_values=na_values, sep=sep)
        fams = self._families()
        plan = make_plan(self.graph, fams, enc)
        rows = e_step(self.graph, fams, self.cpds, enc, plan, stats=False, per_row=True,
                      zero_ok=True).row_log_likelihood
        impossible = np.flatnonzero(np.isneginf(rows))
        if impossible.size:  # log 0 is the right answer, but it must not pass unnoticed
            warn_impossible(rows_of(enc), impossible)
        return rows

    def log_likelihood(self, data: Any, weights: str | None = None, *, na_values: Any = None,
                       sep: str | None = None) -> float:
        """Total log-likelihood of the rows: ``sum_i w_i log p(row_i)`` with the row weights of
        the column ``weights`` (each 1 without; as if each row were repeated ``w_i`` times).

        ``-inf`` (with a ``pgm.DataWarning`` naming the rows) when a row has probability 0.
        For a sequence model: the sum over sequences of log p(sequence) (times the sequence's weight,
        one value per sequence in the column ``weights``), hidden states and missing cells summed out
        by the forward algorithm."""
        if self.graph.sequence:
            seq = self.encode(data, weights, na_values=na_values, sep=sep)
            result = self._forward(seq)
            total = result.log_likelihood if seq.row_weights is None else float(seq.row_weights @
                                                                                 result.row_log_likelihood)
            if total == -math.inf:
                warn_impossible(seq.index, np.flatnonzero(np.isneginf(seq.to_caller(result.row_log_likelihood))))
            return total
        enc = self.encode(data, weights, na_values=na_values, sep=sep)
        fams = self._families()
        plan = make_plan(self.graph, fams, enc)
        total = e_step(self.graph, fams, self.cpds, enc, plan, stats=False, zero_ok=True).log_likelihood
        if total == -math.inf:
            rows = e_step(self.graph, fams, self.cpds, enc, plan, stats=False, per_row=True,
                          zero_ok=True).row_log_likelihood
            warn_impossible(rows_of(enc), np.flatnonzero(np.isneginf(rows)))
        return total

    def elbo(self, data: Any, weights: str | None = None, *, na_values: Any = None, sep: str | None = None) -> float:
        """The mean-field evidence lower bound of the rows under these parameters (learner='variational'):
        ``sum_i w_i ELBO_i <= log_likelihood``, with each row's fully factorised q over its hidden
        discrete cells optimised by coordinate ascent (logistic nodes with many hidden parents under
        the Jaakkola-Jordan bound).  It needs no exact inference, so it also works where
        :meth:`log_likelihood` is refused as too wide.  For a sequence model: the structured
        mean-field bound (each chain of hidden nodes exact, see :mod:`pgm.learn.structured`)."""
        if self.graph.sequence:  # structured mean-field: each piece (chain) exact, q factorised across them
            return sequence_elbo(self.graph, self.cpds, self.encode(data, weights, na_values=na_values, sep=sep))
        enc = self.encode(data, weights, na_values=na_values, sep=sep)
        return float(mean_field_elbo(self.graph, self.cpds, enc))

    def score(self, data: Any, kind: str, *, ess: float = 1.0, weights: str | None = None,
              na_values: Any = None, sep: str | None = None) -> float:
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
            return self.bic(data, weights, na_values=na_values, sep=sep)
        if kind == "aic":
            return self.aic(data, weights, na_values=na_values, sep=sep)
        return structure_score(self.graph, data, kind, ess=ess, weights=weights, na_values=na_values, sep=sep)

    # --------------------------------------------------------------- sequences
    def _chain(self, seq: SequenceData) -> ChainPlan:
        return make_chain_plan(self.graph, seq)

    def _forward(self, seq: SequenceData) -> Any:
        """The forward pass (log-likelihoods only): the Kalman filter for a gaussian hidden state,
        else the forward algorithm."""
        if gaussian_state(self.graph):
            return kalman(make_kalman_plan(self.graph, seq), self.cpds, smooth=False)
        return forward_backward(self._chain(seq), self.cpds, smooth=False)

    def _encode_for(self, data: Any, nodes: list[str], na_values: Any = None, sep: str | None = None) -> Any:
        if self.graph.sequence:
            return encode_sequences(self.graph, data, absent=tuple(nodes), options=read_options(na_values, sep))
        return super()._encode_for(data, nodes, na_values=na_values, sep=sep)

    def _infer_chain(self, seq: SequenceData, nodes: tuple[str, ...],
                     mode: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-step smoothed marginals (``"sum"``) or the Viterbi path (``"max"``) of ``nodes``, in the
        rows' own order; the row log-probabilities are the forward algorithm's terms."""
        out: dict[str, np.ndarray] = {}
        if gaussian_state(self.graph):  # every discrete node is observed (else make_kalman_plan refuses)
            res = kalman(make_kalman_plan(self.graph, seq), self.cpds, smooth=False)
            for v in nodes:
                codes = seq.enc.codes[v].astype(np.int64)
                out[v] = seq.to_caller(codes if mode == "max" else np.eye(self.graph[v].n_states)[codes])
            return seq.to_caller(res.row_log_likelihood), out
        plan = self._chain(seq)
        if mode == "sum":
            sm = forward_backward(plan, self.cpds)
            for v in nodes:
                out[v] = seq.to_caller(marginal(plan, sm.gamma, v))
            return seq.to_caller(sm.row_log_likelihood), out
        row_lp = forward_backward(plan, self.cpds, smooth=False).row_log_likelihood
        path, _ = viterbi(plan, self.cpds)
        for v in nodes:
            codes = plan.joint[plan.hidden.index(v)][path] if v in plan.hidden else seq.enc.codes[v]
            out[v] = seq.to_caller(np.asarray(codes, dtype=np.int64))
        return seq.to_caller(row_lp), out

    def most_probable(self, data: Any, *, na_values: Any = None, sep: str | None = None) -> pd.DataFrame:
        """The most probable joint completion of every row's hidden discrete cells (latent nodes
        and missing cells), given its observed cells: the MPE, by enumeration or max-product.
        For a sequence model, the most probable joint hidden path of each sequence (Viterbi), with
        the id and order columns; the rows keep the order of ``data``.

        Returns a DataFrame with a column per discrete node (latent ones included), typed as
        ``sample`` gives them; observed cells are kept, gaussian columns are copied as given.
        """
        if not self.graph.sequence:
            return super().most_probable(data, na_values=na_values, sep=sep)
        seq = self._encode_completing(data, na_values=na_values, sep=sep, stacklevel=3)
        frame = seq.frame
        nodes = tuple(v for v in self.graph.slice if self.graph[v].discrete)
        row_lp, got = self._infer_chain(seq, nodes, "max")
        refuse_impossible(seq.index, row_lp, "most_probable()")
        spec_seq = self.spec.sequence
        cols: dict[str, Any] = {spec_seq.id: frame[spec_seq.id].to_numpy(),
                                spec_seq.order: frame[spec_seq.order].to_numpy()}
        filled = self._kalman_means(seq)  # linear-Gaussian: the MAP path is the smoother's mean
        for v in self.graph.slice:
            var = self.graph[v]
            if var.discrete:
                cols[v] = typed_column(self.graph, v, got[v])
            elif v in filled:
                for j, c in enumerate(var.columns):
                    cols[c] = filled[v][:, j]
            else:
                for c in var.columns:
                    cols[c] = frame[c].to_numpy() if c in frame.columns else np.full(len(frame), np.nan)
        return pd.DataFrame(cols, index=frame.index)

    def forecast(self, data: Any, steps: int = 1, *, nodes: str | list[str] | None = None, proba: bool = False,
                 na_values: Any = None, sep: str | None = None) -> pd.DataFrame:
        r"""Predict the ``steps`` steps after the last row of every sequence in ``data``.

        Each sequence (long data, rows in any order, missing cells allowed) is filtered to its last
        step ``T``: the belief about its carried state (every ``prev:`` parent), ``b_T(s) = p(S_T = s
        | x_1..T)`` over the discrete part ``S`` and the moments of the gaussian part given each ``s``
        (forward-backward, or the Kalman filter for a gaussian hidden state; an observed value is
        itself).  Step ``T + j`` then has, for the discrete variables ``E`` a node needs,
        ``p(E_{T+j}) = sum_{s'} b_{T+j-1}(s') prod_{v in E} p(v | pa(v), prev(v) = s')``, and its
        gaussian variables, linear in the previous step's and in each other given ``(s', e)``, have
        exact means and covariances per pair, mixed over the pairs.  Observed nodes are unknown in the
        future, so they are summed over like latent ones (exact, no sampling; :mod:`pgm.infer.forecast`).

        Parameters
        ----------
        data : long-form DataFrame or path, with the id and order columns (as for ``fit``)
        steps : how many steps ahead (a whole number >= 1)
        nodes : the nodes to forecast (default: every observed node; latent nodes may be asked)
        proba : also each discrete node's state probabilities ``p(v=label)`` and each gaussian
            node's predictive variance ``variance(v)`` (``cov(a,b)`` per pair of its columns)

        Returns
        -------
        A DataFrame with ``steps`` rows per sequence (sequences sorted by id): the id column, the
        order column continuing the sequence (its own regular step if it has one; integer orders
        otherwise go on by 1; timestamps or fractional orders without a regular step are a
        DataError), then per node its forecast as ``predict`` gives it: the most probable state
        (discrete, typed as ``sample`` types it) or the predictive mean (gaussian).

        Raises
        ------
        pgm.ModelError : a discrete node that reads a gaussian node (its predictive is no finite
            mixture).
        pgm.DataError : the errors of reading sequences, sequences of probability zero, and a
            gaussian value read at the next step that is missing in a sequence's last row.
        """
        if not self.graph.sequence:
            raise PGMError("forecast() continues sequences: it is for sequence models (a model with `sequence:`); "
                           "use predict() for the rows of this model")
        if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise PGMError(f"steps must be a whole number of steps ahead >= 1, got {steps!r}")
        asked = self._asked(nodes, "forecast") if nodes is not None else \
            [v for v in self.graph.slice if not self.graph[v].latent]
        seq = encode_sequences(self.graph, data, options=read_options(na_values, sep))
        plan = make_forecast_plan(self.graph, self.cpds)
        check_forecast(plan, asked)  # a discrete node reading a gaussian one is refused before any work
        spec_seq = self.spec.sequence
        orders = next_orders(seq, spec_seq.order, int(steps))
        belief = self._forecast_start(plan, seq)
        n_seq, k = seq.n_sequences, int(steps)
        probs: dict[str, np.ndarray] = {v: np.empty((n_seq, k, self.graph[v].n_states)) for v in asked
                                        if self.graph[v].discrete}
        means = {v: np.empty((n_seq, k, self.graph[v].dim)) for v in asked if not self.graph[v].discrete}
        covs = {v: np.empty((n_seq, k, self.graph[v].dim, self.graph[v].dim)) for v in means}
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, by name
            for j, belief in enumerate(propagate(plan, belief, k)):
                for v in probs:
                    probs[v][:, j] = discrete_predictive(plan, belief, v)
                for v in means:
                    means[v][:, j], covs[v][:, j] = gaussian_predictive(plan, belief, v)
                    _check_finite_forecast(v, j, means[v][:, j], covs[v][:, j], seq.ids)
        by_id = np.asarray(pd.Index(seq.ids).argsort())  # ranks in id order
        rows = (by_id[:, None] * k + np.arange(k)[None, :]).reshape(-1)
        cols: dict[str, Any] = {spec_seq.id: np.repeat(seq.ids[by_id], k),
                                spec_seq.order: orders[rows] if isinstance(orders, np.ndarray)
                                else orders.take(rows)}
        for v in asked:
            var = self.graph[v]
            if var.discrete:
                p = probs[v].reshape(n_seq * k, -1)[rows]
                cols[v] = typed_column(self.graph, v, p.argmax(axis=1))
                if proba:
                    cols.update({f"p({v}={label})": p[:, i] for i, label in enumerate(var.labels)})
                continue
            mean = means[v].reshape(n_seq * k, -1)[rows]
            cov = covs[v].reshape(n_seq * k, var.dim, var.dim)[rows]
            cols.update({c: mean[:, i] for i, c in enumerate(var.columns)})
            if proba and var.dim == 1:
                cols[f"variance({v})"] = cov[:, 0, 0]
            elif proba:
                cols.update({f"cov({a},{b})": cov[:, i, j] for i, a in enumerate(var.columns)
                             for j, b in enumerate(var.columns) if j >= i})
        return pd.DataFrame(cols)

    def _kalman_means(self, seq: SequenceData) -> dict[str, np.ndarray]:
        """Smoothed means of every gaussian slice node in the caller's row order (observed cells kept,
        missing ones and latent nodes filled): empty without a gaussian hidden state."""
        if not gaussian_state(self.graph):
            return {}
        plan = make_kalman_plan(self.graph, seq)
        res = kalman(plan, self.cpds)
        return {v: seq.to_caller(node_moments(plan, self.cpds, res, v)[0])
                for v in self.graph.slice if self.graph[v].gaussian}

    def _forecast_start(self, plan: ForecastPlan, seq: SequenceData) -> Belief:
        """The belief about the carried state at each sequence's last step: forward-backward's (or
        the Kalman filter's) posterior of the last row, an observed carried gaussian its value."""
        last = last_rows(seq)
        n = len(last)
        enc = seq.enc
        mean, cov = np.zeros((n, plan.dim)), np.zeros((n, plan.dim, plan.dim))
        observed = {v: enc.codes[v][last] for v in plan.state if v in enc.codes}
        if gaussian_state(self.graph):  # discrete nodes are all observed there (else the Kalman plan refuses)
            kp = make_kalman_plan(self.graph, seq)
            res = kalman(kp, self.cpds)
            refuse_impossible_sequences(seq, res.sequence_log_likelihood, "forecast()")
            probs = state_probs(plan, (), np.zeros((0, 1), dtype=np.int64), observed, np.ones((n, 1)))
            latent = [v for v in plan.carried if v in kp.state]
            if latent:
                mine = np.concatenate([np.arange(self.graph[v].dim) + plan.offsets[v] for v in latent])
                theirs = np.concatenate([np.arange(self.graph[v].dim) + kp.offsets[v] for v in latent])
                mean[:, mine] = res.mean[last][:, theirs]
                cov[:, mine[:, None], mine[None, :]] = res.cov[last][:, theirs[:, None], theirs[None, :]]
        else:
            chain = self._chain(seq)
            sm = forward_backward(chain, self.cpds)
            refuse_impossible_sequences(seq, sm.sequence_log_likelihood, "forecast()")
            probs = state_probs(plan, chain.hidden, chain.joint, observed, sm.gamma[last])
        for v in plan.carried:
            if self.graph[v].latent:
                continue
            values = enc.values[v][last] if v in enc.values else np.full((n, self.graph[v].dim), np.nan)
            gone = np.flatnonzero(np.isnan(values).any(axis=1))
            if gone.size:
                shown = [i.item() if isinstance(i, np.generic) else i for i in seq.ids[gone[:5]]]
                raise DataError(f"forecast(): the gaussian node {v!r} is read at the next step, and its cell in the "
                                f"last row of {gone.size} sequence{'s' if gone.size > 1 else ''} ({shown}) is "
                                "missing; the forecast starts from it: fill it, or drop the sequence's last rows")
            mean[:, plan.offsets[v]:plan.offsets[v] + self.graph[v].dim] = values
        return start_belief(plan, probs, mean, cov)

    # --------------------------------------------------------------- posteriors and predictions
    def _infer(self, enc: EncodedData, nodes: tuple[str, ...], mode: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Posteriors (mode "sum") or the most probable joint state (mode "max") of discrete
        ``nodes`` per row, by enumeration of hidden components (see :class:`pgm.evidence.Answers`)."""
        if isinstance(enc, SequenceData):
            return self._infer_chain(enc, nodes, mode)
        with np.errstate(invalid="ignore", divide="ignore"):  # rows of probability 0 are refused by the caller
            plan, row_lp, parts = hidden_parts(self.graph, self._families(), self.cpds, enc, nodes, mode)
            n = enc.n_rows
            out: dict[str, np.ndarray] = {}
            for v in nodes:
                seen = np.flatnonzero(~plan.hidden[:, plan.names.index(v)])
                if mode == "sum":
                    out[v] = np.zeros((n, self.graph[v].n_states))
                    if seen.size:
                        out[v][seen, enc.codes[v][seen]] = 1.0
                else:
                    out[v] = np.zeros(n, dtype=np.int64)
                    if seen.size:
                        out[v][seen] = enc.codes[v][seen]
            for part in parts:
                for j, v in enumerate(part.nodes):
                    if mode == "max":
                        out[v][part.rows] = part.codes[:, j]
                        continue
                    other = tuple(1 + i for i in range(len(part.nodes)) if i != j)
                    out[v][part.rows] = np.exp(logsumexp(part.table, axis=other) if other else part.table)
        return row_lp, out

    def _gaussian(self, node: str, enc: EncodedData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (n, d) and covariance (n, d, d) of a gaussian node given each row's other
        cells: exact Gaussian conditioning on everything observed (parents, children, the observed
        components of partly missing vectors), mixed over the posterior of the hidden discrete
        configurations (law of total variance); see :mod:`pgm.infer.gaussian`.  An observed cell is
        its own answer (covariance 0)."""
        if isinstance(enc, SequenceData) and gaussian_state(self.graph):  # a Kalman smoother's moments
            plan = make_kalman_plan(self.graph, enc)
            mean, cov = node_moments(plan, self.cpds, kalman(plan, self.cpds), node)
            return enc.to_caller(mean), enc.to_caller(cov)
        if isinstance(enc, SequenceData):  # a sequence model: mixed over forward-backward's posteriors
            chain = self._chain(enc)
            sm = forward_backward(chain, self.cpds)
            refuse_impossible(enc.index, enc.to_caller(sm.row_log_likelihood), f"posterior({node!r})")
            mean, cov = gaussian_posterior(chain, self.cpds, sm, node)
            return enc.to_caller(mean), enc.to_caller(cov)
        fams = self._families()
        var = self.graph[node]
        n, d = enc.n_rows, var.dim
        plan = make_plan(self.graph, fams, enc, keep=(node,))
        _, row_lp = observed_log_prob(self.graph, fams, self.cpds, enc, plan, per_row=True)
        mean = np.zeros((n, d))
        cov = np.zeros((n, d, d))
        if node in enc.values:
            seen = ~np.isnan(enc.values[node]).any(axis=1)
            mean[seen] = enc.values[node][seen]
        with np.errstate(invalid="ignore", divide="ignore"):
            for group in plan.groups:
                if not group.gauss:
                    continue
                res = gaussian_group(self.graph, fams, self.cpds, enc, group, stats=False,
                                     nodes=(node,) if node in group.variables else ())
                row_lp[group.rows] += res.lse
                if node in group.variables:
                    mean[group.rows], cov[group.rows] = res.moments[node]
        refuse_impossible(rows_of(enc), row_lp, f"posterior({node!r})")
        return mean, cov

    def _fill_gaussian(self, node: str, codes: dict[str, np.ndarray], values: dict[str, np.ndarray],
                       n: int, observed: np.ndarray | None = None) -> np.ndarray:
        """The mean (n, d) of a gaussian node given completed parents: its regression in each row's
        configuration of discrete parents, at its continuous parents' values; in a row where
        ``observed`` (n, d) holds some of the node's components, the others are conditioned on them
        (E[x_h | x_o] = mu_h + S_ho S_oo^-1 (x_o - mu_o)), once per missing pattern and configuration."""
        fam = self._families()[node]
        cpd = self.cpds[fam.var.param]
        configs = np.broadcast_to(np.asarray(config_index([codes[p] for p in fam.disc], fam.cards), dtype=np.int64),
                                  (n,))
        mean = cpd.intercept[configs]
        if fam.cont:
            x = np.hstack([values[p] for p in fam.cont])
            mean = mean + np.einsum("ndp,np->nd", cpd.coef[configs], x)
        if observed is None or fam.var.dim == 1:
            return mean
        miss = np.isnan(observed)
        rows = np.flatnonzero(miss.any(axis=1) & ~miss.all(axis=1))
        if not rows.size:
            return mean
        mean = np.array(mean, dtype=float)  # a broadcast view must not be written through
        keys = np.column_stack([miss[rows], configs[rows]])
        groups, which = np.unique(keys, axis=0, return_inverse=True)
        which = which.ravel()
        for g, key in enumerate(groups):
            r, h, c = rows[which == g], key[:-1].astype(bool), int(key[-1])
            sigma = cpd.cov[c]
            gain = np.linalg.solve(sigma[np.ix_(~h, ~h)], sigma[np.ix_(~h, h)]).T  # S_ho S_oo^-1
            mean[np.ix_(r, h)] += (observed[r][:, ~h] - mean[r][:, ~h]) @ gain.T
        return mean

    # --------------------------------------------------------------- queries
    def query(self, variables: list[str] | str, evidence: dict[str, Any] | None = None) -> pd.Series | pd.DataFrame:
        """Exact posterior p(variables | evidence): by variable elimination for discrete nodes, by
        Gaussian conditioning for gaussian ones.

        Parameters
        ----------
        variables : node names (plate copies as ``x[2]``), all discrete or all gaussian
        evidence : node -> observed state label (or code for counted states; values are read as a
            data cell would be, see :mod:`pgm.evidence`); a gaussian node is observed with a number
            (a list of ``dim`` numbers, NaN for a component left unobserved); for a discrete query,
            a gaussian node whose parents are all discrete may be observed, and so may any gaussian
            node when one discrete node is queried (answered as ``posterior`` answers a row)

        Returns
        -------
        discrete nodes: pandas Series ``p`` indexed by the joint states of ``variables`` (a MultiIndex
        for several).  Gaussian nodes: a DataFrame indexed by their data columns, with the
        conditional ``mean`` and the covariance matrix (columns ``cov[<column>]``); the gaussian
        ancestors of the query and evidence, given their discrete parents (which must be in the
        evidence), are jointly Gaussian.

        Raises
        ------
        pgm.ModelError : an unknown node, a node listed twice, or both queried and observed; a
            gaussian query whose answer is not one Gaussian (a discrete parent not given, a
            discrete node depending on a gaussian one), or mixing discrete and gaussian nodes.
        pgm.DataError : an unknown state, or evidence of probability 0.

        Examples
        --------
        >>> fitted.query(["either"], evidence={"xray": "yes"})   # doctest: +SKIP
        """
        if self.graph.sequence:
            raise PGMError("query() answers one row of a non-temporal model; for a sequence model use "
                           "posterior(node, data) (per step) or most_probable(data) (the Viterbi path)")
        variables = query_nodes(self.graph, variables, evidence, discrete=False)
        cont = [v for v in variables if self.graph[v].gaussian]
        if cont and len(cont) < len(variables):
            raise ModelError(f"query() answers discrete nodes (a table) or gaussian nodes (a mean and covariance), "
                             f"not discrete and gaussian nodes at once ({cont} are gaussian); query them separately")
        if cont:
            return self._query_gaussian(variables, evidence)
        codes, dens = parse_evidence(self.graph, evidence)
        relevant = set(variables) | set(codes) | set(dens)
        stack = list(relevant)
        while stack:  # only ancestors of the query and evidence matter (the rest sums to one)
            for p in self.graph[stack.pop()].parents:
                if p not in relevant:
                    relevant.add(p)
                    stack.append(p)
        fams = self._families()
        blocked = [name for name in self.graph.order if name in relevant
                   and (fams[name].cont or (not fams[name].var.discrete and name not in dens))]
        if blocked:  # hidden gaussians on the way: the row posterior's exact conditional linear Gaussian inference
            return self._query_by_rows(variables, codes, dens, evidence, blocked[0])
        factors = []
        for name in self.graph.order:
            if name not in relevant:
                continue
            fam = fams[name]
            factors.append(self._log_factor(fam, self.cpds[fam.var.param], dens.get(name)))
        with np.errstate(invalid="ignore", divide="ignore"):
            joint = variable_elimination(factors, variables, codes)
        return query_series(self.graph, variables, joint.table, evidence)

    def _query_by_rows(self, variables: list[str], codes: dict[str, int], dens: dict[str, np.ndarray],
                       evidence: dict[str, Any] | None, blocker: str) -> pd.Series:
        """One discrete node given evidence that reaches it through hidden gaussian nodes (``p(z | b)``
        with ``b`` a gaussian child of a hidden gaussian ``a``): the evidence as one data row, every
        other cell missing, answered by :meth:`posterior` (exact inference over the hidden part)."""
        if len(variables) > 1:
            raise ModelError(f"query() of several discrete nodes at once needs discrete nodes (or observed gaussian "
                             f"nodes with discrete parents) on the way; {blocker!r} is "
                             f"{'a gaussian with gaussian parents' if self._families()[blocker].cont else 'an unobserved gaussian'}"
                             f": query one discrete node at a time ({variables})")
        graph, cols = self.graph, {}
        for name in graph.order:
            var = graph[name]
            if var.latent:
                continue
            if var.discrete:
                cols[var.columns[0]] = pd.Series([state_values(graph, name)[codes[name]] if name in codes else None],
                                                 dtype=object)
            else:
                cols.update({c: [float(x)] for c, x in zip(var.columns, np.ravel(dens.get(name, np.full(var.dim, np.nan))))})
        post = self.posterior(variables[0], pd.DataFrame(cols))
        with np.errstate(divide="ignore"):
            return query_series(graph, variables, np.log(post.to_numpy(dtype=float)[0]), evidence)

    def _query_gaussian(self, variables: list[str], evidence: dict[str, Any] | None) -> pd.DataFrame:
        """Gaussian nodes given the evidence: one linear-Gaussian network once the discrete parents
        are given, so Gaussian conditioning (:func:`pgm.infer.gaussian.gaussian_query`)."""
        graph = self.graph
        codes, dens = parse_evidence(graph, evidence, partial=True)
        relevant = set(variables) | set(codes) | set(dens)
        stack = list(relevant)
        while stack:
            for p in graph[stack.pop()].parents:
                if p not in relevant:
                    relevant.add(p)
                    stack.append(p)
        fams = self._families()
        factors = []
        for name in graph.order:
            if name not in relevant:
                continue
            fam = fams[name]
            if fam.var.discrete:
                if fam.cont:
                    raise ModelError(f"the discrete node {name!r} has the gaussian parent {fam.cont[0]!r}, and "
                                     f"{'it is in the evidence' if name in codes else 'it is an ancestor of the query'}"
                                     ": given it, the gaussian nodes are not jointly gaussian; query without it")
                factors.append(self._log_factor(fam, self.cpds[fam.var.param], None))
            else:
                for p in fam.disc:
                    if p not in codes:
                        raise ModelError(f"{p!r} is not given: the gaussian node {name!r} depends on it, so the "
                                         "answer would be a mixture of gaussians, not one gaussian; give "
                                         f"{p} in the evidence (query([{p!r}], ...) gives its distribution)")
        if codes:  # the discrete evidence must be possible (the gaussian part is then independent of it)
            with np.errstate(invalid="ignore", divide="ignore"):
                log_z = float(np.max(variable_elimination(factors, (), codes).table))
            if not np.isfinite(log_z):
                raise DataError(f"the evidence {evidence} has probability 0 under the model, so the query "
                                "has no answer; check the evidence, or refit with a prior (prior={'dirichlet': 1})")
        mean, cov = gaussian_query(graph, fams, self.cpds, variables, codes, dens)
        names = [c for v in variables for c in graph[v].columns]
        frame = pd.DataFrame(cov, index=names, columns=[f"cov[{c}]" for c in names])
        frame.insert(0, "mean", mean)
        return frame

    def _log_factor(self, fam: Family, cpd: CPD, observed: np.ndarray | None) -> LogFactor:
        """The family's CPD as a log-factor over (discrete parents..., child), or over the discrete
        parents of an observed gaussian."""
        return LogFactor(*kind_of(fam).log_factor(fam, cpd, observed))

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, seed: int | None = None, *, length: int | None = None) -> pd.DataFrame:
        """``n`` rows by ancestral sampling (vectorised over rows), with the model's columns.

        Discrete nodes with named states give their labels (a categorical column);
        nodes with a state count give integer codes.  Latent nodes are included.
        A sequence model draws ``n`` sequences of ``length`` steps each, as long-form data: the id
        column (0..n-1), the order column (0..length-1), then the nodes' columns.
        """
        if self.graph.sequence:
            return self._sample_sequences(n, seed, length)
        if length is not None:
            raise PGMError("length= is for sequence models (a model with `sequence:`); this model draws rows")
        check_sample_size(n)
        rng = sample_rng(seed)
        fams = self._families()
        values: dict[str, np.ndarray] = {}
        for name in self.graph.order:
            fam = fams[name]
            values[name] = kind_of(fam).sample(fam, self.cpds[self.graph[name].param], values, n, rng)
        return self._frame(values, n)

    def _sample_sequences(self, n: int, seed: int | None, length: Any) -> pd.DataFrame:
        """Ancestral sampling step by step, every sequence at once: the first step from the
        first-step CPDs, each later step given the one before."""
        if length is None or isinstance(length, (bool, np.bool_)) or not isinstance(length, (int, np.integer)) \
                or length < 1:
            raise DataError(f"sample(n_sequences, length=...) needs the number of steps of each sequence, a whole "
                            f"number >= 1; got length={length!r}")
        check_sample_size(n)
        check_sample_size(int(n) * int(length))
        rng = sample_rng(seed)
        fams = self._families()
        steps: list[dict[str, np.ndarray]] = []
        values: dict[str, np.ndarray] = {}
        for name in self.graph.order:  # the @prev slice: the first step
            if name.endswith(PREV):
                fam = fams[name]
                values[name] = kind_of(fam).sample(fam, self.cpds[self.graph[name].param], values, n, rng)
        steps.append({v: values[prev_name(v)] for v in self.graph.slice})
        for _ in range(1, int(length)):
            values = {prev_name(v): x for v, x in steps[-1].items()}
            for name in self.graph.slice:
                fam = fams[name]
                values[name] = kind_of(fam).sample(fam, self.cpds[self.graph[name].param], values, n, rng)
            steps.append({v: values[v] for v in self.graph.slice})
        stacked = {v: np.stack([s[v] for s in steps], axis=1).reshape((n * int(length),) + steps[0][v].shape[1:])
                   for v in self.graph.slice}
        body = self._frame(stacked, n * int(length), self.graph.slice)
        return long_frame(self.graph, {c: body[c].to_numpy() if not isinstance(body[c].dtype, pd.CategoricalDtype)
                                       else body[c].array for c in body.columns}, n, int(length))

    def _frame(self, values: dict[str, np.ndarray], n: int, names: Any = None) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for name in (self.graph.order if names is None else names):
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
