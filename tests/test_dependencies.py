"""Product code imports only what pyproject.toml declares (a transitive dependency may vanish on upgrade)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.conftest import ROOT

FIRST_PARTY = {"core", "veille", "crawlers", "nlp", "alerts", "storage", "web", "scheduler"}
PACKAGES = sorted(FIRST_PARTY - {"scheduler"})
PRODUCT = [ROOT / "scheduler.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["web"]]}


def imported_modules() -> dict[str, str]:
    """Top-level third-party module -> one file:line importing it (module-level or inside a function)."""
    found: dict[str, str] = {}
    for path in PRODUCT:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_third_party_import_of_product_code_is_declared():
    dists = packages_distributions()
    wanted = declared()
    missing = []
    for module, where in sorted(imported_modules().items()):
        names = {_name(d) for d in dists.get(module, [])}
        if not names & wanted:
            missing.append(f"{where}: imports {module} ({', '.join(sorted(names)) or 'no installed distribution'})")
    assert not missing, "not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_scan_sees_function_level_imports():
    modules = imported_modules()
    assert {"scrapy", "sqlmodel", "fastapi", "spacy"} <= set(modules)
