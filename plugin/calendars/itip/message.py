"""The invitation e-mail: text and HTML for people, a text/calendar part for their calendar.

Structure, as Google Calendar and Outlook send and expect it::

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
        text/calendar; method=REQUEST (or CANCEL)
      application/ics; name="invite.ics" (the same object as an attachment)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from enum import StrEnum
from html import escape

from plugin.calendars.ics.events import ItipMethod, itip_cancel, itip_request
from plugin.calendars.types import Attendee, EventSpec
from plugin.followups.channels import MAIL_POLICY, mail_domain

__all__ = ["InvitationKind", "invitation_email", "message_id_for"]


class InvitationKind(StrEnum):
    NEW = "new"  #: the first REQUEST this person gets for the meeting
    UPDATED = "updated"  #: a later REQUEST (same UID, higher SEQUENCE)
    CANCELLED = "cancelled"  #: CANCEL


_SUBJECT = {
    InvitationKind.NEW: "Invitation: {summary} @ {when}",
    InvitationKind.UPDATED: "Updated invitation: {summary} @ {when}",
    InvitationKind.CANCELLED: "Cancelled: {summary} @ {when}",
}
_LEAD = {
    InvitationKind.NEW: "{organizer} invited you to a mentoring meeting.",
    InvitationKind.UPDATED: "This mentoring meeting has changed; the details below replace "
    "the earlier invitation.",
    InvitationKind.CANCELLED: "This mentoring meeting was cancelled.",
}
_WHY = (
    "You get invitations by e-mail because no calendar is connected to Preceptor. To have "
    "meetings appear in your calendar by themselves, connect Google Calendar or Outlook on "
    "the Meetings page of your mentoring program."
)


def message_id_for(uid: str, sequence: int, mail_from: str) -> str:
    """The Message-ID of the invitation for one version: the same on every attempt."""
    digest = hashlib.sha256(f"{uid}|{sequence}".encode()).hexdigest()[:32]
    return f"<itip-{digest}@{mail_domain(mail_from)}>"


def _when(spec: EventSpec) -> str:
    start, end = spec.start_local, spec.end_local
    day = f"{start:%A} {start.day} {start:%B %Y}"
    return f"{day}, {start:%H:%M}-{end:%H:%M} ({spec.zone})"


def _short_when(spec: EventSpec) -> str:
    start = spec.start_local
    return f"{start:%a} {start.day} {start:%b %Y} {start:%H:%M} ({spec.zone})"


def _details(spec: EventSpec) -> list[tuple[str, str]]:
    rows = [("When", _when(spec))]
    if spec.location:
        rows.append(("Where", spec.location))
    if spec.conference_url:
        rows.append(("Join", spec.conference_url))
    others = [a.name or a.email for a in spec.attendees if a.email != spec.owner_email]
    if others:
        rows.append(("With", ", ".join(others)))
    return rows


def _text(lead: str, spec: EventSpec) -> str:
    lines = [lead, "", spec.summary]
    lines += [f"{label}: {value}" for label, value in _details(spec)]
    if spec.description.strip():
        lines += ["", spec.description.strip()]
    lines += [
        "",
        "The invitation is attached: open it to add the meeting to your calendar.",
        "",
        _WHY,
    ]
    return "\n".join(lines) + "\n"


def _html(lead: str, spec: EventSpec) -> str:
    rows = "".join(
        f'<tr><th scope="row" style="text-align:left;padding-right:1em">{escape(label)}</th>'
        f"<td>{escape(value)}</td></tr>"
        for label, value in _details(spec)
    )
    description = (
        "".join(f"<p>{escape(p)}</p>" for p in spec.description.strip().split("\n\n"))
        if spec.description.strip()
        else ""
    )
    return (
        '<!doctype html><html lang="en"><body style="font-family:sans-serif;color:#1a1a1a">'
        f'<p>{escape(lead)}</p><h1 style="font-size:1.25em">{escape(spec.summary)}</h1>'
        f"<table>{rows}</table>{description}"
        "<p>The invitation is attached: open it to add the meeting to your calendar.</p>"
        f'<p style="color:#4a4a4a">{escape(_WHY)}</p></body></html>'
    )


def invitation_email(
    spec: EventSpec,
    kind: InvitationKind,
    *,
    mail_from: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The e-mail inviting ``spec.owner_email`` to ``spec`` (or cancelling it).

    The organizer on the invitation is the meeting's organizer, sent by Preceptor on their
    behalf (SENT-BY); when the recipient is the organizer, Preceptor itself, so their
    calendar shows an invitation to accept rather than a meeting they must manage.
    """
    if not spec.owner_email:
        raise ValueError("an invitation needs the recipient's address (spec.owner_email)")
    recipient = next(
        (a for a in spec.attendees if a.email == spec.owner_email), Attendee(spec.owner_email)
    )
    organizer = next(
        (a for a in spec.attendees if a.organizer and a.email != spec.owner_email), None
    )
    from_name, from_address = parseaddr(mail_from)
    if organizer is None:
        calendar_organizer, sent_by = Attendee(from_address, from_name or "Preceptor"), None
    else:
        calendar_organizer, sent_by = organizer, from_address
    method = ItipMethod.CANCEL if kind is InvitationKind.CANCELLED else ItipMethod.REQUEST
    build = itip_cancel if method is ItipMethod.CANCEL else itip_request
    ics = build(spec, recipient, organizer=calendar_organizer, sent_by=sent_by).decode()
    lead = _LEAD[kind].format(organizer=organizer.name or organizer.email if organizer else "You")
    if organizer is None and kind is InvitationKind.NEW:
        lead = "A mentoring meeting was scheduled for you."

    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = mail_from
    email["To"] = formataddr((recipient.name, recipient.email))
    email["Subject"] = _SUBJECT[kind].format(summary=spec.summary, when=_short_when(spec))
    email["Date"] = format_datetime(now or datetime.now(UTC))
    email["Message-ID"] = message_id_for(spec.key, spec.version, mail_from)
    # RFC 3834: automatic mail; out-of-office responders should not answer it.
    email["Auto-Submitted"] = "auto-generated"
    # Outlook recognises a meeting request by this header as well as by the part.
    email["Content-Class"] = "urn:content-classes:calendarmessage"
    email.set_content(_text(lead, spec))
    email.add_alternative(_html(lead, spec), subtype="html")
    email.add_alternative(ics, subtype="calendar", params={"method": str(method)}, cte="base64")
    email.add_attachment(ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return email
