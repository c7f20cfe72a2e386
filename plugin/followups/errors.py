"""Errors of the follow-up package."""

from __future__ import annotations

__all__ = ["ChannelError", "FollowUpError"]


class FollowUpError(Exception):
    """Base of follow-up errors."""


class ChannelError(FollowUpError):
    """A channel could not deliver; the message says why (no personal data in it).

    ``permanent``: the relay refused this message for good (a 5xx answer, the recipient
    refused); retrying the same message will not help. False for 4xx and lost connections.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
