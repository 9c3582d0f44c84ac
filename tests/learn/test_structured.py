"""Structured mean-field for sequence models (learner="variational" on `sequence:`; issue 15).

Independent computations: pgm's exact forward-backward over the joint hidden state (the ELBO must
stay below its log-likelihood at every iteration, and equal it when the chains are independent
given the data), and for the coordinate update a brute-force enumeration of every hidden path of
short sequences written here in numpy.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import log_expit

import pgm
from pgm.graph import build
from pgm.infer.chain import forward_backward, make_chain_plan
from pgm.learn.structured import _EStep, _log_table, _quadratic, _State, fit_structured, make_structure
from pgm.schema import parse_spec
from pgm.sequence import encode_sequences


def _spec(nodes: dict) -> pgm.ModelSpec:
    return parse_spec({"name": "fhmm", "sequence": {"id": "seq", "order": "t"}, "nodes": nodes})


def _chains(m: int, k: int) -> dict:
    return {f"h{i}": {"states": k, "latent": True, "prev": [f"h{i}"]} for i in range(m)}


def _frame(lengths, rng, columns: dict) -> pd.DataFrame:
    seq = np.repeat(np.arange(len(lengths)), lengths)
    t = np.concatenate([np.arange(n) for n in lengths])
    return pd.DataFrame({"seq": seq, "t": t, **columns}).sample(frac=1.0, random_state=0)  # any row order


def _data(lengths, m, rng, kind="gaussian", missing=0.0) -> pd.DataFrame:
    n = int(sum(lengths))
    h = rng.integers(0, 3, (n, m))
    s = h @ (np.arange(m) + 1.0)
    if kind == "gaussian":
        x = s + rng.normal(0, 0.7, n)
    elif kind == "table":
        x = np.where(rng.random(n) < 0.7, s.astype(int) % 3, rng.integers(0, 3, n)).astype(float)
    else:  # binary
        x = (rng.random(n) < 1 / (1 + np.exp(-(s - s.mean())))).astype(float)
    x[rng.random(n) < missing] = np.nan
    return _frame(lengths, rng, {"x": x})


MODELS = {
    # two chains sharing a gaussian child (the factorial HMM)
    "gaussian": ({**_chains(2, 3), "x": {"type": "gaussian", "parents": ["h0", "h1"]}}, "gaussian", 0.0),
    # a table child with missing cells (a piece of its own) and a binary logistic child
    "table-missing": ({**_chains(2, 2), "x": {"states": 3, "parents": ["h0", "h1"]}}, "table", 0.15),
    "logistic": ({**_chains(3, 2), "x": {"states": 2, "cpd": "logistic", "parents": ["h0", "h1", "h2"]}},
                 "binary", 0.0),
    # the child reads one chain at this step and the other at the previous one
    "lagged": ({**_chains(2, 3), "x": {"type": "gaussian", "parents": ["h0"], "prev": ["h1"]}}, "gaussian", 0.0),
}


def _trace(graph, seq, **kw):
    exact = make_chain_plan(graph, seq)
    gaps = []
    result = fit_structured(graph, seq, trace=lambda i, v, cpds: gaps.append(
        forward_backward(exact, cpds, smooth=False).log_likelihood - v), **kw)
    return result, np.array(gaps)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_elbo_below_exact_log_likelihood_at_every_iteration(model):
    nodes, kind, missing = MODELS[model]
    graph = build(_spec(nodes))
    rng = np.random.default_rng(3)
    seq = encode_sequences(graph, _data(rng.integers(4, 12, 25), 3, rng, kind, missing))
    result, gaps = _trace(graph, seq, max_iter=10 if kind == "binary" else 25)
    h = np.array(result.history)
    assert np.all(np.diff(h) >= -1e-9 * abs(h[-1]))
    assert np.all(gaps >= -1e-8), gaps.min()
    assert gaps[-1] > 1e-6  # the chains are coupled through x: a real gap remains
    print(f"{model}: final ELBO {h[-1]:.4f}, gap to the exact log-likelihood {gaps[-1]:.4g}")


def test_elbo_equals_exact_when_each_chain_has_its_own_children():
    nodes = {**_chains(3, 3), **{f"x{i}": {"type": "gaussian", "parents": [f"h{i}"]} for i in range(3)},
             "o": {"states": 2, "parents": ["h1"]}}
    graph = build(_spec(nodes))
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 15, 30)
    n = int(lengths.sum())
    h = rng.integers(0, 3, (n, 3))
    cols = {f"x{i}": h[:, i] + rng.normal(0, 0.6, n) for i in range(3)}
    cols["o"] = np.where(rng.random(n) < 0.2, np.nan, (h[:, 1] > 0).astype(float))
    seq = encode_sequences(graph, _frame(lengths, rng, cols))
    assert make_structure(graph, seq).pieces == [("h0",), ("h1", "o"), ("h2",)]  # o's missing cells join h1
    result, gaps = _trace(graph, seq, max_iter=15)
    np.testing.assert_allclose(gaps, 0.0, atol=1e-8)
    assert np.all(np.diff(result.history) >= 0)


# ------------------------------------------------------------------------------ against brute force
def _brute(graph, cpds, seq, lengths, x):
    """Every path of each chain of a 2-chain binary model, enumerated: log p(path) and the
    emission log-tables, per sequence."""
    start = [cpds[f"h{i}@first"].probs[0] for i in range(2)]
    trans = [cpds[f"h{i}"].probs for i in range(2)]
    emit = cpds["x"].probs.reshape(2, 2, 3)          # (h0, h1, x)
    out, pos = [], 0
    for n in lengths:
        paths = np.array(list(itertools.product(range(2), repeat=n)))            # (2^n, n)
        prior = [np.log(start[i][paths[:, 0]]) + sum(np.log(trans[i][paths[:, t - 1], paths[:, t]])
                                                     for t in range(1, n)) for i in range(2)]
        out.append((paths, prior, np.log(emit[:, :, x[pos:pos + n]])))          # (2, 2, n)
        pos += n
    return out


def _best_q(prior, paths, lin):
    """q over paths maximising E_q[prior + sum_t lin[t, z_t]] + H(q): exp of it, normalised."""
    score = prior + lin[np.arange(lin.shape[0])[None, :], paths].sum(axis=1)
    q = np.exp(score - score.max())
    return q / q.sum()


def test_each_chain_update_is_the_brute_force_optimum():
    graph = build(_spec({**_chains(2, 2), "x": {"states": 3, "parents": ["h0", "h1"]}}))
    rng = np.random.default_rng(5)
    lengths = [4, 3, 4]
    x = rng.integers(0, 3, sum(lengths))
    seq = encode_sequences(graph, _frame(lengths, rng, {"x": x.astype(float)}))
    st = make_structure(graph, seq)
    assert [p for p in st.pieces] == [("h0",), ("h1",)] and len(st.cross) == 2  # x at the first and the later steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpds = fit_structured(graph, seq, max_iter=2).cpds
    q = _State(st, np.random.default_rng(1))           # random marginals of chain 1 to start from
    es = _EStep(st, q, cpds)
    es.update(0)
    last = es.update(1)
    bound = es.bound(last)
    # the same two coordinate steps by enumeration, sequence by sequence (rows are time-major: row of
    # step t of the sequence of rank r is offsets[t] + r; ids are 0..S-1)
    rank = {int(s): r for r, s in enumerate(seq.ids)}
    start = _State(st, np.random.default_rng(1)).gamma[1]
    total = 0.0
    for s, (paths, prior, lemit) in enumerate(_brute(graph, cpds, seq, lengths, x)):
        rows = seq.offsets[:lengths[s]] + rank[s]
        m1 = start[rows]                                                   # (n, 2) chain 1's marginals
        q0 = _best_q(prior[0], paths, np.einsum("abt,tb->ta", lemit, m1))
        m0 = np.stack([[q0[paths[:, t] == k].sum() for k in range(2)] for t in range(len(rows))])
        np.testing.assert_allclose(q.gamma[0][rows], m0, atol=1e-12)
        q1 = _best_q(prior[1], paths, np.einsum("abt,ta->tb", lemit, m0))
        m1new = np.stack([[q1[paths[:, t] == k].sum() for k in range(2)] for t in range(len(rows))])
        np.testing.assert_allclose(q.gamma[1][rows], m1new, atol=1e-12)
        # the bound of q0 x q1 by enumeration of the pairs of paths
        joint = q0[:, None] * q1[None, :]
        t_idx = np.arange(len(rows))
        lp = (prior[0][:, None] + prior[1][None, :]
              + lemit[paths[:, None, :], paths[None, :, :], t_idx[None, None, :]].sum(axis=2))
        total += float((joint * lp).sum() - (q0 * np.log(q0)).sum() - (q1 * np.log(q1)).sum())
    assert bound == pytest.approx(total, abs=1e-9)


# ------------------------------------------------------------------------------ the automatic choice
def _fhmm_frame(m, k, n_seq, length, seed=0):
    rng = np.random.default_rng(seed)
    n = n_seq * length
    h = rng.integers(0, k, (n, m))
    x = h @ (np.arange(m) + 1.0) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"seq": np.repeat(np.arange(n_seq), length), "t": np.tile(np.arange(length), n_seq), "x": x})


@pytest.mark.slow
@pytest.mark.parametrize("m,k,n_seq", [(6, 3, 100), (10, 2, 50)])
def test_many_chains_fit_without_naming_a_learner(m, k, n_seq):
    spec = _spec({**_chains(m, k), "x": {"type": "gaussian", "parents": [f"h{i}" for i in range(m)]}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, _fhmm_frame(m, k, n_seq, 70), max_iter=3)
    assert fitted.info["learner"] == "variational"
    assert f"{k ** m:.3g} joint states" in fitted.info["learner_reason"]
    assert "operations per iteration" in fitted.info["learner_reason"]
    assert np.all(np.diff(fitted.history) > 0)


def test_beyond_the_joint_limit_em_is_refused_and_variational_fits():
    spec = _spec({**_chains(13, 2), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    df = _fhmm_frame(2, 2, 10, 8)
    with pytest.raises(pgm.ModelError, match=r"learner='em' needs forward-backward .* 8.19e\+03 joint states, "
                                             r"more than 4096.*learner='variational'"):
        pgm.fit(spec, df, learner="em")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, df, max_iter=5)
        named = pgm.fit(spec, df, max_iter=5, learner="variational")
    assert fitted.info["learner"] == "variational" and "learner_reason" not in named.info
    assert fitted.history == named.history
    small = _spec({**_chains(2, 2), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = pgm.fit(small, df, max_iter=2)
    assert exact.info["learner"] == "em" and "learner_reason" not in exact.info


def test_elbo_of_a_fitted_sequence_model():
    spec = _spec({**_chains(2, 3), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    df = _fhmm_frame(2, 3, 20, 15, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, df, learner="variational", max_iter=20)
    assert fitted.info["learner"] == "variational"
    bound, exact = fitted.elbo(df), fitted.log_likelihood(df)
    assert bound <= exact + 1e-9
    assert bound > exact - 0.02 * abs(exact)


def test_cli_fit_says_which_learner_it_chose(tmp_path, capsys):
    import yaml

    from pgm.cli import main

    spec = _spec({**_chains(13, 2), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    path = tmp_path / "fhmm.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(exclude_none=True, by_alias=True), sort_keys=False))
    csv = tmp_path / "x.csv"
    _fhmm_frame(2, 2, 5, 6).to_csv(csv, index=False)
    code = main(["fit", str(path), str(csv), "--max-iter", "2", "-o", str(tmp_path / "out.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("learner:")]
    assert len(lines) == 1 and lines[0].startswith("learner: variational (exact inference would need forward-backward"), out
    assert "ELBO" in out


def test_sequence_weights_equal_repeated_sequences():
    spec = _spec({**_chains(2, 3), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    df = _fhmm_frame(2, 3, 12, 9, seed=4)
    w = np.random.default_rng(0).integers(1, 4, 12)
    weighted = df.assign(w=w[df["seq"]].astype(float))
    repeated = pd.concat([df[df["seq"] == s].assign(seq=f"{s}-{r}") for s in range(12) for r in range(w[s])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, weighted, weights="w", learner="variational", max_iter=10)
    assert np.all(np.diff(fitted.history) >= 0)
    np.testing.assert_allclose(fitted.elbo(weighted, weights="w"), fitted.elbo(repeated), rtol=1e-10)
    assert fitted.elbo(repeated) <= fitted.log_likelihood(repeated) + 1e-9


def test_gaussian_table_of_means_equals_the_kinds_log_prob():
    """The quadratic form of a gaussian child of hidden discrete parents (one product per block of rows)
    against the linear kind's own log-density, parents in any order, one and two dimensions, missing y."""
    rng = np.random.default_rng(0)
    for dim, parents in ((1, ["h0", "h1", "h2"]), (2, ["h2", "h0"])):
        nodes = {"h0": {"states": 2, "latent": True, "prev": ["h0"]}, "h1": {"states": 3, "latent": True, "prev": ["h1"]},
                 "h2": {"states": 2, "latent": True, "prev": ["h2"]},
                 "x": {"type": "gaussian", "dim": dim, "parents": parents},
                 "o": {"states": 2, "parents": ["h1", "h0", "h2"]}}
        graph = build(_spec(nodes))
        cols = {f"x[{i}]": rng.normal(5, 1, 200) for i in range(dim)} if dim > 1 else {"x": rng.normal(5, 1, 200)}
        for c in cols.values():
            c[::17] = np.nan
        cols["o"] = rng.integers(0, 2, 200)
        seq = encode_sequences(graph, _frame([10] * 20, rng, cols))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpds = fit_structured(graph, seq, max_iter=3).cpds
        st = make_structure(graph, seq)
        checked = 0
        for c in st.cross:
            quad = _quadratic(st, c, cpds[graph[c.name].param])
            assert (quad is not None) == c.name.startswith("x")
            if quad is not None:
                np.testing.assert_allclose(_log_table(st, c, cpds, 0, len(c.rows), quad),
                                           _log_table(st, c, cpds, 0, len(c.rows)), atol=1e-9)
                checked += 1
        assert checked == 2


