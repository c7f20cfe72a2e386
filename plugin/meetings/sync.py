"""Calendar sync: durable intents written with each change, drained per person by a job.

Writing (web side, in the change's transaction): :func:`write_sync_intents` supersedes the
pair's older pending intent, writes one intent per attendee for the new version, and
defers one ``workers.jobs.sync_calendar_intents(participant_id)`` per attendee through the
outbox, so nothing is queued if the change rolls back.

Draining (worker side): :func:`drain_sync_intents` takes a person's due intents, groups them
by the connection they go through, and hands each group, in batches, to the provider the
registry names (:func:`get_provider`). Providers never touch the database: they get plain
:class:`EventChange` values and answer with :class:`EventOutcome` values; this module
records what happened. State machine of an intent::

    pending --provider done--> done
    pending --newer version written--> superseded
    pending --retryable error--> pending (attempts+1, next_attempt_at backs off,
                                          Retry-After honoured) --too many--> failed
    pending --permanent error--> failed
    pending --connection revoked, or failing for a day--> pending on "ics" (e-mail
                                          invitation and feed; plugin.meetings.health
                                          tells the person and coordinators once)
    pending on "ics", no address or opted out --> done (last_error says why; feed only)

An intent whose version the provider already holds (``ExternalEvent.synced_version``) is
marked done without a request, so a job that runs twice sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs import QueueName, defer
from plugin.logs import get_logger
from plugin.meetings.health import FAILING_GIVE_UP, give_up_connection, invitation_blocker
from plugin.meetings.providers import (
    ConnectionContext,
    ConnectionFailing,
    ConnectionRevoked,
    EventChange,
    EventOutcome,
    EventProvider,
    OutcomeKind,
    ProviderUnavailable,
    get_provider,
)
from plugin.models import (
    ICS_PROVIDER,
    CalendarConnection,
    ConnectionHealth,
    ExternalEvent,
    Meeting,
    MeetingFormat,
    MeetingKind,
    MeetingStatus,
    Participant,
    SyncIntent,
    SyncOperation,
    SyncState,
)

__all__ = [
    "SYNC_JOB",
    "DrainReport",
    "drain_sync_intents",
    "event_change",
    "live_connection",
    "requeue_due_intents",
    "write_roster_intents",
    "write_sync_intents",
]

log = get_logger(__name__)

#: The job that drains one participant's intents (``plugin`` names it, never imports it).
SYNC_JOB: Final = "workers.jobs.sync_calendar_intents"
#: Changes handed to a provider in one call (Graph's $batch takes 20, Google's 1,000: the
#: provider splits further as its API needs).
BATCH_SIZE: Final = 100
#: Attempts before an intent is marked failed; the waits between them, in seconds.
MAX_ATTEMPTS: Final = 8
BACKOFF_SECONDS: Final = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
#: How long intents wait when their provider is not installed in this deployment.
UNAVAILABLE_RETRY: Final = timedelta(hours=1)


# --- writing intents ----------------------------------------------------------------------


def live_connection(session: Session, participant: Participant) -> CalendarConnection | None:
    """The connection a participant's meetings go to: their own, else their user's."""
    candidates = session.scalars(
        select(CalendarConnection)
        .where(
            CalendarConnection.revoked_at.is_(None),
            CalendarConnection.health != ConnectionHealth.REVOKED,
            or_(
                CalendarConnection.participant_id == participant.id,
                (CalendarConnection.participant_id.is_(None))
                & (CalendarConnection.user_id == participant.user_id)
                & (CalendarConnection.user_id.is_not(None)),
            ),
        )
        .order_by(CalendarConnection.participant_id.is_(None), CalendarConnection.id.desc())
    ).first()
    return candidates


def write_sync_intents(
    session: Session,
    meeting: Meeting,
    operation: SyncOperation,
    *,
    skip_attendees: frozenset[int] = frozenset(),
) -> list[SyncIntent]:
    """One pending intent per attendee for the meeting's current version, jobs deferred.

    Call in the change's transaction, after bumping ``meeting.version``.
    """
    session.flush()
    return _write_intents(
        session,
        meeting,
        [
            (attendee.participant, operation)
            for attendee in meeting.attendees
            if attendee.participant_id not in skip_attendees
        ],
    )


def write_roster_intents(
    session: Session,
    meeting: Meeting,
    *,
    added: Collection[int],
    removed: Sequence[Participant],
) -> list[SyncIntent]:
    """Intents for a meeting whose attendees changed: the removed get a cancellation, the
    added a new event, everyone else an update (the attendee list in it changed).

    Call in the change's transaction, after changing ``meeting.attendees`` and bumping
    ``meeting.version``. A removed person's cancellation stands even if the meeting changes
    again before it is sent: the drain supersedes an intent only for someone still invited.
    """
    session.flush()
    targets = [(person, SyncOperation.CANCEL) for person in removed]
    targets += [
        (
            attendee.participant,
            SyncOperation.CREATE if attendee.participant_id in added else SyncOperation.UPDATE,
        )
        for attendee in meeting.attendees
    ]
    return _write_intents(session, meeting, targets)


def _write_intents(
    session: Session, meeting: Meeting, targets: Sequence[tuple[Participant, SyncOperation]]
) -> list[SyncIntent]:
    written: list[SyncIntent] = []
    for person, operation in targets:
        session.execute(
            update(SyncIntent)
            .where(
                SyncIntent.meeting_id == meeting.id,
                SyncIntent.attendee_id == person.id,
                SyncIntent.state == SyncState.PENDING,
            )
            .values(state=SyncState.SUPERSEDED, completed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        connection = live_connection(session, person)
        intent = SyncIntent(
            meeting_id=meeting.id,
            attendee_id=person.id,
            connection_id=connection.id if connection is not None else None,
            provider=connection.provider if connection is not None else ICS_PROVIDER,
            meeting_version=meeting.version,
            operation=operation,
        )
        session.add(intent)
        written.append(intent)
    session.flush()
    for intent in written:
        _defer_drain(session, intent.attendee_id, f"i{intent.id}")
    return written


def _defer_drain(
    session: Session, participant_id: int, tag: str, not_before: datetime | None = None
) -> None:
    defer(
        session,
        SYNC_JOB,
        participant_id,
        key=f"calendar-sync-{participant_id}-{tag}",
        queue=QueueName.HIGH,
        not_before=not_before,
    )


def requeue_due_intents(session: Session, *, now: datetime | None = None) -> int:
    """Cron: defer a drain for every person with due pending intents (after a crash or loss)."""
    now = now or utcnow()
    ids = list(
        session.scalars(
            select(SyncIntent.attendee_id)
            .where(
                SyncIntent.state == SyncState.PENDING,
                (SyncIntent.next_attempt_at.is_(None)) | (SyncIntent.next_attempt_at <= now),
            )
            .distinct()
        )
    )
    for participant_id in ids:
        _defer_drain(session, participant_id, f"sweep{int(now.timestamp()) // 300}")
    return len(ids)


# --- draining -----------------------------------------------------------------------------


@dataclass
class DrainReport:
    """What one drain did, by outcome."""

    done: int = 0
    skipped: int = 0  #: done without a request (the provider already had the version)
    superseded: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0  #: no provider installed for them yet
    fell_back: int = 0  #: moved to e-mail invitations after a revoked connection
    requests: int = 0  #: provider calls made (batches)
    errors: list[str] = field(default_factory=list)
    #: Intents that used up their attempts in this drain (failed unless they fall back).
    exhausted: set[int] = field(default_factory=set)


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    base = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
    return timedelta(seconds=max(base, retry_after or 0))


def drain_sync_intents(
    session: Session,
    participant_id: int,
    *,
    now: datetime | None = None,
    providers: Callable[[str], EventProvider] = get_provider,
) -> DrainReport:
    """Apply a participant's due pending intents at their providers; safe to run twice."""
    now = now or utcnow()
    report = DrainReport()
    intents = list(
        session.scalars(
            select(SyncIntent)
            .where(
                SyncIntent.attendee_id == participant_id,
                SyncIntent.state == SyncState.PENDING,
                (SyncIntent.next_attempt_at.is_(None)) | (SyncIntent.next_attempt_at <= now),
            )
            .order_by(SyncIntent.meeting_id, SyncIntent.id)
            .with_for_update(skip_locked=True)
        )
    )
    groups: dict[tuple[str, int | None], list[SyncIntent]] = {}
    for intent in intents:
        if _superseded(intent):
            intent.state, intent.completed_at = SyncState.SUPERSEDED, now
            report.superseded += 1
            continue
        groups.setdefault((intent.provider, intent.connection_id), []).append(intent)
    for (provider_name, connection_id), group in groups.items():
        connection = session.get(CalendarConnection, connection_id) if connection_id else None
        if connection is not None and not connection.is_live:
            _fall_back(session, group, report)
            continue
        if provider_name == ICS_PROVIDER:
            blocked = invitation_blocker(session, group[0].attendee)
            if blocked is not None:  # no address, or opted out: the feed still has it
                for intent in group:
                    intent.state, intent.completed_at, intent.last_error = (
                        SyncState.DONE,
                        now,
                        blocked,
                    )
                report.skipped += len(group)
                continue
        try:
            provider = providers(provider_name)
        except ProviderUnavailable as exc:
            for intent in group:
                intent.last_error = str(exc)
                intent.next_attempt_at = now + UNAVAILABLE_RETRY
            report.waiting += len(group)
            continue
        _drain_group(session, provider, connection, group, now, report)
    session.flush()
    _schedule_next(session, participant_id, now)
    if intents:
        log.info(
            "calendar.drain",
            participant_id=participant_id,
            done=report.done,
            skipped=report.skipped,
            retrying=report.retrying,
            failed=report.failed,
            waiting=report.waiting,
            requests=report.requests,
        )
    return report


