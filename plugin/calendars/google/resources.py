"""Calendar v3 Event resources: what we send for a spec, and what we read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin.calendars.google.ids import google_event_id, meet_request_id
from plugin.calendars.types import EventSpec, VirtualKind

__all__ = ["KEY_PROPERTY", "VERSION_PROPERTY", "conference_url", "event_body", "remote_version"]

KEY_PROPERTY = "preceptorKey"
VERSION_PROPERTY = "preceptorVersion"


def event_body(spec: EventSpec) -> dict[str, Any]:
    """The Calendar v3 Event resource for ``spec`` (a full body, for insert and update)."""
    body: dict[str, Any] = {
        "id": google_event_id(spec.key),
        "status": "confirmed",
        "summary": spec.summary,
        "description": spec.full_description(),
        # Wall time plus the IANA zone: Google keeps the meeting at 10:00 New York time
        # whatever the viewer's zone, and the offset pins the instant unambiguously.
        "start": {"dateTime": spec.start_local.isoformat(), "timeZone": spec.zone},
        "end": {"dateTime": spec.end_local.isoformat(), "timeZone": spec.zone},
        "extendedProperties": {
            "private": {KEY_PROPERTY: spec.key, VERSION_PROPERTY: str(spec.version)}
        },
        "reminders": {"useDefault": True},
    }
    if spec.location:
        body["location"] = spec.location
    if spec.virtual is VirtualKind.GENERATE:
        # The same requestId on every write: Google makes one Meet and keeps it.
        body["conferenceData"] = {
            "createRequest": {
                "requestId": meet_request_id(spec.key),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
    elif spec.virtual is VirtualKind.URL and spec.conference_url:
        body["source"] = {"title": "Join the meeting", "url": spec.conference_url}
    return body


def remote_version(data: Mapping[str, Any]) -> int:
    private = (data.get("extendedProperties") or {}).get("private") or {}
    try:
        return int(private.get(VERSION_PROPERTY, -1))
    except ValueError:
        return -1


def conference_url(data: Mapping[str, Any]) -> str | None:
    for entry in (data.get("conferenceData") or {}).get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    return data.get("hangoutLink")
