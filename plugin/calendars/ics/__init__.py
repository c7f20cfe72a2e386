"""iCalendar: iTIP e-mail invitations and per-person ICS feeds (the icalendar package)."""

from __future__ import annotations

from plugin.calendars.ics.events import (
    ItipMethod,
    caldav_resource,
    calendar_for,
    itip_cancel,
    itip_request,
    vevent,
)
from plugin.calendars.ics.feed import (
    feed_calendar,
    feed_token_hash,
    feed_token_matches,
    new_feed_token,
)

__all__ = [
    "ItipMethod",
    "caldav_resource",
    "calendar_for",
    "feed_calendar",
    "feed_token_hash",
    "feed_token_matches",
    "itip_cancel",
    "itip_request",
    "new_feed_token",
    "vevent",
]
