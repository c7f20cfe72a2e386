"""Backfill on connect: a newly connected calendar receives the person's upcoming meetings.

:func:`backfill_sync_intents` runs in the transaction that stores the connection
(:func:`plugin.meetings.connections.store_connection`), so the connection and its intents
commit together or not at all; the drain job is deferred through the outbox, after the
commit. It is idempotent. Connecting twice, or reconnecting after a revoke, creates no
duplicate events:

* a meeting that already has a pending intent is left alone (the connect moved it here);
* a meeting this account already holds at the current version (an ``ExternalEvent`` of
  the same provider and account) is only re-pointed at the new connection, with no
  request at all;
* anything else gets one pending intent for the meeting's current version. It is an
  update when a copy is recorded for this provider, so the provider reuses that event,
  or recreates it under the same key if it is gone. Otherwise it is a create, keyed per
  (meeting, attendee) like every other write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import (
    CalendarConnection,
    ExternalEvent,
    Meeting,
    MeetingAttendee,
    MeetingStatus,
    Participant,
    SyncIntent,
    SyncOperation,
    SyncState,
)

__all__ = ["backfill_sync_intents"]


def _upcoming(session: Session, participant: Participant, now: datetime) -> list[Meeting]:
    return list(
        session.scalars(
            select(Meeting)
            .join(MeetingAttendee, MeetingAttendee.meeting_id == Meeting.id)
            .where(
                MeetingAttendee.participant_id == participant.id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.ends_at > now,
            )
            .order_by(Meeting.starts_at, Meeting.id)
        )
    )


def _same_account(
    session: Session, existing: ExternalEvent, connection: CalendarConnection
) -> bool:
    if existing.connection_id is None:
        return False
    if existing.connection_id == connection.id:
        return True
    previous = session.get(CalendarConnection, existing.connection_id)
    return (
        previous is not None
        and previous.provider == connection.provider
        and previous.account.casefold() == connection.account.casefold()
    )


def backfill_sync_intents(
    session: Session,
    participant: Participant,
    connection: CalendarConnection,
    *,
    now: datetime | None = None,
) -> list[SyncIntent]:
    """Pending intents that bring ``participant``'s upcoming meetings to ``connection``.

    Call in the connection's transaction; the caller defers the drain (after commit).
    """
    now = now or utcnow()
    session.flush()
    pending = set(
        session.scalars(
            select(SyncIntent.meeting_id).where(
                SyncIntent.attendee_id == participant.id, SyncIntent.state == SyncState.PENDING
            )
        )
    )
    written: list[SyncIntent] = []
    for meeting in _upcoming(session, participant, now):
        if meeting.id in pending:
            continue
        existing = session.scalar(
            select(ExternalEvent).where(
                ExternalEvent.meeting_id == meeting.id,
                ExternalEvent.attendee_id == participant.id,
                ExternalEvent.provider == connection.provider,
            )
        )
        operation = SyncOperation.CREATE
        if existing is not None:
            same = _same_account(session, existing, connection)
            if same and not existing.cancelled and existing.synced_version >= meeting.version:
                existing.connection_id = connection.id  # it is there already: nothing to send
                continue
            if not same:
                # Recorded for another account: unknown in this one, so the drain must ask.
                existing.synced_version = 0
            existing.connection_id = connection.id
            if not existing.cancelled:
                operation = SyncOperation.UPDATE
        intent = SyncIntent(
            meeting_id=meeting.id,
            attendee_id=participant.id,
            connection_id=connection.id,
            provider=connection.provider,
            meeting_version=meeting.version,
            operation=operation,
        )
        session.add(intent)
        written.append(intent)
    session.flush()
    return written
