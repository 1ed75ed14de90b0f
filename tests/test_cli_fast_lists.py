"""`veille users list`, `feedback list ID` and `calendar token list` read a SQLite archive at the newest schema
with the standard library's sqlite3 (storage.reader): no SQLAlchemy, SQLModel, password hashing library nor spaCy
to import, and the same output as the SQLAlchemy path (docs/decisions.md, *Two ways to read the archive*).

The archive is the demo's (``veille demo``), then the real commands: two accounts (``users add``), a login through
the workbench's own ``web.auth.authenticate``, verdicts (``feedback add``, one withdrawn by ``feedback undo``),
calendar tokens (``calendar token create``, one revoked). The values asserted were read by hand from such an
archive (2026-12-08): act 32025R0117 (the demo's notice 33), alice analyst, bob reader who never logged in.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.test_cli_fast import _env, _veille, copy_of, probe

pytestmark = pytest.mark.slow  # the demo through the replay server, and the CLI as processes

ACT = "32025R0117"
PARIS_SHORT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} CES?T$")
VERDICT = re.compile(
    r"^(\w+) : « (s'applique|ne s'applique pas) » selon (\w+), le (\d\d/\d\d/\d{4}) à (\d\d:\d\d) (CES?T)$"
)


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "veille", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, (args, res.stdout + res.stderr)
    return res.stdout


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> tuple[Path, int]:
    """The demo archive with accounts, verdicts and tokens written by the real commands; (folder, notice id)."""
    home = tmp_path_factory.mktemp("fast-lists")
    demo = home / "demo"
    res = _veille(["demo", "--home", str(demo)], _env(home))
    assert res.returncode == 0, res.stdout + res.stderr
    env = _env(demo, VEILLE_CONFIG=str(demo / "veille.toml"))
    [act] = json.loads(_run(env, "search", "2025/117", "--format", "json"))
    assert act["celex"] == ACT
    nid = act["id"]
    assert _run(env, "users", "add", "alice", "--role", "analyst", "--password-stdin", stdin="motdepasse-long\n") == (
        "utilisateur alice : analyst\n"
    )
    _run(env, "users", "add", "bob", "--role", "reader", "--no-password")
    from core.config import load_settings
    from storage.db import open_archive
    from web.auth import authenticate

    # alice logs in to the workbench (its own login code): her last login is stored
    assert authenticate(open_archive(load_settings(demo / "veille.toml").database_url), "alice", "motdepasse-long")
    _run(env, "feedback", "add", str(nid), "deai", "right", "--user", "alice", "--comment", "acte d'exécution")
    _run(env, "feedback", "add", str(nid), "daqss", "wrong", "--user", "bob")
    _run(env, "feedback", "add", str(nid), "numerique", "right", "--user", "alice")
    _run(env, "feedback", "undo", str(nid), "numerique")
    _run(env, "calendar", "token", "create", "--label", "deai", "--note", "pour la DEAI")
    _run(env, "calendar", "token", "create", "--note", "tout")
    assert _run(env, "calendar", "token", "revoke", "2") == "jeton révoqué\n"
    return demo, nid


def _paris(stored: str) -> str:
    """A stored instant (naive UTC text) as the CLI shows it, converted here by zoneinfo."""
    at = datetime.fromisoformat(stored).replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    return at.strftime("%Y-%m-%d %H:%M %Z")


@pytest.mark.parametrize(
    "args",
    [["users", "list"], ["feedback", "list", "NID"], ["feedback", "list", "1"], ["calendar", "token", "list"]],
    ids=" ".join,
)
def test_lists_print_what_sqlalchemy_prints_without_loading_it(listed, tmp_path, args):
    demo, nid = listed
    demo = copy_of(demo, tmp_path / "demo")
    args = [str(nid) if a == "NID" else a for a in args]
    fast = probe(demo, args)
    slow = probe(demo, args, sqlalchemy=True)
    assert fast["loaded"] == [], fast["loaded"]
    assert "sqlalchemy" in slow["loaded"]
    assert fast["code"] == 0 and fast["out"]
    assert (fast["code"], fast["out"]) == (slow["code"], slow["out"])


def test_users_list_values(listed, tmp_path):
    demo, _ = listed
    demo = copy_of(demo, tmp_path / "demo")
    with sqlite3.connect(demo / "veille.db") as conn:
        [(login,)] = conn.execute("SELECT last_login FROM web_user WHERE name = 'alice'")
    out = probe(demo, ["users", "list"])["out"]
    alice, bob = (re.split(r"\s+", line, maxsplit=2) for line in out.splitlines())  # Rich expands the tabs
    assert alice == ["alice", "analyst", f"dernière connexion {_paris(login)}"]
    assert PARIS_SHORT.match(alice[2].removeprefix("dernière connexion "))
    assert bob == ["bob", "reader", "dernière connexion jamais"]


def test_feedback_list_values(listed, tmp_path):
    demo, nid = listed
    demo = copy_of(demo, tmp_path / "demo")
    with sqlite3.connect(demo / "veille.db") as conn:
        stored = dict(conn.execute("SELECT label, created_at FROM feedback WHERE notice_id = ?", (nid,)))
    lines = probe(demo, ["feedback", "list", str(nid)])["out"].splitlines()
    got = [VERDICT.match(line).groups() for line in lines]  # numerique's verdict was withdrawn
    assert [g[:3] for g in got] == [("daqss", "ne s'applique pas", "bob"), ("deai", "s'applique", "alice")]
    for label, _what, _who, day, hour, zone in got:
        at = datetime.fromisoformat(stored[label]).replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
        assert (day, hour, zone) == (f"{at:%d/%m/%Y}", f"{at:%H:%M}", at.tzname())
    none = probe(demo, ["feedback", "list", "1"])
    assert none["out"] == "notice 1 : aucun avis\n"


def test_calendar_token_list_values(listed, tmp_path):
    demo, _ = listed
    demo = copy_of(demo, tmp_path / "demo")
    with sqlite3.connect(demo / "veille.db") as conn:
        [(created1,), (created2, revoked2)] = [
            tuple(v for v in row if v) for row in conn.execute("SELECT created_at, revoked_at FROM calendar_token")
        ]
    out = probe(demo, ["calendar", "token", "list"])["out"]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert rows == [
        ["1", "deai", "pour la DEAI", _paris(created1), ""],
        ["2", "all", "tout", _paris(created2), _paris(revoked2)],
    ]
    assert all(PARIS_SHORT.match(t) for t in (rows[0][3], rows[1][4]))
    assert "token_hash" not in out and "┃ id ┃ flux ┃ note" in out


def test_empty_lists_say_so_and_how_to_fill_them(tmp_path):
    """A new archive: each list says there is nothing, and the command that makes one, rather than nothing at all."""
    env = _env(tmp_path / "home")
    assert _veille(["users", "list"], env).stdout == "aucun compte (veille users add NOM pour en créer un)\n"
    tokens = _veille(["calendar", "token", "list"], env)
    assert tokens.returncode == 0 and tokens.stdout == "aucun jeton (veille calendar token create pour en créer un)\n"
