"""Write pgmpy's maximum-likelihood CPTs of alarm, for ``tests/learn/test_mle.py``.

The data are not stored: they are drawn with pgm from the bnlearn alarm network with a
fixed seed, and the test draws them again.  A digest of the drawn data is stored with the
CPTs so the test can tell "pgm's sampler changed" (rerun this script) from "the fit disagrees".

pgmpy is not a dependency of pgm (not even a test extra); run this in a separate environment:

    python3 -m venv /tmp/pgmpy-venv
    /tmp/pgmpy-venv/bin/pip install pgmpy pandas pydantic pyyaml networkx scipy
    /tmp/pgmpy-venv/bin/python tests/reference/make_pgmpy_reference.py

It imports pgm from this checkout (no install needed) and writes
``tests/reference/alarm_pgmpy_mle.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pgm.convert import read_any  # noqa: E402
from pgm.fitted import FittedModel  # noqa: E402
from pgm.schema import load_spec, parse_spec  # noqa: E402

NETWORK = ROOT.parent / "shared" / "data" / "alarm.bif"
MODEL = ROOT / "models" / "alarm.yaml"
OUTPUT = HERE / "alarm_pgmpy_mle.json"
N_ROWS = 20_000
SEED = 20240601


def sample_alarm(n_rows: int = N_ROWS, seed: int = SEED) -> pd.DataFrame:
    """The reference data: ``n_rows`` rows drawn by pgm from the true alarm network."""
    truth = FittedModel.from_spec(parse_spec(read_any(NETWORK)), str(NETWORK))
    return truth.sample(n_rows, seed=seed)


def data_digest(frame: pd.DataFrame, spec) -> str:
    """sha256 of the state codes (declared order of states), column by column in node order."""
    codes = []
    for name, node in spec.nodes.items():
        lookup = {label: i for i, label in enumerate(node.labels)}
        codes.append(frame[name].astype(str).map(lookup).to_numpy(dtype=np.int8))
    return hashlib.sha256(np.column_stack(codes).tobytes()).hexdigest()


def main() -> None:
    from pgmpy import __version__ as pgmpy_version
    from pgmpy.estimators import MaximumLikelihoodEstimator
    from pgmpy.models import DiscreteBayesianNetwork

    spec = load_spec(MODEL)
    frame = sample_alarm()
    data = pd.DataFrame({c: frame[c].astype(str) for c in frame.columns})
    edges = [(p, name) for name, node in spec.nodes.items() for p in node.parents]
    network = DiscreteBayesianNetwork(edges)
    network.add_nodes_from(spec.nodes)
    state_names = {name: list(node.labels) for name, node in spec.nodes.items()}
    estimator = MaximumLikelihoodEstimator(network, data, state_names=state_names)
    cpts = {}
    for name in spec.nodes:
        cpd = estimator.estimate_cpd(name)
        variables = list(cpd.variables)  # [node, *evidence] (pgmpy sorts the evidence)
        cpts[name] = {
            "variables": variables,
            "states": {v: list(cpd.state_names[v]) for v in variables},
            # shape (n_states, prod(evidence cards)), evidence in C order as listed
            "values": np.asarray(cpd.get_values(), dtype=float).tolist(),
        }
    out = {
        "what": "pgmpy MaximumLikelihoodEstimator CPTs of models/alarm.yaml fitted to data sampled by pgm",
        "made_by": "tests/reference/make_pgmpy_reference.py",
        "pgmpy_version": pgmpy_version,
        "n_rows": N_ROWS,
        "seed": SEED,
        "data_sha256": data_digest(frame, spec),
        "cpts": cpts,
    }
    OUTPUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes) with pgmpy {pgmpy_version}")


if __name__ == "__main__":
    main()
