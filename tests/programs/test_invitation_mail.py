"""Invitation e-mails to external mentors, end to end: the coordinator imports mentors (or
asks for a new link), the e-mail is written with the invitation, a real RQ worker sends it
after the commit to a real SMTP server, the mentor follows the e-mailed link and accepts.
Sent once, never about a rolled-back import, retried while the relay is down, and failed
visibly when the relay refuses it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin import SETTINGS_KEY, get_settings
from plugin.followups.channels import EmailChannel
from plugin.jobs import enqueue
from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    InvitationMail,
    InvitationMailState,
    OutboxJob,
    OutboxState,
    Participant,
    ParticipantStatus,
    Program,
    User,
)
from plugin.programs.invitation_mail import SEND_JOB, send_invitation_mail
from plugin.programs.invitations import accept_invitation
from plugin.programs.transfer import import_external_mentors
from tests.conftest import TEST_SECRET_KEY, CapturedMail, _free_port
from tests.programs.conftest import INSTRUCTOR, Person, Tenant
from tests.programs.forms import database_snapshot

MAIL_FROM = "Preceptor <mentoring@school.example.edu>"
BASE_URL = "http://preceptor.test"
TWO = (
    "name,email,tracks,capacity\n"
    "Ada Alumna,ada@alumni.example.org,research;career,2\n"
    "Bo Community,bo@clinic.example.org,career,1\n"
)

Drain = Callable[..., int]


@pytest.fixture
def program(tenant: Tenant, make_program: Callable[..., Program]) -> Program:
    return make_program(tenant, title="Cardiology mentoring", tracks=["research", "career"])


@pytest.fixture
def coordinator_user(tenant: Tenant, make_user: Callable[..., User]) -> User:
    return make_user(tenant, INSTRUCTOR, name="Casey Coordinator", email="casey@school.edu")


@pytest.fixture
def coordinator(tenant: Tenant, coordinator_user: User, as_person: Callable[..., Person]) -> Person:
    return as_person(tenant, coordinator_user, CourseRole.INSTRUCTOR)


@pytest.fixture
def use_relay(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the app's mail settings (what the job reads) at the relay at ``url``."""

    def use(url: str) -> None:
        settings = get_settings(app).model_copy(
            update={"smtp_url": SecretStr(url), "mail_from": MAIL_FROM, "base_url": BASE_URL}
        )
        monkeypatch.setitem(app.extensions, SETTINGS_KEY, settings)

    return use


@pytest.fixture
def relay(smtp_server: CapturedMail, use_relay: Callable[[str], None]) -> CapturedMail:
    use_relay(smtp_server.url)
    return smtp_server


