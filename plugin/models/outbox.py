"""The job outbox: work promised in a transaction, queued only after it commits.

Redis carries jobs but is not the source of truth. A change that needs background work
writes an :class:`OutboxJob` in the same transaction; after commit the job is pushed to
RQ, and the cron sweep re-pushes any row still pending whose job Redis lost (restart,
flush, a worker killed mid-job). A row is done only when its job succeeded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base, utcnow

__all__ = ["OutboxJob", "OutboxState"]


class OutboxState(StrEnum):
    """Lifecycle of an outbox row."""

    PENDING = "pending"  #: promised; queued or waiting to be (re)queued
    DONE = "done"  #: its job succeeded
    DEAD = "dead"  #: gave up after the re-drive cap; needs a person to look


class OutboxJob(Base):
    """A background job that must run at least once because a committed change needs it."""

    __tablename__ = "job_outbox"
    __table_args__ = (
        # At most one pending row per dedupe key: deferring the same work twice is a no-op.
        Index(
            "uq_job_outbox_pending_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_job_outbox_state_not_before", "state", "not_before"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    func: Mapped[str] = mapped_column(String(255))
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    queue: Mapped[str] = mapped_column(String(50))
    state: Mapped[OutboxState] = mapped_column(
        Enum(
            OutboxState,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OutboxState.PENDING,
    )
    #: Earliest time the job may run (None: as soon as possible).
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Times the sweep had to push it again because Redis had lost or failed it.
    redrives: Mapped[int] = mapped_column(default=0)
    last_redrive_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Exception class and a short message of the latest failure; no traceback, no payload.
    last_error: Mapped[str] = mapped_column(Text, default="")

    @property
    def rq_job_id(self) -> str:
        """The RQ job id: the same for every push of this row, so Redis dedupes re-drives."""
        return f"outbox-{self.id}"
