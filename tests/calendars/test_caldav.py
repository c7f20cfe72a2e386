"""CalDAV provider against a real Radicale server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from icalendar import Calendar

from plugin.calendars.caldav import CalDAVProvider, open_provider
from plugin.calendars.errors import AuthRevokedError, EventGoneError, StaleVersionError
from plugin.calendars.protocol import Operation, run_operations
from plugin.calendars.registry import open_provider as open_any
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import EventRef, EventSpec, event_key

NEW_YORK = ZoneInfo("America/New_York")
MakeSpec = Callable[..., EventSpec]


@pytest.fixture
def provider(caldav_calendar: dict[str, str]) -> Iterator[CalDAVProvider]:
    with open_provider(caldav_calendar, settings=CalendarSettings(http_timeout=10)) as opened:
        yield opened


def stored(credentials: dict[str, str]) -> list[Calendar]:
    with DAVClient(
        url=credentials["calendar_url"],
        username=credentials["username"],
        password=credentials["password"],
    ) as client:
        calendar = DAVCalendar(client=client, url=credentials["calendar_url"])
        events: list[Any] = calendar.events()  # type: ignore[assignment]  # sync client
        return [Calendar.from_ical(event.data) for event in events]


def test_put_by_uid_is_idempotent(
    provider: CalDAVProvider, caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    first = provider.create_event(make_spec())
    second = provider.create_event(make_spec())  # 412 on If-None-Match: adopted
    assert first.external_id == second.external_id
    assert first.external_id.endswith(f"/{make_spec().key}.ics")
    events = stored(caldav_calendar)
    assert len(events) == 1
    [vevent] = events[0].walk("VEVENT")
    assert str(vevent["UID"]) == make_spec().key


def test_update_with_etag_and_reapply_after_412(
    provider: CalDAVProvider, caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    created = provider.create_event(make_spec(version=1))
    provider.update_event(make_spec(version=2, summary="v2"), created.ref())
    provider.update_event(make_spec(version=3, summary="v3"), created.ref())  # stale etag
    [calendar] = stored(caldav_calendar)
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "v3"
    assert vevent.decoded("SEQUENCE") == 3
    with pytest.raises(StaleVersionError):
        provider.update_event(make_spec(version=2, summary="late"), created.ref())


def test_cancel_is_idempotent(
    provider: CalDAVProvider, caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    created = provider.create_event(make_spec())
    provider.cancel_event(created.ref())
    provider.cancel_event(created.ref())
    provider.cancel_event(EventRef(event_key(404, 1)))
    assert stored(caldav_calendar) == []
    with pytest.raises(EventGoneError):
        provider.update_event(make_spec(version=2), created.ref())


def test_stored_times_keep_the_zone_across_dst(
    provider: CalDAVProvider, caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    new_york, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    for meeting, day in enumerate(
        (datetime(2026, 3, 6, 10, tzinfo=NEW_YORK), datetime(2026, 3, 13, 10, tzinfo=NEW_YORK))
    ):
        provider.create_event(make_spec(meeting=meeting, start=day.replace(tzinfo=new_york)))
    starts = sorted(
        vevent.decoded("DTSTART")
        for calendar in stored(caldav_calendar)
        for vevent in calendar.walk("VEVENT")
    )
    assert [s.astimezone(new_york).hour for s in starts] == [10, 10]
    assert [s.astimezone(UTC).hour for s in starts] == [15, 14]
    assert [s.astimezone(london).hour for s in starts] == [15, 14]


def test_free_busy_and_the_neutral_runner(
    provider: CalDAVProvider, caldav_calendar: dict[str, str], make_spec: MakeSpec
) -> None:
    outcomes = run_operations(provider, [Operation.create(make_spec(meeting=n)) for n in (1, 2)])
    assert all(o.ok for o in outcomes)
    day = datetime(2026, 3, 6, tzinfo=UTC)
    busy = provider.free_busy(day, day + timedelta(days=1))
    [intervals] = busy.values()
    assert [(b.start.hour, b.end.hour, b.end.minute) for b in intervals] == [(15, 15, 30)] * 2


def test_health_check(provider: CalDAVProvider, caldav_calendar: dict[str, str]) -> None:
    provider.check_connection()
    missing = {**caldav_calendar, "calendar_url": caldav_calendar["calendar_url"] + "nope/"}
    broken = open_provider(missing, settings=CalendarSettings())
    with broken, pytest.raises(AuthRevokedError, match="no longer exists"):
        broken.check_connection()


def test_registry_opens_caldav(caldav_calendar: dict[str, str], make_spec: MakeSpec) -> None:
    opened = open_any("caldav", caldav_calendar, settings=CalendarSettings())
    try:
        assert opened.kind == "caldav"
        opened.create_event(make_spec())
    finally:
        opened.close()
    assert len(stored(caldav_calendar)) == 1
