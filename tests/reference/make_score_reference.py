"""Write pgmpy's and pyAgrum's structure scores and pgmpy's Bayesian CPTs, for tests/test_score_reference.py.

Three networks, each with several declared structures over the same variables:

* ``asia``: rows drawn by pgm from examples/asia.bif; the true structure, the notebook-05
  candidates (no asia -> tub, every arrow reversed, naive Bayes, empty, complete DAG);
* ``alarm``: rows drawn from examples/alarm.bif; the true structure, every third edge dropped,
  and a 12-variable subset (the first 12 in topological order, with the edges among them);
* ``random``: a random 8-node network (2-4 named states, up to 3 parents, Dirichlet(0.6) tables,
  one state declared but never drawn) with few rows, so many cells and configurations are empty.

For every structure: pgmpy's BDeu (equivalent sample sizes 1, 10 and ``ess_grid``), K2, BIC and AIC
(``pgmpy.structure_score``, natural log), and pyAgrum's K2 and BDeu (``BNLearner.score``, log2).
pyAgrum evaluates log2(Gamma(x)) for x < 50 from a table on a 0.01 grid (rounding x) and by a
shortened Stirling formula above, so its BDeu is compared only at ``ess_grid``: the smallest
equivalent sample size whose pseudo-counts ``ess / (q r)`` and ``ess / q`` all fall on that grid.
Its BDeu is read as ``useScoreBD()`` with ``useBDeuPrior(ess)`` (``useScoreBDeu`` fixes ess = 1).

Per-state and table priors: pgmpy's ``BayesianEstimator.estimate_cpd(prior_type="dirichlet",
pseudo_counts=...)`` on the asia and random rows, with pseudo-counts drawn here (some 0), stored
in pgm's layout (rows = parent configurations, first parent slowest, declared state order).

The data are not stored: the test draws them again with pgm and checks the stored digest, so a
change in pgm's sampler reads "rerun this script", not "the scores disagree".

pgmpy and pyAgrum are not dependencies of pgm; run this in a separate environment, e.g.:

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install torch pgmpy pyagrum pandas pydantic pyyaml networkx scipy
    /tmp/ref-venv/bin/python tests/reference/make_score_reference.py

It imports pgm from this checkout and writes ``tests/reference/score_reference.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pgm.convert import read_any  # noqa: E402
from pgm.fitted import FittedModel  # noqa: E402
from pgm.schema import ModelSpec, load_spec, parse_spec  # noqa: E402

OUTPUT = HERE / "score_reference.json"
ESS = (1.0, 10.0)


# ------------------------------------------------------------------ networks and data (shared with the test)
def declare(base: ModelSpec, name: str, parents: dict[str, list[str]]) -> ModelSpec:
    """``base``'s nodes and states with other parents."""
    nodes = {n: {"states": base.nodes[n].states, "parents": list(parents[n])} for n in parents}
    return parse_spec({"name": name, "graph": "directed", "nodes": nodes})


def random_truth(seed: int = 11) -> ModelSpec:
    """A random 8-node network with named states and Dirichlet(0.6) tables, as a fitted declaration."""
    rng = np.random.default_rng(seed)
    nodes: dict = {}
    params: dict = {}
    names = [f"v{i}" for i in range(8)]
    for i, name in enumerate(names):
        k = int(rng.integers(2, 5))
        parents = sorted(rng.choice(names[:i], size=min(i, int(rng.integers(0, 4))), replace=False).tolist(),
                         key=names.index)
        q = math.prod(nodes[p]["_k"] for p in parents)
        table = rng.dirichlet(np.full(k, 0.6), size=q)
        if i == 5:  # a declared state that no row holds
            k += 1
            table = np.hstack([table, np.zeros((q, 1))])
        nodes[name] = {"states": [f"s{j}" for j in range(k)], "parents": parents, "_k": k}
        params[name] = {"table": table.tolist() if parents else table[0].tolist()}
    for node in nodes.values():
        del node["_k"]
    return parse_spec({"name": "random8", "graph": "directed", "nodes": nodes, "params": params})


