r"""Exact inference in sequence models with a gaussian hidden state: Kalman filter and RTS smoother.

A sequence model whose slice holds latent gaussian nodes (and no hidden discrete node) is a linear
dynamical system.  The hidden state ``s_t`` of a step is the concatenation of the slice's latent
gaussian nodes.  Its linear families, written for a block of rows (the first step, or every later
step), are structural equations in topological order

    s_t = B s_t + W s_{t-1} + c_t + eps,   eps ~ N(0, Psi)        (B strictly lower triangular)

so with ``L = (I - B)^{-1}`` the transition is ``s_t = F s_{t-1} + u_t + noise``, ``F = L W``,
``u_t = L c_t``, ``Q = L Psi L^T`` (the first step has no ``F``).  ``c_t`` holds each family's
intercept for the row's configuration of observed discrete parents plus its slopes times observed
gaussian parents.  Every observed gaussian family is an observation ``y_t = H s_t + d_t + e``,
``e ~ N(0, R)`` (``H = 0`` for a family without hidden parents), stacked into one vector per row.
A row's missing components of ``y`` are dropped by a mask: zero rows of ``H``, an identity block
of ``R`` and a zero residual, so every row keeps the same shapes and the missing components add
exactly ``-log(2 pi) / 2`` each to the innovation density, which is added back.

The filter advances every sequence together over the time-major rows (:mod:`pgm.sequence`): the
Python loop runs over steps, each step one batched update of the sequences still running.  The
update is in information form with ``J = H^T R^{-1} H`` and ``h = H^T R^{-1} (y - d)`` computed
for all rows before the loop (the observation dimension never enters the loop):

    P_t = (I + P^-_t J)^{-1} P^-_t,    m_t = m^-_t + P_t (h - J m^-_t).

The log-likelihood is taken afterwards from the innovations, for all rows at once:
``log N(y - d - H m^-; 0, H P^- H^T + R)`` through a Cholesky factor.  The Rauch-Tung-Striebel
smoother's gains ``G_t = P_{t-1} F^T (P^-_t)^{-1}`` are one batched solve over all rows; its loop
does two products per step.  The M-step statistics of each linear family are the posterior moments
of ``z = [continuous parents, child]``, an affine map of ``w_t = [s_{t-1}, s_t]`` (a missing
component of an observed child is replaced by its conditional mean given the state and the observed
components, with its conditional covariance), fed to the linear kind's ``from_stats`` exactly as
factor analysis feeds it (:class:`pgm.cpd.linear.GaussStats`).

When every row has the same matrices (complete data, no per-row configuration of discrete parents)
the covariances depend on the step only, not on the sequence: they are computed once per step until
they reach their fixed point (to rounding; K distinct steps, then every later step has the last
ones), the filter's means follow ``m_t = M_t m_{t-1} + v_t`` and the smoother's mean and covariance
``[m, vec P]_{t-1} = [m, vec P]_t B_t + c`` with every per-row term computed before the loops, so a
step costs one matrix product each way (a single long sequence runs at a few microseconds per step).

A hidden discrete node in the same slice (latent, or a discrete column with missing cells) makes a
switching linear dynamical system, whose exact posterior is a mixture with K^T components: refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.family import CPD, Family, Stats, families, family_log_prob, family_stats
from pgm.cpd.linear import LOG_2PI, GaussStats, gauss_stats
from pgm.errors import DataError, ModelError
from pgm.graph import Graph, PREV, slice_name
from pgm.sequence import SequenceData

#: Rows of per-row matrices (rows x k x k) formed at once where a pass needs them (bounded memory).
STAT_ROWS = 65536


def gaussian_state(graph: Graph) -> tuple[str, ...]:
    """The latent gaussian nodes of a sequence model's slice (empty: no gaussian hidden state)."""
    if not graph.sequence:
        return ()
    return tuple(v for v in graph.slice if graph[v].gaussian and graph[v].latent)


def switching_message(graph: Graph, discrete: list[str], why: str) -> str:
    state = list(gaussian_state(graph))
    return (f"the hidden discrete node{'s' if len(discrete) > 1 else ''} {discrete} ({why}) and the latent gaussian "
            f"node{'s' if len(state) > 1 else ''} {state} in one step make a switching linear dynamical system, "
            "whose exact posterior is a mixture with (states)^T components: no exact inference. Make the discrete "
            "node observed (give it a column with every cell filled), or use a discrete hidden state alone (an HMM "
            "with gaussian emissions) or a gaussian one alone (a linear dynamical system)")


@dataclass
class Member:
    """Where a family member's value comes from in a block's rows."""

    kind: str                 # "state" (hidden, offset in w), "data" (observed gaussian), "code" (discrete)
    base: str
    rows: np.ndarray          # rows of the data holding the value (current or previous step)
    offset: int = 0           # state: offset in w = [s_prev (n), s_cur (n)] (later) or [s_cur] (first)


