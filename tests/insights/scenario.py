"""Dashboard fixtures: one program with hand-counted figures (registered by conftest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from plugin.models import (
    CourseMembership,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Goal,
    GoalStatus,
    MatchProposal,
    MatchRound,
    Meeting,
    MeetingStatus,
    Participant,
    ParticipantStatus,
    Program,
    ProposalState,
    Relationship,
    RelationshipStatus,
    SyncIntent,
    SyncOperation,
    SyncState,
    Track,
    User,
)

# Fixtures of the program tests, used by this package's tests too.
from tests.programs.conftest import (
    INSTRUCTOR,
    LEARNER,
    Tenant,
    add_meeting,
)

__all__ = [
    "INSTRUCTOR",
    "LEARNER",
    "NOW",
    "Scenario",
    "Tenant",
    "add_meeting",
    "at",
]

#: The dashboard's clock in these tests: mid-June 2026.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Scenario:
    program: Program
    coordinator: User
    mentor: Participant
    mentees: dict[str, Participant]
    relationships: dict[str, Relationship]


@pytest.fixture
def scenario(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> Scenario:
    """A program whose every dashboard figure is counted by hand in the comments.

    Roster: learners L1-L5 (active), L6 (left the course), an instructor; mentee X comes
    from outside the roster. Mentees: L1, L2, L3, X active, L4 withdrawn; L5 not enrolled.
    """
    program = make_program(tenant)
    other = make_program(tenant, title="Another program")
    coordinator = make_user(tenant, INSTRUCTOR, name="Casey Coordinator")
    mentor = enroll(program, make_user(tenant, INSTRUCTOR, name="Max Mentor"), mentor=True)
    learners = {f"L{i}": make_user(tenant, LEARNER, name=f"Learner {i}") for i in range(1, 7)}
    session.query(CourseMembership).filter_by(user_id=learners["L6"].id).update({"active": False})
    outsider = User(platform_id=tenant.platform.id, sub="outsider", name="Xavier Outside")
    session.add(outsider)
    session.flush()
    mentees = {
        name: enroll(program, learners[name], mentee=True) for name in ("L1", "L2", "L3", "L4")
    }
    mentees["X"] = enroll(program, outsider, mentee=True)
    mentees["L4"].status = ParticipantStatus.WITHDRAWN
    mentees["L1"].enrolled_at = at(4, 6)
    mentees["L2"].enrolled_at = at(1, 30)

    def pair(
        name: str,
        status: RelationshipStatus,
        started: datetime | None,
        track: Track = Track.RESEARCH,
        closed: datetime | None = None,
    ) -> Relationship:
        rel = Relationship(
            program_id=program.id,
            mentee_id=mentees[name].id,
            mentor_id=mentor.id,
            track=track,
            status=status,
            started_at=started,
            closed_at=closed,
        )
        session.add(rel)
        session.flush()
        return rel

    rels = {
        # L1 matched 4 days after enrolling; first held meeting a day after the start.
        "A": pair("L1", RelationshipStatus.ACTIVE, at(4, 10)),
        # L2 matched 2 days after enrolling (closed since); met 3 days after the start.
        "B": pair("L2", RelationshipStatus.CLOSED, at(2, 1), track=Track.CAREER, closed=at(3, 20)),
        "C": pair("L2", RelationshipStatus.ACTIVE, at(5, 5)),
        # L3 only asked: not matched.
        "D": pair("L3", RelationshipStatus.PROPOSED, None, track=Track.CLINICAL),
    }
    held = MeetingStatus.HELD
    add_meeting(session, rels["A"], at(4, 11), held)
    add_meeting(session, rels["A"], at(4, 20), held)
    add_meeting(session, rels["A"], at(6, 1), held)
    add_meeting(session, rels["A"], at(6, 20), MeetingStatus.SCHEDULED)
    add_meeting(session, rels["B"], at(2, 1, 12), MeetingStatus.CANCELLED)
    add_meeting(session, rels["B"], at(2, 2), MeetingStatus.MISSED)
    add_meeting(session, rels["B"], at(2, 4), held)
    add_meeting(session, rels["C"], at(5, 6), MeetingStatus.CANCELLED)
    # Another program's pair and meeting count nowhere here.
    other_mentee = enroll(other, learners["L5"], mentee=True)
    other_mentor = enroll(other, coordinator, mentor=True)
    other_rel = Relationship(
        program_id=other.id,
        mentee_id=other_mentee.id,
        mentor_id=other_mentor.id,
        track=Track.RESEARCH,
        status=RelationshipStatus.ACTIVE,
        started_at=at(4, 1),
    )
    session.add(other_rel)
    session.flush()
    meeting = add_meeting(session, other_rel, at(4, 2), held)
    add_meeting(session, rels["A"], at(6, 2), held).program_id = other.id  # foreign program

    goals = [
        (GoalStatus.PROPOSED, 0),
        (GoalStatus.AGREED, 30),
        (GoalStatus.AGREED, 60),
        (GoalStatus.ACHIEVED, 100),
    ]
    for status, progress in goals:
        session.add(
            Goal(
                program_id=program.id,
                owner_id=mentees["L1"].id,
                relationship_id=rels["A"].id,
                title="Plant-a-goal-title",
                status=status,
                progress=progress,
            )
        )
    followups = [
        (FollowUpKind.INTRODUCTION, FollowUpState.SENT),
        (FollowUpKind.INTRODUCTION, FollowUpState.SENT),
        (FollowUpKind.NO_MEETING_NUDGE, FollowUpState.SENT),
        (FollowUpKind.NO_MEETING_NUDGE, FollowUpState.FAILED),
        (FollowUpKind.HEALTH_CHECK, FollowUpState.PLANNED),
        (FollowUpKind.GOAL_CHECKIN, FollowUpState.SKIPPED),
    ]
    for i, (kind, state) in enumerate(followups):
        session.add(
            FollowUp(
                program_id=program.id,
                kind=kind,
                recipient_id=mentees["L1"].id,
                relationship_id=rels["A"].id,
                due_at=at(6, 1 + i),
                dedupe_key=f"scenario-{program.id}-{i}",
                state=state,
                reason="muted by the recipient" if state == FollowUpState.SKIPPED else "",
                sent_at=at(6, 1 + i) if state == FollowUpState.SENT else None,
            )
        )
    first = session.query(Meeting).filter_by(relationship_id=rels["A"].id).first()
    assert first is not None
    for provider, sync_state in [
        ("google", SyncState.DONE),
        ("google", SyncState.DONE),
        ("microsoft", SyncState.DONE),
        ("ics", SyncState.DONE),
        ("google", SyncState.FAILED),
        ("google", SyncState.SUPERSEDED),
    ]:
        session.add(
            SyncIntent(
                meeting_id=first.id,
                attendee_id=mentees["L1"].id,
                provider=provider,
                meeting_version=1,
                operation=SyncOperation.CREATE,
                state=sync_state,
            )
        )
    session.add(  # a sync in the other program
        SyncIntent(
            meeting_id=meeting.id,
            attendee_id=other_mentee.id,
            provider="google",
            meeting_version=1,
            operation=SyncOperation.CREATE,
            state=SyncState.DONE,
        )
    )
    round_ = MatchRound(program_id=program.id)
    session.add(round_)
    session.flush()
    for proposal_state in (ProposalState.PUBLISHED, ProposalState.REJECTED):
        session.add(
            MatchProposal(
                round_id=round_.id,
                mentee_id=mentees["L1"].id,
                mentor_id=mentor.id,
                track=Track.RESEARCH,
                score=0.8,
                state=proposal_state,
                relationship_id=(
                    rels["A"].id if proposal_state == ProposalState.PUBLISHED else None
                ),
            )
        )
    session.flush()
    return Scenario(
        program=program, coordinator=coordinator, mentor=mentor, mentees=mentees, relationships=rels
    )
