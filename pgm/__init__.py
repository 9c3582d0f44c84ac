"""pgm: declare probabilistic graphical models in YAML, learn their parameters from data.

>>> import pgm
>>> model = pgm.load("models/asia.yaml")
>>> model.name
'asia'

``import pgm`` is light: numpy, pandas and the learners load on the first use of
:func:`pgm.fit`, :func:`pgm.load` or :func:`pgm.score`.
"""

from typing import Any

from pgm.errors import ConvergenceWarning, DataError, DataWarning, ModelError, PGMError

__version__ = "0.1.0"
__all__ = ["load", "fit", "score", "PGMError", "ModelError", "DataError", "ConvergenceWarning", "DataWarning"]


def __getattr__(name: str) -> Any:
    if name in ("load", "fit", "score"):
        import pgm.api  # the API pulls in numpy and the learners: load it on first use

        return getattr(pgm.api, name)
    raise AttributeError(f"module 'pgm' has no attribute {name!r}")


def _html(obj: Any) -> Any:
    """IPython's text/html formatter for models: imports :mod:`pgm.notebook` on the first display."""
    from pgm.notebook import html

    return html(obj)


def _register_ipython() -> None:
    """Inside a running IPython shell, show declarations and fitted models as drawing + summary."""
    import sys

    if "IPython" not in sys.modules:  # never import IPython: only hook into one that is running
        return
    try:
        ip = sys.modules["IPython"].get_ipython()
        if ip is None:
            return
        formatter = ip.display_formatter.formatters["text/html"]
        for module, name in (("pgm.schema.spec", "ModelSpec"), ("pgm.fitted", "FittedModel"),
                             ("pgm.markov", "FittedMarkovNet")):
            formatter.for_type_by_name(module, name, _html)
    except Exception:  # a display hook must never break the import
        pass


_register_ipython()
