"""The meetings sync's :class:`EventProvider`, backed by the calendar providers and engine.

``plugin.meetings.sync.drain_sync_intents`` hands a batch of :class:`EventChange` values for
one connection to ``apply_changes``, with credentials the ``EncryptedText`` column already
decrypted. The bridge opens the connection's provider (:func:`open_provider`), turns them into
:class:`WorkItem` values, lets :func:`sync_connection` run them (superseding, batching,
stopping early, recreating deleted events) and maps each :class:`SyncOutcome` back:

============================  ==================================================
engine                        meetings
============================  ==================================================
``done``                      ``DONE`` (external id, etag, generated link)
``retry``                     ``RETRY``, ``retry_after`` = seconds to ``retry_at``
``stale``                     ``DONE``: the calendar already holds a newer version
``superseded``                no outcome: the newer item of the same key answers
``failed``                    ``FAILED`` with the reason
``connection_revoked``        raise :class:`ConnectionRevoked`
``quota``                     raise :class:`ConnectionFailing` until the quota resets
============================  ==================================================

Credentials the provider refreshed (Google access tokens, MSAL's rotating cache) come back
on :class:`ProviderBatch` (or on the raised exception), and the drain stores them encrypted.

:func:`install_calendar_providers` registers the bridge for google, microsoft, caldav and
ics (e-mail invitations); ``create_app`` calls it, so the web app and every worker have it.
Nothing happens at import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from flask import Flask, current_app

from plugin.calendars.errors import AuthRevokedError, CalendarError, TransientError
from plugin.calendars.protocol import CalendarProvider, OperationKind, SupportsFreeBusy
from plugin.calendars.registry import ProviderKind, open_provider
from plugin.calendars.settings import CalendarSettings, calendar_settings
from plugin.calendars.sync import SyncOutcome, SyncStatus, WorkItem, sync_connection
from plugin.calendars.types import Attendee, EventRef, EventSpec, VirtualKind
from plugin.meetings.providers import (
    BusyAnswer,
    ConnectionContext,
    ConnectionFailing,
    ConnectionRevoked,
    EventChange,
    EventOutcome,
    EventProvider,
    OutcomeKind,
    ProviderBatch,
    register_provider,
)

__all__ = [
    "BRIDGED_PROVIDERS",
    "CalendarBridge",
    "CalendarEndpoints",
    "calendar_endpoints",
    "install_calendar_providers",
    "work_item_for",
]

SETTINGS_KEY: Final = "preceptor.calendar_endpoints"
#: The meetings' provider names the bridge serves (``CalendarConnection.provider``, and
#: "ics" for the e-mail invitations of people with no connected calendar).
BRIDGED_PROVIDERS: Final = (
    ProviderKind.GOOGLE,
    ProviderKind.MICROSOFT,
    ProviderKind.CALDAV,
    ProviderKind.ICS,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _description(change: EventChange) -> str:
    """The meeting's description without its join line: the spec appends the link itself."""
    if not change.conference_url:
        return change.description
    join = f"Join: {change.conference_url}"
    return "\n\n".join(p for p in change.description.split("\n\n") if p.strip() != join)


def _virtual(change: EventChange) -> VirtualKind:
    if change.wants_conference:
        return VirtualKind.GENERATE
    return VirtualKind.URL if change.conference_url else VirtualKind.NONE


