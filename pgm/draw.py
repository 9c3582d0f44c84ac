"""Draw a declaration in the plate notation of the textbooks (Bishop; Koller & Friedman).

>>> import pgm, pgm.draw
>>> spec = pgm.load("models/asia.yaml")              # doctest: +SKIP
>>> pgm.draw.draw_to_file(spec, "asia.svg")          # doctest: +SKIP

Conventions
-----------
* Every node is a circle labelled with its name.
* **Latent** nodes are shaded grey; observed nodes are white.
* **Gaussian** (real-valued) nodes get a *double circle* (an inner ring inside
  the border); discrete nodes a single circle.
* Directed edges are arrows that stop at the border of the child's circle;
  the edges of an undirected graph (two nodes sharing a clique) are plain lines.
  An edge that would run through another node is bent around it.
* An inner plate (``plate: name``) is a rounded rectangle around its nodes,
  labelled in its lower-right corner with the plate name and ``N=size``.
  The outer data plate (the rows of the data set, around every observed node)
  is *not* drawn: every node is repeated over the rows, so the box would say
  nothing.

Layout
------
A directed graph is drawn top to bottom in layers, one per topological
generation (``networkx.topological_generations``), except that a root is moved
down to sit just above its first child.  An edge that skips layers gets a
waypoint in each layer it crosses, so it curves around the nodes instead of
through them.  Within a layer the nodes are ordered to reduce edge crossings
(barycentre sweeps), and the nodes of one plate are kept in one band of
columns, so that its box encloses them and nothing else.

An undirected graph whose nodes are named like a grid (``x_2_3``, ``x[2,3]``),
or which *is* a rows x columns grid whatever its names, is drawn on that grid;
any other is laid out with Kamada-Kawai (falling back to a seeded spring
layout), turned so that a grid-like drawing runs along the axes.

The figure is sized from the graph (1 data unit is 1 inch), so fonts keep
their size and a 40-node network stays legible: every circle has one radius,
grown (up to a limit) for the longest name, and a name still too long for it
is set smaller (down to 6.5 pt).  matplotlib is an optional
extra: it is imported inside :func:`draw` and :func:`draw_to_file` only, and
only its object-oriented API is used (``Figure`` + the Agg canvas; never
``pyplot``, so no global figure state and no GUI backend are touched).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from pgm.errors import PGMError
from pgm.io.atomic import check_output_target, write_atomic

if TYPE_CHECKING:
    from pgm.schema import ModelSpec

#: Output formats of :func:`draw_to_file`, by file suffix.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

_MISSING = "drawing needs matplotlib: pip install 'pgm-learn[draw]'"

# Geometry, in inches (the drawing's data unit is one inch).
_FONT = 10.0            # label font size (points) when the label fits
_MIN_FONT = 6.5         # labels shrink down to this before spilling out of the circle
_MIN_R, _MAX_R = 0.24, 0.45
_HGAP = 0.35            # free space between two circles side by side
_VGAP = 0.62            # free space between two layers (room for arrows and plate labels)
_PLATE_PAD = 0.10       # plate border to circle
_PLATE_MARGIN = 0.12    # plate band to the nearest node outside the plate
_DUMMY_HALF = 0.08      # half the room a long edge takes where it passes a layer
_PLATE_FONT = 8.0
_MARGIN = 0.25
_TITLE_H = 0.45
_LATENT = "#bdbdbd"
_INK = "#1a1a1a"
_MAX_PIXELS = 9000      # a PNG never exceeds this many pixels on its longer side
_MOVETO, _LINETO, _CURVE3, _CURVE4 = 1, 2, 3, 4  # matplotlib.path.Path codes


def _matplotlib() -> Any:
    """The matplotlib module, or a PGMError saying how to install it."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise PGMError(_MISSING) from None
    return matplotlib


# --------------------------------------------------------------------------- layout


