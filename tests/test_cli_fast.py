"""`veille status`, `search`, `deliveries`, `digest` (previews, dry runs) and `review` read a SQLite archive at the
newest schema with the standard library's sqlite3 (storage.reader), never importing SQLAlchemy (nor spaCy), and
print what the SQLAlchemy path prints (docs/decisions.md, *Two ways to read the archive*; docs/benchmarks.md,
*CLI start-up*).

The archive is built by the real pipeline: ``veille demo`` (the shipped replay bundle through crawl, ingest,
classify and alerts), then ``veille run --source ema-news`` once the replay server is gone (a real failed run),
then the real APScheduler storing its jobs. The values asserted were read by hand from such an archive
(2026-12-07): act 32025R0117's title and publication day, the SoHO press release first for ``santé``, the 140
digest and alert deliveries the demo sent, ema-news failed ("connexion refusée par le serveur"), the EMA data quality
framework first to review (deai 0.40, threshold 0.50) and, with the tiny test model, EuroHPC (2025-12-17) where the
rules (0.00) and the model (0.5025) disagree on deai.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_settings
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # the demo through the replay server, and the CLI as processes

SEARCHED = (
    "Règlement d'exécution (UE) 2025/117 de la Commission du 24 janvier 2025 établissant les modalités d'application"
    " du règlement (UE) 2021/2282"
)
SOHO = "La Commission européenne se félicite de l’adoption par le Parlement européen de l’espace européen des données"
HEAVY = ["alembic", "apscheduler", "argon2", "passlib", "spacy", "sqlalchemy", "sqlmodel"]
# The command, run as a person runs it (a fresh interpreter), with what it imported of the heavy libraries.
PROBE = f"""
import json, sys
from typer.testing import CliRunner
from veille.main import app
res = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({{"code": res.exit_code, "out": res.output,
                  "loaded": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""
COMMANDS = [
    ["status"],
    ["deliveries"],
    ["deliveries", "--failed"],
    ["search", "santé"],
    ["search", "santé", "--format", "csv"],
    ["search", "2025/117", "--format", "json"],
    ["search", "dispositifs médicaux", "--label", "deai", "--since", "2024-01-01", "--sort", "date"],
    ["search", "santé", "--source", "press-corner", "--source", "ema-news", "--exact"],
    ["search", "santé", "--source", "nowhere"],
    ["review"],
    ["review", "--label", "deai", "-n", "5"],
]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_PROFILE")}
    return {**env, "VEILLE_HOME": str(home), "COLUMNS": "120", "PYTHONPATH": str(ROOT), **extra}


def _veille(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "veille", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The demo archive, with a failed run and the scheduler's stored jobs; its folder (read only by the tests)."""
    home = tmp_path_factory.mktemp("fast-cli")
    demo = home / "demo"
    res = _veille(["demo", "--home", str(demo)], _env(home))
    assert res.returncode == 0, res.stdout + res.stderr
    env = _env(demo, VEILLE_CONFIG=str(demo / "veille.toml"))
    failed = _veille(["run", "--source", "ema-news"], env)  # the replay server has stopped: connection refused
    assert failed.returncode == 1 and "connexion refusée par le serveur" in failed.stderr, failed.stdout + failed.stderr
    import scheduler

    settings = load_settings(demo / "veille.toml")
    sched = scheduler.build_scheduler(settings, str(demo / "veille.toml"))
    sched.start(paused=True)  # stores the jobs, runs none
    scheduler.reconcile(sched, settings, str(demo / "veille.toml"))
    # Shutting down wakes its loop once: the polls due now fail to reach the stopped executor (APScheduler logs
    # it) and are stored for their next time. shutdown() returns once that loop has ended.
    sched.shutdown(wait=False)
    return demo


def copy_of(built: Path, dest: Path) -> Path:
    """A private copy of the built archive folder (the config pointing at the copy)."""
    shutil.copytree(built, dest)
    cfg = dest / "veille.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(built), str(dest)), encoding="utf-8")
    return dest


def probe(demo: Path, args: list[str], sqlalchemy: bool = False) -> dict:
    """The command's exit code, output and the database modules it loaded. ``sqlalchemy``: the same file through
    a URL with a driver option (``?timeout=30``), which the fast path leaves to SQLAlchemy."""
    env = _env(demo, VEILLE_CONFIG=str(demo / "veille.toml"))
    if sqlalchemy:
        env["VEILLE_DATABASE_URL"] = f"sqlite:///{demo / 'veille.db'}?timeout=30"
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_fast_path_prints_what_sqlalchemy_prints_without_loading_it(built, tmp_path, args):
    demo = copy_of(built, tmp_path / "demo")
    fast = probe(demo, args)
    slow = probe(demo, args, sqlalchemy=True)
    assert fast["loaded"] == [], fast["loaded"]
    assert "sqlalchemy" in slow["loaded"]
    assert (fast["code"], fast["out"]) == (slow["code"], slow["out"])


def test_digest_previews_read_like_sqlalchemy_without_loading_it(built, tmp_path):
    """``digest --preview DAY`` (the outbox's messages of that day, rendered again) and the dry run (what the
    next run would send) plan and render through storage.reader too: same output as the SQLAlchemy path."""
    demo = copy_of(built, tmp_path / "demo")
    with sqlite3.connect(demo / "veille.db") as conn:  # the day the demo's digests went out (its Paris day)
        [(batch,)] = conn.execute("SELECT batch FROM delivery WHERE purpose = 'digest' ORDER BY id LIMIT 1")
    day = batch.split(":")[1]
    runs = {
        "preview": ["digest", "--preview", day],
        "no digest that day": ["digest", "--preview", "2025-12-19"],
        "one label": ["digest", "--preview", day, "--label", "deai"],
        "dry run": ["digest"],
        "dry run since": ["digest", "--since", "2025-01-01", "--label", "daqss"],
    }
    out = {}
    for name, args in runs.items():
        fast, slow = probe(demo, args), probe(demo, args, sqlalchemy=True)
        assert fast["loaded"] == [], (name, fast["loaded"])
        assert (fast["code"], fast["out"]) == (slow["code"], slow["out"]), name
        out[name] = fast["out"]
    assert "9 messages : 136 notice(s) × destinataire envoyée(s), 0 en attente" in out["preview"]
    assert "veille-deai@has-sante.fr" in out["preview"] and "uri=CELEX:32025D2371" in out["preview"]
    assert "aucun digest du 19 décembre 2025 dans la boîte d'envoi" in out["no digest that day"]
    assert "0 message : 0 notice(s)" in out["one label"]  # the demo sent no extra digest of one label
    assert out["dry run"].splitlines()[-1].startswith("enverrait ")  # then what a run would send now


def test_values_read_by_the_fast_path(built, tmp_path):
    demo = copy_of(built, tmp_path / "demo")
    status = probe(demo, ["status"])
    assert status["code"] == 0 and status["loaded"] == []
    lines = status["out"].splitlines()
    ema = next(line for line in lines if line.startswith("│ ema-news "))
    assert "en échec" in ema and "http://127.0.0.1:" in ema  # the failed run's error, cut by the column
    cellar = next(line for line in lines if line.startswith("│ cellar-acts "))
    assert "silencieuse" in cellar  # its latest act is older than its 3 working days
    assert "boîte d'envoi : envoyé 140" in lines
    upcoming = next(line for line in lines if line.startswith("prochains relevés : "))
    assert "poll:ema-news " in upcoming and "digest " in upcoming and "CET" in upcoming

    found = probe(demo, ["search", "2025/117", "--format", "json"])
    [act] = json.loads(found["out"])
    assert (act["celex"], act["source"], act["kind"], act["doc_type"]) == (
        "32025R0117",
        "cellar-acts",
        "act",
        "REG_IMPL",
    )
    assert act["title"].startswith(SEARCHED) and act["published"] == "2025-01-24" and act["labels"] == "deai"
    assert act["first_seen"].startswith("20") and act["first_seen"][-6:] in ("+01:00", "+02:00")  # Paris time

    rows = list(csv.DictReader(io.StringIO(probe(demo, ["search", "santé", "--format", "csv"])["out"])))
    assert rows[0]["title"].startswith(SOHO) and rows[0]["source"] == "press-corner"
    assert rows[0]["published"] == "2024-04-24" and rows[0]["labels"] == "numerique;daqss;deai"
    # Cross-language: the stored lexicon finds English notices about health for the French word.
    assert any(r["title_en"] and not r["title_fr"] and "health" in r["title_en"].lower() for r in rows)

    listing = probe(demo, ["deliveries", "-n", "3"])
    assert listing["code"] == 0 and listing["out"].splitlines()[-1] == "3 envois affiché(s)"
    assert listing["out"].count("envoyé") >= 4  # the column's title and three sent rows
    unknown = probe(demo, ["search", "santé", "--source", "nowhere"])
    assert unknown["code"] == 2 and "valeur inconnue 'nowhere'" in unknown["out"]


def test_review_reads_the_rules_and_the_models_thresholds_without_spacy(built, tmp_path, monkeypatch):
    """With a trained model (the tiny one of tests/nlp_support, its veille_meta.json given deai thresholds of its
    own, its scores stored by `veille classify --all`), `veille review` reads the rules' thresholds from the rules
    in force and the model's from that file: neither spaCy nor SQLAlchemy, the lines of the SQLAlchemy path."""
    from tests.nlp_support import make_tiny_model

    demo = copy_of(built, tmp_path / "demo")
    first = probe(demo, ["review", "--label", "deai", "-n", "1"])["out"].splitlines()  # rules alone
    assert [first[0].split(" · ")[i] for i in (0, 2, 3, 4, 5, 6)] == [
        "2026-03-27",
        "deai",
        "0.40 / 0.50",
        "règles 0.40",
        "modèle -",
        "incertain",
    ]
    assert first[1].strip() == "Data Quality Framework for EU medicines regulation: application to real-world data"
    monkeypatch.setenv("VEILLE_HOME", str(demo))
    make_tiny_model(load_settings(demo / "veille.toml"))
    meta_file = demo / "models" / "has" / "m-tiny" / "veille_meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["thresholds"]["deai"], meta["model_thresholds"]["deai"] = 0.55, 0.4  # the rules' stays 0.5
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    scored = _veille(["classify", "--all"], _env(demo, VEILLE_CONFIG=str(demo / "veille.toml")))
    assert scored.returncode == 0 and "modèle m-tiny" in scored.stdout, scored.stdout + scored.stderr
    for args in (["review"], ["review", "--label", "deai", "-n", "60"]):
        fast, slow = probe(demo, args), probe(demo, args, sqlalchemy=True)
        assert fast["loaded"] == [] and "sqlalchemy" in slow["loaded"], (fast["loaded"], slow["loaded"])
        assert (fast["code"], fast["out"]) == (slow["code"], slow["out"]), args
    lines = fast["out"].splitlines()
    facts = {lines[i + 1].strip(): lines[i].split(" · ") for i in range(0, len(lines), 2)}
    # EuroHPC: no rule fired (0.00), the model says 0.5025 >= 0.4; its score 0.00 is far from 0.55.
    euro_hpc = facts["European High Performance Computing Joint Undertaking (EuroHPC)"]
    assert [euro_hpc[i] for i in (0, 2, 3, 4, 5, 6)] == [
        "2025-12-17",
        "deai",
        "0.00 / 0.55",
        "règles 0.00",
        "modèle 0.50",
        "règles ≠ modèle",
    ]
    # The data quality framework: rules 0.40 < 0.5, model 0.4975 >= 0.4, 0.45 within 0.15 of 0.55.
    quality = facts["Data Quality Framework for EU medicines regulation: application to real-world data"]
    assert quality[3:] == ["0.45 / 0.55", "règles 0.40", "modèle 0.50", "incertain, règles ≠ modèle"]


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_an_archive_behind_the_newest_migration_goes_the_sqlalchemy_way_and_is_migrated(built, tmp_path):
    from storage.db import alembic_config
    from storage.reader import migrations_head

    demo = copy_of(built, tmp_path / "demo")
    expected = probe(demo, ["status"])["out"]
    from alembic import command

    command.downgrade(alembic_config(f"sqlite:///{demo / 'veille.db'}"), "-1")  # a real older archive
    assert _revision(demo / "veille.db") != migrations_head()
    behind = probe(demo, ["status"])
    assert {"sqlalchemy", "alembic"} <= set(behind["loaded"])  # opened by SQLAlchemy, migrated by Alembic
    assert behind["out"] == expected
    assert _revision(demo / "veille.db") == migrations_head()
    assert probe(demo, ["status"])["loaded"] == []  # at the newest schema again: the fast path


def test_a_damaged_archive_is_refused_in_one_line_by_the_fast_path(built, tmp_path):
    demo = copy_of(built, tmp_path / "demo")
    db = demo / "veille.db"
    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    db.write_bytes(db.read_bytes()[:4096])  # truncated, as after a failed copy
    res = probe(demo, ["status"])
    assert res["code"] == 2 and res["loaded"] == []
    truncated = "le fichier est tronqué (4096 octets ; son en-tête en annonce "
    assert res["out"].startswith(f"erreur : archive {db} : {truncated}")
    assert res["out"].strip().endswith("ouverture refusée (fichier laissé intact)")
    assert len(res["out"].splitlines()) == 1
    assert db.stat().st_size == 4096


def test_a_lexicon_to_relearn_on_the_fast_path_is_stored_through_sqlalchemy(built, tmp_path):
    """New rules in force change what the cross-language lexicon is learned from: the next search relearns it
    (spaCy's stop words, the rules' phrases) and stores it, the one write of these commands, through SQLAlchemy;
    the search after reads it back with sqlite3 alone."""
    demo = copy_of(built, tmp_path / "demo")
    before = probe(demo, ["search", "santé"])
    shipped = ROOT / "core" / "profiles" / "has" / "rules.yaml"
    edited = tmp_path / "rules.yaml"
    edited.write_text(shipped.read_text(encoding="utf-8") + "\n# relu le 7 décembre\n", encoding="utf-8")
    saved = _veille(["rules", "save", str(edited)], _env(demo, VEILLE_CONFIG=str(demo / "veille.toml")))
    assert saved.returncode == 0, saved.stdout + saved.stderr
    relearned = probe(demo, ["search", "santé"])
    assert "sqlalchemy" in relearned["loaded"]  # to store the relearned lexicon
    again = probe(demo, ["search", "santé"])
    assert again["loaded"] == []
    assert before["out"] == relearned["out"] == again["out"]  # a comment changes no phrase: the same lexicon
    with sqlite3.connect(demo / "veille.db") as conn:
        stored = json.loads(conn.execute("SELECT value FROM kv WHERE key = 'search.crosslang'").fetchone()[0])
    assert "health" in stored["fr_en"]["sant"]  # santé's stem pairs with health's


TIME = re.compile(
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} CES?T|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}"
    r"|\d{1,2}(?:er)? \w+ \d{4} à \d{2}:\d{2} CES?T"  # a digest's "8 décembre 2026 à 01:21 CET"
)


@pytest.mark.postgres
def test_postgresql_goes_the_sqlalchemy_way_and_prints_what_sqlite_prints(veille_home, tmp_path, pg_server):
    """The same notices (the dev set through storage.ingest, nlp.classify and alerts: tests/web_seed.py) in a SQLite
    file and in PostgreSQL: the commands print the same, the instants (when each was seeded) aside."""
    from nlp.phrase_pairs import rule_units
    from storage.crosslang import lexicon
    from storage.db import open_archive
    from tests.web_helpers import seed_small

    urls = {"sqlite": f"sqlite:///{tmp_path / 'archive.db'}", "postgres": pg_server.create_db("fastcli")}
    for url in urls.values():
        seed_small(open_archive(url), 60, load_settings())
        lexicon(open_archive(url), load_settings(), rule_units)  # learned and stored, as each run does
    with sqlite3.connect(tmp_path / "archive.db") as conn:  # the day the seeding's digests went out
        [(batch,)] = conn.execute("SELECT batch FROM delivery WHERE purpose = 'digest' ORDER BY id LIMIT 1")
    commands = [
        ["status"],
        ["deliveries", "-n", "200"],
        ["search", "dispositifs médicaux", "--format", "json"],
        ["digest", "--preview", batch.split(":")[1]],  # what went out that day
        ["digest", "--since", "2020-01-01", "--label", "deai"],
        ["review"],  # nlp.review's SQL text on PostgreSQL
        ["review", "--label", "deai", "-n", "5"],
    ]
    for args in commands:
        outs = {}
        for name, url in urls.items():
            env = _env(veille_home, VEILLE_DATABASE_URL=url)
            res = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True)
            assert res.returncode == 0, (args, name, res.stderr[-3000:])
            outs[name] = json.loads(res.stdout.splitlines()[-1])
            assert outs[name]["code"] == 0, outs[name]["out"]
        assert outs["sqlite"]["loaded"] == [] and "sqlalchemy" in outs["postgres"]["loaded"]
        if args[0] == "search":  # each database ranks its own way (FTS5 bm25, ts_rank): the same notices found
            found = {k: {(h["id"], h["title"], h["published"]) for h in json.loads(o["out"])} for k, o in outs.items()}
            assert found["sqlite"] == found["postgres"] and found["sqlite"]
            searched = outs["postgres"]["out"]
        elif "--preview" in args:  # the digests the seeding sent, rendered again from both databases
            assert re.search(r"^[1-9]\d* messages? : [1-9]\d* notice", outs["postgres"]["out"], re.M), outs["postgres"]
        elif args[0] == "review":  # decisions to review, the same on both
            assert re.search(r"^\d{4}-\d\d-\d\d · notice \d+ · deai · ", outs["postgres"]["out"], re.M), args
        if args[0] != "search":
            assert TIME.sub("<t>", outs["sqlite"]["out"]) == TIME.sub("<t>", outs["postgres"]["out"]), args
    wide = _veille(["status"], _env(veille_home, VEILLE_DATABASE_URL=urls["postgres"], COLUMNS="200"))
    ema = next(line for line in wide.stdout.splitlines() if line.startswith("│ ema-news "))
    assert "en échec" in ema and "HTTP 202 au corps vide (défi anti-robot)" in ema
    hits = {h["celex"]: h for h in json.loads(searched)}
    assert hits["32025R0117"]["title"].startswith(SEARCHED) and hits["32025R0117"]["published"] == "2025-01-24"
    assert hits["32021R2226"]["published"] == "2021-12-14"
