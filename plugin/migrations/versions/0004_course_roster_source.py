"""course roster source

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:40:06.632995
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("nrps_url", sa.String(length=2048), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("roster_synced_at", plugin.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_column("roster_synced_at")
        batch_op.drop_column("nrps_url")
