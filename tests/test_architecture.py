"""The package's layers (docs/ARCHITECTURE.md): a module may import its own layer and the layers below it, never
one above. Imports inside functions count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTAL = ROOT / "portal"

# Lowest first. Each layer may import itself and those listed.
BELOW_DOMAIN = ("core", "storage", "sealing", "access", "oversight")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "storage": frozenset({"core"}),
    "sealing": frozenset({"core", "storage"}),
    "access": frozenset({"core", "storage", "sealing"}),
    "oversight": frozenset({"core", "storage", "sealing", "access"}),
    "domain": frozenset(BELOW_DOMAIN),
    # The synthetic-data generator writes cases the way the domain does.
    "demo": frozenset({*BELOW_DOMAIN, "domain"}),
    # The two ways in. The command line loads the generator for `portal seed`; the web app never does, and
    # imports the command group only to register it with Flask.
    "cli": frozenset({*BELOW_DOMAIN, "domain", "demo"}),
    "web": frozenset({*BELOW_DOMAIN, "domain", "cli"}),
}
# The package's own __init__ re-exports create_app lazily; it belongs to no layer.
OUTSIDE_LAYERS = {PORTAL / "__init__.py"}


def layer_of(module: str) -> str | None:
    """'portal.domain.intake' -> 'domain'; None for anything outside portal's layers."""
    parts = module.split(".")
    if parts[0] != "portal" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every portal module a source imports, anywhere in it, relative imports resolved, with line numbers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "portal":  # `from portal import sealing`: each name is a module of its own
                found += [(node.lineno, f"portal.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "portal" or name.startswith("portal.")]


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of `source` (the module named `module`) that reach a layer it may not import."""
    layer = layer_of(module)
    if layer is None:
        return []
    if layer not in MAY_IMPORT:
        return [f"{module}: in no known layer ({layer}); add it to docs/ARCHITECTURE.md and this test"]
    allowed = MAY_IMPORT[layer] | {layer}
    bad = []
    for line, name in imported_modules(ast.parse(source), module, is_package):
        target = layer_of(name)
        if target is None or target not in allowed:
            bad.append(f"{module}:{line} ({layer}) imports {name} ({target or 'the package root'})")
    return bad


def _module_name(path: Path) -> tuple[str, bool]:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def test_every_module_is_in_a_layer():
    top = {p.name for p in PORTAL.iterdir() if p.is_dir() and p.name != "__pycache__"}
    loose = sorted(p.name for p in PORTAL.glob("*.py") if p.name != "__init__.py")
    assert top == set(MAY_IMPORT), "a folder of portal/ that is not a layer, or a layer that has gone"
    assert loose == [], "modules directly under portal/ belong to no layer"


def test_no_layer_imports_one_above_it():
    found = []
    for path in sorted(PORTAL.rglob("*.py")):
        if path in OUTSIDE_LAYERS:
            continue
        module, is_package = _module_name(path)
        found += violations(path.read_text(), module, is_package)
    assert found == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("portal.core.routing", "from portal.storage.models import Report"),
        ("portal.storage.audit", "def later():\n    from portal.web.app import server_secrets"),
        ("portal.oversight.stats", "from portal.domain import queues"),
        ("portal.domain.intake", "import portal.web.report.views"),
        ("portal.web.app", "from portal import demo"),
        ("portal.sealing.recovery", "from ..access import staffing"),
        ("portal.access", "from .. import oversight"),
    ],
)
def test_the_check_catches_an_import_from_above(module, source):
    is_package = module == "portal.access"
    assert violations(source, module, is_package), f"{module} importing upward was not caught"


def test_the_check_allows_imports_from_below_and_within():
    assert violations("from portal.core import crypto\nfrom portal.storage.models import db", "portal.sealing") == []
    assert violations("from . import queue_keys\nfrom .recovery import x", "portal.sealing", is_package=True) == []
    assert violations("from portal.cli import portal_cli", "portal.web.app") == []


def test_the_web_app_does_not_load_the_synthetic_data_generator(tmp_path):
    """create_app() in a fresh interpreter: the generator (portal.demo) is loaded by `portal seed` only."""
    script = (
        "import sys\n"
        "from portal import create_app\n"
        f"create_app({{'PORTAL_INSTANCE': {str(tmp_path / 'instance')!r}}})\n"
        "print(sorted(m for m in sys.modules if m == 'portal.demo' or m.startswith('portal.demo.')))\n"
        "print('portal.web.app' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    demo_modules, web_loaded = result.stdout.split("\n")[:2]
    assert web_loaded == "True"  # the script did build the app
    assert demo_modules == "[]"


def test_only_the_web_the_cli_and_storage_touch_flask():
    """The domain knows no request, session or app: only storage (Flask-SQLAlchemy's session, the app's secrets
    for the audit key) and the two ways in import Flask or its extensions."""
    found = []
    for path in sorted(PORTAL.rglob("*.py")):
        module, is_package = _module_name(path)
        if layer_of(module) in (None, "web", "cli", "storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{module}:{node.lineno} imports {n}" for n in names if n.split(".")[0].startswith("flask")]
    assert found == []