def networks() -> dict[str, dict]:
    """name -> {"truth": fitted declaration to draw from, "n_rows", "seed", "structures": {name: parents}}."""
    asia = load_spec(ROOT / "models" / "asia.yaml")
    order = asia.topological_order()
    asia_true = {n: list(asia.nodes[n].parents) for n in asia.nodes}
    alarm = load_spec(ROOT / "models" / "alarm.yaml")
    alarm_true = {n: list(alarm.nodes[n].parents) for n in alarm.nodes}
    edges = [(p, n) for n in alarm.nodes for p in alarm.nodes[n].parents]
    dropped = set(edges[::3])
    subset = alarm.topological_order()[:12]
    rand = random_truth()
    rand_true = {n: list(rand.nodes[n].parents) for n in rand.nodes}
    rng = np.random.default_rng(5)
    perm = list(rng.permutation(list(rand.nodes)))
    rand_other = {n: [m for m in perm[:perm.index(n)] if rng.random() < 0.35][:3] for n in rand.nodes}
    return {
        "asia": {"truth": ROOT / "examples" / "asia.bif", "base": asia, "n_rows": 2000, "seed": 101, "structures": {
            "true": asia_true,
            "no-asia-tub": {n: [p for p in asia_true[n] if p != "asia"] for n in asia.nodes},
            "reversed": {n: [c for c in asia.nodes if n in asia_true[c]] for n in asia.nodes},
            "naive-bayes": {n: [] if n == "either" else ["either"] for n in asia.nodes},
            "empty": {n: [] for n in asia.nodes},
            "complete": {n: order[:order.index(n)] for n in asia.nodes},
        }},
        "alarm": {"truth": ROOT / "examples" / "alarm.bif", "base": alarm, "n_rows": 3000, "seed": 202, "structures": {
            "true": alarm_true,
            "every-third-edge-dropped": {n: [p for p in alarm_true[n] if (p, n) not in dropped] for n in alarm.nodes},
            "first-12": {n: [p for p in alarm_true[n] if p in subset] for n in subset},
        }},
        "random": {"truth": rand, "base": rand, "n_rows": 150, "seed": 303, "structures": {
            "true": rand_true, "empty": {n: [] for n in rand.nodes}, "other": rand_other,
        }},
    }


def truth_model(net: dict) -> FittedModel:
    truth = net["truth"]
    spec = truth if isinstance(truth, ModelSpec) else parse_spec(read_any(truth))
    return FittedModel.from_spec(spec, net["base"].name)


def draw(net: dict) -> pd.DataFrame:
    """The rows of a network: drawn by pgm from its true network, state labels as text."""
    frame = truth_model(net).sample(net["n_rows"], seed=net["seed"])
    return pd.DataFrame({c: frame[c].astype(str) for c in frame.columns})


def data_digest(frame: pd.DataFrame, base: ModelSpec) -> str:
    """sha256 of the state codes (declared order of states), column by column in node order."""
    codes = []
    for name, node in base.nodes.items():
        lookup = {label: i for i, label in enumerate(node.labels)}
        codes.append(frame[name].astype(str).map(lookup).to_numpy(dtype=np.int8))
    return hashlib.sha256(np.column_stack(codes).tobytes()).hexdigest()


def ess_on_grid(base: ModelSpec, structures: dict) -> float:
    """The smallest ess with every ess / (q r) and ess / q a multiple of 0.01 (pyAgrum's lgamma table)."""
    m = 1
    for parents in structures.values():
        for n, ps in parents.items():
            qr = math.prod(base.nodes[p].n_states for p in ps) * base.nodes[n].n_states
            m = math.lcm(m, qr)
    return m / 100


# ------------------------------------------------------------------ references
def pgmpy_scores(data: pd.DataFrame, base: ModelSpec, parents: dict, ess_grid: float) -> dict:
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.structure_score import AIC, BIC, K2, BDeu

    cols = list(parents)
    frame = data[cols]
    states = {n: list(base.nodes[n].labels) for n in cols}
    model = DiscreteBayesianNetwork([(p, n) for n in cols for p in parents[n]])
    model.add_nodes_from(cols)
    out = {f"bdeu_{ess:g}": float(BDeu(frame, equivalent_sample_size=ess, state_names=states).score(model))
           for ess in ESS + (ess_grid,)}
    out["k2"] = float(K2(frame, state_names=states).score(model))
    out["bic"] = float(BIC(frame, state_names=states).score(model))  # log L - k/2 log n
    out["aic"] = float(AIC(frame, state_names=states).score(model))  # log L - k
    return out


