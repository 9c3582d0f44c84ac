"""Linear dynamical systems (a gaussian hidden state in a sequence model): Kalman filter and RTS smoother.

Checked against pykalman's stored log-likelihoods and smoothed moments (tests/reference/
make_lds_reference.py), a plain numpy Kalman filter written here, and brute force: every step of a
short sequence unrolled into one joint Gaussian and conditioned directly with numpy.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import pgm
from pgm.cli import main
from pgm.cpd import config_index
from pgm.fitted import FittedModel
from pgm.graph import PREV
from pgm.schema import parse_spec
from pgm.infer.kalman import STAT_ROWS, _step_covariances, block_model, make_kalman_plan
from pgm.learn.chain import SequenceSource
from pgm.sequence import encode_sequences

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "lds_pykalman.json"

LDS = """
name: lds
graph: directed
sequence: {id: seq, order: t}
nodes:
  s: {type: gaussian, dim: 2, latent: true, prev: [s]%s}
  y: {type: gaussian, dim: 3, parents: [s]}
"""


def _rows(a: np.ndarray) -> list:
    return [list(map(float, r)) for r in np.atleast_2d(a)]


def lds_fitted(p: dict, tmp_path: Path) -> pgm.FittedModel:
    """A fitted LDS file with the parameters ``p`` (first step N(mu0, P0), free: standard: false)."""
    params = {
        "s@first": {"intercept": list(map(float, p["mu0"])), "covariance": _rows(p["P0"])},
        "s": {"intercept": list(map(float, p["b"])), "coef": _rows(p["A"]), "covariance": _rows(p["Q"])},
        "y": {"intercept": list(map(float, p["d"])), "coef": _rows(p["C"]), "covariance": _rows(p["R"])},
    }
    text = LDS % ", standard: false" + "params: " + yaml.safe_dump(params, default_flow_style=True, width=10 ** 6)
    path = tmp_path / "lds.fitted.yaml"
    path.write_text(text)
    return pgm.load(path)


def reference_frame(ref: dict) -> pd.DataFrame:
    rows = []
    for i, seq in enumerate(ref["sequences"]):
        for t, y in enumerate(seq["y"]):
            rows.append([f"s{i}", t] + [np.nan if v is None else v for v in y])
    frame = pd.DataFrame(rows, columns=["seq", "t", "y[0]", "y[1]", "y[2]"])
    return frame.sample(frac=1.0, random_state=1)  # any row order


def numpy_kalman(p: dict, ys: np.ndarray, last: bool = False) -> tuple:
    """A plain covariance-form Kalman filter, one sequence, one step at a time: (log-likelihood, means),
    with ``last`` also the last step's filtered mean and covariance."""
    A, b, Q, C, d, R = (np.asarray(p[k]) for k in ("A", "b", "Q", "C", "d", "R"))
    m, P = np.asarray(p["mu0"], float), np.asarray(p["P0"], float)
    ll, means = 0.0, []
    for t, y in enumerate(ys):
        if t:
            m, P = A @ m + b, A @ P @ A.T + Q
        if not np.isnan(y).all():
            S = C @ P @ C.T + R
            r = y - C @ m - d
            ll += -0.5 * (3 * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + r @ np.linalg.solve(S, r))
            K = P @ C.T @ np.linalg.inv(S)
            m, P = m + K @ r, P - K @ C @ P
        means.append(m)
    return (ll, np.array(means), m, P) if last else (ll, np.array(means))


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads(REFERENCE.read_text())


def test_log_likelihood_equals_pykalman_and_numpy(ref: dict, tmp_path: Path) -> None:
    fitted = lds_fitted(ref["params"], tmp_path)
    frame = reference_frame(ref)
    total = fitted.log_likelihood(frame)
    expected = sum(s["loglikelihood"] for s in ref["sequences"])
    assert total == pytest.approx(expected, rel=1e-10, abs=1e-8)
    rows = pd.Series(fitted.row_log_likelihood(frame), index=frame.index)
    for i, seq in enumerate(ref["sequences"]):
        mine = rows[frame["seq"] == f"s{i}"].sum()
        assert mine == pytest.approx(seq["loglikelihood"], rel=1e-10, abs=1e-8)
        ll, _ = numpy_kalman(ref["params"], np.array([[np.nan if v is None else v for v in y] for y in seq["y"]]))
        assert mine == pytest.approx(ll, rel=1e-10, abs=1e-8)


