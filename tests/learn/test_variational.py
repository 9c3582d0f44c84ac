"""Variational EM (mean-field, learner="variational") against exact computations.

Independent computations: pgm's exact E-step (enumeration) for the log-likelihood of small models,
and for the sigmoid belief network a brute-force sum over all 2^16 hidden states written here in
numpy (one matrix product per term).  The bound must stay below the exact log-likelihood at every
iteration and equal it when the posterior factorises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import log_expit

import pgm
from pgm.encode import encode
from pgm.graph import build
from pgm.learn.em import prepare_rows
from pgm.learn.variational import fit_variational
from pgm.schema import parse_spec


def _graph(nodes):
    spec = parse_spec({"name": "v", "graph": "directed", "nodes": nodes})
    return spec, build(spec)


# two latent nodes sharing a child: the posterior does not factorise
COUPLED = {"z1": {"states": 2, "latent": True}, "z2": {"states": 3, "latent": True},
           "a": {"states": 2, "parents": ["z1", "z2"]}, "b": {"states": 3, "parents": ["z2"]},
           "c": {"states": 2, "parents": ["z1"]}, "d": {"states": 3, "parents": ["z1"]}}
# two latent class models side by side: hidden nodes independent given the data
SEPARATE = {"z1": {"states": 2, "latent": True}, "z2": {"states": 3, "latent": True},
            "a": {"states": 2, "parents": ["z1"]}, "b": {"states": 3, "parents": ["z1"]},
            "c": {"states": 2, "parents": ["z2"]}, "d": {"states": 3, "parents": ["z2"]},
            "g": {"type": "gaussian", "parents": ["z2"]}}


def _data(columns, n=400, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    out = {}
    for c, k in columns.items():
        if k == 0:
            out[c] = rng.normal(2.0 * z, 1.0)
        else:
            out[c] = np.where(rng.random(n) < 0.7, z % k, rng.integers(0, k, n))
    return pd.DataFrame(out)


def _trace_gaps(graph, enc, **kw):
    exact = prepare_rows(graph, enc)
    gaps = []
    result = fit_variational(graph, enc, trace=lambda i, v, cpds: gaps.append(exact.e_step(cpds).log_likelihood - v),
                             **kw)
    return result, np.array(gaps)


def test_elbo_below_exact_log_likelihood_at_every_iteration():
    _, graph = _graph(COUPLED)
    df = _data({"a": 2, "b": 3, "c": 2, "d": 3})
    df.loc[::7, "b"] = np.nan  # missing cells are hidden cells too
    enc = encode(graph, df)
    result, gaps = _trace_gaps(graph, enc, max_iter=40)
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.history[-1]))
    assert np.all(gaps >= -1e-9)
    assert gaps[-1] > 1e-6  # the family does not contain the posterior: a real gap remains
    print(f"coupled: final ELBO {result.history[-1]:.4f}, gap to exact log-likelihood {gaps[-1]:.4g}")


def test_elbo_equals_exact_when_the_posterior_factorises():
    _, graph = _graph(SEPARATE)
    enc = encode(graph, _data({"a": 2, "b": 3, "c": 2, "d": 3, "g": 0}))
    result, gaps = _trace_gaps(graph, enc, max_iter=25)
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.history[-1]))
    np.testing.assert_allclose(gaps, 0.0, atol=1e-8)


def test_fit_through_pgm_fit_and_elbo_on_new_data():
    spec, graph = _graph(COUPLED)
    df = _data({"a": 2, "b": 3, "c": 2, "d": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, df.iloc[:300], learner="variational", max_iter=30)
    assert fitted.info["learner"] == "variational"
    assert np.all(np.diff(fitted.history) >= -1e-9 * abs(fitted.history[-1]))
    new = df.iloc[300:]
    bound, exact = fitted.elbo(new), fitted.log_likelihood(new)
    assert bound <= exact + 1e-9
    assert bound > exact - 0.05 * abs(exact)
    # q optimised for fixed parameters: the ELBO of the training rows is at least the last history value
    assert fitted.elbo(df.iloc[:300]) >= fitted.history[-1] - 1e-6 * abs(fitted.history[-1])


def test_variational_refuses_hidden_gaussian_and_wide_tables():
    spec, _ = _graph({"z": {"states": 2, "latent": True}, "g": {"type": "gaussian", "parents": ["z"]}})
    with pytest.raises(pgm.DataError, match="handles hidden discrete nodes only"):
        pgm.fit(spec, pd.DataFrame({"g": [0.5, np.nan, 1.0]}), learner="variational")
    spec, _ = _graph({"z": {"type": "gaussian", "latent": True}, "g": {"type": "gaussian", "dim": 2, "parents": ["z"]}})
    with pytest.raises(pgm.ModelError, match="latent gaussian node 'z'"):
        pgm.fit(spec, pd.DataFrame({"g[0]": [0.5, 0.1, 1.0], "g[1]": [0.2, 0.3, 0.1]}), learner="variational")
    nodes = {f"h{i}": {"states": 2, "latent": True} for i in range(11)}
    nodes["x"] = {"states": 2, "parents": [f"h{i}" for i in range(11)]}
    spec, _ = _graph(nodes)
    with pytest.raises(pgm.ModelError, match="cpd: logistic"):
        pgm.fit(spec, pd.DataFrame({"x": [0, 1, 0]}), learner="variational")


# --------------------------------------------------------------------------- sigmoid belief network
def _digits(n):
    from sklearn.datasets import load_digits
    return (load_digits().data[:n] >= 8).astype(int)


def _sbn(hidden):
    nodes = {f"h{i}": {"states": 2, "latent": True} for i in range(hidden)}
    nodes.update({f"p{j}": {"states": 2, "cpd": "logistic", "parents": [f"h{i}" for i in range(hidden)]}
                  for j in range(64)})
    return _graph(nodes)


def _brute_force(cpds, x, hidden):
    """log p(x) of the SBN summed over all 2^hidden states: matrix products over (rows, states)."""
    z = np.indices([2] * hidden).reshape(hidden, -1).T.astype(float)
    prior = np.array([cpds[f"h{i}"].log_probs[0] for i in range(hidden)])
    lpz = z @ prior[:, 1] + (1 - z) @ prior[:, 0]
    w = np.array([cpds[f"p{j}"].coef[1] for j in range(64)])
    b = np.array([cpds[f"p{j}"].intercept[1] for j in range(64)])
    a = z @ w.T + b
    joint = lpz[None, :] + x @ log_expit(a).T + (1 - x) @ log_expit(-a).T
    top = joint.max(axis=1)
    return float((top + np.log(np.exp(joint - top[:, None]).sum(axis=1))).sum())


@pytest.mark.slow
def test_sigmoid_belief_network_16_hidden_on_digits():
    x = _digits(150)
    _, graph = _sbn(16)
    enc = encode(graph, pd.DataFrame(x, columns=[f"p{j}" for j in range(64)]))
    gaps = []  # exact log-likelihood of each iteration's parameters minus its ELBO
    result = fit_variational(graph, enc, max_iter=12, tol=0,
                             trace=lambda i, v, cpds: i % 4 or gaps.append(_brute_force(cpds, x, 16) - v))
    h = np.array(result.history)
    assert np.all(np.diff(h) >= -1e-9 * abs(h[-1]))
    assert len(gaps) == 4 and np.all(np.array(gaps) >= 0)  # iterations 0, 4, 8, 12
    exact = _brute_force(result.cpds, x, 16)
    p = x.mean(axis=0).clip(1e-12, 1 - 1e-12)
    independent = float((x * np.log(p) + (1 - x) * np.log(1 - p)).sum())
    assert h[-1] <= exact
    assert exact > independent + 0.15 * abs(independent)  # clearly better than independent pixels
    print(f"SBN 16: ELBO {h[-1]:.1f}, exact {exact:.1f} (gap {exact - h[-1]:.1f}), independent {independent:.1f}")


# --------------------------------------------------------------------------- the automatic choice
def test_40_hidden_units_fit_without_naming_a_learner():
    x = _digits(120)
    spec, _ = _sbn(40)
    df = pd.DataFrame(x, columns=[f"p{j}" for j in range(64)])
    fitted = pgm.fit(spec, df, max_iter=4)
    assert fitted.info["learner"] == "variational"
    assert "exact inference would need" in fitted.info["learner_reason"]
    assert "GB per row" in fitted.info["learner_reason"]
    assert np.all(np.diff(fitted.history) > 0)
    with pytest.raises(pgm.PGMError, match=r"learner='em' needs exact inference.*GB per row.*learner='variational'"):
        pgm.fit(spec, df, learner="em")


def test_small_latent_models_keep_exact_em():
    spec, graph = _graph(COUPLED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, _data({"a": 2, "b": 3, "c": 2, "d": 3}), max_iter=3)
    assert fitted.info["learner"] == "em"
    assert "learner_reason" not in fitted.info


def test_cli_fit_says_which_learner_it_chose(tmp_path, capsys):
    import yaml

    from pgm.cli import main

    spec, _ = _sbn(30)
    path = tmp_path / "sbn.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(exclude_none=True, by_alias=True), sort_keys=False))
    csv = tmp_path / "digits.csv"
    pd.DataFrame(_digits(60), columns=[f"p{j}" for j in range(64)]).to_csv(csv, index=False)
    code = main(["fit", str(path), str(csv), "--max-iter", "2", "-o", str(tmp_path / "out.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("learner:")]
    assert len(lines) == 1 and lines[0].startswith("learner: variational (exact inference would need ~"), out
    assert "ELBO" in out


def test_variational_needs_rows_in_memory(tmp_path):
    spec, _ = _graph(COUPLED)
    csv = tmp_path / "d.csv"
    _data({"a": 2, "b": 3, "c": 2, "d": 3}, n=50).to_csv(csv, index=False)
    with pytest.raises(pgm.PGMError, match="needs the rows in memory"):
        pgm.fit(spec, csv, learner="variational", chunk_rows=20)


def test_missing_cells_are_estimated_row_by_row(monkeypatch):
    """Cells missing in different rows join into one wide component only in the union of the rows:
    over the budget, the estimate is redone from EM's own plan (each row's components)."""
    import pgm.learn.variational as variational

    nodes = {f"x{i}": {"states": 2, "parents": [f"x{j}" for j in range(max(0, i - 12), i)]} for i in range(40)}
    spec, graph = _graph(nodes)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.integers(0, 2, (300, 40)), columns=list(nodes)).astype(float)
    df[rng.random(df.shape) < 0.05] = np.nan
    enc = encode(graph, df)
    union = variational.exact_estimate(graph, enc)
    assert union.states == 2.0**40
    monkeypatch.setattr(variational, "EXACT_COST_BUDGET", 1e5)
    planned = variational.exact_estimate(graph, enc)
    assert planned.cost < min(union.cost, 1e5) and planned.states <= 2**10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pgm.fit(spec, df, max_iter=1).info["learner"] == "em"


def test_row_weights_equal_repeated_rows():
    spec, _ = _graph(COUPLED)
    df = _data({"a": 2, "b": 3, "c": 2, "d": 3}, n=100)
    w = np.random.default_rng(0).integers(1, 4, 100)
    repeated = df.loc[df.index.repeat(w)].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(spec, repeated, learner="variational", max_iter=20)
        weighted = pgm.fit(spec, df.assign(w=w.astype(float)), learner="variational", max_iter=20, weights="w")
    np.testing.assert_allclose(fitted.elbo(df.assign(w=w.astype(float)), weights="w"), fitted.elbo(repeated),
                               rtol=1e-10)
    # the fits start from other random q's (one per stored row): the same optimum to a small tolerance
    np.testing.assert_allclose(weighted.history[-1], fitted.history[-1], rtol=1e-4)
