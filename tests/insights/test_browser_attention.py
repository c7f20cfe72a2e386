"""In a real browser: a coordinator handles a stalled pair from the attention queue, and a
mentee gives feedback on a meeting; every page passes axe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from plugin.db import get_db, utcnow
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import issue_launch_token
from plugin.models import (
    Course,
    CourseMembership,
    Deployment,
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
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
from tests.conftest import LiveServer, accessibility_violations
from tests.programs.conftest import INSTRUCTOR, LEARNER

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, int, str, str]:
    """A pair 40 days in without a first meeting, and one held meeting of another pair;
    the program id, that meeting's id, the coordinator's and the mentee's tokens."""
    now = utcnow()
    with get_db(live_server.app).session() as session:
        platform = Platform(
            issuer="https://canvas.example.edu",
            client_id="browser",
            auth_login_url="https://canvas.example.edu/auth",
            auth_token_url="https://canvas.example.edu/token",
            key_set_url="https://canvas.example.edu/jwks",
        )
        deployment = Deployment(platform=platform, deployment_id="dep")
        course = Course(deployment=deployment, context_id="ctx", title="Clinical Skills I")
        program = Program(course=course, title="Mentorship", tracks=["research"])
        names = ("Casey Coordinator", "Sam Stuck", "Max Mentor", "Mia Mentee", "Omar Mentor")
        people = {name: User(platform=platform, sub=name, name=name) for name in names}
        session.add_all([platform, deployment, course, program, *people.values()])
        session.flush()
        for name, user in people.items():
            role = LEARNER if name in ("Sam Stuck", "Mia Mentee") else INSTRUCTOR
            session.add(CourseMembership(course=course, user=user, roles=[role]))
        enrolled = {}
        for name in names[1:]:
            mentee = name in ("Sam Stuck", "Mia Mentee")
            enrolled[name] = Participant(
                program=program, user=people[name], is_mentee=mentee, is_mentor=not mentee
            )
            enrolled[name].profile = Profile()
        session.add_all(enrolled.values())
        session.flush()
        stalled = Relationship(
            program_id=program.id,
            mentee_id=enrolled["Sam Stuck"].id,
            mentor_id=enrolled["Max Mentor"].id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
            started_at=now - timedelta(days=40),
        )
        meeting_pair = Relationship(
            program_id=program.id,
            mentee_id=enrolled["Mia Mentee"].id,
            mentor_id=enrolled["Omar Mentor"].id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
            started_at=now - timedelta(days=10),
        )
        session.add_all([stalled, meeting_pair])
        session.flush()
        meeting = Meeting(
            program_id=program.id,
            kind=MeetingKind.RELATIONSHIP,
            relationship_id=meeting_pair.id,
            title="First meeting",
            starts_at=now - timedelta(days=1),
            ends_at=now - timedelta(days=1) + timedelta(minutes=30),
            time_zone="UTC",
            format=MeetingFormat.VIRTUAL,
            status=MeetingStatus.HELD,
            attendees=[
                MeetingAttendee(participant_id=enrolled["Mia Mentee"].id),
                MeetingAttendee(participant_id=enrolled["Omar Mentor"].id),
            ],
        )
        session.add(meeting)
        session.commit()

        def token(name: str, role: CourseRole) -> str:
            return issue_launch_token(
                LaunchIdentity(
                    user_id=people[name].id,
                    course_id=course.id,
                    deployment_id=deployment.id,
                    roles=frozenset({role}),
                    resource_link_id="link",
                )
            )

        with live_server.app.app_context():
            return (
                program.id,
                meeting.id,
                token("Casey Coordinator", CourseRole.INSTRUCTOR),
                token("Mia Mentee", CourseRole.LEARNER),
            )


def test_attention_queue_and_meeting_feedback_in_a_browser(
    browser: Any, live_server: LiveServer
) -> None:
    program_id, meeting_id, coordinator, mentee = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/coordinator/?lt={coordinator}"))
    page.get_by_role("link", name="Needs attention").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Relationships that need attention"
    )
    assert page.get_by_text("No first meeting 40 days after the start").is_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("What did you do or decide?").fill("Wrote to both; meeting next week")
    page.get_by_role("button", name="Mark handled").click()
    assert page.get_by_role("status").inner_text().startswith("Marked as handled")
    assert page.get_by_text("Wrote to both; meeting next week").is_visible()
    assert accessibility_violations(page) == []

    form = browser.new_page()
    form.goto(live_server.url(f"/programs/{program_id}/meetings/{meeting_id}/feedback?lt={mentee}"))
    form.get_by_role("button", name="Save feedback").click()  # nothing chosen yet
    assert form.get_by_role("alert").is_visible()
    assert accessibility_violations(form) == []
    form.get_by_role("group", name="How would you rate this meeting?").get_by_label("4").check()
    form.get_by_role("group", name="Was it useful?").get_by_label("Yes").check()
    form.get_by_label("Only the program coordinators").check()
    form.get_by_role("button", name="Save feedback").click()
    assert form.get_by_role("status").inner_text().startswith("Thank you")
    assert accessibility_violations(form) == []
