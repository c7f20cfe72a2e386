"""goal edits keep what changed (goal_update.changes); invitation e-mails to external mentors

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("goal_update", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "invitation_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("invited_by_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "skipped",
                name="invitationmailstate",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", plugin.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by_user_id"],
            ["user_account.id"],
            name=op.f("fk_invitation_mail_invited_by_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_invitation_mail_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation_mail")),
    )
    with op.batch_alter_table("invitation_mail", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invitation_mail_participant_id"), ["participant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("invitation_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_mail_participant_id"))
    op.drop_table("invitation_mail")
    with op.batch_alter_table("goal_update", schema=None) as batch_op:
        batch_op.drop_column("changes")
