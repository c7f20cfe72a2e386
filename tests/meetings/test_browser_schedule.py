"""A mentee schedules a meeting in a real browser; the pages pass axe-core's checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugin.db import get_db
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import issue_launch_token
from plugin.models import (
    Course,
    CourseMembership,
    Deployment,
    Meeting,
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


def _seed(live_server: LiveServer) -> tuple[str, int, int, str]:
    """A course with a mentee and a mentor in an active relationship; both tokens."""
    app = live_server.app
    with app.app_context(), get_db(app).session_scope() as session:
        platform = Platform(
            issuer="https://lms.example.edu",
            client_id="c",
            auth_login_url="https://lms.example.edu/a",
            auth_token_url="https://lms.example.edu/t",
            key_set_url="https://lms.example.edu/k",
        )
        deployment = Deployment(platform=platform, deployment_id="d")
        course = Course(deployment=deployment, context_id="ctx", title="Clinical Skills I")
        program = Program(course=course, title="Research mentoring", tracks=["research"])
        session.add(program)
        session.flush()
        people = []
        for n, (name, role, zone) in enumerate(
            [
                ("Maya Mentee", LEARNER, "Europe/London"),
                ("Omar Mentor", INSTRUCTOR, "America/New_York"),
            ]
        ):
            user = User(platform_id=platform.id, sub=f"s{n}", name=name, email=f"p{n}@example.edu")
            session.add(user)
            session.flush()
            session.add(CourseMembership(course_id=course.id, user_id=user.id, roles=[role]))
            people.append(
                Participant(
                    program_id=program.id,
                    user_id=user.id,
                    is_mentee=n == 0,
                    is_mentor=n == 1,
                    profile=Profile(
                        time_zone=zone,
                        availability=[
                            {"day": d, "start": "08:00", "end": "20:00"} for d in range(5)
                        ],
                    ),
                )
            )
        session.add_all(people)
        session.flush()
        relationship = Relationship(
            program_id=program.id,
            mentee_id=people[0].id,
            mentor_id=people[1].id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
        )
        session.add(relationship)
        session.flush()
        tokens = [
            issue_launch_token(
                LaunchIdentity(
                    user_id=person.user_id or 0,
                    course_id=course.id,
                    deployment_id=deployment.id,
                    roles=frozenset({role}),
                    resource_link_id="link-1",
                )
            )
            for person, role in zip(
                people, [CourseRole.LEARNER, CourseRole.INSTRUCTOR], strict=True
            )
        ]
        return tokens[0], program.id, relationship.id, tokens[1]


def test_a_mentee_schedules_a_meeting_with_the_keyboard_friendly_form(
    browser: Any, live_server: LiveServer
) -> None:
    token, program_id, relationship_id, _ = _seed(live_server)
    page = browser.new_page()
    page.goto(
        live_server.url(
            f"/programs/{program_id}/relationships/{relationship_id}/meetings/new?lt={token}"
        )
    )
    assert page.get_by_role("heading", name="Schedule a meeting").is_visible()
    assert accessibility_violations(page) == []

    # A bad link first: the message appears at the field, and the page stays accessible.
    page.get_by_label("Another time (enter it below)").check()
    day = (datetime.now(ZoneInfo("Europe/London")) + timedelta(days=6)).date().isoformat()
    page.get_by_label("Date").fill(day)
    page.get_by_label("Start time").fill("11:00")
    page.get_by_label("End time").fill("11:30")
    page.get_by_label("Meeting link (for a video call)").fill("http://insecure.example")
    page.get_by_role("button", name="Schedule meeting").click()
    assert page.get_by_text("Paste a meeting link that starts with https://.").is_visible()
    assert accessibility_violations(page) == []

    page.get_by_label("Meeting link (for a video call)").fill("https://meet.example.edu/maya")
    page.get_by_label("Agenda").fill("Poster draft")
    page.get_by_role("button", name="Schedule meeting").click()
    page.wait_for_url("**/meetings/*?lt=*")
    assert page.get_by_role("heading", name="Mentoring: Maya Mentee and Omar Mentor").is_visible()
    assert page.get_by_text("11:00").first.is_visible()
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="Back to my meetings").click()
    assert page.get_by_role("heading", name="My meetings").is_visible()
    assert accessibility_violations(page) == []
    page.close()

    with live_server.app.app_context(), get_db(live_server.app).session_scope() as session:
        from sqlalchemy import select

        meeting = session.scalars(select(Meeting)).one()
        assert meeting.starts_at.astimezone(ZoneInfo("Europe/London")).hour == 11
        assert meeting.conference_url == "https://meet.example.edu/maya"


def test_a_mentor_publishes_a_slot_and_a_mentee_books_it_on_accessible_pages(
    browser: Any, live_server: LiveServer
) -> None:
    mentee_token, program_id, _, mentor_token = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/slots/?lt={mentor_token}"))
    assert page.get_by_role("heading", name="My micro-mentoring slots").is_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("Day").select_option(label="Thursday")
    page.get_by_label("From").fill("16:00")
    page.get_by_label("Until").fill("16:15")
    page.get_by_label("15 minutes").check()
    page.get_by_label("Bookings close (hours before)").fill("1")
    page.get_by_label("Topics (comma-separated; empty for any)").fill("Careers, Wellbeing")
    page.get_by_label("Meeting link (for a video call)").fill("https://meet.example.edu/omar")
    page.get_by_role("button", name="Publish slot").click()
    assert page.get_by_text("Thursdays 16:00").is_visible()
    assert accessibility_violations(page) == []

    page.goto(live_server.url(f"/programs/{program_id}/book?lt={mentee_token}"))
    assert page.get_by_role("heading", name="Omar Mentor · 15 minutes").is_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("Topic").select_option("Wellbeing")
    page.get_by_role("button", name="Book with Omar Mentor").click()
    page.wait_for_url("**/meetings/*?lt=*")
    assert page.get_by_role("heading", name="Micro-mentoring: Wellbeing").is_visible()
    assert accessibility_violations(page) == []
    page.close()
