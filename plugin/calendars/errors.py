"""One exception hierarchy for every provider, so a sync job decides from the type alone.

``TransientError`` (and ``RateLimitedError``): retry later, no sooner than ``retry_after``.
``AuthRevokedError``: stop, mark the connection, tell the person; retrying cannot help.
``QuotaExhaustedError``: stop for this connection until the quota resets.
``EventGoneError``: the event no longer exists (deleted in the calendar, 404/410).
``ConflictError``: the calendar holds a different copy than we expected (etag, stale version).
``ProviderError``: anything else: a bad request, a bug; do not retry blindly.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

__all__ = [
    "AuthRevokedError",
    "CalendarError",
    "ConflictError",
    "EventGoneError",
    "ProviderError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "StaleVersionError",
    "TransientError",
    "parse_retry_after",
]


class CalendarError(Exception):
    """Base of every calendar provider error."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class TransientError(CalendarError):
    """Worth retrying later: a 5xx, a timeout, a dropped connection, throttling."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        #: Seconds the service asked us to wait (Retry-After), or None if it did not say.
        self.retry_after = retry_after


class RateLimitedError(TransientError):
    """Throttled (429, Google 403 rateLimitExceeded/userRateLimitExceeded)."""


class AuthRevokedError(CalendarError):
    """The person's grant is gone (invalid_grant, consent withdrawn): reconnect needed."""


class QuotaExhaustedError(CalendarError):
    """A daily or project quota is used up (Google quotaExceeded): stop until it resets."""


class EventGoneError(CalendarError):
    """The event does not exist (any more) in the calendar."""


class ConflictError(CalendarError):
    """The remote copy changed under us and could not be reconciled."""


class StaleVersionError(ConflictError):
    """The calendar already holds a newer version of the meeting than this write."""

    def __init__(self, message: str, *, remote_version: int) -> None:
        super().__init__(message, status=412, reason="staleVersion")
        self.remote_version = remote_version


class ProviderError(CalendarError):
    """A failure retrying will not fix (bad request, forbidden, unexpected answer)."""


#: Never wait longer than this on a Retry-After, whatever the server says.
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
