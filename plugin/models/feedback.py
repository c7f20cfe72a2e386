"""Feedback from participants, and coordinators' handling of relationships that need them.

Three kinds of answer, each at most one per person and occasion (a second submission edits
the first, until the occasion's deadline):

* :class:`MeetingFeedback`: an attendee's view of one meeting; private to coordinators, or
  shared with the other attendees too;
* :class:`HealthCheck`: one side's periodic "how is it going" on a relationship, per
  health-check period; coordinators only;
* :class:`RelationshipEvaluation`: one side's evaluation of a closed relationship;
  coordinators only.

:class:`AttentionHandled` records that a coordinator dealt with a relationship in the
attention queue, with a note and the signals it had then (see :mod:`plugin.insights.signals`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.meetings import Meeting
from plugin.models.program import Participant

__all__ = [
    "AttentionHandled",
    "FeedbackVisibility",
    "GoalsMet",
    "HealthCheck",
    "MeetingFeedback",
    "RelationshipEvaluation",
]


class FeedbackVisibility(StrEnum):
    PRIVATE = "private"  #: coordinators only
    SHARED = "shared"  #: coordinators and the other attendees

    @property
    def label(self) -> str:
        return {
            "private": "Only the program coordinators",
            "shared": "The coordinators and the other attendees",
        }[self.value]


class GoalsMet(StrEnum):
    YES = "yes"
    PARTLY = "partly"
    NO = "no"

    @property
    def label(self) -> str:
        return {"yes": "Yes", "partly": "Partly", "no": "No"}[self.value]


class MeetingFeedback(Base):
    """One attendee's feedback on one meeting (rating 1-5, useful or not, free text)."""

    __tablename__ = "meeting_feedback"
    __table_args__ = (
        UniqueConstraint("meeting_id", "author_id"),
        Index("ix_meeting_feedback_program_relationship", "program_id", "relationship_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    #: The meeting's relationship, copied so signals aggregate without joining meetings.
    relationship_id: Mapped[int | None] = mapped_column(
        ForeignKey("relationship.id", ondelete="CASCADE"), default=None
    )
    author_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[int]
    useful: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[FeedbackVisibility] = mapped_column(
        enum_column(FeedbackVisibility), default=FeedbackVisibility.PRIVATE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    meeting: Mapped[Meeting] = relationship()
    author: Mapped[Participant] = relationship()


class HealthCheck(Base):
    """One side's answer to a relationship's periodic health check (scale 1-5, free text)."""

    __tablename__ = "health_check"
    __table_args__ = (
        UniqueConstraint("relationship_id", "author_id", "period"),
        Index("ix_health_check_program_relationship", "program_id", "relationship_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    relationship_id: Mapped[int] = mapped_column(ForeignKey("relationship.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    #: Health-check period: whole ``health_check_days`` since the relationship started.
    period: Mapped[int]
    #: 1 (very poorly) to 5 (very well).
    score: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    author: Mapped[Participant] = relationship()


class RelationshipEvaluation(Base):
    """One side's evaluation of a relationship that closed."""

    __tablename__ = "relationship_evaluation"
    __table_args__ = (UniqueConstraint("relationship_id", "author_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    relationship_id: Mapped[int] = mapped_column(ForeignKey("relationship.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    goals_met: Mapped[GoalsMet] = mapped_column(enum_column(GoalsMet))
    would_recommend: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    author: Mapped[Participant] = relationship()


class AttentionHandled(Base):
    """A coordinator marked a relationship in the attention queue as handled.

    The latest row per relationship counts: the item leaves the queue until a signal appears
    of a kind not in ``signal_kinds`` or at a worse level, or with evidence newer than
    ``handled_at``.
    """

    __tablename__ = "attention_handled"
    __table_args__ = (
        Index("ix_attention_handled_program_relationship", "program_id", "relationship_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    relationship_id: Mapped[int] = mapped_column(ForeignKey("relationship.id", ondelete="CASCADE"))
    handled_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str] = mapped_column(Text, default="")
    #: The signals the item showed when it was handled, as ``"kind:level"`` strings.
    signal_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    handled_at: Mapped[datetime] = mapped_column(default=utcnow)
