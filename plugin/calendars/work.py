"""The values the sync engine takes and returns: work items, outcomes, the retry policy.

Kept apart from :mod:`plugin.calendars.sync` so the job (and its tests) can build and read
them without the engine's threads. Everything here is plain data, JSON-friendly at the edges.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from plugin.calendars.errors import AuthRevokedError, CalendarError
from plugin.calendars.protocol import Operation, OperationKind
from plugin.calendars.types import EventRef, EventResult, EventSpec, VirtualKind

__all__ = [
    "ConnectionSync",
    "RetryPolicy",
    "SyncOutcome",
    "SyncStatus",
    "WorkItem",
    "needs_organizer_link",
    "with_conference_url",
]


class SyncStatus(StrEnum):
    """What the job does with an intent after a run."""

    #: In the calendar: store ``result`` (None for a cancel) and mark the intent done.
    DONE = "done"
    #: Try again no sooner than ``retry_at``.
    RETRY = "retry"
    #: A newer intent for the same event ran in this run: drop this one.
    SUPERSEDED = "superseded"
    #: The calendar already holds a newer version of the meeting: drop this one.
    STALE = "stale"
    #: The grant is gone: mark the connection (once), fall back to e-mail, stop its work.
    CONNECTION_REVOKED = "connection_revoked"
    #: Quota used up: nothing for this connection before ``retry_at``.
    QUOTA = "quota"
    #: Permanent: retrying will not help (a bad request, a bug); ``reason`` says why.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One sync intent as the engine sees it (built by the job from its rows)."""

    intent_id: int | str
    operation: OperationKind
    #: The meeting's version this intent was written for; the highest per key wins.
    version: int
    #: What the event should look like (create and update; optional for cancel).
    spec: EventSpec | None = None
    #: What was stored about the event before (ExternalEvent), if anything.
    ref: EventRef | None = None
    #: Groups the attendees of one meeting (for the organizer's generated link).
    meeting_id: int | str | None = None
    #: Is this the organizer's calendar? None: from ``spec`` (owner_email is an organizer).
    organizer: bool | None = None
    #: Failed attempts so far, for the backoff.
    attempts: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "operation", OperationKind(self.operation))
        if self.operation is not OperationKind.CANCEL and self.spec is None:
            raise ValueError(f"a {self.operation} work item needs a spec")
        if self.spec is None and self.ref is None:
            raise ValueError("a cancel work item needs a ref or a spec (for its key)")

    @property
    def key(self) -> str:
        if self.ref is not None:
            return self.ref.key
        assert self.spec is not None
        return self.spec.key

    @property
    def is_organizer(self) -> bool:
        if self.organizer is not None:
            return self.organizer
        spec = self.spec
        return spec is not None and any(
            a.organizer and a.email == spec.owner_email for a in spec.attendees
        )

    def operation_for(self) -> Operation:
        """The provider operation; an update without a ref addresses the event by key."""
        if self.operation is OperationKind.CANCEL:
            return Operation.cancel(self.ref or EventRef(self.key), self.spec)
        assert self.spec is not None
        if self.operation is OperationKind.CREATE and self.ref is None:
            return Operation.create(self.spec)
        # A create with a stored ref: the event exists, so bring it up to date instead.
        return Operation.update(self.spec, self.ref or EventRef(self.key))


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What happened to one work item."""

    item: WorkItem
    status: SyncStatus
    result: EventResult | None = None
    retry_at: datetime | None = None
    reason: str = ""
    error: CalendarError | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again: exponential backoff with jitter, never before Retry-After."""

    #: Delay after the first failure; doubles per attempt.
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    #: Fraction of the delay that is random, so throttled connections do not return together.
    jitter: float = 0.2
    #: An attendee waiting for the organizer's link is looked at again this soon.
    link_wait: timedelta = timedelta(seconds=30)
    #: Google's daily quota resets at midnight Pacific time.
    quota_zone: str = "America/Los_Angeles"

    def backoff(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        delay = min(self.cap, self.base * (1 << min(attempts, 20)))
        fraction: float = (rng or random).random()
        return delay - timedelta(seconds=delay.total_seconds() * self.jitter * fraction)

    def retry_at(self, now: datetime, attempts: int, retry_after: float | None) -> datetime:
        """``max(Retry-After, backoff)`` from ``now``."""
        wait = self.backoff(attempts)
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=retry_after))
        return now + wait

    def quota_reset(self, now: datetime) -> datetime:
        zone = ZoneInfo(self.quota_zone)
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
        return midnight.astimezone(UTC)


def needs_organizer_link(item: WorkItem) -> bool:
    """True for a non-organizer's item that asks for a generated link (it must wait)."""
    spec = item.spec
    return (
        spec is not None
        and spec.virtual is VirtualKind.GENERATE
        and item.operation is not OperationKind.CANCEL
        and not item.is_organizer
    )


def with_conference_url(item: WorkItem, url: str) -> WorkItem:
    """The item with the organizer's link as a plain URL (no second Meet or Teams room)."""
    assert item.spec is not None
    spec = dataclasses.replace(item.spec, virtual=VirtualKind.URL, conference_url=url)
    return dataclasses.replace(item, spec=spec)


@dataclass
class ConnectionSync:
    """One connection's run: an outcome per item (in input order) and the stop, if any."""

    connection_id: int | str
    outcomes: list[SyncOutcome] = field(default_factory=list)
    #: Set once when the grant is gone: mark the connection, tell the person.
    revoked: AuthRevokedError | None = None
    #: Set when the quota ran out: nothing before this time.
    quota_until: datetime | None = None
    #: Links the organizer's calendar generated in this run, per meeting id.
    links: dict[int | str, str] = field(default_factory=dict)
    #: Provider calls made (a batch counts once).
    calls: int = 0
    #: An unexpected exception (a bug, not a provider answer): the items are left to retry.
    crash: BaseException | None = None

    def by_status(self, status: SyncStatus) -> list[SyncOutcome]:
        return [o for o in self.outcomes if o.status is status]
