"""Calendar connection health: who gets e-mail invitations, and what happens when a
connected calendar stops working.

A connection stops when its grant is revoked (invalid_grant, a 401 after refresh, a
missing permission) or when it has kept failing (quota, outages) for
:data:`FAILING_GIVE_UP`. Then, in the drain's transaction: the connection is marked
revoked (a conditional UPDATE, so only one drain does it), its pending intents go to the
e-mail path, the person and their program's coordinators get one in-app notification
each, and one ``workers.jobs.send_calendar_notice`` is deferred through the outbox (it is
queued only after that transaction commits). The notice job records ``notice_sent_at``
and derives its Message-ID from the connection, so it sends once and a resend after a
crash is recognisable as the same message.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs import QueueName, defer
from plugin.models import (
    ICS_PROVIDER,
    CalendarConnection,
    ConnectionHealth,
    NotificationPreference,
    Participant,
    ParticipantStatus,
    SyncIntent,
    SyncState,
)
from plugin.programs.notifications import notify

if TYPE_CHECKING:
    from plugin.followups.channels import EmailChannel

__all__ = [
    "FAILING_GIVE_UP",
    "INVITATION_KIND",
    "NOTICE_JOB",
    "give_up_connection",
    "health_summary",
    "invitation_blocker",
    "plain_reason",
    "send_connection_notice",
]

#: A connection failing this long without one success is given up like a revoked one.
FAILING_GIVE_UP: Final = timedelta(hours=24)
#: The job that e-mails the person whose calendar stopped (``plugin`` never imports workers).
NOTICE_JOB: Final = "workers.jobs.send_calendar_notice"
#: Notification kind, and the ``muted_kinds`` entry with which a person declines invitations.
NOTIFICATION_KIND: Final = "calendar.disconnected"
INVITATION_KIND: Final = "meeting_invitation"

_PROVIDER_LABELS: Final = {"google": "Google", "microsoft": "Outlook", "caldav": "CalDAV"}
#: (substring of the technical error, the same in plain words); first match wins.
_PLAIN: Final = (
    ("failing since", "the calendar service kept refusing changes for a day"),
    ("invalid_grant", "access was withdrawn or the sign-in expired"),
    ("revoked", "access was withdrawn or the sign-in expired"),
    ("unauthorized_client", "access was withdrawn or the sign-in expired"),
    ("insufficientpermissions", "Preceptor is not allowed to add events to this calendar"),
    ("accessdenied", "Preceptor is not allowed to add events to this calendar"),
    ("scope", "Preceptor is not allowed to add events to this calendar"),
    ("quota", "the calendar service's daily limit for Preceptor was reached"),
    ("401", "the calendar service no longer accepts Preceptor's sign-in"),
    ("credentials cannot be read", "the stored sign-in could not be read"),
    ("429", "the calendar service asked Preceptor to slow down"),
    ("rate limit", "the calendar service asked Preceptor to slow down"),
    ("timeout", "the calendar service did not answer in time"),
    ("timed out", "the calendar service did not answer in time"),
    ("500", "the calendar service was unavailable"),
    ("502", "the calendar service was unavailable"),
    ("503", "the calendar service was unavailable"),
    ("unavailable", "the calendar service was unavailable"),
)


def provider_label(provider: str) -> str:
    return _PROVIDER_LABELS.get(provider, provider.capitalize())


def plain_reason(error: str) -> str:
    """A technical provider error in words a person can act on ("" for no error)."""
    if not error.strip():
        return ""
    lowered = error.lower()
    return next(
        (words for needle, words in _PLAIN if needle.lower() in lowered),
        "the calendar service refused the latest changes",
    )


def health_summary(connection: CalendarConnection) -> tuple[str, str]:
    """(state, sentence) for the person's calendar panel: connected, working or failing."""
    label = provider_label(connection.provider)
    if not connection.is_live:
        return "disconnected", (
            f"Disconnected: your {label} calendar stopped working "
            f"({plain_reason(connection.last_error) or 'access was withdrawn'}), so meetings "
            "now come to you as e-mail invitations. Connect it again to go back."
        )
    if connection.health == ConnectionHealth.FAILING:
        return "failing", (
            f"Failing: your {label} calendar did not accept the latest changes "
            f"({plain_reason(connection.last_error)}). Preceptor keeps retrying; after a day "
            "of failures your meetings come as e-mail invitations instead."
        )
    account = f" ({connection.account})" if connection.account else ""
    if connection.last_synced_at is not None:
        return "working", f"Working: meetings appear in your {label} calendar{account}."
    return "connected", (
        f"Connected: meetings will appear in your {label} calendar{account} from the next change."
    )


def invitation_blocker(session: Session, participant: Participant) -> str | None:
    """Why ``participant`` gets no e-mail invitations, or None when they do."""
    if "@" not in participant.email:
        return "not sent: no e-mail address (the meeting is in the person's calendar feed)"
    preference = session.get(NotificationPreference, participant.id)
    if preference is not None and (
        preference.unsubscribed_at is not None or INVITATION_KIND in preference.muted_kinds
    ):
        return "not sent: the person opted out of e-mail (the meeting is in their feed)"
    return None


