"""BIF (the Bayesian network Interchange Format) <-> graph-file data.

:func:`read_bif` turns BIF text into the plain dict of a graph file (what
:func:`pgm.schema.parse_spec` accepts) with the CPTs under ``params``;
:func:`write_bif` turns such a dict back into BIF text.

The reader takes the dialect of the bnlearn Bayesian network repository (what
bnlearn's ``write.bif`` and pgmpy's ``BIFWriter`` produce) and the older
JavaBayes/Cozman style it grew from:

* ``network NAME { property ...; }``, the name optional or quoted;
* ``variable X { type discrete [ K ] { s1, s2 }; property ...; }``, with commas
  between states optional, names quoted or bare; a bare name is any run of
  characters other than white space and ``{ } ( ) [ ] , ; | "``, so state names
  such as ``<5``, ``>=7.5``, ``Asy/Patchy``, ``0_5_MG_L`` or ``3`` and variable
  names with hyphens or dots all read as written; where commas separate the
  names (bnlearn's dialect) a name may also hold single spaces (``Grd Glass``),
  as bnlearn's own reader allows;
* ``probability ( X | A, B ) { ... }`` (or JavaBayes' ``probability ( X A B )``,
  the first name being the child) holding rows ``(a1, b1) p1, p2;`` in any
  order, a ``default p1, p2;`` for the configurations no row names, or one
  ``table p1, p2, ...;``;
* ``//`` and ``/* */`` comments anywhere.

``table`` for a node with parents lists the whole CPT in C order over
``(child, parent_1, ..., parent_n)``: the child's state varies slowest and the
last parent fastest, i.e. all entries for the child's first state (across every
parent configuration) come first.  That is the JavaBayes convention (its
dog-problem example lists P(dog-out = true | bowel-problem, family-out) for
(true, true), (true, false), (false, true), (false, false) before any entry for
dog-out = false) and what pgmpy's BIF reader does (it reshapes the values to
``(child states, parent configurations)``).

Parameters in the returned dict: ``params[node] = {"table": T}`` where ``T`` is
the list of ``k`` probabilities of a root node, or one row of ``k``
probabilities per parent configuration, the configurations in C order over the
node's ``parents`` (first parent slowest, last fastest).

Each row must sum to 1: within 1e-6 it is kept exactly as written; off by less
than 0.02 (files rounded to a few decimals) it is renormalised, with a
``UserWarning`` naming the rows; off by more, it is an error.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
import warnings
from pathlib import PurePath
from typing import Any

from pgm.errors import ModelError
from pgm.schema.spec import find_cycle

#: A row whose sum is within this of 1 is kept exactly as written.
SUM_TOL = 1e-6
#: A row whose sum is off by more than SUM_TOL but less than this is renormalised; beyond, an error.
RENORM_TOL = 0.02  # bnlearn itself accepts rows off by ~0.011 (hailfinder, water are rounded coarsely)

_TOKEN = re.compile(
    r"""
    \s*                                  # white space (line numbers come from offsets)
    (?:
        (?P<lc>//[^\n]*)
      | (?P<bc>/\*.*?\*/)
      | (?P<bco>/\*)
      | (?P<str>"[^"\n]*")
      | (?P<stro>")
      | (?P<p>[{}()\[\],;|])
      | (?P<w>(?:[^\s{}()\[\],;|"/]|/(?![/*]))+)
    )
    """,
    re.X | re.S,
)

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

#: A name that BIF readers (ours, pgmpy's, bnlearn's) take bare; anything else is written quoted.
_BARE = re.compile(r'[^\s{}()\[\],;|"]+(?: [^\s{}()\[\],;|"]+)*')

_HOW_VARIABLE = "a variable reads `variable NAME { type discrete [ K ] { s1, s2 }; }`"
_HOW_ENTRY = ("entries read `(a, b) p1, p2;` (one per parent configuration), `default p1, p2;` "
              "or `table p1, p2, ...;`")

Token = tuple[str, str, int]  # (kind: "w" word | "s" quoted string | "p" punctuation, text, offset)


# --------------------------------------------------------------------------- reading


class _Lines:
    """Offset -> line number, from the offsets of the newlines (found once, when first needed)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines: list[int] | None = None

    def __call__(self, pos: int) -> int:
        if self.newlines is None:
            self.newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_right(self.newlines, pos - 1) + 1

    @property
    def last(self) -> int:
        return self(len(self.text.rstrip("\n")))


def _tokens(text: str, source: str, line_of: _Lines) -> list[Token]:
    out: list[Token] = []
    append = out.append
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "w" or kind == "p":
            append((kind, m.group(kind), m.start(kind)))
        elif kind == "str":
            append(("s", m.group(kind)[1:-1], m.start(kind)))
        elif kind == "bco":
            raise ModelError(f"{source}:{line_of(m.start(kind))}: a `/*` comment is never closed; "
                             "end it with `*/`")
        elif kind == "stro":
            raise ModelError(f"{source}:{line_of(m.start(kind))}: a quoted name is not closed on its line; "
                             "add the closing `\"`")
    return out


def _show(tok: Token | None) -> str:
    if tok is None:
        return "the end of the file"
    kind, text, _ = tok
    return f'"{text}"' if kind == "s" else f"`{text}`"


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _labels(labels: list[str] | tuple[str, ...]) -> str:
    return "(" + ", ".join(labels) + ")"


class _Block:
    """A parsed ``probability`` block, resolved once every variable is known (lines, not offsets)."""

    __slots__ = ("child", "line", "parents", "entries", "joined")

    def __init__(self, child: str, line: int, parents: list[tuple[str, int]],
                 entries: list[tuple[str, list[str], list[float], int]], joined: str | None = None) -> None:
        self.child = child
        self.line = line
        self.parents = parents
        self.entries = entries  # (kind: "row" | "table" | "default", labels, numbers, line)
        self.joined = joined  # `probability ( a b )` read as the one variable "a b", if that is declared


class _Parser:
    """Recursive descent over the tokens; ``pos`` arguments are text offsets, stored lines are lines."""

    def __init__(self, tokens: list[Token], source: str, line_of: _Lines) -> None:
        self.toks = tokens
        self.i = 0
        self.src = source
        self.line = line_of
        self.network: str | None = None
        self.network_line: int | None = None
        self.states: dict[str, list[str]] = {}
        self.var_line: dict[str, int] = {}
        self.blocks: dict[str, _Block] = {}

    # -- helpers
    def err(self, pos: int | None, msg: str) -> ModelError:
        line = self.line.last if pos is None else self.line(pos)
        return ModelError(f"{self.src}:{line}: {msg}")

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, context: str) -> Token:
        if self.i >= len(self.toks):
            raise self.err(None, f"the file ends inside {context}; close it with `}}`")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def punct(self, ch: str, context: str, how: str) -> Token:
        tok = self.take(context)
        if tok[0] != "p" or tok[1] != ch:
            raise self.err(tok[2], f"expected `{ch}` in {context}, found {_show(tok)}; {how}")
        return tok

    def words_before_brace(self, context: str, how: str) -> tuple[str, int]:
        """A name up to the next ``{``; bare words are joined with spaces (bnlearn reads them so)."""
        tok = self.take(context)
        if tok[0] == "p":
            raise self.err(tok[2], f"expected a name in {context}, found {_show(tok)}; {how}")
        words = [tok[1]]
        while True:
            nxt = self.peek()
            if nxt is None or nxt[0] == "p" or tok[0] == "s" or nxt[0] == "s":
                break
            words.append(nxt[1])
            self.i += 1
        return " ".join(words), tok[2]

    def skip_property(self, context: str) -> None:
        """``property ... ;``: everything up to the next semicolon."""
        start = self.toks[self.i - 1][2]
        while True:
            if self.i >= len(self.toks):
                raise self.err(start, f"the `property` in {context} has no closing `;`; end it with `;`")
            tok = self.toks[self.i]
            self.i += 1
            if tok[0] == "p" and tok[1] == ";":
                return
            if tok[0] == "p" and tok[1] == "}":
                raise self.err(start, f"the `property` in {context} has no closing `;` before `}}`; "
                               "end it with `;`")

    @staticmethod
    def is_word(tok: Token | None, *words: str) -> bool:
        return tok is not None and tok[0] == "w" and tok[1].lower() in words

    def optional_semicolon(self) -> None:
        nxt = self.peek()
        if nxt is not None and nxt[0] == "p" and nxt[1] == ";":
            self.i += 1

    def labels(self, close: str, context: str, how: str) -> tuple[list[str], bool]:
        """Names up to ``close``, and whether commas separated them."""
        items: list[list[str]] = [[]]
        commas = False
        while True:
            tok = self.take(context)
            if tok[0] == "p" and tok[1] == close:
                break
            if tok[0] == "p" and tok[1] == ",":
                commas = True
                items.append([])
                continue
            if tok[0] == "p":
                raise self.err(tok[2], f"unexpected {_show(tok)} in {context}; {how}")
            items[-1].append(tok[1])
        if commas:  # bnlearn's dialect: commas separate names, which may hold spaces
            return [" ".join(item) for item in items if item], True
        return items[0], False  # JavaBayes' dialect: white space separates names

    # -- grammar
    def parse(self) -> None:
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            self.i += 1
            if self.is_word(tok, "network"):
                self.parse_network(tok)
            elif self.is_word(tok, "variable"):
                self.parse_variable()
            elif self.is_word(tok, "probability"):
                self.parse_probability(tok)
            elif tok[0] == "p" and tok[1] == ";":
                continue
            else:
                raise self.err(tok[2], f"unexpected {_show(tok)}; a BIF file holds `network NAME {{ }}`, "
                               "`variable NAME { ... }` and `probability ( ... ) { ... }` blocks")

    def parse_network(self, tok: Token) -> None:
        line = self.line(tok[2])
        if self.network_line is not None:
            raise self.err(tok[2], f"a second `network` block (the first is at line {self.network_line}); "
                           "a BIF file describes one network")
        self.network_line = line
        nxt = self.peek()
        if nxt is not None and nxt[0] != "p":
            self.network = self.words_before_brace("the `network` declaration", "it reads `network NAME { }`")[0]
        self.punct("{", "the `network` block", "it reads `network NAME { }`")
        depth = 1
        while depth:
            t = self.take(f"the `network` block opened at line {line}")
            if t[0] == "p" and t[1] == "{":
                depth += 1
            elif t[0] == "p" and t[1] == "}":
                depth -= 1
        self.optional_semicolon()

    def parse_variable(self) -> None:
        name, pos = self.words_before_brace("a `variable` declaration", _HOW_VARIABLE)
        line = self.line(pos)
        if name in self.var_line:
            raise self.err(pos, f"variable {name!r} is declared twice (first at line {self.var_line[name]}); "
                           "declare each variable once")
        context = f"the declaration of variable {name!r}"
        self.punct("{", context, _HOW_VARIABLE)
        states: list[str] | None = None
        while True:
            tok = self.take(f"{context} (opened at line {line})")
            if tok[0] == "p" and tok[1] == "}":
                break
            if tok[0] == "p" and tok[1] == ";":
                continue
            if self.is_word(tok, "property"):
                self.skip_property(context)
            elif self.is_word(tok, "type"):
                if states is not None:
                    raise self.err(tok[2], f"variable {name!r} declares its `type` twice; keep one")
                states = self.parse_type(name, tok)
            else:
                raise self.err(tok[2], f"unexpected {_show(tok)} in {context}; {_HOW_VARIABLE}")
        if states is None:
            raise self.err(pos, f"variable {name!r} has no `type discrete [ K ] {{ ... }};` line; "
                           "list its states, e.g. `type discrete [ 2 ] { yes, no };`")
        self.optional_semicolon()
        self.states[name] = states
        self.var_line[name] = line

    def parse_type(self, name: str, type_tok: Token) -> list[str]:
        context = f"the type of variable {name!r}"
        how = "it reads `type discrete [ K ] { s1, s2 };`"
        tok = self.take(context)
        if not self.is_word(tok, "discrete"):
            raise self.err(tok[2], f"variable {name!r} has type {_show(tok)}; only discrete variables "
                           "(`type discrete [ K ] { s1, s2 };`) can be read from BIF")
        self.punct("[", context, how)
        tok = self.take(context)
        if tok[0] != "w" or not tok[1].isdigit():
            raise self.err(tok[2], f"expected the state count of variable {name!r} inside `[ ]`, found "
                           f"{_show(tok)}; write it as a whole number, e.g. `[ 2 ]`")
        count = int(tok[1])
        self.punct("]", context, how)
        tok = self.take(context)
        if tok[0] == "w" and tok[1] == "=":  # JavaBayes' `type discrete[2] = { ... }`
            tok = self.take(context)
        if tok[0] != "p" or tok[1] != "{":
            raise self.err(tok[2], f"expected `{{` before the states of variable {name!r}, found {_show(tok)}; "
                           f"{how}")
        states, _ = self.labels("}", f"the states of variable {name!r}",
                                "separate states with commas and close the list with `}`")
        seen: set[str] = set()
        for state in states:
            if state in seen:
                raise self.err(type_tok[2], f"variable {name!r} lists state {state!r} twice; each state must "
                               "appear once")
            seen.add(state)
        if not states:
            raise self.err(type_tok[2], f"variable {name!r} lists no states; list them, e.g. `{{ yes, no }}`")
        if len(states) != count:
            raise self.err(type_tok[2], f"variable {name!r} declares [ {count} ] states but lists "
                           f"{len(states)} ({', '.join(states)}); make the count match the list")
        self.optional_semicolon()
        return states

    def parse_probability(self, tok: Token) -> None:
        pos = tok[2]
        line = self.line(pos)
        how = "it reads `probability ( CHILD | PARENT1, PARENT2 ) { ... }`"
        context = f"the `probability` declaration at line {line}"
        self.punct("(", "a `probability` declaration", how)
        names: list[tuple[str, int]] = []
        groups: list[list[tuple[str, int]]] = [[]]
        bar: int | None = None
        separators = False
        while True:
            t = self.take(context)
            if t[0] == "p" and t[1] == ")":
                break
            if t[0] == "p" and t[1] in ",|":
                separators = True
                if t[1] == "|":
                    if bar is not None:
                        raise self.err(t[2], f"a second `|` in the `probability` declaration; {how}")
                    bar = len(groups)
                groups.append([])
                continue
            if t[0] == "p":
                raise self.err(t[2], f"unexpected {_show(t)} in the `probability` declaration; {how}")
            groups[-1].append((t[1], t[2]))
        if separators:  # `( X | A, B )`: names between separators (joined if they hold spaces)
            if any(not g for g in groups):
                raise self.err(pos, f"the `probability` declaration has an empty name (a stray `,` or `|`); {how}")
            names = [(" ".join(w for w, _ in g), g[0][1]) for g in groups]
        else:  # JavaBayes: `( X A B )`, the child first
            names = groups[0]
        joined = " ".join(w for w, _ in names) if not separators and len(names) > 1 else None
        if not names:
            raise self.err(pos, f"the `probability` declaration names no variable; {how}")
        if bar is not None and bar != 1:
            raise self.err(pos, f"`probability ( ... )` must name exactly one variable before `|` "
                           f"(found {bar}); {how}")
        child = names[0][0]
        if joined is not None and joined in self.var_line and child not in self.var_line:
            child, names = joined, names[:1]  # `probability ( Chest Xray )`: one variable with a space
            joined = None
        if child in self.blocks:
            raise self.err(pos, f"variable {child!r} has two `probability` blocks (the first at line "
                           f"{self.blocks[child].line}); give each variable one")
        block_context = f"the probability block of {child!r}"
        self.punct("{", block_context, how)
        entries: list[tuple[str, list[str], list[float], int]] = []
        row_how = "a row reads `(a, b) p1, p2;`"
        while True:
            t = self.take(f"{block_context} (opened at line {line})")
            if t[0] == "p" and t[1] == "}":
                break
            if t[0] == "p" and t[1] == ";":
                continue
            if self.is_word(t, "property"):
                self.skip_property(block_context)
            elif self.is_word(t, "table", "default"):
                entries.append((t[1].lower(), [], self.numbers(block_context, t[2]), self.line(t[2])))
            elif t[0] == "p" and t[1] == "(":
                labels, commas = self.labels(")", f"the parent states of a row of {child!r}", row_how)
                if not commas and len(names) == 2 and len(labels) > 1:
                    labels = [" ".join(labels)]  # one parent: `(Grd Glass)` is one state
                entries.append(("row", labels, self.numbers(block_context, t[2]), self.line(t[2])))
            else:
                raise self.err(t[2], f"unexpected {_show(t)} in {block_context}; {_HOW_ENTRY}")
        self.optional_semicolon()
        if joined is not None and joined in self.blocks:
            raise self.err(pos, f"variable {joined!r} has two `probability` blocks (the first at line "
                           f"{self.blocks[joined].line}); give each variable one")
        self.blocks[child] = _Block(child, line, [(n, self.line(p)) for n, p in names[1:]], entries, joined)

    def numbers(self, context: str, pos: int) -> list[float]:
        out: list[float] = []
        toks = self.toks
        n = len(toks)
        i = self.i
        while True:
            if i >= n:
                raise self.err(pos, f"the probabilities in {context} have no closing `;`; end the line with `;`")
            tok = toks[i]
            i += 1
            kind, text = tok[0], tok[1]
            if kind == "p":
                if text == ";":
                    break
                if text == ",":
                    continue
                if text == "}":
                    raise self.err(pos, f"the probabilities in {context} have no closing `;`; "
                                   "end the line with `;`")
                raise self.err(pos, f"the probabilities in {context} run into {_show(tok)} at line "
                               f"{self.line(tok[2])}; end each line of probabilities with `;`")
            if kind != "w" or not _NUMBER.fullmatch(text):
                raise self.err(tok[2], f"{_show(tok)} in {context} is not a number; probabilities are "
                               "decimal numbers such as 0.25 or 1e-05, separated by commas")
            out.append(float(text))
        self.i = i
        if not out:
            raise self.err(pos, f"an entry of {context} lists no probabilities; give one per state")
        return out


def _find_cycle(parents: dict[str, list[str]]) -> list[str] | None:
    """A cycle in parent -> child order (the search follows child -> parent edges, then reverses)."""
    cycle = find_cycle(parents)
    return None if cycle is None else cycle[::-1]


class _RowChecker:
    """Checks that rows are probability vectors; renormalises those a little off."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.renormalised: list[tuple[str, int, float]] = []

    def __call__(self, values: list[float], what: str, line: int) -> list[float]:
        for v in values:
            if not (0.0 <= v <= 1.0 + SUM_TOL):
                raise ModelError(f"{self.src}:{line}: {what} holds the probability {v!r}, outside [0, 1]; "
                                 "every probability must lie between 0 and 1")
        total = math.fsum(values)
        off = abs(total - 1.0)
        if off <= SUM_TOL:
            return values
        if off < RENORM_TOL:
            self.renormalised.append((what, line, total))
            return [v / total for v in values]
        raise ModelError(f"{self.src}:{line}: {what} sums to {total:.10g}, not 1; fix the probabilities "
                         f"(rows off by less than {RENORM_TOL:g} are renormalised, larger errors are refused)")


def _network_name(network: str | None, source: str) -> str:
    if network and network.lower() != "unknown":
        return network
    if source and not (source.startswith("<") and source.endswith(">")):
        stem = PurePath(source).name
        for suffix in (".gz", ".bif"):
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
        if stem:
            return stem
    return network or "unknown"


def read_bif(text: str, source: str = "<bif>") -> dict[str, Any]:
    """Parse BIF text into graph-file data (``name``, ``graph``, ``nodes``, ``params``).

    ``source`` names the text in error messages (a path or ``<...>``); its stem
    names the model when the file's network is ``unknown``.

    Raises
    ------
    pgm.ModelError
        ``source:line: what is wrong; how to fix it`` for syntax errors, unknown
        variables or states, wrong counts, missing rows, rows that do not sum to 1.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            line = bytes(text[: exc.start]).count(b"\n") + 1
            raise ModelError(f"{source}:{line}: the BIF text is not valid UTF-8; save it as UTF-8") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ModelError(f"{source}: the BIF text is empty; it should hold `network`, `variable` and "
                         "`probability` blocks")
    line_of = _Lines(text)
    parser = _Parser(_tokens(text, source, line_of), source, line_of)
    parser.parse()
    states, blocks = parser.states, parser.blocks
    if not states:
        raise ModelError(f"{source}:1: the file declares no variables; declare them with "
                         "`variable NAME { type discrete [ K ] { s1, s2 }; }`")
    names = list(states)

    for child in list(blocks):  # a probability block read before its variable was declared
        block = blocks[child]
        if child not in states and block.joined in states and block.joined not in blocks:
            del blocks[child]
            block.child, block.parents, block.joined = block.joined, [], None
            blocks[block.child] = block

    # structure: every probability block names known variables, every variable has a block
    parents: dict[str, list[str]] = {}
    for child, block in blocks.items():
        if child not in states:
            raise ModelError(f"{source}:{block.line}: `probability ( {child} ... )` is for the unknown variable "
                             f"{child!r}{_suggest(child, names)}; declare it with a `variable {child} {{ ... }}` "
                             "block or fix the name")
        seen: set[str] = set()
        for parent, line in block.parents:
            if parent not in states:
                raise ModelError(f"{source}:{line}: the parent {parent!r} of {child!r} is not a declared "
                                 f"variable{_suggest(parent, names)}; declare it or fix the name")
            if parent == child:
                raise ModelError(f"{source}:{line}: variable {child!r} lists itself as a parent; remove it")
            if parent in seen:
                raise ModelError(f"{source}:{line}: parent {parent!r} of {child!r} is listed twice; list each "
                                 "parent once")
            seen.add(parent)
        parents[child] = [p for p, _ in block.parents]
    for name in names:
        if name not in blocks:
            raise ModelError(f"{source}:{parser.var_line[name]}: variable {name!r} has no `probability` block; "
                             f"add `probability ( {name} ) {{ table ...; }}` (or one with its parents)")
    cycle = _find_cycle({n: parents[n] for n in names})
    if cycle:
        raise ModelError(f"{source}:{blocks[cycle[-1]].line}: directed cycle {' -> '.join(cycle)}; a Bayesian "
                         "network must be acyclic (remove one of these parents)")

    check = _RowChecker(source)
    params: dict[str, Any] = {}
    for name in names:
        params[name] = {"table": _table(blocks[name], states, check, source)}

    if check.renormalised:
        what, line, total = max(check.renormalised, key=lambda r: abs(r[2] - 1.0))
        warnings.warn(f"{source}: renormalised {len(check.renormalised)} probability row(s) whose sum was off "
                      f"1 by more than {SUM_TOL:g} but less than {RENORM_TOL:g} (the worst: {what} at line "
                      f"{line} summed to {total!r})", UserWarning, stacklevel=2)

    nodes: dict[str, Any] = {}
    for name in names:
        node: dict[str, Any] = {"states": list(states[name])}
        if parents[name]:
            node["parents"] = list(parents[name])
        nodes[name] = node
    data = {"name": _network_name(parser.network, source), "graph": "directed", "nodes": nodes,
            "params": params}
    from pgm.schema import parse_spec  # local: keeps `import pgm.io.bif` light

    parse_spec(data, source)
    return data


def _table(block: _Block, states: dict[str, list[str]], check: _RowChecker, source: str) -> list:
    child = block.child
    labels = states[child]
    k = len(labels)
    pars = [p for p, _ in block.parents]
    parent_labels = [states[p] for p in pars]
    cards = [len(lst) for lst in parent_labels]
    n_configs = math.prod(cards)

    def count_ok(values: list[float], what: str, line: int, expected: int = k) -> None:
        if len(values) != expected:
            per = (f"{child!r} has {k} states ({', '.join(labels)})" if expected == k else
                   f"{child!r} has {k} states and {n_configs} parent configurations, so its table needs "
                   f"{k} x {n_configs} = {expected}")
            raise ModelError(f"{source}:{line}: {what} lists {len(values)} probabilities but {per}; "
                             + ("give one probability per state" if expected == k else
                                "give the whole table, the child's state varying slowest"))

    kinds = {kind for kind, _, _, _ in block.entries}
    if not block.entries:
        raise ModelError(f"{source}:{block.line}: the probability block of {child!r} holds no probabilities; "
                         + _HOW_ENTRY)
    if "table" in kinds and len(block.entries) > 1:
        second = block.entries[1][3]
        raise ModelError(f"{source}:{second}: the probability block of {child!r} has a `table` and other "
                         "entries; give either one `table` or rows (with an optional `default`)")

    if not pars:
        entry = block.entries[0]
        kind, row_labels, values, line = entry
        if len(block.entries) > 1:
            raise ModelError(f"{source}:{block.entries[1][3]}: {child!r} has no parents, so its probability "
                             "block holds one line, `table p1, p2, ...;`")
        if kind == "row" and row_labels:
            raise ModelError(f"{source}:{line}: the row {_labels(row_labels)} of {child!r} names parent states, "
                             f"but `probability ( {child} )` declares no parents; write `table p1, p2, ...;` "
                             "or add the parents after `|`")
        what = f"the table of {child!r}"
        count_ok(values, what, line)
        return check(values, what, line)

    if "table" in kinds:
        _, _, values, line = block.entries[0]
        count_ok(values, f"the table of {child!r}", line, k * n_configs)
        rows = []
        for c in range(n_configs):
            row = [values[s * n_configs + c] for s in range(k)]
            what = f"the table of {child!r} at {_labels(_config(c, parent_labels))}"
            rows.append(check(row, what, line))
        return rows

    strides = [math.prod(cards[j + 1:]) for j in range(len(cards))]
    index = [{label: i for i, label in enumerate(states[p])} for p in pars]
    rows_by_config: dict[int, list[float]] = {}
    line_by_config: dict[int, int] = {}
    default: list[float] | None = None
    default_line = 0
    for kind, row_labels, values, line in block.entries:
        if kind == "default":
            if default is not None:
                raise ModelError(f"{source}:{line}: the probability block of {child!r} has two `default` lines "
                                 f"(the first at line {default_line}); keep one")
            what = f"the default row of {child!r}"
            count_ok(values, what, line)
            default, default_line = check(values, what, line), line
            continue
        if len(row_labels) != len(pars):
            raise ModelError(f"{source}:{line}: the row {_labels(row_labels)} of {child!r} names "
                             f"{len(row_labels)} parent state(s) but {child!r} has {len(pars)} parent(s) "
                             f"({', '.join(pars)}); name one state per parent, in that order")
        c = 0
        for j, label in enumerate(row_labels):
            i = index[j].get(label)
            if i is None:
                raise ModelError(f"{source}:{line}: the row {_labels(row_labels)} of {child!r} names the state "
                                 f"{label!r} of {pars[j]!r}, which has states {', '.join(states[pars[j]])}"
                                 f"{_suggest(label, states[pars[j]])}; use one of those")
            c += i * strides[j]
        if c in rows_by_config:
            raise ModelError(f"{source}:{line}: the row {_labels(row_labels)} of {child!r} is given twice (first "
                             f"at line {line_by_config[c]}); keep one")
        what = f"the row {_labels(row_labels)} of {child!r}"
        count_ok(values, what, line)
        rows_by_config[c] = check(values, what, line)
        line_by_config[c] = line

    rows = []
    missing: list[int] = []
    for c in range(n_configs):
        row = rows_by_config.get(c)
        if row is None:
            if default is None:
                missing.append(c)
                continue
            row = list(default)
        rows.append(row)
    if missing:
        first = _labels(_config(missing[0], parent_labels))
        more = f" and {len(missing) - 1} other configuration(s)" if len(missing) > 1 else ""
        ps = ", ".join(f"p{i + 1}" for i in range(k)) if k <= 3 else f"p1, ..., p{k}"
        raise ModelError(f"{source}:{block.line}: the probability block of {child!r} has no row for "
                         f"{first} (states of {', '.join(pars)}){more} and no `default`; add a row "
                         f"`{first} {ps};` for each, or a `default {ps};` line")
    return rows


def _config(c: int, label_lists: list[list[str]]) -> list[str]:
    """The parent labels of configuration ``c`` (C order: the last parent varies fastest)."""
    out: list[str] = []
    for labels in reversed(label_lists):
        c, i = divmod(c, len(labels))
        out.append(labels[i])
    return out[::-1]


# --------------------------------------------------------------------------- writing


def _bif_name(name: str, what: str, spaces: bool = True) -> str:
    """``name`` bare when every BIF reader takes it so, else quoted.

    Single inner spaces stay bare (bnlearn's reader, and ours, split names at
    commas); ``spaces=False`` where no comma separates (a list of one state).
    """
    if (_BARE.fullmatch(name) and name != "=" and "//" not in name and "/*" not in name
            and (spaces or " " not in name)):
        return name
    if '"' in name or "\n" in name or "\r" in name:
        raise ModelError(f"write_bif: {what} {name!r} cannot be written in BIF (it holds a quote or a line "
                         "break); rename it")
    return f'"{name}"'


def _prob(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numbers

            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise ModelError(f"write_bif: {what} holds {value!r}, which is not a number; "
                             "a table holds probabilities") from None
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ModelError(f"write_bif: {what} holds {value!r}; probabilities are finite and non-negative")
    return float.__repr__(value)


def write_bif(data: Any) -> str:
    """BIF text for a fitted directed model of discrete table nodes.

    ``data`` is graph-file data with ``params`` (as :func:`read_bif` returns, or a
    fitted graph file read as YAML); a validated ``ModelSpec`` works too.
    Probabilities are written with ``repr`` so that reading the text back gives
    the same floats.  The result reads with :func:`read_bif`, pgmpy's
    ``BIFReader`` and bnlearn's ``read.bif`` (bnlearn needs variable names made
    of letters, digits and underscores).

    Raises
    ------
    pgm.ModelError
        naming the node, for a gaussian or logistic node, a node in a plate, an
        undirected graph, or missing or misshapen parameters.
    """
    if hasattr(data, "model_dump"):
        data = data.model_dump(by_alias=True, exclude_none=True)
    if not isinstance(data, dict):
        raise ModelError(f"write_bif: expected graph-file data (a mapping with `name`, `nodes` and `params`), "
                         f"got {type(data).__name__}")
    if data.get("graph", "directed") != "directed":
        raise ModelError("write_bif: BIF holds Bayesian networks only; this graph is "
                         f"{data.get('graph')!r} (set `graph: directed` and declare parents)")
    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        raise ModelError("write_bif: the data declares no `nodes`; a BIF file needs at least one variable")
    params = data.get("params")
    if not isinstance(params, dict):
        raise ModelError("write_bif: the data has no `params`; BIF stores fitted CPTs, so fit the model first "
                         "(pgm.fit or `pgm fit`) or read a fitted file")

    labels: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for name, node in nodes.items():
        if not isinstance(node, dict):
            raise ModelError(f"write_bif: node {name!r} is not a mapping of fields")
        kind = node.get("type", "discrete")
        if kind != "discrete":
            raise ModelError(f"write_bif: node {name!r} is a {kind} node; BIF holds discrete nodes with "
                             "table CPDs only")
        if node.get("cpd", "table") != "table":
            raise ModelError(f"write_bif: node {name!r} has a {node.get('cpd')} CPD; BIF holds table CPDs only")
        if node.get("plate") is not None:
            raise ModelError(f"write_bif: node {name!r} sits in plate {node.get('plate')!r}; BIF has no plates "
                             "(unroll the plate into separate nodes first)")
        states = node.get("states")
        if isinstance(states, bool) or not isinstance(states, (int, list)) or not states:
            raise ModelError(f"write_bif: node {name!r} has no states; declare `states`")
        labels[name] = [str(i) for i in range(states)] if isinstance(states, int) else [
            _state_text(s) for s in states]
        parents[name] = list(node.get("parents") or [])
    for name, pars in parents.items():
        for p in pars:
            if p not in nodes:
                raise ModelError(f"write_bif: node {name!r} has the unknown parent {p!r}; declare it")

    out: list[str] = []
    description = data.get("description")
    if description:
        out.extend(f"// {line}".rstrip() for line in str(description).splitlines())
    out.append(f"network {_bif_name(str(data.get('name') or 'unknown'), 'the network name')} {{")
    out.append("}")
    for name in nodes:
        one = len(labels[name]) == 1
        states_text = ", ".join(_bif_name(s, f"a state of node {name!r}:", not one) for s in labels[name])
        out.append(f"variable {_bif_name(name, 'the node name')} {{")
        out.append(f"  type discrete [ {len(labels[name])} ] {{ {states_text} }};")
        out.append("}")
    for name in nodes:
        block = params.get(name)
        table = block.get("table") if isinstance(block, dict) else None
        if table is None:
            raise ModelError(f"write_bif: node {name!r} has no table under `params` (expected "
                             f"`params: {{{name}: {{table: ...}}}}`); fit the model first")
        k = len(labels[name])
        pars = parents[name]
        head = _bif_name(name, "the node name")
        if not pars:
            row = _row(table, k, f"the table of node {name!r}")
            out.append(f"probability ( {head} ) {{")
            out.append(f"  table {', '.join(row)};")
            out.append("}")
            continue
        cards = [len(labels[p]) for p in pars]
        n_configs = math.prod(cards)
        if not isinstance(table, (list, tuple)) or len(table) != n_configs:
            got = len(table) if isinstance(table, (list, tuple)) else type(table).__name__
            raise ModelError(f"write_bif: the table of node {name!r} should hold {n_configs} rows (one per "
                             f"configuration of {', '.join(pars)}), got {got}")
        out.append(f"probability ( {head} | {', '.join(_bif_name(p, 'the node name') for p in pars)} ) {{")
        parent_labels = [[_bif_name(s, "a state") for s in labels[p]] for p in pars]
        for c, row_values in enumerate(table):
            config = _config(c, parent_labels)
            row = _row(row_values, k, f"row {c} of the table of node {name!r}")
            out.append(f"  ({', '.join(config)}) {', '.join(row)};")
        out.append("}")
    return "\n".join(out) + "\n"


def _state_text(label: Any) -> str:
    if isinstance(label, bool):
        return "true" if label else "false"
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _row(values: Any, k: int, what: str) -> list[str]:
    if not isinstance(values, (list, tuple)) or len(values) != k:
        got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
        raise ModelError(f"write_bif: {what} should hold {k} probabilities (one per state), got {got}")
    return [_prob(v, what) for v in values]
