"""The command line on bad input: a table of cases, each exits 2 with one line naming the problem.

Every row of ``CASES`` gives the arguments of one ``pgm`` run (paths relative to a scratch
directory that holds good models, data and a previous output), the bad files it needs, and
fragments that the message must contain.  Each run must

* exit with status 2;
* print exactly one line on stderr (``validate`` prints one line per error: a file with four
  mistakes gives four lines, each starting with the file name), naming the problem;
* print no ``Traceback`` and no "internal error";
* leave every file of the scratch directory as it was (same names, sizes, mtimes and hashes):
  no output created, no previous output changed, no temporary file left behind.

The whole table runs in-process through ``pgm.cli.main``; a handful of rows also run through
the installed ``pgm`` executable in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
BAD_MODELS = ROOT / "tests" / "bad_models"

GMM_CSV = "x[0],x[1]\n0.1,0.2\n1.5,-0.3\n4.0,4.2\n3.9,4.1\n"
SP_HEADER = "cloudy,sprinkler,rain,wet_grass\n"


def _sprinkler_csv(n: int = 40) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"cloudy": rng.choice(["yes", "no"], n), "sprinkler": rng.choice(["on", "off"], n),
                          "rain": rng.choice(["yes", "no"], n), "wet_grass": rng.choice(["yes", "no"], n)})
    return frame.to_csv(index=False)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _bad_fitted() -> str:
    text = (ROOT / "models" / "sprinkler.yaml").read_text()
    return text + ("params:\n  cloudy: {table: [0.3, 0.3]}\n  sprinkler: {table: [[0.5, 0.5], [0.5, 0.5]]}\n"
                   "  rain: {table: [[0.5, 0.5], [0.5, 0.5]]}\n"
                   "  wet_grass: {table: [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]}\n")


ZERO = ("name: zero\nnodes:\n  a: {states: 2}\n  b: {states: 2, parents: [a]}\n"
        "params:\n  a: {table: [1.0, 0.0]}\n  b: {table: [[0.5, 0.5], [0.5, 0.5]]}\n")
GMM_FITTED = ("name: g\nnodes:\n  z: {states: 2}\n  x: {type: gaussian, parents: [z]}\n"
              "params:\n  z: {table: [0.5, 0.5]}\n  x: {intercept: [0.0, 1.0], covariance: [1.0, 1.0]}\n")
HMM = ("name: umbrella\nsequence: {id: walk, order: day}\nnodes:\n  rain: {states: [no, yes], latent: true, "
       "prev: [rain]}\n  umbrella: {states: [no, yes], parents: [rain]}\n")
HMM_CSV = "walk,day,umbrella,w\n1,1,yes,1\n1,2,no,1\n2,1,yes,1\n"
HMM_FITTED = HMM + ("params:\n  rain@first: {table: [0.5, 0.5]}\n  rain: {table: [[0.7, 0.3], [0.3, 0.7]]}\n"
                    "  umbrella: {table: [[0.8, 0.2], [0.1, 0.9]]}\n")
RNG_BYTES = bytes(np.random.default_rng(8).integers(0, 256, 2000, dtype=np.uint8))
SP_FRAME = pd.read_csv(__import__("io").StringIO(_sprinkler_csv()))

# (id, argv, {file: content}, fragments the message must contain)
# In argv and in the fragments, "M/x.yaml" is models/x.yaml and "B/x.yaml" is tests/bad_models/x.yaml.
CASES: list[tuple[str, list[str], dict[str, str | bytes], list[str]]] = [
    # --- validate / show: graph files (tests/schema covers every schema error; these are the CLI view)
    ("validate-missing-file", ["validate", "nowhere.yaml"], {}, ["nowhere.yaml: no such file"]),
    ("validate-directory", ["validate", "sub"], {"sub/keep.txt": "x"}, ["sub: is a directory"]),
    ("validate-empty", ["validate", "empty.yaml"], {"empty.yaml": ""}, ["empty.yaml: the file is empty"]),
    ("validate-not-utf8", ["validate", "latin.yaml"], {"latin.yaml": b"name: caf\xe9\nnodes: {}\n"},
     ["latin.yaml:1: the file is not valid UTF-8"]),
    ("validate-random-bytes", ["validate", "noise.yaml"], {"noise.yaml": RNG_BYTES}, ["noise.yaml"]),
    ("validate-python-tag", ["validate", "tag.yaml"],
     {"tag.yaml": "name: !!python/object/apply:os.system ['echo hi']\nnodes: {a: {states: 2}}\n"},
     ["tag.yaml:1", "loaded safely"]),
    ("validate-alias-bomb", ["validate", "B/billion_laughs.yaml"], {}, ["refusing a possible alias bomb"]),
    ("validate-top-level-list", ["validate", "list.yaml"], {"list.yaml": "- name: a\n- nodes: {}\n"},
     ["list.yaml:1: the file holds a list"]),
    ("validate-plate-1e12", ["validate", "plate.yaml"],
     {"plate.yaml": "name: p\nplates: {big: {size: 1000000000000}}\nnodes:\n  x: {states: 2, plate: big}\n"},
     ["plate.yaml:2: plates.big.size: plate size 1000000000000 is more than the limit"]),
    ("validate-table-1e20", ["validate", "huge.yaml"],
     {"huge.yaml": "name: h\nnodes:\n  a: {states: 100000}\n  b: {states: 100000}\n  c: {states: 100000}\n"
                   "  d: {states: 100000, parents: [a, b, c]}\n"},
     ["huge.yaml:6: nodes.d.parents: the CPD of 'd' would have 1e+20 entries"]),
    ("validate-unknown-parent", ["validate", "B/unknown_parent.yaml"], {}, ["unknown node 'lnug'; did you mean 'lung'?"]),
    ("validate-cycle", ["validate", "B/cycle.yaml"], {}, ["directed cycle a -> b -> c -> a"]),
    ("show-unknown-field", ["show", "B/unknown_field_node.yaml"], {}, ["unknown field"]),
    ("show-bad-suffix", ["show", "M/sprinkler.yaml", "-o", "graph.jpg2"], {}, ["graph.jpg2: cannot draw to '.jpg2'"]),
    ("show-missing-directory", ["show", "M/sprinkler.yaml", "-o", "nodir/graph.png"], {},
     ["nodir/graph.png: the directory 'nodir' does not exist"]),
    # --- fit: the model
    ("fit-model-missing", ["fit", "nowhere.yaml", "sp.csv", "-o", "out.yaml"], {}, ["nowhere.yaml: no such file"]),
    ("fit-model-is-csv", ["fit", "sp.csv", "sp.csv", "-o", "out.yaml"], {}, ["sp.csv: the file holds a str"]),
    ("fit-model-cycle", ["fit", "B/cycle.yaml", "sp.csv", "-o", "out.yaml"], {}, ["directed cycle"]),
    ("fit-model-table-too-big", ["fit", "huge.yaml", "sp.csv", "-o", "out.yaml"],
     {"huge.yaml": "name: h\nnodes:\n  a: {states: 10000}\n  b: {states: 10000, parents: [a]}\n"},
     ["the CPD of 'b' would have 1e+08 entries"]),
    # --- fit: the data
    ("fit-data-missing", ["fit", "M/sprinkler.yaml", "nowhere.csv", "-o", "out.yaml"], {},
     ["nowhere.csv: no such data file"]),
    ("fit-data-empty", ["fit", "M/sprinkler.yaml", "empty.csv", "-o", "out.yaml"], {"empty.csv": ""},
     ["empty.csv: the file is empty"]),
    ("fit-data-header-only", ["fit", "M/sprinkler.yaml", "header.csv", "-o", "out.yaml"], {"header.csv": SP_HEADER},
     ["the data have no rows"]),
    ("fit-data-random-bytes", ["fit", "M/sprinkler.yaml", "noise.csv", "-o", "out.yaml"], {"noise.csv": RNG_BYTES},
     ["noise.csv: cannot be read as a csv table"]),
    ("fit-data-yaml-named-csv", ["fit", "M/sprinkler.yaml", "model.csv", "-o", "out.yaml"],
     {"model.csv": (MODELS / "sprinkler.yaml").read_text()},
     ["model.csv: line 7: the row has 2 fields, more fields than the header (which names 1 column)"]),
    ("fit-data-not-utf8", ["fit", "M/sprinkler.yaml", "latin.csv", "-o", "out.yaml"],
     {"latin.csv": (SP_HEADER + "yes,on,yes,caf\xe9\n").encode("latin-1")}, ["latin.csv: cannot be read"]),
    ("fit-data-unknown-label", ["fit", "M/sprinkler.yaml", "label.csv", "-o", "out.yaml"],
     {"label.csv": SP_HEADER + "yes,on,yes,yes\nmaybe,off,no,no\n"}, ["label.csv: column 'cloudy'", "line 3: 'maybe'"]),
    ("fit-data-missing-column", ["fit", "M/sprinkler.yaml", "cols.csv", "-o", "out.yaml"],
     {"cols.csv": "cloudy,sprinkler,rainn\nyes,on,yes\n"},
     ["missing columns 'rain' (did you mean 'rainn'?), 'wet_grass'"]),
    ("fit-data-duplicated-columns", ["fit", "M/sprinkler.yaml", "dup.csv", "-o", "out.yaml"],
     {"dup.csv": "cloudy,sprinkler,rain,rain,wet_grass\nyes,on,yes,no,yes\n"}, ["duplicated column names ['rain']"]),
    ("fit-data-ragged", ["fit", "M/sprinkler.yaml", "ragged.csv", "-o", "out.yaml"],
     {"ragged.csv": SP_HEADER + "yes,on,yes,yes\nno,off,no,no,extra\n"}, ["ragged.csv", "line 3"]),
    ("fit-data-short-row", ["fit", "M/sprinkler.yaml", "short.csv", "-o", "out.yaml"],
     {"short.csv": SP_HEADER + "yes,on,yes,yes\nno,off,no\n"},
     ["short.csv: line 3: the row has 3 fields, fewer fields than the header (which names 4 columns)"]),
    ("fit-data-short-row-streamed", ["fit", "M/sprinkler.yaml", "short.csv", "--chunk-rows", "1", "-o", "out.yaml"],
     {"short.csv": SP_HEADER + "yes,on,yes,yes\n\nno,off,no\n"}, ["short.csv: line 4: the row has 3 fields"]),
    ("fit-data-semicolons", ["fit", "M/sprinkler.yaml", "semi.csv", "-o", "out.yaml"],
     {"semi.csv": SP_HEADER.replace(",", ";") + "yes;on;yes;yes\n"},
     ["semi.csv: missing columns", "looks separated by ';'", "--sep ';'"]),
    ("fit-sep-two-characters", ["fit", "M/sprinkler.yaml", "sp.csv", "--sep", ";;", "-o", "out.yaml"], {},
     ["sep must be one character"]),
    ("fit-data-na-text-in-gaussian", ["fit", "M/gmm.yaml", "g.csv", "-o", "out.yaml"],
     {"g.csv": GMM_CSV + "NA,1.0\n"}, ["g.csv: column 'x[0]'", "(line 6: 'NA')", "list their text in --na"]),
    ("score-na-text-not-given", ["score", "sp.fitted.yaml", "q.csv"],
     {"q.csv": SP_HEADER + "yes,on,yes,yes\nyes,?,no,no\n"}, ["q.csv: column 'sprinkler'", "line 3: '?'"]),
    ("fit-data-text-in-gaussian", ["fit", "M/gmm.yaml", "g.csv", "-o", "out.yaml"],
     {"g.csv": GMM_CSV + "1.0,oops\n"}, ["column 'x[1]'", "line 6: 'oops'"]),
    ("fit-data-inf-in-gaussian", ["fit", "M/gmm.yaml", "g.csv", "-o", "out.yaml"],
     {"g.csv": GMM_CSV + "inf,1.0\n"}, ["column 'x[0]'", "non-finite", "g.csv", "line 6"]),
    ("fit-data-beyond-float", ["fit", "M/gmm.yaml", "g.csv", "-o", "out.yaml"],
     {"g.csv": GMM_CSV + "1e400,1.0\n"}, ["column 'x[0]'", "non-finite", "line 6"]),
    ("fit-data-half-missing-gaussian-mle", ["fit", "mvn.yaml", "g.csv", "--learner", "mle", "-o", "out.yaml"],
     {"g.csv": GMM_CSV + "1.0,\n", "mvn.yaml": "name: mvn\nnodes:\n  x: {type: gaussian, dim: 2}\n"},
     ["missing cells", "--learner mle needs complete data"]),
    ("fit-data-parquet-garbage", ["fit", "M/sprinkler.yaml", "bad.parquet", "-o", "out.yaml"],
     {"bad.parquet": RNG_BYTES}, ["bad.parquet: cannot be read as a parquet table"]),
    ("fit-data-parquet-schema", ["fit", "M/sprinkler.yaml", "other.parquet", "-o", "out.yaml"],
     {"other.parquet": _parquet_bytes(SP_FRAME.drop(columns="rain"))}, ["missing column 'rain'"]),
    ("fit-data-parquet-dtype", ["fit", "M/sprinkler.yaml", "float.parquet", "-o", "out.yaml"],
     {"float.parquet": _parquet_bytes(SP_FRAME.assign(rain=np.linspace(0, 1, len(SP_FRAME))))},
     ["column 'rain'", "unknown label"]),
    ("fit-data-unknown-type", ["fit", "M/sprinkler.yaml", "data.xlsx", "-o", "out.yaml"], {"data.xlsx": b"PK\x03\x04"},
     ["unknown data file type '.xlsx'"]),
    ("fit-data-mle-with-missing", ["fit", "M/sprinkler.yaml", "nan.csv", "--learner", "mle", "-o", "out.yaml"],
     {"nan.csv": SP_HEADER + "yes,on,yes,yes\nno,,no,no\n"}, ["missing cells", "--learner mle needs complete data"]),
    # --- fit: options
    ("fit-unknown-learner", ["fit", "M/sprinkler.yaml", "sp.csv", "--learner", "magic", "-o", "out.yaml"], {},
     ["--learner magic does not fit a directed model"]),
    ("fit-undirected-learner", ["fit", "M/sprinkler.yaml", "sp.csv", "--learner", "pcd", "-o", "out.yaml"], {},
     ["--learner pcd does not fit a directed model"]),
    ("fit-mle-with-latent", ["fit", "M/gmm.yaml", "g.csv", "--learner", "mle", "-o", "out.yaml"],
     {"g.csv": GMM_CSV}, ["are latent; --learner mle needs every node observed"]),
    ("fit-max-iter-zero", ["fit", "M/gmm.yaml", "g.csv", "--max-iter", "0", "-o", "out.yaml"], {"g.csv": GMM_CSV},
     ["argument --max-iter: must be >= 1, got 0"]),
    ("fit-max-iter-text", ["fit", "M/gmm.yaml", "g.csv", "--max-iter", "many", "-o", "out.yaml"], {"g.csv": GMM_CSV},
     ["argument --max-iter: expected a whole number, got 'many'"]),
    ("fit-tol-nan", ["fit", "M/gmm.yaml", "g.csv", "--tol", "nan", "-o", "out.yaml"], {"g.csv": GMM_CSV},
     ["argument --tol: must be a number >= 0, got nan"]),
    ("fit-prior-negative", ["fit", "M/sprinkler.yaml", "sp.csv", "--prior", "-1", "-o", "out.yaml"], {},
     ["argument --prior: must be a number >= 0"]),
    ("fit-seed-negative", ["fit", "M/gmm.yaml", "g.csv", "--seed", "-3", "-o", "out.yaml"], {"g.csv": GMM_CSV},
     ["argument --seed: must be >= 0, got -3"]),
    ("fit-n-init-zero", ["fit", "M/gmm.yaml", "g.csv", "--n-init", "0", "-o", "out.yaml"], {"g.csv": GMM_CSV},
     ["argument --n-init: must be >= 1"]),
    # --- fit: the output
    ("fit-output-missing-directory", ["fit", "M/sprinkler.yaml", "sp.csv", "-o", "nodir/out.yaml"], {},
     ["nodir/out.yaml: the directory 'nodir' does not exist"]),
    ("fit-output-is-a-directory", ["fit", "M/sprinkler.yaml", "sp.csv", "-o", "sub"], {"sub/keep.txt": "x"},
     ["sub: is a directory"]),
    ("fit-output-is-the-data", ["fit", "M/sprinkler.yaml", "sp.csv", "-o", "sp.csv"], {},
     ["sp.csv: this is the data file of the command"]),
    ("fit-default-output-bad-data", ["fit", "sprinkler.yaml", "label.csv"],
     {"sprinkler.yaml": (MODELS / "sprinkler.yaml").read_text(), "label.csv": SP_HEADER + "yes,on,yes,wet\n"},
     ["column 'wet_grass'", "line 2: 'wet'"]),
    # --- score
    ("score-declaration", ["score", "M/sprinkler.yaml", "sp.csv"], {}, ["not a fitted model (no `params:`)"]),
    ("score-hand-edited-fitted", ["score", "bad.fitted.yaml", "sp.csv"], {"bad.fitted.yaml": _bad_fitted()},
     ["params.cloudy.table: row 0 sums to 0.6, not 1"]),
    ("score-unknown-label", ["score", "sp.fitted.yaml", "label.csv"],
     {"label.csv": SP_HEADER + "yes,on,yes,yes\nyes,maybe,no,no\n"}, ["column 'sprinkler'", "line 3: 'maybe'"]),
    ("score-output-is-the-data", ["score", "sp.fitted.yaml", "sp.csv", "-o", "sp.csv"], {},
     ["sp.csv: this is an input of the command"]),
    ("score-output-missing-directory", ["score", "sp.fitted.yaml", "sp.csv", "-o", "nodir/ll.csv"], {},
     ["the directory 'nodir' does not exist"]),
    # --- query
    ("query-declaration", ["query", "M/sprinkler.yaml", "rain"], {}, ["not a fitted model (no `params:`)"]),
    ("query-unknown-node", ["query", "sp.fitted.yaml", "rian"], {}, ["unknown node 'rian' in query"]),
    ("query-node-twice", ["query", "sp.fitted.yaml", "rain", "rain"], {}, ["['rain'] are listed twice"]),
    ("query-given-not-a-pair", ["query", "sp.fitted.yaml", "rain", "--given", "cloudy"], {},
     ["--given 'cloudy': expected NODE=VALUE"]),
    ("query-given-twice", ["query", "sp.fitted.yaml", "rain", "--given", "cloudy=yes", "cloudy=no"], {},
     ["'cloudy' is given twice"]),
    ("query-given-unknown-state", ["query", "sp.fitted.yaml", "rain", "--given", "cloudy=maybe"], {},
     ["evidence cloudy='maybe': unknown state; states are ['yes', 'no']"]),
    ("query-given-unknown-node", ["query", "sp.fitted.yaml", "rain", "--given", "fog=yes"], {},
     ["unknown node 'fog' in query"]),
    ("query-queried-and-given", ["query", "sp.fitted.yaml", "rain", "--given", "rain=yes"], {},
     ["['rain'] are both queried and observed"]),
    ("query-evidence-impossible", ["query", "zero.fitted.yaml", "b", "--given", "a=1"], {"zero.fitted.yaml": ZERO},
     ["the evidence {'a': '1'} has probability 0 under the model"]),
    ("query-without-node", ["query", "sp.fitted.yaml"], {}, ["the following arguments are required: NODE"]),
    # --- predict
    ("predict-declaration", ["predict", "M/sprinkler.yaml", "sp.csv"], {}, ["not a fitted model (no `params:`)"]),
    ("predict-nothing-to-predict", ["predict", "sp.fitted.yaml", "sp.csv"], {},
     ["sp.csv: nothing to predict", "--node"]),
    ("predict-unknown-node", ["predict", "sp.fitted.yaml", "sp.csv", "--node", "rian"], {},
     ["unknown node 'rian' in predict()"]),
    ("predict-another-column-missing", ["predict", "sp.fitted.yaml", "cols.csv", "--node", "rain"],
     {"cols.csv": "cloudy,sprinkler\nyes,on\n"}, ["missing column 'wet_grass'"]),
    ("predict-unknown-label", ["predict", "sp.fitted.yaml", "label.csv", "--node", "rain"],
     {"label.csv": "cloudy,sprinkler,wet_grass\nyes,on,yes\nyes,maybe,no\n"},
     ["label.csv: column 'sprinkler'", "line 3: 'maybe'"]),
    ("predict-rows-of-probability-zero", ["predict", "zero.fitted.yaml", "z.csv"],
     {"zero.fitted.yaml": ZERO, "z.csv": "a\n0\n1\n"}, ["1 row (line 3 of z.csv) has probability 0 under the model"]),
    ("predict-joint-gaussian", ["predict", "gmm.fitted.yaml", "g.csv", "--node", "x", "--joint"],
     {"gmm.fitted.yaml": GMM_FITTED, "g.csv": "z\n0\n"}, ["--joint completes discrete nodes"]),
    ("predict-output-is-the-data", ["predict", "sp.fitted.yaml", "sp.csv", "--node", "rain", "-o", "sp.csv"], {},
     ["sp.csv: this is an input of the command"]),
    ("predict-output-missing-directory", ["predict", "sp.fitted.yaml", "sp.csv", "--node", "rain", "-o",
                                          "nodir/p.csv"], {}, ["the directory 'nodir' does not exist"]),
    # --- fit --init
    ("fit-init-declaration", ["fit", "M/sprinkler.yaml", "sp.csv", "--init", "M/sprinkler.yaml", "-o", "out.yaml"], {},
     ["not a fitted model (no `params:`); --init takes a fitted file"]),
    ("fit-init-missing", ["fit", "M/sprinkler.yaml", "sp.csv", "--init", "nowhere.yaml", "-o", "out.yaml"], {},
     ["nowhere.yaml: no such file"]),
    # messages of the library name its Python arguments; the command line names its flags instead
    ("fit-init-another-graph", ["fit", "M/sprinkler.yaml", "sp.csv", "--init", "zero.fitted.yaml", "-o", "out.yaml"],
     {"zero.fitted.yaml": ZERO}, ["--init does not match this model's graph", "or leave --init out"]),
    ("fit-sequence-weights-streamed", ["fit", "hmm.yaml", "hmmw.csv", "--weights", "w", "--chunk-rows", "2", "-o",
                                       "out.yaml"],
     {"hmm.yaml": HMM, "hmmw.csv": HMM_CSV.replace("1,2,no,1", "1,2,no,2")},
     ["weights column 'w' weighs whole sequences", "lines [2, 3] of hmmw.csv"]),
    ("fit-sequence-chunk-rows-repeated-step", ["fit", "hmm.yaml", "hmm2.csv", "--chunk-rows", "2", "-o", "out.yaml"],
     {"hmm.yaml": HMM, "hmm2.csv": HMM_CSV + "1,2,yes,1\n"}, ["hmm2.csv: 1 duplicated (walk, day) pair (lines 3 and 5"]),
    ("fit-sequence-chunk-rows-bad-label", ["fit", "hmm.yaml", "hmm3.csv", "--chunk-rows", "2", "-o", "out.yaml"],
     {"hmm.yaml": HMM, "hmm3.csv": HMM_CSV + "2,2,maybe,1\n"}, ["hmm3.csv: column 'umbrella'", "line 5: 'maybe'"]),
    ("fit-sequence-weights-vary", ["fit", "hmm.yaml", "hmm.csv", "--weights", "w", "-o", "out.yaml"],
     {"hmm.yaml": HMM, "hmm.csv": HMM_CSV.replace("1,2,no,1", "1,2,no,2")},
     ["weights column 'w' weighs whole sequences", "sequence '1': 1 and 2, lines [2, 3] of hmm.csv"]),
    # --- forecast
    ("forecast-declaration", ["forecast", "hmm.yaml", "hmm.csv"], {"hmm.yaml": HMM, "hmm.csv": HMM_CSV},
     ["not a fitted model (no `params:`)"]),
    ("forecast-no-sequence", ["forecast", "sp.fitted.yaml", "sp.csv"], {},
     ["pgm forecast continues sequences, and this model has no `sequence:`; use pgm predict"]),
    ("forecast-steps-zero", ["forecast", "hmm.fitted.yaml", "hmm.csv", "--steps", "0"],
     {"hmm.fitted.yaml": HMM_FITTED, "hmm.csv": HMM_CSV}, ["argument --steps: must be >= 1, got 0"]),
    ("forecast-unknown-node", ["forecast", "hmm.fitted.yaml", "hmm.csv", "--node", "rian"],
     {"hmm.fitted.yaml": HMM_FITTED, "hmm.csv": HMM_CSV}, ["unknown node 'rian' in forecast()"]),
    ("forecast-missing-order", ["forecast", "hmm.fitted.yaml", "o.csv"],
     {"hmm.fitted.yaml": HMM_FITTED, "o.csv": "walk,umbrella\n1,yes\n"}, ["missing order column 'day'"]),
    ("forecast-irregular-dates", ["forecast", "hmm.fitted.yaml", "d.csv"],
     {"hmm.fitted.yaml": HMM_FITTED, "d.csv": "walk,day,umbrella\n1,2026-01-01,yes\n1,2026-01-02,no\n"
      "1,2026-01-05,no\n"}, ["1 sequence (['1']) has no regular step in the order column 'day'", "integer orders"]),
    ("forecast-output-is-the-data", ["forecast", "hmm.fitted.yaml", "hmm.csv", "-o", "hmm.csv"],
     {"hmm.fitted.yaml": HMM_FITTED, "hmm.csv": HMM_CSV}, ["hmm.csv: this is", "choose another output file"]),
    # --- sample
    ("sample-negative-n", ["sample", "sp.fitted.yaml", "-n", "-1"], {}, ["argument -n: must be >= 0, got -1"]),
    ("sample-n-text", ["sample", "sp.fitted.yaml", "-n", "ten"], {}, ["argument -n: expected a whole number"]),
    ("sample-n-absurd", ["sample", "sp.fitted.yaml", "-n", "10000000000000000000000", "-o", "s.csv"], {},
     ["1e+22 rows is more than one call samples (limit 1e+09)"]),
    ("sample-declaration", ["sample", "M/sprinkler.yaml", "-n", "3", "-o", "s.csv"], {},
     ["not a fitted model (no `params:`)"]),
    ("sample-hand-edited-fitted", ["sample", "bad.fitted.yaml", "-n", "3", "-o", "s.csv"],
     {"bad.fitted.yaml": _bad_fitted()}, ["params.cloudy.table"]),
    ("sample-output-is-the-model", ["sample", "sp.fitted.yaml", "-n", "3", "-o", "sp.fitted.yaml"], {},
     ["sp.fitted.yaml: this is the model of the command"]),
    ("sample-seed-negative", ["sample", "sp.fitted.yaml", "-n", "3", "--seed", "-1", "-o", "s.csv"], {},
     ["argument --seed: must be >= 0"]),
    # --- convert
    ("convert-unknown-input", ["convert", "sp.csv", "-o", "net.yaml"], {}, ["unknown input type '.csv'"]),
    ("convert-unknown-output", ["convert", "sp.fitted.yaml", "-o", "net.txt"], {}, ["unknown output type '.txt'"]),
    ("convert-broken-bif", ["convert", "net.bif", "-o", "net.yaml"],
     {"net.bif": "network x {\nvariable a { type discrete [ 2 ] { y, n }; }\nprobability ( a ) { table 0.5; }\n"},
     ["net.bif"]),
    ("convert-declaration-to-bif", ["convert", "M/sprinkler.yaml", "-o", "net.bif"], {}, ["no `params`"]),
    ("convert-onto-its-input", ["convert", "sp.fitted.yaml", "-o", "sp.fitted.yaml"], {},
     ["sp.fitted.yaml: this is the input of the command"]),
    # --- usage
    ("no-command", [], {}, ["pgm: error:", "COMMAND"]),
    ("unknown-command", ["learn", "M/sprinkler.yaml"], {}, ["invalid choice: 'learn'"]),
    ("fit-without-data", ["fit", "M/sprinkler.yaml"], {}, ["the following arguments are required: DATA"]),
    ("fit-unknown-option", ["fit", "M/sprinkler.yaml", "sp.csv", "--fast"], {}, ["unrecognized arguments: --fast"]),
]

#: Rows also run through the installed executable.
SUBPROCESS = ["query-given-unknown-state", "predict-nothing-to-predict", "forecast-irregular-dates", "validate-python-tag", "fit-data-unknown-label", "fit-data-ragged", "fit-max-iter-zero",
              "score-hand-edited-fitted", "fit-data-short-row", "sample-output-is-the-model", "convert-unknown-output", "no-command"]


def _resolve(arg: str) -> str:
    if arg.startswith("M/"):
        return str(MODELS / arg[2:])
    if arg.startswith("B/"):
        return str(BAD_MODELS / arg[2:])
    return arg


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Good files every row may use: sp.csv, sp.fitted.yaml, and a previous output out.yaml."""
    root = tmp_path_factory.mktemp("cli-base")
    (root / "sp.csv").write_text(_sprinkler_csv())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = pgm.fit(pgm.load(MODELS / "sprinkler.yaml"), root / "sp.csv")
    fitted.save(root / "sp.fitted.yaml")
    shutil.copy(root / "sp.fitted.yaml", root / "out.yaml")  # a previous output that must survive
    return root


