"""Provider-neutral values: what an event should look like, and what a provider answers.

Providers never see database rows: a sync job turns a meeting and one attendee into an
:class:`EventSpec`, hands it to a provider, and stores the :class:`EventResult` it gets back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "Attendee",
    "BusyInterval",
    "EventRef",
    "EventResult",
    "EventSpec",
    "VirtualKind",
    "event_key",
    "require_aware",
]

#: Prefix of every idempotency key, so an event we made is recognisable in any calendar.
KEY_PREFIX = "preceptor"


def event_key(meeting_id: int | str, attendee_id: int | str, namespace: str = "") -> str:
    """The idempotency key of one meeting in one attendee's calendar.

    Deterministic, so a retried create finds the event a lost answer already made; it is
    used as the Google event id (after base32hex), the Graph transactionId, the CalDAV and
    iCalendar UID. ``namespace`` tells installations apart that share calendars (e.g. a
    staging and a production tool writing to the same Google account).
    """
    digest = hashlib.sha256(f"{namespace}|{meeting_id}|{attendee_id}".encode()).hexdigest()
    return f"{KEY_PREFIX}-{meeting_id}-{attendee_id}-{digest[:16]}"


def require_aware(*moments: datetime) -> None:
    """Refuse naive datetimes: a provider cannot guess which zone they meant."""
    if any(moment.tzinfo is None or moment.utcoffset() is None for moment in moments):
        raise ValueError("calendar times must be timezone-aware datetimes")


class VirtualKind(StrEnum):
    """How a meeting is joined online, if at all."""

    NONE = "none"
    #: Ask the provider to make a link (Google Meet, Microsoft Teams); only the organizer's
    #: calendar does this; the other attendees' events then carry the link it gave.
    GENERATE = "generate"
    #: A link someone pasted (Zoom, a hospital's own system).
    URL = "url"


@dataclass(frozen=True, slots=True)
class Attendee:
    """A person named on the event (shown, not invited: Preceptor sends its own invites)."""

    email: str
    name: str = ""
    organizer: bool = False


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What one meeting should look like in one person's calendar.

    ``start``/``end`` are aware datetimes (any offset; providers convert to UTC), ``zone``
    is the IANA zone the meeting was planned in, so calendars show it at the intended wall
    time across daylight-saving changes. ``version`` rises with every change of the meeting
    and becomes the iCalendar SEQUENCE.
    """

    key: str
    version: int
    summary: str
    start: datetime
    end: datetime
    zone: str
    description: str = ""
    location: str = ""
    virtual: VirtualKind = VirtualKind.NONE
    conference_url: str | None = None
    attendees: tuple[Attendee, ...] = ()
    #: The calendar owner's e-mail address (ORGANIZER/ATTENDEE in iTIP, schedule id in Graph).
    owner_email: str | None = None

    def __post_init__(self) -> None:
        # Accept the plain string a JSON job payload carries ("generate") as the enum.
        object.__setattr__(self, "virtual", VirtualKind(self.virtual))
        require_aware(self.start, self.end)
        if self.end <= self.start:
            raise ValueError("EventSpec end must be after start")
        if self.version < 0:
            raise ValueError("EventSpec version must be 0 or more")
        if self.virtual is VirtualKind.URL and not self.conference_url:
            raise ValueError("a pasted-link meeting needs conference_url")
        ZoneInfo(self.zone)  # raises ZoneInfoNotFoundError for a bad zone name

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def start_local(self) -> datetime:
        """The start as wall time in the event's zone."""
        return self.start.astimezone(ZoneInfo(self.zone))

    @property
    def end_local(self) -> datetime:
        return self.end.astimezone(ZoneInfo(self.zone))

    def full_description(self) -> str:
        """The description with the join link and the other people appended."""
        parts = [self.description.strip()] if self.description.strip() else []
        if self.conference_url:
            parts.append(f"Join: {self.conference_url}")
        others = [a for a in self.attendees if a.email != self.owner_email]
        if others:
            parts.append("With: " + ", ".join(a.name or a.email for a in others))
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a caller stored about an event it synced before (ExternalEvent)."""

    key: str
    external_id: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    """The provider's answer for an event that now exists in the calendar."""

    key: str
    external_id: str
    etag: str | None = None
    conference_url: str | None = None
    #: The version the remote copy now carries (for a stale write it may exceed ours).
    version: int | None = None

    def ref(self) -> EventRef:
        return EventRef(key=self.key, external_id=self.external_id, etag=self.etag)


@dataclass(frozen=True, slots=True, order=True)
class BusyInterval:
    """A span in which a calendar is busy, in UTC."""

    start: datetime
    end: datetime
