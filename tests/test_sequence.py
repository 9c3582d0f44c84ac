"""Sequence models (issue 14): `sequence:` and `prev:`, forward-backward EM, Viterbi, sampling.

Independent checks: a numpy forward algorithm written here, hmmlearn's answers stored by
tests/reference/make_hmm_reference.py, and brute force over every hidden path of short sequences
of a two-slice network with discrete, gaussian and logistic families and missing cells.
"""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

REF = json.loads((Path(__file__).parent / "reference" / "hmm_hmmlearn.json").read_text())


def _long(lengths, columns: dict) -> pd.DataFrame:
    seq = np.repeat(np.arange(len(lengths)), lengths)
    t = np.concatenate([np.arange(n) for n in lengths])
    return pd.DataFrame({"seq": seq, "t": t, **columns})


def _fitted(spec: dict, params: dict) -> FittedModel:
    return FittedModel.from_spec(parse_spec({**spec, "params": params}))


DISCRETE = {"name": "dhmm", "sequence": {"id": "seq", "order": "t"},
            "nodes": {"h": {"states": 3, "latent": True, "prev": ["h"]}, "o": {"states": 4, "parents": ["h"]}}}
GAUSSIAN = {"name": "ghmm", "sequence": {"id": "seq", "order": "t"},
            "nodes": {"h": {"states": 3, "latent": True, "prev": ["h"]},
                      "x": {"type": "gaussian", "dim": 2, "parents": ["h"]}}}


def discrete_true() -> FittedModel:
    return _fitted(DISCRETE, {"h@first": {"table": REF["start"]}, "h": {"table": REF["trans"]},
                              "o": {"table": REF["emit"]}})


def gaussian_true() -> FittedModel:
    return _fitted(GAUSSIAN, {"h@first": {"table": REF["start"]}, "h": {"table": REF["trans"]},
                              "x": {"intercept": REF["means"], "covariance": REF["covars"]}})


def discrete_data() -> pd.DataFrame:
    return _long(REF["lengths"], {"o": REF["symbols"]})


def gaussian_data() -> pd.DataFrame:
    x = np.array(REF["x"])
    return _long(REF["lengths"], {"x[0]": x[:, 0], "x[1]": x[:, 1]})


def numpy_forward(log_emit: np.ndarray, lengths, start, trans) -> float:
    """A plain forward algorithm in log space, one sequence at a time."""
    total, pos = 0.0, 0
    ls, lt = np.log(start), np.log(trans)
    for n in lengths:
        a = ls + log_emit[pos]
        for t in range(1, n):
            a = logsumexp(a[:, None] + lt, axis=0) + log_emit[pos + t]
        total += logsumexp(a)
        pos += n
    return total


# ------------------------------------------------------------------ HMMs against numpy and hmmlearn
def test_discrete_hmm_log_likelihood_equals_numpy_forward_and_hmmlearn():
    fitted, data = discrete_true(), discrete_data()
    log_emit = np.log(np.array(REF["emit"]))[:, REF["symbols"]].T
    expected = numpy_forward(log_emit, REF["lengths"], REF["start"], REF["trans"])
    got = fitted.log_likelihood(data)
    assert got == pytest.approx(expected, abs=1e-10, rel=1e-12)
    assert got == pytest.approx(REF["discrete_score"], abs=1e-8)
    rows = fitted.row_log_likelihood(data)
    assert rows.sum() == pytest.approx(got, abs=1e-9)


def test_gaussian_hmm_log_likelihood_equals_numpy_forward_and_hmmlearn():
    fitted, data = gaussian_true(), gaussian_data()
    x = np.array(REF["x"])
    log_emit = np.column_stack([multivariate_normal(REF["means"][k], REF["covars"][k]).logpdf(x) for k in range(3)])
    expected = numpy_forward(log_emit, REF["lengths"], REF["start"], REF["trans"])
    got = fitted.log_likelihood(data)
    assert got == pytest.approx(expected, abs=1e-10, rel=1e-12)
    assert got == pytest.approx(REF["gaussian_score"], abs=1e-8)


def test_viterbi_equals_hmmlearn_decode():
    got = discrete_true().most_probable(discrete_data())
    assert got["h"].tolist() == REF["discrete_decode"]
    assert list(got.columns) == ["seq", "t", "h", "o"] and got["o"].tolist() == REF["symbols"]
    got = gaussian_true().most_probable(gaussian_data())
    assert got["h"].tolist() == REF["gaussian_decode"]


