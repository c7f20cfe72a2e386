"""the earliest career stage of a peer mentor (program.peer_mentor_min_stage)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("program", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "peer_mentor_min_stage",
                sa.Enum(
                    "preclinical",
                    "clinical_student",
                    "resident",
                    "fellow",
                    "early_career",
                    "mid_career",
                    "senior",
                    name="careerstage",
                    native_enum=False,
                    length=20,
                ),
                nullable=False,
                # Existing programs get the default a new program has.
                server_default="clinical_student",
            )
        )


def downgrade() -> None:
    # Never recreate the table: on SQLite (foreign keys on) dropping the old program table
    # would cascade and delete every participant, relationship and round of every program.
    # SQLite 3.35+ drops a column in place.
    with op.batch_alter_table("program", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("peer_mentor_min_stage")
