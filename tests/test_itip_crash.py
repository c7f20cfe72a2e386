"""A real worker process is SIGKILLed while the mail relay holds an invitation: after RQ and
the cron sweep recover, each person has one invitation per meeting version.

The hard case: the relay received the whole message and delivers it after the worker died,
so the database never learned it was sent. The retry sends it again with the same
Message-ID, UID and SEQUENCE: the receiving side sees the same message (mail systems
de-duplicate by Message-ID, calendars by UID and SEQUENCE), never a second meeting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import icalendar
import pytest
from flask import Flask
from redis import Redis
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy.orm import Session

from plugin import create_app
from plugin.calendars.itip import message_id_for
from plugin.db import get_db
from plugin.jobs import enqueue
from plugin.meetings.scheduling import schedule_meeting
from plugin.migrate import upgrade
from plugin.models import ExternalEvent, SyncIntent, SyncState
from tests.conftest import _free_port, app_settings, release_scheduled
from tests.meetings.conftest import Pair, draft, make_pair
from tests.meetings.test_sync import fresh
from tests.programs.conftest import enroll, make_program, make_tenant, make_user
from tests.test_processes import finish, process_env, procfile_command, start, wait_for

__all__ = ["enroll", "make_pair", "make_program", "make_tenant", "make_user"]

pytestmark = pytest.mark.slow
MAIL_FROM = "Preceptor <preceptor@school.example.edu>"


class StallingRelay:
    """A real SMTP server (aiosmtpd) that holds the first message it receives until the
    test lets it through, then keeps it, as a relay that already has the data would."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.messages: list[Message] = []
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Queued for delivery as soon as the data is complete (RFC 1047's window: a client
        # that dies before the reply leaves a message the relay delivers anyway).
        self.messages.append(message_from_bytes(envelope.content))
        if not self.arrived.is_set():
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return "250 Message accepted for delivery"


@pytest.fixture
def relay() -> Iterator[StallingRelay]:
    from aiosmtpd.controller import Controller

    stalling = StallingRelay()
    controller = Controller(stalling, hostname="127.0.0.1", port=stalling.port)
    controller.start()
    yield stalling
    stalling.release.set()
    controller.stop()


@pytest.fixture
def app(
    fresh_database_url: str, redis_url: str, redis_conn: Redis, tmp_path: Path, relay: StallingRelay
) -> Iterator[Flask]:
    """An app on its own database with real commits (the worker process must see them)."""
    application = create_app(
        app_settings(
            database_url=fresh_database_url,
            redis_url=redis_url,
            instance_path=tmp_path / "instance",
            smtp_url=f"smtp://127.0.0.1:{relay.port}",
            mail_from=MAIL_FROM,
        )
    )
    upgrade(get_db(application).engine)
    with application.app_context():
        yield application
    get_db(application).dispose()


def worker_env(app: Flask, relay: StallingRelay) -> dict[str, str]:
    return process_env(
        app,
        PRECEPTOR_SMTP_URL=f"smtp://127.0.0.1:{relay.port}",
        PRECEPTOR_MAIL_FROM=MAIL_FROM,
    )


def uid_and_sequence(message: Message) -> tuple[str, int]:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    (event,) = icalendar.Calendar.from_ical(payload).walk("VEVENT")
    return str(event["UID"]), int(event.decoded("SEQUENCE"))


def test_a_worker_killed_mid_send_leaves_one_invitation_per_person(
    app: Flask,
    session: Session,
    redis_conn: Redis,
    make_pair: Callable[..., Pair],
    relay: StallingRelay,
) -> None:
    pair = make_pair()
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentor),
        draft=draft(),
        relationship=pair.relationship,
    )
    session.commit()  # the drains are queued now; nobody has a calendar connected

    worker = start(procfile_command("worker"), worker_env(app, relay))
    try:
        wait_for(relay.arrived.is_set, 60, "the worker's invitation to reach the relay")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no warm shutdown: the machine died
        worker.wait(timeout=10)
    relay.release.set()  # the relay delivers what it received; nobody hears the answer
    assert len(relay.messages) == 1
    assert all(i.state == SyncState.PENDING for i in fresh(session, SyncIntent))
    session.rollback()

    # RQ notices the dead worker once its heartbeat expires; jump to that moment. The cron
    # sweep queues a drain for everyone with due intents, whatever Redis still holds.
    registry = StartedJobRegistry("high", connection=redis_conn, serializer=JSONSerializer)
    registry.cleanup(timestamp=time.time() + 3600)
    release_scheduled(redis_conn, until=time.time() + 3600)
    enqueue("workers.jobs.requeue_calendar_intents", job_id="cron-sweep")
    finish(start(procfile_command("worker") + " --burst", worker_env(app, relay)))
    session.rollback()

    assert {i.state for i in fresh(session, SyncIntent)} == {SyncState.DONE}
    session.refresh(meeting)
    for person in (pair.mentee, pair.mentor):
        received = [m for m in relay.messages if person.email in str(m["To"])]
        key = meeting.sync_key_for(person.id)
        # At most the interrupted one came twice, and then as the very same message.
        assert {m["Message-ID"] for m in received} == {
            message_id_for(key, meeting.version, MAIL_FROM)
        }
        assert {uid_and_sequence(m) for m in received} == {(key, meeting.version)}
    assert len(relay.messages) == 3  # two people; the interrupted message arrived twice
    recorded = fresh(session, ExternalEvent)
    assert sorted((e.provider, e.synced_version) for e in recorded) == [
        ("ics", meeting.version),
        ("ics", meeting.version),
    ]

    # Once recorded, nothing is sent again, however often the sweep runs.
    enqueue("workers.jobs.requeue_calendar_intents", job_id="cron-sweep-2")
    finish(start(procfile_command("worker") + " --burst", worker_env(app, relay)))
    assert len(relay.messages) == 3
