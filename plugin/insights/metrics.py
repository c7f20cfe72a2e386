"""The coordinator dashboard's figures, each one a fixed number of grouped SQL queries.

Every figure is computed in the database (counts, minimums per group) so the number of
queries does not grow with the program; the two medians read one duration per matched
mentee or per relationship, which is the least a median needs. Definitions are in
docs/insights.md; the minutes behind "coordinator hours saved" are :data:`MINUTES_SAVED`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import String, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from plugin.models import (
    CourseMembership,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    MatchProposal,
    MatchRound,
    Meeting,
    MeetingStatus,
    Participant,
    ParticipantStatus,
    Program,
    ProposalState,
    Relationship,
    SyncIntent,
    SyncState,
)
from plugin.models.calendars import ICS_PROVIDER
from plugin.programs.program_stats import GoalSummary, goal_summary

__all__ = [
    "MINUTES_SAVED",
    "MONTHS_SHOWN",
    "Automation",
    "DashboardFigures",
    "Funnel",
    "MonthRate",
    "Timing",
    "automation",
    "dashboard_figures",
    "funnel",
    "meetings_per_month",
    "timing",
]

#: Calendar months shown in "meetings per active relationship" (the current one included).
MONTHS_SHOWN: Final = 6

#: Minutes of coordinator work one automated action replaces: the estimate behind "hours
#: saved". Conservative figures for doing the same thing by hand (docs/insights.md says why).
MINUTES_SAVED: Final[dict[str, int]] = {
    # Follow-ups, by kind: writing and sending the e-mail a coordinator would send.
    FollowUpKind.INTRODUCTION.value: 10,  # introduce two people, with what they share
    FollowUpKind.GOAL_CHECKIN.value: 5,  # look up the goal, write a check-in
    FollowUpKind.NO_MEETING_NUDGE.value: 5,  # notice the silence, write a nudge
    FollowUpKind.ESCALATION.value: 10,  # notice a stalled pair, assemble its history
    FollowUpKind.HEALTH_CHECK.value: 5,  # a "how is it going" note
    FollowUpKind.COORDINATOR_DIGEST.value: 30,  # compile a week's status across pairs
    FollowUpKind.MEETING_REMINDER.value: 2,  # a reminder before a meeting
    FollowUpKind.MEETING_FEEDBACK.value: 3,  # ask how a meeting went, with the form link
    # One meeting written into (or updated or removed from) one attendee's calendar, or
    # sent as an e-mail invitation: sending or editing an invitation by hand.
    "calendar_event": 3,
    # One pair published from a match round: reading two profiles and choosing by hand.
    "match_pair": 15,
}

#: The roster's learner role (course-level membership), as stored in the JSON roles list.
_LEARNER_ROLE = '%membership#Learner"%'


@dataclass(frozen=True)
class Funnel:
    """Mentees from the roster to a first meeting; each stage is a subset of the previous."""

    in_course: int  #: learners on the roster, and enrolled mentees from outside it
    enrolled: int  #: active mentees
    matched: int  #: active mentees whose relationship started at least once
    met: int  #: active mentees with at least one held meeting with a mentor

    @property
    def match_rate(self) -> float | None:
        """Matched mentees per enrolled mentee (None: nobody enrolled)."""
        return self.matched / self.enrolled if self.enrolled else None


@dataclass(frozen=True)
class Timing:
    """Medians in days (None: nothing to measure yet) and how many values each rests on."""

    days_to_match: float | None
    matched_mentees: int
    days_to_first_meeting: float | None
    relationships_met: int


@dataclass(frozen=True)
class MonthRate:
    """Held meetings in a calendar month per relationship active during that month."""

    month: datetime  #: the first instant of the month (UTC)
    held: int
    active_relationships: int
    partial: bool  #: the current month, still running

    @property
    def rate(self) -> float | None:
        return self.held / self.active_relationships if self.active_relationships else None


@dataclass(frozen=True)
class Automation:
    """What the tool did instead of a coordinator, and the minutes that stands for."""

    followups_by_kind: dict[str, int]
    calendar_events: int  #: written to connected calendars (Google, Microsoft, CalDAV)
    email_invitations: int  #: iTIP invitations for people with no connected calendar
    match_pairs: int

    @property
    def followups_sent(self) -> int:
        return sum(self.followups_by_kind.values())

    @property
    def actions(self) -> list[tuple[str, int, int]]:
        """(action key, count, minutes each) for every action the estimate counts."""
        rows = [(kind, n, MINUTES_SAVED[kind]) for kind, n in self.followups_by_kind.items()]
        calendar = self.calendar_events + self.email_invitations
        rows.append(("calendar_event", calendar, MINUTES_SAVED["calendar_event"]))
        rows.append(("match_pair", self.match_pairs, MINUTES_SAVED["match_pair"]))
        return rows

    @property
    def minutes_saved(self) -> int:
        return sum(n * minutes for _, n, minutes in self.actions)

    @property
    def hours_saved(self) -> float:
        return round(self.minutes_saved / 60, 1)


@dataclass(frozen=True)
class DashboardFigures:
    """Everything the coordinator dashboard shows, as of ``now``."""

    now: datetime
    funnel: Funnel
    timing: Timing
    months: list[MonthRate]
    goals: GoalSummary
    automation: Automation
    notes: list[str] = field(default_factory=list)


def dashboard_figures(session: Session, program: Program, now: datetime) -> DashboardFigures:
    """Every figure of the dashboard for ``program`` at ``now`` (a fixed number of queries)."""
    return DashboardFigures(
        now=now,
        funnel=funnel(session, program),
        timing=timing(session, program),
        months=meetings_per_month(session, program, now),
        goals=goal_summary(session, program.id),
        automation=automation(session, program),
    )


def _active_mentees(program: Program) -> list[ColumnElement[bool]]:
    return [
        Participant.program_id == program.id,
        Participant.is_mentee.is_(True),
        Participant.status == ParticipantStatus.ACTIVE,
    ]


def funnel(session: Session, program: Program) -> Funnel:
    """The enrollment funnel of ``program``'s mentees (three queries)."""
    learner = and_(
        CourseMembership.course_id == program.course_id,
        CourseMembership.active.is_(True),
        cast(CourseMembership.roles, String).like(_LEARNER_ROLE),
    )
    learners = session.scalar(select(func.count()).select_from(CourseMembership).where(learner))
    on_roster = exists().where(learner, CourseMembership.user_id == Participant.user_id)
    started = exists().where(
        Relationship.mentee_id == Participant.id, Relationship.started_at.is_not(None)
    )
    held = exists().where(
        Relationship.mentee_id == Participant.id,
        Meeting.relationship_id == Relationship.id,
        Meeting.status == MeetingStatus.HELD,
    )

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    enrolled, off_roster, matched, met = session.execute(
        select(func.count(), flag(~on_roster), flag(started), flag(started & held)).where(
            *_active_mentees(program)
        )
    ).one()
    return Funnel(
        in_course=int(learners or 0) + int(off_roster),
        enrolled=int(enrolled),
        matched=int(matched),
        met=int(met),
    )


