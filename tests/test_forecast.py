"""fitted.forecast (issue 14): the predictive distribution of the steps after each sequence.

Independent checks: a numpy filter and an enumeration of every future path written here (HMMs
with discrete and gaussian emissions, sequences of different lengths, missing cells at the end),
and a two-slice network with an autoregressive discrete node against the same network unrolled
over every step (pgm's non-temporal enumeration, another code path: the future nodes are missing
cells there).
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import pgm
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

SEQ = {"id": "seq", "order": "t"}
START = np.array([0.5, 0.3, 0.2])
TRANS = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.25, 0.25, 0.5]])
EMIT = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]])
MEANS = np.array([[-2.0, 0.5], [0.0, 1.0], [3.0, -1.0]])
COVS = np.array([[[1.0, 0.2], [0.2, 0.5]], [[0.3, 0.0], [0.0, 0.3]], [[2.0, -0.4], [-0.4, 1.0]]])


def _fitted(spec: dict, params: dict) -> FittedModel:
    return FittedModel.from_spec(parse_spec({**spec, "params": params}))


def discrete_hmm() -> FittedModel:
    spec = {"name": "d", "sequence": SEQ, "nodes": {"h": {"states": 3, "latent": True, "prev": ["h"]},
                                                    "o": {"states": ["a", "b", "c"], "parents": ["h"]}}}
    return _fitted(spec, {"h@first": {"table": START.tolist()}, "h": {"table": TRANS.tolist()},
                          "o": {"table": EMIT.tolist()}})


def gaussian_hmm() -> FittedModel:
    spec = {"name": "g", "sequence": SEQ, "nodes": {"h": {"states": 3, "latent": True, "prev": ["h"]},
                                                    "x": {"type": "gaussian", "dim": 2, "parents": ["h"]}}}
    return _fitted(spec, {"h@first": {"table": START.tolist()}, "h": {"table": TRANS.tolist()},
                          "x": {"intercept": MEANS.tolist(), "covariance": COVS.tolist()}})


def filtered(log_emit: np.ndarray) -> np.ndarray:
    """p(h_T | x_1..T) by a plain forward pass in log space (one sequence; rows of log_emit by step)."""
    a = np.log(START) + log_emit[0]
    for row in log_emit[1:]:
        a = logsumexp(a[:, None] + np.log(TRANS), axis=0) + row
    return np.exp(a - logsumexp(a))


def future_paths(belief: np.ndarray, k: int) -> np.ndarray:
    """p(h_{T+1..T+k} = path | data) for every path, listed by enumeration: (3,) * k."""
    out = np.zeros((3,) * k)
    for path in itertools.product(range(3), repeat=k):
        out[path] = sum(belief[s] * np.prod([TRANS[([s] + list(path))[j], path[j]] for j in range(k)])
                        for s in range(3))
    return out


def test_discrete_hmm_forecast_equals_the_enumeration_of_future_paths():
    fitted = discrete_hmm()
    data = fitted.sample(6, seed=3, length=7).drop(columns="h")
    lengths = [7, 1, 4, 7, 2, 5]                       # different lengths
    data = data[data["t"] < np.repeat(lengths, 7)].reset_index(drop=True)
    codes = data["o"].cat.codes.to_numpy().astype(float)
    codes[[len(data) - 1, len(data) - 2]] = np.nan   # missing cells at the end of the last sequence
    data["o"] = pd.Categorical.from_codes(np.where(np.isnan(codes), -1, codes).astype(int), ["a", "b", "c"])
    k = 3
    got = fitted.forecast(data.sample(frac=1.0, random_state=1), steps=k, proba=True)
    assert list(got.columns) == ["seq", "t", "o", "p(o=a)", "p(o=b)", "p(o=c)"]
    assert got["seq"].tolist() == list(np.repeat(np.arange(6), k))
    probs = got[["p(o=a)", "p(o=b)", "p(o=c)"]].to_numpy().reshape(6, k, 3)
    for s, n in enumerate(lengths):
        assert got["t"].tolist()[s * k:(s + 1) * k] == [n, n + 1, n + 2]
        rows = codes[data["seq"].to_numpy() == s]
        log_emit = np.where(np.isnan(rows)[:, None], 0.0, np.log(EMIT[:, np.nan_to_num(rows).astype(int)].T))
        belief = filtered(log_emit)
        np.testing.assert_allclose(probs[s, 0], belief @ TRANS @ EMIT, atol=1e-12)   # the closed form at k = 1
        paths = future_paths(belief, k)
        for j in range(k):
            marg = paths.sum(axis=tuple(i for i in range(k) if i != j))
            np.testing.assert_allclose(probs[s, j], marg @ EMIT, atol=1e-12)
    assert got["o"].tolist() == [["a", "b", "c"][i] for i in probs.reshape(-1, 3).argmax(axis=1)]
    assert isinstance(got["o"].dtype, pd.CategoricalDtype)
    # the hidden state may be asked too: p(h_{T+j}) itself
    hidden = fitted.forecast(data, steps=1, nodes=["h"], proba=True)
    seq0 = codes[data["seq"].to_numpy() == 0].astype(int)
    np.testing.assert_allclose(hidden.loc[0, ["p(h=0)", "p(h=1)", "p(h=2)"]].to_numpy(float),
                               filtered(np.log(EMIT[:, seq0].T)) @ TRANS, atol=1e-12)


def test_gaussian_hmm_forecast_is_the_mixture_mean_and_covariance():
    fitted = gaussian_hmm()
    data = fitted.sample(4, seed=2, length=6).drop(columns="h")
    k = 2
    got = fitted.forecast(data, steps=k, proba=True)
    assert list(got.columns) == ["seq", "t", "x[0]", "x[1]", "cov(x[0],x[0])", "cov(x[0],x[1])", "cov(x[1],x[1])"]
    from scipy.stats import multivariate_normal
    for s in range(4):
        x = data.loc[data["seq"] == s, ["x[0]", "x[1]"]].to_numpy()
        log_emit = np.column_stack([multivariate_normal(MEANS[z], COVS[z]).logpdf(x) for z in range(3)])
        p = filtered(log_emit)
        for j in range(k):
            p = p @ TRANS
            mean = p @ MEANS
            cov = np.einsum("z,zde->de", p, COVS + MEANS[:, :, None] * MEANS[:, None, :]) - np.outer(mean, mean)
            row = got.iloc[s * k + j]
            np.testing.assert_allclose(row[["x[0]", "x[1]"]].to_numpy(float), mean, atol=1e-12)
            np.testing.assert_allclose(row[["cov(x[0],x[0])", "cov(x[0],x[1])", "cov(x[1],x[1])"]].to_numpy(float),
                                       [cov[0, 0], cov[0, 1], cov[1, 1]], atol=1e-12)
    assert list(fitted.forecast(data, steps=1).columns) == ["seq", "t", "x[0]", "x[1]"]


TBN = {"name": "tbn", "sequence": SEQ,
       "nodes": {"u": {"states": 2},                                           # an input, forecast too
                 "r": {"states": 2, "latent": True, "parents": ["u"], "prev": ["r"]},
                 "z": {"states": 3, "parents": ["r"], "prev": ["z"]},          # observed, autoregressive
                 "y": {"type": "gaussian", "parents": ["r"], "prev": ["u"]}}}  # reads the previous input


def tbn_params() -> dict:
    rng = np.random.default_rng(7)

    def table(rows, k):
        return rng.dirichlet(np.ones(k) * 2, size=rows).tolist()

    return {"u": {"table": [0.35, 0.65]}, "r@first": {"table": table(2, 2)}, "r": {"table": table(4, 2)},
            "z@first": {"table": table(2, 3)}, "z": {"table": table(6, 3)},
            "y@first": {"intercept": [0.3, -0.4], "covariance": [0.9, 0.6]},
            "y": {"intercept": [-1.0, 1.0, 0.5, 2.0], "covariance": [0.5, 1.0, 0.8, 0.3]}}


def unrolled(n_steps: int) -> FittedModel:
    """The two-slice network written out over ``n_steps`` steps, with ties: a non-temporal model."""
    p = tbn_params()
    nodes: dict = {}
    for t in range(n_steps):
        later = {"tie": "rr"} if t else {}
        nodes[f"u{t}"] = {"states": 2, "tie": "uu"}
        nodes[f"r{t}"] = {"states": 2, "latent": True, "parents": [f"u{t}"] + ([f"r{t - 1}"] if t else []), **later}
        nodes[f"z{t}"] = {"states": 3, "parents": [f"r{t}"] + ([f"z{t - 1}"] if t else []),
                          **({"tie": "zz"} if t else {})}
        nodes[f"y{t}"] = {"type": "gaussian", "parents": [f"r{t}"] + ([f"u{t - 1}"] if t else []),
                          **({"tie": "yy"} if t else {})}
    return _fitted({"name": "wide", "nodes": nodes},
                   {"uu": p["u"], "r0": p["r@first"], "rr": p["r"], "z0": p["z@first"], "zz": p["z"],
                    "y0": p["y@first"], "yy": p["y"]})


def test_autoregressive_network_forecast_equals_the_unrolled_network():
    seq = _fitted(TBN, tbn_params())
    n_obs, k = 3, 2
    data = seq.sample(12, seed=4, length=n_obs).drop(columns="r")
    rng = np.random.default_rng(0)
    data["z"] = data["z"].astype(float).where(rng.random(len(data)) > 0.25)   # missing cells, some at the end
    data["u"] = data["u"].astype(float).where(rng.random(len(data)) > 0.25)
    got = seq.forecast(data, steps=k, nodes=["u", "z", "y"], proba=True)
    wide = unrolled(n_obs + k)
    table = data.pivot(index="seq", columns="t", values=["u", "z", "y"])
    table.columns = [f"{name}{t}" for name, t in table.columns]
    table = table.assign(**{f"{name}{t}": np.nan for name in "uzy" for t in range(n_obs, n_obs + k)})
    for j in range(k):
        rows = got.index[got["t"] == n_obs + j]
        assert got.loc[rows, "seq"].tolist() == list(range(12))
        for name, n in (("u", 2), ("z", 3)):
            post = wide.posterior(f"{name}{n_obs + j}", table).to_numpy()
            np.testing.assert_allclose(got.loc[rows, [f"p({name}={i})" for i in range(n)]].to_numpy(float), post,
                                       atol=1e-10)
        post = wide.posterior(f"y{n_obs + j}", table)
        np.testing.assert_allclose(got.loc[rows, "y"].to_numpy(float), post["mean"].to_numpy(), atol=1e-10)
        np.testing.assert_allclose(got.loc[rows, "variance(y)"].to_numpy(float), post["variance"].to_numpy(),
                                   atol=1e-10)
    assert got["z"].dtype == np.int64


def test_orders_continue_each_sequence():
    fitted = discrete_hmm()
    data = fitted.sample(3, seed=1, length=4).drop(columns="h")
    # integer orders: the sequence's own regular step, else 1
    spaced = data.assign(t=data["t"] * np.repeat([5, 1, 1], 4) + 100)
    spaced.loc[11, "t"] = 110                          # sequence 2: 100, 101, 102, 110 (irregular)
    got = fitted.forecast(spaced, steps=2)
    assert got["t"].tolist() == [120, 125, 104, 105, 111, 112] and got["t"].dtype == np.int64
    # timestamps: each sequence's own regular step
    stamps = data.assign(t=pd.Timestamp("2026-03-01 09:00") + pd.to_timedelta(data["t"] * np.repeat([1, 2, 24], 4),
                                                                                 unit="h"),
                         seq=data["seq"].map({0: "x", 1: "y", 2: "z"}))
    got = fitted.forecast(stamps, steps=2)
    assert got["seq"].tolist() == ["x", "x", "y", "y", "z", "z"]
    assert list(got["t"]) == [pd.Timestamp(s) for s in ("2026-03-01 13:00", "2026-03-01 14:00", "2026-03-01 17:00",
                                                        "2026-03-01 19:00", "2026-03-05 09:00", "2026-03-06 09:00")]
    same = fitted.forecast(data, steps=2, proba=True)
    np.testing.assert_allclose(fitted.forecast(stamps, steps=2, proba=True).iloc[:, 3:].to_numpy(float),
                               same.iloc[:, 3:].to_numpy(float), atol=0)
    tz = stamps.assign(t=stamps["t"].dt.tz_localize("Europe/Paris"))
    assert fitted.forecast(tz, steps=1)["t"].iloc[0] == pd.Timestamp("2026-03-01 13:00", tz="Europe/Paris")
    # fractional orders on a regular grid
    assert fitted.forecast(data.assign(t=data["t"] * 0.1), steps=2)["t"].tolist()[:2] == pytest.approx([0.4, 0.5])
    # no regular step: refused, naming the sequence
    with pytest.raises(pgm.DataError, match=r"1 sequence \(\['z'\]\) has no regular step in the order column 't'"):
        fitted.forecast(stamps.drop(index=[9]).assign(t=lambda d: d["t"].where(d.index != 10, d["t"] + pd.Timedelta(
            "1h"))), steps=1)
    with pytest.raises(pgm.DataError, match=r"one row"):
        fitted.forecast(stamps[stamps["t"] == stamps["t"].min()], steps=1)
    assert fitted.forecast(data[data["t"] == 0], steps=2)["t"].tolist() == [1, 2] * 3


def test_forecast_refusals():
    fitted = discrete_hmm()
    data = fitted.sample(2, seed=0, length=3)
    with pytest.raises(pgm.PGMError, match="steps must be a whole number"):
        fitted.forecast(data, steps=0)
    with pytest.raises(pgm.PGMError, match="steps must be a whole number"):
        fitted.forecast(data, steps=1.5)
    with pytest.raises(pgm.ModelError, match="unknown node 'q'"):
        fitted.forecast(data, nodes=["q"])
    with pytest.raises(pgm.DataError, match="missing order column 't'"):
        fitted.forecast(data.drop(columns="t"))
    plain = FittedModel.from_spec(parse_spec({"name": "p", "nodes": {"a": {"states": 2}},
                                              "params": {"a": {"table": [0.5, 0.5]}}}))
    with pytest.raises(pgm.PGMError, match="forecast\\(\\) continues sequences"):
        plain.forecast(pd.DataFrame({"a": [0, 1]}))
    logit = _fitted({"name": "lg", "sequence": SEQ,
                     "nodes": {"g": {"type": "gaussian", "prev": ["g"]},
                               "x": {"states": 2, "cpd": "logistic", "parents": ["g"]}}},
                    {"g@first": {"intercept": 0.0, "covariance": 1.0},
                     "g": {"intercept": 0.0, "coef": [0.5], "covariance": 1.0},
                     "x": {"intercept": [0.0, 0.1], "coef": [[0.0], [1.0]], "features": ["g"]}})
    rows = logit.sample(2, seed=0, length=3)
    with pytest.raises(pgm.ModelError, match="the discrete node 'x' reads the gaussian node 'g' in the same step"):
        logit.forecast(rows)
    assert list(logit.forecast(rows, nodes=["g"]).columns) == ["seq", "t", "g"]  # g alone is an AR(1)
    ar = _fitted(AR, AR_PARAMS)
    rows = ar.sample(3, seed=0, length=3).drop(columns="r")
    missing = rows.assign(y=rows["y"].where((rows["t"] != 2) | (rows["seq"] == 1)))
    with pytest.raises(pgm.DataError, match=r"'y' is read at the next step, and its cell in the last row of 2 "
                                            r"sequences \(\[0, 2\]\) is missing"):
        ar.forecast(missing)
    zero = _fitted({"name": "d", "sequence": SEQ, "nodes": {"h": {"states": 2, "latent": True, "prev": ["h"]},
                                                            "o": {"states": 2, "parents": ["h"]}}},
                   {"h@first": {"table": [1.0, 0.0]}, "h": {"table": [[1.0, 0.0], [0.0, 1.0]]},
                    "o": {"table": [[1.0, 0.0], [0.0, 1.0]]}})
    with pytest.raises(pgm.DataError, match=r"forecast\(\): 1 sequence \(\[1\]\) has probability zero"):
        zero.forecast(pd.DataFrame({"seq": [0, 1], "t": [0, 0], "o": [0, 1]}))


def test_cli_forecast_writes_the_api_answer(tmp_path, capsys):
    from pgm.cli import main

    fitted = discrete_hmm()
    fitted.save(tmp_path / "hmm.yaml")
    data = fitted.sample(3, seed=2, length=5).drop(columns="h")
    data.loc[[4, 9], "o"] = None                       # missing cells at the end
    data.sample(frac=1.0, random_state=0).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "f.csv"
    assert main(["forecast", str(tmp_path / "hmm.yaml"), str(tmp_path / "d.csv"), "--steps", "3", "--proba",
                 "-o", str(out)]) == 0
    assert "wrote 3 steps after each of 3 sequences" in capsys.readouterr().out
    assert out.read_text() == fitted.forecast(data, steps=3, proba=True).to_csv(index=False)
    assert main(["forecast", str(tmp_path / "hmm.yaml"), str(tmp_path / "d.csv"), "--node", "h"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(got.columns) == ["seq", "t", "h"] and got["t"].tolist() == [5, 5, 5]
    bad = [(["--steps", "0"], "argument --steps: must be >= 1"),
           (["--node", "q"], "unknown node 'q' in forecast()"),
           (["--node", "h@prev"], "unknown node 'h@prev'")]
    for extra, message in bad:
        assert main(["forecast", str(tmp_path / "hmm.yaml"), str(tmp_path / "d.csv"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    stamps = data.assign(t=pd.Timestamp("2026-01-01") + pd.to_timedelta(data["t"] ** 2, unit="D"))
    stamps.to_csv(tmp_path / "s.csv", index=False)
    assert main(["forecast", str(tmp_path / "hmm.yaml"), str(tmp_path / "s.csv")]) == 2
    assert "no regular step in the order column 't'" in capsys.readouterr().err
    (tmp_path / "coin.yaml").write_text("name: coin\nnodes:\n  c: {states: [h, t]}\nparams:\n  c:\n    table: [0.5, 0.5]\n")
    pd.DataFrame({"c": ["h", "t"]}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["forecast", str(tmp_path / "coin.yaml"), str(tmp_path / "c.csv")]) == 2
    assert "this model has no `sequence:`; use pgm predict" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "hmm.yaml"), str(tmp_path / "d.csv"), "-o", str(tmp_path / "d.csv")]) == 2
    assert "writing there would replace it" in capsys.readouterr().err


AR = {"name": "ar", "sequence": SEQ,
      "nodes": {"r": {"states": 2, "latent": True, "prev": ["r"]},
                "y": {"type": "gaussian", "parents": ["r"], "prev": ["y"]}}}
AR_PARAMS = {"r@first": {"table": [0.3, 0.7]}, "r": {"table": [[0.85, 0.15], [0.25, 0.75]]},
             "y@first": {"intercept": [-1.0, 2.0], "covariance": [0.5, 1.5]},
             "y": {"intercept": [0.5, -0.3], "coef": [[0.8], [-0.4]], "covariance": [0.3, 0.9]}}


def test_autoregressive_gaussian_forecast_equals_the_unrolled_network():
    """y from the previous y with a switching regime: the exact predictive moments against the network
    unrolled over the observed and future steps (the future y's are missing cells there)."""
    seq = _fitted(AR, AR_PARAMS)
    n_obs, k = 3, 3
    data = seq.sample(10, seed=6, length=n_obs).drop(columns="r")
    got = seq.forecast(data, steps=k, nodes=["y", "r"], proba=True)
    nodes: dict = {}
    for t in range(n_obs + k):
        nodes[f"r{t}"] = {"states": 2, "latent": True, **({"parents": [f"r{t - 1}"], "tie": "rr"} if t else {})}
        nodes[f"y{t}"] = {"type": "gaussian", "parents": [f"r{t}"] + ([f"y{t - 1}"] if t else []),
                          **({"tie": "yy"} if t else {})}
    wide = _fitted({"name": "unrolled", "nodes": nodes}, {"r0": AR_PARAMS["r@first"], "rr": AR_PARAMS["r"],
                                                         "y0": AR_PARAMS["y@first"], "yy": AR_PARAMS["y"]})
    table = data.pivot(index="seq", columns="t", values="y")
    table.columns = [f"y{t}" for t in table.columns]
    table = table.assign(**{f"y{t}": np.nan for t in range(n_obs, n_obs + k)})
    for j in range(k):
        rows = got.index[got["t"] == n_obs + j]
        post = wide.posterior(f"y{n_obs + j}", table)
        np.testing.assert_allclose(got.loc[rows, "y"].to_numpy(float), post["mean"].to_numpy(), atol=1e-10)
        np.testing.assert_allclose(got.loc[rows, "variance(y)"].to_numpy(float), post["variance"].to_numpy(),
                                   atol=1e-10)
        np.testing.assert_allclose(got.loc[rows, ["p(r=0)", "p(r=1)"]].to_numpy(float),
                                   wide.posterior(f"r{n_obs + j}", table).to_numpy(), atol=1e-10)


def test_linear_dynamical_system_forecast_is_the_kalman_prediction():
    a, b, q = np.array([[0.9, 0.2], [-0.1, 0.8]]), np.array([0.1, -0.2]), np.array([[0.3, 0.05], [0.05, 0.2]])
    c, d, r = np.array([[1.0, 0.5], [0.0, 1.0], [0.3, -0.7]]), np.array([0.5, -1.0, 0.0]), np.diag([0.4, 0.2, 0.6])
    m0, p0 = np.array([0.0, 1.0]), np.array([[1.0, 0.2], [0.2, 0.5]])
    spec = {"name": "lds", "sequence": SEQ,
            "nodes": {"s": {"type": "gaussian", "dim": 2, "latent": True, "prev": ["s"], "standard": False},
                      "y": {"type": "gaussian", "dim": 3, "parents": ["s"]},
                      "z": {"type": "gaussian", "parents": ["s", "y"]}}}   # two correlated gaussian parents
    g = np.array([0.4, -0.6, 1.0, 0.5, -0.3])
    lds = _fitted(spec, {"s@first": {"intercept": m0.tolist(), "covariance": p0.tolist()},
                         "s": {"intercept": b.tolist(), "coef": a.tolist(), "covariance": q.tolist()},
                         "y": {"intercept": d.tolist(), "coef": c.tolist(), "covariance": r.tolist()},
                         "z": {"intercept": 0.2, "coef": g.tolist(), "covariance": 0.1}})
    data = lds.sample(3, seed=1, length=6).drop(columns=["s[0]", "s[1]"]).assign(z=np.nan)  # z never seen
    data = data[data["t"] < np.repeat([6, 2, 4], 6)]
    k = 3
    got = lds.forecast(data, steps=k, nodes=["y", "z"], proba=True)
    state = lds.forecast(data, steps=k, nodes=["s"], proba=True)
    ycols = ["y[0]", "y[1]", "y[2]"]
    for i in range(3):
        ys = data.loc[data["seq"] == i, ycols].to_numpy()
        m, p = m0, p0
        for t, y in enumerate(ys):                                    # a plain Kalman filter
            if t:
                m, p = a @ m + b, a @ p @ a.T + q
            if not np.isnan(y).any():
                gain = p @ c.T @ np.linalg.inv(c @ p @ c.T + r)
                m, p = m + gain @ (y - c @ m - d), p - gain @ c @ p
        for j in range(k):
            m, p = a @ m + b, a @ p @ a.T + q
            row = got.iloc[i * k + j]
            np.testing.assert_allclose(row[ycols].to_numpy(float), c @ m + d, atol=1e-10)
            cov = c @ p @ c.T + r
            np.testing.assert_allclose(row[["cov(y[0],y[0])", "cov(y[0],y[1])", "cov(y[1],y[2])"]].to_numpy(float),
                                       [cov[0, 0], cov[0, 1], cov[1, 2]], atol=1e-10)
            joint = np.block([[p, p @ c.T], [c @ p, cov]])                  # Cov([s, y]) of the future step
            np.testing.assert_allclose(row[["z", "variance(z)"]].to_numpy(float),
                                       [0.2 + g @ np.concatenate([m, c @ m + d]), g @ joint @ g + 0.1], atol=1e-10)
            np.testing.assert_allclose(state.iloc[i * k + j][["s[0]", "s[1]", "cov(s[0],s[1])"]].to_numpy(float),
                                       [m[0], m[1], p[0, 1]], atol=1e-10)
