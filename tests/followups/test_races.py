"""Never sent twice, never lost, for real: two dispatchers racing, and a worker process
SIGKILLed after the SMTP server took the message but before the dispatcher recorded it
(resent after the lease with the same Message-ID, so receivers keep one copy)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import get_db, utcnow
from plugin.followups.channels import EmailChannel
from plugin.followups.dispatch import (
    LEASE,
    SEND_BATCH_JOB,
    BatchReport,
    dispatch_tick,
    send_due_batch,
)
from plugin.followups.planner import reconcile
from plugin.jobs import enqueue
from plugin.models import (
    Course,
    Delivery,
    DeliveryOutcome,
    Deployment,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Participant,
    Platform,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from tests.conftest import CapturedMail, _free_port
from tests.followups.conftest import MAIL_FROM, config
from tests.test_processes import process_env, procfile_command, start, wait_for

pytestmark = pytest.mark.slow


def seed_due(session: Session, pairs: int) -> list[int]:
    """A program with ``pairs`` active pairs, planned by the planner: two introductions
    due now per pair. Returns their ids."""
    platform = Platform(
        issuer="https://race.example.edu",
        client_id="race",
        auth_login_url="https://race.example.edu/auth",
        auth_token_url="https://race.example.edu/token",
        key_set_url="https://race.example.edu/jwks",
    )
    course = Course(
        deployment=Deployment(platform=platform, deployment_id="d"), context_id="c", title="C"
    )
    program = Program(course=course, title="Race", tracks=["research"])
    session.add_all([platform, course, program])
    session.flush()

    def person(n: int, **roles: bool) -> Participant:
        user = User(platform_id=platform.id, sub=f"s{n}", name=f"P{n}", email=f"p{n}@x.edu")
        return Participant(program=program, user=user, profile=Profile(time_zone="UTC"), **roles)

    for n in range(pairs):
        rel = Relationship(
            program=program,
            mentee=person(2 * n, is_mentee=True),
            mentor=person(2 * n + 1, is_mentor=True),
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
            started_at=utcnow() - timedelta(minutes=1),
        )
        session.add(rel)
        session.flush()
        reconcile(session, relationship_id=rel.id)
    query = select(FollowUp.id).where(FollowUp.kind == FollowUpKind.INTRODUCTION)
    return list(session.scalars(query.order_by(FollowUp.id)))


NO_QUIET = {"quiet_start": "00:00", "quiet_end": "00:00"}


def test_two_dispatchers_racing_send_each_follow_up_exactly_once(
    live_app: Flask, smtp_server: CapturedMail
) -> None:
    database = get_db(live_app)
    with database.session_scope() as session:
        ids = seed_due(session, 20)
    barrier = threading.Barrier(2)
    reports: list[list[BatchReport]] = [[], []]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with live_app.app_context(), database.session() as session:
                channel = EmailChannel(smtp_server.url, MAIL_FROM)
                barrier.wait(timeout=30)
                for _ in range(100):
                    report = send_due_batch(session, channel, config(**NO_QUIET), limit=5)
                    reports[index].append(report)
                    if report.claimed == 0:
                        break
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    claimed = [sum(r.claimed for r in runs) for runs in reports]
    assert sum(claimed) == len(ids)  # every row claimed once, by one of them
    message_ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(message_ids) == len(ids)
    assert len(set(message_ids)) == len(ids)
    with database.session() as session:
        rows = session.scalars(select(FollowUp).where(FollowUp.id.in_(ids))).all()
        assert {row.state for row in rows} == {FollowUpState.SENT}


@pytest.fixture
def stalling_smtp() -> Iterator[tuple[CapturedMail, threading.Event, threading.Event]]:
    """An SMTP server that stores a message, then holds its reply until released: the
    sender has handed the message over but has not heard back."""
    captured = CapturedMail(host="127.0.0.1", port=_free_port())
    received, release = threading.Event(), threading.Event()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            captured.messages.append(message_from_bytes(envelope.content))
            received.set()
            while not release.is_set():
                await asyncio.sleep(0.05)
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=captured.host, port=captured.port)
    controller.start()
    yield captured, received, release
    release.set()
    controller.stop()


def test_worker_killed_mid_send_resends_with_the_same_message_id(
    live_app: Flask,
    redis_conn: Redis,
    stalling_smtp: tuple[CapturedMail, threading.Event, threading.Event],
) -> None:
    smtp, received, release = stalling_smtp
    database = get_db(live_app)
    with database.session_scope() as session:
        handed_over, waiting = seed_due(session, 1)  # the two introductions of one pair
    enqueue(SEND_BATCH_JOB, job_id="send-batch-killed", connection=redis_conn)
    env = process_env(
        live_app,
        PRECEPTOR_SMTP_URL=smtp.url,
        PRECEPTOR_FOLLOWUP_QUIET_START="00:00",
        PRECEPTOR_FOLLOWUP_QUIET_END="00:00",
    )
    worker = start(procfile_command("worker"), env)
    try:
        wait_for(received.is_set, 60, "the SMTP server to receive the first message")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the machine died before the 250 arrived
        worker.wait(timeout=10)
    release.set()
    assert len(smtp.messages) == 1
    first_copy = smtp.messages[0]["Message-ID"]

    with database.session_scope() as session:
        rows = [session.get(FollowUp, i) for i in (handed_over, waiting)]
        assert [row.state for row in rows if row] == [FollowUpState.SENDING] * 2
        # The "sending" record with its Message-ID was durable before the relay saw anything.
        (marker,) = session.scalars(select(Delivery)).all()
        assert (marker.followup_id, marker.outcome) == (handed_over, DeliveryOutcome.QUEUED)
        assert marker.message_id == first_copy
        # Before the lease ends, a tick leaves the claims alone.
        assert dispatch_tick(session, redis_conn).interrupted == 0
    later = utcnow() + LEASE + timedelta(minutes=1)
    with database.session_scope() as session:
        tick = dispatch_tick(session, redis_conn, now=later)
        # Both are planned again: the interrupted one to be resent, the other never sent.
        assert (tick.interrupted, tick.released, tick.due) == (1, 1, 2)
    with live_app.app_context(), database.session() as session:
        channel = EmailChannel(smtp.url, MAIL_FROM)
        assert send_due_batch(session, channel, config(**NO_QUIET), now=later).sent == 2
        assert send_due_batch(session, channel, config(**NO_QUIET), now=later).claimed == 0
    message_ids = [m["Message-ID"] for m in smtp.messages]
    # Never lost: both arrived. The interrupted one arrived twice with one Message-ID, so a
    # receiver that de-duplicates by Message-ID shows it once; nothing else is repeated.
    assert len(message_ids) == 3
    assert message_ids.count(first_copy) == 2
    assert len(set(message_ids)) == 2
    with database.session() as session:
        resent, sent = (session.get(FollowUp, i) for i in (handed_over, waiting))
        assert resent is not None
        assert sent is not None
        assert (resent.state, resent.attempts) == (FollowUpState.SENT, 2)
        assert sent.state == FollowUpState.SENT
        deliveries = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        assert sorted((d.followup_id, d.outcome.value) for d in deliveries) == [
            (handed_over, "failed"),
            (handed_over, "sent"),
            (waiting, "sent"),
        ]
        assert deliveries[0].reason == "interrupted: the worker stopped during the handover"
        assert {d.message_id for d in deliveries if d.followup_id == handed_over} == {first_copy}


def test_a_handover_interrupted_every_time_gives_up_after_the_attempts(
    live_app: Flask, redis_conn: Redis
) -> None:
    from plugin.followups.dispatch import MAX_ATTEMPTS, claim_due

    database = get_db(live_app)
    with database.session_scope() as session:
        first, _second = seed_due(session, 1)
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with database.session_scope() as session:
            assert first in claim_due(session, now, 10, f"doomed-{attempt}")
            session.add(
                Delivery(
                    followup_id=first,
                    channel="email",
                    outcome=DeliveryOutcome.QUEUED,
                    message_id="<m@x>",
                )
            )
        now += LEASE + timedelta(minutes=1)
        with database.session_scope() as session:
            assert dispatch_tick(session, redis_conn, now=now).interrupted == 1
    with database.session() as session:
        row = session.get(FollowUp, first)
        assert row is not None
        assert (row.state, row.attempts) == (FollowUpState.FAILED, MAX_ATTEMPTS)
        assert row.reason == "gave up: interrupted during every handover"


def test_a_claim_abandoned_before_the_handover_is_released_and_sent_once(
    live_app: Flask, redis_conn: Redis, smtp_server: CapturedMail
) -> None:
    from plugin.followups.dispatch import claim_due

    database = get_db(live_app)
    with database.session_scope() as session:
        ids = seed_due(session, 1)
    with database.session() as session:
        assert claim_due(session, utcnow(), 10, "a-worker-that-died") == ids
    with database.session_scope() as session:
        tick = dispatch_tick(session, redis_conn, now=utcnow() + LEASE + timedelta(minutes=1))
        assert (tick.released, tick.due, tick.batches) == (2, 2, 1)
    with live_app.app_context(), database.session() as session:
        channel = EmailChannel(smtp_server.url, MAIL_FROM)
        assert send_due_batch(session, channel, config(**NO_QUIET)).sent == 2
        assert send_due_batch(session, channel, config(**NO_QUIET)).claimed == 0
    assert len(smtp_server.messages) == 2
