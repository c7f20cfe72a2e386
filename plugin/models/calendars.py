"""Calendar connections, durable sync intents, and what each provider holds of a meeting.

A change to a meeting writes one :class:`SyncIntent` per attendee in the same transaction
(older pending intents of that pair become ``superseded``). Workers drain intents per
person and record what the provider now holds in :class:`ExternalEvent`. The database is
the source of truth: a lost job is re-driven, a retried request reuses the pair's
idempotency key (:func:`plugin.models.meetings.sync_key`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.crypto import EncryptedText
from plugin.db import Base, enum_column, utcnow
from plugin.models.meetings import Meeting
from plugin.models.people import User
from plugin.models.program import Participant

__all__ = [
    "ICS_PROVIDER",
    "CalendarConnection",
    "CalendarFeed",
    "ConnectionHealth",
    "ExternalEvent",
    "InstitutionCalendar",
    "SyncIntent",
    "SyncOperation",
    "SyncState",
    "feed_token_hash",
]

#: Provider name of the e-mail invitation (iTIP) + ICS feed path, for people with no
#: connected calendar.
ICS_PROVIDER = "ics"


class ConnectionHealth(StrEnum):
    OK = "ok"
    FAILING = "failing"  #: recent requests failed (provider down, quota); retries continue
    REVOKED = "revoked"  #: the person or their institution withdrew consent; e-mail instead

    @property
    def label(self) -> str:
        return {"ok": "Connected", "failing": "Failing", "revoked": "Disconnected"}[self.value]


class InstitutionCalendar(Base):
    """An institution's calendar account that writes to everyone in an e-mail domain.

    The institution option of the calendar issue: a Google Workspace service account with
    domain-wide delegation, or a Microsoft Entra app with application permissions
    (client credentials). Configured by an admin per LMS registration
    (``preceptor calendars institution add``); people of that platform whose e-mail is in
    ``domain`` get a connection without signing in themselves.
    """

    __tablename__ = "institution_calendar"
    __table_args__ = (UniqueConstraint("platform_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    #: "google" (service account) or "microsoft" (app-only).
    provider: Mapped[str] = mapped_column(String(20))
    #: Lower-case e-mail domain, e.g. "med.example.edu".
    domain: Mapped[str] = mapped_column(String(255))
    #: Google: the service account's JSON key; Microsoft: nothing (the app's client
    #: credentials come from settings). Encrypted at rest.
    credentials: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CalendarConnection(Base):
    """A person's calendar account (Google, Microsoft, CalDAV) that Preceptor writes to."""

    __tablename__ = "calendar_connection"
    __table_args__ = (
        # One live connection per person: their meetings go to one calendar.
        Index(
            "uq_calendar_connection_live_participant",
            "participant_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL AND participant_id IS NOT NULL"),
            sqlite_where=text("revoked_at IS NULL AND participant_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The enrollment whose meetings go here; or None with ``user_id`` for every program.
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True, default=None
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True, default=None
    )
    #: Registry name of the provider ("google", "microsoft", "caldav").
    provider: Mapped[str] = mapped_column(String(20))
    #: The account as the provider names it (e-mail or principal URL); shown to the person.
    account: Mapped[str] = mapped_column(String(320), default="")
    #: Provider-specific credentials (JSON text: tokens, token cache), encrypted at rest.
    credentials: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    health: Mapped[ConnectionHealth] = mapped_column(
        enum_column(ConnectionHealth), default=ConnectionHealth.OK
    )
    #: Why the latest request failed, in words a person can act on; no payloads.
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When requests started failing without a success since (None while healthy): a
    #: connection failing for long is given up like a revoked one.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Set when the connection was made by an institution calendar, not by the person.
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution_calendar.id", ondelete="SET NULL"), index=True, default=None
    )
    #: When the e-mail telling the person their calendar stopped was handed to the relay.
    notice_sent_at: Mapped[datetime | None] = mapped_column(default=None)

    participant: Mapped[Participant | None] = relationship()
    user: Mapped[User | None] = relationship()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.health != ConnectionHealth.REVOKED


class SyncOperation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    CANCEL = "cancel"


class SyncState(StrEnum):
    PENDING = "pending"  #: to do (``next_attempt_at`` says when)
    DONE = "done"  #: the provider holds this version
    SUPERSEDED = "superseded"  #: a newer version of the meeting replaced it before it ran
    FAILED = "failed"  #: gave up (permanent error or too many attempts); ``last_error`` says why


class SyncIntent(Base):
    """One attendee's calendar must show one version of one meeting."""

    __tablename__ = "sync_intent"
    __table_args__ = (
        # One pending intent per (meeting, attendee): a new version supersedes the old one.
        Index(
            "uq_sync_intent_pending_pair",
            "meeting_id",
            "attendee_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_sync_intent_attendee_state", "attendee_id", "state"),
        Index("ix_sync_intent_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    #: The connection it goes through (None: e-mail invitation and ICS feed).
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_connection.id", ondelete="SET NULL"), default=None
    )
    #: Registry name of the provider that must carry it ("ics" without a connection).
    provider: Mapped[str] = mapped_column(String(20))
    meeting_version: Mapped[int]
    operation: Mapped[SyncOperation] = mapped_column(enum_column(SyncOperation))
    state: Mapped[SyncState] = mapped_column(enum_column(SyncState), default=SyncState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

    meeting: Mapped[Meeting] = relationship()
    attendee: Mapped[Participant] = relationship()

    @property
    def sync_key(self) -> str:
        """The idempotency key of this (meeting, attendee) pair at every provider."""
        return self.meeting.sync_key_for(self.attendee_id)


class ExternalEvent(Base):
    """What one provider holds of one meeting in one attendee's calendar."""

    __tablename__ = "external_event"
    __table_args__ = (UniqueConstraint("meeting_id", "attendee_id", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_connection.id", ondelete="SET NULL"), default=None
    )
    provider: Mapped[str] = mapped_column(String(20))
    #: The provider's id of the event (Google: the key itself; Graph: its own id).
    external_id: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(255), default="")
    synced_version: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    meeting: Mapped[Meeting] = relationship()

    @property
    def sync_key(self) -> str:
        return self.meeting.sync_key_for(self.attendee_id)


def feed_token_hash(token: str) -> str:
    """How a feed token is looked up: its SHA-256, so the index never holds the secret."""
    return hashlib.sha256(token.encode()).hexdigest()


class CalendarFeed(Base):
    """A participant's secret ICS feed URL (``/feeds/<token>.ics``); revocable."""

    __tablename__ = "calendar_feed"
    __table_args__ = (
        Index(
            "uq_calendar_feed_live_participant",
            "participant_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The token itself, encrypted, so the person can see their URL again.
    token: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    participant: Mapped[Participant] = relationship()