def _superseded(intent: SyncIntent) -> bool:
    """Whether a newer version of the meeting was written for this attendee.

    Every change writes an intent for each current attendee, so for them an older version
    is stale. Someone dropped from the meeting gets nothing newer: their cancellation must
    still be sent, whatever the meeting's version is now.
    """
    meeting = intent.meeting
    if intent.meeting_version >= meeting.version:
        return False
    return intent.operation != SyncOperation.CANCEL or any(
        a.participant_id == intent.attendee_id for a in meeting.attendees
    )


def _fall_back(session: Session, group: list[SyncIntent], report: DrainReport) -> None:
    for intent in group:
        intent.provider, intent.connection_id = ICS_PROVIDER, None
        intent.next_attempt_at = None
    report.fell_back += len(group)
    session.flush()
    _defer_drain(session, group[0].attendee_id, f"fallback{group[0].id}")


def _existing(session: Session, intent: SyncIntent) -> ExternalEvent | None:
    return session.scalar(
        select(ExternalEvent).where(
            ExternalEvent.meeting_id == intent.meeting_id,
            ExternalEvent.attendee_id == intent.attendee_id,
            ExternalEvent.provider == intent.provider,
        )
    )


def _drain_group(
    session: Session,
    provider: EventProvider,
    connection: CalendarConnection | None,
    group: list[SyncIntent],
    now: datetime,
    report: DrainReport,
) -> None:
    todo: list[tuple[SyncIntent, ExternalEvent | None]] = []
    for intent in group:
        existing = _existing(session, intent)
        if existing is not None and existing.synced_version >= intent.meeting_version:
            intent.state, intent.completed_at = SyncState.DONE, now
            report.skipped += 1
        else:
            todo.append((intent, existing))
    context = ConnectionContext(
        connection_id=connection.id if connection is not None else None,
        provider=provider.name,
        account=connection.account if connection is not None else "",
        credentials=connection.credentials if connection is not None else None,
    )
    for start in range(0, len(todo), BATCH_SIZE):
        batch = todo[start : start + BATCH_SIZE]
        changes = {i.sync_key: (i, e) for i, e in batch}
        try:
            answer = provider.apply_changes(context, [event_change(i, e) for i, e in batch])
        except ConnectionRevoked as exc:
            report.requests += 1
            if connection is not None:
                if exc.credentials is not None:
                    connection.credentials = exc.credentials
                give_up_connection(session, connection, str(exc), now=now)
            _fall_back(session, [i for i, _ in todo[start:]], report)
            return
        except ConnectionFailing as exc:
            report.requests += 1
            if connection is not None and exc.credentials is not None:
                connection.credentials = exc.credentials
            for intent, _ in todo[start:]:
                _retry(intent, now, exc.retry_after, str(exc), report)
            if connection is not None:
                _connection_failing(session, connection, [i for i, _ in todo[start:]], now, report)
            return
        report.requests += 1
        if connection is not None and answer.credentials is not None:
            connection.credentials = answer.credentials
        seen: set[str] = set()
        for outcome in answer.outcomes:
            pair = changes.get(outcome.key)
            if pair is None or outcome.key in seen:
                continue
            seen.add(outcome.key)
            _record_outcome(
                session, provider.name, connection, pair[0], pair[1], outcome, now, report
            )
        for key, (intent, _) in changes.items():
            if key not in seen:  # a provider that forgot one must not make it look done
                _retry(intent, now, None, "the provider gave no answer for this event", report)
        if connection is None:
            continue
        sent = [i for i, _ in batch]
        if any(i.state == SyncState.DONE for i in sent) or not any(
            i.state == SyncState.PENDING or i.id in report.exhausted for i in sent
        ):
            connection.health, connection.last_error = ConnectionHealth.OK, ""
            connection.last_synced_at, connection.failing_since = now, None
        elif _connection_failing(session, connection, [i for i, _ in todo[start:]], now, report):
            return


