"""Imports run down the layers (README, "How a notice flows"): the contracts in pyproject.toml's
``[tool.importlinter]``, checked here in-process and by ``lint-imports`` in .ci/run."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.conftest import ROOT

PACKAGES = ("core", "storage", "crawlers", "nlp", "alerts", "web", "veille")
LINT = Path(sys.executable).parent / "lint-imports"


def contracts() -> tuple[dict, list[dict]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return config, config["contracts"]


def broken(graph: grimp.ImportGraph, contract: dict) -> list[str]:
    """The imports that break one contract of pyproject.toml, as import-linter reads it (grimp is its engine)."""
    if contract["type"] == "layers":
        layers = [grimp.Layer(*(m.strip() for m in layer.split("|")), independent=True) for layer in contract["layers"]]
        deps = graph.find_illegal_dependencies_for_layers(layers, containers=set(contract.get("containers", [])))
        return sorted(f"{d.importer} -> {d.imported}" for d in deps)
    assert contract["type"] == "forbidden", contract
    return sorted(
        " -> ".join(chain)
        for source in contract["source_modules"]
        for forbidden in contract["forbidden_modules"]
        for chain in graph.find_shortest_chains(source, forbidden)
    )


def test_the_import_contracts_are_kept():
    """In-process, for the fast tier (lint-imports itself runs in .ci/run and in the next tests)."""
    config, listed = contracts()
    graph = grimp.build_graph(*config["root_packages"], include_external_packages=True, cache_dir=None)
    assert {c["type"] for c in listed} == {"layers", "forbidden"}
    assert [c["layers"] for c in listed if not c.get("containers") and c["type"] == "layers"] == [
        ["veille", "web", "alerts", "crawlers | nlp", "storage", "core"]
    ]
    problems = {c["name"]: broken(graph, c) for c in listed}
    assert not any(problems.values()), problems
    assert graph.find_shortest_chains("crawlers", "storage") == set()  # the crawl never stores


def test_lint_imports_keeps_every_contract():
    res = subprocess.run([str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    for contract in contracts()[1]:
        assert f"{contract['name']} KEPT" in res.stdout


def test_scheduler_imports_only_the_pipeline_and_what_is_below_it():
    """scheduler.py is a module, not a package: import-linter sees it only from outside, so its own imports
    are read here. It sits above the pipeline and below the CLI (``veille schedule``)."""
    tree = ast.parse((ROOT / "scheduler.py").read_text(encoding="utf-8"))
    first_party = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES
    }
    below = ("core", "storage", "crawlers", "nlp", "alerts", "web", "veille.pipeline", "veille.crawl")
    assert "veille.pipeline" in first_party
    assert {m for m in first_party if not m.startswith(below)} == set()  # never veille.commands or veille.main


def test_an_upward_import_breaks_the_check(tmp_path):
    """The same check on a copy of the product where the crawl step stores by itself again: lint-imports fails
    and names the import, even inside a function."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    run = tmp_path / "crawlers" / "run.py"
    run.write_text(
        run.read_text(encoding="utf-8") + "\n\ndef _store(engine):\n    from storage.ingest import ingest\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    res = subprocess.run(
        [str(LINT), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "The crawl never touches the archive: crawlers imports only core BROKEN" in res.stdout
    assert "crawlers.run -> storage.ingest" in res.stdout