def _prepare(base: Path, tmp: Path, files: dict[str, str | bytes]) -> None:
    for name in ("sp.csv", "sp.fitted.yaml", "out.yaml"):
        shutil.copy2(base / name, tmp / name)
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    past = 1_000_000_000  # an old mtime: a rewrite with the same bytes would still show
    for path in tmp.rglob("*"):
        os.utime(path, (past, past))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and directory under root: (kind, size, mtime_ns, sha256)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(root))] = ("file" if path.is_file() else "dir", st.st_size, st.st_mtime_ns, digest)
    return out


def check(code: int, err: str, out: str, case) -> None:
    name, argv, _, fragments = case
    assert code == 2, f"{name}: exit {code}, stderr: {err!r}"
    assert "Traceback" not in err + out and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"{name}: expected one line on stderr, got {len(lines)}: {err!r}"
    for fragment in fragments:
        fragment = _resolve(fragment) if fragment[:2] in ("M/", "B/") else fragment
        assert fragment in lines[0], f"{name}: {fragment!r} not in {lines[0]!r}"
    # the command line names its flags, never the library's Python arguments (init=, learner='em', ...)
    assert not re.search(r"(?<![\w-])(init|weights|chunk_rows|learner|max_iter|n_init|tol|na_values|sep)=|prior=\{|"
                         r"\(joint=True\)|command line:|pandas DataFrame", lines[0]), lines[0]


