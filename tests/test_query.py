"""fitted.query: exact posteriors by variable elimination, against the full joint by brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import pgm
from pgm.convert import read_any
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"



@pytest.fixture(scope="module")
def asia() -> FittedModel:
    return FittedModel.from_spec(parse_spec(read_any(EXAMPLES / "asia.bif")))


def brute_joint(model: FittedModel) -> tuple[list[str], np.ndarray]:
    """p(all nodes) by multiplying CPT entries for every joint state (2^8 for asia)."""
    names = list(model.graph.order)
    cards = [model.graph[n].n_states for n in names]
    joint = np.ones(cards)
    for state in itertools.product(*(range(k) for k in cards)):
        value = dict(zip(names, state))
        p = 1.0
        for n in names:
            var = model.graph[n]
            probs = model.cpds[var.param].probs
            cfg = 0
            for par in var.parents:
                cfg = cfg * model.graph[par].n_states + value[par]
            p *= probs[cfg, value[n]]
        joint[state] = p
    return names, joint


@pytest.mark.parametrize("query,evidence", [
    (["either"], {"xray": "yes"}),
    (["lung", "tub"], {"xray": "yes", "smoke": "yes"}),
    (["bronc"], {"dysp": "yes", "smoke": "no"}),
    (["asia"], {}),
    (["dysp", "either", "smoke"], {"asia": "yes"}),
])
def test_query_equals_brute_force(asia, query, evidence):
    names, joint = brute_joint(asia)
    sel = [slice(None)] * len(names)
    for var, label in evidence.items():
        sel[names.index(var)] = asia.graph[var].labels.index(label)
    cond = joint[tuple(sel)]
    kept = [n for n in names if n not in evidence]
    drop = tuple(i for i, n in enumerate(kept) if n not in query)
    marg = cond.sum(axis=drop)
    order = [n for n in kept if n in query]
    marg = np.transpose(marg, [order.index(q) for q in query])
    marg = marg / marg.sum()
    got = asia.query(query, evidence=evidence)
    assert got.index.names == query
    np.testing.assert_allclose(got.to_numpy(), marg.reshape(-1), rtol=0, atol=1e-12)


def test_query_known_value(asia):
    # P(either = yes | xray = yes) in the asia network, as given by pgmpy and bnlearn
    assert asia.query("either", evidence={"xray": "yes"})["yes"] == pytest.approx(0.576040, abs=1e-6)


def test_query_errors_name_the_problem(asia):
    with pytest.raises(pgm.ModelError, match="unknown node 'lnug'"):
        asia.query(["lnug"])
    with pytest.raises(pgm.DataError, match="unknown state"):
        asia.query(["lung"], evidence={"xray": "maybe"})
    with pytest.raises(pgm.ModelError, match="both queried and observed"):
        asia.query(["lung"], evidence={"lung": "yes"})
