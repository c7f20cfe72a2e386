"""The dashboard page and its CSVs: what coordinators see, and who may see it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import pytest

from plugin.lti.roles import CourseRole
from plugin.models import Participant, Program, User
from tests.insights.conftest import LEARNER, Scenario, Tenant
from tests.programs.conftest import Person


def _coordinator(scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]) -> Person:
    return as_person(tenant, scenario.coordinator, CourseRole.INSTRUCTOR)


def test_the_dashboard_draws_each_chart_with_its_table_and_csv(
    scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    page = _coordinator(scenario, tenant, as_person).get(
        f"/programs/{scenario.program.id}/coordinator/dashboard"
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    svgs = re.findall(r"<svg[^>]*>.*?</svg>", html, re.S)
    assert len(svgs) == 6  # funnel, meetings, goals, feedback, health, automation
    for svg in svgs:
        assert 'role="img"' in svg
        assert "<title id=" in svg
        assert "<desc id=" in svg
        assert "style=" not in svg  # the CSP allows no inline styles
    funnel_svg = svgs[0]
    assert "Enrolled as mentees: 4" in funnel_svg  # values in words in the description
    assert "(month so far)</text>" in svgs[1]
    assert html.count("<caption>") >= 5
    compact = re.sub(r">\s+<", "><", html)
    assert '<th scope="row">Matched with a mentor</th><td>2</td><td>50</td>' in compact
    assert "Feedback over time" in html
    assert "Relationships by health" in html
    assert "Plant-a-goal-title" not in html  # goals as numbers only
    for key in ("funnel", "key-figures", "meetings", "goals", "feedback", "health", "automation"):
        assert f"/dashboard/{key}.csv" in html
    assert "Not available yet" not in html
    assert "/coordinator/attention" in html


def test_a_dashboard_csv_has_the_numbers_of_its_table(
    scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    coordinator = _coordinator(scenario, tenant, as_person)
    response = coordinator.get(f"/programs/{scenario.program.id}/coordinator/dashboard/funnel.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Stage", "People", "Share of the stage before (%)"]
    assert rows[1:] == [
        ["In the course (learners)", "6", "no data"],
        ["Enrolled as mentees", "4", "66.7"],
        ["Matched with a mentor", "2", "50"],
        ["Met a mentor at least once", "2", "100"],
    ]
    missing = coordinator.get(f"/programs/{scenario.program.id}/coordinator/dashboard/nope.csv")
    assert missing.status_code == 404


def test_the_workspace_links_to_the_dashboard(
    scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    html = (
        _coordinator(scenario, tenant, as_person)
        .get(f"/programs/{scenario.program.id}/coordinator/")
        .get_data(as_text=True)
    )
    assert f"/programs/{scenario.program.id}/coordinator/dashboard?lt=" in html


INSIGHT_ROUTES = [
    "/dashboard",
    "/dashboard/funnel.csv",
    "/followups",
    "/export/meetings.csv",
]


@pytest.mark.parametrize("path", INSIGHT_ROUTES)
def test_mentors_mentees_and_other_courses_are_refused(
    path: str,
    scenario: Scenario,
    tenant: Tenant,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    url = f"/programs/{scenario.program.id}/coordinator{path}"
    mentee: Participant = scenario.mentees["L1"]
    assert mentee.user is not None
    assert scenario.mentor.user is not None
    assert as_person(tenant, mentee.user, CourseRole.LEARNER).get(url).status_code == 403
    assert as_person(tenant, scenario.mentor.user, CourseRole.LEARNER).get(url).status_code == 403
    # A coordinator of another program in the same course (made one there, a learner here).
    other_program = make_program(tenant, title="Other")
    peer = make_user(tenant, LEARNER)
    enroll(other_program, peer, coordinator=True)
    assert as_person(tenant, peer, CourseRole.LEARNER).get(url).status_code == 403
    other_url = f"/programs/{other_program.id}/coordinator{path}"
    assert as_person(tenant, peer, CourseRole.LEARNER).get(other_url).status_code == 200
    # An instructor of another course: the program is not in their course.
    elsewhere = make_tenant()
    stranger = make_user(elsewhere, LEARNER)
    make_program(elsewhere)
    assert as_person(elsewhere, stranger, CourseRole.INSTRUCTOR).get(url).status_code == 404
    # No launch at all.
    assert as_person(tenant, scenario.coordinator).client.get(url).status_code == 401
