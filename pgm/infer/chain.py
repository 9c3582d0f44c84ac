r"""Exact inference in sequence models: forward-backward and Viterbi over the steps.

The hidden state of one step is the joint state of the slice's hidden discrete variables (latent
nodes, and discrete nodes with missing cells), listed as ``K`` joint states.  Every family then
contributes a log-table per row:

* over this step's joint state, ``E[r, z]`` (emissions; the first-step CPDs at step 0; observed
  cells of hidden nodes as an indicator), evaluated for all rows at once by the kind's
  ``log_prob`` (table, linear gaussian, logistic alike);
* over the previous and this step's joint states, ``A[z', z]``, for a family with a hidden
  ``prev:`` member (transitions): one shared ``K x K`` table when the family reads no data,
  else one per row.

The forward-backward recursions (Rabiner 1989, scaled) advance every sequence together: the rows
are time-major (:mod:`pgm.sequence`), so step ``t`` is one block of rows and the loop runs over
steps only.  The cost is linear in the number of rows.  Posterior marginals ``gamma`` and the
pairwise marginals of consecutive steps ``xi`` weigh the complete-data statistics of each
family's kind (the EM M-step); Viterbi is the same recursion with max instead of sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pgm.cpd.base import configs, continuous
from pgm.cpd.family import CPD, Family, Stats, families, family_log_prob, family_stats
from pgm.cpd.linear import condition_missing, missing_stats
from pgm.errors import DataError, ModelError
from pgm.graph import Graph, PREV, slice_name
from pgm.sequence import SequenceData

#: The most joint hidden states of one step (forward-backward costs K^2 per row).
MAX_JOINT = 4096
#: The most cells of per-row transition tables held at once (rows x K x K).
MAX_PAIR_CELLS = 50_000_000


@dataclass
class ChainPlan:
    """Which cells are hidden and how each family enters the recursions (data-dependent only)."""

    graph: Graph
    fams: dict[str, Family]
    data: SequenceData
    hidden: tuple[str, ...]               # slice variables in the joint state
    joint: np.ndarray                     # (len(hidden), K) codes of every joint state
    first: tuple[str, ...]                # first-step families (rows of step 0)
    later: tuple[str, ...]                # later-step families over this step's state
    trans: tuple[str, ...]                # later-step families with a hidden previous-step member
    missing_child: dict[str, np.ndarray]  # family -> rows (of its block) where its gaussian child is missing
    partial_child: dict[str, np.ndarray]  # family -> rows (of its block) where some components of its child are
    mask: np.ndarray | None               # (N, K) log-indicator of observed cells of hidden nodes
    prev_rows: np.ndarray
    cache: dict = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return self.joint.shape[1]

    @property
    def n0(self) -> int:
        return int(self.data.offsets[1])


def slice_hidden(graph: Graph, data: SequenceData) -> tuple[str, ...]:
    """The slice variables hidden in some row: discrete nodes that are latent or have missing cells."""
    enc = data.enc
    return tuple(v for v in graph.slice if graph[v].discrete
                 and (graph[v].latent or not enc.observed(v) or v in enc.missing))


def make_chain_plan(graph: Graph, data: SequenceData, hidden: tuple[str, ...] | None = None,
                    only: tuple[str, ...] | None = None) -> ChainPlan:
    """The plan of ``data``: hidden variables, joint states and each family's role.

    ``hidden`` and ``only`` (structured mean-field, :mod:`pgm.learn.structured`) restrict the joint
    state to some of the hidden variables and the recursions to some families; every family's
    data is checked either way.

    Raises
    ------
    pgm.ModelError : more than :data:`MAX_JOINT` joint hidden states per step.
    pgm.DataError : a gaussian cell missing where another node depends on it.

    A gaussian child with some but not all components missing in a row enters that row through the
    marginal density of its observed components (:func:`pgm.cpd.linear.condition_missing`).
    """
    fams = families(graph)
    enc = data.enc
    hidden = slice_hidden(graph, data) if hidden is None else hidden
    cards = [graph[v].n_states for v in hidden]
    size = math.prod(cards)
    if size > MAX_JOINT:
        raise ModelError(f"the hidden nodes {list(hidden)} of one step have {size:.3g} joint states, more than "
                         f"{MAX_JOINT} (forward-backward costs their square per step); use fewer latent states or "
                         "fill the missing cells of discrete nodes")
    joint = np.indices(cards).reshape(len(cards), -1) if cards else np.zeros((0, 1), dtype=np.int64)
    n0 = int(data.offsets[1])
    prev_rows = data.prev_rows
    rows_of = {"first": np.arange(n0), "later": np.arange(n0, data.n_rows)}
    missing_child: dict[str, np.ndarray] = {}
    partial_child: dict[str, np.ndarray] = {}
    first, later, trans = [], [], []
    for f, fam in fams.items():
        block = "first" if f.endswith(PREV) else "later"
        if only is None or f in only:
            (first if block == "first" else trans if any(
                m.endswith(PREV) and slice_name(m) in hidden for m in fam.members) else later).append(f)
        for m in fam.members:
            base = slice_name(m)
            if graph[base].discrete:
                continue
            rows = prev_rows if (block == "later" and m.endswith(PREV)) else rows_of[block]
            block_values = enc.values.get(base)
            miss = np.ones(len(rows), dtype=bool) if block_values is None else np.isnan(block_values[rows]).any(axis=1)
            if not miss.any():
                continue
            if m == f:
                whole = miss if block_values is None else np.isnan(block_values[rows]).all(axis=1)
                missing_child[f] = whole
                if (miss & ~whole).any():
                    partial_child[f] = miss & ~whole
            else:
                where = np.flatnonzero(miss)
                more = f" (and {len(where) - 3} more: {len(where)} rows in all)" if len(where) > 3 else ""
                raise DataError(f"gaussian node {base!r} is missing in {data.name_rows(rows[where[:3]])}{more} while "
                                f"{graph[f].decl!r} "
                                f"depends on it{' at the next step' if m.endswith(PREV) else ''}; continuous values "
                                "can only be missing where no node depends on them (fill those cells or drop the rows)")
    mask = None
    observed_hidden = [k for k, v in enumerate(hidden) if v in enc.codes]
    if observed_hidden:
        ok = np.ones((data.n_rows, joint.shape[1]), dtype=bool)
        for k in observed_hidden:
            code = enc.codes[hidden[k]].astype(np.int64)
            ok &= (code[:, None] < 0) | (joint[k][None, :] == code[:, None])
        mask = np.where(ok, 0.0, -np.inf)
    return ChainPlan(graph, fams, data, hidden, joint, tuple(first), tuple(later), tuple(trans), missing_child,
                     partial_child, mask, prev_rows)


def _assign(plan: ChainPlan, f: str) -> tuple[dict[str, np.ndarray], int, bool]:
    """Values of the family's members: joint codes for hidden ones, data for the rest.

    Returns ``(assign, n_rows, per_row)``; ``n_rows`` is 1 when the family reads no data (its table
    is the same for every row).  Over this step's state the hidden axis has K entries; for a
    transition family it has K * K (previous state slowest)."""
    fam = plan.fams[f]
    enc = plan.data.enc
    n0 = plan.n0
    is_first = f.endswith(PREV)
    pair = f in plan.trans
    k = plan.n_states
    hidx = {v: i for i, v in enumerate(plan.hidden)}
    any_hidden = any(slice_name(m) in hidx for m in fam.members)
    per_row = any(slice_name(m) not in hidx for m in fam.members)
    cur_rows = np.arange(n0) if is_first else np.arange(n0, plan.data.n_rows)
    assign: dict[str, np.ndarray] = {}
    for m in fam.members:
        base = slice_name(m)
        previous = m.endswith(PREV) and not is_first
        if base in hidx:
            codes = plan.joint[hidx[base]]
            if pair:
                codes = codes[np.arange(k * k) // k] if previous else codes[np.arange(k * k) % k]
            assign[m] = codes[None, :]
            continue
        rows = plan.prev_rows if previous else cur_rows
        if base in enc.codes:
            codes = enc.codes[base][rows]
            assign[m] = codes[:, None] if any_hidden else codes
        elif base in enc.values:
            assign[m] = np.nan_to_num(enc.values[base][rows], nan=0.0)
        else:  # an unobserved gaussian child: its rows are masked
            assign[m] = np.zeros((len(rows), plan.graph[base].dim))
    n_rows = len(cur_rows) if per_row else 1
    return assign, n_rows, per_row


def _family_table(plan: ChainPlan, cpds: dict[str, CPD], f: str) -> np.ndarray:
    """log p(child | parents) of family ``f`` for each of its rows and hidden states: (n or 1, K or K*K)."""
    assign, n, _ = _assign(plan, f)
    width = plan.n_states ** (2 if f in plan.trans else 1)
    if n == 0:  # no sequence reaches a second step
        return np.zeros((0, width))
    lp = family_log_prob(plan.fams[f], cpds[plan.graph[f].param], assign, n, plan.cache)
    lp = np.asarray(lp).reshape(n, -1)
    if f in plan.missing_child:
        lp = np.where(plan.missing_child[f][:, None], 0.0, lp)
    if f in plan.partial_child:
        part = np.flatnonzero(plan.partial_child[f])
        fam = plan.fams[f]
        logp, _, _ = condition_missing(cpds[plan.graph[f].param], _child_values(plan, f)[part],
                                       _cont_rows(fam, assign, part))
        cfg = _row_configs(fam, assign, lp.shape)[part]
        lp = np.array(lp, dtype=np.float64)
        lp[part] = np.take_along_axis(logp, cfg, axis=1)
    return lp


def _child_values(plan: ChainPlan, f: str) -> np.ndarray:
    """The gaussian child's values (with NaN where missing) on the rows of family ``f``'s block."""
    values = plan.data.enc.values[slice_name(f)]
    return values[:plan.n0] if f.endswith(PREV) else values[plan.n0:]


def _cont_rows(fam: Family, assign: dict[str, np.ndarray], part: np.ndarray) -> np.ndarray | None:
    x = continuous(fam, assign)
    return None if x is None else x[part]


def _row_configs(fam: Family, assign: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The family's configuration index broadcast to ``shape`` (n_rows, width): rows along axis 0."""
    cfg = np.asarray(configs(fam, assign), dtype=np.int64)
    if cfg.ndim == 1:
        cfg = cfg[:, None]
    return np.broadcast_to(cfg, shape)


