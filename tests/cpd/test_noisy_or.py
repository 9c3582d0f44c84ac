"""Noisy-OR CPDs against computations written out here: the exact likelihood maximised by scipy
from several starts, the joint enumerated in numpy for EM with a hidden parent, sampling
frequencies against the formula, and save/load bit for bit.

P(off | parents) = (1 - leak) * prod over parents that are on of (1 - p_i); first state = off.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit

import pgm
from pgm.cpd.noisy_or import NoisyOrCPD
from pgm.cpd.table import TableCPD
from pgm.encode import encode
from pgm.fitted import FittedModel
from pgm.learn.em import fit_em
from pgm.schema import parse_spec

NODES = {
    "a": {"states": ["no", "yes"]},
    "b": {"states": ["no", "yes"]},
    "c": {"states": 2},
    "y": {"states": ["off", "on"], "cpd": "noisy-or", "parents": ["a", "b", "c"]},
}
TRUTHS = {
    "interior": (0.05, [0.8, 0.3, 0.6]),
    "boundary": (0.0, [0.7, 0.0, 0.4]),  # no leak, and b has no effect: the MLE may sit on the bounds
}


def known(leak: float, p: list[float]) -> FittedModel:
    params = {"a": {"table": [0.6, 0.4]}, "b": {"table": [0.7, 0.3]}, "c": {"table": [0.5, 0.5]},
              "y": {"leak": leak, "p": p}}
    return FittedModel.from_spec(parse_spec({"name": "noisy", "nodes": NODES, "params": params}))


def unfitted() -> pgm.ModelSpec:
    return parse_spec({"name": "noisy", "nodes": NODES})


def exact_row_log_lik(leak: float, p: np.ndarray, on: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log P(y | parents) per row, straight from the definition: ``on`` (n, k) bool, ``y`` (n,) bool."""
    p_off = (1 - leak) * np.prod(np.where(on, 1 - np.asarray(p), 1.0), axis=1)
    with np.errstate(divide="ignore"):
        return np.where(y, np.log1p(-p_off), np.log(p_off))


