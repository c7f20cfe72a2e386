"""Calendar sync: the batched, concurrent engine against one request at a time.

A program of M meetings, each between a mentor (the organizer) and a mentee, so 2M
events; one mentor per 20 meetings, one mentee per 5. People alternate between Google
and Outlook, so both providers carry about half the events. A quarter of the meetings
get a generated Meet/Teams link, so the organizer-first rule is part of the work. Both
fakes answer every HTTP request after ``--latency`` seconds (50 ms by default).

* engine: :func:`plugin.calendars.sync.sync_connections` (one provider per connection,
  batches of 50 for Google and 20 for Graph, 16 connections at a time).
* baseline: one ``create_event`` after the other, one thread (a job per intent).

Each side gets fresh fakes and fresh grants; sign-in happens before the clock starts.
Requests are counted at the fakes: every HTTP request is one, and a batch is one request
however many events it carries. Token and metadata requests are counted too.
Afterwards every calendar is checked to hold exactly its events, once.

    python -m bench.calendar_sync [--meetings 1000] [--latency 0.05] [--workers 16]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._harness import emit, table
from plugin.calendars.protocol import CalendarProvider, OperationKind
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.sync import (
    ConnectionWork,
    SyncStatus,
    WorkItem,
    sync_connections,
)
from plugin.calendars.types import Attendee, EventSpec, VirtualKind, event_key

#: Meetings per mentor and per mentee.
MENTOR_LOAD = 20
MENTEE_LOAD = 5
REDIRECT = "https://preceptor.example.edu/cb"


@contextmanager
def _serving(app: Any) -> Iterator[int]:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


class _Slot:
    """Forwards to the current fake, so each side gets fresh ones on the same ports."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class Person:
    email: str
    provider: str  # "google" or "microsoft"
    open: Callable[[], CalendarProvider] | None = None


@dataclass
class World:
    """Fresh fakes, the people with their grants, and the meetings' work items."""

    google: Any
    graph: Any
    people: dict[str, Person]
    items: dict[str, list[WorkItem]]  # person -> work items

    def counts(self) -> dict[str, int]:
        g, m = self.google.counts, self.graph.counts
        return {
            "http": g["http"] + m["http"],
            "batch": g["batch"] + m["batch"],
            "api": g["api"] + m["api"],
            "auth": g["token"] + m["token"] + m["openid-configuration"],
            "google_http": g["http"],
            "graph_http": m["http"],
        }

    def reset_counts(self, latency: float) -> None:
        for fake in (self.google, self.graph):
            fake.counts.clear()
            fake.latency = latency