@dataclass
class Tables:
    """The per-step log-tables of one set of parameters."""

    evidence: np.ndarray                  # (N, K)
    shared: np.ndarray                    # (K, K) log transition shared by every row (0 without one)
    rows: np.ndarray | None               # (N - n0, K, K) per-row log transition, or None


def tables(plan: ChainPlan, cpds: dict[str, CPD]) -> Tables:
    """Evaluate every family once for all rows (the only place parameters enter the recursions)."""
    n, k, n0 = plan.data.n_rows, plan.n_states, plan.n0
    with np.errstate(divide="ignore", invalid="ignore"):
        evidence = np.zeros((n, k))
        for f in plan.first:
            evidence[:n0] += _family_table(plan, cpds, f)
        for f in plan.later:
            evidence[n0:] += _family_table(plan, cpds, f)
        if plan.mask is not None:
            evidence += plan.mask
        shared = np.zeros((1, k * k))
        rows = None
        for f in plan.trans:
            lp = _family_table(plan, cpds, f)
            if lp.shape[0] == 1:
                shared = shared + lp
            else:
                if lp.size > MAX_PAIR_CELLS:
                    raise ModelError(f"the transition of {plan.graph[f].decl!r} reads data in every row: "
                                     f"{lp.size:.3g} cells of per-row tables, more than {MAX_PAIR_CELLS:.3g}; "
                                     "use fewer hidden states or fewer rows per call")
                rows = lp if rows is None else rows + lp
    return Tables(evidence, shared.reshape(k, k), None if rows is None else rows.reshape(-1, k, k))


