"""Meetings reach real calendar clients: the drain, the bridge, the engine and the Google and
Microsoft client libraries against the loopback fakes, run by a real RQ worker.

Every test ends the same way: each connected calendar holds each meeting exactly once, at
its latest version, whatever went wrong on the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from plugin.calendars.bridge import install_calendar_providers
from plugin.calendars.microsoft import finish_auth_flow, start_auth_flow
from plugin.calendars.settings import CalendarSettings
from plugin.crypto import get_encryptor
from plugin.meetings.providers import get_provider
from plugin.meetings.scheduling import cancel_meeting, reschedule_meeting, schedule_meeting
from plugin.models import (
    CalendarConnection,
    ConnectionHealth,
    Meeting,
    MeetingFormat,
    Participant,
    SyncIntent,
    SyncState,
    User,
)
from tests.calendars.conftest import (  # the loopback fakes, shared here
    _google_server,
    _graph_server,
    google_fake,
    graph_fake,
)
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.graph import FakeGraph, LoopbackSession
from tests.meetings.conftest import Pair, RecordingProvider, draft
from tests.meetings.test_sync import fresh

__all__ = ["_google_server", "_graph_server", "google_fake", "graph_fake"]

Drain = Callable[..., int]
REDIRECT = "https://preceptor.example.edu/calendars/callback"


@dataclass
class Calendars:
    """Both fakes, and how to connect a participant to either."""

    session: Session
    google: FakeGoogleCalendar
    graph: FakeGraph
    settings: CalendarSettings
    http: LoopbackSession

    def connect_google(self, participant: Participant, user: User) -> CalendarConnection:
        return self._store(participant, "google", user.email, self.google.grant(user.email))

    def connect_microsoft(self, participant: Participant, user: User) -> CalendarConnection:
        flow = start_auth_flow(self.settings, redirect_uri=REDIRECT, http_client=self.http)
        answer = self.graph.authorize(flow["auth_uri"], user.email)
        credentials = finish_auth_flow(self.settings, flow, answer, http_client=self.http)
        return self._store(participant, "microsoft", user.email, credentials)

    def _store(
        self, participant: Participant, provider: str, account: str, credentials: dict[str, Any]
    ) -> CalendarConnection:
        connection = CalendarConnection(
            participant_id=participant.id,
            provider=provider,
            account=account,
            credentials=json.dumps(credentials),
        )
        self.session.add(connection)
        self.session.flush()
        return connection

    def google_events(self, email: str) -> list[dict[str, Any]]:
        return self.google.live_events(email)

    def outlook_events(self, email: str) -> list[dict[str, Any]]:
        return self.graph.live_events(email)


@pytest.fixture
def calendars(
    app: Flask,
    session: Session,
    google_fake: tuple[FakeGoogleCalendar, str],
    graph_fake: tuple[FakeGraph, int],
) -> Calendars:
    """The bridge as create_app installs it, with its endpoints aimed at the fakes."""
    google, root = google_fake
    graph, port = graph_fake
    settings = CalendarSettings(
        google_client_id="client-id.apps.googleusercontent.com",
        google_client_secret="client-secret",
        google_api_root=root,
        google_token_uri=f"{root}/token",
        microsoft_client_id="6731de76-14a6-49ae-97bc-6eba6914391e",
        microsoft_client_secret="app-secret",
        microsoft_authority=graph.authority,
        microsoft_graph_root=f"http://127.0.0.1:{port}/v1.0",
        http_timeout=10,
    )
    http = LoopbackSession(port)
    install_calendar_providers(app, settings, http_client=http)
    # The e-mail path belongs to the follow-ups work; record what would be sent.
    ics = RecordingProvider("ics")
    from plugin.meetings.providers import register_provider

    register_provider("ics", lambda: ics)
    return Calendars(session, google, graph, settings, http)


def connect_both(calendars: Calendars, pair: Pair) -> tuple[CalendarConnection, ...]:
    """The mentor on Google, the mentee on Outlook."""
    return (
        calendars.connect_google(pair.mentor, pair.mentor_user),
        calendars.connect_microsoft(pair.mentee, pair.mentee_user),
    )


def schedule(session: Session, pair: Pair, **fields: Any) -> Meeting:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentor),
        draft=draft(**fields),
        relationship=pair.relationship,
    )
    session.commit()
    return meeting


def google_version(event: dict[str, Any]) -> int:
    from plugin.calendars.google.resources import remote_version

    return remote_version(event)


def outlook_version(event: dict[str, Any]) -> int:
    from plugin.calendars.microsoft.resources import remote_version

    return remote_version(event)


def assert_in_both_once(
    calendars: Calendars, pair: Pair, meeting: Meeting, *, google_at: int | None = None
) -> None:
    """Each calendar holds the meeting exactly once, at its current version and time."""
    session = calendars.session
    session.refresh(meeting)
    (google,) = calendars.google_events(pair.mentor_user.email)
    (outlook,) = calendars.outlook_events(pair.mentee_user.email)
    assert google_version(google) == (google_at or meeting.version)
    assert outlook_version(outlook) == meeting.version
    assert google["summary"] == outlook["subject"] == meeting.title
    utc = meeting.starts_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert outlook["start"]["dateTime"].startswith(utc)
    assert google["start"]["timeZone"] == meeting.time_zone


def test_create_reschedule_and_cancel_reach_google_and_outlook_exactly_once(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    connect_both(calendars, pair)
    meeting = schedule(session, pair)
    assert drain_jobs() == 2
    assert_in_both_once(calendars, pair, meeting)

    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))
    session.commit()
    drain_jobs()
    assert_in_both_once(calendars, pair, meeting)
    assert calendars.google.counts["insert"] == 1  # the update did not make a second event

    cancel_meeting(session, meeting, actor=pair.actor(pair.mentor), reason="Conference trip")
    session.commit()
    drain_jobs()
    assert calendars.google_events(pair.mentor_user.email) == []
    assert calendars.outlook_events(pair.mentee_user.email) == []
    intents = fresh(session, SyncIntent)
    assert {i.state for i in intents if i.meeting_version == meeting.version} == {SyncState.DONE}
    for connection in fresh(session, CalendarConnection):
        assert (connection.health, connection.last_error) == (ConnectionHealth.OK, "")


def test_refreshed_tokens_are_stored_encrypted(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    google_connection, outlook_connection = connect_both(calendars, pair)
    before = json.loads(google_connection.credentials or "")
    outlook_before = json.loads(outlook_connection.credentials or "")
    calendars.google.expire_access_tokens()  # the next request is a 401: refresh, then retry
    calendars.graph.expire_access_tokens()
    meeting = schedule(session, pair)
    drain_jobs()
    assert_in_both_once(calendars, pair, meeting)
    raw = session.execute(
        text("SELECT credentials FROM calendar_connection WHERE id = :id"),
        {"id": google_connection.id},
    ).scalar_one()
    assert before["refresh_token"] not in raw  # ciphertext at rest
    assert "ya29." not in raw
    stored = json.loads(get_encryptor().decrypt(raw))
    assert stored["token"] != before["token"]
    assert stored["refresh_token"] == before["refresh_token"]
    assert calendars.google.counts["token"] >= 1
    raw = session.execute(
        text("SELECT credentials FROM calendar_connection WHERE id = :id"),
        {"id": outlook_connection.id},
    ).scalar_one()
    assert outlook_before["home_account_id"] not in raw
    outlook_stored = json.loads(get_encryptor().decrypt(raw))
    assert outlook_stored["cache"] != outlook_before["cache"]  # MSAL's refreshed cache


def test_the_app_factory_registers_the_bridge_for_each_calendar_provider(app: Flask) -> None:
    for name in ("google", "microsoft", "caldav"):
        assert get_provider(name).name == name


def test_a_generated_meet_link_reaches_the_outlook_copy(
    session: Session, pair: Pair, calendars: Calendars, drain_jobs: Drain
) -> None:
    connect_both(calendars, pair)
    meeting = schedule(session, pair, conference_url="", format=MeetingFormat.VIRTUAL)
    drain_jobs()
    session.refresh(meeting)
    assert meeting.conference_url.startswith("https://meet.google.com/")
    # The link is the only change of version 2, and the organizer's copy made it: the drain
    # counts that copy as synced instead of sending it an update (one request fewer).
    assert_in_both_once(calendars, pair, meeting, google_at=1)
    assert calendars.google.counts["update"] == 0
    (outlook,) = calendars.outlook_events(pair.mentee_user.email)
    assert meeting.conference_url in outlook["body"]["content"]
    (google,) = calendars.google_events(pair.mentor_user.email)
    assert google["description"].count(meeting.conference_url) <= 1
