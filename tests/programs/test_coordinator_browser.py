"""A coordinator pairs a mentee with a mentor in a real browser, then opens the workspace's
other pages, the course's pages and an invitation, some with errors shown: each passes axe.
(The dashboard, attention and follow-up pages are walked in tests/insights.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from plugin.db import get_db
from plugin.models import (
    Circle,
    MatchProposal,
    MatchRound,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    RoundStatus,
    Track,
)
from plugin.programs.enrollment import request_deletion
from tests.browser_world import CAST, LEARNER, seed_course
from tests.conftest import LiveServer, accessibility_violations

pytestmark = pytest.mark.browser


@dataclass
class Seeded:
    program_id: int
    course_id: int
    token: str  #: the coordinator's
    mentee_token: str  #: Mia's, who is in two programs of the course


def _seed(live_server: LiveServer) -> Seeded:
    """A course with a program (mentees, a mentor, a circle, a deletion request) and a
    second program Mia is also in; the coordinator's token and Mia's."""
    with get_db(live_server.app).session() as session:
        seeded = seed_course(
            session,
            {**CAST, "Ana": LEARNER, "Dee": LEARNER},
            tracks=["research", "career"],
        )
        peers = Program(course=seeded.tenant.course, title="Peer support", tracks=["wellbeing"])
        session.add(peers)
        seeded.enroll("Mia Mentee", mentee=True, tracks_wanted=["research"])
        mentor = seeded.enroll("Max Mentor", mentor=True, tracks_offered=["research", "career"])
        ana = seeded.enroll("Ana", mentee=True, tracks_wanted=["career"])
        dee = seeded.enroll("Dee", mentee=True, tracks_wanted=["career"])
        seeded.enroll("Mia Mentee", mentee=True, program=peers, tracks_wanted=["wellbeing"])
        session.add(
            Circle(program=seeded.program, name="Wednesday circle", facilitator_id=mentor.id)
        )
        _ready_round(session, seeded.program, mentee=ana, mentor=mentor, unmatched=dee)
        request_deletion(session, dee, actor_user_id=seeded.people["Dee"].id)
        session.commit()
        return Seeded(
            program_id=seeded.program.id,
            course_id=seeded.tenant.course.id,
            token=seeded.token(live_server.app, "Casey Coordinator"),
            mentee_token=seeded.token(live_server.app, "Mia Mentee"),
        )


def _ready_round(
    session: Session,
    program: Program,
    *,
    mentee: Participant,
    mentor: Participant,
    unmatched: Participant,
) -> None:
    """A round as the engine leaves it (one pair, one unmatched mentee), without running it."""
    round_ = MatchRound(
        program=program,
        status=RoundStatus.READY,
        total_score=0.8,
        certificate={"certified": True},
        unmatched=[{"mentee_id": unmatched.id, "track": "career", "detail": "No free place."}],
    )
    round_.proposals.append(
        MatchProposal(
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.CAREER,
            score=0.8,
            reasons=["Shares your interest in cardiology"],
            contributions=[{"criterion": "interests", "contribution": 0.5}],
        )
    )
    session.add(round_)


def test_a_coordinator_pairs_a_mentee_with_a_mentor(browser: Any, live_server: LiveServer) -> None:
    seeded = _seed(live_server)
    page = browser.new_page()
    page.goto(live_server.url(f"/programs/{seeded.program_id}/?lt={seeded.token}"))
    page.get_by_role("link", name="open the coordinator workspace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    expect(page.get_by_role("row", name="Nora Notyet").get_by_text("Not enrolled")).to_be_visible()
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="Pair Mia Mentee with a mentor").click()
    page.get_by_role("heading", name="Pair Mia Mentee with a mentor").wait_for()
    assert accessibility_violations(page) == []
    page.get_by_label("Mentor", exact=True).select_option(label="Max Mentor — 2 free on research")
    page.get_by_role("button", name="Pair them").click()

    page.get_by_role("status").wait_for()
    expect(page.get_by_role("status")).to_contain_text("The mentee is paired")
    row = page.get_by_role("row", name="Select Mia Mentee and Max Mentor")
    expect(row.get_by_text("Active")).to_be_visible()
    assert accessibility_violations(page) == []  # the relationships list

    page.get_by_role("link", name="History of Mia Mentee and Max Mentor").click()
    page.get_by_role("heading", name="Mia Mentee and Max Mentor").wait_for()
    assert accessibility_violations(page) == []
    _every_coordinator_page_passes_axe(page)
    _course_pages_pass_axe(page, live_server, seeded)
    page.close()

    with get_db(live_server.app).session() as session:
        rel = session.query(Relationship).one()
        assert rel.status == RelationshipStatus.ACTIVE


def _open(page: Any, name: str) -> None:
    link = page.get_by_role("navigation", name="Coordinator").get_by_role("link", name=name)
    link.click()
    # The new page marks its own menu entry: then it is the page axe reads, not the last.
    expect(link).to_have_attribute("aria-current", "page")
    page.wait_for_load_state()


def _every_coordinator_page_passes_axe(page: Any) -> None:
    """Each page of the coordinator menu, and the pages behind them, with errors shown."""
    for name in ("Goals", "Deletion requests", "Audit log"):
        _open(page, name)
        assert accessibility_violations(page) == [], name
        if name == "Deletion requests":  # with a request waiting, so with its form
            expect(page.get_by_role("checkbox", name="Erase Dee")).to_be_visible()
    _open(page, "Settings")
    page.get_by_label("Program name").fill("")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_role("alert").wait_for()
    assert accessibility_violations(page) == [], "settings with errors"

    _open(page, "Match rounds")
    assert accessibility_violations(page) == [], "match rounds"
    page.get_by_role("link", name=re.compile(r"^Round \d+$")).click()
    page.get_by_role("table", name="Proposed pairs, by track, best first").wait_for()
    assert accessibility_violations(page) == [], "a match round"

    _open(page, "Peer circles")
    assert accessibility_violations(page) == [], "peer circles"
    page.get_by_role("link", name="Wednesday circle").click()
    page.get_by_role("heading", name="Wednesday circle").wait_for()
    assert accessibility_violations(page) == [], "a circle"

    _open(page, "Invite mentors")
    csv = page.get_by_label("Or paste the CSV here")
    csv.fill("name,email,tracks,capacity\nAda Alumna,not-an-email,research,2\n")
    page.get_by_role("button", name="Import and create invitations").click()
    page.get_by_role("table", name="Problems found").wait_for()
    assert accessibility_violations(page) == [], "import with errors"
    csv.fill("name,email,tracks,capacity\nAda Alumna,ada@alumni.example.org,research,2\n")
    page.get_by_role("button", name="Import and create invitations").click()
    link = page.get_by_label("Invitation link for Ada Alumna").input_value()
    assert accessibility_violations(page) == [], "import results"
    _open(page, "People")
    page.get_by_role("link", name="Invitation link for Ada Alumna").click()
    page.get_by_role("heading", name="Invitation link for Ada Alumna").wait_for()
    assert accessibility_violations(page) == [], "invitation link"

    # The invited mentor's page (no launch), with the errors of an empty name.
    page.goto(link)
    page.get_by_label("Your name").fill("")
    page.get_by_role("button", name="Accept the invitation").click()
    page.get_by_text("Enter your name as mentees should see it.").first.wait_for()
    assert accessibility_violations(page) == [], "invitation with errors"


def _course_pages_pass_axe(page: Any, live_server: LiveServer, seeded: Seeded) -> None:
    """The course's program list with the create form (with errors), and the privacy list."""
    page.goto(live_server.url(f"/courses/{seeded.course_id}/?lt={seeded.token}"))
    page.get_by_role("button", name="Create program").click()
    page.get_by_text("Enter a name for the program.").wait_for()
    assert accessibility_violations(page) == [], "course home with errors"
    page.goto(live_server.url(f"/courses/{seeded.course_id}/privacy?lt={seeded.mentee_token}"))
    page.get_by_role("link", name="Peer support").wait_for()
    assert accessibility_violations(page) == [], "course privacy"
