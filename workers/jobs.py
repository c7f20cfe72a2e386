"""Job functions: thin, JSON arguments (ids), idempotent; the work is in plugin services."""

from __future__ import annotations

from plugin.db import get_db
from plugin.jobs import get_redis
from plugin.jobs import redrive_outbox as redrive_outbox_rows

__all__ = ["redrive_outbox"]


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
