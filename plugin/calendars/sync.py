"""The database-free sync engine: run one connection's work with the fewest provider requests.

A per-connection job loads its pending intents, turns each into a :class:`WorkItem`, opens
the connection's provider and calls :func:`sync_connection`; it then stores what each
:class:`SyncOutcome` says (an :class:`EventResult`, a retry time, a drop, a stop). Several
connections at once go through :func:`sync_connections`, one provider per connection on a
bounded thread pool (httplib2, under google-api-python-client, is not thread-safe, so a
provider is never shared between threads).

Rules the engine applies, in this order:

1. Superseded: of several items for one key, only the highest version runs.
2. Organizer first: an attendee's item whose spec asks the provider to generate a Meet or
   Teams link (``virtual=generate``) for someone who is not the organizer waits for the
   organizer's link; it is sent with ``virtual=url`` and that link. Known links come from
   ``links`` (meeting id -> URL); links made in this run are used in a second pass.
3. Batches of ``max_batch_size`` (Google 50, Graph 20) through :func:`run_operations`.
   After a batch, a revoked grant or an exhausted quota stops the connection (the rest is
   not sent); throttling (429) or a wholly failed batch stops it too, with a retry time.
4. An update whose event the person deleted (404/410) is created again, under the same key.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from plugin.calendars.errors import (
    AuthRevokedError,
    CalendarError,
    ConflictError,
    EventGoneError,
    QuotaExhaustedError,
    RateLimitedError,
    StaleVersionError,
    TransientError,
)
from plugin.calendars.protocol import (
    BatchOutcome,
    CalendarProvider,
    OperationKind,
    SupportsBatch,
    run_operations,
)
from plugin.calendars.work import (
    ConnectionSync,
    RetryPolicy,
    SyncOutcome,
    SyncStatus,
    WorkItem,
    needs_organizer_link,
    with_conference_url,
)

__all__ = [
    "ConnectionSync",
    "ConnectionWork",
    "RetryPolicy",
    "SyncOutcome",
    "SyncStatus",
    "WorkItem",
    "needs_organizer_link",
    "sync_connection",
    "sync_connections",
    "with_conference_url",
]

logger = logging.getLogger(__name__)

#: Threads for :func:`sync_connections`: requests mostly wait on the network, so more
#: threads than cores pay off; each holds one open provider (its own HTTP connections).
DEFAULT_MAX_WORKERS = 16


class _Run:
    """The state of one connection's run across passes."""

    def __init__(
        self,
        connection_id: int | str,
        provider: CalendarProvider,
        policy: RetryPolicy,
        now: Callable[[], datetime],
    ) -> None:
        self.report = ConnectionSync(connection_id)
        self.provider = provider
        self.policy = policy
        self.now = now
        self.outcomes: dict[int, SyncOutcome] = {}  # position in the input -> outcome
        self.stop: SyncOutcome | None = None  # the template for everything not sent
        self.size = provider.max_batch_size if isinstance(provider, SupportsBatch) else 1

    def settle(self, index: int, outcome: SyncOutcome) -> None:
        self.outcomes[index] = outcome
        result = outcome.result
        item = outcome.item
        if (
            outcome.status is SyncStatus.DONE
            and result is not None
            and result.conference_url
            and item.is_organizer
            and item.meeting_id is not None
        ):
            self.report.links[item.meeting_id] = result.conference_url

    def run(self, batch: Sequence[tuple[int, WorkItem]]) -> None:
        """Send ``batch`` in chunks; classify; stop the connection when an answer says so."""
        for offset in range(0, len(batch), self.size):
            chunk = batch[offset : offset + self.size]
            if self.stop is not None:
                self.skip(chunk)
                continue
            operations = [item.operation_for() for _, item in chunk]
            self.report.calls += 1
            answers = run_operations(self.provider, operations)
            gone: list[tuple[int, WorkItem]] = []
            for (index, item), answer in zip(chunk, answers, strict=True):
                if (
                    isinstance(answer.error, EventGoneError)
                    and answer.operation.kind is OperationKind.UPDATE
                ):
                    # The person deleted it; the meeting still stands, so create it again.
                    gone.append((index, dataclasses.replace(item, ref=None)))
                    continue
                self.settle(index, self.classify(item, answer))
            self.decide_stop([self.outcomes[i] for i, _ in chunk if i in self.outcomes])
            if gone and self.stop is None:
                recreate = [
                    (i, dataclasses.replace(item, operation=OperationKind.CREATE))
                    for i, item in gone
                ]
                self.run(recreate)
            elif gone:
                self.skip(gone)

    def skip(self, items: Sequence[tuple[int, WorkItem]]) -> None:
        """After a stop: the same outcome as the item that stopped the connection, unsent."""
        stop = self.stop
        assert stop is not None
        for index, item in items:
            self.settle(index, dataclasses.replace(stop, item=item))

    def classify(self, item: WorkItem, answer: BatchOutcome) -> SyncOutcome:
        error = answer.error
        if error is None:
            return SyncOutcome(item, SyncStatus.DONE, result=answer.result)
        now = self.now()
        if isinstance(error, AuthRevokedError):
            return SyncOutcome(item, SyncStatus.CONNECTION_REVOKED, reason=str(error), error=error)
        if isinstance(error, QuotaExhaustedError):
            until = self.policy.quota_reset(now)
            return SyncOutcome(
                item, SyncStatus.QUOTA, retry_at=until, reason=str(error), error=error
            )
        if isinstance(error, StaleVersionError):
            return SyncOutcome(item, SyncStatus.STALE, reason=str(error), error=error)
        if isinstance(error, TransientError | ConflictError):
            retry_after = error.retry_after if isinstance(error, TransientError) else None
            when = self.policy.retry_at(now, item.attempts, retry_after)
            return SyncOutcome(
                item, SyncStatus.RETRY, retry_at=when, reason=str(error), error=error
            )
        return SyncOutcome(item, SyncStatus.FAILED, reason=str(error), error=error)

    def decide_stop(self, chunk: Sequence[SyncOutcome]) -> None:
        """After a chunk: does the connection stop, and what do the unsent items get?"""
        for outcome in chunk:
            if outcome.status is SyncStatus.CONNECTION_REVOKED:
                if self.report.revoked is None:
                    assert isinstance(outcome.error, AuthRevokedError)
                    self.report.revoked = outcome.error
                self.stop = dataclasses.replace(outcome, reason="not sent: " + outcome.reason)
                return
        for outcome in chunk:
            if outcome.status is SyncStatus.QUOTA:
                self.report.quota_until = outcome.retry_at
                self.stop = dataclasses.replace(outcome, reason="not sent: " + outcome.reason)
                return
        throttled = [o for o in chunk if isinstance(o.error, RateLimitedError)]
        all_transient = bool(chunk) and all(isinstance(o.error, TransientError) for o in chunk)
        if throttled or all_transient:
            # Slow down: the rest waits as long as the longest wait the service asked for.
            latest = max(throttled or chunk, key=lambda o: o.retry_at or self.now())
            self.stop = dataclasses.replace(latest, reason="not sent: " + latest.reason)

    def finish(self, items: Sequence[WorkItem]) -> ConnectionSync:
        self.report.outcomes = [self.outcomes[i] for i in range(len(items))]
        return self.report


