"""Mentoring relationships (pairs per track) and peer circles, with their history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.program import Participant, Program, Track

__all__ = [
    "Circle",
    "CircleMember",
    "CloseReason",
    "Relationship",
    "RelationshipEvent",
    "RelationshipOrigin",
    "RelationshipStatus",
]

#: Statuses that hold one of the mentor's seats.
SEAT_HOLDING = ("proposed", "active", "paused")


class RelationshipStatus(StrEnum):
    PROPOSED = "proposed"  #: requested by a mentee or proposed by a coordinator; not started
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"


class CloseReason(StrEnum):
    COMPLETED = "completed"
    NOT_WORKING = "not_working"  #: never proposed again by matching
    DECLINED = "declined"  #: the mentor declined a request
    WITHDRAWN = "withdrawn"  #: one side withdrew from the program
    LEFT_COURSE = "left_course"  #: the roster says one side left
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "completed": "Completed",
            "not_working": "Not working out",
            "declined": "Request declined",
            "withdrawn": "Withdrew from the program",
            "left_course": "Left the course",
            "other": "Other",
        }[self.value]


class RelationshipOrigin(StrEnum):
    COORDINATOR = "coordinator"
    REQUEST = "request"  #: a mentee asked this mentor
    MATCH_ROUND = "match_round"


class Relationship(Base):
    """A mentee and a mentor on one track, through its lifecycle."""

    __tablename__ = "relationship"
    __table_args__ = (
        # A mentee has at most one open relationship per track (several tracks: a menu of
        # mentors), and a pair at most one open relationship per track.
        Index(
            "uq_relationship_open_mentee_track",
            "mentee_id",
            "track",
            unique=True,
            postgresql_where=text("status IN ('proposed', 'active', 'paused')"),
            sqlite_where=text("status IN ('proposed', 'active', 'paused')"),
        ),
        Index("ix_relationship_program_status", "program_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id", ondelete="CASCADE"))
    mentee_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    mentor_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    track: Mapped[Track] = mapped_column(enum_column(Track))
    status: Mapped[RelationshipStatus] = mapped_column(
        enum_column(RelationshipStatus), default=RelationshipStatus.PROPOSED
    )
    origin: Mapped[RelationshipOrigin] = mapped_column(
        enum_column(RelationshipOrigin), default=RelationshipOrigin.COORDINATOR
    )
    close_reason: Mapped[CloseReason | None] = mapped_column(enum_column(CloseReason), default=None)
    #: The mentee's message with a request, or the coordinator's note.
    note: Mapped[str] = mapped_column(Text, default="")
    #: A re-match: the relationship on this track that closed as not working out.
    rematch_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("relationship.id", ondelete="SET NULL"), index=True, default=None
    )
    #: Goals of ``rematch_of`` the mentee chose to carry over; they move to this relationship
    #: (with their history) when it becomes active, and the list is emptied.
    carry_goal_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    program: Mapped[Program] = relationship()
    mentee: Mapped[Participant] = relationship(foreign_keys=[mentee_id])
    mentor: Mapped[Participant] = relationship(foreign_keys=[mentor_id])
    rematch_of: Mapped[Relationship | None] = relationship(remote_side=[id])
    events: Mapped[list[RelationshipEvent]] = relationship(
        back_populates="relationship",
        cascade="all, delete-orphan",
        order_by="RelationshipEvent.id",
    )

    @property
    def is_open(self) -> bool:
        return self.status in SEAT_HOLDING

    def __repr__(self) -> str:
        return f"<Relationship {self.id} {self.track} {self.status}>"


class RelationshipEvent(Base):
    """One step in a relationship's history: who changed what, when, and why."""

    __tablename__ = "relationship_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    relationship_id: Mapped[int] = mapped_column(
        ForeignKey("relationship.id", ondelete="CASCADE"), index=True
    )
    #: Participant who acted (None: the system, e.g. a roster sync).
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str] = mapped_column(String(20), default="")
    to_status: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    relationship: Mapped[Relationship] = relationship(back_populates="events")


class Circle(Base):
    """A peer-mentoring group of mentees, optionally with a facilitator."""

    __tablename__ = "circle"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    track: Mapped[Track | None] = mapped_column(enum_column(Track), default=None)
    facilitator_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), default=None
    )
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    program: Mapped[Program] = relationship()
    facilitator: Mapped[Participant | None] = relationship()
    members: Mapped[list[CircleMember]] = relationship(
        back_populates="circle", cascade="all, delete-orphan"
    )


class CircleMember(Base):
    """A mentee's membership in a circle (``left_at`` set when they leave)."""

    __tablename__ = "circle_member"
    __table_args__ = (UniqueConstraint("circle_id", "participant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circle.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(default=None)

    circle: Mapped[Circle] = relationship(back_populates="members")
    participant: Mapped[Participant] = relationship()
