"""Every notebook in notebooks/ runs top to bottom (nbclient, cwd = notebooks/) without a cell raising.

The kernel is ``python3`` from a kernelspec written for this test run, whose argv starts with
``sys.executable``: the notebooks run on the interpreter (and venv) running pytest, whatever other
``python3`` kernels are installed on the machine.  The notebooks are stored without outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIMEOUT = 600  # seconds per cell: generous, a loaded CI machine is slow


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A kernels/ directory holding one ``python3`` spec that runs this interpreter."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec = kernels / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (pgm tests)", "language": "python"}))
    return [str(kernels)]


def execute(nb, kernel_dirs: list[str], cwd: Path):
    """Run ``nb`` in a fresh kernel on this interpreter, in ``cwd``; a raising cell raises here."""
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=TIMEOUT,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 8, names
    for prefix in ("01_", "02_", "03_", "04_", "05_", "06_", "07_", "08_"):
        assert any(n.startswith(prefix) for n in names), f"no notebook {prefix}*.ipynb in {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: start with a markdown cell saying what it shows"


def test_kernel_runs_this_interpreter(kernel_dirs, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys\nprint(sys.executable)\nprint(os.getcwd())")])
    execute(nb, kernel_dirs, tmp_path)
    executable, cwd = nb.cells[0].outputs[0]["text"].split("\n")[:2]
    assert executable == sys.executable
    assert Path(cwd).resolve() == tmp_path.resolve()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_dirs):
    nb = nbformat.read(path, as_version=4)
    execute(nb, kernel_dirs, NOTEBOOK_DIR)  # nbclient raises CellExecutionError naming the cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