def indicators(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    on = np.column_stack([frame["a"].astype(str) == "yes", frame["b"].astype(str) == "yes",
                          frame["c"].astype(int) == 1])
    return on, (frame["y"].astype(str) == "on").to_numpy()


def independent_mle(on: np.ndarray, y: np.ndarray, starts: int = 5) -> tuple[np.ndarray, float]:
    """(leak, p_1..p_k) maximising the exact likelihood, by BFGS on logits from several random starts."""
    def loss(z):
        return -exact_row_log_lik(expit(z[0]), expit(z[1:]), on, y).mean()
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # finite differences where a logit saturates
        best = min((optimize.minimize(loss, rng.uniform(-3, 3, on.shape[1] + 1), method="BFGS",
                                      options={"gtol": 1e-11, "maxiter": 10_000}) for _ in range(starts)),
                   key=lambda r: r.fun)
    return expit(best.x), -best.fun * len(y)


@pytest.fixture(scope="module", params=list(TRUTHS))
def case(request):
    truth = TRUTHS[request.param]
    data = known(*truth).sample(20_000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every parent is on somewhere: no warning expected
        fitted = pgm.fit(unfitted(), data)
    return request.param, truth, data, fitted


def fitted_params(fitted: FittedModel) -> np.ndarray:
    cpd = fitted.cpds["y"]
    return np.concatenate([[cpd.leak], cpd.p])


def test_the_fit_is_the_maximum_of_the_exact_likelihood(case):
    name, _, data, fitted = case
    on, y = indicators(data)
    ours = fitted_params(fitted)
    ll_ours = exact_row_log_lik(ours[0], ours[1:], on, y).sum()
    ref, ll_ref = independent_mle(on, y)
    assert ll_ours >= ll_ref - 1e-11 * abs(ll_ref)  # no start of the reference does better
    if name == "interior":  # a unique interior maximum: the parameters agree too
        assert ll_ours == pytest.approx(ll_ref, rel=1e-11)
        np.testing.assert_allclose(ours, ref, atol=2e-6)
    else:  # the maximum sits on the bounds, which logits only approach (so they end a little lower)
        assert ll_ours == pytest.approx(ll_ref, rel=1e-7)
        np.testing.assert_allclose(ours, ref, atol=1e-3)
        assert ours.min() >= 0.0
    # the model's own log-likelihood is the same function (plus the root nodes' terms)
    assert fitted.log_likelihood(data) == pytest.approx(ll_ours + _root_log_lik(fitted, data), rel=1e-12)


def _root_log_lik(fitted: FittedModel, data: pd.DataFrame) -> float:
    total = 0.0
    for node, col in (("a", data["a"].astype(str) == "yes"), ("b", data["b"].astype(str) == "yes"),
                      ("c", data["c"].astype(int) == 1)):
        probs = fitted.cpds[node].probs[0]
        total += float(np.log(np.where(col, probs[1], probs[0])).sum())
    return total


@pytest.mark.parametrize("case", ["interior"], indirect=True)  # the asymptotic normal bound needs an interior truth
def test_the_fit_recovers_the_true_parameters_within_sampling_error(case):
    """|estimate - truth| < 4 standard errors, the errors from the inverse observed information
    of the exact likelihood (numerical Hessian); at 20 000 rows they are 0.004 to 0.02."""
    name, truth, data, fitted = case
    on, y = indicators(data)
    theta = fitted_params(fitted)
    f = lambda t: exact_row_log_lik(t[0], t[1:], on, y).sum()  # noqa: E731
    h, k = 1e-4, len(theta)
    hess = np.empty((k, k))
    for i, j in itertools.product(range(k), repeat=2):
        ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
        hess[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (4 * h * h)
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    assert se.max() < 0.03
    true = np.concatenate([[truth[0]], truth[1]])
    assert np.all(np.abs(theta - true) < 4 * se), (theta, true, se)


def test_sampling_frequencies_follow_the_formula():
    leak, p = TRUTHS["interior"]
    model = known(leak, p)
    data = model.sample(200_000, seed=5)
    on, y = indicators(data)
    for config in itertools.product([False, True], repeat=3):
        rows = np.all(on == np.array(config), axis=1)
        p_on = 1 - (1 - leak) * np.prod(np.where(config, 1 - np.array(p), 1.0))
        n = rows.sum()
        assert abs(y[rows].mean() - p_on) < 4.5 * np.sqrt(p_on * (1 - p_on) / n), config
    assert abs((data["a"] == "yes").mean() - 0.4) < 4.5 * np.sqrt(0.24 / len(data))


def test_query_equals_the_enumerated_joint():
    leak, p = TRUTHS["interior"]
    model = known(leak, p)
    prior = {"a": [0.6, 0.4], "b": [0.7, 0.3], "c": [0.5, 0.5]}
    joint = np.zeros((2, 2, 2))
    for a, b, c in itertools.product(range(2), repeat=3):
        p_off = (1 - leak) * np.prod([1 - q for q, s in zip(p, (a, b, c)) if s])
        joint[a, b, c] = prior["a"][a] * prior["b"][b] * prior["c"][c] * (1 - p_off)
    want = joint.sum(axis=(1, 2)) / joint.sum()
    got = model.query("a", {"y": "on"})
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(model.query("y").to_numpy()[1], joint.sum(), rtol=1e-12)


# --------------------------------------------------------------------------- EM with a hidden parent
HIDDEN = {
    "h": {"states": 2, "latent": True},
    "a": {"states": ["no", "yes"]},
    "z1": {"states": 2, "parents": ["h"]},
    "z2": {"states": 2, "parents": ["h"]},
    "y": {"states": ["off", "on"], "cpd": "noisy-or", "parents": ["h", "a"]},
}
ORDER = ["h", "a", "z1", "z2", "y"]  # topological; every variable binary
HIDDEN_TRUTH = {"h": {"table": [0.6, 0.4]}, "a": {"table": [0.5, 0.5]},
                "z1": {"table": [[0.85, 0.15], [0.2, 0.8]]}, "z2": {"table": [[0.8, 0.2], [0.1, 0.9]]},
                "y": {"leak": 0.1, "p": [0.7, 0.5]}}


def hidden_model(seed: int | None = None) -> FittedModel:
    """The truth (seed None), or random parameters to start EM from."""
    params = HIDDEN_TRUTH
    if seed is not None:
        rng = np.random.default_rng(seed)
        params = {n: {"table": rng.dirichlet([2, 2], size=1 if n in ("h", "a") else 2).squeeze().tolist()}
                  for n in ("h", "a", "z1", "z2")}
        params["y"] = {"leak": float(rng.uniform(0.05, 0.2)), "p": rng.uniform(0.3, 0.9, 2).tolist()}
    return FittedModel.from_spec(parse_spec({"name": "hidden", "nodes": HIDDEN, "params": params}))


def brute_joint(model: FittedModel) -> np.ndarray:
    """p(h, a, z1, z2, y) as a (2, 2, 2, 2, 2) array, from the parameters and the noisy-or formula."""
    c = model.cpds
    joint = np.zeros((2,) * 5)
    for h, a, z1, z2, y in itertools.product(range(2), repeat=5):
        p_off = (1 - c["y"].leak) * (1 - c["y"].p[0]) ** h * (1 - c["y"].p[1]) ** a
        joint[h, a, z1, z2, y] = (c["h"].probs[0, h] * c["a"].probs[0, a] * c["z1"].probs[h, z1]
                                  * c["z2"].probs[h, z2] * (p_off if y == 0 else 1 - p_off))
    return joint


def consistent(data: pd.DataFrame) -> np.ndarray:
    """(n_rows, 32): whether each joint state agrees with each row's observed cells (missing = any)."""
    codes = {"a": data["a"].map({"no": 0, "yes": 1}), "y": data["y"].map({"off": 0, "on": 1}),
             "z1": data["z1"].astype(float), "z2": data["z2"].astype(float)}
    states = np.array(list(itertools.product(range(2), repeat=5)))  # C order, as joint.ravel()
    ok = np.ones((len(data), len(states)), bool)
    for v, col in codes.items():
        x = col.to_numpy(dtype=float)[:, None]
        ok &= np.isnan(x) | (x == states[None, :, ORDER.index(v)])
    return ok


def hidden_data(seed: int = 3, n: int = 3000) -> pd.DataFrame:
    data = hidden_model().sample(n, seed=seed).drop(columns=["h"])
    rng = np.random.default_rng(seed)
    data["a"] = data["a"].astype(object).mask(rng.random(n) < 0.15)
    data["y"] = data["y"].astype(object).mask(rng.random(n) < 0.1)
    data["z1"] = data["z1"].astype(float).mask(rng.random(n) < 0.1)
    return data


def test_marginal_likelihood_with_a_hidden_parent_and_missing_cells_is_the_enumerated_sum():
    model, data = hidden_model(7), hidden_data()
    want = np.log(consistent(data) @ brute_joint(model).ravel())
    np.testing.assert_allclose(model.row_log_likelihood(data), want, rtol=1e-12)


def test_one_em_step_equals_brute_force_expected_counts_and_their_maximum():
    """Expected counts from the enumerated posteriors, then the M-step written out.  A node that is
    missing in a row and has no observed descendant there is summed out of that row exactly (its
    family gives no counts there): the observed-data likelihood does not depend on it."""
    start, data = hidden_model(7), hidden_data()
    ok = consistent(data)
    joint = brute_joint(start).ravel()
    post = (ok * joint / (ok @ joint)[:, None]).reshape((-1,) + (2,) * 5)   # (n, h, a, z1, z2, y)
    graph = start.graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        result = fit_em(graph, encode(graph, data), max_iter=1, tol=0.0, init=dict(start.cpds))  # one update
    assert result.history[0] == pytest.approx(np.log(ok @ joint).sum(), rel=1e-12)
    got = result.cpds
    counts = post.sum(axis=0)
    np.testing.assert_allclose(got["h"].probs[0], counts.sum(axis=(1, 2, 3, 4)) / len(data), rtol=1e-10)
    n_hz1 = post[data["z1"].notna().to_numpy()].sum(axis=(0, 2, 4, 5))          # (h, z1), z1 observed
    np.testing.assert_allclose(got["z1"].probs, n_hz1 / n_hz1.sum(axis=1, keepdims=True), rtol=1e-10)
    n_hay = post[data["y"].notna().to_numpy()].sum(axis=(0, 3, 4))              # (h, a, y), y observed

    def loss(z):  # the expected complete-data log-likelihood of y, maximised from several starts
        leak, p = expit(z[0]), expit(z[1:])
        p_off = (1 - leak) * (1 - p[0]) ** np.arange(2)[:, None] * (1 - p[1]) ** np.arange(2)[None, :]
        return -(n_hay[..., 0] * np.log(p_off) + n_hay[..., 1] * np.log1p(-p_off)).sum() / len(data)
    rng = np.random.default_rng(1)
    best = min((optimize.minimize(loss, rng.uniform(-3, 3, 3), method="BFGS", options={"gtol": 1e-11})
                for _ in range(4)), key=lambda r: r.fun)
    np.testing.assert_allclose(np.concatenate([[got["y"].leak], got["y"].p]), expit(best.x), atol=2e-6)


def test_em_converges_to_a_stationary_point_of_the_enumerated_likelihood():
    """From a random start, EM ends where the enumerated marginal likelihood is flat in the noisy-or
    parameters (a maximum: its gradient is ~0; on a bound p = 0 it may only point outwards)."""
    data = hidden_data()
    graph = hidden_model().graph
    result = fit_em(graph, encode(graph, data), max_iter=3000, tol=1e-14, init=dict(hidden_model(11).cpds))
    assert result.converged
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.history[-1]))
    fitted = FittedModel(hidden_model().spec, graph, result.cpds)
    ok = consistent(data)

    def marginal(leak_p):
        cpds = dict(fitted.cpds)
        cpds["y"] = NoisyOrCPD(leak_p[0], leak_p[1:])
        return np.log(ok @ brute_joint(FittedModel(fitted.spec, fitted.graph, cpds)).ravel()).sum()
    theta = np.concatenate([[fitted.cpds["y"].leak], fitted.cpds["y"].p])
    assert marginal(theta) == pytest.approx(fitted.log_likelihood(data), rel=1e-12)
    h = 1e-6
    grad = [(marginal(theta + h * e) - marginal(theta - h * e)) / (2 * h) for e in np.eye(3)]
    interior = theta > 1e-9
    assert np.abs(np.asarray(grad)[interior]).max() / len(data) < 1e-6, grad
    assert np.all(np.asarray(grad)[~interior] <= 1e-6 * len(data)), grad


# --------------------------------------------------------------------------- files, frames, counts
def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    data = hidden_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(parse_spec({"name": "hidden", "nodes": HIDDEN}), data, max_iter=50)
    path = tmp_path / "hidden.fitted.yaml"
    fitted.save(path)
    assert "cpd: noisy-or" in path.read_text() and "leak:" in path.read_text()
    loaded = pgm.load(path)
    assert loaded.cpds["y"].leak == fitted.cpds["y"].leak
    assert np.array_equal(loaded.cpds["y"].p, fitted.cpds["y"].p)
    assert np.array_equal(loaded.row_log_likelihood(data), fitted.row_log_likelihood(data))
    loaded.save(tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_bytes() == path.read_bytes()
    pd.testing.assert_frame_equal(loaded.sample(100, seed=4), fitted.sample(100, seed=4))


def test_cpd_frame_names_the_causes():
    frame = known(*TRUTHS["interior"]).cpd("y")
    assert list(frame.index) == ["leak", "a", "b", "c"] and frame.index.name == "cause"
    assert list(frame.columns) == ["p(y=on)"]
    np.testing.assert_array_equal(frame.to_numpy()[:, 0], [0.05, 0.8, 0.3, 0.6])


@pytest.mark.parametrize("params, where", [
    ({"leak": 1.5, "p": [0.1, 0.2, 0.3]}, "params.y.leak: probabilities must be in [0, 1]"),
    ({"leak": 0.1, "p": [0.1, -0.2, 0.3]}, "params.y.p: probabilities must be in [0, 1]"),
    ({"leak": 0.1, "p": [0.1, 0.2]}, "params.y.p: expected shape (3,), got (2,)"),
    ({"leak": "0.1", "p": [0.1, 0.2, 0.3]}, "params.y.leak: expected numbers"),
    ({"p": [0.1, 0.2, 0.3]}, "params.y: missing `leak`"),
    ({"leak": 0.1, "p": [0.1, 0.2, 0.3], "table": [0.5, 0.5]}, "params.y.table: unknown parameter; a noisy-or node has `leak`, `p`"),
])
def test_a_bad_params_block_is_refused_naming_the_field(params, where):
    good = {"a": {"table": [0.6, 0.4]}, "b": {"table": [0.7, 0.3]}, "c": {"table": [0.5, 0.5]}}
    with pytest.raises(pgm.ModelError) as err:
        FittedModel.from_spec(parse_spec({"name": "noisy", "nodes": NODES, "params": {**good, "y": params}}))
    assert where in str(err.value)


def test_a_parent_that_is_never_on_is_reported():
    data = known(*TRUTHS["interior"]).sample(2000, seed=2)
    data = data[data["b"] == "no"]
    with pytest.warns(pgm.DataWarning, match=r"y: parent \[1\].*never on in the data: p is undetermined and set to 0"):
        fitted = pgm.fit(unfitted(), data)
    assert fitted.cpds["y"].p[1] == 0.0


def test_parameter_counts_agree_with_the_declaration_for_every_kind():
    spec = parse_spec({"name": "kinds", "nodes": {
        **NODES, "g": {"type": "gaussian", "dim": 2, "parents": ["a"], "covariance": "tied"},
        "u": {"type": "gaussian", "parents": ["g", "c"], "covariance": "diag"},
        "s": {"states": 3, "cpd": "logistic", "parents": ["u", "b"]},
        "t": {"states": 3, "parents": ["a", "s"]}}})
    rng = np.random.default_rng(0)
    n = 400
    frame = known(*TRUTHS["interior"]).sample(n, seed=0)
    frame = frame.assign(**{"g[0]": rng.normal(size=n), "g[1]": rng.normal(size=n), "u": rng.normal(size=n),
                            "s": rng.integers(0, 3, n), "t": rng.integers(0, 3, n)})
    fitted = pgm.fit(spec, frame)
    # a, b, c: 1 each; y: leak + 3; g: 2 configs x 2 intercepts + one tied 2x2 covariance (3);
    # u: 2 configs x (intercept + 2 slopes + variance); s: 2 x (intercept, b=yes, u); t: 6 configs x 2
    assert fitted.n_params == spec.n_params() == 3 + 4 + 7 + 8 + 6 + 12
    assert isinstance(fitted.cpds["t"], TableCPD)
