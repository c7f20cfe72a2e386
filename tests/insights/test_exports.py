"""CSV exports of the coordinator tables: their rows, the formula guard, and access."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.lti.roles import CourseRole
from plugin.models import FollowUp, Meeting
from tests.insights.conftest import Scenario, Tenant
from tests.programs.conftest import Person


def _download(person: Person, scenario: Scenario, name: str) -> list[dict[str, str]]:
    response = person.get(f"/programs/{scenario.program.id}/coordinator/export/{name}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"program-{scenario.program.id}-{name}.csv" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def coordinator(scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]) -> Person:
    return as_person(tenant, scenario.coordinator, CourseRole.INSTRUCTOR)


def test_goals_csv_has_the_numbers_of_the_goals_page(
    scenario: Scenario, coordinator: Person
) -> None:
    rows = _download(coordinator, scenario, "goals")
    by_status = {r["value"]: r["goals"] for r in rows if r["group"] == "status"}
    assert by_status == {"proposed": "1", "agreed": "2", "achieved": "1", "dropped": "0"}
    tracks = [r for r in rows if r["group"] == "track"]
    assert tracks == [
        {"group": "track", "value": "research", "goals": "4", "average_progress": "47.5"}
    ]
    assert "Plant-a-goal-title" not in str(rows)


def test_meetings_csv_lists_the_programs_meetings_with_both_sides(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    rows = _download(coordinator, scenario, "meetings")
    assert len(rows) == 8  # A: 4, B: 3, C: 1; not the other program's two
    first = rows[0]
    assert first["relationship_id"] == str(scenario.relationships["B"].id)
    assert (first["mentee"], first["mentor"]) == ("Learner 2", "Max Mentor")
    assert first["starts_at_utc"] == "2026-02-01T12:00:00"
    assert [r["status"] for r in rows].count("held") == 4


def test_followups_csv_shows_state_reason_and_the_last_attempt(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    rows = _download(coordinator, scenario, "followups")
    assert [r["state"] for r in rows] == [
        "sent",
        "sent",
        "sent",
        "failed",
        "planned",
        "skipped",
    ]
    assert rows[5]["reason"] == "muted by the recipient"
    assert rows[0]["recipient"] == "Learner 1"


def test_rounds_csv_lists_every_proposal_with_names(
    scenario: Scenario, coordinator: Person
) -> None:
    rows = _download(coordinator, scenario, "rounds")
    assert [(r["proposal_state"], r["mentee"], r["mentor"]) for r in rows] == [
        ("published", "Learner 1", "Max Mentor"),
        ("rejected", "Learner 1", "Max Mentor"),
    ]
    assert rows[0]["relationship_id"] == str(scenario.relationships["A"].id)


def test_audit_csv_and_formula_injection(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    mentee = scenario.mentees["L1"]
    assert mentee.user is not None
    mentee.user.name = '=HYPERLINK("http://evil.example","x")'
    scenario.coordinator.name = "@SUM(A1)"
    meeting = session.query(Meeting).filter_by(program_id=scenario.program.id).first()
    assert meeting is not None
    meeting.title = "+cmd|' /C calc'!A0"
    followup = session.query(FollowUp).filter_by(program_id=scenario.program.id).first()
    assert followup is not None
    followup.reason = "-2+3"
    record_audit(
        session,
        course_id=scenario.program.course_id,
        program_id=scenario.program.id,
        action="program.settings_changed",
        actor_user_id=scenario.coordinator.id,
        before={"title": "Old"},
        after={"title": "=1+1"},
    )
    session.flush()
    audit = _download(coordinator, scenario, "audit")
    assert audit[-1]["actor"] == "'@SUM(A1)"
    assert audit[-1]["after"] == '{"title": "=1+1"}'  # JSON starts with {: safe as it is
    meetings = _download(coordinator, scenario, "meetings")
    assert "'+cmd|' /C calc'!A0" in [r["title"] for r in meetings]
    names = {r["mentee"] for r in meetings}
    assert '\'=HYPERLINK("http://evil.example","x")' in names
    followups = _download(coordinator, scenario, "followups")
    assert followups[0]["recipient"].startswith("'=HYPERLINK")
    assert "'-2+3" in [r["reason"] for r in followups]
    rounds = _download(coordinator, scenario, "rounds")
    assert rounds[0]["mentee"].startswith("'=")
    for rows in (audit, meetings, followups, rounds):
        for row in rows:
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@")), value


@pytest.mark.parametrize("name", ["goals", "audit", "rounds", "meetings", "followups"])
def test_exports_are_for_this_programs_coordinators_only(
    name: str, scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    url = f"/programs/{scenario.program.id}/coordinator/export/{name}.csv"
    mentee_user = scenario.mentees["L1"].user
    mentor_user = scenario.mentor.user
    assert mentee_user is not None
    assert mentor_user is not None
    assert as_person(tenant, mentee_user, CourseRole.LEARNER).get(url).status_code == 403
    assert as_person(tenant, mentor_user, CourseRole.LEARNER).get(url).status_code == 403


def test_an_unknown_export_is_not_found(scenario: Scenario, coordinator: Person) -> None:
    url = f"/programs/{scenario.program.id}/coordinator/export/secrets.csv"
    assert coordinator.get(url).status_code == 404