@pytest.mark.parametrize("case", ["latent-children", "autoregressive-short"])
def test_pieces_with_latent_children_and_short_sequences(case):
    """Latent nodes join their hidden parents' piece (a per-step mixture z under h0, a chain h2 driven
    by h1); an observed autoregressive child of two chains; sequences of one step: the bound stays
    below the exact log-likelihood and never decreases."""
    rng = np.random.default_rng(1)
    chains = _chains(2, 2)
    if case == "latent-children":
        nodes = {**chains, "z": {"states": 2, "latent": True, "parents": ["h0"]},
                 "h2": {"states": 2, "latent": True, "parents": ["h1"], "prev": ["h2"]},
                 "x": {"type": "gaussian", "parents": ["z", "h2"]}, "y": {"states": 2, "parents": ["h0", "h1"]}}
        lengths = [6] * 10
        cols = {"x": rng.normal(size=60), "y": rng.integers(0, 2, 60)}
        pieces = [("h0", "z"), ("h1", "h2")]
    else:
        nodes = {**chains, "o": {"states": 3, "parents": ["h0", "h1"], "prev": ["o"]}}
        lengths = [1, 1, 5, 7, 3, 1]
        cols = {"o": rng.integers(0, 3, sum(lengths))}
        pieces = [("h0",), ("h1",)]
    graph = build(_spec(nodes))
    seq = encode_sequences(graph, _frame(lengths, rng, cols))
    assert make_structure(graph, seq).pieces == pieces
    result, gaps = _trace(graph, seq, max_iter=8)
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.history[-1]))
    assert np.all(gaps >= -1e-8) and gaps[-1] > 1e-6
    one_step = _frame([1] * 30, rng, {"x": rng.normal(size=30)})
    graph = build(_spec({**chains, "x": {"type": "gaussian", "parents": ["h0", "h1"]}}))
    result, gaps = _trace(graph, encode_sequences(graph, one_step), max_iter=5)
    assert np.all(gaps >= -1e-8) and np.all(np.diff(result.history) >= 0)