def test_gaussian_fit_reaches_hmmlearns_best_of_several_starts():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(GAUSSIAN), gaussian_data(), n_init=3, seed=0, tol=1e-10, max_iter=3000)
    assert fitted.log_likelihood(gaussian_data()) >= REF["gaussian_best_fit"] - 1e-6
    for run in fitted.info["runs"]:
        assert np.all(np.diff(run) >= -1e-8 * abs(run[-1]))


@pytest.mark.slow
def test_discrete_fit_reaches_hmmlearns_best_of_several_starts():
    # the discrete HMM converges slowly (several hundred iterations per start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(DISCRETE), discrete_data(), n_init=2, seed=0, tol=1e-10, max_iter=3000)
    assert fitted.log_likelihood(discrete_data()) >= REF["discrete_best_fit"] - 1e-4
    for run in fitted.info["runs"]:
        assert np.all(np.diff(run) >= -1e-8 * abs(run[-1]))


# ------------------------------------------------------------------ a two-slice network against brute force
TBN = {"name": "tbn", "sequence": {"id": "seq", "order": "t"},
       "nodes": {"u": {"states": 2},                                           # an input, sometimes missing
                 "g": {"type": "gaussian"},                                    # an observed gaussian input
                 "r": {"states": 2, "latent": True, "parents": ["u"], "prev": ["r"]},
                 "z": {"states": 3, "parents": ["r"], "prev": ["z"]},          # observed, sometimes missing
                 "y": {"type": "gaussian", "parents": ["r"], "prev": ["u"]},   # its transition reads data
                 "x": {"states": 2, "cpd": "logistic", "parents": ["g", "r"]}}}


def tbn_params() -> dict:
    rng = np.random.default_rng(3)

    def table(rows, k):
        return rng.dirichlet(np.ones(k) * 2, size=rows).tolist()

    return {"u": {"table": [0.35, 0.65]}, "g": {"intercept": 0.5, "covariance": 1.5},
            "r@first": {"table": table(2, 2)}, "r": {"table": table(4, 2)},
            "z@first": {"table": table(2, 3)}, "z": {"table": table(6, 3)},
            "y@first": {"intercept": [0.3, -0.4], "covariance": [0.9, 0.6]},
            "y": {"intercept": [-1.0, 1.0, 0.5, 2.0], "covariance": [0.5, 1.0, 0.8, 0.3]},
            "x": {"intercept": [0.0, 0.4], "coef": [[0.0, 0.0], [1.5, -0.7]], "features": ["r=1", "g"]}}


def tbn_data(seed: int = 0):
    fitted = _fitted(TBN, tbn_params())
    lengths = [3, 1, 2, 3, 2, 3]
    full = fitted.sample(len(lengths), seed=seed, length=3)
    keep = np.concatenate([np.arange(n) + 3 * i for i, n in enumerate(lengths)])
    data = full.iloc[keep].reset_index(drop=True).drop(columns=["r"])
    rng = np.random.default_rng(seed)
    data["u"] = data["u"].astype(float).where(rng.random(len(data)) > 0.3)
    data["z"] = data["z"].astype(float).where(rng.random(len(data)) > 0.3)
    data["y"] = data["y"].where(rng.random(len(data)) > 0.2)
    return fitted, data


