"""Background jobs: enqueue by dotted path, deterministically, and durably via the outbox.

Two ways to start work, for two needs:

* :func:`enqueue` pushes a job straight to RQ with a caller-chosen id; RQ refuses a second
  job with the same id (atomically), so sweeps and retries cannot double-queue. Use it
  for work that the database does not have to remember (cron sweeps, canaries).
* :func:`defer` records an :class:`~plugin.models.OutboxJob` in the caller's transaction.
  The job is pushed after the commit, and :func:`redrive_outbox` (run by cron) pushes it
  again if Redis lost it. Use it for anything a committed change needs: nothing is lost,
  and nothing is queued about a change that rolled back.

``plugin`` never imports ``workers``: job functions are named by dotted path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry
from rq.callbacks import Callback
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import event, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.db import get_db, utcnow
from plugin.logs import get_logger
from plugin.models.outbox import OutboxJob, OutboxState

__all__ = [
    "DEFAULT_RETRY_INTERVALS",
    "JobError",
    "QueueName",
    "RedriveReport",
    "defer",
    "enqueue",
    "get_queue",
    "get_redis",
    "job_id_for",
    "outbox_job_failed",
    "outbox_job_succeeded",
    "redrive_outbox",
]

log = get_logger(__name__)

REDIS_EXTENSION_KEY = "preceptor.redis"


class QueueName(StrEnum):
    """Queues, in the order a worker serves them."""

    HIGH = "high"  #: a person is waiting (calendar sync of a meeting just booked)
    DEFAULT = "default"  #: ordinary work (sweeps, e-mail)
    LOW = "low"  #: bulk work (roster sync, matching runs, exports)


#: Seconds between RQ's automatic retries of a failed job: quick first, then backing off.
#: After the last one the outbox sweep takes over (see REDRIVE_GRACE and MAX_REDRIVES).
DEFAULT_RETRY_INTERVALS: Final = (10, 60, 300, 900)
#: A job may run this long before RQ kills it; long jobs pass their own.
DEFAULT_TIMEOUT: Final = 300
#: Keep a finished job's record this long (RQ's dashboard, debugging); then Redis drops it.
RESULT_TTL: Final = 3600
#: A pending outbox row is left alone this long after it was written or re-driven, so the
#: after-commit push and RQ's own retries get their chance before the sweep steps in.
REDRIVE_GRACE: Final = timedelta(minutes=2)
#: After this many re-drives a row is marked dead and shown to an admin instead.
MAX_REDRIVES: Final = 8

_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_DOTTED_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
_MAX_JOB_ID = 120
_SESSION_KEY = "preceptor.outbox.pending"


class JobError(Exception):
    """A job could not be described or queued; the message says what to fix."""


def get_redis(app: Flask | None = None) -> Redis:
    """The app's Redis connection (created on first use; connects lazily)."""
    app = app or current_app
    connection: Redis | None = app.extensions.get(REDIS_EXTENSION_KEY)
    if connection is None:
        url = app.extensions["preceptor.settings"].redis_url
        if url is None:
            raise JobError("PRECEPTOR_REDIS_URL is not set: background jobs need Redis")
        connection = Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
        )
        app.extensions[REDIS_EXTENSION_KEY] = connection
    return connection


def get_queue(name: str | QueueName = QueueName.DEFAULT, connection: Redis | None = None) -> Queue:
    """An RQ queue using the JSON serializer (never pickle)."""
    return Queue(str(name), connection=connection or get_redis(), serializer=JSONSerializer)


def job_id_for(func: str, *parts: object) -> str:
    """A deterministic RQ job id from a function path and identifying parts.

    RQ ids allow only letters, digits, '_' and '-'; long ids are shortened with a hash so
    two different inputs never collide.
    """
    short = func.rsplit(".", 1)[-1]
    raw = "-".join([short, *(str(p) for p in parts)])
    safe = _JOB_ID_UNSAFE.sub("_", raw)
    if len(safe) > _MAX_JOB_ID or safe != raw:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        safe = f"{safe[: _MAX_JOB_ID - 17]}-{digest}"
    return safe


