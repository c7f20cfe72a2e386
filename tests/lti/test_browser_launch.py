"""A real browser launches from the development LMS inside a cross-site iframe."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"dev_platform": True}


def _launch_posts(page: Any) -> list[str]:
    """Record the form bodies the tool's frame posts to /lti/launch."""
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.post_data or "")
            if r.method == "POST" and r.url.endswith("/lti/launch")
            else None
        ),
    )
    return posts


def test_launch_completes_through_platform_storage_with_third_party_cookies_blocked(
    cookieless_page: Any, live_server: LiveServer
) -> None:
    page = cookieless_page
    posts = _launch_posts(page)
    page.goto(live_server.url("/dev/platform", host="localhost"))
    page.get_by_role("link", name="Launch as student").click()
    frame = page.frame_locator("iframe[title=Preceptor]")
    heading = frame.get_by_role("heading", level=1)
    heading.wait_for(timeout=60_000)
    frame.get_by_text("You are here as: learner.").wait_for(timeout=60_000)
    expect(heading).to_have_text("Clinical Skills I (demo)")
    tool_frame = next(f for f in page.frames if f.url.startswith(live_server.url("/courses/")))
    assert tool_frame.url.startswith(f"http://127.0.0.1:{live_server.port}/courses/")
    # The platform's post, then ours with the secret read back from platform storage.
    assert len(posts) == 2
    assert "lti_storage_value=" not in posts[0]
    value = parse_qs(posts[1])["lti_storage_value"][0]
    assert len(value) >= 40


def test_without_platform_storage_the_partitioned_cookie_carries_the_launch(
    cookieless_page: Any, live_server: LiveServer
) -> None:
    # Third-party cookies are blocked, but a Partitioned (CHIPS) cookie is kept per top-level
    # site: the second way in. (No cookie at all gets the new-window page: test_launch.py.)
    page = cookieless_page
    posts = _launch_posts(page)
    page.goto(live_server.url("/dev/platform", host="localhost"))
    link = page.get_by_role("link", name="Launch as faculty")
    url = link.get_attribute("href").replace("&lti_storage_target=_parent", "")
    page.evaluate("url => { document.querySelector('iframe').src = url; }", url)
    frame = page.frame_locator("iframe[title=Preceptor]")
    frame.get_by_text("You are here as: instructor.").wait_for(timeout=60_000)
    assert len(posts) == 1
    assert "lti_storage_value" not in posts[0]
