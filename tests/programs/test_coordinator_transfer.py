"""CSV exports (no private data, no formulas), the all-or-nothing mentor import, and the
single-use, expiring invitation links it hands out."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import AuditEvent, Participant, ParticipantStatus, Program, User
from plugin.programs.invitations import (
    INVITATION_TTL,
    InvitationInvalid,
    invitation_token,
    read_invitation,
)
from plugin.programs.transfer import ImportRejected, import_external_mentors, safe_cell
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error


@pytest.fixture
def program(tenant: Tenant, make_program: Callable[..., Program]) -> Program:
    return make_program(tenant, tracks=["research", "career"])


@pytest.fixture
def actor_id(tenant: Tenant, make_user: Callable[..., User]) -> int:
    """A coordinator's user id, for calling the import service directly."""
    return make_user(tenant, INSTRUCTOR).id


@pytest.fixture
def coordinator(
    tenant: Tenant, make_user: Callable[..., User], as_person: Callable[..., Person]
) -> Person:
    return as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Ana =1", "Ana =1"),
        (None, ""),
        (3, "3"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_made_text(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_participant_export_has_no_private_preferences_and_no_formulas(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    coordinator: Person,
) -> None:
    evil = make_user(tenant, LEARNER, name='=HYPERLINK("http://evil.example","x")')
    enroll(program, evil, mentee=True, private_preferences='{"shared_background": "first-gen"}')
    response = coordinator.get(f"/programs/{program.id}/coordinator/export/participants.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert "first-gen" not in body
    assert "private" not in body.splitlines()[0]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["name"].startswith("'=HYPERLINK")
    assert rows[0]["mentee"] == "yes"


def test_relationship_export_lists_pairs(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    coordinator: Person,
) -> None:
    mentee = enroll(program, make_user(tenant, LEARNER, name="-Mia"), mentee=True)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR, name="Max"), mentor=True)
    coordinator.post(
        f"/programs/{program.id}/coordinator/people/{mentee.id}/pair",
        {"mentor_id": str(mentor.id), "track": "research"},
    )
    body = coordinator.get(f"/programs/{program.id}/coordinator/export/relationships.csv").get_data(
        as_text=True
    )
    (row,) = csv.DictReader(io.StringIO(body))
    assert (row["mentee"], row["mentor"], row["track"], row["status"]) == (
        "'-Mia",
        "Max",
        "research",
        "active",
    )


GOOD = "name,email,tracks,capacity\nAda Alumna,ada@alumni.example.org,research;career,2\n"


def test_an_import_creates_invited_mentors_and_shows_their_links(
    session: Session, program: Program, coordinator: Person
) -> None:
    csv_text = GOOD + "Bo Community,BO@Clinic.example.org,career,1\n"
    response = coordinator.post(
        f"/programs/{program.id}/coordinator/import", {"csv_text": csv_text}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    links = re.findall(r'value="(http://[^"]+/invitations/[^"]+)"', html)
    assert len(links) == 2
    invited = session.scalars(select(Participant).order_by(Participant.id)).all()
    assert [(p.invite_email, p.status, p.user_id, p.is_mentor) for p in invited] == [
        ("ada@alumni.example.org", ParticipantStatus.INVITED, None, True),
        ("bo@clinic.example.org", ParticipantStatus.INVITED, None, True),
    ]
    assert invited[0].profile is not None
    assert invited[0].profile.tracks_offered == ["research", "career"]
    assert invited[0].profile.capacity_total == 2
    assert session.scalars(select(AuditEvent.action)).all() == ["mentors.imported"]


def test_an_uploaded_file_works_too(
    session: Session, program: Program, coordinator: Person
) -> None:
    response = coordinator.post(
        f"/programs/{program.id}/coordinator/import",
        {"file": (io.BytesIO(("\ufeff" + GOOD).encode()), "mentors.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert len(session.scalars(select(Participant)).all()) == 1


def test_one_bad_row_imports_nothing_and_every_problem_is_reported_by_line(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
    coordinator: Person,
) -> None:
    make_user(tenant, LEARNER, email="student@example.edu")
    csv_text = (
        GOOD
        + ",nobody@example.org,research,1\n"  # line 3: no name
        + "Cy,not-an-email,research,1\n"  # line 4
        + "Di,di@example.org,astrology,1\n"  # line 5
        + "Ed,ed@example.org,career,0\n"  # line 6
        + "Fay,ada@alumni.example.org,career,1\n"  # line 7: same e-mail as line 2
        + "Gil,student@example.edu,career,1\n"  # line 8: already in the course
    )
    response = coordinator.post(
        f"/programs/{program.id}/coordinator/import", {"csv_text": csv_text}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for line, text in [
        (3, "The name is empty"),
        (4, "The e-mail address is not valid"),
        (5, "unknown track astrology"),
        (6, "capacity must be a whole number from 1 to 20"),
        (7, "already on line 2"),
        (8, "in the course"),
    ]:
        assert re.search(rf"<td>{line}</td><td>[^<]*{text}", html, re.IGNORECASE), (line, text)
    assert session.scalars(select(Participant)).all() == []
    assert session.scalars(select(AuditEvent)).all() == []


def test_a_file_without_the_header_is_refused(
    actor_id: int, session: Session, program: Program
) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_external_mentors(
            session, program, "Ada,ada@x.org,research,2\n", actor_user_id=actor_id
        )
    assert caught.value.errors[0].line == 1


def test_an_invited_mentor_accepts_once_and_lands_in_the_program(
    actor_id: int, app: Flask, session: Session, program: Program, coordinator: Person
) -> None:
    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    token = invitation_token(app.config["SECRET_KEY"], mentor)
    client = app.test_client()
    page = client.get(f"/invitations/{token}")
    assert page.status_code == 200
    assert "Ada Alumna" in page.get_data(as_text=True)
    session.refresh(mentor)
    assert mentor.status == ParticipantStatus.INVITED  # looking is not accepting
    response = client.post(f"/invitations/{token}", data={"name": "Ada A. Alumna", "bio": "Hi"})
    assert response.status_code == 303
    home = client.get(response.headers["Location"])
    assert "You are enrolled as a mentor." in home.get_data(as_text=True)
    session.refresh(mentor)
    assert mentor.status.value == "active"
    assert mentor.user is not None
    assert mentor.user.email == "ada@alumni.example.org"
    assert mentor.profile is not None
    assert mentor.profile.bio == "Hi"
    again = client.post(f"/invitations/{token}", data={"name": "Mallory"})
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)
    assert client.get(f"/invitations/{token}").status_code == 410


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"name": "  "}, "name", "Enter your name as mentees should see it."),
        ({"name": "n" * 256}, "name", "Use at most 255 characters."),
        ({"bio": "b" * 2001}, "bio", "Use at most 2000 characters."),
    ],
)
def test_bad_invitation_answers_are_refused_at_the_field_and_change_nothing(
    actor_id: int,
    app: Flask,
    session: Session,
    program: Program,
    change: dict[str, str],
    field: str,
    says: str,
) -> None:
    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    token = invitation_token(app.config["SECRET_KEY"], mentor)
    before = database_snapshot(session)
    response = app.test_client().post(
        f"/invitations/{token}", data={"name": "Ada Alumna", "bio": "Hi", **change}
    )
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    assert app.test_client().get(f"/invitations/{token}").status_code == 200  # still usable


def test_an_invitation_from_a_launch_binds_to_the_launched_user(
    actor_id: int,
    app: Flask,
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
) -> None:
    from tests.programs.conftest import token_for

    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    token = invitation_token(app.config["SECRET_KEY"], mentor)
    alum = make_user(tenant, INSTRUCTOR)
    lt = token_for(tenant, alum, CourseRole.INSTRUCTOR)
    response = app.test_client().post(f"/invitations/{token}", data={"name": "Ada", "lt": lt})
    assert response.status_code == 303
    session.refresh(mentor)
    assert mentor.user_id == alum.id


def test_expired_altered_or_foreign_invitations_are_refused(
    actor_id: int, app: Flask, session: Session, program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    secret = app.config["SECRET_KEY"]
    token = invitation_token(secret, mentor)
    with pytest.raises(InvitationInvalid, match="not valid"):
        read_invitation(session, secret, token[:-2] + "xx")
    with pytest.raises(InvitationInvalid, match="not valid"):
        read_invitation(session, "another-secret", token)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + INVITATION_TTL + 60)
    with pytest.raises(InvitationInvalid, match="expired"):
        read_invitation(session, secret, token)
    monkeypatch.undo()
    mentor.invite_email = "changed@example.org"  # a corrected address voids older links
    session.flush()
    with pytest.raises(InvitationInvalid, match="no longer valid"):
        read_invitation(session, secret, token)


def test_the_coordinator_can_get_a_fresh_link_for_an_invited_mentor(
    actor_id: int, session: Session, program: Program, coordinator: Person
) -> None:
    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    people = coordinator.get(f"/programs/{program.id}/coordinator/").get_data(as_text=True)
    assert "Invitation link" in people
    page = coordinator.get(f"/programs/{program.id}/coordinator/people/{mentor.id}/invitation")
    assert "/invitations/" in page.get_data(as_text=True)


def test_exports_hold_only_this_programs_people(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_program: Callable[..., Program],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    coordinator: Person,
) -> None:
    other = make_program(tenant, title="Other")
    enroll(program, make_user(tenant, LEARNER, name="Own Person"), mentee=True)
    enroll(other, make_user(tenant, LEARNER, name="Other Person"), mentee=True)
    body = coordinator.get(f"/programs/{program.id}/coordinator/export/participants.csv").get_data(
        as_text=True
    )
    assert "Own Person" in body
    assert "Other Person" not in body


def test_a_second_acceptance_of_the_same_invitation_is_refused(
    app: Flask, session: Session, program: Program, actor_id: int
) -> None:
    from plugin.programs.invitations import accept_invitation

    import_external_mentors(session, program, GOOD, actor_user_id=actor_id)
    mentor = session.scalars(select(Participant)).one()
    stale = Participant(id=mentor.id, program_id=program.id, invite_email=mentor.invite_email)
    accept_invitation(session, mentor, name="Ada", bio="", launched=None)
    # A request that read the row before the first one accepted it loses at the UPDATE.
    with pytest.raises(InvitationInvalid, match="already been used"):
        accept_invitation(session, stale, name="Eve", bio="", launched=None)
    session.refresh(mentor)
    assert mentor.invite_name == "Ada"
