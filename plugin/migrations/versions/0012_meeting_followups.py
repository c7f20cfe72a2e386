"""follow-ups about meetings: reminders and feedback requests point at their meeting

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Additive: a nullable column, its index and foreign key (batch mode for SQLite).
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meeting_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_followup_meeting_id", ["meeting_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_followup_meeting_id_meeting"),
            "meeting",
            ["meeting_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_followup_meeting_id_meeting"), type_="foreignkey")
        batch_op.drop_index("ix_followup_meeting_id")
        batch_op.drop_column("meeting_id")
