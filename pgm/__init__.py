"""pgm: declare probabilistic graphical models in YAML, learn their parameters from data.

>>> import pgm
>>> model = pgm.load("models/asia.yaml")          # doctest: +SKIP
>>> fitted = pgm.fit(model, "data.csv")           # doctest: +SKIP
"""

from pgm.errors import ConvergenceWarning, DataError, DataWarning, ModelError, PGMError
from pgm.api import fit, load

__version__ = "0.1.0"
__all__ = ["load", "fit", "PGMError", "ModelError", "DataError", "ConvergenceWarning", "DataWarning"]