def _people(session: Session, connection: CalendarConnection) -> list[Participant]:
    """The enrollments whose meetings went through ``connection``."""
    if connection.participant_id is not None:
        person = session.get(Participant, connection.participant_id)
        return [person] if person is not None else []
    return list(
        session.scalars(
            select(Participant).where(
                Participant.user_id == connection.user_id,
                Participant.status == ParticipantStatus.ACTIVE,
            )
        )
    )


def _coordinators(session: Session, person: Participant) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant).where(
                Participant.program_id == person.program_id,
                Participant.is_coordinator.is_(True),
                Participant.status == ParticipantStatus.ACTIVE,
                Participant.id != person.id,
            )
        )
    )


def give_up_connection(
    session: Session, connection: CalendarConnection, reason: str, *, now: datetime
) -> bool:
    """Stop using ``connection``, move its pending intents to e-mail, tell people once.

    True if this call made the change; False if another drain already had (then nothing
    is written twice). The caller commits; the notice e-mail is queued after that.
    """
    changed = session.execute(
        update(CalendarConnection)
        .where(CalendarConnection.id == connection.id, CalendarConnection.revoked_at.is_(None))
        .values(health=ConnectionHealth.REVOKED, revoked_at=now, last_error=reason[:500])
        .execution_options(synchronize_session=False)
    )
    session.expire(connection, ["health", "revoked_at", "last_error"])
    if int(getattr(changed, "rowcount", 0) or 0) != 1:
        return False
    # Every pending intent of this calendar now goes by e-mail (those another drain holds
    # follow when it sees the connection is no longer live).
    moved = session.execute(
        select(SyncIntent.id, SyncIntent.attendee_id)
        .where(SyncIntent.connection_id == connection.id, SyncIntent.state == SyncState.PENDING)
        .with_for_update(skip_locked=True)
    ).all()
    if moved:
        session.execute(
            update(SyncIntent)
            .where(SyncIntent.id.in_([row.id for row in moved]))
            .values(provider=ICS_PROVIDER, connection_id=None, next_attempt_at=None)
            .execution_options(synchronize_session="fetch")
        )
    _tell(session, connection, plain_reason(reason))
    return True


def _tell(session: Session, connection: CalendarConnection, plain: str) -> None:
    label = provider_label(connection.provider)
    for person in _people(session, connection):
        link = f"/programs/{person.program_id}/meetings/"
        notify(
            session,
            person,
            kind=NOTIFICATION_KIND,
            text=f"Your {label} calendar stopped working ({plain}). Your meetings now come "
            "as e-mail invitations. Connect your calendar again on My meetings.",
            link=link,
        )
        for coordinator in _coordinators(session, person):
            notify(
                session,
                coordinator,
                kind=NOTIFICATION_KIND,
                text=f"{person.display_name}'s {label} calendar stopped working ({plain}). "
                "Their meetings now go out as e-mail invitations; they can reconnect on "
                "their My meetings page.",
                link=f"/programs/{person.program_id}/",
            )
    defer(
        session,
        NOTICE_JOB,
        connection.id,
        key=f"calendar-notice-{connection.id}",
        queue=QueueName.DEFAULT,
    )


def _notice_email(
    connection: CalendarConnection, person: Participant, mail_from: str
) -> EmailMessage:
    from plugin.followups.channels import MAIL_POLICY, mail_domain

    label = provider_label(connection.provider)
    program = person.program.title
    digest = hashlib.sha256(f"notice|{connection.id}|{person.id}".encode()).hexdigest()[:24]
    text = (
        f"Hello {person.display_name},\n\n"
        f"Your {label} calendar stopped accepting your mentoring meetings from Preceptor "
        f"({plain_reason(connection.last_error)}).\n\n"
        "Nothing is lost: until you reconnect, your meetings come to you as e-mail "
        "invitations that you can add to any calendar.\n\n"
        f"To reconnect: open {program} from your course, go to My meetings, and choose "
        f"Connect {'Outlook' if connection.provider == 'microsoft' else 'Google Calendar'} "
        "(or the other calendar you use).\n"
    )
    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = mail_from
    email["To"] = formataddr((person.display_name, person.email))
    email["Subject"] = f"Your {label} calendar stopped working with Preceptor"
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = f"<calendar-notice-{digest}@{mail_domain(mail_from)}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(text)
    return email


def send_connection_notice(session: Session, connection_id: int, channel: EmailChannel) -> int:
    """E-mail the people of a stopped connection once; returns the messages sent.

    Locks the connection row so two runs of the job cannot both send; raises ChannelError
    (the job retries) if the relay does not take them.
    """
    connection = session.get(CalendarConnection, connection_id, with_for_update=True)
    if connection is None or connection.notice_sent_at is not None:
        return 0
    sent = 0
    with channel.open_mail() as deliver:
        for person in _people(session, connection):
            if invitation_blocker(session, person) is not None:
                continue
            deliver(_notice_email(connection, person, channel.mail_from))
            sent += 1
    connection.notice_sent_at = utcnow()
    return sent
