"""A flat E-step for discrete hidden components: all groups at once.

:mod:`pgm.infer.enumerate` groups (row, hidden component) pairs by the component's
variables and computes one array per group.  With missing cells scattered over a
network, there are hundreds of distinct components, and a Python loop over groups
costs more than the arithmetic.  Here every (row, component, joint state) triple
of every group is laid end to end once per data set ("completed rows", each with
the flat CPT cell it reads for each family), so an E-step is, per family, one
gather of log-CPT entries and one weighted ``np.bincount`` of the posterior, plus
a segmented log-sum-exp (``np.maximum.reduceat`` / ``np.add.reduceat``) over the
joint states of each (row, component).  It applies when every family touching a
hidden variable is a table CPD; otherwise the grouped path runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pgm.cpd import config_index
from pgm.cpd.family import CPD, Family
from pgm.cpd.table import TableCPD, TableStats
from pgm.encode import EncodedData, row_labels
from pgm.errors import DataError
from pgm.graph import Graph
from pgm.infer.posterior import Posterior

#: Above this many completed rows the grouped path is used instead (memory).
MAX_PAIRS = 40_000_000


@dataclass
class Flat:
    n_pairs: int
    seg_starts: np.ndarray            # (n_segments,) first pair of each (row, component)
    seg_of_pair: np.ndarray           # (n_pairs,)
    seg_rows: np.ndarray              # (n_segments,) the data row of each segment
    seg_weights: np.ndarray | None    # (n_segments,) row weights
    seg_vars: list[tuple[str, ...]]   # per group: its hidden variables (for error messages)
    seg_group: np.ndarray             # (n_segments,) group index
    fam_pairs: dict[str, np.ndarray]  # family -> pairs where it contributes
    fam_cells: dict[str, np.ndarray]  # family -> flat CPT cell (config * k + state) read by those pairs
    fam_shape: dict[str, tuple[int, int]]


def table_cells(fam: Family, assign: dict[str, np.ndarray]) -> np.ndarray:
    """The flat CPT cell ``config * n_states + state`` each row reads (observed rows)."""
    cfg = config_index([assign[p] for p in fam.disc], fam.cards)
    return (np.asarray(cfg, dtype=np.int64) * fam.var.n_states + assign[fam.name]).astype(np.int64)


def build_flat(graph: Graph, fams: dict[str, Family], data: EncodedData, groups: list,
               assign_of) -> Flat | None:
    """Lay out every group's completed rows, or None when a non-table family is involved."""
    involved = {f for g in groups for f in g.families}
    if any(fams[f].kind != "table" for f in involved):
        return None
    total = sum(len(g.rows) * g.joint.shape[1] for g in groups)
    if total > MAX_PAIRS or total == 0:
        return None
    pairs: dict[str, list[np.ndarray]] = {f: [] for f in involved}
    cells: dict[str, list[np.ndarray]] = {f: [] for f in involved}
    seg_rows, seg_sizes, seg_group = [], [], []
    offset = 0
    idx_dtype = np.int32 if total < 2**31 else np.int64
    for gi, g in enumerate(groups):
        n, s = len(g.rows), g.joint.shape[1]
        assign = assign_of(g)
        ids = (offset + np.arange(n * s, dtype=idx_dtype)).reshape(n, s)
        for f in g.families:
            fam = fams[f]
            cfg = config_index([assign[p] for p in fam.disc], fam.cards)
            cell = np.broadcast_to(np.asarray(cfg, dtype=np.int64) * fam.var.n_states + assign[f], (n, s))
            if f in g.dropped:
                keep = ~g.dropped[f]
                pairs[f].append(ids[keep].reshape(-1))
                cells[f].append(cell[keep].reshape(-1).astype(idx_dtype))
            else:
                pairs[f].append(ids.reshape(-1))
                cells[f].append(cell.reshape(-1).astype(idx_dtype))
        seg_rows.append(g.rows)
        seg_sizes.append(np.full(n, s, dtype=np.int64))
        seg_group.append(np.full(n, gi, dtype=np.int32))
        offset += n * s
    sizes = np.concatenate(seg_sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    seg_of_pair = np.repeat(np.arange(len(sizes), dtype=idx_dtype), sizes)
    rows = np.concatenate(seg_rows)
    weights = None if data.weights is None else data.weights[rows]
    return Flat(total, starts, seg_of_pair, rows, weights, [g.variables for g in groups],
                np.concatenate(seg_group),
                {f: np.concatenate(v) for f, v in pairs.items()},
                {f: np.concatenate(v) for f, v in cells.items()},
                {f: (fams[f].n_configs, fams[f].var.n_states) for f in involved})


def flat_e_step(flat: Flat, graph: Graph, cpds: dict[str, CPD], *, stats: bool = True,
                rule: Posterior = Posterior.EXACT, zero_ok: bool = False,
                data: EncodedData | None = None) -> tuple[float, dict[str, TableStats], np.ndarray]:
    """Log-likelihood of the hidden parts, expected counts, and each segment's log-sum-exp.

    A segment of probability zero raises a DataError naming its rows (by ``data``'s labels, or a
    file's lines), or (``zero_ok``, scoring without statistics) gives ``-inf``."""
    lj = np.zeros(flat.n_pairs)
    for f, pairs in flat.fam_pairs.items():
        cpd = cpds[graph[f].param]
        assert isinstance(cpd, TableCPD)
        lj[pairs] += cpd.log_probs.reshape(-1)[flat.fam_cells[f]]
    top = np.maximum.reduceat(lj, flat.seg_starts)
    if zero_ok and not stats and not np.all(np.isfinite(top)):
        safe = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            lse = safe + np.log(np.add.reduceat(np.exp(lj - safe[flat.seg_of_pair]), flat.seg_starts))
        return float(lse.sum() if flat.seg_weights is None else flat.seg_weights @ lse), {}, lse
    if not np.all(np.isfinite(top)):
        bad = np.flatnonzero(~np.isfinite(top))[:3]
        vars_ = flat.seg_vars[int(flat.seg_group[bad[0]])]
        rows = flat.seg_rows[bad]
        where = row_labels(data, rows) if data is not None else f"rows {[int(r) for r in rows]}"
        raise DataError(f"{where} have probability zero under the current "
                        f"parameters (hidden nodes {list(vars_)}); a prior (prior: {{dirichlet: 1}}) avoids "
                        "zero probabilities")
    shifted = np.exp(lj - top[flat.seg_of_pair])
    sums = np.add.reduceat(shifted, flat.seg_starts)
    lse = top + np.log(sums)
    total = float(lse.sum() if flat.seg_weights is None else flat.seg_weights @ lse)
    out: dict[str, TableStats] = {}
    if not stats:
        return total, out, lse
    if rule is Posterior.HARD:
        best = np.flatnonzero(lj == top[flat.seg_of_pair])
        first = best[np.r_[True, flat.seg_of_pair[best][1:] != flat.seg_of_pair[best][:-1]]]
        q = np.zeros(flat.n_pairs)
        q[first] = 1.0
    else:
        q = shifted / sums[flat.seg_of_pair]
    if flat.seg_weights is not None:
        q *= flat.seg_weights[flat.seg_of_pair]
    for f, pairs in flat.fam_pairs.items():
        n_configs, k = flat.fam_shape[f]
        counts = np.bincount(flat.fam_cells[f], weights=q[pairs], minlength=n_configs * k)
        out[f] = TableStats(counts.reshape(n_configs, k))
    return total, out, lse
