"""Rich display in Jupyter: a declaration or a fitted model shows its graph beside a summary.

``import pgm`` registers :func:`html` as the ``text/html`` formatter of
:class:`pgm.schema.ModelSpec`, :class:`pgm.fitted.FittedModel` and
:class:`pgm.markov.FittedMarkovNet` when it runs inside IPython (lazily: this module is
imported on the first display).  So the last expression of a cell,

>>> model = pgm.load("models/asia.yaml")      # doctest: +SKIP
>>> model                                     # doctest: +SKIP

renders the plate diagram of :func:`pgm.draw.draw` (latent nodes shaded, gaussian nodes
double-circled, inner plates as boxes) as an inline SVG, next to a table of the nodes:
their kind, states, parents (or cliques) and parameter count.  A fitted model adds the
learner, its iterations and final log-likelihood, and its parameters (one labelled table
per node, as :meth:`FittedModel.cpd` gives them) in a collapsed section.  Without
matplotlib the summary shows alone.

Outside IPython the functions still return plain HTML strings:
:func:`spec_html`, :func:`fitted_html`, :func:`markov_html`, or :func:`html` for any of them.
"""

from __future__ import annotations

import html as _html
import io
import math
import re
from typing import Any

from pgm.schema import DiscreteNode, GaussianNode, ModelSpec

#: Declarations with more nodes than this are summarised without a drawing.
MAX_DRAWN_NODES = 150
#: The drawing is scaled down to fit this box (CSS pixels); it is never enlarged.
MAX_WIDTH_PX, MAX_HEIGHT_PX = 480, 640
#: Parameter tables are listed (collapsed) when the model has at most this many free parameters.
MAX_LISTED_PARAMS = 2000
#: State labels shown per node before eliding the rest.
MAX_LABELS = 6

_CSS = ("<style>.pgm-summary table{border-collapse:collapse;font-size:12px}"
        ".pgm-summary th,.pgm-summary td{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd;"
        "vertical-align:top}.pgm-summary th{background:#f3f3f3}.pgm-summary caption{text-align:left;"
        "font-weight:bold;padding:4px 0}</style>")


def _esc(value: Any) -> str:
    return _html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- drawing


def svg(spec: ModelSpec) -> str | None:
    """The plate diagram of ``spec`` as an inline ``<svg>`` element, or None.

    None when matplotlib is missing, when the drawing fails, or when the model has more
    than :data:`MAX_DRAWN_NODES` nodes.  The XML prologue and metadata are dropped and
    the size is scaled down (never up) to fit :data:`MAX_WIDTH_PX` x :data:`MAX_HEIGHT_PX`,
    so that the summary table fits beside it.
    """
    if len(spec.nodes) > MAX_DRAWN_NODES:
        return None
    try:
        from pgm.draw import _matplotlib, draw

        matplotlib = _matplotlib()
        fig = draw(spec)
        buf = io.StringIO()
        # text stays text (smaller, searchable); no date, so the output is reproducible
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(buf, format="svg", facecolor="white", metadata={"Date": None})
    except Exception:  # no matplotlib (PGMError), or a drawing problem: a display must not fail
        return None
    text = buf.getvalue()
    start = text.find("<svg")
    if start < 0:
        return None
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[start:], count=1, flags=re.S)
    width_in, height_in = fig.get_size_inches()
    scale = min(1.0, MAX_WIDTH_PX / (96 * width_in), MAX_HEIGHT_PX / (96 * height_in))
    width_pt, height_pt = 72 * width_in * scale, 72 * height_in * scale

    def resize(match: re.Match) -> str:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", match.group(0))
        return tag.replace("<svg", f'<svg width="{width_pt:.1f}pt" height="{height_pt:.1f}pt" '
                                   f'role="img" aria-label="{_esc(spec.name)}"', 1)

    return re.sub(r"<svg\b[^>]*>", resize, text, count=1)


# --------------------------------------------------------------------------- summary tables


def _table(header: list[str], rows: list[list[Any]], caption: str | None = None) -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _states(node: Any) -> str:
    if isinstance(node, GaussianNode):
        return f"ℝ^{node.dim}" if node.dim > 1 else "ℝ"
    if isinstance(node.states, int):
        return f"{node.states} (0..{node.states - 1})"
    labels = node.labels
    shown = ", ".join(labels[:MAX_LABELS]) + (f", … ({len(labels)})" if len(labels) > MAX_LABELS else "")
    return shown


