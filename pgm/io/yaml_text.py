"""Graph-file data -> readable YAML text that reads back to the same data, exactly.

:func:`dump_spec_yaml` writes the top-level keys in a fixed order (``name``,
``graph``, ``description``, ``plates``, ``nodes``, ``cliques``, ``params``, then
any others), each node, plate and clique on one line in flow style, and
parameters in block style with every innermost list of numbers (a table row, a
coefficient vector) in flow style on its own line.

Scalars are written so that any YAML reader gives them back unchanged:

* floats with Python's shortest ``repr`` (``0.1``, ``1.0e-05``, ``5.0e-324``,
  ``.inf``, ``.nan``; a ``.0`` is added before an exponent, as YAML 1.1 needs),
  so they read back bit-for-bit;
* strings plain when PyYAML's default (YAML 1.1) resolver reads them back as
  the same string, otherwise quoted: ``'yes'``, ``'no'``, ``'on'``, ``'1'``,
  ``'0.5'``, ``'null'``, ``'x[0]'``, ``''``.  Our loader
  (:func:`pgm.schema.load.read_yaml`) already keeps ``yes``/``no``/``on``/``off``
  as text, but quoting them keeps the file portable to other YAML readers.
"""

from __future__ import annotations

import io
import math
import numbers
import re
from typing import Any

import yaml

from pgm.io.atomic import write_atomic

TOP_ORDER = ("name", "graph", "description", "sequence", "plates", "nodes", "cliques", "params")

_STR_TAG = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()
_emitter = yaml.emitter.Emitter(io.StringIO(), allow_unicode=True)

#: Node names up to this long are padded so that the node fields line up.
_ALIGN_LIMIT = 24


#: Plain scalars that a YAML 1.2 (core schema) reader takes as a number, boolean or null,
#: though PyYAML (YAML 1.1) reads some of them (``1e3``, ``0o17``) as text: quoted too.
_YAML12_NOT_STR = re.compile(
    r"""[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+
      |[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
      |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
      |null|Null|NULL|~|true|True|TRUE|false|False|FALSE""",
    re.X,
)


def _plain_ok(text: str, in_flow: bool = True) -> bool:
    if not text or text != text.strip():
        return False
    if _resolver.resolve(yaml.ScalarNode, text, (True, False)) != _STR_TAG:
        return False
    if _YAML12_NOT_STR.fullmatch(text):
        return False
    analysis = _emitter.analyze_scalar(text)
    allowed = analysis.allow_flow_plain if in_flow else analysis.allow_block_plain
    return allowed and not analysis.multiline


