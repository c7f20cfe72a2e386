"""A real browser: faculty and a student launch from the development LMS, enroll as mentor
and mentee, the student asks the mentor, who accepts; they share a goal the mentor agrees
to. Every page passes axe-core (no serious or critical violation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    return {"dev_platform": True}


@pytest.fixture
def lms(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """The development LMS in a browser whose time zone is America/Chicago."""
    context = browser.new_context(timezone_id="America/Chicago")
    page = context.new_page()
    page.goto(live_server.url("/dev/platform", host="localhost"))
    yield page
    context.close()


def _tool_frame(page: Any, live_server: LiveServer) -> Any:
    return next(f for f in page.frames if f.url.startswith(live_server.url("/")))


def _launch(page: Any, persona: str, expect: str) -> Any:
    page.get_by_role("link", name=f"Launch as {persona}").click()
    frame = page.frame_locator("iframe[title=Preceptor]")
    frame.get_by_text(expect).first.wait_for(timeout=20_000)
    return frame


def _check_page(page: Any, live_server: LiveServer) -> None:
    assert accessibility_violations(_tool_frame(page, live_server)) == []


def test_a_mentor_and_a_mentee_enroll_pair_up_and_share_a_goal_in_a_real_launch(
    lms: Any, live_server: LiveServer
) -> None:
    # Faculty: create the course's program, then enroll as a mentor.
    frame = _launch(lms, "faculty", "Create a program")
    frame.get_by_label("Program name").fill("Cardiology mentoring")
    frame.get_by_label("Research").check()
    frame.get_by_role("button", name="Create program").click()
    frame.get_by_role("link", name="Enroll in Cardiology mentoring").click()
    frame.get_by_role("heading", name="Enroll in Cardiology mentoring").wait_for()
    _check_page(lms, live_server)
    # Filled by static/timezone.js once it has run: expect() waits for it.
    expect(frame.get_by_label("Your time zone")).to_have_value("America/Chicago")
    frame.locator("#tracks_offered").get_by_label("Research").check()
    frame.get_by_label("A short introduction for your mentees").fill("Echo lab director.")
    frame.get_by_label("Career stage").select_option("mid_career")
    frame.get_by_text("Clinical specialties").click()
    frame.get_by_label("Cardiology").check()
    frame.get_by_role("button", name="Enroll").click()
    frame.get_by_text("You are enrolled as a mentor.").wait_for()
    _check_page(lms, live_server)

    # Student: straight to the program; enroll as a mentee, a mistake first.
    frame = _launch(lms, "student", "You have not enrolled in this program yet.")
    _check_page(lms, live_server)
    frame.get_by_role("link", name="Enroll in Cardiology mentoring").click()
    frame.locator("#tracks_wanted").get_by_label("Research").check()
    frame.get_by_label("What do you hope to get from mentoring?").fill("A first abstract.")
    frame.get_by_label("Career stage").select_option("clinical_student")
    frame.get_by_label("Window 1: day").select_option("0")
    frame.locator("#window-0-start").fill("18:00")
    frame.locator("#window-0-end").fill("17:00")
    frame.get_by_role("button", name="Enroll").click()
    frame.get_by_text("The window must end after it starts.").wait_for()
    _check_page(lms, live_server)  # the page with errors at the fields, too
    frame.locator("#window-0-end").fill("19:30")
    frame.get_by_role("button", name="Enroll").click()
    frame.get_by_text("You are enrolled as a mentee.").wait_for()
    _check_page(lms, live_server)

    frame.get_by_role("link", name="Find a mentor").click()
    frame.get_by_role("heading", name="Find a Research mentor").wait_for()
    _check_page(lms, live_server)
    frame.get_by_label("A message to Dr Fran Faculty (optional)").fill("Hello!")
    frame.get_by_role("button", name="Ask Dr Fran Faculty to mentor me").click()
    frame.get_by_text("Request waiting for an answer").wait_for()

    # The mentor sees the request (and a notification) and accepts.
    frame = _launch(lms, "faculty", "Mentorship programs")
    frame.get_by_role("link", name="Cardiology mentoring").click()
    frame.get_by_text("Sam Student asked you to be their Research mentor.").wait_for()
    _check_page(lms, live_server)
    frame.get_by_role("button", name="Accept Sam Student").click()
    frame.get_by_role("link", name="Sam Student", exact=True).first.click()
    frame.get_by_role("heading", name="Sam Student").wait_for()
    expect(frame.get_by_text("A first abstract.")).to_be_visible()  # the shared profile
    _check_page(lms, live_server)

    # The student writes a goal with the mentor; the mentor agrees; both see it.
    frame = _launch(lms, "student", "Dr Fran Faculty accepted your request")
    frame.get_by_role("link", name="Write a goal").click()
    frame.get_by_role("heading", name="Write a goal").wait_for()
    _check_page(lms, live_server)
    frame.get_by_label("What do you want to achieve?").fill("Submit an abstract")
    frame.get_by_label("How will you know you got there?").fill("Abstract submitted")
    frame.get_by_label("By when?").fill("2099-03-01")
    frame.get_by_role("button", name="Propose this goal").click()
    frame.get_by_role("heading", name="Submit an abstract").wait_for()
    _check_page(lms, live_server)
    frame.get_by_role("link", name="My data").click()
    frame.get_by_role("heading", name="Download my data").wait_for()
    _check_page(lms, live_server)

    frame = _launch(lms, "faculty", "Mentorship programs")
    frame.get_by_role("link", name="Cardiology mentoring").click()
    frame.get_by_role("link", name="Submit an abstract", exact=True).first.click()
    frame.get_by_role("button", name="Agree to this goal").click()
    frame.get_by_text("agreed to the goal").wait_for()
    _check_page(lms, live_server)


def test_a_coordinator_pairs_an_enrolled_mentee_and_mentor_who_then_share_a_goal(
    lms: Any, live_server: LiveServer
) -> None:
    """The issue's walk: both enroll, a coordinator pairs them (and makes a peer circle),
    both see it and a goal."""
    frame = _launch(lms, "faculty", "Create a program")
    frame.get_by_label("Program name").fill("Wellbeing mentoring")
    frame.get_by_label("Wellbeing").check()
    frame.get_by_role("button", name="Create program").click()
    frame.get_by_role("link", name="Enroll in Wellbeing mentoring").click()
    frame.locator("#tracks_offered").get_by_label("Wellbeing").check()
    frame.get_by_label("A short introduction for your mentees").fill("Peer support lead.")
    frame.get_by_label("Career stage").select_option("senior")
    frame.get_by_role("button", name="Enroll").click()
    frame.get_by_text("You are enrolled as a mentor.").wait_for()

    frame = _launch(lms, "student", "You have not enrolled in this program yet.")
    frame.get_by_role("link", name="Enroll in Wellbeing mentoring").click()
    frame.locator("#tracks_wanted").get_by_label("Wellbeing").check()
    frame.get_by_label("What do you hope to get from mentoring?").fill("Balance on rotations.")
    frame.get_by_label("Career stage").select_option("clinical_student")
    frame.get_by_role("button", name="Enroll").click()
    frame.get_by_text("You are enrolled as a mentee.").wait_for()

    # The coordinator pairs them in the workspace.
    frame = _launch(lms, "coordinator", "Mentorship programs")
    frame.get_by_role("link", name="Wellbeing mentoring").click()
    frame.get_by_role("link", name="open the coordinator workspace").click()
    frame.get_by_role("link", name="Pair Sam Student with a mentor").click()
    frame.get_by_role("heading", name="Pair Sam Student with a mentor").wait_for()
    _check_page(lms, live_server)
    mentor = frame.get_by_label("Mentor", exact=True)
    mentor.select_option(
        mentor.locator("option", has_text="Dr Fran Faculty").get_attribute("value") or ""
    )
    frame.get_by_role("button", name="Pair them").click()
    frame.get_by_role("status").wait_for()
    _check_page(lms, live_server)
    # ...and puts the mentee in a peer circle the mentor facilitates.
    nav = frame.get_by_role("navigation", name="Coordinator")
    nav.get_by_role("link", name="Peer circles").click()
    frame.get_by_label("Name", exact=True).fill("Wednesday circle")
    frame.get_by_label("Facilitator (optional)").select_option(label="Dr Fran Faculty")
    frame.get_by_role("button", name="Create circle").click()
    frame.get_by_label("Add mentees").select_option(label="Sam Student")
    frame.get_by_role("button", name="Add to circle").click()
    frame.get_by_role("button", name="Remove Sam Student").wait_for()

    # Both see the relationship (and the mentee the circle, with its members); the mentee
    # proposes a goal and the mentor agrees.
    frame = _launch(lms, "student", "Dr Fran Faculty")
    frame.get_by_role("heading", name="Wednesday circle").wait_for()
    _check_page(lms, live_server)
    frame.get_by_role("link", name="Write a goal").click()
    frame.get_by_label("What do you want to achieve?").fill("Protect one evening a week")
    frame.get_by_label("How will you know you got there?").fill("Four evenings in a month")
    frame.get_by_label("By when?").fill("2099-06-01")
    frame.get_by_role("button", name="Propose this goal").click()
    frame.get_by_role("heading", name="Protect one evening a week").wait_for()

    frame = _launch(lms, "faculty", "Mentorship programs")
    frame.get_by_role("link", name="Wellbeing mentoring").click()
    frame.get_by_role("link", name="Sam Student", exact=True).first.wait_for()
    frame.get_by_role("link", name="Protect one evening a week", exact=True).first.click()
    frame.get_by_role("button", name="Agree to this goal").click()
    frame.get_by_text("agreed to the goal").wait_for()
    _check_page(lms, live_server)
