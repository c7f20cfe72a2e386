"""Goals: created by a mentee, agreed with a mentor (or shared in a circle), checked in on."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.program import Participant, Program
from plugin.models.relationships import Circle, Relationship

__all__ = ["Goal", "GoalStatus", "GoalUpdate"]


class GoalStatus(StrEnum):
    PROPOSED = "proposed"  #: written by the mentee, waiting for the mentor's agreement
    AGREED = "agreed"
    ACHIEVED = "achieved"
    DROPPED = "dropped"


class Goal(Base):
    """A SMART goal: what, how it is measured, by when; progress 0-100."""

    __tablename__ = "goal"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    #: Shared within this relationship, or this circle (one of them, or neither: private).
    relationship_id: Mapped[int | None] = mapped_column(
        ForeignKey("relationship.id", ondelete="SET NULL"), index=True, default=None
    )
    circle_id: Mapped[int | None] = mapped_column(
        ForeignKey("circle.id", ondelete="SET NULL"), index=True, default=None
    )
    title: Mapped[str] = mapped_column(String(200))
    measure: Mapped[str] = mapped_column(Text, default="")
    target_date: Mapped[date | None] = mapped_column(default=None)
    status: Mapped[GoalStatus] = mapped_column(enum_column(GoalStatus), default=GoalStatus.PROPOSED)
    progress: Mapped[int] = mapped_column(default=0)
    agreed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), default=None
    )
    agreed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    program: Mapped[Program] = relationship()
    owner: Mapped[Participant] = relationship(foreign_keys=[owner_id])
    pair: Mapped[Relationship | None] = relationship()
    circle: Mapped[Circle | None] = relationship()
    updates: Mapped[list[GoalUpdate]] = relationship(
        back_populates="goal", cascade="all, delete-orphan", order_by="GoalUpdate.id"
    )


class GoalUpdate(Base):
    """The goal's history: creation, agreement, edits, status changes and check-ins."""

    __tablename__ = "goal_update"

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goal.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), default=None
    )
    #: "created", "agreed", "edited", "dropped", "checkin", "carried_over"
    kind: Mapped[str] = mapped_column(String(20))
    progress: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    #: What an edit changed: field name ("title", "measure", "target_date") to
    #: ``[before, after]`` as text (dates ISO, "" for none); empty for other kinds.
    changes: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    goal: Mapped[Goal] = relationship(back_populates="updates")