@dataclass
class _Layout:
    pos: dict[str, tuple[float, float]]
    radius: float
    fonts: dict[str, float]
    plates: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)  # x0, y0, x1, y1
    rad: dict[tuple[str, str], float] = field(default_factory=dict)                     # edge curvature
    via: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)  # edge waypoints
    edges: dict[tuple[str, str], tuple[list[tuple[float, float]], list[int]]] = field(default_factory=dict)

    def bounds(self) -> tuple[float, float, float, float]:
        xs = [x for x, _ in self.pos.values()]
        ys = [y for _, y in self.pos.values()]
        x0, x1 = min(xs) - self.radius, max(xs) + self.radius
        y0, y1 = min(ys) - self.radius, max(ys) + self.radius
        for px, py in (p for verts, _ in self.edges.values() for p in verts):  # control points hold the curve
            x0, y0, x1, y1 = min(x0, px - 0.05), min(y0, py), max(x1, px + 0.05), max(y1, py)
        for px0, py0, px1, py1 in self.plates.values():
            x0, y0, x1, y1 = min(x0, px0), min(y0, py0), max(x1, px1), max(y1, py1)
        return x0, y0, x1, y1


def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height of a one-line label, in inches (the default font, no mathtext)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    width, height, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return float(width) / 72.0, max(float(height), 0.75 * size) / 72.0


def _sizes(names: list[str]) -> tuple[float, dict[str, float]]:
    """One circle radius for the whole figure and a font size per label that fits in it."""
    def need(name: str, size: float) -> float:  # radius of the circle holding the label
        w, h = _text_size(name, size)
        return 1.12 * math.hypot(w, h) / 2 + 0.03  # rendered text runs ~5% wider than its path

    radius = min(_MAX_R, max([_MIN_R] + [need(n, _FONT) for n in names]))
    fonts = {}
    for name in names:
        size = _FONT
        while size > _MIN_FONT and need(name, size) > radius:
            size -= 0.5
        fonts[name] = size
    return radius, fonts


def _crossings(aug: Any, x: dict[Any, float], layer: dict[Any, int]) -> int:
    """Number of pairs of edges that cross; every edge of ``aug`` joins adjacent layers."""
    by_layer: dict[int, list[tuple[float, float]]] = {}
    for a, b in aug.edges:
        by_layer.setdefault(layer[a], []).append((x[a], x[b]))
    count = 0
    for segs in by_layer.values():
        if len(segs) > 400:  # quadratic; a huge layer keeps its first ordering
            return 0
        for i, (xa, xb) in enumerate(segs):
            for xc, xd in segs[i + 1:]:
                if (xa - xc) * (xb - xd) < 0:
                    count += 1
    return count


