"""Jobs: deterministic ids, the outbox, retries and re-drives, through a real RQ worker."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin import jobs
from plugin.db import utcnow
from plugin.jobs import JobError, QueueName, defer, enqueue, job_id_for, redrive_outbox
from plugin.models import OutboxJob, OutboxState
from tests.fakes import jobs as fake

TOUCH = "tests.fakes.jobs.touch"
Drain = Callable[..., int]


def queued(connection: Redis, name: str = "default") -> list[str]:
    return Queue(name, connection=connection, serializer=JSONSerializer).get_job_ids()


def rows(session: Session) -> list[OutboxJob]:
    # Callbacks update rows from other sessions: reload instead of trusting the identity map.
    query = select(OutboxJob).order_by(OutboxJob.id).execution_options(populate_existing=True)
    return list(session.scalars(query))


def later(minutes: int = 10) -> timedelta:
    return jobs.REDRIVE_GRACE + timedelta(minutes=minutes)


# --- ids and enqueue ----------------------------------------------------------------------


def test_job_ids_are_deterministic_safe_and_distinct() -> None:
    assert job_id_for("workers.jobs.sync_meeting", 42, 3) == "sync_meeting-42-3"
    assert job_id_for("workers.jobs.sync_meeting", 42, 3) == job_id_for("a.sync_meeting", 42, 3)
    unsafe = job_id_for("w.j.send", "a b:c")
    assert unsafe == job_id_for("w.j.send", "a b:c")
    assert unsafe != job_id_for("w.j.send", "a_b_c")  # sanitising must not merge ids
    long = job_id_for("w.j.f", "x" * 500)
    assert len(long) <= 120
    assert long != job_id_for("w.j.f", "x" * 499)
    for value in (unsafe, long):
        assert set(value) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize(
    ("func", "args", "message"),
    [
        ("touch", ("a",), "dotted path"),
        ("tests.fakes.jobs.touch", (object(),), "must be JSON"),
        ("tests.fakes.jobs.touch", ({1, 2},), "must be JSON"),
    ],
)
def test_enqueue_refuses_what_a_json_worker_cannot_run(
    func: str, args: tuple[object, ...], message: str, redis_conn: Redis
) -> None:
    with pytest.raises(JobError, match=message):
        enqueue(func, *args, job_id="x-1")
    assert queued(redis_conn) == []


@pytest.mark.usefixtures("app")
def test_the_same_job_id_is_queued_once(redis_conn: Redis, drain_jobs: Drain) -> None:
    first = enqueue(TOUCH, "once", job_id="touch-once")
    second = enqueue(TOUCH, "once", job_id="touch-once")
    assert first is not None
    assert second is None
    assert queued(redis_conn) == ["touch-once"]
    assert drain_jobs() == 1
    assert fake.runs("once") == 1


@pytest.mark.usefixtures("app")
def test_jobs_are_stored_as_json_not_pickle(redis_conn: Redis) -> None:
    enqueue(TOUCH, "json", job_id="touch-json", queue=QueueName.HIGH)
    raw = cast(bytes | None, redis_conn.hget("rq:job:touch-json", "data"))
    assert raw is not None
    # RQ zlib-compresses the payload; inside is JSON naming the function by path.
    assert json.loads(zlib.decompress(raw))[0] == TOUCH


# --- the outbox ---------------------------------------------------------------------------


def test_deferred_job_is_queued_only_after_commit(
    session: Session, redis_conn: Redis, drain_jobs: Drain
) -> None:
    defer(session, TOUCH, "after-commit")
    assert queued(redis_conn) == []  # nothing leaves before the change is durable
    session.commit()
    (row,) = rows(session)
    assert queued(redis_conn) == [row.rq_job_id]
    assert drain_jobs() == 1
    assert fake.runs("after-commit") == 1
    session.refresh(row)
    assert row.state is OutboxState.DONE
    assert row.completed_at is not None


def test_rolled_back_change_queues_nothing(session: Session, redis_conn: Redis) -> None:
    defer(session, TOUCH, "rolled-back")
    session.rollback()
    session.commit()
    assert rows(session) == []
    assert queued(redis_conn) == []


def test_deferring_pending_work_twice_is_a_no_op(
    session: Session, redis_conn: Redis, drain_jobs: Drain
) -> None:
    defer(session, TOUCH, "twice", key="meeting-7-v2")
    defer(session, TOUCH, "twice", key="meeting-7-v2")
    session.commit()
    defer(session, TOUCH, "twice", key="meeting-7-v2")
    session.commit()
    assert len(rows(session)) == 1
    assert len(queued(redis_conn)) == 1
    drain_jobs()
    # Once done, the same key is new work again (e.g. the next change to the meeting).
    defer(session, TOUCH, "twice", key="meeting-7-v2")
    session.commit()
    assert [r.state for r in rows(session)] == [OutboxState.DONE, OutboxState.PENDING]
    drain_jobs()
    assert fake.runs("twice") == 2


def test_one_connection_defers_keyed_work_many_times(session: Session) -> None:
    # psycopg prepares a statement after its fifth run on a connection; PostgreSQL then
    # refused the ON CONFLICT of a bound partial-index predicate ("no unique or exclusion
    # constraint matching the ON CONFLICT specification"). Same connection throughout.
    for number in range(12):
        defer(session, TOUCH, "many", key=f"many-{number % 6}")
    session.commit()
    assert len(rows(session)) == 6


def test_delayed_work_waits_for_its_time(
    session: Session, redis_conn: Redis, drain_jobs: Drain
) -> None:
    due = utcnow() + timedelta(hours=1)
    defer(session, TOUCH, "delayed", not_before=due)
    session.commit()
    assert drain_jobs() == 0
    assert fake.runs("delayed") == 0
    assert drain_jobs(until=due.timestamp() + 1) == 1
    assert fake.runs("delayed") == 1


def test_failing_job_is_retried_and_its_error_recorded(
    session: Session, redis_conn: Redis, drain_jobs: Drain
) -> None:
    defer(session, "tests.fakes.jobs.fail_times", "flaky", 1)
    session.commit()
    drain_jobs()
    (row,) = rows(session)
    session.refresh(row)
    assert row.state is OutboxState.PENDING
    assert row.last_error == "RuntimeError: planned failure 1 of 1"
    job = Job.fetch(row.rq_job_id, connection=redis_conn, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.SCHEDULED  # RQ's Retry, with its back-off
    retry_at = utcnow() + timedelta(seconds=jobs.DEFAULT_RETRY_INTERVALS[0] + 1)
    drain_jobs(until=retry_at.timestamp())
    (done,) = rows(session)
    assert done.state is OutboxState.DONE
    assert fake.runs("flaky") == 1


def test_work_lost_by_redis_is_redriven_exactly_once(
    session: Session, redis_conn: Redis, drain_jobs: Drain
) -> None:
    defer(session, TOUCH, "lost")
    session.commit()
    redis_conn.flushdb()  # Redis restarted without persistence: the queued job is gone
    # Within the grace period the sweep leaves it to the after-commit push and RQ.
    assert redrive_outbox(session, redis_conn).pushed == 0
    report = redrive_outbox(session, redis_conn, now=utcnow() + later())
    session.commit()
    assert report.pushed == 1
    # A second sweep (another cron process, or the next tick) must not queue it again.
    assert redrive_outbox(session, redis_conn, now=utcnow() + later()).pushed == 0
    assert drain_jobs() == 1
    assert fake.runs("lost") == 1
    (row,) = rows(session)
    session.refresh(row)
    assert row.state is OutboxState.DONE
    assert row.redrives == 1
    assert redrive_outbox(session, redis_conn, now=utcnow() + later(30)).checked == 0


def test_redrive_leaves_queued_and_running_jobs_alone(session: Session, redis_conn: Redis) -> None:
    defer(session, TOUCH, "alive")
    session.commit()
    assert redrive_outbox(session, redis_conn, now=utcnow() + later()).pushed == 0
    assert len(queued(redis_conn)) == 1


def test_work_that_keeps_failing_ends_dead_not_looping(
    session: Session, redis_conn: Redis, drain_jobs: Drain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "MAX_REDRIVES", 2)
    defer(session, "tests.fakes.jobs.always_fail", "doomed")
    session.commit()
    clock = utcnow()
    for _ in range(40):  # bounded: a bug must fail the test, not hang it
        clock += timedelta(seconds=max(jobs.DEFAULT_RETRY_INTERVALS)) + later()
        drain_jobs(until=clock.timestamp())  # the run, or RQ's next retry, comes due
        redrive_outbox(session, redis_conn, now=clock)
        session.commit()
        if rows(session)[0].state is not OutboxState.PENDING:
            break
    (row,) = rows(session)
    assert row.state is OutboxState.DEAD
    assert row.redrives == 2
    assert row.last_error == "ValueError: this job never works"
    # Three pushes (the first and two re-drives), each tried once plus RQ's retries.
    runs_per_push = 1 + len(jobs.DEFAULT_RETRY_INTERVALS)
    assert int(redis_conn.get("test:attempts:doomed") or 0) == 3 * runs_per_push
    pending = session.scalar(select(func.count()).where(OutboxJob.state == OutboxState.PENDING))
    assert pending == 0


def test_commit_survives_redis_being_down(
    session: Session, app: object, monkeypatch: pytest.MonkeyPatch, redis_conn: Redis
) -> None:
    from flask import Flask

    assert isinstance(app, Flask)
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, jobs.REDIS_EXTENSION_KEY, down)
    defer(session, TOUCH, "redis-down")
    session.commit()  # must not raise: the change is durable, the sweep will queue it
    (row,) = rows(session)
    assert row.state is OutboxState.PENDING
    monkeypatch.setitem(app.extensions, jobs.REDIS_EXTENSION_KEY, redis_conn)
    assert redrive_outbox(session, redis_conn, now=utcnow() + later()).pushed == 1


def test_a_savepoint_inside_the_change_does_not_swallow_the_push(
    fresh_database_url: str, redis_url: str, redis_conn: Redis, make_app: Any
) -> None:
    """On real commits (not the test transaction): releasing a savepoint fires after_commit
    too, before the row is visible to other connections; the push must wait for the commit."""
    from sqlalchemy import text

    from plugin.db import get_db
    from plugin.migrate import upgrade

    live = make_app(database_url=fresh_database_url, redis_url=redis_url)
    upgrade(get_db(live).engine)
    with live.app_context(), get_db(live).session() as session:
        defer(session, TOUCH, "savepoint")
        with session.begin_nested():  # e.g. a get-or-create later in the same change
            session.execute(text("SELECT 1"))
        assert queued(redis_conn) == []  # not committed yet: nothing may leave
        session.commit()
    assert queued(redis_conn) == ["outbox-1"]
