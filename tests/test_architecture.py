"""The house rules of the package layout, checked on the source (design.md, "Layout" and "Data flows one way").

Floors, lowest first: the ground floor (errors, validation, _results, _version, _progress); the shared floor
(linalg, operators, probing, scale, nn, stats: design.md's "except through the ground floor, stats, linalg,
operators, probing, scale and nn"); the inputs (problems, data, loaders: what comes in, used by workflows); the
capabilities (surrogate, spectral, jacobian, koopman, flows, fibers), which do not import each other; ``report``,
the floor of figures and pages that takes the capabilities' results and that no capability imports; the
workflows, which wire everything; the CLI, which only parses. Every module of the package is placed on exactly
one floor, and an import is allowed only by the table ALLOWED below (a module may always import its own package).
On the library floors (ground, shared, capabilities) every public definition is in its module's ``__all__``.
No module below the report floor imports matplotlib: figures live with the report and take results.

The graph of linlens → linlens imports is read from the AST of every module found by ``pkgutil.walk_packages``,
top-level and function-level imports alike (a lazy import is still a dependency), so these tests fail on an
import that would only run inside a function. Dynamic imports by string (``importlib.import_module`` in the
CLI's table of reproductions) are not seen; they point from the CLI downwards. The checker itself is tested on
a planted violation.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import networkx as nx
import pytest

import linlens

FLOORS: dict[str, set[str]] = {
    "ground": {"linlens.errors", "linlens.validation", "linlens._results", "linlens._version", "linlens._progress"},
    "shared": {"linlens.linalg", "linlens.operators", "linlens.probing", "linlens.scale", "linlens.nn",
               "linlens.stats"},
    "inputs": {"linlens.problems", "linlens.data", "linlens.loaders"},
    "capability": {"linlens.surrogate", "linlens.spectral", "linlens.jacobian", "linlens.koopman", "linlens.flows",
                   "linlens.fibers"},
    "report": {"linlens.report"},
    # tracking wires surrogate, jacobian and fibers over training steps: a workflow
    "workflow": {"linlens.workflows", "linlens.tracking"},
    "cli": {"linlens.cli", "linlens.__main__"},
    "root": {"linlens"},  # the public API: re-exports (lazily) from every floor but the CLI
}
# which floors a module of each floor may import (besides its own package)
ALLOWED: dict[str, set[str]] = {
    "ground": {"ground"},
    "shared": {"ground", "shared"},
    "inputs": {"ground", "shared", "inputs"},
    "capability": {"ground", "shared"},  # not "capability": capabilities do not import each other
    "report": {"ground", "shared", "capability", "report"},  # figures and pages take the capabilities' results
    "workflow": {"ground", "shared", "inputs", "capability", "report", "workflow"},
    "cli": {"ground", "shared", "inputs", "capability", "report", "workflow", "cli", "root"},
    "root": {"ground", "shared", "inputs", "capability", "report", "workflow"},
}


def _top(name: str) -> str:
    """The package or top-level module that ``name`` belongs to: linlens.jacobian.dense → linlens.jacobian."""
    return ".".join(name.split(".")[:2])


def floor_of(name: str) -> str | None:
    """The floor of module ``name`` (None when it is placed nowhere)."""
    found = [f for f, members in FLOORS.items() if _top(name) in members]
    return found[0] if len(found) == 1 else None


def layering_violations(edges: dict[str, list[str]]) -> list[str]:
    """Imports that break the floors: ``edges`` maps a module to the linlens modules it imports."""
    bad = []
    for src, dsts in edges.items():
        for dst in dsts:
            if _top(src) == _top(dst):
                continue
            fs, fd = floor_of(src), floor_of(dst)
            if fs is None or fd is None or fd not in ALLOWED[fs]:
                bad.append(f"{src} ({fs}) imports {dst} ({fd})")
    return sorted(set(bad))


def _modules() -> dict[str, bool]:
    """name → is_package, for linlens and everything under it."""
    mods = {"linlens": True}
    for info in pkgutil.walk_packages(linlens.__path__, "linlens."):
        mods[info.name] = info.ispkg
    return mods


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(name: str) -> list[tuple[str, int, bool, bool]]:
    """(imported linlens module, line, inside a function, under ``if TYPE_CHECKING``) for each import in
    ``name``. ``from linlens.x import y`` names ``linlens.x.y`` where that is a module, else ``linlens.x``."""
    path = importlib.util.find_spec(name).origin
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    package = name if MODULES[name] else name.rpartition(".")[0]
    found: list[tuple[str, int, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            fn = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            tc = type_only or (isinstance(child, ast.If) and _is_type_checking(child))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, fn, tc) for a in child.names if a.name.startswith("linlens"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package
                    for _ in range(child.level - 1):
                        base = base.rpartition(".")[0]
                    target = f"{base}.{child.module}" if child.module else base
                else:
                    target = child.module or ""
                if target == "linlens" or target.startswith("linlens."):
                    for a in child.names:
                        sub = f"{target}.{a.name}"
                        found.append((sub if sub in MODULES else target, child.lineno, fn, tc))
            visit(child, fn, tc)

    visit(tree, False, False)
    return found


EDGES = {name: _imports(name) for name in MODULES}


def _graph() -> nx.DiGraph:
    """Modules and their imports, without a module's import of its own ancestor package (Python runs the
    ancestors' ``__init__`` first anyway: that is the package re-exporting its submodules, not a dependency)."""
    g = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for src, imports in EDGES.items():
        for dst, *_ in imports:
            if not src.startswith(dst + "."):
                g.add_edge(src, dst)
    return g


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    # optional dependencies (dask, zarr, zuko, pydmd) are imported lazily, so every module imports without them
    importlib.import_module(name)