def test_smoothed_moments_equal_pykalman(ref: dict, tmp_path: Path) -> None:
    fitted = lds_fitted(ref["params"], tmp_path)
    frame = reference_frame(ref)
    post = fitted.posterior("s", frame)
    assert list(post.columns) == ["mean[s[0]]", "mean[s[1]]", "cov[s[0],s[0]]", "cov[s[0],s[1]]", "cov[s[1],s[1]]"]
    assert post.index.equals(frame.index)
    for i, seq in enumerate(ref["sequences"]):
        mine = post[frame["seq"] == f"s{i}"].loc[frame[frame["seq"] == f"s{i}"].sort_values("t").index]
        means = np.array(seq["smoothed_means"])
        covs = np.array(seq["smoothed_covariances"])
        np.testing.assert_allclose(mine[["mean[s[0]]", "mean[s[1]]"]].to_numpy(), means, rtol=0, atol=1e-8)
        np.testing.assert_allclose(mine["cov[s[0],s[0]]"], covs[:, 0, 0], rtol=0, atol=1e-8)
        np.testing.assert_allclose(mine["cov[s[0],s[1]]"], covs[:, 0, 1], rtol=0, atol=1e-8)
        np.testing.assert_allclose(mine["cov[s[1],s[1]]"], covs[:, 1, 1], rtol=0, atol=1e-8)
    # linear-Gaussian: the most probable path is the smoother's mean; observed cells are kept
    best = fitted.most_probable(frame)
    np.testing.assert_allclose(best[["s[0]", "s[1]"]].to_numpy(), post[["mean[s[0]]", "mean[s[1]]"]].to_numpy(),
                               rtol=0, atol=1e-12)
    seen = frame["y[0]"].notna()
    np.testing.assert_array_equal(best.loc[seen, "y[0]"], frame.loc[seen, "y[0]"])


def test_shared_and_per_row_recursions_agree(tmp_path: Path, monkeypatch) -> None:
    """Complete data with one set of matrices for every row take the step-covariance path (the
    covariances once per step, one product per step for the means); it equals the per-row recursion
    and the numpy filter, over sequences of different lengths."""
    truth = lds_fitted(TRUTH, tmp_path)
    data = truth.sample(5, length=60, seed=4).drop(columns=["s[0]", "s[1]"])
    data = data[data["t"] < 60 - 11 * data["seq"]]                     # lengths 60, 49, 38, 27, 16
    plan = make_kalman_plan(truth.graph, encode_sequences(truth.graph, data))
    steps = _step_covariances(plan, block_model(plan, truth.cpds, "first"), block_model(plan, truth.cpds, "later"))
    assert 16 < steps.K < 60    # the covariances reach their fixed point: sequences end before and after it
    ll = truth.log_likelihood(data)
    post = truth.posterior("s", data)
    rows = pd.Series(truth.row_log_likelihood(data), index=data.index)
    for sid, part in data.groupby("seq"):
        expected, _ = numpy_kalman(TRUTH, part[["y[0]", "y[1]", "y[2]"]].to_numpy())
        assert rows[part.index].sum() == pytest.approx(expected, rel=1e-11)
    monkeypatch.setattr("pgm.infer.kalman._shared_model", lambda first, later: False)
    assert truth.log_likelihood(data) == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(truth.posterior("s", data).to_numpy(), post.to_numpy(), rtol=0, atol=1e-10)


