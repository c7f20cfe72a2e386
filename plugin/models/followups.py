"""Follow-ups: messages the tool sends instead of a coordinator, their deliveries, and
each person's notification preferences.

A :class:`FollowUp` is planned by the rules in :mod:`plugin.followups.rules` under a
deterministic ``dedupe_key`` (unique), so planning twice never plans two. The dispatcher
claims due ones with a lease (``state = sending``), hands them to a channel and records a
:class:`Delivery` per attempt. Payloads are references by id, never copied personal data.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.program import Participant

__all__ = [
    "Delivery",
    "DeliveryOutcome",
    "FollowUp",
    "FollowUpKind",
    "FollowUpState",
    "NotificationPreference",
]


class FollowUpKind(StrEnum):
    """What a follow-up is for (the rule that planned it)."""

    INTRODUCTION = "introduction"  #: both sides, when a relationship becomes active
    GOAL_CHECKIN = "goal_checkin"  #: before a goal's target date
    NO_MEETING_NUDGE = "no_meeting_nudge"  #: no meeting (yet, or for N days); capped
    ESCALATION = "escalation"  #: to coordinators, after the nudge cap
    HEALTH_CHECK = "health_check"  #: periodic "how is it going" to both sides
    COORDINATOR_DIGEST = "coordinator_digest"  #: weekly, to each coordinator
    MEETING_REMINDER = "meeting_reminder"  #: before a scheduled meeting, to each attendee
    MEETING_FEEDBACK = "meeting_feedback"  #: after a meeting ended, to each attendee

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class FollowUpState(StrEnum):
    PLANNED = "planned"  #: waiting for due_at
    SENDING = "sending"  #: claimed by a dispatcher until lease_until
    SENT = "sent"
    CANCELLED = "cancelled"  #: a change made it obsolete (reason says which)
    SKIPPED = "skipped"  #: the recipient's preferences said no (reason says which)
    FAILED = "failed"  #: gave up (reason says why)


#: States a planner may still change; the others are history and never touched again.
OPEN_STATES = (FollowUpState.PLANNED, FollowUpState.CANCELLED)


class FollowUp(Base):
    """One message that must reach one person at (or after) ``due_at``."""

    __tablename__ = "followup"
    __table_args__ = (
        # The dispatcher's only query: state = 'planned' AND due_at <= now ORDER BY due_at.
        # A composite index makes it a range scan whose cost follows the number due, not the
        # number scheduled (see bench/followups.py). Not a partial index: SQLite uses one
        # only when the query repeats its WHERE literally, which bound parameters do not.
        Index("ix_followup_state_due_at", "state", "due_at"),
        Index("ix_followup_relationship_id", "relationship_id"),
        Index("ix_followup_goal_id", "goal_id"),
        Index("ix_followup_meeting_id", "meeting_id"),
        Index("ix_followup_recipient_sent_at", "recipient_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[FollowUpKind] = mapped_column(enum_column(FollowUpKind, 30))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    #: What the message is about (ids; the template loads what it shows at send time).
    relationship_id: Mapped[int | None] = mapped_column(
        ForeignKey("relationship.id", ondelete="CASCADE"), default=None
    )
    goal_id: Mapped[int | None] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), default=None
    )
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), default=None
    )
    #: Other references a rule needs (ids, counters, dates), never names or e-mails.
    refs: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime]
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[FollowUpState] = mapped_column(
        enum_column(FollowUpState), default=FollowUpState.PLANNED
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    #: The dispatcher holding the claim, and until when (a dead one's claim expires).
    claim_token: Mapped[str] = mapped_column(String(40), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    recipient: Mapped[Participant] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="followup", cascade="all, delete-orphan", order_by="Delivery.id"
    )

    def __repr__(self) -> str:
        return f"<FollowUp {self.id} {self.kind} {self.state}>"


class DeliveryOutcome(StrEnum):
    QUEUED = "queued"  #: handed to the channel; an outcome not recorded means interrupted
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Delivery(Base):
    """One attempt to deliver a follow-up over one channel (what coordinators see)."""

    __tablename__ = "followup_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    followup_id: Mapped[int] = mapped_column(
        ForeignKey("followup.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[DeliveryOutcome] = mapped_column(enum_column(DeliveryOutcome))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The idempotency key the channel carried (the e-mail's Message-ID).
    message_id: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    followup: Mapped[FollowUp] = relationship(back_populates="deliveries")


def _new_token() -> str:
    return secrets.token_urlsafe(16)


class NotificationPreference(Base):
    """What one participant wants to receive, and how (absent row: the defaults)."""

    __tablename__ = "notification_preference"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    #: FollowUpKind values this person does not want.
    muted_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel: Mapped[str] = mapped_column(String(30), default="email")
    #: Local times ("HH:MM", in their profile's time zone) between which nothing is sent;
    #: None uses the program's or the site's default.
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    daily_cap: Mapped[int | None] = mapped_column(default=None)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Signed into unsubscribe links; replacing it revokes every link sent so far.
    unsubscribe_nonce: Mapped[str] = mapped_column(String(40), default=_new_token)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participant: Mapped[Participant] = relationship()
