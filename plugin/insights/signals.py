"""Signals that a relationship is stalled or unhappy, and its health level.

:func:`relationship_signals` reads a program's active relationships and returns, for each,
the signals that speak against it and a :class:`Health` level (good / watch / at risk). It
is pure over the session: it only reads, never writes or commits, never touches Flask, and
takes ``now`` as an argument (so tests and reports can ask "as of when"). Its query count
does not depend on the program's size: each signal is one aggregate query over the whole
program (see ``tests/insights/test_signals.py``).

The signals (each with the evidence's time, ``since``, so a handled item resurfaces only on
newer evidence):

=================  ============================================  ======================
kind               raised when                                   level
=================  ============================================  ======================
no_meeting         no meeting held or scheduled for longer       watch; at risk past
                   than the gap (first meeting: the policy's     twice the gap
                   ``first_meeting_days``; then its
                   ``meeting_gap_days``)
missed_meetings    meetings marked missed in the window          watch; at risk from 2
low_ratings        meeting feedback rated 1-2, or "not useful",  watch; at risk from 2
                   in the window
stalled_goals      an open goal of the pair without a check-in   watch
                   (or creation) for ``goal_stale_days``
overdue_goals      an open goal past its target date             watch
negative_health    a side's latest health check answered 1-2     watch; at risk at 1
                   (in the window)
escalated          the follow-ups escalated the pair to          at risk
                   coordinators (nudges went unanswered), and
                   no meeting was held or scheduled since
=================  ============================================  ======================

"Last meeting" follows :func:`plugin.meetings.history.last_meeting_at` (latest held or
scheduled meeting; cancelled and missed ones do not count), computed for all pairs at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.followups.policy import FollowUpPolicy
from plugin.models import (
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Goal,
    GoalStatus,
    GoalUpdate,
    HealthCheck,
    Meeting,
    MeetingFeedback,
    MeetingStatus,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
)

__all__ = [
    "Health",
    "RelationshipSignals",
    "Signal",
    "SignalKind",
    "Thresholds",
    "needing_attention",
    "relationship_signals",
]


class Health(StrEnum):
    """A relationship's overall level; ordered: good < watch < at risk."""

    GOOD = "good"
    WATCH = "watch"
    AT_RISK = "at_risk"

    @property
    def label(self) -> str:
        return {"good": "Good", "watch": "Watch", "at_risk": "At risk"}[self.value]

    @property
    def rank(self) -> int:
        return {"good": 0, "watch": 1, "at_risk": 2}[self.value]


class SignalKind(StrEnum):
    NO_MEETING = "no_meeting"
    MISSED_MEETINGS = "missed_meetings"
    LOW_RATINGS = "low_ratings"
    STALLED_GOALS = "stalled_goals"
    OVERDUE_GOALS = "overdue_goals"
    NEGATIVE_HEALTH = "negative_health"
    ESCALATED = "escalated"


@dataclass(frozen=True)
class Thresholds:
    """When evidence becomes a signal. Gap days come from the program's follow-up policy."""

    #: Missed meetings and low ratings count within this many days before ``now``.
    window_days: int = 90
    #: An open goal without a check-in for this many days is stalled.
    goal_stale_days: int = 30
    #: Meeting ratings at or below this are low.
    low_rating: int = 2
    #: Health-check scores at or below this are negative (1 is at risk).
    negative_health: int = 2


@dataclass(frozen=True)
class Signal:
    """One reason a relationship needs attention: kind, level, a short explanation (counts and
    days, never names or free text), and when its newest evidence arose."""

    kind: SignalKind
    level: Health
    detail: str
    since: datetime