def _connection_failing(
    session: Session,
    connection: CalendarConnection,
    intents: list[SyncIntent],
    now: datetime,
    report: DrainReport,
) -> bool:
    """Note a run in which the connection took nothing; give it up if it keeps failing.

    It keeps failing when it has failed for :data:`FAILING_GIVE_UP`, or when an intent used
    up its attempts on it: then its meetings go by e-mail instead of being lost. True if
    the connection was given up (``intents`` then went to the e-mail path).
    """
    if connection.revoked_at is not None:  # another drain already stopped it
        _fall_back(session, [i for i in intents if i.state == SyncState.PENDING], report)
        return True
    errors = [i.last_error for i in intents if i.last_error]
    connection.health = ConnectionHealth.FAILING
    connection.last_error = (errors[0] if errors else "the calendar took no changes")[:500]
    connection.failing_since = connection.failing_since or now
    exhausted = [i for i in intents if i.id in report.exhausted]
    if now - connection.failing_since < FAILING_GIVE_UP and not exhausted:
        return False
    reason = f"failing since {connection.failing_since:%Y-%m-%d %H:%M} UTC: {connection.last_error}"
    give_up_connection(session, connection, reason, now=now)
    for intent in exhausted:  # not failed after all: it goes by e-mail
        intent.state, intent.completed_at = SyncState.PENDING, None
        report.failed -= 1
    _fall_back(session, [i for i in intents if i.state == SyncState.PENDING], report)
    return True


