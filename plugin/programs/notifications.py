"""In-app notifications: add one with the change it announces; list and mark read."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import Notification, Participant

__all__ = ["mark_read", "notify", "unread_notifications"]

#: How many unread notifications a page shows (older ones stay until read).
SHOWN = 10


def notify(
    session: Session, recipient: Participant, *, kind: str, text: str, link: str = ""
) -> Notification:
    """Tell ``recipient`` something on their next page (committed with the caller's change)."""
    notification = Notification(recipient_id=recipient.id, kind=kind, text=text, link=link)
    session.add(notification)
    return notification


def unread_notifications(session: Session, recipient: Participant) -> list[Notification]:
    """The newest unread notifications of ``recipient``."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.recipient_id == recipient.id, Notification.read_at.is_(None))
            .order_by(Notification.id.desc())
            .limit(SHOWN)
        )
    )


def mark_read(session: Session, recipient: Participant, notification_ids: list[int]) -> int:
    """Mark ``recipient``'s notifications read (others' ids are ignored); returns how many."""
    if not notification_ids:
        return 0
    result = session.execute(
        update(Notification)
        .where(
            Notification.recipient_id == recipient.id,
            Notification.id.in_(notification_ids),
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