@dataclass
class KalmanPlan:
    """Which families are state equations and observations in each block (data-dependent only)."""

    graph: Graph
    fams: dict[str, Family]
    data: SequenceData
    state: tuple[str, ...]                     # slice variables in the state vector, topological order
    offsets: dict[str, int]                    # state variable -> offset in s
    n: int                                     # state dimension
    blocks: dict[str, dict[str, tuple[str, ...]]]   # "first"/"later" -> {"state"/"obs"/"disc": families}
    members: dict[str, dict[str, Member]]      # family -> member -> source
    miss: dict[str, np.ndarray]                # observation family -> (rows, d) missing mask (block rows)
    cache: dict = field(default_factory=dict)

    @property
    def n0(self) -> int:
        return int(self.data.offsets[1])

    def rows(self, block: str) -> np.ndarray:
        return np.arange(self.n0) if block == "first" else np.arange(self.n0, self.data.n_rows)


def make_kalman_plan(graph: Graph, data: SequenceData) -> KalmanPlan:
    """The plan of ``data`` for a sequence model with a gaussian hidden state.

    Raises
    ------
    pgm.ModelError : a hidden discrete node in the slice (switching LDS), a discrete node with a
        hidden gaussian parent, an observed node with a hidden gaussian parent from the previous step.
    pgm.DataError : a gaussian cell missing where another node depends on it.
    """
    fams = families(graph)
    enc = data.enc
    state = gaussian_state(graph)
    hidden_disc = [v for v in graph.slice if graph[v].discrete
                   and (graph[v].latent or not enc.observed(v) or v in enc.missing)]
    if hidden_disc:
        why = "latent" if all(graph[v].latent for v in hidden_disc) else "latent or with missing cells"
        raise ModelError(switching_message(graph, hidden_disc, why))
    offsets, n = {}, 0
    for v in state:
        offsets[v] = n
        n += graph[v].dim
    n0 = int(data.offsets[1])
    prev_rows = data.prev_rows
    blocks: dict[str, dict[str, list[str]]] = {b: {"state": [], "obs": [], "disc": []} for b in ("first", "later")}
    members: dict[str, dict[str, Member]] = {}
    miss: dict[str, np.ndarray] = {}
    for f, fam in fams.items():
        block = "first" if f.endswith(PREV) else "later"
        cur = np.arange(n0) if block == "first" else np.arange(n0, data.n_rows)
        src: dict[str, Member] = {}
        for m in fam.members:
            base = slice_name(m)
            previous = block == "later" and m.endswith(PREV)
            rows = prev_rows if previous else cur
            if base in state:
                off = offsets[base] + (0 if previous or block == "first" else n)
                src[m] = Member("state", base, rows, off)
            elif graph[base].discrete:
                src[m] = Member("code", base, rows)
            else:
                src[m] = Member("data", base, rows)
        members[f] = src
        child = slice_name(f)
        if graph[child].discrete:
            hidden_parents = [graph.shown(f, p) for p in fam.cont if src[p].kind == "state"]
            if hidden_parents:
                raise ModelError(f"the discrete node {graph[f].decl!r} has the latent gaussian parent"
                                 f"{'s' if len(hidden_parents) > 1 else ''} {hidden_parents}: a discrete node with a "
                                 "hidden continuous parent has no exact inference; make the parent observed or "
                                 "drop the edge")
            blocks[block]["disc"].append(f)
        elif child in state:
            blocks[block]["state"].append(f)
        else:
            late = [graph.shown(f, p) for p in fam.cont if src[p].kind == "state" and block == "later"
                    and p.endswith(PREV)]
            if late:
                raise ModelError(f"the observed gaussian node {graph[f].decl!r} depends on the previous step's hidden "
                                 f"state {late}; an observation of a linear dynamical system depends on the hidden "
                                 "state of its own step (declare the edge in `parents:`, not `prev:`)")
            blocks[block]["obs"].append(f)
        for m, s in src.items():  # missing gaussian data: only where nothing depends on it
            if s.kind != "data":
                continue
            vals = enc.values.get(s.base)
            gone = np.ones((len(s.rows), graph[s.base].dim), dtype=bool) if vals is None else np.isnan(vals[s.rows])
            if m == f:
                miss[f] = gone
            elif gone.any():
                bad = data.name_rows(s.rows[np.flatnonzero(gone.any(axis=1))[:3]])
                raise DataError(f"gaussian node {s.base!r} is missing in {bad} while {graph[f].decl!r} "
                                f"depends on it{' at the next step' if m.endswith(PREV) else ''}; continuous values "
                                "can only be missing where no node depends on them (fill those cells or drop the rows)")
    frozen = {b: {k: tuple(v) for k, v in d.items()} for b, d in blocks.items()}
    return KalmanPlan(graph, fams, data, state, offsets, n, frozen, members, miss)


# ----------------------------------------------------------------------------------------- parameters
def _configs(plan: KalmanPlan, f: str) -> np.ndarray:
    """Each block row's configuration of the family's discrete parents: (rows,)."""
    fam = plan.fams[f]
    src = plan.members[f]
    n_rows = len(plan.rows("first" if f.endswith(PREV) else "later"))
    if not fam.disc:
        return np.zeros(n_rows, dtype=np.int64)
    enc = plan.data.enc
    return np.asarray(config_index([enc.codes[src[p].base][src[p].rows] for p in fam.disc], fam.cards),
                      dtype=np.int64).reshape(n_rows)


def _cached(plan: KalmanPlan, key: tuple, make: Callable[[], Any]) -> Any:
    """A value that depends on the data only, computed once per plan (every EM iteration reuses it)."""
    if key not in plan.cache:
        plan.cache[key] = make()
    return plan.cache[key]


