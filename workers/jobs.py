"""Job functions: thin, JSON arguments (ids), idempotent; the work is in plugin services."""

from __future__ import annotations

from plugin.db import get_db
from plugin.jobs import get_redis
from plugin.jobs import redrive_outbox as redrive_outbox_rows

__all__ = ["drop_retired_tool_keys", "redrive_outbox"]


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
