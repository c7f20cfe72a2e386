"""Invitation e-mails to external mentors: one row per message a coordinator asked for.

The row is written in the transaction that creates (or renews) the invitation, and the job
that sends it is deferred through the outbox, so the e-mail is neither lost nor sent about
an invitation that rolled back. The row holds ids and the outcome only: the address, the
name and the signed link are read or made when the message leaves.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.program import Participant

__all__ = ["InvitationMail", "InvitationMailState"]


class InvitationMailState(StrEnum):
    PENDING = "pending"  #: queued; the job sends it (again after a failure it may retry)
    SENT = "sent"  #: the relay accepted it
    FAILED = "failed"  #: refused for good, or gave up after retries (reason says which)
    SKIPPED = "skipped"  #: not needed any more when it came to be sent (reason says why)


class InvitationMail(Base):
    """One e-mail carrying an invitation link to an invited mentor."""

    __tablename__ = "invitation_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    #: The coordinator who imported the mentor or asked for a new link (named in the mail).
    invited_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    state: Mapped[InvitationMailState] = mapped_column(
        enum_column(InvitationMailState), default=InvitationMailState.PENDING
    )
    #: Why it failed, is retrying or was skipped (no personal data).
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    #: The Message-ID every attempt carries, so a receiver keeps one copy of a resend.
    message_id: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participant: Mapped[Participant] = relationship()

    def __repr__(self) -> str:
        return f"<InvitationMail {self.id} {self.state}>"
