"""What follow-ups need to know about a relationship's meetings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import Meeting, MeetingStatus, Relationship

__all__ = ["last_meeting_at", "meetings_changed"]


def last_meeting_at(session: Session, relationship: Relationship) -> datetime | None:
    """When the pair last met or will next meet: the latest held or scheduled meeting.

    Cancelled and missed meetings do not count. A meeting already scheduled counts as
    well as one held, so nobody is nudged "you have not met" with a meeting in the diary.
    """
    latest: datetime | None = session.scalar(
        select(func.max(Meeting.starts_at)).where(
            Meeting.relationship_id == relationship.id,
            Meeting.status.in_((MeetingStatus.HELD, MeetingStatus.SCHEDULED)),
        )
    )  # max() keeps the column's UTC type: aware on SQLite too
    return latest


def meetings_changed(session: Session, meeting: Meeting) -> None:
    """A meeting changed (booked, moved, cancelled, marked): its reminders and feedback
    requests, and its relationship's nudges, are planned again in the same transaction."""
    from plugin.followups.planner import reconcile

    session.flush()
    if meeting.relationship_id is not None:
        # The relationship's scope covers its meetings' reminders as well as the nudges.
        reconcile(session, relationship_id=meeting.relationship_id)
    else:
        reconcile(session, meeting_id=meeting.id)
