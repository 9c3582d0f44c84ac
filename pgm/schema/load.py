"""YAML -> (data, line map) -> ModelSpec, with every error named by file, line and field path.

The YAML is read with a safe loader (no Python objects are ever built), with
YAML 1.2 booleans (``yes``/``no`` stay text: they are state labels in the
bnlearn networks), duplicate keys refused, and alias expansion bounded so a
"billion laughs" file is refused before it is expanded.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pgm.errors import ModelError
from pgm.schema.nodes import Clique, DiscreteNode, GaussianNode, Plate, Prior, Sequence
from pgm.schema.spec import ModelSpec, check_structure

#: A file whose aliases would expand to more YAML nodes than this is refused.
MAX_YAML_NODES = 20_000_000

LineMap = dict[tuple[Any, ...], int]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, never yes/no/on/off."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Number of YAML nodes once aliases are expanded (memoised, so cheap for a bomb)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive aliases
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def _walk(node: yaml.Node, path: tuple, lines: LineMap, problems: list[str], where: str, depth: int) -> None:
    """Record the line of every mapping key and sequence item; find duplicate keys."""
    if depth > 6:  # deep inside fitted parameters: lines are not needed there
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in seen:
                dotted = ".".join(map(str, path + (key,)))
                problems.append(f"{where}:{line}: {dotted}: duplicate key {key!r} (first at line "
                                f"{seen[key]}); each name may appear once")
            if key is not None:
                seen[key] = line
                lines[path + (key,)] = line
                _walk(value_node, path + (key,), lines, problems, where, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, problems, where, depth + 1)


def read_yaml(text: str, where: str = "<string>") -> tuple[Any, LineMap]:
    """Parse YAML text safely into plain Python data plus a map from field path to line."""
    if not text.strip():
        raise ModelError(f"{where}: the file is empty; a graph file declares at least `name` and `nodes`")
    try:
        loader = _Loader(text)  # checks the whole text for characters YAML forbids
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ModelError(f"{where}:{line}: the file holds the control character U+{exc.character:04X}, "
                         "which YAML does not allow; remove it") from None
    try:
        try:
            root = loader.get_single_node()
            if root is None:
                raise ModelError(f"{where}: the file holds no YAML document; declare `name` and `nodes`")
            size = _expanded_size(root, {})
            if size > MAX_YAML_NODES:
                raise ModelError(f"{where}: the YAML expands to {size:.3g} nodes through aliases "
                                 f"(limit {MAX_YAML_NODES:.0e}); refusing a possible alias bomb")
            lines: LineMap = {}
            problems: list[str] = []
            _walk(root, (), lines, problems, where, 0)
            if problems:
                raise ModelError(problems[0], problems)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        why = ("are loaded safely, so tags that build objects are refused" if "tag" in str(exc.problem)
               else "hold only text and numbers as mapping keys")
        raise ModelError(f"{where}{line}: {exc.problem}; graph files are plain YAML (mappings, lists, "
                         f"text and numbers) and {why}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        # an unclosed bracket is reported where parsing fails; point at where it opened too
        opened = exc.context_mark
        context = (f"; {exc.context} that starts at line {opened.line + 1}"
                   if exc.problem and exc.context and opened and mark and opened.line != mark.line else "")
        raise ModelError(f"{where}{line}: YAML syntax error: {exc.problem or exc.context}{context}"
                         " (check indentation, colons and brackets)") from None
    except yaml.YAMLError as exc:
        raise ModelError(f"{where}: YAML error: {exc}") from None
    except RecursionError:
        raise ModelError(f"{where}: the YAML nests too deeply to be a graph file") from None
    except ModelError:
        raise
    except ValueError as exc:  # int("9" * 5000): Python refuses to convert more than 4300 digits
        long = re.search(r"\d{4301,}", text)
        line = f":{text[: long.start()].count(chr(10)) + 1}" if long else ""
        raise ModelError(f"{where}{line}: a number with more than 4300 digits cannot be read; no number in a "
                         f"graph file needs that many (check this line)" if long else
                         f"{where}: a value cannot be read ({exc})") from None
    return data, lines


def _line(lines: LineMap, path: tuple) -> int | None:
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None


def format_path(path: tuple) -> str:
    """``('nodes', 'either', 'parents', 1)`` -> ``nodes.either.parents[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _where(source: str, lines: LineMap, path: tuple) -> str:
    line = _line(lines, path)
    return f"{source}:{line}" if line is not None else source


_FIELDS = {
    "discrete": sorted(DiscreteNode.model_fields),
    "gaussian": sorted(GaussianNode.model_fields),
    "clique": sorted(Clique.model_fields),
    "plate": sorted(Plate.model_fields),
    "prior": sorted(Prior.model_fields),
    "sequence": sorted(Sequence.model_fields),
    "spec": sorted(f.alias or n for n, f in ModelSpec.model_fields.items()),
}


#: The section of docs/format.md that documents each model's fields.
_SECTION = {"discrete": "nodes", "gaussian": "gaussian-nodes", "clique": "undirected-graphs",
            "plate": "plates", "prior": "priors", "sequence": "sequences", "spec": "top-level"}


def _see(owner: str) -> str:
    return f" (see docs/format.md#{_SECTION[owner]})"


def _clean_loc(loc: tuple) -> tuple[tuple, str]:
    """Drop pydantic's union tags from a loc and tell which model the last field belongs to."""
    path: list[Any] = []
    owner = "spec"
    i = 0
    while i < len(loc):
        part = loc[i]
        if len(path) == 2 and path[0] == "nodes" and part in ("discrete", "gaussian"):
            owner = part
        else:
            path.append(part)
        i += 1
    if len(path) >= 2 and path[0] == "cliques":
        owner = "clique"
    if len(path) >= 2 and path[0] == "plates":
        owner = "plate"
    if len(path) >= 2 and path[0] == "sequence":
        owner = "sequence"
    if "prior" in path[2:3] and len(path) > 3:  # a field inside `prior:` (not `prior` itself)
        owner = "prior"
    return tuple(path), owner


def _message(err: dict, path: tuple, owner: str) -> str:
    kind = err["type"]
    field = path[-1] if path else None
    if kind == "extra_forbidden":
        if owner == "gaussian" and field in ("states", "cpd", "prior", "penalty", "unary"):
            return (f"gaussian nodes have no `{field}`; remove it, or drop `type: gaussian` "
                    "to declare a discrete node")
        if owner == "discrete" and field in ("dim", "columns", "covariance"):
            return f"`{field}` belongs to gaussian nodes; add `type: gaussian` or remove `{field}`"
        close = difflib.get_close_matches(str(field), _FIELDS[owner], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(_FIELDS[owner])}"
        return f"unknown field {field!r}; {hint}{_see(owner)}"
    if kind == "missing":
        return f"required field {field!r} is missing; add it"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        got = err.get("input")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(got), options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        section = {"cpd": "cpds", "covariance": "gaussian-nodes", "graph": "top-level"}.get(str(field),
                                                                                             _SECTION[owner])
        return f"{got!r} is not allowed here{hint} (use one of {expected}; see docs/format.md#{section})"
    if kind == "node_type":
        return f"unknown node type {err.get('input', {}).get('type')!r}; use `type: discrete` (the default) or `type: gaussian`"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{msg[0].lower()}{msg[1:]} (got {shown})"


def parse_spec(data: Any, source: str = "<model>", lines: LineMap | None = None) -> ModelSpec:
    """Validate plain data (as read from YAML) into a ModelSpec; every problem in one ModelError."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        where = _where(source, lines, (0,))  # a list's first item; a scalar has no line
        raise ModelError(f"{where}: the file holds a {kind}, but a graph file is a mapping with "
                         "`name`, `graph` and `nodes` (see docs/format.md#top-level)")
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            path, owner = _clean_loc(tuple(err["loc"]))
            errors.append(f"{_where(source, lines, path)}: {format_path(path)}: {_message(err, path, owner)}")
        errors = list(dict.fromkeys(errors))
        raise ModelError("\n".join(errors), errors) from None
    problems = check_structure(spec)
    if problems:
        errors = [f"{_where(source, lines, p)}: {format_path(p)}: {m}" for p, m in problems]
        raise ModelError("\n".join(errors), errors)
    return spec


def read_text(path: str | Path) -> str:
    """A file's text, with a ModelError (not a traceback) if it cannot be read as UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory, not a graph file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ModelError(f"{path}:{line}: the file is not valid UTF-8 (byte {exc.start}); "
                         "save it as UTF-8 text") from None


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a graph file."""
    source = str(path)
    data, lines = read_yaml(read_text(path), source)
    return parse_spec(data, source, lines)
