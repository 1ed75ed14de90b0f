"""web session version

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A counter per workbench account, copied into each session cookie at login. Logging out, changing
the password (``veille users add`` with a password) raises it, which ends every session of that
account made before, including cookies copied elsewhere (see docs/web.md).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_user") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("web_user") as batch_op:
        batch_op.drop_column("session_version")
