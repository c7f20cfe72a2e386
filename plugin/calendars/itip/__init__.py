"""E-mail invitations (iTIP, RFC 5546 over e-mail, RFC 6047) for people with no connected
calendar: the ``ics`` calendar provider.

The person's mailbox plays the calendar: a REQUEST adds the meeting, a later REQUEST with
the same UID and a higher SEQUENCE replaces it, a CANCEL removes it. The UID is the
(meeting, attendee) idempotency key the other providers use, the SEQUENCE the meeting's
version, and the Message-ID is derived from both, so a message sent again after a crash is
recognisable as the same message by the receiving side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plugin.calendars.credentials import CredentialsCallback
from plugin.calendars.itip.message import invitation_email, message_id_for
from plugin.calendars.itip.provider import ItipProvider
from plugin.calendars.settings import CalendarSettings

if TYPE_CHECKING:
    from plugin.followups.channels import EmailChannel

__all__ = ["ItipProvider", "invitation_email", "mail_channel", "message_id_for", "open_provider"]


def mail_channel(settings: CalendarSettings) -> EmailChannel:
    """The SMTP channel invitations and calendar notices go through."""
    from plugin.followups.channels import EmailChannel

    return EmailChannel(
        settings.smtp_url, settings.mail_from, outbox_only=settings.mail_outbox_only
    )


def open_provider(
    credentials: Mapping[str, Any],
    *,
    settings: CalendarSettings,
    on_credentials_change: CredentialsCallback | None = None,
) -> ItipProvider:
    """The e-mail invitation provider; it has no credentials, only the mail relay settings."""
    return ItipProvider(mail_channel(settings))
