"""Exact inference by enumeration against a brute-force joint written independently here.

For every row the test lists all joint states of *every* hidden variable (latent nodes
and NaN cells) with ``itertools.product``, multiplies the CPD entries read straight from
the tables (``probs`` reshaped to ``(*parent cards, n_states)``, the documented layout),
and compares

* ``fitted.posterior(node, data)``  with  p(x, z) / sum_z p(x, z), marginalised to the node;
* ``fitted.row_log_likelihood``     with  log sum_z p(x, z) per row;
* ``fitted.log_likelihood``         with  the sum of those,

to 1e-10.  pgm enumerates per hidden component and drops barren variables; the brute
force does neither, so the two computations share nothing but the parameters.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

import pgm.graph
from pgm.cpd.linear import LinearCPD
from pgm.cpd.table import TableCPD
from pgm.errors import DataWarning
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

TOL = 1e-10


# --------------------------------------------------------------------------- helpers
def random_model(decl: dict, seed: int, alpha: float = 1.0) -> FittedModel:
    """A FittedModel with random CPTs (Dirichlet rows) and random linear-gaussian CPDs."""
    spec = parse_spec(decl)
    graph = pgm.graph.build(spec)
    rng = np.random.default_rng(seed)
    cpds = {}
    for key, members in graph.params.items():
        var = graph[members[0]]
        cards = [graph[p].n_states for p in var.parents if graph[p].discrete]
        n_configs = math.prod(cards)
        if var.discrete:
            cpds[key] = TableCPD(rng.dirichlet(np.full(var.n_states, alpha), size=n_configs))
        else:
            d = var.dim
            p = sum(graph[q].dim for q in var.parents if not graph[q].discrete)
            a = rng.normal(size=(n_configs, d, d))
            cov = a @ np.transpose(a, (0, 2, 1)) + 0.5 * np.eye(d)
            cpds[key] = LinearCPD(rng.normal(scale=2.0, size=(n_configs, d)), rng.normal(size=(n_configs, d, p)),
                                  cov, "full")
    return FittedModel(spec, graph, cpds)


def sample_with_missing(model: FittedModel, n: int, seed: int, frac: float) -> pd.DataFrame:
    """Rows sampled from the model, latent columns dropped, a fraction of discrete cells set to NaN."""
    df = model.sample(n, seed=seed)
    graph = model.graph
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name in graph.order:
        var = graph[name]
        if var.latent:
            continue
        for col in var.columns:
            values = df[col].to_numpy(dtype=float)
            if var.discrete:
                values = np.where(rng.random(n) < frac, np.nan, values)
            out[col] = values
    return pd.DataFrame(out)


def _row_values(graph, row: pd.Series) -> dict[str, object]:
    """Observed value of each ground variable in the row, or None when hidden."""
    vals: dict[str, object] = {}
    for name in graph.order:
        var = graph[name]
        if var.latent:
            vals[name] = None
        elif var.discrete:
            v = row[var.columns[0]]
            vals[name] = None if pd.isna(v) else int(v)
        else:
            v = row[list(var.columns)].to_numpy(dtype=float)
            vals[name] = None if np.isnan(v).any() else v
    return vals


def _log_factor(model: FittedModel, name: str, assignment: dict[str, object]) -> float:
    graph = model.graph
    var = graph[name]
    cpd = model.cpds[var.param]
    disc = [p for p in var.parents if graph[p].discrete]
    config = tuple(assignment[p] for p in disc)
    if var.discrete:
        table = cpd.probs.reshape(*[graph[p].n_states for p in disc], var.n_states)
        p = table[config + (assignment[name],)]
        return math.log(p) if p > 0 else -math.inf
    c = int(np.ravel_multi_index(config, [graph[p].n_states for p in disc])) if disc else 0
    cont = [assignment[p] for p in var.parents if not graph[p].discrete]
    mean = cpd.intercept[c] + (cpd.coef[c] @ np.concatenate(cont) if cont else 0.0)
    return float(multivariate_normal(mean, cpd.cov[c]).logpdf(assignment[name]))


def brute_force(model: FittedModel, data: pd.DataFrame, nodes: list[str]):
    """Per-row log p(x) and the posterior of each node in ``nodes``, by full joint enumeration."""
    graph = model.graph
    row_ll = np.empty(len(data))
    post = {n: np.zeros((len(data), graph[n].n_states)) for n in nodes}
    for r, (_, row) in enumerate(data.iterrows()):
        vals = _row_values(graph, row)
        hidden = [n for n in graph.order if vals[n] is None]
        # a hidden gaussian has no observed descendant in these tests: it integrates to 1
        factors = [n for n in graph.order if not (vals[n] is None and not graph[n].discrete)]
        hidden_disc = [n for n in hidden if graph[n].discrete]
        logs, states = [], []
        for combo in itertools.product(*[range(graph[n].n_states) for n in hidden_disc]):
            a = dict(vals)
            a.update(zip(hidden_disc, combo))
            logs.append(sum(_log_factor(model, n, a) for n in factors))
            states.append(a)
        logs = np.array(logs)
        top = logs.max()
        total = top + math.log(np.exp(logs - top).sum())
        row_ll[r] = total
        weights = np.exp(logs - total)
        for n in nodes:
            for w, a in zip(weights, states):
                post[n][r, a[n]] += w
    return row_ll, post


def check_against_brute_force(model: FittedModel, data: pd.DataFrame, nodes: list[str]) -> None:
    row_ll, post = brute_force(model, data, nodes)
    with warnings.catch_warnings():  # rows with every cell missing are reported; tested below
        warnings.filterwarnings("ignore", "[0-9]+ rows? with every cell missing", DataWarning)
        data = model.encode(data)
    np.testing.assert_allclose(model.row_log_likelihood(data), row_ll, rtol=TOL, atol=TOL)
    assert model.log_likelihood(data) == pytest.approx(row_ll.sum(), rel=TOL, abs=TOL)
    for n in nodes:
        got = model.posterior(n, data).to_numpy()
        np.testing.assert_allclose(got, post[n], rtol=0, atol=TOL, err_msg=f"posterior of {n}")
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=TOL)


# --------------------------------------------------------------------------- models
ONE_LATENT = {
    "name": "one-latent", "graph": "directed",
    "nodes": {
        "a": {"states": 2},
        "z": {"states": 3, "latent": True, "parents": ["a"]},
        "b": {"states": 3, "parents": ["z", "a"]},
        "c": {"states": 2, "parents": ["z"]},
        "d": {"states": 2, "parents": ["c", "b"]},
    },
}

# three latent copies z[0..2], one per plate copy: independent given an observed `a`,
# joined into one component through `a` in rows where `a` is missing
PLATE_LATENTS = {
    "name": "plate-latents", "graph": "directed",
    "plates": {"p": {"size": 3}},
    "nodes": {
        "a": {"states": 2},
        "z": {"states": 3, "latent": True, "plate": "p", "parents": ["a"]},
        "x": {"states": 2, "parents": ["z"], "plate": "p"},
        "y": {"states": 3, "parents": ["z", "a"], "plate": "p"},
    },
}

# two latents that are connected: z1 -> z2, and a collider x3 on both
CONNECTED_LATENTS = {
    "name": "connected-latents", "graph": "directed",
    "nodes": {
        "z1": {"states": 2, "latent": True},
        "z2": {"states": 3, "latent": True, "parents": ["z1"]},
        "x1": {"states": 3, "parents": ["z1"]},
        "x2": {"states": 2, "parents": ["z2"]},
        "x3": {"states": 2, "parents": ["z1", "z2"]},
        "x4": {"states": 3, "parents": ["x2"]},
    },
}

# two latents that are marginally independent but co-parents of an observed child
CO_PARENT_LATENTS = {
    "name": "co-parents", "graph": "directed",
    "nodes": {
        "u": {"states": 2, "latent": True},
        "v": {"states": 2, "latent": True},
        "w": {"states": 3, "parents": ["u", "v"]},
        "s": {"states": 2, "parents": ["u"]},
        "t": {"states": 2, "parents": ["v"]},
    },
}

MIXED_GAUSSIAN = {
    "name": "mixed", "graph": "directed",
    "nodes": {
        "z": {"states": 3, "latent": True},
        "c": {"states": 2, "parents": ["z"]},
        "x": {"type": "gaussian", "dim": 2, "parents": ["z"], "covariance": "full"},
        "y": {"type": "gaussian", "parents": ["c", "x"]},
    },
}

MODELS = {
    "one-latent": (ONE_LATENT, ["z", "a", "b", "c", "d"]),
    "plate-latents": (PLATE_LATENTS, ["z[0]", "z[1]", "z[2]", "a", "x[1]"]),
    "connected-latents": (CONNECTED_LATENTS, ["z1", "z2", "x2"]),
    "co-parents": (CO_PARENT_LATENTS, ["u", "v", "w"]),
}


@pytest.mark.parametrize("frac", [0.0, 0.3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_posterior_and_likelihood_equal_brute_force(name, frac):
    decl, nodes = MODELS[name]
    model = random_model(decl, seed=len(name))
    data = sample_with_missing(model, 60, seed=7, frac=frac)
    check_against_brute_force(model, data, nodes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rows_with_every_cell_missing_have_log_likelihood_zero(name):
    decl, nodes = MODELS[name]
    model = random_model(decl, seed=3)
    data = sample_with_missing(model, 20, seed=11, frac=0.2)
    data.iloc[[0, 5, 19]] = np.nan
    check_against_brute_force(model, data, nodes)
    with pytest.warns(DataWarning, match=r"3 rows with every cell missing \(row 0, row 5, row 19\)"):
        row_ll = model.row_log_likelihood(data)
    assert np.all(row_ll[[0, 5, 19]] == 0.0)
    assert np.all(np.isfinite(row_ll))


def test_gaussian_children_and_missing_gaussian_cells():
    """A latent node with a gaussian child x and a discrete child c; y is gaussian with parents c and x.

    Rows where x and y are both NaN contribute through c only (x and y are summed out);
    rows where only y is NaN keep x."""
    model = random_model(MIXED_GAUSSIAN, seed=5)
    data = sample_with_missing(model, 50, seed=2, frac=0.25)
    rng = np.random.default_rng(0)
    both = rng.random(50) < 0.2
    only_y = ~both & (rng.random(50) < 0.2)
    data.loc[both, ["x[0]", "x[1]", "y"]] = np.nan
    data.loc[only_y, "y"] = np.nan
    check_against_brute_force(model, data, ["z", "c"])


def test_plate_latents_are_enumerated_separately_but_equal_the_joint():
    """With `a` observed the three z copies form three components; the result is the product."""
    model = random_model(PLATE_LATENTS, seed=1)
    data = sample_with_missing(model, 40, seed=4, frac=0.0)
    check_against_brute_force(model, data, ["z[0]", "z[1]", "z[2]"])
    # the joint of the row factorises over the copies: log p(row) = log p(a) + sum_i log p(x_i, y_i | a)
    a_only = data.copy()
    a_only[["x[0]", "y[0]", "x[1]", "y[1]", "x[2]", "y[2]"]] = np.nan
    base = model.row_log_likelihood(a_only)
    parts = []
    for i in range(3):
        keep = data.copy()
        for j in range(3):
            if j != i:
                keep[[f"x[{j}]", f"y[{j}]"]] = np.nan
        parts.append(model.row_log_likelihood(keep) - base)
    np.testing.assert_allclose(model.row_log_likelihood(data), base + sum(parts), rtol=TOL, atol=TOL)


def test_peaked_tables_stay_finite():
    """Near-deterministic CPTs (Dirichlet 0.05) push posteriors to 1e-30 and below; log space keeps them exact."""
    model = random_model(CONNECTED_LATENTS, seed=9, alpha=0.05)
    data = sample_with_missing(model, 40, seed=3, frac=0.2)
    check_against_brute_force(model, data, ["z1", "z2"])
