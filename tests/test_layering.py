"""Dependencies point one way (docs/architecture.md): the core library (``harness``) at the bottom, the
evaluators (``backends``) above it, the studies (``ablations``) above those and the application
(``harness.app``) on top. A module may import its own layer and the layers below, never one above.

Every ``import`` in the source counts, at module level or inside a function (a lazy import is still a
dependency), read from the syntax tree, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layers, bottom first: (name, module prefix). The longest matching prefix decides a module's layer.
LAYERS: tuple[tuple[str, str], ...] = (
    ("core", "harness"),
    ("backends", "backends"),
    ("studies", "ablations"),
    ("application", "harness.app"),
)

#: The packages whose modules are checked.
PACKAGES = ("harness", "backends", "ablations")


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s layer, or ``None`` for a module outside the project."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for rank, (_, prefix) in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), rank)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    """The dotted module name of a source file under :data:`ROOT`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``source`` (relative imports resolved against ``module``)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from harness import app`` imports the subpackage harness.app
            found += [(node.lineno, f"{target}.{alias.name}" if layer_of(f"{target}.{alias.name}") != layer_of(target)
                       else target) for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Each import of ``source`` (the module ``module``) that points to a higher layer, as a message."""
    own = layer_of(module)
    if own is None:
        return []
    found = []
    for line, target in imported_modules(source, module, is_package):
        rank = layer_of(target)
        if rank is not None and rank > own:
            found.append(f"{module}:{line} imports {target} ({LAYERS[own][0]} -> {LAYERS[rank][0]})")
    return found


def test_no_import_runs_against_the_layering():
    files = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    assert len(files) > 40  # the whole tree was found
    found = [message for path in files
             for message in violations(path.read_text(), module_name(path), path.name == "__init__.py")]
    assert found == [], "imports against the layering (docs/architecture.md):\n" + "\n".join(found)


@pytest.mark.parametrize("module, source, expected", [
    ("harness.search.base", "from backends.surrogate import SurrogateBackend", "core -> backends"),
    ("harness.search.base", "def f():\n    import ablations.paper", "core -> studies"),
    ("backends.table", "from ablations import report", "backends -> studies"),
    ("ablations.fidelity_dial", "from harness.app.sweep import mean_interval", "studies -> application"),
    ("ablations.fidelity_dial", "from harness import app", "studies -> application"),
    ("ablations.paper", "from harness.app.sweep import job_config", "studies -> application"),
    ("harness.space", "from .app import cli", "core -> application"),
])
def test_the_check_finds_an_upward_import(module, source, expected):
    found = violations(source, module)
    assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize("module, source", [
    ("harness.app.experiments", "import ablations.paper\nimport backends\nfrom harness.search import PNAS"),
    ("ablations.paper", "from backends.table import EMBEDDED_TABLE\nfrom harness.evaluator import check_seed"),
    ("backends.surrogate", "from harness.evaluator import Backend\nimport numpy"),
    ("harness.search.base", "from harness.evaluator import Backend\nfrom . import checkpoint"),
])
def test_downward_and_outside_imports_pass(module, source):
    assert violations(source, module) == []