def test_the_table_is_large():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)
    assert set(SUBPROCESS) <= {c[0] for c in CASES}


def test_good_runs_succeed_in_the_same_setup(base, tmp_path, monkeypatch, capsys):
    """The table's failures come from the bad input, not from the setup."""
    _prepare(base, tmp_path, {"g.csv": GMM_CSV})
    monkeypatch.chdir(tmp_path)
    assert main(["fit", str(MODELS / "sprinkler.yaml"), "sp.csv", "-o", "new.yaml"]) == 0
    assert main(["score", "sp.fitted.yaml", "sp.csv"]) == 0
    assert main(["query", "sp.fitted.yaml", "rain", "--given", "cloudy=yes"]) == 0
    assert main(["predict", "sp.fitted.yaml", "sp.csv", "--node", "rain", "--proba", "-o", "p.csv"]) == 0
    assert main(["sample", "sp.fitted.yaml", "-n", "3", "-o", "s.csv"]) == 0
    assert main(["validate", str(MODELS / "gmm.yaml")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(base, tmp_path, monkeypatch, capsys, case):
    name, argv, files, _ = case
    _prepare(base, tmp_path, files)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main([_resolve(a) for a in argv])
    out, err = capsys.readouterr()
    check(code, err, out, case)
    assert snapshot(tmp_path) == before, f"{name}: files were created or changed"


# ------------------------------------------------------------------ output targets that must not be replaced
#: One run per command that writes with -o; "TARGET" is replaced by the output path under test.
WRITERS = {
    "fit": ["fit", "M/sprinkler.yaml", "sp.csv", "-o", "TARGET"],
    "sample": ["sample", "sp.fitted.yaml", "-n", "3", "-o", "TARGET"],
    "score": ["score", "sp.fitted.yaml", "sp.csv", "-o", "TARGET"],
    "predict": ["predict", "sp.fitted.yaml", "sp.csv", "--node", "rain", "-o", "TARGET"],
    "convert": ["convert", "sp.fitted.yaml", "-o", "TARGET"],
    "show": ["show", "M/sprinkler.yaml", "-o", "TARGET"],
}
SUFFIX = {"fit": ".yaml", "sample": ".csv", "score": ".csv", "predict": ".csv", "convert": ".bif", "show": ".svg"}


def _special(kind: str, path: Path):
    """Make a special file at ``path``; returns what must be closed afterwards (a socket), or None."""
    if kind == "read-only":
        path.write_text("previous output\n")
        path.chmod(0o444)
    elif kind == "fifo-without-reader":
        os.mkfifo(path)
    elif kind == "block-device":
        if os.geteuid() != 0:
            pytest.skip("making a block device node needs root")
        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        return server
    return None


REFUSALS = {"read-only": "is read-only; choose another path or change its permissions",
            "fifo-without-reader": "is a named pipe (FIFO) that no process is reading",
            "block-device": "is a block device (a disk); pgm never writes to one",
            "socket": "is a socket, which cannot be written as a file"}


@pytest.mark.parametrize("kind", list(REFUSALS))
@pytest.mark.parametrize("command", list(WRITERS))
def test_outputs_that_must_not_be_replaced_are_refused(base, tmp_path, monkeypatch, capsys, command, kind):
    """-o on a read-only file (even as root), a FIFO nobody reads, a disk or a socket: exit 2, one
    line naming the path and why, and the target is left exactly as it was (same kind, same bytes)."""
    if kind == "fifo-without-reader" and command == "show":
        pytest.importorskip("matplotlib")  # show draws before it writes; the FIFO is refused at the write
    _prepare(base, tmp_path, {})
    target = tmp_path / f"target{SUFFIX[command]}"
    closing = _special(kind, target)
    try:
        monkeypatch.chdir(tmp_path)
        before = snapshot(tmp_path)
        mode = os.lstat(target).st_mode
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main([str(target) if a == "TARGET" else _resolve(a) for a in WRITERS[command]])
        out, err = capsys.readouterr()
        check(code, err, out, (f"{command}-{kind}", [], {}, [f"{target}: {REFUSALS[kind]}"]))
        assert os.lstat(target).st_mode == mode
        assert snapshot(tmp_path) == before
    finally:
        if closing is not None:
            closing.close()


def test_validate_prints_one_line_per_error(base, tmp_path, monkeypatch, capsys):
    """The one documented exception: ``validate`` lists every error of a file, one per line."""
    monkeypatch.chdir(tmp_path)
    path = str(BAD_MODELS / "multiple_errors.yaml")
    before = snapshot(tmp_path)
    assert main(["validate", path]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 4 and all(line.startswith(path + ":") for line in lines)
    assert snapshot(tmp_path) == before


def pgm_executable() -> str:
    here = Path(sys.executable).parent / ("pgm.exe" if os.name == "nt" else "pgm")
    found = str(here) if here.exists() else shutil.which("pgm")
    assert found, "the `pgm` console script is not installed (pip install -e .)"
    return found


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_through_the_installed_command(base, tmp_path, name):
    case = next(c for c in CASES if c[0] == name)
    _, argv, files, _ = case
    _prepare(base, tmp_path, files)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PGM_DEBUG"}
    run = subprocess.run([pgm_executable(), *[_resolve(a) for a in argv]], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, env=env)
    check(run.returncode, run.stderr, run.stdout, case)
    assert snapshot(tmp_path) == before, f"{name}: files were created or changed"
