"""calendars: when a connection started failing, and when its person was told it stopped

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_connection") as batch:
        batch.add_column(
            sa.Column("failing_since", plugin.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("notice_sent_at", plugin.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_connection") as batch:
        batch.drop_column("notice_sent_at")
        batch.drop_column("failing_since")
