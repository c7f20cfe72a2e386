"""Program fixtures: factories for courses, people, programs and enrollments, and a way to
open program pages as a person (a real signed launch token, as after an LTI launch)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.db import utcnow
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import issue_launch_token
from plugin.models import (
    CloseReason,
    Course,
    CourseMembership,
    Deployment,
    Participant,
    Platform,
    Profile,
    Program,
    Relationship,
    RelationshipOrigin,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.relationships import propose_relationship

_ids = itertools.count(1)

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


@dataclass
class Tenant:
    """A platform, deployment and course: one tenant."""

    platform: Platform
    deployment: Deployment
    course: Course


@pytest.fixture
def make_tenant(session: Session) -> Callable[..., Tenant]:
    def make(name: str | None = None) -> Tenant:
        n = next(_ids)
        platform = Platform(
            issuer=f"https://{name or f'lms{n}'}.example.edu",
            client_id=f"client-{n}",
            auth_login_url="https://lms.example.edu/auth",
            auth_token_url="https://lms.example.edu/token",
            key_set_url="https://lms.example.edu/jwks",
        )
        deployment = Deployment(platform=platform, deployment_id=f"dep-{n}")
        course = Course(deployment=deployment, context_id=f"ctx-{n}", title=f"Course {n}")
        session.add_all([platform, deployment, course])
        session.flush()
        return Tenant(platform=platform, deployment=deployment, course=course)

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture
def make_user(session: Session) -> Callable[..., User]:
    """A user in ``tenant``'s course with the given course roles (role URIs)."""

    def make(tenant: Tenant, *roles: str, name: str = "", email: str = "") -> User:
        n = next(_ids)
        user = User(
            platform_id=tenant.platform.id,
            sub=f"sub-{n}",
            name=name or f"Person {n}",
            email=email or f"person{n}@example.edu",
        )
        session.add(user)
        session.flush()
        session.add(
            CourseMembership(course_id=tenant.course.id, user_id=user.id, roles=list(roles))
        )
        session.flush()
        return user

    return make


@pytest.fixture
def make_program(session: Session) -> Callable[..., Program]:
    def make(tenant: Tenant, **fields: Any) -> Program:
        fields.setdefault("title", "Mentorship")
        fields.setdefault("tracks", ["research", "career", "clinical", "wellbeing"])
        program = Program(course_id=tenant.course.id, **fields)
        session.add(program)
        session.flush()
        return program

    return make


@pytest.fixture
def enroll(session: Session) -> Callable[..., Participant]:
    """Enroll ``user`` in ``program`` with roles and an optional profile."""

    def make(
        program: Program,
        user: User | None,
        *,
        mentee: bool = False,
        mentor: bool = False,
        coordinator: bool = False,
        **profile: Any,
    ) -> Participant:
        participant = Participant(
            program_id=program.id,
            user_id=user.id if user is not None else None,
            is_mentee=mentee,
            is_mentor=mentor,
            is_coordinator=coordinator,
        )
        if mentor:
            profile.setdefault("tracks_offered", list(program.tracks))
        if mentee:
            profile.setdefault("tracks_wanted", program.tracks[:1])
        participant.profile = Profile(**profile)
        session.add(participant)
        session.flush()
        return participant

    return make


def token_for(tenant: Tenant, user: User, *roles: CourseRole) -> str:
    """A launch token as a launch in ``tenant``'s course would issue (call in app context)."""
    return issue_launch_token(
        LaunchIdentity(
            user_id=user.id,
            course_id=tenant.course.id,
            deployment_id=tenant.deployment.id,
            roles=frozenset(roles),
            resource_link_id="link-1",
        )
    )


class Person:
    """A browser acting as one launched person: every request carries their token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {self.token}"
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        body = dict(data or {})
        body["lt"] = self.token
        return self.client.post(path, data=body, **kwargs)


@pytest.fixture
def as_person(app: Flask) -> Callable[..., Person]:
    """``as_person(tenant, user, CourseRole.LEARNER)``: a client acting as that person."""

    def make(tenant: Tenant, user: User, *roles: CourseRole) -> Person:
        return Person(app.test_client(), token_for(tenant, user, *roles))

    return make


def seed_program(
    session: Session, *, people: int, mentors: int = 1, **profile: Any
) -> tuple[Program, list[Participant]]:
    """A platform, course and program with ``people`` participants, the first ``mentors`` of
    them faculty mentors (course instructors) and the rest learner mentees, each with a
    Profile(**profile); flushed, not committed. For tests on their own database (see
    ``committed_sessions``)."""
    n = next(_ids)
    platform = Platform(
        issuer=f"https://seed{n}.example.edu",
        client_id="c",
        auth_login_url="https://lms.example.edu/auth",
        auth_token_url="https://lms.example.edu/token",
        key_set_url="https://lms.example.edu/jwks",
    )
    course = Course(deployment=Deployment(platform=platform, deployment_id="d"), context_id="x")
    program = Program(course=course, title="Seeded", tracks=["research"])
    session.add(program)
    session.flush()
    participants = []
    for i in range(people):
        user = User(platform_id=platform.id, sub=f"s{i}")
        session.add(user)
        session.flush()
        role = INSTRUCTOR if i < mentors else LEARNER
        session.add(CourseMembership(course_id=course.id, user_id=user.id, roles=[role]))
        participants.append(
            Participant(
                program_id=program.id,
                user_id=user.id,
                is_mentor=i < mentors,
                is_mentee=i >= mentors,
                profile=Profile(**profile),
            )
        )
    session.add_all(participants)
    session.flush()
    return program, participants


def add_meeting(
    session: Session, rel: Any, start: Any, status: Any = None, *, minutes: int = 30
) -> Any:
    """A 30-minute virtual meeting of the relationship ``rel`` at ``start`` (flushed)."""
    from datetime import timedelta

    from plugin.models import Meeting, MeetingFormat, MeetingKind, MeetingStatus

    meeting = Meeting(
        program_id=rel.program_id,
        kind=MeetingKind.RELATIONSHIP,
        relationship_id=rel.id,
        title="Check-in",
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        time_zone="UTC",
        format=MeetingFormat.VIRTUAL,
        status=status or MeetingStatus.SCHEDULED,
    )
    session.add(meeting)
    session.flush()
    return meeting


def coordinator_pair(
    session: Session,
    program: Program,
    mentee: Participant,
    mentor: Participant,
    track: Track = Track.RESEARCH,
) -> Relationship:
    """An active relationship a coordinator made, through the service (seats are checked)."""
    return propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=track,
        origin=RelationshipOrigin.COORDINATOR,
        actor=None,
        activate=True,
    )


def closed_not_working(
    program: Program, mentee: Participant, mentor: Participant, track: Track
) -> Relationship:
    """A relationship on ``track`` that ran 60 days and closed yesterday as not working out
    (waiting for a re-match and an evaluation); not yet added to a session."""
    now = utcnow()
    return Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=track,
        status=RelationshipStatus.CLOSED,
        close_reason=CloseReason.NOT_WORKING,
        started_at=now - timedelta(days=60),
        closed_at=now - timedelta(days=1),
    )
