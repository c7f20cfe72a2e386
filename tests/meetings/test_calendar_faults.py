"""Faults done for real against the bridge: throttling and outages, a grant revoked mid-run,
a Redis flush with intents pending. After recovery each connected calendar holds each
meeting exactly once at its latest version, and nothing was created twice.

The worker-killed-mid-sync proof runs a real worker process: tests/test_calendar_crash.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from redis import Redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs import enqueue
from plugin.meetings.scheduling import reschedule_meeting
from plugin.meetings.sync import SYNC_JOB
from plugin.models import (
    CalendarConnection,
    ConnectionHealth,
    SyncIntent,
    SyncState,
)
from tests.meetings.conftest import Pair, draft
from tests.meetings.test_calendar_bridge import (  # the fakes and the bridge aimed at them
    Calendars,
    _google_server,
    _graph_server,
    assert_in_both_once,
    calendars,
    connect_both,
    google_fake,
    graph_fake,
    schedule,
)
from tests.meetings.test_sync import fresh

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]
A_DAY = 86400


def time_passes(session: Session, drain_jobs: Drain) -> int:
    """Every retry comes due: pending intents' waits end now, and their drains run.

    The drains the job promised for the retry time sit in RQ's scheduled registry; they are
    released, and one drain per waiting person is queued as the due one would be (the
    promised drain's key is per second of its time, and this clock jump makes them meet).
    """
    people = {i.attendee_id for i in pending(session)}
    session.execute(
        update(SyncIntent)
        .where(SyncIntent.state == SyncState.PENDING)
        .values(next_attempt_at=utcnow())
    )
    session.commit()
    tick = uuid.uuid4().hex[:8]
    for person in sorted(people):
        enqueue(SYNC_JOB, person, job_id=f"due-{tick}-{person}")
    return drain_jobs(until=time.time() + A_DAY)


def pending(session: Session) -> list[SyncIntent]:
    return fresh(session, SyncIntent, SyncIntent.state == SyncState.PENDING)


def test_throttling_and_outages_end_with_one_event_per_calendar(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    connect_both(calendars, pair)
    # Google acts but the answer is lost, then is down; Outlook throttles, then errs.
    calendars.google.faults.fail_next(1, 503, after_commit=True)
    calendars.google.faults.fail_next(1, 503)
    calendars.graph.faults.fail_next(1, 429, retry_after=120)
    calendars.graph.faults.fail_next(1, 500)
    meeting = schedule(session, pair)
    drain_jobs()
    waiting = pending(session)
    assert len(waiting) == 2
    assert all(i.attempts == 1 and i.next_attempt_at is not None for i in waiting)
    outlook = next(i for i in waiting if i.attendee_id == pair.mentee.id)
    assert outlook.next_attempt_at is not None
    assert (outlook.next_attempt_at - outlook.created_at).total_seconds() >= 120  # Retry-After
    time_passes(session, drain_jobs)
    assert len(pending(session)) == 2  # the second fault of each
    time_passes(session, drain_jobs)
    assert [(i.provider, i.attempts, i.last_error) for i in pending(session)] == []
    assert_in_both_once(calendars, pair, meeting)
    # Inserts that reached the calendar: the one whose answer was lost, and the retry that
    # met Google's 409 on our own id and adopted that event (the outage refused the other).
    assert calendars.google.counts["insert"] == 2
    assert len(calendars.google.events) == 1
    for connection in fresh(session, CalendarConnection):
        assert connection.health == ConnectionHealth.OK


def test_a_grant_revoked_mid_run_marks_the_connection_and_falls_back_to_email(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    google_connection, _ = connect_both(calendars, pair)
    meeting = schedule(session, pair)
    drain_jobs()
    assert_in_both_once(calendars, pair, meeting)
    # The person removes Preceptor in their Google account settings.
    calendars.google.revoke(json.loads(google_connection.credentials or "")["refresh_token"])
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))
    session.commit()
    drain_jobs()
    (connection,) = fresh(
        session, CalendarConnection, CalendarConnection.id == google_connection.id
    )
    assert connection.health == ConnectionHealth.REVOKED
    assert "invalid_grant" in connection.last_error or "revoked" in connection.last_error.lower()
    # The mentor's version 2 went to the e-mail path; Outlook has it; nothing is left behind.
    (mentor_intent,) = fresh(
        session,
        SyncIntent,
        SyncIntent.attendee_id == pair.mentor.id,
        SyncIntent.meeting_version == 2,
    )
    assert (mentor_intent.provider, mentor_intent.state) == ("ics", SyncState.DONE)
    session.refresh(meeting)
    (outlook,) = calendars.outlook_events(pair.mentee_user.email)
    assert outlook["start"]["dateTime"].startswith(meeting.starts_at.strftime("%Y-%m-%dT%H:%M"))
    assert len(calendars.google.live_events(pair.mentor_user.email)) == 1  # untouched, not doubled


def test_a_redis_flush_with_intents_pending_is_recovered_by_the_cron_sweep(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain, redis_conn: Redis
) -> None:
    connect_both(calendars, pair)
    meeting = schedule(session, pair)  # committed: the drains are in Redis now
    redis_conn.flushall()  # Redis restarted without its data
    assert drain_jobs() == 0
    assert len(pending(session)) == 2
    enqueue("workers.jobs.requeue_calendar_intents", job_id="cron-sweep")  # the 5-minute tick
    assert drain_jobs() == 3  # the sweep, then one drain per person
    assert pending(session) == []
    assert_in_both_once(calendars, pair, meeting)
    assert calendars.google.counts["insert"] == 1
