"""Shared fixtures: paths to the example models and the reference networks, and the true
(parameterised) alarm and ecoli70 networks, read from the copies bundled in ``examples/`` so that the
suite runs from a fresh clone (``../shared/data`` holds the full reference set; tests/io reads it where present)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
#: The reference networks and data sets the tests use (alarm, asia, ecoli70, iris): bundled copies.
DATA = ROOT / "examples"


def true_model(filename: str):
    """The network ``DATA/filename`` (BIF or bnlearn JSON) as a FittedModel with its parameters."""
    from pgm.convert import read_any
    from pgm.fitted import FittedModel
    from pgm.schema import parse_spec

    path = DATA / filename
    if not path.exists():
        pytest.fail(f"reference network {path} is missing (it is bundled in examples/)")
    return FittedModel.from_spec(parse_spec(read_any(path)), str(path))


@pytest.fixture(scope="session")
def alarm_true():
    """The ALARM network with the bnlearn repository's CPTs."""
    return true_model("alarm.bif")


@pytest.fixture(scope="session")
def ecoli_true():
    """The ecoli70 linear-Gaussian network with the bnlearn repository's coefficients."""
    return true_model("ecoli70.json")