def _people(meetings: int) -> tuple[list[str], list[str]]:
    mentors = [f"mentor{n}@example.edu" for n in range(max(1, meetings // MENTOR_LOAD))]
    mentees = [f"mentee{n}@example.edu" for n in range(max(1, meetings // MENTEE_LOAD))]
    return mentors, mentees


def _specs(meetings: int) -> dict[str, list[WorkItem]]:
    mentors, mentees = _people(meetings)
    start = datetime(2026, 9, 7, 14, 0, tzinfo=UTC)
    items: dict[str, list[WorkItem]] = {email: [] for email in (*mentors, *mentees)}
    for meeting in range(meetings):
        mentor, mentee = mentors[meeting % len(mentors)], mentees[meeting % len(mentees)]
        people = (Attendee(mentor, "Mentor", organizer=True), Attendee(mentee, "Mentee"))
        begin = start + timedelta(hours=meeting % 200, days=7 * (meeting // 200))
        virtual = VirtualKind.GENERATE if meeting % 4 == 0 else VirtualKind.NONE
        for attendee, owner in enumerate((mentor, mentee)):
            spec = EventSpec(
                key=event_key(meeting, attendee),
                version=1,
                summary="Mentoring meeting",
                start=begin,
                end=begin + timedelta(minutes=30),
                zone="America/New_York",
                description="Agenda: goals for the term",
                virtual=virtual,
                attendees=people,
                owner_email=owner,
            )
            items[owner].append(
                WorkItem(
                    f"{meeting}-{attendee}", OperationKind.CREATE, 1, spec=spec, meeting_id=meeting
                )
            )
    return items


def _world(meetings: int, google_slot: _Slot, graph_slot: _Slot, ports: tuple[int, int]) -> World:
    from plugin.calendars import google, microsoft
    from tests.fakes.google_calendar import FakeGoogleCalendar
    from tests.fakes.graph import FakeGraph, LoopbackSession

    google_slot.app, graph_slot.app = FakeGoogleCalendar(), FakeGraph()
    google_root = f"http://127.0.0.1:{ports[0]}"
    settings = CalendarSettings(
        google_client_id="client-id.apps.googleusercontent.com",
        google_client_secret="client-secret",  # noqa: S106 - the fake's, not a secret
        google_api_root=google_root,
        google_token_uri=f"{google_root}/token",
        microsoft_client_id="6731de76-14a6-49ae-97bc-6eba6914391e",
        microsoft_client_secret="app-secret",  # noqa: S106 - the fake's, not a secret
        microsoft_authority=graph_slot.app.authority,
        microsoft_graph_root=f"http://127.0.0.1:{ports[1]}/v1.0",
        http_timeout=60,
    )
    # MSAL's authority metadata, fetched once per thread: MSAL guards a shared cache with
    # a lock per app, so one dict shared by concurrent apps is not safe.
    per_thread = threading.local()

    def http_cache() -> dict[str, Any]:
        if not hasattr(per_thread, "cache"):
            per_thread.cache = {}
        cache: dict[str, Any] = per_thread.cache
        return cache

    items = _specs(meetings)

    def _opener(
        factory: Callable[..., CalendarProvider],
        credentials: dict[str, Any],
        **per_thread_options: Callable[[], Any],
    ) -> Callable[[], CalendarProvider]:
        """Opens the provider in the calling (worker) thread, with that thread's options."""

        def open_() -> CalendarProvider:
            options = {name: make() for name, make in per_thread_options.items()}
            return factory(credentials, settings=settings, **options)

        return open_

    people: dict[str, Person] = {}
    for index, email in enumerate(items):
        if index % 2 == 0:
            credentials = google_slot.app.grant(email)
            people[email] = Person(email, "google", _opener(google.open_provider, credentials))
            continue
        session = LoopbackSession(ports[1])
        flow = microsoft.start_auth_flow(settings, redirect_uri=REDIRECT, http_client=session)
        answer = graph_slot.app.authorize(flow["auth_uri"], email)
        credentials = microsoft.finish_auth_flow(settings, flow, answer, http_client=session)
        people[email] = Person(
            email,
            "microsoft",
            _opener(
                microsoft.open_provider,
                credentials,
                http_client=lambda: LoopbackSession(ports[1]),
                http_cache=http_cache,
            ),
        )
    return World(google_slot.app, graph_slot.app, people, items)


def _run_engine(world: World, workers: int) -> int:
    works = [
        ConnectionWork(email, person.open, world.items[email])
        for email, person in world.people.items()
        if person.open is not None
    ]
    reports = sync_connections(works, max_workers=workers)
    done = 0
    for report in reports:
        if report.crash is not None:
            raise report.crash
        bad = [o for o in report.outcomes if o.status is not SyncStatus.DONE]
        if bad:
            raise SystemExit(f"engine: {report.connection_id}: {bad[0].status} {bad[0].reason}")
        done += len(report.outcomes)
    return done


def _run_one_at_a_time(world: World) -> int:
    """The naive job: meeting by meeting, organizer then attendee, one request each."""
    providers: dict[str, CalendarProvider] = {}
    by_key = {item.key: item for items in world.items.values() for item in items}
    done = 0
    try:
        meetings = sorted({item.meeting_id for item in by_key.values()}, key=str)
        owners = {item.key: owner for owner, items in world.items.items() for item in items}
        for meeting in meetings:
            link: str | None = None
            for attendee in (0, 1):
                item = by_key[event_key(meeting, attendee)]  # type: ignore[arg-type]
                owner = owners[item.key]
                if owner not in providers:
                    opener = world.people[owner].open
                    assert opener is not None
                    providers[owner] = opener()
                spec = item.spec
                assert spec is not None
                if attendee and link:
                    spec = replace(spec, virtual=VirtualKind.URL, conference_url=link)
                result = providers[owner].create_event(spec)
                link = link or result.conference_url
                done += 1
    finally:
        for provider in providers.values():
            provider.close()
    return done


def _check(world: World) -> None:
    """Every calendar holds exactly its events, each once."""
    for email, person in world.people.items():
        fake = world.google if person.provider == "google" else world.graph
        live = fake.live_events(email)
        expected = len(world.items[email])
        if len(live) != expected:
            raise SystemExit(f"{email}: {len(live)} events in the calendar, expected {expected}")


def _measure(
    label: str,
    meetings: int,
    latency: float,
    slots: tuple[_Slot, _Slot],
    ports: tuple[int, int],
    body: Callable[[World], int],
) -> dict[str, Any]:
    world = _world(meetings, *slots, ports)
    world.reset_counts(latency)
    started = time.perf_counter()
    events = body(world)
    elapsed = time.perf_counter() - started
    counts = world.counts()
    world.reset_counts(0.0)
    _check(world)
    return {
        "label": label,
        "events": events,
        "seconds": elapsed,
        "connections": len(world.people),
        **counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.calendar_sync")
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--workers", type=int, default=16, help="connections at a time")
    options = parser.parse_args()

    slots = (_Slot(), _Slot())
    with _serving(slots[0]) as google_port, _serving(slots[1]) as graph_port:
        ports = (google_port, graph_port)
        engine = _measure(
            "engine (batched, concurrent)",
            options.meetings,
            options.latency,
            slots,
            ports,
            lambda world: _run_engine(world, options.workers),
        )
        naive = _measure(
            "one request at a time (baseline)",
            options.meetings,
            options.latency,
            slots,
            ports,
            _run_one_at_a_time,
        )

    rows = []
    for run in (engine, naive):
        rows.append(
            [
                run["label"],
                run["events"],
                run["seconds"],
                run["http"],
                run["batch"],
                run["auth"],
                run["http"] / run["events"],
            ]
        )
    table(
        ["sync", "events", "wall s", "HTTP requests", "of which batches", "auth", "requests/event"],
        rows,
    )
    speedup = naive["seconds"] / engine["seconds"]
    print(
        f"\nspeed-up: {speedup:.1f}x; {engine['connections']} connections, "
        f"{options.latency * 1000:.0f} ms per request, every calendar checked: no duplicates"
    )
    emit(
        {
            "bench": "calendar_sync",
            "meetings": options.meetings,
            "events": engine["events"],
            "connections": engine["connections"],
            "latency_ms": round(options.latency * 1000, 1),
            "workers": options.workers,
            "engine_s": round(engine["seconds"], 3),
            "one_at_a_time_s": round(naive["seconds"], 3),
            "speedup": round(speedup, 2),
            "engine_requests": engine["http"],
            "engine_requests_per_event": round(engine["http"] / engine["events"], 4),
            "engine_google_requests": engine["google_http"],
            "engine_graph_requests": engine["graph_http"],
            "engine_auth_requests": engine["auth"],
            "one_at_a_time_requests": naive["http"],
            "one_at_a_time_requests_per_event": round(naive["http"] / naive["events"], 4),
        }
    )


if __name__ == "__main__":
    main()