def test_walk_finds_the_layout():
    # the floors name real modules: a rename that empties a floor must not silently pass the other tests
    for members in FLOORS.values():
        for name in members:
            assert name in MODULES, name
    assert len(MODULES) > 50


def test_every_module_is_on_exactly_one_floor():
    # a new top-level module or package must be placed (nn, loaders and data once were on no floor)
    unplaced = sorted({_top(m) for m in MODULES if floor_of(m) is None})
    assert not unplaced, f"modules on no floor (or on two): {unplaced}"


def test_the_graph_sees_function_level_and_relative_imports():
    # an independent route for the parser: the CLI imports its workflows inside the command functions
    lazy = {dst for dst, _, fn, _ in EDGES["linlens.cli"] if fn}
    assert "linlens.workflows.demo" in lazy and "linlens.workflows.fibers_cmd" in lazy
    # `from linlens import nn as lnn` names the module linlens.nn, not the package linlens
    assert "linlens.nn" in {dst for dst, *_ in EDGES["linlens.workflows.demo"]}
    # a package __init__ re-exports its submodules
    assert {"linlens.fibers.barcode", "linlens.fibers.network"} <= {dst for dst, *_ in EDGES["linlens.fibers"]}


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c + [c[0]]) for c in cycles)


def test_no_module_imports_its_own_package():
    # `from linlens.fibers import X` inside linlens/fibers/*.py runs a half-initialised __init__
    bad = [f"{src}:{line} imports {dst}" for src, imports in EDGES.items() for dst, line, *_ in imports
           if src.startswith(dst + ".") and dst != src]
    assert not bad, bad


def _edges() -> dict[str, list[str]]:
    return {src: [dst for dst, *_ in imports] for src, imports in EDGES.items()}


def test_imports_follow_the_floors():
    bad = layering_violations(_edges())
    assert not bad, bad


@pytest.mark.parametrize("src,dst", [
    ("linlens.koopman.study", "linlens.report.figures"),  # a capability importing the report floor
    ("linlens.koopman.dmd", "linlens.flows.models"),  # capabilities importing each other
    ("linlens.linalg.svd", "linlens.jacobian.dense"),  # the shared floor importing a capability
    ("linlens.errors", "linlens.linalg"),  # the ground floor importing upwards
    ("linlens.jacobian.field", "linlens.problems"),  # a capability importing the inputs
    ("linlens.report.figures", "linlens.workflows.inverse"),  # the report importing a workflow
    ("linlens.workflows.demo", "linlens.cli"),  # a workflow importing the CLI
    ("linlens.workflows.study", "linlens.cli"),
])
def test_a_planted_violation_fails_the_check(src, dst):
    # the real graph plus one planted import: exactly that import is reported
    edges = _edges()
    edges[src] = [*edges[src], dst]
    bad = layering_violations(edges)
    assert len(bad) == 1 and bad[0].startswith(f"{src} (") and f"imports {dst} (" in bad[0], bad


