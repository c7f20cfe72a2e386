"""What the program home shows a person of their peer circles ("My circles").

Read-only: the open circles the person is a current member of, or facilitates, in this
program only, each with its members (display names, nothing else of their profiles), its
facilitator, its next meeting and its goals. A fixed number of queries, whatever the number
of circles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from plugin.models import (
    Circle,
    CircleMember,
    Goal,
    GoalStatus,
    Meeting,
    MeetingAttendee,
    Participant,
    ParticipantStatus,
    Program,
)
from plugin.programs.dashboards import next_circle_meetings
from plugin.programs.goals import goal_agreers

__all__ = ["CircleCard", "my_circles"]


@dataclass(frozen=True)
class CircleCard:
    """One of the viewer's circles as their home shows it."""

    circle: Circle
    #: Current members still enrolled, by name (the viewer among them if they are one).
    members: list[Participant]
    #: The circle's next scheduled meeting that has not ended, if any.
    next_meeting: Meeting | None
    #: Whether the viewer is invited to ``next_meeting`` (someone who joined after it was
    #: scheduled is not, and cannot open it).
    invited: bool
    #: The circle's goals not dropped, newest first.
    goals: list[Goal]
    #: Ids of those goals waiting for the viewer's agreement.
    to_agree: frozenset[int]


def my_circles(
    session: Session, program: Program, me: Participant, *, now: datetime | None = None
) -> list[CircleCard]:
    """The open circles ``me`` belongs to or facilitates in ``program``, by name."""
    member_of = select(CircleMember.circle_id).where(
        CircleMember.participant_id == me.id, CircleMember.left_at.is_(None)
    )
    circles = list(
        session.scalars(
            select(Circle)
            .where(
                Circle.program_id == program.id,
                Circle.closed_at.is_(None),
                or_(Circle.id.in_(member_of), Circle.facilitator_id == me.id),
            )
            .options(
                selectinload(Circle.members)
                .joinedload(CircleMember.participant)
                .joinedload(Participant.user),
                joinedload(Circle.facilitator).joinedload(Participant.user),
            )
            .order_by(Circle.name, Circle.id)
        )
    )
    if not circles:
        return []
    ids = [c.id for c in circles]
    goals_by_circle: dict[int, list[Goal]] = {c.id: [] for c in circles}
    for goal in session.scalars(
        select(Goal)
        .where(Goal.circle_id.in_(ids), Goal.status != GoalStatus.DROPPED)
        .options(joinedload(Goal.owner).joinedload(Participant.user))
        .order_by(Goal.id.desc())
    ):
        if goal.circle_id is not None:
            goals_by_circle[goal.circle_id].append(goal)
    meetings = next_circle_meetings(session, ids, now=now)
    invited_to = set(
        session.scalars(
            select(MeetingAttendee.meeting_id).where(
                MeetingAttendee.meeting_id.in_([m.id for m in meetings.values()]),
                MeetingAttendee.participant_id == me.id,
            )
        )
    )
    cards = []
    for circle in circles:
        members = [
            m.participant
            for m in circle.members
            if m.left_at is None and m.participant.status == ParticipantStatus.ACTIVE
        ]
        goals = goals_by_circle[circle.id]
        meeting = meetings.get(circle.id)
        cards.append(
            CircleCard(
                circle=circle,
                members=sorted(members, key=lambda p: p.display_name.lower()),
                next_meeting=meeting,
                invited=meeting is not None and meeting.id in invited_to,
                goals=goals,
                to_agree=frozenset(
                    g.id
                    for g in goals
                    if g.status == GoalStatus.PROPOSED and me.id in goal_agreers(g)
                ),
            )
        )
    return cards
