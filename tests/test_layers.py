"""The layer contract: the domain in `assurance/` is plain Python, Dagster stays at the edges.

Only the composition root (`assurance/definitions.py`) and the CLI's launcher may import Dagster, and
only the composition root binds the thin Dagster layers (`assets`, `resources`, `sensors`): they depend
on the domain, not the other way round, and the launcher takes its job from the Definitions. Imports inside functions count too: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ROOT / "assurance"
COMPOSITION_ROOT = "assurance/definitions.py"
LAUNCHER = "assurance/cli/launcher.py"
EDGE_PACKAGES = ("dagster", "dagster_webserver", "dagster_postgres", "assets", "resources", "sensors")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def top_level(module: str) -> str:
    return module.split(".")[0]


def violations() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(DOMAIN.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == COMPOSITION_ROOT:
            continue
        forbidden = EDGE_PACKAGES[3:] if rel == LAUNCHER else EDGE_PACKAGES
        bad = sorted(m for m in imported_modules(path) if top_level(m) in forbidden)
        if bad:
            found[rel] = bad
    return found


def test_domain_imports_neither_dagster_nor_the_dagster_layers():
    assert violations() == {}


def test_the_guard_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import dagster as dg\n    from sensors.alerts import x\n")
    assert imported_modules(probe) == {"dagster", "sensors.alerts"}


def test_the_composition_root_is_where_dagster_comes_in():
    assert "dagster" in {top_level(m) for m in imported_modules(DOMAIN / "definitions.py")}
