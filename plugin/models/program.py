"""Programs and the people enrolled in them.

A :class:`Program` belongs to one course (the tenant boundary): everything below hangs off
it. A :class:`Participant` is one person's enrollment in one program with their program
roles (mentee, mentor, coordinator), which are separate from their LMS roles. Their
:class:`Profile` holds what matching and partners need; ``private_preferences`` is opt-in,
encrypted at rest, and shown only to the matching engine and coordinators.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.crypto import EncryptedText
from plugin.db import Base, enum_column, utcnow
from plugin.models.people import User
from plugin.models.tenancy import Course

__all__ = [
    "CareerStage",
    "MeetingFormat",
    "MentorPolicy",
    "Participant",
    "ParticipantStatus",
    "Profile",
    "Program",
    "Track",
]


class Track(StrEnum):
    """What a mentoring relationship is for; a mentee may have one mentor per track."""

    RESEARCH = "research"
    CAREER = "career"
    CLINICAL = "clinical"
    WELLBEING = "wellbeing"
    LEADERSHIP = "leadership"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class MentorPolicy(StrEnum):
    """Who may enroll as a mentor."""

    FACULTY_ONLY = "faculty_only"  #: course instructors and TAs (and invited external mentors)
    FACULTY_AND_PEERS = "faculty_and_peers"  #: also learners, as peer mentors


class MeetingFormat(StrEnum):
    VIRTUAL = "virtual"
    IN_PERSON = "in_person"
    EITHER = "either"


class CareerStage(StrEnum):
    """Where a person is in their training or career, in order (matching uses the distance)."""

    PRECLINICAL = "preclinical"
    CLINICAL_STUDENT = "clinical_student"
    RESIDENT = "resident"
    FELLOW = "fellow"
    EARLY_CAREER = "early_career"
    MID_CAREER = "mid_career"
    SENIOR = "senior"

    @property
    def rank(self) -> int:
        return list(CareerStage).index(self)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class ParticipantStatus(StrEnum):
    INVITED = "invited"  #: an external mentor invited by e-mail who has not accepted yet
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    #: A coordinator erased their personal data: the row stays, anonymous, so partners'
    #: relationship history and the program's statistics still add up.
    ERASED = "erased"


#: How an erased participant appears in their partners' history.
ERASED_NAME = "a former participant"


class Program(Base):
    """A mentorship program inside a course, with the settings its coordinators edit."""

    __tablename__ = "program"
    __table_args__ = (
        # At most one program per (course, resource link): a deep link opens exactly one.
        Index(
            "uq_program_course_link",
            "course_id",
            "resource_link_id",
            unique=True,
            postgresql_where=text("resource_link_id <> ''"),
            sqlite_where=text("resource_link_id <> ''"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    #: The LTI resource link a deep link placed for this program ("" if none yet).
    resource_link_id: Mapped[str] = mapped_column(String(255), default="")
    #: The course's default program: opened by launches that name no program.
    is_default: Mapped[bool] = mapped_column(default=False)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: Track values (see :class:`Track`) this program offers.
    tracks: Mapped[list[str]] = mapped_column(JSON, default=lambda: [Track.CAREER.value])
    mentor_policy: Mapped[MentorPolicy] = mapped_column(
        enum_column(MentorPolicy), default=MentorPolicy.FACULTY_ONLY
    )
    #: With peer mentors allowed: the earliest career stage at which a learner may offer
    #: mentoring (see ``plugin.programs.peers``).
    peer_mentor_min_stage: Mapped[CareerStage] = mapped_column(
        enum_column(CareerStage), default=CareerStage.CLINICAL_STUDENT
    )
    #: Mentees a mentor takes on a track unless they say otherwise, for tracks without an
    #: entry in ``default_capacity_by_track``.
    default_mentor_capacity: Mapped[int] = mapped_column(default=2)
    #: Per-track defaults ({track value: mentees}) that take precedence over
    #: ``default_mentor_capacity``; read both through :meth:`default_capacity`.
    default_capacity_by_track: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    enrollment_opens_on: Mapped[date | None] = mapped_column(default=None)
    enrollment_closes_on: Mapped[date | None] = mapped_column(default=None)
    #: How often pairs are expected to meet, in days (drives "no meeting for N days").
    meeting_cadence_days: Mapped[int] = mapped_column(default=30)
    #: Follow-up settings (reminder offsets, nudge caps, quiet hours), see the follow-ups docs.
    followup_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Participation-score rule for AGS (points per meeting held, per goal check-in, max).
    participation_rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: AGS, from the launches of this program's link: the course's line items URL, the
    #: participation line item (given by the platform or created by us) and the scopes the
    #: platform granted. Empty: the platform offers no gradebook for this program.
    ags_lineitems_url: Mapped[str] = mapped_column(String(2048), default="")
    ags_lineitem_url: Mapped[str] = mapped_column(String(2048), default="")
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: NRPS members of this program's resource link (user ids), from a roster pull with rlid.
    link_member_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    link_roster_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Interests this program adds to the shipped vocabulary (codes with labels).
    extra_interests: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    course: Mapped[Course] = relationship()

    @property
    def offered_tracks(self) -> list[Track]:
        return [Track(t) for t in self.tracks if t in Track._value2member_map_]

    def default_capacity(self, track: Track) -> int:
        """Mentees a mentor takes on ``track`` when their profile names no number for it."""
        by_track = self.default_capacity_by_track or {}
        return int(by_track.get(track.value, self.default_mentor_capacity))

    def __repr__(self) -> str:
        return f"<Program {self.id} course={self.course_id}>"


class Participant(Base):
    """One person's enrollment in one program, with their program roles."""

    __tablename__ = "participant"
    __table_args__ = (
        UniqueConstraint("program_id", "user_id"),
        # An invited external mentor is one row per (program, e-mail) until they accept.
        Index(
            "uq_participant_program_invite_email",
            "program_id",
            "invite_email",
            unique=True,
            postgresql_where=text("invite_email <> ''"),
            sqlite_where=text("invite_email <> ''"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    #: None for an external mentor invited by e-mail who has not launched yet.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True, default=None
    )
    is_mentee: Mapped[bool] = mapped_column(default=False)
    is_mentor: Mapped[bool] = mapped_column(default=False)
    is_coordinator: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ParticipantStatus] = mapped_column(
        enum_column(ParticipantStatus), default=ParticipantStatus.ACTIVE
    )
    #: Personal data of an invited mentor (users' names live on User); never logged.
    invite_name: Mapped[str] = mapped_column(String(255), default="")
    invite_email: Mapped[str] = mapped_column(String(320), default="")
    #: Bumped under a row lock whenever a mentor's seats are taken or given back, so two
    #: concurrent requests for the last seat serialise on this row (see relationships).
    seats_version: Mapped[int] = mapped_column(default=0)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    program: Mapped[Program] = relationship()
    user: Mapped[User | None] = relationship()
    profile: Mapped[Profile | None] = relationship(
        back_populates="participant", cascade="all, delete-orphan", uselist=False
    )

    @property
    def display_name(self) -> str:
        if self.status == ParticipantStatus.ERASED:
            return ERASED_NAME
        if self.user is not None:
            return self.user.name or self.user.given_name or f"Participant {self.id}"
        return self.invite_name or f"Invited mentor {self.id}"

    @property
    def email(self) -> str:
        return self.user.email if self.user is not None else self.invite_email

    def __repr__(self) -> str:
        return f"<Participant {self.id} program={self.program_id}>"


class Profile(Base):
    """What a participant tells the program: matching inputs and the shared profile."""

    __tablename__ = "profile"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    tracks_wanted: Mapped[list[str]] = mapped_column(JSON, default=list)
    tracks_offered: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Codes from the interests vocabulary (shipped file plus the program's extras).
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    interests_text: Mapped[str] = mapped_column(Text, default="")
    goals_text: Mapped[str] = mapped_column(Text, default="")
    #: Shown to partners: a short introduction.
    bio: Mapped[str] = mapped_column(Text, default="")
    career_stage: Mapped[CareerStage | None] = mapped_column(enum_column(CareerStage), default=None)
    #: IANA zone the availability windows are written in.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: Weekly windows in ``time_zone``: [{"day": 0-6 (Monday=0), "start": "HH:MM", "end": "HH:MM"}].
    availability: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    meeting_format: Mapped[MeetingFormat] = mapped_column(
        enum_column(MeetingFormat), default=MeetingFormat.EITHER
    )
    #: BCP 47 language tags.
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en"])
    #: Mentees a mentor takes per track ({"research": 2}); absent tracks use the default.
    capacity_by_track: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: Mentees a mentor takes across all tracks (None: the sum of the per-track ones).
    capacity_total: Mapped[int | None] = mapped_column(default=None)
    #: Opt-in preferences (JSON text), encrypted: only matching and coordinators read them.
    private_preferences: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="profile")