def _check_call(func: str, args: Sequence[Any]) -> list[Any]:
    if not _DOTTED_PATH.match(func):
        raise JobError(f"job function must be a dotted path like 'workers.jobs.name', got {func!r}")
    try:
        # Round-trip so what the worker receives is exactly what we validated.
        decoded: list[Any] = json.loads(json.dumps(list(args)))
    except (TypeError, ValueError) as exc:
        raise JobError(f"job arguments of {func} must be JSON (ids, not objects): {exc}") from None
    return decoded


def enqueue(
    func: str,
    *args: Any,
    job_id: str,
    queue: str | QueueName = QueueName.DEFAULT,
    at: datetime | None = None,
    retry_intervals: Sequence[int] = DEFAULT_RETRY_INTERVALS,
    timeout: int = DEFAULT_TIMEOUT,
    meta: dict[str, Any] | None = None,
    on_success: str | None = None,
    on_failure: str | None = None,
    connection: Redis | None = None,
) -> Job | None:
    """Queue ``func(*args)`` as job ``job_id``, or do nothing if that job already exists.

    Returns the new job, or None when RQ already holds a job with this id (queued,
    scheduled, running or recently finished): the caller's work is already on its way.
    """
    arguments = _check_call(func, args)
    rq_queue = get_queue(queue, connection)
    retry = (
        Retry(max=len(retry_intervals), interval=list(retry_intervals)) if retry_intervals else None
    )
    job = rq_queue.create_job(
        func,
        args=arguments,
        job_id=job_id,
        timeout=timeout,
        result_ttl=RESULT_TTL,
        retry=retry,
        meta=meta,
        on_success=Callback(on_success) if on_success else None,
        on_failure=Callback(on_failure) if on_failure else None,
    )
    try:
        if at is not None and at > utcnow():
            return rq_queue.schedule_job(job, at, unique=True)
        return rq_queue.enqueue_job(job, unique=True)
    except DuplicateJobError:
        return None


# --- the outbox ---------------------------------------------------------------------------


def defer(
    session: Session,
    func: str,
    *args: Any,
    key: str | None = None,
    queue: str | QueueName = QueueName.DEFAULT,
    not_before: datetime | None = None,
) -> None:
    """Promise ``func(*args)`` in the session's transaction; it is queued after commit.

    ``key`` names the work for deduplication (default: the function and its arguments):
    while a row with the same key is pending, deferring again changes nothing. If the
    transaction rolls back, nothing is queued.
    """
    arguments = _check_call(func, args)
    dedupe_key = key or job_id_for(func, *arguments)
    values = {
        "dedupe_key": dedupe_key[:255],
        "func": func,
        "args": arguments,
        "queue": str(queue),
        "state": OutboxState.PENDING,
        "not_before": not_before,
        "created_at": utcnow(),
        "redrives": 0,
        "last_error": "",
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxJob)
        .values(**values)
        .on_conflict_do_nothing(
            # A literal predicate, not a bound parameter: once psycopg prepares the statement
            # (after 5 runs on a connection) PostgreSQL's generic plan cannot match "state =
            # $1" to the partial unique index and refuses the ON CONFLICT.
            index_elements=["dedupe_key"],
            index_where=text("state = 'pending'"),
        )
        .returning(OutboxJob.id)
    )
    row_id = session.execute(statement).scalar_one_or_none()
    if row_id is None:
        return  # the same work is already pending
    pending: list[int] = session.info.setdefault(_SESSION_KEY, [])
    pending.append(row_id)
    if not event.contains(session, "after_commit", _push_after_commit):
        event.listen(session, "after_commit", _push_after_commit)
        event.listen(session, "after_soft_rollback", _forget_after_rollback)


def _forget_after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_SESSION_KEY, None)


