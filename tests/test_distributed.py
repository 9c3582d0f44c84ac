"""Fits on a real Dask cluster (pgm.distributed) equal the in-memory fit on the same rows.

One ``distributed.LocalCluster`` (2 worker processes) is shared by the module: it takes
several seconds to start.  Partition counts do not divide the row counts, and EM runs
from the in-memory starting point (``init=``), as the documentation says to.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm import distributed as pgm_distributed
from pgm.encode import encode
from pgm.errors import DataError, PGMError
from pgm.graph import build
from pgm.io.table import read_options
from pgm.schema import parse_spec

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from conftest import MODELS, ROOT  # noqa: E402
from test_stream import assert_same_cpds, quiet_fit  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def ran_on_workers(client, function_name: str, run) -> set[str]:
    """The workers that ran tasks of ``function_name`` while ``run()`` was called."""
    with distributed.get_task_stream(client) as stream:
        result = run()
    return result, {t["worker"] for t in stream.data if function_name in t["key"]}


@pytest.fixture(scope="module")
def alarm_rows(alarm_true):
    return alarm_true.sample(8000, seed=0)


@pytest.fixture(scope="module")
def alarm_missing(alarm_rows):
    df = alarm_rows.copy()
    rng = np.random.default_rng(1)
    for col in ["HISTORY", "CVP", "HYPOVOLEMIA", "LVFAILURE", "BP", "HR"]:
        df[col] = df[col].astype(object).where(rng.random(len(df)) >= 0.08, None)
    return df


def test_discrete_network_equals_in_memory(client, alarm_rows):
    model = pgm.load(MODELS / "alarm.yaml")
    fitted, workers = ran_on_workers(client, "_partition_stats",
                                     lambda: quiet_fit(model, dd.from_pandas(alarm_rows, npartitions=7)))
    assert fitted.info == {"learner": "mle", "partitions": 7}
    assert workers and workers <= set(client.scheduler_info()["workers"])
    assert_same_cpds(fitted, quiet_fit(model, alarm_rows))


def test_linear_gaussian_network_equals_in_memory(client, ecoli_true):
    rows = ecoli_true.sample(6000, seed=1) + 100.0
    model = pgm.load(MODELS / "ecoli70.yaml")
    fitted = quiet_fit(model, dd.from_pandas(rows, npartitions=5))
    assert_same_cpds(fitted, quiet_fit(model, rows), atol=1e-9)


def test_gaussian_mixture_equals_in_memory(client):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 3000)
    x = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])[z] + rng.standard_normal((3000, 2))
    rows = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    model = pgm.load(MODELS / "gmm.yaml")
    start = quiet_fit(model, rows, max_iter=1, seed=0).cpds
    memory = quiet_fit(model, rows, max_iter=25, init=start)
    fitted, workers = ran_on_workers(client, "_e_step", lambda: quiet_fit(
        model, dd.from_pandas(rows, npartitions=4), max_iter=25, init=start))
    assert len(workers) == 2  # the E-step ran on both workers
    np.testing.assert_allclose(fitted.history, memory.history, rtol=0, atol=1e-9)
    assert_same_cpds(fitted, memory, atol=1e-8)


def em_reference(alarm_missing, max_iter=8):
    model = pgm.load(MODELS / "alarm.yaml")
    start = quiet_fit(model, alarm_missing, max_iter=1, seed=2).cpds
    return model, start, quiet_fit(model, alarm_missing, max_iter=max_iter, init=start)


def test_missing_cells_em_equals_in_memory(client, alarm_missing):
    model, start, memory = em_reference(alarm_missing)
    fitted = quiet_fit(model, dd.from_pandas(alarm_missing, npartitions=5), max_iter=8, init=start)
    assert fitted.info["learner"] == "em"
    np.testing.assert_allclose(fitted.history, memory.history, rtol=0, atol=1e-9)
    assert_same_cpds(fitted, memory, atol=1e-9)


@pytest.mark.parametrize("npartitions", [1, 5])
def test_em_from_a_seed_equals_in_memory_for_any_partitioning(client, alarm_missing, npartitions):
    """The default start is built from all partitions' sums and the seed: not from one partition."""
    model = pgm.load(MODELS / "alarm.yaml")
    memory = quiet_fit(model, alarm_missing, max_iter=4, seed=5)
    fitted = quiet_fit(model, dd.from_pandas(alarm_missing, npartitions=npartitions), max_iter=4, seed=5)
    np.testing.assert_allclose(fitted.history, memory.history, rtol=1e-9)
    assert_same_cpds(fitted, memory, atol=1e-9)