def _groups(keys: list[np.ndarray], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by equal keys: ``(first_row_of_each_group, group_of_each_row)``."""
    if not keys or n_rows == 0:
        return np.zeros(min(n_rows, 1), dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    mat = np.column_stack([np.asarray(k, dtype=np.int64).reshape(n_rows, -1) for k in keys])
    if mat.shape[1] == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    _, first, inverse = np.unique(mat, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


@dataclass
class Model:
    """The state-space form of one block: shared (leading axis 1) or per row."""

    F: np.ndarray | None      # (1 or rows, n, n) transition (None for the first step)
    u: np.ndarray             # (rows, n) state offset
    Q: np.ndarray             # (1 or rows, n, n) state noise
    H: np.ndarray             # (1 or rows, D, n) masked observation matrix
    R: np.ndarray             # (1 or rows, D, D) masked observation noise (identity on missing components)
    r: np.ndarray             # (rows, D) masked y - d
    J: np.ndarray             # (1 or rows, n, n) H^T R^-1 H
    h: np.ndarray             # (rows, n) H^T R^-1 r
    n_obs: np.ndarray         # (rows,) observed components
    const: np.ndarray         # (rows,) log-probabilities of the discrete families (observed)


def _covariate_mean(plan: KalmanPlan, f: str, cpd: CPD, cfg: np.ndarray) -> np.ndarray:
    """intercept + slopes times the observed gaussian parents, per block row: (rows, d)."""
    fam = plan.fams[f]
    src = plan.members[f]
    enc = plan.data.enc
    out = cpd.intercept[cfg]
    k = 0
    for p in fam.cont:
        dp = plan.graph[src[p].base].dim
        if src[p].kind == "data":
            x = enc.values[src[p].base][src[p].rows]
            out = out + np.einsum("ndp,np->nd", cpd.coef[cfg, :, k:k + dp], x)
        k += dp
    return out


def _state_loadings(plan: KalmanPlan, f: str, cpd: CPD, c: int, width: int) -> np.ndarray:
    """The family's slopes on the hidden state, in w coordinates: (d, width)."""
    fam = plan.fams[f]
    src = plan.members[f]
    out = np.zeros((cpd.intercept.shape[1], width))
    k = 0
    for p in fam.cont:
        dp = plan.graph[src[p].base].dim
        if src[p].kind == "state":
            out[:, src[p].offset:src[p].offset + dp] += cpd.coef[c][:, k:k + dp]
        k += dp
    return out


def _shared(per_group: np.ndarray, group: np.ndarray) -> np.ndarray:
    return per_group if per_group.shape[0] == 1 else per_group[group]


def block_model(plan: KalmanPlan, cpds: dict[str, CPD], block: str) -> Model:
    """The transition and observation of every row of ``block`` ("first" or "later")."""
    graph, n = plan.graph, plan.n
    rows = plan.rows(block)
    nb = len(rows)
    later = block == "later"
    width = 2 * n if later else n
    cur = n if later else 0
    enc = plan.data.enc
    if nb == 0:  # no sequence reaches a second step
        z = np.zeros((0, n))
        return Model(np.zeros((0, n, n)), z, np.zeros((0, n, n)), np.zeros((0, 0, n)), np.zeros((0, 0, 0)),
                     np.zeros((0, 0)), np.zeros((0, n, n)), z, np.zeros(0), np.zeros(0))
    # ---- state equations: s = B s + W s_prev + c + eps
    sf = plan.blocks[block]["state"]
    cfgs = {f: _configs(plan, f) for f in sf}
    first_rows, group = _cached(plan, ("state groups", block),
                                lambda: _groups([cfgs[f] for f in sf if plan.fams[f].disc], nb))
    c_rows = np.zeros((nb, n))
    Fg, Qg = [], []
    for f in sf:
        o = plan.offsets[slice_name(f)]
        d = graph[slice_name(f)].dim
        c_rows[:, o:o + d] = _covariate_mean(plan, f, cpds[graph[f].param], cfgs[f])
    L_rows = []
    for r0 in first_rows:
        bmat = np.eye(n)
        wmat = np.zeros((n, n))
        psi = np.zeros((n, n))
        for f in sf:
            cpd = cpds[graph[f].param]
            c = int(cfgs[f][r0])
            o = plan.offsets[slice_name(f)]
            d = graph[slice_name(f)].dim
            load = _state_loadings(plan, f, cpd, c, width)
            bmat[o:o + d] -= load[:, cur:cur + n]
            if later:
                wmat[o:o + d] = load[:, :n]
            psi[o:o + d, o:o + d] = cpd.cov[c]
        lmat = np.linalg.inv(bmat)  # unit lower triangular in topological order: exact and tiny
        L_rows.append(lmat)
        Fg.append(lmat @ wmat)
        q = lmat @ psi @ lmat.T
        Qg.append(0.5 * (q + q.T))
    Lg = np.array(L_rows) if L_rows else np.eye(n)[None]
    u = np.einsum("nij,nj->ni", _shared(Lg, group), c_rows) if nb else np.zeros((0, n))
    F = _shared(np.array(Fg), group) if later and Fg else None
    Q = _shared(np.array(Qg), group) if Qg else np.eye(n)[None]
    # ---- observations: y = H s + d + e, stacked over the observed gaussian families
    of = plan.blocks[block]["obs"]
    dims = [graph[slice_name(f)].dim for f in of]
    D = int(sum(dims))
    ocfg = {f: _configs(plan, f) for f in of}
    keys = [ocfg[f] for f in of if plan.fams[f].disc] + [plan.miss[f] for f in of if plan.miss[f].any()]
    ofirst, ogroup = _cached(plan, ("observation groups", block), lambda: _groups(keys, nb))
    y = np.zeros((nb, D))
    dmean = np.zeros((nb, D))
    mask = np.ones((nb, D), dtype=bool)
    k = 0
    for f, d in zip(of, dims):
        vals = enc.values.get(slice_name(f))
        if vals is not None:
            y[:, k:k + d] = np.nan_to_num(vals[rows], nan=0.0)
        dmean[:, k:k + d] = _covariate_mean(plan, f, cpds[graph[f].param], ocfg[f])
        mask[:, k:k + d] = ~plan.miss[f]
        k += d
    r = np.where(mask, y - dmean, 0.0)
    Hg, Rg, Jg, RHg = [], [], [], []
    for r0 in ofirst:
        hmat = np.zeros((D, n))
        rmat = np.zeros((D, D))
        k = 0
        for f, d in zip(of, dims):
            cpd = cpds[graph[f].param]
            c = int(ocfg[f][r0])
            hmat[k:k + d] = _state_loadings(plan, f, cpd, c, width)[:, cur:cur + n]
            rmat[k:k + d, k:k + d] = cpd.cov[c]
            k += d
        keep = mask[r0]
        hmat[~keep] = 0.0
        rmat[~keep] = 0.0
        rmat[:, ~keep] = 0.0
        rmat[~keep, ~keep] = 1.0
        chol = np.linalg.cholesky(rmat) if D else np.zeros((0, 0))
        rh = np.linalg.solve(chol.T, np.linalg.solve(chol, hmat)) if D else np.zeros((0, n))   # R^-1 H
        Hg.append(hmat)
        Rg.append(rmat)
        RHg.append(rh)
        Jg.append(0.5 * (hmat.T @ rh + (hmat.T @ rh).T))
    H = _shared(np.array(Hg), ogroup)
    R = _shared(np.array(Rg), ogroup)
    J = _shared(np.array(Jg), ogroup)
    RH = np.array(RHg)
    h = r @ RH[0] if RH.shape[0] == 1 else np.einsum("nDk,nD->nk", RH[ogroup], r)
    # ---- discrete families: constant terms
    const = np.zeros(nb)
    for f in plan.blocks[block]["disc"]:
        assign = _disc_assign(plan, f)
        const += np.asarray(family_log_prob(plan.fams[f], cpds[graph[f].param], assign, nb, plan.cache)).reshape(nb)
    return Model(F, u, Q, H, R, r, J, h, mask.sum(axis=1), const)


def _disc_assign(plan: KalmanPlan, f: str) -> dict[str, np.ndarray]:
    enc = plan.data.enc
    out = {}
    for m, s in plan.members[f].items():
        out[m] = enc.codes[s.base][s.rows] if s.kind == "code" else enc.values[s.base][s.rows]
    return out


# ----------------------------------------------------------------------------------------- filter and smoother
@dataclass
class KalmanResult:
    log_likelihood: float
    sequence_log_likelihood: np.ndarray   # (S,) by rank
    row_log_likelihood: np.ndarray        # (N,) log p(row | earlier rows of its sequence), time-major
    mean: np.ndarray | None               # (N, n) smoothed means, time-major
    cov: np.ndarray | None                # (N, n, n) smoothed covariances
    cross: np.ndarray | None              # (N - n0, n, n) Cov(s_t, s_{t-1} | all) of each later row
    models: dict[str, Model]


def _bt(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _at(a: np.ndarray, s: int, e: int) -> np.ndarray:
    return a if a.shape[0] == 1 else a[s:e]


def _shared_model(first: Model, later: Model) -> bool:
    """Every row's transition and observation noise are the same (no per-row configuration and no
    per-row missingness): the covariances then depend on the step only, not on the sequence."""
    return (first.J.shape[0] <= 1 and first.Q.shape[0] <= 1 and later.J.shape[0] <= 1 and later.Q.shape[0] <= 1
            and (later.F is None or later.F.shape[0] <= 1))


def kalman(plan: KalmanPlan, cpds: dict[str, CPD], *, smooth: bool = True) -> KalmanResult:
    """Kalman filter (and with ``smooth`` the RTS smoother) of every sequence at once."""
    data = plan.data
    n, N, n0 = plan.n, data.n_rows, plan.n0
    first = block_model(plan, cpds, "first")
    later = block_model(plan, cpds, "later")
    shared = _shared_model(first, later)
    if shared:
        steps = _step_covariances(plan, first, later)
        mp, Pp, m, P = _forward_shared(plan, first, later, steps)
    else:
        mp, Pp, m, P = _forward_rows(plan, first, later)
    row_ll = np.empty(N)
    if shared:  # one observation model for every row: the innovation covariances per step
        row_ll[:n0] = _innovations(first, mp[:n0], steps.pred[:1], np.zeros(n0, dtype=np.int64))
        row_ll[n0:] = _innovations(later, mp[n0:], steps.pred, steps.step[n0:])
    else:
        row_ll[:n0] = _innovations(first, mp[:n0], Pp[:n0])
        row_ll[n0:] = _innovations(later, mp[n0:], Pp[n0:])
    seq_ll = np.bincount(data.rank, weights=row_ll, minlength=data.n_sequences) if N else np.zeros(0)
    total = float(seq_ll.sum())
    models = {"first": first, "later": later}
    if not smooth:
        return KalmanResult(total, seq_ll, row_ll, None, None, None, models)
    if N == n0:
        return KalmanResult(total, seq_ll, row_ll, m, P, np.zeros((0, n, n)), models)
    if shared:
        ms, Ps, gain = _smooth_shared(plan, later, steps, mp, m, P)
    else:
        ms, Ps, gain = _smooth_rows(plan, later, mp, Pp, m, P)
    cross = Ps[n0:] @ _bt(gain)
    return KalmanResult(total, seq_ll, row_ll, ms, Ps, cross, models)


def _update(pp: np.ndarray, J: np.ndarray) -> np.ndarray:
    """The filtered covariance (I + P^- J)^{-1} P^-, symmetrised."""
    pt = np.linalg.solve(np.eye(pp.shape[-1]) + pp @ J, pp)
    return 0.5 * (pt + _bt(pt))


def _forward_rows(plan: KalmanPlan, first: Model, later: Model) -> tuple[np.ndarray, ...]:
    """The filter with per-row matrices: every running sequence updated together, step by step
    (a shared transition, the common case with missing cells, is applied as plain 2-d products)."""
    data = plan.data
    n, N, n0 = plan.n, data.n_rows, plan.n0
    off = [int(v) for v in data.offsets]
    mp = np.empty((N, n))
    Pp = np.empty((N, n, n))
    m = np.empty((N, n))
    P = np.empty((N, n, n))
    eye = np.eye(n)
    mp[:n0] = first.u
    Pp[:n0] = first.Q
    P[:n0] = _update(Pp[:n0], first.J)
    m[:n0] = first.u + np.matmul(P[:n0], (first.h - np.matmul(first.J, first.u[:, :, None])[:, :, 0])[:, :, None])[:, :, 0]
    if N == n0:
        return mp, Pp, m, P
    fixed = later.F.shape[0] == 1 and later.Q.shape[0] == 1
    if fixed:
        F0, FT, Q0 = later.F[0], later.F[0].T, later.Q[0]
    J, shared_j = later.J, later.J.shape[0] == 1
    for t in range(1, len(off) - 1):
        s, e = off[t], off[t + 1]
        ps = off[t - 1]
        pe = ps + e - s
        a, b = s - n0, e - n0
        if fixed:
            mpt = m[ps:pe] @ FT + later.u[a:b]
            pp = F0 @ P[ps:pe] @ FT + Q0
        else:
            Ft = _at(later.F, a, b)
            mpt = np.matmul(Ft, m[ps:pe, :, None])[:, :, 0] + later.u[a:b]
            pp = Ft @ P[ps:pe] @ _bt(Ft) + _at(later.Q, a, b)
        Jt = J if shared_j else J[a:b]
        pt = np.linalg.solve(eye + pp @ Jt, pp)
        pt = 0.5 * (pt + pt.transpose(0, 2, 1))
        g = later.h[a:b] - (mpt @ J[0] if shared_j else np.matmul(Jt, mpt[:, :, None])[:, :, 0])  # J symmetric
        mp[s:e] = mpt
        Pp[s:e] = pp
        P[s:e] = pt
        m[s:e] = mpt + np.matmul(pt, g[:, :, None])[:, :, 0]
    return mp, Pp, m, P


@dataclass
class Steps:
    """Covariances that depend on the step only (shared model), kept for the distinct steps: the
    recursion reaches its fixed point (to rounding) after some steps K, and every later step has
    the covariances of step K - 1."""

    pred: np.ndarray          # (K, n, n) predicted covariance of steps 0..K-1
    filt: np.ndarray          # (K, n, n) filtered covariance
    step: np.ndarray          # (N,) each row's index into pred/filt: min(step, K - 1)
    pair: np.ndarray          # (N - n0,) each later row's index into the gains: min(step, K)

    @property
    def K(self) -> int:
        return len(self.pred)


def _step_covariances(plan: KalmanPlan, first: Model, later: Model) -> Steps:
    """The covariance recursion once per step (not per sequence), until it reaches its fixed point
    (to rounding): from there on every step has the same predicted and filtered covariances."""
    data = plan.data
    T, n = data.n_steps, plan.n
    pred = [first.Q[0]]
    filt = [_update(first.Q[:1], first.J[:1] if len(first.J) else np.zeros((1, n, n)))[0]]
    if T > 1:
        F, Q, J = later.F[0], later.Q[0], later.J[0]
        eye = np.eye(n)
        for t in range(1, T):
            pp = F @ filt[t - 1] @ F.T + Q
            pt = np.linalg.solve(eye + pp @ J, pp)
            pred.append(pp)
            filt.append(0.5 * (pt + pt.T))
            if t > 1 and np.abs(filt[t] - filt[t - 1]).max() <= 1e-15 * np.abs(filt[t]).max() \
                    and np.abs(pred[t] - pred[t - 1]).max() <= 1e-15 * np.abs(pred[t]).max():
                break
    K = len(pred)
    step = np.repeat(np.arange(T), np.diff(data.offsets))
    n0 = plan.n0
    return Steps(np.array(pred), np.array(filt), np.minimum(step, K - 1), np.minimum(step[n0:], K))


def _forward_shared(plan: KalmanPlan, first: Model, later: Model, steps: Steps) -> tuple[np.ndarray, ...]:
    """The filter's means with the step covariances known: ``m_t = M_t m_{t-1} + v_t`` with
    ``M_t = (I - P_t J) F`` per step and ``v_t = (I - P_t J) u_t + P_t h_t`` per row, both computed
    before the loop, which then costs one product per step.  The covariances stay per step (the
    predicted ones are not formed per row: ``None``)."""
    data = plan.data
    n, N, n0 = plan.n, data.n_rows, plan.n0
    off = [int(v) for v in data.offsets]
    eye = np.eye(n)
    P = steps.filt[steps.step]
    m = np.empty((N, n))
    mp = np.empty((N, n))
    mp[:n0] = first.u
    J0 = first.J[0] if len(first.J) else np.zeros((n, n))
    m[:n0] = first.u + (first.h - first.u @ J0.T) @ steps.filt[0].T
    if N > n0:
        J, F = later.J[0], later.F[0]
        keep = eye[None] - steps.filt @ J                                   # (K, n, n)
        trans = keep @ F                                                    # M_t
        st = steps.step[n0:]
        v = np.einsum("rij,rj->ri", keep[st], later.u) + np.einsum("rij,rj->ri", steps.filt[st], later.h)
        last = steps.K - 1
        for t in range(1, len(off) - 1):
            s, e = off[t], off[t + 1]
            ps = off[t - 1]
            m[s:e] = m[ps:ps + e - s] @ trans[min(t, last)].T + v[s - n0:e - n0]
        mp[n0:] = m[data.prev_rows] @ F.T + later.u
    return mp, None, m, P


def _smooth_rows(plan: KalmanPlan, later: Model, mp: np.ndarray, Pp: np.ndarray, m: np.ndarray,
                 P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RTS smoother with per-row gains (all computed at once before the loop)."""
    data = plan.data
    n0 = plan.n0
    off = [int(v) for v in data.offsets]
    # smoother gains of every (previous row, row) pair at once: G = P_prev F^T (P^-)^{-1}
    gain = _bt(np.linalg.solve(Pp[n0:], later.F @ P[data.prev_rows]))
    ms = m.copy()
    Ps = P.copy()
    for t in range(len(off) - 2, 0, -1):
        s, e = off[t], off[t + 1]
        ps = off[t - 1]
        pe = ps + e - s
        gt = gain[s - n0:e - n0]
        ms[ps:pe] += np.matmul(gt, (ms[s:e] - mp[s:e])[:, :, None])[:, :, 0]
        Ps[ps:pe] += gt @ (Ps[s:e] - Pp[s:e]) @ _bt(gt)
    return ms, 0.5 * (Ps + _bt(Ps)), gain


def _smooth_shared(plan: KalmanPlan, later: Model, steps: Steps, mp: np.ndarray, m: np.ndarray,
                   P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RTS smoother with one gain per step: mean and covariance as one vector
    ``x = [m, vec(P)]`` with ``x_{t-1} = x_t B_t + c`` (``B_t`` = blockdiag(G^T, (G (x) G)^T) per
    step, ``c`` per row computed before the loop): one product per step."""
    data = plan.data
    n, N, n0 = plan.n, data.n_rows, plan.n0
    off = [int(v) for v in data.offsets]
    K = steps.K
    F = later.F[0]
    # G_k = P_{k-1} F^T (P^-_k)^-1 for the steps k = 1..K-1, and G_K for every step from K on
    pred_k = np.concatenate([steps.pred[1:], steps.pred[K - 1:]])
    filt_k = steps.filt
    gsteps = np.zeros((K + 1, n, n))
    gsteps[1:] = _bt(np.linalg.solve(pred_k, F @ filt_k))
    st = steps.pair
    prev = data.prev_rows
    w = n + n * n
    # the constant part of each (previous row, row) pair: m_prev - G mp, P_prev - G P^- G^T
    konst = np.empty((N - n0, w))
    konst[:, :n] = m[prev] - np.einsum("rij,rj->ri", gsteps[st], mp[n0:])
    kcov = np.zeros((K + 1, n, n))
    kcov[1:] = filt_k - gsteps[1:] @ pred_k @ _bt(gsteps[1:])
    konst[:, n:] = kcov[st].reshape(-1, n * n)
    big = np.zeros((K + 1, w, w))
    big[:, :n, :n] = _bt(gsteps)
    big[:, n:, n:] = _bt(np.einsum("tij,tkl->tikjl", gsteps, gsteps).reshape(K + 1, n * n, n * n))
    x = np.empty((N, w))
    x[:, :n] = m
    x[:, n:] = P.reshape(N, n * n)
    for t in range(len(off) - 2, 0, -1):
        s, e = off[t], off[t + 1]
        ps = off[t - 1]
        x[ps:ps + e - s] = x[s:e] @ big[min(t, K)] + konst[s - n0:e - n0]
    Ps = x[:, n:].reshape(N, n, n)
    return x[:, :n].copy(), 0.5 * (Ps + _bt(Ps)), gsteps[st]


def _innovations(model: Model, mp: np.ndarray, Pp: np.ndarray, step: np.ndarray | None = None) -> np.ndarray:
    """log N(r - H m^-; 0, H P^- H^T + R) per row, the masked components' -log(2 pi)/2 added back.

    ``Pp`` holds each row's predicted covariance, or with ``step`` one per step (a shared model):
    then the innovation covariance is factored once per step and the rows are whitened in blocks."""
    if not len(mp):
        return np.zeros(0)
    if model.H.shape[1] == 0:
        return model.const.copy()
    H = model.H
    S = H @ Pp @ _bt(H) + model.R
    S = 0.5 * (S + _bt(S))
    resid = model.r - np.matmul(H, mp[:, :, None])[:, :, 0] if H.shape[0] > 1 else model.r - mp @ H[0].T
    try:
        chol = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise ModelError("an innovation covariance of the Kalman filter is not positive definite; increase "
                         "reg_covar") from None
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if step is None:
        z = np.linalg.solve(chol, resid[:, :, None])[:, :, 0]
        return -0.5 * (model.n_obs * LOG_2PI + logdet + np.einsum("nd,nd->n", z, z)) + model.const
    # one triangular solve per step gives the whitening L^-1 (L: the Cholesky factor of S, well
    # conditioned by R), applied to the rows in bounded blocks
    white = np.linalg.solve(chol, np.broadcast_to(np.eye(S.shape[-1]), S.shape))
    maha = np.empty(len(mp))
    for a in range(0, len(mp), STAT_ROWS):
        sl = slice(a, a + STAT_ROWS)
        z = np.einsum("rij,rj->ri", white[step[sl]], resid[sl])
        maha[sl] = np.einsum("nd,nd->n", z, z)
    return -0.5 * (model.n_obs * LOG_2PI + logdet[step] + maha) + model.const


# ----------------------------------------------------------------------------------------- statistics
def _w_mean(plan: KalmanPlan, res: KalmanResult, block: str) -> np.ndarray:
    """Posterior mean of w = [s_prev, s_cur] (later block) or s (first block) per block row."""
    n0 = plan.n0
    if block == "first":
        return res.mean[:n0]
    return np.concatenate([res.mean[plan.data.prev_rows], res.mean[n0:]], axis=1)


def family_moments(plan: KalmanPlan, cpds: dict[str, CPD], f: str,
                   wmean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The family's ``z = [continuous parents, child]`` as an affine map of ``w`` per block row:
    ``(configs (rows,), E[z] (rows, k), Z (1 or rows, k, width), extra (rows, k, k) or None)`` with
    ``Cov[z] = Z Cov[w] Z^T + extra`` (``extra``: the conditional covariance of missing components)."""
    graph = plan.graph
    fam = plan.fams[f]
    src = plan.members[f]
    enc = plan.data.enc
    nb, width = wmean.shape
    cfg = _configs(plan, f)
    names = fam.cont + (f,)
    dims = [graph[src[v].base].dim for v in names]
    k = int(sum(dims))
    Z = np.zeros((k, width))
    z0 = np.zeros((nb, k))
    col = 0
    for v, d in zip(names[:-1], dims[:-1]):
        s = src[v]
        if s.kind == "state":
            Z[col:col + d, s.offset:s.offset + d] = np.eye(d)
        else:
            z0[:, col:col + d] = enc.values[s.base][s.rows]
        col += d
    d = dims[-1]
    s = src[f]
    extra = None
    zmat = Z[None]
    if s.kind == "state":
        Z[col:, s.offset:s.offset + d] = np.eye(d)
    else:
        gone = plan.miss[f]
        y = enc.values.get(s.base)
        yv = np.zeros((nb, d)) if y is None else np.nan_to_num(y[s.rows], nan=0.0)
        if not gone.any():
            z0[:, col:] = yv
        else:  # missing components: their mean given the state and the observed components
            cpd = cpds[graph[f].param]
            dmean = _covariate_mean(plan, f, cpd, cfg)
            first_rows, group = _cached(plan, ("missing groups", f), lambda: _groups([cfg, gone], nb))
            zg, cg, gg = [], [], []
            for r0 in first_rows:
                keep = ~gone[r0]
                R = cpd.cov[int(cfg[r0])]
                Rm = np.where(np.outer(keep, keep), R, 0.0) + np.diag((~keep).astype(float))
                # R M Rm^-1 M: rows of observed components give the identity, missing ones R_mo R_oo^-1
                gain = np.where(keep[None, :], R, 0.0) @ np.linalg.solve(Rm, np.diag(keep.astype(float)))
                zk = Z.copy()
                zk[col:] = (np.eye(d) - gain) @ _state_loadings(plan, f, cpd, int(cfg[r0]), width)
                zg.append(zk)
                cres = R - gain @ R
                cg.append(0.5 * (cres + cres.T))
                gg.append(gain)
            gains = np.array(gg)[group]
            z0[:, col:] = np.einsum("nij,nj->ni", np.eye(d)[None] - gains, dmean) + \
                np.einsum("nij,nj->ni", gains, yv)
            zmat = np.array(zg)[group]
            extra = np.zeros((nb, k, k))
            extra[:, col:, col:] = np.array(cg)[group]
    if zmat.shape[0] == 1:
        mean = wmean @ zmat[0].T + z0
    else:
        mean = np.einsum("nkw,nw->nk", zmat, wmean) + z0
    return cfg, mean, zmat, extra


def _w_cov(plan: KalmanPlan, res: KalmanResult, block: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Posterior covariance of w = [s_prev, s_cur] of the block's rows ``rows``: (rows, width, width)."""
    n0, n = plan.n0, plan.n
    if block == "first":
        return res.cov[:n0][rows]
    prev = plan.data.prev_rows[rows]
    cur = res.cov[n0:][rows]
    cross = res.cross[rows]
    cov = np.empty((len(cur), 2 * n, 2 * n))
    cov[:, :n, :n] = res.cov[prev]
    cov[:, n:, n:] = cur
    cov[:, n:, :n] = cross
    cov[:, :n, n:] = _bt(cross)
    return cov


def _cov_sums(plan: KalmanPlan, res: KalmanResult, block: str, cfg: np.ndarray, n_configs: int,
              zmat: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
    """sum over the block's rows of Cov[z] per configuration: (C, k, k), in bounded memory."""
    nb = len(cfg)
    k = zmat.shape[1]
    out = np.zeros((n_configs, k, k))
    if zmat.shape[0] == 1:  # one map for every row: sum Cov[w] per configuration first
        width = zmat.shape[2]
        wsum = np.zeros((n_configs, width, width))
        for a in range(0, nb, STAT_ROWS):
            part = _w_cov(plan, res, block, slice(a, a + STAT_ROWS))
            _add_by_config(wsum, cfg[a:a + STAT_ROWS], part)
        out = zmat[0] @ wsum @ zmat[0].T
    else:
        for a in range(0, nb, STAT_ROWS):
            sl = slice(a, a + STAT_ROWS)
            z = zmat[sl]
            part = z @ _w_cov(plan, res, block, sl) @ _bt(z)
            _add_by_config(out, cfg[sl], part)
    if extra is not None:
        _add_by_config(out, cfg, extra)
    return out


def _add_by_config(out: np.ndarray, cfg: np.ndarray, part: np.ndarray) -> None:
    """out[c] += the sum of ``part`` over the rows of configuration c."""
    if len(out) == 1:
        out[0] += part.sum(axis=0)
    else:
        flat = part.reshape(len(part), -1)
        out += np.stack([np.bincount(cfg, weights=flat[:, j], minlength=len(out)) for j in range(flat.shape[1])],
                        axis=1).reshape(out.shape)


def kalman_stats(plan: KalmanPlan, cpds: dict[str, CPD], res: KalmanResult) -> dict[str, Stats]:
    """Expected complete-data statistics of every family (by family name)."""
    out: dict[str, Stats] = {}
    for block in ("first", "later"):
        fams_ = plan.blocks[block]
        nb = len(plan.rows(block))
        if not nb:
            continue
        wmean = _w_mean(plan, res, block)
        for f in fams_["state"] + fams_["obs"]:
            fam = plan.fams[f]
            cfg, mean, zmat, extra = family_moments(plan, cpds, f, wmean)
            st = gauss_stats(mean, cfg if fam.disc else 0, fam.n_configs)
            covs = _cov_sums(plan, res, block, cfg, fam.n_configs, zmat, extra)
            out[f] = GaussStats(st.weight, st.mean, st.scatter + covs)
        for f in fams_["disc"]:
            out[f] = family_stats(plan.fams[f], _disc_assign(plan, f), nb, np.ones(nb), plan.cache)
    return out


def node_moments(plan: KalmanPlan, cpds: dict[str, CPD], res: KalmanResult,
                 node: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (N, d) and covariance (N, d, d) of a slice gaussian node per time-major row
    (an observed cell is its own answer, covariance 0; a missing one its smoothed conditional)."""
    N = plan.data.n_rows
    if node in plan.state:
        o, d = plan.offsets[node], plan.graph[node].dim
        return res.mean[:, o:o + d].copy(), res.cov[:, o:o + d, o:o + d].copy()
    d = plan.graph[node].dim
    mean = np.zeros((N, d))
    cov = np.zeros((N, d, d))
    for block, f in (("first", node + PREV), ("later", node)):
        rows = plan.rows(block)
        if not len(rows):
            continue
        _, zm, zmat, extra = family_moments(plan, cpds, f, _w_mean(plan, res, block))
        zc = zmat[:, -d:] @ _w_cov(plan, res, block) @ _bt(zmat[:, -d:])
        if extra is not None:
            zc = zc + extra[:, -d:, -d:]
        keep = ~plan.miss[f]
        vals = plan.data.enc.values.get(node)
        zm = zm[:, -d:]
        if vals is not None:  # an observed cell is its own answer, exactly
            zm = np.where(keep, np.nan_to_num(vals[rows]), zm)
        mean[rows] = zm
        cov[rows] = np.where(~keep[:, :, None] & ~keep[:, None, :], zc, 0.0)   # +0.0, not -0.0, where seen
    return mean, cov

