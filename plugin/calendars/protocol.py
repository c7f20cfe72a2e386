"""The interface every calendar provider implements, and how callers drive it.

The core (create, update, cancel) is :class:`CalendarProvider`. Free/busy and batching are
optional capabilities (:class:`SupportsFreeBusy`, :class:`SupportsBatch`): check with
``isinstance`` (the protocols are runtime-checkable) or use :func:`run_operations`, which
batches when the provider can and loops when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from plugin.calendars.errors import CalendarError
from plugin.calendars.types import BusyInterval, EventRef, EventResult, EventSpec

__all__ = [
    "BatchOutcome",
    "CalendarProvider",
    "Operation",
    "OperationKind",
    "SupportsBatch",
    "SupportsFreeBusy",
    "SupportsHealthCheck",
    "apply_operation",
    "run_operations",
]


@runtime_checkable
class CalendarProvider(Protocol):
    """Create, update and cancel events in one connected calendar, idempotently by key."""

    #: The registry name: "google", "microsoft", "caldav".
    kind: str

    def create_event(self, spec: EventSpec) -> EventResult:
        """Make the event keyed ``spec.key``; if it already exists, adopt it (never a twin)."""
        ...

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        """Bring the event to ``spec``; raises EventGoneError if it no longer exists."""
        ...

    def cancel_event(self, ref: EventRef) -> None:
        """Remove the event; an event already gone counts as cancelled."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SupportsFreeBusy(Protocol):
    """A provider that can tell when calendars are busy."""

    def free_busy(
        self, start: datetime, end: datetime, calendars: Sequence[str] = ()
    ) -> dict[str, list[BusyInterval]]:
        """Busy intervals (UTC) per calendar id; no ids means the connection's own calendar.

        ``start`` and ``end`` must be timezone-aware (ValueError otherwise).
        """
        ...


@runtime_checkable
class SupportsHealthCheck(Protocol):
    """A provider that can prove its connection works with one cheap request."""

    def check_connection(self) -> None:
        """Return if the calendar answers with these credentials; raise the neutral error
        (AuthRevokedError, TransientError, ...) otherwise. Refreshes tokens as needed."""
        ...


class OperationKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Operation:
    """One sync intent as a provider sees it."""

    kind: OperationKind
    key: str
    spec: EventSpec | None = None
    ref: EventRef | None = None

    @classmethod
    def create(cls, spec: EventSpec) -> Operation:
        return cls(OperationKind.CREATE, spec.key, spec=spec)

    @classmethod
    def update(cls, spec: EventSpec, ref: EventRef) -> Operation:
        return cls(OperationKind.UPDATE, spec.key, spec=spec, ref=ref)

    @classmethod
    def cancel(cls, ref: EventRef, spec: EventSpec | None = None) -> Operation:
        """Remove the event; ``spec`` (optional) is what it was, for providers that must
        describe what they cancel (an iTIP CANCEL names the meeting and its time)."""
        return cls(OperationKind.CANCEL, ref.key, spec=spec, ref=ref)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What happened to one operation of a batch: a result, nothing (cancelled) or an error."""

    operation: Operation
    result: EventResult | None = None
    error: CalendarError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class SupportsBatch(Protocol):
    """A provider that sends many operations in few HTTP requests."""

    #: Operations per HTTP batch request the service accepts.
    max_batch_size: int

    def run_batch(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        """Run every operation; one outcome each, in order. Never raises per-item errors."""
        ...


def apply_operation(provider: CalendarProvider, operation: Operation) -> EventResult | None:
    """Run one operation; errors are raised."""
    if operation.kind is OperationKind.CANCEL:
        assert operation.ref is not None
        provider.cancel_event(operation.ref)
        return None
    assert operation.spec is not None
    if operation.kind is OperationKind.CREATE:
        return provider.create_event(operation.spec)
    assert operation.ref is not None
    return provider.update_event(operation.spec, operation.ref)


def run_operations(
    provider: CalendarProvider, operations: Sequence[Operation]
) -> list[BatchOutcome]:
    """Run operations, batched when the provider supports it; one outcome each, in order."""
    if isinstance(provider, SupportsBatch):
        return provider.run_batch(operations)
    outcomes = []
    for operation in operations:
        try:
            outcomes.append(BatchOutcome(operation, result=apply_operation(provider, operation)))
        except CalendarError as exc:
            outcomes.append(BatchOutcome(operation, error=exc))
    return outcomes
