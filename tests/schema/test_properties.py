"""Property tests of the loader.

1. Random valid declarations (random DAGs over random names, named or counted states,
   gaussian nodes whose children are gaussian or logistic) load, also after a YAML
   round trip, and ``topological_order`` puts every parent before its children.
2. Random mutations of the example files either load or raise ``pgm.ModelError``:
   never another exception, so ``pgm validate`` never shows a traceback.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgm
from pgm.schema import parse_spec, read_yaml

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "models").glob("*.yaml"))}

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
labels = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=6)


@st.composite
def declarations(draw) -> dict:
    """A valid directed declaration as plain data, nodes in a random declaration order."""
    order = draw(st.lists(names, min_size=1, max_size=9, unique=True))
    nodes: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    for i, name in enumerate(order):
        kind = draw(st.sampled_from(["table", "logistic", "gaussian"]))
        earlier = order[:i]
        if kind == "table":  # a table CPD conditions on discrete parents only
            earlier = [p for p in earlier if kinds[p] != "gaussian"]
        parents = draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True)) if earlier else []
        node: dict = {"parents": parents} if parents or draw(st.booleans()) else {}
        if kind == "gaussian":
            node["type"] = "gaussian"
            dim = draw(st.integers(1, 3))
            if dim > 1 or draw(st.booleans()):
                node["dim"] = dim
            node["covariance"] = draw(st.sampled_from(["full", "diag", "spherical", "tied"]))
        else:
            if draw(st.booleans()):
                node["states"] = draw(st.integers(1, 4))
                node["latent"] = draw(st.booleans())
            else:
                node["states"] = draw(st.lists(labels, min_size=1, max_size=4, unique=True))
            if kind == "logistic":
                node["cpd"] = "logistic"
        kinds[name] = kind
        nodes[name] = node
    shuffled = draw(st.permutations(order))
    return {"name": draw(names), "graph": "directed", "nodes": {n: nodes[n] for n in shuffled}}


def assert_parents_first(spec) -> None:
    order = spec.topological_order()
    assert sorted(order) == sorted(spec.nodes)
    rank = {n: i for i, n in enumerate(order)}
    for name, node in spec.nodes.items():
        for parent in node.parents:
            assert rank[parent] < rank[name], (parent, name, order)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declarations())
def test_random_valid_declarations_load(data):
    spec = parse_spec(data, "random.yaml")
    assert list(spec.nodes) == list(data["nodes"])
    assert_parents_first(spec)
    assert spec.n_params() >= 0
    # the same declaration written as YAML and read back through the file loader
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    text_data, lines = read_yaml(text, "random.yaml")
    again = parse_spec(text_data, "random.yaml", lines)
    assert again == spec


def _delete(lines, i, j, text):
    return lines[:i] + lines[i + 1:]


def _duplicate(lines, i, j, text):
    return lines[:i + 1] + [lines[i]] + lines[i + 1:]


def _swap(lines, i, j, text):
    out = list(lines)
    out[i], out[j] = out[j], out[i]
    return out


MUTATIONS = {"delete a line": _delete, "duplicate a line": _duplicate, "swap two lines": _swap}


@st.composite
def mutated_texts(draw) -> str:
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete a line", "duplicate a line", "swap two lines",
                                   "change a character", "truncate"]))
        if not text:
            break
        if op == "truncate":
            text = text[: draw(st.integers(0, len(text) - 1))]
        elif op == "change a character":
            i = draw(st.integers(0, len(text) - 1))
            new = draw(st.one_of(st.sampled_from(list(" :-[]{},#&*!|>'\"\t\n0123456789")), st.characters()))
            text = text[:i] + new + text[i + 1:]
        else:
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            text = "".join(MUTATIONS[op](lines, i, j, text))
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_texts())
def test_mutated_files_load_or_raise_model_error(text):
    try:
        data, lines = read_yaml(text, "mutant.yaml")
        spec = parse_spec(data, "mutant.yaml", lines)
    except pgm.ModelError as err:
        assert str(err).startswith("mutant.yaml"), str(err)
        assert all(e.startswith("mutant.yaml") for e in err.errors)
        return
    if spec.directed:
        assert_parents_first(spec)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(TEXTS)), st.data())
def test_mutated_files_through_load(tmp_path_factory, name, data):
    """The same contract through ``pgm.load`` on bytes, including invalid UTF-8."""
    raw = TEXTS[name].encode()
    i = data.draw(st.integers(0, len(raw) - 1))
    raw = raw[:i] + data.draw(st.binary(min_size=1, max_size=2)) + raw[i + 1:]
    path = tmp_path_factory.mktemp("mutant") / name
    path.write_bytes(raw)
    try:
        pgm.load(path)
    except pgm.ModelError as err:
        assert str(err).startswith(str(path)), str(err)
