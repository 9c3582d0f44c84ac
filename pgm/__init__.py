"""pgm: declare probabilistic graphical models in YAML, learn their parameters from data.

>>> import pgm
>>> model = pgm.load("models/asia.yaml")
>>> model.name
'asia'

``import pgm`` is light: numpy, pandas and the learners load on the first use of
:func:`pgm.fit` or :func:`pgm.load`.
"""

from typing import Any

from pgm.errors import ConvergenceWarning, DataError, DataWarning, ModelError, PGMError

__version__ = "0.1.0"
__all__ = ["load", "fit", "PGMError", "ModelError", "DataError", "ConvergenceWarning", "DataWarning"]


def __getattr__(name: str) -> Any:
    if name in ("load", "fit"):
        import pgm.api  # the API pulls in numpy and the learners: load it on first use

        return getattr(pgm.api, name)
    raise AttributeError(f"module 'pgm' has no attribute {name!r}")
