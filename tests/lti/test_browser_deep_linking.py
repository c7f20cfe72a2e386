"""A real browser adds Preceptor to the development LMS's course and opens the placed link."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"dev_platform": True}


def test_an_instructor_places_a_program_and_a_student_lands_in_it(
    cookieless_page: Any, live_server: LiveServer
) -> None:
    # Its own Chromium, third-party cookies blocked, as in test_browser_launch.py.
    page = cookieless_page
    # Generous waits: two shared cores may be busy with other work; nothing here is timed.
    page.goto(live_server.url("/dev/platform", host="localhost"))
    page.get_by_role("link", name="Add Preceptor to the course").click()
    frame = page.frame_locator("iframe[title=Preceptor]")
    frame.get_by_role("heading", name="Create a program").wait_for(timeout=60_000)
    tool_frame = next(f for f in page.frames if "/lti/launch" in f.url)
    assert accessibility_violations(tool_frame) == []

    frame.get_by_label("Program name").fill("Research mentoring")
    frame.get_by_role("button", name="Create and add").click()
    # The tool's signed answer auto-posts to the LMS, which verifies it and lists the link.
    frame.get_by_role("heading", name="Preceptor added to the course").wait_for(timeout=60_000)
    expect(frame.locator("main")).to_contain_text("Research mentoring")

    frame.get_by_role("link", name="Launch it as student").click()
    frame.get_by_role("heading", name="Research mentoring", level=1).wait_for(timeout=60_000)
    program_frame = next(f for f in page.frames if "/programs/" in f.url)
    assert program_frame.url.startswith(f"http://127.0.0.1:{live_server.port}/programs/")
