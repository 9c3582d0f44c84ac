"""The declaration: pydantic models of a graph file, and the YAML loader.

This package imports pydantic and PyYAML only (no numpy), so reading and
validating a file is cheap.
"""

from pgm.schema.nodes import DiscreteNode, GaussianNode, Node, Prior, Clique, Plate, Sequence
from pgm.schema.spec import ModelSpec, FEATURE_NAMES
from pgm.schema.load import load_spec, parse_spec, read_yaml

__all__ = [
    "DiscreteNode", "GaussianNode", "Node", "Prior", "Clique", "Plate", "Sequence",
    "ModelSpec", "FEATURE_NAMES", "load_spec", "parse_spec", "read_yaml",
]
