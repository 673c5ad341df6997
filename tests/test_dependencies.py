"""Every third-party library the code imports is declared in pyproject.toml, so an install from it works.

A library that arrives only as another package's dependency can vanish or change major version under us
when that package changes its own requirements.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("assurance", "assets", "resources", "sensors")
LOCAL = {*PRODUCT, "tests", "benchmarks"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    """The distributions the dependencies and `extras` name, following an extra that names another extra
    of this project (`model-assurance[postgres]`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs, pending, seen = list(project["dependencies"]), list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in project["optional-dependencies"][extra]:
            own = re.fullmatch(rf"{re.escape(project['name'])}\[([\w,-]+)\]", spec)
            if own:
                pending += own.group(1).split(",")
            else:
                specs.append(spec)
    return {normalized(re.split(r"[\s\[<>=!~;]", s, maxsplit=1)[0]) for s in specs}


def imported(folders: tuple[str, ...]) -> set[str]:
    """Top-level third-party modules imported anywhere under `folders`, lazy imports included."""
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - LOCAL - set(sys.stdlib_module_names)


def undeclared(folders: tuple[str, ...], allowed: set[str]) -> dict[str, list[str]]:
    distributions = packages_distributions()
    missing = {}
    for module in sorted(imported(folders)):
        dists = {normalized(d) for d in distributions.get(module, [module])}
        if not dists & allowed:
            missing[module] = sorted(dists)
    return missing


def test_the_product_declares_what_it_imports():
    assert undeclared(PRODUCT, declared()) == {}


def test_the_test_extra_declares_what_tests_and_benchmarks_import():
    assert undeclared(("tests", "benchmarks"), declared("test")) == {}
