"""The audit trail: coordinator actions and settings changes (who, when, before/after)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base, utcnow

__all__ = ["AuditEvent"]


class AuditEvent(Base):
    """One audited action inside a course (and usually a program)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_program_at", "program_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    program_id: Mapped[int | None] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), default=None
    )
    #: The user who acted (None: the system).
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    #: Dotted verb, e.g. "program.settings_changed", "relationship.created".
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str] = mapped_column(String(40), default="")
    target_id: Mapped[int | None] = mapped_column(default=None)
    #: Changed fields only, before and after (never secrets or private preferences).
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