def _median_days(durations: list[timedelta]) -> float | None:
    if not durations:
        return None
    days = [max(d, timedelta(0)).total_seconds() / 86400 for d in durations]
    return round(statistics.median(days), 1)


def timing(session: Session, program: Program) -> Timing:
    """Median days from enrollment to a first mentor, and from a start to the first meeting."""
    first_start = (
        select(Participant.enrolled_at, func.min(Relationship.started_at))
        .join(Relationship, Relationship.mentee_id == Participant.id)
        .where(*_active_mentees(program), Relationship.started_at.is_not(None))
        .group_by(Participant.id, Participant.enrolled_at)
    )
    to_match = [_aware(first) - _aware(joined) for joined, first in session.execute(first_start)]
    first_meeting = (
        select(Relationship.started_at, func.min(Meeting.starts_at))
        .join(Meeting, Meeting.relationship_id == Relationship.id)
        .where(
            Relationship.program_id == program.id,
            Relationship.started_at.is_not(None),
            Meeting.status == MeetingStatus.HELD,
        )
        .group_by(Relationship.id, Relationship.started_at)
    )
    to_meet = [_aware(met) - _aware(start) for start, met in session.execute(first_meeting)]
    return Timing(
        days_to_match=_median_days(to_match),
        matched_mentees=len(to_match),
        days_to_first_meeting=_median_days(to_meet),
        relationships_met=len(to_meet),
    )


