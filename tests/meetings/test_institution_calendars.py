"""Institution calendars: a Google service account or a Microsoft app writes meetings to
everyone in a domain, through the real client libraries against the loopback fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from plugin.cli import cli as preceptor
from plugin.meetings.institution import (
    InstitutionCalendarError,
    add_institution_calendar,
    connect_through_institution,
    list_institution_calendars,
    parse_service_account,
    remove_institution_calendar,
)
from plugin.models import (
    ICS_PROVIDER,
    CalendarConnection,
    InstitutionCalendar,
    Participant,
    Program,
    SyncIntent,
    SyncState,
    User,
)
from tests.calendars.conftest import _google_server, _graph_server, google_fake, graph_fake
from tests.meetings.conftest import Pair
from tests.meetings.test_calendar_bridge import Calendars, calendars, schedule
from tests.meetings.test_sync import fresh
from tests.programs.conftest import LEARNER, Tenant

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]
CLIENT_EMAIL = "preceptor-sync@school-project.iam.gserviceaccount.com"


@pytest.fixture
def service_account(calendars: Calendars) -> dict[str, Any]:
    """A service account key the Google fake trusts for domain-wide delegation."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    calendars.google.trust_service_account(
        CLIENT_EMAIL,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return {
        "type": "service_account",
        "project_id": "school-project",
        "private_key_id": "k1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": calendars.settings.google_token_uri,
    }


def _connections(session: Session) -> dict[int | None, CalendarConnection]:
    return {c.participant_id: c for c in fresh(session, CalendarConnection) if c.revoked_at is None}


def test_a_google_service_account_puts_meetings_in_everyones_calendar_without_a_sign_in(
    session: Session,
    pair: Pair,
    calendars: Calendars,
    service_account: dict[str, Any],
    drain_jobs: Drain,
) -> None:
    institution, connected = add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="Example.EDU",
        service_account=service_account,
    )
    session.commit()
    assert institution.domain == "example.edu"
    assert connected == 3  # mentee, mentor and coordinator of the program
    live = _connections(session)
    assert {live[p.id].institution_id for p in (pair.mentee, pair.mentor)} == {institution.id}
    # The key is encrypted at rest, in the institution row and in each connection.
    raw = session.execute(text("SELECT credentials FROM institution_calendar")).scalar_one()
    assert "PRIVATE KEY" not in raw
    assert CLIENT_EMAIL not in raw
    stored = session.execute(text("SELECT credentials FROM calendar_connection")).scalars().all()
    assert stored
    assert not any("PRIVATE KEY" in value for value in stored)

    meeting = schedule(session, pair)
    assert drain_jobs() == 2
    for user in (pair.mentee_user, pair.mentor_user):
        (event,) = calendars.google_events(user.email)
        assert event["summary"] == meeting.title
    assert calendars.google.counts["token"] >= 1  # JWT-bearer grants, not personal tokens
    assert {i.state for i in fresh(session, SyncIntent)} == {SyncState.DONE}


def test_a_microsoft_app_writes_to_each_mailbox_app_only(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    _, connected = add_institution_calendar(
        session, platform=pair.tenant.platform, provider="microsoft", domain="example.edu"
    )
    session.commit()
    assert connected == 3
    meeting = schedule(session, pair)
    assert drain_jobs() == 2
    for user in (pair.mentee_user, pair.mentor_user):
        (event,) = calendars.outlook_events(user.email)
        assert event["subject"] == meeting.title


def test_only_the_domain_and_platform_are_covered_and_a_persons_own_calendar_wins(
    session: Session,
    pair: Pair,
    calendars: Calendars,
    service_account: dict[str, Any],
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    own = calendars.connect_google(pair.mentor, pair.mentor_user)
    outsider = enroll(
        pair.program, make_user(pair.tenant, LEARNER, email="guest@hospital.org"), mentee=True
    )
    elsewhere = make_tenant()
    other_program_person = enroll(
        _program(session, elsewhere),
        make_user(elsewhere, LEARNER, email="student@example.edu"),
        mentee=True,
    )
    _, connected = add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="example.edu",
        service_account=service_account,
    )
    session.commit()
    assert connected == 2  # the mentee and the coordinator
    live = _connections(session)
    assert live[pair.mentor.id].id == own.id
    assert live[pair.mentor.id].institution_id is None
    assert outsider.id not in live
    assert other_program_person.id not in live


def _program(session: Session, tenant: Tenant) -> Program:
    program = Program(course_id=tenant.course.id, title="Other school")
    session.add(program)
    session.flush()
    return program


def test_someone_who_enrolls_later_is_connected_when_they_join(
    app: Flask,
    session: Session,
    pair: Pair,
    calendars: Calendars,
    service_account: dict[str, Any],
    make_user: Callable[..., User],
    as_person: Callable[..., Any],
) -> None:
    from plugin.lti.roles import CourseRole
    from tests.programs.test_enrollment import mentee_form

    add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="example.edu",
        service_account=service_account,
    )
    newcomer = make_user(pair.tenant, LEARNER, email="new.student@example.edu")
    session.commit()
    person = as_person(pair.tenant, newcomer, CourseRole.LEARNER)
    assert person.post(f"/programs/{pair.program.id}/profile", mentee_form()).status_code == 303
    participant = session.scalars(
        select(Participant).where(Participant.user_id == newcomer.id)
    ).one()
    connection = _connections(session)[participant.id]
    assert connection.institution_id is not None
    assert connection.account == "new.student@example.edu"
    assert connect_through_institution(session, participant) is None  # already connected


