"""Invitation e-mails: an invited mentor gets their link by e-mail, durably and once.

Importing mentors, or a coordinator's "E-mail a new link", writes an
:class:`InvitationMail` in the same transaction as the invitation and defers
``workers.jobs.send_mentor_invitation`` through the job outbox: the job is queued only
after the commit (nothing is mailed about an import that rolled back) and re-driven by
cron if Redis loses it. While one e-mail to a mentor is pending, asking again adds none.

The job sends a row only while it is pending, and reads the address and makes the signed
link when the message leaves (a link expires ``INVITATION_TTL`` after it is made, so a
message delayed by retries still carries a link good for the whole period; an invitation
accepted or erased meanwhile is skipped). Every attempt carries the same Message-ID, so
if a worker dies after the relay took the message and before the row was marked sent,
the resend is recognisable and the receiving server keeps one copy. A relay that refuses
for good (5xx, recipient refused) marks the row failed with the reason, which the
coordinator sees on the invitation page; other failures are retried with back-off.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Any, Final

from flask import render_template
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.db import begin_write, utcnow
from plugin.followups.errors import ChannelError
from plugin.jobs import QueueName, defer
from plugin.models import (
    InvitationMail,
    InvitationMailState,
    Participant,
    ParticipantStatus,
    Program,
    User,
)
from plugin.programs.errors import StateConflict
from plugin.programs.invitations import INVITATION_TTL, invitation_token

if TYPE_CHECKING:
    from plugin.followups.channels import EmailChannel

__all__ = [
    "MAX_ATTEMPTS",
    "SEND_JOB",
    "email_new_link",
    "invitation_email",
    "invitation_mails",
    "queue_invitation_mail",
    "send_invitation_mail",
]

#: The job that sends one InvitationMail (``plugin`` never imports ``workers``).
SEND_JOB: Final = "workers.jobs.send_mentor_invitation"
#: Attempts before a relay that keeps failing (not refusing) is given up on.
MAX_ATTEMPTS: Final = 5


def _lock(session: Session, participant: Participant) -> None:
    # PostgreSQL: two requests for the same mentor take turns, so the second sees the
    # first one's pending e-mail. SQLite: the caller's begin_write serialises writers.
    session.refresh(participant, with_for_update=True)


def queue_invitation_mail(
    session: Session, participant: Participant, *, invited_by_user_id: int | None
) -> tuple[InvitationMail, bool]:
    """Promise an e-mail with a link to invited ``participant``, in the caller's transaction.

    Returns the row and whether it is new: while an e-mail to them is still pending, that
    one is returned and nothing is added (a double click or a retried request sends one).
    """
    if participant.status != ParticipantStatus.INVITED or not participant.invite_email:
        raise StateConflict("only an invited mentor who has not accepted gets an invitation")
    pending = session.scalar(
        select(InvitationMail)
        .where(
            InvitationMail.participant_id == participant.id,
            InvitationMail.state == InvitationMailState.PENDING,
        )
        .order_by(InvitationMail.id)
        .limit(1)
    )
    if pending is not None:
        # Queue its job again: if the last one died for good (its outbox row is dead) the
        # e-mail would wait forever. The key keeps a live job from being queued twice, and
        # the job sends only a row that is still pending.
        _queue_send(session, pending)
        return pending, False
    mail = InvitationMail(participant_id=participant.id, invited_by_user_id=invited_by_user_id)
    session.add(mail)
    session.flush()
    _queue_send(session, mail)
    return mail, True


def _queue_send(session: Session, mail: InvitationMail) -> None:
    defer(session, SEND_JOB, mail.id, key=f"mentor-invitation-{mail.id}", queue=QueueName.DEFAULT)


def email_new_link(
    session: Session, program: Program, participant: Participant, *, actor_user_id: int
) -> InvitationMail:
    """A coordinator asks for a new link by e-mail for an invited mentor (audited once)."""
    begin_write(session)
    _lock(session, participant)
    mail, created = queue_invitation_mail(session, participant, invited_by_user_id=actor_user_id)
    if created:
        record_audit(
            session,
            course_id=program.course_id,
            program_id=program.id,
            actor_user_id=actor_user_id,
            action="invitation.emailed",
            target_type="participant",
            target_id=participant.id,
            after={"invitation_mail_id": mail.id},
        )
    return mail


def invitation_mails(session: Session, participant: Participant) -> list[InvitationMail]:
    """The invitation e-mails of ``participant``, newest first (for the coordinator)."""
    return list(
        session.scalars(
            select(InvitationMail)
            .where(InvitationMail.participant_id == participant.id)
            .order_by(InvitationMail.id.desc())
        )
    )


def _message_id(mail: InvitationMail, mail_from: str) -> str:
    from plugin.followups.channels import mail_domain

    digest = hashlib.sha256(f"invitation|{mail.id}|{mail.participant_id}".encode()).hexdigest()
    return f"<invitation-{mail.id}.{digest[:16]}@{mail_domain(mail_from)}>"


def invitation_email(
    session: Session,
    mail: InvitationMail,
    *,
    mail_from: str,
    base_url: str,
    secret_key: str,
) -> EmailMessage:
    """The message for ``mail``: who invites, to which program, the link and its expiry."""
    from plugin.followups.channels import MAIL_POLICY

    participant = mail.participant
    program = participant.program
    inviter = session.get(User, mail.invited_by_user_id) if mail.invited_by_user_id else None
    link = f"{base_url}/invitations/{invitation_token(secret_key, participant)}"
    context: dict[str, Any] = {
        "name": participant.invite_name or "there",
        "program": program,
        "course_title": program.course.title,
        "inviter": inviter.name if inviter is not None and inviter.name else "",
        "link": link,
        "expires": (utcnow() + timedelta(seconds=INVITATION_TTL)).strftime("%d %B %Y"),
        "ttl_days": INVITATION_TTL // 86400,
    }
    subject = f"Invitation to mentor in {program.title}"
    context["subject"] = subject
    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = mail_from
    email["To"] = formataddr((participant.invite_name, participant.invite_email))
    if inviter is not None and "@" in inviter.email:
        # Questions about the invitation go to the coordinator who sent it, not to a robot.
        email["Reply-To"] = formataddr((inviter.name, inviter.email))
    email["Subject"] = subject
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = mail.message_id or _message_id(mail, mail_from)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    email.set_content(render_template("invitations/mail.txt", **context))
    email.add_alternative(render_template("invitations/mail.html", **context), subtype="html")
    return email


def _record(session: Session, mail: InvitationMail, **values: Any) -> bool:
    """Move ``mail`` on from pending; False if another run already did."""
    begin_write(session)  # SQLite: the read before the send must not fail this write
    done = session.execute(
        update(InvitationMail)
        .where(InvitationMail.id == mail.id, InvitationMail.state == InvitationMailState.PENDING)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    session.expire(mail)
    return bool(getattr(done, "rowcount", 0))


def _unsendable(participant: Participant) -> str:
    if participant.status == ParticipantStatus.ACTIVE:
        return "not needed: the mentor had already accepted"
    if participant.status != ParticipantStatus.INVITED or not participant.invite_email:
        return "not needed: the invitation was withdrawn"
    return ""


def send_invitation_mail(
    session: Session,
    mail_id: int,
    channel: EmailChannel,
    *,
    base_url: str,
    secret_key: str,
) -> InvitationMailState:
    """Send one pending invitation e-mail once; returns the row's state afterwards.

    Raises :class:`ChannelError` (so the job is retried with back-off) while the relay
    fails and attempts remain; a permanent refusal or the last attempt marks it failed.
    """
    mail = session.get(InvitationMail, mail_id, with_for_update=True, populate_existing=True)
    if mail is None:
        return InvitationMailState.SKIPPED  # the mentor was deleted with their e-mails
    if mail.state != InvitationMailState.PENDING:
        return mail.state  # already sent (a second run of the job), failed or skipped
    why_not = _unsendable(mail.participant)
    if why_not:
        _record(session, mail, state=InvitationMailState.SKIPPED, reason=why_not)
        return InvitationMailState.SKIPPED
    message = invitation_email(
        session, mail, mail_from=channel.mail_from, base_url=base_url, secret_key=secret_key
    )
    message_id = str(message["Message-ID"])
    attempts = mail.attempts + 1
    try:
        with channel.open_mail() as deliver:
            deliver(message)
    except ChannelError as exc:
        if exc.permanent or attempts >= MAX_ATTEMPTS:
            reason = str(exc) if exc.permanent else f"gave up after {attempts} attempts: {exc}"
            _record(
                session,
                mail,
                state=InvitationMailState.FAILED,
                reason=reason,
                attempts=attempts,
                message_id=message_id,
            )
            return InvitationMailState.FAILED
        _record(session, mail, reason=f"retrying: {exc}", attempts=attempts, message_id=message_id)
        session.commit()
        raise
    reason = "development: recorded, not sent (no mail relay configured)"
    _record(
        session,
        mail,
        state=InvitationMailState.SENT,
        reason=reason if channel.outbox_only else "",
        attempts=attempts,
        message_id=message_id,
        sent_at=utcnow(),
    )
    return InvitationMailState.SENT