def test_forecast_propagates_the_filtered_state(tmp_path: Path) -> None:
    truth = lds_fitted(TRUTH, tmp_path)
    data = truth.sample(3, length=12, seed=6).drop(columns=["s[0]", "s[1]"])
    data = data[data["t"] < 12 - 3 * data["seq"]]                        # lengths 12, 9, 6
    got = truth.forecast(data, steps=3, nodes=["y", "s"], proba=True)
    assert len(got) == 9 and list(got["t"]) == [12, 13, 14, 9, 10, 11, 6, 7, 8]
    A, b, Q, C, d, R = (np.asarray(TRUTH[k]) for k in ("A", "b", "Q", "C", "d", "R"))
    for sid, part in data.groupby("seq"):
        _, _, m, P = numpy_kalman(TRUTH, part.sort_values("t")[["y[0]", "y[1]", "y[2]"]].to_numpy(), last=True)
        rows = got[got["seq"] == sid]
        for j in range(3):
            m, P = A @ m + b, A @ P @ A.T + Q
            row = rows.iloc[j]
            np.testing.assert_allclose(row[["s[0]", "s[1]"]].to_numpy(float), m, atol=1e-10)
            np.testing.assert_allclose(row[["y[0]", "y[1]", "y[2]"]].to_numpy(float), C @ m + d, atol=1e-10)
            S = C @ P @ C.T + R
            assert row["cov(y[0],y[2])"] == pytest.approx(S[0, 2], abs=1e-10)
            assert row["cov(s[1],s[1])"] == pytest.approx(P[1, 1], abs=1e-10)


# ------------------------------------------------------------------ brute force on a richer slice
RICH = """
name: rich
graph: directed
sequence: {id: seq, order: t}
nodes:
  u: {states: [a, b]}
  s: {type: gaussian, dim: 2, latent: true, prev: [s]}
  v: {type: gaussian, latent: true, parents: [s], prev: [v]}
  x: {type: gaussian, prev: [x]}
  y: {type: gaussian, dim: 3, parents: [s, v, u]}
  z: {type: gaussian, dim: 2, parents: [v, x]}
"""


def rich_data(rng: np.random.Generator, lengths: tuple[int, ...]) -> pd.DataFrame:
    rows = []
    for i, n in enumerate(lengths):
        for t in range(n):
            rows.append([i, t, "ab"[rng.integers(2)], *rng.normal(size=1), *rng.normal(size=3), *rng.normal(size=2)])
    return pd.DataFrame(rows, columns=["seq", "t", "u", "x", "y[0]", "y[1]", "y[2]", "z[0]", "z[1]"])


