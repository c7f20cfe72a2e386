"""Delivery channels: the :class:`Channel` protocol, e-mail over SMTP, and the in-app
notification centre.

A channel turns an :class:`Outgoing` message into a delivery. The dispatcher opens a
channel once per batch (one SMTP connection for a hundred e-mails) and calls the sender
per message; a sender raises :class:`ChannelError` when a message was not accepted. Each
person's ``NotificationPreference.channel`` picks the channel (:data:`CHANNELS`). The in-app
channel writes a :class:`Notification` in the dispatcher's own transaction, so the
notification and the "sent" record are committed together or not at all.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.followups.errors import ChannelError
from plugin.models import Notification, Participant

__all__ = [
    "CHANNELS",
    "Attachment",
    "Channel",
    "EmailChannel",
    "InAppChannel",
    "MailSender",
    "Outgoing",
    "Sender",
]

#: Channel names a person may choose, with the label their preferences page shows.
CHANNELS: dict[str, str] = {
    "email": "By e-mail",
    "in_app": "Only in Preceptor (a notice on your pages)",
}


@dataclass(frozen=True)
class Attachment:
    """A file sent with an e-mail, e.g. a meeting's ``meeting.ics``."""

    filename: str
    #: "text/calendar; method=PUBLISH": the type, then its parameters.
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """A rendered follow-up, ready for a channel (holds personal data: never log it)."""

    followup_id: int
    #: Idempotency key of this follow-up, the same for every attempt (the Message-ID).
    message_id: str
    to_name: str
    to_address: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    #: A path inside the tool (no launch token) the in-app notification links to.
    link: str = ""
    recipient_id: int = 0
    #: The follow-up's kind (names the in-app notification's kind).
    kind: str = ""


Sender = Callable[[Outgoing], None]
#: Sends one fully built MIME message (calendar invitations build their own structure).
MailSender = Callable[[EmailMessage], None]

#: RFC 5322 line limit instead of the 78-character fold: a folded List-Unsubscribe URL would
#: be MIME-encoded, and mail providers would no longer recognise the one-click link.
MAIL_POLICY = SMTP.clone(max_line_length=998)


class Channel(Protocol):
    """A way to reach a person: e-mail now, the in-app notification centre at merge."""

    name: str
    #: True when the sender writes in the dispatcher's transaction (nothing leaves the
    #: database): a rollback then undoes the delivery.
    transactional: bool

    def address_of(self, recipient: Participant) -> str | None:
        """Where this channel reaches ``recipient``, or None if it cannot."""
        ...

    def open(self) -> AbstractContextManager[Sender]:
        """A sender for one batch; resources (a connection) are released on exit."""
        ...


def build_email(message: Outgoing, mail_from: str) -> EmailMessage:
    """The MIME message: plain text and HTML alternatives, RFC 8058 one-click unsubscribe."""
    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = mail_from
    email["To"] = formataddr((message.to_name, message.to_address))
    email["Subject"] = message.subject
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = message.message_id
    email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # RFC 3834: automatic mail; out-of-office responders should not answer it.
    email["Auto-Submitted"] = "auto-generated"
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        kind, _, rest = attachment.content_type.partition(";")
        maintype, _, subtype = kind.strip().partition("/")
        params = dict(
            (name.strip(), value.strip())
            for name, _, value in (p.partition("=") for p in rest.split(";") if "=" in p)
        )
        # multipart/mixed around the alternatives: the body, then the file.
        email.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=params,
        )
    return email


def mail_domain(mail_from: str) -> str:
    """The domain of the From address (names Message-IDs)."""
    address = parseaddr(mail_from)[1]
    return address.rpartition("@")[2] or "localhost"


class EmailChannel:
    """E-mail over SMTP (``PRECEPTOR_SMTP_URL``), or the development outbox when unset."""

    name = "email"
    transactional = False

    def __init__(self, smtp_url: str | None, mail_from: str, *, outbox_only: bool = False) -> None:
        self.smtp_url = smtp_url
        self.mail_from = mail_from
        #: No relay configured in development: deliveries are recorded for /dev/mail only.
        self.outbox_only = outbox_only and smtp_url is None

    def address_of(self, recipient: Participant) -> str | None:
        address = recipient.email.strip()
        return address if "@" in address else None

    @contextmanager
    def open(self) -> Iterator[Sender]:
        with self.open_mail() as deliver:

            def send(message: Outgoing) -> None:
                deliver(build_email(message, self.mail_from))

            yield send

    @contextmanager
    def open_mail(self) -> Iterator[MailSender]:
        """A sender of ready-made MIME messages over one relay connection (or the dev outbox)."""
        if self.outbox_only:
            yield lambda _message: None
            return
        if self.smtp_url is None:
            raise ChannelError("PRECEPTOR_SMTP_URL is not set: no mail relay to send through")
        with self._connect() as client:

            def deliver(email: EmailMessage) -> None:
                try:
                    refused = client.send_message(email)
                except smtplib.SMTPRecipientsRefused as exc:
                    raise ChannelError("the relay refused the recipient", permanent=True) from exc
                except smtplib.SMTPResponseException as exc:
                    raise ChannelError(
                        f"the relay answered {exc.smtp_code}", permanent=exc.smtp_code >= 500
                    ) from exc
                if refused:
                    raise ChannelError("the relay refused the recipient", permanent=True)

            yield deliver

    @contextmanager
    def _connect(self) -> Iterator[smtplib.SMTP]:
        assert self.smtp_url is not None
        url = urlsplit(self.smtp_url)
        host, options = url.hostname or "localhost", parse_qs(url.query)
        client: smtplib.SMTP | None = None
        try:
            if url.scheme == "smtps":
                client = smtplib.SMTP_SSL(
                    host, url.port or 465, timeout=30, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(host, url.port or 25, timeout=30)
                if options.get("starttls", ["0"])[0] in ("1", "true", "yes"):
                    client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None:  # connected, then STARTTLS or the login failed
                client.close()
            raise ChannelError(f"cannot reach the mail relay: {type(exc).__name__}") from exc
        try:
            yield client
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


class InAppChannel:
    """The in-app notification centre: the message becomes a notice on the person's pages."""

    name = "in_app"
    transactional = True

    def __init__(self, session: Session) -> None:
        self.session = session

    def address_of(self, recipient: Participant) -> str | None:
        return f"participant:{recipient.id}"

    @contextmanager
    def open(self) -> Iterator[Sender]:
        def send(message: Outgoing) -> None:
            self.session.add(
                Notification(
                    recipient_id=message.recipient_id,
                    kind=f"followup.{message.kind}"[:60],
                    text=message.subject,
                    link=message.link,
                )
            )

        yield send
