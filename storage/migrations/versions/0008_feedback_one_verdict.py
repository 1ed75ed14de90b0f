"""one feedback verdict per analyst, notice and label

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

A double click on the workbench stored the same verdict twice. An analyst's verdict on a (notice,
label) is now one row, updated in place (web/routes/notice.py upserts). The duplicates already
stored are reduced to the newest row of each (notice, label, user) before the constraint is added.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keep the newest verdict of each analyst (highest id: rows are only ever appended before this).
    op.execute(
        sa.text('DELETE FROM feedback WHERE id NOT IN (SELECT MAX(id) FROM feedback GROUP BY notice_id, label, "user")')
    )
    with op.batch_alter_table("feedback") as batch_op:
        batch_op.create_unique_constraint("uq_feedback_notice_label_user", ["notice_id", "label", "user"])


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch_op:
        batch_op.drop_constraint("uq_feedback_notice_label_user", type_="unique")