def brute_force(params: dict, data: pd.DataFrame):
    """Every hidden path of each sequence, listed: (log-likelihood, posterior of r per row, best path)."""
    tu, tr0, tr, tz0, tz = (np.array(params[k]["table"]) for k in ("u", "r@first", "r", "z@first", "z"))
    ym, yv = np.array(params["y"]["intercept"]), np.array(params["y"]["covariance"])
    ym0, yv0 = np.array(params["y@first"]["intercept"]), np.array(params["y@first"]["covariance"])
    xi, xc = np.array(params["x"]["intercept"]), np.array(params["x"]["coef"])
    gm, gv = params["g"]["intercept"], params["g"]["covariance"]
    total = 0.0
    post = np.zeros((len(data), 2))
    best = {}
    states = list(itertools.product(range(2), range(2), range(3)))           # (u, r, z) per step
    for _, rows in data.groupby("seq", sort=False):
        rows = rows.sort_values("t")
        n = len(rows)
        cells = list(rows.itertuples())  # plain tuples: the loop below runs 12^n times
        scores, paths = [], []
        for path in itertools.product(range(len(states)), repeat=n):
            lp = 0.0
            for t, row in enumerate(cells):
                u, r, z = states[path[t]]
                if (not np.isnan(row.u) and u != row.u) or (not np.isnan(row.z) and z != row.z):
                    lp = -np.inf
                    break
                lp += np.log(tu[u]) - 0.5 * (np.log(2 * np.pi * gv) + (row.g - gm) ** 2 / gv)
                logits = xi + xc @ np.array([float(r == 1), row.g])
                lp += logits[int(row.x)] - logsumexp(logits)
                if t == 0:  # first-step CPDs: parents of the same step only
                    lp += np.log(tr0[u, r]) + np.log(tz0[r, z])
                    mean, var = ym0[r], yv0[r]
                else:  # later steps: the parents, then the previous step's (first slowest)
                    pu, pr, pz = states[path[t - 1]]
                    lp += np.log(tr[u * 2 + pr, r]) + np.log(tz[r * 3 + pz, z])
                    mean, var = ym[r * 2 + pu], yv[r * 2 + pu]
                if not np.isnan(row.y):  # a missing y sums out to 1
                    lp += -0.5 * (np.log(2 * np.pi * var) + (row.y - mean) ** 2 / var)
            scores.append(lp)
            paths.append(path)
        scores = np.array(scores)
        ll = logsumexp(scores)
        total += ll
        w = np.exp(scores - ll)
        for t, idx in enumerate(rows.index):
            for p, wp in zip(paths, w):
                post[idx, states[p[t]][1]] += wp
        top = paths[int(np.argmax(scores))]
        best.update({idx: states[top[t]] for t, idx in enumerate(rows.index)})
    return total, post, best


def test_two_slice_network_with_missing_cells_equals_brute_force():
    params = tbn_params()
    fitted, data = tbn_data()
    ll, post, best = brute_force(params, data)
    assert fitted.log_likelihood(data) == pytest.approx(ll, abs=1e-10, rel=1e-12)
    got = fitted.posterior("r", data)
    np.testing.assert_allclose(got.to_numpy(), post, atol=1e-10)
    mp = fitted.most_probable(data)
    for idx, (u, r, z) in best.items():
        assert (mp.loc[idx, "u"], mp.loc[idx, "r"], mp.loc[idx, "z"]) == (u, r, z)
    # shuffled rows: the same answers, aligned with the given rows
    shuffled = data.sample(frac=1.0, random_state=4)
    assert fitted.log_likelihood(shuffled) == pytest.approx(ll, abs=1e-10, rel=1e-12)
    np.testing.assert_allclose(fitted.posterior("r", shuffled).loc[data.index].to_numpy(), post, atol=1e-10)
    assert fitted.most_probable(shuffled).loc[data.index, "r"].tolist() == mp["r"].tolist()