def brute_force(fitted: pgm.FittedModel, frame: pd.DataFrame, asked: str,
                moments_of_families: dict | None = None) -> tuple[float, dict]:
    """Each sequence unrolled into one joint Gaussian over every gaussian cell (given the discrete
    cells), conditioned on its observed cells with numpy: (log-likelihood, posterior moments of
    ``asked`` per (seq, t)).  ``moments_of_families`` collects, per family and configuration, the
    posterior mean and covariance of each row's ``z = [continuous parents, child]``."""
    graph = fitted.graph
    total = 0.0
    moments = {}
    gauss = [v for v in graph.slice if graph[v].gaussian]
    for sid, rows in frame.groupby("seq"):
        rows = rows.sort_values("t")
        T = len(rows)
        codes = {t: int(list(graph["u"].labels).index(rows["u"].iloc[t])) for t in range(T)}
        slots = {}
        size = 0
        for t in range(T):
            for v in gauss:
                slots[(t, v)] = np.arange(size, size + graph[v].dim)
                size += graph[v].dim
        mean = np.zeros(size)
        load = np.zeros((size, size))      # x = mean + load @ eps, eps ~ N(0, I)
        for t in range(T):
            total += np.log(fitted.cpds["u"].probs[0, codes[t]])
            for v in gauss:
                f = v + PREV if t == 0 else v
                fam = graph.families[f]
                cpd = fitted.cpds[graph[f].param]
                c = int(config_index([np.asarray(codes[t]) for _ in fam.disc], fam.cards)) if fam.disc else 0
                idx = slots[(t, v)]
                mean[idx] = cpd.intercept[c]
                k = 0
                for p in fam.cont:
                    dp = graph[p].dim
                    base = p[:-len(PREV)] if p.endswith(PREV) else p
                    src = slots[(t - 1 if (t > 0 and p.endswith(PREV)) else t, base)]
                    w = cpd.coef[c][:, k:k + dp]
                    mean[idx] += w @ mean[src]
                    load[idx] += w @ load[src]
                    k += dp
                load[np.ix_(idx, idx)] += np.linalg.cholesky(cpd.cov[c])
        cov = load @ load.T
        values = np.full(size, np.nan)
        for t in range(T):
            for v in gauss:
                if not graph[v].latent:
                    values[slots[(t, v)]] = rows[list(graph[v].columns)].iloc[t].to_numpy(dtype=float)
        o = np.flatnonzero(~np.isnan(values))
        h = np.flatnonzero(np.isnan(values))
        soo = cov[np.ix_(o, o)]
        r = values[o] - mean[o]
        total += -0.5 * (len(o) * np.log(2 * np.pi) + np.linalg.slogdet(soo)[1] + r @ np.linalg.solve(soo, r))
        gain = cov[np.ix_(h, o)] @ np.linalg.inv(soo)
        post_mean = values.copy()
        post_mean[h] = mean[h] + gain @ r
        post_cov = np.zeros((size, size))
        post_cov[np.ix_(h, h)] = cov[np.ix_(h, h)] - gain @ cov[np.ix_(o, h)]
        for t in range(T):
            idx = slots[(t, asked)]
            moments[(sid, t)] = (post_mean[idx], post_cov[np.ix_(idx, idx)])
            if moments_of_families is None:
                continue
            for v in gauss:
                f = v + PREV if t == 0 else v
                fam = graph.families[f]
                c = int(config_index([np.asarray(codes[t]) for _ in fam.disc], fam.cards)) if fam.disc else 0
                parts = [slots[(t - 1 if (t > 0 and p.endswith(PREV)) else t, p[:-len(PREV)] if p.endswith(PREV)
                                else p)] for p in fam.cont]
                z = np.concatenate(parts + [slots[(t, v)]])
                moments_of_families.setdefault((f, c), []).append((post_mean[z], post_cov[np.ix_(z, z)]))
    return total, moments


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> tuple[pgm.FittedModel, pd.DataFrame]:
    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("rich") / "rich.yaml"
    path.write_text(RICH)
    frame = rich_data(rng, (4, 3, 3, 1))
    with warnings.catch_warnings():  # three updates: parameters to test inference with, not a converged fit
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(pgm.load(path), rich_data(rng, (30, 20, 10)), max_iter=3, seed=1)
    cells = frame[["y[0]", "y[1]", "y[2]", "z[0]", "z[1]"]].to_numpy().copy()
    cells[rng.random(cells.shape) < 0.3] = np.nan   # partly and wholly missing vectors
    cells[2] = np.nan
    frame[["y[0]", "y[1]", "y[2]", "z[0]", "z[1]"]] = cells
    return fitted, frame


def test_rich_slice_equals_brute_force(rich) -> None:
    fitted, frame = rich
    total, moments = brute_force(fitted, frame, "s")
    assert fitted.log_likelihood(frame) == pytest.approx(total, rel=1e-10)
    for node in ("s", "v", "y"):
        _, moments = brute_force(fitted, frame, node)
        post = fitted.posterior(node, frame)
        d = fitted.graph[node].dim
        for i, row in frame.iterrows():
            m, c = moments[(row["seq"], row["t"])]
            if d == 1:
                assert post.loc[i, "mean"] == pytest.approx(m[0], abs=1e-9)
                assert post.loc[i, "variance"] == pytest.approx(c[0, 0], abs=1e-9)
            else:
                cols = fitted.graph[node].columns
                np.testing.assert_allclose(post.loc[i, [f"mean[{a}]" for a in cols]].to_numpy(float), m, atol=1e-9)
                np.testing.assert_allclose(post.loc[i, f"cov[{cols[0]},{cols[1]}]"], c[0, 1], atol=1e-9)


