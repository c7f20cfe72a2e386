"""iCalendar objects for meetings: iTIP invitations (REQUEST, CANCEL), CalDAV resources
and the per-person feed all share one VEVENT builder.

UID is the idempotency key and SEQUENCE the meeting version, so a calendar that received
version 3 replaces version 2 in place and ignores a late copy of version 2. Times carry
the meeting's IANA zone (with a generated VTIMEZONE), so a 10:00 New York meeting stays at
10:00 New York time on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import StrEnum

from icalendar import Calendar, Event, vCalAddress, vText

from plugin.calendars.types import Attendee, EventSpec

__all__ = [
    "PRODID",
    "ItipMethod",
    "caldav_resource",
    "calendar_for",
    "itip_cancel",
    "itip_request",
    "vevent",
]

PRODID = "-//Preceptor//Mentorship meetings//EN"


class ItipMethod(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"
    PUBLISH = "PUBLISH"


def _address(person: Attendee, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = vText(person.name)
    for name, value in params.items():
        address.params[name] = vText(value)
    return address


def vevent(
    spec: EventSpec,
    *,
    cancelled: bool = False,
    organizer: Attendee | None = None,
    recipients: Iterable[Attendee] = (),
    stamp: datetime | None = None,
    sent_by: str | None = None,
) -> Event:
    """The VEVENT for ``spec`` (UID = key, SEQUENCE = version).

    ``sent_by``: the address that sends on the organizer's behalf (RFC 5545 SENT-BY).
    """
    event = Event()
    event.add("uid", spec.key)
    event.add("sequence", spec.version)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    event.add("dtstart", spec.start_local)
    event.add("dtend", spec.end_local)
    event.add("summary", spec.summary)
    description = spec.full_description()
    if description:
        event.add("description", description)
    if spec.location:
        event.add("location", spec.location)
    if spec.conference_url:
        event.add("url", spec.conference_url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if organizer is not None:
        extra = {"SENT-BY": f"mailto:{sent_by}"} if sent_by else {}
        event.add("organizer", _address(organizer, **extra))
    for person in recipients:
        event.add(
            "attendee",
            _address(person, ROLE="REQ-PARTICIPANT", PARTSTAT="NEEDS-ACTION", RSVP="FALSE"),
        )
    return event


def calendar_for(
    events: Iterable[Event], *, method: ItipMethod | None = None, name: str | None = None
) -> Calendar:
    """A VCALENDAR around ``events`` with the VTIMEZONEs their times need."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method is not None:
        calendar.add("method", str(method))
    if name:
        calendar.add("x-wr-calname", name)
    years = []
    for event in events:
        calendar.add_component(event)
        years.append(event.start.year)
    # A VTIMEZONE covering the events' years (plus margin) instead of 1970-2038: the
    # rules are the same, the invitation is a tenth of the size.
    first = date(min(years, default=1970) - 1, 1, 1)
    last = date(max(years, default=2037) + 2, 1, 1)
    calendar.add_missing_timezones(first_date=first, last_date=last)
    return calendar


def _organizer(spec: EventSpec, organizer: Attendee | None) -> Attendee:
    if organizer is not None:
        return organizer
    found = next((a for a in spec.attendees if a.organizer), None)
    if found is None:
        raise ValueError("an iTIP message needs an organizer (an attendee with organizer=True)")
    return found


def itip_request(
    spec: EventSpec,
    recipient: Attendee,
    *,
    organizer: Attendee | None = None,
    sent_by: str | None = None,
) -> bytes:
    """METHOD:REQUEST for ``recipient``: the text/calendar part of an invitation e-mail.

    Send it again with a higher ``spec.version`` for an update; mail clients replace the
    earlier copy because the UID is the same and the SEQUENCE higher.
    """
    event = vevent(
        spec, organizer=_organizer(spec, organizer), recipients=[recipient], sent_by=sent_by
    )
    data: bytes = calendar_for([event], method=ItipMethod.REQUEST).to_ical()
    return data


def itip_cancel(
    spec: EventSpec,
    recipient: Attendee,
    *,
    organizer: Attendee | None = None,
    sent_by: str | None = None,
) -> bytes:
    """METHOD:CANCEL for ``recipient``; ``spec.version`` must exceed the last REQUEST's."""
    event = vevent(
        spec,
        cancelled=True,
        organizer=_organizer(spec, organizer),
        recipients=[recipient],
        sent_by=sent_by,
    )
    data: bytes = calendar_for([event], method=ItipMethod.CANCEL).to_ical()
    return data


def caldav_resource(spec: EventSpec) -> str:
    """The iCalendar object a CalDAV server stores for ``spec`` (no METHOD, per RFC 4791)."""
    data: bytes = calendar_for([vevent(spec)]).to_ical()
    return data.decode()
