"""Backfill on connect: a newly connected calendar receives the person's upcoming, live
meetings through the durable intents and a real RQ worker, exactly once, however often the
person connects, and only once the connection is committed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.calendars.microsoft import finish_auth_flow, start_auth_flow
from plugin.db import utcnow
from plugin.meetings.connections import store_connection
from plugin.meetings.scheduling import cancel_meeting, reschedule_meeting
from plugin.models import (
    CalendarConnection,
    ConnectionHealth,
    Meeting,
    OutboxJob,
    SyncIntent,
    SyncOperation,
    SyncState,
)
from tests.fakes.google_calendar import _instant
from tests.meetings.conftest import Pair, draft
from tests.meetings.test_calendar_bridge import (  # the fakes and the bridge aimed at them
    REDIRECT,
    Calendars,
    _google_server,
    _graph_server,
    calendars,
    google_fake,
    google_version,
    graph_fake,
    outlook_version,
    schedule,
)
from tests.meetings.test_sync import fresh

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]


def queued(connection: Redis) -> list[str]:
    return Queue("high", connection=connection, serializer=JSONSerializer).get_job_ids()


def meetings_before_connecting(session: Session, pair: Pair, drain_jobs: Drain) -> list[Meeting]:
    """Two upcoming meetings, one cancelled and one already over, all delivered by e-mail."""
    upcoming = [schedule(session, pair, days=5), schedule(session, pair, days=9)]
    cancelled = schedule(session, pair, days=7)
    cancel_meeting(session, cancelled, actor=pair.actor(pair.mentor), reason="Clinic")
    over = schedule(session, pair, days=11)
    over.starts_at = utcnow() - timedelta(days=2)  # time passed since it was booked
    over.ends_at = over.starts_at + timedelta(minutes=30)
    session.commit()
    drain_jobs()  # without a calendar, every copy goes by e-mail (ics)
    assert {i.provider for i in fresh(session, SyncIntent)} == {"ics"}
    return upcoming


def connect_google(session: Session, pair: Pair, calendars: Calendars) -> CalendarConnection:
    credentials = calendars.google.grant(pair.mentor_user.email)
    return store_connection(session, pair.mentor, "google", pair.mentor_user.email, credentials)


def at(meeting: Meeting) -> datetime:
    return meeting.starts_at.replace(tzinfo=UTC)


def google_starts(events: list[dict[str, Any]]) -> list[datetime]:
    return sorted(_instant(e["start"]) for e in events)


def outlook_starts(events: list[dict[str, Any]]) -> list[datetime]:
    return sorted(_instant({**e["start"], "dateTime": e["start"]["dateTime"][:19]}) for e in events)


def test_connecting_google_backfills_upcoming_meetings_once_and_only_after_commit(
    session: Session,
    pair: Pair,
    calendars: Calendars,
    drain_jobs: Drain,
    redis_conn: Redis,
) -> None:
    upcoming = meetings_before_connecting(session, pair, drain_jobs)
    connection = connect_google(session, pair, calendars)
    intents = fresh(session, SyncIntent, SyncIntent.provider == "google")
    assert sorted(i.meeting_id for i in intents) == sorted(m.id for m in upcoming)
    assert {(i.connection_id, i.operation) for i in intents} == {
        (connection.id, SyncOperation.CREATE)
    }
    assert queued(redis_conn) == []  # nothing leaves before the connection is durable
    session.commit()
    assert len(queued(redis_conn)) == 1
    drain_jobs()
    mentor_events = calendars.google_events(pair.mentor_user.email)
    assert google_starts(mentor_events) == sorted(at(m) for m in upcoming)
    assert all(google_version(e) == 1 for e in mentor_events)
    assert {i.state for i in fresh(session, SyncIntent, SyncIntent.provider == "google")} == {
        SyncState.DONE
    }

    # Connecting again (a second click, a second tab): no intent, no request, no twin.
    inserts = calendars.google.counts["insert"]
    connect_google(session, pair, calendars)
    session.commit()
    assert len(fresh(session, SyncIntent, SyncIntent.provider == "google")) == len(upcoming)
    drain_jobs()
    assert google_starts(calendars.google_events(pair.mentor_user.email)) == google_starts(
        mentor_events
    )
    assert calendars.google.counts["insert"] == inserts


def test_reconnecting_after_a_revoke_brings_changes_without_duplicates(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    first, second = meetings_before_connecting(session, pair, drain_jobs)
    connection = connect_google(session, pair, calendars)
    session.commit()
    drain_jobs()
    # The person withdraws access; the sync marks the connection revoked (e-mail instead).
    calendars.google.revoke(json.loads(connection.credentials or "")["refresh_token"])
    connection.health, connection.revoked_at = ConnectionHealth.REVOKED, utcnow()
    session.commit()
    reschedule_meeting(session, first, actor=pair.actor(pair.mentee), draft=draft(days=6))
    session.commit()
    drain_jobs()
    inserts = calendars.google.counts["insert"]

    connect_google(session, pair, calendars)
    session.commit()
    session.refresh(first)
    # Only the meeting that changed meanwhile needs a request; the other one is there.
    (intent,) = fresh(
        session,
        SyncIntent,
        SyncIntent.provider == "google",
        SyncIntent.state == SyncState.PENDING,
    )
    assert (intent.meeting_id, intent.meeting_version) == (first.id, first.version)
    assert intent.operation == SyncOperation.UPDATE
    drain_jobs()
    events = calendars.google_events(pair.mentor_user.email)
    assert google_starts(events) == sorted([at(first), at(second)])
    (moved,) = [e for e in events if _instant(e["start"]) == at(first)]
    assert google_version(moved) == first.version == 2
    assert calendars.google.counts["insert"] == inserts  # updated in place, never re-made


def test_connecting_outlook_backfills_and_a_rolled_back_connect_leaves_nothing(
    session: Session,
    pair: Pair,
    calendars: Calendars,
    drain_jobs: Drain,
    redis_conn: Redis,
) -> None:
    upcoming = meetings_before_connecting(session, pair, drain_jobs)

    def sign_in() -> dict[str, Any]:
        """The person signs in through MSAL against the fake identity platform."""
        settings, http = calendars.settings, calendars.http
        flow = start_auth_flow(settings, redirect_uri=REDIRECT, http_client=http)
        answer = calendars.graph.authorize(flow["auth_uri"], pair.mentor_user.email)
        return finish_auth_flow(settings, flow, answer, http_client=http)

    jobs = len(session.scalars(select(OutboxJob)).all())
    store_connection(session, pair.mentor, "microsoft", pair.mentor_user.email, sign_in())
    assert len(session.scalars(select(OutboxJob)).all()) == jobs + 1  # the deferred drain
    session.rollback()  # e.g. the callback failed after storing: nothing may remain
    assert fresh(session, CalendarConnection) == []
    assert fresh(session, SyncIntent, SyncIntent.provider == "microsoft") == []
    assert len(session.scalars(select(OutboxJob)).all()) == jobs
    assert queued(redis_conn) == []

    for _ in range(2):  # connect, then connect again
        store_connection(session, pair.mentor, "microsoft", pair.mentor_user.email, sign_in())
        session.commit()
        drain_jobs()
    events = calendars.outlook_events(pair.mentor_user.email)
    assert outlook_starts(events) == sorted(at(m) for m in upcoming)
    assert all(outlook_version(e) == 1 for e in events)
