"""Calendar sync drain: each version reaches each calendar once, retries back off, revoked
connections fall back to e-mail invitations, and nothing is ever marked done falsely."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs import enqueue
from plugin.meetings.providers import (
    REGISTRY_KEY,
    ConnectionFailing,
    ConnectionRevoked,
    EventOutcome,
    OutcomeKind,
)
from plugin.meetings.scheduling import reschedule_meeting, schedule_meeting
from plugin.meetings.sync import drain_sync_intents, requeue_due_intents
from plugin.models import (
    CalendarConnection,
    ConnectionHealth,
    ExternalEvent,
    Meeting,
    MeetingFormat,
    OutboxJob,
    SyncIntent,
    SyncOperation,
    SyncState,
)
from tests.meetings.conftest import Pair, RecordingProvider, draft

Drain = Callable[..., int]


def connect(session: Session, pair: Pair, provider: str = "recording") -> CalendarConnection:
    connection = CalendarConnection(
        participant_id=pair.mentor.id,
        provider=provider,
        account="omar@example.edu",
        credentials='{"refresh_token": "r1"}',
    )
    session.add(connection)
    session.flush()
    return connection


def schedule(session: Session, pair: Pair, **fields: Any) -> Meeting:
    return schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentor),
        draft=draft(**fields),
        relationship=pair.relationship,
    )


T = TypeVar("T")


def fresh(session: Session, model: type[T], *where: ColumnElement[bool]) -> list[T]:
    """Rows as the database has them now (other sessions changed them)."""
    query = select(model).where(*where).execution_options(populate_existing=True)
    return list(session.scalars(query))


def test_a_worker_sends_each_attendee_their_event_once_and_a_rerun_sends_nothing(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider], drain_jobs: Drain
) -> None:
    connect(session, pair)
    meeting = schedule(session, pair)
    session.commit()
    assert drain_jobs() == 2  # one job per attendee, through the real RQ worker
    (mentor_change,) = providers["recording"].changes
    (mentee_change,) = providers["ics"].changes
    assert mentor_change.key == meeting.sync_key_for(pair.mentor.id)
    assert mentee_change.key == meeting.sync_key_for(pair.mentee.id)
    assert (mentor_change.operation, mentor_change.version) == (SyncOperation.CREATE, 1)
    assert mentee_change.attendee_email == pair.mentee_user.email
    assert mentor_change.conference_url == "https://meet.example.edu/abc"
    assert {i.state for i in fresh(session, SyncIntent)} == {SyncState.DONE}
    events = fresh(session, ExternalEvent)
    assert sorted((e.provider, e.synced_version) for e in events) == [
        ("ics", 1),
        ("recording", 1),
    ]
    # The job again (at-least-once delivery): the provider already has version 1.
    enqueue("workers.jobs.sync_calendar_intents", pair.mentor.id, job_id="again")
    drain_jobs()
    report = drain_sync_intents(session, pair.mentor.id)
    assert (report.requests, report.done) == (0, 0)
    assert len(providers["recording"].calls) == 1
    connection = session.scalars(select(CalendarConnection)).one()
    assert connection.health == ConnectionHealth.OK
    assert connection.last_synced_at is not None


def test_an_update_carries_the_providers_id_and_etag_and_only_the_newest_version_is_sent(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connect(session, pair)
    meeting = schedule(session, pair)
    drain_sync_intents(session, pair.mentor.id)
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=10))
    drain_sync_intents(session, pair.mentor.id)
    first, second = providers["recording"].changes
    assert (second.operation, second.version) == (SyncOperation.UPDATE, 3)
    assert (second.external_id, second.etag) == (f"ext-{first.key}", "v1")
    assert second.starts_at == meeting.starts_at
    states = sorted(
        (i.meeting_version, i.state.value)
        for i in fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    )
    assert states == [(1, "done"), (2, "superseded"), (3, "done")]


def test_a_rate_limited_event_waits_for_retry_after_then_goes_through(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connect(session, pair)
    meeting = schedule(session, pair)
    key = meeting.sync_key_for(pair.mentor.id)
    providers["recording"].scripted[key] = [
        EventOutcome(key=key, kind=OutcomeKind.RETRY, retry_after=120, error="429")
    ]
    now = utcnow()
    report = drain_sync_intents(session, pair.mentor.id, now=now)
    assert report.retrying == 1
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    assert (intent.state, intent.attempts, intent.last_error) == (SyncState.PENDING, 1, "429")
    assert intent.next_attempt_at is not None
    assert intent.next_attempt_at >= now + timedelta(seconds=120)
    # The drain that will pick it up is already promised, for when it is due.
    promised = [j for j in fresh(session, OutboxJob) if j.not_before is not None]
    assert [j.not_before for j in promised] == [intent.next_attempt_at]
    assert drain_sync_intents(session, pair.mentor.id, now=now).requests == 0  # not due yet
    later = intent.next_attempt_at + timedelta(seconds=1)
    assert drain_sync_intents(session, pair.mentor.id, now=later).done == 1
    assert len(providers["recording"].changes) == 2


def test_a_revoked_connection_falls_back_to_email_invitations(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connection = connect(session, pair)
    schedule(session, pair)
    providers["recording"].raise_next.append(ConnectionRevoked("invalid_grant"))
    report = drain_sync_intents(session, pair.mentor.id)
    assert (report.fell_back, report.done) == (1, 0)
    assert connection.health == ConnectionHealth.REVOKED
    assert connection.revoked_at is not None
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    assert (intent.provider, intent.state) == ("ics", SyncState.PENDING)
    drain_sync_intents(session, pair.mentor.id)
    assert [c.attendee_email for c in providers["ics"].changes] == [pair.mentor_user.email]
    # Later meetings go straight to e-mail.
    schedule(session, pair, days=12)
    pending = fresh(
        session,
        SyncIntent,
        SyncIntent.attendee_id == pair.mentor.id,
        SyncIntent.state == SyncState.PENDING,
    )
    assert [i.provider for i in pending] == ["ics"]


def test_a_failing_account_marks_the_connection_and_backs_off(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connection = connect(session, pair)
    schedule(session, pair)
    providers["recording"].raise_next.append(ConnectionFailing("quotaExceeded", retry_after=600))
    report = drain_sync_intents(session, pair.mentor.id)
    assert report.retrying == 1
    assert (connection.health, connection.last_error) == (ConnectionHealth.FAILING, "quotaExceeded")
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    assert intent.state == SyncState.PENDING
    assert intent.next_attempt_at is not None
    drain_sync_intents(session, pair.mentor.id, now=intent.next_attempt_at)
    assert connection.health == ConnectionHealth.OK


def test_without_an_installed_provider_intents_wait_and_say_why(
    app: Flask, session: Session, pair: Pair
) -> None:
    # create_app installs the e-mail path; a deployment may run without it.
    app.extensions[REGISTRY_KEY].pop("ics")
    schedule(session, pair)
    report = drain_sync_intents(session, pair.mentee.id)
    assert (report.waiting, report.done) == (1, 0)
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentee.id)
    assert intent.state == SyncState.PENDING
    assert "no calendar provider 'ics' is installed" in intent.last_error
    assert "ICS feed already shows the meeting" in intent.last_error


def test_a_permanent_refusal_fails_the_intent_with_its_reason(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connect(session, pair)
    meeting = schedule(session, pair)
    key = meeting.sync_key_for(pair.mentor.id)
    providers["recording"].scripted[key] = [
        EventOutcome(key=key, kind=OutcomeKind.FAILED, error="400 invalid body")
    ]
    assert drain_sync_intents(session, pair.mentor.id).failed == 1
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    assert (intent.state, intent.last_error) == (SyncState.FAILED, "400 invalid body")


def test_a_link_generated_by_the_organizers_provider_reaches_the_other_attendee(
    session: Session, pair: Pair, providers: dict[str, RecordingProvider]
) -> None:
    connect(session, pair)
    providers["recording"].conference_url = "https://meet.google.com/abc-defg-hij"
    meeting = schedule(session, pair, conference_url="", format=MeetingFormat.VIRTUAL)
    drain_sync_intents(session, pair.mentor.id)
    assert providers["recording"].changes[0].wants_conference
    assert (meeting.conference_url, meeting.version) == ("https://meet.google.com/abc-defg-hij", 2)
    drain_sync_intents(session, pair.mentee.id)
    (mentee_change,) = providers["ics"].changes
    assert (mentee_change.version, mentee_change.conference_url) == (2, meeting.conference_url)
    assert len(providers["recording"].changes) == 1  # the organizer's copy already has it


def test_the_sweep_promises_a_drain_for_everyone_with_due_intents(
    session: Session, pair: Pair
) -> None:
    schedule(session, pair)
    session.commit()
    before = len(fresh(session, OutboxJob))
    assert requeue_due_intents(session) == 2
    assert len(fresh(session, OutboxJob)) == before + 2
    assert requeue_due_intents(session) == 2  # same time slot: deduplicated
    assert len(fresh(session, OutboxJob)) == before + 2
