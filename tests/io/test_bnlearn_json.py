"""bnlearn-repository linear-Gaussian JSON (ecoli70) -> graph-file data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pgm.errors import ModelError
from pgm.io.bnlearn_json import read_bnlearn_json
from pgm.io.yaml_text import dump_spec_yaml
from pgm.schema import parse_spec, read_yaml

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ECOLI = DATA / "ecoli70.json"


@pytest.fixture(scope="module")
def ecoli_text() -> str:
    if not ECOLI.is_file():
        pytest.skip("the shared reference data is not beside the repo")
    return ECOLI.read_text()


@pytest.fixture(scope="module")
def ecoli(ecoli_text) -> dict:
    return read_bnlearn_json(ecoli_text, str(ECOLI))


def test_ecoli70_structure(ecoli, ecoli_text):
    raw = json.loads(ecoli_text)
    assert ecoli["name"] == "ecoli70" and ecoli["graph"] == "directed"
    assert len(ecoli["nodes"]) == 46 and list(ecoli["nodes"]) == raw["nodes"]
    arcs = {(p, n) for n, node in ecoli["nodes"].items() for p in node.get("parents", [])}
    assert len(arcs) == len(raw["arcs"]) == 70
    assert arcs == {tuple(a) for a in raw["arcs"]}
    assert all(node["type"] == "gaussian" for node in ecoli["nodes"].values())
    assert ecoli["nodes"]["b1191"] == {"type": "gaussian"}  # a root: no parents field
    spec = parse_spec(ecoli, "ecoli70")
    assert spec.graph.number_of_edges() == 70


def test_ecoli70_coefficients_by_hand(ecoli):
    # "b1583": (Intercept) 1.382, lacA -0.2457, lacZ 0.3422, yceP 0.2407; variance 1.1085
    assert ecoli["nodes"]["b1583"]["parents"] == ["lacA", "lacZ", "yceP"]
    assert ecoli["params"]["b1583"] == {"intercept": 1.382, "coef": [-0.2457, 0.3422, 0.2407],
                                        "covariance": 1.1085}
    # "lacY": (Intercept) -0.1149, asnA -0.204, cspG -0.2241, eutG 0.3537, lacA 1.0462; variance 0.0602
    assert ecoli["params"]["lacY"] == {"intercept": -0.1149, "coef": [-0.204, -0.2241, 0.3537, 1.0462],
                                       "covariance": 0.0602}
    # a root node
    assert ecoli["params"]["b1191"] == {"intercept": 1.273, "coef": [], "covariance": 0.6086}


def test_ecoli70_yaml_round_trip(ecoli):
    text = dump_spec_yaml(ecoli)
    assert read_yaml(text)[0] == ecoli
    assert yaml.safe_load(text) == ecoli
    assert "  b1583: {type: gaussian, parents: [lacA, lacZ, yceP]}" in text.splitlines()
    assert "    coef: [-0.2457, 0.3422, 0.2407]" in text.splitlines()


GOOD = {
    "nodes": ["a", "b"],
    "arcs": [["a", "b"]],
    "cpds": {
        "a": {"coefficients": {"(Intercept)": [1.0]}, "variance": [2.0], "parents": []},
        "b": {"coefficients": {"(Intercept)": [0.5], "a": [-1.5]}, "variance": [0.25], "parents": ["a"]},
    },
}


def _variant(**changes) -> str:
    data = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *head, last = path.split("__")
        target = data
        for key in head:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(data, indent=2)


def test_small_network_and_name_from_source():
    data = read_bnlearn_json(_variant(), "nets/tiny.json")
    assert data["name"] == "tiny"
    assert data["nodes"] == {"a": {"type": "gaussian"}, "b": {"type": "gaussian", "parents": ["a"]}}
    assert data["params"]["b"] == {"intercept": 0.5, "coef": [-1.5], "covariance": 0.25}
    assert read_bnlearn_json(_variant())["name"] == "unknown"
    # scalars instead of one-element lists, and parents read off the coefficients
    text = _variant(cpds__b__variance=0.25, cpds__b__parents=None)
    assert read_bnlearn_json(text)["params"]["b"] == data["params"]["b"]


@pytest.mark.parametrize("text,words", [
    ('{"nodes": ["a"],\n "cpds": {\n', ["bad.json:3:", "JSON syntax error"]),
    ("[1, 2]", ["bad.json:1:", "nodes"]),
    (_variant(cpds__b__coefficients__a=None), ["bad.json:", "no coefficient for its parent 'a'"]),
    (_variant(cpds__a__coefficients__b=[1.0]), ["coefficient for 'b'", "not among its `parents`"]),
    (_variant(cpds__b__parents=["c"]), ["parent 'c'"]),
    (_variant(cpds__b__variance=[-1.0]), ["variance of 'b'", "positive"]),
    (_variant(cpds__b__variance=["x"]), ["not a number"]),
    (_variant(cpds__b__variance=None), ["no `variance`"]),
    (_variant(cpds__b__coefficients__a=[1.0, 2.0]), ["2 values"]),
    (_variant(arcs=[["b", "a"]]), ["arc b -> a"]),
    (_variant(arcs=[]), ["missing from `arcs`"]),
    (_variant(nodes=["a"]), ["not in `nodes`"]),
    (_variant(cpds__b__coefficients__a=None, cpds__b__parents=None, cpds__b__prob=[0.5, 0.5]), ["discrete"]),
    (_variant(cpds__a__parents=["b"], cpds__a__coefficients={"(Intercept)": 0, "b": 1},
              arcs=[["a", "b"], ["b", "a"]]), ["cycle"]),
])
def test_malformed_json_gives_model_error(text, words):
    with pytest.raises(ModelError) as info:
        read_bnlearn_json(text, "bad.json")
    message = str(info.value)
    assert message.startswith("bad.json"), message
    for word in words:
        assert word in message, message


def test_errors_point_at_the_node_line():
    text = _variant(cpds__b__variance=[-1.0])
    rows = text.splitlines()
    b_at = next(i for i, row in enumerate(rows) if row.strip() == '"b": {')
    line = next(i for i, row in enumerate(rows, 1) if i > b_at and '"variance"' in row)
    with pytest.raises(ModelError, match=rf"^bad.json:{line}: "):
        read_bnlearn_json(text, "bad.json")
