"""Graph event resources and error answers: what we send for a spec, what we read back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from plugin.calendars.errors import (
    AuthRevokedError,
    CalendarError,
    ConflictError,
    EventGoneError,
    ProviderError,
    RateLimitedError,
    TransientError,
    parse_retry_after,
)
from plugin.calendars.types import EventSpec, VirtualKind

__all__ = [
    "GRAPH_BATCH_LIMIT",
    "PREFER_UTC",
    "VERSION_PROPERTY",
    "classify_graph_response",
    "graph_event_body",
    "graph_time",
    "parse_graph_time",
    "remote_version",
]

#: Where we keep the meeting version on the event (a MAPI named property of our own).
VERSION_PROPERTY = "String {3f6b0c0e-9d1b-4f55-8f0e-2a4c61d3b7a9} Name preceptorVersion"
#: Graph's $batch limit.
GRAPH_BATCH_LIMIT = 20
PREFER_UTC = 'outlook.timezone="UTC"'
ACCESS_DENIED_CODES = frozenset({"ErrorAccessDenied", "Authorization_RequestDenied"})


def graph_time(moment: datetime) -> dict[str, str]:
    # UTC is a zone every Exchange accepts; IANA names are only partly understood by
    # Graph. Outlook shows the event in each viewer's own zone either way.
    return {"dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"}


def graph_event_body(spec: EventSpec, *, create: bool) -> dict[str, Any]:
    """The Graph event resource for ``spec``."""
    body: dict[str, Any] = {
        "subject": spec.summary,
        "body": {"contentType": "text", "content": spec.full_description()},
        "start": graph_time(spec.start),
        "end": graph_time(spec.end),
        "location": {"displayName": spec.location},
        "showAs": "busy",
        "isReminderOn": True,
        "singleValueExtendedProperties": [{"id": VERSION_PROPERTY, "value": str(spec.version)}],
    }
    if create:
        body["transactionId"] = spec.key  # cannot change after create
    if spec.virtual is VirtualKind.GENERATE:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = "teamsForBusiness"
    return body


def classify_graph_response(
    status: int, body: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> CalendarError:
    """The neutral error for a failed Graph answer (also one item of a $batch)."""
    error = (body or {}).get("error") or {}
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    text = f"Microsoft Graph answered {status} {code}: {message}".strip()
    retry_after = parse_retry_after(
        next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    )
    if status == 429:
        return RateLimitedError(text, retry_after=retry_after, status=status, reason=code)
    if status >= 500 or status == 408:
        return TransientError(text, retry_after=retry_after, status=status, reason=code)
    if status == 401 or (status == 403 and code in ACCESS_DENIED_CODES):
        # 403 here: consent withdrawn or an admin's application access policy excludes
        # the mailbox; only a person fixes that, so the connection is marked.
        return AuthRevokedError(text, status=status, reason=code)
    if status in (404, 410):
        return EventGoneError(text, status=status, reason=code)
    if status in (409, 412):
        return ConflictError(text, status=status, reason=code)
    return ProviderError(text, status=status, reason=code)


def remote_version(data: Mapping[str, Any]) -> int:
    for item in data.get("singleValueExtendedProperties") or []:
        if item.get("id", "").lower() == VERSION_PROPERTY.lower():
            try:
                return int(item.get("value", -1))
            except ValueError:
                return -1
    return -1


def parse_graph_time(value: Mapping[str, str]) -> datetime:
    text = value["dateTime"]
    if "." in text:  # Graph sends 7 fractional digits; Python takes 6
        whole, fraction = text.split(".", 1)
        text = f"{whole}.{fraction[:6]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        zone = value.get("timeZone", "UTC")
        if zone != "UTC":
            raise ProviderError(f"Graph answered in zone {zone!r} despite Prefer UTC")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