def work_item_for(change: EventChange) -> WorkItem:
    """The engine's view of one change: the attendee's calendar is the event's owner."""
    organizer = bool(change.organizer_email) and change.organizer_email == change.attendee_email
    attendees = [Attendee(change.attendee_email, change.attendee_name, organizer=organizer)]
    if change.organizer_email and not organizer:
        attendees.append(Attendee(change.organizer_email, change.organizer_name, organizer=True))
    spec = EventSpec(
        key=change.key,
        version=change.version,
        summary=change.summary,
        start=change.starts_at.replace(tzinfo=change.starts_at.tzinfo or UTC),
        end=change.ends_at.replace(tzinfo=change.ends_at.tzinfo or UTC),
        zone=change.time_zone,
        description=_description(change),
        location=change.location,
        virtual=_virtual(change),
        conference_url=change.conference_url or None,
        attendees=tuple(attendees),
        owner_email=change.attendee_email or None,
    )
    ref = (
        EventRef(change.key, change.external_id, change.etag)
        if change.external_id is not None
        else None
    )
    return WorkItem(
        intent_id=change.key,
        operation=OperationKind(change.operation.value),
        version=change.version,
        spec=spec,
        ref=ref,
        # Only the organizer's copy may ask for a generated link (the drain decides that),
        # so the engine never holds an item back waiting for one.
        organizer=organizer or change.wants_conference,
    )