def _isotonic(values: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] >= blocks[-1][0] * blocks[-2][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out += [s / c] * int(c)
    return out


def _pack(want: list[float], half: list[float], lo: float = -math.inf,
          hi: float = math.inf) -> tuple[list[float], float]:
    """Positions as close as possible to ``want`` (least squares) for items kept in this order,
    ``half[i] + half[i+1]`` apart, all within ``[lo, hi]``; and their cost."""
    if not want:
        return [], 0.0
    offset = [0.0]
    for a, b in zip(half, half[1:]):
        offset.append(offset[-1] + a + b)
    # with y = x - offset the spacing constraints become y non-decreasing, the bounds a clip
    y = _isotonic([w - o for w, o in zip(want, offset)])
    low, high = lo + half[0], hi - half[-1] - offset[-1]
    y = [max(low, min(high, v)) if low <= high else low for v in y]
    x = [v + o for v, o in zip(y, offset)]
    return x, sum((a - b) ** 2 for a, b in zip(x, want))


def _layered(spec: Any, graph: Any, radius: float) -> tuple[
        dict[Any, float], dict[Any, int], dict[tuple[str, str], list[Any]], dict[str, tuple[float, float, int, int]]]:
    """A layered (Sugiyama-style) drawing of a DAG, horizontal positions in inches.

    Returns the x and layer of every node and of the *dummy* nodes that carry an
    edge across the layers it skips (so that no edge runs through a node), the
    dummies of every edge in order, and the band of every plate (x range and
    first and last layer): its nodes keep to it, nothing else enters it, so the
    plate's box holds them and nothing else.
    """
    layer: dict[Any, int] = {n: i for i, g in enumerate(nx.topological_generations(graph)) for n in g}
    # a root sits just above its first child rather than in the top row: no edge from
    # a root runs past layers it has no business in (ERRLOWOUTPUT -> HRBP in alarm)
    for n in graph:
        if graph.in_degree(n) == 0 and graph.out_degree(n) > 0:
            layer[n] = min(layer[c] for c in graph.successors(n)) - 1
    plate_of: dict[Any, str | None] = {n: graph.nodes[n].get("plate") for n in graph}
    order: dict[Any, int] = {n: i for i, n in enumerate(spec.nodes)}
    half: dict[Any, float] = {n: radius + _HGAP / 2 for n in graph}

    aug = nx.DiGraph()
    aug.add_nodes_from(spec.nodes)
    chains: dict[tuple[str, str], list[Any]] = {}
    for a, b in graph.edges:
        prev, chain = a, []
        for g_i in range(layer[a] + 1, layer[b]):
            d = ("edge", a, b, g_i)
            layer[d] = g_i
            plate_of[d] = plate_of[b] if plate_of[a] == plate_of[b] else None
            order[d] = len(order)
            half[d] = _DUMMY_HALF if plate_of[d] is None else _DUMMY_HALF + 0.1  # clear of the plate's border
            aug.add_edge(prev, d)
            chain.append(d)
            prev = d
        aug.add_edge(prev, b)
        chains[(a, b)] = chain
    gens: list[list[Any]] = [[] for _ in range(max(layer.values()) + 1)]
    for n in sorted(aug, key=order.__getitem__):
        gens[layer[n]].append(n)

    # every plate gets a band wide enough for its widest layer (and its label), side by side
    span: dict[str, list[int]] = {}
    need: dict[str, float] = {}
    for g_i, g in enumerate(gens):
        for p in {plate_of[n] for n in g if plate_of[n]}:
            span.setdefault(p, [g_i, g_i])[1] = g_i
            label = max(_text_size(p, _PLATE_FONT)[0], _text_size(f"N={spec.plates[p].size}", _PLATE_FONT)[0])
            need[p] = max(need.get(p, 0.0), label + 0.12 + _HGAP - 2 * _PLATE_PAD,
                          sum(2 * half[n] for n in g if plate_of[n] == p))
    band: dict[str, tuple[float, float]] = {}
    edge = 0.0
    for p in sorted(span, key=lambda p: (span[p][0], p)):
        band[p] = (edge, edge + need[p])
        edge += need[p] + 2 * _PLATE_MARGIN
    centre = (edge - 2 * _PLATE_MARGIN) / 2 if band else 0.0

    x: dict[Any, float] = {}

    def place(g_i: int, near: dict[Any, list[float]]) -> None:
        """Place layer ``g_i``, each node near the mean of ``near[n]`` (its placed neighbours)."""
        nodes = gens[g_i]
        want = {n: sum(near[n]) / len(near[n]) if near.get(n) else x.get(n, centre) for n in nodes}
        for p in {plate_of[n] for n in nodes if plate_of[n]}:
            members = sorted((n for n in nodes if plate_of[n] == p), key=lambda n: (want[n], order[n]))
            xs, _ = _pack([want[n] for n in members], [half[n] for n in members], *band[p])
            x.update(zip(members, xs))
        free = sorted((n for n in nodes if not plate_of[n]), key=lambda n: (want[n], order[n]))
        w = [want[n] for n in free]
        h = [half[n] for n in free]
        # the row below a plate stays clear too: the plate's label hangs into the gap above it
        active = [band[p] for p, (a, b) in span.items() if a <= g_i <= b + 1]
        if not active:
            xs, _ = _pack(w, h)
        else:  # the first s nodes go left of the plates, the others right of them
            blo = min(a for a, _ in active) - _PLATE_MARGIN
            bhi = max(b for _, b in active) + _PLATE_MARGIN
            # an edge from a neighbour on the far side would cut through a plate it has no part in
            left_of = [sum(v > bhi for v in near.get(n, ())) for n in free]
            right_of = [sum(v < blo for v in near.get(n, ())) for n in free]
            toll = (2 * radius + _HGAP) ** 2
            best = None
            for s in range(len(free) + 1):
                left, c1 = _pack(w[:s], h[:s], hi=blo)
                right, c2 = _pack(w[s:], h[s:], lo=bhi)
                cost = c1 + c2 + toll * (sum(left_of[:s]) + sum(right_of[s:]))
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, left + right)
            xs = best[1]
        x.update(zip(free, xs))

    def sweep(down: bool) -> None:
        for g_i in (range(len(gens)) if down else range(len(gens) - 1, -1, -1)):
            place(g_i, {n: [x[v] for v in (aug.predecessors(n) if down else aug.successors(n)) if v in x]
                        for n in gens[g_i]})

    sweep(True)
    best_x, best_score = dict(x), _crossings(aug, x, layer)
    for _ in range(6 if len(aug) < 2000 else 1):
        sweep(False)
        sweep(True)
        score = _crossings(aug, x, layer)
        if score < best_score:
            best_x, best_score = dict(x), score
    return best_x, layer, chains, {p: (*band[p], *span[p]) for p in band}