class Answering:
    """A real SMTP server that answers every message with a fixed reply."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return self.answer


@pytest.fixture
def refusing_relay(use_relay: Callable[[str], None]) -> Iterator[Answering]:
    from aiosmtpd.controller import Controller

    relay, port = Answering("550 5.1.1 mailbox unavailable"), _free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    use_relay(f"smtp://127.0.0.1:{port}")
    yield relay
    controller.stop()


def _mails(session: Session) -> list[InvitationMail]:
    return list(
        session.scalars(
            select(InvitationMail)
            .order_by(InvitationMail.id)
            .execution_options(populate_existing=True)
        )
    )


def _body(message: Message, subtype: str = "plain") -> str:
    part = next(p for p in message.walk() if p.get_content_type() == f"text/{subtype}")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def _link(message: Message) -> str:
    found = re.search(rf"{re.escape(BASE_URL)}(/invitations/\S+)", _body(message))
    assert found, "no invitation link in the e-mail"
    return found[1]


def _import(coordinator: Person, program: Program, csv_text: str = TWO) -> Any:
    return coordinator.post(f"/programs/{program.id}/coordinator/import", {"csv_text": csv_text})


def test_an_import_emails_each_mentor_their_link_once_and_the_link_works(
    app: Flask,
    session: Session,
    program: Program,
    coordinator: Person,
    relay: CapturedMail,
    drain_jobs: Drain,
) -> None:
    page = _import(coordinator, program)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert len(re.findall(r'value="(http://[^"]+/invitations/[^"]+)"', html)) == 2
    assert "e-mailing each mentor their own link" in html
    assert relay.messages == []  # nothing leaves before the worker runs

    assert drain_jobs() == 2
    assert drain_jobs() == 0
    by_to = {str(m["To"]): m for m in relay.messages}
    assert set(by_to) == {
        "Ada Alumna <ada@alumni.example.org>",
        "Bo Community <bo@clinic.example.org>",
    }
    ada = by_to["Ada Alumna <ada@alumni.example.org>"]
    assert ada["Subject"] == "Invitation to mentor in Cardiology mentoring"
    assert ada["From"] == MAIL_FROM
    assert ada["Reply-To"] == "Casey Coordinator <casey@school.edu>"
    assert ada["Auto-Submitted"] == "auto-generated"
    text = _body(ada)
    assert "Casey Coordinator invites you to be a mentor in Cardiology mentoring" in text
    assert "expires in 14 days" in text
    assert _link(ada) in _body(ada, "html")
    mails = _mails(session)
    assert [m.state for m in mails] == [InvitationMailState.SENT] * 2
    assert {m.message_id for m in mails} == {str(m["Message-ID"]) for m in relay.messages}
    outbox = session.scalars(select(OutboxJob).where(OutboxJob.func == SEND_JOB)).all()
    assert [row.state for row in outbox] == [OutboxState.DONE] * 2

    # The job run again (a re-drive, a duplicate) sends nothing more.
    enqueue(SEND_JOB, mails[0].id, job_id="invitation-again")
    assert drain_jobs() == 1
    assert len(relay.messages) == 2
    # Importing the same file again is refused as a whole: no new mentor, no new e-mail.
    assert _import(coordinator, program).status_code == 400
    assert drain_jobs() == 0
    assert len(_mails(session)) == 2

    # Ada follows the e-mailed link and accepts.
    client = app.test_client()
    assert "Ada Alumna" in client.get(_link(ada)).get_data(as_text=True)
    accepted = client.post(_link(ada), data={"name": "Ada Alumna", "bio": ""})
    assert accepted.status_code == 303
    ada_row = session.scalars(
        select(Participant)
        .where(Participant.invite_email == "ada@alumni.example.org")
        .execution_options(populate_existing=True)
    ).one()
    assert ada_row.status == ParticipantStatus.ACTIVE


def test_an_import_that_rolls_back_queues_no_email(
    session: Session,
    program: Program,
    coordinator: Person,
    coordinator_user: User,
    relay: CapturedMail,
    drain_jobs: Drain,
) -> None:
    before = database_snapshot(session)
    bad = TWO + "Cy,not-an-address,research,1\n"
    assert _import(coordinator, program, bad).status_code == 400
    assert database_snapshot(session) == before
    # A caller whose transaction rolls back after a valid import queues nothing either.
    import_external_mentors(session, program, TWO, actor_user_id=coordinator_user.id)
    session.rollback()
    assert drain_jobs() == 0
    assert relay.messages == []
    assert _mails(session) == []


def test_the_coordinator_emails_a_new_link_once_per_click(
    session: Session,
    program: Program,
    coordinator: Person,
    relay: CapturedMail,
    drain_jobs: Drain,
) -> None:
    _import(coordinator, program, TWO.splitlines()[0] + "\n" + TWO.splitlines()[1] + "\n")
    drain_jobs()
    (mentor,) = session.scalars(select(Participant).where(Participant.invite_email != "")).all()
    path = f"/programs/{program.id}/coordinator/people/{mentor.id}/invitation"
    first = coordinator.post(path)
    assert first.status_code == 303
    assert "emailed=1" in first.headers["Location"]
    assert coordinator.post(path).status_code == 303  # a double click while it is pending
    assert len(_mails(session)) == 2
    page = coordinator.get(path + "?emailed=1").get_data(as_text=True)
    assert "An e-mail with a new link is on its way to ada@alumni.example.org" in page
    assert "On its way" in page

    assert drain_jobs() == 1
    first_mail, second_mail = relay.messages
    assert first_mail["Message-ID"] != second_mail["Message-ID"]
    assert [m.state for m in _mails(session)] == [InvitationMailState.SENT] * 2
    page = coordinator.get(path).get_data(as_text=True)
    assert page.count("Sent ") == 2
    emailed = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "invitation.emailed")
    ).all()
    assert [(e.target_type, e.target_id) for e in emailed] == [("participant", mentor.id)]


def test_an_invitation_accepted_before_its_email_leaves_is_not_mailed(
    session: Session,
    program: Program,
    coordinator_user: User,
    relay: CapturedMail,
    drain_jobs: Drain,
) -> None:
    import_external_mentors(session, program, TWO, actor_user_id=coordinator_user.id)
    ada = session.scalars(
        select(Participant).where(Participant.invite_email == "ada@alumni.example.org")
    ).one()
    accept_invitation(session, ada, name="Ada", bio="", launched=None)
    session.commit()
    assert drain_jobs() == 2
    assert [str(m["To"]) for m in relay.messages] == ["Bo Community <bo@clinic.example.org>"]
    skipped, sent = _mails(session)
    assert skipped.state == InvitationMailState.SKIPPED
    assert "already accepted" in skipped.reason
    assert sent.state == InvitationMailState.SENT


def test_a_relay_that_refuses_the_address_fails_the_email_for_good_and_says_so(
    session: Session,
    program: Program,
    coordinator: Person,
    refusing_relay: Answering,
    drain_jobs: Drain,
) -> None:
    _import(coordinator, program)
    assert drain_jobs() == 2
    assert drain_jobs(until=time.time() + 3600) == 0  # nothing is retried
    assert len(refusing_relay.messages) == 2
    mails = _mails(session)
    assert [m.state for m in mails] == [InvitationMailState.FAILED] * 2
    assert all(m.reason == "the relay answered 550" for m in mails)
    mentor_id = mails[0].participant_id
    page = coordinator.get(
        f"/programs/{program.id}/coordinator/people/{mentor_id}/invitation"
    ).get_data(as_text=True)
    assert "Not delivered: the relay answered 550" in page


def test_a_relay_that_is_down_is_retried_with_the_same_message_id(
    session: Session,
    program: Program,
    coordinator_user: User,
    smtp_server: CapturedMail,
    use_relay: Callable[[str], None],
    drain_jobs: Drain,
) -> None:
    use_relay(f"smtp://127.0.0.1:{_free_port()}")  # nothing listens there
    import_external_mentors(
        session, program, TWO.rsplit("\n", 2)[0] + "\n", actor_user_id=coordinator_user.id
    )
    session.commit()
    assert drain_jobs() == 1
    (waiting,) = _mails(session)
    assert waiting.state == InvitationMailState.PENDING
    assert waiting.attempts == 1
    assert waiting.reason.startswith("retrying: cannot reach the mail relay")
    assert waiting.message_id

    use_relay(smtp_server.url)  # the relay is back
    assert drain_jobs(until=time.time() + 60) == 1  # RQ's retry, after its back-off
    (message,) = smtp_server.messages
    (sent,) = _mails(session)
    assert sent.state == InvitationMailState.SENT
    assert sent.attempts == 2
    assert str(message["Message-ID"]) == waiting.message_id


def test_a_resend_after_a_lost_commit_carries_the_same_message_id(
    session: Session, program: Program, coordinator_user: User, smtp_server: CapturedMail
) -> None:
    """The relay took the message but the row was never marked sent (the worker died before
    its commit): the next run sends it again, and the receiving server can tell it is the
    same message."""
    import_external_mentors(
        session, program, TWO.rsplit("\n", 2)[0] + "\n", actor_user_id=coordinator_user.id
    )
    session.commit()
    (mail,) = _mails(session)
    channel = EmailChannel(smtp_server.url, MAIL_FROM)
    send = {"base_url": BASE_URL, "secret_key": TEST_SECRET_KEY}
    assert send_invitation_mail(session, mail.id, channel, **send) == InvitationMailState.SENT
    session.execute(  # as if that run's commit had never happened
        update(InvitationMail)
        .where(InvitationMail.id == mail.id)
        .values(state=InvitationMailState.PENDING, attempts=0, message_id="", sent_at=None)
    )
    assert send_invitation_mail(session, mail.id, channel, **send) == InvitationMailState.SENT
    first, again = smtp_server.messages
    assert first["Message-ID"] == again["Message-ID"]
    assert send_invitation_mail(session, mail.id, channel, **send) == InvitationMailState.SENT
    assert len(smtp_server.messages) == 2


def test_asking_again_requeues_an_email_whose_job_died(
    session: Session,
    program: Program,
    coordinator: Person,
    relay: CapturedMail,
    drain_jobs: Drain,
    redis_conn: Redis,
) -> None:
    _import(coordinator, program, TWO.splitlines()[0] + "\n" + TWO.splitlines()[1] + "\n")
    (mentor,) = session.scalars(select(Participant).where(Participant.invite_email != "")).all()
    # The send job died for good before it ran (a bug, a lost worker past the re-drive cap):
    # gone from Redis, its outbox row dead.
    redis_conn.flushdb()
    (job,) = session.scalars(select(OutboxJob).where(OutboxJob.dedupe_key.like("mentor-%"))).all()
    job.state = OutboxState.DEAD
    session.commit()
    assert drain_jobs() == 0
    path = f"/programs/{program.id}/coordinator/people/{mentor.id}/invitation"
    assert coordinator.post(path).status_code == 303
    assert len(_mails(session)) == 1  # the pending e-mail, not a second one
    assert drain_jobs() == 1
    assert [m.state for m in _mails(session)] == [InvitationMailState.SENT]
    assert len(relay.messages) == 1
