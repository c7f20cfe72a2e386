"""iTIP invitations and feeds, parsed back with icalendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from plugin.calendars.ics import (
    feed_calendar,
    feed_token_hash,
    feed_token_matches,
    itip_cancel,
    itip_request,
    new_feed_token,
)
from plugin.calendars.types import Attendee, EventSpec, VirtualKind

MakeSpec = Callable[..., EventSpec]
NEW_YORK, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
MENTEE = Attendee("mentee@example.co.uk", "Sam Mentee")


def only_event(data: bytes) -> tuple[Calendar, object]:
    calendar = Calendar.from_ical(data)
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_request_parses_back(make_spec: MakeSpec) -> None:
    spec = make_spec(
        version=2, virtual=VirtualKind.URL, conference_url="https://zoom.us/j/123", location=""
    )
    calendar, event = only_event(itip_request(spec, MENTEE))
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == spec.key  # type: ignore[index]
    assert int(event["SEQUENCE"]) == 2  # type: ignore[index]
    assert str(event["STATUS"]) == "CONFIRMED"  # type: ignore[index]
    assert str(event["ORGANIZER"]) == "mailto:mentor@example.edu"  # type: ignore[index]
    assert str(event["ATTENDEE"]) == "mailto:mentee@example.co.uk"  # type: ignore[index]
    assert str(event["URL"]) == "https://zoom.us/j/123"  # type: ignore[index]
    assert "Join: https://zoom.us/j/123" in str(event["DESCRIPTION"])  # type: ignore[index]
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]


def test_update_and_cancel_keep_the_uid_and_raise_the_sequence(make_spec: MakeSpec) -> None:
    _, first = only_event(itip_request(make_spec(version=1), MENTEE))
    _, moved = only_event(itip_request(make_spec(version=2), MENTEE))
    calendar, cancelled = only_event(itip_cancel(make_spec(version=3), MENTEE))
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(cancelled["STATUS"]) == "CANCELLED"  # type: ignore[index]
    uids = {str(e["UID"]) for e in (first, moved, cancelled)}  # type: ignore[index]
    assert len(uids) == 1
    assert [int(e["SEQUENCE"]) for e in (first, moved, cancelled)] == [1, 2, 3]  # type: ignore[index]


def test_request_needs_an_organizer(make_spec: MakeSpec) -> None:
    with pytest.raises(ValueError, match="organizer"):
        itip_request(make_spec(attendees=()), MENTEE)


@pytest.mark.parametrize(
    ("day", "london_hour"),
    [
        (datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK), 15),  # both on winter time
        (
            datetime(2026, 3, 13, 10, 0, tzinfo=NEW_YORK),
            14,
        ),  # New York on summer time, London not yet
        (datetime(2026, 4, 3, 10, 0, tzinfo=NEW_YORK), 15),  # both on summer time
        (
            datetime(2026, 10, 30, 10, 0, tzinfo=NEW_YORK),
            14,
        ),  # London back on winter time, New York not yet
        (datetime(2026, 11, 6, 10, 0, tzinfo=NEW_YORK), 15),
    ],
)
def test_invitation_times_across_dst(make_spec: MakeSpec, day: datetime, london_hour: int) -> None:
    spec = make_spec(start=day.replace(tzinfo=NEW_YORK))
    _, event = only_event(itip_request(spec, MENTEE))
    start = event.start  # type: ignore[attr-defined]
    assert start.tzinfo is not None
    assert (start.hour, start.minute) == (10, 0)
    assert start.astimezone(UTC) == spec.start_utc
    assert start.astimezone(LONDON).hour == london_hour


def test_feed_lists_a_persons_meetings(make_spec: MakeSpec) -> None:
    specs = [
        make_spec(meeting=1),
        make_spec(meeting=2, start=datetime(2026, 3, 13, 10, 0, tzinfo=NEW_YORK)),
    ]
    calendar = Calendar.from_ical(feed_calendar(specs, name="Preceptor: Sam Mentee"))
    assert str(calendar["X-WR-CALNAME"]) == "Preceptor: Sam Mentee"
    assert str(calendar["METHOD"]) == "PUBLISH"
    events = calendar.walk("VEVENT")
    assert sorted(str(e["UID"]) for e in events) == sorted(s.key for s in specs)
    assert "ATTENDEE" not in events[0]


def test_feed_tokens_store_only_a_hash() -> None:
    token = new_feed_token()
    stored = feed_token_hash(token)
    assert token not in stored
    assert feed_token_matches(token, stored)
    assert not feed_token_matches(new_feed_token(), stored)
