"""tool signing keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:10:50.992554
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retire_at", plugin.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_tool_key_kid")),
    )


def downgrade() -> None:
    op.drop_table("tool_key")