@pytest.mark.slow
def test_two_slice_network_fits_by_em_monotonically():
    fitted, data = tbn_data(1)
    big = pd.concat([fitted.sample(60, seed=s, length=6) for s in range(2)], ignore_index=True)
    big["seq"] = np.repeat(np.arange(120), 6)
    big = big.drop(columns=["r"])
    big.loc[big.index % 7 == 0, "z"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = pgm.fit(parse_spec(TBN), big, max_iter=15, seed=1)
    assert np.all(np.diff(refit.history) >= -1e-8 * abs(refit.history[-1]))
    assert refit.log_likelihood(big) == pytest.approx(refit.history[-1], rel=1e-10)
    assert set(refit.to_params()) == {"u", "g", "r@first", "r", "z@first", "z", "y@first", "y", "x"}


# ------------------------------------------------------------------ data handling
def test_lengths_order_and_timestamps_do_not_change_the_answer():
    fitted, data = discrete_true(), discrete_data()
    ll = fitted.log_likelihood(data)
    shuffled = data.sample(frac=1.0, random_state=0)
    assert fitted.log_likelihood(shuffled) == pytest.approx(ll, abs=1e-9)
    stamped = data.assign(t=pd.Timestamp("2026-01-01") + pd.to_timedelta(data["t"] * 3, unit="h"),
                          seq=data["seq"].map(lambda s: f"s{s:02d}"))
    assert fitted.log_likelihood(stamped.iloc[::-1]) == pytest.approx(ll, abs=1e-9)
    gaps = data.assign(t=data["t"] * 2.5 + 7)  # only the order matters
    assert fitted.log_likelihood(gaps) == pytest.approx(ll, abs=1e-9)
    post = fitted.posterior("h", shuffled)
    assert post.index.equals(shuffled.index)
    np.testing.assert_allclose(post.loc[data.index].to_numpy(), fitted.posterior("h", data).to_numpy(), atol=1e-12)


def test_short_sequences_absent_columns_and_empty_steps():
    fitted, data = discrete_true(), discrete_data()
    first = data[data["t"] == 0]  # every sequence of length one: no transition at all
    expected = np.log(np.array(REF["start"]) @ np.array(REF["emit"])[:, first["o"]]).sum()
    assert fitted.log_likelihood(first) == pytest.approx(expected, abs=1e-12)
    # a node whose column is absent is predicted at every step (its posterior is the predictive one)
    post = fitted.posterior("o", data.drop(columns=["o"]))
    predictive = np.array(REF["start"]) @ np.array(REF["emit"])
    np.testing.assert_allclose(post.loc[first.index].to_numpy(), np.tile(predictive, (len(first), 1)), atol=1e-12)
    # a step with every cell missing is not dropped: it still moves its chain on one step
    blank = data.assign(o=data["o"].astype(float).where(data["t"] != 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = fitted.log_likelihood(blank)
    log_emit = np.log(np.array(REF["emit"]))[:, REF["symbols"]].T
    log_emit[data["t"].to_numpy() == 1] = 0.0
    assert ll == pytest.approx(numpy_forward(log_emit, REF["lengths"], REF["start"], REF["trans"]), abs=1e-10)


def test_data_errors_name_the_problem():
    fitted, data = discrete_true(), discrete_data()
    with pytest.raises(pgm.DataError, match="missing id column 'seq'"):
        fitted.log_likelihood(data.drop(columns=["seq"]))
    with pytest.raises(pgm.DataError, match="missing order column 't'"):
        fitted.log_likelihood(data.drop(columns=["t"]))
    dup = pd.concat([data, data.iloc[[5]]], ignore_index=True)
    with pytest.raises(pgm.DataError, match=r"duplicated \(seq, t\) pair.*rows 5 and"):
        fitted.log_likelihood(dup)
    with pytest.raises(pgm.DataError, match="order column 't'.*empty"):
        fitted.log_likelihood(data.assign(t=data["t"].where(data.index != 3)))
    with pytest.raises(pgm.PGMError, match="chunk_rows= reads a .csv or .parquet file in chunks"):
        pgm.fit(parse_spec(DISCRETE), data, chunk_rows=100)  # streaming: tests/test_sequence_stream.py
    with pytest.raises(pgm.DataError, match="weights column 'w' weighs whole sequences"):  # one weight per sequence
        pgm.fit(parse_spec(DISCRETE), data.assign(w=data["t"] + 1.0), weights="w")


def test_schema_refusals():
    seq = {"id": "s", "order": "t"}
    cases = [({"name": "a", "nodes": {"h": {"states": 2, "prev": ["h"]}}}, "needs a sequence model"),
             ({"name": "a", "sequence": seq, "nodes": {"h": {"states": 2, "prev": ["k"]}}}, "unknown node 'k'"),
             ({"name": "a", "sequence": seq, "nodes": {"a": {"states": 2, "parents": ["b"]},
                                                        "b": {"states": 2, "parents": ["a"]}}}, "directed cycle"),
             ({"name": "a", "sequence": {"id": "h", "order": "t"}, "nodes": {"h": {"states": 2}}}, "id column 'h'"),
             ({"name": "a", "sequence": seq, "nodes": {"h": {"states": 2, "prev": ["h", "h"]}}}, "listed twice")]
    for data, message in cases:
        with pytest.raises(pgm.ModelError, match=message):
            parse_spec(data)
    # cycles across steps are fine
    spec = parse_spec({"name": "a", "sequence": seq, "nodes": {"a": {"states": 2, "prev": ["b"]},
                                                                "b": {"states": 2, "prev": ["a"]}}})
    assert spec.n_params() == 2 * (1 + 2)


def test_fully_observed_sequences_fit_by_counting():
    data = discrete_data()
    h = np.array(REF["discrete_decode"])
    data = data.assign(h=h)
    spec = parse_spec({**DISCRETE, "nodes": {"h": {"states": 3, "prev": ["h"]}, "o": {"states": 4, "parents": ["h"]}}})
    fitted = pgm.fit(spec, data)
    assert fitted.info["learner"] == "mle" and fitted.history == []
    starts = np.cumsum([0] + REF["lengths"][:-1])
    first = np.bincount(h[starts], minlength=3) / len(starts)
    np.testing.assert_allclose(fitted.cpd("h@first").to_numpy().ravel(), first, atol=1e-12)
    later = np.ones(len(h), dtype=bool)
    later[starts] = False
    counts = np.zeros((3, 3))
    np.add.at(counts, (h[np.flatnonzero(later) - 1], h[later]), 1)
    np.testing.assert_allclose(fitted.cpd("h").to_numpy(), counts / counts.sum(axis=1, keepdims=True), atol=1e-12)


# ------------------------------------------------------------------ save, load, sample
def test_save_load_round_trip(tmp_path):
    fitted = gaussian_true()
    fitted.save(tmp_path / "g.yaml")
    text = (tmp_path / "g.yaml").read_text()
    assert "sequence: {id: seq, order: t}" in text and "h@first:" in text and "# h[t-1]=0" in text
    back = pgm.load(tmp_path / "g.yaml")
    assert back.log_likelihood(gaussian_data()) == fitted.log_likelihood(gaussian_data())
    assert back.n_params == fitted.n_params == 2 + 6 + 3 * (2 + 3)


def test_sample_shape_and_frequencies():
    fitted = discrete_true()
    s = fitted.sample(4000, seed=1, length=5)
    assert list(s.columns) == ["seq", "t", "h", "o"] and len(s) == 20000
    assert s.groupby("seq")["t"].apply(list).map(lambda v: v == [0, 1, 2, 3, 4]).all()
    h = s["h"].to_numpy().reshape(4000, 5)
    np.testing.assert_allclose(np.bincount(h[:, 0], minlength=3) / 4000, REF["start"], atol=0.025)
    counts = np.zeros((3, 3))
    np.add.at(counts, (h[:, :-1].ravel(), h[:, 1:].ravel()), 1)
    np.testing.assert_allclose(counts / counts.sum(axis=1, keepdims=True), REF["trans"], atol=0.03)
    with pytest.raises(pgm.DataError, match="length"):
        fitted.sample(3)


# ------------------------------------------------------------------ command line
def test_cli_validate_show_fit_and_refusals(tmp_path, capsys):
    from pgm.cli import main

    model = tmp_path / "hmm.yaml"
    model.write_text("name: hmm\nsequence: {id: seq, order: t}\nnodes:\n"
                     "  h: {states: 3, latent: true, prev: [h]}\n  o: {states: 4, parents: [h]}\n")
    assert main(["validate", str(model)]) == 0
    assert "sequence (id seq, order t), 2 nodes, 1 latent, 17 free parameters" in capsys.readouterr().out
    assert main(["show", str(model)]) == 0
    shown = capsys.readouterr().out
    assert "h  discrete 3 | h[t-1]  [latent]" in shown and "'seq' names the sequence" in shown
    data = tmp_path / "d.csv"
    discrete_data().sample(frac=1.0, random_state=2).to_csv(data, index=False)
    out = tmp_path / "fit.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(model), str(data), "-o", str(out), "--max-iter", "5"]) == 0
    fitted = pgm.load(out)
    assert fitted.log_likelihood(data) == pytest.approx(fitted.log_likelihood(discrete_data()), abs=1e-9)
    assert main(["show", str(out)]) == 0
    assert "h@first" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(model), str(data), "-o", str(tmp_path / "x.yaml"), "--max-iter", "5",
                     "--chunk-rows", "50"]) == 0
    assert pgm.load(tmp_path / "x.yaml").log_likelihood(data) == pytest.approx(fitted.log_likelihood(data), abs=1e-9)


def test_logistic_transition_equals_the_unrolled_network():
    """A logistic transition on a gaussian input: the sequence model against the same model unrolled
    over three steps with ties and solved by pgm's non-temporal enumeration (another code path)."""
    seq_spec = {"name": "lt", "sequence": {"id": "seq", "order": "t"},
                "nodes": {"g": {"type": "gaussian"},
                          "r": {"states": 2, "latent": True, "cpd": "logistic", "parents": ["g"], "prev": ["r"]},
                          "y": {"type": "gaussian", "parents": ["r"]}}}
    g = {"intercept": 0.2, "covariance": 1.3}
    first = {"intercept": [0.0, 0.3], "coef": [[0.0], [1.1]]}
    later = {"intercept": [0.0, -0.5], "coef": [[0.0, 0.0], [2.0, -0.8]]}
    y = {"intercept": [-1.0, 1.5], "covariance": [0.7, 0.4]}
    seq = _fitted(seq_spec, {"g": g, "r@first": {**first, "features": ["g"]},
                             "r": {**later, "features": ["r[t-1]=1", "g"]}, "y": y})
    nodes: dict = {}
    for t in range(3):
        nodes[f"g{t}"] = {"type": "gaussian", "tie": "gg"}
        parents = [f"g{t}"] if t == 0 else [f"g{t}", f"r{t - 1}"]
        nodes[f"r{t}"] = {"states": 2, "latent": True, "cpd": "logistic", "parents": parents,
                          **({"tie": "rr"} if t else {})}
        nodes[f"y{t}"] = {"type": "gaussian", "parents": [f"r{t}"], "tie": "yy"}
    wide = _fitted({"name": "unrolled", "nodes": nodes},
                   {"gg": g, "r0": {**first, "features": ["g0"]}, "rr": {**later, "features": ["r0=1", "g1"]},
                    "yy": y})
    data = seq.sample(40, seed=5, length=3).drop(columns=["r"])
    table = data.pivot(index="seq", columns="t", values=["g", "y"])
    table.columns = [f"{name}{t}" for name, t in table.columns]
    assert seq.log_likelihood(data) == pytest.approx(wide.log_likelihood(table), abs=1e-9, rel=1e-12)
    post = seq.posterior("r", data)
    for t in range(3):
        rows = data.index[data["t"] == t]
        np.testing.assert_allclose(post.loc[rows].to_numpy(), wide.posterior(f"r{t}", table).to_numpy(), atol=1e-10)
    path = seq.most_probable(data)["r"].to_numpy().reshape(40, 3)
    best = wide.most_probable(table)[["r0", "r1", "r2"]].to_numpy()
    np.testing.assert_array_equal(path, best)


def test_drawing_shows_one_step_with_dashed_arcs_from_the_previous_step():
    pytest.importorskip("matplotlib")
    from pgm.draw import draw

    spec = parse_spec({"name": "r", "sequence": {"id": "s", "order": "t"},
                       "nodes": {"u": {"states": 2}, "r": {"states": 2, "latent": True, "parents": ["u"],
                                                           "prev": ["r", "u"]}}})
    fig = draw(spec)
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_children() if a.get_gid()}
    assert {"node:u", "node:r", "edge:u->r", "prev:r->r", "prev:u->r"} <= gids
    assert sum(t.get_text() == "t-1" for ax in fig.axes for t in ax.texts) == 2


