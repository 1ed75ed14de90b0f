"""Imports run down the layers (README, "How a notice flows"): the contracts in pyproject.toml's
``[tool.importlinter]``, checked here in-process and by ``lint-imports`` in .ci/run."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

from tests.conftest import ROOT

PACKAGES = ("core", "storage", "crawlers", "nlp", "alerts", "web", "veille")


def test_the_import_contracts_are_kept(capsys):
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    for contract in (
        "Layers: each imports only the layers below it KEPT",
        "The crawl never touches the archive: crawlers imports only core KEPT",
        "Only the CLI starts the scheduler: no stage imports scheduler.py KEPT",
        "web: the app includes the routes, which never import it KEPT",
    ):
        assert contract in out


def test_scheduler_imports_only_the_pipeline_and_what_is_below_it():
    """scheduler.py is a module, not a package: import-linter sees it only from outside, so its own imports
    are read here. It sits above the pipeline and below the CLI (``veille schedule``)."""
    tree = ast.parse((ROOT / "scheduler.py").read_text(encoding="utf-8"))
    first_party = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES
    }
    assert first_party == {"core.config", "storage.db", "storage.lock", "alerts", "veille.pipeline"}


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
    lint = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "The crawl never touches the archive: crawlers imports only core BROKEN" in res.stdout
    assert "crawlers.run -> storage.ingest" in res.stdout
