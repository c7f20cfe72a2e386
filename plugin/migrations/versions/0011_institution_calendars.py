"""institution calendars: a service account or app-only account per e-mail domain

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.crypto
import plugin.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "institution_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("credentials", plugin.crypto.EncryptedText(), nullable=True),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_institution_calendar_platform_id_platform"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institution_calendar")),
        sa.UniqueConstraint(
            "platform_id", "domain", name=op.f("uq_institution_calendar_platform_id_domain")
        ),
    )
    with op.batch_alter_table("institution_calendar", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_institution_calendar_platform_id"), ["platform_id"], unique=False
        )
    with op.batch_alter_table("calendar_connection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("institution_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_calendar_connection_institution_id"), ["institution_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_calendar_connection_institution_id_institution_calendar"),
            "institution_calendar",
            ["institution_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_connection", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_calendar_connection_institution_id_institution_calendar"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_calendar_connection_institution_id"))
        batch_op.drop_column("institution_id")
    with op.batch_alter_table("institution_calendar", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_institution_calendar_platform_id"))
    op.drop_table("institution_calendar")
