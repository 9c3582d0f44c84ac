"""bnlearn-repository linear-Gaussian networks in JSON (e.g. ``ecoli70.json``) -> graph-file data.

The JSON (as shipped with pgmpy for the bnlearn repository's Gaussian networks) reads::

    {"nodes": ["aceB", "asnA", ...],
     "arcs": [["asnA", "icdA"], ...],
     "cpds": {"aceB": {"coefficients": {"(Intercept)": [0.1324], "icdA": [1.0464]},
                       "variance": [0.0853],
                       "parents": ["icdA"]}, ...}}

Each node becomes ``{type: gaussian, parents: [...]}`` (``parents`` left out
for a root) and its parameters ``params[node] = {"intercept": b0, "coef": [b1,
...], "covariance": v}``, with ``coef`` in ``parents`` order (``[]`` for a root)
and ``covariance`` the residual variance, read from the file's ``variance``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import PurePath
from typing import Any

from pgm.errors import ModelError

INTERCEPT = "(Intercept)"


class _Where:
    """file:line for a node's entry under ``cpds`` (best effort: the line of its key)."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.src = source
        self.cpds_at = max(text.find('"cpds"'), 0)

    def __call__(self, node: str | None = None, key: str | None = None) -> str:
        if node is None:
            return self.src
        m = re.compile(re.escape(json.dumps(node)) + r"\s*:").search(self.text, self.cpds_at)
        if m is None:
            return self.src
        pos = m.start()
        if key is not None:
            k = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(self.text, m.end())
            if k is not None:
                pos = k.start()
        return f"{self.src}:{self.text.count(chr(10), 0, pos) + 1}"


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, list):
        if len(value) != 1:
            raise ModelError(f"{where}: {what} holds {len(value)} values; a linear-Gaussian node has one "
                             "(conditional Gaussian nodes with discrete parents are not supported)")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f"{where}: {what} is {value!r}, not a number; write a number such as 0.25")
    value = float(value)
    if not math.isfinite(value):
        raise ModelError(f"{where}: {what} is {value!r}; it must be a finite number")
    return value


def _name(source: str) -> str:
    if source and not (source.startswith("<") and source.endswith(">")):
        stem = PurePath(source).name
        for suffix in (".gz", ".json"):
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
        if stem:
            return stem
    return "unknown"


