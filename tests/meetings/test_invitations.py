"""E-mail invitations (iTIP) for people with no connected calendar, received by a real SMTP
server through the whole stack: scheduling, the drain, the bridge, the engine, the ``ics``
provider and the follow-ups' SMTP channel, run by a real RQ worker.

A revoked Google grant (the loopback fake, driven by the real client library) sends the
person's meetings to the e-mail path and tells the person and the coordinator once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from email.message import Message
from typing import Any

import icalendar
import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.calendars.bridge import install_calendar_providers
from plugin.calendars.itip import message_id_for
from plugin.db import utcnow
from plugin.jobs import enqueue
from plugin.meetings.health import NOTIFICATION_KIND
from plugin.meetings.scheduling import cancel_meeting, reschedule_meeting
from plugin.meetings.sync import SYNC_JOB
from plugin.models import (
    CalendarConnection,
    ConnectionHealth,
    ExternalEvent,
    Meeting,
    Notification,
    NotificationPreference,
    Participant,
    SyncIntent,
    SyncState,
)
from tests.conftest import CapturedMail
from tests.meetings.conftest import Pair, draft
from tests.meetings.test_calendar_bridge import (  # the fakes and the bridge aimed at them
    Calendars,
    _google_server,
    _graph_server,
    calendars,
    google_fake,
    graph_fake,
    schedule,
)
from tests.meetings.test_sync import fresh

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]
MAIL_FROM = "Preceptor <preceptor@school.example.edu>"


@pytest.fixture
def mail(app: Flask, calendars: Calendars, smtp_server: CapturedMail) -> CapturedMail:
    """The e-mail path as create_app installs it, its relay the loopback SMTP server."""
    settings = dataclasses.replace(
        calendars.settings, smtp_url=smtp_server.url, mail_from=MAIL_FROM
    )
    install_calendar_providers(app, settings, http_client=calendars.http)
    return smtp_server


def to(mail: CapturedMail, person: Participant) -> list[Message]:
    return [m for m in mail.messages if person.email in str(m["To"])]


def invitations(mail: CapturedMail, person: Participant) -> list[Message]:
    return [m for m in to(mail, person) if _calendar_part(m) is not None]


def _calendar_part(message: Message) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == "text/calendar"), None)


def vevent(message: Message) -> tuple[icalendar.Calendar, Any]:
    part = _calendar_part(message)
    assert part is not None
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def text_of(message: Message, subtype: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == f"text/{subtype}")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def assert_invitation(
    message: Message, meeting: Meeting, person: Participant, *, method: str, organizer: str
) -> Any:
    """Headers, both text parts, the calendar part and its attachment twin, for ``person``."""
    key = meeting.sync_key_for(person.id)
    assert message["From"] == MAIL_FROM
    assert message["Message-ID"] == message_id_for(key, meeting.version, MAIL_FROM)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(p for p in message.walk() if p.get_content_subtype() == "alternative")
    parts = alternative.get_payload()
    assert isinstance(parts, list)
    assert [p.get_content_type() for p in parts if isinstance(p, Message)] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    part = _calendar_part(message)
    assert part is not None
    assert part.get_param("method") == method
    (attachment,) = [p for p in message.walk() if p.get_filename() == "invite.ics"]
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_payload(decode=True) == part.get_payload(decode=True)
    assert meeting.title in text_of(message, "plain")
    assert meeting.title in text_of(message, "html")

    calendar, event = vevent(message)
    assert str(calendar["METHOD"]) == method
    assert str(event["UID"]) == key
    assert event.decoded("SEQUENCE") == meeting.version
    assert str(event["ORGANIZER"]) == f"mailto:{organizer}"
    assert str(event["ATTENDEE"]) == f"mailto:{person.email}"
    assert event["DTSTART"].params["TZID"] == meeting.time_zone
    assert event.decoded("DTSTART") == meeting.starts_at
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == meeting.time_zone
    return event


def test_invitation_update_and_cancel_reach_the_mailbox_once_each(
    session: Session, pair: Pair, mail: CapturedMail, drain_jobs: Drain
) -> None:
    meeting = schedule(session, pair)  # the mentor schedules: they organise
    drain_jobs()
    (first,) = invitations(mail, pair.mentee)
    assert first["Subject"].startswith("Invitation: ")
    event = assert_invitation(
        first, meeting, pair.mentee, method="REQUEST", organizer=pair.mentor.email
    )
    assert event["ORGANIZER"].params["SENT-BY"] == "mailto:preceptor@school.example.edu"
    assert event["ORGANIZER"].params["CN"] == pair.mentor.display_name
    # The organizer's own copy comes from Preceptor, so it is an invitation to them too.
    (own,) = invitations(mail, pair.mentor)
    assert_invitation(
        own, meeting, pair.mentor, method="REQUEST", organizer="preceptor@school.example.edu"
    )
    (recorded,) = fresh(session, ExternalEvent, ExternalEvent.attendee_id == pair.mentee.id)
    assert (recorded.provider, recorded.synced_version) == ("ics", meeting.version)

    version = meeting.version
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))
    session.commit()
    drain_jobs()
    session.refresh(meeting)
    assert meeting.version == version + 1
    _, update_message = invitations(mail, pair.mentee)
    assert update_message["Subject"].startswith("Updated invitation: ")
    updated = assert_invitation(
        update_message, meeting, pair.mentee, method="REQUEST", organizer=pair.mentor.email
    )
    assert updated.decoded("SEQUENCE") == event.decoded("SEQUENCE") + 1
    assert str(updated["UID"]) == str(event["UID"])

    cancel_meeting(session, meeting, actor=pair.actor(pair.mentor), reason="Conference trip")
    session.commit()
    drain_jobs()
    session.refresh(meeting)
    _, _, cancel = invitations(mail, pair.mentee)
    assert cancel["Subject"].startswith("Cancelled: ")
    cancelled = assert_invitation(
        cancel, meeting, pair.mentee, method="CANCEL", organizer=pair.mentor.email
    )
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert cancelled.decoded("SEQUENCE") == version + 2
    assert len(mail.messages) == 6  # three per person, nothing twice
    assert len({m["Message-ID"] for m in mail.messages}) == 6
    assert {i.state for i in fresh(session, SyncIntent)} <= {SyncState.DONE, SyncState.SUPERSEDED}


def test_a_retried_job_or_intent_sends_nothing_twice(
    session: Session, pair: Pair, mail: CapturedMail, drain_jobs: Drain
) -> None:
    meeting = schedule(session, pair)
    drain_jobs()
    assert len(mail.messages) == 2
    # The job runs again (RQ retry, the cron sweep): nothing is due.
    for person in (pair.mentee, pair.mentor):
        enqueue(SYNC_JOB, person.id, job_id=f"again-{person.id}")
    assert drain_jobs() == 2
    # An intent for a version already sent comes back (redelivered): recorded, not resent.
    session.execute(
        update(SyncIntent)
        .where(SyncIntent.attendee_id == pair.mentee.id)
        .values(state=SyncState.PENDING, completed_at=None)
    )
    session.commit()
    enqueue(SYNC_JOB, pair.mentee.id, job_id="redelivered")
    drain_jobs()
    assert len(mail.messages) == 2
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentee.id)
    assert (intent.state, intent.meeting_version) == (SyncState.DONE, meeting.version)


def test_people_who_opted_out_or_have_no_address_get_no_invitation(
    session: Session, pair: Pair, mail: CapturedMail, drain_jobs: Drain
) -> None:
    session.add(NotificationPreference(participant_id=pair.mentee.id, unsubscribed_at=utcnow()))
    session.add(
        NotificationPreference(participant_id=pair.mentor.id, muted_kinds=["meeting_invitation"])
    )
    session.commit()
    schedule(session, pair)
    drain_jobs()
    assert mail.messages == []
    intents = fresh(session, SyncIntent)
    assert {i.state for i in intents} == {SyncState.DONE}
    assert all("opted out" in i.last_error for i in intents)
    assert fresh(session, ExternalEvent) == []


def test_a_revoked_google_calendar_falls_back_to_invitations_and_tells_people_once(
    session: Session, pair: Pair, calendars: Calendars, mail: CapturedMail, drain_jobs: Drain
) -> None:
    google = calendars.connect_google(pair.mentor, pair.mentor_user)
    meeting = schedule(session, pair)
    drain_jobs()
    assert len(calendars.google_events(pair.mentor_user.email)) == 1
    assert invitations(mail, pair.mentor) == []  # Google has it; only the mentee is mailed
    assert len(invitations(mail, pair.mentee)) == 1

    # The mentor removes Preceptor from their Google account, then the meeting moves.
    calendars.google.revoke(json.loads(google.credentials or "")["refresh_token"])
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))
    session.commit()
    drain_jobs()
    session.refresh(meeting)
    (connection,) = fresh(session, CalendarConnection)
    assert connection.health == ConnectionHealth.REVOKED
    (invitation,) = invitations(mail, pair.mentor)  # the new version, by e-mail now
    assert_invitation(
        invitation, meeting, pair.mentor, method="REQUEST", organizer="preceptor@school.example.edu"
    )
    (notice,) = [m for m in to(mail, pair.mentor) if _calendar_part(m) is None]
    assert notice["Subject"] == "Your Google calendar stopped working with Preceptor"
    body = text_of(notice, "plain")
    assert "access was withdrawn" in body
    assert "My meetings" in body
    assert connection.notice_sent_at is not None
    told = fresh(session, Notification, Notification.kind == NOTIFICATION_KIND)
    assert sorted(n.recipient_id for n in told) == sorted([pair.mentor.id, pair.coordinator.id])
    assert "Connect your calendar again" in next(
        n.text for n in told if n.recipient_id == pair.mentor.id
    )
    assert pair.mentor.display_name in next(
        n.text for n in told if n.recipient_id == pair.coordinator.id
    )

    # Later changes go by e-mail too; nobody is told again, Google is not asked again.
    google_requests = calendars.google.counts["http"]
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=10))
    session.commit()
    drain_jobs()
    session.refresh(meeting)
    _, again = invitations(mail, pair.mentor)
    assert again["Subject"].startswith("Updated invitation: ")
    assert vevent(again)[1].decoded("SEQUENCE") == meeting.version
    enqueue("workers.jobs.send_calendar_notice", connection.id, job_id="notice-again")
    drain_jobs()
    assert len([m for m in to(mail, pair.mentor) if _calendar_part(m) is None]) == 1
    assert len(fresh(session, Notification, Notification.kind == NOTIFICATION_KIND)) == 2
    assert calendars.google.counts["http"] == google_requests
    assert {i.state for i in fresh(session, SyncIntent)} <= {SyncState.DONE, SyncState.SUPERSEDED}


def test_a_calendar_failing_for_a_day_falls_back_to_invitations(
    session: Session, pair: Pair, calendars: Calendars, mail: CapturedMail, drain_jobs: Drain
) -> None:
    google = calendars.connect_google(pair.mentor, pair.mentor_user)
    google.health, google.failing_since = ConnectionHealth.FAILING, utcnow() - timedelta(hours=25)
    session.commit()
    calendars.google.faults.fail_next(20, 503)  # Google is down, and has been for a day
    meeting = schedule(session, pair)
    drain_jobs()
    (connection,) = fresh(session, CalendarConnection)
    assert connection.health == ConnectionHealth.REVOKED
    assert "failing since" in connection.last_error
    (invitation,) = invitations(mail, pair.mentor)
    assert_invitation(
        invitation, meeting, pair.mentor, method="REQUEST", organizer="preceptor@school.example.edu"
    )
    assert len(fresh(session, Notification, Notification.kind == NOTIFICATION_KIND)) == 2
