"""The ``pgm`` command: thin argument parsing over the Python API.

Every user error (``pgm.PGMError``, a bad path, an interrupt) ends with one
message on stderr and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from pgm.errors import PGMError
from pgm.io.atomic import check_output_target, write_atomic
from pgm.schema import DiscreteNode, ModelSpec, load_spec

EXIT_USER_ERROR = 2

# The library's messages name Python arguments (learner='em', max_iter, init=, weights=); on the command
# line, errors and warnings alike, they name its flags (--learner em, --max-iter, --init, --weights).
# Whole phrases first (where the CLI offers something else), then every `argument=value` by rule.
CLI_WORDS: tuple[tuple[str, str], ...] = (
    ("Start elsewhere: n_init=5, init='random', or init= a fitted model whose states differ",
     "Start elsewhere: --n-init 5, or --init a fitted file whose states differ"),
    ("pass a model fitted on this same graph (pgm.fit on this declaration, or pgm.load of its fitted file), "
     "or init='auto' / 'random'", "pass a file fitted on this same graph (`pgm fit` of this declaration), "
     "or leave --init out"),
    ("or init='auto' / 'random'", "or leave --init out"),
    ("drop weights=", "drop --weights"),
    ("prior={'dirichlet': 1}", "--prior 1"),
    ("predict(joint=True)", "--joint"),
)
# pgm.fit's argument -> the flag of `pgm fit`/`score`/`predict` that sets it
CLI_FLAGS = {"learner": "--learner", "max_iter": "--max-iter", "n_init": "--n-init", "tol": "--tol",
             "seed": "--seed", "init": "--init", "weights": "--weights", "chunk_rows": "--chunk-rows",
             "na_values": "--na", "sep": "--sep"}
_PY_ARG = re.compile(r"(?<![\w.-])(" + "|".join(CLI_FLAGS) + r")="
                     r"(?:'([^'\s]*)'|\"([^\"\s]*)\"|([\w.+-]+))?(?=[\s,;:)\]]|$)")
#: A gaussian node's evidence vector in a message (``c=[nan, x]``): on the command line ``c=nan,x``.
_PY_VECTOR = re.compile(r"(NaN where not observed: [^=\s]+=)\[([^\]]*)\]")
_PY_NAME = re.compile(r"(?<![\w.'\"-])(max_iter|n_init|tol|chunk_rows|na_values)(?![\w=])")


def _flag(match: re.Match) -> str:
    value = next((v for v in match.groups()[1:] if v is not None), None)
    return CLI_FLAGS[match.group(1)] + (f" {shlex.quote(value)}" if value else "")  # as typed in a shell: --sep ';'


def cli_words(message: str) -> str:
    """A library message worded for the command line: its Python arguments named as CLI flags
    (``learner='em'`` -> ``--learner em``, ``max_iter=5`` -> ``--max-iter 5``, ``weights=`` -> ``--weights``)."""
    for api_words, cli in CLI_WORDS:
        message = message.replace(api_words, cli)
    message = _PY_ARG.sub(_flag, message)
    message = _PY_VECTOR.sub(lambda m: m.group(1) + m.group(2).replace(", ", ","), message)
    return _PY_NAME.sub(lambda m: CLI_FLAGS[m.group(1)], message)


def _summary(spec: ModelSpec) -> str:
    n_latent = len(spec.latent_nodes())
    extra = f", {n_latent} latent" if n_latent else ""
    plates = f", {len(spec.plates)} plate{'s' if len(spec.plates) != 1 else ''}" if spec.plates else ""
    cliques = f", {len(spec.cliques)} cliques" if not spec.directed else ""
    fitted = ", fitted" if spec.params is not None else ""
    seq = (f", sequence (id {spec.sequence.id}, order {spec.sequence.order})" if spec.sequence is not None else "")
    return (f"{spec.name}: {spec.kind}{seq}, {len(spec.nodes)} nodes{extra}{cliques}{plates}, "
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
            what = f"gaussian dim {node.dim}, " + ("standard N(0, I)" if spec.is_standard(name)
                                                     else f"{node.covariance} covariance")
            if node.prev and spec.is_standard(name, first=True):
                what += " (first step: standard N(0, I))"
        flags = [f for f, on in (("latent", node.latent), (f"plate {node.plate}", node.plate),
                                 (f"tie {node.tie}", node.tie)) if on]
        given = ", ".join(list(node.parents) + [f"{p}[t-1]" for p in node.prev])
        given = f" | {given}" if given else ""
        out.append(f"  {name:<{width}}  {what}{given}" + (f"  [{'; '.join(flags)}]" if flags else ""))
    if spec.sequence is not None:
        out.append(f"one row per step: column {spec.sequence.id!r} names the sequence, {spec.sequence.order!r} "
                   "orders its steps; p[t-1] is p at the previous step (nodes with one: a first-step CPD too)")
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
    if args.output:
        _check_output(args.output, args.file, what="the model")
    spec = load_spec(args.file)
    if args.output:
        from pgm.draw import draw_to_file  # matplotlib is an optional extra, imported on demand

        draw_to_file(spec, args.output)
        print(f"wrote {args.output}")
    else:
        print(describe(spec))
        if spec.params is not None:
            print(describe_params(args.file))
    return 0


def describe_params(path: str, max_rows: int = 12) -> str:
    """The fitted parameters of a graph file, one labelled table per node (long tables cut)."""
    import pandas as pd

    import pgm.api as api

    fitted = api.load(path)
    out = ["parameters:"]
    if hasattr(fitted, "cpd"):
        tables = {key: fitted.cpd(key) for key in fitted.cpds}
    else:
        tables = fitted.potentials()
    with pd.option_context("display.width", 120, "display.max_columns", 12, "display.precision", 4):
        for key, table in tables.items():
            shown = table.head(max_rows)
            more = f"\n  ... {len(table) - max_rows} more rows" if len(table) > max_rows else ""
            body = "\n".join("  " + line for line in shown.to_string().splitlines())
            out.append(f"{key}:\n{body}{more}")
    return "\n".join(out)


class Progress:
    """A one-line progress display on a terminal (stderr); silent when not on one."""

    def __init__(self, label: str, total: int, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.active = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = label
        self.total = max(total, 1)
        self.start = time.perf_counter()

    def __call__(self, iteration: int, value: float) -> None:
        if not self.active:
            return
        done = (iteration + 1) / self.total
        bar = "#" * int(24 * done)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{self.label} [{bar:<24}] iter {iteration + 1}/{self.total}  "
                          f"log-likelihood {value:.6g}  {elapsed:.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\n")
            self.stream.flush()


def _default_output(path: str, suffix: str) -> Path:
    p = Path(path)
    return p.with_name(p.name[: -len(p.suffix)] + suffix if p.suffix else p.name + suffix)


def cmd_fit(args: argparse.Namespace) -> int:
    import pgm.api as api  # numpy and the learners load only for commands that fit

    out = Path(args.output) if args.output else _default_output(args.model, ".fitted.yaml")
    _check_output(out, args.data, what="the data file")
    model = api.load(args.model)
    if not isinstance(model, ModelSpec):  # api.fit refits a fitted model's declaration: say so
        print(f"note: {args.model} carries parameters; refitting its declaration (use --init {args.model} to "
              "start from them)", file=sys.stderr)
    progress = Progress("fit", args.max_iter)
    options = {"learner": args.learner, "max_iter": args.max_iter, "seed": args.seed, "n_init": args.n_init}
    if args.tol is not None:
        options["tol"] = args.tol
    if args.accelerate is not None:
        options["accelerate"] = args.accelerate
    if args.prior is not None:
        options["prior"] = {"dirichlet": args.prior}
    if args.chunk_rows is not None:
        options["chunk_rows"] = args.chunk_rows
    if args.weights is not None:
        options["weights"] = args.weights
    if args.init is not None:
        options["init"] = _fitted(api.load(args.init), args.init, "--init")
    options.update(reading_options(args))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if args.scheduler:
                from pgm import distributed  # dask is an optional extra, imported on demand

                from pgm.io.table import read_options

                with distributed.connect(args.scheduler):
                    data = distributed.read_frame(getattr(model, "spec", model), args.data, args.weights,
                                                  read_options(**reading_options(args)))
                    fitted = api.fit(model, data, callback=progress, **options)
            else:
                fitted = api.fit(model, args.data, callback=progress, **options)
        finally:
            progress.close()
    for w in caught:
        print(f"pgm: warning: {cli_words(str(w.message))}", file=sys.stderr)
    fitted.save(out)
    info = getattr(fitted, "info", {})
    if info.get("learner_reason"):  # the learner pgm chose itself, and why
        print(f"learner: {info['learner']} ({info['learner_reason']})")
    summary = f"wrote {out}"
    if fitted.history:
        n_iter = info.get("n_iter", len(fitted.history))
        what = "ELBO" if info.get("learner") == "variational" else info.get("history", "log-likelihood")
        last = info.get("log_likelihood", fitted.history[-1])  # stochastic EM returns the average of its iterates
        summary += f" ({n_iter} iteration{'s' if n_iter != 1 else ''}, {what} {last:.6g})"
    print(summary)
    return 0


def _fitted(model, path: str, what: str = "the model"):
    """``model`` if it is a fitted model; a one-line error naming ``path`` otherwise."""
    if isinstance(model, ModelSpec):
        where = "" if what == "the model" else f"{what} takes a fitted file; "
        raise PGMError(f"{path}: not a fitted model (no `params:`); {where}run `pgm fit` first")
    return model


def cmd_score(args: argparse.Namespace) -> int:
    import pgm.api as api
    from pgm.evidence import criteria

    if args.output:
        _check_output(args.output, args.model, args.data)
    model = _fitted(api.load(args.model), args.model)
    enc = model.encode(args.data, args.weights, **reading_options(args))  # rows of weight 0 are dropped here
    rows = model.row_log_likelihood(enc)
    labels = range(len(rows)) if enc.index is None else enc.index
    if enc.weights is None:
        print(f"total log-likelihood: {float(rows.sum()):.10g}  ({len(rows)} rows, mean {float(rows.mean()):.6g})")
    else:
        total, weight = float(enc.weights @ rows), float(enc.weights.sum())
        print(f"total log-likelihood: {total:.10g}  (weighted by column {args.weights!r}: {len(rows)} rows of "
              f"positive weight, total weight {weight:.10g}, weighted mean {total / weight:.6g})")
    total = float(rows.sum()) if enc.weights is None else float(enc.weights @ rows)
    n = len(rows) if enc.weights is None else float(enc.weights.sum())
    bic, aic = criteria(total, model.n_params, n)
    print(f"BIC: {bic:.10g}  AIC: {aic:.10g}  ({model.n_params} free parameters, n = {n:.10g}; lower is better)")
    if args.output:
        import pandas as pd

        table = pd.DataFrame({"log_likelihood": rows}, index=labels)
        if enc.weights is not None:
            table["weight"] = enc.weights
        write_atomic(args.output, table.to_csv(index_label="row"))
        print(f"wrote per-row log-likelihoods to {args.output}")
    elif args.per_row:
        for i, v in zip(labels, rows):
            print(f"{i}\t{v:.10g}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import pgm.api as api

    if args.output:
        _check_output(args.output, args.model, what="the model")
    model = api.load(args.model)
    if not hasattr(model, "sample"):
        raise PGMError(f"{args.model}: not a fitted model (no `params:`); run `pgm fit` first")
    if args.n < 0:
        raise PGMError(f"-n must be a non-negative number of rows, got {args.n}")
    if getattr(model.graph, "sequence", None):
        if args.length is None:
            raise PGMError(f"{args.model}: a sequence model draws -n sequences of --length steps each; "
                           "pass --length T (e.g. -n 100 --length 20)")
        frame = model.sample(args.n, seed=args.seed, length=args.length)
        what = f"{args.n} sequences of {args.length} steps ({len(frame)} rows)"
    else:
        if args.length is not None:
            raise PGMError(f"{args.model}: --length is for sequence models (a model with `sequence:`); "
                           "this model draws -n rows")
        frame = model.sample(args.n, seed=args.seed)
        what = f"{args.n} rows"
    return _emit(args.output, frame.to_csv(index=False), what)


def _emit(output: str | None, text: str, what: str) -> int:
    """Write a command's CSV ``text`` to ``output`` atomically (saying so), or to standard output."""
    if output:
        write_atomic(output, text)
        print(f"wrote {what} to {output}")
    else:
        sys.stdout.write(text)
    return 0


