"""A coordinator pairs a mentee with a mentor in a real browser; every page passes axe."""

from __future__ import annotations

from typing import Any

import pytest

from plugin.db import get_db
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import issue_launch_token
from plugin.models import (
    Course,
    CourseMembership,
    Deployment,
    Participant,
    Platform,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    User,
)
from tests.conftest import LiveServer, accessibility_violations
from tests.programs.conftest import INSTRUCTOR, LEARNER

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, str]:
    """A course with a program, a mentee, a mentor and a coordinator; the coordinator's token."""
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
        program = Program(course=course, title="Mentorship", tracks=["research", "career"])
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
        mentor.profile = Profile(tracks_offered=["research", "career"])
        session.add_all([mentee, mentor])
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


def test_a_coordinator_pairs_a_mentee_with_a_mentor(browser: Any, live_server: LiveServer) -> None:
    program_id, token = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/?lt={token}"))
    page.get_by_role("link", name="open the coordinator workspace").click()
    assert page.get_by_role("heading", level=1).inner_text() == "People"
    assert page.get_by_role("row", name="Nora Notyet").get_by_text("Not enrolled").is_visible()
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="Pair Mia Mentee with a mentor").click()
    page.get_by_role("heading", name="Pair Mia Mentee with a mentor").wait_for()
    assert accessibility_violations(page) == []
    page.get_by_label("Mentor", exact=True).select_option(label="Max Mentor — 2 free on research")
    page.get_by_role("button", name="Pair them").click()

    page.get_by_role("status").wait_for()
    assert "The mentee is paired" in page.get_by_role("status").inner_text()
    row = page.get_by_role("row", name="Select Mia Mentee and Max Mentor")
    assert row.get_by_text("Active").is_visible()
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="History of Mia Mentee and Max Mentor").click()
    page.get_by_role("heading", name="Mia Mentee and Max Mentor").wait_for()
    assert accessibility_violations(page) == []
    for name in ("Settings", "Audit log", "Peer circles", "Invite mentors"):
        page.get_by_role("navigation", name="Coordinator").get_by_role("link", name=name).click()
        page.wait_for_load_state()
        assert accessibility_violations(page) == [], name
    page.close()

    with get_db(live_server.app).session() as session:
        rel = session.query(Relationship).one()
        assert rel.status == RelationshipStatus.ACTIVE