def test_priors_ties_and_scores():
    data = discrete_data().assign(h=np.array(REF["discrete_decode"]))
    spec = {**DISCRETE, "nodes": {"h": {"states": 3, "prev": ["h"], "prior": {"dirichlet": [1, 2, 3]}},
                                  "o": {"states": 4, "parents": ["h"]}}}
    fitted = pgm.fit(parse_spec(spec), data)
    h = data["h"].to_numpy()
    starts = np.cumsum([0] + REF["lengths"][:-1])
    first = np.bincount(h[starts], minlength=3) + np.array([1, 2, 3])
    np.testing.assert_allclose(fitted.cpd("h@first").to_numpy().ravel(), first / first.sum(), atol=1e-12)
    with pytest.raises(pgm.ModelError, match="has `prev:`"):
        parse_spec({**DISCRETE, "nodes": {"h": {"states": 3, "prev": ["h"], "prior": {"dirichlet": [[1, 1, 1]] * 3}},
                                          "o": {"states": 4, "parents": ["h"]}}})
    with pytest.raises(pgm.PGMError, match="not available yet"):
        pgm.score(parse_spec(spec), data, "bdeu")
    assert fitted.bic(data) == pytest.approx(-2 * fitted.log_likelihood(data) + fitted.n_params * np.log(len(data)))