def _push_after_commit(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a nested savepoint is released; the rows are
    # not committed then, and another connection cannot see them yet. Wait for the real one.
    if session.in_nested_transaction():
        return
    row_ids: list[int] = session.info.pop(_SESSION_KEY, [])
    if not row_ids:
        return
    database = get_db()
    # The committed session cannot run SQL inside its own after_commit hook.
    with database.session() as reader:
        rows = reader.scalars(select(OutboxJob).where(OutboxJob.id.in_(row_ids))).all()
        try:
            connection = get_redis()
            for row in rows:
                _push(row, connection)
        except Exception as exc:  # noqa: BLE001 - the change is committed; the sweep re-drives
            log.warning("outbox.push_deferred", rows=len(rows), error=type(exc).__name__)


def _push(row: OutboxJob, connection: Redis) -> Job | None:
    return enqueue(
        row.func,
        *row.args,
        job_id=row.rq_job_id,
        queue=row.queue,
        at=row.not_before,
        meta={"outbox_id": row.id},
        on_success="plugin.jobs.outbox_job_succeeded",
        on_failure="plugin.jobs.outbox_job_failed",
        connection=connection,
    )


def outbox_job_succeeded(job: Job, _connection: Redis, _result: Any) -> None:
    """RQ success callback: the promised work is done. Raises (so RQ retries) if not saved."""
    outbox_id = job.meta.get("outbox_id")
    if outbox_id is None:
        return
    with get_db().session_scope() as session:
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == outbox_id, OutboxJob.state == OutboxState.PENDING)
            .values(state=OutboxState.DONE, completed_at=utcnow(), last_error="")
        )


def outbox_job_failed(
    job: Job,
    _connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    _tb: Any,
) -> None:
    """RQ failure callback: remember why, so an admin can see it without reading logs."""
    outbox_id = job.meta.get("outbox_id")
    if outbox_id is None:
        return
    reason = f"{exc_type.__name__ if exc_type else 'Error'}: {exc_value}"[:500]
    with get_db().session_scope() as session:
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == outbox_id, OutboxJob.state == OutboxState.PENDING)
            .values(last_error=reason)
        )


@dataclass(frozen=True)
class RedriveReport:
    """What one sweep of the outbox did."""

    checked: int = 0
    pushed: int = 0
    completed: int = 0
    dead: int = 0


#: RQ statuses meaning "this job will still run (or is running)": leave it alone.
_ALIVE = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED})


def redrive_outbox(
    session: Session, connection: Redis, *, now: datetime | None = None, limit: int = 500
) -> RedriveReport:
    """Push again every due pending row whose job Redis no longer holds alive.

    Safe to run concurrently and repeatedly: RQ refuses a second job with the row's id.
    """
    now = now or utcnow()
    rows = session.scalars(
        select(OutboxJob)
        .where(OutboxJob.state == OutboxState.PENDING)
        .where((OutboxJob.not_before.is_(None)) | (OutboxJob.not_before <= now))
        .where(OutboxJob.created_at <= now - REDRIVE_GRACE)
        .where(
            OutboxJob.last_redrive_at.is_(None) | (OutboxJob.last_redrive_at <= now - REDRIVE_GRACE)
        )
        .order_by(OutboxJob.id)
        .limit(limit)
    ).all()
    pushed = completed = dead = 0
    for row in rows:
        try:
            job: Job | None = Job.fetch(
                row.rq_job_id, connection=connection, serializer=JSONSerializer
            )
        except NoSuchJobError:
            job = None
        status = job.get_status(refresh=False) if job is not None else None
        if status in _ALIVE:
            continue
        if status == JobStatus.FINISHED:
            # The job ran but its success callback did not record it (e.g. DB blip).
            row.state, row.completed_at = OutboxState.DONE, now
            completed += 1
            continue
        if row.redrives >= MAX_REDRIVES:
            row.state = OutboxState.DEAD
            dead += 1
            log.error("outbox.dead", outbox_id=row.id, func=row.func, redrives=row.redrives)
            continue
        if job is not None:
            job.delete()  # failed or stopped: clear it so the same id can be queued again
        row.redrives += 1
        row.last_redrive_at = now
        _push(row, connection)
        pushed += 1
    session.flush()
    if rows:
        log.info("outbox.redrive", checked=len(rows), pushed=pushed, completed=completed, dead=dead)
    return RedriveReport(checked=len(rows), pushed=pushed, completed=completed, dead=dead)
