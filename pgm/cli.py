"""The ``pgm`` command: thin argument parsing over the Python API.

Every user error (``pgm.PGMError``, a bad path, an interrupt) ends with one
message on stderr and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pgm.errors import PGMError
from pgm.schema import DiscreteNode, ModelSpec, load_spec

EXIT_USER_ERROR = 2


def _summary(spec: ModelSpec) -> str:
    n_latent = len(spec.latent_nodes())
    extra = f", {n_latent} latent" if n_latent else ""
    plates = f", {len(spec.plates)} plate{'s' if len(spec.plates) != 1 else ''}" if spec.plates else ""
    cliques = f", {len(spec.cliques)} cliques" if not spec.directed else ""
    fitted = ", fitted" if spec.params is not None else ""
    return (f"{spec.name}: {spec.kind}, {len(spec.nodes)} nodes{extra}{cliques}{plates}, "
            f"{spec.n_params()} free parameters{fitted}")


def describe(spec: ModelSpec) -> str:
    """A readable multi-line summary of a declaration."""
    out = [_summary(spec)]
    if spec.description:
        out.append(f"  {spec.description.strip()}")
    if spec.plates:
        out.append("plates:")
        for name, plate in spec.plates.items():
            members = [n for n, v in spec.nodes.items() if v.plate == name]
            out.append(f"  {name} (size {plate.size}): {', '.join(members)}")
    out.append("nodes:")
    width = max(len(n) for n in spec.nodes)
    for name in spec.topological_order():
        node = spec.nodes[name]
        if isinstance(node, DiscreteNode):
            states = node.states if isinstance(node.states, int) else "[" + ", ".join(node.labels) + "]"
            what = f"discrete {states}" + (f" ({node.cpd})" if node.cpd != "table" else "")
        else:
            what = f"gaussian dim {node.dim}, {node.covariance} covariance"
        flags = [f for f, on in (("latent", node.latent), (f"plate {node.plate}", node.plate),
                                 (f"tie {node.tie}", node.tie)) if on]
        given = f" | {', '.join(node.parents)}" if node.parents else ""
        out.append(f"  {name:<{width}}  {what}{given}" + (f"  [{'; '.join(flags)}]" if flags else ""))
    if spec.cliques:
        out.append("cliques:")
        for clique in spec.cliques:
            tie = f"  [tie {clique.tie}]" if clique.tie else ""
            out.append(f"  ({', '.join(clique.nodes)}): {clique.features}{tie}")
    return "\n".join(out)


def cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            spec = load_spec(path)
        except PGMError as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_USER_ERROR
            continue
        print(f"{path}: ok: {_summary(spec)}")
    return status


def cmd_show(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    if args.output:
        from pgm.draw import draw_to_file  # matplotlib is an optional extra, imported on demand

        draw_to_file(spec, args.output)
        print(f"wrote {args.output}")
    else:
        print(describe(spec))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgm", description="Declare graphical models in YAML and learn them from data.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check graph files; one line per valid file, every error otherwise")
    p.add_argument("files", nargs="+", metavar="MODEL.yaml")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("show", help="summarise a graph file, or draw it (-o graph.png|.svg)")
    p.add_argument("file", metavar="MODEL.yaml")
    p.add_argument("-o", "--output", metavar="FILE", help="draw the graph to a .png, .svg or .pdf file")
    p.set_defaults(run=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own one-line usage error
        return EXIT_USER_ERROR if exc.code else 0
    try:
        return args.run(args)
    except PGMError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("pgm: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
