"""docs/format.md stays the complete, correct reference of the graph file.

- every field of every pydantic model in ``pgm.schema`` (found by walking the models, so a new
  field or a new model fails this test until it is documented), and every allowed value of the
  fields with a fixed set of values (``type``, ``graph``, ``cpd``, ``covariance``, ``features``),
  appears in the page as code (`` `name` ``);
- every ```yaml example loads: a whole file with ``pgm.load`` (a fitted model when it carries
  ``params:``); a block whose first line is ``# fragment: nodes`` as the nodes of a minimal model;
  a block whose first line is ``# fragment`` is parsed as YAML only;
- every ``docs/format.md#anchor`` that pgm's messages point to is a section of the page, and the
  README links the page.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path

import pydantic
import pytest

import pgm
import pgm.schema.nodes
import pgm.schema.spec
from pgm.fitted import FittedModel
from pgm.markov import FittedMarkovNet
from pgm.schema import FEATURE_NAMES, ModelSpec, read_yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "format.md"
TEXT = DOC.read_text(encoding="utf-8")

#: Fields whose allowed values must each be documented.
VALUE_FIELDS = {"type", "graph", "kind", "cpd", "covariance", "features"}


def _models_in(annotation: typing.Any) -> list[type[pydantic.BaseModel]]:
    """Pydantic model classes inside a type annotation (through Union, Annotated, list, dict...)."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _literals_in(annotation: typing.Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    return [v for arg in typing.get_args(annotation) for v in _literals_in(arg)]


def schema_models() -> list[type[pydantic.BaseModel]]:
    """ModelSpec and every model reachable from its fields, plus any model defined in pgm.schema."""
    found: list[type[pydantic.BaseModel]] = []
    stack: list[type[pydantic.BaseModel]] = [ModelSpec]
    for module in (pgm.schema.nodes, pgm.schema.spec):
        stack += [obj for obj in vars(module).values() if isinstance(obj, type)
                  and issubclass(obj, pydantic.BaseModel) and obj.__module__ == module.__name__]
    while stack:
        model = stack.pop()
        if model in found:
            continue
        found.append(model)
        for info in model.model_fields.values():
            stack.extend(_models_in(info.annotation))
    return [m for m in found if m.model_fields]


def schema_fields() -> list[tuple[str, str]]:
    """(model, field name as written in a file) for every field of every schema model."""
    return sorted({(m.__name__, info.alias or name) for m in schema_models()
                   for name, info in m.model_fields.items()})


def schema_values() -> list[tuple[str, str]]:
    """(field, allowed value) for every field with a fixed set of values."""
    out = {("features", v) for v in FEATURE_NAMES}
    for model in schema_models():
        for name, info in model.model_fields.items():
            if name in VALUE_FIELDS or info.alias in VALUE_FIELDS:
                out |= {(info.alias or name, v) for v in _literals_in(info.annotation)}
    return sorted(out)


def documented(word: str) -> bool:
    """``word`` appears as inline code: `word`, `word:` or `word: ...`."""
    return re.search(r"`" + re.escape(word) + r"(?::[^`]*)?`", TEXT) is not None


def test_the_walk_finds_the_schema():
    """The introspection itself works: it sees the models and fields we know exist."""
    names = {m for m, _ in schema_fields()}
    assert {"ModelSpec", "DiscreteNode", "GaussianNode", "Clique", "Plate", "Prior"} <= names
    fields = {f for _, f in schema_fields()}
    assert {"graph", "nodes", "cliques", "plates", "states", "covariance", "dirichlet", "bdeu", "size"} <= fields
    assert "kind" not in fields  # the file says `graph:`, the alias
    values = set(schema_values())
    assert {("covariance", "tied"), ("graph", "undirected"), ("cpd", "logistic"), ("type", "gaussian"),
            ("features", "ising")} <= values


@pytest.mark.parametrize("model, field", schema_fields())
def test_every_schema_field_is_documented(model, field):
    assert documented(field), (f"{model}.{field} is a field of the graph file but docs/format.md does not "
                               f"name it (as `{field}`); document it with an example")


@pytest.mark.parametrize("field, value", schema_values())
def test_every_allowed_value_is_documented(field, value):
    assert documented(value), f"`{field}: {value}` is allowed but docs/format.md does not name `{value}`"


