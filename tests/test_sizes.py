"""Sizes a reader can hold in mind: no module in portal/ over 600 lines, no function (methods and nested functions
included) over 80, from its `def` line to its last line."""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[1] / "portal"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def module_sizes(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root.parent)): len(path.read_text().splitlines()) for path in root.rglob("*.py")}


def function_sizes(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function in the source, nested ones too."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_measures_see_what_they_measure():
    source = (
        "class A:\n    def method(self):\n        def inner():\n"
        + "            x = 1\n" * 3
        + "        return inner\n\n\ndef f():\n    if True:\n        def g():\n            pass\n"
    )
    assert function_sizes(source) == [("A.method", 2, 6), ("A.method.inner", 3, 4), ("f", 10, 4), ("f.g", 12, 2)]
    assert module_sizes(PORTAL)["portal/web/app.py"] > 50


def test_no_module_in_portal_is_over_600_lines():
    assert {name: lines for name, lines in module_sizes(PORTAL).items() if lines > MAX_MODULE_LINES} == {}


def test_no_function_in_portal_is_over_80_lines():
    long = [
        f"{path.relative_to(PORTAL.parent)}:{line} {name} ({size} lines)"
        for path in sorted(PORTAL.rglob("*.py"))
        for name, line, size in function_sizes(path.read_text())
        if size > MAX_FUNCTION_LINES
    ]
    assert long == []