def _retry(
    intent: SyncIntent, now: datetime, retry_after: float | None, error: str, report: DrainReport
) -> None:
    intent.attempts += 1
    intent.last_error = error[:500]
    if intent.attempts >= MAX_ATTEMPTS:
        intent.state, intent.completed_at = SyncState.FAILED, now
        report.failed += 1
        report.exhausted.add(intent.id)
    else:
        intent.next_attempt_at = now + _backoff(intent.attempts, retry_after)
        report.retrying += 1


def _record_outcome(
    session: Session,
    provider_name: str,
    connection: CalendarConnection | None,
    intent: SyncIntent,
    existing: ExternalEvent | None,
    outcome: EventOutcome,
    now: datetime,
    report: DrainReport,
) -> None:
    if outcome.kind == OutcomeKind.RETRY:
        _retry(intent, now, outcome.retry_after, outcome.error or "temporary failure", report)
        return
    intent.attempts += 1
    if outcome.kind == OutcomeKind.FAILED:
        intent.state, intent.completed_at = SyncState.FAILED, now
        intent.last_error = (outcome.error or "the provider refused this event")[:500]
        report.failed += 1
        return
    if existing is None:
        existing = ExternalEvent(
            meeting_id=intent.meeting_id,
            attendee_id=intent.attendee_id,
            provider=provider_name,
            external_id=outcome.external_id or intent.sync_key,
        )
        session.add(existing)
    existing.connection_id = connection.id if connection is not None else None
    existing.external_id = outcome.external_id or existing.external_id
    existing.etag = outcome.etag
    existing.synced_version = intent.meeting_version
    existing.cancelled = intent.operation == SyncOperation.CANCEL
    intent.state, intent.completed_at, intent.last_error = SyncState.DONE, now, ""
    report.done += 1
    meeting = intent.meeting
    if outcome.conference_url and not meeting.conference_url and meeting.is_active:
        session.refresh(meeting, with_for_update=True)  # a person may be changing it now
    if outcome.conference_url and not meeting.conference_url and meeting.is_active:
        # The organizer's provider made a Meet/Teams link: everyone else's copy needs it.
        meeting.conference_url, meeting.conference_source = outcome.conference_url, provider_name
        meeting.version += 1
        existing.synced_version = meeting.version
        write_sync_intents(
            session, meeting, SyncOperation.UPDATE, skip_attendees=frozenset({intent.attendee_id})
        )


