"""A sequence file whose node cells are all empty carries no information: the fit says so instead of
returning EM's random start silently (as the non-sequence reader warns about rows with every cell
missing)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.schema import parse_spec

SEQ = {"id": "seq", "order": "t"}


@pytest.mark.parametrize("nodes, cells", [
    ({"s": {"type": "gaussian", "latent": True, "prev": ["s"]}, "y": {"type": "gaussian", "parents": ["s"]}},
     {"y": [np.nan] * 4}),
    ({"h": {"states": ["None", "NA"], "prev": ["h"]}, "x": {"states": ["a", "b"], "parents": ["h"]}},
     {"h": [None] * 4, "x": [None] * 4}),
])
def test_a_fit_on_no_observed_cell_warns(nodes, cells):
    spec = parse_spec({"name": "m", "sequence": SEQ, "nodes": nodes})
    data = pd.DataFrame({"seq": ["a", "a", "b", "b"], "t": [0, 1, 0, 1], **cells})
    with pytest.warns(pgm.DataWarning, match=r"no cell of the nodes is observed in any of the 4 rows.*starting point"):
        pgm.fit(spec, data)
    data[data.columns[2]] = data[data.columns[2]].astype(object)
    data.iloc[0, 2] = "None" if "x" in cells else 1.0      # one observed cell: no such warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", pgm.DataWarning)
        warnings.simplefilter("ignore", pgm.ConvergenceWarning)
        pgm.fit(spec, data)
