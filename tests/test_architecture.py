"""The house rules of the package layout, checked on the source (design.md, "Layout"; issue 13).

Imports run one way — ground floor → foundation → capabilities → workflows → CLI — and never in a circle.
The graph of linlens → linlens imports is read from the AST of every module found by ``pkgutil.walk_packages``,
top-level and function-level imports alike (a lazy import is still a dependency), so these tests fail on an
import that would only run inside a function. Dynamic imports by string (``importlib.import_module`` in the
CLI's table of reproductions) are not seen; they point from the CLI downwards.
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

GROUND = {"linlens.errors", "linlens.validation", "linlens._results"}
FOUNDATION = GROUND | {"linlens.linalg", "linlens.stats", "linlens.probing", "linlens.operators", "linlens.scale",
                       "linlens.problems"}
CAPABILITIES = {"linlens.surrogate", "linlens.jacobian", "linlens.spectral", "linlens.flows", "linlens.koopman",
                "linlens.fibers", "linlens.study"}
UPPER = {"linlens.report", "linlens.workflows", "linlens.cli"}
# a capability may build on another only where it composes it; each entry says why
CAPABILITY_USES = {("linlens.study", "linlens.surrogate")}  # the linearity study is made of surrogate fits


def _modules() -> dict[str, bool]:
    """name → is_package, for linlens and everything under it."""
    mods = {"linlens": True}
    for info in pkgutil.walk_packages(linlens.__path__, "linlens."):
        mods[info.name] = info.ispkg
    return mods


MODULES = _modules()


def _in(name: str, groups: set[str]) -> bool:
    """Whether module ``name`` is one of ``groups`` or inside one of those packages."""
    return any(name == g or name.startswith(g + ".") for g in groups)


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


def _violations(sources: set[str], targets: set[str], allowed: set[tuple[str, str]] = frozenset()) -> list[str]:
    bad = []
    for src, imports in EDGES.items():
        if not _in(src, sources):
            continue
        for dst, line, *_ in imports:
            if _in(dst, targets) and not any(_in(src, {a}) and _in(dst, {b}) for a, b in allowed):
                bad.append(f"{src}:{line} imports {dst}")
    return sorted(set(bad))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    # optional dependencies (dask, zarr, zuko, pydmd) are imported lazily, so every module imports without them
    importlib.import_module(name)


def test_walk_finds_the_layout():
    # the groups below name real modules: a rename that empties a group must not silently pass the other tests
    for group in FOUNDATION | CAPABILITIES | UPPER:
        assert group in MODULES, group
    assert len(MODULES) > 50


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


def test_ground_floor_imports_only_itself():
    assert not _violations(GROUND, {m for m in MODULES if m != "linlens" and not _in(m, GROUND)})


def test_foundation_does_not_import_upwards():
    assert not _violations(FOUNDATION, CAPABILITIES | UPPER)


def test_capabilities_do_not_import_workflows_or_cli():
    assert not _violations(CAPABILITIES, {"linlens.workflows", "linlens.cli"})


def test_capabilities_do_not_import_each_other():
    bad = []
    for cap in CAPABILITIES:
        bad += _violations({cap}, CAPABILITIES - {cap}, CAPABILITY_USES)
    assert not bad, bad


def test_only_the_cli_imports_the_cli():
    # `python -m linlens` (linlens.__main__) is the command line's second entry point
    others = {m for m in MODULES if not _in(m, {"linlens.cli"})} - {"linlens.__main__"}
    assert not _violations(others, {"linlens.cli"}, {("linlens.__main__", "linlens.cli")})


def test_report_and_workflows_do_not_import_the_cli():
    assert not _violations({"linlens.report", "linlens.workflows"}, {"linlens.cli"})


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
    "linlens.surrogate.estimator:LinearSurrogate.from_model",
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
