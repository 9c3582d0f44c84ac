"""Sampling E-steps (learner="mcem", "stochastic-em") against exact EM, with the Monte Carlo error
computed here from independent seeds.

Independent computations: pgm's exact E-step (enumeration) for expected statistics and EM's
fixed point; exact posteriors from enumeration (``hidden_parts``) on a copy of the graph in which
the other hidden nodes are observed, for the Gibbs full conditionals; numerical integration over
a grid for the gaussian full conditional.  Each Monte Carlo comparison also runs a sampler with a
Markov-blanket family left out and asserts that the same test then fails (the test has power).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.cpd.family import family_log_prob, family_stats
from pgm.encode import EncodedData, encode
from pgm.graph import build
from pgm.infer.enumerate import hidden_parts
from pgm.infer.gibbs import Gibbs, gibbs_layout
from pgm.learn.em import fit_em, prepare_rows
from pgm.learn.mcem import fit_mcem, mc_statistics
from pgm.learn.mle import fit_from_stats
from pgm.learn.start import random_start
from pgm.fitted import FittedModel
from pgm.learn.stats import add_stats, pool_stats
from pgm.schema import parse_spec


def _graph(nodes):
    spec = parse_spec({"name": "mc", "graph": "directed", "nodes": nodes})
    return spec, build(spec)


# two coupled latent nodes (a has both as parents): the Gibbs chain must mix between them
COUPLED = {"z1": {"states": 2, "latent": True}, "z2": {"states": 3, "latent": True, "parents": ["z1"]},
           "a": {"states": 2, "parents": ["z1", "z2"]}, "b": {"states": 3, "parents": ["z2"]},
           "c": {"states": 2, "parents": ["z1"]}, "d": {"states": 3, "parents": ["z1"]},
           "e": {"states": 2, "parents": ["z2"]}}


def _coupled_data(n, seed=0):
    rng = np.random.default_rng(seed)
    z1 = rng.integers(0, 2, n)
    z2 = np.where(rng.random(n) < 0.6, z1, rng.integers(0, 3, n))
    noisy = lambda v, k, p: np.where(rng.random(n) < p, v % k, rng.integers(0, k, n))  # noqa: E731
    df = pd.DataFrame({"a": noisy(z1 + z2, 2, 0.8), "b": noisy(z2, 3, 0.8), "c": noisy(z1, 2, 0.85),
                       "d": noisy(z1, 3, 0.7), "e": noisy(z2, 2, 0.75)})
    df.loc[::6, "b"] = np.nan  # missing cells are hidden cells too
    return df


def _start(graph, enc, seed=3):
    """Fixed parameters away from the fixed point: a few EM steps from a random start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_em(graph, enc, max_iter=2, seed=seed).cpds


def _exact_stats(graph, enc, cpds):
    src = prepare_rows(graph, enc)
    const = pool_stats(graph, src.observed_stats().items())
    return add_stats(const, pool_stats(graph, src.e_step(cpds).stats.items()))


def _const(graph, enc, layout):
    fams = graph.families
    assign = {**enc.codes, **enc.values}
    return pool_stats(graph, ((f, family_stats(fams[f], assign, enc.n_rows, enc.weights)) for f in fams
                              if f not in layout.hidden_families))


def _mc_runs(graph, enc, cpds, seeds, samples=10, burn_in=30, drop=None):
    """Per seed: the pooled table counts of a fresh chain's E-step, and the M-step's tables."""
    counts, tables = [], []
    for s in seeds:
        rng = np.random.default_rng(s)
        layout = gibbs_layout(graph, enc)
        if drop is not None:  # a broken sampler: one family left out of a node's Markov blanket
            v, f = drop
            layout.blanket[v] = tuple(x for x in layout.blanket[v] if x != f)
        chain = Gibbs(graph, layout, enc, cpds, rng)
        stats, _ = mc_statistics(graph, chain, cpds, rng, samples, 1, _const(graph, enc, layout), burn_in)
        counts.append(np.concatenate([stats[k].counts.ravel() for k in sorted(stats)]))
        fitted = fit_from_stats(graph, stats, warn_unseen=False)
        tables.append(np.concatenate([fitted[k].probs.ravel() for k in sorted(fitted)]))
    return np.array(counts), np.array(tables)


