"""One-click unsubscribe (RFC 8058): signed links that need no login, and preferences."""

from __future__ import annotations

import hmac

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import NotificationPreference

__all__ = ["preference_for", "read_token", "unsubscribe", "unsubscribe_token"]

_SALT = "preceptor.followups.unsubscribe"


def preference_for(session: Session, participant_id: int) -> NotificationPreference:
    """The participant's preferences, created with the defaults on first use (race-safe)."""
    found = session.get(NotificationPreference, participant_id)
    if found is not None:
        return found
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(NotificationPreference)
        .values(participant_id=participant_id)
        .on_conflict_do_nothing(index_elements=["participant_id"])
    )
    return session.scalars(
        select(NotificationPreference).where(
            NotificationPreference.participant_id == participant_id
        )
    ).one()


def unsubscribe_token(secret_key: str, preference: NotificationPreference) -> str:
    """A signed token naming the participant and their current nonce (never expires:
    RFC 8058 links must keep working; replacing the nonce revokes them)."""
    serializer = URLSafeSerializer(secret_key, salt=_SALT)
    return str(serializer.dumps([preference.participant_id, preference.unsubscribe_nonce]))


def read_token(session: Session, secret_key: str, token: str) -> NotificationPreference | None:
    """The preference a token belongs to, or None for a forged, altered or revoked token."""
    try:
        participant_id, nonce = URLSafeSerializer(secret_key, salt=_SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(participant_id, int) or not isinstance(nonce, str):
        return None
    preference = session.get(NotificationPreference, participant_id)
    if preference is None or not hmac.compare_digest(preference.unsubscribe_nonce, nonce):
        return None
    return preference


def unsubscribe(preference: NotificationPreference) -> None:
    """Stop every follow-up to this person (idempotent: the first time is kept)."""
    if preference.unsubscribed_at is None:
        preference.unsubscribed_at = utcnow()
