"""matching: match rounds and their proposals

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACKS = ("research", "career", "clinical", "wellbeing", "leadership")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        "match_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column(
            "objective", _enum("roundobjective", "best_total_fit", "max_matched"), nullable=False
        ),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            _enum("roundstatus", "draft", "running", "ready", "published", "failed"),
            nullable=False,
        ),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("exclusions", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("certificate", sa.JSON(), nullable=False),
        sa.Column("unmatched", sa.JSON(), nullable=False),
        sa.Column("publish_report", sa.JSON(), nullable=False),
        sa.Column("total_score", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", plugin.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", plugin.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["user_account.id"],
            name=op.f("fk_match_round_created_by_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_match_round_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_round")),
    )
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_round_program_id"), ["program_id"], unique=False)
    op.create_table(
        "match_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("mentee_id", sa.Integer(), nullable=False),
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("track", _enum("track", *TRACKS), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            _enum("proposalstate", "proposed", "locked", "rejected", "published"),
            nullable=False,
        ),
        sa.Column("relationship_id", sa.Integer(), nullable=True),
        sa.Column("created_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentee_id"],
            ["participant.id"],
            name=op.f("fk_match_proposal_mentee_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mentor_id"],
            ["participant.id"],
            name=op.f("fk_match_proposal_mentor_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relationship_id"],
            ["relationship.id"],
            name=op.f("fk_match_proposal_relationship_id_relationship"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["match_round.id"],
            name=op.f("fk_match_proposal_round_id_match_round"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_proposal")),
    )
    with op.batch_alter_table("match_proposal", schema=None) as batch_op:
        batch_op.create_index("ix_match_proposal_round_state", ["round_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("match_proposal", schema=None) as batch_op:
        batch_op.drop_index("ix_match_proposal_round_state")
    op.drop_table("match_proposal")
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_round_program_id"))
    op.drop_table("match_round")
