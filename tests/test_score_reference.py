"""BDeu/K2/BIC/AIC scores and per-state/table-prior fits against pgmpy and pyAgrum (stored values).

The references are made by tests/reference/make_score_reference.py (pgmpy 1.1.2, pyAgrum 3.3.1), on
rows that pgm draws again here from asia, alarm and a random 8-node network; the data digest tells
"pgm's sampler changed" from "the scores disagree".

Two documented differences, asserted exactly rather than hidden:

* pgmpy 1.1.2 counts with ``reindex=False``, which drops parent configurations and child states
  that no row holds.  Its K2 then adds ``lgamma(r)`` for every configuration but subtracts
  ``lgamma(N_c + r)`` only for the seen ones, so it is ``lgamma(r)`` too high per unseen
  configuration; its BDeu lacks ``lgamma(ess / (q r))`` for every (seen configuration, never-seen
  state) cell.  Both terms are 0 in the marginal likelihood (Cooper & Herskovits 1992).  pgm's
  scores plus these omissions equal pgmpy's to 1e-12 relative; where nothing is unseen (asia)
  they are equal as they stand.  pyAgrum, which counts every cell, agrees with pgm without them.
* pyAgrum reports log2 and evaluates log2(Gamma(x)) from a table on a 0.01 grid below 50 and a
  shortened Stirling formula (``log(1 + 1/(12x))`` for ``1/(12x) - 1/(360x^3)``, off by about
  ``1/(288 x^2)``, 1.4e-6 at x = 50) above: its scores are compared at 1e-8 relative or 1e-4
  absolute (a few dozen such terms; a wrong formula is off by lgamma(r) >= 0.69), and its BDeu only at the equivalent sample size whose pseudo-counts
  fall on that grid (``ess_grid``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import pgm
from pgm.encode import encode
from pgm.graph import build
from pgm.learn.mle import complete_stats
from pgm.schema import parse_spec

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "reference" / "score_reference.json").read_text())
_spec = importlib.util.spec_from_file_location("make_score_reference",
                                               ROOT / "tests" / "reference" / "make_score_reference.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)  # the networks and the drawing of the rows, shared with the script
NETWORKS = make.networks()
CASES = [(net, s) for net, entry in REFERENCE["networks"].items() for s in entry["structures"]]
LN2 = math.log(2)


@pytest.fixture(scope="module")
def rows():
    out = {}
    for name, net in NETWORKS.items():
        frame = make.draw(net)
        assert make.data_digest(frame, net["base"]) == REFERENCE["networks"][name]["data_sha256"], (
            "pgm's sampler no longer draws the reference rows: rerun tests/reference/make_score_reference.py")
        out[name] = frame
    return out


def structure(net: str, name: str):
    return make.declare(NETWORKS[net]["base"], name, REFERENCE["networks"][net]["structures"][name]["parents"])


def pgmpy_omission(spec, frame, kind: str, ess: float = 1.0) -> float:
    """What pgmpy 1.1.2 leaves out (module docstring), from pgm's own counts."""
    graph = build(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.DataWarning)  # the alarm subset ignores the other columns
        data = encode(graph, frame)
    total = 0.0
    for key, stats in complete_stats(graph, data).items():
        if not spec.nodes[key].parents:
            continue  # pgmpy reindexes the counts of a node without parents
        q, r = stats.counts.shape
        seen_configs = stats.counts.sum(axis=1) > 0
        seen_states = stats.counts.sum(axis=0) > 0
        if kind == "k2":
            total += (~seen_configs).sum() * math.lgamma(r)
        else:
            total -= seen_configs.sum() * (~seen_states).sum() * math.lgamma(ess / (q * r))
    return total


def score(spec, frame, kind, ess=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.DataWarning)  # the alarm subset ignores the other columns
        return pgm.score(spec, frame, kind, ess=ess)


@pytest.mark.parametrize("net, name", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_bdeu_k2_bic_aic_equal_pgmpy(rows, net, name):
    spec = structure(net, name)
    frame = rows[net]
    ref = REFERENCE["networks"][net]["structures"][name]["pgmpy"]
    for ess in REFERENCE["ess"] + [REFERENCE["networks"][net]["ess_grid"]]:
        ours = score(spec, frame, "bdeu", ess)
        omitted = pgmpy_omission(spec, frame, "bdeu", ess)
        assert ours + omitted == pytest.approx(ref[f"bdeu_{ess:g}"], rel=1e-12, abs=1e-9), ess
        if net == "asia":
            assert omitted == 0.0
    omitted = pgmpy_omission(spec, frame, "k2")
    assert score(spec, frame, "k2") + omitted == pytest.approx(ref["k2"], rel=1e-12, abs=1e-9)
    # pgmpy's BIC and AIC are log L - k/2 log n and log L - k (higher is better); pgm's are -2 times those
    assert score(spec, frame, "bic") == pytest.approx(-2 * ref["bic"], rel=1e-12)
    assert score(spec, frame, "aic") == pytest.approx(-2 * ref["aic"], rel=1e-12)


def test_the_pgmpy_omissions_are_exercised(rows):
    """The random network has unseen configurations and a state no row holds; alarm has unseen configurations."""
    random_true = structure("random", "true")
    assert pgmpy_omission(random_true, rows["random"], "k2") > 1.0
    assert pgmpy_omission(random_true, rows["random"], "bdeu", 10.0) < -1.0
    assert pgmpy_omission(structure("alarm", "true"), rows["alarm"], "k2") > 1.0


@pytest.mark.parametrize("net, name", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_bdeu_and_k2_equal_pyagrum_in_log2(rows, net, name):
    spec = structure(net, name)
    frame = rows[net]
    ref = REFERENCE["networks"][net]["structures"][name]["pyagrum"]
    ess = REFERENCE["networks"][net]["ess_grid"]
    assert score(spec, frame, "k2") == pytest.approx(ref["k2_log2"] * LN2, rel=1e-8, abs=1e-4)
    assert score(spec, frame, "bdeu", ess) == pytest.approx(ref[f"bdeu_{ess:g}_log2"] * LN2, rel=1e-8, abs=1e-4)


@pytest.mark.parametrize("net", ["asia", "random"])
def test_per_state_and_table_priors_equal_pgmpy_bayesian_estimator(rows, net):
    """Even nodes carry per-state pseudo-counts, odd nodes a full table; some are 0.  Where a row's
    counts and pseudo-counts are all 0, pgmpy divides 0 by 0 (NaN) and pgm gives the uniform row."""
    ref = REFERENCE["networks"][net]["bayesian_cpts"]
    base = NETWORKS[net]["base"]
    nodes = {n: {"states": base.nodes[n].states, "parents": list(base.nodes[n].parents),
                 "prior": {"dirichlet": ref[n]["dirichlet"]}} for n in base.nodes}
    spec = parse_spec({"name": f"{net}-priors", "graph": "directed", "nodes": nodes})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pgm.DataWarning)
        fitted = pgm.fit(spec, rows[net])
    nan_rows = 0
    for name in base.nodes:
        theirs = np.asarray(ref[name]["table"], dtype=float)
        ours = fitted.cpds[name].probs
        empty = np.isnan(theirs).any(axis=1)
        nan_rows += int(empty.sum())
        np.testing.assert_allclose(ours[~empty], theirs[~empty], rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_array_equal(ours[empty], 1.0 / ours.shape[1])
    assert (nan_rows > 0) == (net == "random")
