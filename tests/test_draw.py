"""pgm.draw: plate-notation drawings of a declaration (PNG, SVG, PDF)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import pgm.draw
import pgm.io.atomic
from pgm.cli import main
from pgm.errors import PGMError
from pgm.schema import parse_spec

needs_mpl = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"

STUDENT = {
    "name": "student",
    "plates": {"trial": {"size": 5}},
    "nodes": {
        "skill": {"states": 3, "latent": True},
        "difficulty": {"states": ["easy", "hard"]},
        "grade": {"states": ["low", "high"], "parents": ["skill"]},
        "correct": {"states": ["no", "yes"], "parents": ["skill", "difficulty"], "plate": "trial"},
        "time": {"type": "gaussian", "parents": ["correct"], "plate": "trial"},
    },
}

STUDENT_YAML = """\
name: student
plates:
  trial: {size: 5}
nodes:
  skill: {states: 3, latent: true}
  difficulty: {states: [easy, hard]}
  grade: {states: [low, high], parents: [skill]}
  correct: {states: [no, yes], parents: [skill, difficulty], plate: trial}
  time: {type: gaussian, parents: [correct], plate: trial}
"""

# the structure of the ALARM network (Beinlich et al. 1989): 37 nodes, 46 edges
ALARM = """
HISTORY:LVFAILURE CVP:LVEDVOLUME PCWP:LVEDVOLUME HYPOVOLEMIA: LVEDVOLUME:HYPOVOLEMIA,LVFAILURE
LVFAILURE: STROKEVOLUME:HYPOVOLEMIA,LVFAILURE ERRLOWOUTPUT: HRBP:ERRLOWOUTPUT,HR HREKG:ERRCAUTER,HR
ERRCAUTER: HRSAT:ERRCAUTER,HR INSUFFANESTH: ANAPHYLAXIS: TPR:ANAPHYLAXIS KINKEDTUBE: FIO2:
PVSAT:FIO2,VENTALV SAO2:SHUNT,PVSAT PAP:PULMEMBOLUS PULMEMBOLUS: SHUNT:PULMEMBOLUS,INTUBATION
INTUBATION: PRESS:KINKEDTUBE,INTUBATION,VENTTUBE DISCONNECT: MINVOLSET: VENTMACH:MINVOLSET
VENTTUBE:DISCONNECT,VENTMACH VENTLUNG:KINKEDTUBE,INTUBATION,VENTTUBE VENTALV:INTUBATION,VENTLUNG
ARTCO2:VENTALV EXPCO2:ARTCO2,VENTLUNG MINVOL:INTUBATION,VENTLUNG CATECHOL:INSUFFANESTH,SAO2,TPR,ARTCO2
HR:CATECHOL CO:HR,STROKEVOLUME BP:CO,TPR
"""


def student():
    return parse_spec(STUDENT)


def grid(n=3, name="grid", label=lambda r, c: f"x_{r}_{c}"):
    nodes = {label(r, c): {"states": 2} for r in range(n) for c in range(n)}
    cliques = []
    for r in range(n):
        for c in range(n):
            if c + 1 < n:
                cliques.append({"nodes": [label(r, c), label(r, c + 1)], "features": "ising"})
            if r + 1 < n:
                cliques.append({"nodes": [label(r, c), label(r + 1, c)], "features": "ising"})
    return parse_spec({"name": name, "graph": "undirected", "nodes": nodes, "cliques": cliques})


def alarm():
    nodes = {}
    for item in ALARM.split():
        name, _, parents = item.partition(":")
        nodes[name] = {"states": 3, "parents": [p for p in parents.split(",") if p]}
    return parse_spec({"name": "alarm", "nodes": nodes})


def artists(fig, kind):
    """{name: artist} for the artists whose gid is ``kind:name``."""
    out = {}
    for ax in fig.axes:
        for a in ax.get_children():
            gid = a.get_gid() or ""
            if gid.startswith(kind + ":"):
                out[gid[len(kind) + 1:]] = a
    return out


def plate_box(fig, name):
    box = artists(fig, "plate")[name]
    return box.get_x(), box.get_y(), box.get_x() + box.get_width(), box.get_y() + box.get_height()


def inside(point, box):
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def points_on(patch, n=25):
    """Points along the drawn outline of a patch (its curves sampled, not their control points)."""
    import numpy as np

    t = np.linspace(0, 1, n)
    return [tuple(p) for bez, _ in patch.get_path().iter_bezier() for p in bez(t)]


def svg_texts(path):
    root = ET.parse(path).getroot()
    return {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}


# ------------------------------------------------------------------ files


@needs_mpl
@pytest.mark.parametrize("make", [student, grid, alarm], ids=["student", "grid", "alarm"])
def test_png_and_svg_are_valid(tmp_path, make):
    spec = make()
    png = pgm.draw.draw_to_file(spec, tmp_path / "g.png")
    assert png == tmp_path / "g.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    svg = tmp_path / "g.svg"
    pgm.draw.draw_to_file(spec, svg)
    texts = svg_texts(svg)  # parses as XML, and keeps text as text
    assert set(spec.nodes) <= texts
    assert spec.name in texts
    assert sorted(os.listdir(tmp_path)) == ["g.png", "g.svg"]  # no temporary file left behind


@needs_mpl
def test_pdf(tmp_path):
    out = pgm.draw.draw_to_file(student(), str(tmp_path / "g.PDF"))
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-32:]


@needs_mpl
def test_svg_labels_plate_with_size(tmp_path):
    pgm.draw.draw_to_file(student(), tmp_path / "g.svg")
    assert {"trial", "N=5"} <= svg_texts(tmp_path / "g.svg")  # one text per line
    root = ET.parse(tmp_path / "g.svg").getroot()
    ids = {g.get("id") for g in root.iter(f"{SVG}g")}
    assert {"plate:trial", "node:skill", "edge:skill->correct"} <= ids


@pytest.mark.parametrize("name", ["g.jpg", "g", "g.png.bak", "graph.eps"])
def test_bad_suffix(tmp_path, name):
    with pytest.raises(PGMError) as err:
        pgm.draw.draw_to_file(student(), tmp_path / name)
    msg = str(err.value)
    assert ".png" in msg and ".svg" in msg and ".pdf" in msg
    suffix = Path(name).suffix
    assert (suffix in msg) if suffix else ("no suffix" in msg)
    assert not list(tmp_path.iterdir())


@needs_mpl
def test_missing_directory(tmp_path):
    with pytest.raises(PGMError, match="does not exist"):
        pgm.draw.draw_to_file(student(), tmp_path / "nope" / "g.png")


@needs_mpl
def test_unwritable_directory_is_a_pgm_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pgm.io.atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(PGMError, match=r"g\.png: cannot write here \(Permission denied\)"):
        pgm.draw.draw_to_file(student(), tmp_path / "g.png")


@needs_mpl
def test_cli_reports_write_errors_without_traceback(tmp_path, capsys):
    model = tmp_path / "student.yaml"
    model.write_text(STUDENT_YAML)
    assert main(["show", str(model), "-o", str(tmp_path / "missing" / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


@needs_mpl
def test_write_is_atomic(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "g.png"
    target.write_bytes(b"previous drawing")

    def half_written(self, fname, **kwargs):
        fname.write(b"\x89PNG half")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        pgm.draw.draw_to_file(student(), target)
    assert target.read_bytes() == b"previous drawing"
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]


@needs_mpl
def test_new_file_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = pgm.draw.draw_to_file(student(), tmp_path / "g.png")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------ the figure


@needs_mpl
def test_plate_box_encloses_its_nodes_only():
    fig = pgm.draw.draw(student())
    nodes = artists(fig, "node")
    assert set(nodes) == set(STUDENT["nodes"])
    box = plate_box(fig, "trial")
    for name, circle in nodes.items():
        in_plate = STUDENT["nodes"][name].get("plate") == "trial"
        x, y = circle.center
        r = circle.radius
        corners = [(x - r, y - r), (x + r, y + r), (x - r, y + r), (x + r, y - r)]
        if in_plate:
            assert all(inside(c, box) for c in corners), name
        else:  # not even touching it
            assert not any(inside(c, box) for c in corners), name


@needs_mpl
def test_shading_and_double_circle():
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Circle

    fig = pgm.draw.draw(student())
    nodes = artists(fig, "node")
    assert to_rgba(nodes["skill"].get_facecolor()) != to_rgba("white")  # latent: shaded
    for name in ("difficulty", "grade", "correct", "time"):
        assert nodes[name].get_facecolor() == to_rgba("white"), name
    rings = [p for p in fig.axes[0].patches if isinstance(p, Circle)]
    centres = [tuple(p.center) for p in rings]
    assert centres.count(tuple(nodes["time"].center)) == 2  # gaussian: double circle
    assert centres.count(tuple(nodes["correct"].center)) == 1


@needs_mpl
def test_directed_layers_and_arrows():
    spec = student()
    fig = pgm.draw.draw(spec)
    nodes = artists(fig, "node")
    edges = artists(fig, "edge")
    assert set(edges) == {f"{a}->{b}" for a, b in spec.graph.edges}
    for a, b in spec.graph.edges:
        assert nodes[a].center[1] > nodes[b].center[1]  # parents above children
        arrow = edges[f"{a}->{b}"]
        assert arrow.get_arrowstyle().__class__.__name__ == "CurveFilledB"
        # the arrow (head included) runs from border to border
        drawn = points_on(arrow)
        for end in (a, b):
            gap = min(math.dist(p, nodes[end].center) for p in drawn)
            assert gap == pytest.approx(nodes[end].radius, abs=0.03), (a, b, end)


@needs_mpl
def test_undirected_grid_is_a_grid_of_plain_lines():
    spec = grid(3)
    fig = pgm.draw.draw(spec)
    centres = {n: c.center for n, c in artists(fig, "node").items()}
    xs = sorted({round(x, 6) for x, _ in centres.values()})
    ys = sorted({round(y, 6) for _, y in centres.values()})
    assert len(xs) == 3 and len(ys) == 3
    assert centres["x_0_0"][0] < centres["x_0_1"][0] and centres["x_0_0"][1] > centres["x_1_0"][1]
    edges = artists(fig, "edge")
    assert len(edges) == 12 and all(k.count("--") == 1 for k in edges)
    assert all(e.get_arrowstyle().__class__.__name__ == "Curve" for e in edges.values())


@needs_mpl
def test_grid_found_by_structure_whatever_the_names():
    spec = grid(4, label=lambda r, c: f"pixel{r * 4 + c}")
    centres = [c.center for c in artists(pgm.draw.draw(spec), "node").values()]
    assert len({round(x, 6) for x, _ in centres}) == 4
    assert len({round(y, 6) for _, y in centres}) == 4


@needs_mpl
def test_undirected_general_graph():
    spec = parse_spec({
        "name": "loopy", "graph": "undirected",
        "nodes": {k: {"states": 2} for k in "abcdefg"},
        "cliques": [{"nodes": ["a", "b", "c"]}, {"nodes": ["c", "d"]}, {"nodes": ["d", "e"]},
                    {"nodes": ["e", "f", "a"]}, {"nodes": ["g", "a"]}],
    })
    fig = pgm.draw.draw(spec)
    assert_no_overlap(fig)
    assert len(artists(fig, "edge")) == spec.graph.number_of_edges()


def assert_no_overlap(fig):
    circles = list(artists(fig, "node").values())
    for i, a in enumerate(circles):
        for b in circles[i + 1:]:
            assert math.dist(a.center, b.center) >= a.radius + b.radius, (a.get_gid(), b.get_gid())


@needs_mpl
def test_alarm_stays_legible():
    spec = alarm()
    assert len(spec.nodes) == 37 and spec.graph.number_of_edges() == 46
    fig = pgm.draw.draw(spec)
    assert_no_overlap(fig)
    w, h = fig.get_size_inches()
    assert 6 < w < 30 and 6 < h < 30
    labels = {t.get_text(): t for t in fig.axes[0].texts}
    assert set(spec.nodes) <= set(labels)
    assert min(labels[n].get_fontsize() for n in spec.nodes) >= 6
    # every label fits inside its circle once rendered
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    nodes = artists(fig, "node")
    for name in spec.nodes:
        box = labels[name].get_window_extent(renderer)
        circle = nodes[name].get_window_extent(renderer)
        assert box.x0 >= circle.x0 and box.x1 <= circle.x1, name


@needs_mpl
def test_long_edges_go_around_nodes():
    fig = pgm.draw.draw(alarm())
    nodes = artists(fig, "node")
    for key, arrow in artists(fig, "edge").items():
        a, b = key.split("->")
        for x, y in points_on(arrow):
            for name, c in nodes.items():
                if name not in (a, b):
                    assert math.dist((x, y), c.center) > c.radius, (key, name)


@needs_mpl
def test_size_grows_with_the_graph():
    small = pgm.draw.draw(student()).get_size_inches()
    big = pgm.draw.draw(alarm()).get_size_inches()
    assert big[0] * big[1] > 3 * small[0] * small[1]


@needs_mpl
def test_two_plates_and_unplated_neighbours():
    spec = parse_spec({
        "name": "two plates", "plates": {"doc": {"size": 20}, "rater": {"size": 3}},
        "nodes": {
            "alpha": {"states": 2},
            "topic": {"states": 4, "latent": True, "parents": ["alpha"], "plate": "doc"},
            "word": {"states": 10, "parents": ["topic"], "plate": "doc"},
            "length": {"type": "gaussian", "parents": ["topic", "word"], "plate": "doc"},
            "flag": {"states": 2, "parents": ["topic"], "plate": "doc"},
            "mood": {"states": 3, "latent": True},
            "score": {"states": 5, "parents": ["mood", "alpha"], "plate": "rater"},
            "bias": {"states": 2, "plate": "rater"},
            "note": {"states": 2, "parents": ["score", "bias"], "plate": "rater"},
            "other": {"states": 2, "parents": ["alpha"]},
            "deep": {"states": 2, "parents": ["other", "alpha"]},
            "deeper": {"states": 2, "parents": ["deep", "mood"]},
        },
    })
    fig = pgm.draw.draw(spec)
    assert_no_overlap(fig)
    nodes = artists(fig, "node")
    boxes = {p: plate_box(fig, p) for p in spec.plates}
    assert boxes["doc"][2] < boxes["rater"][0] or boxes["rater"][2] < boxes["doc"][0]  # side by side
    for name, node in spec.nodes.items():
        for p, box in boxes.items():
            assert inside(nodes[name].center, box) == (node.plate == p), (name, p)


@needs_mpl
def test_draw_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert pgm.draw.draw(student(), ax=ax) is fig
    assert ax.get_title() == "student"
    assert len(artists(fig, "node")) == 5


@needs_mpl
def test_odd_names_are_drawn_verbatim(tmp_path):
    spec = parse_spec({"name": "cost $ <&> 50%", "nodes": {
        "$x": {"states": 2}, "a_b^c": {"states": 2, "parents": ["$x"]}, "x y": {"states": 2, "parents": ["$x"]}}})
    out = pgm.draw.draw_to_file(spec, tmp_path / "g.svg")
    assert {"$x", "a_b^c", "x y", "cost $ <&> 50%"} <= svg_texts(out)
    pgm.draw.draw_to_file(spec, tmp_path / "g.png")


@needs_mpl
def test_single_node(tmp_path):
    spec = parse_spec({"name": "one", "nodes": {"x": {"states": 2}}})
    assert pgm.draw.draw_to_file(spec, tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC


@needs_mpl
def test_no_global_pyplot_state():
    pgm.draw.draw(student())
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


# ------------------------------------------------------------------ matplotlib is optional


def test_import_does_not_load_matplotlib():
    code = "import sys, pgm.draw, pgm.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("call", ["draw", "draw_to_file"])
def test_missing_matplotlib(tmp_path, monkeypatch, call):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(PGMError) as err:
        if call == "draw":
            pgm.draw.draw(student())
        else:
            pgm.draw.draw_to_file(student(), tmp_path / "g.png")
    assert str(err.value) == "drawing needs matplotlib: pip install 'pgm-learn[draw]'"
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ the command line


@needs_mpl
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_cli_show_output(tmp_path, capsys, suffix):
    model = tmp_path / "student.yaml"
    model.write_text(STUDENT_YAML)
    out = tmp_path / f"graph{suffix}"
    assert main(["show", str(model), "-o", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0
    assert str(out) in capsys.readouterr().out


def test_cli_show_bad_suffix(tmp_path, capsys):
    model = tmp_path / "student.yaml"
    model.write_text(STUDENT_YAML)
    assert main(["show", str(model), "-o", str(tmp_path / "graph.gif")]) == 2
    err = capsys.readouterr().err
    assert "'.gif'" in err and ".png" in err and "Traceback" not in err


# ------------------------------------------------------------------ the example models

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.yaml"))


@needs_mpl
@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_example_models_draw_cleanly(path):
    from pgm.schema import load_spec

    spec = load_spec(path)
    fig = pgm.draw.draw(spec)
    assert_no_overlap(fig)
    nodes = artists(fig, "node")
    edges = artists(fig, "edge")
    assert len(edges) == spec.graph.number_of_edges()
    if spec.directed:  # layered drawings route every edge around the nodes it passes
        for key, arrow in edges.items():
            a, b = key.split("->")
            for point in points_on(arrow, n=10):
                for name, c in nodes.items():
                    if name not in (a, b):
                        assert math.dist(point, c.center) > c.radius, (key, name)
    for p in spec.plates:
        box = plate_box(fig, p)
        for name, node in spec.nodes.items():
            assert inside(nodes[name].center, box) == (node.plate == p), (name, p)
