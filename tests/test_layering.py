"""The package layering of docs/architecture.md, checked from the imports the code makes.

Every module of every project package is parsed with ``ast``; imports at module level and
inside functions both count, because a lazy import is still a dependency. An import from
one project package into another must follow an edge of ``ALLOWED`` (the table in the
doc), and the packages must not import each other in a circle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the project packages it may import. Mirrors docs/architecture.md.
_SERVICES = ("pos_terminal", "aggregation_gateway", "sandbox_platform", "trace_ledger",
             "ledger_bridge", "consumer_app")
_GROUND = frozenset({"market_protocol", "service_base"})
ALLOWED: dict[str, frozenset[str]] = {
    "market_protocol": frozenset(),
    "service_base": frozenset(),
    "pos_terminal": _GROUND,
    "aggregation_gateway": _GROUND,
    "sandbox_platform": _GROUND,
    "trace_ledger": _GROUND,
    "ledger_bridge": _GROUND | {"trace_ledger"},
    "consumer_app": _GROUND,
    "tracepay": _GROUND | set(_SERVICES),
}
PACKAGES = frozenset(ALLOWED)

ImportMap = dict[str, set[tuple[str, str]]]


def imported_modules(source: str) -> list[str]:
    """Absolute module names imported anywhere in ``source`` (relative imports stay inside)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@functools.cache
def _read_tree(root: Path) -> ImportMap:
    found: ImportMap = {package: set() for package in PACKAGES}
    for package in sorted(PACKAGES):
        for path in sorted((root / package).rglob("*.py")):
            for name in imported_modules(path.read_text(encoding="utf-8")):
                target = name.split(".")[0]
                if target in PACKAGES and target != package:
                    found[package].add((str(path.relative_to(root)), target))
    return found


def project_imports(root: Path = ROOT) -> ImportMap:
    """package -> {(file, imported project package)} for imports between packages."""
    return {package: set(edges) for package, edges in _read_tree(root).items()}


def violations(found: ImportMap, allowed: dict[str, frozenset[str]]) -> list[str]:
    return sorted(f"{where} imports {target} ({package} may import: "
                  f"{', '.join(sorted(allowed[package])) or 'nothing'})"
                  for package, edges in found.items() for where, target in edges
                  if target not in allowed[package])


def cycles(found: ImportMap) -> list[list[str]]:
    """Every circle in the package graph, each as the path that closes it."""
    graph = {package: sorted({target for _, target in edges})
             for package, edges in found.items()}
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(package: str, path: list[str]) -> None:
        for target in graph.get(package, []):
            if target in path:
                circles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(package)

    for package in sorted(graph):
        if package not in done:
            visit(package, [package])
    return circles


def test_every_package_is_in_the_table() -> None:
    on_disk = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert on_disk <= PACKAGES | {"tests", "bench", "scripts", "integrations"}, (
        f"new package(s) {sorted(on_disk - PACKAGES)}: give them a layer in "
        "docs/architecture.md and in ALLOWED")


def test_imports_follow_the_layers() -> None:
    assert violations(project_imports(), ALLOWED) == []


def test_no_import_cycles_between_packages() -> None:
    assert cycles(project_imports()) == []


def test_nobody_imports_tracepay() -> None:
    found = project_imports()
    assert [where for package, edges in found.items() for where, target in edges
            if target == "tracepay"] == []


def test_cli_commands_load_only_allowed_packages() -> None:
    """``tracepay`` loads the services' commands by name, which ``ast`` imports do not show."""
    from tracepay.cli import COMMANDS

    targets = {module.split(".")[0] for module, _, _ in COMMANDS.values()}
    assert targets <= ALLOWED["tracepay"] | {"tracepay"}


def test_the_doc_lists_every_package() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert [package for package in sorted(PACKAGES) if f"`{package}`" not in doc] == []


@pytest.mark.parametrize("package,target", [("market_protocol", "aggregation_gateway"),
                                            ("service_base", "tracepay"),
                                            ("aggregation_gateway", "ledger_bridge")])
def test_the_check_catches_a_wrong_edge(package: str, target: str) -> None:
    found: ImportMap = {name: set() for name in PACKAGES}
    found[package].add((f"{package}/x.py", target))
    assert violations(found, ALLOWED) == [
        f"{package}/x.py imports {target} ({package} may import: "
        f"{', '.join(sorted(ALLOWED[package])) or 'nothing'})"]


def test_the_check_catches_a_cycle_and_lazy_imports() -> None:
    source = "import market_protocol\n\ndef later():\n    from ledger_bridge.cli import bridge\n"
    assert imported_modules(source) == ["market_protocol", "ledger_bridge.cli"]
    found: ImportMap = {"trace_ledger": {("trace_ledger/x.py", "ledger_bridge")},
                        "ledger_bridge": {("ledger_bridge/y.py", "trace_ledger")}}
    assert cycles(found) == [["ledger_bridge", "trace_ledger", "ledger_bridge"]]
