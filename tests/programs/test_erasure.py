"""Deletion requests handled by coordinators: the list, the erasure, what it keeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from plugin.db import Base, utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    CalendarFeed,
    Circle,
    CircleMember,
    CloseReason,
    CourseMembership,
    FollowUp,
    FollowUpKind,
    Goal,
    GoalUpdate,
    MatchRound,
    Meeting,
    MeetingAttendee,
    MeetingStatus,
    Notification,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    SyncIntent,
    SyncOperation,
    Track,
    User,
)
from plugin.programs.enrollment import request_deletion
from plugin.programs.erasure import erase_participant, pending_deletion_requests
from plugin.programs.relationships import close_relationship
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, add_meeting


@dataclass
class Scene:
    program: Program
    other_program: Program
    coordinator: Person
    coordinator_user: User
    mentee: Participant
    mentor: Participant
    mentor_person: Person
    relationship: Relationship


@pytest.fixture
def scene(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> Scene:
    program = make_program(tenant, title="A")
    other = make_program(tenant, title="B")
    teacher = make_user(tenant, INSTRUCTOR, name="Casey Coordinator")
    mentee_user = make_user(tenant, LEARNER, name="Mia Mentee", email="mia@example.edu")
    mentor_user = make_user(tenant, INSTRUCTOR, name="Max Mentor")
    mentee = enroll(
        program,
        mentee_user,
        mentee=True,
        bio="Secret bio",
        goals_text="Become a surgeon",
        interests_text="rowing",
        availability=[{"day": 0, "start": "09:00", "end": "10:00"}],
    )
    mentor = enroll(program, mentor_user, mentor=True)
    rel = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=Track.RESEARCH,
        status=RelationshipStatus.ACTIVE,
    )
    circle = Circle(program_id=program.id, name="Circle")
    session.add_all([rel, circle])
    session.flush()
    goal = Goal(program_id=program.id, owner_id=mentee.id, relationship_id=rel.id, title="Publish")
    mentor_goal = Goal(program_id=program.id, owner_id=mentor.id, title="Mentor's own goal")
    session.add_all([goal, mentor_goal])
    session.flush()
    session.add_all(
        [
            GoalUpdate(goal_id=goal.id, author_id=mentor.id, kind="checkin", note="good"),
            GoalUpdate(goal_id=mentor_goal.id, author_id=mentee.id, kind="checkin", note="mine"),
            CircleMember(circle_id=circle.id, participant_id=mentee.id),
            Notification(recipient_id=mentee.id, kind="x", text="for Mia"),
            Notification(recipient_id=mentor.id, kind="x", text="for Max"),
            FollowUp(
                program_id=program.id,
                kind=FollowUpKind.NO_MEETING_NUDGE,
                recipient_id=mentee.id,
                relationship_id=rel.id,
                due_at=utcnow(),
                dedupe_key=f"erasure-test-{mentee.id}",
            ),
            CalendarFeed(participant_id=mentee.id, token_hash="h" * 64, token="secret"),
        ]
    )
    session.flush()
    return Scene(
        program=program,
        other_program=other,
        coordinator=as_person(tenant, teacher, CourseRole.INSTRUCTOR),
        coordinator_user=teacher,
        mentee=mentee,
        mentor=mentor,
        mentor_person=as_person(tenant, mentor_user, CourseRole.INSTRUCTOR),
        relationship=rel,
    )


def _count(session: Session, model: type[Base], *where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_deletion_request_is_listed_until_erased_and_erase_removes_the_persons_data(
    session: Session, scene: Scene
) -> None:
    mentee_id, user_id = scene.mentee.id, scene.mentee.user_id
    request_deletion(session, scene.mentee, actor_user_id=user_id or 0)
    session.commit()
    base = f"/programs/{scene.program.id}/coordinator"

    page = scene.coordinator.get(f"{base}/deletion-requests")
    assert page.status_code == 200
    assert "Mia Mentee" in page.text

    refused = scene.coordinator.post(f"{base}/people/{mentee_id}/erase", {})
    assert refused.status_code == 400
    assert _count(session, Goal, Goal.owner_id == mentee_id) == 1

    done = scene.coordinator.post(f"{base}/people/{mentee_id}/erase", {"confirm": "yes"})
    assert done.status_code == 303
    session.expire_all()
    erased = session.get(Participant, mentee_id)
    assert erased is not None
    assert erased.status == ParticipantStatus.ERASED
    assert erased.user_id is None
    assert erased.profile is None
    assert session.get(Profile, mentee_id) is None
    assert _count(session, Goal, Goal.owner_id == mentee_id) == 0
    assert _count(session, Notification, Notification.recipient_id == mentee_id) == 0
    assert _count(session, CircleMember, CircleMember.participant_id == mentee_id) == 0
    assert _count(session, FollowUp, FollowUp.recipient_id == mentee_id) == 0
    assert _count(session, CalendarFeed, CalendarFeed.participant_id == mentee_id) == 0
    # The note they wrote on the mentor's goal is gone; the mentor's goal and notes stay.
    notes = session.scalars(select(GoalUpdate.note).where(GoalUpdate.author_id == mentee_id))
    assert list(notes) == [""]
    assert _count(session, Goal, Goal.owner_id == scene.mentor.id) == 1
    assert _count(session, Notification, Notification.recipient_id == scene.mentor.id) >= 1
    # Only in this course and program: the user row goes too.
    assert session.get(User, user_id) is None
    assert _count(session, CourseMembership, CourseMembership.user_id == user_id) == 0

    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "participant.erased")
    ).one()
    assert (audit.target_type, audit.target_id) == ("participant", mentee_id)
    assert audit.before == {}
    assert audit.after == {}
    assert pending_deletion_requests(session, scene.program.id) == []
    assert "Mia Mentee" not in scene.coordinator.get(f"{base}/deletion-requests").text
    assert "Mia" not in scene.coordinator.get(f"{base}/relationships").text
    people = scene.coordinator.get(f"{base}/?status=withdrawn").text
    assert "a former participant" in people
    assert "Mia" not in people


def test_partners_keep_a_closed_relationship_with_a_former_participant(
    session: Session, scene: Scene
) -> None:
    request_deletion(session, scene.mentee, actor_user_id=scene.mentee.user_id or 0)
    erase_participant(session, scene.mentee, actor_user_id=scene.coordinator_user.id)
    session.commit()
    session.expire_all()
    rel = session.get(Relationship, scene.relationship.id)
    assert rel is not None
    assert rel.status == RelationshipStatus.CLOSED
    assert rel.close_reason == CloseReason.WITHDRAWN
    assert rel.mentee.display_name == "a former participant"
    home = scene.mentor_person.get(f"/programs/{scene.program.id}/my-data.json")
    assert home.status_code == 200
    partners = [r["partner"] for r in home.get_json()["relationships"]]
    assert partners == ["a former participant"]
    history = scene.coordinator.get(
        f"/programs/{scene.program.id}/coordinator/relationships/{rel.id}"
    )
    assert "a former participant" in history.text
    assert "Mia" not in history.text


def test_erasure_is_idempotent_and_leaves_other_programs_alone(
    session: Session,
    scene: Scene,
    enroll: Callable[..., Participant],
) -> None:
    user_id = scene.mentee.user_id
    assert user_id is not None
    elsewhere = enroll(scene.other_program, session.get(User, user_id), mentee=True, bio="B bio")
    session.add(Notification(recipient_id=elsewhere.id, kind="x", text="in B"))
    session.flush()

    assert erase_participant(session, scene.mentee, actor_user_id=scene.coordinator_user.id)
    assert not erase_participant(session, scene.mentee, actor_user_id=scene.coordinator_user.id)
    session.commit()
    session.expire_all()
    assert _count(session, AuditEvent, AuditEvent.action == "participant.erased") == 1
    # Still in program B: the user, the enrollment there and its data are untouched.
    user = session.get(User, user_id)
    assert user is not None
    assert user.name == "Mia Mentee"
    kept = session.get(Participant, elsewhere.id)
    assert kept is not None
    assert kept.user_id == user_id
    assert kept.status == ParticipantStatus.ACTIVE
    assert kept.profile is not None
    assert kept.profile.bio == "B bio"
    assert _count(session, Notification, Notification.recipient_id == elsewhere.id) == 1
    # An active participant erased directly is withdrawn first: their seat is freed.
    rel = session.get(Relationship, scene.relationship.id)
    assert rel is not None
    assert rel.status == RelationshipStatus.CLOSED


def test_a_coordinator_of_another_program_cannot_erase(
    session: Session,
    tenant: Tenant,
    scene: Scene,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    b_coordinator = make_user(tenant, LEARNER)
    enroll(scene.other_program, b_coordinator, coordinator=True)
    session.commit()
    person = as_person(tenant, b_coordinator, CourseRole.LEARNER)
    base = f"/programs/{scene.program.id}/coordinator"
    assert person.get(f"{base}/deletion-requests").status_code == 403
    response = person.post(f"{base}/people/{scene.mentee.id}/erase", {"confirm": "yes"})
    assert response.status_code == 403
    # And program B's coordinators cannot reach A's participant through B's URL.
    other = f"/programs/{scene.other_program.id}/coordinator/people/{scene.mentee.id}/erase"
    assert person.post(other, {"confirm": "yes"}).status_code == 404
    session.expire_all()
    assert session.get(Participant, scene.mentee.id).status == ParticipantStatus.ACTIVE  # type: ignore[union-attr]


def test_erasure_forgets_meetings_round_features_and_the_name_in_delivered_messages(
    session: Session, scene: Scene
) -> None:
    now = utcnow()
    past = add_meeting(session, scene.relationship, now - timedelta(days=7), MeetingStatus.HELD)
    future = add_meeting(session, scene.relationship, now + timedelta(days=7))
    past.agenda, future.agenda = "Mia's residency worries", "Mia's next steps"
    for meeting in (past, future):
        for person in (scene.mentee, scene.mentor):
            session.add(
                MeetingAttendee(meeting_id=meeting.id, participant_id=person.id, attended=True)
            )
    features = {"id": scene.mentee.id, "text": "rowing, surgeon", "interests": ["x"]}
    mentor_row = {"id": scene.mentor.id, "text": "mentor text"}
    round_ = MatchRound(
        program_id=scene.program.id, inputs={"mentees": [features], "mentors": [mentor_row]}
    )
    session.add_all(
        [
            round_,
            Notification(
                recipient_id=scene.mentor.id, kind="x", text="Mia Mentee asked for a meeting"
            ),
        ]
    )
    session.flush()

    erase_participant(session, scene.mentee, actor_user_id=scene.coordinator_user.id)
    session.commit()
    session.expire_all()

    # The meeting that had not started is called off in every calendar; the held one stays.
    assert session.get(Meeting, future.id).status == MeetingStatus.CANCELLED  # type: ignore[union-attr]
    assert (
        _count(
            session,
            SyncIntent,
            SyncIntent.meeting_id == future.id,
            SyncIntent.operation == SyncOperation.CANCEL,
        )
        == 2
    )
    held = session.get(Meeting, past.id)
    assert held is not None
    assert held.status == MeetingStatus.HELD
    assert held.agenda == ""
    attendance = dict(
        session.execute(
            select(MeetingAttendee.participant_id, MeetingAttendee.attended).where(
                MeetingAttendee.meeting_id == past.id
            )
        ).all()
    )
    assert attendance == {scene.mentee.id: None, scene.mentor.id: True}
    stored = session.get(MatchRound, round_.id)
    assert stored is not None
    assert stored.inputs["mentees"] == [{"id": scene.mentee.id, "erased": True}]
    assert stored.inputs["mentors"] == [mentor_row]
    texts = session.scalars(
        select(Notification.text).where(Notification.recipient_id == scene.mentor.id)
    ).all()
    assert texts
    assert not any("Mia" in text for text in texts)
    assert "a former participant asked for a meeting" in texts


def test_closing_a_relationship_calls_off_its_meetings_that_have_not_started(
    session: Session, scene: Scene
) -> None:
    now = utcnow()
    past = add_meeting(session, scene.relationship, now - timedelta(days=1), MeetingStatus.HELD)
    future = add_meeting(session, scene.relationship, now + timedelta(days=1))
    other_rel = Relationship(
        program_id=scene.program.id,
        mentee_id=scene.mentee.id,
        mentor_id=scene.mentor.id,
        track=Track.CAREER,
        status=RelationshipStatus.ACTIVE,
    )
    session.add(other_rel)
    session.flush()
    elsewhere = add_meeting(session, other_rel, now + timedelta(days=1))

    close_relationship(
        session, scene.relationship, reason=CloseReason.COMPLETED, actor=scene.mentor
    )
    session.commit()
    session.expire_all()
    statuses = {
        m.id: m.status
        for m in session.scalars(
            select(Meeting).where(Meeting.id.in_([past.id, future.id, elsewhere.id]))
        )
    }
    assert statuses == {
        past.id: MeetingStatus.HELD,
        future.id: MeetingStatus.CANCELLED,
        elsewhere.id: MeetingStatus.SCHEDULED,
    }
    assert session.get(Meeting, future.id).version == 2  # type: ignore[union-attr]
