"""notice.published_at is a Brussels calendar day

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

The publication day was stored as a UTC instant, so a day written as ``00:00 +0200`` (EUR-Lex, the
Commission's Drupal feeds) was kept as 22:00 UTC the day before and shown one day early. It is now a
``date`` (docs/decisions.md, "Dates"). Existing values: an instant at exactly 22:00 or 23:00 UTC is a
midnight written at +02:00 or +01:00 and becomes the next day; any other instant becomes its day in
Brussels. Search keys (``days << 32 | id``) follow the corrected days. The next crawl of each source
rewrites the dates from the source anyway.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BRUSSELS = ZoneInfo("Europe/Brussels")
EPOCH = date(1970, 1, 1)
MIDNIGHTS = (time(22, 0), time(23, 0))  # 00:00 at +02:00 / +01:00, in UTC


def _instant(value) -> datetime | None:
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _day(value) -> date | None:
    when = _instant(value)
    if when is None:
        return None
    if when.time() in MIDNIGHTS:
        return (when + timedelta(hours=2)).date()
    return when.astimezone(BRUSSELS).date()


def _as_date(value) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _key(notice_id: int, day: date | None) -> int:
    return (max((day - EPOCH).days, 0) << 32 | notice_id) if day else notice_id


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    rows = bind.execute(sa.text("SELECT id, published_at, document_date, first_seen, search_key FROM notice")).all()
    if not sqlite:
        op.execute(
            "ALTER TABLE notice ALTER COLUMN published_at TYPE date USING (CASE"
            " WHEN (published_at AT TIME ZONE 'UTC')::time IN ('22:00', '23:00')"
            " THEN ((published_at AT TIME ZONE 'UTC') + interval '2 hours')::date"
            " ELSE (published_at AT TIME ZONE 'Europe/Brussels')::date END)"
        )
    for r in rows:
        day = _day(r.published_at)
        if sqlite and r.published_at is not None:
            bind.execute(
                sa.text("UPDATE notice SET published_at = :d WHERE id = :i"),
                {"d": day.isoformat() if day else None, "i": r.id},
            )
        first = _instant(r.first_seen)
        key = _key(r.id, day or _as_date(r.document_date) or (first.astimezone(BRUSSELS).date() if first else None))
        if r.search_key is None or key == r.search_key:
            continue
        bind.execute(sa.text("UPDATE notice SET search_key = :k WHERE id = :i"), {"k": key, "i": r.id})
        if sqlite:  # the FTS5 rowid is the search key
            bind.execute(
                sa.text(
                    "INSERT INTO notice_fts(rowid, title, summary, body, meta)"
                    " SELECT :k, title, summary, body, meta FROM notice_fts WHERE rowid = :old"
                ),
                {"k": key, "old": r.search_key},
            )
            bind.execute(sa.text("DELETE FROM notice_fts WHERE rowid = :old"), {"old": r.search_key})
        else:
            bind.execute(
                sa.text("UPDATE notice_search SET search_key = :k WHERE notice_id = :i"), {"k": key, "i": r.id}
            )
    op.create_index("ix_notice_published_at", "notice", ["published_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notice_published_at", table_name="notice")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("UPDATE notice SET published_at = published_at || ' 00:00:00.000000' WHERE published_at IS NOT NULL")
        return
    op.execute(
        "ALTER TABLE notice ALTER COLUMN published_at TYPE timestamptz USING published_at::timestamp AT TIME ZONE 'UTC'"
    )
