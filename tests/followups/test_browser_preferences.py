"""A mentee finds "My notifications" from their program home and changes them with the
keyboard-friendly form, in a real browser; the pages pass axe-core's checks."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from plugin.db import get_db
from plugin.models import NotificationPreference
from tests.conftest import LiveServer, accessibility_violations
from tests.meetings.test_browser_schedule import _seed

pytestmark = pytest.mark.browser


def test_a_mentee_chooses_in_app_reminders_on_an_accessible_page(
    browser: Any, live_server: LiveServer
) -> None:
    token, program_id, _, _ = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{program_id}/?lt={token}"))
    page.get_by_role("link", name="My notifications").click()
    expect(page.get_by_role("heading", name="My notifications")).to_be_visible()
    assert accessibility_violations(page) == []

    page.get_by_label("Only in Preceptor (a notice on your pages)").check()
    page.get_by_label("Requests for feedback after a meeting").uncheck()
    page.get_by_label("At most this many messages a day").fill("0")
    page.get_by_role("button", name="Save my notification settings").click()
    expect(
        page.get_by_text("Enter a number from 1 to 20, or leave it empty.").first
    ).to_be_visible()
    assert accessibility_violations(page) == []

    page.get_by_label("At most this many messages a day").fill("2")
    page.get_by_role("button", name="Save my notification settings").click()
    expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
    assert accessibility_violations(page) == []
    page.close()

    with live_server.app.app_context(), get_db(live_server.app).session_scope() as session:
        (saved,) = session.scalars(select(NotificationPreference)).all()
        assert (saved.channel, saved.daily_cap) == ("in_app", 2)
        assert saved.muted_kinds == ["meeting_feedback"]
