"""The tool's own signing keys (for deep-linking responses, service tokens, registration)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.crypto import EncryptedText
from plugin.db import Base, utcnow

__all__ = ["ToolKey"]


class ToolKey(Base):
    """An RSA key pair; the private half is encrypted at rest.

    The newest key without ``retire_at`` signs. A rotated-out key stays published in the
    JWKS until ``retire_at`` so platforms that cached the old keyset keep verifying.
    """

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_key_pem: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retire_at: Mapped[datetime | None] = mapped_column(default=None)
