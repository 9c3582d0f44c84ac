"""``pgm fit``, ``pgm score``, ``pgm sample`` and ``pgm convert``: they do what the API does,
and bad input ends with exit 2, one line on stderr, no traceback and no output file."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.cli import main
from pgm.convert import read_any
from pgm.fitted import FittedModel
from pgm.schema import parse_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"                 # bundled copies: alarm, asia, ecoli70, iris
SHARED = ROOT.parent / "shared" / "data"    # the full reference set, where it sits beside the repository
BIFS = sorted(SHARED.glob("*.bif")) or sorted(EXAMPLES.glob("*.bif"))


@pytest.fixture(scope="module")
def student_model(tmp_path_factory):
    """models/student.yaml with 2000 rows sampled from a model with known CPTs, as CSV."""
    where = tmp_path_factory.mktemp("student")
    model = where / "student.yaml"
    shutil.copy(ROOT / "models" / "student.yaml", model)
    spec = pgm.load(model)
    rng = np.random.default_rng(0)
    params = {}
    for name, node in spec.nodes.items():
        n_configs = int(np.prod([spec.nodes[p].n_states for p in node.parents])) if node.parents else 1
        table = rng.dirichlet(np.ones(node.n_states) * 2, n_configs)
        params[name] = {"table": (table[0] if not node.parents else table).tolist()}
    truth = FittedModel.from_spec(spec.model_copy(update={"params": params}))
    data = truth.sample(2000, seed=1)
    csv = where / "student.csv"
    data.to_csv(csv, index=False)
    return model, csv, data


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, out, err, *fragments):
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in err, err


# ---------------------------------------------------------------- fit

def test_fit_writes_the_fitted_model(capsys, tmp_path, student_model):
    model, csv, data = student_model
    out = tmp_path / "fitted.yaml"
    code, stdout, err = run(capsys, "fit", model, csv, "-o", out)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out}"
    assert err == ""
    fitted = pgm.load(out)
    assert fitted.to_params() == pgm.fit(pgm.load(model), data).to_params()


def test_fit_of_a_fitted_file_says_it_refits_the_declaration(capsys, tmp_path, student_model):
    """A fitted file as the model: its declaration is refitted (as pgm.fit does), with one note on
    stderr pointing at --init; a declaration gets no note."""
    model, csv, data = student_model
    first = tmp_path / "first.fitted.yaml"
    assert run(capsys, "fit", model, csv, "-o", first)[0] == 0
    again = tmp_path / "again.fitted.yaml"
    code, stdout, err = run(capsys, "fit", first, csv, "-o", again)
    assert code == 0, err
    assert err == (f"note: {first} carries parameters; refitting its declaration (use --init {first} to start "
                   "from them)\n")
    assert stdout.strip() == f"wrote {again}"
    assert pgm.load(again).to_params() == pgm.fit(pgm.load(model), data).to_params()


def test_fit_default_output_sits_next_to_the_model(capsys, tmp_path, student_model):
    model, csv, _ = student_model
    copy = tmp_path / "student.yaml"
    shutil.copy(model, copy)
    code, stdout, _ = run(capsys, "fit", copy, csv)
    assert code == 0
    assert (tmp_path / "student.fitted.yaml").exists()
    assert stdout.strip() == f"wrote {tmp_path / 'student.fitted.yaml'}"


def test_fit_prior_option_is_a_dirichlet_prior(capsys, tmp_path, student_model):
    model, csv, data = student_model
    out = tmp_path / "prior.yaml"
    assert run(capsys, "fit", model, csv, "-o", out, "--prior", "2")[0] == 0
    want = pgm.fit(pgm.load(model), data, prior={"dirichlet": 2.0}).to_params()
    assert pgm.load(out).to_params() == want


def test_fit_reports_warnings_on_stderr(capsys, tmp_path, student_model):
    model, _, data = student_model
    csv = tmp_path / "extra.csv"
    data.assign(comment="x").to_csv(csv, index=False)
    code, _, err = run(capsys, "fit", model, csv, "-o", tmp_path / "f.yaml")
    assert code == 0
    assert err.startswith("pgm: warning: ignoring 1 column that name")
    assert "'comment'" in err


def test_fit_parquet(capsys, tmp_path, student_model):
    model, _, data = student_model
    parquet = tmp_path / "d.parquet"
    data.to_parquet(parquet)
    out = tmp_path / "f.yaml"
    assert run(capsys, "fit", model, parquet, "-o", out)[0] == 0
    assert pgm.load(out).to_params() == pgm.fit(pgm.load(model), data).to_params()


# ---------------------------------------------------------------- score and sample

@pytest.fixture(scope="module")
def fitted_file(tmp_path_factory, student_model):
    model, csv, data = student_model
    out = tmp_path_factory.mktemp("fitted") / "student.fitted.yaml"
    pgm.fit(pgm.load(model), data).save(out)
    return out


def test_score_prints_the_total_log_likelihood(capsys, fitted_file, student_model):
    _, csv, data = student_model
    code, out, err = run(capsys, "score", fitted_file, csv)
    assert code == 0 and err == ""
    total = pgm.load(fitted_file).log_likelihood(data)
    assert out.startswith(f"total log-likelihood: {total:.10g}  (2000 rows")


def test_score_per_row(capsys, tmp_path, fitted_file, student_model):
    _, csv, data = student_model
    rows = pgm.load(fitted_file).row_log_likelihood(data)
    code, out, _ = run(capsys, "score", fitted_file, csv, "--per-row")
    assert code == 0
    head, lines = out.strip().splitlines()[:2], out.strip().splitlines()[2:]
    assert head[0].startswith("total log-likelihood:") and head[1].startswith("BIC: ")  # then the rows
    assert len(lines) == 2000
    np.testing.assert_allclose([float(line.split("\t")[1]) for line in lines], rows, rtol=1e-9)
    target = tmp_path / "rows.csv"
    assert run(capsys, "score", fitted_file, csv, "-o", target)[0] == 0
    written = pd.read_csv(target)
    assert list(written.columns) == ["row", "log_likelihood"]
    np.testing.assert_allclose(written["log_likelihood"], rows, rtol=1e-15)


def test_sample_writes_the_models_sample(capsys, tmp_path, fitted_file):
    target = tmp_path / "s.csv"
    code, out, _ = run(capsys, "sample", fitted_file, "-n", 300, "--seed", 7, "-o", target)
    assert code == 0 and out.strip() == f"wrote 300 rows to {target}"
    want = pgm.load(fitted_file).sample(300, seed=7)
    got = pd.read_csv(target)
    assert list(got.columns) == list(want.columns)
    for col in want:
        assert list(got[col].astype(str)) == list(want[col].astype(str)), col


def test_sample_to_stdout(capsys, fitted_file):
    code, out, _ = run(capsys, "sample", fitted_file, "-n", 5, "--seed", 1)
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert len(frame) == 5
    assert set(frame.columns) == {"difficulty", "intelligence", "grade", "sat", "letter"}


# ---------------------------------------------------------------- convert

@pytest.mark.parametrize("bif", BIFS, ids=lambda p: p.stem)
def test_convert_bif_to_yaml_and_back(capsys, tmp_path, bif):
    yaml_path, back = tmp_path / f"{bif.stem}.yaml", tmp_path / f"{bif.stem}.bif"
    assert run(capsys, "convert", bif, "-o", yaml_path)[0] == 0
    assert run(capsys, "convert", yaml_path, "-o", back)[0] == 0
    original, via_yaml, again = read_any(bif), read_any(yaml_path), read_any(back)
    assert via_yaml["nodes"] == original["nodes"]
    assert via_yaml["params"] == original["params"]  # every probability as written in the BIF file
    assert again["nodes"] == original["nodes"] and again["params"] == original["params"]
    model = pgm.load(yaml_path)
    assert isinstance(model, FittedModel)
    assert len(model.sample(10, seed=0)) == 10


@pytest.mark.skipif(not SHARED.is_dir(), reason="the full reference set ../shared/data is not beside the repository "
                    "(the bundled alarm and asia are converted instead)")
def test_bif_has_every_network():
    assert {p.stem for p in BIFS} >= {"alarm", "asia", "cancer", "earthquake", "sachs", "survey"}


def test_convert_ecoli70_json_to_yaml(capsys, tmp_path):
    target = tmp_path / "ecoli70.yaml"
    assert run(capsys, "convert", EXAMPLES / "ecoli70.json", "-o", target)[0] == 0
    model = pgm.load(target)
    assert len(model.spec.nodes) == 46
    assert model.to_params() == FittedModel.from_spec(
        parse_spec(read_any(EXAMPLES / "ecoli70.json"))).to_params()
    assert model.cpd("aceB").loc["aceB", "icdA"] == 1.0464  # as written in the JSON file


# ---------------------------------------------------------------- bad input

def test_fit_with_a_missing_column(capsys, tmp_path, student_model):
    model, _, data = student_model
    csv = tmp_path / "bad.csv"
    data.rename(columns={"grade": "grades"}).to_csv(csv, index=False)
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), "'grade'", "did you mean 'grades'")
    assert not out.exists()


def test_fit_with_an_unknown_label(capsys, tmp_path, student_model):
    model, _, data = student_model
    bad = data.astype({"grade": str})
    bad.loc[7, "grade"] = "F"
    csv = tmp_path / "bad.csv"
    bad.to_csv(csv, index=False)
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), "column 'grade'", "line 9: 'F'")
    assert not out.exists()


def test_fit_with_missing_cells_and_learner_mle(capsys, tmp_path, student_model):
    model, _, data = student_model
    bad = data.astype({"sat": object})
    bad.loc[3, "sat"] = None
    csv = tmp_path / "nan.csv"
    bad.to_csv(csv, index=False)
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out, "--learner", "mle"), "'sat'", "use --learner em")
    assert not out.exists()


def test_fit_with_a_bad_gaussian_column(capsys, tmp_path):
    model = tmp_path / "lg.yaml"
    model.write_text("name: lg\nnodes:\n  x: {type: gaussian}\n  y: {type: gaussian, parents: [x]}\n")
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n1.0,2.0\n2.0,oops\n3.0,4.5\n")
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), "column 'y'", "line 3: 'oops'")
    csv.write_text("x,y\n1.0,2.0\ninf,3.0\n3.0,4.5\n")
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), "column 'x'", "line 3: inf")
    assert not out.exists()


@pytest.mark.parametrize("content, fragment", [("", "empty"), ("difficulty,intelligence,grade,sat,letter\n", "no rows")])
def test_fit_with_an_empty_data_file(capsys, tmp_path, student_model, content, fragment):
    model, _, _ = student_model
    csv = tmp_path / "empty.csv"
    csv.write_text(content)
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), fragment)
    assert not out.exists()


def test_fit_with_missing_files(capsys, tmp_path, student_model):
    model, csv, _ = student_model
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, tmp_path / "nope.csv", "-o", out), "nope.csv", "no such")
    assert_user_error(*run(capsys, "fit", tmp_path / "nope.yaml", csv, "-o", out), "nope.yaml")
    assert not out.exists()


def test_fit_with_an_unknown_learner(capsys, tmp_path, student_model):
    model, csv, _ = student_model
    out = tmp_path / "out.yaml"
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out, "--learner", "magic"), "--learner magic does not fit")
    assert not out.exists()


def test_a_failed_fit_leaves_an_existing_output_alone(capsys, tmp_path, student_model):
    model, _, data = student_model
    csv = tmp_path / "bad.csv"
    data.drop(columns="letter").to_csv(csv, index=False)
    out = tmp_path / "out.yaml"
    out.write_text("previous result\n")
    assert_user_error(*run(capsys, "fit", model, csv, "-o", out), "'letter'")
    assert out.read_text() == "previous result\n"


def test_score_and_sample_need_a_fitted_model(capsys, tmp_path, student_model):
    model, csv, _ = student_model
    assert_user_error(*run(capsys, "score", model, csv), "not a fitted model", "pgm fit")
    target = tmp_path / "s.csv"
    assert_user_error(*run(capsys, "sample", model, "-n", 3, "-o", target), "not a fitted model")
    assert not target.exists()


def test_score_with_bad_data(capsys, tmp_path, fitted_file, student_model):
    _, _, data = student_model
    csv = tmp_path / "bad.csv"
    data.drop(columns="sat").to_csv(csv, index=False)
    rows = tmp_path / "rows.csv"
    assert_user_error(*run(capsys, "score", fitted_file, csv, "-o", rows), "'sat'")
    assert not rows.exists()


def test_sample_with_a_negative_count(capsys, tmp_path, fitted_file):
    target = tmp_path / "s.csv"
    assert_user_error(*run(capsys, "sample", fitted_file, "-n", -3, "-o", target), "-3")
    assert not target.exists()


@pytest.mark.parametrize("source, target, fragment", [
    ("asia.bif", "out.txt", "unknown output type '.txt'"),
    ("missing.bif", "out.yaml", "missing.bif"),
    ("iris.csv", "out.yaml", "unknown input type '.csv'"),
])
def test_convert_bad_paths(capsys, tmp_path, source, target, fragment):
    out = tmp_path / target
    assert_user_error(*run(capsys, "convert", EXAMPLES / source, "-o", out), fragment)
    assert not out.exists()


def test_convert_a_corrupt_bif(capsys, tmp_path):
    bif = tmp_path / "bad.bif"
    bif.write_text("network x {\n}\nvariable a {\n  type discrete [ 2 ] { yes, no };\n}\n"
                   "probability ( a ) {\n  table 0.5, 0.7;\n}\n")
    out = tmp_path / "bad.yaml"
    code, stdout, err = run(capsys, "convert", bif, "-o", out)
    assert code == 2 and "Traceback" not in err and "bad.bif" in err
    assert not out.exists()


def test_messages_name_cli_flags_on_the_command_line_and_arguments_in_python(capsys, tmp_path, student_model):
    """One wording per audience: the CLI says `--learner em`, the Python API `learner='em'`."""
    model, _, data = student_model
    bad = data.astype({"sat": object})
    bad.loc[3, "sat"] = None
    csv = tmp_path / "nan.csv"
    bad.to_csv(csv, index=False)
    with pytest.raises(pgm.DataError, match="use learner='em'"):
        pgm.fit(pgm.load(model), csv, learner="mle")
    code, out, err = run(capsys, "fit", model, csv, "-o", tmp_path / "o.yaml", "--learner", "mle")
    assert_user_error(code, out, err, "--learner mle needs complete data", "use --learner em")
    assert "learner=" not in err


def test_warnings_name_cli_flags(capsys, tmp_path):
    """Warnings printed by the CLI are worded for it too (EM stopped at --max-iter)."""
    rng = np.random.default_rng(0)
    csv = tmp_path / "g.csv"
    pd.DataFrame(np.r_[rng.normal(0, 1, (30, 2)), rng.normal(5, 1, (30, 2))], columns=["x[0]", "x[1]"]).to_csv(
        csv, index=False)
    model = Path(__file__).resolve().parents[1] / "models" / "gmm.yaml"
    with pytest.warns(pgm.ConvergenceWarning, match=r"increase max_iter or tol, or try other initialisations \(n_init\)"):
        pgm.fit(pgm.load(model), csv, max_iter=1)
    code, out, err = run(capsys, "fit", model, csv, "-o", tmp_path / "o.yaml", "--max-iter", "1")
    assert code == 0, err
    assert "pgm: warning: EM did not converge in 1 iterations" in err
    assert "increase --max-iter or --tol, or try other initialisations (--n-init)" in err, err
    assert "max_iter" not in err and "n_init" not in err