# ------------------------------------------------------------------------------ Jaakkola-Jordan bound
def _bounded_model(rng):
    nodes = {f"h{i}": {"states": 2 if i % 2 else 3, "latent": True, "prev": [f"h{i}"]} for i in range(4)}
    nodes["u"] = {"states": 2}
    nodes["y"] = {"states": 2, "cpd": "logistic", "parents": ["h0", "h1", "h2", "h3", "u"]}
    nodes["z"] = {"states": 2, "cpd": "logistic", "parents": ["h0", "h1"], "prev": ["h2"]}
    graph = build(_spec(nodes))
    lengths = rng.integers(3, 10, 20)
    n = int(lengths.sum())
    cols = {c: rng.integers(0, 2, n) for c in ("y", "u", "z")}
    return graph, encode_sequences(graph, _frame(lengths, rng, cols))


def test_logistic_children_beyond_the_limit_take_the_jaakkola_jordan_bound(monkeypatch):
    import pgm.learn.structured as structured

    rng = np.random.default_rng(0)
    graph, seq = _bounded_model(rng)
    monkeypatch.setattr(structured, "CROSS_LIMIT", 2)  # every cross family bounded
    st = make_structure(graph, seq)
    assert all(c.bounded for c in st.cross) and len(st.cross) == 4
    result, gaps = _trace(graph, seq, max_iter=10)
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.history[-1]))
    assert np.all(gaps >= -1e-8) and gaps[-1] > 1e-6
    # the bound's moments, its per-state terms and its normal equations against enumeration of the
    # joint states of the groups under the product of their marginals
    q = _State(st, np.random.default_rng(2))
    es = _EStep(st, q, result.cpds)
    es.sweep()
    for b in es.bounded:
        c, n = b.c, len(b.c.rows)
        margs = [q.group_marginal(c, g, 0, n) for g in c.groups]
        states = list(itertools.product(*[range(g.size) for g in c.groups]))
        prob = np.stack([np.prod([m[:, s] for m, s in zip(margs, st_)], axis=0) for st_ in states], axis=1)
        a = b.base[:, None] + np.array([sum(p[s] for p, s in zip(b.parts, st_)) for st_ in states])[None, :]
        np.testing.assert_allclose(b.xi, np.sqrt((prob * a ** 2).sum(axis=1)), rtol=1e-10)
        jj = (log_expit(b.xi)[:, None] + (b.sbar[:, None] * a - b.xi[:, None]) / 2
              - b.lam[:, None] * (a ** 2 - b.xi[:, None] ** 2))
        assert b.value() == pytest.approx(float((prob * jj).sum()), rel=1e-10)
        for j, g in enumerate(c.groups):  # E[bound | group j's state] - terms(j): the same for every state
            given = np.stack([(prob * jj)[:, [k for k, st_ in enumerate(states) if st_[j] == s]].sum(axis=1)
                              / np.maximum(margs[j][:, s], 1e-300) for s in range(g.size)], axis=1)
            diff = given - b.terms(j)
            np.testing.assert_allclose(diff - diff[:, :1], 0.0, atol=1e-8)
        feats = np.stack([np.r_[0.0, sum(f[s] for f, s in zip(b.features, st_))] for st_ in states])   # (S, Q+1)
        phi = feats[None, :, :] + np.hstack([np.ones((n, 1)), b.observed])[:, None, :]
        a_mat, b_vec = b.fit()
        np.testing.assert_allclose(a_mat, np.einsum("n,ns,nsi,nsj->ij", b.lam, prob, phi, phi), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(b_vec, np.einsum("n,ns,nsi->i", b.sbar / 2, prob, phi), rtol=1e-9, atol=1e-9)


def test_twenty_binary_chains_with_logistic_children_fit_without_naming_a_learner():
    rng = np.random.default_rng(0)
    nodes = {**{f"h{i}": {"states": 2, "latent": True, "prev": [f"h{i}"]} for i in range(20)},
             **{f"y{j}": {"states": 2, "cpd": "logistic", "parents": [f"h{i}" for i in range(20)]} for j in range(3)}}
    df = _frame([12] * 20, rng, {f"y{j}": rng.integers(0, 2, 240) for j in range(3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(_spec(nodes), df, max_iter=4)
    assert fitted.info["learner"] == "variational" and "1.05e+06 joint states" in fitted.info["learner_reason"]
    assert np.all(np.diff(fitted.history) > 0)


def test_over_the_cost_budget_the_automatic_choice_is_variational_and_em_still_runs(monkeypatch):
    import pgm.learn.variational as variational

    spec = _spec({**_chains(2, 2), "x": {"type": "gaussian", "parents": ["h0", "h1"]}})
    df = _fhmm_frame(2, 2, 10, 8)
    monkeypatch.setattr(variational, "EXACT_COST_BUDGET", 100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen = pgm.fit(spec, df, max_iter=3)
        named = pgm.fit(spec, df, max_iter=3, learner="em")
    assert chosen.info["learner"] == "variational" and "4 joint states, ~3.8e+03 operations" in chosen.info["learner_reason"]
    assert named.info["learner"] == "em"  # within MAX_JOINT: EM runs as asked


def test_one_piece_is_exact_em():
    """An HMM whose only other hidden cells are missing cells of one chain's child (m, with prev: [m])
    is a single piece: the bound is the log-likelihood and the fit is EM's, iteration by iteration."""
    rng = np.random.default_rng(0)
    nodes = {"h": {"states": 3, "latent": True, "prev": ["h"]}, "o": {"states": 4, "parents": ["h"]},
             "x": {"type": "gaussian", "parents": ["h"]}, "m": {"states": 2, "parents": ["h"], "prev": ["m"]}}
    m = rng.integers(0, 2, 300).astype(float)
    m[::7] = np.nan
    df = _frame([10] * 30, rng, {"o": rng.integers(0, 4, 300), "x": rng.normal(size=300), "m": m})
    graph = build(_spec(nodes))
    assert make_structure(graph, encode_sequences(graph, df)).pieces == [("h", "m")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = pgm.fit(_spec(nodes), df, learner="em", accelerate=False, max_iter=12)
        var = pgm.fit(_spec(nodes), df, learner="variational", max_iter=12)
    np.testing.assert_allclose(var.history, em.history, rtol=1e-10)


def test_refusals_name_the_family_and_the_way_out():
    rng = np.random.default_rng(0)
    df = _frame([5] * 4, rng, {"x": rng.normal(size=20)})
    two_steps = _spec({**_chains(2, 2), "x": {"type": "gaussian", "parents": ["h0", "h1"], "prev": ["h0"]}})
    with pytest.raises(pgm.ModelError, match=r"x: it reads the hidden nodes \['h0', 'h0'\] at two steps"):
        pgm.fit(two_steps, df, learner="variational")
    wide = _spec({**_chains(17, 2), "x": {"states": 2, "parents": [f"h{i}" for i in range(17)]}})
    with pytest.raises(pgm.ModelError, match=r"1.31e\+05 joint states, more than .* \(65536\); a binary node with "
                                             r"data can be `cpd: logistic`"):
        pgm.fit(wide, df.assign(x=(df["x"] > 0).astype(int)), learner="variational")
    lds = _spec({"s": {"type": "gaussian", "latent": True, "prev": ["s"]}, "x": {"type": "gaussian", "parents": ["s"]}})
    with pytest.raises(pgm.ModelError, match="latent gaussian node 's'"):
        pgm.fit(lds, df, learner="variational")
