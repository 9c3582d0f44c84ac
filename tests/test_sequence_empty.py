"""A sequence file whose node cells are all empty carries no information: the fit says so instead of
returning EM's random start silently (as the non-sequence reader warns about rows with every cell
missing)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.fitted import FittedModel
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


def test_an_order_column_mixing_numbers_and_timestamps_says_so(tmp_path):
    spec = parse_spec({"name": "m", "sequence": SEQ, "nodes": {"x": {"states": ["a", "b"]}}})
    path = tmp_path / "d.csv"
    path.write_text("seq,t,x\ns,0,a\ns,1,b\ns,2024-01-01,a\ns,2024-01-02,b\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no pandas format warning leaks out
        with pytest.raises(pgm.DataError, match="mixes numbers and timestamps"):
            pgm.fit(spec, path)
    with pytest.raises(pgm.DataError, match=r"order column 't' mixes numbers and timestamps: 2 cells are timestamps "
                                            r"\(lines \[4, 5\] of .*d.csv: \['2024-01-01', '2024-01-02'\]\) among "
                                            r"numbers; give one kind"):
        pgm.fit(spec, path)
    path.write_text("seq,t,x\ns,0,a\ns,one,b\n")
    with pytest.raises(pgm.DataError, match=r"order column 't': 1 cell that is neither a number nor a timestamp "
                                            r"\(lines \[3\] of .*d.csv: \['one'\]\)"):
        pgm.fit(spec, path)


def test_timestamps_whose_utc_offset_changes_are_times(tmp_path):
    # a European series across the switch to summer time: ISO stamps with +01:00 then +02:00
    fitted = FittedModel.from_spec(parse_spec({
        "name": "m", "sequence": SEQ, "nodes": {"x": {"states": ["a", "b"], "prev": ["x"]}},
        "params": {"x@first": {"table": [0.5, 0.5]}, "x": {"table": [[0.9, 0.1], [0.2, 0.8]]}}}))
    path = tmp_path / "dst.csv"
    path.write_text("seq,t,x\ns,2024-03-31T00:00:00+01:00,a\ns,2024-03-31T03:00:00+02:00,b\n"
                    "s,2024-03-31T01:00:00+01:00,a\ns,2024-03-31T04:00:00+02:00,b\n")
    same = pd.DataFrame({"seq": "s", "t": [0, 2, 1, 3], "x": ["a", "b", "a", "b"]})   # hourly steps, in UTC
    assert fitted.log_likelihood(path) == pytest.approx(fitted.log_likelihood(same), abs=1e-12)
    got = fitted.forecast(path, steps=2)
    assert list(got["t"]) == [pd.Timestamp("2024-03-31T03:00:00Z"), pd.Timestamp("2024-03-31T04:00:00Z")]
