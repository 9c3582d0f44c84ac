"""The error hierarchy: one root, two kinds of user error, one warning.

Every message says *where* (file:line and field path, or column and rows),
*what* is wrong, and *how to fix it*.
"""

from __future__ import annotations

import os
import sys


class PGMError(ValueError):
    """Root of every error pgm raises on purpose."""


class ModelError(PGMError):
    """A graph file or a declaration is invalid (structure, fields, fitted parameters)."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = list(errors) if errors else [message]
        super().__init__(message)


class DataError(PGMError):
    """Data do not fit the model: missing column, unknown label, non-finite value..."""


class ConvergenceWarning(UserWarning):
    """An iterative learner stopped at ``max_iter`` before reaching ``tol``."""


class DataWarning(UserWarning):
    """Something in the data deserves attention but has a defined answer."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn` that names the first frame outside pgm (the user's
    call), however deep inside pgm the warning is raised (sequence fits go through one more layer)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # the function calling warnings.warn is level 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
