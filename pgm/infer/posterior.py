"""The posterior rule of an E-step: which distribution over each row's hidden values weights
the row's statistics.

* ``EXACT``: the posterior ``p(z | x; theta)`` itself (EM);
* ``HARD``: the indicator of the most probable joint state (classification EM; on a Gaussian
  mixture with a shared spherical covariance, k-means).

A rule is a value passed from the learner (:data:`pgm.learn.POSTERIOR_RULES`) through every data
source to the E-step, so another rule (variational, sampled) is one more member here and a branch
in the E-step paths that can apply it; a path that cannot refuses it by name.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class Posterior(Enum):
    EXACT = "exact"
    HARD = "hard"

    @property
    def learner(self) -> str:
        """The name of the learner that uses this rule."""
        return "em" if self is Posterior.EXACT else f"{self.value}-em"

    def weights(self, lj: np.ndarray, shifted: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """The weight of each row's listed joint states (rows x states) under this rule, from the
        log-joint ``lj`` and :func:`row_log_sum_exp`'s ``shifted`` and ``sums``."""
        if self is Posterior.HARD:
            q = np.zeros_like(lj)
            q[np.arange(len(lj)), lj.argmax(axis=1)] = 1.0
            return q
        with np.errstate(invalid="ignore"):  # a row of probability zero: NaN, refused by the caller
            return shifted / sums[:, None]


def row_log_sum_exp(lj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lse, shifted, sums)``: each row's log-sum-exp over its joint states, keeping
    ``exp(lj - max)`` and its row sums for the posterior (one exp pass, not two)."""
    top = lj.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = np.exp(lj - top[:, None])
    sums = shifted.sum(axis=1)
    with np.errstate(divide="ignore"):
        lse = top + np.log(sums)
    return lse, shifted, sums