def test_removing_it_revokes_its_connections_and_sends_pending_work_to_email(
    session: Session, pair: Pair, calendars: Calendars, service_account: dict[str, Any]
) -> None:
    institution, _ = add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="example.edu",
        service_account=service_account,
    )
    session.commit()
    schedule(session, pair)  # intents pending, not drained
    assert [s.connections for s in list_institution_calendars(session)] == [3]
    assert remove_institution_calendar(session, institution) == 3
    session.commit()
    assert _connections(session) == {}
    pending = [i for i in fresh(session, SyncIntent) if i.state == SyncState.PENDING]
    assert len(pending) == 2
    assert {(i.provider, i.connection_id) for i in pending} == {(ICS_PROVIDER, None)}
    assert session.scalars(select(InstitutionCalendar)).all() == []


def test_a_new_key_for_the_same_domain_replaces_the_old_one_in_place(
    session: Session, pair: Pair, calendars: Calendars, service_account: dict[str, Any]
) -> None:
    first, _ = add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="example.edu",
        service_account=service_account,
    )
    rotated = dict(service_account, private_key_id="k2")
    again, connected = add_institution_calendar(
        session,
        platform=pair.tenant.platform,
        provider="google",
        domain="example.edu",
        service_account=rotated,
    )
    session.commit()
    assert again.id == first.id
    assert connected == 0
    for connection in _connections(session).values():
        assert json.loads(connection.credentials or "")["service_account"]["private_key_id"] == "k2"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider": "caldav", "domain": "example.edu"}, "no institution option"),
        ({"provider": "google", "domain": "not a domain"}, "not an e-mail domain"),
        ({"provider": "google", "domain": "example.edu"}, "needs the service account key"),
        (
            {"provider": "microsoft", "domain": "example.edu", "service_account": {"x": 1}},
            "client credentials from settings",
        ),
    ],
)
def test_bad_configurations_are_refused_and_change_nothing(
    session: Session, pair: Pair, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InstitutionCalendarError, match=message):
        add_institution_calendar(session, platform=pair.tenant.platform, **fields)
    assert session.scalars(select(InstitutionCalendar)).all() == []
    assert session.scalars(select(CalendarConnection)).all() == []


@pytest.mark.parametrize(
    ("text_", "message"),
    [
        ("{not json", "not JSON"),
        ('{"type": "authorized_user"}', "not a Google service account key"),
        ('{"type": "service_account", "client_email": "a@b"}', "lacks private_key, token_uri"),
    ],
)
def test_a_key_file_that_is_not_a_service_account_key_is_refused(text_: str, message: str) -> None:
    with pytest.raises(InstitutionCalendarError, match=message):
        parse_service_account(text_)


def test_admins_manage_institution_calendars_from_the_command_line(
    app: Flask, session: Session, pair: Pair, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "authorized_user", "refresh_token": "x"}))
    issuer = pair.tenant.platform.issuer
    base = ["calendars", "institution"]
    refused = runner.invoke(
        preceptor,
        args=[*base, "add", "--platform", issuer, "--provider", "google", "--domain",
              "example.edu", "--key-file", str(key)],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "not a Google service account key" in refused.output
    added = runner.invoke(
        preceptor,
        args=[*base, "add", "--platform", issuer, "--provider", "microsoft", "--domain",
              "Example.EDU"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "microsoft for example.edu; 3 participants connected now" in added.output
    listed = runner.invoke(preceptor, args=[*base, "list"]).output
    assert "example.edu" in listed
    assert "3 connected" in listed
    number = session.scalars(select(InstitutionCalendar.id)).one()
    assert runner.invoke(preceptor, args=[*base, "remove", str(number + 1), "--yes"]).exit_code == 2
    removed = runner.invoke(preceptor, args=[*base, "remove", str(number), "--yes"])
    assert removed.exit_code == 0, removed.output
    assert "3 connections revoked" in removed.output
    assert "no institution calendars" in runner.invoke(preceptor, args=[*base, "list"]).output
