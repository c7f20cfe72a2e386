"""The research export: pseudonyms only, no personal data or free text, audited."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugin.insights.exports_research import AUDIT_ACTION, Pseudonyms, research_key
from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    Delivery,
    DeliveryOutcome,
    FollowUp,
    Goal,
    GoalUpdate,
    Meeting,
    Participant,
    Program,
    ResearchKey,
    User,
)
from tests.conftest import run_together
from tests.insights.conftest import Scenario, Tenant
from tests.programs.conftest import Person, seed_program

#: Strings planted in every name, address and free-text field; none may leave.
PLANTED = "Zqxplant"


def _plant(session: Session, scenario: Scenario) -> None:
    for participant in session.scalars(
        select(Participant).where(Participant.program_id == scenario.program.id)
    ):
        if participant.user is not None:
            participant.user.name = f"{PLANTED} Name {participant.id}"
            participant.user.given_name = f"{PLANTED}Given"
            participant.user.email = f"{PLANTED.lower()}{participant.id}@example.edu"
            participant.user.sub = f"{PLANTED}-sub-{participant.id}"
        if participant.profile is not None:
            participant.profile.bio = f"{PLANTED} bio"
            participant.profile.goals_text = f"{PLANTED} goals"
            participant.profile.interests_text = f"{PLANTED} interests"
            participant.profile.time_zone = "America/Zqxplant"
    for rel in scenario.relationships.values():
        rel.note = f"{PLANTED} note"
    for meeting in session.scalars(
        select(Meeting).where(Meeting.program_id == scenario.program.id)
    ):
        meeting.title = f"{PLANTED} title"
        meeting.agenda = f"{PLANTED} agenda"
        meeting.location = f"{PLANTED} room"
        meeting.cancel_reason = f"{PLANTED} reason"
    for goal in session.scalars(select(Goal).where(Goal.program_id == scenario.program.id)):
        goal.title = f"{PLANTED} goal"
        goal.measure = f"{PLANTED} measure"
        session.add(GoalUpdate(goal_id=goal.id, kind="checkin", note=f"{PLANTED} check-in"))
    for followup in session.scalars(
        select(FollowUp).where(FollowUp.program_id == scenario.program.id)
    ):
        followup.reason = f"{PLANTED} why"
        session.add(
            Delivery(
                followup_id=followup.id,
                channel="email",
                outcome=DeliveryOutcome.SENT,
                subject=f"{PLANTED} subject",
                message_id=f"<{PLANTED}@example.edu>",
            )
        )
    session.flush()


def _download(person: Person, program: Program) -> dict[str, str]:
    response = person.post(f"/programs/{program.id}/coordinator/export/research.zip")
    try:
        assert response.status_code == 200
        assert response.mimetype == "application/zip"
        body = response.get_data()
    finally:
        response.close()  # as a WSGI server does: closes the spooled file
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


@pytest.fixture
def coordinator(scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]) -> Person:
    return as_person(tenant, scenario.coordinator, CourseRole.INSTRUCTOR)


def test_no_name_email_free_text_or_time_leaves(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    _plant(session, scenario)
    files = _download(coordinator, scenario.program)
    assert set(files) == {
        "README.txt",
        "participants.csv",
        "relationships.csv",
        "meetings.csv",
        "goals.csv",
        "followups.csv",
    }
    secret = session.get(ResearchKey, scenario.program.id)
    assert secret is not None
    for name, text in files.items():
        assert PLANTED.lower() not in text.lower(), name
        assert "@" not in text, name
        assert secret.secret not in text, name
        if name.endswith(".csv"):
            assert not re.search(r"\d{2}:\d{2}", text), name  # days, never times
    participants = list(csv.DictReader(io.StringIO(files["participants.csv"])))
    assert len(participants) == 6  # the mentor, L1-L4 and X; not the other program
    pseudonyms = [row["participant"] for row in participants]
    assert all(re.fullmatch(r"p-[0-9a-f]{16}", p) for p in pseudonyms)
    internal_ids = {str(p.id) for p in scenario.mentees.values()}
    assert not internal_ids & set(pseudonyms)


def test_pseudonyms_are_stable_across_downloads_and_join_up(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    first = _download(coordinator, scenario.program)
    second = _download(coordinator, scenario.program)
    assert first == second
    relationships = list(csv.DictReader(io.StringIO(first["relationships.csv"])))
    people = {row["participant"] for row in csv.DictReader(io.StringIO(first["participants.csv"]))}
    assert {r["mentee"] for r in relationships} <= people
    meetings = list(csv.DictReader(io.StringIO(first["meetings.csv"])))
    assert {m["relationship"] for m in meetings} <= {r["relationship"] for r in relationships}
    closed = [r for r in relationships if r["status"] == "closed"]
    assert [(r["started_on"], r["closed_on"]) for r in closed] == [("2026-02-01", "2026-03-20")]


def test_pseudonyms_differ_between_programs_and_kinds() -> None:
    one, two = Pseudonyms("secret-one"), Pseudonyms("secret-two")
    assert one.of("p", 7) == one.of("p", 7)
    assert one.of("p", 7) != two.of("p", 7)
    assert one.of("p", 7)[2:] != one.of("r", 7)[2:]
    assert one.of("p", None) == ""


def test_each_download_is_audited(
    session: Session, scenario: Scenario, coordinator: Person
) -> None:
    _download(coordinator, scenario.program)
    _download(coordinator, scenario.program)
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.program_id == scenario.program.id, AuditEvent.action == AUDIT_ACTION
        )
    ).all()
    assert [e.actor_user_id for e in events] == [scenario.coordinator.id] * 2


def test_the_research_export_is_for_coordinators_only(
    session: Session, scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    url = f"/programs/{scenario.program.id}/coordinator/export/research.zip"
    mentee_user: User | None = scenario.mentees["L1"].user
    assert mentee_user is not None
    assert as_person(tenant, mentee_user, CourseRole.LEARNER).post(url).status_code == 403
    # A cross-site form post is refused before anything happens.
    coordinator = as_person(tenant, scenario.coordinator, CourseRole.INSTRUCTOR)
    foreign = coordinator.post(url, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == AUDIT_ACTION)) is None
    assert session.get(ResearchKey, scenario.program.id) is None


def test_two_first_exports_at_once_share_one_key(
    app: Flask, committed_sessions: sessionmaker[Session]
) -> None:
    """Real concurrency on PostgreSQL: both requests make the key; one insert wins."""
    with committed_sessions() as setup:
        program, _people = seed_program(setup, people=2)
        setup.commit()
        program_id = program.id
    secrets_seen: list[str] = []

    def first_export() -> None:
        with app.app_context(), committed_sessions() as s:
            prog = s.get(Program, program_id)
            assert prog is not None
            secrets_seen.append(research_key(s, prog).secret)
            s.commit()

    run_together(first_export, first_export)
    with app.app_context(), committed_sessions() as check:
        keys = check.scalars(select(ResearchKey).where(ResearchKey.program_id == program_id))
        stored = [k.secret for k in keys]
    assert len(stored) == 1
    assert secrets_seen == stored * 2
