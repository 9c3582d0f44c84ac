"""``pgm validate`` and ``pgm show``: one line per good file, every error for bad ones, exit 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgm.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "models").glob("*.yaml"))
BAD_MODELS = sorted((ROOT / "tests" / "bad_models").glob("*.yaml"))


def pgm_executable() -> str:
    """The installed ``pgm`` console script of the interpreter running the tests."""
    here = Path(sys.executable).parent / ("pgm.exe" if os.name == "nt" else "pgm")
    found = str(here) if here.exists() else shutil.which("pgm")
    assert found, "the `pgm` console script is not installed (pip install -e .)"
    return found


def test_validate_good_files_prints_one_line_each(capsys):
    assert main(["validate", *map(str, MODELS)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(MODELS)
    for path, line in zip(MODELS, lines):
        assert line.startswith(f"{path}: ok: "), line
        assert "free parameters" in line
    assert err == ""


def test_validate_summary_line_content(capsys):
    path = ROOT / "models" / "plate_mixture.yaml"
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: ok: plate-mixture: directed, 2 nodes, 1 latent, 1 plate, 3 free parameters\n"


def test_validate_bad_files_prints_every_error_and_exits_2(capsys):
    good = ROOT / "models" / "sprinkler.yaml"
    bad = [ROOT / "tests" / "bad_models" / name
           for name in ("multiple_errors.yaml", "cycle.yaml", "yaml_syntax.yaml")]
    assert main(["validate", str(bad[0]), str(good), str(bad[1]), str(bad[2])]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good}: ok: sprinkler: directed, 4 nodes, 9 free parameters"]
    err_lines = err.splitlines()
    assert len(err_lines) == 4 + 1 + 1
    assert sum(line.startswith(str(bad[0])) for line in err_lines) == 4
    assert "directed cycle a -> b -> c -> a" in err
    assert "YAML syntax error" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("path", BAD_MODELS, ids=lambda p: p.name)
def test_validate_each_bad_file_exits_2(path, capsys):
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(str(path))
    assert "Traceback" not in err


def test_validate_malformed_utf8_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: x\nnodes:\n  a: {states: [\xff\xfe]}\n")
    missing = tmp_path / "missing.yaml"
    assert main(["validate", str(bad), str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: the file is not valid UTF-8" in err
    assert f"{missing}: no such file" in err


def test_usage_error_exits_2(capsys):
    assert main([]) == 2
    assert main(["validate"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_show_prints_the_summary(capsys):
    assert main(["show", str(ROOT / "models" / "plate_mixture.yaml")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "plate-mixture: directed, 2 nodes, 1 latent, 1 plate, 3 free parameters"
    assert "  trial (size 5): x" in lines
    assert any(line.split() == ["z", "discrete", "2", "[latent]"] for line in lines)
    assert any(line.split() == ["x", "discrete", "[0,", "1]", "|", "z", "[plate", "trial]"] for line in lines)


def test_show_says_which_latent_gaussians_are_fixed_at_standard_normal(capsys):
    # a standard latent gaussian has no covariance to fit: show says N(0, I), not "full covariance"
    assert main(["show", str(ROOT / "models" / "fa_wine.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  z  gaussian dim 2, standard N(0, I)  [latent]" in lines
    assert "  x  gaussian dim 13, diag covariance | z" in lines
    # a linear dynamical system: the transition is fitted, the first step is standard by default
    assert main(["show", str(ROOT / "models" / "lds_tracking.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  s  gaussian dim 2, full covariance (first step: standard N(0, I)) | s[t-1]  [latent]" in lines


def test_show_lists_nodes_in_topological_order_and_cliques(capsys):
    assert main(["show", str(ROOT / "models" / "student.yaml")]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.split("nodes:\n")[1].splitlines()]
    assert names.index("grade") > names.index("difficulty")
    assert names.index("letter") > names.index("grade")
    assert main(["show", str(ROOT / "models" / "ising_3x3.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ising-3x3: undirected, 9 nodes, 12 cliques" in out
    assert "  (s00, s01): ising  [tie horizontal]" in out


def test_show_bad_file_exits_2(capsys):
    assert main(["show", str(ROOT / "tests" / "bad_models" / "unknown_parent.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "unknown node 'lnug'; did you mean 'lung'?" in err


def test_validate_through_the_installed_command():
    exe = pgm_executable()
    good = [str(p) for p in MODELS]
    run = subprocess.run([exe, "validate", *good], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == len(good)

    bad = [str(ROOT / "tests" / "bad_models" / n) for n in ("multiple_errors.yaml", "python_tag.yaml",
                                                            "billion_laughs.yaml")]
    run = subprocess.run([exe, "validate", *bad], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 4 + 1 + 1
    assert "Traceback" not in run.stderr

    gmm = str(ROOT / "models" / "gmm.yaml")
    run = subprocess.run([exe, "show", gmm], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("gmm: directed")
