"""LTI errors: one base class, and a launch refusal that carries its reason code."""

from __future__ import annotations

__all__ = ["LaunchRefused", "LtiError", "RegistrationError"]


class LtiError(Exception):
    """Base of every LTI problem Preceptor reports."""


class RegistrationError(LtiError):
    """A platform registration is invalid or conflicts with one already stored."""


class LaunchRefused(LtiError):
    """A launch failed a validation rule.

    ``code`` is the stable reason code logged and shown to the admin; ``status`` the HTTP
    status (400 malformed, 401 not authenticated, 403 not allowed); ``advice`` what the
    person should tell their administrator.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 401,
        advice: str = "Launch Preceptor again from your course.",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.advice = advice
