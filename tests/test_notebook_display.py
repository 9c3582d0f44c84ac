"""Rich display of declarations and fitted models in Jupyter (pgm.notebook).

The HTML renderers are called directly; the registration done by ``import pgm`` is checked in
an IPython shell in a subprocess, and end to end in a real kernel through nbclient.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import pgm
from pgm.markov import FittedMarkovNet
from pgm.notebook import fitted_html, html, markov_html, register, spec_html, svg
from pgm.schema import parse_spec

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def _svg_of(text: str) -> str:
    match = re.search(r"<svg\b.*?</svg>", text, flags=re.S)
    assert match, "no inline <svg> in the HTML"
    return match.group(0)


def _group(svg_text: str, gid: str) -> str:
    """The SVG group with id ``gid`` (matplotlib writes an artist's gid as a <g id=...>)."""
    start = svg_text.index(f'<g id="{gid}">')
    return svg_text[start:svg_text.index("</g>", start)]


@pytest.fixture(scope="module")
def gmm_fitted():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = np.vstack([c + rng.normal(size=(60, 2)) for c in centres])
    return pgm.fit(pgm.load(MODELS / "gmm.yaml"), pd.DataFrame(x, columns=["x[0]", "x[1]"]), seed=0)


@pytest.fixture(scope="module")
def ising_true():
    spec = pgm.load(MODELS / "ising_3x3.yaml")
    params = {"horizontal": 0.4, "vertical": 0.2, **{n: [0.0, 0.1] for n in spec.nodes}}
    return FittedMarkovNet.from_spec(parse_spec({**spec.model_dump(by_alias=True, exclude_none=True),
                                                 "params": params}))


# --------------------------------------------------------------------------- declarations


def test_declaration_shows_drawing_beside_node_table():
    spec = pgm.load(MODELS / "asia.yaml")
    text = spec_html(spec)
    picture = _svg_of(text)
    assert "<?xml" not in text and "<!DOCTYPE" not in text and "<metadata>" not in text
    assert text.index("<svg") < text.index("<table>")            # the drawing, then the summary
    assert "display:flex" in text
    for name in spec.nodes:
        assert f'id="node:{name}"' in picture                      # every node drawn
        assert f"<td>{name}</td>" in text                           # and listed
    assert 'id="edge:either-&gt;xray"' in picture or 'id="edge:either->xray"' in picture
    for header in ("node", "kind", "states", "parents", "parameters"):
        assert f"<th>{header}</th>" in text
    assert "<td>lung, tub</td>" in text                             # the parents of either
    assert f"{spec.n_params()} free parameters" in text
    assert "directed graph, 8 nodes" in text


def test_latent_nodes_are_shaded_and_plates_are_boxes():
    spec = pgm.load(MODELS / "plate_mixture.yaml")
    text = spec_html(spec)
    picture = _svg_of(text)
    assert "#bdbdbd" in _group(picture, "node:z")                   # latent: grey
    assert "#bdbdbd" not in _group(picture, "node:x")               # observed: white
    assert 'id="plate:trial"' in picture and "N=5" in picture
    assert "discrete, latent" in text
    assert "plate trial (N=5)" in text


def test_gaussian_node_kind_and_states():
    text = spec_html(pgm.load(MODELS / "gmm_iris.yaml"))
    assert "gaussian (full cov)" in text and "ℝ^4" in text
    assert "<td>42</td>" in text                                    # 3 x (4 means + 10 covariances)


def test_undirected_declaration_lists_cliques_with_ties():
    spec = pgm.load(MODELS / "ising_3x3.yaml")
    text = spec_html(spec)
    assert 'id="edge:s00--s01"' in _svg_of(text)
    assert "<caption>cliques</caption>" in text
    assert "<th>neighbours</th>" in text
    assert "<td>horizontal</td>" in text and "shared (horizontal)" in text
    assert "undirected graph, 9 nodes, 12 cliques" in text


def test_svg_is_scaled_down_to_fit_beside_the_table():
    spec = pgm.load(MODELS / "alarm.yaml")
    tag = re.search(r"<svg\b[^>]*>", svg(spec)).group(0)
    width = float(re.search(r'width="([\d.]+)pt"', tag).group(1))
    height = float(re.search(r'height="([\d.]+)pt"', tag).group(1))
    assert width * 96 / 72 <= 481 and height * 96 / 72 <= 641
    assert "viewBox" in tag                                         # scaled, not cropped


def test_without_matplotlib_the_summary_shows_alone(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib -> ImportError
    spec = pgm.load(MODELS / "asia.yaml")
    assert svg(spec) is None
    text = spec_html(spec)
    assert "<svg" not in text
    assert "<td>either</td>" in text and "<table>" in text


def test_text_is_escaped():
    spec = parse_spec({"name": "a<b", "graph": "directed", "description": "<script>alert(1)</script>",
                       "nodes": {"x&y": {"states": ["<yes>", "no"]}}})
    text = spec_html(spec, drawing=False)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text and "x&amp;y" in text and "&lt;yes&gt;" in text and "a&lt;b" in text


# --------------------------------------------------------------------------- fitted models


def test_fitted_model_shows_fit_summary_and_gaussian_parameters(gmm_fitted):
    text = fitted_html(gmm_fitted)
    _svg_of(text)
    assert "(fitted)" in text
    assert "<td>learner</td><td>em</td>" in text
    assert f"<td>iterations</td><td>{gmm_fitted.info['n_iter']}</td>" in text
    assert f"{gmm_fitted.history[-1]:,.4f}" in text                # the final log-likelihood
    assert "<details>" in text and "cov[x[0]]" in text and "intercept" in text  # means and covariances
    assert html(gmm_fitted) == text or "<svg" in html(gmm_fitted)


def test_mle_fit_says_closed_form():
    asia = pgm.load(MODELS / "asia.yaml")
    rows = pd.DataFrame({n: ["yes", "no"] * 20 for n in asia.nodes})
    with pytest.warns(pgm.DataWarning):   # some parent configurations never occur in these rows
        fitted = pgm.fit(asia, rows)
    text = fitted_html(fitted, drawing=False)
    assert "<td>learner</td><td>mle</td>" in text and "closed form" in text
    assert "<b>either</b>" in text                                  # a CPT per node


def test_markov_net_shows_cliques_and_potentials(ising_true):
    data = ising_true.sample(300, seed=0)
    fitted = pgm.fit(ising_true.spec, data)
    text = markov_html(fitted)
    _svg_of(text)
    assert "<td>learner</td><td>lbfgs</td>" in text
    assert "final log-likelihood" in text and f"{fitted.history[-1]:,.4f}" in text
    assert "<caption>cliques</caption>" in text
    assert "horizontal (weight" in text                             # a tied ising weight
    assert html(fitted) is not None
    unfitted = markov_html(ising_true, drawing=False)               # built from params: no fit info
    assert "<td>learner</td><td>—</td>" in unfitted


def test_pseudo_likelihood_history_is_labelled(ising_true):
    fitted = pgm.fit(ising_true.spec, ising_true.sample(200, seed=1), learner="pseudo")
    assert "final pseudo-log-likelihood" in markov_html(fitted, drawing=False)


def test_html_of_anything_else_is_none():
    assert html(object()) is None and html("asia") is None


# --------------------------------------------------------------------------- registration


def test_register_installs_html_formatters():
    from IPython.core.formatters import HTMLFormatter

    formatter = HTMLFormatter()
    assert register(SimpleNamespace(display_formatter=SimpleNamespace(formatters={"text/html": formatter})))
    assert "<svg" in formatter(pgm.load(MODELS / "gmm.yaml"))


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_import_pgm_registers_in_a_running_shell_and_imports_lazily():
    code = f"""
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import pgm
assert "pgm.notebook" not in sys.modules and "matplotlib" not in sys.modules, "display must load lazily"
spec = pgm.load({str(MODELS / 'asia.yaml')!r})
data, _ = shell.display_formatter.format(spec)
assert "<svg" in data["text/html"], data.keys()
assert "pgm.notebook" in sys.modules
print("ok")
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_pgm_outside_ipython_touches_nothing():
    result = _run("import sys, pgm; print(sorted(m for m in ('IPython', 'pgm.notebook') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_notebook_cell_displays_svg(tmp_path):
    """End to end: a kernel on this interpreter shows a declaration and a fitted model as HTML with <svg."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    kernels = tmp_path / "kernels"
    (kernels / "python3").mkdir(parents=True)
    (kernels / "python3" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    cells = [
        "import sys, pgm\nprint(sys.executable)",
        f"model = pgm.load({str(MODELS / 'plate_mixture.yaml')!r})\nmodel",
        "import pandas as pd\n"
        "rows = pd.DataFrame({f'x[{i}]': [0, 1, 1, 0, 1, 1] * 5 for i in range(5)})\n"
        "pgm.fit(model, rows, seed=0)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    NotebookClient(nb, km=km, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable
    for cell in nb.cells[1:]:
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert results, cell.outputs
        shown = results[0]["data"]
        assert "text/html" in shown and "<svg" in shown["text/html"]
        assert "text/plain" in shown                                # the plain repr stays
    assert "(fitted)" in nb.cells[2].outputs[-1]["data"]["text/html"]