def _schedule_next(session: Session, participant_id: int, now: datetime) -> None:
    next_at = session.scalar(
        select(SyncIntent.next_attempt_at)
        .where(
            SyncIntent.attendee_id == participant_id,
            SyncIntent.state == SyncState.PENDING,
            SyncIntent.next_attempt_at > now,
        )
        .order_by(SyncIntent.next_attempt_at)
        .limit(1)
    )
    if next_at is not None:
        _defer_drain(session, participant_id, f"at{int(next_at.timestamp())}", not_before=next_at)


def event_change(intent: SyncIntent, existing: ExternalEvent | None) -> EventChange:
    """The plain description of an intent a provider receives."""
    meeting = intent.meeting
    attendee = intent.attendee
    organizer = meeting.organizer
    lines = [meeting.agenda.strip()] if meeting.agenda.strip() else []
    if meeting.conference_url:
        lines.append(f"Join: {meeting.conference_url}")
    if meeting.kind == MeetingKind.CIRCLE:  # who is in it changes as the circle does
        names = ", ".join(a.participant.display_name for a in meeting.attendees)
        lines.append(f"Attendees: {names}")
    if meeting.status == MeetingStatus.CANCELLED and meeting.cancel_reason:
        lines.append(f"Cancelled: {meeting.cancel_reason}")
    elif intent.operation == SyncOperation.CANCEL and meeting.is_active:
        lines.append("You are no longer invited to this meeting.")
    lines.append(f"Scheduled with Preceptor ({meeting.program.title}).")
    return EventChange(
        key=intent.sync_key,
        operation=intent.operation,
        version=intent.meeting_version,
        summary=meeting.title,
        description="\n\n".join(lines),
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        time_zone=meeting.time_zone,
        location=meeting.location,
        conference_url=meeting.conference_url,
        wants_conference=(
            meeting.format == MeetingFormat.VIRTUAL
            and not meeting.conference_url
            and meeting.organizer_id == intent.attendee_id
        ),
        status=meeting.status,
        attendee_email=attendee.email,
        attendee_name=attendee.display_name,
        organizer_email=organizer.email if organizer is not None else "",
        organizer_name=organizer.display_name if organizer is not None else "",
        external_id=existing.external_id if existing is not None else None,
        etag=existing.etag if existing is not None and existing.etag else None,
    )
