"""Imports point one way: each pgm module imports only pgm modules to its left in LAYERS.

``pgm/__init__.py`` is exempt (it re-exports the API); modules not in LAYERS are not
checked.  Importing the package itself (``from pgm import X``) counts as importing
whatever ``pgm/__init__.py`` imports.  Imports inside functions count too: a
function-level import is the usual way to hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pgm"
LAYERS = ["errors", "schema", "io", "graph", "encode", "sequence", "cpd", "features", "infer", "learn", "scoring", "evidence", "fitted", "markov", "convert", "stream", "seqstream", "distributed", "draw", "notebook", "api", "cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for every import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def targets(module: str, names: list[str]) -> list[str]:
    """The pgm modules an import statement loads (``from pgm import cli`` loads ``pgm.cli``)."""
    if module != "pgm":
        return [module]
    out = []
    for name in names:
        sub = PACKAGE / name
        out.append(f"pgm.{name}" if sub.with_suffix(".py").exists() or (sub / "__init__.py").exists() else "pgm")
    return out


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "pgm":
        return None
    if len(parts) == 1:  # the package: as far right as what its __init__ imports
        inner = [layer(t) for _, m, n in imported_modules(PACKAGE / "__init__.py") for t in targets(m, n)
                 if t != "pgm"]
        return max((i for i in inner if i is not None), default=None)
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        importer = module_name(path)
        own = layer(importer)
        if own is None:
            continue
        for line, module, names in imported_modules(path):
            for target in targets(module, names):
                theirs = layer(target)
                if theirs is not None and theirs > own:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {importer} imports {target} "
                                 f"({LAYERS[theirs]} is right of {LAYERS[own]} in {' < '.join(LAYERS)})")
    return found


def test_imports_point_one_way():
    found = violations()
    assert not found, "right-to-left imports:\n" + "\n".join(found)


#: Inside pgm/cpd: the package's helpers, then the shared base, then the counts that discrete kinds share,
#: then the kinds (each one module that imports no other kind), then the registry that maps `cpd:` values
#: to kinds, then the facade.
CPD_LAYERS = [{"pgm.cpd"}, {"pgm.cpd.base"}, {"pgm.cpd.counts"}, {"pgm.cpd.table", "pgm.cpd.linear", "pgm.cpd.logistic",
              "pgm.cpd.noisy_or"}, {"pgm.cpd.registry"}, {"pgm.cpd.family"}]


def cpd_layer(module: str) -> int | None:
    return next((i for i, group in enumerate(CPD_LAYERS) if module in group), None)


def test_cpd_kinds_are_independent_modules():
    """A CPD kind imports only the shared base (never another kind, the registry or the facade);
    the registry imports the kinds; nothing in pgm/cpd imports the facade."""
    found = []
    files = sorted((PACKAGE / "cpd").glob("*.py"))
    unplaced = {module_name(f) for f in files} - set().union(*CPD_LAYERS)
    assert not unplaced, f"{sorted(unplaced)}: place the new pgm/cpd modules in CPD_LAYERS"
    for path in files:
        own = cpd_layer(module_name(path))
        for line, module, names in imported_modules(path):
            for target in targets(module, names):
                theirs = cpd_layer(target)
                if theirs is not None and target != module_name(path) and theirs >= own:
                    found.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
    assert not found, "imports inside pgm/cpd that do not point down:\n" + "\n".join(found)


def test_checker_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself: a relative import from schema into graph is caught."""
    fake = tmp_path / "pgm"
    (fake / "schema").mkdir(parents=True)
    (fake / "__init__.py").write_text("from pgm.api import load\n")
    (fake / "api.py").write_text("")
    (fake / "graph.py").write_text("")
    (fake / "schema" / "__init__.py").write_text("")
    (fake / "schema" / "spec.py").write_text("def f():\n    from ..graph import build\n")
    (fake / "errors.py").write_text("from pgm import load\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations()
    assert len(found) == 2, found
    assert found[0].startswith("pgm/errors.py:1: pgm.errors imports pgm (api is right of errors")
    assert found[1].startswith("pgm/schema/spec.py:2: pgm.schema.spec imports pgm.graph")


def test_schema_does_not_import_numpy():
    code = "import sys, pgm.schema; heavy = sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules); print(heavy)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]", f"`import pgm.schema` imported {run.stdout.strip()}"
