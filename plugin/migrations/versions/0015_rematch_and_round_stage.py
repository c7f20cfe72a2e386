"""re-matching (relationship.rematch_of_id, carry_goal_ids) and a round's progress stage

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relationship", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rematch_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("carry_goal_ids", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.create_index(
            batch_op.f("ix_relationship_rematch_of_id"), ["rematch_of_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_relationship_rematch_of_id_relationship"),
            "relationship",
            ["rematch_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("progress_stage", sa.String(length=20), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.drop_column("progress_stage")
    with op.batch_alter_table("relationship", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_relationship_rematch_of_id_relationship"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_relationship_rematch_of_id"))
        batch_op.drop_column("carry_goal_ids")
        batch_op.drop_column("rematch_of_id")