def _seconds_until(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return max(0.0, (moment - now).total_seconds())


class CalendarBridge:
    """An :class:`EventProvider` for one provider kind (google, microsoft or caldav)."""

    def __init__(
        self,
        name: str,
        settings: CalendarSettings,
        *,
        http_client: Any = None,
        http_cache: MutableMapping[str, Any] | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.name = name
        self._settings = settings
        self._http_client = http_client  # MSAL's HTTP session (tests: the loopback one)
        self._http_cache = http_cache  # MSAL's metadata cache, shared by this process
        self._now = now

    def _open(
        self,
        credentials: dict[str, Any],
        saved: list[dict[str, Any]],
        settings: CalendarSettings | None = None,
    ) -> CalendarProvider:
        settings = settings or self._settings
        if self.name == ProviderKind.MICROSOFT:  # MSAL takes its HTTP session and cache
            from plugin.calendars.microsoft import open_provider as open_graph

            return open_graph(
                credentials,
                settings=settings,
                on_credentials_change=saved.append,
                http_client=self._http_client,
                http_cache=self._http_cache,
            )
        return open_provider(
            self.name, credentials, settings=settings, on_credentials_change=saved.append
        )

    def busy_intervals(
        self, connection: ConnectionContext, start: datetime, end: datetime, *, timeout: float
    ) -> BusyAnswer:
        """Free/busy of the connection's own calendar (Google freeBusy, Graph getSchedule,
        CalDAV free-busy-query), with a short HTTP timeout: a page is waiting."""
        try:
            credentials = json.loads(connection.credentials or "")
        except ValueError as exc:
            raise ConnectionRevoked(
                f"the stored {self.name} credentials cannot be read; reconnect the calendar"
            ) from exc
        saved: list[dict[str, Any]] = []

        def refreshed() -> str | None:
            return json.dumps(saved[-1]) if saved else None

        settings = replace(self._settings, http_timeout=min(timeout, self._settings.http_timeout))
        try:
            with closing(self._open(credentials, saved, settings)) as provider:
                if not isinstance(provider, SupportsFreeBusy):
                    raise ConnectionFailing(f"{self.name} calendars cannot tell free/busy")
                answer = provider.free_busy(start, end)
        except AuthRevokedError as exc:
            raise ConnectionRevoked(str(exc), credentials=refreshed()) from exc
        except TransientError as exc:
            raise ConnectionFailing(str(exc), exc.retry_after, credentials=refreshed()) from exc
        except CalendarError as exc:
            raise ConnectionFailing(str(exc), credentials=refreshed()) from exc
        # One calendar was asked for (the connection's own): whatever id the service keyed
        # it by ("primary", the mailbox address, a principal URL) it is this person's.
        intervals = sorted((b.start, b.end) for spans in answer.values() for b in spans)
        return BusyAnswer(intervals=intervals, credentials=refreshed())

    def apply_changes(
        self, connection: ConnectionContext, changes: Sequence[EventChange]
    ) -> ProviderBatch:
        """Run the changes through the sync engine; raise for the whole account."""
        try:
            # E-mail invitations need no account: the relay is in the settings.
            no_account = self.name == ProviderKind.ICS and connection.credentials is None
            credentials = {} if no_account else json.loads(connection.credentials or "")
        except ValueError as exc:
            raise ConnectionRevoked(
                f"the stored {self.name} credentials cannot be read; reconnect the calendar"
            ) from exc
        saved: list[dict[str, Any]] = []

        def refreshed() -> str | None:
            return json.dumps(saved[-1]) if saved else None

        try:
            with closing(self._open(credentials, saved)) as provider:
                report = sync_connection(
                    provider,
                    [work_item_for(change) for change in changes],
                    connection_id=connection.connection_id or "",
                    now=self._now,
                )
        except AuthRevokedError as exc:  # opening the provider (MSAL) can say so too
            raise ConnectionRevoked(str(exc), credentials=refreshed()) from exc
        except TransientError as exc:
            raise ConnectionFailing(str(exc), exc.retry_after, credentials=refreshed()) from exc
        except CalendarError as exc:
            raise ConnectionFailing(str(exc), credentials=refreshed()) from exc
        now = self._now()
        if report.revoked is not None:
            raise ConnectionRevoked(str(report.revoked), credentials=refreshed())
        if report.quota_until is not None:
            reason = next(
                (o.reason for o in report.outcomes if o.status is SyncStatus.QUOTA), "quota"
            )
            raise ConnectionFailing(
                f"{self.name} quota used up until {report.quota_until:%Y-%m-%d %H:%M} UTC: "
                f"{reason}",
                _seconds_until(report.quota_until, now),
                credentials=refreshed(),
            )
        outcomes = [
            _event_outcome(o, now) for o in report.outcomes if o.status is not SyncStatus.SUPERSEDED
        ]
        return ProviderBatch(outcomes=outcomes, credentials=refreshed())


def _event_outcome(outcome: SyncOutcome, now: datetime) -> EventOutcome:
    key = outcome.item.key
    if outcome.status is SyncStatus.DONE:
        result = outcome.result
        if result is None:  # a cancel
            return EventOutcome(key=key, kind=OutcomeKind.DONE)
        return EventOutcome(
            key=key,
            kind=OutcomeKind.DONE,
            external_id=result.external_id,
            etag=result.etag or "",
            conference_url=result.conference_url or "",
        )
    if outcome.status is SyncStatus.STALE:
        # Nothing to write: the calendar already shows a later version of the meeting.
        return EventOutcome(key=key, kind=OutcomeKind.DONE, error=outcome.reason)
    if outcome.status is SyncStatus.RETRY:
        return EventOutcome(
            key=key,
            kind=OutcomeKind.RETRY,
            retry_after=_seconds_until(outcome.retry_at, now),
            error=outcome.reason,
        )
    return EventOutcome(key=key, kind=OutcomeKind.FAILED, error=outcome.reason)


@dataclass(frozen=True)
class CalendarEndpoints:
    """The settings and MSAL HTTP session the app's calendar code uses."""

    settings: CalendarSettings
    http_client: Any = None


def calendar_endpoints(app: Flask | None = None) -> CalendarEndpoints:
    """What :func:`install_calendar_providers` installed on ``app`` (default: current)."""
    endpoints: CalendarEndpoints = (app or current_app).extensions[SETTINGS_KEY]
    return endpoints


def install_calendar_providers(
    app: Flask,
    settings: CalendarSettings | None = None,
    *,
    http_client: Any = None,
) -> None:
    """Register the bridge for google, microsoft, caldav and ics on ``app`` (create_app,
    tests)."""
    if settings is None:
        from plugin import get_settings

        settings = calendar_settings(get_settings(app))
    cache: dict[str, Any] = {}  # one MSAL metadata cache per app: one discovery per process
    # The connect views sign people in against the same endpoints.
    app.extensions[SETTINGS_KEY] = CalendarEndpoints(settings, http_client)

    def factory(name: str) -> Callable[[], EventProvider]:
        return lambda: CalendarBridge(name, settings, http_client=http_client, http_cache=cache)

    for name in BRIDGED_PROVIDERS:
        register_provider(str(name), factory(str(name)), app=app)
