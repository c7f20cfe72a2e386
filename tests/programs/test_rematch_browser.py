"""A mentee finds a new mentor after a relationship did not work out, in a real browser;
the home and the re-match page pass axe, and every control is reached by its label."""

from __future__ import annotations

from typing import Any

import pytest

from plugin.db import get_db
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import issue_launch_token
from plugin.models import (
    CloseReason,
    Course,
    CourseMembership,
    Deployment,
    Goal,
    GoalStatus,
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
from plugin.programs.relationships import close_relationship, propose_relationship
from tests.conftest import LiveServer, accessibility_violations
from tests.programs.conftest import INSTRUCTOR, LEARNER

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, str]:
    """Mia's research relationship with Max closed as not working out; Mia's token."""
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
        users = {
            name: User(platform=platform, sub=name, name=name)
            for name in ("Mia Mentee", "Max Mentor", "Nora Mentor")
        }
        session.add_all([platform, deployment, course, program, *users.values()])
        session.flush()
        for name, user in users.items():
            role = LEARNER if name == "Mia Mentee" else INSTRUCTOR
            session.add(CourseMembership(course=course, user=user, roles=[role]))
        mentee = Participant(program=program, user=users["Mia Mentee"], is_mentee=True)
        mentee.profile = Profile(tracks_wanted=["research"], interests=["specialty.cardiology"])
        mentors = []
        for name in ("Max Mentor", "Nora Mentor"):
            mentor = Participant(program=program, user=users[name], is_mentor=True)
            mentor.profile = Profile(
                tracks_offered=["research"], interests=["specialty.cardiology"]
            )
            mentors.append(mentor)
        session.add_all([mentee, *mentors])
        session.flush()
        closed = propose_relationship(
            session,
            program=program,
            mentee=mentee,
            mentor=mentors[0],
            track=Track.RESEARCH,
            origin=RelationshipOrigin.COORDINATOR,
            actor=None,
            activate=True,
        )
        session.add(
            Goal(
                program_id=program.id,
                owner_id=mentee.id,
                relationship_id=closed.id,
                title="Submit an abstract",
                status=GoalStatus.AGREED,
            )
        )
        close_relationship(session, closed, reason=CloseReason.NOT_WORKING, actor=None)
        session.commit()
        with live_server.app.app_context():
            token = issue_launch_token(
                LaunchIdentity(
                    user_id=users["Mia Mentee"].id,
                    course_id=course.id,
                    deployment_id=deployment.id,
                    roles=frozenset({CourseRole.LEARNER}),
                    resource_link_id="link",
                )
            )
        return program.id, token


def test_a_mentee_asks_a_new_mentor_and_brings_a_goal(
    browser: Any, live_server: LiveServer
) -> None:
    program_id, token = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/?lt={token}"))
    assert accessibility_violations(page) == []
    page.get_by_role("link", name="Find a new Research mentor").click()
    page.get_by_role("heading", name="Find a new Research mentor").wait_for()
    assert accessibility_violations(page) == []
    assert page.get_by_label("Max Mentor").count() == 0  # it did not work out with Max
    page.get_by_label("Nora Mentor").check()
    assert page.get_by_label("Submit an abstract").is_checked()  # goals come along by default
    page.get_by_label("A message to the new mentor (optional)").fill("Hello Nora")
    page.get_by_role("button", name="Ask the chosen mentor").click()
    page.get_by_text("Your request to Nora Mentor is waiting for an answer.").wait_for()
    assert accessibility_violations(page) == []
    page.close()

    with get_db(live_server.app).session() as session:
        new = session.query(Relationship).filter(Relationship.rematch_of_id.is_not(None)).one()
        assert new.status == RelationshipStatus.PROPOSED
        assert len(new.carry_goal_ids) == 1