def test_em_statistics_equal_brute_force_moments(rich) -> None:
    """The smoother's expected statistics (E[z], E[z z^T] of every linear family, cross-time moments
    included) equal those of the unrolled joint Gaussian, per discrete-parent configuration."""
    fitted, frame = rich
    collected: dict = {}
    brute_force(fitted, frame, "s", collected)
    source = SequenceSource(fitted.graph, encode_sequences(fitted.graph, frame))
    stats = source.e_step(fitted.cpds).stats
    checked = 0
    for (f, c), pairs in collected.items():
        means = np.array([m for m, _ in pairs])
        mean = means.mean(axis=0)
        scatter = (means - mean).T @ (means - mean) + sum(cv for _, cv in pairs)
        got = stats[f]
        assert got.weight[c] == len(pairs)
        np.testing.assert_allclose(got.mean[c], mean, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.scatter[c], scatter, rtol=1e-9, atol=1e-9)
        checked += 1
    assert {f for f, _ in collected} == {"s@prev", "s", "v@prev", "v", "x@prev", "x", "y@prev", "y", "z@prev", "z"}
    assert checked == 12                                          # y in both states of u, in both blocks


def test_rich_slice_em_is_monotone(rich) -> None:
    fitted, frame = rich
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        again = pgm.fit(fitted.spec, frame, init=fitted, max_iter=15)
    assert np.all(np.diff(again.history) >= -1e-9 * np.abs(again.history[1:]))
    assert again.history[-1] > again.history[0]


def test_em_statistics_in_blocks_equal_whole(rich, monkeypatch) -> None:
    fitted, frame = rich
    monkeypatch.setattr(warnings, "warn", lambda *a, **k: None)
    whole = pgm.fit(fitted.spec, frame, init=fitted, max_iter=2)
    monkeypatch.setattr("pgm.infer.kalman.STAT_ROWS", 3)
    blocked = pgm.fit(fitted.spec, frame, init=fitted, max_iter=2)
    assert STAT_ROWS > 3
    np.testing.assert_allclose(blocked.history, whole.history, rtol=1e-12)


# ------------------------------------------------------------------ learning
TRUTH = {"A": [[0.8, 0.3], [-0.3, 0.8]], "b": [0.0, 0.0], "Q": [[0.2, 0.0], [0.0, 0.2]], "mu0": [0.0, 0.0],
         "P0": [[1.0, 0.0], [0.0, 1.0]], "C": [[1.0, 0.2], [0.4, -0.8], [-0.6, 0.5]], "d": [1.0, -1.0, 0.5],
         "R": [[0.3, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.25]]}