def _z(runs, exact):
    """|mean over seeds - exact| in standard errors of the mean (cells with no Monte Carlo spread
    must match exactly)."""
    se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    gap = np.abs(runs.mean(axis=0) - exact)
    fixed = se < 1e-12
    assert np.all(gap[fixed] < 1e-8 * np.maximum(1.0, np.abs(exact[fixed])))
    return gap[~fixed] / se[~fixed]


@pytest.mark.parametrize("weighted", [False, True])
def test_sampling_e_step_and_m_step_match_exact_em_within_monte_carlo_error(weighted):
    _, graph = _graph(COUPLED)
    df = _coupled_data(2000)
    weights = np.random.default_rng(9).integers(1, 4, len(df)).astype(float) if weighted else None
    enc = encode(graph, df, weights=weights)
    assert (enc.weights is not None) == weighted
    cpds = _start(graph, enc)
    exact = _exact_stats(graph, enc, cpds)
    exact_counts = np.concatenate([exact[k].counts.ravel() for k in sorted(exact)])
    step = fit_from_stats(graph, exact, warn_unseen=False)
    exact_tables = np.concatenate([step[k].probs.ravel() for k in sorted(step)])
    seeds = range(20)
    counts, tables = _mc_runs(graph, enc, cpds, seeds)
    zc, zt = _z(counts, exact_counts), _z(tables, exact_tables)
    print(f"expected counts: max z {zc.max():.2f}; one M-step: max z {zt.max():.2f}")
    assert zc.max() < 5.0 and zt.max() < 5.0
    # the Monte Carlo error is small next to the counts: the comparison is not vacuous
    assert np.max(counts.std(axis=0) / np.sqrt(len(seeds))) < 0.01 * exact_counts.max()
    # a sampler that leaves the child `a` out of z2's Markov blanket fails the same test
    broken, _ = _mc_runs(graph, enc, cpds, range(5), drop=("z2", "a"))
    assert _z(broken, exact_counts).max() > 10.0


# for stochastic EM: every cell of every table well away from zero (a table cell that a draw leaves
# empty gets probability 0, which no later draw leaves: stochastic EM's known absorbing states)
SEM_MODEL = {"z1": {"states": 2, "latent": True}, "z2": {"states": 2, "latent": True, "parents": ["z1"]},
             "a": {"states": 2, "parents": ["z1", "z2"]}, "b": {"states": 3, "parents": ["z2"]},
             "c": {"states": 2, "parents": ["z1"]}, "d": {"states": 3, "parents": ["z1"]},
             "e": {"states": 2, "parents": ["z2"]}}


def _sem_data(n, seed):
    rng = np.random.default_rng(seed)
    z1 = rng.integers(0, 2, n)
    z2 = np.where(rng.random(n) < 0.7, z1, 1 - z1)
    noisy = lambda v, k, p: np.where(rng.random(n) < p, v % k, rng.integers(0, k, n))  # noqa: E731
    df = pd.DataFrame({"a": noisy(z1 + z2, 2, 0.6), "b": noisy(z2, 3, 0.6), "c": noisy(z1, 2, 0.7),
                       "d": noisy(z1, 3, 0.6), "e": noisy(z2, 2, 0.6)})
    df.loc[::6, "b"] = np.nan
    return df


