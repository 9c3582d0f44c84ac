"""Conversion between graph files and the bnlearn repository's formats (BIF, Gaussian JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgm.errors import ModelError
from pgm.fitted import FittedModel
from pgm.io.atomic import write_atomic
from pgm.io.bif import read_bif, write_bif
from pgm.io.bnlearn_json import read_bnlearn_json
from pgm.io.yaml_text import dump_spec_yaml
from pgm.schema import parse_spec
from pgm.schema.load import read_text, read_yaml

READERS = {".bif": read_bif, ".json": read_bnlearn_json}


def read_any(path: str | Path) -> dict[str, Any]:
    """A graph file, BIF file or bnlearn JSON file as plain graph-file data (checked)."""
    path = Path(path)
    suffix = path.suffix.lower()
    text = read_text(path)
    if suffix in READERS:
        data = READERS[suffix](text, str(path))
        lines: dict = {}
    elif suffix in (".yaml", ".yml"):
        data, lines = read_yaml(text, str(path))
    else:
        raise ModelError(f"{path}: unknown input type {suffix!r}; use .bif, .json (bnlearn) or .yaml")
    spec = parse_spec(data, str(path), lines)
    if spec.params is not None:
        FittedModel.from_spec(spec, str(path))  # shapes, sums and covariances checked before writing
    return data


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert ``src`` (.bif, .json, .yaml) to ``dst`` (.yaml or .bif), writing atomically."""
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix not in (".yaml", ".yml", ".bif"):
        raise ModelError(f"{dst}: unknown output type {suffix!r}; use .yaml or .bif")
    data = read_any(src)
    text = dump_spec_yaml(data) if suffix in (".yaml", ".yml") else write_bif(data)
    write_atomic(dst, text)
    return dst
