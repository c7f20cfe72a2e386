"""Per-person secret ICS feeds: the calendar body, and the token behind the URL.

The feed URL carries a random token; only its SHA-256 is stored, so a database leak does
not expose anyone's feed, and revoking means replacing the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from icalendar import vDuration

from plugin.calendars.ics.events import ItipMethod, calendar_for, vevent
from plugin.calendars.types import EventSpec

__all__ = ["feed_calendar", "feed_token_hash", "feed_token_matches", "new_feed_token"]

#: How often subscribing clients are asked to re-fetch (most poll less often anyway).
REFRESH_INTERVAL_SECONDS = 3600


def new_feed_token() -> str:
    """A fresh unguessable token for a person's feed URL (show once, store the hash)."""
    return secrets.token_urlsafe(32)


def feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_token_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` is the one whose hash was stored (constant-time)."""
    return hmac.compare_digest(feed_token_hash(token), stored_hash)


def feed_calendar(specs: Iterable[EventSpec], *, name: str, stamp: datetime | None = None) -> bytes:
    """A person's feed: a VCALENDAR (METHOD:PUBLISH) of their current meetings.

    Pass only live meetings: a feed drops cancelled ones instead of listing them.
    """
    now = (stamp or datetime.now(UTC)).astimezone(UTC)
    calendar = calendar_for(
        [vevent(spec, stamp=now) for spec in specs], method=ItipMethod.PUBLISH, name=name
    )
    from datetime import timedelta

    interval = vDuration(timedelta(seconds=REFRESH_INTERVAL_SECONDS))
    interval.params["VALUE"] = "DURATION"
    calendar.add("refresh-interval", interval)
    calendar.add("x-published-ttl", vDuration(timedelta(seconds=REFRESH_INTERVAL_SECONDS)))
    data: bytes = calendar.to_ical()
    return data