def test_documented_detects_absence():
    assert not documented("no_such_field_anywhere")
    assert documented("covariance") and documented("prior")


# ------------------------------------------------------------------ examples
def yaml_blocks() -> list[tuple[int, str]]:
    """(line number, text) of every ```yaml block of the page."""
    out = []
    for match in re.finditer(r"^```yaml\n(.*?)^```", TEXT, flags=re.S | re.M):
        out.append((TEXT[: match.start()].count("\n") + 1, match.group(1)))
    return out


BLOCKS = yaml_blocks()


def test_the_page_has_examples():
    assert len(BLOCKS) >= 15
    assert sum("params:" in text for _, text in BLOCKS) >= 4


def load_example(text: str, where: str, tmp_path: Path):
    """Load one example block as the page's markers say; returns what ``pgm.load`` gives (or the
    parsed YAML of a ``# fragment`` block)."""
    first = text.splitlines()[0].strip()
    if first == "# fragment":
        data, _ = read_yaml(text, where)
        assert data is not None, f"{where}: an empty fragment"
        return data
    if first == "# fragment: nodes":
        body = "\n".join("  " + row for row in text.splitlines())
        text = f"name: fragment\ngraph: directed\nnodes:\n{body}\n"
    else:
        assert not first.startswith("# fragment"), f"{where}: unknown fragment marker {first!r}"
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = pgm.load(path)
    data, _ = read_yaml(text, where)
    if "params" in data:
        kind = FittedModel if data.get("graph", "directed") == "directed" else FittedMarkovNet
        assert isinstance(loaded, kind), f"{where}: a fitted-file example must load as a fitted model"
        # what it says is what it holds: saved again, it reads back to the same parameters
        again = tmp_path / "again.yaml"
        loaded.save(again)
        assert pgm.load(again).to_params() == loaded.to_params()
    else:
        assert isinstance(loaded, ModelSpec), f"{where}: expected a declaration"
    return loaded


@pytest.mark.parametrize("line, text", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_every_example_loads(line, text, tmp_path):
    load_example(text, f"docs/format.md:{line}", tmp_path)


def test_the_fragment_markers_work(tmp_path):
    """Fragments are checked too: nodes are loaded inside a model, a bare fragment is parsed."""
    spec = load_example("# fragment: nodes\na: {states: [x, y]}\nb: {states: 2, parents: [a]}\n", "t", tmp_path)
    assert spec.nodes["b"].parents == ["a"]
    with pytest.raises(pgm.ModelError, match="unknown node 'nobody'"):
        load_example("# fragment: nodes\na: {states: [x, y], parents: [nobody]}\n", "t", tmp_path)
    assert load_example("# fragment\nprior: {dirichlet: 1}\n", "t", tmp_path) == {"prior": {"dirichlet": 1}}
    with pytest.raises(pgm.ModelError, match="YAML syntax error"):
        load_example("# fragment\nprior: {dirichlet: 1\n", "t", tmp_path)
    with pytest.raises(AssertionError, match="unknown fragment marker"):
        load_example("# fragment: plates\nx: 1\n", "t", tmp_path)


# ------------------------------------------------------------------ anchors and links
def anchors() -> set[str]:
    """GitHub's anchors of the page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", TEXT, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_internal_links_resolve():
    targets = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert targets, "the contents line links the sections"
    assert targets <= anchors(), f"links to missing sections: {sorted(targets - anchors())}"


def test_messages_point_to_existing_sections():
    cited = set()
    for path in (ROOT / "pgm").rglob("*.py"):
        cited |= set(re.findall(r"docs/format\.md#([\w-]+)", path.read_text(encoding="utf-8")))
    assert cited, "pgm's error messages point to docs/format.md sections"
    assert cited <= anchors(), f"messages point to missing sections: {sorted(cited - anchors())}"
    assert "see the format in the README" not in "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "pgm").rglob("*.py"))


def test_readme_links_the_reference():
    assert "docs/format.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_not_implemented_is_not_offered():
    """While `sequence:`/`prev:` are not fields of the schema, the page says they are not available."""
    fields = {f for _, f in schema_fields()}
    if "sequence" not in fields and "prev" not in fields:
        section = TEXT.split("## Not available", 1)[-1]
        assert "`sequence:`" in section and "`prev:`" in section and "not implemented" in section


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
