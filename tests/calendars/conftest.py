"""Fixtures for the calendar providers: the fake services served on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import Attendee, EventSpec, VirtualKind, event_key
from tests.conftest import serving
from tests.fakes.google_calendar import FakeGoogleCalendar

NEW_YORK = ZoneInfo("America/New_York")


class _Slot:
    """A WSGI app that forwards to whichever fake the current test installed.

    The loopback server lives for the whole session (stopping one costs half a second),
    while every test still gets a fresh fake with no events, faults or counts.
    """

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def _google_server() -> Iterator[tuple[_Slot, int]]:
    slot = _Slot()
    with serving(slot) as port:
        yield slot, port


@pytest.fixture
def google_fake(
    _google_server: tuple[_Slot, int],
) -> Iterator[tuple[FakeGoogleCalendar, str]]:
    """A fresh fake Google service and its root URL."""
    slot, port = _google_server
    slot.app = FakeGoogleCalendar()
    yield slot.app, f"http://127.0.0.1:{port}"
    slot.app = None


@pytest.fixture
def google_settings(google_fake: tuple[FakeGoogleCalendar, str]) -> CalendarSettings:
    _, root = google_fake
    return CalendarSettings(
        google_client_id="client-id.apps.googleusercontent.com",
        google_client_secret="client-secret",
        google_api_root=root,
        google_token_uri=f"{root}/token",
        google_auth_uri=f"{root}/o/oauth2/v2/auth",
        http_timeout=10,
    )


@pytest.fixture
def make_spec() -> Callable[..., EventSpec]:
    """A factory of event specs: one meeting at 10:00 New York time, overridable."""

    def make(
        meeting: int = 1,
        attendee: int = 1,
        version: int = 1,
        start: datetime | None = None,
        minutes: int = 30,
        **changes: Any,
    ) -> EventSpec:
        from datetime import timedelta

        begin = start or datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK)
        values: dict[str, Any] = {
            "key": event_key(meeting, attendee),
            "version": version,
            "summary": "Mentoring: research track",
            "start": begin,
            "end": begin + timedelta(minutes=minutes),
            "zone": "America/New_York",
            "description": "Agenda: first project milestones",
            "attendees": (
                Attendee("mentor@example.edu", "Dr. Ada Mentor", organizer=True),
                Attendee("mentee@example.edu", "Sam Mentee"),
            ),
            "owner_email": "mentor@example.edu",
            "virtual": VirtualKind.NONE,
        }
        values.update(changes)
        return EventSpec(**values)

    return make


@pytest.fixture
def google_connection(
    google_fake: tuple[FakeGoogleCalendar, str], google_settings: CalendarSettings
) -> Iterator[Callable[..., tuple[Any, list[dict[str, Any]]]]]:
    """Open a Google provider for a freshly granted person: (provider, saved credentials)."""
    from plugin.calendars.google import open_provider

    fake, _ = google_fake
    opened: list[Any] = []

    def connect(owner: str = "mentor@example.edu", **options: Any) -> tuple[Any, list[Any]]:
        saved: list[dict[str, Any]] = []
        credentials = fake.grant(owner)
        provider = open_provider(
            credentials, settings=google_settings, on_credentials_change=saved.append, **options
        )
        provider.credentials = credentials  # type: ignore[attr-defined]
        opened.append(provider)
        return provider, saved

    yield connect
    for provider in opened:
        provider.close()


@pytest.fixture(scope="session")
def _graph_server() -> Iterator[tuple[_Slot, int]]:
    slot = _Slot()
    with serving(slot) as port:
        yield slot, port


@pytest.fixture
def graph_fake(_graph_server: tuple[_Slot, int]) -> Iterator[tuple[Any, int]]:
    """A fresh fake identity platform + Graph, and the port it is served on."""
    from tests.fakes.graph import FakeGraph

    slot, port = _graph_server
    slot.app = FakeGraph()
    yield slot.app, port
    slot.app = None


@pytest.fixture
def graph_settings(graph_fake: tuple[Any, int]) -> CalendarSettings:
    fake, port = graph_fake
    return CalendarSettings(
        microsoft_client_id="6731de76-14a6-49ae-97bc-6eba6914391e",
        microsoft_client_secret="app-secret",
        microsoft_authority=fake.authority,
        microsoft_graph_root=f"http://127.0.0.1:{port}/v1.0",
        http_timeout=10,
    )


@pytest.fixture
def graph_connection(
    graph_fake: tuple[Any, int], graph_settings: CalendarSettings
) -> Iterator[Callable[..., tuple[Any, list[dict[str, Any]]]]]:
    """Sign a person in through MSAL's auth-code flow against the fake, then open Graph."""
    from plugin.calendars.microsoft import finish_auth_flow, open_provider, start_auth_flow
    from tests.fakes.graph import LoopbackSession

    fake, port = graph_fake
    opened: list[Any] = []

    def connect(mailbox: str = "mentor@example.edu") -> tuple[Any, list[dict[str, Any]]]:
        http = LoopbackSession(port)
        flow = start_auth_flow(
            graph_settings, redirect_uri="https://preceptor.example.edu/cb", http_client=http
        )
        credentials = finish_auth_flow(
            graph_settings, flow, fake.authorize(flow["auth_uri"], mailbox), http_client=http
        )
        saved: list[dict[str, Any]] = [credentials]
        provider = open_provider(
            credentials,
            settings=graph_settings,
            on_credentials_change=saved.append,
            http_client=http,
        )
        opened.append(provider)
        return provider, saved

    yield connect
    for provider in opened:
        provider.close()


@pytest.fixture(scope="session")
def radicale_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Radicale CalDAV server on loopback for the whole run (no auth)."""
    import socket
    import subprocess
    import sys
    import time

    import requests

    folder = tmp_path_factory.mktemp("radicale")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--auth-type",
            "none",
            "--storage-filesystem-folder",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                requests.get(url, timeout=1).close()
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    pytest.fail("Radicale exited at start")
                time.sleep(0.05)
        else:
            pytest.fail("Radicale did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def caldav_calendar(radicale_url: str) -> dict[str, str]:
    """A new calendar collection on Radicale; the credentials dict a connection stores."""
    import uuid

    import requests

    user = f"mentor-{uuid.uuid4().hex[:8]}"
    auth = (user, "app-password")
    # Plain WebDAV requests: caldav's make_calendar() waits on server quirks we do not have.
    principal = f"{radicale_url}{user}/"
    requests.request("PROPFIND", principal, auth=auth, headers={"Depth": "0"}, timeout=10)
    calendar_url = f"{principal}work/"
    made = requests.request("MKCALENDAR", calendar_url, auth=auth, timeout=10)
    assert made.status_code == 201, made.text
    return {"calendar_url": calendar_url, "username": user, "password": "app-password"}
