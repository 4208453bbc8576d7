"""The documentation site's sources: every ``>>>`` example on its pages runs here, and its pages cover the API.

The site itself is built (offline, warnings as errors) by ``make docs``; this file checks what the build
cannot: that the worked examples on the pages run and print what the pages say they print.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from linlens.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# A fenced code block: ```lang ... ``` (the language tag is optional).
FENCE = re.compile(r"^```[\w-]*[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_griffe" not in p.parts)
RUNNABLE = [p for p in PAGES if any(">>>" in b for b in FENCE.findall(p.read_text(encoding="utf-8")))]
# Pages that explain a capability: each carries at least one worked example that runs here.
CAPABILITY_PAGES = ["guide/inverse.md", "guide/local.md", "guide/koopman.md", "guide/fibers.md", "images.md",
                    "larger_than_memory.md", "guide/bad_input.md", "guide/cli.md", "guide/tracking.md"]
# The public modules the API reference must cover (issue 13).
PUBLIC_MODULES = ["linlens", "linlens.surrogate", "linlens.surrogate.estimator", "linlens.surrogate.compare",
                  "linlens.surrogate.resampling", "linlens.workflows.study", "linlens.linalg", "linlens.operators",
                  "linlens.spectral", "linlens.jacobian", "linlens.probing", "linlens.stats", "linlens.flows",
                  "linlens.koopman", "linlens.fibers", "linlens.scale", "linlens.report", "linlens.data",
                  "linlens.loaders", "linlens.problems", "linlens.errors", "linlens.nn", "linlens.tracking"]


def page_doctest(path: Path) -> doctest.DocTest:
    """All ``>>>`` examples of a page's fenced blocks, in order, as one doctest sharing one namespace."""
    text = path.read_text(encoding="utf-8")
    examples: list[doctest.Example] = []
    parser = doctest.DocTestParser()
    for m in FENCE.finditer(text):
        block = m.group(1)
        if ">>>" not in block:
            continue
        lineno = text.count("\n", 0, m.start(1))
        for ex in parser.get_examples(block):
            ex.lineno += lineno
            examples.append(ex)
    return doctest.DocTest(examples, {"__name__": "__docs__"}, path.name, str(path), 0, text)


@pytest.mark.parametrize("path", RUNNABLE, ids=[str(p.relative_to(DOCS)) for p in RUNNABLE])
def test_page_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    test = page_doctest(path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    result = runner.run(test, out=out.append)
    assert result.failed == 0, "".join(out)
    assert result.attempted > 0


@pytest.mark.parametrize("page", CAPABILITY_PAGES)
def test_capability_pages_have_worked_examples(page: str) -> None:
    assert DOCS / page in RUNNABLE, f"{page} has no >>> example that runs"


def test_extractor_finds_and_checks_examples(tmp_path: Path) -> None:
    # the runner above must fail on a wrong output and see examples in any fenced block
    page = tmp_path / "p.md"
    page.write_text("text\n\n```pycon\n>>> 1 + 1\n3\n\n```\n\n```python\nx = 1\n```\n", encoding="utf-8")
    test = page_doctest(page)
    assert len(test.examples) == 1
    runner = doctest.DocTestRunner()
    assert runner.run(test, out=lambda s: None).failed == 1


def test_api_reference_covers_public_modules() -> None:
    directives = set()
    for p in (DOCS / "api").glob("*.md"):
        directives |= set(re.findall(r"^::: ([\w.]+)", p.read_text(encoding="utf-8"), re.MULTILINE))
    missing = [m for m in PUBLIC_MODULES if m not in directives]
    assert not missing, f"API reference misses {missing}"


@pytest.mark.parametrize("module", [m for m in PUBLIC_MODULES if m.count(".") <= 1])
def test_api_reference_documents_every_public_callable(module: str) -> None:
    # a name in a module's __all__ is documented where it is defined, or by its own directive
    directives = set()
    for p in (DOCS / "api").glob("*.md"):
        directives |= set(re.findall(r"^::: ([\w.]+)", p.read_text(encoding="utf-8"), re.MULTILINE))
    mod = importlib.import_module(module)
    missing = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        home = getattr(obj, "__module__", None)
        if callable(obj) and home and home not in directives and f"{module}.{name}" not in directives:
            missing.append(f"{name} (defined in {home})")
    assert not missing, f"{module} exports {missing}, which no page of docs/api renders"


def test_nav_lists_every_page() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w/]+\.md)\s*$", config, re.MULTILINE))
    on_disk = {str(p.relative_to(DOCS)) for p in PAGES}
    assert on_disk == listed, f"pages not in the nav: {sorted(on_disk - listed)}; missing: {sorted(listed - on_disk)}"


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, list[str]]]:
    """(command line, its long options) for every leaf command of the CLI."""
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), [o for p in cmd.params for o in p.opts if o.startswith("--")]


@pytest.mark.parametrize("command,options", list(_commands(typer.main.get_command(app))))
def test_cli_page_has_a_section_with_every_option(command: str, options: list[str]) -> None:
    page = (DOCS / "guide" / "cli.md").read_text(encoding="utf-8")
    m = re.search(rf"^## linlens {re.escape(command)}\n(.*?)(?=^## |\Z)", page, re.MULTILINE | re.DOTALL)
    assert m, f"docs/guide/cli.md has no section for `linlens {command}`"
    missing = [o for o in options if not re.search(rf"{re.escape(o)}\b", m.group(1))]
    assert not missing, (f"`linlens {command} --help` has {missing}, the page does not: regenerate its help block "
                         "(python tools/regen_cli_help.py)")


