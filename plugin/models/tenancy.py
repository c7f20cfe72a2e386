"""Tenancy: the LMS platforms that installed Preceptor, their deployments and courses.

Every piece of program data hangs off a Course, and a Course off one Deployment of one
Platform: that chain is the tenant boundary every query must stay inside.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, utcnow

__all__ = ["Course", "Deployment", "Platform"]

#: Longest URL we store; LMS endpoints are far shorter, this only bounds bad input.
URL_LENGTH = 2048


class Platform(Base):
    """An LMS registration: one (issuer, client_id) pair and its endpoints."""

    __tablename__ = "platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(URL_LENGTH))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200), default="")
    auth_login_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    auth_token_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    key_set_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    #: Product family from the registration ("canvas", "moodle", ...), used for quirks.
    product_family: Mapped[str] = mapped_column(String(100), default="")
    #: Record a deployment id on its first correctly signed launch. Only for platforms that
    #: registered dynamically without telling their deployment ids (Canvas does not).
    accept_new_deployments: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Platform {self.id} {self.issuer!r} client_id={self.client_id!r}>"


class Deployment(Base):
    """One installation of the tool inside a platform (an LTI deployment_id)."""

    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="deployments")
    courses: Mapped[list[Course]] = relationship(
        back_populates="deployment", cascade="all, delete-orphan"
    )


class Course(Base):
    """An LTI context (a Canvas or Moodle course) reached through one deployment."""

    __tablename__ = "course"
    __table_args__ = (UniqueConstraint("deployment_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str] = mapped_column(String(255), default="")
    #: The platform's Names and Role Provisioning URL for this course ("" if not offered).
    nrps_url: Mapped[str] = mapped_column(String(URL_LENGTH), default="")
    roster_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deployment: Mapped[Deployment] = relationship(back_populates="courses")
