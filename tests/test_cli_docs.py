"""Every CLI command and sub-command is documented (README's command table or docs/), as sqlite-utils checks."""

from __future__ import annotations

import re

import pytest
import typer.main

from tests.conftest import ROOT
from veille.main import app


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[str]:
    paths = []
    for name, cmd in sorted(group.commands.items()):
        if getattr(cmd, "hidden", False):
            continue
        path = (*prefix, name)
        paths.append(" ".join(path))
        if getattr(cmd, "commands", None):  # a group (typer vendors its own click: no isinstance check)
            paths.extend(command_paths(cmd, path))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_the_walk_finds_nested_commands():
    assert {"run", "db upgrade", "rules check", "calendar token create", "users add"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_documented(command):
    # `veille rules check`, or a table cell listing it after another: `veille calendar token create|revoke`.
    *parents, last = command.split()
    written = re.escape(" ".join(["veille", *parents]))
    pattern = rf"`{written} (?:[^`]*\|)?{re.escape(last)}\b" if parents else rf"`veille {re.escape(last)}\b"
    assert re.search(pattern, DOCS), f"`veille {command}` is not in README.md's command table nor in docs/"
