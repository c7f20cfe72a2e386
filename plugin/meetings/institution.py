"""Institution calendars: meetings reach everyone in a domain without a sign-in each.

An admin configures, per LMS registration (platform), an e-mail domain and one of:

* **google**: a Google Workspace service account with domain-wide delegation of the
  calendar scope (its JSON key, stored encrypted); events are written to each person's
  primary calendar as that person (the key's ``subject``).
* **microsoft**: the tool's Entra app with the ``Calendars.ReadWrite`` application
  permission (client credentials from settings); events go to ``/users/{address}``.
  Restrict the app to the mentoring population with an application access policy.

A participant of that platform whose e-mail is in the domain, and who has no calendar of
their own connected, gets a connection marked with the institution (``institution_id``):
when the calendar is configured (everyone already enrolled), and when they enroll. A
person who connects their own calendar replaces it as usual; removing the institution
calendar revokes its connections and their pending work falls back to e-mail
invitations. Adding the same domain again replaces the key (rotation) in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.meetings.connections import store_connection
from plugin.meetings.errors import MeetingError
from plugin.meetings.sync import live_connection
from plugin.models import (
    ICS_PROVIDER,
    CalendarConnection,
    Course,
    Deployment,
    InstitutionCalendar,
    Participant,
    ParticipantStatus,
    Platform,
    Program,
    SyncIntent,
    SyncState,
)

__all__ = [
    "INSTITUTION_PROVIDERS",
    "InstitutionCalendarError",
    "InstitutionSummary",
    "add_institution_calendar",
    "connect_through_institution",
    "list_institution_calendars",
    "parse_service_account",
    "remove_institution_calendar",
]

INSTITUTION_PROVIDERS: Final = ("google", "microsoft")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: Fields google-auth needs from a service account key (``from_service_account_info``).
_KEY_FIELDS: Final = ("client_email", "private_key", "token_uri")


class InstitutionCalendarError(MeetingError):
    """The institution calendar cannot be configured as asked; the message says why."""


@dataclass(frozen=True)
class InstitutionSummary:
    """One configured institution calendar, for admins (never the key)."""

    id: int
    platform_id: int
    provider: str
    domain: str
    connections: int


def _domain(value: str) -> str:
    domain = value.strip().lower().lstrip("@")
    if not _DOMAIN.match(domain):
        raise InstitutionCalendarError(
            f"{value!r} is not an e-mail domain; give it as e.g. med.example.edu"
        )
    return domain


def parse_service_account(text: str) -> dict[str, Any]:
    """The service account key from its JSON text, checked for what google-auth needs."""
    try:
        info = json.loads(text)
    except ValueError:
        raise InstitutionCalendarError("the key file is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise InstitutionCalendarError(
            "the key file is not a Google service account key (type must be service_account)"
        )
    missing = [name for name in _KEY_FIELDS if not info.get(name)]
    if missing:
        raise InstitutionCalendarError(f"the key file lacks {', '.join(missing)}")
    if "PRIVATE KEY" not in str(info["private_key"]):
        raise InstitutionCalendarError("the key file's private_key is not a PEM private key")
    return info


def _credentials(institution: InstitutionCalendar, address: str) -> dict[str, Any]:
    if institution.provider == "google":
        return {
            "mode": "service_account",
            "service_account": json.loads(institution.credentials or "{}"),
            "subject": address,
        }
    return {"mode": "application", "user": address}


def _email_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() if "@" in address else ""


def _platform_id(session: Session, participant: Participant) -> int | None:
    return session.scalar(
        select(Deployment.platform_id)
        .join(Course, Course.deployment_id == Deployment.id)
        .join(Program, Program.course_id == Course.id)
        .where(Program.id == participant.program_id)
    )


def _participants_of(session: Session, platform_id: int) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant)
            .join(Program, Program.id == Participant.program_id)
            .join(Course, Course.id == Program.course_id)
            .join(Deployment, Deployment.id == Course.deployment_id)
            .where(
                Deployment.platform_id == platform_id,
                Participant.status == ParticipantStatus.ACTIVE,
            )
            .order_by(Participant.id)
        )
    )


def _connect(
    session: Session, participant: Participant, institution: InstitutionCalendar
) -> CalendarConnection | None:
    address = participant.email
    if (
        participant.status != ParticipantStatus.ACTIVE
        or _email_domain(address) != institution.domain
        or live_connection(session, participant) is not None
    ):
        return None
    connection = store_connection(
        session, participant, institution.provider, address, _credentials(institution, address)
    )
    connection.institution_id = institution.id
    session.flush()
    return connection


def connect_through_institution(
    session: Session, participant: Participant
) -> CalendarConnection | None:
    """Connect ``participant`` through their institution's calendar, if one covers them.

    Nothing happens when they already have a live connection (their own or an earlier
    institution one), have no e-mail, or no institution calendar covers their domain.
    """
    domain = _email_domain(participant.email)
    if not domain:
        return None
    platform_id = _platform_id(session, participant)
    institution = session.scalar(
        select(InstitutionCalendar).where(
            InstitutionCalendar.platform_id == platform_id, InstitutionCalendar.domain == domain
        )
    )
    return _connect(session, participant, institution) if institution is not None else None


def add_institution_calendar(
    session: Session,
    *,
    platform: Platform,
    provider: str,
    domain: str,
    service_account: Mapping[str, Any] | None = None,
) -> tuple[InstitutionCalendar, int]:
    """Configure (or re-key) an institution calendar; returns it and how many were connected.

    Everyone of ``platform`` already enrolled whose address is in ``domain`` and who has
    no calendar connected gets the institution connection now; a new key for the same
    domain is written into the live connections it made.
    """
    if provider not in INSTITUTION_PROVIDERS:
        raise InstitutionCalendarError(
            f"{provider!r} has no institution option; use one of {', '.join(INSTITUTION_PROVIDERS)}"
        )
    domain = _domain(domain)
    if provider == "google" and not service_account:
        raise InstitutionCalendarError(
            "a Google institution calendar needs the service account key"
        )
    if provider == "microsoft" and service_account:
        raise InstitutionCalendarError(
            "a Microsoft institution calendar uses the app's client credentials from settings, "
            "not a key file"
        )
    institution = session.scalar(
        select(InstitutionCalendar).where(
            InstitutionCalendar.platform_id == platform.id, InstitutionCalendar.domain == domain
        )
    )
    if institution is not None and institution.provider != provider:
        raise InstitutionCalendarError(
            f"{domain} already uses the {institution.provider} institution calendar; "
            "remove that one first"
        )
    if institution is None:
        institution = InstitutionCalendar(platform_id=platform.id, provider=provider, domain=domain)
        session.add(institution)
    institution.credentials = json.dumps(dict(service_account)) if service_account else None
    session.flush()
    for connection in session.scalars(
        select(CalendarConnection).where(
            CalendarConnection.institution_id == institution.id,
            CalendarConnection.revoked_at.is_(None),
        )
    ):
        connection.credentials = json.dumps(_credentials(institution, connection.account))
    connected = sum(
        _connect(session, participant, institution) is not None
        for participant in _participants_of(session, platform.id)
    )
    return institution, connected


def remove_institution_calendar(session: Session, institution: InstitutionCalendar) -> int:
    """Remove it: its connections are revoked, their pending work goes to e-mail instead.

    Returns how many connections were revoked.
    """
    now = utcnow()
    ids = list(
        session.scalars(
            select(CalendarConnection.id).where(
                CalendarConnection.institution_id == institution.id,
                CalendarConnection.revoked_at.is_(None),
            )
        )
    )
    if ids:
        session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id.in_(ids))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(SyncIntent)
            .where(SyncIntent.connection_id.in_(ids), SyncIntent.state == SyncState.PENDING)
            .values(provider=ICS_PROVIDER, connection_id=None, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
    session.delete(institution)
    session.flush()
    return len(ids)


def list_institution_calendars(session: Session) -> list[InstitutionSummary]:
    """Every configured institution calendar with its number of live connections."""
    rows = session.scalars(
        select(InstitutionCalendar).order_by(
            InstitutionCalendar.platform_id, InstitutionCalendar.domain
        )
    ).all()
    summaries = []
    for row in rows:
        live = session.scalars(
            select(CalendarConnection.id).where(
                CalendarConnection.institution_id == row.id,
                CalendarConnection.revoked_at.is_(None),
            )
        ).all()
        summaries.append(
            InstitutionSummary(row.id, row.platform_id, row.provider, row.domain, len(live))
        )
    return summaries