def _kind(spec: ModelSpec, node: Any) -> str:
    if isinstance(node, GaussianNode):
        text = f"gaussian ({node.covariance} cov)" if node.dim > 1 else "gaussian"
        if any(isinstance(spec.nodes[p], GaussianNode) for p in node.parents):
            text += ", linear"
    else:
        text = "discrete" if node.cpd == "table" else f"discrete, {node.cpd}"
    if node.latent:
        text += ", latent"
    if node.plate is not None:
        text += f", plate {node.plate} (N={spec.plates[node.plate].size})"
    return text


def _directed_params(spec: ModelSpec, node: Any) -> int:
    from pgm.schema.spec import _node_params  # the same count as ModelSpec.n_params

    return _node_params(spec, node)


def _clique_params(spec: ModelSpec, clique: Any) -> int:
    cards = [spec.nodes[n].n_states for n in clique.nodes]
    if clique.features == "table":
        return math.prod(cards)
    try:
        from pgm.features import feature_dim

        return feature_dim(clique.features, cards)
    except Exception:  # an unregistered family: the declaration's own count
        return 1


def _directed_summary(spec: ModelSpec) -> str:
    ties = any(n.tie for n in spec.nodes.values())
    header = ["node", "kind", "states", "parents", "parameters"] + (["tie"] if ties else [])
    rows, seen = [], set()
    for name in spec.topological_order():
        node = spec.nodes[name]
        key = node.tie or name
        count: Any = _directed_params(spec, node) if key not in seen else f"shared ({node.tie})"
        seen.add(key)
        row = [name, _kind(spec, node), _states(node), ", ".join(node.parents) or "—", count]
        rows.append(row + ([node.tie or ""] if ties else []))
    return _table(header, rows)


def _undirected_summary(spec: ModelSpec) -> str:
    graph = spec.graph
    node_rows = []
    for name, node in spec.nodes.items():
        unary = node.n_states - 1 if isinstance(node, DiscreteNode) and node.unary else 0
        neighbours = sorted(graph.neighbors(name)) if name in graph else []
        node_rows.append([name, _kind(spec, node), _states(node), ", ".join(neighbours) or "—", unary])
    out = _table(["node", "kind", "states", "neighbours", "unary parameters"], node_rows)
    clique_rows, seen = [], set()
    for i, clique in enumerate(spec.cliques):
        key = clique.tie or f"clique{i}"
        count: Any = _clique_params(spec, clique) if key not in seen else f"shared ({clique.tie})"
        seen.add(key)
        clique_rows.append([i, " — ".join(clique.nodes), clique.features, clique.tie or "", count])
    if clique_rows:
        out += _table(["#", "nodes", "features", "tie", "parameters"], clique_rows, caption="cliques")
    return out


def _header(spec: ModelSpec, n_params: int, extra: str = "") -> str:
    kind = "directed" if spec.directed else "undirected"
    parts = [f"{len(spec.nodes)} nodes"]
    if not spec.directed:
        parts.append(f"{len(spec.cliques)} cliques")
    latent = spec.latent_nodes()
    if latent:
        parts.append(f"{len(latent)} latent")
    if spec.plates:
        parts.append(f"{len(spec.plates)} inner plate{'s' if len(spec.plates) > 1 else ''}")
    parts.append(f"{n_params} free parameters")
    out = f"<p><b>{_esc(spec.name)}</b>{_esc(extra)} — {kind} graph, {_esc(', '.join(parts))}</p>"
    if spec.description:
        text = " ".join(spec.description.split())
        if len(text) > 300:
            text = text[:297] + "…"
        out += f"<p><i>{_esc(text)}</i></p>"
    return out


def _layout(spec: ModelSpec, summary: str, drawing: bool) -> str:
    picture = svg(spec) if drawing else None
    left = f'<div class="pgm-graph" style="flex:0 0 auto">{picture}</div>' if picture else ""
    right = f'<div class="pgm-summary" style="flex:1 1 320px;min-width:0;overflow-x:auto">{summary}</div>'
    return (f'{_CSS}<div class="pgm-model" style="display:flex;flex-wrap:wrap;gap:16px;'
            f'align-items:flex-start">{left}{right}</div>')


# --------------------------------------------------------------------------- public renderers


