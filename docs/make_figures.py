"""Render one figure per notebook into docs/figures/, by running the notebooks.

    python docs/make_figures.py                 # every notebook in notebooks/
    python docs/make_figures.py 02 04           # the notebooks whose names start so

Each notebook is executed top to bottom with nbclient (cwd = notebooks/, a kernel on this
interpreter); the PNG output of the cell tagged ``docs-figure`` is written to
``docs/figures/<notebook name>.png``.  The notebooks themselves stay without outputs.
Run time per notebook is printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "docs" / "figures"
TAG = "docs-figure"


def kernel_manager(directory: str):
    """A KernelManager whose ``python3`` kernel runs on this interpreter (sys.executable)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = Path(directory) / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (pgm)", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(Path(directory) / "kernels")])
    return KernelManager(kernel_name="python3", kernel_spec_manager=ksm)


def run(path: Path, directory: str):
    """Execute the notebook at ``path``; return the executed notebook and the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=kernel_manager(directory), timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def figure(nb) -> bytes | None:
    for cell in nb.cells:
        if TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    return base64.b64decode(png)
    return None


def main(prefixes: list[str]) -> int:
    os.environ.pop("MPLBACKEND", None)  # the kernel must use the inline backend to give PNGs
    FIGURES.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not prefixes or p.name.startswith(tuple(prefixes)))
    status = 0
    with tempfile.TemporaryDirectory() as directory:
        for path in paths:
            nb, seconds = run(path, directory)
            png = figure(nb)
            if png is None:
                print(f"{path.name}: no PNG output in a cell tagged {TAG!r}", file=sys.stderr)
                status = 1
                continue
            out = FIGURES / f"{path.stem}.png"
            out.write_bytes(png)
            print(f"{path.name}: ran in {seconds:.1f} s -> {out.relative_to(ROOT)} ({len(png) // 1024} KB)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
