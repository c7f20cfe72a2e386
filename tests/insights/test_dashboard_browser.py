"""A coordinator opens the dashboard from the workspace in a real browser; it passes axe."""

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


def _seed(live_server: LiveServer) -> tuple[int, str]:
    """A program with a matched pair that met once; the coordinator's launch token."""
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
        people = {
            name: User(platform=platform, sub=name, name=name)
            for name in ("Casey Coordinator", "Mia Mentee", "Max Mentor", "Nora Notyet")
        }
        session.add_all([platform, deployment, course, program, *people.values()])
        session.flush()
        for name, user in people.items():
            role = LEARNER if name in ("Mia Mentee", "Nora Notyet") else INSTRUCTOR
            session.add(CourseMembership(course=course, user=user, roles=[role]))
        mentee = Participant(program=program, user=people["Mia Mentee"], is_mentee=True)
        mentee.profile = Profile(tracks_wanted=["research"])
        mentor = Participant(program=program, user=people["Max Mentor"], is_mentor=True)
        mentor.profile = Profile(tracks_offered=["research"])
        session.add_all([mentee, mentor])
        session.flush()
        now = utcnow()
        rel = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
            started_at=now - timedelta(days=20),
        )
        session.add(rel)
        session.flush()
        session.add(
            Meeting(
                program_id=program.id,
                kind=MeetingKind.RELATIONSHIP,
                relationship_id=rel.id,
                title="First meeting",
                starts_at=now - timedelta(days=1),
                ends_at=now - timedelta(days=1) + timedelta(minutes=30),
                time_zone="UTC",
                format=MeetingFormat.VIRTUAL,
                status=MeetingStatus.HELD,
            )
        )
        session.commit()
        with live_server.app.app_context():
            token = issue_launch_token(
                LaunchIdentity(
                    user_id=people["Casey Coordinator"].id,
                    course_id=course.id,
                    deployment_id=deployment.id,
                    roles=frozenset({CourseRole.INSTRUCTOR}),
                    resource_link_id="link",
                )
            )
        return program.id, token


def test_a_coordinator_reads_the_dashboard(browser: Any, live_server: LiveServer) -> None:
    program_id, token = _seed(live_server)
    page = browser.new_page(viewport={"width": 800, "height": 900})  # an LMS iframe's width
    page.goto(live_server.url(f"/programs/{program_id}/coordinator/?lt={token}"))
    nav = page.get_by_role("navigation", name="Coordinator")
    nav.get_by_role("link", name="Dashboard").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Program dashboard"
    funnel = page.get_by_role("img", name="Enrollment funnel: mentees from the course roster")
    assert funnel.is_visible()
    table = page.get_by_role("table", name="Enrollment funnel")
    assert table.get_by_role("row", name="Met a mentor at least once").is_visible()
    assert "1" in table.get_by_role("row", name="Met a mentor at least once").inner_text()
    # Nothing wider than the frame: the charts scale down.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 800
    assert accessibility_violations(page) == []

    nav.get_by_role("link", name="Follow-ups").click()
    page.get_by_role("heading", name="Follow-ups", level=1).wait_for()
    assert accessibility_violations(page) == []
    page.close()