def pyagrum_scores(data: pd.DataFrame, base: ModelSpec, parents: dict, ess_grid: float) -> dict:
    import pyagrum as gum

    cols = list(parents)
    template = gum.BayesNet()
    for n in cols:
        template.add(gum.LabelizedVariable(n, n, list(base.nodes[n].labels)))

    def total(setup) -> float:
        learner = gum.BNLearner(data[cols], template)
        setup(learner)
        return float(sum(learner.score(n, list(parents[n])) for n in cols))

    return {
        "k2_log2": total(lambda lr: lr.useScoreK2()),
        f"bdeu_{ess_grid:g}_log2": total(lambda lr: (lr.useScoreBD(), lr.useBDeuPrior(ess_grid))),
    }


def bayesian_cpts(data: pd.DataFrame, base: ModelSpec, seed: int) -> dict:
    """pgmpy BayesianEstimator tables with per-state (even nodes) or full-table (odd nodes) pseudo-counts."""
    from pgmpy.estimators import BayesianEstimator
    from pgmpy.models import DiscreteBayesianNetwork

    rng = np.random.default_rng(seed)
    model = DiscreteBayesianNetwork([(p, n) for n in base.nodes for p in base.nodes[n].parents])
    model.add_nodes_from(list(base.nodes))
    states = {n: list(base.nodes[n].labels) for n in base.nodes}
    estimator = BayesianEstimator(model, data, state_names=states)
    out = {}
    for i, (name, node) in enumerate(base.nodes.items()):
        parents = list(node.parents)
        cards = [base.nodes[p].n_states for p in parents]
        q, k = math.prod(cards), node.n_states
        draw_counts = lambda shape: np.where(rng.random(shape) < 0.2, 0.0,  # noqa: E731
                                             np.round(rng.uniform(0.1, 4.0, shape), 2))
        if i % 2 == 0:
            prior = draw_counts(k)
            ours = np.broadcast_to(prior, (q, k))
        else:
            ours = prior = draw_counts((q, k))
        # pgmpy: shape (k, q) with the parents sorted by name, each in its listed state order
        sorted_parents = sorted(parents)
        axes = [parents.index(p) for p in sorted_parents]
        theirs = np.transpose(np.asarray(ours).reshape(cards + [k]), axes + [len(parents)]).reshape(q, k).T
        cpd = estimator.estimate_cpd(name, prior_type="dirichlet", pseudo_counts=theirs)
        assert list(cpd.variables) == [name] + sorted_parents
        values = np.asarray(cpd.get_values(), dtype=float).T.reshape([base.nodes[p].n_states for p in sorted_parents]
                                                                      + [k])
        back = np.argsort(axes)
        table = np.transpose(values, list(back) + [len(parents)]).reshape(q, k)
        out[name] = {"dirichlet": np.asarray(prior).tolist(), "table": table.tolist()}
    return out


def main() -> None:
    import pgmpy
    import pyagrum

    warnings.simplefilter("ignore")
    out: dict = {
        "what": "pgmpy and pyAgrum structure scores, and pgmpy BayesianEstimator CPTs with per-state and table "
                "pseudo-counts, on rows drawn by pgm",
        "made_by": "tests/reference/make_score_reference.py",
        "pgmpy_version": pgmpy.__version__, "pyagrum_version": pyagrum.__version__,
        "ess": list(ESS), "networks": {},
    }
    for name, net in networks().items():
        data = draw(net)
        base = net["base"]
        ess_grid = ess_on_grid(base, net["structures"])
        entry = {"n_rows": net["n_rows"], "seed": net["seed"], "data_sha256": data_digest(data, base),
                 "ess_grid": ess_grid, "structures": {}}
        for sname, parents in net["structures"].items():
            entry["structures"][sname] = {
                "parents": parents,
                "pgmpy": pgmpy_scores(data, base, parents, ess_grid),
                "pyagrum": pyagrum_scores(data, base, parents, ess_grid),
            }
            print(name, sname, entry["structures"][sname]["pgmpy"]["bdeu_1"], flush=True)
        if name in ("asia", "random"):
            entry["bayesian_cpts"] = bayesian_cpts(data, base, seed=net["seed"] + 1)
        out["networks"][name] = entry
    OUTPUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes) with pgmpy {pgmpy.__version__}, "
          f"pyAgrum {pyagrum.__version__}")


if __name__ == "__main__":
    main()
