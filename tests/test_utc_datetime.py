"""One column type for instants (storage.types.UTCDateTime): every read is an aware UTC datetime, on SQLite
and PostgreSQL, and rows written before it (plain ``DateTime(timezone=True)``) read the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, text

from storage.db import session_scope
from storage.models import Source
from storage.runs import finish_run, start_run
from veille.pipeline import due_sources

INSTANT = datetime(2026, 12, 7, 17, 5, 30, 123456, tzinfo=UTC)
# The table as the column type before UTCDateTime wrote it (the migrations create it; the stored form is theirs).
OLD_SOURCE = Table(
    "source",
    MetaData(),
    Column("name", String, primary_key=True),
    Column("kind", String),
    Column("watermark", DateTime(timezone=True)),
)


def test_a_row_written_before_reads_back_aware_utc_and_is_stored_alike(engine):
    with engine.begin() as conn:
        conn.execute(insert(OLD_SOURCE).values(name="old", kind="rss", watermark=INSTANT))
    with session_scope(engine, write=True) as s:
        s.add(Source(name="new", kind="rss", watermark=INSTANT))
    with session_scope(engine) as s:
        old, new = s.get(Source, "old"), s.get(Source, "new")
        assert old.watermark == INSTANT and old.watermark.utcoffset().total_seconds() == 0
        assert old.watermark.tzinfo is UTC and new.watermark.tzinfo is UTC
        assert new.watermark == INSTANT
    with engine.connect() as conn:  # the stored form did not change: no migration
        raw = dict(conn.execute(text("SELECT name, watermark FROM source")).all())
    assert raw["old"] == raw["new"]
    if engine.dialect.name == "sqlite":
        assert raw["new"] == "2026-12-07 17:05:30.123456"


def test_an_instant_in_another_zone_is_stored_as_utc(engine):
    paris = datetime(2026, 12, 7, 18, 5, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 17:05:30 UTC
    with session_scope(engine, write=True) as s:
        s.add(Source(name="eurlex", kind="rss", watermark=paris))
    with session_scope(engine) as s:
        assert s.get(Source, "eurlex").watermark == datetime(2026, 12, 7, 17, 5, 30, tzinfo=UTC)
    with engine.connect() as conn:
        got = conn.execute(select(OLD_SOURCE.c.watermark).where(OLD_SOURCE.c.name == "eurlex")).scalar_one()
    assert got.replace(tzinfo=got.tzinfo or UTC) == paris


def test_readers_compare_stored_instants_without_fixing_zones(engine, veille_home):
    """A crawl run's start read back by the scheduler's due-source check (it used to add the zone itself)."""
    from core.config import load_settings

    settings = load_settings()
    name = settings.sources[0].name
    run = start_run(engine, name, settings.sources[0].kind)
    finish_run(engine, run, ok=True)
    assert name not in due_sources(engine, settings)  # polled just now
    later = datetime.now(UTC) + settings.sources[0].interval_td
    assert name in due_sources(engine, settings, now=later)