def _implied(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Invariant to the state's affine transform: Cov(y_0) and Cov(y_1, y_0)."""
    A, C, R, P0 = (np.asarray(p[k]) for k in ("A", "C", "R", "P0"))
    return C @ P0 @ C.T + R, C @ A @ P0 @ C.T


@pytest.mark.slow
def test_em_recovers_the_invariants(tmp_path: Path) -> None:
    truth = lds_fitted(TRUTH, tmp_path)
    data = truth.sample(400, length=20, seed=3).drop(columns=["s[0]", "s[1]"])
    path = tmp_path / "lds.yaml"
    path.write_text(LDS % "")
    with warnings.catch_warnings():  # EM on an LDS creeps along the state's rotations: a long tail
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        fitted = pgm.fit(pgm.load(path), data, max_iter=150, tol=1e-9, seed=0)
    h = np.array(fitted.history)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    assert fitted.history[-1] == pytest.approx(fitted.log_likelihood(data), rel=1e-12)
    assert fitted.log_likelihood(data) >= truth.log_likelihood(data)          # the MLE beats the truth
    assert fitted.log_likelihood(data) - truth.log_likelihood(data) < 30      # ... by a few parameters' worth
    got = {"A": fitted.cpds["s"].coef[0], "C": fitted.cpds["y"].coef[0], "R": fitted.cpds["y"].cov[0],
           "P0": fitted.cpds["s@first"].cov[0]}
    for mine, true in zip(_implied(got), _implied(TRUTH)):
        np.testing.assert_allclose(mine, true, atol=0.12)


def test_save_load_round_trip_bit_for_bit(rich, tmp_path: Path) -> None:
    fitted, frame = rich
    fitted.save(tmp_path / "rich.fitted.yaml")
    back = pgm.load(tmp_path / "rich.fitted.yaml")
    for key, cpd in fitted.cpds.items():
        for name in ("intercept", "coef", "cov", "probs"):
            if hasattr(cpd, name):
                np.testing.assert_array_equal(getattr(back.cpds[key], name), getattr(cpd, name))
    assert back.log_likelihood(frame) == fitted.log_likelihood(frame)
    pd.testing.assert_frame_equal(back.posterior("s", frame), fitted.posterior("s", frame))


def test_forecast_of_the_rich_slice_equals_the_unrolled_network(rich) -> None:
    """Forecasts through families that read observed discrete (u) and observed gaussian (x, autoregressive)
    values, whose future is unknown: carried and mixed over (pgm.infer.forecast; these were refused while
    the forecast was the plain Kalman predictive), against the slice unrolled over the observed and future
    steps as one non-temporal network (pgm's gaussian conditioning per discrete configuration)."""
    fitted, _ = rich
    n_obs, k = 3, 2
    data = rich_data(np.random.default_rng(9), (3, 3, 3))
    gauss = ["y[0]", "y[1]", "y[2]", "z[0]", "z[1]"]
    cells = data[gauss].to_numpy().copy()
    cells[np.random.default_rng(1).random(cells.shape) < 0.3] = np.nan  # partly and wholly missing vectors
    data[gauss] = cells
    p = fitted.to_params()
    params = {"uu": p["u"], "s0": p["s@first"], "ss": p["s"], "v0": p["v@first"], "vv": p["v"], "x0": p["x@first"],
              "xx": p["x"], "yy": p["y"], "zz": p["z"]}
    nodes: dict = {}
    for t in range(n_obs + k):
        nodes[f"u{t}"] = {"states": ["a", "b"], "tie": "uu"}
        nodes[f"s{t}"] = {"type": "gaussian", "dim": 2, "latent": True,
                          **({"parents": [f"s{t - 1}"], "tie": "ss"} if t else {"standard": False})}
        nodes[f"v{t}"] = {"type": "gaussian", "latent": True, "parents": [f"s{t}"] + ([f"v{t - 1}"] if t else []),
                          **({"tie": "vv"} if t else {})}
        nodes[f"x{t}"] = {"type": "gaussian", **({"parents": [f"x{t - 1}"], "tie": "xx"} if t else {})}
        nodes[f"y{t}"] = {"type": "gaussian", "dim": 3, "parents": [f"s{t}", f"v{t}", f"u{t}"], "tie": "yy"}
        nodes[f"z{t}"] = {"type": "gaussian", "dim": 2, "parents": [f"v{t}", f"x{t}"], "tie": "zz"}
    wide = FittedModel.from_spec(parse_spec({"name": "wide", "nodes": nodes, "params": params}))
    long = data.melt(id_vars=["seq", "t"], var_name="col")
    long["name"] = long["col"].str[0] + long["t"].astype(str) + long["col"].str[1:]
    table = long.pivot(index="seq", columns="name", values="value")
    table = table.reindex(columns=[c for v in wide.graph.order if not wide.graph[v].latent
                                   for c in wide.graph[v].columns])     # the future cells: missing
    table = table.astype({c: float for c in table.columns if not c.startswith("u")})
    got = fitted.forecast(data, steps=k, nodes=["u", "s", "v", "x", "y", "z"], proba=True)
    for j in range(k):
        rows = got[got["t"] == n_obs + j]
        t = n_obs + j
        np.testing.assert_allclose(rows[["p(u=a)", "p(u=b)"]].to_numpy(float),
                                   wide.posterior(f"u{t}", table).to_numpy(), atol=1e-12)
        for v in ("s", "v", "x", "y", "z"):
            post = wide.posterior(f"{v}{t}", table)
            cols = list(fitted.graph[v].columns)
            want = post.iloc[:, :len(cols)].to_numpy()
            np.testing.assert_allclose(rows[cols].to_numpy(float), want, atol=1e-10)
            var = rows[[f"variance({v})"]] if len(cols) == 1 else rows[[f"cov({a},{b})" for i, a in enumerate(cols)
                                                                         for b in cols[i:]]]
            np.testing.assert_allclose(var.to_numpy(float), post.iloc[:, len(cols):].to_numpy(), atol=1e-10)

def test_sample_draws_sequences_that_fit(rich) -> None:
    fitted, _ = rich
    draws = fitted.sample(3, length=4, seed=0)
    assert list(draws.columns[:2]) == ["seq", "t"] and len(draws) == 12
    assert {"s[0]", "s[1]", "v", "x", "y[0]", "z[1]"} <= set(draws.columns)
    assert np.isfinite(fitted.log_likelihood(draws.drop(columns=["s[0]", "s[1]", "v"])))
    assert fitted.n_params == fitted.spec.n_params()


def test_command_line_fits_scores_and_predicts_an_lds(tmp_path: Path, capsys) -> None:
    truth = lds_fitted(TRUTH, tmp_path)
    data = truth.sample(6, length=15, seed=8).drop(columns=["s[0]", "s[1]"])
    data.loc[4, "y[1]"] = np.nan
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "lds.yaml").write_text(LDS % "")
    out = tmp_path / "fit.yaml"
    assert main(["fit", str(tmp_path / "lds.yaml"), str(tmp_path / "d.csv"), "-o", str(out), "--max-iter", "5"]) == 0
    fitted = pgm.load(out)
    assert main(["score", str(out), str(tmp_path / "d.csv")]) == 0
    printed = capsys.readouterr().out.split("total log-likelihood:")[1].split()[0]   # 10 significant digits
    assert abs(float(printed) - fitted.log_likelihood(data)) < 1e-6
    assert main(["predict", str(out), str(tmp_path / "d.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(predicted[["s[0]", "s[1]"]].to_numpy(),
                               fitted.posterior("s", data)[["mean[s[0]]", "mean[s[1]]"]].to_numpy(), rtol=1e-12)


# ------------------------------------------------------------------ refusals
def test_switching_lds_is_refused_naming_the_nodes(tmp_path: Path) -> None:
    path = tmp_path / "slds.yaml"
    path.write_text(LDS % "" + "  h: {states: 2, latent: true, prev: [h]}\n")
    with pytest.raises(pgm.ModelError, match=r"\['h'\].*\['s'\].*switching linear dynamical system.*observed"):
        pgm.load(path)


def test_a_discrete_node_with_missing_cells_next_to_a_gaussian_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lds.yaml"
    path.write_text(LDS % "" + "  k: {states: [p, q]}\n")
    frame = pd.DataFrame({"seq": [0, 0, 0], "t": [0, 1, 2], "k": ["p", None, "q"],
                          "y[0]": [0.1, 0.2, 0.3], "y[1]": [0.0, 0.1, 0.2], "y[2]": [1.0, 0.9, 0.8]})
    with pytest.raises(pgm.ModelError, match=r"\['k'\].*missing cells.*switching linear dynamical system"):
        pgm.fit(pgm.load(path), frame)


def test_an_observation_of_the_previous_hidden_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lds.yaml"
    path.write_text(LDS % "" + "  w: {type: gaussian, prev: [s]}\n")
    frame = pd.DataFrame({"seq": [0, 0], "t": [0, 1], "w": [0.1, 0.2], "y[0]": [0.1, 0.2], "y[1]": [0.0, 0.1],
                          "y[2]": [1.0, 0.9]})
    with pytest.raises(pgm.ModelError, match=r"'w'.*previous step's hidden state"):
        pgm.fit(pgm.load(path), frame)
