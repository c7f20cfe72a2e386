"""A mentee changes an agreed goal and then drops it, in a real browser: every control is
reached by its label, a refusal is shown at its field, and the goal page passes axe with
the forms closed, open with an error, and read-only after the drop."""

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
    Goal,
    GoalStatus,
    GoalUpdate,
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


def _seed(live_server: LiveServer) -> tuple[str, str]:
    """Mia's goal, agreed by her mentor Max; the goal page's path and Mia's token."""
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
        mia = User(platform=platform, sub="mia", name="Mia Mentee")
        max_ = User(platform=platform, sub="max", name="Max Mentor")
        session.add_all([platform, deployment, course, program, mia, max_])
        session.flush()
        session.add(CourseMembership(course=course, user=mia, roles=[LEARNER]))
        session.add(CourseMembership(course=course, user=max_, roles=[INSTRUCTOR]))
        mentee = Participant(program=program, user=mia, is_mentee=True)
        mentee.profile = Profile(tracks_wanted=["research"])
        mentor = Participant(program=program, user=max_, is_mentor=True)
        mentor.profile = Profile(tracks_offered=["research"])
        session.add_all([mentee, mentor])
        session.flush()
        pair = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track="research",
            status=RelationshipStatus.ACTIVE,
        )
        session.add(pair)
        session.flush()
        goal = Goal(
            program_id=program.id,
            owner_id=mentee.id,
            relationship_id=pair.id,
            title="Submit an abstract",
            measure="Abstract submitted",
            target_date=(utcnow() + timedelta(days=60)).date(),
            status=GoalStatus.AGREED,
            agreed_by_id=mentor.id,
            agreed_at=utcnow(),
        )
        session.add(goal)
        session.flush()
        session.add_all(
            [
                GoalUpdate(goal_id=goal.id, author_id=mentee.id, kind="created"),
                GoalUpdate(goal_id=goal.id, author_id=mentor.id, kind="agreed"),
            ]
        )
        session.commit()
        with live_server.app.app_context():
            token = issue_launch_token(
                LaunchIdentity(
                    user_id=mia.id,
                    course_id=course.id,
                    deployment_id=deployment.id,
                    roles=frozenset({CourseRole.LEARNER}),
                    resource_link_id="link",
                )
            )
        return f"/programs/{program.id}/goals/{goal.id}", token


def test_a_mentee_changes_an_agreed_goal_then_drops_it(
    browser: Any, live_server: LiveServer
) -> None:
    path, token = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"{path}?lt={token}"))
    assert accessibility_violations(page) == []

    page.get_by_text("Change what, measure or target date").click()
    page.get_by_label("How will you know you got there?").fill("")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Say how you will know you got there.").wait_for()
    assert accessibility_violations(page) == []  # the open form with its error
    page.get_by_label("How will you know you got there?").fill("Abstract accepted")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Mia Mentee changed the goal").wait_for()
    assert page.get_by_text("Measure from Abstract submitted to Abstract accepted").count() == 1
    assert page.get_by_text("waits to be agreed again").count() == 1

    page.get_by_text("Drop this goal", exact=True).first.click()
    page.get_by_label("Why are you dropping it? (optional)").fill("Conference cancelled")
    page.get_by_role("button", name="Drop this goal").click()
    page.get_by_text("This goal was dropped.").wait_for()
    assert page.get_by_role("button", name="Save changes").count() == 0
    assert page.get_by_role("button", name="Add check-in").count() == 0
    assert accessibility_violations(page) == []
    page.close()

    with get_db(live_server.app).session() as session:
        goal = session.query(Goal).one()
        assert goal.status == GoalStatus.DROPPED
        assert goal.measure == "Abstract accepted"
        assert [u.kind for u in goal.updates] == ["created", "agreed", "edited", "dropped"]
