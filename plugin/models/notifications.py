"""In-app notifications: short messages shown on every program page until read.

The first delivery channel of follow-ups: a service adds a row in the same transaction as
the change it announces, and the recipient sees it on their next page. ``link`` is a path
inside the tool without the launch token (pages add the reader's own token).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, utcnow
from plugin.models.program import Participant

__all__ = ["Notification"]


class Notification(Base):
    """One message to one participant (``read_at`` set when they dismiss it)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_recipient_read", "recipient_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    #: Dotted kind, e.g. "relationship.requested", "relationship.ended", "goal.agreed".
    kind: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(default=None)

    recipient: Mapped[Participant] = relationship()
