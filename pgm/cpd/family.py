"""A variable with its parents: the unit every CPD is fitted and evaluated on.

The family itself lives in :mod:`pgm.cpd.base`; the calls that act on one
(statistics, fit, log-probability) go to its kind through :mod:`pgm.cpd.registry`.
This module is the names learners and inference import.
"""

from __future__ import annotations

from pgm.cpd.base import Family, batch_shape, families
from pgm.cpd.registry import CPD, Stats, family_log_prob, family_stats, fit_cpd, kind_of

__all__ = ["CPD", "Family", "Stats", "batch_shape", "families", "family_log_prob", "family_stats", "fit_cpd",
           "kind_of"]
