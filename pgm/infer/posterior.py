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


class Posterior(Enum):
    EXACT = "exact"
    HARD = "hard"

    @property
    def learner(self) -> str:
        """The name of the learner that uses this rule."""
        return "em" if self is Posterior.EXACT else f"{self.value}-em"