def _supersede(items: Sequence[WorkItem]) -> tuple[list[int], dict[int, SyncOutcome]]:
    """Positions to run (the newest per key) and SUPERSEDED outcomes for the others."""
    newest: dict[str, int] = {}
    for index, item in enumerate(items):
        best = newest.get(item.key)
        if best is None or item.version > items[best].version:
            newest[item.key] = index
    dropped = {
        index: SyncOutcome(
            item,
            SyncStatus.SUPERSEDED,
            reason=f"intent {items[newest[item.key]].intent_id} (version "
            f"{items[newest[item.key]].version}) replaces it",
        )
        for index, item in enumerate(items)
        if newest[item.key] != index
    }
    return sorted(newest.values()), dropped


def _plan(
    items: Sequence[WorkItem], links: Mapping[int | str, str]
) -> tuple[dict[int, SyncOutcome], list[tuple[int, WorkItem]], list[tuple[int, WorkItem]]]:
    """(superseded outcomes, items to send now, items waiting for the organizer's link)."""
    keep, dropped = _supersede(items)
    now_items: list[tuple[int, WorkItem]] = []
    waiting: list[tuple[int, WorkItem]] = []
    for index in keep:
        item = items[index]
        if needs_organizer_link(item):
            link = links.get(item.meeting_id) if item.meeting_id is not None else None
            if link is None:
                waiting.append((index, item))
                continue
            item = with_conference_url(item, link)
        now_items.append((index, item))
    return dropped, now_items, waiting


