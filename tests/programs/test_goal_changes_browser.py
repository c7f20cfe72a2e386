"""A mentee changes an agreed goal and then drops it, in a real browser: every control is
reached by its label, a refusal is shown at its field, and the goal page passes axe with
the forms closed, open with an error, and read-only after the drop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from plugin.db import get_db, utcnow
from plugin.models import Goal, GoalStatus, GoalUpdate
from tests.browser_world import INSTRUCTOR, LEARNER, seed_course
from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[str, str]:
    """Mia's goal, agreed by her mentor Max; the goal page's path and Mia's token."""
    with get_db(live_server.app).session() as session:
        seeded = seed_course(session, {"Mia Mentee": LEARNER, "Max Mentor": INSTRUCTOR})
        mentee = seeded.enroll("Mia Mentee", mentee=True, tracks_wanted=["research"])
        mentor = seeded.enroll("Max Mentor", mentor=True, tracks_offered=["research"])
        pair = seeded.pair(mentee, mentor)
        goal = Goal(
            program_id=seeded.program.id,
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
        return f"/programs/{seeded.program.id}/goals/{goal.id}", seeded.token(
            live_server.app, "Mia Mentee"
        )


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
    measure = page.get_by_text("Measure from Abstract submitted to Abstract accepted")
    expect(measure).to_have_count(1)
    expect(page.get_by_text("waits to be agreed again")).to_have_count(1)

    page.get_by_text("Drop this goal", exact=True).first.click()
    page.get_by_label("Why are you dropping it? (optional)").fill("Conference cancelled")
    page.get_by_role("button", name="Drop this goal").click()
    page.get_by_text("This goal was dropped.").wait_for()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    expect(page.get_by_role("button", name="Add check-in")).to_have_count(0)
    assert accessibility_violations(page) == []
    page.close()

    with get_db(live_server.app).session() as session:
        goal = session.query(Goal).one()
        assert goal.status == GoalStatus.DROPPED
        assert goal.measure == "Abstract accepted"
        assert [u.kind for u in goal.updates] == ["created", "agreed", "edited", "dropped"]
