"""Insights: the per-program secret behind the research export's pseudonyms."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from plugin.crypto import EncryptedText
from plugin.db import Base, utcnow

__all__ = ["ResearchKey"]


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class ResearchKey(Base):
    """The HMAC key that turns a program's row ids into stable pseudonyms.

    One per program, random, encrypted at rest and never exported: without it nobody can
    link a pseudonym in a research export back to a person, and with it every export of the
    program gives a person the same pseudonym, so exports taken months apart can be joined.
    """

    __tablename__ = "research_key"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(EncryptedText, default=_new_secret)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
