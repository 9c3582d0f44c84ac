"""The public entry points: :func:`load` and :func:`fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgm.schema import ModelSpec, load_spec


def load(path: str | Path) -> ModelSpec:
    """Read a graph file and return its validated declaration.

    Raises
    ------
    pgm.ModelError
        naming the file, the line, the field path, what is wrong and how to fix it.
    """
    return load_spec(path)


def fit(model: Any, data: Any, **options: Any) -> Any:
    """Learn the parameters of ``model`` from ``data`` (see :mod:`pgm.learn`)."""
    raise NotImplementedError("fitting lands with the learners")