def month_starts(now: datetime, count: int = MONTHS_SHOWN) -> list[datetime]:
    """The first instants (UTC) of the ``count`` calendar months ending with ``now``'s."""
    year, month = now.year, now.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return starts[::-1]


def meetings_per_month(session: Session, program: Program, now: datetime) -> list[MonthRate]:
    """Held meetings per active relationship in each of the last months (two queries).

    A relationship is active in a month if it started before the month ended and had not
    closed before it began (a pause counts as active: the pair still exists).
    """
    starts = month_starts(now)
    bounds = list(zip(starts, [*starts[1:], _next_month(starts[-1])], strict=True))
    active_cols = [
        func.coalesce(
            func.sum(
                case(
                    (
                        (Relationship.started_at < end)
                        & or_(Relationship.closed_at.is_(None), Relationship.closed_at >= begin),
                        1,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        for begin, end in bounds
    ]
    active = session.execute(
        select(*active_cols).where(
            Relationship.program_id == program.id, Relationship.started_at.is_not(None)
        )
    ).one()
    held_cols = [
        func.coalesce(
            func.sum(case(((Meeting.starts_at >= begin) & (Meeting.starts_at < end), 1), else_=0)),
            0,
        )
        for begin, end in bounds
    ]
    held = session.execute(
        select(*held_cols).where(
            Meeting.program_id == program.id,
            Meeting.relationship_id.is_not(None),
            Meeting.status == MeetingStatus.HELD,
            Meeting.starts_at >= bounds[0][0],
        )
    ).one()
    return [
        MonthRate(
            month=begin,
            held=int(held[i]),
            active_relationships=int(active[i]),
            partial=begin <= now < end,
        )
        for i, (begin, end) in enumerate(bounds)
    ]


def _next_month(start: datetime) -> datetime:
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def automation(session: Session, program: Program) -> Automation:
    """Follow-ups sent, calendar writes done and pairs published for ``program``."""
    by_kind = dict.fromkeys((k.value for k in FollowUpKind), 0)
    for kind, n in session.execute(
        select(FollowUp.kind, func.count())
        .where(FollowUp.program_id == program.id, FollowUp.state == FollowUpState.SENT)
        .group_by(FollowUp.kind)
    ):
        by_kind[FollowUpKind(kind).value] = int(n)
    is_email = SyncIntent.provider == ICS_PROVIDER
    calendar, email = session.execute(
        select(
            func.coalesce(func.sum(case((~is_email, 1), else_=0)), 0),
            func.coalesce(func.sum(case((is_email, 1), else_=0)), 0),
        )
        .join(Meeting, Meeting.id == SyncIntent.meeting_id)
        .where(Meeting.program_id == program.id, SyncIntent.state == SyncState.DONE)
    ).one()
    pairs = session.scalar(
        select(func.count())
        .select_from(MatchProposal)
        .join(MatchRound, MatchRound.id == MatchProposal.round_id)
        .where(MatchRound.program_id == program.id, MatchProposal.state == ProposalState.PUBLISHED)
    )
    return Automation(
        followups_by_kind=by_kind,
        calendar_events=int(calendar),
        email_invitations=int(email),
        match_pairs=int(pairs or 0),
    )


def _aware(value: datetime | str | None) -> datetime:
    """A UTC-aware time (SQLite returns naive values, and aggregates may come back as text)."""
    if value is None:  # not reachable: the queries filter NULLs out
        raise ValueError("a time was expected")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
