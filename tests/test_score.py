"""Bayesian structure scores (BDeu, K2) and pgm.score / fitted.score.

The closed forms are checked by hand here (math.lgamma, one cell at a time); the agreement with
pgmpy's and pyAgrum's scores is in tests/test_score_reference.py (stored values).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.encode import encode
from pgm.graph import build
from pgm.schema import parse_spec
from pgm.scoring import family_scores, log_marginal_likelihood, structure_score

ROOT = Path(__file__).resolve().parents[1]


def two_nodes(parents_of_b=("a",), parents_of_a=()):
    return parse_spec({"name": "two", "graph": "directed", "nodes": {
        "a": {"states": ["x", "y"], "parents": list(parents_of_a)},
        "b": {"states": ["u", "v", "w"], "parents": list(parents_of_b)}}})


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    a = rng.choice(["x", "y"], 60, p=[0.3, 0.7])
    b = np.where(a == "x", rng.choice(["u", "v", "w"], 60, p=[0.7, 0.2, 0.1]),
                 rng.choice(["u", "v", "w"], 60, p=[0.1, 0.1, 0.8]))
    b[:3] = "v"  # some of every cell
    return pd.DataFrame({"a": a, "b": b})


def hand_bd(counts: dict, states: list, configs: list, alpha: float) -> float:
    """sum_c [lgamma(A) - lgamma(N_c + A) + sum_k (lgamma(n_ck + alpha) - lgamma(alpha))], A = k * alpha."""
    total = 0.0
    for c in configs:
        n_c = sum(counts.get((c, s), 0) for s in states)
        total += math.lgamma(len(states) * alpha) - math.lgamma(n_c + len(states) * alpha)
        for s in states:
            total += math.lgamma(counts.get((c, s), 0) + alpha) - math.lgamma(alpha)
    return total


def hand_score(rows: pd.DataFrame, kind: str, ess: float = 1.0) -> float:
    """BDeu / K2 of a -> b counted row by row, one family at a time."""
    count_a: dict = {}
    count_b: dict = {}
    for a, b in zip(rows["a"], rows["b"]):
        count_a[((), a)] = count_a.get(((), a), 0) + 1
        count_b[(a, b)] = count_b.get((a, b), 0) + 1
    alpha_a = 1.0 if kind == "k2" else ess / 2
    alpha_b = 1.0 if kind == "k2" else ess / 6
    return (hand_bd(count_a, ["x", "y"], [()], alpha_a)
            + hand_bd(count_b, ["u", "v", "w"], ["x", "y"], alpha_b))


@pytest.mark.parametrize("kind, ess", [("bdeu", 1.0), ("bdeu", 10.0), ("bdeu", 0.3), ("k2", 1.0)])
def test_two_node_score_equals_the_closed_form_by_hand(rows, kind, ess):
    expected = hand_score(rows, kind, ess)
    assert pgm.score(two_nodes(), rows, kind, ess=ess) == pytest.approx(expected, rel=1e-13)


def test_the_score_of_an_empty_table_is_zero_and_one_row_is_its_predictive_probability():
    assert log_marginal_likelihood(np.zeros((3, 2)), 0.5) == 0.0
    # one row in state 1 of 3 under Dirichlet(1, 2, 3): p = 2 / 6
    assert log_marginal_likelihood(np.array([[0.0, 1.0, 0.0]]), np.array([[1.0, 2.0, 3.0]])) == \
        pytest.approx(math.log(2 / 6), rel=1e-14)


def test_bdeu_is_score_equivalent_and_k2_is_not(rows):
    """a -> b and b -> a are Markov equivalent: BDeu gives them the same score (Heckerman et al. 1995)."""
    forward, backward = two_nodes(), two_nodes(parents_of_b=(), parents_of_a=("b",))
    for ess in (1.0, 7.5):
        assert pgm.score(forward, rows, "bdeu", ess=ess) == pytest.approx(
            pgm.score(backward, rows, "bdeu", ess=ess), rel=1e-12)
    assert abs(pgm.score(forward, rows, "k2") - pgm.score(backward, rows, "k2")) > 0.1


def test_fitted_score_delegates(rows, tmp_path):
    fitted = pgm.fit(two_nodes(), rows)
    assert fitted.score(rows, "bic") == fitted.bic(rows)
    assert fitted.score(rows, "aic") == fitted.aic(rows)
    assert fitted.score(rows, "bdeu", ess=4) == pgm.score(two_nodes(), rows, "bdeu", ess=4)
    assert pgm.score(fitted, rows, "k2") == pgm.score(two_nodes(), rows, "k2")
    # a fitted file scores with its own parameters (here a prior makes them differ from a refit)
    smoothed = pgm.fit(two_nodes(), rows, prior={"dirichlet": 5.0})
    path = tmp_path / "two.fitted.yaml"
    smoothed.save(path)
    assert pgm.score(path, rows, "bic") == pytest.approx(smoothed.bic(rows), rel=1e-14)
    assert pgm.score(path, rows, "bic") > fitted.bic(rows)
    assert pgm.score(path, rows, "bdeu") == pgm.score(two_nodes(), rows, "bdeu")
    # a declaration's BIC is that of its fit
    assert pgm.score(two_nodes(), rows, "bic") == pytest.approx(fitted.bic(rows), rel=1e-14)
    assert pgm.score(two_nodes(), rows, "aic") == pytest.approx(fitted.aic(rows), rel=1e-14)


def test_integer_row_weights_equal_repeated_rows(rows):
    spec = two_nodes()
    graph = build(spec)
    weights = np.random.default_rng(0).integers(0, 4, len(rows)).astype(float)
    repeated = rows.loc[rows.index.repeat(weights.astype(int))].reset_index(drop=True)
    weighted = encode(graph, rows, weights=weights)
    for kind in ("bdeu", "k2"):
        assert structure_score(graph, weighted, kind, ess=3) == pytest.approx(
            structure_score(graph, repeated, kind, ess=3), rel=1e-13)
        # a column of weights, as pgm.fit takes it
        assert pgm.score(spec, rows.assign(w=weights), kind, ess=3, weights="w") == pytest.approx(
            pgm.score(spec, repeated, kind, ess=3), rel=1e-13)
    fitted = pgm.fit(spec, rows.assign(w=weights), weights="w")
    assert fitted.score(rows.assign(w=weights), "k2", weights="w") == pytest.approx(
        pgm.score(spec, repeated, "k2"), rel=1e-13)
    assert pgm.score(spec, rows.assign(w=weights), "bic", weights="w") == pytest.approx(
        pgm.fit(spec, repeated).bic(repeated), rel=1e-12)


def test_plate_copies_and_tied_nodes_pool_their_counts():
    """Shared parameters have one prior: the score is that of the pooled counts, as the MLE pools them."""
    spec = parse_spec({"name": "pooled", "graph": "directed", "plates": {"trial": {"size": 3}}, "nodes": {
        "s": {"states": 2},
        "o": {"states": 3, "parents": ["s"], "plate": "trial"},
        "t1": {"states": 2, "tie": "t"},
        "t2": {"states": 2, "tie": "t"}}})
    rng = np.random.default_rng(1)
    n = 40
    frame = pd.DataFrame({"s": rng.integers(0, 2, n), "t1": rng.integers(0, 2, n), "t2": rng.integers(0, 2, n),
                          **{f"o[{i}]": rng.integers(0, 3, n) for i in range(3)}})
    pooled_o = np.zeros((2, 3))
    for i in range(3):
        np.add.at(pooled_o, (frame["s"], frame[f"o[{i}]"]), 1)
    pooled_t = np.bincount(np.concatenate([frame["t1"], frame["t2"]]), minlength=2)[None, :].astype(float)
    count_s = np.bincount(frame["s"], minlength=2)[None, :].astype(float)
    ess = 6.0
    expected = {"s": log_marginal_likelihood(count_s, ess / 2), "o": log_marginal_likelihood(pooled_o, ess / 6),
                "t": log_marginal_likelihood(pooled_t, ess / 2)}
    got = family_scores(build(spec), frame, "bdeu", ess=ess)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-13), key
    assert pgm.score(spec, frame, "bdeu", ess=ess) == pytest.approx(sum(expected.values()), rel=1e-13)


# ---------------------------------------------------------------- what the scores refuse
@pytest.mark.parametrize("nodes, fragment", [
    ({"a": {"states": 2}, "x": {"type": "gaussian", "parents": ["a"]}}, "gaussian nodes ['x']"),
    ({"a": {"states": 2}, "c": {"states": 2, "parents": ["a"], "cpd": "logistic"}}, "logistic CPD ['c']"),
    ({"z": {"states": 2, "latent": True}, "a": {"states": 2, "parents": ["z"]}}, "latent nodes ['z']"),
])
def test_models_outside_the_scores_are_refused_naming_the_nodes(nodes, fragment):
    spec = parse_spec({"name": "m", "graph": "directed", "nodes": nodes})
    frame = pd.DataFrame({"a": [0, 1, 1], "c": [0, 0, 1], "x": [0.1, 0.2, 0.5]})
    for kind in ("bdeu", "k2"):
        with pytest.raises(pgm.PGMError, match="discrete nodes with table CPDs") as info:
            pgm.score(spec, frame, kind)
        assert fragment in str(info.value)
        assert "bic" in str(info.value)


def test_missing_cells_are_refused_naming_the_column(rows):
    holes = rows.copy()
    holes.loc[[4, 9], "b"] = np.nan
    with pytest.raises(pgm.DataError, match=r"complete data; columns \['b'\] have missing cells .*first \[4, 9\]"):
        pgm.score(two_nodes(), holes, "bdeu")


def test_undirected_models_unknown_kinds_and_bad_sample_sizes_are_refused(rows):
    ising = pgm.load(ROOT / "models" / "ising_3x3.yaml")
    with pytest.raises(pgm.PGMError, match="undirected"):
        pgm.score(ising, pd.DataFrame(), "bdeu")
    with pytest.raises(pgm.PGMError, match="unknown score 'bde'; use one of 'bdeu', 'k2', 'bic', 'aic'"):
        pgm.score(two_nodes(), rows, "bde")
    for ess in (0, -1, float("nan"), float("inf"), True, "10"):
        with pytest.raises(pgm.PGMError, match="ess"):
            pgm.score(two_nodes(), rows, "bdeu", ess=ess)
