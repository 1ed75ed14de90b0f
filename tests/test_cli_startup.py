"""CLI start-up: opening an archive already at the newest schema needs no Alembic, `veille status` no APScheduler,
`veille --help` no pydantic (docs/benchmarks.md, *CLI start-up*: under 0.5 s for commands without spaCy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from alembic.script import ScriptDirectory

from storage.db import alembic_config, at_head, make_engine, open_archive
from storage.reader import migrations_head
from tests.conftest import ROOT

# What a command imported, run as a person runs it (a fresh interpreter): the modules named in the output.
PROBE = """
import sys
from typer.testing import CliRunner
from veille.main import app
res = CliRunner().invoke(app, sys.argv[1:], env={"COLUMNS": "100"})
import json
print(json.dumps({"code": res.exit_code, "out": res.output,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {"alembic", "apscheduler", "pydantic",
                                                                                 "spacy", "holidays", "sqlalchemy"})}))
"""


def imported(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def roots(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_migrations_head_is_alembic_head(sqlite_url):
    # The head read from the migration files without Alembic is Alembic's own.
    assert migrations_head() == ScriptDirectory.from_config(alembic_config(sqlite_url)).get_current_head()


def test_a_new_archive_is_migrated_then_opened_at_head(sqlite_url):
    fresh = make_engine(sqlite_url)
    assert not at_head(fresh)  # no alembic_version table yet: Alembic runs
    fresh.dispose()
    engine = open_archive(sqlite_url)
    assert at_head(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == migrations_head()


def test_an_archive_behind_the_head_is_not_at_head(sqlite_url):
    engine = open_archive(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0007'")
    assert not at_head(engine)


def test_status_on_an_archive_at_head_loads_neither_sqlalchemy_nor_alembic_nor_apscheduler(tmp_path):
    first = imported("status")  # creates and migrates the archive: SQLAlchemy and Alembic are needed here
    assert first["code"] == 0, first["out"]
    assert {"alembic", "sqlalchemy"} <= roots(first["loaded"])
    again = imported("status")
    assert again["code"] == 0, again["out"]
    assert roots(again["loaded"]) & {"alembic", "apscheduler", "spacy", "holidays", "sqlalchemy"} == set()
    assert again["out"] == first["out"]  # the same answer through sqlite3 (storage.reader)


def test_help_loads_no_config_models_nor_database():
    res = imported("--help")
    assert res["code"] == 0 and "search" in res["out"]
    assert roots(res["loaded"]) == set()


def test_search_reads_the_stored_lexicon_without_spacy():
    first = imported("search", "santé")  # learns the cross-language lexicon (rules' phrases: spaCy) and stores it
    assert first["code"] == 0 and "aucune notice trouvée." in first["out"], first["out"]
    assert "spacy" in roots(first["loaded"])
    again = imported("search", "santé")
    assert again["code"] == 0 and "aucune notice trouvée." in again["out"], again["out"]
    assert roots(again["loaded"]) & {"spacy", "alembic", "apscheduler", "sqlalchemy"} == set()