def _given(items: Sequence[str] | None, graph) -> dict[str, object]:
    """``--given a=x b=y`` as evidence: labels as text, numbers (comma-separated) for gaussian nodes."""
    evidence: dict[str, object] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PGMError(f"--given {item!r}: expected NODE=VALUE, e.g. --given xray=yes")
        if name in evidence:
            raise PGMError(f"--given: {name!r} is given twice; give each node once")
        if name in graph.variables and not graph[name].discrete:
            try:
                evidence[name] = [float(x) if x.strip() else float("nan") for x in value.split(",")]  # empty: unobserved
            except ValueError:
                raise PGMError(f"--given {item!r}: the gaussian node {name!r} takes numbers "
                               f"({graph[name].dim}, comma-separated)") from None
        else:
            evidence[name] = value
    return evidence


def cmd_query(args: argparse.Namespace) -> int:
    import pandas as pd

    import pgm.api as api

    model = _fitted(api.load(args.model), args.model)
    evidence = _given(args.given, model.graph)
    answer = model.query(args.nodes, evidence)
    given = ", ".join(args.given or [])
    print(f"p({', '.join(args.nodes)}{' | ' + given if given else ''})")
    table = answer.to_frame() if isinstance(answer, pd.Series) else answer  # gaussian nodes: mean, covariance
    with pd.option_context("display.max_rows", 10_000, "display.width", 200):
        print(table.to_string(float_format=lambda v: f"{v:.10g}"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import pgm.api as api
    from pgm.encode import as_frame, columns_of
    from pgm.io.table import read_options

    if args.output:
        _check_output(args.output, args.model, args.data)
    model = _fitted(api.load(args.model), args.model)
    graph = model.graph
    # read by the reading rule, as pgm.encode reads it (007, None stay as written); written back as read
    reading = reading_options(args)
    frame = as_frame(args.data, columns_of(graph), read_options(**reading))
    present = {str(c) for c in frame.columns}
    nodes = args.node or [n for n in graph.slice  # a sequence model's nodes, not their h@prev copies
                          if graph[n].latent or any(c not in present for c in graph[n].columns)]
    if not nodes:
        raise PGMError(f"{args.data}: nothing to predict: the data have a column for every node and no node is "
                       "latent; name the nodes to predict with --node")
    asked = [n for n in nodes if n not in graph.variables or not graph[n].latent]
    _warn_kept(frame, asked, graph, args.data, read_options(**reading))
    predicted = model.predict(list(nodes), args.data, joint=args.joint, **reading)  # errors name file:line
    out = frame.copy()
    for col in predicted.columns:
        out[col] = predicted[col].to_numpy()
    if args.proba:  # each node's posterior given the row's cells, the other predicted nodes unobserved
        unseen = {c: float("nan") for v in nodes for c in graph[v].columns if c not in present and not graph[v].latent}
        work = frame.assign(**unseen) if unseen else frame
        for v in nodes:
            post = model.posterior(v, work, **reading)
            if graph[v].discrete:
                for label in post.columns:
                    out[f"p({v}={label})"] = post[label].to_numpy()
            else:
                for c in post.columns:
                    if c == "variance":
                        out[f"variance({v})"] = post[c].to_numpy()
                    elif c.startswith("cov["):
                        out["cov(" + c[4:-1] + ")"] = post[c].to_numpy()
    return _emit(args.output, out.to_csv(index=False), f"{len(out)} rows with predicted {', '.join(nodes)}")


def cmd_forecast(args: argparse.Namespace) -> int:
    import pgm.api as api

    if args.output:
        _check_output(args.output, args.model, args.data)
    model = _fitted(api.load(args.model), args.model)
    if not getattr(model.graph, "sequence", None):
        raise PGMError(f"{args.model}: pgm forecast continues sequences, and this model has no `sequence:`; use "
                       "pgm predict for its rows")
    frame = model.forecast(args.data, steps=args.steps, nodes=args.node, proba=args.proba, **reading_options(args))
    n_seq = len(frame) // args.steps
    what = f"{args.steps} step{'s' if args.steps > 1 else ''} after each of {n_seq} sequence{'s' if n_seq > 1 else ''}"
    return _emit(args.output, frame.to_csv(index=False), what)


def _warn_kept(frame: Any, nodes: list[str], graph: Any, data: str, options: Any) -> None:
    """Warn when a node asked with --node has cells in DATA: predict keeps them, so those rows are not predicted
    (a user scoring a classifier on a labelled test file would otherwise read back the labels as predictions)."""
    import numpy as np

    from pgm.encode import encode_discrete, encode_gaussian
    from pgm.errors import DataWarning

    for v in nodes:
        if v not in graph.variables:
            continue  # predict names the unknown node
        var = graph[v]
        cols = [c for c in var.columns if c in frame.columns]
        if len(cols) != len(var.columns):
            continue
        try:
            if var.discrete:
                kept = int((encode_discrete(frame[cols[0]], var, frame.index, options) >= 0).sum())
            else:
                kept = int((~np.isnan(encode_gaussian(frame, var, frame.index, options)).any(axis=1)).sum())
        except PGMError:
            return  # a bad cell: predict reports it, naming the file and line
        if kept:
            warnings.warn(f"{data}: column{'s' if len(cols) > 1 else ''} {', '.join(map(repr, cols))} of {v!r} "
                          f"{'are' if len(cols) > 1 else 'is'} in the data: its value is kept, not predicted, in "
                          f"{kept} of {len(frame)} rows; drop the column (or empty its cells) to predict {v!r} "
                          "in every row", DataWarning, stacklevel=2)


def cmd_convert(args: argparse.Namespace) -> int:
    from pgm.convert import convert

    _check_output(args.output, args.input, what="the input")
    out = convert(args.input, args.output)
    print(f"wrote {out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``pgm fit: error: ... (see pgm fit --help)``."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _count(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _amount(text: str) -> float:
    """An argparse type: a number >= 0 (inf allowed, NaN not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _check_output(output: str | os.PathLike, *inputs: str, what: str = "an input") -> None:
    """Check an output path before any work: its directory exists; it is not a directory, a block
    device, a socket or a read-only file (``pgm.io.atomic.check_output_target``, the rule
    ``write_atomic`` applies again when writing); and it does not replace one of the command's
    inputs (a data file, a model)."""
    out = Path(output)
    check_output_target(out)
    for given in inputs:
        try:
            same = out.exists() and Path(given).exists() and os.path.samefile(out, given)
        except OSError:
            same = False
        if same:
            raise PGMError(f"{output}: this is {what} of the command ({given}); writing there would replace it, "
                           "so choose another output file with -o")


READING_HELP = ("A cell is missing when it is empty or its text is given with --na; a cell "
                "whose text is a declared state label is that state, whatever it looks like (None, NA, null, "
                "True, nan...); gaussian columns hold numbers (the text nan is missing). See docs/format.md, "
                "'Missing data'")


def add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that reads a data file: --na (repeatable) and --sep."""
    group = parser.add_argument_group("reading the data", READING_HELP)
    group.add_argument("--na", action="append", metavar="TEXT", dest="na_values",
                       help="a cell text that means missing, besides the empty cell (repeatable: --na ? --na -)")
    group.add_argument("--sep", metavar="CHAR", help="the CSV field separator (default ',', tab for .tsv); "
                       "'\\t' for a tab")


def reading_options(args: argparse.Namespace) -> dict:
    """``na_values`` and ``sep`` for the API, from the options of :func:`add_reading_arguments`."""
    sep = getattr(args, "sep", None)
    if sep in ("\\t", "tab"):
        sep = "\t"
    return {"na_values": getattr(args, "na_values", None), "sep": sep}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgm", description="Declare graphical models in YAML and learn them from data.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check graph files; one line per valid file, every error otherwise")
    p.add_argument("files", nargs="+", metavar="MODEL.yaml")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("show", help="summarise a graph file, or draw it (-o graph.png|.svg)")
    p.add_argument("file", metavar="MODEL.yaml")
    p.add_argument("-o", "--output", metavar="FILE", help="draw the graph to a .png, .svg or .pdf file")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("fit", help="learn the parameters of a graph file from data")
    p.add_argument("model", metavar="MODEL.yaml")
    p.add_argument("data", metavar="DATA", help="a .csv or .parquet file with a column per observed node")
    p.add_argument("-o", "--output", metavar="FITTED.yaml", help="where to write (default MODEL.fitted.yaml)")
    p.add_argument("--learner", help="mle, em, hard-em, variational, mcem, stochastic-em; lbfgs, gradient, coordinate, pcd, pseudo (undirected)")
    p.add_argument("--max-iter", type=_count(1), default=200, help="iteration limit of iterative learners (200)")
    p.add_argument("--tol", type=_amount, help="relative change in log-likelihood that stops iterating")
    p.add_argument("--seed", type=_count(0), default=0, help="random seed (0)")
    p.add_argument("--n-init", type=_count(1), default=1, help="EM restarts; the best is kept (1)")
    p.add_argument("--accelerate", action=argparse.BooleanOptionalAction, default=None,
                   help="EM: extrapolate the updates (SQUAREM, monotone; see docs/learners.md); default on for EM")
    p.add_argument("--prior", type=_amount, metavar="A", help="Dirichlet pseudo-count for every table cell")
    p.add_argument("--scheduler", metavar="ADDRESS", help="fit on a Dask cluster: a scheduler address "
                   "(tcp://host:8786), or `local` to start one on this machine (needs pgm-learn[dask])")
    p.add_argument("--chunk-rows", type=int, metavar="N", help="read the data file N rows at a time (out of core)")
    p.add_argument("--init", metavar="FITTED.yaml", help="start from a fitted model's parameters (EM, or the "
                   "undirected learners) instead of the default initialisation")
    p.add_argument("--weights", metavar="COLUMN", help="a data column of row weights (numbers >= 0; not a node): "
                   "a row of weight w counts as w copies of it, with every learner and data source")
    add_reading_arguments(p)
    p.set_defaults(run=cmd_fit)

    p = sub.add_parser("score", help="log-likelihood of data under a fitted model (total, per row), BIC and AIC")
    p.add_argument("model", metavar="FITTED.yaml")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--per-row", action="store_true", help="print every row's log-likelihood")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write per-row log-likelihoods to a CSV file")
    p.add_argument("--weights", metavar="COLUMN", help="a data column of row weights: the total is the weighted "
                   "sum (rows of weight 0 are left out of the per-row output)")
    add_reading_arguments(p)
    p.set_defaults(run=cmd_score)

    p = sub.add_parser("query", help="exact posterior of nodes given evidence: p(NODE... | --given ...)")
    p.add_argument("model", metavar="FITTED.yaml")
    p.add_argument("nodes", nargs="+", metavar="NODE", help="the nodes whose joint posterior to print")
    p.add_argument("--given", nargs="+", metavar="NODE=VALUE", help="evidence, e.g. --given xray=yes smoke=no "
                   "(a state label, or its code for a state count; numbers for a gaussian node)")
    p.set_defaults(run=cmd_query)

    p = sub.add_parser("predict", help="predict nodes for every row of a data file (absent columns, latent "
                       "nodes, missing cells)")
    p.add_argument("model", metavar="FITTED.yaml")
    p.add_argument("data", metavar="DATA", help="a .csv or .parquet file; the predicted columns may be absent")
    p.add_argument("--node", nargs="+", metavar="NODE", help="the nodes to predict (default: the latent nodes "
                   "and the nodes without a column in DATA)")
    p.add_argument("--proba", action="store_true", help="also write each state's posterior probability, "
                   "p(node=state) (a gaussian node: its conditional variance)")
    p.add_argument("--joint", action="store_true", help="the most probable joint completion of the nodes "
                   "(default: each node's own most probable state); for a sequence model, the most probable path "
                   "of each sequence (Viterbi)")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write a CSV file (default: standard output)")
    add_reading_arguments(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("forecast", help="sequence models: predict the steps after the last row of each sequence",
                       description="Filter each sequence of DATA to its last step, then predict the next --steps "
                       "steps: one row per sequence and step (sequences sorted by id), the id and order columns (the "
                       "order continues each sequence by its own regular step; integer orders otherwise by 1), then "
                       "each forecast node's most probable state (discrete) or predictive mean (gaussian).")
    p.add_argument("model", metavar="FITTED.yaml")
    p.add_argument("data", metavar="DATA", help="a .csv or .parquet file of sequences (long form, with the id and "
                   "order columns; missing cells allowed)")
    p.add_argument("--steps", type=_count(1), default=1, metavar="K", help="how many steps ahead (1)")
    p.add_argument("--node", nargs="+", metavar="NODE", help="the nodes to forecast (default: every observed node; "
                   "latent nodes may be named)")
    p.add_argument("--proba", action="store_true", help="also write each state's predictive probability, "
                   "p(node=state) (a gaussian node: its predictive variance)")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write a CSV file (default: standard output)")
    add_reading_arguments(p)
    p.set_defaults(run=cmd_forecast)

    p = sub.add_parser("sample", help="draw rows from a fitted model")
    p.add_argument("model", metavar="FITTED.yaml")
    p.add_argument("-n", type=_count(0), required=True, help="number of rows")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write a CSV file (default: standard output)")
    p.add_argument("--seed", type=_count(0), help="random seed")
    p.add_argument("--length", type=_count(1), metavar="T",
                   help="sequence models: the steps of each sequence (-n is then the number of sequences)")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("convert", help="BIF or bnlearn JSON -> graph file, and graph file -> BIF")
    p.add_argument("input", metavar="IN", help=".bif, .json (bnlearn) or .yaml")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help=".yaml or .bif")
    p.set_defaults(run=cmd_convert)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"pgm: warning: {cli_words(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own one-line usage error
        return EXIT_USER_ERROR if exc.code else 0
    try:
        with warnings.catch_warnings():  # warnings as one line each, without pgm's source lines
            warnings.showwarning = _show_warning
            return args.run(args)
    except PGMError as exc:
        print(cli_words(str(exc)), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("pgm: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("pgm: out of memory; try fewer rows, or a smaller model", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a bug in pgm: one line, not a traceback (PGM_DEBUG=1 shows it)
        if os.environ.get("PGM_DEBUG"):
            raise
        print(f"pgm: internal error ({type(exc).__name__}: {exc}); please report it, with PGM_DEBUG=1 "
              "for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
