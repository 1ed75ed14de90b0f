"""full-text search index (SQLite FTS5 / PostgreSQL tsvector + unaccent)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The indexed text is already stemmed and unaccented by storage.textnorm, so both backends index
the same terms. FTS5 rowids (and notice_search.search_key) are ``days << 32 | notice id``, which
lets a query stream matches newest first and turns a date range into a rowid range. On SQLite the
``meta`` column holds filter tokens (selected labels, source, type, kind), so filters are doclist
intersections inside FTS5 rather than a join per match.
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE notice_fts USING fts5("
            "title, summary, body, meta, tokenize='unicode61 remove_diacritics 2')"
        )
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS veille")
    op.execute("CREATE TEXT SEARCH CONFIGURATION veille (COPY = simple)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION veille ALTER MAPPING FOR hword, hword_part, word "
        "WITH unaccent, simple"
    )
    op.execute(
        "CREATE TABLE notice_search ("
        " notice_id INTEGER PRIMARY KEY REFERENCES notice(id) ON DELETE CASCADE,"
        " search_key BIGINT NOT NULL,"
        " tsv TSVECTOR NOT NULL)"
    )
    op.execute("CREATE INDEX ix_notice_search_tsv ON notice_search USING GIN (tsv)")
    op.execute("CREATE INDEX ix_notice_search_skey ON notice_search (search_key)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE notice_fts")
        return
    op.execute("DROP TABLE notice_search")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS veille")
