r"""Forecasting a sequence model: the predictive distribution of the steps after the data.

The *carried state* ``S`` of a step is the set of discrete variables that some node reads at the
next step (every discrete ``prev:`` parent).  For a sequence observed up to its last step ``T``,
forward-backward gives the filtered belief ``b_T(s) = p(S_T = s | x_1..T)`` (the smoothed
posterior of the last step is the filtered one).  One step ahead, the discrete variables ``E``
that a question needs (the carried state and its parents within the step for propagation; a
node and its discrete ancestors within the step for its predictive) have

    p(E_{t+1} = e | x_1..T) = sum_{s'} b_t(s') M_E[s', e],
    M_E[s', e] = prod_{v in E} p(v = e_v | pa(v) = e_pa, prev(v) = s'_prev)

(the later-step CPDs; observed nodes are in ``E`` like latent ones, since their future values are
unknown), and the belief moves on as ``b_{t+1} = marginal of p(E_{t+1}) on S``.  A discrete node's
predictive is the marginal of its ``E`` on it; a gaussian node whose parents are discrete (a
gaussian emission, possibly reading the previous step) is the mixture over the pairs
``(s', e)`` with weights ``b_t(s') M_E[s', e]``: mean ``sum w mu`` and covariance
``sum w (Sigma + mu mu^T) - mean mean^T``.  Brute force over the future paths gives the same
(tests/test_forecast.py).

The belief is discrete: :func:`propagate` is the one place it moves.  A gaussian carried state
(a linear dynamical system, or an autoregressive gaussian node: a gaussian ``prev:`` parent, or a
gaussian parent inside the step) would need a Kalman-style predictive there and is refused by
name (a ModelError) until one exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.family import CPD, family_log_prob
from pgm.errors import ModelError
from pgm.graph import PREV, Graph, prev_name
from pgm.infer.chain import MAX_JOINT, MAX_PAIR_CELLS, ChainPlan
from pgm.sequence import SequenceData, last_rows


def _base(name: str) -> str:
    return name[:-len(PREV)] if name.endswith(PREV) else name


@dataclass
class ForecastPlan:
    """The carried state of a model and the joint tables of the questions asked of it."""

    graph: Graph
    cpds: dict[str, CPD]
    state: tuple[str, ...]                # S: discrete variables read at the next step
    state_codes: np.ndarray               # (len(S), K_S) codes of every joint state of S
    core: tuple[str, ...]                 # S and its discrete ancestors within a step
    tables: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return self.state_codes.shape[1]


def _refuse_continuous(graph: Graph, reader: str, parent: str) -> None:
    base = _base(parent)
    where = "at the previous step" if parent.endswith(PREV) else "in the same step"
    what = "an autoregressive gaussian" if parent.endswith(PREV) else "a gaussian parent"
    raise ModelError(f"forecast(): {graph[reader].decl!r} reads the gaussian node {base!r} {where} ({what}); its "
                     "future values would have to be carried as a continuous state, which forecasting does not do "
                     "yet (it carries the discrete state); forecast other nodes, or drop that dependence")


def _closure(graph: Graph, seeds: tuple[str, ...]) -> tuple[str, ...]:
    """``seeds`` (slice variables) and their discrete ancestors within a step, in topological order;
    a gaussian member of their families (other than a gaussian seed itself) is refused."""
    need = set(seeds)
    stack = list(seeds)
    while stack:
        v = stack.pop()
        for p in graph[v].parents:
            base = _base(p)
            if not graph[base].discrete:
                _refuse_continuous(graph, v, p)
            if not p.endswith(PREV) and p not in need:
                need.add(p)
                stack.append(p)
    return tuple(v for v in graph.slice if v in need)


def make_forecast_plan(graph: Graph, cpds: dict[str, CPD]) -> ForecastPlan:
    """The carried state ``S`` (every discrete ``prev:`` parent of a later-step family)."""
    state = tuple(v for v in graph.slice if graph[v].discrete
                  and any(prev_name(v) in graph[w].parents for w in graph.slice))
    cards = [graph[v].n_states for v in state]
    size = math.prod(cards)
    if size > MAX_JOINT:
        raise ModelError(f"forecast(): the variables {list(state)} carried from step to step have {size:.3g} joint "
                         f"states, more than {MAX_JOINT}; use fewer states")
    codes = np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)
    core = _closure(graph, state)
    return ForecastPlan(graph, cpds, state, codes, core)


def check_forecast(plan: ForecastPlan, nodes: list[str]) -> None:
    """Refuse, before any work, a node whose forecast would need a gaussian carried state."""
    graph = plan.graph
    for v in nodes:
        fam = graph.families[v]
        if graph[v].discrete:
            _closure(graph, (v,))
            continue
        if fam.cont:
            _refuse_continuous(graph, v, next(p for p in graph[v].parents if not graph[_base(p)].discrete))
        _closure(graph, tuple(p for p in fam.disc if not p.endswith(PREV)))


def _pair_codes(plan: ForecastPlan, names: tuple[str, ...], codes: np.ndarray, member: str) -> np.ndarray:
    """The code of ``member`` (a slice variable of ``names`` or a carried ``v@prev``) for every
    pair (previous carried state s', joint state e of ``names``), s' slowest: (K_S * K_E,)."""
    k_e = codes.shape[1]
    pairs = np.arange(plan.n_states * k_e)
    if member.endswith(PREV):
        return plan.state_codes[plan.state.index(_base(member))][pairs // k_e]
    return codes[names.index(member)][pairs % k_e]


def step_table(plan: ForecastPlan, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, M)``: the codes (len(names), K_E) of every joint state of ``names`` (closed under
    discrete parents within the step) and ``M[s', e] = p(names_{t+1} = e | S_t = s')`` (K_S, K_E)."""
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


def filtered_belief(plan: ForecastPlan, chain: ChainPlan, gamma: np.ndarray) -> np.ndarray:
    """``b_T``: p(S at the last step | the sequence) for every sequence, by rank: (n_sequences, K_S).

    ``gamma`` is forward-backward's posterior of each row's hidden joint state; a carried variable
    that is not hidden there is observed in the last row (its code)."""
    data: SequenceData = chain.data
    last = last_rows(data)
    n_seq, k_h = len(last), chain.n_states
    index = np.zeros((n_seq, k_h), dtype=np.int64)
    radix = 1
    for i in range(len(plan.state) - 1, -1, -1):  # the first variable slowest, as np.indices lists them
        v = plan.state[i]
        code = chain.joint[chain.hidden.index(v)][None, :] if v in chain.hidden else data.enc.codes[v][last][:, None]
        index += radix * code
        radix *= plan.graph[v].n_states
    flat = (np.arange(n_seq)[:, None] * plan.n_states + index).reshape(-1)
    return np.bincount(flat, weights=gamma[last].reshape(-1), minlength=n_seq * plan.n_states).reshape(
        n_seq, plan.n_states)


def propagate(plan: ForecastPlan, belief: np.ndarray, steps: int) -> Iterator[np.ndarray]:
    """The carried-state belief before each future step: ``b_T, b_{T+1}, ..., b_{T+steps-1}``.

    The one place the state moves (a gaussian carried state would be propagated here too)."""
    codes, m = step_table(plan, plan.core)
    to_state = np.zeros((codes.shape[1], plan.n_states))
    index = np.zeros(codes.shape[1], dtype=np.int64)
    for v in plan.state:
        index = index * plan.graph[v].n_states + codes[plan.core.index(v)]
    to_state[np.arange(codes.shape[1]), index] = 1.0
    for _ in range(steps):
        yield belief
        belief = (belief @ m) @ to_state


def discrete_predictive(plan: ForecastPlan, belief: np.ndarray, node: str) -> np.ndarray:
    """p(node at the next step | the sequence): (n_sequences, n_states)."""
    names = _closure(plan.graph, (node,))
    codes, m = step_table(plan, names)
    onehot = np.zeros((codes.shape[1], plan.graph[node].n_states))
    onehot[np.arange(codes.shape[1]), codes[names.index(node)]] = 1.0
    return (belief @ m) @ onehot


def gaussian_predictive(plan: ForecastPlan, belief: np.ndarray, node: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n_sequences, d) and covariance (n_sequences, d, d) of a gaussian node at the next step:
    the mixture over its discrete parents (this step's and the previous step's)."""
    graph = plan.graph
    fam = graph.families[node]
    check_forecast(plan, [node])
    names = _closure(graph, tuple(p for p in fam.disc if not p.endswith(PREV)))
    codes, m = step_table(plan, names)
    cpd = plan.cpds[graph[node].param]
    configs = config_index([_pair_codes(plan, names, codes, p) for p in fam.disc], fam.cards)
    configs = np.broadcast_to(np.asarray(configs, dtype=np.int64), (plan.n_states * codes.shape[1],))
    mu = cpd.intercept[configs]                                          # (pairs, d)
    second = cpd.cov[configs] + mu[:, :, None] * mu[:, None, :]          # (pairs, d, d)
    weights = (belief[:, :, None] * m[None]).reshape(len(belief), -1)    # (n_sequences, pairs)
    mean = weights @ mu
    cov = np.einsum("np,pde->nde", weights, second) - mean[:, :, None] * mean[:, None, :]
    return mean, cov