def test_griffe_extension_rewrites_zuko_titles_only() -> None:
    pytest.importorskip("griffe")  # installed with the docs extra (make docs)
    spec = importlib.util.spec_from_file_location("linlens_docstrings", DOCS / "_griffe" / "linlens_docstrings.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = "Sum.\n\n    Example:\n        >>> 1\n        1\n\nSee :func:`~linlens.jacobian.jacobians`; Example: stays."
    out = mod.rewrite(text)
    assert "    Examples:\n" in out and "Example: stays" in out
    assert "``linlens.jacobian.jacobians``" in out and ":func:" not in out


FIGURE_PAGES = ["guide/inverse.md", "guide/local.md", "guide/koopman.md", "guide/fibers.md", "images.md",
                "larger_than_memory.md"]


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_capability_pages_show_a_figure_made_by_a_committed_script(page: str) -> None:
    path = DOCS / page
    images = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", path.read_text(encoding="utf-8"))
    assert images, f"{page} shows no figure"
    scripts = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "figures").glob("*.py"))
    for rel in images:
        target = (path.parent / rel).resolve()
        assert target.is_file(), f"{page}: {rel} does not exist"
        assert target.name in scripts, f"{target.name} is made by no script in docs/figures/"


def test_readme_shows_a_figure_and_stays_a_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 200
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")  # the two commands come first
    figures = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", readme)
    assert figures
    for rel in figures:
        assert (ROOT / rel).is_file(), rel


def test_readme_python_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # the README's first Python block defines every name it uses and prints the surrogate's error (≈ 1e-15)
    monkeypatch.chdir(tmp_path)
    block = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)[0]
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    assert float(capsys.readouterr().out.split()[-1]) < 1e-12


# ------------------------------------------------------------------------------ an Example on every public name
SRC = ROOT / "src"


def _is_command(node: ast.FunctionDef | ast.ClassDef) -> ast.Call | None:
    """The ``@….command(…)`` decorator call of a Typer command, else None."""
    return next((d for d in node.decorator_list
                 if isinstance(d, ast.Call) and getattr(d.func, "attr", None) == "command"), None)


def _public_definitions(name: str, source: str) -> list[tuple[str, ast.FunctionDef | ast.ClassDef]]:
    """The public top-level functions and classes of a module: in its ``__all__``, or without a leading underscore."""
    tree = ast.parse(source)
    exported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exported = {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)}  # [*a.__all__, …]
    return [(f"{name}.{node.name}", node) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and (not node.name.startswith("_") or node.name in exported)]


def missing_examples(sources: dict[str, str]) -> list[str]:
    """Public definitions whose docstring has no ``Example:`` section holding a ``>>>`` line (a doctest that runs
    with the suite's ``--doctest-modules``). A Typer command (decorated ``@….command(…)``) is the exception: its
    docstring is its ``--help`` text, so its example is a command line, in the help's ``epilog`` ("Example …") or
    in the docstring ("Example: linlens …"), and the worked runs of docs/guide/cli.md (checked above)."""
    bad = []
    for name, source in sources.items():
        constants = {t.id: ast.unparse(n.value) for n in ast.parse(source).body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name)}  # an epilog given by name: its text
        for qual, node in _public_definitions(name, source):
            doc = ast.get_docstring(node) or ""
            command = _is_command(node)
            if command is not None:
                epilog = next((k.value for k in command.keywords if k.arg == "epilog"), None)
                text = "" if epilog is None else constants.get(getattr(epilog, "id", None), ast.unparse(epilog))
                if "Example" not in text and "Example: " not in doc:
                    bad.append(qual)
                continue
            m = re.search(r"^\s*Examples?:\s*$", doc, re.MULTILINE)
            if m is None or ">>>" not in doc[m.end():]:
                bad.append(qual)
    return bad


def _public_module_sources() -> dict[str, str]:
    """name → source of every public module of the package (no path component starting with an underscore)."""
    out = {}
    for path in sorted((SRC / "linlens").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if any(p.startswith("_") for p in parts):
            continue
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def test_every_public_function_and_class_has_an_example():
    sources = _public_module_sources()
    assert len(sources) > 80  # the walk sees the package
    missing = missing_examples(sources)
    assert not missing, f"public definitions without an `Example:` doctest: {missing}"


def test_the_example_check_fails_on_a_planted_definition():
    planted = {"linlens.m": (
        '__all__ = ["_exported"]\n'
        'def f():\n    """No example."""\n'
        'def g():\n    """Example: in words only, no doctest."""\n'
        'class C:\n    """A class.\n\n    Example:\n        >>> C().__class__.__name__\n        \'C\'\n    """\n'
        'def _private():\n    """Private: not checked."""\n'
        'def _exported():\n    """In __all__: checked."""\n'
        '@app.command(epilog="Example: linlens cmd --out r")\ndef cmd():\n    """Help text: no doctest."""\n'
        '@sub.command("x")\ndef cmd2():\n    """Help text.\n\n    Example: linlens sub x\n    """\n'
        '@app.command(help="no example anywhere")\ndef cmd3():\n    """Help text."""\n'
    )}
    assert missing_examples(planted) == ["linlens.m.f", "linlens.m.g", "linlens.m._exported", "linlens.m.cmd3"]
