"""Conditional distributions.  Each kind owns its sufficient statistics, its MLE
(``from_stats``), its log-probability and its sampler; learners compose them.

Statistics are small frozen values supporting ``+``, so chunks of rows, Dask
partitions, tied nodes and plate copies merge by addition before ``from_stats``
runs once.
"""

from __future__ import annotations

import numpy as np


def config_index(codes: list[np.ndarray], cards: list[int] | tuple[int, ...]) -> np.ndarray | int:
    """Mixed-radix index of parent configurations (first parent slowest, C order).

    Parameters
    ----------
    codes : list of int arrays, mutually broadcastable
    cards : the cardinality of each parent

    Returns
    -------
    int64 array of the broadcast shape, or ``0`` when there are no parents.
    """
    if not codes:
        return 0
    idx = np.asarray(codes[0], dtype=np.int64)
    for code, card in zip(codes[1:], cards[1:]):
        idx = idx * card + code
    return idx
