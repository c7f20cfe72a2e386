"""Outcome figures for the dashboard: meeting feedback by month, relationships by health.

Both come from the feedback work: :class:`plugin.models.MeetingFeedback` answers, grouped
by the month their meeting started (one query), and the health level of every active
relationship from :func:`plugin.insights.signals.relationship_signals` (a fixed number
of aggregate queries, whatever the program's size).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.insights.metrics import month_starts
from plugin.insights.signals import Health, relationship_signals
from plugin.models import Meeting, MeetingFeedback, Program

__all__ = ["FeedbackMonth", "Outcomes", "program_outcomes"]


@dataclass(frozen=True)
class FeedbackMonth:
    """Meeting feedback given about the meetings of one calendar month."""

    month: datetime
    answers: int
    average_rating: float | None
    useful_percent: float | None
    partial: bool


@dataclass(frozen=True)
class Outcomes:
    feedback: list[FeedbackMonth]
    #: Active relationships per health level, every level present (zeros included).
    health: dict[Health, int]


def _month(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def program_outcomes(session: Session, program: Program, now: datetime) -> Outcomes:
    """Feedback over the dashboard's months and the health of the active relationships."""
    starts = month_starts(now)
    rows = session.execute(
        select(Meeting.starts_at, MeetingFeedback.rating, MeetingFeedback.useful)
        .join(Meeting, Meeting.id == MeetingFeedback.meeting_id)
        .where(
            MeetingFeedback.program_id == program.id,
            Meeting.starts_at >= starts[0],
            Meeting.starts_at <= now,
        )
    ).all()
    ratings: dict[datetime, list[tuple[int, bool]]] = {start: [] for start in starts}
    for starts_at, rating, useful in rows:
        ratings.setdefault(_month(starts_at), []).append((rating, useful))
    current = _month(now)
    feedback = []
    for start in starts:
        answers = ratings[start]
        n = len(answers)
        feedback.append(
            FeedbackMonth(
                month=start,
                answers=n,
                average_rating=round(sum(r for r, _ in answers) / n, 2) if n else None,
                useful_percent=round(100 * sum(u for _, u in answers) / n, 1) if n else None,
                partial=start == current,
            )
        )
    health = dict.fromkeys(Health, 0)
    for item in relationship_signals(session, program, now):
        health[item.health] += 1
    return Outcomes(feedback=feedback, health=health)
