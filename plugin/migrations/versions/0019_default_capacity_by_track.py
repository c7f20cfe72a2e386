"""per-track default mentor capacity (program.default_capacity_by_track)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("program", schema=None) as batch_op:
        # Existing programs get no per-track entry: every track keeps falling back to
        # default_mentor_capacity, so their mentors' capacities do not change.
        batch_op.add_column(
            sa.Column(
                "default_capacity_by_track",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )


def downgrade() -> None:
    # Never recreate the table: on SQLite (foreign keys on) dropping the old program table
    # would cascade and delete every participant, relationship and round of every program.
    # SQLite 3.35+ drops a column in place.
    with op.batch_alter_table("program", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("default_capacity_by_track")
