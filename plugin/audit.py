"""Audit trail helpers: record who changed what, with the changed fields before and after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from plugin.models import AuditEvent

__all__ = ["diff_fields", "record_audit"]


def diff_fields(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields whose value changed, as (before, after)."""
    changed = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


def record_audit(
    session: Session,
    *,
    course_id: int,
    action: str,
    actor_user_id: int | None,
    program_id: int | None = None,
    target_type: str = "",
    target_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add an AuditEvent to ``session`` (committed with the change it describes)."""
    event = AuditEvent(
        course_id=course_id,
        program_id=program_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=dict(before or {}),
        after=dict(after or {}),
    )
    session.add(event)
    return event
