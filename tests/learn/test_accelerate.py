"""EM accelerated by squared extrapolation (``accelerate=True``, pgm.learn.accelerate): the same
optimum as plain EM from the same start, a non-decreasing history, fewer evaluated parameter
sets; every extrapolated point a valid parameter set; the safeguard falls back to EM's update."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.cpd.linear import LinearCPD
from pgm.cpd.table import TableCPD
from pgm.learn.accelerate import Squarem, extrapolate, from_free, to_free
from pgm.schema import parse_spec


def fit_both(spec, frame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = pgm.fit(spec, frame, accelerate=False, **kw)
        fast = pgm.fit(spec, frame, accelerate=True, **kw)
    return plain, fast


def check(plain, fast, ratio: float) -> None:
    h = np.asarray(fast.history)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), "the accelerated history decreased"
    assert plain.info["converged"] and fast.info["converged"]
    assert fast.history[-1] == pytest.approx(plain.history[-1], abs=1e-6)
    assert fast.info["n_iter"] <= ratio * plain.info["n_iter"], (fast.info["n_iter"], plain.info["n_iter"])


def test_factor_analysis_same_optimum_in_far_fewer_iterations():
    rng = np.random.default_rng(0)
    n, d, k = 300, 6, 2
    w = rng.normal(size=(d, k))
    x = rng.normal(size=(n, k)) @ w.T + rng.normal(size=(n, d)) * np.sqrt(rng.uniform(0.05, 1.0, d))
    spec = parse_spec({"name": "fa", "nodes": {
        "z": {"type": "gaussian", "dim": k, "latent": True},
        "x": {"type": "gaussian", "dim": d, "parents": ["z"], "covariance": "diag"}}})
    plain, fast = fit_both(spec, pd.DataFrame(x, columns=[f"x[{i}]" for i in range(d)]),
                           max_iter=5000, tol=1e-13, reg_covar=0.0)
    check(plain, fast, 0.5)
    assert np.all(np.einsum("cii->ci", fast.cpds["x"].cov) > 0)


def test_gaussian_mixture_same_optimum_in_fewer_iterations():
    rng = np.random.default_rng(1)
    means = np.array([[0.0, 0.0], [2.5, 0.5], [0.5, 2.5]])
    z = rng.choice(3, size=600, p=[0.5, 0.3, 0.2])
    x = means[z] + rng.normal(size=(600, 2)) * 0.9
    spec = parse_spec({"name": "gmm", "nodes": {"z": {"states": 3, "latent": True},
                                                "x": {"type": "gaussian", "dim": 2, "parents": ["z"]}}})
    plain, fast = fit_both(spec, pd.DataFrame(x, columns=["x[0]", "x[1]"]), max_iter=5000, tol=1e-13, seed=0)
    check(plain, fast, 0.6)


def test_latent_class_model_same_optimum_in_fewer_iterations():
    rng = np.random.default_rng(2)
    theta = rng.dirichlet(np.full(3, 0.7), size=(6, 2))                 # (items, classes, answers)
    c = rng.choice(2, size=800, p=[0.6, 0.4])
    cum = np.cumsum(theta[:, c, :].transpose(1, 0, 2), axis=2)
    codes = (rng.random((800, 6, 1)) > cum).sum(axis=2).clip(max=2)
    kids = [f"q{j}" for j in range(6)]
    nodes = {"c": {"states": 2, "latent": True}, **{q: {"states": 3, "parents": ["c"]} for q in kids}}
    plain, fast = fit_both(parse_spec({"name": "lcm", "nodes": nodes}), pd.DataFrame(codes, columns=kids),
                           max_iter=5000, tol=1e-13, seed=0)
    check(plain, fast, 0.6)


def test_extrapolation_of_a_geometric_sequence_lands_on_its_limit():
    """Iterates theta* + c rho^k (rho = 1/2) in the free parameterisation: SQUAREM's point is theta*
    (alpha = -1 / (1 - rho) = -2); a diagonal covariance stays diagonal and positive."""
    limit_mean, limit_logvar = np.array([2.0, -1.0]), np.array([-3.0, 0.5])
    c_mean, c_logvar = np.array([1.0, 0.5]), np.array([2.0, -1.0])
    lin = [{"x": LinearCPD((limit_mean + c_mean * 0.5 ** k)[None], np.zeros((1, 2, 0)),
                           np.diag(np.exp(limit_logvar + c_logvar * 0.5 ** k))[None], "diag")} for k in range(3)]
    point, alpha = extrapolate(*lin, step_max=64.0)
    assert alpha == pytest.approx(-2.0)
    np.testing.assert_allclose(point["x"].intercept[0], limit_mean, rtol=1e-12)
    cov = point["x"].cov[0]
    assert cov[0, 1] == 0.0 and cov[1, 0] == 0.0
    np.testing.assert_allclose(np.diag(cov), np.exp(limit_logvar), rtol=1e-12)
    # too long a step is clamped to step_max
    assert extrapolate(*lin, step_max=1.5)[1] == -1.5
    # nothing moves: no extrapolation
    assert extrapolate(lin[0], lin[0], lin[0], 64.0)[0] is None


def test_extrapolated_tables_stay_in_the_simplex_with_their_zeros():
    t = [{"t": TableCPD(np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]))},
         {"t": TableCPD(np.array([[0.1, 0.9, 0.0], [0.55, 0.2, 0.25]]))},
         {"t": TableCPD(np.array([[0.05, 0.95, 0.0], [0.58, 0.17, 0.25]]))}]
    point, alpha = extrapolate(*t, step_max=64.0)
    assert point is not None and alpha < -1
    p = point["t"].probs
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0) and p[0, 2] == 0.0
    assert p[0, 1] > 0.95                        # further along the way the first row was moving
    for cpd in (t[1]["t"], LinearCPD(np.ones((2, 2)), np.ones((2, 2, 1)), np.array([[[1.0, 0.3], [0.3, 0.5]]] * 2))):
        back = from_free(cpd, to_free(cpd))        # the free parameterisation round-trips
        for name in ("probs", "cov", "intercept", "coef"):
            if hasattr(cpd, name):
                np.testing.assert_allclose(getattr(back, name), getattr(cpd, name), rtol=1e-12, atol=1e-15)


def test_a_worse_extrapolation_falls_back_to_the_em_update():
    t = [{"t": TableCPD(np.array([[p, 1 - p]]))} for p in (0.5, 0.4, 0.35)]
    acc = Squarem()
    acc.step_max = 16.0
    assert acc.accept(-10.0)                      # theta0 evaluated
    assert acc.next(t[0], t[1]) is t[1]           # evaluate theta1 = M(theta0)
    assert acc.accept(-9.0) and acc.plain
    point = acc.next(t[1], t[2])                  # theta2 = M(theta1): extrapolate
    assert point is not t[2] and point["t"].probs[0, 0] < 0.35
    assert not acc.accept(-9.5)                   # below theta1's -9.0: rejected
    assert acc.fallback() is t[2]                 # EM's update from theta1 instead
    assert acc.accept(-8.9) and acc.plain


def test_accelerate_must_be_a_bool():
    spec = parse_spec({"name": "m", "nodes": {"z": {"states": 2, "latent": True}, "a": {"states": 2, "parents": ["z"]}}})
    with pytest.raises(pgm.PGMError, match="accelerate"):
        pgm.fit(spec, pd.DataFrame({"a": [0, 1, 1]}), accelerate="yes")


@pytest.mark.parametrize("learner", ["hard-em", "variational", "mcem"])
def test_accelerate_is_refused_by_learners_that_do_not_extrapolate(learner):
    """Only soft EM extrapolates: asking another learner for it is an error, not silently ignored
    (accelerate=False, the plain update, is what they do anyway)."""
    spec = parse_spec({"name": "m", "nodes": {"z": {"states": 2, "latent": True}, "a": {"states": 2, "parents": ["z"]},
                                              "b": {"states": 2, "parents": ["z"]}}})
    frame = pd.DataFrame({"a": [0, 1, 1, 0, 1], "b": [1, 1, 0, 0, 1]})
    with pytest.raises(pgm.PGMError, match=f"learner='{learner}' has no such option: drop accelerate"):
        pgm.fit(spec, frame, learner=learner, accelerate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pgm.fit(spec, frame, learner=learner, accelerate=False, max_iter=3).info["learner"] == learner


def test_cli_accelerate_flags(tmp_path, capsys):
    """``pgm fit --no-accelerate`` runs plain EM and ``--accelerate`` the extrapolated one: the same
    iteration counts as the API's ``accelerate=False`` / ``True``."""
    from pgm.cli import main

    rng = np.random.default_rng(3)
    z = rng.random(400) < 0.4
    x = np.where(z, rng.normal(2.0, 1.0, 400), rng.normal(-1.0, 1.5, 400))
    (tmp_path / "m.yaml").write_text("name: mix\nnodes:\n  z: {states: 2, latent: true}\n"
                                     "  x: {type: gaussian, parents: [z]}\n")
    data = pd.DataFrame({"x": x})
    data.to_csv(tmp_path / "d.csv", index=False)
    for flag, accelerate in (("--accelerate", True), ("--no-accelerate", False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api = pgm.fit(pgm.load(tmp_path / "m.yaml"), data, tol=1e-12, max_iter=3000, accelerate=accelerate)
        capsys.readouterr()
        assert main(["fit", str(tmp_path / "m.yaml"), str(tmp_path / "d.csv"), flag, "--tol", "1e-12",
                     "--max-iter", "3000", "-o", str(tmp_path / "f.yaml")]) == 0
        out, err = capsys.readouterr()
        assert f"({api.info['n_iter']} iterations," in out + err, (flag, out, err)
        assert pgm.load(tmp_path / "f.yaml").log_likelihood(data) == pytest.approx(api.log_likelihood(data),
                                                                                   rel=1e-12)
    assert api.info["n_iter"] > 1.5 * pgm.fit(pgm.load(tmp_path / "m.yaml"), data, tol=1e-12,
                                              max_iter=3000).info["n_iter"]   # the default extrapolates
