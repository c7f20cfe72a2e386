"""feedback: meeting feedback, health checks, evaluations, handled attention items

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 15:35:36
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attention_handled",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("relationship_id", sa.Integer(), nullable=False),
        sa.Column("handled_by_user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signal_kinds", sa.JSON(), nullable=False),
        sa.Column("handled_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["handled_by_user_id"],
            ["user_account.id"],
            name=op.f("fk_attention_handled_handled_by_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_attention_handled_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relationship_id"],
            ["relationship.id"],
            name=op.f("fk_attention_handled_relationship_id_relationship"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attention_handled")),
    )
    with op.batch_alter_table("attention_handled", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attention_handled_program_relationship",
            ["program_id", "relationship_id"],
            unique=False,
        )

    op.create_table(
        "health_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("relationship_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["participant.id"],
            name=op.f("fk_health_check_author_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_health_check_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relationship_id"],
            ["relationship.id"],
            name=op.f("fk_health_check_relationship_id_relationship"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_check")),
        sa.UniqueConstraint(
            "relationship_id",
            "author_id",
            "period",
            name=op.f("uq_health_check_relationship_id_author_id_period"),
        ),
    )
    with op.batch_alter_table("health_check", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_health_check_author_id"), ["author_id"], unique=False)
        batch_op.create_index(
            "ix_health_check_program_relationship", ["program_id", "relationship_id"], unique=False
        )

    op.create_table(
        "relationship_evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("relationship_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column(
            "goals_met",
            sa.Enum("yes", "partly", "no", name="goalsmet", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("would_recommend", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["participant.id"],
            name=op.f("fk_relationship_evaluation_author_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_relationship_evaluation_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relationship_id"],
            ["relationship.id"],
            name=op.f("fk_relationship_evaluation_relationship_id_relationship"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relationship_evaluation")),
        sa.UniqueConstraint(
            "relationship_id",
            "author_id",
            name=op.f("uq_relationship_evaluation_relationship_id_author_id"),
        ),
    )
    with op.batch_alter_table("relationship_evaluation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_relationship_evaluation_author_id"), ["author_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_relationship_evaluation_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "meeting_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("relationship_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("useful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column(
            "visibility",
            sa.Enum("private", "shared", name="feedbackvisibility", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["participant.id"],
            name=op.f("fk_meeting_feedback_author_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_meeting_feedback_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_meeting_feedback_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relationship_id"],
            ["relationship.id"],
            name=op.f("fk_meeting_feedback_relationship_id_relationship"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_feedback")),
        sa.UniqueConstraint(
            "meeting_id", "author_id", name=op.f("uq_meeting_feedback_meeting_id_author_id")
        ),
    )
    with op.batch_alter_table("meeting_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_feedback_author_id"), ["author_id"], unique=False
        )
        batch_op.create_index(
            "ix_meeting_feedback_program_relationship",
            ["program_id", "relationship_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_feedback_program_relationship")
        batch_op.drop_index(batch_op.f("ix_meeting_feedback_author_id"))

    op.drop_table("meeting_feedback")
    with op.batch_alter_table("relationship_evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_relationship_evaluation_program_id"))
        batch_op.drop_index(batch_op.f("ix_relationship_evaluation_author_id"))

    op.drop_table("relationship_evaluation")
    with op.batch_alter_table("health_check", schema=None) as batch_op:
        batch_op.drop_index("ix_health_check_program_relationship")
        batch_op.drop_index(batch_op.f("ix_health_check_author_id"))

    op.drop_table("health_check")
    with op.batch_alter_table("attention_handled", schema=None) as batch_op:
        batch_op.drop_index("ix_attention_handled_program_relationship")

    op.drop_table("attention_handled")