def spec_html(spec: ModelSpec, *, drawing: bool = True) -> str:
    """HTML for a declaration: the drawing (when matplotlib is there) beside the node table."""
    body = _directed_summary(spec) if spec.directed else _undirected_summary(spec)
    return _layout(spec, _header(spec, spec.n_params()) + body, drawing)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


def _fit_table(info: dict[str, Any], history: list[float], ll_label: str) -> str:
    learner = info.get("learner", "—")
    if history:
        n_iter = info.get("n_iter", len(history))
        final = _fmt(float(history[-1]))
    else:
        n_iter = "— (closed form)" if learner == "mle" else info.get("n_iter", "—")
        final = "—"
    rows = [["learner", learner], ["iterations", n_iter], [ll_label, final]]
    if "converged" in info:
        rows.append(["converged", "yes" if info["converged"] else "no"])
    if info.get("seed") is not None and learner not in ("mle",):
        rows.append(["seed", info["seed"]])
    return _table(["fit", ""], rows)


def _frames_html(frames: list[tuple[str, Any]], n_params: int) -> str:
    if n_params > MAX_LISTED_PARAMS or not frames:
        return ""
    parts = [f"<details><summary>parameters ({len(frames)} tables)</summary>"]
    for title, frame in frames:
        parts.append(f"<p><b>{_esc(title)}</b></p>{frame.to_html(float_format=lambda x: f'{x:.4g}')}")
    parts.append("</details>")
    return "".join(parts)


def fitted_html(fitted: Any, *, drawing: bool = True) -> str:
    """HTML for a :class:`pgm.fitted.FittedModel`: drawing, fit summary, node table, and the
    CPDs (a labelled table per parameter set; a gaussian node's means and covariances)."""
    spec = fitted.spec
    summary = _header(spec, fitted.n_params, " (fitted)")
    summary += _fit_table(fitted.info, list(fitted.history), "final log-likelihood")
    summary += _directed_summary(spec)
    frames = []
    for key in fitted.cpds:
        try:
            frames.append((key, fitted.cpd(key)))
        except Exception:  # a display never raises: skip a table that cannot be labelled
            continue
    summary += _frames_html(frames, fitted.n_params)
    return _layout(spec, summary, drawing)


def markov_html(fitted: Any, *, drawing: bool = True) -> str:
    """HTML for a :class:`pgm.markov.FittedMarkovNet`: drawing, fit summary, node and clique
    tables, and the fitted log-potentials (collapsed)."""
    spec = fitted.spec
    label = ("final pseudo-log-likelihood" if fitted.info.get("history_kind") == "pseudo_log_likelihood"
             else "final log-likelihood")
    summary = _header(spec, fitted.n_params, " (fitted)")
    summary += _fit_table(fitted.info, list(fitted.history), label)
    summary += _undirected_summary(spec)
    frames = []
    for key, value in fitted.params.items():
        if getattr(value, "ndim", 1) == 0:
            frames.append((f"{key} (weight {float(value):.4g})", fitted.potential(key)))
        else:
            try:
                frames.append((key, fitted.potential(key)))
            except Exception:
                continue
    summary += _frames_html(frames, fitted.n_params)
    return _layout(spec, summary, drawing)


def html(obj: Any) -> str | None:
    """HTML for a declaration or a fitted model (directed or undirected); None for anything else."""
    if isinstance(obj, ModelSpec):
        return spec_html(obj)
    from pgm.fitted import FittedModel
    from pgm.markov import FittedMarkovNet

    if isinstance(obj, FittedModel):
        return fitted_html(obj)
    if isinstance(obj, FittedMarkovNet):
        return markov_html(obj)
    return None


#: (module, class name) of every type :func:`register` formats, as IPython looks them up.
TYPES = (("pgm.schema.spec", "ModelSpec"), ("pgm.fitted", "FittedModel"), ("pgm.markov", "FittedMarkovNet"))


def register(ip: Any = None) -> bool:
    """Register :func:`html` as the ``text/html`` formatter in IPython ``ip`` (default: the
    running shell).  ``import pgm`` does this already when IPython is running; call it when
    pgm was imported first.  Returns False outside IPython."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    formatter = ip.display_formatter.formatters["text/html"]
    for module, name in TYPES:
        formatter.for_type_by_name(module, name, html)
    return True


__all__ = ["svg", "spec_html", "fitted_html", "markov_html", "html", "register"]
