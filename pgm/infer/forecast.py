r"""Forecasting a sequence model: the predictive distribution of the steps after the data.

The *carried state* of a step is what some node reads at the next step: its discrete part ``S``
(every discrete ``prev:`` parent) and its gaussian part ``x`` (every gaussian ``prev:`` parent:
an autoregressive gaussian node, or the hidden state of a linear dynamical system).  For a
sequence observed up to its last step ``T`` the belief about it is

    b(s) = p(S_T = s | data),  m(s) = E[x_T 1{S_T = s} | data],  V(s) = E[x_T x_T^T 1{S_T = s} | data]

(forward-backward's posterior of the last step, which is the filtered one; with a gaussian hidden
state the Kalman filter's mean and covariance; an observed ``x_T`` is its value).  One step ahead,
the discrete variables ``E`` a question needs (the carried state and its parents within the step
for propagation; a node and its discrete ancestors for its predictive) have

    p(S_t = s', E_{t+1} = e | data) = b(s') M_E[s', e],
    M_E[s', e] = prod_{v in E} p(v = e_v | pa(v) = e_pa, prev(v) = s'_prev)

(the later-step CPDs; observed nodes are in ``E`` like latent ones, since their future values are
unknown).  Given such a pair the gaussian variables of the step are linear in the previous ``x``
and in each other, ``y = a_c + B_c [parents] + eps_c``, so their first two moments given the pair
follow exactly from ``m(s') / b(s')`` and ``V(s') / b(s')`` in topological order (mean
``a + B mu``, covariance ``B Sigma B^T + Sigma_c``, cross-covariances ``B Sigma``); mixing over the
pairs gives a gaussian node's predictive mean and covariance, ``sum w mu`` and
``sum w (Sigma + mu mu^T) - mean mean^T``, and the next belief (``b``, ``m``, ``V`` summed over the
pairs that lead to each carried state).  These are the exact moments of the predictive (a mixture
of gaussians when a discrete state switches the regression); a discrete node's predictive is the
exact marginal of its ``E``.  A discrete node that reads a gaussian one is refused (its predictive
is no longer a finite mixture).  Brute force and the network unrolled over the future steps give
the same (tests/test_forecast.py).

:func:`propagate` is the one place the belief moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.family import CPD, family_log_prob
from pgm.errors import ModelError
from pgm.graph import Graph, PREV, prev_name, slice_name
from pgm.infer.chain import MAX_JOINT, MAX_PAIR_CELLS

#: The most cells of the per-pair moment arrays of one step (sequences x pairs x dim x dim).
MAX_MOMENT_CELLS = 50_000_000


@dataclass
class ForecastPlan:
    """The carried state of a model and the joint tables of the questions asked of it."""

    graph: Graph
    cpds: dict[str, CPD]
    state: tuple[str, ...]                # S: discrete variables read at the next step
    state_codes: np.ndarray               # (len(S), K_S) codes of every joint state of S
    carried: tuple[str, ...]              # x: gaussian variables read at the next step, topological order
    offsets: dict[str, int]               # carried gaussian -> offset in x
    core: tuple[tuple[str, ...], tuple[str, ...]]   # (discrete, gaussian) variables one step of propagation needs
    tables: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return self.state_codes.shape[1]

    @property
    def dim(self) -> int:
        return sum(self.graph[v].dim for v in self.carried)


@dataclass
class Belief:
    """The carried state after a step, per sequence: ``probs`` (n, K_S) = b, ``mean`` (n, K_S, D) = m,
    ``second`` (n, K_S, D, D) = V (D: the carried gaussians' total dimension, possibly 0)."""

    probs: np.ndarray
    mean: np.ndarray
    second: np.ndarray


def _refuse(graph: Graph, reader: str, parent: str) -> None:
    base = slice_name(parent)
    where = "at the previous step" if parent.endswith(PREV) else "in the same step"
    raise ModelError(f"forecast(): the discrete node {graph[reader].decl!r} reads the gaussian node {base!r} {where}; "
                     "its predictive is then no finite mixture, which forecasting does not compute; forecast other "
                     "nodes, or drop that dependence")


def _needs(graph: Graph, seeds: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``seeds`` (slice variables) and their ancestors within a step, as (discrete, gaussian) in
    topological order; a discrete one reading a gaussian node is refused."""
    need = set(seeds)
    stack = list(seeds)
    while stack:
        v = stack.pop()
        for p in graph[v].parents:
            if graph[v].discrete and not graph[slice_name(p)].discrete:
                _refuse(graph, v, p)
            if not p.endswith(PREV) and p not in need:
                need.add(p)
                stack.append(p)
    ordered = [v for v in graph.slice if v in need]
    return tuple(v for v in ordered if graph[v].discrete), tuple(v for v in ordered if not graph[v].discrete)


def make_forecast_plan(graph: Graph, cpds: dict[str, CPD]) -> ForecastPlan:
    """The carried state: every discrete and every gaussian ``prev:`` parent of a later-step family."""
    read = {p[:-len(PREV)] for w in graph.slice for p in graph[w].parents if p.endswith(PREV)}
    state = tuple(v for v in graph.slice if v in read and graph[v].discrete)
    carried = tuple(v for v in graph.slice if v in read and not graph[v].discrete)
    cards = [graph[v].n_states for v in state]
    size = math.prod(cards)
    if size > MAX_JOINT:
        raise ModelError(f"forecast(): the variables {list(state)} carried from step to step have {size:.3g} joint "
                         f"states, more than {MAX_JOINT}; use fewer states")
    codes = np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)
    offsets, n = {}, 0
    for v in carried:
        offsets[v] = n
        n += graph[v].dim
    return ForecastPlan(graph, cpds, state, codes, carried, offsets, _needs(graph, state + carried))


def check_forecast(plan: ForecastPlan, nodes: list[str]) -> None:
    """Refuse, before any work, a node whose predictive is not a finite mixture."""
    for v in nodes:
        _needs(plan.graph, (v,))


def _pair_codes(plan: ForecastPlan, names: tuple[str, ...], codes: np.ndarray, member: str) -> np.ndarray:
    """The code of ``member`` (a slice variable of ``names`` or a carried ``v@prev``) for every
    pair (previous carried state s', joint state e of ``names``), s' slowest: (K_S * K_E,)."""
    k_e = codes.shape[1]
    pairs = np.arange(plan.n_states * k_e)
    if member.endswith(PREV):
        return plan.state_codes[plan.state.index(slice_name(member))][pairs // k_e]
    return codes[names.index(member)][pairs % k_e]


def step_table(plan: ForecastPlan, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, M)``: the codes (len(names), K_E) of every joint state of the discrete ``names``
    (closed under discrete parents within the step) and ``M[s', e] = p(names_{t+1} = e | S_t = s')``
    (K_S, K_E)."""
    if names in plan.tables:
        return plan.tables[names]
    graph = plan.graph
    cards = [graph[v].n_states for v in names]
    k_e = math.prod(cards)
    if k_e > MAX_JOINT or k_e * plan.n_states > MAX_PAIR_CELLS:
        raise ModelError(f"forecast(): the variables {list(names)} of one step have {k_e:.3g} joint states, more "
                         f"than {MAX_JOINT}; forecast fewer nodes at once or use fewer states")
    codes = np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)
    log_m = np.zeros(plan.n_states * k_e)
    with np.errstate(divide="ignore"):
        for v in names:
            fam = graph.families[v]
            assign = {m: _pair_codes(plan, names, codes, m)[None, :] for m in fam.members}
            log_m += np.asarray(family_log_prob(fam, plan.cpds[graph[v].param], assign, 1)).reshape(-1)
    plan.tables[names] = codes, np.exp(log_m).reshape(plan.n_states, k_e)
    return plan.tables[names]


def start_belief(plan: ForecastPlan, probs: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> Belief:
    """The belief at the last step from ``probs`` (n, K_S) and the carried gaussians' mean (n, D) and
    covariance (n, D, D) given the data (independent of ``S_T`` given the data: observed values, or a
    Kalman state next to observed discrete nodes)."""
    second = cov + mean[:, :, None] * mean[:, None, :]
    return Belief(probs, probs[:, :, None] * mean[:, None, :], probs[:, :, None, None] * second[:, None])


def state_index(plan: ForecastPlan, codes: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The joint carried-state index (broadcast to ``shape``) of the codes of ``S``, first variable slowest."""
    index = np.zeros(shape, dtype=np.int64)
    for v in plan.state:
        index = index * plan.graph[v].n_states + codes[v]
    return index


def state_probs(plan: ForecastPlan, hidden: tuple[str, ...], joint: np.ndarray, observed: dict[str, np.ndarray],
                posterior: np.ndarray) -> np.ndarray:
    """b = p(S_T | data) (n, K_S) from the posterior (n, K_H) of the last step's hidden joint states
    (``joint``: the codes (len(hidden), K_H) of ``hidden``) and the observed codes (n,) of the others."""
    n, k_h = posterior.shape
    codes = {v: joint[hidden.index(v)][None, :] if v in hidden else observed[v][:, None] for v in plan.state}
    index = state_index(plan, codes, (n, k_h))
    flat = (np.arange(n)[:, None] * plan.n_states + index).reshape(-1)
    return np.bincount(flat, weights=posterior.reshape(-1), minlength=n * plan.n_states).reshape(n, plan.n_states)


@dataclass
class StepMoments:
    """One future step of every sequence, per pair (s', e) (per e alone when nothing reads the previous
    step): weights (n, P), the codes of ``E`` (len(E), K_E), and the mean (n, P, Z) and covariance
    (n, P, Z, Z) of z = [x_prev, gaussians]."""

    weights: np.ndarray
    codes: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    where: dict[str, int]                  # gaussian of the step -> offset in z


def step_moments(plan: ForecastPlan, belief: Belief, names: tuple[tuple[str, ...], tuple[str, ...]]) -> StepMoments:
    """The pairs' weights and the exact moments of the step's gaussian variables ``names[1]``
    given each pair, from the belief about the previous step."""
    graph = plan.graph
    disc, gauss = names
    codes, m = step_table(plan, disc)
    k_s, k_e = m.shape
    n, dc = len(belief.probs), plan.dim
    if dc == 0 and not any(q.endswith(PREV) for v in gauss for q in graph[v].parents):
        k_s = 1  # nothing reads the previous step: its states are summed out first (pairs would cost K_S x K_E)
        weights = belief.probs @ m

        def code_of(q: str) -> np.ndarray:
            return codes[disc.index(q)]
    else:
        weights = (belief.probs[:, :, None] * m[None]).reshape(n, -1)

        def code_of(q: str) -> np.ndarray:
            return _pair_codes(plan, disc, codes, q)
    where: dict[str, int] = {}
    z = dc
    for v in gauss:
        where[v] = z
        z += graph[v].dim
    if n * k_s * k_e * max(z * z, 1) > MAX_MOMENT_CELLS:
        raise ModelError(f"forecast(): {n} sequences x {k_s * k_e} discrete pairs x {z}^2 moments is more than "
                         f"{MAX_MOMENT_CELLS:.3g} cells; forecast fewer sequences or nodes at once")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = belief.probs[:, :, None]
        mu_prev = np.where(p > 0, belief.mean / p, 0.0)                                  # (n, K_S, D)
        cov_prev = np.where(p[..., None] > 0, belief.second / p[..., None], 0.0) - \
            mu_prev[:, :, :, None] * mu_prev[:, :, None, :]
    mean = np.zeros((n, k_s * k_e, z))
    cov = np.zeros((n, k_s * k_e, z, z))
    if dc:
        before = np.arange(k_s * k_e) // k_e
        mean[:, :, :dc] = mu_prev[:, before]
        cov[:, :, :dc, :dc] = cov_prev[:, before]
    for v in gauss:
        fam = graph.families[v]
        cpd = plan.cpds[graph[v].param]
        o, d = where[v], graph[v].dim
        configs = config_index([code_of(q) for q in fam.disc], fam.cards)
        configs = np.broadcast_to(np.asarray(configs, dtype=np.int64), (k_s * k_e,))
        mean[:, :, o:o + d] = cpd.intercept[configs][None]
        cov[:, :, o:o + d, o:o + d] = cpd.cov[configs][None]
        if not fam.cont:
            continue
        idx = np.concatenate([np.arange(graph[slice_name(q)].dim) + (plan.offsets[slice_name(q)] if q.endswith(PREV)
                                                                else where[q]) for q in fam.cont])
        b = cpd.coef[configs]                                                           # (P, d, q)
        mean[:, :, o:o + d] += np.einsum("Pdq,nPq->nPd", b, mean[:, :, idx])
        cross = np.einsum("Pdq,nPqk->nPdk", b, cov[:, :, idx, :o])                       # Cov(v, z before v)
        cov[:, :, o:o + d, :o] = cross
        cov[:, :, :o, o:o + d] = np.swapaxes(cross, 2, 3)
        cov[:, :, o:o + d, o:o + d] += np.einsum("Pdq,nPqr,Per->nPde", b, cov[:, :, idx][:, :, :, idx], b)
    return StepMoments(weights, codes, mean, cov, where)


def propagate(plan: ForecastPlan, belief: Belief, steps: int) -> Iterator[Belief]:
    """The belief before each future step: the last step's, then after each of ``steps - 1`` steps."""
    disc, gauss = plan.core
    if not plan.carried:  # a discrete state only: b' = (b M) marginalised on S, no per-pair arrays
        codes, m = step_table(plan, disc)
        target = state_index(plan, {v: codes[disc.index(v)] for v in plan.state}, (codes.shape[1],))
        onehot = np.zeros((codes.shape[1], plan.n_states))
        onehot[np.arange(codes.shape[1]), target] = 1.0
        empty = np.zeros(belief.probs.shape + (0,))
        for _ in range(steps):
            yield belief
            belief = Belief((belief.probs @ m) @ onehot, empty, empty[..., None])
        return
    for _ in range(steps):
        yield belief
        st = step_moments(plan, belief, plan.core)
        k = plan.n_states
        target = state_index(plan, {v: _pair_codes(plan, disc, st.codes, v) for v in plan.state},
                             (st.weights.shape[1],))
        onehot = np.zeros((len(target), k))
        onehot[np.arange(len(target)), target] = 1.0
        cols = np.concatenate([np.arange(plan.graph[v].dim) + st.where[v] for v in plan.carried]) \
            if plan.carried else np.zeros(0, dtype=np.int64)
        mu = st.mean[:, :, cols]
        second = st.cov[:, :, cols][:, :, :, cols] + mu[:, :, :, None] * mu[:, :, None, :]
        belief = Belief(st.weights @ onehot, np.einsum("nP,Pk,nPd->nkd", st.weights, onehot, mu),
                        np.einsum("nP,Pk,nPde->nkde", st.weights, onehot, second))


def discrete_predictive(plan: ForecastPlan, belief: Belief, node: str) -> np.ndarray:
    """p(node at the next step | the sequence): (n_sequences, n_states)."""
    names, _ = _needs(plan.graph, (node,))
    codes, m = step_table(plan, names)
    onehot = np.zeros((codes.shape[1], plan.graph[node].n_states))
    onehot[np.arange(codes.shape[1]), codes[names.index(node)]] = 1.0
    return (belief.probs @ m) @ onehot


def gaussian_predictive(plan: ForecastPlan, belief: Belief, node: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n_sequences, d) and covariance (n_sequences, d, d) of a gaussian node at the next step."""
    st = step_moments(plan, belief, _needs(plan.graph, (node,)))
    o, d = st.where[node], plan.graph[node].dim
    mu = st.mean[:, :, o:o + d]
    mean = np.einsum("nP,nPd->nd", st.weights, mu)
    second = np.einsum("nP,nPde->nde", st.weights, st.cov[:, :, o:o + d, o:o + d] + mu[..., :, None] * mu[..., None, :])
    return mean, second - mean[:, :, None] * mean[:, None, :]
