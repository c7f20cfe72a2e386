"""In a real browser: a coordinator handles a stalled pair from the attention queue, and a
mentee gives feedback on a meeting; every page passes axe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from plugin.db import get_db, utcnow
from tests.browser_world import INSTRUCTOR, LEARNER, seed_course
from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, int, str, str]:
    """A pair 40 days in without a first meeting, and one held meeting of another pair;
    the program id, that meeting's id, the coordinator's and the mentee's tokens."""
    now = utcnow()
    with get_db(live_server.app).session() as session:
        seeded = seed_course(
            session,
            {
                "Casey Coordinator": INSTRUCTOR,
                "Sam Stuck": LEARNER,
                "Max Mentor": INSTRUCTOR,
                "Mia Mentee": LEARNER,
                "Omar Mentor": INSTRUCTOR,
            },
        )
        sam = seeded.enroll("Sam Stuck", mentee=True)
        max_ = seeded.enroll("Max Mentor", mentor=True)
        mia = seeded.enroll("Mia Mentee", mentee=True)
        omar = seeded.enroll("Omar Mentor", mentor=True)
        seeded.pair(sam, max_, started_at=now - timedelta(days=40))
        meeting_pair = seeded.pair(mia, omar, started_at=now - timedelta(days=10))
        meeting = seeded.held_meeting(meeting_pair, now - timedelta(days=1), [mia, omar])
        session.commit()
        return (
            seeded.program.id,
            meeting.id,
            seeded.token(live_server.app, "Casey Coordinator"),
            seeded.token(live_server.app, "Mia Mentee"),
        )


def test_attention_queue_and_meeting_feedback_in_a_browser(
    browser: Any, live_server: LiveServer
) -> None:
    program_id, meeting_id, coordinator, mentee = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/coordinator/?lt={coordinator}"))
    page.get_by_role("link", name="Needs attention").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Relationships that need attention")
    expect(page.get_by_text("No first meeting 40 days after the start")).to_be_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("What did you do or decide?").fill("Wrote to both; meeting next week")
    page.get_by_role("button", name="Mark handled").click()
    expect(page.get_by_role("status")).to_contain_text("Marked as handled")
    expect(page.get_by_text("Wrote to both; meeting next week")).to_be_visible()
    assert accessibility_violations(page) == []

    form = browser.new_page()
    form.goto(live_server.url(f"/programs/{program_id}/meetings/{meeting_id}/feedback?lt={mentee}"))
    form.get_by_role("button", name="Save feedback").click()  # nothing chosen yet
    expect(form.get_by_role("alert")).to_be_visible()
    assert accessibility_violations(form) == []
    form.get_by_role("group", name="How would you rate this meeting?").get_by_label("4").check()
    form.get_by_role("group", name="Was it useful?").get_by_label("Yes").check()
    form.get_by_label("Only the program coordinators").check()
    form.get_by_role("button", name="Save feedback").click()
    expect(form.get_by_role("status")).to_contain_text("Thank you")
    assert accessibility_violations(form) == []