def _fixed_point(graph, enc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_em(graph, enc, max_iter=500, tol=1e-12, seed=1, n_init=3).cpds


@pytest.mark.slow
def test_stochastic_em_average_matches_the_exact_em_fixed_point():
    _, graph = _graph(SEM_MODEL)
    enc = encode(graph, _sem_data(4000, seed=5))
    em = _fixed_point(graph, enc)
    exact = np.concatenate([em[k].probs.ravel() for k in sorted(em)])

    def averaged(seed):
        res = fit_mcem(graph, enc, learner="stochastic-em", init=em, seed=seed, max_iter=150, average_from=30)
        return np.concatenate([res.cpds[k].probs.ravel() for k in sorted(res.cpds)])

    runs = np.array([averaged(s) for s in range(8)])
    z = _z(runs, exact)
    print(f"stochastic EM average over 8 seeds vs the EM fixed point: max z {z.max():.2f}, "
          f"max |gap| {np.abs(runs.mean(axis=0) - exact).max():.2e}")
    assert z.max() < 6.0  # t with 7 degrees of freedom: 6 is beyond its 99.9% point
    assert np.abs(runs.mean(axis=0) - exact).max() < 0.01


@pytest.mark.slow
def test_stochastic_em_with_a_broken_sampler_misses_the_fixed_point(monkeypatch):
    """The power check of the test above: z2 blind to its child `e` moves the average away."""
    import pgm.learn.mcem as mcem

    _, graph = _graph(SEM_MODEL)
    enc = encode(graph, _sem_data(4000, seed=5))
    em = _fixed_point(graph, enc)
    exact = np.concatenate([em[k].probs.ravel() for k in sorted(em)])
    real = mcem.gibbs_layout

    def broken(*args, **kw):
        layout = real(*args, **kw)
        layout.blanket["z2"] = tuple(f for f in layout.blanket["z2"] if f != "e")
        return layout

    monkeypatch.setattr(mcem, "gibbs_layout", broken)
    runs = np.array([np.concatenate([r.cpds[k].probs.ravel() for k in sorted(r.cpds)]) for r in
                     (fit_mcem(graph, enc, learner="stochastic-em", init=em, seed=s, max_iter=60, average_from=20)
                      for s in range(3))])
    assert _z(runs, exact).max() > 10.0


# --------------------------------------------------------------------------- full conditionals
MIXED = {"z1": {"states": 2, "latent": True}, "z2": {"states": 3, "latent": True, "parents": ["z1"]},
         "z3": {"states": 2, "latent": True, "parents": ["z2"]},
         "a": {"states": 2, "parents": ["z1", "z2"]}, "g": {"type": "gaussian", "parents": ["z2", "z3"]},
         "l": {"states": 3, "cpd": "logistic", "parents": ["z1", "z3", "g"]},
         "o": {"states": 2, "cpd": "noisy-or", "parents": ["z1", "z3"]},
         "m": {"states": 2, "cpd": "logistic", "parents": ["z2", "z1", "g"]}}


def _mixed_model(n=300, seed=0, partial=False):
    """MIXED with random parameters; ``partial``: z1 observed, missing in every other row."""
    nodes = dict(MIXED)
    if partial:
        nodes["z1"] = {"states": 2}
    spec, graph = _graph(nodes)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.integers(0, 2, n), "g": rng.normal(0, 2, n), "l": rng.integers(0, 3, n),
                       "o": rng.integers(0, 2, n), "m": rng.integers(0, 2, n)})
    if partial:
        df["z1"] = np.where(np.arange(n) % 2 == 0, np.nan, rng.integers(0, 2, n))
    enc = encode(graph, df)
    cpds = random_start(graph, {}, {}, np.random.default_rng(seed + 1))
    return spec, graph, enc, cpds, df


