"""What the calendar sync needs from a provider, and the registry that finds one by name.

``plugin.calendars`` implements :class:`EventProvider` for Google, Microsoft, CalDAV and
the e-mail (iTIP) path and registers each with :func:`register_provider` (in create_app or
at worker start; tests register fakes). Providers receive plain values and never touch the
database: :func:`plugin.meetings.sync.drain_sync_intents` records what they answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from flask import Flask, current_app

from plugin.models import ICS_PROVIDER, MeetingStatus, SyncOperation

__all__ = [
    "BusyAnswer",
    "BusyProvider",
    "ConnectionContext",
    "ConnectionFailing",
    "ConnectionRevoked",
    "EventChange",
    "EventOutcome",
    "EventProvider",
    "OutcomeKind",
    "ProviderBatch",
    "ProviderUnavailable",
    "get_provider",
    "register_provider",
]

REGISTRY_KEY: Final = "preceptor.calendar_providers"


class OutcomeKind(StrEnum):
    DONE = "done"  #: the calendar holds this version (a 409 on our own key counts as done)
    RETRY = "retry"  #: try again later (429, 5xx, rate limit); ``retry_after`` if the API said
    FAILED = "failed"  #: will not work by retrying (bad request, calendar gone)


@dataclass(frozen=True)
class EventChange:
    """One meeting, as one attendee's calendar must show it."""

    key: str  #: idempotency key: Google event id, Graph transactionId, iCalendar UID
    operation: SyncOperation
    version: int  #: iCalendar SEQUENCE
    summary: str
    description: str
    starts_at: datetime  #: UTC
    ends_at: datetime  #: UTC
    time_zone: str  #: the event's IANA zone
    location: str
    conference_url: str
    #: True for the organizer's copy of a virtual meeting with no pasted link: the
    #: provider may generate one (Meet, Teams) and return it in ``conference_url``.
    wants_conference: bool
    status: MeetingStatus
    attendee_email: str
    attendee_name: str
    organizer_email: str
    organizer_name: str
    #: What the provider returned last time (None: nothing recorded yet).
    external_id: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class EventOutcome:
    """What a provider did with one :class:`EventChange` (matched by ``key``)."""

    key: str
    kind: OutcomeKind
    external_id: str = ""
    etag: str = ""
    conference_url: str = ""
    retry_after: float | None = None
    error: str = ""


@dataclass(frozen=True)
class ConnectionContext:
    """The account a batch goes to. ``credentials`` is decrypted JSON text (None for ics)."""

    connection_id: int | None
    provider: str
    account: str
    credentials: str | None


@dataclass(frozen=True)
class ProviderBatch:
    """A provider's answer to one batch: outcomes, and refreshed credentials to store."""

    outcomes: Sequence[EventOutcome]
    credentials: str | None = None


class ConnectionRevoked(Exception):
    """The account withdrew consent (invalid_grant, 401 after refresh): stop using it.

    ``credentials``: anything the provider refreshed before it found out (to store).
    """

    def __init__(self, message: str, *, credentials: str | None = None) -> None:
        super().__init__(message)
        self.credentials = credentials


class ConnectionFailing(Exception):
    """The whole account cannot take requests for now (quota exceeded, provider down)."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, credentials: str | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: Refreshed credentials to store all the same (MSAL refresh tokens rotate).
        self.credentials = credentials


class ProviderUnavailable(LookupError):
    """No provider with that name is installed in this deployment."""


class EventProvider(Protocol):
    """What the sync needs from a calendar provider (plugin.calendars implements it)."""

    name: str

    def apply_changes(
        self, connection: ConnectionContext, changes: Sequence[EventChange]
    ) -> ProviderBatch:
        """Create, update or cancel each event; one outcome per change, any order.

        Must be idempotent per ``key``: a create of an existing key is done, a cancel of a
        missing event is done. Raise ConnectionRevoked or ConnectionFailing for the account.
        """
        ...


@dataclass(frozen=True)
class BusyAnswer:
    """When one account is busy: UTC intervals only (never titles), and refreshed
    credentials to store."""

    intervals: Sequence[tuple[datetime, datetime]]
    credentials: str | None = None


@runtime_checkable
class BusyProvider(Protocol):
    """An :class:`EventProvider` that can also read free/busy (an optional capability)."""

    def busy_intervals(
        self, connection: ConnectionContext, start: datetime, end: datetime, *, timeout: float
    ) -> BusyAnswer:
        """Busy intervals of the account's own calendar in ``[start, end)``.

        Every HTTP request gives up after ``timeout`` seconds. Raise ConnectionRevoked or
        ConnectionFailing (with ``retry_after`` when the service said) when it cannot answer.
        """
        ...


def register_provider(
    name: str, factory: Callable[[], EventProvider], *, app: Flask | None = None
) -> None:
    """Install a provider for ``app`` (default: the current app): create_app, or a test."""
    (app or current_app).extensions.setdefault(REGISTRY_KEY, {})[name] = factory


def get_provider(name: str) -> EventProvider:
    """The provider registered as ``name``; raises ProviderUnavailable if none is."""
    factories: dict[str, Callable[[], EventProvider]] = current_app.extensions.get(REGISTRY_KEY, {})
    factory = factories.get(name)
    if factory is None:
        raise ProviderUnavailable(
            f"no calendar provider {name!r} is installed; the intents wait for it"
            + (" (the person's ICS feed already shows the meeting)" if name == ICS_PROVIDER else "")
        )
    return factory()
