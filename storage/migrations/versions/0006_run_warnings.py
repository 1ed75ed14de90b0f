"""warnings kept on each crawl run

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A run that succeeded may still have seen drift: items without a date, a title or a deadline, a feed
without items (issue 19). Its warnings are kept on the run, one line each, for ``veille status``,
the dashboard and the digest footer. Model: storage/models.py ``CrawlRun.warnings``.
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crawl_run") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_run") as batch:
        batch.drop_column("warnings")
