"""People: LMS users and their roles in courses.

A User is unique per (platform, sub): the same person on two platforms is two users, which
keeps tenants apart. Roles are kept as the LMS sent them (full URIs); what they grant in
Preceptor is decided by role mapping, never by the raw list.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, utcnow
from plugin.models.tenancy import Course, Platform

__all__ = ["CourseMembership", "MembershipSource", "User"]


class MembershipSource(StrEnum):
    """Where we learned about a membership."""

    LAUNCH = "launch"
    ROSTER = "roster"


class User(Base):
    """A person as one platform identifies them (the id_token's ``sub``)."""

    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    # Personal data: shown to the person and their program, never logged.
    name: Mapped[str] = mapped_column(String(255), default="")
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    locale: Mapped[str] = mapped_column(String(35), default="")
    #: IANA zone the person chose or the browser reported; empty until known.
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    platform: Mapped[Platform] = relationship()
    memberships: Mapped[list[CourseMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:  # ids only: a repr ends up in logs and tracebacks
        return f"<User {self.id} platform={self.platform_id}>"


class CourseMembership(Base):
    """A user's LMS roles in one course, from launches and the NRPS roster."""

    __tablename__ = "course_membership"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    #: LTI role URIs exactly as the platform sent them.
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    source: Mapped[MembershipSource] = mapped_column(
        Enum(
            MembershipSource,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=MembershipSource.LAUNCH,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    course: Mapped[Course] = relationship()
    user: Mapped[User] = relationship(back_populates="memberships")