def test_refusals_of_the_learner():
    data = discrete_data()
    with pytest.raises(pgm.PGMError, match="does not fit a sequence model; use 'em' or 'hard-em'"):
        pgm.fit(parse_spec(DISCRETE), data, learner="mcem")
    with pytest.raises(pgm.PGMError, match="learner='mle' needs every cell observed"):
        pgm.fit(parse_spec(DISCRETE), data, learner="mle")
    wide = {"name": "w", "sequence": {"id": "seq", "order": "t"},
            "nodes": {**{f"z{i}": {"states": 2, "latent": True, "prev": [f"z{i}"]} for i in range(13)},
                      "o": {"states": 4, "parents": ["z0"]}}}
    # beyond exact forward-backward: learner='em' is refused, and without a learner the structured
    # mean-field learner fits it (tests/learn/test_structured.py)
    with pytest.raises(pgm.ModelError, match="8.19e\\+03 joint states, more than 4096"):
        pgm.fit(parse_spec(wide), data, learner="em")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pgm.fit(parse_spec(wide), data, max_iter=1).info["learner"] == "variational"
    # a fitted model as the start: EM from the true parameters only climbs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec(DISCRETE), data, init=discrete_true(), max_iter=3)
    assert fitted.history[0] == pytest.approx(REF["discrete_score"], abs=1e-8)
    assert np.all(np.diff(fitted.history) >= 0)