def test_the_checker_allows_what_the_design_allows():
    # a synthetic graph of allowed imports, one per rule
    ok = {"linlens.validation": ["linlens.errors"], "linlens.scale": ["linlens.linalg.svd"],
          "linlens.koopman.study": ["linlens.koopman.dmd", "linlens.nn", "linlens.stats"],
          "linlens.report.spectral_figures": ["linlens.spectral"], "linlens.workflows.demo": ["linlens.report",
          "linlens.problems", "linlens.surrogate"],
          "linlens.workflows.study": ["linlens.surrogate", "linlens.problems"],
          "linlens.cli": ["linlens.workflows.demo", "linlens"]}
    assert layering_violations(ok) == []
    assert layering_violations({"linlens.newthing": ["linlens.errors"]}) == [
        "linlens.newthing (None) imports linlens.errors (ground)"]  # an unplaced module is reported


def _plotting_imports(tree: ast.AST) -> list[int]:
    """Lines of ``tree`` that import matplotlib (any form, at any depth)."""
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Import) and any(a.name.split(".")[0] == "matplotlib" for a in n.names)
            or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "matplotlib"]


def figure_code_below_report(sources: dict[str, str]) -> list[str]:
    """Modules below the report floor (ground, shared, inputs, capabilities) that draw: design.md's "figures live
    with report (one home, one name per figure) and take results" — a capability computes, the report draws."""
    below = {"ground", "shared", "inputs", "capability"}
    return [f"{name}:{line} imports matplotlib" for name, text in sources.items() if floor_of(name) in below
            for line in _plotting_imports(ast.parse(text))]


def test_figures_live_only_with_the_report():
    sources = {name: Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8") for name in MODULES}
    assert figure_code_below_report(sources) == []
    # planted: a capability module that draws its own figure, lazily inside a function, is reported
    planted = {"linlens.koopman.dmd": "def plot(e):\n    import matplotlib.pyplot as plt\n    return plt.figure()\n",
               "linlens.report.figures": "import matplotlib\n"}
    assert figure_code_below_report(planted) == ["linlens.koopman.dmd:2 imports matplotlib"]


def test_library_modules_export_every_public_definition():
    # a module's __all__ is its public API (the docs test and `from m import *` walk it): on the library floors
    # every top-level function or class without a leading underscore is in it (private modules, _name.py, and
    # the application floors — inputs, report, workflows, CLI commands — are not checked here)
    bad = []
    for name in MODULES:
        if floor_of(name) not in ("ground", "shared", "capability") or name.rpartition(".")[2].startswith("_"):
            continue
        tree = ast.parse(Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8"))
        public = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                  and not n.name.startswith("_")]
        exported = set(getattr(importlib.import_module(name), "__all__", ()))
        bad += [f"{name}.{d}" for d in public if d not in exported]
    assert not bad, f"public definitions missing from their module's __all__: {bad}"


def test_function_level_imports_say_why():
    # issue 13: imports of linlens modules sit at the top of the file; a lazy one carries a comment saying why
    # (an optional or heavy dependency, a true cycle), on its line or the line above
    bad = []
    for name, imports in EDGES.items():
        lines = Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8").splitlines()
        for dst, line, in_function, type_only in imports:
            if in_function and not type_only and not any("#" in lines[i] for i in (line - 1, line - 2)):
                bad.append(f"{name}:{line} imports {dst} inside a function without a comment")
    assert not bad, bad


def _device_default(fn) -> object:
    return inspect.signature(fn).parameters["device"].default


@pytest.mark.parametrize("path", [
    "linlens.jacobian:JacobianField", "linlens.jacobian:jacobian_svd", "linlens.koopman.dmd:HankelDMD",
    "linlens.koopman.scaling:scale_layer", "linlens.koopman.hybrid:linearize_layer", "linlens.nn:train",
    "linlens.flows.train:train_flow", "linlens.probing:probe_model",
    "linlens.surrogate.estimator:LinearSurrogate.from_model", "linlens.loaders:load_model",
    "linlens.workflows.flows:load_flow", "linlens.jacobian:euler_test", "linlens.jacobian:adaptive_filters",
])
def test_device_defaults_to_auto(path):
    # one name per idea (issue 13): a computation's device defaults to "auto" (linlens.nn.resolve_device)
    mod, attr = path.split(":")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert _device_default(obj) == "auto"


def test_import_linlens_does_not_import_torch():
    # the package root loads its names on first use (PEP 562): the ground floor and the root stay light, as
    # linlens.validation's docstring says; an independent route: a fresh interpreter's sys.modules
    import subprocess
    import sys

    code = ("import sys, linlens, linlens.errors, linlens.validation, linlens._results; "
            "print('torch' in sys.modules); linlens.LinearSurrogate; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
