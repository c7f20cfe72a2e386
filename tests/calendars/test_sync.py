"""The sync engine against the fake Google and Graph services, through the real clients.

Requests are counted at the fakes (``counts["http"]``: one per HTTP request, a batch is
one; ``counts["api"]``: one per operation, batch items included).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plugin.calendars.errors import AuthRevokedError, RateLimitedError
from plugin.calendars.protocol import CalendarProvider, OperationKind
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.sync import (
    ConnectionWork,
    RetryPolicy,
    SyncOutcome,
    SyncStatus,
    WorkItem,
    sync_connection,
    sync_connections,
)
from plugin.calendars.types import Attendee, EventRef, EventSpec, VirtualKind, event_key
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.graph import FakeGraph, LoopbackSession

MakeSpec = Callable[..., EventSpec]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: No jitter, a short base: retry times are exact.
POLICY = RetryPolicy(base=timedelta(seconds=10), jitter=0.0)
MENTOR = "mentor@example.edu"
MENTEE = "mentee@example.edu"


def clock() -> datetime:
    return NOW


@dataclass
class Service:
    """One fake calendar service and how to open providers on it."""

    kind: str
    fake: Any
    #: owner -> an opener of a new provider for that owner (grant made once).
    opener: Callable[[str], Callable[[], CalendarProvider]]

    def live(self, owner: str = MENTOR) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.fake.live_events(owner)
        return events

    def revoke(self, owner: str, credentials: dict[str, Any]) -> None:
        if self.kind == "google":
            self.fake.revoke(credentials["refresh_token"])
        else:
            self.fake.revoke(owner)


@pytest.fixture
def google(
    google_fake: tuple[FakeGoogleCalendar, str], google_settings: CalendarSettings
) -> Service:
    from plugin.calendars.google import open_provider

    fake, _ = google_fake

    def opener(owner: str) -> Callable[[], CalendarProvider]:
        credentials = fake.grant(owner)
        return lambda: open_provider(credentials, settings=google_settings)

    service = Service("google", fake, opener)
    return service


@pytest.fixture
def graph(
    graph_fake: tuple[FakeGraph, int],
    graph_settings: CalendarSettings,
    graph_connection: Callable[..., tuple[Any, list[dict[str, Any]]]],
) -> Service:
    from plugin.calendars.microsoft import open_provider

    fake, port = graph_fake
    cache: dict[str, Any] = {}

    def opener(owner: str) -> Callable[[], CalendarProvider]:
        _, saved = graph_connection(owner)  # signs in through MSAL once
        credentials = saved[-1]
        return lambda: open_provider(
            credentials,
            settings=graph_settings,
            http_client=LoopbackSession(port),
            http_cache=cache,
        )

    return Service("microsoft", fake, opener)


@pytest.fixture(params=["google", "microsoft"])
def service(request: pytest.FixtureRequest) -> Service:
    """Each test runs against both services."""
    chosen: Service = request.getfixturevalue("google" if request.param == "google" else "graph")
    return chosen


@pytest.fixture
def provider(service: Service) -> Iterator[CalendarProvider]:
    opened = service.opener(MENTOR)()
    yield opened
    opened.close()


def creates(make_spec: MakeSpec, meetings: range, **changes: Any) -> list[WorkItem]:
    return [
        WorkItem(
            intent_id=n,
            operation=OperationKind.CREATE,
            version=changes.get("version", 1),
            spec=make_spec(meeting=n, **changes),
            meeting_id=n,
        )
        for n in meetings
    ]


def statuses(outcomes: list[SyncOutcome]) -> list[SyncStatus]:
    return [o.status for o in outcomes]


def reset_counts(service: Service) -> None:
    service.fake.counts.clear()


def test_happy_path_is_batched(
    service: Service, provider: CalendarProvider, make_spec: MakeSpec
) -> None:
    reset_counts(service)
    report = sync_connection(provider, creates(make_spec, range(60)), now=clock)
    assert statuses(report.outcomes) == [SyncStatus.DONE] * 60
    assert all(o.result is not None and o.result.external_id for o in report.outcomes)
    batch_size = 50 if service.kind == "google" else 20
    expected = -(-60 // batch_size)  # 2 Google batches, 3 Graph batches
    assert service.fake.counts["http"] == expected == report.calls
    assert service.fake.counts["api"] == 60
    assert len(service.live()) == 60


def test_mixed_outcomes_in_one_batch(
    service: Service, provider: CalendarProvider, make_spec: MakeSpec
) -> None:
    """A 429 inside a batch retries just that item, no sooner than Retry-After."""
    existing = provider.create_event(make_spec(meeting=90, version=4))
    items = [
        *creates(make_spec, range(4)),
        WorkItem(  # the calendar already holds version 4: this version 3 is dropped
            "stale",
            OperationKind.UPDATE,
            3,
            spec=make_spec(meeting=90, version=3),
            ref=replace(existing.ref(), etag='W/"old"' if service.kind != "google" else '"1"'),
        ),
        WorkItem("old", OperationKind.CANCEL, 1, ref=EventRef(event_key(3, 1))),  # superseded
        WorkItem("gone", OperationKind.CANCEL, 2, ref=EventRef(event_key(77, 1))),  # no event
    ]
    reset_counts(service)
    service.fake.faults.fail_next(1, 429, "rateLimitExceeded", retry_after=120, scope="batch_item")
    report = sync_connection(provider, items, now=clock, policy=POLICY)
    by_id = {o.item.intent_id: o for o in report.outcomes}
    assert by_id[0].status is SyncStatus.RETRY
    assert isinstance(by_id[0].error, RateLimitedError)
    assert by_id[0].retry_at == NOW + timedelta(seconds=120)
    assert [by_id[n].status for n in (1, 2, 3)] == [SyncStatus.DONE] * 3
    assert by_id["stale"].status is SyncStatus.STALE
    assert by_id["old"].status is SyncStatus.SUPERSEDED
    assert by_id["gone"].status is SyncStatus.DONE
    assert service.fake.counts["batch"] == 1
    # Only the throttled one runs again, and it is the only new event.
    again = sync_connection(provider, [by_id[0].item], now=clock)
    assert statuses(again.outcomes) == [SyncStatus.DONE]
    assert len(service.live()) == 5


def test_throttling_stops_the_rest_of_the_connection(google: Service, make_spec: MakeSpec) -> None:
    provider = google.opener(MENTOR)()
    google.fake.faults.fail_next(1, 429, "rateLimitExceeded", retry_after=60, scope="batch_item")
    report = sync_connection(provider, creates(make_spec, range(120)), now=clock, policy=POLICY)
    assert google.fake.counts["batch"] == 1  # the next 70 were not sent into the throttle
    retry = report.by_status(SyncStatus.RETRY)
    assert len(retry) == 71
    assert {o.retry_at for o in retry} == {NOW + timedelta(seconds=60)}
    provider.close()


def test_token_revoked_mid_run_stops_the_connection(
    service: Service, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = service.opener(MENTOR)()
    credentials: dict[str, Any] = {}
    if service.kind == "google":
        credentials = {"refresh_token": provider._credentials.refresh_token}  # type: ignore[attr-defined]
    real_run_batch = provider.run_batch  # type: ignore[attr-defined]
    calls = 0

    def revoke_after_first(operations: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            service.revoke(MENTOR, credentials)
        return real_run_batch(operations)

    monkeypatch.setattr(provider, "run_batch", revoke_after_first)
    items = creates(make_spec, range(3 * provider.max_batch_size))  # type: ignore[attr-defined]
    report = sync_connection(provider, items, now=clock)
    size = provider.max_batch_size  # type: ignore[attr-defined]
    assert statuses(report.outcomes) == (
        [SyncStatus.DONE] * size + [SyncStatus.CONNECTION_REVOKED] * (2 * size)
    )
    assert isinstance(report.revoked, AuthRevokedError)
    assert calls == 2  # the third chunk was never sent
    assert service.fake.counts["batch"] == 2
    assert len(service.live()) == size
    provider.close()


def rerun_until_done(
    provider: CalendarProvider, items: list[WorkItem], rounds: int = 10
) -> tuple[dict[Any, SyncOutcome], int]:
    """Play the job: run, then run again what asks to retry (attempts + 1), bounded."""
    final: dict[Any, SyncOutcome] = {}
    pending = items
    for round_ in range(1, rounds + 1):
        report = sync_connection(provider, pending, now=clock, policy=POLICY)
        pending = []
        for outcome in report.outcomes:
            final[outcome.item.intent_id] = outcome
            if outcome.status is SyncStatus.RETRY:
                pending.append(replace(outcome.item, attempts=outcome.item.attempts + 1))
        if not pending:
            return final, round_
    raise AssertionError(f"still pending after {rounds} rounds: {pending}")


def test_5xx_for_a_while_then_recovery_without_duplicates(
    service: Service, provider: CalendarProvider, make_spec: MakeSpec
) -> None:
    items = creates(make_spec, range(8))
    # Some answers are lost after the service made the event, some before.
    service.fake.faults.fail_next(3, 503, after_commit=True)
    service.fake.faults.fail_next(9, 503)
    final, rounds = rerun_until_done(provider, items)
    assert rounds > 1
    assert {o.status for o in final.values()} == {SyncStatus.DONE}
    live = service.live()
    assert len(live) == 8
    ids = {o.result.external_id for o in final.values() if o.result is not None}
    assert ids == {event["id"] for event in live}


def test_lost_response_after_commit_then_retry_is_exactly_one_event(
    service: Service, provider: CalendarProvider, make_spec: MakeSpec
) -> None:
    service.fake.faults.fail_next(1, 503, after_commit=True, scope="batch_item")
    first = sync_connection(provider, creates(make_spec, range(1)), now=clock, policy=POLICY)
    assert statuses(first.outcomes) == [SyncStatus.RETRY]
    assert len(service.live()) == 1  # made, but we were not told
    second = sync_connection(provider, [first.outcomes[0].item], now=clock)
    assert statuses(second.outcomes) == [SyncStatus.DONE]
    result = second.outcomes[0].result
    assert result is not None
    assert [event["id"] for event in service.live()] == [result.external_id]


def test_the_same_work_twice_creates_nothing_new(
    service: Service, provider: CalendarProvider, make_spec: MakeSpec
) -> None:
    items = creates(make_spec, range(10))
    first = sync_connection(provider, items, now=clock)
    stored = len(service.fake.events)
    # The job crashed before storing results: the same creates run again (409 / transactionId).
    again = sync_connection(provider, items, now=clock)
    assert statuses(again.outcomes) == [SyncStatus.DONE] * 10
    assert len(service.fake.events) == stored == 10
    assert [o.result.external_id for o in again.outcomes if o.result] == [
        o.result.external_id for o in first.outcomes if o.result
    ]
    # The job stored the results: a rerun sends updates with etags, and inserts nothing.
    reset_counts(service)
    with_refs = [
        replace(item, ref=outcome.result.ref())
        for item, outcome in zip(items, again.outcomes, strict=True)
        if outcome.result is not None
    ]
    third = sync_connection(provider, with_refs, now=clock)
    assert statuses(third.outcomes) == [SyncStatus.DONE] * 10
    assert service.fake.counts["insert"] == 0
    assert service.fake.counts["http"] == 1
    assert len(service.fake.events) == 10


def test_a_deleted_event_is_created_again_on_update(graph: Service, make_spec: MakeSpec) -> None:
    provider = graph.opener(MENTOR)()
    made = provider.create_event(make_spec(meeting=5))
    graph.fake.events.pop((MENTOR, made.external_id))  # the person deleted it in Outlook
    update = WorkItem(
        5, OperationKind.UPDATE, 2, spec=make_spec(meeting=5, version=2), ref=made.ref()
    )
    report = sync_connection(provider, [update], now=clock)
    assert statuses(report.outcomes) == [SyncStatus.DONE]
    assert [event["subject"] for event in graph.live()] == [make_spec().summary]
    provider.close()


def test_quota_stops_the_connection_until_midnight_pacific(
    google: Service, make_spec: MakeSpec
) -> None:
    provider = google.opener(MENTOR)()
    google.fake.faults.fail_next(1, 403, "quotaExceeded", scope="batch_item")
    report = sync_connection(provider, creates(make_spec, range(60)), now=clock)
    quota = report.by_status(SyncStatus.QUOTA)
    assert len(quota) == 11  # the one refused and the 10 of the next batch, never sent
    assert report.quota_until == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 00:00 PST
    assert google.fake.counts["batch"] == 1
    provider.close()


def meeting_items(
    make_spec: MakeSpec, meeting: int, virtual: VirtualKind = VirtualKind.GENERATE
) -> tuple[WorkItem, WorkItem]:
    """The organizer's (mentor's) and the attendee's (mentee's) items for one meeting."""
    people = (Attendee(MENTOR, "Dr. Ada Mentor", organizer=True), Attendee(MENTEE, "Sam Mentee"))
    specs = [
        make_spec(meeting=meeting, attendee=n, owner_email=owner, attendees=people, virtual=virtual)
        for n, owner in ((1, MENTOR), (2, MENTEE))
    ]
    return tuple(  # type: ignore[return-value]
        WorkItem(f"{meeting}-{n}", OperationKind.CREATE, 1, spec=spec, meeting_id=meeting)
        for n, spec in enumerate(specs)
    )


@pytest.mark.parametrize("organizer_on", ["google", "microsoft"])
def test_organizer_generates_the_link_and_the_attendee_gets_it_as_a_url(
    google: Service, graph: Service, make_spec: MakeSpec, organizer_on: str
) -> None:
    host, guest = (google, graph) if organizer_on == "google" else (graph, google)
    organizer_item, attendee_item = meeting_items(make_spec, 1)
    reports = sync_connections(
        [
            ConnectionWork("guest", guest.opener(MENTEE), [attendee_item]),
            ConnectionWork("host", host.opener(MENTOR), [organizer_item]),
        ],
        now=clock,
    )
    assert [statuses(r.outcomes) for r in reports] == [[SyncStatus.DONE]] * 2
    link = reports[1].links[1]
    assert link.startswith(
        "https://meet.google.com/" if organizer_on == "google" else "https://teams.microsoft.com/"
    )
    sent = reports[0].outcomes[0].item.spec
    assert sent is not None
    assert sent.virtual is VirtualKind.URL
    assert sent.conference_url == link
    (event,) = guest.live(MENTEE)
    # No second Meet or Teams room in the attendee's calendar, just the organizer's link.
    assert "conferenceData" not in event
    assert "onlineMeeting" not in event
    text = event.get("description") or event["body"]["content"]
    assert f"Join: {link}" in text


def test_an_attendee_waits_for_the_organizers_link(google: Service, make_spec: MakeSpec) -> None:
    provider = google.opener(MENTEE)()
    _, attendee_item = meeting_items(make_spec, 1)
    waiting = sync_connection(provider, [attendee_item], now=clock, policy=POLICY)
    assert statuses(waiting.outcomes) == [SyncStatus.RETRY]
    assert waiting.outcomes[0].retry_at == NOW + POLICY.link_wait
    assert google.fake.counts["http"] == 0
    link = "https://meet.google.com/abc-defg-hij"
    ready = sync_connection(provider, [attendee_item], links={1: link}, now=clock)
    assert statuses(ready.outcomes) == [SyncStatus.DONE]
    assert google.live(MENTEE)[0]["source"]["url"] == link
    provider.close()


def test_connections_run_concurrently_with_one_provider_each(
    google: Service, graph: Service, make_spec: MakeSpec
) -> None:
    """Every connection opens its provider before any finishes: they run side by side."""
    people = [(google, f"g{n}@example.edu") for n in range(3)] + [
        (graph, f"m{n}@example.edu") for n in range(3)
    ]
    barrier = threading.Barrier(len(people), timeout=30)
    opened: list[tuple[str, int]] = []
    lock = threading.Lock()

    def opening(
        owner: str, open_: Callable[[], CalendarProvider]
    ) -> Callable[[], CalendarProvider]:
        def open_in_thread() -> CalendarProvider:
            with lock:
                opened.append((owner, threading.get_ident()))
            barrier.wait()  # raises BrokenBarrierError unless all six are open at once
            return open_()

        return open_in_thread

    works = [
        ConnectionWork(
            owner,
            opening(owner, service.opener(owner)),
            creates(make_spec, range(25), owner_email=owner),
        )
        for service, owner in people
    ]
    reports = sync_connections(works, max_workers=6, now=clock)
    assert [r.crash for r in reports] == [None] * 6
    assert all(statuses(r.outcomes) == [SyncStatus.DONE] * 25 for r in reports)
    assert sorted(owner for owner, _ in opened) == sorted(owner for _, owner in people)
    assert len({ident for _, ident in opened}) == 6
    for service, owner in people:
        assert len(service.live(owner)) == 25
    assert google.fake.counts["batch"] == 3 * 1  # 25 fit one Google batch
    assert graph.fake.counts["batch"] == 3 * 2  # 20 + 5


def test_a_crashing_connection_does_not_lose_the_others(
    google: Service, make_spec: MakeSpec
) -> None:
    def broken() -> CalendarProvider:
        raise RuntimeError("a bug")

    reports = sync_connections(
        [
            ConnectionWork("ok", google.opener(MENTOR), creates(make_spec, range(2))),
            ConnectionWork("bad", broken, creates(make_spec, range(2))),
        ],
        now=clock,
    )
    assert statuses(reports[0].outcomes) == [SyncStatus.DONE] * 2
    assert isinstance(reports[1].crash, RuntimeError)
    assert statuses(reports[1].outcomes) == [SyncStatus.RETRY] * 2


def test_work_items_validate() -> None:
    with pytest.raises(ValueError, match="needs a spec"):
        WorkItem(1, OperationKind.CREATE, 1)
    with pytest.raises(ValueError, match="needs a ref"):
        WorkItem(1, OperationKind.CANCEL, 1)
    assert WorkItem(1, "cancel", 1, ref=EventRef("k")).operation is OperationKind.CANCEL  # type: ignore[arg-type]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base=timedelta(seconds=30), jitter=0.0)
    assert [policy.backoff(n).total_seconds() for n in range(4)] == [30, 60, 120, 240]
    assert policy.backoff(50) == policy.cap
    assert policy.retry_at(NOW, 0, 600.0) == NOW + timedelta(seconds=600)


def test_a_provider_without_batches_runs_item_by_item_and_idempotently(
    caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    """CalDAV (a real Radicale) has no batch: the engine loops, and a rerun adds nothing."""
    from plugin.calendars.caldav import open_provider
    from tests.calendars.test_caldav import stored

    with open_provider(caldav_calendar, settings=CalendarSettings(http_timeout=10)) as caldav:
        items = creates(make_spec, range(3))
        first = sync_connection(caldav, items, now=clock)
        again = sync_connection(caldav, items, now=clock)
    assert first.calls == again.calls == 3
    assert statuses(first.outcomes) == statuses(again.outcomes) == [SyncStatus.DONE] * 3
    assert len(stored(caldav_calendar)) == 3
