"""Exact inference in log space, shared by every learner.

:mod:`pgm.infer.factor` holds the log-factor value and its operations (product,
reduction by evidence, log-sum-exp marginalisation); :mod:`pgm.infer.elimination`
holds elimination orders, variable elimination and the calibrated clique tree that
gives every clique marginal, the log partition function and exact samples in two
passes.  Both undirected log-linear learning (:mod:`pgm.learn.loglinear`) and
queries on directed networks use this one core.
"""
