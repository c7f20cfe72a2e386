"""programs: AGS line item and scopes, resource-link roster

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("program", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "ags_lineitems_url", sa.String(length=2048), nullable=False, server_default=""
            )
        )
        batch_op.add_column(
            sa.Column("ags_lineitem_url", sa.String(length=2048), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("ags_scopes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("link_member_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("link_roster_synced_at", plugin.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("program", schema=None) as batch_op:
        batch_op.drop_column("link_roster_synced_at")
        batch_op.drop_column("link_member_ids")
        batch_op.drop_column("ags_scopes")
        batch_op.drop_column("ags_lineitem_url")
        batch_op.drop_column("ags_lineitems_url")
