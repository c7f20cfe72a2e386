"""The provider-neutral parts: keys, specs, errors, credentials, registry, runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import pytest

from plugin.calendars import (
    CalendarProvider,
    CredentialsBox,
    EventGoneError,
    EventRef,
    EventResult,
    EventSpec,
    Operation,
    RateLimitedError,
    SupportsBatch,
    SupportsFreeBusy,
    event_key,
    open_provider,
    parse_retry_after,
    provider_kinds,
    register_provider,
    run_operations,
)
from plugin.calendars.settings import CalendarSettings, calendar_settings
from plugin.config import load_settings

MakeSpec = Callable[..., EventSpec]


def test_event_keys_are_deterministic_per_meeting_and_attendee() -> None:
    assert event_key(1, 2) == event_key(1, 2)
    assert len({event_key(1, 2), event_key(2, 1), event_key(1, 2, "staging")}) == 3
    assert event_key(1, 2).startswith("preceptor-1-2-")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"start": datetime(2026, 3, 6, 10, 0)}, ValueError),  # noqa: DTZ001 - naive on purpose
        ({"minutes": 0}, ValueError),
        ({"zone": "America/Nowhere"}, ZoneInfoNotFoundError),
        ({"virtual": "url"}, ValueError),
    ],
)
def test_specs_refuse_what_cannot_be_synced(
    make_spec: MakeSpec, change: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make_spec(**change)


def test_free_busy_refuses_naive_times(caldav_calendar: dict[str, str]) -> None:
    from plugin.calendars.caldav import open_provider as open_caldav

    with open_caldav(caldav_calendar, settings=CalendarSettings()) as provider:
        naive = datetime(2026, 3, 6)  # noqa: DTZ001 - naive on purpose
        with pytest.raises(ValueError, match="timezone-aware"):
            provider.free_busy(naive, naive + timedelta(days=1))


def test_spec_description_names_the_other_people(make_spec: MakeSpec) -> None:
    text = make_spec(owner_email="mentee@example.edu").full_description()
    assert "With: Dr. Ada Mentor" in text
    assert "Sam Mentee" not in text


def test_retry_after_parsing() -> None:
    now = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Fri, 06 Mar 2026 12:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Fri, 06 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("999999") == 3600.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_credentials_box_reports_each_change_once() -> None:
    seen: list[dict[str, Any]] = []
    box = CredentialsBox({"token": "a", "refresh_token": "r"}, seen.append)
    assert not box.update(token="a")
    assert box.update(token="b")
    assert seen == [{"token": "b", "refresh_token": "r"}]
    seen[0]["token"] = "tampered"
    assert box.get("token") == "b"


class MemoryProvider:
    """A provider without batching or free/busy, to show the optional parts are optional."""

    kind = "memory"

    def __init__(self) -> None:
        self.events: dict[str, EventSpec] = {}

    def create_event(self, spec: EventSpec) -> EventResult:
        self.events[spec.key] = spec
        return EventResult(spec.key, spec.key, version=spec.version)

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        if spec.key not in self.events:
            raise EventGoneError("gone", status=404)
        return self.create_event(spec)

    def cancel_event(self, ref: EventRef) -> None:
        self.events.pop(ref.key, None)

    def close(self) -> None:
        pass


def test_registry_and_runner_without_batch_support(make_spec: MakeSpec) -> None:
    def factory(
        credentials: Mapping[str, Any],
        *,
        settings: CalendarSettings,
        on_credentials_change: Any = None,
    ) -> CalendarProvider:
        return MemoryProvider()

    register_provider("memory", factory)
    assert {"google", "microsoft", "caldav", "memory"} <= set(provider_kinds())
    provider = open_provider("memory", {}, settings=CalendarSettings())
    assert isinstance(provider, CalendarProvider)
    assert not isinstance(provider, SupportsBatch | SupportsFreeBusy)
    outcomes = run_operations(
        provider,
        [
            Operation.create(make_spec(meeting=1)),
            Operation.update(make_spec(meeting=2), EventRef(make_spec(meeting=2).key)),
            Operation.cancel(EventRef(make_spec(meeting=1).key)),
        ],
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, EventGoneError)
    with pytest.raises(KeyError, match="no calendar provider"):
        open_provider("exchange2003", {}, settings=CalendarSettings())


def test_error_hierarchy_decides_by_type() -> None:
    error = RateLimitedError("slow down", retry_after=5, status=429)
    assert error.retry_after == 5
    assert error.status == 429


def test_settings_feed_the_endpoints(tmp_path: Any) -> None:
    settings = load_settings(
        {
            "instance_path": tmp_path,
            "google_api_root": "http://127.0.0.1:9/",
            "microsoft_graph_root": "https://graph.microsoft.us/v1.0",
            "microsoft_client_secret": "s3cret",
        }
    )
    calendars = calendar_settings(settings)
    assert calendars.google_calendar_endpoint == "http://127.0.0.1:9/calendar/v3/"
    assert calendars.google_batch_uri == "http://127.0.0.1:9/batch/calendar/v3"
    assert calendars.graph_resource == "https://graph.microsoft.us"
    assert calendars.microsoft_client_secret == "s3cret"
    assert timedelta(seconds=calendars.http_timeout) == timedelta(seconds=30)