@pytest.mark.parametrize("partial", [False, True])
def test_gibbs_full_conditionals_equal_exact_conditionals_by_enumeration(partial):
    _, graph, enc, cpds, df = _mixed_model(partial=partial)
    layout = gibbs_layout(graph, enc)
    chain = Gibbs(graph, layout, enc, cpds, np.random.default_rng(0))
    for s in range(3):  # the binary logistic child's logits are moved incrementally between sweeps
        chain.sweep(cpds, np.random.default_rng(s))
    # the same graph with every node observed: enumerate p(v | every other cell) with v missing
    _, full = _graph({k: {kk: vv for kk, vv in v.items() if kk != "latent"} for k, v in MIXED.items()})
    for v in ("z1", "z2", "z3"):
        rows = np.arange(enc.n_rows) if layout.rows[v] is None else layout.rows[v]
        assert len(rows) == (enc.n_rows // 2 if partial and v == "z1" else enc.n_rows)
        lc = chain.conditional(v, cpds)
        mc = np.exp(lc - lc.max(axis=1, keepdims=True))
        mc /= mc.sum(axis=1, keepdims=True)
        codes = {m: c.copy() for m, c in chain.codes.items()}
        codes[v] = np.full(enc.n_rows, -1)
        data = EncodedData(enc.n_rows, codes, dict(chain.values), missing={v: np.ones(enc.n_rows, bool)})
        _, _, parts = hidden_parts(full, full.families, cpds, data, (v,))
        assert len(parts) == 1 and np.array_equal(parts[0].rows, np.arange(enc.n_rows))
        np.testing.assert_allclose(mc, np.exp(parts[0].table[rows]), rtol=1e-9, atol=1e-12)


def test_gaussian_full_conditional_equals_numerical_integration():
    nodes = {"c": {"states": 2}, "x": {"type": "gaussian", "latent": True, "parents": ["c"]},
             "y": {"type": "gaussian", "dim": 2, "parents": ["x", "c"]}, "u": {"type": "gaussian", "parents": ["x"]}}
    _, graph = _graph(nodes)
    rng = np.random.default_rng(4)
    n = 6
    df = pd.DataFrame({"c": rng.integers(0, 2, n), "y[0]": rng.normal(size=n), "y[1]": rng.normal(size=n),
                       "u": rng.normal(size=n)})
    enc = encode(graph, df)
    cpds = random_start(graph, {}, {}, np.random.default_rng(2))
    layout = gibbs_layout(graph, enc)
    chain = Gibbs(graph, layout, enc, cpds, np.random.default_rng(0))
    mean, chol = chain.gaussian_conditional("x", cpds)
    var = 1.0 / np.einsum("nij,nij->n", chol, chol)
    grid = np.linspace(-30, 30, 200001)
    for i in range(n):  # log p(x, observed) on a grid of x, by each family's own log-density
        assign = {"c": np.full(len(grid), chain.codes["c"][i]), "x": grid[:, None],
                  "y": np.repeat(chain.values["y"][i:i + 1], len(grid), 0),
                  "u": np.repeat(chain.values["u"][i:i + 1], len(grid), 0)}
        lp = sum(family_log_prob(graph.families[f], cpds[f], assign, len(grid)) for f in ("x", "y", "u"))
        p = np.exp(lp - lp.max())
        p /= p.sum()
        m = p @ grid
        np.testing.assert_allclose(mean[i, 0], m, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(var[i], p @ (grid - m) ** 2, rtol=1e-5)


# --------------------------------------------------------------------------- through pgm.fit
def test_seeded_runs_are_reproducible_and_seeds_differ():
    spec, _ = _graph(COUPLED)
    df = _coupled_data(300)
    a = pgm.fit(spec, df, learner="mcem", seed=7, max_iter=5, samples=3, burn_in=5)
    b = pgm.fit(spec, df, learner="mcem", seed=7, max_iter=5, samples=3, burn_in=5)
    c = pgm.fit(spec, df, learner="mcem", seed=8, max_iter=5, samples=3, burn_in=5)
    assert a.history == b.history
    assert all(np.array_equal(a.cpds[k].probs, b.cpds[k].probs) for k in a.cpds)
    assert a.history != c.history
    assert a.info["learner"] == "mcem" and a.info["samples"] == 3 and a.info["estimate"] == "final iterate"
    assert a.info["history"] == "log-likelihood" and len(a.history) == 6


@pytest.mark.slow
def test_hidden_node_with_gaussian_and_logistic_children_reaches_em():
    spec, graph, enc, cpds, _ = _mixed_model(n=300, seed=3)
    # data drawn from the model itself, so the latent structure is real
    df = FittedModel(spec, graph, cpds, [], {}).sample(300, seed=5)[["a", "g", "l", "o", "m"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = pgm.fit(spec, df, learner="em", seed=0, max_iter=10)
        mc = pgm.fit(spec, df, learner="mcem", init=em, seed=0, max_iter=5, samples=20)
        sem = pgm.fit(spec, df, learner="stochastic-em", init=em, seed=0, max_iter=40, average_from=20)
    # started at EM's answer (10 updates), neither falls below it beyond Monte Carlo noise: an iterate
    # fitted to S draws per row loses about (free parameters) / (2 S) in log-likelihood (42 here)
    ll = em.log_likelihood(df)
    print(f"EM {ll:.2f}, mcem {mc.log_likelihood(df):.2f}, stochastic EM average {sem.log_likelihood(df):.2f}")
    assert np.all(np.isfinite(mc.history)) and mc.info["history"] == "log-likelihood"
    assert mc.log_likelihood(df) > ll - 3e-3 * abs(ll)
    assert sem.log_likelihood(df) > ll - 5e-3 * abs(ll)
    assert sem.info["history"] == "log-likelihood" and "average of the iterates" in sem.info["estimate"]


def test_latent_gaussian_factor_model_by_gibbs():
    nodes = {"f": {"type": "gaussian", "latent": True},
             "x": {"type": "gaussian", "dim": 3, "parents": ["f"]}}
    spec, _ = _graph(nodes)
    rng = np.random.default_rng(0)
    f = rng.normal(size=800)
    x = f[:, None] * np.array([1.0, -0.5, 2.0]) + rng.normal(size=(800, 3)) * 0.5 + np.array([1, 2, 3])
    df = pd.DataFrame(x, columns=["x[0]", "x[1]", "x[2]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = pgm.fit(spec, df, learner="em", max_iter=300)
        mc = pgm.fit(spec, df, learner="mcem", max_iter=40, samples=5, seed=1)
    ll = em.log_likelihood(df)
    assert mc.log_likelihood(df) > ll - 1e-3 * abs(ll)
    assert mc.log_likelihood(df) <= ll + 1e-6 * abs(ll)


def test_refusals_name_the_fix():
    spec, _ = _graph({"x": {"type": "gaussian"}, "l": {"states": 2, "cpd": "logistic", "parents": ["x"]}})
    with pytest.raises(pgm.ModelError, match="non-gaussian child"):
        pgm.fit(spec, pd.DataFrame({"x": [0.3, np.nan, 1.0], "l": [0, 1, 0]}), learner="mcem")
    spec, _ = _graph(COUPLED)
    df = _coupled_data(50)
    with pytest.raises(pgm.PGMError, match="one sample per row"):
        pgm.fit(spec, df, learner="stochastic-em", samples=5)
    with pytest.raises(pgm.PGMError, match="unknown options"):
        pgm.fit(spec, df, learner="mcem", n_chains=5)
    with pytest.raises(pgm.PGMError, match="learner=.mcem. has no such option"):
        pgm.fit(spec, df, learner="mcem", accelerate=True)
    with pytest.raises(pgm.PGMError, match="samples must be an integer"):
        pgm.fit(spec, df, learner="mcem", samples=0)
    hmm = parse_spec({"name": "hmm", "sequence": {"id": "seq", "order": "t"},
                      "nodes": {"h": {"states": 2, "latent": True, "prev": ["h"]}, "x": {"states": 2, "parents": ["h"]}}})
    seqs = pd.DataFrame({"seq": [0, 0, 0, 1, 1], "t": [0, 1, 2, 0, 1], "x": [0, 1, 1, 0, 0]})
    with pytest.raises(pgm.PGMError, match="does not fit a sequence model"):
        pgm.fit(hmm, seqs, learner="mcem")
    full, _ = _graph({"a": {"states": 2}, "b": {"states": 2, "parents": ["a"]}})
    with pytest.raises(pgm.PGMError, match="learner='mle'"):
        pgm.fit(full, pd.DataFrame({"a": [0, 1], "b": [1, 0]}), learner="mcem")


def test_monte_carlo_history_estimates_the_expected_complete_data_log_likelihood(monkeypatch):
    """Where exact is not cheap, history is (1/S) Σ_s log p(x, z_s), whose expectation is
    log p(x) - Σ_rows H(p(z | x)) (the ELBO's split at the posterior): checked on a latent class
    model, whose per-row posterior entropy is exact, within the error over independent seeds."""
    import pgm.learn.mcem as mcem

    nodes = {"z": {"states": 3, "latent": True}, **{k: {"states": 3, "parents": ["z"]} for k in "abcd"}}
    _, graph = _graph(nodes)
    rng = np.random.default_rng(2)
    z = rng.integers(0, 3, 1000)
    enc = encode(graph, pd.DataFrame({k: np.where(rng.random(1000) < 0.6, z, rng.integers(0, 3, 1000))
                                      for k in "abcd"}))
    cpds = _start(graph, enc)
    _, row_lp, parts = hidden_parts(graph, graph.families, cpds, enc, ("z",))
    logq = parts[0].table
    expected = float(row_lp.sum() + np.sum(np.exp(logq) * logq))
    monkeypatch.setattr(mcem, "HISTORY_BUDGET", -1.0)
    values = np.array([fit_mcem(graph, enc, init=cpds, max_iter=1, samples=5, seed=s).history[0] for s in range(10)])
    res = fit_mcem(graph, enc, init=cpds, max_iter=1, samples=5, seed=0)
    assert res.info["history"] == "complete-data log-likelihood (Monte Carlo)"
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - expected) < 5 * se
    assert expected < row_lp.sum() - 100  # the entropy term is not negligible: the check has teeth


def test_rows_read_in_chunks_and_partly_missing_vectors_are_refused(tmp_path):
    spec, _ = _graph(COUPLED)
    csv = tmp_path / "d.csv"
    _coupled_data(40).to_csv(csv, index=False)
    with pytest.raises(pgm.PGMError, match="needs the rows in memory"):
        pgm.fit(spec, str(csv), learner="mcem", chunk_rows=10)
    spec, _ = _graph({"z": {"states": 2, "latent": True}, "y": {"type": "gaussian", "dim": 2, "parents": ["z"]}})
    df = pd.DataFrame({"y[0]": [0.1, np.nan, 1.0], "y[1]": [0.3, 0.2, np.nan]})
    with pytest.raises(pgm.DataError, match="part of its 2 columns"):
        pgm.fit(spec, df, learner="stochastic-em")


def test_cli_fit_with_a_sampling_learner(tmp_path, capsys):
    import yaml

    from pgm.cli import main

    spec, _ = _graph(COUPLED)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(exclude_none=True, by_alias=True), sort_keys=False))
    csv = tmp_path / "d.csv"
    df = _coupled_data(200)
    df.to_csv(csv, index=False)
    out = tmp_path / "out.yaml"
    code = main(["fit", str(path), str(csv), "--learner", "stochastic-em", "--max-iter", "6", "-o", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    fitted = pgm.load(out)
    assert f"(6 iterations, log-likelihood {fitted.log_likelihood(df):.6g})" in text  # the averaged parameters'


def test_discrete_and_gaussian_hidden_nodes_together():
    """A mixture of factor analysers (z -> f -> x, z and f latent): z's full conditional given the
    drawn factor equals enumeration with f observed, and mcem started at EM's answer stays there."""
    nodes = {"z": {"states": 2, "latent": True}, "f": {"type": "gaussian", "latent": True, "parents": ["z"]},
             "x": {"type": "gaussian", "dim": 3, "parents": ["f", "z"]}}
    spec, graph = _graph(nodes)
    rng = np.random.default_rng(1)
    n = 600
    z = rng.integers(0, 2, n)
    f = rng.normal(size=n) * (1 + z)
    x = np.where(z[:, None] == 1, 3.0, -1.0) + f[:, None] * np.array([1.0, 0.5, -1.0]) + rng.normal(size=(n, 3)) * 0.4
    df = pd.DataFrame(x, columns=["x[0]", "x[1]", "x[2]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = pgm.fit(spec, df, learner="em", max_iter=100, n_init=2)
    enc = encode(graph, df)
    chain = Gibbs(graph, gibbs_layout(graph, enc), enc, em.cpds, np.random.default_rng(0))
    for s in range(3):
        chain.sweep(em.cpds, np.random.default_rng(s))
    lc = chain.conditional("z", em.cpds)
    q = np.exp(lc - lc.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    _, full = _graph({"z": {"states": 2}, "f": {"type": "gaussian", "parents": ["z"]}, "x": nodes["x"]})
    data = EncodedData(n, {"z": np.full(n, -1)}, dict(chain.values), missing={"z": np.ones(n, bool)})
    _, _, parts = hidden_parts(full, full.families, em.cpds, data, ("z",))
    np.testing.assert_allclose(q, np.exp(parts[0].table), rtol=1e-9, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = pgm.fit(spec, df, learner="mcem", init=em, max_iter=5, samples=10)
    ll = em.log_likelihood(df)
    assert mc.info["history"] == "log-likelihood"
    assert ll - 2e-3 * abs(ll) < mc.log_likelihood(df) <= ll + 1e-6 * abs(ll)
