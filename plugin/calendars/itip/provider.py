"""The ``ics`` calendar provider: each operation is an iTIP e-mail to the calendar's owner.

It implements :class:`~plugin.calendars.protocol.CalendarProvider` and ``SupportsBatch``
(one relay connection per batch), and never touches the database: the caller records what
was sent (``ExternalEvent.synced_version`` is the SEQUENCE sent), so a retried intent for
a version already sent is not handed to it again.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from plugin.calendars.errors import CalendarError, ProviderError, TransientError
from plugin.calendars.itip.message import InvitationKind, invitation_email
from plugin.calendars.protocol import BatchOutcome, Operation, OperationKind
from plugin.calendars.types import EventRef, EventResult, EventSpec

if TYPE_CHECKING:
    from plugin.followups.channels import EmailChannel, MailSender

__all__ = ["ItipProvider"]


class ItipProvider:
    """Create, update and cancel by e-mail: REQUEST, REQUEST with SEQUENCE+1, CANCEL."""

    kind = "ics"
    #: Invitations sent over one relay connection.
    max_batch_size = 50

    def __init__(self, channel: EmailChannel) -> None:
        self._channel = channel
        self._stack = ExitStack()
        self._deliver: MailSender | None = None
        #: Messages handed to the relay by this provider (tests and logs count them).
        self.sent = 0

    # --- CalendarProvider -------------------------------------------------------------

    def create_event(self, spec: EventSpec) -> EventResult:
        """Send the invitation (METHOD:REQUEST)."""
        return self._send(spec, InvitationKind.NEW)

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        """Send the changed invitation: same UID, the new version as SEQUENCE."""
        kind = InvitationKind.UPDATED if ref.external_id else InvitationKind.NEW
        return self._send(spec, kind)

    def cancel_event(self, ref: EventRef) -> None:
        """A CANCEL must describe the meeting: use ``run_batch`` with the operation's spec."""
        if ref.external_id is None:
            return  # never invited: there is nothing in their calendar to cancel
        raise ProviderError(
            "an e-mail cancellation needs the meeting's details: pass Operation.cancel(ref, spec)"
        )

    def run_batch(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        """Send one message per operation over one relay connection; never raises per item."""
        outcomes = []
        for operation in operations:
            try:
                outcomes.append(BatchOutcome(operation, result=self._apply(operation)))
            except CalendarError as exc:
                outcomes.append(BatchOutcome(operation, error=exc))
        return outcomes

    def close(self) -> None:
        self._stack.close()
        self._deliver = None

    # --- internals --------------------------------------------------------------------

    def _apply(self, operation: Operation) -> EventResult | None:
        if operation.kind is OperationKind.CANCEL:
            assert operation.ref is not None
            if operation.ref.external_id is None or operation.spec is None:
                # Scheduled and cancelled before any invitation left: send nothing.
                self.cancel_event(operation.ref)
                return None
            self._send(operation.spec, InvitationKind.CANCELLED)
            return None
        assert operation.spec is not None
        if operation.kind is OperationKind.UPDATE:
            assert operation.ref is not None
            return self.update_event(operation.spec, operation.ref)
        return self.create_event(operation.spec)

    def _sender(self) -> MailSender:
        from plugin.followups.errors import ChannelError

        if self._deliver is None:
            try:
                self._deliver = self._stack.enter_context(self._channel.open_mail())
            except ChannelError as exc:
                raise TransientError(f"cannot send e-mail invitations: {exc}") from exc
        return self._deliver

    def _send(self, spec: EventSpec, kind: InvitationKind) -> EventResult:
        from plugin.followups.errors import ChannelError

        if not spec.owner_email or "@" not in spec.owner_email:
            raise ProviderError("this person has no e-mail address to send the invitation to")
        message = invitation_email(spec, kind, mail_from=self._channel.mail_from)
        deliver = self._sender()
        try:
            deliver(message)
        except ChannelError as exc:
            if exc.permanent:
                raise ProviderError(f"the invitation was refused: {exc}") from exc
            raise TransientError(f"the invitation was not accepted yet: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"the mail relay connection failed: {type(exc).__name__}") from exc
        self.sent += 1
        return EventResult(
            key=spec.key,
            external_id=spec.key,  # the UID
            etag=f"sequence-{spec.version}",
            version=spec.version,
        )