def test_autoregressive_gaussian_equals_the_unrolled_network():
    """y from the previous y (a gaussian prev: parent) and a hidden regime: the sequence model against
    the network unrolled over four steps with ties."""
    seq_spec = {"name": "ar", "sequence": {"id": "seq", "order": "t"},
                "nodes": {"r": {"states": 2, "latent": True, "prev": ["r"]},
                          "y": {"type": "gaussian", "parents": ["r"], "prev": ["y"]}}}
    r0, rr = {"table": [0.3, 0.7]}, {"table": [[0.85, 0.15], [0.25, 0.75]]}
    y0 = {"intercept": [-1.0, 2.0], "covariance": [0.5, 1.5]}
    yy = {"intercept": [0.5, -0.3], "coef": [[0.8], [-0.4]], "covariance": [0.3, 0.9]}
    seq = _fitted(seq_spec, {"r@first": r0, "r": rr, "y@first": y0, "y": yy})
    nodes: dict = {}
    for t in range(4):
        nodes[f"r{t}"] = {"states": 2, "latent": True, **({"parents": [f"r{t - 1}"], "tie": "rr"} if t else {})}
        nodes[f"y{t}"] = {"type": "gaussian", "parents": [f"r{t}"] + ([f"y{t - 1}"] if t else []),
                          **({"tie": "yy"} if t else {})}
    wide = _fitted({"name": "unrolled", "nodes": nodes}, {"r0": r0, "rr": rr, "y0": y0, "yy": yy})
    data = seq.sample(30, seed=2, length=4).drop(columns=["r"])
    table = data.pivot(index="seq", columns="t", values="y")
    table.columns = [f"y{t}" for t in table.columns]
    assert seq.log_likelihood(data) == pytest.approx(wide.log_likelihood(table), abs=1e-9, rel=1e-12)
    post = seq.posterior("r", data)
    for t in range(4):
        np.testing.assert_allclose(post[data["t"] == t].to_numpy(), wide.posterior(f"r{t}", table).to_numpy(),
                                   atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = pgm.fit(parse_spec(seq_spec), data, max_iter=20, seed=0)
    assert np.all(np.diff(refit.history) >= -1e-9 * abs(refit.history[-1]))
    assert refit.cpd("y").columns[1] == "y[t-1]"  # the regressor is named as the previous step's y
    holes = data.assign(y=data["y"].where(~((data["seq"] == 0) & (data["t"] == 1))))
    with pytest.raises(pgm.DataError, match="gaussian node 'y' is missing in rows \\[1\\].*at the next step"):
        seq.log_likelihood(holes)
    last = data.assign(y=data["y"].where(data["t"] != 3))  # nothing depends on the last step's y
    expected = wide.log_likelihood(table.assign(y3=np.nan))
    assert seq.log_likelihood(last) == pytest.approx(expected, abs=1e-9, rel=1e-12)
