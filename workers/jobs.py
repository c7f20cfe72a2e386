"""Job functions: thin, JSON arguments (ids), idempotent; the work is in plugin services."""

from __future__ import annotations

from plugin.db import get_db
from plugin.jobs import get_redis
from plugin.jobs import redrive_outbox as redrive_outbox_rows

__all__ = ["drop_retired_tool_keys", "queue_roster_syncs", "redrive_outbox", "sync_course_roster"]


def redrive_outbox() -> dict[str, int]:
    """Cron: re-queue outbox rows whose jobs Redis lost or failed."""
    with get_db().session_scope() as session:
        report = redrive_outbox_rows(session, get_redis())
    return {
        "checked": report.checked,
        "pushed": report.pushed,
        "completed": report.completed,
        "dead": report.dead,
    }


def drop_retired_tool_keys() -> int:
    """Cron: delete tool keys whose publication overlap has ended."""
    from plugin.lti.tool_keys import drop_retired_keys

    with get_db().session_scope() as session:
        return drop_retired_keys(session)


def sync_course_roster(course_id: int) -> dict[str, int]:
    """Pull one course's NRPS roster (after its first launch, then daily)."""
    import requests

    from plugin.lti.roster import sync_roster

    with get_db().session_scope() as session, requests.Session() as http:
        report = sync_roster(session, course_id, http)
    return {"members": report.members, "added": report.added, "deactivated": report.deactivated}


def queue_roster_syncs() -> int:
    """Cron (daily): queue a roster pull for every course whose platform offers NRPS."""
    from sqlalchemy import select

    from plugin.jobs import QueueName, defer
    from plugin.models import Course

    with get_db().session_scope() as session:
        ids = list(session.scalars(select(Course.id).where(Course.nrps_url != "")))
        for course_id in ids:
            defer(
                session,
                "workers.jobs.sync_course_roster",
                course_id,
                key=f"roster-{course_id}",
                queue=QueueName.LOW,
            )
    return len(ids)
