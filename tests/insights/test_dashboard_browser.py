"""A coordinator opens the dashboard from the workspace in a real browser; it passes axe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from plugin.db import get_db, utcnow
from tests.browser_world import CAST, seed_course
from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> tuple[int, str]:
    """A program with a matched pair that met once; the coordinator's launch token."""
    with get_db(live_server.app).session() as session:
        seeded = seed_course(session, CAST)
        mentee = seeded.enroll("Mia Mentee", mentee=True, tracks_wanted=["research"])
        mentor = seeded.enroll("Max Mentor", mentor=True, tracks_offered=["research"])
        now = utcnow()
        rel = seeded.pair(mentee, mentor, started_at=now - timedelta(days=20))
        seeded.held_meeting(rel, now - timedelta(days=1))
        session.commit()
        return seeded.program.id, seeded.token(live_server.app, "Casey Coordinator")


def test_a_coordinator_reads_the_dashboard(browser: Any, live_server: LiveServer) -> None:
    program_id, token = _seed(live_server)
    page = browser.new_page(viewport={"width": 800, "height": 900})  # an LMS iframe's width
    page.goto(live_server.url(f"/programs/{program_id}/coordinator/?lt={token}"))
    nav = page.get_by_role("navigation", name="Coordinator")
    nav.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Program dashboard")
    funnel = page.get_by_role("img", name="Enrollment funnel: mentees from the course roster")
    expect(funnel).to_be_visible()
    table = page.get_by_role("table", name="Enrollment funnel")
    expect(table.get_by_role("row", name="Met a mentor at least once")).to_be_visible()
    expect(table.get_by_role("row", name="Met a mentor at least once")).to_contain_text("1")
    # Nothing wider than the frame: the charts scale down.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 800
    assert accessibility_violations(page) == []

    nav.get_by_role("link", name="Follow-ups").click()
    page.get_by_role("heading", name="Follow-ups", level=1).wait_for()
    assert accessibility_violations(page) == []
    page.close()
