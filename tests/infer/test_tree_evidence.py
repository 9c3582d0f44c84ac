"""Observed gaussian and logistic children of hidden parents enter the clique tree as per-row evidence.

Listing the joint states (forced by ``STRATEGY = "list"``) is the brute-force reference: the tree must
give the same per-row log-likelihoods, expected statistics, posteriors and EM steps.  Long chains are
checked against a forward algorithm written here in numpy."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import pgm
import pgm.infer.enumerate as enumerate_
from pgm.cpd.linear import LinearCPD
from pgm.cpd.logistic import LogisticCPD, compress
from pgm.cpd.table import TableCPD
from pgm.infer.posterior import Posterior
from pgm.fitted import FittedModel
from pgm.graph import build
from pgm.schema import parse_spec


def hmm(T: int, K: int = 3, gaussian: bool = True, seed: int = 0) -> FittedModel:
    nodes: dict = {"h1": {"states": K, "latent": True}}
    for t in range(2, T + 1):
        nodes[f"h{t}"] = {"states": K, "latent": True, "parents": [f"h{t - 1}"], "tie": "trans"}
    for t in range(1, T + 1):
        nodes[f"x{t}"] = ({"type": "gaussian", "parents": [f"h{t}"], "tie": "emit"} if gaussian
                          else {"states": 4, "parents": [f"h{t}"], "tie": "emit"})
    spec = parse_spec({"name": f"hmm{T}", "nodes": nodes})
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.ones(K), size=K) + 2 * np.eye(K)
    cpds = {"h1": TableCPD(rng.dirichlet(np.ones(K) * 3)[None, :]),
            "trans": TableCPD(trans / trans.sum(axis=1, keepdims=True))}
    cpds["emit"] = (LinearCPD(np.linspace(-2, 2, K)[:, None], np.zeros((K, 1, 0)), (0.4 + rng.random(K))[:, None, None])
                    if gaussian else TableCPD(rng.dirichlet(np.ones(4), size=K)))
    return FittedModel(spec, build(spec), cpds)


def sbn(H: int, V: int, seed: int = 0, hybrid: bool = False) -> FittedModel:
    """Binary hidden units h*, logistic visible units v* with every hidden unit as a parent; with
    ``hybrid`` also a gaussian child g of (h0, h1) and a 3-state logistic child w of (h1, g)."""
    nodes: dict = {f"h{i}": {"states": 2, "latent": True} for i in range(H)}
    for j in range(V):
        nodes[f"v{j}"] = {"states": 2, "parents": [f"h{i}" for i in range(H)], "cpd": "logistic"}
    if hybrid:
        nodes["g"] = {"type": "gaussian", "parents": ["h0", "h1"]}
        nodes["w"] = {"states": 3, "parents": ["h1", "g"], "cpd": "logistic"}
    spec = parse_spec({"name": "sbn", "nodes": nodes})
    rng = np.random.default_rng(seed)
    cpds: dict = {f"h{i}": TableCPD(rng.dirichlet([3, 3])[None, :]) for i in range(H)}
    for j in range(V):
        cpds[f"v{j}"] = LogisticCPD(np.array([0.0, rng.normal()]), np.vstack([np.zeros(H), rng.normal(0, 1.5, H)]))
    if hybrid:
        cpds["g"] = LinearCPD(rng.normal(size=(4, 1)), np.zeros((4, 1, 0)), (0.5 + rng.random(4))[:, None, None])
        cpds["w"] = LogisticCPD(np.array([0.0, 0.3, -0.2]), np.vstack([np.zeros(2), rng.normal(size=(2, 2))]))
    return FittedModel(spec, build(spec), cpds)


def observed(model: FittedModel, n: int, seed: int = 1, missing: float = 0.0):
    df = model.sample(n, seed=seed)
    df = df.drop(columns=[c for c in df.columns if model.graph[c].latent])
    if missing:  # a gaussian parent (g) stays observed: it may only be missing where nothing depends on it
        hit = np.random.default_rng(seed).random(df.shape) < missing
        hit[:, [df.columns.get_loc(c) for c in df.columns if c == "g"]] = False
        df = df.astype(object).mask(hit)
    return df


def run(model: FittedModel, df, strategy: str, monkeypatch, **kw):
    monkeypatch.setattr(enumerate_, "STRATEGY", strategy)
    enc = model.encode(df)
    fams = model._families()
    plan = enumerate_.make_plan(model.graph, fams, enc)
    return plan, enumerate_.e_step(model.graph, fams, model.cpds, enc, plan, per_row=True, **kw)


def assert_same_stats(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for f in a:
        sa, sb = a[f], b[f]
        if hasattr(sa, "features"):  # logistic rows: compare per distinct feature row, any order
            sa, sb = compress(sa), compress(sb)
            oa, ob = np.lexsort(sa.features.T), np.lexsort(sb.features.T)
            np.testing.assert_allclose(sa.features[oa], sb.features[ob], rtol=0, atol=1e-12)
            np.testing.assert_allclose(sa.targets[oa], sb.targets[ob], rtol=0, atol=1e-10)
            continue
        for attr in ("counts", "weight", "mean", "scatter"):
            if hasattr(sa, attr):
                np.testing.assert_allclose(getattr(sa, attr), getattr(sb, attr), rtol=1e-10, atol=1e-10)


CASES = {
    "gaussian hmm T=6": lambda: (hmm(6), 120, 0.0),
    "gaussian hmm T=6, missing cells": lambda: (hmm(6), 120, 0.15),
    "sbn 4x6": lambda: (sbn(4, 6), 150, 0.0),
    "sbn 3x4 + gaussian + logistic of a gaussian, missing cells": lambda: (sbn(3, 4, hybrid=True), 150, 0.1),
}


@pytest.mark.parametrize("case", CASES)
def test_tree_equals_listing(case, monkeypatch):
    model, n, missing = CASES[case]()
    df = observed(model, n, missing=missing)
    plan_l, listed = run(model, df, "list", monkeypatch)
    plan_t, tree = run(model, df, "tree", monkeypatch)
    assert all(g.tree is None for g in plan_l.groups)
    assert any(g.tree is not None and len(g.variables) > 2 for g in plan_t.groups)
    assert any(model.graph[f].cpd == "logistic" or not model.graph[f].discrete
               for g in plan_t.groups if g.tree is not None for f in g.families)
    np.testing.assert_allclose(tree.row_log_likelihood, listed.row_log_likelihood, rtol=0, atol=1e-10)
    assert tree.log_likelihood == pytest.approx(listed.log_likelihood, rel=1e-13)
    assert_same_stats(listed.stats, tree.stats)
    node = "h1"
    monkeypatch.setattr(enumerate_, "STRATEGY", "list")
    post = model.posterior(node, df).to_numpy()
    monkeypatch.setattr(enumerate_, "STRATEGY", "tree")
    np.testing.assert_allclose(model.posterior(node, df).to_numpy(), post, rtol=0, atol=1e-10)


def test_row_batches_change_nothing(monkeypatch):
    """Small batches: per-batch data products (gaussian moments) and key sums stay exact."""
    model = sbn(3, 4, hybrid=True)
    df = observed(model, 150, missing=0.1)
    _, whole = run(model, df, "tree", monkeypatch)
    monkeypatch.setattr(enumerate_, "BATCH_ENTRIES", 200)  # a few rows per batch
    plan, batched = run(model, df, "tree", monkeypatch)
    big = max((g for g in plan.groups if g.tree is not None), key=lambda g: len(g.rows))
    assert len(enumerate_._batches(big, [enumerate_._evidence(big, f, model._families()[f], model.graph,
                                                                model.encode(df)) for f in big.families])) > 5
    np.testing.assert_allclose(batched.row_log_likelihood, whole.row_log_likelihood, rtol=0, atol=1e-12)
    assert_same_stats(whole.stats, batched.stats)


@pytest.mark.parametrize("case", ["gaussian hmm T=6", "sbn 3x4 + gaussian + logistic of a gaussian, missing cells"])
def test_em_through_the_tree_equals_listing_and_never_decreases(case, monkeypatch):
    model, n, missing = CASES[case]()
    df = observed(model, n, missing=missing)
    rng = np.random.default_rng(5)

    def perturb(c):
        if not isinstance(c, TableCPD):
            return c
        p = c.probs + 0.2 * rng.random(c.probs.shape)
        return TableCPD(p / p.sum(axis=1, keepdims=True))

    start = {k: perturb(c) for k, c in model.cpds.items()}
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for strategy in ("list", "tree"):
            monkeypatch.setattr(enumerate_, "STRATEGY", strategy)
            fits[strategy] = pgm.fit(model.spec, df, init=start, max_iter=6, tol=0)
    a, b = fits["list"], fits["tree"]
    np.testing.assert_allclose(b.history, a.history, rtol=1e-11)
    assert np.all(np.diff(b.history) >= -1e-9 * np.abs(b.history[1:]))
    for key, cpd in a.cpds.items():
        for attr in ("probs", "intercept", "coef", "cov"):
            if hasattr(cpd, attr):
                np.testing.assert_allclose(getattr(b.cpds[key], attr), getattr(cpd, attr), rtol=1e-7, atol=1e-7)


def forward(model: FittedModel, x: np.ndarray) -> np.ndarray:
    """log p(x_1..x_T) per sequence by the forward algorithm; NaN observations are skipped."""
    pi = model.cpds["h1"].probs[0]
    A = model.cpds["trans"].probs
    emit = model.cpds["emit"]
    mu, var = emit.intercept[:, 0], emit.cov[:, 0, 0]
    le = -0.5 * (np.log(2 * np.pi * var) + (x[:, :, None] - mu) ** 2 / var)  # (n, T, K)
    le = np.where(np.isnan(x)[:, :, None], 0.0, le)
    alpha = np.log(pi) + le[:, 0]
    for t in range(1, x.shape[1]):
        alpha = logsumexp(alpha[:, :, None] + np.log(A)[None], axis=1) + le[:, t]
    return logsumexp(alpha, axis=1)


def test_gaussian_hmm_t50_equals_the_forward_algorithm():
    T = 50
    model = hmm(T)
    df = observed(model, 60, seed=3)
    x = df[[f"x{t}" for t in range(1, T + 1)]].to_numpy(dtype=float, copy=True)
    x[np.random.default_rng(4).random(x.shape) < 0.1] = np.nan  # missing emissions: summed out
    df = df.assign(**{f"x{t}": x[:, t - 1] for t in range(1, T + 1)})
    np.testing.assert_allclose(model.row_log_likelihood(df), forward(model, x), rtol=0, atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(model.spec, df, init=model.cpds, max_iter=5, tol=0)
    hist = np.asarray(fitted.history)
    assert hist[0] == pytest.approx(forward(model, x).sum(), rel=1e-12)
    assert np.all(np.diff(hist) >= -1e-9 * np.abs(hist[1:]))
    assert hist[-1] > hist[0]


def test_hard_em_lists_a_group_the_tree_would_take(monkeypatch):
    model = hmm(5, gaussian=False)
    df = observed(model, 100)
    _, listed = run(model, df, "list", monkeypatch, rule=Posterior.HARD)
    plan, tree = run(model, df, "tree", monkeypatch, rule=Posterior.HARD)
    assert plan.groups[0].tree is not None
    assert tree.log_likelihood == pytest.approx(listed.log_likelihood, rel=1e-13)
    assert_same_stats(listed.stats, tree.stats)


@pytest.mark.parametrize("build_model, n, expect", [
    (lambda: hmm(2, gaussian=False), 300, False),   # 9 joint states: listing is trivially cheap
    (lambda: hmm(7, gaussian=False), 300, True),    # 2,187 joint states vs six 9-entry cliques
    (lambda: hmm(7), 300, True),
    (lambda: sbn(6, 20), 300, True),                # 64 states, 26 families, 20 of them logistic
    (lambda: sbn(1, 3), 300, False),                # one binary hidden unit
])
def test_cost_picks_the_cheaper_path(build_model, n, expect, monkeypatch):
    model = build_model()
    plan, _ = run(model, observed(model, n), "cost", monkeypatch, stats=False)
    assert [g.tree is not None for g in plan.groups] == [expect]


def test_cost_model_orders_clear_cases():
    from pgm.infer.elimination import build_clique_tree
    chain = build_clique_tree([("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")], dict.fromkeys("abcde", 4))
    sizes = [16] * 4
    assert enumerate_.tree_cost(10_000, chain, sizes) < enumerate_.listing_cost(10_000, 4 ** 5, ["table"] * 4)
    assert enumerate_.tree_cost(10, chain, sizes) > enumerate_.listing_cost(10, 4 ** 5, ["table"] * 4) / 50
    pair = build_clique_tree([("a", "b")], {"a": 2, "b": 2})
    assert enumerate_.tree_cost(100, pair, [4]) > enumerate_.listing_cost(100, 4, ["table"])
    # a logistic family listed costs more than a table family listed
    assert enumerate_.listing_cost(100, 64, ["logistic"]) > enumerate_.listing_cost(100, 64, ["table"])


def test_queries_through_the_tree_in_batches_equal_listing(monkeypatch):
    """posterior, predict(joint=True) and most_probable read the same batched tree as the E-step."""
    model = sbn(3, 4, hybrid=True)
    df = observed(model, 120, missing=0.1)
    answers = {}
    for strategy, batch in (("list", enumerate_.BATCH_ENTRIES), ("tree", 200)):
        monkeypatch.setattr(enumerate_, "STRATEGY", strategy)
        monkeypatch.setattr(enumerate_, "BATCH_ENTRIES", batch)
        answers[strategy] = (model.posterior("h0", df).to_numpy(), model.predict(["h0", "h2"], df, joint=True),
                             model.most_probable(df))
    (pa, ja, ma), (pb, jb, mb) = answers["list"], answers["tree"]
    np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-10)
    assert ja.equals(jb)
    assert ma.equals(mb)


def test_memory_bound_sends_a_large_listing_to_the_batched_tree(monkeypatch):
    """A dense component (one clique) costs less to list, unless its (rows, joint states) arrays would
    pass the batch budget: then the tree takes it, batch by batch, with the same answers."""
    model = hmm(3, K=4, gaussian=False)  # 64 joint states, tables only: listing is cheaper
    df = observed(model, 200)
    plan, listed = run(model, df, "cost", monkeypatch)
    assert [g.tree is None for g in plan.groups] == [True]
    monkeypatch.setattr(enumerate_, "BATCH_ENTRIES", 200 * 64 - 1)
    plan, batched = run(model, df, "cost", monkeypatch)
    assert [g.tree is None for g in plan.groups] == [False]
    np.testing.assert_allclose(batched.row_log_likelihood, listed.row_log_likelihood, rtol=0, atol=1e-10)
    assert_same_stats(listed.stats, batched.stats)


def test_too_wide_a_component_is_refused_naming_its_nodes_and_size():
    model = sbn(26, 2)
    with pytest.raises(pgm.ModelError, match=r"'h0', 'h1'.*6\.71e\+07 joint states.*too wide") as err:
        model.row_log_likelihood(observed(model, 5))
    assert "learner='pcd'" not in str(err.value)  # the undirected learners' advice does not apply here


def test_row_weights_through_the_tree_equal_repeated_rows(monkeypatch):
    from pgm.encode import encode
    model = sbn(3, 4, hybrid=True)
    df = observed(model, 60, missing=0.1)
    w = np.random.default_rng(7).integers(1, 4, size=len(df))
    monkeypatch.setattr(enumerate_, "STRATEGY", "tree")
    fams = model._families()
    out = []
    for enc in (encode(model.graph, df, weights=w.astype(float)),
                encode(model.graph, df.loc[df.index.repeat(w)].reset_index(drop=True))):
        plan = enumerate_.make_plan(model.graph, fams, enc)
        assert any(g.tree is not None for g in plan.groups)
        out.append(enumerate_.e_step(model.graph, fams, model.cpds, enc, plan))
    assert out[0].log_likelihood == pytest.approx(out[1].log_likelihood, rel=1e-12)
    assert_same_stats(out[1].stats, out[0].stats)


def test_gaussian_hmm_unrolled_with_ties_equals_hmmlearn_score():
    """The hmmlearn reference of tests/test_sequence.py (3 states, 2-dim gaussian emissions, 25 sequences
    of lengths 1..54, made by tests/reference/make_hmm_reference.py) as an unrolled model with tied
    transitions and emissions, T = the longest sequence, shorter ones padded with missing cells:
    the log-likelihood at the true parameters is hmmlearn's stored score."""
    ref = json.loads((Path(__file__).resolve().parents[1] / "reference" / "hmm_hmmlearn.json").read_text())
    lengths, x = ref["lengths"], np.array(ref["x"])
    T, K = max(lengths), len(ref["start"])
    nodes: dict = {"h1": {"states": K, "latent": True}}
    for t in range(2, T + 1):
        nodes[f"h{t}"] = {"states": K, "latent": True, "parents": [f"h{t - 1}"], "tie": "trans"}
    for t in range(1, T + 1):
        nodes[f"x{t}"] = {"type": "gaussian", "dim": 2, "parents": [f"h{t}"], "tie": "emit"}
    spec = parse_spec({"name": f"ghmm{T}", "nodes": nodes})
    cpds = {"h1": TableCPD(np.array([ref["start"]])), "trans": TableCPD(np.array(ref["trans"])),
            "emit": LinearCPD(np.array(ref["means"]), np.zeros((K, 2, 0)), np.array(ref["covars"]))}
    model = FittedModel(spec, build(spec), cpds)
    cells = np.full((len(lengths), T, 2), np.nan)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i, (s, n) in enumerate(zip(starts, lengths)):  # 25 sequences: a loop over sequences, not rows of data
        cells[i, :n] = x[s:s + n]
    df = pd.DataFrame({f"x{t}[{k}]": cells[:, t - 1, k] for t in range(1, T + 1) for k in range(2)})
    got = model.row_log_likelihood(df).sum()
    assert got == pytest.approx(ref["gaussian_score"], rel=1e-8, abs=0)
