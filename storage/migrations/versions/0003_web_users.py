"""web workbench accounts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

One row per person allowed into the web workbench: a unique name, a role (reader: read-only;
analyst: may give feedback and edit rules) and a salted scrypt password hash (none when the
account is only used behind a trusted reverse-proxy header).
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.CheckConstraint("role IN ('reader', 'analyst')", name="ck_web_user_role"),
    )


def downgrade() -> None:
    op.drop_table("web_user")
