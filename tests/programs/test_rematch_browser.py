"""A mentee finds a new mentor after a relationship did not work out, in a real browser;
the home and the re-match page pass axe, and every control is reached by its label."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from plugin.db import get_db
from plugin.models import (
    CloseReason,
    Goal,
    GoalStatus,
    Relationship,
    RelationshipStatus,
)
from plugin.programs.relationships import close_relationship
from tests.browser_world import INSTRUCTOR, LEARNER, seed_course
from tests.conftest import LiveServer, accessibility_violations
from tests.programs.conftest import coordinator_pair

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, str]:
    """Mia's research relationship with Max closed as not working out; Mia's token."""
    with get_db(live_server.app).session() as session:
        seeded = seed_course(
            session,
            {"Mia Mentee": LEARNER, "Max Mentor": INSTRUCTOR, "Nora Mentor": INSTRUCTOR},
        )
        cardiology = ["specialty.cardiology"]
        mentee = seeded.enroll(
            "Mia Mentee", mentee=True, tracks_wanted=["research"], interests=cardiology
        )
        mentors = [
            seeded.enroll(name, mentor=True, tracks_offered=["research"], interests=cardiology)
            for name in ("Max Mentor", "Nora Mentor")
        ]
        closed = coordinator_pair(session, seeded.program, mentee, mentors[0])
        session.add(
            Goal(
                program_id=seeded.program.id,
                owner_id=mentee.id,
                relationship_id=closed.id,
                title="Submit an abstract",
                status=GoalStatus.AGREED,
            )
        )
        close_relationship(session, closed, reason=CloseReason.NOT_WORKING, actor=None)
        session.commit()
        return seeded.program.id, seeded.token(live_server.app, "Mia Mentee")


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
    expect(page.get_by_label("Max Mentor")).to_have_count(0)  # it did not work out with Max
    page.get_by_label("Nora Mentor").check()
    expect(page.get_by_label("Submit an abstract")).to_be_checked()  # goals come along by default
    page.get_by_label("A message to the new mentor (optional)").fill("Hello Nora")
    page.get_by_role("button", name="Ask the chosen mentor").click()
    page.get_by_text("Your request to Nora Mentor is waiting for an answer.").wait_for()
    assert accessibility_violations(page) == []
    page.close()

    with get_db(live_server.app).session() as session:
        new = session.query(Relationship).filter(Relationship.rematch_of_id.is_not(None)).one()
        assert new.status == RelationshipStatus.PROPOSED
        assert len(new.carry_goal_ids) == 1