def _send_waiting(
    run: _Run, waiting: Sequence[tuple[int, WorkItem]], links: Mapping[int | str, str]
) -> None:
    """Second pass: attendees whose organizer's link is now known; the others wait."""
    ready = []
    for index, item in waiting:
        link = links.get(item.meeting_id) if item.meeting_id is not None else None
        if link is None:
            run.settle(
                index,
                SyncOutcome(
                    item,
                    SyncStatus.RETRY,
                    retry_at=run.now() + run.policy.link_wait,
                    reason="waiting for the organizer's calendar to generate the meeting link",
                ),
            )
        else:
            ready.append((index, with_conference_url(item, link)))
    if ready:
        run.run(ready)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sync_connection(
    provider: CalendarProvider,
    items: Sequence[WorkItem],
    *,
    connection_id: int | str = "",
    links: Mapping[int | str, str] | None = None,
    policy: RetryPolicy | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> ConnectionSync:
    """Run one connection's work items; one outcome each, in input order.

    ``links`` maps meeting ids to links the organizer's calendar already generated (from
    the meeting row). Unexpected exceptions (bugs) propagate; provider answers never do.
    """
    known = dict(links or {})
    run = _Run(connection_id, provider, policy or RetryPolicy(), now)
    dropped, ready, waiting = _plan(items, known)
    run.outcomes.update(dropped)
    run.run(ready)
    _send_waiting(run, waiting, {**known, **run.report.links})
    return run.finish(items)


@dataclass(frozen=True, slots=True)
class ConnectionWork:
    """One connection's work for :func:`sync_connections`."""

    connection_id: int | str
    #: Opens the connection's provider; called in the worker thread that uses it.
    open: Callable[[], CalendarProvider]
    items: Sequence[WorkItem]


def sync_connections(
    works: Sequence[ConnectionWork],
    *,
    links: Mapping[int | str, str] | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    policy: RetryPolicy | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> list[ConnectionSync]:
    """Run many connections concurrently, organizers' generated links first; one report each.

    Phase 1 sends everything that does not wait for a link, every connection on its own
    thread; phase 2 sends the attendees' items with the links phase 1 made. A provider is
    opened once per connection, used by one thread at a time and closed at the end. An
    unexpected exception in one connection is kept on its report (``crash``, items left
    to retry) so the other connections' results are not lost; the caller should raise it.
    """
    known = dict(links or {})
    retry = policy or RetryPolicy()
    plans = [_plan(work.items, known) for work in works]
    runs: list[_Run | None] = [None] * len(works)
    crashes: dict[int, BaseException] = {}

    def guarded(index: int, step: Callable[[], None]) -> None:
        if index in crashes:
            return
        try:
            step()
        except Exception as exc:
            logger.exception("calendar sync of connection %s crashed", works[index].connection_id)
            crashes[index] = exc

    def first(index: int) -> None:
        def step() -> None:
            work = works[index]
            run = runs[index] = _Run(work.connection_id, work.open(), retry, now)
            dropped, ready, _ = plans[index]
            run.outcomes.update(dropped)
            run.run(ready)

        guarded(index, step)

    def second(index: int) -> None:
        def step() -> None:
            run = runs[index]
            assert run is not None
            _send_waiting(run, plans[index][2], known)

        guarded(index, step)

    try:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as executor:
            list(executor.map(first, range(len(works))))
            for run in runs:
                if run is not None:
                    known.update(run.report.links)
            list(executor.map(second, range(len(works))))
    finally:
        for run in runs:
            if run is not None:
                run.provider.close()
    return [
        _crashed(work, crashes[index], retry, now())
        if index in crashes
        else _finished(runs[index], work)
        for index, work in enumerate(works)
    ]


def _finished(run: _Run | None, work: ConnectionWork) -> ConnectionSync:
    assert run is not None
    return run.finish(work.items)


def _crashed(
    work: ConnectionWork, exc: BaseException, policy: RetryPolicy, now: datetime
) -> ConnectionSync:
    """Every item of a connection that could not run: revoked if opening said so, else retry.

    Results a crashed run got before the exception are not reported; running the items
    again is safe (every create is idempotent by key).
    """
    report = ConnectionSync(work.connection_id)
    if isinstance(exc, AuthRevokedError):
        report.revoked = exc
        status = SyncStatus.CONNECTION_REVOKED
    else:
        status = SyncStatus.RETRY
        if not isinstance(exc, CalendarError):
            report.crash = exc
    for item in work.items:
        report.outcomes.append(
            SyncOutcome(
                item,
                status,
                retry_at=policy.retry_at(now, item.attempts, None)
                if status is SyncStatus.RETRY
                else None,
                reason=f"not sent: {exc}",
                error=exc if isinstance(exc, CalendarError) else None,
            )
        )
    return report
