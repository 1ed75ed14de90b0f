"""calendar feed tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

One row per secret giving access to a calendar feed (a label's, or "all") without a session:
the SHA-256 of the token, when it was created, and when it was revoked (never deleted, so the
feed's access history stays readable). Model: storage/calendar_tokens.py.
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("calendar_token") as batch_op:
        batch_op.create_index("ix_calendar_token_feed", ["feed"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calendar_token") as batch_op:
        batch_op.drop_index("ix_calendar_token_feed")
    op.drop_table("calendar_token")