def _string(text: str, in_flow: bool = True) -> str:
    if _plain_ok(text, in_flow):
        return text
    if all(ch.isprintable() for ch in text):
        return "'" + text.replace("'", "''") + "'"
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _literal_ok(text: str) -> bool:
    """A multi-line text that reads back exactly from a ``|`` block scalar."""
    if "\n" not in text.rstrip("\n") or text.startswith("\n"):
        return False
    lines = text.rstrip("\n").split("\n")
    return all(line == line.strip() and all(ch.isprintable() for ch in line) for line in lines)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = float.__repr__(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def _plain_data(value: Any) -> Any:
    """numpy scalars and arrays, tuples -> plain Python (lists, int, float)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return value
    if isinstance(value, (list, tuple)):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def scalar(value: Any, in_flow: bool = True) -> str:
    """One YAML scalar (or empty collection) as text; ``in_flow=False`` for a block-mapping value."""
    value = _plain_data(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value, in_flow)
    if isinstance(value, (list, tuple)) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    raise TypeError(f"cannot write a {type(value).__name__} in a graph file")


def _is_leaf(value: Any) -> bool:
    value = _plain_data(value)
    return not isinstance(value, (list, tuple, dict)) or not value


def flow(value: Any, in_flow: bool = True) -> str:
    """A value in YAML flow style, on one line (a bare scalar in block context if ``in_flow`` is false)."""
    value = _plain_data(value)
    if isinstance(value, dict) and value:
        return "{" + ", ".join(f"{_key(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and value:
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value, in_flow)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _string(key)
    return scalar(key)


def _flowable(value: Any) -> bool:
    """Written on one line: a scalar, or a list or mapping of scalars only."""
    value = _plain_data(value)
    if isinstance(value, dict):
        return all(_is_leaf(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_is_leaf(v) for v in value)
    return True


def _block(value: Any, indent: int, out: list[str], comments: list[str] | None = None) -> None:
    """Lines of a non-flowable value (a mapping or a list) at ``indent`` spaces."""
    pad = " " * indent
    value = _plain_data(value)
    if isinstance(value, dict):
        for k, v in value.items():
            v = _plain_data(v)
            if _flowable(v) and not (isinstance(v, dict) and v):
                out.append(f"{pad}{_key(k)}: {flow(v, in_flow=False)}")
            else:
                out.append(f"{pad}{_key(k)}:")
                _block(v, indent + 2, out, _row_comments(k, v, comments))
        return
    width = 0
    if comments:
        width = max((len(flow(item)) for item in value if _flowable(item)), default=0)
    for i, item in enumerate(value):
        item = _plain_data(item)
        if _flowable(item):
            text = flow(item)
            if comments and i < len(comments):
                text = f"{text.ljust(width)}  # {comments[i]}"
            out.append(f"{pad}- {text}")
        else:
            sub: list[str] = []
            _block(item, indent + 2, sub)
            first = sub[0][indent + 2:]
            out.append(f"{pad}- {first}")
            out.extend(sub[1:])


def _row_comments(key: Any, value: Any, comments: list[str] | None) -> list[str] | None:
    return comments if key == "table" and isinstance(value, list) else None


def _config_labels(data: dict, name: str, n_rows: int) -> list[str] | None:
    """``a=yes, b=no`` for each row of the table of a discrete node, or None."""
    nodes = data.get("nodes")
    first = name.endswith("@first") and data.get("sequence") is not None
    name = name[:-len("@first")] if first else name
    if not isinstance(nodes, dict) or not isinstance(nodes.get(name), dict):
        return None
    parents = list(nodes[name].get("parents") or [])
    members = list(parents)
    if not first and data.get("sequence") is not None:  # a sequence's later-step CPD: then the previous step
        members += list(nodes[name].get("prev") or [])
        parents += [f"{p}[t-1]" for p in nodes[name].get("prev") or []]
    if not parents:
        return None
    lists = []
    for p in members:
        node = nodes.get(p)
        states = node.get("states") if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get("type", "discrete") != "discrete":
            return None
        if isinstance(states, int) and not isinstance(states, bool):
            lists.append([str(i) for i in range(states)])
        elif isinstance(states, list) and states:
            lists.append([str(s) for s in states])
        else:
            return None
    if math.prod(len(x) for x in lists) != n_rows:
        return None
    out = []
    for c in range(n_rows):
        labels = []
        for states in reversed(lists):
            c, i = divmod(c, len(states))
            labels.append(states[i])
        out.append(", ".join(f"{p}={s}" for p, s in zip(parents, reversed(labels))))
    return out


def dump_spec_yaml(data: dict) -> str:
    """Graph-file data as readable YAML that reads back (with :func:`pgm.schema.read_yaml`) to ``data``.

    Rows of a discrete node's table get a comment naming their parent configuration.
    """
    if not isinstance(data, dict):
        raise TypeError(f"dump_spec_yaml expects graph-file data (a dict), got {type(data).__name__}")
    keys = [k for k in TOP_ORDER if k in data] + [k for k in data if k not in TOP_ORDER]
    out: list[str] = []
    for key in keys:
        value = _plain_data(data[key])
        if key in ("nodes", "plates") and isinstance(value, dict) and value:
            out.append(f"{_key(key)}:")
            names = [_key(k) for k in value]
            width = max(len(n) for n in names)
            width = width if width <= _ALIGN_LIMIT else 0
            for text, v in zip(names, value.values()):
                out.append(f"  {(text + ':').ljust(width + 1)} {flow(v)}")
        elif key == "cliques" and isinstance(value, list) and value:
            out.append(f"{_key(key)}:")
            out.extend(f"  - {flow(v)}" for v in value)
        elif key == "params" and isinstance(value, dict) and value:
            out.append(f"{_key(key)}:")
            for name, block in value.items():
                block = _plain_data(block)
                if _flowable(block) and not (isinstance(block, dict) and block):
                    out.append(f"  {_key(name)}: {flow(block)}")
                    continue
                out.append(f"  {_key(name)}:")
                table = block.get("table") if isinstance(block, dict) else None
                comments = (_config_labels(data, name, len(table))
                            if isinstance(table, list) and table and not _is_leaf(table[0]) else None)
                _block(block, 4, out, comments)
        elif isinstance(value, str) and _literal_ok(value):
            chomp = "-" if not value.endswith("\n") else "+" if value.endswith("\n\n") else ""
            out.append(f"{_key(key)}: |{chomp}")
            body = value[:-1] if value.endswith("\n") else value
            out.extend(f"  {line}" if line else "" for line in body.split("\n"))
        elif _flowable(value):
            out.append(f"{_key(key)}: {flow(value, in_flow=False)}")
        else:
            out.append(f"{_key(key)}:")
            _block(value, 2, out)
    return "\n".join(out) + "\n"


def fitted_data(spec: Any, params: dict) -> dict:
    """A declaration (``ModelSpec``) with its fitted ``params:`` as plain graph-file data."""
    data = spec.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    data["graph"] = spec.kind
    data["params"] = params
    return data


def save_fitted(path: Any, spec: Any, params: dict) -> None:
    """Write a fitted model as a readable graph file, atomically."""
    write_atomic(path, dump_spec_yaml(fitted_data(spec, params)))
