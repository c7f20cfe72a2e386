"""Google event ids and Meet request ids derived from idempotency keys."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["google_event_id", "meet_request_id"]


def google_event_id(key: str) -> str:
    """The Google event id for ``key``: base32hex (a-v, 0-9), as Google requires.

    Deterministic, so a retried insert answers 409 duplicate instead of making a twin.
    """
    return base64.b32hexencode(key.encode()).decode().rstrip("=").lower()


def meet_request_id(key: str) -> str:
    """The conference createRequest id for ``key``: stable, so a retry asks for the same Meet."""
    return "preceptor-" + hashlib.sha256(f"meet|{key}".encode()).hexdigest()[:32]
