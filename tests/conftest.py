"""Shared fixtures: paths to the example models and the reference networks, and the true
(parameterised) alarm and ecoli70 networks read from ``../shared/data``."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHARED_DATA = ROOT.parent / "shared" / "data"


def true_model(filename: str):
    """The network ``SHARED_DATA/filename`` (BIF or bnlearn JSON) as a FittedModel with its parameters."""
    from pgm.convert import read_any
    from pgm.fitted import FittedModel
    from pgm.schema import parse_spec

    path = SHARED_DATA / filename
    if not path.exists():
        pytest.fail(f"reference network {path} is missing (../shared/data must sit next to the repository)")
    return FittedModel.from_spec(parse_spec(read_any(path)), str(path))


@pytest.fixture(scope="session")
def alarm_true():
    """The ALARM network with the bnlearn repository's CPTs."""
    return true_model("alarm.bif")


@pytest.fixture(scope="session")
def ecoli_true():
    """The ecoli70 linear-Gaussian network with the bnlearn repository's coefficients."""
    return true_model("ecoli70.json")
