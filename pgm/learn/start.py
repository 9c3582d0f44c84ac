"""Where EM starts: random parameters that break symmetry, k-means++ for mixtures, and checks of
a given start.

Every function here sees the data only through sums over rows (the statistics of the observed
families, the moments of the gaussian columns, a winner of a race between rows) and draws its
random numbers from the seed and the model, or from a hash of a row's values: so the start is the
same whether the rows are in memory, read in chunks, or spread over Dask partitions (a data source's
``map_sum(fn, *args)`` sums ``fn(part, *args)`` over its in-memory parts, see
:class:`pgm.learn.em.InMemory`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from pgm.cpd.family import CPD, Family, Stats, kind_of
from pgm.cpd.linear import GaussStats, LinearCPD, gauss_stats, standard_cpd
from pgm.cpd.table import TableCPD, TableStats
from pgm.errors import ConvergenceWarning, DataWarning, ModelError, PGMError
from pgm.graph import Graph
from pgm.infer.posterior import Posterior
from pgm.learn.mle import fit_from_stats
from pgm.learn.stats import StatsSum, add_stats, pool_stats

#: A latent node whose states give its children the same distributions to this (absolute)
#: tolerance is "interchangeable": EM cannot separate its states from there.
SYMMETRY_TOL = 1e-6
#: A run that converges within this many updates at interchangeable latent states was started at
#: (or next to) a stationary point, and is reported.
FEW_ITERATIONS = 5


def marginal_stats(source: Any, names: tuple[str, ...]) -> StatsSum:
    """Weighted mean and scatter of each named gaussian node's observed values (one configuration)."""
    data = source.data
    out: dict[str, Stats] = {}
    for name in names:
        values = data.values.get(name)
        if values is None:
            continue
        ok = np.isfinite(values).all(axis=1)
        w = None if data.weights is None else data.weights[ok]
        out[name] = gauss_stats(values[ok], 0, 1, weights=w)
    return StatsSum(out)


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic): a well-spread 64-bit hash."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def row_uniforms(x: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in (0, 1) for each row of ``x`` (n, d): a hash of the row's values and ``salt``.

    It depends on nothing else (not the row's position, nor the other rows), so a sample drawn
    with it is the same however the rows are split into chunks or partitions."""
    bits = np.ascontiguousarray(x + 0.0, dtype=np.float64).view(np.uint64)  # + 0.0: -0.0 hashes as 0.0
    h = np.full(len(x), np.uint64(salt))
    for j in range(bits.shape[1]):
        h = _mix64(h ^ _mix64(bits[:, j] + np.uint64((j + 1) * 0x9E3779B97F4A7C15 % 2 ** 64)))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


@dataclass
class Candidate:
    """The best row so far of a weighted draw by exponential race (Efraimidis & Spirakis 2006):
    row i wins with probability w_i / sum(w) when its key is log(u_i) / w_i and the largest key wins.
    ``any_key`` / ``any_row`` race with equal weights (used when every weight is zero)."""

    key: float = -np.inf
    row: np.ndarray | None = None
    any_key: float = -np.inf
    any_row: np.ndarray | None = None

    def __add__(self, other: "Candidate") -> "Candidate":
        a = self if self.key >= other.key else other
        b = self if self.any_key >= other.any_key else other
        return Candidate(a.key, a.row, b.any_key, b.any_row)


def kmeanspp_candidate(source: Any, kids: tuple[str, ...], centres: np.ndarray, salt: int) -> Candidate:
    """This part's winner of the k-means++ draw of the next centre: rows weighted by their weight
    times their squared distance to the nearest centre so far (their weight alone for the first
    centre); rows with a missing cell in ``kids`` take no part.  Identical rows share their hash,
    so they count once (with the largest weight among them)."""
    data = source.data
    if any(k not in data.values for k in kids):
        return Candidate()
    x = np.hstack([data.values[k] for k in kids])
    ok = np.isfinite(x).all(axis=1)
    x = x[ok]
    w = np.ones(len(x)) if data.weights is None else data.weights[ok]
    if not len(x):
        return Candidate()
    logu = np.log(row_uniforms(x, salt))
    i = int(np.argmax(logu))
    out = Candidate(any_key=float(logu[i]), any_row=x[i].copy())
    d2 = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0) if len(centres) else np.ones(len(x))
    weight = w * d2
    with np.errstate(divide="ignore"):
        key = np.where(weight > 0, logu / np.where(weight > 0, weight, 1.0), -np.inf)
    j = int(np.argmax(key))
    if np.isfinite(key[j]):
        out.key, out.row = float(key[j]), x[j].copy()
    return out


def mixture_of(graph: Graph) -> tuple[str, tuple[str, ...]] | None:
    """(z, its children) when the model is a mixture k-means++ can start: one discrete latent node
    z whose children are untied gaussian nodes with z as their only discrete parent."""
    latent = graph.latent
    if len(latent) != 1 or not graph[latent[0]].discrete:
        return None
    z = latent[0]
    kids = tuple(c for c in graph.order if z in graph[c].parents)
    if not kids:
        return None
    for name in (z,) + kids:
        if graph.params[graph[name].param] != (name,):
            return None
    if any(graph[c].discrete or graph.families[c].disc != (z,) for c in kids):
        return None
    return z, kids


def _data_moments(graph: Graph, members: tuple[str, ...], marginals: dict[str, Stats],
                  dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the observed values of ``members`` pooled (zero and identity without any)."""
    total = None
    for m in members:
        st = marginals.get(m)
        if st is not None and st.weight[0] > 0:
            total = st if total is None else total + st
    if total is None:
        return np.zeros(dim), np.eye(dim)
    cov = total.scatter[0] / total.weight[0]
    scale = float(np.trace(cov)) / dim
    return total.mean[0], cov + 1e-6 * (scale if scale > 0 else 1.0) * np.eye(dim)


def _has_weight(st: Stats | None) -> bool:
    if st is None:
        return False
    if isinstance(st, TableStats):
        return bool(st.counts.sum() > 0)
    if isinstance(st, GaussStats):
        return bool(st.weight.sum() > 0)
    return bool(st.targets.sum() > 0)


def random_start(graph: Graph, const: dict[str, Stats], marginals: dict[str, Stats],
                 rng: np.random.Generator, *, prior: dict | None = None, reg_covar: float = 1e-6,
                 penalty: float | None = None) -> dict[str, CPD]:
    """Starting parameters: random for the hidden families, smoothed available-case for the others.

    A parameter set is *hidden* when a latent node is among the members of one of its families, or
    when no row observes a whole family of it.  Hidden tables are Dirichlet(1) draws, floored; hidden
    gaussians have means drawn around their data's mean with the data's covariance; hidden logistic
    CPDs standard normal weights.  The other sets are fitted on the rows that observe their whole
    family (``const``), tables with a random pseudo-count in [0.5, 1.5) added to every cell, so that
    no observed configuration gets probability zero.  Everything depends only on the model, the
    statistics summed over every row, and ``rng``: not on how the rows are split into chunks."""
    cpds: dict[str, CPD] = {}
    observed: dict[str, Stats] = {}
    moments = lambda names, dim: _data_moments(graph, names, marginals, dim)  # noqa: E731
    for key, members in graph.params.items():
        fam = graph.families[members[0]]
        hidden = any(graph[m].latent for name in members for m in graph.families[name].members)
        st = const.get(key)
        if graph.is_standard(fam.name):  # fixed at N(0, I)
            cpds[key] = standard_cpd(fam, graph.spec.nodes[fam.var.decl].covariance)
        elif not hidden and _has_weight(st):
            if isinstance(st, TableStats):
                st = TableStats(st.counts + 0.5 + rng.random(st.counts.shape))
            observed[key] = st
        else:
            cpds[key] = kind_of(fam).random_start(graph, fam, moments, rng, reg_covar)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpds.update(fit_from_stats(graph, observed, prior=prior, reg_covar=reg_covar, penalty=penalty,
                                   warn_unseen=False))
    return {key: cpds[key] for key in graph.params}


def kmeanspp_centres(source: Any, kids: tuple[str, ...], k: int, rng: np.random.Generator) -> np.ndarray | None:
    """k centres over the concatenated values of ``kids`` by k-means++ (Arthur & Vassilvitskii 2007),
    one pass over the source per centre; None when no row has every value."""
    centres: list[np.ndarray] = []
    for _ in range(k):
        salt = int(rng.integers(2 ** 63))
        won = source.map_sum(kmeanspp_candidate, kids, np.array(centres), salt)
        row = won.row if won.row is not None else won.any_row
        if row is None:
            return None
        centres.append(row)
    return np.array(centres)


def kmeanspp_start(graph: Graph, source: Any, const: dict[str, Stats],
                   cpds: dict[str, CPD], mixture: tuple[str, tuple[str, ...]], rng: np.random.Generator,
                   **opts: Any) -> dict[str, CPD]:
    """The parameters fitted to each row's nearest k-means++ centre (scikit-learn's k-means++ start).

    The nearest centre is the hard E-step of a model with equal weights and unit covariances at the
    centres; the other parameter sets keep their random start for that step."""
    z, kids = mixture
    k = graph[z].n_states
    centres = kmeanspp_centres(source, kids, k, rng)
    if centres is None:
        return cpds
    seeded = dict(cpds)
    seeded[graph[z].param] = TableCPD(np.full((graph.families[z].n_configs, k), 1.0 / k))
    col = 0
    for c in kids:
        d = graph[c].dim
        seeded[graph[c].param] = LinearCPD(centres[:, col:col + d], np.zeros((k, d, graph.families[c].cont_dim)),
                                           np.broadcast_to(np.eye(d), (k, d, d)).copy())
        col += d
    try:
        es = source.e_step(seeded, Posterior.HARD)
    except ModelError:  # hidden components too large to list: keep the random start
        return cpds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        fitted = fit_from_stats(graph, add_stats(const, pool_stats(graph, es.stats.items())), warn_unseen=False, **opts)
    return {**cpds, **fitted}


def check_start(graph: Graph, cpds: Any) -> dict[str, CPD]:
    """``cpds`` as starting parameters of ``graph``, or a PGMError saying what would fit."""
    fix = ("pass a model fitted on this same graph (pgm.fit on this declaration, or pgm.load of its fitted "
           "file), or init='auto' / 'random'")
    if not isinstance(cpds, dict):
        raise PGMError(f"init must be 'auto', 'random', 'kmeans++' or a fitted model, got {type(cpds).__name__}")
    missing = [k for k in graph.params if k not in cpds]
    extra = [k for k in cpds if k not in graph.params]
    if extra or missing:
        parts = ([f"parameters {extra[:5]} that this model does not have"] if extra else []) + \
                ([f"no parameters for {missing[:5]}"] if missing else [])
        raise PGMError(f"init= does not match this model's graph: it has {' and '.join(parts)}; {fix}")
    for key in graph.params:
        fam = graph.families[graph.params[key][0]]
        cpd = cpds[key]
        want, shapes = kind_of(fam).init_shapes(fam)
        if not isinstance(cpd, want):
            raise PGMError(f"init[{key!r}] is a {type(cpd).__name__}; this model needs a {want.__name__} there "
                           f"(shapes {shapes}); {fix}")
        for name, shape in shapes.items():
            got = np.shape(getattr(cpd, name))
            if got != shape:
                raise PGMError(f"init[{key!r}].{name} has shape {got}; this model needs {shape} (another "
                               f"graph's parameters?); {fix}")
        if isinstance(cpd, TableCPD):
            TableCPD.check(np.asarray(cpd.probs, dtype=float), f"init[{key!r}]")
    return dict(cpds)


def interchangeable(graph: Graph, cpds: dict[str, CPD]) -> list[str]:
    """Latent nodes whose every state gives every child the same distribution (to SYMMETRY_TOL).

    From such parameters EM keeps the states identical forever: a stationary point where the latent
    node explains nothing (a symmetric start, such as uniform tables, lands there at once)."""
    out = []
    for z in graph.latent:
        if not graph[z].discrete or graph[z].n_states < 2:
            continue
        kids = [c for c in graph.order if z in graph.families[c].disc]
        if kids and all(_same_across(graph.families[c], z, cpds[graph[c].param]) for c in kids):
            out.append(graph[z].decl)
    return sorted(set(out))


def _same_across(fam: Family, z: str, cpd: CPD) -> bool:
    """Whether ``cpd`` is the same for every state of the discrete parent ``z``."""
    return kind_of(fam).same_across(fam, fam.disc.index(z), cpd, SYMMETRY_TOL)


# ------------------------------------------------------------------ linear dynamical systems
#: Windows of at least this many complete steps are needed for the subspace start (else: random start).
MIN_WINDOWS = 10
#: The relative size of the perturbation of the subspace start in runs after the first.
JITTER = 0.1
#: The least number of past steps the subspace start projects the state on.
PAST = 3


def lds_of(graph: Graph) -> tuple[str, tuple[str, ...]] | None:
    """(s, its observed children) when a sequence model is a linear dynamical system the subspace
    start handles: one latent gaussian slice node ``s`` whose only parent is its previous step
    (first step without parents), and observed gaussian children in the step whose only parent is
    ``s`` (one CPD across both slices); no other hidden node.  None otherwise."""
    if not graph.sequence:
        return None
    state = [v for v in graph.slice if graph[v].latent]
    if len(state) != 1 or not graph[state[0]].gaussian:
        return None
    s = state[0]
    prev = next((n for n in graph.order if n != s and graph[n].decl == graph[s].decl), None)
    fam, first = graph.families[s], graph.families.get(prev) if prev is not None else None
    if first is None or fam.disc or fam.cont != (prev,) or first.disc or first.cont:
        return None
    if graph.params[graph[s].param] != (s,):
        return None
    kids = tuple(c for c in graph.slice if s in graph.families[c].cont)
    if not kids:
        return None
    for c in kids:
        cf = graph.families[c]
        if graph[c].latent or not graph[c].gaussian or cf.disc or cf.cont != (s,) or \
                len(graph.params[graph[c].param]) != 2:
            return None
    return s, kids


@dataclass
class WindowSums:
    """Sums over windows of consecutive steps of a sequence, every cell observed: ``n`` windows of
    ``lp + h + 1`` steps (sum ``s`` and cross-products ``ss`` of the stacked observations) anywhere in a
    sequence, and ``n0`` windows of ``h`` steps at a sequence's start (``s0``, ``ss0``).  Sums over
    rows of whole sequences: the same however the sequences are split into parts."""

    n: float
    s: np.ndarray
    ss: np.ndarray
    n0: float
    s0: np.ndarray
    ss0: np.ndarray

    def __add__(self, other: "WindowSums") -> "WindowSums":
        return WindowSums(self.n + other.n, self.s + other.s, self.ss + other.ss, self.n0 + other.n0,
                          self.s0 + other.s0, self.ss0 + other.ss0)


#: Windows stacked at once (bounds the memory of the start on one long sequence).
WINDOW_BLOCK = 65536


def window_sums(source: Any, kids: tuple[str, ...], h: int, lp: int) -> WindowSums:
    """This part's :class:`WindowSums` of the children's values stacked (``source.sequences``: a
    :class:`pgm.sequence.SequenceData`, time-major: step t of the sequence of rank r is row
    ``offsets[t] + r``)."""
    seq = source.sequences
    y = np.hstack([seq.enc.values[k] for k in kids])
    p, width = y.shape[1], lp + h + 1
    out = WindowSums(0.0, np.zeros(width * p), np.zeros((width * p, width * p)),
                     0.0, np.zeros(h * p), np.zeros((h * p, h * p)))
    lengths, offsets = np.asarray(seq.lengths), np.asarray(seq.offsets)
    count = np.maximum(lengths - width + 1, 0)
    rank = np.repeat(np.arange(len(lengths)), count)
    start = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    for lo in range(0, len(rank), WINDOW_BLOCK):
        r, t = rank[lo:lo + WINDOW_BLOCK], start[lo:lo + WINDOW_BLOCK]
        w = np.hstack([y[offsets[t + j] + r] for j in range(width)])
        w = w[np.isfinite(w).all(axis=1)]
        out.n += len(w)
        out.s += w.sum(axis=0)
        out.ss += w.T @ w
    r = np.flatnonzero(lengths >= h)
    w = np.hstack([y[offsets[j] + r] for j in range(h)])
    w = w[np.isfinite(w).all(axis=1)]
    out.n0, out.s0, out.ss0 = float(len(w)), w.sum(axis=0), w.T @ w
    return out


def lag_depth(k: int, p: int) -> tuple[int, int]:
    """Steps of future ``h`` and past ``lp`` in a window: enough future that a ``k``-dim state is
    seen in ``p``-dim observations after one step (``(h - 1) p >= k``), and a longer past (the
    state's projection on it is the better for it: its error goes to the noise estimates)."""
    h = -(-k // p) + 1
    return h, max(h, PAST)


def _floor_psd(m: np.ndarray, scale: float) -> np.ndarray:
    """``m`` symmetrised with its eigenvalues floored at 1e-3 * ``scale`` (a valid covariance)."""
    m = (m + m.T) / 2
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.maximum(vals, 1e-3 * scale)) @ vecs.T


def _root(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric square root of a positive definite ``m`` and its inverse."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    vals = np.maximum(vals, 1e-12 * max(float(vals.max()), 1e-300))
    return (vecs * np.sqrt(vals)) @ vecs.T, (vecs / np.sqrt(vals)) @ vecs.T


def _shaped(cov: np.ndarray, kind: str) -> np.ndarray:
    if kind == "diag":
        return np.diag(np.diag(cov))
    if kind == "spherical":
        return np.trace(cov) / len(cov) * np.eye(len(cov))
    return cov


def subspace_start(graph: Graph, lds: tuple[str, tuple[str, ...]], sums: WindowSums,
                   rng: np.random.Generator, jitter: bool) -> dict[str, CPD] | None:
    """A linear dynamical system's start from its observations (subspace identification, e.g. Van
    Overschee & De Moor 1996), or None when the windows do not determine one.

    The covariance H of the stacked future ``f_t = (y_t .. y_{t+h-1})`` with the stacked past
    ``p_t = (y_{t-h} .. y_{t-1})`` is O K: O = (C; CA; CA^2; ..) the observability matrix, K the
    covariance of the state with the past.  Its first k singular directions give K, hence the state's
    projection on the past x_t = K cov(p)^-1 (p_t - mean), whose moments (sums over the windows) give
    A, b and Q by least squares of x_{t+1} on x_t, and C, d and R by least squares of y_t on x_t;
    the first step's moments come from the futures at a sequence's start (x_0 = O^+ (f_0 - mean)).
    The state is then transformed so that its first step is N(0, I) when that step is standard.
    With ``jitter`` the transition and loadings are perturbed (relative size :data:`JITTER`) and the
    state rotated at random, so that the runs of ``n_init`` start from different points."""
    s, kids = lds
    k = graph[s].dim
    p = sum(graph[c].dim for c in kids)
    h, lp = lag_depth(k, p)
    if sums.n < max(MIN_WINDOWS, (lp + h + 1) * p) or sums.n0 < 1:
        return None
    mean = sums.s / sums.n
    cov = sums.ss / sums.n - np.outer(mean, mean)
    scale = float(np.trace(cov)) / len(cov)
    if not np.isfinite(scale) or scale <= 0:
        return None
    past, fut, nxt = slice(0, lp * p), slice(lp * p, (lp + h) * p), slice(p, (lp + 1) * p)
    cur_y, fut1 = slice(lp * p, (lp + 1) * p), slice((lp + 1) * p, (lp + 1 + h) * p)
    try:
        ridge = 1e-9 * scale * np.eye(lp * p)
        wf, wfi = _root(cov[fut, fut] + 1e-9 * scale * np.eye(h * p))
        wp, wpi = _root(cov[past, past] + ridge)
        u, sv, vt = np.linalg.svd(wfi @ cov[fut, past] @ wpi)              # canonical correlations
        if sv[k - 1] <= 1e-9 * sv[0]:
            return None
        obs = wf @ u[:, :k] * np.sqrt(sv[:k])                              # O
        gain = np.sqrt(sv[:k])[:, None] * vt[:k] @ wp                      # K
        proj = np.linalg.solve(cov[past, past] + ridge, gain.T).T          # x_t = proj (p_t - mean)
        back = np.linalg.pinv(obs)                                         # O^+
        gain1 = back @ cov[fut1, nxt]                                      # cov(x_{t+1}, p_{t+1}): not stationary
        proj1 = np.linalg.solve(cov[nxt, nxt] + ridge, gain1.T).T          # x_{t+1} from the next past
        p00 = proj @ cov[past, past] @ proj.T                              # cov(x_t)
        p11 = proj1 @ cov[nxt, nxt] @ proj1.T
        p10 = proj1 @ cov[nxt, past] @ proj.T                              # cov(x_{t+1}, x_t)
        a = p10 @ np.linalg.inv(p00)
        b = back @ (mean[fut1] - mean[fut])                                # mean(x_{t+1}); mean(x_t) = 0
        q = _floor_psd(p11 - a @ p00 @ a.T, float(np.trace(p11)) / k)
        c = cov[cur_y, past] @ proj.T @ np.linalg.inv(p00)
        d = mean[cur_y]
        r = cov[cur_y, cur_y] - c @ p00 @ c.T
        r = _floor_psd(r, float(np.trace(cov[cur_y, cur_y])) / p)
        m0f = sums.s0 / sums.n0
        c0 = sums.ss0 / sums.n0 - np.outer(m0f, m0f)
        m0 = back @ (m0f - mean[fut])
        p0 = _floor_psd(back @ c0 @ back.T, float(np.trace(p00)) / k)
    except np.linalg.LinAlgError:
        return None
    if jitter:
        a = a + JITTER * np.sqrt(np.mean(a ** 2)) * rng.standard_normal(a.shape)
        c = c @ (np.eye(k) + JITTER * rng.standard_normal((k, k)))
    prev = graph.families[s].cont[0]
    if graph.is_standard(prev):                                            # x = L x' + m0, x' ~ N(0, I)
        chol = np.linalg.cholesky(p0)
        if jitter:
            chol = chol @ np.linalg.qr(rng.standard_normal((k, k)))[0]
        inv = np.linalg.inv(chol)
        a, b, q = inv @ a @ chol, inv @ (a @ m0 + b - m0), inv @ q @ inv.T
        c, d = c @ chol, d + c @ m0
        m0, p0 = np.zeros(k), np.eye(k)
    if not all(np.isfinite(v).all() for v in (a, b, q, c, d, r, m0, p0)):
        return None
    spec = graph.spec.nodes
    skind = spec[graph[s].decl].covariance
    cpds: dict[str, CPD] = {
        graph[s].param: LinearCPD(b[None], a[None], _shaped((q + q.T) / 2, skind)[None], skind),
        graph[prev].param: standard_cpd(graph.families[prev], skind) if graph.is_standard(prev) else
        LinearCPD(m0[None], np.zeros((1, k, 0)), _shaped(p0, skind)[None], skind)}
    col = 0
    for kid in kids:
        dim = graph[kid].dim
        kind = spec[graph[kid].decl].covariance
        rows = slice(col, col + dim)
        cpds[graph[kid].param] = LinearCPD(d[rows][None], c[rows][None], _shaped(r[rows, rows], kind)[None], kind)
        col += dim
    return cpds
