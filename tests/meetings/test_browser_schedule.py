"""A mentee schedules a meeting in a real browser; the pages pass axe-core's checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from plugin.db import get_db
from plugin.models import Meeting
from tests.browser_world import INSTRUCTOR, LEARNER, seed_course
from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser

#: Weekdays, 08:00 to 20:00 in each person's own time zone.
_WEEKDAYS = [{"day": d, "start": "08:00", "end": "20:00"} for d in range(5)]


def _seed(live_server: LiveServer) -> tuple[str, int, int, str]:
    """A course with a mentee and a mentor in an active relationship; both tokens."""
    app = live_server.app
    with app.app_context(), get_db(app).session_scope() as session:
        seeded = seed_course(
            session,
            {"Maya Mentee": LEARNER, "Omar Mentor": INSTRUCTOR},
            title="Research mentoring",
            emails=True,
        )
        mentee = seeded.enroll(
            "Maya Mentee", mentee=True, time_zone="Europe/London", availability=_WEEKDAYS
        )
        mentor = seeded.enroll(
            "Omar Mentor", mentor=True, time_zone="America/New_York", availability=_WEEKDAYS
        )
        relationship = seeded.pair(mentee, mentor)
        return (
            seeded.token(app, "Maya Mentee"),
            seeded.program.id,
            relationship.id,
            seeded.token(app, "Omar Mentor"),
        )


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
    expect(page.get_by_role("heading", name="Schedule a meeting")).to_be_visible()
    assert accessibility_violations(page) == []

    # A bad link first: the message appears at the field, and the page stays accessible.
    page.get_by_label("Another time (enter it below)").check()
    day = (datetime.now(ZoneInfo("Europe/London")) + timedelta(days=6)).date().isoformat()
    page.get_by_label("Date").fill(day)
    page.get_by_label("Start time").fill("11:00")
    page.get_by_label("End time").fill("11:30")
    page.get_by_label("Meeting link (for a video call)").fill("http://insecure.example")
    page.get_by_role("button", name="Schedule meeting").click()
    expect(page.get_by_text("Paste a meeting link that starts with https://.")).to_be_visible()
    assert accessibility_violations(page) == []

    page.get_by_label("Meeting link (for a video call)").fill("https://meet.example.edu/maya")
    page.get_by_label("Agenda").fill("Poster draft")
    page.get_by_role("button", name="Schedule meeting").click()
    page.wait_for_url("**/meetings/*?lt=*")
    expect(
        page.get_by_role("heading", name="Mentoring: Maya Mentee and Omar Mentor")
    ).to_be_visible()
    expect(page.get_by_text("11:00").first).to_be_visible()
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="Back to my meetings").click()
    expect(page.get_by_role("heading", name="My meetings")).to_be_visible()
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
    expect(page.get_by_role("heading", name="My micro-mentoring slots")).to_be_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("Day").select_option(label="Thursday")
    page.get_by_label("From").fill("16:00")
    page.get_by_label("Until").fill("16:15")
    page.get_by_label("15 minutes").check()
    page.get_by_label("Bookings close (hours before)").fill("1")
    page.get_by_label("Topics (comma-separated; empty for any)").fill("Careers, Wellbeing")
    page.get_by_label("Meeting link (for a video call)").fill("https://meet.example.edu/omar")
    page.get_by_role("button", name="Publish slot").click()
    expect(page.get_by_text("Thursdays 16:00")).to_be_visible()
    assert accessibility_violations(page) == []

    page.goto(live_server.url(f"/programs/{program_id}/book?lt={mentee_token}"))
    expect(page.get_by_role("heading", name="Omar Mentor · 15 minutes")).to_be_visible()
    assert accessibility_violations(page) == []
    page.get_by_label("Topic").select_option("Wellbeing")
    page.get_by_role("button", name="Book with Omar Mentor").click()
    page.wait_for_url("**/meetings/*?lt=*")
    expect(page.get_by_role("heading", name="Micro-mentoring: Wellbeing")).to_be_visible()
    assert accessibility_violations(page) == []
    page.close()