def read_bnlearn_json(text: str, source: str = "<json>") -> dict[str, Any]:
    """Parse a bnlearn-repository Gaussian network in JSON into graph-file data with ``params``.

    ``source`` names the text in error messages; its stem names the model.

    Raises
    ------
    pgm.ModelError
        for invalid JSON (with its line), a missing or unknown node, a parent
        without a coefficient (or a coefficient for a non-parent), arcs that do
        not match the parents, a variance that is not a positive number.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{source}: the JSON is not valid UTF-8; save it as UTF-8") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source}:{exc.lineno}: JSON syntax error: {exc.msg} (column {exc.colno}); "
                         "check commas, quotes and brackets") from None
    where = _Where(text, source)
    if not isinstance(raw, dict):
        raise ModelError(f"{source}:1: the JSON holds a {type(raw).__name__}, but a network is an object with "
                         "`nodes`, `arcs` and `cpds`")
    cpds = raw.get("cpds")
    if not isinstance(cpds, dict) or not cpds:
        raise ModelError(f"{source}: the JSON has no `cpds` object; each node needs an entry with "
                         "`coefficients`, `variance` and `parents`")
    names = raw.get("nodes", list(cpds))
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"{source}: `nodes` must be a list of node names")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise ModelError(f"{source}: node {dup!r} is listed twice in `nodes`; list each node once")
    for node in cpds:
        if node not in names:
            raise ModelError(f"{where(node)}: `cpds` has an entry for {node!r}, which is not in `nodes`; "
                             "add it to `nodes` or remove the entry")

    nodes: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for node in names:
        cpd = cpds.get(node)
        if not isinstance(cpd, dict):
            raise ModelError(f"{source}: node {node!r} has no entry under `cpds`; give its `coefficients`, "
                             "`variance` and `parents`")
        if "prob" in cpd or "levels" in cpd:
            raise ModelError(f"{where(node)}: node {node!r} is discrete; this reader takes linear-Gaussian "
                             "networks only (read discrete networks from BIF)")
        coefs = cpd.get("coefficients")
        if not isinstance(coefs, dict) or INTERCEPT not in coefs:
            raise ModelError(f"{where(node, 'coefficients')}: node {node!r} needs `coefficients` with an "
                             f"{INTERCEPT!r} entry and one entry per parent")
        parents = cpd.get("parents", [k for k in coefs if k != INTERCEPT])
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise ModelError(f"{where(node, 'parents')}: the `parents` of {node!r} must be a list of node names")
        for p in parents:
            if p not in cpds:
                raise ModelError(f"{where(node, 'parents')}: the parent {p!r} of {node!r} is not a node of the "
                                 "network; fix the name or add the node")
            if p == node:
                raise ModelError(f"{where(node, 'parents')}: node {node!r} lists itself as a parent; remove it")
            if parents.count(p) > 1:
                raise ModelError(f"{where(node, 'parents')}: parent {p!r} of {node!r} is listed twice")
            if p not in coefs:
                raise ModelError(f"{where(node, 'coefficients')}: node {node!r} has no coefficient for its "
                                 f"parent {p!r}; add `{json.dumps(p)}: [b]` to its `coefficients`")
        extra = [k for k in coefs if k != INTERCEPT and k not in parents]
        if extra:
            raise ModelError(f"{where(node, 'coefficients')}: node {node!r} has a coefficient for {extra[0]!r}, "
                             "which is not among its `parents`; add the parent or drop the coefficient")
        intercept = _number(coefs[INTERCEPT], where(node, "coefficients"), f"the intercept of {node!r}")
        coef = [_number(coefs[p], where(node, "coefficients"), f"the coefficient of {p!r} in {node!r}")
                for p in parents]
        if "variance" not in cpd:
            raise ModelError(f"{where(node)}: node {node!r} has no `variance`; give its residual variance")
        variance = _number(cpd["variance"], where(node, "variance"), f"the variance of {node!r}")
        if variance <= 0:
            raise ModelError(f"{where(node, 'variance')}: the variance of {node!r} is {variance!r}; a "
                             "variance must be positive")
        spec: dict[str, Any] = {"type": "gaussian"}
        if parents:
            spec["parents"] = list(parents)
        nodes[node] = spec
        params[node] = {"intercept": intercept, "coef": coef, "covariance": variance}

    arcs = raw.get("arcs")
    if arcs is not None:
        if not isinstance(arcs, list) or not all(
                isinstance(a, list) and len(a) == 2 and all(isinstance(x, str) for x in a) for a in arcs):
            raise ModelError(f"{source}: `arcs` must be a list of [from, to] pairs of node names")
        declared = {(p, n) for n, spec in nodes.items() for p in spec.get("parents", [])}
        listed = {(a, b) for a, b in arcs}
        for a, b in arcs:
            if (a, b) not in declared:
                raise ModelError(f"{source}: the arc {a} -> {b} in `arcs` is not among the `parents` of {b!r} "
                                 f"under `cpds`; make `arcs` and `parents` agree")
        for p, n in sorted(declared - listed):
            raise ModelError(f"{where(n, 'parents')}: {p!r} is a parent of {n!r} but the arc {p} -> {n} is "
                             "missing from `arcs`; make `arcs` and `parents` agree")

    data = {"name": _name(source), "graph": "directed", "nodes": nodes, "params": params}
    from pgm.schema import parse_spec  # local: keeps the import light

    parse_spec(data, source)
    return data