@dataclass
class Smoothed:
    """The result of forward-backward."""

    log_likelihood: float                 # sum over sequences of (weight *) log p(sequence)
    sequence_log_likelihood: np.ndarray   # (S,) by rank
    row_log_likelihood: np.ndarray        # (N,) log p(row | earlier rows of its sequence), time-major
    gamma: np.ndarray | None              # (N, K) posterior of each row's joint state
    xi_shared: np.ndarray | None          # (K, K) sum of pairwise posteriors over all rows (weighted by the
                                          # sequence weights, if any)
    xi_rows: np.ndarray | None            # (N - n0, K, K) pairwise posteriors per row (per-row transitions)


def _probabilities(tab: Tables, n0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """exp of the tables with a per-row shift: ``(P, A, A_rows, shift)`` so that the log-probability
    of a row is ``log(...) + shift``."""
    with np.errstate(invalid="ignore", over="ignore"):
        shift = tab.evidence.max(axis=1)
        shift = np.where(np.isfinite(shift), shift, 0.0)
        p = np.exp(tab.evidence - shift[:, None])
        top = tab.shared.max()
        top = top if np.isfinite(top) else 0.0
        a = np.exp(tab.shared - top)
        a_rows = None
        shift = shift.copy()
        shift[n0:] += top
        if tab.rows is not None:
            rtop = tab.rows.max(axis=(1, 2))
            rtop = np.where(np.isfinite(rtop), rtop, 0.0)
            a_rows = np.exp(tab.rows - rtop[:, None, None]) * a[None]
            shift[n0:] += rtop
    return p, a, a_rows, shift


def forward_backward(plan: ChainPlan, cpds: dict[str, CPD], *, smooth: bool = True,
                     tab: Tables | None = None) -> Smoothed:
    """Scaled forward (and with ``smooth`` backward) recursions for every sequence at once
    (over ``tab`` when given, else the tables of ``cpds``)."""
    data = plan.data
    tab = tables(plan, cpds) if tab is None else tab
    p, a, a_rows, shift = _probabilities(tab, plan.n0)
    n, k, n0 = data.n_rows, plan.n_states, plan.n0
    off = data.offsets
    alpha = np.empty((n, k))
    scale = np.empty(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale[:n0] = p[:n0].sum(axis=1)
        alpha[:n0] = p[:n0] / scale[:n0, None]
        for t in range(1, data.n_steps):
            s, e, ps = int(off[t]), int(off[t + 1]), int(off[t - 1])
            prev = alpha[ps:ps + e - s]
            pred = prev @ a if a_rows is None else np.einsum("ni,nij->nj", prev, a_rows[s - n0:e - n0])
            step = pred * p[s:e]
            scale[s:e] = step.sum(axis=1)
            alpha[s:e] = step / scale[s:e, None]
        row_ll = np.log(scale) + shift
    row_ll = np.where(np.isnan(row_ll), -np.inf, row_ll)
    seq_ll = np.bincount(data.rank, weights=row_ll, minlength=data.n_sequences) if n else np.zeros(0)
    seq_ll = np.where(np.isnan(seq_ll), -np.inf, seq_ll)
    weights = data.sequence_weights  # a sequence of weight w counts as w copies of it
    total = float(seq_ll.sum() if weights is None else weights @ seq_ll)
    if not smooth:
        return Smoothed(total, seq_ll, row_ll, None, None, None)
    beta = np.ones((n, k))
    tmp = np.empty((n - n0, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in range(data.n_steps - 1, 0, -1):
            s, e, ps = int(off[t]), int(off[t + 1]), int(off[t - 1])
            w = p[s:e] * beta[s:e] / scale[s:e, None]
            tmp[s - n0:e - n0] = w
            beta[ps:ps + e - s] = w @ a.T if a_rows is None else np.einsum("nij,nj->ni", a_rows[s - n0:e - n0], w)
        gamma = alpha * beta
        before = alpha[plan.prev_rows]
        if a_rows is None:
            if data.row_weights is not None:
                tmp *= data.row_weights[n0:, None]
            xi_shared, xi_rows = a * (before.T @ tmp), None
        else:
            xi_rows = before[:, :, None] * a_rows * tmp[:, None, :]
            xi_shared = (xi_rows if data.row_weights is None else
                         xi_rows * data.row_weights[n0:, None, None]).sum(axis=0)
    return Smoothed(total, seq_ll, row_ll, gamma, xi_shared, xi_rows)


def chain_stats(plan: ChainPlan, gamma: np.ndarray, xi_shared: np.ndarray,
                xi_rows: np.ndarray | None, cpds: dict[str, CPD] | None = None) -> dict[str, Stats]:
    """Expected complete-data statistics of every family, weighted by the posteriors (and by the
    sequence weights of the data, if any: ``xi_shared`` carries them already).

    A gaussian child partly missing in some rows adds the expected moments of its missing components
    given the observed ones under the current parameters ``cpds`` (required then)."""
    if plan.partial_child and cpds is None:
        f = next(iter(plan.partial_child))
        raise DataError(f"some but not all components of the gaussian node {slice_name(f)!r} are missing in "
                        f"{sum(int(v.sum()) for k, v in plan.partial_child.items() if slice_name(k) == slice_name(f))} rows: their statistics need EM (learner='em'), "
                        "or fill or empty the other components")
    n0, k = plan.n0, plan.n_states
    rw = plan.data.row_weights
    out: dict[str, Stats] = {}
    for f in plan.first + plan.later + plan.trans:
        assign, n, per_row = _assign(plan, f)
        fam = plan.fams[f]
        any_hidden = any(slice_name(m) in plan.hidden for m in fam.members)
        wr = None if rw is None else (rw[:n0] if f.endswith(PREV) else rw[n0:])
        if f in plan.trans:
            w = xi_rows.reshape(-1, k * k) if per_row else xi_shared.reshape(1, k * k)
            if per_row and wr is not None:
                w = w * wr[:, None]
        else:
            block = gamma[:n0] if f.endswith(PREV) else gamma[n0:]
            if wr is not None:
                block = block * wr[:, None]
            if not any_hidden:
                w = np.ones(n) if wr is None else wr
            elif per_row:
                w = block
            else:
                w = block.sum(axis=0)[None]
        part = plan.partial_child.get(f)
        if f in plan.missing_child:
            miss = plan.missing_child[f] if part is None else plan.missing_child[f] | part
            w_full = np.where(miss, 0.0, w) if w.ndim == 1 else np.where(miss[:, None], 0.0, w)
        else:
            w_full = w
        out[f] = family_stats(fam, assign, n, w_full, plan.cache)
        if part is not None:  # the expected moments of the missing components, per configuration
            rows = np.flatnonzero(part)
            x = _cont_rows(fam, assign, rows)
            _, mean, cov = condition_missing(cpds[plan.graph[f].param], _child_values(plan, f)[rows], x)
            wp = (w[:, None] if w.ndim == 1 else w)[rows]
            cfg = _row_configs(fam, assign, (n, wp.shape[1]))[rows]
            r_idx = np.broadcast_to(np.arange(len(rows))[:, None], wp.shape)
            resp = np.bincount((r_idx * fam.n_configs + cfg).reshape(-1), weights=wp.reshape(-1),
                               minlength=len(rows) * fam.n_configs).reshape(len(rows), fam.n_configs)
            out[f] = out[f] + missing_stats(x, mean, cov, resp)
    return out


def viterbi(plan: ChainPlan, cpds: dict[str, CPD]) -> tuple[np.ndarray, np.ndarray]:
    """The most probable joint hidden path of every sequence.

    Returns ``(states, best)``: the joint-state index of every row (time-major) and each sequence's
    log p(observed, best path), by rank."""
    data = plan.data
    tab = tables(plan, cpds)
    n, k, n0 = data.n_rows, plan.n_states, plan.n0
    off = data.offsets
    delta = np.empty((n, k))
    back = np.empty((n - n0, k), dtype=np.int64)
    delta[:n0] = tab.evidence[:n0]
    with np.errstate(invalid="ignore"):
        for t in range(1, data.n_steps):
            s, e, ps = int(off[t]), int(off[t + 1]), int(off[t - 1])
            scores = delta[ps:ps + e - s][:, :, None] + tab.shared[None]
            if tab.rows is not None:
                scores = scores + tab.rows[s - n0:e - n0]
            back[s - n0:e - n0] = scores.argmax(axis=1)
            delta[s:e] = np.take_along_axis(scores, back[s - n0:e - n0][:, None, :], axis=1)[:, 0] + \
                tab.evidence[s:e]
    path = np.empty(n, dtype=np.int64)
    best = np.empty(data.n_sequences)
    for t in range(data.n_steps - 1, -1, -1):
        s, e = int(off[t]), int(off[t + 1])
        going = int(off[t + 2] - off[t + 1]) if t + 1 < data.n_steps else 0
        if going:
            ns = int(off[t + 1])
            path[s:s + going] = back[ns - n0:ns - n0 + going][np.arange(going), path[ns:ns + going]]
        end = delta[s + going:e]
        path[s + going:e] = end.argmax(axis=1)
        best[going:e - s] = end.max(axis=1)
    return path, best


def path_posteriors(plan: ChainPlan, path: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(gamma, xi_shared, xi_rows)`` as :func:`forward_backward` gives them, for the posterior that
    puts all its mass on one joint path per sequence (``path``: each row's joint state, time-major;
    the Viterbi path for hard EM): indicators of each row's state and of each consecutive pair,
    ``xi_shared`` weighted by the sequence weights as the soft one is."""
    n, k, n0 = plan.data.n_rows, plan.n_states, plan.n0
    gamma = np.zeros((n, k))
    gamma[np.arange(n), path] = 1.0
    pairs = path[plan.prev_rows] * k + path[n0:]
    xi_shared = np.bincount(pairs, weights=plan.data.row_weights[n0:] if plan.data.row_weights is not None else None,
                            minlength=k * k).reshape(k, k).astype(float)
    xi_rows = None
    if any(_assign(plan, f)[2] for f in plan.trans):  # per-row transitions take per-row pairs
        xi_rows = np.zeros((n - n0, k * k))
        xi_rows[np.arange(n - n0), pairs] = 1.0
        xi_rows = xi_rows.reshape(-1, k, k)
    return gamma, xi_shared, xi_rows


def marginal(plan: ChainPlan, gamma: np.ndarray, name: str) -> np.ndarray:
    """The posterior of slice variable ``name`` per row from the joint posterior: (N, n_states)."""
    k = plan.graph[name].n_states
    if name not in plan.hidden:
        out = np.zeros((plan.data.n_rows, k))
        out[np.arange(plan.data.n_rows), plan.data.enc.codes[name]] = 1.0
        return out
    onehot = np.zeros((plan.n_states, k))
    onehot[np.arange(plan.n_states), plan.joint[plan.hidden.index(name)]] = 1.0
    return gamma @ onehot
