"""Coordinators' figures: goals in aggregate (no text) and each relationship's meetings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    Goal,
    GoalStatus,
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.program_stats import goal_summary, meeting_times
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, add_meeting
from tests.programs.test_coordinator_workspace import counting_queries


def _pair(
    session: Session, program: Program, mentee: Participant, mentor: Participant, track: Track
) -> Relationship:
    rel = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=track,
        status=RelationshipStatus.ACTIVE,
    )
    session.add(rel)
    session.flush()
    return rel


def test_goal_summary_counts_by_status_and_averages_progress_per_track(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    other = make_program(tenant, title="Other")
    mentee = enroll(program, make_user(tenant, LEARNER), mentee=True)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    research = _pair(session, program, mentee, mentor, Track.RESEARCH)
    career = _pair(session, program, mentee, mentor, Track.CAREER)
    circle = Circle(program_id=program.id, name="C", track=Track.WELLBEING)
    session.add(circle)
    session.flush()
    other_mentee = enroll(other, make_user(tenant, LEARNER), mentee=True)
    session.add_all(
        [
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                relationship_id=research.id,
                title="Secret research aim",
                status=GoalStatus.AGREED,
                progress=40,
            ),
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                relationship_id=research.id,
                title="Paper",
                status=GoalStatus.ACHIEVED,
                progress=100,
            ),
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                relationship_id=career.id,
                title="CV",
                status=GoalStatus.PROPOSED,
                progress=0,
            ),
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                circle_id=circle.id,
                title="Sleep",
                status=GoalStatus.AGREED,
                progress=50,
            ),
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                title="Private",
                status=GoalStatus.DROPPED,
                progress=10,
            ),
            Goal(
                program_id=other.id,
                owner_id=other_mentee.id,
                title="Elsewhere",
                status=GoalStatus.AGREED,
                progress=90,
            ),
        ]
    )
    session.commit()

    summary = goal_summary(session, program.id)
    assert summary.by_status == {
        GoalStatus.PROPOSED: 1,
        GoalStatus.AGREED: 2,
        GoalStatus.ACHIEVED: 1,
        GoalStatus.DROPPED: 1,
    }
    assert [(p.track, p.goals, p.average_progress) for p in summary.by_track] == [
        (Track.CAREER, 1, 0.0),
        (Track.RESEARCH, 2, 70.0),
        (Track.WELLBEING, 1, 50.0),
    ]

    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    page = coordinator.get(f"/programs/{program.id}/coordinator/goals")
    assert page.status_code == 200
    assert "70.0 %" in page.text
    assert "Secret research aim" not in page.text
    learner = as_person(tenant, mentee.user, CourseRole.LEARNER)
    assert learner.get(f"/programs/{program.id}/coordinator/goals").status_code == 403


def test_relationships_list_shows_last_and_next_meeting_in_one_query(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    rels = [
        _pair(
            session,
            program,
            enroll(program, make_user(tenant, LEARNER), mentee=True),
            mentor,
            Track.RESEARCH,
        )
        for _ in range(3)
    ]
    add_meeting(session, rels[0], utcnow() + timedelta(days=-10), MeetingStatus.HELD)
    add_meeting(session, rels[0], utcnow() + timedelta(days=-3), MeetingStatus.HELD)
    add_meeting(session, rels[0], utcnow() + timedelta(days=-1), MeetingStatus.MISSED)
    soon = add_meeting(session, rels[0], utcnow() + timedelta(days=2), MeetingStatus.SCHEDULED)
    add_meeting(session, rels[0], utcnow() + timedelta(days=9), MeetingStatus.SCHEDULED)
    add_meeting(session, rels[1], utcnow() + timedelta(days=1), MeetingStatus.CANCELLED)
    session.commit()

    with counting_queries(session) as statements:
        times = meeting_times(session, [r.id for r in rels])
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    assert times[rels[0].id].next == soon.starts_at
    last = times[rels[0].id].last
    assert last is not None
    assert abs((utcnow() - timedelta(days=3)) - last) < timedelta(minutes=5)
    assert times[rels[1].id].next is None
    assert rels[2].id not in times

    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    page = coordinator.get(f"/programs/{program.id}/coordinator/relationships")
    assert page.status_code == 200
    assert soon.starts_at.strftime("%Y-%m-%d %H:%M") in page.text
