"""Program figures for coordinators: goals in aggregate and each relationship's meetings.

Coordinators see goals only as numbers (no goal text): how many are in each status, and
per track how many there are and their average progress. Both figures, and the last and
next meeting of a page of relationships, are one grouped query each (no query per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import Circle, Goal, GoalStatus, Meeting, MeetingStatus, Relationship, Track

__all__ = ["GoalSummary", "MeetingTimes", "TrackProgress", "goal_summary", "meeting_times"]


@dataclass(frozen=True)
class TrackProgress:
    """Goals shared on one track (None: private goals), their number and mean progress."""

    track: Track | None
    goals: int
    average_progress: float


@dataclass(frozen=True)
class GoalSummary:
    """A program's goals as numbers only."""

    by_status: dict[GoalStatus, int]
    by_track: list[TrackProgress]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def goal_summary(session: Session, program_id: int) -> GoalSummary:
    """Goals of ``program_id`` by status, and per track their count and average progress."""
    by_status = dict.fromkeys(GoalStatus, 0)
    for status, n in session.execute(
        select(Goal.status, func.count()).where(Goal.program_id == program_id).group_by(Goal.status)
    ):
        by_status[GoalStatus(status)] = int(n)
    # A goal's track: its relationship's, else its circle's; neither means private.
    track = func.coalesce(Relationship.track, Circle.track)
    rows = session.execute(
        select(track, func.count(), func.avg(Goal.progress))
        .select_from(Goal)
        .outerjoin(Relationship, Relationship.id == Goal.relationship_id)
        .outerjoin(Circle, Circle.id == Goal.circle_id)
        .where(Goal.program_id == program_id, Goal.status != GoalStatus.DROPPED)
        .group_by(track)
    ).all()
    by_track = sorted(
        (
            TrackProgress(
                track=Track(t) if t is not None else None,
                goals=int(n),
                average_progress=round(float(avg or 0), 1),
            )
            for t, n, avg in rows
        ),
        key=lambda p: (p.track is None, p.track.value if p.track else ""),
    )
    return GoalSummary(by_status=by_status, by_track=by_track)


@dataclass(frozen=True)
class MeetingTimes:
    """A relationship's most recent held meeting and next scheduled one (None: none)."""

    last: datetime | None
    next: datetime | None


def meeting_times(
    session: Session, relationship_ids: list[int], *, now: datetime | None = None
) -> dict[int, MeetingTimes]:
    """Last held and next scheduled meeting of each relationship, in one grouped query."""
    if not relationship_ids:
        return {}
    now = now or utcnow()
    last = func.max(case((Meeting.status == MeetingStatus.HELD, Meeting.starts_at), else_=None))
    upcoming = func.min(
        case(
            (
                (Meeting.status == MeetingStatus.SCHEDULED) & (Meeting.ends_at > now),
                Meeting.starts_at,
            ),
            else_=None,
        )
    )
    rows = session.execute(
        select(Meeting.relationship_id, last, upcoming)
        .where(Meeting.relationship_id.in_(relationship_ids))
        .group_by(Meeting.relationship_id)
    ).all()
    return {int(rid): MeetingTimes(last=_aware(a), next=_aware(b)) for rid, a, b in rows}


def _aware(value: datetime | str | None) -> datetime | None:
    """A UTC-aware time from an aggregate (defensive: drivers differ on MIN/MAX types)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
