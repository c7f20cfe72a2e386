"""A course for browser tests, seeded on a live server's database: a platform, deployment,
course and program, named people on the course roster, their enrollments and pairs, and
the launch tokens they open pages with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    Course,
    CourseMembership,
    Deployment,
    Meeting,
    MeetingAttendee,
    MeetingStatus,
    Participant,
    Platform,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant, add_meeting, token_for

__all__ = ["CAST", "INSTRUCTOR", "LEARNER", "BrowserCourse", "seed_course"]

#: The usual people of a course: a coordinator, a mentee, a mentor and a learner who has
#: not enrolled, each with their roster role.
CAST = {
    "Casey Coordinator": INSTRUCTOR,
    "Mia Mentee": LEARNER,
    "Max Mentor": INSTRUCTOR,
    "Nora Notyet": LEARNER,
}

#: The course role a launch carries for each roster role URI.
_LAUNCH_ROLES = {LEARNER: CourseRole.LEARNER, INSTRUCTOR: CourseRole.INSTRUCTOR}


@dataclass
class BrowserCourse:
    """One seeded course and its program; usable while the session it was seeded in is open."""

    session: Session
    tenant: Tenant
    program: Program
    people: dict[str, User]
    roles: dict[str, CourseRole] = field(default_factory=dict)

    def enroll(
        self,
        name: str,
        *,
        mentee: bool = False,
        mentor: bool = False,
        program: Program | None = None,
        **profile: Any,
    ) -> Participant:
        """Enroll the person called ``name`` in the program (or ``program``), with a profile."""
        participant = Participant(
            program=program or self.program,
            user=self.people[name],
            is_mentee=mentee,
            is_mentor=mentor,
            profile=Profile(**profile),
        )
        self.session.add(participant)
        self.session.flush()
        return participant

    def pair(
        self,
        mentee: Participant,
        mentor: Participant,
        *,
        track: Track = Track.RESEARCH,
        started_at: datetime | None = None,
    ) -> Relationship:
        """An active relationship between ``mentee`` and ``mentor`` in the program."""
        relationship = Relationship(
            program_id=self.program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=track,
            status=RelationshipStatus.ACTIVE,
            started_at=started_at,
        )
        self.session.add(relationship)
        self.session.flush()
        return relationship

    def held_meeting(
        self,
        relationship: Relationship,
        starts_at: datetime,
        attendees: Iterable[Participant] = (),
    ) -> Meeting:
        """A held meeting of ``relationship`` at ``starts_at``, with ``attendees``."""
        meeting: Meeting = add_meeting(self.session, relationship, starts_at, MeetingStatus.HELD)
        meeting.attendees = [MeetingAttendee(participant_id=p.id) for p in attendees]
        self.session.flush()
        return meeting

    def token(self, app: Flask, name: str) -> str:
        """The launch token of the person called ``name``, with their roster role."""
        with app.app_context():
            return token_for(self.tenant, self.people[name], self.roles[name])


def seed_course(
    session: Session,
    people: Mapping[str, str],
    *,
    title: str = "Mentorship",
    tracks: Iterable[str] = ("research",),
    emails: bool = False,
) -> BrowserCourse:
    """A course "Clinical Skills I" with a program and ``people`` (name to roster role,
    ``LEARNER`` or ``INSTRUCTOR``) on its roster, each with an email if ``emails``;
    flushed, not committed."""
    platform = Platform(
        issuer="https://canvas.example.edu",
        client_id="browser",
        auth_login_url="https://canvas.example.edu/auth",
        auth_token_url="https://canvas.example.edu/token",
        key_set_url="https://canvas.example.edu/jwks",
    )
    deployment = Deployment(platform=platform, deployment_id="dep")
    course = Course(deployment=deployment, context_id="ctx", title="Clinical Skills I")
    program = Program(course=course, title=title, tracks=list(tracks))
    users = {
        name: User(
            platform=platform,
            sub=f"s{n}",
            name=name,
            email=f"p{n}@example.edu" if emails else "",
        )
        for n, name in enumerate(people)
    }
    session.add_all([platform, deployment, course, program, *users.values()])
    session.flush()
    for name, role in people.items():
        session.add(CourseMembership(course=course, user=users[name], roles=[role]))
    session.flush()
    return BrowserCourse(
        session=session,
        tenant=Tenant(platform, deployment, course),
        program=program,
        people=users,
        roles={name: _LAUNCH_ROLES[role] for name, role in people.items()},
    )