_GRID = re.compile(r"^(.*?)[_\[(\s-]?(\d+)[_,;:\s-]\s*(\d+)[\])]?$")


def _grid(names: list[str]) -> dict[str, tuple[int, int]] | None:
    """``(row, column)`` of every node when the names spell a grid, else None."""
    cells = {}
    for n in names:
        m = _GRID.match(n)
        if not m:
            return None
        cells[n] = (int(m.group(2)), int(m.group(3)))
    if len(set(cells.values())) != len(cells) or len(cells) < 2:
        return None
    return cells


def _grid_graph(graph: Any, names: list[str]) -> dict[str, tuple[int, int]] | None:
    """``(row, column)`` of every node when the graph *is* an a x b grid, whatever its names."""
    n, e = graph.number_of_nodes(), graph.number_of_edges()
    # an a x b grid has a*b nodes and 2ab - a - b edges: a and b solve t^2 - (2n - e) t + n = 0
    total = 2 * n - e
    disc = total * total - 4 * n
    if n < 4 or n > 2500 or disc < 0 or math.isqrt(disc) ** 2 != disc:
        return None
    rows, cols = (total - math.isqrt(disc)) // 2, (total + math.isqrt(disc)) // 2
    if rows < 2 or rows * cols != n:
        return None
    try:
        match = nx.vf2pp_isomorphism(graph, nx.grid_2d_graph(rows, cols))
    except Exception:
        return None
    if match is None:
        return None
    # of the grid's symmetries, take the one closest to reading the declaration row by row
    shapes = [lambda r, c: (r, c), lambda r, c: (r, cols - 1 - c), lambda r, c: (rows - 1 - r, c),
              lambda r, c: (rows - 1 - r, cols - 1 - c)]
    if rows == cols:
        shapes += [lambda r, c, f=f: f(c, r) for f in shapes]
    rank = {name: i for i, name in enumerate(names)}

    def disorder(f: Any) -> int:
        return sum(abs(rank[name] - (lambda rc: rc[0] * cols + rc[1])(f(*match[name]))) for name in names)

    best = min(shapes, key=disorder)
    return {name: best(*match[name]) for name in names}


