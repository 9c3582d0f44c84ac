"""EM for latent nodes and missing cells: monotone traces, the M-step against brute force,
recovery of known parameters, degenerate cases, restarts and convergence.

Checks are against independent computations: a brute-force joint enumeration (written in
this file) for the expected counts of one EM step, and generating parameters only where the
tolerance follows from a standard error.  The Gaussian mixture is compared with scikit-learn
in ``test_gmm.py``; exact inference with brute force in ``tests/infer/test_enumerate.py``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
import pgm.convert
import pgm.graph
import pgm.schema
from pgm.cpd.linear import LinearCPD
from pgm.cpd.table import TableCPD
from pgm.errors import ConvergenceWarning, DataWarning
from pgm.fitted import FittedModel
from pgm.schema import ModelSpec, parse_spec

MODELS = Path(__file__).resolve().parents[2] / "models"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS_COLS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# --------------------------------------------------------------------------- helpers
def random_cpds(spec: ModelSpec, seed: int, alpha: float = 1.0, spread: float = 4.0) -> FittedModel:
    """A random parameterisation: Dirichlet(alpha) table rows, linear gaussians with spread-out means."""
    graph = pgm.graph.build(spec)
    rng = np.random.default_rng(seed)
    cpds = {}
    for key, members in graph.params.items():
        var = graph[members[0]]
        n_configs = math.prod(graph[p].n_states for p in var.parents if graph[p].discrete)
        if var.discrete:
            cpds[key] = TableCPD(rng.dirichlet(np.full(var.n_states, alpha), size=n_configs))
        else:
            d = var.dim
            p = sum(graph[q].dim for q in var.parents if not graph[q].discrete)
            a = rng.normal(size=(n_configs, d, d)) * 0.5
            cov = a @ np.transpose(a, (0, 2, 1)) + 0.3 * np.eye(d)
            cpds[key] = LinearCPD(rng.normal(scale=spread, size=(n_configs, d)), rng.normal(size=(n_configs, d, p)),
                                  cov, spec.nodes[var.decl].covariance)
    return FittedModel(spec, graph, cpds)


def observed(model: FittedModel, n: int, seed: int) -> pd.DataFrame:
    """Sampled rows without the latent columns (a sequence model: n steps in sequences of 50)."""
    df = model.sample(n // 50, seed=seed, length=50) if model.spec.sequence else model.sample(n, seed=seed)
    return df.drop(columns=[c for v in model.graph.latent for c in model.graph[v].columns])


def punch_holes(df: pd.DataFrame, frac: float, seed: int) -> pd.DataFrame:
    """Set a fraction of the cells to missing, completely at random."""
    mask = np.random.default_rng(seed).random(df.shape) < frac
    return df.astype(object).mask(mask)


def fit_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pgm.fit(*args, **kwargs)


def assert_monotone(history, rel: float = 1e-9) -> None:
    h = np.asarray(history, dtype=float)
    assert np.all(np.isfinite(h))
    drops = np.diff(h) + rel * np.abs(h[1:])
    assert np.all(drops >= 0), f"log-likelihood decreased at iterations {np.flatnonzero(drops < 0) + 1}: {h}"


def best_permutation(estimate: np.ndarray, truth: np.ndarray) -> list[int]:
    """The relabelling of estimated states (rows) closest to the true ones (label switching)."""
    k = len(truth)
    return list(min(itertools.permutations(range(k)), key=lambda p: np.abs(estimate[list(p)] - truth).sum()))


def latent_models() -> list[str]:
    out = []
    for path in sorted(MODELS.glob("*.yaml")):
        spec = pgm.load(path)
        spec = spec if isinstance(spec, ModelSpec) else spec.spec
        if spec.directed and any(node.latent for node in spec.nodes.values()):
            out.append(path.name)
    return out


# --------------------------------------------------------------------------- monotone log-likelihood
def test_every_example_with_latent_nodes_is_covered():
    assert {"gmm.yaml", "gmm_iris.yaml", "latent_class.yaml", "plate_mixture.yaml"} <= set(latent_models())


@pytest.mark.parametrize("name", latent_models())
def test_log_likelihood_never_decreases_on_every_latent_example(name):
    spec = pgm.load(MODELS / name)
    if name == "gmm_iris.yaml":
        data = pd.read_csv(EXAMPLES / "iris.csv")[IRIS_COLS]
    else:
        data = observed(random_cpds(spec, seed=1), 1500, seed=2)
    graph = pgm.graph.build(spec)
    discrete = all(graph[n].discrete for n in graph.order)
    fitted = fit_quiet(spec, data, max_iter=150 if discrete else 60, tol=1e-12, seed=3, init="random")
    assert len(fitted.history) > 5
    assert_monotone(fitted.history)
    if fitted.info["converged"]:
        # the stopping iteration's parameters are the ones returned
        assert fitted.log_likelihood(data) == pytest.approx(fitted.history[-1], rel=1e-10)
    # and with missing cells on top of the latent node (discrete examples)
    if discrete:
        holes = punch_holes(data, 0.2, seed=4)
        fitted = fit_quiet(spec, holes, max_iter=150, tol=1e-12, seed=3)
        assert_monotone(fitted.history)


@pytest.mark.slow
def test_alarm_with_20_percent_missing_is_monotone_and_moves_towards_the_truth():
    true = FittedModel.from_spec(pgm.schema.parse_spec(pgm.convert.read_any(EXAMPLES / "alarm.bif")))
    data = punch_holes(true.sample(1000, seed=0), 0.2, seed=1)
    model = pgm.load(MODELS / "alarm.yaml")
    fitted = fit_quiet(model, data, max_iter=12, seed=0, prior={"dirichlet": 0.5})
    assert_monotone(fitted.history)
    assert fitted.history[-1] > fitted.history[0]
    # mean absolute error of the CPTs shrinks from the random start
    start = fit_quiet(model, data, max_iter=1, seed=0, prior={"dirichlet": 0.5})
    err = lambda f: np.mean([np.abs(f.cpds[k].probs - true.cpds[k].probs).mean() for k in true.cpds])  # noqa: E731
    assert err(fitted) < err(start)
    assert err(fitted) < 0.1


# --------------------------------------------------------------------------- the M-step against brute force
def _barren(graph, hidden: set[str]) -> set[str]:
    """Hidden variables whose every child is a barren hidden variable (recursively)."""
    out: set[str] = set()
    for name in reversed(graph.order):
        if name in hidden and all(c in out for c in graph.children(name)):
            out.add(name)
    return out


def brute_force_em_step(model: FittedModel, data: pd.DataFrame, prior: float = 0.0) -> dict[str, np.ndarray]:
    """One EM step by enumerating every joint state of each row's hidden variables.

    Expected counts of (parent configuration, state) per parameter key, pooled over plate copies and
    ties, then normalised after adding ``prior`` pseudo-counts.  Barren hidden variables (no observed
    descendant in the row) are summed out of the row before the step, exactly as pgm does: the
    likelihood is unchanged and the step is the EM step of the reduced model."""
    graph = model.graph
    counts = {k: np.zeros_like(c.probs) for k, c in model.cpds.items()}
    for _, row in data.iterrows():
        vals = {n: None if graph[n].latent or pd.isna(row[n]) else int(row[n]) for n in graph.order}
        hidden = {n for n in graph.order if vals[n] is None}
        barren = _barren(graph, hidden)
        keep = [n for n in graph.order if n not in barren]
        free = [n for n in keep if vals[n] is None]
        joint, states = [], []
        for combo in itertools.product(*[range(graph[n].n_states) for n in free]):
            a = dict(vals)
            a.update(zip(free, combo))
            logp = 0.0
            for n in keep:
                pa = graph[n].parents
                config = int(np.ravel_multi_index([a[p] for p in pa], [graph[p].n_states for p in pa])) if pa else 0
                logp += math.log(model.cpds[graph[n].param].probs[config, a[n]])
            joint.append(logp)
            states.append(a)
        w = np.exp(np.array(joint) - max(joint))
        w /= w.sum()
        for weight, a in zip(w, states):
            for n in keep:
                pa = graph[n].parents
                config = int(np.ravel_multi_index([a[p] for p in pa], [graph[p].n_states for p in pa])) if pa else 0
                counts[graph[n].param][config, a[n]] += weight
    return {k: (c + prior) / (c + prior).sum(axis=1, keepdims=True) for k, c in counts.items()}


STEP_MODELS = {
    "latent-and-missing": {
        "name": "step", "graph": "directed", "nodes": {
            "a": {"states": 2},
            "z": {"states": 3, "latent": True, "parents": ["a"]},
            "b": {"states": 3, "parents": ["z"]},
            "c": {"states": 2, "parents": ["z", "a"]},
            "d": {"states": 2, "parents": ["c"]}}},
    "plate-copies-tied": {
        "name": "plate-step", "graph": "directed", "plates": {"p": {"size": 3}}, "nodes": {
            "z": {"states": 2, "latent": True, "plate": "p"},
            "x": {"states": 3, "parents": ["z"], "plate": "p"},
            "y": {"states": 2, "parents": ["x"], "plate": "p", "tie": "shared"},
            "w": {"states": 2, "parents": ["x"], "plate": "p", "tie": "shared"}}},
    "two-connected-latents": {
        "name": "two", "graph": "directed", "nodes": {
            "u": {"states": 2, "latent": True},
            "v": {"states": 3, "latent": True, "parents": ["u"]},
            "s": {"states": 2, "parents": ["u", "v"]},
            "t": {"states": 3, "parents": ["v"]}}},
}


@pytest.mark.filterwarnings("ignore:[0-9]+ rows? with every cell missing:pgm.errors.DataWarning")
@pytest.mark.parametrize("prior", [0.0, 1.0])
@pytest.mark.parametrize("name", sorted(STEP_MODELS))
def test_one_em_step_equals_brute_force_expected_counts(name, prior):
    spec = parse_spec(STEP_MODELS[name])
    truth = random_cpds(spec, seed=5)
    data = punch_holes(observed(truth, 80, seed=6), 0.25, seed=7)
    start = random_cpds(spec, seed=8).cpds
    # tol=inf: the second E-step always stops the loop, so exactly one M-step runs
    fitted = pgm.fit(spec, data, init=start, max_iter=5, tol=np.inf, prior={"dirichlet": prior} if prior else None)
    expected = brute_force_em_step(FittedModel(spec, pgm.graph.build(spec), start), data, prior)
    assert set(fitted.cpds) == set(expected)
    for key in expected:
        np.testing.assert_allclose(fitted.cpds[key].probs, expected[key], rtol=1e-10, atol=1e-12, err_msg=key)


# --------------------------------------------------------------------------- recovery
def _latent_class_truth() -> FittedModel:
    spec = pgm.load(MODELS / "latent_class.yaml")
    graph = pgm.graph.build(spec)
    cpds = {"class": TableCPD(np.array([[0.3, 0.45, 0.25]]))}
    for j in range(1, 9):
        table = np.full((3, 3), 0.1)
        for k in range(3):
            table[k, (k + j) % 3] = 0.8  # each class favours a different answer on every question
        cpds[f"q{j}"] = TableCPD(table)
    return FittedModel(spec, graph, cpds)


def test_latent_class_model_is_recovered_up_to_label_switching():
    """10,000 rows of a latent class model (3 classes, 8 ternary questions) are fitted back.

    Tolerances: a class of ~2,500-4,500 rows estimates a probability near 0.8 with standard error
    sqrt(0.8 * 0.2 / 2500) = 0.008 and one near 0.1 with 0.006; 0.035 is over four standard errors.
    The class weights (standard error 0.005) get 0.02.  Against the oracle fit that sees the true
    classes, the only extra error is the posterior uncertainty of the classes, which is small with
    eight informative questions (< 1% of rows are ambiguous): 0.015."""
    truth = _latent_class_truth()
    full = truth.sample(10_000, seed=11)
    data = full.drop(columns="class")
    fitted = fit_quiet(truth.spec, data, n_init=3, seed=0)
    assert_monotone(fitted.history)
    assert fitted.info["converged"]
    # match the estimated classes to the true ones on the question tables
    stacked = lambda f: np.hstack([f.cpds[f"q{j}"].probs for j in range(1, 9)])  # noqa: E731
    perm = best_permutation(stacked(fitted), stacked(truth))
    np.testing.assert_allclose(fitted.cpds["class"].probs[0, perm], truth.cpds["class"].probs[0], atol=0.02)
    np.testing.assert_allclose(stacked(fitted)[perm], stacked(truth), atol=0.035)
    oracle = pgm.fit(truth.spec.model_copy(update={"nodes": {**truth.spec.nodes, "class": truth.spec.nodes["class"]
                                                             .model_copy(update={"latent": False})}}),
                     full, learner="mle")
    np.testing.assert_allclose(stacked(fitted)[perm], stacked(oracle), atol=0.015)
    # the posterior classifies rows as the truth does (up to the same relabelling)
    predicted = fitted.predict("class", data).to_numpy().astype(int)
    relabel = np.empty(3, dtype=int)
    relabel[perm] = np.arange(3)
    assert np.mean(relabel[predicted] == full["class"].to_numpy()) > 0.97


def test_semi_supervised_naive_bayes():
    """Naive Bayes (Dirichlet(1) priors from the file) with 80% of the class labels missing.

    The labelled 20% fix the labels (no switching); EM uses every row.  The traced objective is the
    log-likelihood plus the log-prior, which EM on the MAP objective never decreases.  600 labelled and
    2,400 unlabelled rows estimate each probability with standard error below 0.02; 0.06 is three."""
    spec = pgm.load(MODELS / "naive_bayes.yaml")
    graph = pgm.graph.build(spec)
    truth = FittedModel(spec, graph, {
        "play": TableCPD(np.array([[0.6, 0.4]])),
        "outlook": TableCPD(np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])),
        "temperature": TableCPD(np.array([[0.2, 0.5, 0.3], [0.5, 0.3, 0.2]])),
        "humidity": TableCPD(np.array([[0.3, 0.7], [0.8, 0.2]])),
        "windy": TableCPD(np.array([[0.7, 0.3], [0.35, 0.65]]))})
    data = truth.sample(3000, seed=21).astype(object)
    hidden = np.random.default_rng(22).random(3000) < 0.8
    data.loc[hidden, "play"] = np.nan
    fitted = fit_quiet(spec, data, seed=0)
    assert fitted.info["learner"] == "em"
    assert_monotone(fitted.history)
    assert fitted.info["converged"]
    for key in truth.cpds:
        np.testing.assert_allclose(fitted.cpds[key].probs, truth.cpds[key].probs, atol=0.06, err_msg=key)
    # the labelled rows keep their labels; the posterior of unlabelled rows is a proper distribution
    post = fitted.posterior("play", data).to_numpy()
    labelled = ~hidden
    codes = pd.Categorical(data.loc[labelled, "play"], categories=["yes", "no"]).codes
    np.testing.assert_array_equal(post[labelled].argmax(axis=1), codes)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-12)


def test_plate_mixture_with_tied_children():
    """Mixture of binomials: z (2 types), five trials x[0..4] sharing one CPD P(x | z).

    5,000 rows give ~8,000-17,000 trials per type; the standard error of P(x=1 | z) is about 0.006
    after allowing for the uncertain types, so 0.03 is five; the weights (0.007) get 0.03 too."""
    spec = pgm.load(MODELS / "plate_mixture.yaml")
    graph = pgm.graph.build(spec)
    truth = FittedModel(spec, graph, {"z": TableCPD(np.array([[0.35, 0.65]])),
                                      "x": TableCPD(np.array([[0.85, 0.15], [0.2, 0.8]]))})
    data = observed(truth, 5000, seed=31)
    fitted = fit_quiet(spec, data, n_init=2, seed=0)
    assert set(fitted.cpds) == {"z", "x"}  # one CPD for the five copies
    assert_monotone(fitted.history)
    perm = best_permutation(fitted.cpds["x"].probs, truth.cpds["x"].probs)
    np.testing.assert_allclose(fitted.cpds["x"].probs[perm], truth.cpds["x"].probs, atol=0.03)
    np.testing.assert_allclose(fitted.cpds["z"].probs[0, perm], truth.cpds["z"].probs[0], atol=0.03)


# --------------------------------------------------------------------------- degenerate cases
def test_hidden_state_that_no_row_supports_warns_and_stays_finite():
    """Start the latent class model with one class at weight zero: no row ever supports it."""
    truth = _latent_class_truth()
    data = observed(truth, 500, seed=41)
    start = dict(truth.cpds)
    start["class"] = TableCPD(np.array([[0.5, 0.5, 0.0]]))
    with pytest.warns(DataWarning, match="no support"):
        fitted = fit_quiet(truth.spec, data, init=start)
    assert fitted.cpds["class"].probs[0, 2] == 0.0
    for cpd in fitted.cpds.values():
        assert np.all(np.isfinite(cpd.probs))
        np.testing.assert_allclose(cpd.probs.sum(axis=1), 1.0)
    assert_monotone(fitted.history)
    assert np.all(np.isfinite(fitted.posterior("class", data).to_numpy()))


def test_rows_with_every_cell_missing():
    """Rows with nothing observed carry no information: they are reported, contribute exactly 0 to the
    log-likelihood, and leave the fit unchanged (same start, same parameters and history)."""
    truth = _latent_class_truth()
    data = observed(truth, 400, seed=51).astype(float)
    padded = pd.concat([data, pd.DataFrame(np.nan, index=range(400, 420), columns=data.columns)])
    start = random_cpds(truth.spec, seed=52).cpds
    with pytest.warns(DataWarning, match="every cell missing"):
        with_empty = fit_quiet(truth.spec, padded, init=start, max_iter=30)
    without = fit_quiet(truth.spec, data, init=start, max_iter=30)
    np.testing.assert_allclose(with_empty.history, without.history, rtol=1e-12)
    for key in without.cpds:
        np.testing.assert_allclose(with_empty.cpds[key].probs, without.cpds[key].probs, rtol=1e-12, atol=1e-15)
    with pytest.warns(DataWarning, match="20 rows with every cell missing"):
        encoded = with_empty.encode(padded)
    row_ll = with_empty.row_log_likelihood(encoded)
    assert np.all(row_ll[400:] == 0.0) and np.all(np.isfinite(row_ll))
    assert with_empty.log_likelihood(encoded) == pytest.approx(with_empty.log_likelihood(data), rel=1e-12)
    # nothing observed: the posterior of the latent class is its prior
    np.testing.assert_allclose(with_empty.posterior("class", encoded).to_numpy()[400:],
                               np.broadcast_to(with_empty.cpds["class"].probs, (20, 3)), rtol=1e-12)


# --------------------------------------------------------------------------- restarts and convergence
def test_n_init_keeps_the_best_run_and_its_seed_reproduces_it():
    truth = _latent_class_truth()
    data = observed(truth, 300, seed=61)
    best = fit_quiet(truth.spec, data, n_init=5, seed=10, init="random")
    runs = best.info["runs"]
    assert len(runs) == 5
    finals = [r[-1] for r in runs]
    assert best.history[-1] == max(finals)
    assert best.info["seed"] == 10 + int(np.argmax(finals))
    again = fit_quiet(truth.spec, data, n_init=1, seed=best.info["seed"], init="random")
    assert again.history == best.history
    for key in best.cpds:
        np.testing.assert_array_equal(again.cpds[key].probs, best.cpds[key].probs)
    for run in runs:
        assert_monotone(run)


def test_seed_makes_fits_reproducible():
    truth = _latent_class_truth()
    data = observed(truth, 300, seed=71)
    a = fit_quiet(truth.spec, data, seed=3, max_iter=20)
    b = fit_quiet(truth.spec, data, seed=3, max_iter=20)
    c = fit_quiet(truth.spec, data, seed=4, max_iter=20)
    assert a.history == b.history
    for key in a.cpds:
        np.testing.assert_array_equal(a.cpds[key].probs, b.cpds[key].probs)
    assert a.history[0] != c.history[0]


def test_convergence_warning_when_max_iter_is_hit():
    truth = _latent_class_truth()
    data = observed(truth, 300, seed=81)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        fitted = pgm.fit(truth.spec, data, max_iter=3, seed=0)
    assert not fitted.info["converged"]
    # three updates: the start and the result of each update are recorded
    assert len(fitted.history) == 4 and fitted.info["n_iter"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fitted = pgm.fit(truth.spec, data, max_iter=500, tol=1e-6, seed=0)
    assert fitted.info["converged"]
    h = fitted.history
    assert abs(h[-1] - h[-2]) <= 1e-6 * abs(h[-1])
