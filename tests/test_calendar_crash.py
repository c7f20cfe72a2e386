"""A real worker process is SIGKILLed while its calendar batch is at Google: after RQ and
the cron sweep recover, every meeting is in every connected calendar exactly once.

The hard case: Google received the batch and creates the events after the worker died,
so the database never learned of them. The retry meets Google's 409 on our own event ids
and adopts the events instead of making second copies.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy.orm import Session

from plugin import create_app
from plugin.calendars.google.ids import google_event_id
from plugin.calendars.google.resources import remote_version
from plugin.db import get_db
from plugin.jobs import enqueue
from plugin.meetings.scheduling import schedule_meeting
from plugin.migrate import upgrade
from plugin.models import CalendarConnection, SyncIntent, SyncState
from tests.conftest import app_settings, release_scheduled, serving
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.meetings.conftest import Pair, draft, make_pair
from tests.meetings.test_sync import fresh
from tests.programs.conftest import enroll, make_program, make_tenant, make_user
from tests.test_processes import finish, process_env, procfile_command, start, wait_for

__all__ = ["enroll", "make_pair", "make_program", "make_tenant", "make_user"]

pytestmark = pytest.mark.slow
MEETINGS = 3


class StallingGoogle:
    """The fake Google, holding the first batch request until the test lets it through."""

    def __init__(self, fake: FakeGoogleCalendar) -> None:
        self.fake = fake
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/batch") and not self.arrived.is_set():
            self.arrived.set()
            self.release.wait(timeout=60)
        return self.fake(environ, start_response)


@pytest.fixture
def google() -> Iterator[tuple[StallingGoogle, str]]:
    stalling = StallingGoogle(FakeGoogleCalendar())
    with serving(stalling) as port:
        yield stalling, f"http://127.0.0.1:{port}"
        stalling.release.set()


@pytest.fixture
def app(
    fresh_database_url: str,
    redis_url: str,
    redis_conn: Redis,
    tmp_path: Path,
    google: tuple[StallingGoogle, str],
) -> Iterator[Flask]:
    """An app on its own database with real commits (another process must see them), its
    Google endpoints aimed at the fake, as the worker process's environment will be."""
    _, root = google
    application = create_app(
        app_settings(
            database_url=fresh_database_url,
            redis_url=redis_url,
            instance_path=tmp_path / "instance",
            **google_settings(root),
        )
    )
    upgrade(get_db(application).engine)
    with application.app_context():
        yield application
    get_db(application).dispose()


def google_settings(root: str) -> dict[str, str]:
    return {
        "google_client_id": "client-id.apps.googleusercontent.com",
        "google_client_secret": "client-secret",
        "google_api_root": root,
        "google_token_uri": f"{root}/token",
    }


def worker_env(app: Flask, root: str) -> dict[str, str]:
    return process_env(
        app, **{f"PRECEPTOR_{k.upper()}": v for k, v in google_settings(root).items()}
    )


def test_a_worker_killed_mid_batch_leaves_every_meeting_once_in_every_calendar(
    app: Flask,
    session: Session,
    redis_conn: Redis,
    make_pair: Callable[..., Pair],
    google: tuple[StallingGoogle, str],
) -> None:
    stalling, root = google
    fake = stalling.fake
    pair = make_pair()
    people = [(pair.mentor, pair.mentor_user), (pair.mentee, pair.mentee_user)]
    for participant, user in people:
        session.add(
            CalendarConnection(
                participant_id=participant.id,
                provider="google",
                account=user.email,
                credentials=json.dumps(fake.grant(user.email)),
            )
        )
    meetings = [
        schedule_meeting(
            session,
            program=pair.program,
            actor=pair.actor(pair.mentor),
            draft=draft(days=7 + n),
            relationship=pair.relationship,
        )
        for n in range(MEETINGS)
    ]
    session.commit()  # the drains are queued now

    worker = start(procfile_command("worker"), worker_env(app, root))
    try:
        wait_for(stalling.arrived.is_set, 60, "the worker's batch to reach Google")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no warm shutdown: the machine died
        worker.wait(timeout=10)
    stalling.release.set()  # Google carries out the batch; nobody hears the answer
    wait_for(lambda: len(fake.events) == MEETINGS, 30, "Google to carry out the batch")
    assert all(i.state == SyncState.PENDING for i in fresh(session, SyncIntent))
    session.rollback()

    # RQ notices the dead worker once its heartbeat expires; jump to that moment. The cron
    # sweep promises a drain for everyone with due intents, whatever Redis still holds.
    registry = StartedJobRegistry("high", connection=redis_conn, serializer=JSONSerializer)
    registry.cleanup(timestamp=time.time() + 3600)
    release_scheduled(redis_conn, until=time.time() + 3600)
    enqueue("workers.jobs.requeue_calendar_intents", job_id="cron-sweep")
    finish(start(procfile_command("worker") + " --burst", worker_env(app, root)))
    session.rollback()  # end this session's read snapshot: see what the worker committed

    assert {i.state for i in fresh(session, SyncIntent)} == {SyncState.DONE}
    for participant, user in people:
        assert len(fake.live_events(user.email)) == MEETINGS
        for meeting in meetings:
            session.refresh(meeting)
            event = fake.event(google_event_id(meeting.sync_key_for(participant.id)), user.email)
            assert event is not None
            assert remote_version(event) == meeting.version
    assert len(fake.events) == MEETINGS * len(people)  # nothing made twice, nothing lost
    # The killed batch's creates were sent again and met 409 on our own ids (then adopted).
    assert fake.counts["insert"] == MEETINGS * (len(people) + 1)
