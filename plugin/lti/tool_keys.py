"""The tool's signing keys: the one that signs, the JWKS, rotation with an overlap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_config.keys import generate_private_key, public_jwk, thumbprint
from plugin.db import utcnow
from plugin.models import ToolKey

__all__ = [
    "DEFAULT_OVERLAP",
    "drop_retired_keys",
    "ensure_signing_key",
    "import_private_key",
    "published_jwks",
    "rotate_signing_key",
    "signing_key",
]

#: How long a rotated-out key stays published: platforms cache keysets for hours.
DEFAULT_OVERLAP: Final = timedelta(hours=72)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _load(row: ToolKey) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(row.private_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def import_private_key(session: Session, key: rsa.RSAPrivateKey) -> ToolKey:
    """Store ``key`` (encrypted) as a signing key, unless it is stored already."""
    kid = thumbprint(key.public_key())
    existing = session.scalar(select(ToolKey).where(ToolKey.kid == kid))
    if existing is not None:
        return existing
    row = ToolKey(kid=kid, private_key_pem=_pem(key))
    session.add(row)
    session.flush()
    return row


def signing_key(session: Session) -> ToolKey | None:
    """The key that signs now: the newest one not being retired."""
    return session.scalar(
        select(ToolKey).where(ToolKey.retire_at.is_(None)).order_by(ToolKey.id.desc()).limit(1)
    )


def ensure_signing_key(session: Session) -> ToolKey:
    """The signing key, generated on first use."""
    return signing_key(session) or import_private_key(session, generate_private_key())


def rotate_signing_key(
    session: Session, overlap: timedelta = DEFAULT_OVERLAP, now: datetime | None = None
) -> ToolKey:
    """Make a new key the signer; older keys stay published for ``overlap``, then go."""
    now = now or utcnow()
    for row in session.scalars(select(ToolKey).where(ToolKey.retire_at.is_(None))):
        row.retire_at = now + overlap
    return import_private_key(session, generate_private_key())


def published_jwks(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """The JWKS platforms verify our messages with: signing and still-overlapping keys."""
    now = now or utcnow()
    rows = session.scalars(
        select(ToolKey)
        .where(ToolKey.retire_at.is_(None) | (ToolKey.retire_at > now))
        .order_by(ToolKey.id.desc())
    )
    return {"keys": [public_jwk(_load(row).public_key()) for row in rows]}


def drop_retired_keys(session: Session, now: datetime | None = None) -> int:
    """Delete keys whose overlap has ended (their private halves included)."""
    result = session.execute(delete(ToolKey).where(ToolKey.retire_at <= (now or utcnow())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