@dataclass(frozen=True)
class RelationshipSignals:
    """One active relationship with its signals (empty: good)."""

    relationship_id: int
    mentee_id: int
    mentor_id: int
    track: Track
    started_at: datetime | None
    last_meeting_at: datetime | None
    signals: tuple[Signal, ...] = field(default_factory=tuple)

    @property
    def health(self) -> Health:
        """The worst level among the signals (good without any)."""
        return max((s.level for s in self.signals), key=lambda h: h.rank, default=Health.GOOD)

    @property
    def kinds(self) -> frozenset[SignalKind]:
        return frozenset(s.kind for s in self.signals)

    @property
    def newest_evidence(self) -> datetime | None:
        return max((s.since for s in self.signals), default=None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _last_meetings(session: Session, program_id: int) -> dict[int, datetime]:
    rows = session.execute(
        select(Meeting.relationship_id, func.max(Meeting.starts_at))
        .where(
            Meeting.program_id == program_id,
            Meeting.relationship_id.is_not(None),
            Meeting.status.in_((MeetingStatus.HELD, MeetingStatus.SCHEDULED)),
        )
        .group_by(Meeting.relationship_id)
    ).all()
    return {rid: at for rid, at in rows if rid is not None}


def _missed(session: Session, program_id: int, since: datetime) -> dict[int, tuple[int, datetime]]:
    rows = session.execute(
        select(Meeting.relationship_id, func.count(), func.max(Meeting.starts_at))
        .where(
            Meeting.program_id == program_id,
            Meeting.relationship_id.is_not(None),
            Meeting.status == MeetingStatus.MISSED,
            Meeting.starts_at >= since,
        )
        .group_by(Meeting.relationship_id)
    ).all()
    return {rid: (n, at) for rid, n, at in rows if rid is not None}


def _low_ratings(
    session: Session, program_id: int, since: datetime, low: int
) -> dict[int, tuple[int, datetime]]:
    rows = session.execute(
        select(MeetingFeedback.relationship_id, func.count(), func.max(MeetingFeedback.updated_at))
        .where(
            MeetingFeedback.program_id == program_id,
            MeetingFeedback.relationship_id.is_not(None),
            MeetingFeedback.updated_at >= since,
            or_(MeetingFeedback.rating <= low, MeetingFeedback.useful.is_(False)),
        )
        .group_by(MeetingFeedback.relationship_id)
    ).all()
    return {rid: (n, at) for rid, n, at in rows if rid is not None}


@dataclass
class _GoalCounts:
    stalled: int = 0
    stalled_since: datetime | None = None
    overdue: int = 0
    overdue_since: datetime | None = None


def _goals(
    session: Session, program_id: int, now: datetime, stale_days: int
) -> dict[int, _GoalCounts]:
    """Open goals shared in a relationship: stalled (no check-in lately) and overdue."""
    last_checkin = (
        select(GoalUpdate.goal_id, func.max(GoalUpdate.at).label("at"))
        .join(Goal, Goal.id == GoalUpdate.goal_id)
        .where(Goal.program_id == program_id, GoalUpdate.kind == "checkin")
        .group_by(GoalUpdate.goal_id)
        .subquery()
    )
    rows = session.execute(
        select(Goal.relationship_id, Goal.created_at, Goal.target_date, last_checkin.c.at)
        .outerjoin(last_checkin, last_checkin.c.goal_id == Goal.id)
        .where(
            Goal.program_id == program_id,
            Goal.relationship_id.is_not(None),
            Goal.status.in_((GoalStatus.PROPOSED, GoalStatus.AGREED)),
        )
    ).all()
    stale = timedelta(days=stale_days)
    today = now.date()
    counts: dict[int, _GoalCounts] = defaultdict(_GoalCounts)
    for rid, created_at, target_date, checked_at in rows:
        entry = counts[rid]
        active_at: datetime = checked_at or created_at
        if now - active_at > stale:
            entry.stalled += 1
            stalled_since = active_at + stale
            entry.stalled_since = max(filter(None, (entry.stalled_since, stalled_since)))
        if isinstance(target_date, date) and target_date < today:
            entry.overdue += 1
            overdue_since = datetime.combine(
                target_date + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo
            )
            entry.overdue_since = max(filter(None, (entry.overdue_since, overdue_since)))
    return counts


def _negative_health(
    session: Session, program_id: int, since: datetime, negative: int
) -> dict[int, tuple[int, datetime]]:
    """Per relationship: the lowest of each side's latest health-check score, if negative
    and answered in the window."""
    latest = (
        select(func.max(HealthCheck.id).label("id"))
        .where(HealthCheck.program_id == program_id)
        .group_by(HealthCheck.relationship_id, HealthCheck.author_id)
        .subquery()
    )
    rows = session.execute(
        select(
            HealthCheck.relationship_id,
            func.min(HealthCheck.score),
            func.max(HealthCheck.updated_at),
        )
        .join(latest, latest.c.id == HealthCheck.id)
        .where(HealthCheck.score <= negative, HealthCheck.updated_at >= since)
        .group_by(HealthCheck.relationship_id)
    ).all()
    return {rid: (score, at) for rid, score, at in rows}


def _escalations(session: Session, program_id: int, now: datetime) -> dict[int, datetime]:
    """Escalations whose time came (sent, or due, or skipped by the coordinator's settings);
    a cancelled one was made obsolete by a meeting."""
    rows = session.execute(
        select(FollowUp.relationship_id, func.max(FollowUp.due_at))
        .where(
            FollowUp.program_id == program_id,
            FollowUp.kind == FollowUpKind.ESCALATION,
            FollowUp.relationship_id.is_not(None),
            FollowUp.due_at <= now,
            FollowUp.state != FollowUpState.CANCELLED,
        )
        .group_by(FollowUp.relationship_id)
    ).all()
    return {rid: at for rid, at in rows if rid is not None}


def _gap_signal(
    rel: Relationship, last: datetime | None, now: datetime, policy: FollowUpPolicy
) -> Signal | None:
    anchor = last or rel.started_at
    if anchor is None or anchor >= now:
        return None
    gap_days = policy.first_meeting_days if last is None else (policy.meeting_gap_days or 30)
    gap = timedelta(days=gap_days)
    if now - anchor <= gap:
        return None
    days = (now - anchor).days
    level = Health.AT_RISK if now - anchor > 2 * gap else Health.WATCH
    detail = (
        f"No meeting for {_plural(days, 'day')} (expected every {gap_days})"
        if last is not None
        else f"No first meeting {_plural(days, 'day')} after the start (expected within {gap_days})"
    )
    return Signal(SignalKind.NO_MEETING, level, detail, anchor + gap)


def _count_signal(
    kind: SignalKind, found: tuple[int, datetime] | None, word: str, window_days: int
) -> Signal | None:
    if found is None:
        return None
    n, at = found
    level = Health.AT_RISK if n >= 2 else Health.WATCH
    return Signal(kind, level, f"{_plural(n, word)} in the last {window_days} days", at)


def relationship_signals(
    session: Session,
    program: Program,
    now: datetime,
    thresholds: Thresholds | None = None,
) -> list[RelationshipSignals]:
    """Every active relationship of ``program`` with its signals as of ``now`` (aware UTC).

    Pure over ``session`` (reads only) and independent of Flask. Ordered worst first: by
    health level, then number of signals, then relationship id. Paused, proposed and closed
    relationships are left out: a pause is a decision, not a stall.
    """
    limits = thresholds or Thresholds()
    policy = FollowUpPolicy.of(program)
    window_start = now - timedelta(days=limits.window_days)
    relationships = session.scalars(
        select(Relationship)
        .where(
            Relationship.program_id == program.id,
            Relationship.status == RelationshipStatus.ACTIVE,
        )
        .order_by(Relationship.id)
    ).all()
    last = _last_meetings(session, program.id)
    missed = _missed(session, program.id, window_start)
    low = _low_ratings(session, program.id, window_start, limits.low_rating)
    goals = _goals(session, program.id, now, limits.goal_stale_days)
    health = _negative_health(session, program.id, window_start, limits.negative_health)
    escalated = _escalations(session, program.id, now)

    results = []
    for rel in relationships:
        signals: list[Signal | None] = [
            _gap_signal(rel, last.get(rel.id), now, policy),
            _count_signal(
                SignalKind.MISSED_MEETINGS, missed.get(rel.id), "missed meeting", limits.window_days
            ),
            _count_signal(
                SignalKind.LOW_RATINGS, low.get(rel.id), "low meeting rating", limits.window_days
            ),
        ]
        goal = goals.get(rel.id)
        if goal is not None and goal.stalled and goal.stalled_since is not None:
            signals.append(
                Signal(
                    SignalKind.STALLED_GOALS,
                    Health.WATCH,
                    f"{_plural(goal.stalled, 'goal')} without a check-in for "
                    f"{limits.goal_stale_days} days",
                    goal.stalled_since,
                )
            )
        if goal is not None and goal.overdue and goal.overdue_since is not None:
            signals.append(
                Signal(
                    SignalKind.OVERDUE_GOALS,
                    Health.WATCH,
                    f"{_plural(goal.overdue, 'goal')} past the target date",
                    goal.overdue_since,
                )
            )
        if rel.id in health:
            score, at = health[rel.id]
            signals.append(
                Signal(
                    SignalKind.NEGATIVE_HEALTH,
                    Health.AT_RISK if score <= 1 else Health.WATCH,
                    f"Latest health check answered {score} of 5",
                    at,
                )
            )
        met = last.get(rel.id)
        if rel.id in escalated and (met is None or met < escalated[rel.id]):
            signals.append(
                Signal(
                    SignalKind.ESCALATED,
                    Health.AT_RISK,
                    "Reminders to meet went unanswered; escalated to coordinators",
                    escalated[rel.id],
                )
            )
        results.append(
            RelationshipSignals(
                relationship_id=rel.id,
                mentee_id=rel.mentee_id,
                mentor_id=rel.mentor_id,
                track=rel.track,
                started_at=rel.started_at,
                last_meeting_at=last.get(rel.id),
                signals=tuple(s for s in signals if s is not None),
            )
        )
    return sorted(results, key=_worst_first)


def _worst_first(item: RelationshipSignals) -> tuple[int, int, int]:
    return (-item.health.rank, -len(item.signals), item.relationship_id)


def needing_attention(items: Iterable[RelationshipSignals]) -> list[RelationshipSignals]:
    """The items whose health is not good, in the given order."""
    return [item for item in items if item.health != Health.GOOD]