def _spread(graph: Any) -> dict[str, tuple[float, float]]:
    """A force-directed layout, scaled so that neighbouring nodes sit about one unit apart."""
    if graph.number_of_nodes() == 1:
        return {n: (0.0, 0.0) for n in graph}
    try:
        raw = nx.kamada_kawai_layout(graph)
    except Exception:  # scipy missing, or a degenerate graph
        raw = nx.spring_layout(graph, seed=0)
    pos = {n: (float(x), float(y)) for n, (x, y) in raw.items()}
    # turn the drawing so that its edges run along the axes when they mostly meet at right angles
    edges = [(pos[b][0] - pos[a][0], pos[b][1] - pos[a][1]) for a, b in graph.edges]
    if edges:
        c = sum(math.cos(4 * math.atan2(dy, dx)) for dx, dy in edges) / len(edges)
        s = sum(math.sin(4 * math.atan2(dy, dx)) for dx, dy in edges) / len(edges)
        if math.hypot(c, s) > 0.5:
            turn = -math.atan2(s, c) / 4
            cos, sin = math.cos(turn), math.sin(turn)
            pos = {n: (x * cos - y * sin, x * sin + y * cos) for n, (x, y) in pos.items()}
    nearest = sorted(
        min(math.dist(pos[a], pos[b]) for b in pos if b != a) for a in pos
    )
    typical = nearest[len(nearest) // 2] or 1.0
    return {n: (x / typical, y / typical) for n, (x, y) in pos.items()}


def _separate(pos: dict[str, tuple[float, float]], gap: float) -> dict[str, tuple[float, float]]:
    """Push apart nodes closer than ``gap`` (a few relaxation rounds)."""
    pts = {n: list(p) for n, p in pos.items()}
    names = list(pts)
    if len(names) > 400:
        return pos
    for _ in range(50):
        moved = False
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                dx, dy = pts[b][0] - pts[a][0], pts[b][1] - pts[a][1]
                d = math.hypot(dx, dy)
                if d < gap:
                    if d < 1e-9:
                        dx, dy, d = 1.0, 0.0, 1.0
                    push = (gap - d) / 2 + 1e-3
                    pts[a][0] -= dx / d * push
                    pts[a][1] -= dy / d * push
                    pts[b][0] += dx / d * push
                    pts[b][1] += dy / d * push
                    moved = True
        if not moved:
            break
    return {n: (p[0], p[1]) for n, p in pts.items()}


def _bend(p: tuple[float, float], q: tuple[float, float], others: list[tuple[float, float]],
          clearance: float) -> float:
    """Curvature (matplotlib ``arc3`` rad) for an edge p->q that keeps clear of ``others``."""
    near = [o for o in others
            if min(p[0], q[0]) - 2 * clearance <= o[0] <= max(p[0], q[0]) + 2 * clearance
            and min(p[1], q[1]) - 2 * clearance <= o[1] <= max(p[1], q[1]) + 2 * clearance]
    if not near:
        return 0.0
    best, best_gap = 0.0, -1.0
    for rad in (0.0, 0.15, -0.15, 0.3, -0.3, 0.45, -0.45, 0.6, -0.6):
        # arc3: a quadratic Bezier with its control point off the midpoint
        cx = (p[0] + q[0]) / 2 + rad * (q[1] - p[1])
        cy = (p[1] + q[1]) / 2 - rad * (q[0] - p[0])
        gap = math.inf
        for i in range(1, 40):
            t = i / 40
            x = (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * cx + t * t * q[0]
            y = (1 - t) ** 2 * p[1] + 2 * (1 - t) * t * cy + t * t * q[1]
            for o in near:
                gap = min(gap, math.hypot(x - o[0], y - o[1]))
        if gap >= clearance:
            return rad
        if gap > best_gap + 1e-6:
            best, best_gap = rad, gap
    return best


def _layout(spec: ModelSpec) -> _Layout:
    graph = spec.graph
    names = list(spec.nodes)
    radius, fonts = _sizes(names)
    step_x = 2 * radius + _HGAP
    step_y = 2 * radius + _VGAP
    plate_label_h = 2 * 1.25 * _PLATE_FONT / 72

    if spec.directed:
        xs, layer, chains, bands = _layered(spec, graph, radius)
        at = {n: (x, -layer[n] * step_y) for n, x in xs.items()}
        pos = {n: at[n] for n in names}
        out = _Layout(pos=pos, radius=radius, fonts=fonts)
        out.via = {edge: [at[d] for d in chain] for edge, chain in chains.items() if chain}
        inset = _HGAP / 2 - _PLATE_PAD  # the band holds whole nodes and their share of the gap
        for p, (lo, hi, top, bottom) in bands.items():
            out.plates[p] = (lo + inset, -bottom * step_y - radius - _PLATE_PAD - plate_label_h,
                             hi - inset, -top * step_y + radius + _PLATE_PAD)
    else:
        cells = _grid(names) or _grid_graph(graph, names)
        if cells is not None:
            pos = {n: (c * step_x, -r * step_x) for n, (r, c) in cells.items()}
        else:
            raw = _spread(graph)
            pos = _separate({n: (x * step_x, y * step_x) for n, (x, y) in raw.items()}, step_x * 0.95)
        out = _Layout(pos=pos, radius=radius, fonts=fonts)
        centres = list(pos.items())
        for a, b in graph.edges:
            others = [c for n, c in centres if n not in (a, b)]
            rad = _bend(pos[a], pos[b], others, radius * 1.3)
            if rad:
                out.rad[(a, b)] = rad

    # Edges run from border to border.  The geometry is computed here rather than by clipping
    # against the circle patches, which costs matplotlib a Bezier search per edge.
    r = radius
    tip = r + 0.005 if spec.directed else r  # an arrow's tip touches the border
    for a, b in graph.edges:
        pa, pb = pos[a], pos[b]
        if spec.directed:  # down the rows, through the waypoints of a long edge
            out.edges[(a, b)] = _route(pa, out.via.get((a, b), []), pb, r, tip)
        elif (a, b) in out.rad:  # bent around a node in its way, as matplotlib's arc3 would
            rad = out.rad[(a, b)]
            ctrl = ((pa[0] + pb[0]) / 2 + rad * (pb[1] - pa[1]), (pa[1] + pb[1]) / 2 - rad * (pb[0] - pa[0]))
            out.edges[(a, b)] = ([_towards(pa, ctrl, r), ctrl, _towards(pb, ctrl, tip)],
                                 [_MOVETO, _CURVE3, _CURVE3])
        else:
            out.edges[(a, b)] = ([_towards(pa, pb, r), _towards(pb, pa, tip)], [_MOVETO, _LINETO])
    return out


def _route(pa: tuple[float, float], via: list[tuple[float, float]], pb: tuple[float, float],
           r: float, tip: float) -> tuple[list[tuple[float, float]], list[int]]:
    """A directed edge from circle ``pa`` down to circle ``pb`` through its waypoints, as cubic Beziers.

    The curve passes every waypoint vertically, so it crosses each row of nodes
    at the waypoint's place (the room kept for it) and bends only between rows.
    It leaves and enters the circles no flatter than 45 degrees, so it never
    runs along a row through the neighbours of its ends; an edge that is
    steeper than that is a straight line.
    """
    first = via[0] if via else pb
    last = via[-1] if via else pa
    out_a, out_b = _steep(pa, first), _steep(pb, last)
    start = (pa[0] + out_a[0] * r, pa[1] + out_a[1] * r)
    end = (pb[0] + out_b[0] * tip, pb[1] + out_b[1] * tip)
    pts = [start, *via, end]
    verts, codes = [start], [_MOVETO]
    for i in range(len(pts) - 1):
        p, q = pts[i], pts[i + 1]
        h = max(abs(p[1] - q[1]), 0.1) / 2
        u = out_a if i == 0 else (0.0, -1.0)
        v = out_b if i == len(pts) - 2 else (0.0, 1.0)
        if i == 0 and not via:  # a direct edge: straight when steep, else an S between the rows
            h = max(abs(p[1] - q[1]), 0.1) / (2 * abs(u[1]) if abs(u[1]) > 1e-9 else 2)
        verts += [(p[0] + u[0] * h, p[1] + u[1] * h), (q[0] + v[0] * h, q[1] + v[1] * h), q]
        codes += [_CURVE4] * 3
    return verts, codes


def _steep(c: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """The unit vector from ``c`` toward ``toward``, turned to at most 45 degrees off vertical."""
    dx, dy = toward[0] - c[0], toward[1] - c[1]
    if dy == 0:
        dy = -1e-9
    if abs(dx) > abs(dy):
        dx = math.copysign(abs(dy), dx)
    norm = math.hypot(dx, dy)
    return dx / norm, dy / norm


def _towards(c: tuple[float, float], p: tuple[float, float], r: float) -> tuple[float, float]:
    """The point at distance ``r`` from ``c`` in the direction of ``p``."""
    d = math.dist(c, p) or 1.0
    return c[0] + (p[0] - c[0]) * r / d, c[1] + (p[1] - c[1]) * r / d


# --------------------------------------------------------------------------- drawing


def draw(spec: ModelSpec, ax: Any = None) -> Any:
    """Draw ``spec`` (a :class:`pgm.schema.ModelSpec`) in plate notation; return the Figure.

    Latent nodes are shaded grey, gaussian nodes drawn as double circles,
    observed discrete nodes as plain white circles; inner plates are rounded
    boxes labelled ``name`` / ``N=size`` in their lower-right corner (the outer
    data plate is left out).  With ``ax`` the drawing goes into that Axes (its
    figure is returned); otherwise a new ``matplotlib.figure.Figure`` sized to
    the graph is made, on the non-interactive Agg canvas.

    The artists carry ``gid`` s: ``node:NAME`` (the outer circle of a node),
    ``edge:A->B`` / ``edge:A--B`` and ``plate:NAME``; an SVG keeps them as ids.

    Raises
    ------
    pgm.PGMError
        when matplotlib is not installed.
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    lay = _layout(spec)
    r = lay.radius
    x0, y0, x1, y1 = lay.bounds()
    x0, y0, x1, y1 = x0 - _MARGIN, y0 - _MARGIN, x1 + _MARGIN, y1 + _MARGIN
    prev = [(q, name) for name, node in spec.nodes.items() for q in getattr(node, "prev", [])]
    if prev:  # room for the previous-step loops and their labels, right of the nodes
        x1 += 1.6 * r
    title_w = 1.1 * _text_size(spec.name, 13)[0] + 2 * _MARGIN  # bold runs wider
    if x1 - x0 < title_w:
        grow = (title_w - (x1 - x0)) / 2
        x0, x1 = x0 - grow, x1 + grow

    if ax is None:
        w, h = x1 - x0, y1 - y0
        fig = Figure(figsize=(w, h + _TITLE_H))
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, h / (h + _TITLE_H)))
        fig.text(0.5, 1 - 0.5 * _TITLE_H / (h + _TITLE_H), spec.name, ha="center", va="center",
                 fontsize=13, fontweight="bold", color=_INK, parse_math=False)
    else:
        fig = ax.figure
        ax.set_title(spec.name, fontsize=13, fontweight="bold", color=_INK, parse_math=False)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()

    for p, (px0, py0, px1, py1) in lay.plates.items():
        box = FancyBboxPatch((px0, py0), px1 - px0, py1 - py0, boxstyle="round,pad=0,rounding_size=0.12",
                             facecolor="none", edgecolor=_INK, linewidth=1.1, zorder=0, gid=f"plate:{p}")
        ax.add_artist(box)
        ax.text(px1 - 0.07, py0 + 0.06, f"{p}\nN={spec.plates[p].size}", ha="right", va="bottom",
                fontsize=_PLATE_FONT, color=_INK, linespacing=1.1, zorder=3, gid=f"plate-label:{p}",
                parse_math=False, bbox=dict(boxstyle="square,pad=0.08", facecolor="white", edgecolor="none"))

    for name, (x, y) in lay.pos.items():
        node = spec.nodes[name]
        fill = _LATENT if node.latent else "white"
        ax.add_artist(Circle((x, y), r, facecolor=fill, edgecolor=_INK, linewidth=1.3, zorder=2,
                             gid=f"node:{name}"))
        if node.type == "gaussian":
            ax.add_artist(Circle((x, y), r - 0.045, facecolor="none", edgecolor=_INK, linewidth=0.9, zorder=2.1))
        ax.text(x, y, name, ha="center", va="center", fontsize=lay.fonts[name], color=_INK, zorder=3,
                gid=f"label:{name}", parse_math=False)

    for (a, b), (verts, codes) in lay.edges.items():
        ax.add_artist(FancyArrowPatch(
            path=MplPath(verts, codes), arrowstyle="-|>" if spec.directed else "-", mutation_scale=11,
            color=_INK, linewidth=1.1, zorder=1, gid=f"edge:{a}{'->' if spec.directed else '--'}{b}"))
    # a sequence model: one step drawn, dashed arcs from the previous step labelled t-1
    for a, b in prev:
        (xa, ya), (xb, yb) = lay.pos[a], lay.pos[b]
        if a == b:
            c, s_ = math.cos(math.radians(35)), math.sin(math.radians(35))
            verts = [(xa + r * c, ya + r * s_), (xa + 2.3 * r, ya + 1.4 * r), (xa + 2.3 * r, ya - 1.4 * r),
                     (xa + r * c, ya - r * s_)]
            path = MplPath(verts, [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
            ax.add_artist(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=11, color=_INK, linewidth=1.1,
                                          linestyle="--", zorder=1, gid=f"prev:{a}->{b}"))
            lx, ly = xa + 1.95 * r, ya
        else:
            dx, dy = xb - xa, yb - ya
            d = math.hypot(dx, dy) or 1.0
            ax.add_artist(FancyArrowPatch(
                (xa + r * dx / d, ya + r * dy / d), (xb - r * dx / d, yb - r * dy / d), arrowstyle="-|>",
                mutation_scale=11, color=_INK, linewidth=1.1, linestyle="--", connectionstyle="arc3,rad=-0.4",
                zorder=1, gid=f"prev:{a}->{b}"))
            lx, ly = (xa + xb) / 2 - 0.2 * dy + 0.05, (ya + yb) / 2 + 0.2 * dx
        ax.text(lx, ly, "t-1", ha="left", va="center", fontsize=_PLATE_FONT, color=_INK, zorder=3,
                parse_math=False, bbox=dict(boxstyle="square,pad=0.05", facecolor="white", edgecolor="none"))
    return fig


def draw_to_file(spec: ModelSpec, path: str | Path) -> Path:
    """Draw ``spec`` to ``path``; the format follows the suffix (.png, .svg or .pdf).

    The drawing is rendered in memory, then written with
    :func:`pgm.io.atomic.write_atomic`: a file atomically (a temporary file in the
    same directory renamed over ``path`` once complete, so an error or a crash never
    leaves a half-written file nor clobbers an existing one), a device or a FIFO
    written through.
    Text stays text in an SVG (node names are searchable) and in a PDF: the
    ``svg.fonttype`` / ``pdf.fonttype`` settings are changed for the save only,
    inside ``matplotlib.rc_context`` (not thread-safe, like any rcParams change).

    Raises
    ------
    pgm.PGMError
        for an unknown suffix, a missing directory, a file that cannot be
        written, or when matplotlib is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(FORMATS)
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise PGMError(f"{path}: cannot draw to {got}; use one of {allowed} (the suffix picks the format)")
    fmt = FORMATS[suffix]
    check_output_target(path)  # a missing directory, a directory, a read-only file: before drawing
    matplotlib = _matplotlib()

    fig = draw(spec)
    w, h = fig.get_size_inches()
    dpi = min(150.0, _MAX_PIXELS / max(w, h))
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {}}[fmt]
    buffer = io.BytesIO()
    # rc_context restores every setting on exit; these only affect how text is written
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pgm", "pdf.fonttype": 42}):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")
    write_atomic(path, buffer.getvalue())  # atomic for a file; written through to a device or a FIFO
    return path
