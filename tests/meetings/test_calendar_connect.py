"""Connecting a calendar: the OAuth round trip against the fakes, a signed single-use state
bound to the enrollment, the connection stored encrypted, and waiting meetings moved to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import CalendarConnection, SyncIntent
from tests.meetings.conftest import Pair
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
from tests.programs.conftest import Person

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]


def start(person: Person, pair: Pair, provider: str) -> str:
    """Press "Connect": the provider's sign-in URL the person is sent to."""
    response = person.post(f"/programs/{pair.program.id}/calendar/connect/{provider}")
    assert response.status_code == 303
    return response.headers["Location"]


def test_connecting_google_stores_it_encrypted_and_moves_waiting_meetings_there(
    app: Flask,
    session: Session,
    pair: Pair,
    calendars: Calendars,
    as_person: Callable[..., Person],
    drain_jobs: Drain,
) -> None:
    meeting = schedule(session, pair)  # before connecting: the mentor's copy goes by e-mail
    mentor = as_person(pair.tenant, pair.mentor_user, CourseRole.INSTRUCTOR)
    url = start(mentor, pair, "google")
    query = parse_qs(urlsplit(url).query)
    assert query["access_type"] == ["offline"]
    assert query["redirect_uri"] == ["http://localhost/calendars/connect/google/callback"]
    answer = {
        "code": calendars.google.authorization_code(pair.mentor_user.email),
        "state": query["state"][0],
    }
    client = app.test_client()  # back from Google: a new window, no launch token
    response = client.get("/calendars/connect/google/callback", query_string=answer)
    assert response.status_code == 200
    assert "Calendar connected" in response.text
    (connection,) = fresh(session, CalendarConnection)
    assert (connection.participant_id, connection.provider) == (pair.mentor.id, "google")
    raw = session.execute(
        text("SELECT credentials FROM calendar_connection WHERE id = :id"), {"id": connection.id}
    ).scalar_one()
    assert json.loads(connection.credentials or "")["refresh_token"] not in raw
    (intent,) = fresh(session, SyncIntent, SyncIntent.attendee_id == pair.mentor.id)
    assert (intent.provider, intent.connection_id) == ("google", connection.id)
    drain_jobs()
    (event,) = calendars.google.live_events(pair.mentor_user.email)
    assert event["summary"] == meeting.title
    # The same answer again (a reload, or someone replaying it) connects nothing.
    again = client.get("/calendars/connect/google/callback", query_string=answer)
    assert again.status_code == 400
    assert "already used" in again.text
    assert len(fresh(session, CalendarConnection)) == 1


def test_a_forged_or_cross_provider_state_connects_nothing(
    app: Flask, pair: Pair, calendars: Calendars, as_person: Callable[..., Person]
) -> None:
    client = app.test_client()
    forged = client.get(
        "/calendars/connect/google/callback", query_string={"code": "4/x", "state": "made-up"}
    )
    assert forged.status_code == 400
    assert "not started here" in forged.text
    mentee = as_person(pair.tenant, pair.mentee_user, CourseRole.LEARNER)
    state = parse_qs(urlsplit(start(mentee, pair, "google")).query)["state"][0]
    crossed = client.post(
        "/calendars/connect/microsoft/callback", data={"code": "c", "state": state}
    )
    assert crossed.status_code == 400
    assert "another provider" in crossed.text


def test_connecting_outlook_through_msal_form_post_replaces_the_previous_calendar(
    app: Flask,
    session: Session,
    pair: Pair,
    calendars: Calendars,
    as_person: Callable[..., Person],
) -> None:
    old = calendars.connect_google(pair.mentee, pair.mentee_user)
    session.commit()
    mentee = as_person(pair.tenant, pair.mentee_user, CourseRole.LEARNER)
    url = start(mentee, pair, "microsoft")
    answer = calendars.graph.authorize(url, pair.mentee_user.email)
    response = app.test_client().post("/calendars/connect/microsoft/callback", data=answer)
    assert response.status_code == 200, response.text
    connections = {c.id: c for c in fresh(session, CalendarConnection)}
    assert connections[old.id].revoked_at is not None
    (live,) = [c for c in connections.values() if c.revoked_at is None]
    assert (live.provider, live.account) == ("microsoft", pair.mentee_user.email)
    assert json.loads(live.credentials or "")["mode"] == "delegated"
