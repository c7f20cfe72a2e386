"""Operations endpoints: liveness, readiness, and an end-to-end job canary.

``/healthz`` answers while the process can serve. ``/readyz`` answers 200 only when the
database is reachable and fully migrated and Redis answers, so a load balancer sends
traffic only where it can succeed. It also reports (without failing on it) whether the
job pipeline works end to end: each call queues a tiny canary job at most every
CANARY_PERIOD seconds, and the page shows when a worker last ran one.
"""

from __future__ import annotations

import time
from typing import Any, Final, cast

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from rq import Worker
from rq.cron_scheduler_registry import get_registry_key as cron_registry_key
from sqlalchemy import text

from plugin.db import get_db
from plugin.jobs import QueueName, enqueue, get_redis, job_id_for
from plugin.migrate import current_heads, script_heads

__all__ = ["CANARY_KEY", "blueprint", "record_canary"]

blueprint = Blueprint("ops", __name__)

#: Redis key holding the UNIX time a worker last ran the canary job.
CANARY_KEY: Final = "preceptor:canary:last"
#: Seconds between canary jobs, whatever the rate of /readyz calls.
CANARY_PERIOD: Final = 30
CANARY_FUNC: Final = "plugin.ops.record_canary"


def record_canary(queued_at: float) -> float:
    """Job: note that a worker ran a job queued by the web process at ``queued_at``."""
    now = time.time()
    get_redis().set(CANARY_KEY, now, ex=24 * 3600)
    return now - queued_at


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process is up and serving requests."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: database reachable and migrated, Redis reachable."""
    checks = {
        "database": _check_database(),
        "migrations": _check_migrations(),
        "redis": _check_redis(),
    }
    ready = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if checks["redis"]["ok"]:
        body["jobs"] = _job_pipeline()
    return jsonify(body), 200 if ready else 503


def _failure(exc: Exception) -> dict[str, Any]:
    # The class name only: messages can hold host names or credentials.
    return {"ok": False, "error": type(exc).__name__}


def _check_database() -> dict[str, Any]:
    try:
        with get_db().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as not ready
        return _failure(exc)
    return {"ok": True}


def _expected_heads() -> set[str]:
    heads: set[str] | None = current_app.extensions.get("preceptor.migration_heads")
    if heads is None:  # the shipped migrations do not change while the process runs
        heads = current_app.extensions["preceptor.migration_heads"] = script_heads()
    return heads


def _check_migrations() -> dict[str, Any]:
    try:
        with get_db().engine.connect() as connection:
            current = current_heads(connection)
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    expected = _expected_heads()
    if current != expected:
        return {
            "ok": False,
            "error": "not at head: run `preceptor db upgrade`",
            "current": sorted(current),
            "expected": sorted(expected),
        }
    return {"ok": True, "revision": ",".join(sorted(current))}


def _check_redis() -> dict[str, Any]:
    try:
        get_redis().ping()
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    return {"ok": True}


def _job_pipeline() -> dict[str, Any]:
    """Workers and cron seen, and how long ago a worker last ran a job this process queued."""
    connection = get_redis()
    now = time.time()
    slot = int(now // CANARY_PERIOD)
    try:
        enqueue(
            CANARY_FUNC,
            now,
            job_id=job_id_for(CANARY_FUNC, slot),
            queue=QueueName.HIGH,
            retry_intervals=(),
            timeout=30,
        )
        last = cast(bytes | None, connection.get(CANARY_KEY))
        heartbeats = cast(
            list[tuple[bytes, float]],
            connection.zrange(cron_registry_key(), 0, -1, withscores=True),
        )
        workers = Worker.count(connection=connection)
    except Exception as exc:  # noqa: BLE001 - informational; Redis itself was checked above
        return _failure(exc)
    latest_cron = max((score for _name, score in heartbeats), default=None)
    return {
        "workers": workers,
        "last_job_seconds_ago": _age(now, last),
        "cron_heartbeat_seconds_ago": _age(now, latest_cron),
    }


def _age(now: float, then: bytes | float | None) -> float | None:
    return round(now - float(then), 1) if then is not None else None