def test_kmeanspp_start_on_partitions_equals_in_memory(client):
    """k-means++ races rows keyed on a hash of their values, one pass over the partitions per centre."""
    rng = np.random.default_rng(1)
    x = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])[rng.integers(0, 3, 900)] + rng.standard_normal((900, 2))
    rows = pd.DataFrame({"x[0]": x[:, 0], "x[1]": x[:, 1]})
    model = pgm.load(MODELS / "gmm.yaml")
    memory = quiet_fit(model, rows, max_iter=5, seed=3, n_init=2)
    fitted = quiet_fit(model, dd.from_pandas(rows, npartitions=4), max_iter=5, seed=3, n_init=2)
    for ours, theirs in zip(fitted.info["runs"], memory.info["runs"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert_same_cpds(fitted, memory, atol=1e-8)


def test_cluster_restart_mid_em_is_correct_or_a_clear_error(client, alarm_missing):
    model, start, memory = em_reference(alarm_missing)

    def restart(iteration, _):
        if iteration == 2:
            client.restart(wait_for_workers=False)  # the fit, not restart(), must wait for them

    try:
        fitted = quiet_fit(model, dd.from_pandas(alarm_missing, npartitions=6), max_iter=8, init=start,
                           callback=restart)
    except PGMError as exc:
        assert "Dask cluster failed" in str(exc)
    else:
        np.testing.assert_allclose(fitted.history, memory.history, rtol=0, atol=1e-9)
        assert_same_cpds(fitted, memory, atol=1e-9)


def test_worker_killed_mid_em_gives_the_same_model(client, alarm_missing):
    """Dask recomputes the persisted partitions the dead worker held, from the task graph."""
    model, start, memory = em_reference(alarm_missing)
    killed = []

    def kill_one_worker(iteration, _):
        if iteration == 2:
            victim = sorted(client.scheduler_info()["workers"])[0]
            try:
                client.run(os._exit, 1, workers=[victim])
            except Exception:  # noqa: BLE001  (the worker dies before it can answer)
                pass
            killed.append(victim)

    fitted = quiet_fit(model, dd.from_pandas(alarm_missing, npartitions=6), max_iter=8, init=start,
                       callback=kill_one_worker)
    assert killed
    np.testing.assert_allclose(fitted.history, memory.history, rtol=0, atol=1e-9)
    assert_same_cpds(fitted, memory, atol=1e-9)
    client.wait_for_workers(2, timeout=60)


def test_lost_data_is_a_pgm_error(monkeypatch):
    """Errors that mean the cluster lost work become a PGMError that says so."""
    import concurrent.futures

    def cancelled(*args, **kwargs):
        raise concurrent.futures.CancelledError("key cancelled")

    monkeypatch.setattr(pgm_distributed._dask(), "compute", cancelled)
    with pytest.raises(PGMError, match="the Dask cluster failed during the statistics pass"):
        pgm_distributed._compute(None, "the statistics pass")


def test_bad_label_names_the_row_in_the_whole_dataframe(client, alarm_rows):
    rows = alarm_rows.astype(object)
    rows.loc[5432, "CVP"] = "LOWISH"
    # each partition indexed from 0, as dd.read_csv gives them: rows must still be numbered globally
    ddf = dd.from_pandas(rows, npartitions=6).map_partitions(lambda f: f.reset_index(drop=True))
    with pytest.raises(DataError, match=r"column 'CVP': unknown label in 1 row \(row 5432: 'LOWISH'\)"):
        pgm.fit(MODELS / "alarm.yaml", ddf)


def test_mle_on_missing_cells_names_the_rows(client, alarm_missing):
    with pytest.raises(DataError, match="have missing cells"):
        pgm.fit(MODELS / "alarm.yaml", dd.from_pandas(alarm_missing, npartitions=4), learner="mle")


def test_missing_column_is_reported_before_any_task(client, alarm_rows):
    with pytest.raises(DataError, match="missing column 'CVP'"):
        pgm.fit(MODELS / "alarm.yaml", dd.from_pandas(alarm_rows.drop(columns=["CVP"]), npartitions=3))


def test_undirected_distinct_rows_equal_in_memory(client):
    from pgm.learn.loglinear import fit_loglinear

    graph = build(pgm.load(MODELS / "pairwise_table.yaml"))
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({n: rng.choice(list(graph[n].labels), 3000) for n in graph.order})
    merged = pgm_distributed.distinct_rows(graph, dd.from_pandas(rows, npartitions=5))
    assert merged.weights.sum() == 3000
    np.testing.assert_allclose(fit_loglinear(graph, merged).theta,
                               fit_loglinear(graph, encode(graph, rows)).theta, rtol=0, atol=1e-9)


def test_cli_scheduler_address(client, alarm_rows, tmp_path):
    data = tmp_path / "alarm.parquet"
    alarm_rows.to_parquet(data, index=False)
    out = tmp_path / "fitted.yaml"
    run = subprocess.run([sys.executable, "-m", "pgm.cli", "fit", str(MODELS / "alarm.yaml"), str(data),
                          "--scheduler", client.scheduler.address, "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert_same_cpds(pgm.load(out), quiet_fit(pgm.load(MODELS / "alarm.yaml"), alarm_rows), atol=1e-9)


def test_cli_bad_scheduler_address(tmp_path, alarm_rows):
    data = tmp_path / "alarm.csv"
    alarm_rows.head(50).to_csv(data, index=False)
    run = subprocess.run([sys.executable, "-m", "pgm.cli", "fit", str(MODELS / "alarm.yaml"), str(data),
                          "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "f.yaml")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert run.returncode == 2
    assert "cannot connect to the Dask scheduler at 'tcp://127.0.0.1:9'" in run.stderr


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # `import dask` now raises ImportError
    with pytest.raises(PGMError, match=r"pip install 'pgm-learn\[dask\]'"):
        pgm_distributed._dask()


def test_local_scheduler_without_a_client(alarm_rows, alarm_missing, monkeypatch):
    """No distributed Client: the same tasks run on Dask's local threads (parameters are not scattered)."""
    import dask

    monkeypatch.setattr(pgm_distributed, "_client", lambda: None)
    model, start, memory = em_reference(alarm_missing, max_iter=4)
    with dask.config.set(scheduler="threads"):
        mle = quiet_fit(model, dd.from_pandas(alarm_rows, npartitions=3))
        em = quiet_fit(model, dd.from_pandas(alarm_missing, npartitions=3), max_iter=4, init=start)
    assert_same_cpds(mle, quiet_fit(model, alarm_rows))
    np.testing.assert_allclose(em.history, memory.history, rtol=0, atol=1e-9)


def test_the_reading_rule_on_the_cluster(client, tmp_path):
    """Dask reads the NA-like state labels of tests/test_reading_rule.py as the other readers do,
    from CSV (read_frame) and Parquet, and names the line of a short row or a bad cell."""
    import test_reading_rule as rule

    model = rule.write_model(tmp_path / "tokens.yaml", rule.TOKENS, rule.CHILD)
    rows = rule.token_rows()
    csv, parquet = tmp_path / "tokens.csv", tmp_path / "tokens.parquet"
    rows.to_csv(csv, index=False)
    rows.to_parquet(parquet)
    spec = pgm.load(model)
    ref = rule.reference_tables(csv)
    memory = pgm.fit(model, csv)
    for path in (csv, parquet):
        ddf = pgm_distributed.read_frame(spec, path).repartition(npartitions=3)
        fitted = pgm.fit(model, pgm_distributed.read_frame(spec, path))
        assert fitted.info["learner"] == "mle"
        np.testing.assert_allclose(fitted.cpds["a"].probs[0], ref["a"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(fitted.cpds["b"].probs, ref["b"], rtol=0, atol=1e-15)
        assert pgm.fit(model, ddf).cpds["b"].probs.tolist() == fitted.cpds["b"].probs.tolist()
        assert memory.log_likelihood(csv) == pytest.approx(fitted.log_likelihood(path), rel=1e-12, abs=0)
    (tmp_path / "short.csv").write_text("a,b\nNone,True\n\nNA\n")
    with pytest.raises(DataError, match=r"short.csv: line 4: the row has 1 field, fewer fields than the header"):
        pgm_distributed.read_frame(spec, tmp_path / "short.csv")
    (tmp_path / "label.csv").write_text("a,b\nNone,True\nNA,0\nnull,maybe\n")
    with pytest.raises(DataError, match=r"label.csv: column 'b': unknown label in 1 row \(line 4: 'maybe'\)"):
        pgm.fit(model, pgm_distributed.read_frame(spec, tmp_path / "label.csv"))
    (tmp_path / "na.csv").write_text("a,b\nNone,True\n?,0\nnull,?\n")
    fitted = quiet_fit(model, pgm_distributed.read_frame(spec, tmp_path / "na.csv", options=read_options(["?"])))
    assert fitted.info["learner"] == "em"


# --------------------------------------------------------------------------- sequence models
@pytest.mark.parametrize("spec_name", ["discrete", "gaussian"])
@pytest.mark.parametrize("npartitions", [1, 4])
def test_sequences_equal_in_memory(client, spec_name, npartitions):
    """Rows of each sequence spread over every partition: regrouped so that a sequence lies in one
    partition, EM from the seed equals the in-memory fit (parameters and history to 1e-10)."""
    import test_sequence_stream as seqs

    spec, seed = (seqs.DISCRETE, 1) if spec_name == "discrete" else (seqs.GAUSSIAN, 2)
    rows = seqs._rows(spec, 30, seed)
    memory = quiet_fit(parse_spec(spec), rows, max_iter=6, seed=3)
    fitted, workers = ran_on_workers(client, "_sequence_e_step", lambda: quiet_fit(
        parse_spec(spec), dd.from_pandas(rows, npartitions=npartitions), max_iter=6, seed=3))
    assert fitted.info["partitions"] == npartitions and workers
    seqs.assert_equal_fits(fitted, memory)


def test_partly_missing_vectors_without_hidden_state_on_the_cluster(client):
    """Partitions whose only missing cells are partly missing gaussian vectors take EM, as in memory."""
    import test_sequence_stream as seqs

    rows = seqs.partial_rows()
    memory = quiet_fit(parse_spec(seqs.PARTIAL), rows, max_iter=6, seed=3)
    fitted = quiet_fit(parse_spec(seqs.PARTIAL), dd.from_pandas(rows, npartitions=3), max_iter=6, seed=3)
    assert fitted.info["learner"] == memory.info["learner"] == "em"
    seqs.assert_equal_fits(fitted, memory)


def test_sequence_weights_on_the_cluster(client):
    import test_sequence_stream as seqs

    rows = seqs.weighted(seqs._rows(seqs.GAUSSIAN, 30, 2))
    memory = quiet_fit(parse_spec(seqs.GAUSSIAN), rows, weights="w", max_iter=5, seed=1)
    fitted = quiet_fit(parse_spec(seqs.GAUSSIAN), dd.from_pandas(rows, npartitions=4), weights="w", max_iter=5, seed=1)
    seqs.assert_equal_fits(fitted, memory)
    bad = rows.copy()
    first = bad.index[bad["seq"] == bad.loc[10, "seq"]][0]
    bad.loc[first, "w"] = 7.0
    with pytest.raises(DataError, match=rf"weighs whole sequences.*rows \[{first}"):
        pgm.fit(parse_spec(seqs.GAUSSIAN), dd.from_pandas(bad, npartitions=4), weights="w")
    with pytest.raises(DataError, match="sum to 0"):
        pgm.fit(parse_spec(seqs.GAUSSIAN), dd.from_pandas(rows.assign(w=0.0), npartitions=4), weights="w")


def test_sequences_from_a_file_on_the_cluster(client, tmp_path):
    """read_frame (as `pgm fit --scheduler` reads): counting and EM equal in memory; errors name the line."""
    import test_sequence_stream as seqs

    rows = seqs._rows(seqs.DISCRETE, 30, 1)
    csv = tmp_path / "rows.csv"
    rows.to_csv(csv, index=False)
    spec = parse_spec(seqs.DISCRETE)
    ddf = pgm_distributed.read_frame(spec, csv).repartition(npartitions=3)
    seqs.assert_equal_fits(quiet_fit(spec, ddf, max_iter=4, seed=1), quiet_fit(spec, rows, max_iter=4, seed=1))
    full = parse_spec({**seqs.DISCRETE, "nodes": {"h": {"states": 3, "prev": ["h"]},
                                                   "o": {"states": 4, "parents": ["h"]}}})
    complete = seqs._true(seqs.DISCRETE, 4).sample(20, seed=4, length=5).sample(frac=1.0, random_state=2)
    complete.to_parquet(tmp_path / "full.parquet", index=False)
    counted = quiet_fit(full, pgm_distributed.read_frame(full, tmp_path / "full.parquet"))
    assert counted.info == {"learner": "mle", "partitions": 1}
    seqs.assert_equal_fits(counted, quiet_fit(full, complete), atol=1e-15)
    bad = rows.astype({"o": object})
    bad.loc[40, "o"] = 9
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.csv: column 'o'.*line 42"):
        pgm.fit(spec, pgm_distributed.read_frame(spec, tmp_path / "bad.csv"))
    with pytest.raises(DataError, match=r"column 'o'.*row 40: 9"):  # a DataFrame: the row's position
        pgm.fit(spec, dd.from_pandas(bad, npartitions=3))
    dup = rows.copy()
    dup.loc[17, ["seq", "t"]] = dup.loc[16, ["seq", "t"]].to_numpy()
    with pytest.raises(DataError, match=r"duplicated \(seq, t\) pair \(rows 16 and 17"):
        pgm.fit(spec, dd.from_pandas(dup, npartitions=3))
    with pytest.raises(DataError, match="missing order column 't'"):
        pgm.fit(spec, dd.from_pandas(rows.drop(columns=["t"]), npartitions=2))


def test_cli_scheduler_fits_a_sequence_model(client, tmp_path):
    import test_sequence_stream as seqs

    rows = seqs._rows(seqs.DISCRETE, 30, 1)
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    model = tmp_path / "hmm.yaml"
    model.write_text("name: hmm\nsequence: {id: seq, order: t}\nnodes:\n"
                     "  h: {states: 3, latent: true, prev: [h]}\n  o: {states: 4, parents: [h]}\n")
    out = tmp_path / "fitted.yaml"
    run = subprocess.run([sys.executable, "-m", "pgm.cli", "fit", str(model), str(data), "--max-iter", "4",
                          "--scheduler", client.scheduler.address, "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    memory = quiet_fit(pgm.load(model), rows, max_iter=4)
    for key in memory.cpds:
        np.testing.assert_allclose(pgm.load(out).cpds[key].probs, memory.cpds[key].probs, rtol=0, atol=1e-10)
